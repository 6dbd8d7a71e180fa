// attrib_vjp.c — CPU reference of kernels/attrib_vjp.h.
#include "attrib_vjp.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "matmul.h"
#include "threads.h"


// Pattern tiles: JB keys (output rows) × IB queries; the GEMM per tile is (JB × cols × IB).
enum { PAT_JB = 64, PAT_IB = 256 };

typedef struct {
    float *y;
    const float *x;
    const AttribPattern *p;
    int h, Te, cols, nb;
    float beta;
} PatternCtx;

// Key block b: y[j0, j0+nj) = beta·y + Σ over query tiles i ≥ j0 of P[tile, block]ᵀ x[tile].
static void pattern_block(const PatternCtx *c, int b, float *pt) {
    const AttnShape *s = &c->p->shape;
    int j0 = b * PAT_JB, nj = c->Te - j0 < PAT_JB ? c->Te - j0 : PAT_JB, i_end = c->Te;
    // query i sees key j iff i < j + window
    if (s->window > 0 && j0 + nj - 1 + s->window < i_end) i_end = j0 + nj - 1 + s->window;
    float beta = c->beta, *yb = c->y + (size_t)j0 * c->cols;
    for (int i0 = j0; i0 < i_end; i0 += PAT_IB) {
        int ni = i_end - i0 < PAT_IB ? i_end - i0 : PAT_IB;
        attention_probs_block_cpu(pt, nj, c->p->q, c->p->k, c->p->row_max, c->p->row_inv, s, c->h, i0, ni, j0, nj);
        gemm_serial_cpu(1, 0, nj, c->cols, ni, pt, nj, c->x + (size_t)i0 * c->cols, c->cols, beta, yb, c->cols);
        beta = 1.0f;
    }
}

// Item t takes key blocks t and nb − 1 − t: early keys are read by many queries, late ones by few,
// so every item costs about the same.
static void pattern_items(void *arg, size_t begin, size_t end) {
    const PatternCtx *c = arg;
    float *pt = xmalloc((size_t)PAT_IB * PAT_JB * sizeof(float));
    for (size_t t = begin; t < end; t++) {
        pattern_block(c, (int)t, pt);
        if ((int)t != c->nb - 1 - (int)t) pattern_block(c, c->nb - 1 - (int)t, pt);
    }
    free(pt);
}

void attrib_pattern_t_cpu(float *y, const float *x, const AttribPattern *p, int h, int Te, int cols, float beta) {
    if (Te <= 0 || cols <= 0) return;
    matmul_blas_init();
    int nb = (Te + PAT_JB - 1) / PAT_JB;
    PatternCtx c = {y, x, p, h, Te, cols, nb, beta};
    size_t items = (size_t)(nb + 1) / 2;
    parallel_for(items, (size_t)Te * Te * (size_t)cols < ((size_t)1 << 22) ? items : 1, pattern_items, &c);
}

typedef struct {
    float *out;
    const float *g, *w, *rstd;
    float w_off;
    int centered, B, D, accumulate;
} NormCtx;

static void norm_rows(void *arg, size_t begin, size_t end) {
    const NormCtx *c = arg;
    for (size_t r = begin; r < end; r++) {
        const float *g = c->g + r * (size_t)c->D;
        float *o = c->out + r * (size_t)c->D;
        float s = c->rstd[r / (size_t)c->B];  // row r is (position r / B, batch element r % B)
        float mean = 0;
        if (c->centered) {
            double sum = 0;
            for (int i = 0; i < c->D; i++) sum += (double)g[i] * (c->w_off + c->w[i]);
            mean = (float)(sum / c->D);
        }
        for (int i = 0; i < c->D; i++) {
            float v = (g[i] * (c->w_off + c->w[i]) - mean) * s;
            o[i] = c->accumulate ? o[i] + v : v;
        }
    }
}

void attrib_norm_vjp_cpu(float *out, const float *g, const float *w, float w_off, int centered, const float *rstd,
                         int B, int Te, int D, int accumulate) {
    NormCtx c = {out, g, w, rstd, w_off, centered, B, D, accumulate};
    parallel_for((size_t)B * Te, 64, norm_rows, &c);
}

typedef struct {
    float *rows;
    int64_t ld;
    const int64_t *off, *row;
    const int32_t *col;
    const float *base, *act, *g;
    int B, Te, D;
} DecDotsCtx;

static void decoder_positions(void *arg, size_t begin, size_t end) {
    const DecDotsCtx *c = arg;
    float *vecs = NULL, *scratch = NULL;
    size_t cap = 0;
    for (size_t p = begin; p < end; p++) {
        int64_t s0 = c->off[p], n = c->off[p + 1] - s0;
        if (!n) continue;
        if ((size_t)n > cap) {
            cap = (size_t)n;
            free(vecs);
            free(scratch);
            vecs = xmalloc(cap * c->D * sizeof(float));
            scratch = xmalloc(cap * c->B * sizeof(float));
        }
        // the position's source vectors gathered (1/B of the product's work), then
        // scratch (B, n) = g[p] (B, D) · vecsᵀ
        for (int64_t s = 0; s < n; s++) {
            const float *r = c->base + c->row[s0 + s];
            float a = c->act[s0 + s], *v = vecs + (size_t)s * c->D;
            for (int i = 0; i < c->D; i++) v[i] = r[i] * a;
        }
        gemm_serial_cpu(0, 1, c->B, (int)n, c->D, c->g + p * (size_t)c->B * c->D, c->D, vecs, c->D, 0.0f, scratch,
                        (int)n);
        for (int b = 0; b < c->B; b++) {
            float *row = c->rows + (size_t)b * c->ld;
            const float *sc = scratch + (size_t)b * n;
            for (int64_t s = 0; s < n; s++) row[c->col[s0 + s]] += sc[s];
        }
    }
    free(vecs);
    free(scratch);
}

void attrib_decoder_dots_cpu(float *rows, int64_t ld_rows, const int64_t *off, const int32_t *col, const float *base,
                             const int64_t *row, const float *act, const float *g, int B, int Te, int D) {
    matmul_blas_init();
    DecDotsCtx c = {rows, ld_rows, off, row, col, base, act, g, B, Te, D};
    parallel_for((size_t)Te, 1, decoder_positions, &c);
}

typedef struct {
    float *rows;
    int64_t ld, col0;
    const float *vecs, *g;
    float scale;
    int B, Te, T, D;
} PosDotsCtx;

static void position_items(void *arg, size_t begin, size_t end) {
    const PosDotsCtx *c = arg;
    for (size_t b = begin; b < end; b++) {
        float *row = c->rows + b * (size_t)c->ld + c->col0;
        for (int p = 0; p < c->T; p++) {
            if (p >= c->Te) {
                row[p] = 0;
                continue;
            }
            const float *g = c->g + ((size_t)p * c->B + b) * c->D, *v = c->vecs + (size_t)p * c->D;
            float s = 0;
            for (int d = 0; d < c->D; d++) s += g[d] * (v[d] * c->scale);
            row[p] = s;
        }
    }
}

void attrib_position_dots_cpu(float *rows, int64_t ld_rows, int64_t col0, const float *vecs, float vec_scale,
                              const float *g, int B, int Te, int T, int D) {
    PosDotsCtx c = {rows, ld_rows, col0, vecs, g, vec_scale, B, Te, T, D};
    parallel_for((size_t)B, 1, position_items, &c);
}
