// model_block.c — the CPU steps of the transformer block (model_block.h): each reads the model's
// BlockSpec and calls the kernels (kernels/: matmul, norm, rope, attention, act).
#include "model_block.h"

#include <string.h>

#include "act.h"
#include "matmul.h"
#include "norm.h"
#include "rope.h"

int block_check_tokens(const ModelConfig *c, const uint32_t *tokens, int64_t n, const char *what, Error *e) {
    for (int64_t r = 0; r < n; r++)
        if (tokens[r] >= (uint32_t)c->vocab_size)
            return err_set(e, "%s: token id %u >= vocab size %d", what, tokens[r], c->vocab_size);
    return 0;
}

void block_embed_cpu(const Model *m, float *x, const uint32_t *tokens, int N, int T, int pos0) {
    int D = m->cfg.d_model;
    float scale = m->cfg.block.embed_scale;
    for (int r = 0; r < N; r++) {
        const float *row = m->embed + (size_t)tokens[r] * D;
        float *xr = x + (size_t)r * D;
        for (int i = 0; i < D; i++) xr[i] = row[i] * scale;
        if (m->pos_embed) {
            const float *p = m->pos_embed + (size_t)(pos0 + r % T) * D;
            for (int i = 0; i < D; i++) xr[i] += p[i];
        }
    }
}

void block_norm_cpu(const Model *m, float *out, const float *x, const float *w, const float *b, int N, float *rstd) {
    const NormSpec *n = &m->cfg.block.norm;
    if (n->kind == NORM_LAYER) layernorm_cpu(out, x, w, b, N, m->cfg.d_model, n->eps, rstd);
    else rmsnorm_cpu(out, x, w, n->weight_offset, N, m->cfg.d_model, n->eps, rstd);
}

void block_qkv_cpu(const Model *m, int l, float *q, float *k, float *v, const float *xn, int N) {
    const ModelConfig *c = &m->cfg;
    const LayerWeights *L = &m->layers[l];
    int D = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    if (N == 1) {  // one token (a decoding step): the three products as one threaded loop
        MatvecJob jobs[3] = {{q, L->wq, L->bq, qd}, {k, L->wk, L->bk, kvd}, {v, L->wv, L->bv, kvd}};
        matvec_multi_cpu(xn, D, jobs, 3);
        return;
    }
    matmul_cpu(q, xn, L->wq, L->bq, N, D, qd);
    matmul_cpu(k, xn, L->wk, L->bk, N, D, kvd);
    matmul_cpu(v, xn, L->wv, L->bv, N, D, kvd);
}

void block_rope_cpu(const Model *m, float *q, float *k, const float *cos_t, const float *sin_t, int B, int T) {
    const ModelConfig *c = &m->cfg;
    if (!c->block.rope) return;
    rope_apply_cpu(q, cos_t, sin_t, B, T, c->n_heads, c->head_dim);
    rope_apply_cpu(k, cos_t, sin_t, B, T, c->n_kv_heads, c->head_dim);
}

int block_rope_table(const Model *m, float *cos_t, float *sin_t, int T) {
    const ModelConfig *c = &m->cfg;
    if (!c->block.rope) return 0;
    rope_table(cos_t, sin_t, T, c->head_dim, &c->block.rope_params);
    return 1;
}

AttnShape block_attn_shape(const ModelConfig *c, int l, int B, int T) {
    const LayerSpec *ls = &c->block.layer[l];
    return (AttnShape){B, T, c->n_heads, c->n_kv_heads, c->head_dim, ls->attn_scale, c->block.attn_softcap, ls->window};
}

void block_attn_out_cpu(const Model *m, int l, float *tmp, const float *att, int N, float *post_rstd) {
    const ModelConfig *c = &m->cfg;
    const LayerWeights *L = &m->layers[l];
    matmul_cpu(tmp, att, L->wo, L->bo, N, c->n_heads * c->head_dim, c->d_model);
    if (c->block.post_attn_norm) block_norm_cpu(m, tmp, tmp, L->post_attn_norm_w, NULL, N, post_rstd);
}

void block_mlp_cpu(const Model *m, int l, float *out, const float *xn, float *gate, float *up, int N) {
    const ModelConfig *c = &m->cfg;
    const LayerWeights *L = &m->layers[l];
    int D = c->d_model, F = c->d_ff;
    size_t NF = (size_t)N * F;
    if (c->block.mlp == MLP_PLAIN) {
        matmul_cpu(up, xn, L->w_up, L->b_up, N, D, F);
        gelu_tanh_cpu(up, NF);  // the only activation model_describe gives a plain MLP
        matmul_cpu(out, up, L->w_down, L->b_down, N, F, D);
    } else {
        if (N == 1) {  // one token: both products as one threaded loop
            MatvecJob jobs[2] = {{gate, L->w_gate, NULL, F}, {up, L->w_up, NULL, F}};
            matvec_multi_cpu(xn, D, jobs, 2);
        } else {
            matmul_cpu(gate, xn, L->w_gate, NULL, N, D, F);
            matmul_cpu(up, xn, L->w_up, NULL, N, D, F);
        }
        gated_act_cpu(up, gate, up, NF, c->block.act);
        matmul_cpu(out, up, L->w_down, NULL, N, F, D);
    }
    if (c->block.post_mlp_norm) block_norm_cpu(m, out, out, L->post_mlp_norm_w, NULL, N, NULL);
}

void block_add_cpu(float *x, const float *t, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += t[i];
}

void block_logits_cpu(const Model *m, float *logits, const float *h, int N) {
    const ModelConfig *c = &m->cfg;
    matmul_cpu(logits, h, m->lm_head, NULL, N, c->d_model, c->vocab_size);
    if (c->block.final_softcap > 0) softcap_cpu(logits, (size_t)N * c->vocab_size, c->block.final_softcap);
}
