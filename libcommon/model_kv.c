// model_kv.c — the forward pass of model_forward.c for one sequence with a KV cache: each call
// runs only the new rows (a whole prompt, or one token) and attends over the cached keys and
// values, so generating N tokens costs N small steps instead of N full passes. The kernels are
// model_forward's; keys and values are written straight into the cache rows.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "attention.h"
#include "generate.h"
#include "matmul.h"
#include "norm.h"
#include "rope.h"

struct KVDecoder {
    const Model *m;
    int pos;                 // positions cached
    int cap;                 // positions the cache and rope tables hold
    float **k, **v;          // per layer (cap, KVH*hd)
    float *cos_t, *sin_t;    // (cap, hd/2); NULL for GPT-2
    int rows;                // rows the scratch holds
    float *x, *xn, *q, *att, *tmp, *gate, *up;  // scratch as in ForwardState
};

KVDecoder *kv_decoder_new(const Model *m) {
    KVDecoder *d = xcalloc(1, sizeof *d);
    d->m = m;
    d->k = xcalloc((size_t)m->cfg.n_layers, sizeof(float *));
    d->v = xcalloc((size_t)m->cfg.n_layers, sizeof(float *));
    return d;
}

void kv_decoder_free(KVDecoder *d) {
    if (!d) return;
    for (int l = 0; l < d->m->cfg.n_layers; l++) { free(d->k[l]); free(d->v[l]); }
    free(d->k); free(d->v); free(d->cos_t); free(d->sin_t);
    free(d->x); free(d->xn); free(d->q); free(d->att); free(d->tmp); free(d->gate); free(d->up);
    free(d);
}

void kv_decoder_reset(KVDecoder *d) { d->pos = 0; }
// The rows of positions < pos were computed from the tokens before them only (causal attention),
// so forgetting the later ones leaves exactly the cache a run of the first pos tokens builds.
void kv_decoder_truncate(KVDecoder *d, int pos) {
    if (pos >= 0 && pos < d->pos) d->pos = pos;
}
int kv_decoder_pos(const KVDecoder *d) { return d->pos; }
const Model *kv_decoder_model(const KVDecoder *d) { return d->m; }

// Room for `need` positions: the cache doubles (amortized O(1) per token); cached rows are kept.
static void ensure_cache(KVDecoder *d, int need) {
    if (need <= d->cap) return;
    const ModelConfig *c = &d->m->cfg;
    int cap = d->cap * 2 > need ? d->cap * 2 : need;
    if (cap < 64) cap = 64;
    size_t kvd = (size_t)c->n_kv_heads * c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        d->k[l] = xrealloc(d->k[l], (size_t)cap * kvd * sizeof(float));
        d->v[l] = xrealloc(d->v[l], (size_t)cap * kvd * sizeof(float));
    }
    if (c->arch != ARCH_GPT2) {
        // the angle of position t does not depend on the table length: same values as the forward's
        size_t half = (size_t)c->head_dim / 2;
        d->cos_t = xrealloc(d->cos_t, (size_t)cap * half * sizeof(float));
        d->sin_t = xrealloc(d->sin_t, (size_t)cap * half * sizeof(float));
        RopeParams rp = {c->rope_theta, c->rope_llama3, c->rope_factor, c->rope_low_freq_factor,
                         c->rope_high_freq_factor, c->rope_original_max_pos};
        rope_table(d->cos_t, d->sin_t, cap, c->head_dim, &rp);
    }
    d->cap = cap;
}

static void ensure_rows(KVDecoder *d, int n) {
    if (n <= d->rows) return;
    const ModelConfig *c = &d->m->cfg;
    size_t N = (size_t)n, D = (size_t)c->d_model, qd = (size_t)c->n_heads * c->head_dim, F = (size_t)c->d_ff;
    d->x = xrealloc(d->x, N * D * sizeof(float));
    d->xn = xrealloc(d->xn, N * D * sizeof(float));
    d->tmp = xrealloc(d->tmp, N * D * sizeof(float));
    d->q = xrealloc(d->q, N * qd * sizeof(float));
    d->att = xrealloc(d->att, N * qd * sizeof(float));
    d->gate = xrealloc(d->gate, N * F * sizeof(float));
    d->up = xrealloc(d->up, N * F * sizeof(float));
    d->rows = n;
}

// The norm in front of attention / the MLP / the output, per architecture (as model_forward.c).
static void apply_norm(const Model *m, float *out, const float *x, const float *w, const float *b, int N) {
    const ModelConfig *c = &m->cfg;
    if (c->arch == ARCH_GPT2) layernorm_cpu(out, x, w, b, N, c->d_model, c->norm_eps, NULL);
    else rmsnorm_cpu(out, x, w, c->arch == ARCH_GEMMA2 ? 1.0f : 0.0f, N, c->d_model, c->norm_eps, NULL);
}

