// model_kv.c — the forward pass of model_forward.c for one sequence with a KV cache: each call
// runs only the new rows (a whole prompt, or one token) and attends over the cached keys and
// values, so generating N tokens costs N small steps instead of N full passes. The steps are
// model_forward's (model_block.h); keys and values are written straight into the cache rows.
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "model_block.h"

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
    if (c->block.rope) {
        // the angle of position t does not depend on the table length: same values as the forward's
        size_t half = (size_t)c->head_dim / 2;
        d->cos_t = xrealloc(d->cos_t, (size_t)cap * half * sizeof(float));
        d->sin_t = xrealloc(d->sin_t, (size_t)cap * half * sizeof(float));
        block_rope_table(d->m, d->cos_t, d->sin_t, cap);
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

int kv_decoder_forward(KVDecoder *d, const uint32_t *tokens, int n, float *logits, Error *e) {
    const Model *m = d->m;
    const ModelConfig *c = &m->cfg;
    int pos = d->pos;
    if (n < 1) return err_set(e, "decode: no tokens to run");
    if (model_check_positions(c, (int64_t)pos + n, "decode", e)) return -1;
    if (block_check_tokens(c, tokens, n, "decode", e)) return -1;
    ensure_cache(d, pos + n);
    ensure_rows(d, n);
    int D = c->d_model, kvd = c->n_kv_heads * c->head_dim, half = c->head_dim / 2;
    size_t ND = (size_t)n * D;
    // rows are positions pos.. : the rope tables from pos, one "sequence" of n rows
    const float *cos_t = d->cos_t ? d->cos_t + (size_t)pos * half : NULL;
    const float *sin_t = d->sin_t ? d->sin_t + (size_t)pos * half : NULL;

    block_embed_cpu(m, d->x, tokens, n, n, pos);  // (n, D)
    for (int l = 0; l < c->n_layers; l++) {
        const LayerWeights *L = &m->layers[l];
        float *kc = d->k[l] + (size_t)pos * kvd, *vc = d->v[l] + (size_t)pos * kvd;  // the new rows' cache
        // attention
        block_norm_cpu(m, d->xn, d->x, L->attn_norm_w, L->attn_norm_b, n, NULL);  // (n, D)
        block_qkv_cpu(m, l, d->q, kc, vc, d->xn, n);  // (n, H*hd), (n, KVH*hd) x2
        block_rope_cpu(m, d->q, kc, cos_t, sin_t, 1, n);
        AttnShape as = block_attn_shape(c, l, 1, n);
        // an empty cache is the plain causal case: the forward's (sgemm) kernel on the cache rows
        if (pos == 0) attention_cpu(d->att, NULL, d->q, d->k[l], d->v[l], &as);  // (n, H*hd)
        else attention_kv_cpu(d->att, d->q, d->k[l], d->v[l], n, pos, &as);
        block_attn_out_cpu(m, l, d->tmp, d->att, n, NULL);  // (n, D)
        block_add_cpu(d->x, d->tmp, ND);
        // MLP
        block_norm_cpu(m, d->xn, d->x, L->mlp_norm_w, L->mlp_norm_b, n, NULL);  // (n, D)
        block_mlp_cpu(m, l, d->tmp, d->xn, d->gate, d->up, n);  // (n, D)
        block_add_cpu(d->x, d->tmp, ND);
    }
    d->pos = pos + n;

    if (logits) {  // only the last row is needed to pick the next token
        block_norm_cpu(m, d->xn, d->x + (size_t)(n - 1) * D, m->final_norm_w, m->final_norm_b, 1, NULL);  // (1, D)
        block_logits_cpu(m, logits, d->xn, 1);  // (1, V)
    }
    return 0;
}
