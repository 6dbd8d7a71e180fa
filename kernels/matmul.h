// matmul.h — the linear layer: out (N, OUT) = in (N, IN) · weight (OUT, IN)ᵀ + bias (OUT).
// Weights are row-major (OUT, IN) as in PyTorch's nn.Linear. CPU: OpenBLAS sgemm when built with
// it (USE_BLAS), else a blocked C loop over threads. CUDA: cuBLAS sgemm on device pointers.
#pragma once
#include <stddef.h>

#include "gpu_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

void matmul_cpu(float *out, const float *in, const float *weight, const float *bias, int N, int IN, int OUT);
// The weight-gradient product: out (M, N) = beta·out + aᵀ b with a (K, M), b (K, N) row-major.
void matmul_tn_cpu(float *out, const float *a, const float *b, int M, int K, int N, float beta);
// The general product on strided views: out (M, N) = beta·out + op(a) · op(b), op(a) = a (M, K) or,
// with trans_a, aᵀ for a (K, M); op(b) = b (K, N) or, with trans_b, bᵀ for b (N, K). Row strides
// lda, ldb, ldo. gemm_cpu splits the rows of out over threads; gemm_serial_cpu runs on the calling
// thread (for code that is itself a parallel_for worker).
void gemm_cpu(int trans_a, int trans_b, int M, int N, int K, const float *a, int lda, const float *b, int ldb,
              float beta, float *out, int ldo);
void gemm_serial_cpu(int trans_a, int trans_b, int M, int N, int K, const float *a, int lda, const float *b, int ldb,
                     float beta, float *out, int ldo);
// One input row (a decoding step) against several weights at once: jobs[k].out (OUT) =
// jobs[k].weight (OUT, IN) · in + jobs[k].bias (or NULL). The products are split over threads as
// one loop, so q/k/v or gate/up cost one thread start instead of one each. matmul_cpu with N = 1
// comes here too (sgemv: for one row OpenBLAS's sgemm streams the weight slower).
typedef struct {
    float *out;
    const float *weight, *bias;
    int OUT;
} MatvecJob;
void matvec_multi_cpu(const float *in, int IN, const MatvecJob *jobs, int n_jobs);
// Makes OpenBLAS single-threaded (our threads parallelize around it); idempotent. Call before
// using cblas directly from several threads.
void matmul_blas_init(void);

// CUDA twin (kernels/matmul.cu): device pointers; cuBLAS sgemm (fp32, no TF32) with g's handle on
// g's stream; bias (or NULL) is broadcast into out first and accumulated with beta = 1.
// 0, or -1 with an Error (a failed bias launch or cuBLAS status).
int matmul_cuda(const GpuCtx *g, float *out, const float *in, const float *weight, const float *bias, int N, int IN,
                int OUT, Error *e);
// gemm_cpu's twin on device pointers (fp32 cuBLAS, no TF32), queued on g's stream. 0, or -1 with
// an Error.
int gemm_cuda(const GpuCtx *g, int trans_a, int trans_b, int M, int N, int K, const float *a, int lda, const float *b,
              int ldb, float beta, float *out, int ldo, Error *e);

#ifdef __cplusplus
}
#endif
