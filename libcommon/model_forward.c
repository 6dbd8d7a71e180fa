// model_forward.c — the CPU forward pass of model.h, batched: B sequences of T tokens, rows
// batch-major (N = B*T). GEMMs through kernels/matmul (OpenBLAS), the rest through kernels/.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "attention.h"
#include "matmul.h"
#include "model.h"
#include "norm.h"
#include "rope.h"
#include "threads.h"

struct ForwardState {
    int B, T;
    float *x;           // (N, D) residual stream
    float *xn;          // (N, D) normalized
    float *q, *k, *v;   // (N, H*hd), (N, KVH*hd), (N, KVH*hd)
    float *att;         // (N, H*hd)
    float *tmp;         // (N, D)
    float *gate, *up;   // (N, F)
    float *cos_t, *sin_t;  // (T, hd/2)
};

ForwardState *forward_state_new(const Model *m, int B, int T) {
    const ModelConfig *c = &m->cfg;
    size_t N = (size_t)B * T, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    ForwardState *s = xcalloc(1, sizeof *s);
    s->B = B;
    s->T = T;
    s->x = xmalloc(N * c->d_model * sizeof(float));
    s->xn = xmalloc(N * c->d_model * sizeof(float));
    s->q = xmalloc(N * qd * sizeof(float));
    s->k = xmalloc(N * kvd * sizeof(float));
    s->v = xmalloc(N * kvd * sizeof(float));
    s->att = xmalloc(N * qd * sizeof(float));
    s->tmp = xmalloc(N * c->d_model * sizeof(float));
    s->gate = xmalloc(N * c->d_ff * sizeof(float));
    s->up = xmalloc(N * c->d_ff * sizeof(float));
    if (c->arch != ARCH_GPT2) {
        s->cos_t = xmalloc((size_t)T * c->head_dim / 2 * sizeof(float));
        s->sin_t = xmalloc((size_t)T * c->head_dim / 2 * sizeof(float));
        RopeParams rp = {c->rope_theta, c->rope_llama3, c->rope_factor, c->rope_low_freq_factor,
                         c->rope_high_freq_factor, c->rope_original_max_pos};
        rope_table(s->cos_t, s->sin_t, T, c->head_dim, &rp);
    }
    return s;
}

void forward_state_free(ForwardState *s) {
    if (!s) return;
    free(s->x); free(s->xn); free(s->q); free(s->k); free(s->v); free(s->att); free(s->tmp);
    free(s->gate); free(s->up); free(s->cos_t); free(s->sin_t);
    free(s);
}

// The norm in front of attention / the MLP / the output, per architecture.
static void apply_norm(const Model *m, float *out, const float *x, const float *w, const float *b, int N, float *rstd) {
    const ModelConfig *c = &m->cfg;
    if (c->arch == ARCH_GPT2) layernorm_cpu(out, x, w, b, N, c->d_model, c->norm_eps, rstd);
    else rmsnorm_cpu(out, x, w, c->arch == ARCH_GEMMA2 ? 1.0f : 0.0f, N, c->d_model, c->norm_eps, rstd);
}

static void copy_hook(float **hooks, int l, const float *src, size_t n) {
    if (hooks && hooks[l]) memcpy(hooks[l], src, n * sizeof(float));
}

