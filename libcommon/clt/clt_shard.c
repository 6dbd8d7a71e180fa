// clt_shard.c — see clt_shard.h. The math is clt.c's, run on each rank's slice; this file adds
// the collectives around it and the mapping between slices and the full layout.
#include "clt_shard.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int clt_shard_init(CltShard *s, const Comm *c, int L, int d, int F, Error *e) {
    memset(s, 0, sizeof *s);
    if (F % c->size)
        return err_set(
            e, "--features %d is not divisible by the %d ranks (each rank owns F/ranks features of every layer)", F,
            c->size);
    s->comm = c;
    s->L = L;
    s->d = d;
    s->F = F;
    s->F_local = F / c->size;
    s->first = c->rank * s->F_local;
    s->zeros = xcalloc((size_t)d, sizeof(float));
    s->zero_bias = xmalloc((size_t)L * sizeof(float *));
    for (int l = 0; l < L; l++) s->zero_bias[l] = s->zeros;
    return 0;
}

void clt_shard_free(CltShard *s) {
    free(s->zeros);
    free(s->zero_bias);
    memset(s, 0, sizeof *s);
}

// A slice of clt.c's initialization stream (see clt_splitmix64).
static void fill_uniform(float *dst, size_t n, uint64_t seed, uint64_t first_draw, float bound) {
    uint64_t st = seed + first_draw * 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < n; i++) dst[i] = clt_uniform_pm(&st, bound);
}

void clt_shard_init_random(const CltShard *s, CltParams *p, uint64_t seed, float theta0) {
    int L = s->L, d = s->d;
    uint64_t F = (uint64_t)s->F, Fl = (uint64_t)s->F_local, first = (uint64_t)s->first;
    float enc_bound = 1.0f / sqrtf((float)s->F), dec_bound = 1.0f / sqrtf((float)L * d);
    uint64_t at = 0;  // draws of the full CLT before layer l: W_enc (F·d) then W_dec (F·(L−l)·d) per layer
    for (int l = 0; l < L; l++) {
        uint64_t row = (uint64_t)(L - l) * d;
        fill_uniform(p->W_enc[l], Fl * d, seed, at + first * d, enc_bound);
        fill_uniform(p->W_dec[l], Fl * row, seed, at + F * d + first * row, dec_bound);
        at += F * d + F * row;
        for (uint64_t i = 0; i < Fl; i++) {
            p->b_enc[l][i] = 0;
            p->log_theta[l][i] = logf(theta0);
        }
        memset(p->b_dec[l], 0, (size_t)d * sizeof(float));
    }
}

// TopK modes: layer l's cutoffs over every rank's features. Each rank's K best per group are
// gathered on rank 0, which takes the K best of the union and broadcasts the cutoffs (the union's
// K best are the full layer's K best, so R ranks select exactly what one rank would).
static int shard_topk_cutoffs(const CltShard *s, CltWork *w, int l, float *cut, Error *e) {
    const Comm *c = s->comm;
    size_t G = clt_topk_groups(w), n = G * clt_topk_candidates_per_group(w);
    float *cand = xmalloc(n * sizeof(float)), *all = c->rank == 0 ? xmalloc(n * (size_t)c->size * sizeof(float)) : NULL;
    clt_topk_candidates(w, l, cand);
    int rc = comm_gatherv_f32(c, cand, n, all, 0, e);
    if (!rc && c->rank == 0) clt_topk_cutoffs(w, all, c->size, cut);
    if (!rc) rc = comm_bcast(c, cut, G * sizeof(float), 0, e);
    free(cand);
    free(all);
    return rc;
}

