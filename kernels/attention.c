#include "attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"  // xmalloc: a context too big for memory is a clear error, not a NULL write
#include "matmul.h"
#include "threads.h"

typedef struct {
    float *out, *probs;
    const float *q, *k, *v;
    const AttnShape *s;
} AttnCtx;

// One query row: scores against keys j0..i (k_row(j) = k + j * k_stride), soft-cap, softmax,
// and the weighted sum of values into o (hd). scores (i+1,) receives the probabilities.
static void attend_row(float *o, float *scores, const float *qi, const float *k, const float *v, size_t kv_stride,
                       int j0, int i, int hd, float scale, float softcap) {
    float max = -INFINITY;
    for (int j = j0; j <= i; j++) {
        const float *kj = k + (size_t)j * kv_stride;
        float dot = 0;
        for (int d = 0; d < hd; d++) dot += qi[d] * kj[d];
        dot *= scale;
        if (softcap > 0) dot = softcap * tanhf(dot / softcap);
        scores[j] = dot;
        if (dot > max) max = dot;
    }
    float sum = 0;
    for (int j = j0; j <= i; j++) {
        scores[j] = expf(scores[j] - max);
        sum += scores[j];
    }
    float inv = 1.0f / sum;
    memset(o, 0, (size_t)hd * sizeof(float));
    for (int j = j0; j <= i; j++) {
        float p = scores[j] * inv;
        const float *vj = v + (size_t)j * kv_stride;
        for (int d = 0; d < hd; d++) o[d] += p * vj[d];
        scores[j] = p;
    }
}

// One (batch, head) pair per item: rows of that head are independent of every other head.
static void attention_heads(void *arg, size_t begin, size_t end) {
    const AttnCtx *c = arg;
    const AttnShape *s = c->s;
    int T = s->T, hd = s->hd, n_rep = s->H / s->KVH;
    float *scores = xmalloc((size_t)T * sizeof(float));
    for (size_t item = begin; item < end; item++) {
        int b = (int)(item / (size_t)s->H), h = (int)(item % (size_t)s->H), kvh = h / n_rep;
        for (int i = 0; i < T; i++) {
            const float *qi = c->q + (((size_t)b * T + i) * s->H + h) * hd;
            int j0 = s->window > 0 && i - s->window + 1 > 0 ? i - s->window + 1 : 0;
            float *o = c->out + (((size_t)b * T + i) * s->H + h) * hd;
            const float *kb = c->k + ((size_t)b * T * s->KVH + kvh) * hd,
                        *vb = c->v + ((size_t)b * T * s->KVH + kvh) * hd;
            attend_row(o, scores, qi, kb, vb, (size_t)s->KVH * hd, j0, i, hd, s->scale, s->softcap);
            if (c->probs) {
                float *row = c->probs + (((size_t)b * s->H + h) * T + i) * T;
                memset(row, 0, (size_t)T * sizeof(float));
                for (int j = j0; j <= i; j++) row[j] = scores[j];
            }
        }
    }
    free(scores);
}

void attention_naive_cpu(float *out, float *probs, const float *q, const float *k, const float *v, const AttnShape *s) {
    AttnCtx c = {out, probs, q, k, v, s};
    parallel_for((size_t)s->B * s->H, 1, attention_heads, &c);
}

#ifdef USE_BLAS
#include <cblas.h>

typedef struct {
    float *out, *probs;
    const float *q, *k, *v;
    const AttnShape *s;
} BlasAttnCtx;

