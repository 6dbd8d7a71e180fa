// model_forward.c — the CPU forward pass of model.h, batched: B sequences of T tokens, rows
// batch-major (N = B*T), with every hook of ForwardOutputs. The block's steps are model_block.h's,
// shared with the KV-cache decoder (model_kv.c); libcommon/model/model_forward_cuda.cu is the CUDA twin.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "model_block.h"
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
    if (c->block.rope) {
        s->cos_t = xmalloc((size_t)T * c->head_dim / 2 * sizeof(float));
        s->sin_t = xmalloc((size_t)T * c->head_dim / 2 * sizeof(float));
        block_rope_table(m, s->cos_t, s->sin_t, T);
    }
    return s;
}

void forward_state_free(ForwardState *s) {
    if (!s) return;
    free(s->x); free(s->xn); free(s->q); free(s->k); free(s->v); free(s->att); free(s->tmp);
    free(s->gate); free(s->up); free(s->cos_t); free(s->sin_t);
    free(s);
}

static void copy_hook(float **hooks, int l, const float *src, size_t n) {
    if (hooks && hooks[l]) memcpy(hooks[l], src, n * sizeof(float));
}

static float *layer_out(float **outs, int l) { return outs ? outs[l] : NULL; }

int model_forward(const Model *m, ForwardState *s, const uint32_t *tokens, int B, int T, ForwardOutputs *out,
                  Error *e) {
    const ModelConfig *c = &m->cfg;
    if (B > s->B || T != s->T) return err_set(e, "forward: state built for %dx%d, called with %dx%d", s->B, s->T, B, T);
    if (model_check_positions(c, T, "forward", e)) return -1;
    int N = B * T;
    size_t ND = (size_t)N * c->d_model;
    int n_run = out->n_run_layers > 0 && out->n_run_layers < c->n_layers ? out->n_run_layers : c->n_layers;
    if (block_check_tokens(c, tokens, N, "forward", e)) return -1;

    block_embed_cpu(m, s->x, tokens, N, T, 0);  // (N, D)
    for (int l = 0; l < n_run; l++) {
        const LayerWeights *L = &m->layers[l];
        copy_hook(out->resid_pre, l, s->x, ND);
        // attention
        block_norm_cpu(m, s->xn, s->x, L->attn_norm_w, L->attn_norm_b, N, layer_out(out->attn_rstd, l));  // (N, D)
        block_qkv_cpu(m, l, s->q, s->k, s->v, s->xn, N);  // (N, H*hd), (N, KVH*hd), (N, KVH*hd)
        block_rope_cpu(m, s->q, s->k, s->cos_t, s->sin_t, B, T);
        AttnShape as = block_attn_shape(c, l, B, T);
        attention_cpu(s->att, layer_out(out->attn_probs, l), s->q, s->k, s->v, &as);  // (N, H*hd); probs (B, H, T, T)
        block_attn_out_cpu(m, l, s->tmp, s->att, N, layer_out(out->post_attn_rstd, l));  // (N, D)
        block_add_cpu(s->x, s->tmp, ND);
        copy_hook(out->resid_mid, l, s->x, ND);
        // MLP
        block_norm_cpu(m, s->xn, s->x, L->mlp_norm_w, L->mlp_norm_b, N, layer_out(out->mlp_rstd, l));  // (N, D)
        copy_hook(out->mlp_in, l, s->xn, ND);
        block_mlp_cpu(m, l, s->tmp, s->xn, s->gate, s->up, N);  // (N, D)
        if (out->mlp_add && out->mlp_add[l]) block_add_cpu(s->tmp, out->mlp_add[l], ND);
        copy_hook(out->mlp_out, l, s->tmp, ND);
        block_add_cpu(s->x, s->tmp, ND);
    }
    if (n_run < c->n_layers) return 0;

    if (out->final_hidden || out->logits) {
        float *fh = out->final_hidden ? out->final_hidden : s->xn;
        block_norm_cpu(m, fh, s->x, m->final_norm_w, m->final_norm_b, N, out->final_rstd);  // (N, D)
        if (out->logits) block_logits_cpu(m, out->logits, fh, N);  // (N, V)
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
