#include "attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"  // xmalloc: a context too big for memory is a clear error, not a NULL write
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
            const float *kb = c->k + ((size_t)b * T * s->KVH + kvh) * hd, *vb = c->v + ((size_t)b * T * s->KVH + kvh) * hd;
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

#include "matmul.h"

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
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, s->scale, qh, H * hd, kh, KVH * hd, 0.0f, scores, T);
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
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, scores, T, vh, KVH * hd, 0.0f, oh, H * hd);
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
        attend_row(o, scores, qi, c->k + (size_t)kvh * hd, c->v + (size_t)kvh * hd, (size_t)KVH * hd, j0, i, hd, s->scale,
                   s->softcap);
    }
    free(scores);
}

void attention_kv_cpu(float *out, const float *q, const float *k, const float *v, int n, int pos0, const AttnShape *s) {
    KvAttnCtx c = {out, q, k, v, n, pos0, s};
    // a decode step over a short cache is a few microseconds: threads only pay off for long ones
    size_t work = (size_t)(pos0 + n) * s->hd * 2, min_items = ((size_t)1 << 20) / work;
    parallel_for((size_t)n * s->H, min_items ? min_items : 1, attention_kv_rows, &c);
}
