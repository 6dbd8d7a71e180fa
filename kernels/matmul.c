#include "matmul.h"

#include <string.h>

#include "threads.h"

#ifdef USE_BLAS
#include <cblas.h>
#include <pthread.h>

// All CPU parallelism is ours (parallel_for): OpenBLAS runs single-threaded inside each worker.
// Its own thread pool would busy-wait (sched_yield) on the cores our serial steps need.
static void blas_single_thread(void) { openblas_set_num_threads(1); }

void matmul_blas_init(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, blas_single_thread);
}

typedef struct {
    float *out;
    const float *in, *weight, *bias;
    int N, IN, OUT;
} MatmulCtx;

// Each worker computes a block of output columns: out[:, begin:end] = in · weight[begin:end]ᵀ.
static void matmul_cols(void *arg, size_t begin, size_t end) {
    const MatmulCtx *c = arg;
    int cols = (int)(end - begin);
    float *o = c->out + begin;
    if (c->bias)
        for (int n = 0; n < c->N; n++) memcpy(o + (size_t)n * c->OUT, c->bias + begin, (size_t)cols * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c->N, cols, c->IN, 1.0f, c->in, c->IN,
                c->weight + begin * (size_t)c->IN, c->IN, c->bias ? 1.0f : 0.0f, o, c->OUT);
}

void matmul_cpu(float *out, const float *in, const float *weight, const float *bias, int N, int IN, int OUT) {
    if (N == 1) {  // a decoding step
        MatvecJob job = {out, weight, bias, OUT};
        matvec_multi_cpu(in, IN, &job, 1);
        return;
    }
    matmul_blas_init();
    MatmulCtx c = {out, in, weight, bias, N, IN, OUT};
    // blocks of >= 64 columns, and no splitting of small products (thread start-up would dominate);
    // a short prompt (few rows) against a big weight is worth splitting
    size_t min_cols = (size_t)N * IN < 65536 && (size_t)N * IN * OUT < ((size_t)1 << 22) ? (size_t)OUT : 64;
    parallel_for((size_t)OUT, min_cols, matmul_cols, &c);
}

#else

void matmul_blas_init(void) {}

typedef struct {
    float *out;
    const float *in, *weight, *bias;
    int N, IN, OUT;
} MatmulCtx;

// Each worker owns a range of output columns; rows are processed 4 at a time so every weight
// row loaded from memory is used four times.
static void matmul_cols(void *arg, size_t begin, size_t end) {
    const MatmulCtx *c = arg;
    for (int n0 = 0; n0 < c->N; n0 += 4) {
        int rows = c->N - n0 < 4 ? c->N - n0 : 4;
        for (size_t o = begin; o < end; o++) {
            const float *w = c->weight + o * (size_t)c->IN;
            float acc[4] = {0, 0, 0, 0};
            for (int r = 0; r < rows; r++) {
                const float *x = c->in + (size_t)(n0 + r) * c->IN;
                float s = 0;
                for (int i = 0; i < c->IN; i++) s += x[i] * w[i];
                acc[r] = s;
            }
            for (int r = 0; r < rows; r++)
                c->out[(size_t)(n0 + r) * c->OUT + o] = acc[r] + (c->bias ? c->bias[o] : 0.0f);
        }
    }
}

void matmul_cpu(float *out, const float *in, const float *weight, const float *bias, int N, int IN, int OUT) {
    if (N == 1) {
        MatvecJob job = {out, weight, bias, OUT};
        matvec_multi_cpu(in, IN, &job, 1);
        return;
    }
    MatmulCtx c = {out, in, weight, bias, N, IN, OUT};
    parallel_for((size_t)OUT, 16, matmul_cols, &c);
}
#endif

// ---- the general product ---------------------------------------------------------------------

void gemm_serial_cpu(int trans_a, int trans_b, int M, int N, int K, const float *a, int lda, const float *b, int ldb,
                     float beta, float *out, int ldo) {
    if (M <= 0 || N <= 0) return;
#ifdef USE_BLAS
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1.0f,
                a, lda, b, ldb, beta, out, ldo);