int model_forward(const Model *m, ForwardState *s, const uint32_t *tokens, int B, int T, ForwardOutputs *out, Error *e) {
    const ModelConfig *c = &m->cfg;
    if (B > s->B || T != s->T) return err_set(e, "forward: state built for %dx%d, called with %dx%d", s->B, s->T, B, T);
    if (model_check_positions(c, T, "forward", e)) return -1;
    int N = B * T, D = c->d_model, F = c->d_ff, H = c->n_heads, KVH = c->n_kv_heads, hd = c->head_dim;
    int qd = H * hd, kvd = KVH * hd;
    size_t ND = (size_t)N * D;
    int n_run = out->n_run_layers > 0 && out->n_run_layers < c->n_layers ? out->n_run_layers : c->n_layers;

    // embeddings (Gemma scales by sqrt(D) in the activation dtype; GPT-2 adds learned positions)
    float emb_scale = c->arch == ARCH_GEMMA2 ? sqrtf((float)D) : 1.0f;
    for (int r = 0; r < N; r++) {
        uint32_t tok = tokens[r];
        if (tok >= (uint32_t)c->vocab_size) return err_set(e, "forward: token id %u >= vocab size %d", tok, c->vocab_size);
        const float *row = m->embed + (size_t)tok * D;
        float *x = s->x + (size_t)r * D;
        for (int i = 0; i < D; i++) x[i] = row[i] * emb_scale;
        if (m->pos_embed) {
            const float *p = m->pos_embed + (size_t)(r % T) * D;
            for (int i = 0; i < D; i++) x[i] += p[i];
        }
    }

    for (int l = 0; l < n_run; l++) {
        const LayerWeights *L = &m->layers[l];
        copy_hook(out->resid_pre, l, s->x, ND);
        // attention block
        apply_norm(m, s->xn, s->x, L->attn_norm_w, L->attn_norm_b, N, out->attn_rstd ? out->attn_rstd[l] : NULL);
        matmul_cpu(s->q, s->xn, L->wq, L->bq, N, D, qd);
        matmul_cpu(s->k, s->xn, L->wk, L->bk, N, D, kvd);
        matmul_cpu(s->v, s->xn, L->wv, L->bv, N, D, kvd);
        if (c->arch != ARCH_GPT2) {
            rope_apply_cpu(s->q, s->cos_t, s->sin_t, B, T, H, hd);
            rope_apply_cpu(s->k, s->cos_t, s->sin_t, B, T, KVH, hd);
        }
        AttnShape as = {B, T, H, KVH, hd, model_attn_scale(c, l), c->attn_softcap,
                        c->layer_sliding[l] ? c->sliding_window : 0};
        attention_cpu(s->att, out->attn_probs ? out->attn_probs[l] : NULL, s->q, s->k, s->v, &as);
        matmul_cpu(s->tmp, s->att, L->wo, L->bo, N, qd, D);
        if (L->post_attn_norm_w)
            rmsnorm_cpu(s->tmp, s->tmp, L->post_attn_norm_w, 1.0f, N, D, c->norm_eps,
                        out->post_attn_rstd ? out->post_attn_rstd[l] : NULL);
        for (size_t i = 0; i < ND; i++) s->x[i] += s->tmp[i];
        copy_hook(out->resid_mid, l, s->x, ND);
        // MLP block
        apply_norm(m, s->xn, s->x, L->mlp_norm_w, L->mlp_norm_b, N, out->mlp_rstd ? out->mlp_rstd[l] : NULL);
        copy_hook(out->mlp_in, l, s->xn, ND);
        if (c->arch == ARCH_GPT2) {
            matmul_cpu(s->up, s->xn, L->w_up, L->b_up, N, D, F);
            gelu_tanh_cpu(s->up, (size_t)N * F);
            matmul_cpu(s->tmp, s->up, L->w_down, L->b_down, N, F, D);
        } else {
            matmul_cpu(s->gate, s->xn, L->w_gate, NULL, N, D, F);
            matmul_cpu(s->up, s->xn, L->w_up, NULL, N, D, F);
            gated_act_cpu(s->up, s->gate, s->up, (size_t)N * F, c->arch == ARCH_GEMMA2 ? ACT_GELU_TANH : ACT_SILU);
            matmul_cpu(s->tmp, s->up, L->w_down, NULL, N, F, D);
        }
        if (L->post_mlp_norm_w) rmsnorm_cpu(s->tmp, s->tmp, L->post_mlp_norm_w, 1.0f, N, D, c->norm_eps, NULL);
        if (out->mlp_add && out->mlp_add[l])
            for (size_t i = 0; i < ND; i++) s->tmp[i] += out->mlp_add[l][i];
        copy_hook(out->mlp_out, l, s->tmp, ND);
        for (size_t i = 0; i < ND; i++) s->x[i] += s->tmp[i];
    }
    if (n_run < c->n_layers) return 0;

    if (out->final_hidden || out->logits) {
        float *fh = out->final_hidden ? out->final_hidden : s->xn;
        apply_norm(m, fh, s->x, m->final_norm_w, m->final_norm_b, N, out->final_rstd);
        if (out->logits) {
            matmul_cpu(out->logits, fh, m->lm_head, NULL, N, D, c->vocab_size);
            if (c->final_softcap > 0) softcap_cpu(out->logits, (size_t)N * c->vocab_size, c->final_softcap);
        }
    }
    return 0;
}

typedef struct {
    const float *logits;
    const uint32_t *tokens;
    int B, T, V;
    double *loss;
} LossCtx;

static void loss_rows(void *arg, size_t begin, size_t end) {
    const LossCtx *c = arg;
    for (size_t b = begin; b < end; b++) {
        double sum = 0;
        for (int t = 0; t + 1 < c->T; t++) {
            const float *row = c->logits + (b * c->T + t) * (size_t)c->V;
            float max = row[0];
            for (int i = 1; i < c->V; i++) if (row[i] > max) max = row[i];
            double z = 0;
            for (int i = 0; i < c->V; i++) z += expf(row[i] - max);  // each term in [0, 1]: float exp is exact enough
            sum += log(z) + max - row[c->tokens[b * c->T + t + 1]];
        }
        c->loss[b] = c->T > 1 ? sum / (c->T - 1) : 0;
    }
}

void model_loss(const float *logits, const uint32_t *tokens, int B, int T, int V, double *loss) {
    LossCtx c = {logits, tokens, B, T, V, loss};
    parallel_for((size_t)B, 1, loss_rows, &c);
}
