#include "matmul.h"

#include <string.h>

#include "threads.h"

#ifdef USE_BLAS
#include <cblas.h>

void matmul_cpu(float *out, const float *in, const float *weight, const float *bias, int N, int IN, int OUT) {
    if (bias)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OUT, bias, (size_t)OUT * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, IN, 1.0f, in, IN, weight, IN,
                bias ? 1.0f : 0.0f, out, OUT);
}

#else

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
    MatmulCtx c = {out, in, weight, bias, N, IN, OUT};
    parallel_for((size_t)OUT, 16, matmul_cols, &c);
}
#endif