#else
    for (int m = 0; m < M; m++) {
        float *o = out + (size_t)m * ldo;
        for (int n = 0; n < N; n++) o[n] = beta != 0 ? beta * o[n] : 0.0f;
        for (int k = 0; k < K; k++) {
            float av = trans_a ? a[(size_t)k * lda + m] : a[(size_t)m * lda + k];
            if (trans_b)
                for (int n = 0; n < N; n++) o[n] += av * b[(size_t)n * ldb + k];
            else
                for (int n = 0; n < N; n++) o[n] += av * b[(size_t)k * ldb + n];
        }
    }
#endif
}

typedef struct {
    int trans_a, trans_b, N, K, lda, ldb, ldo;
    const float *a, *b;
    float beta;
    float *out;
} GemmCtx;

// Rows [begin, end) of out: rows of a, or columns of a when it is transposed.
static void gemm_rows(void *arg, size_t begin, size_t end) {
    const GemmCtx *c = arg;
    const float *a = c->trans_a ? c->a + begin : c->a + begin * (size_t)c->lda;
    gemm_serial_cpu(c->trans_a, c->trans_b, (int)(end - begin), c->N, c->K, a, c->lda, c->b, c->ldb, c->beta,
                    c->out + begin * (size_t)c->ldo, c->ldo);
}

void gemm_cpu(int trans_a, int trans_b, int M, int N, int K, const float *a, int lda, const float *b, int ldb,
              float beta, float *out, int ldo) {
    if (M <= 0 || N <= 0) return;
    matmul_blas_init();
    GemmCtx c = {trans_a, trans_b, N, K, lda, ldb, ldo, a, b, beta, out};
    // row blocks of >= 16 rows; small products stay on one thread (start-up would dominate)
    size_t min_rows = (size_t)M * N * (size_t)K < ((size_t)1 << 21) ? (size_t)M : 16;
    parallel_for((size_t)M, min_rows, gemm_rows, &c);
}

void matmul_tn_cpu(float *out, const float *a, const float *b, int M, int K, int N, float beta) {
    gemm_cpu(1, 0, M, N, K, a, M, b, N, beta, out, N);
}

// ---- one input row against several weights (decoding) ---------------------------------------

typedef struct {
    const float *in;
    int IN, n_jobs;
    const MatvecJob *jobs;
} MatvecCtx;

// Rows [lo, hi) of one product.
static void matvec_range(const MatvecJob *j, const float *in, int IN, size_t lo, size_t hi) {
#ifdef USE_BLAS
    // OpenBLAS's sgemv streams the weight up to 2x faster than its sgemm does with M = 1
    if (j->bias) memcpy(j->out + lo, j->bias + lo, (hi - lo) * sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(hi - lo), IN, 1.0f, j->weight + lo * (size_t)IN, IN, in, 1,
                j->bias ? 1.0f : 0.0f, j->out + lo, 1);
#else
    for (size_t o = lo; o < hi; o++) {
        const float *w = j->weight + o * (size_t)IN;
        float s = 0;
        for (int i = 0; i < IN; i++) s += in[i] * w[i];
        j->out[o] = s + (j->bias ? j->bias[o] : 0.0f);
    }
#endif
}

// The products' output rows are numbered one after another; a worker takes a range of them.
static void matvec_rows(void *arg, size_t begin, size_t end) {
    const MatvecCtx *c = arg;
    size_t base = 0;
    for (int k = 0; k < c->n_jobs && base < end; k++) {
        size_t rows = (size_t)c->jobs[k].OUT;
        size_t lo = begin > base ? begin - base : 0, hi = end - base < rows ? end - base : rows;
        if (lo < hi) matvec_range(&c->jobs[k], c->in, c->IN, lo, hi);
        base += rows;
    }
}

void matvec_multi_cpu(const float *in, int IN, const MatvecJob *jobs, int n_jobs) {
    matmul_blas_init();
    MatvecCtx c = {in, IN, n_jobs, jobs};
    size_t rows = 0;
    for (int k = 0; k < n_jobs; k++) rows += (size_t)jobs[k].OUT;
    // memory-bound: a thread is worth starting for >= 128K weights (512 KB streamed)
    size_t min_rows = ((size_t)1 << 17) / (size_t)(IN > 0 ? IN : 1);
    parallel_for(rows, min_rows ? min_rows : 1, matvec_rows, &c);
}