int clt_shard_forward(const CltShard *s, const CltParams *p, float *const *x, int B, CltWork *w, Error *e) {
    if (s->comm->size == 1) {
        clt_forward(p, x, B, w);
        return 0;
    }
    // the partial ŷ: this rank's features decoded on a view of p whose b_dec is zero (0 + Σ is exact)
    CltParams q = *p;
    q.b_dec = s->zero_bias;
    clt_encode(&q, x, B, w);
    float *cut = w->act == CLT_JUMPRELU ? NULL : xmalloc(clt_topk_groups(w) * sizeof(float));
    for (int l = 0; l < s->L; l++) {
        if (cut && shard_topk_cutoffs(s, w, l, cut, e)) {
            free(cut);
            return err_prefix(e, "forward");
        }
        clt_select(w, l, cut);
    }
    free(cut);
    clt_decode(&q, w);
    for (int k = 0; k < s->L; k++) {
        if (comm_allreduce_sum_f32(s->comm, w->yhat[k], (size_t)B * s->d, e)) return err_prefix(e, "forward");
        for (int t = 0; t < B; t++) {
            float *yo = w->yhat[k] + (size_t)t * s->d;
            for (int j = 0; j < s->d; j++) yo[j] += p->b_dec[k][j];
        }
    }
    return 0;
}

int clt_shard_loss(const CltShard *s, const CltParams *p, float *const *y, const CltLossParams *lp, CltWork *w,
                   CltLossTerms *out, Error *e) {
    CltLossTerms t = clt_loss(p, y, lp, w);  // mse: from the summed ŷ; the rest: this rank's features
    if (s->comm->size > 1) {
        double v[4] = {t.sparsity, t.preact, t.l0, t.window};
        if (comm_allreduce_sum_f64(s->comm, v, 4, e)) return err_prefix(e, "loss");
        t.sparsity = v[0];
        t.preact = v[1];
        t.l0 = v[2];
        t.window = v[3];
        t.total = t.mse + t.sparsity + t.preact;
    }
    *out = t;
    return 0;
}

// The sharded tensors of layer l in a CltParams view: (pointer, floats per feature).
static int sharded_tensors(const CltParams *v, int l, float **ptr, size_t *per_feature) {
    ptr[0] = v->W_enc[l], per_feature[0] = (size_t)v->d;
    ptr[1] = v->b_enc[l], per_feature[1] = 1;
    ptr[2] = v->log_theta[l], per_feature[2] = 1;
    ptr[3] = v->W_dec[l], per_feature[3] = (size_t)(v->L - l) * v->d;
    return 4;
}

// Features are rows, so rank r's rows of every tensor are one contiguous block at row `first`:
// gathering the blocks in rank order rebuilds each tensor.
static int shard_move(const CltShard *s, float *local, float *full, int to_root, Error *e) {
    const Comm *c = s->comm;
    CltParams lv, fv;
    clt_params_init(&lv, s->L, s->d, s->F_local, local);
    if (c->rank == 0) clt_params_init(&fv, s->L, s->d, s->F, full);
    int rc = 0;
    for (int l = 0; l < s->L && !rc; l++) {
        float *lp[4], *fp[4] = {0};
        size_t per[4];
        int nt = sharded_tensors(&lv, l, lp, per);
        if (c->rank == 0) sharded_tensors(&fv, l, fp, per);
        for (int i = 0; i < nt && !rc; i++) {
            size_t n = (size_t)s->F_local * per[i];
            rc = to_root ? comm_gatherv_f32(c, lp[i], n, fp[i], 0, e) : comm_scatterv_f32(c, fp[i], lp[i], n, 0, e);
        }
        if (rc) break;
        size_t bd = (size_t)s->d * sizeof(float);
        if (to_root) {
            if (c->rank == 0) memcpy(fv.b_dec[l], lv.b_dec[l], bd);
        } else {
            if (c->rank == 0) memcpy(lv.b_dec[l], fv.b_dec[l], bd);
            rc = comm_bcast(c, lv.b_dec[l], bd, 0, e);
        }
    }
    clt_params_free(&lv);
    if (c->rank == 0) clt_params_free(&fv);
    return rc ? err_prefix(e, to_root ? "gathering the shards" : "scattering the shards") : 0;
}

int clt_shard_gather(const CltShard *s, const float *local, float *full, Error *e) {
    return shard_move(s, (float *)local, full, 1, e);  // local is only read
}

int clt_shard_scatter(const CltShard *s, const float *full, float *local, Error *e) {
    return shard_move(s, local, (float *)full, 0, e);  // full is only read
}
