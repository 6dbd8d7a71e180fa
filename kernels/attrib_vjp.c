// attrib_vjp.c — CPU reference of kernels/attrib_vjp.h.
#include "attrib_vjp.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "matmul.h"
#include "threads.h"

#ifdef USE_BLAS
#include <cblas.h>
#endif

// One block of a GEMM on the calling thread: out (M, N) = beta·out + a · op(b).
static void gemm_block(int trans_b, int M, int N, int K, const float *a, int lda, const float *b, int ldb, float beta,
                       float *out, int ldo) {
#ifdef USE_BLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, a, lda, b, ldb, beta,
                out, ldo);
#else
    for (int m = 0; m < M; m++) {
        float *o = out + (size_t)m * ldo;
        const float *ar = a + (size_t)m * lda;
        if (trans_b) {
            for (int n = 0; n < N; n++) {
                const float *br = b + (size_t)n * ldb;
                float s = 0;
                for (int k = 0; k < K; k++) s += ar[k] * br[k];
                o[n] = (beta != 0 ? beta * o[n] : 0.0f) + s;
            }
        } else {
            for (int n = 0; n < N; n++) o[n] = beta != 0 ? beta * o[n] : 0.0f;
            for (int k = 0; k < K; k++) {
                const float *br = b + (size_t)k * ldb;
                float av = ar[k];
                for (int n = 0; n < N; n++) o[n] += av * br[n];
            }
        }
    }
#endif
}

typedef struct {
    int trans_b, M, N, K, lda, ldb, ldo;
    const float *a, *b;
    float beta;
    float *out;
} GemmCtx;

static void gemm_rows(void *arg, size_t begin, size_t end) {
    const GemmCtx *c = arg;
    gemm_block(c->trans_b, (int)(end - begin), c->N, c->K, c->a + begin * (size_t)c->lda, c->lda, c->b, c->ldb,
               c->beta, c->out + begin * (size_t)c->ldo, c->ldo);
}

void attrib_gemm_cpu(int trans_b, int M, int N, int K, const float *a, int lda, const float *b, int ldb, float beta,
                     float *out, int ldo) {
    if (M <= 0 || N <= 0) return;
    matmul_blas_init();
    GemmCtx c = {trans_b, M, N, K, lda, ldb, ldo, a, b, beta, out};
    // row blocks of >= 16 rows; small products stay on one thread (start-up would dominate)
    size_t min_rows = (size_t)M * N * (size_t)K < ((size_t)1 << 21) ? (size_t)M : 16;
    parallel_for((size_t)M, min_rows, gemm_rows, &c);
}

typedef struct {
    float *y;
    const float *x, *p;
    int Te, T, cols;
    float beta;
} PatternCtx;

// Output rows [begin, end): y[j] = beta·y[j] + Σ_{i ≥ begin} P[i, j] x[i] (P[i, j] = 0 for i < j).
static void pattern_rows(void *arg, size_t begin, size_t end) {
    const PatternCtx *c = arg;
    int j0 = (int)begin, m = (int)(end - begin), k = c->Te - j0;
#ifdef USE_BLAS
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, c->cols, k, 1.0f, c->p + (size_t)j0 * c->T + j0, c->T,
                c->x + (size_t)j0 * c->cols, c->cols, c->beta, c->y + (size_t)j0 * c->cols, c->cols);
#else
    for (int j = j0; j < j0 + m; j++) {
        float *o = c->y + (size_t)j * c->cols;
        for (int d = 0; d < c->cols; d++) o[d] = c->beta != 0 ? c->beta * o[d] : 0.0f;
        for (int i = j; i < c->Te; i++) {
            float w = c->p[(size_t)i * c->T + j];
            if (w == 0) continue;
            const float *xi = c->x + (size_t)i * c->cols;
            for (int d = 0; d < c->cols; d++) o[d] += w * xi[d];
        }
    }
#endif
}

void attrib_pattern_t_cpu(float *y, const float *x, const float *probs, int Te, int T, int cols, float beta) {
    matmul_blas_init();
    PatternCtx c = {y, x, probs, Te, T, cols, beta};
    // early output rows read the most input rows: blocks of 8 rows keep the threads balanced
    parallel_for((size_t)Te, (size_t)Te * cols * (size_t)Te < ((size_t)1 << 20) ? (size_t)Te : 8, pattern_rows, &c);
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
    const int64_t *off;
    const int32_t *col;
    const float *vecs, *g;
    int B, Te, D;
} DecDotsCtx;

static void decoder_positions(void *arg, size_t begin, size_t end) {
    const DecDotsCtx *c = arg;
    float *scratch = NULL;
    size_t cap = 0;
    for (size_t p = begin; p < end; p++) {
        int64_t s0 = c->off[p], n = c->off[p + 1] - s0;
        if (!n) continue;
        if ((size_t)(c->B * n) > cap) {
            cap = (size_t)(c->B * n);
            free(scratch);
            scratch = xmalloc(cap * sizeof(float));
        }
        // scratch (B, n) = g[p] (B, D) · vecs[s0:s0+n]ᵀ
        gemm_block(1, c->B, (int)n, c->D, c->g + p * (size_t)c->B * c->D, c->D, c->vecs + (size_t)s0 * c->D, c->D,
                   0.0f, scratch, (int)n);
        for (int b = 0; b < c->B; b++) {
            float *row = c->rows + (size_t)b * c->ld;
            const float *sc = scratch + (size_t)b * n;
            for (int64_t s = 0; s < n; s++) row[c->col[s0 + s]] += sc[s];
        }
    }
    free(scratch);
}

void attrib_decoder_dots_cpu(float *rows, int64_t ld_rows, const int64_t *off, const int32_t *col, const float *vecs,
                             const float *g, int B, int Te, int D) {
    matmul_blas_init();
    DecDotsCtx c = {rows, ld_rows, off, col, vecs, g, B, Te, D};
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