// One (batch, head) per item: S = scale·Q Kᵀ (sgemm on strided views; the masked upper triangle
// is computed and discarded — BLAS at twice the work is still far faster than a scalar loop),
// softcap + mask + softmax per row, then O = P V (sgemm).
static void attention_heads_blas(void *arg, size_t begin, size_t end) {
    const BlasAttnCtx *c = arg;
    const AttnShape *s = c->s;
    int T = s->T, H = s->H, KVH = s->KVH, hd = s->hd, n_rep = H / KVH;
    float *scores = xmalloc((size_t)T * T * sizeof(float));
    for (size_t item = begin; item < end; item++) {
        int b = (int)(item / (size_t)H), h = (int)(item % (size_t)H), kvh = h / n_rep;
        const float *qh = c->q + (size_t)b * T * H * hd + (size_t)h * hd;
        const float *kh = c->k + (size_t)b * T * KVH * hd + (size_t)kvh * hd;
        const float *vh = c->v + (size_t)b * T * KVH * hd + (size_t)kvh * hd;
        float *oh = c->out + (size_t)b * T * H * hd + (size_t)h * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, s->scale, qh, H * hd, kh, KVH * hd, 0.0f, scores,
                    T);
        for (int i = 0; i < T; i++) {
            float *row = scores + (size_t)i * T;
            int j0 = s->window > 0 && i - s->window + 1 > 0 ? i - s->window + 1 : 0;
            float max = -INFINITY;
            for (int j = j0; j <= i; j++) {
                if (s->softcap > 0) row[j] = s->softcap * tanhf(row[j] / s->softcap);
                if (row[j] > max) max = row[j];
            }
            float sum = 0;
            for (int j = j0; j <= i; j++) {
                row[j] = expf(row[j] - max);
                sum += row[j];
            }
            float inv = 1.0f / sum;
            for (int j = 0; j < T; j++) row[j] = j >= j0 && j <= i ? row[j] * inv : 0.0f;
        }
        if (c->probs) memcpy(c->probs + ((size_t)b * H + h) * T * T, scores, (size_t)T * T * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, scores, T, vh, KVH * hd, 0.0f, oh,
                    H * hd);
    }
    free(scores);
}

void attention_cpu(float *out, float *probs, const float *q, const float *k, const float *v, const AttnShape *s) {
    matmul_blas_init();
    BlasAttnCtx c = {out, probs, q, k, v, s};
    parallel_for((size_t)s->B * s->H, 1, attention_heads_blas, &c);
}
#else
void attention_cpu(float *out, float *probs, const float *q, const float *k, const float *v, const AttnShape *s) {
    attention_naive_cpu(out, probs, q, k, v, s);
}
#endif

typedef struct {
    float *out;
    const float *q, *k, *v;
    int n, pos0;
    const AttnShape *s;
} KvAttnCtx;

// One (query row, head) per item; the row's scores live in a buffer of pos0+n floats.
static void attention_kv_rows(void *arg, size_t begin, size_t end) {
    const KvAttnCtx *c = arg;
    const AttnShape *s = c->s;
    int H = s->H, KVH = s->KVH, hd = s->hd, n_rep = H / KVH;
    float *scores = xmalloc((size_t)(c->pos0 + c->n) * sizeof(float));
    for (size_t item = begin; item < end; item++) {
        int r = (int)(item / (size_t)H), h = (int)(item % (size_t)H), kvh = h / n_rep;
        int i = c->pos0 + r;  // absolute position of this query
        int j0 = s->window > 0 && i - s->window + 1 > 0 ? i - s->window + 1 : 0;
        const float *qi = c->q + ((size_t)r * H + h) * hd;
        float *o = c->out + ((size_t)r * H + h) * hd;
        attend_row(o, scores, qi, c->k + (size_t)kvh * hd, c->v + (size_t)kvh * hd, (size_t)KVH * hd, j0, i, hd,
                   s->scale, s->softcap);
    }
    free(scores);
}

void attention_kv_cpu(float *out, const float *q, const float *k, const float *v, int n, int pos0, const AttnShape *s) {
    KvAttnCtx c = {out, q, k, v, n, pos0, s};
    // a decode step over a short cache is a few microseconds: threads only pay off for long ones
    size_t work = (size_t)(pos0 + n) * s->hd * 2, min_items = ((size_t)1 << 20) / work;
    parallel_for((size_t)n * s->H, min_items ? min_items : 1, attention_kv_rows, &c);
}

// ---- the pattern recomputed in blocks --------------------------------------------------------