int kv_decoder_forward(KVDecoder *d, const uint32_t *tokens, int n, float *logits, Error *e) {
    const Model *m = d->m;
    const ModelConfig *c = &m->cfg;
    int pos = d->pos;
    if (n < 1) return err_set(e, "decode: no tokens to run");
    if (model_check_positions(c, (int64_t)pos + n, "decode", e)) return -1;
    for (int r = 0; r < n; r++)
        if (tokens[r] >= (uint32_t)c->vocab_size)
            return err_set(e, "decode: token id %u >= vocab size %d", tokens[r], c->vocab_size);
    ensure_cache(d, pos + n);
    ensure_rows(d, n);
    int D = c->d_model, F = c->d_ff, H = c->n_heads, KVH = c->n_kv_heads, hd = c->head_dim;
    int qd = H * hd, kvd = KVH * hd, half = hd / 2;
    size_t ND = (size_t)n * D;

    float emb_scale = c->arch == ARCH_GEMMA2 ? sqrtf((float)D) : 1.0f;
    for (int r = 0; r < n; r++) {
        const float *row = m->embed + (size_t)tokens[r] * D;
        float *x = d->x + (size_t)r * D;
        for (int i = 0; i < D; i++) x[i] = row[i] * emb_scale;
        if (m->pos_embed) {
            const float *p = m->pos_embed + (size_t)(pos + r) * D;
            for (int i = 0; i < D; i++) x[i] += p[i];
        }
    }

    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *L = &m->layers[l];
        float *kc = d->k[l] + (size_t)pos * kvd, *vc = d->v[l] + (size_t)pos * kvd;
        apply_norm(m, d->xn, d->x, L->attn_norm_w, L->attn_norm_b, n);
        if (n == 1) {  // one token: the three products as one threaded loop
            MatvecJob qkv[3] = {{d->q, L->wq, L->bq, qd}, {kc, L->wk, L->bk, kvd}, {vc, L->wv, L->bv, kvd}};
            matvec_multi_cpu(d->xn, D, qkv, 3);
        } else {
            matmul_cpu(d->q, d->xn, L->wq, L->bq, n, D, qd);
            matmul_cpu(kc, d->xn, L->wk, L->bk, n, D, kvd);
            matmul_cpu(vc, d->xn, L->wv, L->bv, n, D, kvd);
        }
        if (c->arch != ARCH_GPT2) {
            // rows are positions pos.. : offset the tables, one "sequence" of n rows
            const float *ct = d->cos_t + (size_t)pos * half, *st = d->sin_t + (size_t)pos * half;
            rope_apply_cpu(d->q, ct, st, 1, n, H, hd);
            rope_apply_cpu(kc, ct, st, 1, n, KVH, hd);
        }
        AttnShape as = {1, n, H, KVH, hd, model_attn_scale(c, l), c->attn_softcap,
                        c->layer_sliding[l] ? c->sliding_window : 0};
        // an empty cache is the plain causal case: the forward's (sgemm) kernel on the cache rows
        if (pos == 0) attention_cpu(d->att, NULL, d->q, d->k[l], d->v[l], &as);
        else attention_kv_cpu(d->att, d->q, d->k[l], d->v[l], n, pos, &as);
        matmul_cpu(d->tmp, d->att, L->wo, L->bo, n, qd, D);
        if (L->post_attn_norm_w) rmsnorm_cpu(d->tmp, d->tmp, L->post_attn_norm_w, 1.0f, n, D, c->norm_eps, NULL);
        for (size_t i = 0; i < ND; i++) d->x[i] += d->tmp[i];

        apply_norm(m, d->xn, d->x, L->mlp_norm_w, L->mlp_norm_b, n);
        if (c->arch == ARCH_GPT2) {
            matmul_cpu(d->up, d->xn, L->w_up, L->b_up, n, D, F);
            gelu_tanh_cpu(d->up, (size_t)n * F);
            matmul_cpu(d->tmp, d->up, L->w_down, L->b_down, n, F, D);
        } else {
            if (n == 1) {
                MatvecJob gu[2] = {{d->gate, L->w_gate, NULL, F}, {d->up, L->w_up, NULL, F}};
                matvec_multi_cpu(d->xn, D, gu, 2);
            } else {
                matmul_cpu(d->gate, d->xn, L->w_gate, NULL, n, D, F);
                matmul_cpu(d->up, d->xn, L->w_up, NULL, n, D, F);
            }
            gated_act_cpu(d->up, d->gate, d->up, (size_t)n * F, c->arch == ARCH_GEMMA2 ? ACT_GELU_TANH : ACT_SILU);
            matmul_cpu(d->tmp, d->up, L->w_down, NULL, n, F, D);
        }
        if (L->post_mlp_norm_w) rmsnorm_cpu(d->tmp, d->tmp, L->post_mlp_norm_w, 1.0f, n, D, c->norm_eps, NULL);
        for (size_t i = 0; i < ND; i++) d->x[i] += d->tmp[i];
    }
    d->pos = pos + n;

    if (logits) {  // only the last row is needed to pick the next token
        const float *last = d->x + (size_t)(n - 1) * D;
        apply_norm(m, d->xn, last, m->final_norm_w, m->final_norm_b, 1);
        matmul_cpu(logits, d->xn, m->lm_head, NULL, 1, D, c->vocab_size);
        if (c->final_softcap > 0) softcap_cpu(logits, (size_t)c->vocab_size, c->final_softcap);
    }
    return 0;
}