// Scores of head h: sc (ni, nj) row stride ldc = softcap(scale · q_i·k_j) for queries
// [i0, i0+ni), keys [j0, j0+nj); -INFINITY where masked (j > i, or j ≤ i − window).
static void scores_block(float *sc, int ldc, const float *q, const float *k, const AttnShape *s, int h, int i0, int ni,
                         int j0, int nj) {
    int H = s->H, KVH = s->KVH, hd = s->hd;
    const float *qh = q + (size_t)i0 * H * hd + (size_t)h * hd;
    const float *kh = k + (size_t)j0 * KVH * hd + (size_t)(h / (H / KVH)) * hd;
    gemm_serial_cpu(0, 1, ni, nj, hd, qh, H * hd, kh, KVH * hd, 0.0f, sc, ldc);
    for (int r = 0; r < ni; r++) {
        int i = i0 + r;
        float *row = sc + (size_t)r * ldc;
        for (int c = 0; c < nj; c++) {
            int j = j0 + c;
            if (j > i || (s->window > 0 && j <= i - s->window)) {
                row[c] = -INFINITY;
                continue;
            }
            float v = row[c] * s->scale;
            row[c] = s->softcap > 0 ? s->softcap * tanhf(v / s->softcap) : v;
        }
    }
}

enum { STATS_ROWS = 32 };

typedef struct {
    float *row_max, *row_inv;
    const float *q, *k;
    const AttnShape *s;
} StatsCtx;

// Items are (head, block of STATS_ROWS query rows); each row's scores against every key it sees.
static void stats_items(void *arg, size_t begin, size_t end) {
    const StatsCtx *c = arg;
    const AttnShape *s = c->s;
    int T = s->T, nb = (T + STATS_ROWS - 1) / STATS_ROWS;
    float *sc = xmalloc((size_t)STATS_ROWS * T * sizeof(float));
    for (size_t item = begin; item < end; item++) {
        int h = (int)(item / (size_t)nb), i0 = (int)(item % (size_t)nb) * STATS_ROWS;
        int ni = T - i0 < STATS_ROWS ? T - i0 : STATS_ROWS, nj = i0 + ni;
        scores_block(sc, nj, c->q, c->k, s, h, i0, ni, 0, nj);
        for (int r = 0; r < ni; r++) {
            const float *row = sc + (size_t)r * nj;
            int i = i0 + r, j0 = s->window > 0 && i - s->window + 1 > 0 ? i - s->window + 1 : 0;
            float max = -INFINITY, sum = 0;
            for (int j = j0; j <= i; j++) max = row[j] > max ? row[j] : max;
            for (int j = j0; j <= i; j++) sum += expf(row[j] - max);  // in order, as attention_cpu sums
            c->row_max[(size_t)h * T + i] = max;
            c->row_inv[(size_t)h * T + i] = 1.0f / sum;
        }
    }
    free(sc);
}

void attention_row_stats_cpu(float *row_max, float *row_inv, const float *q, const float *k, const AttnShape *s) {
    matmul_blas_init();
    StatsCtx c = {row_max, row_inv, q, k, s};
    parallel_for((size_t)s->H * ((s->T + STATS_ROWS - 1) / STATS_ROWS), 1, stats_items, &c);
}

void attention_probs_block_cpu(float *p, int ldp, const float *q, const float *k, const float *row_max,
                               const float *row_inv, const AttnShape *s, int h, int i0, int ni, int j0, int nj) {
    if (ni <= 0 || nj <= 0) return;
    scores_block(p, ldp, q, k, s, h, i0, ni, j0, nj);
    for (int r = 0; r < ni; r++) {
        float *row = p + (size_t)r * ldp, mx = row_max[(size_t)h * s->T + i0 + r];
        float inv = row_inv[(size_t)h * s->T + i0 + r];
        for (int c = 0; c < nj; c++) row[c] = expf(row[c] - mx) * inv;  // exp(-inf) = 0 where masked
    }
}
