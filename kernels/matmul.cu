// matmul.cu — CUDA twins of matmul_cpu: out (N, OUT) = in (N, IN) · W (OUT, IN)ᵀ + bias, row-major,
// and of gemm_cpu.
//
// cuBLAS is column-major. A row-major (R, C) buffer is the column-major (C, R) matrix, so in
// cuBLAS terms the buffers hold outᵀ (OUT x N, ld OUT), inᵀ (IN x N, ld IN) and Wᵀ (IN x OUT,
// ld IN), and out = in·Wᵀ becomes outᵀ = W · inᵀ = op(Wᵀ) · inᵀ with op = transpose:
//   sgemm(opA = T, opB = N, m = OUT, n = N, k = IN, A = W (lda IN), B = in (ldb IN), C = out (ldc OUT)).
#include "cuda_common.h"
#include "matmul.h"

static const unsigned int BIAS_BLOCK = 256;

// out[n, o] = bias[o] for every row n.
__global__ void bias_fill_kernel(float *out, const float *bias, size_t total, int OUT) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        out[i] = bias[i % OUT];
}

extern "C" int matmul_cuda(const GpuCtx *g, float *out, const float *in, const float *weight, const float *bias,
                           int N, int IN, int OUT, Error *e) {
    if (N <= 0 || OUT <= 0) return 0;
    if (!g || !g->cublas) return err_set(e, "matmul_cuda: no cuBLAS handle (gpu_ctx_init)");
    size_t total = (size_t)N * OUT;
    if (bias) {
        bias_fill_kernel<<<cuda_grid_for(total, BIAS_BLOCK), BIAS_BLOCK, 0, gpu_stream(g)>>>(out, bias, total, OUT);
        if (gpu_launch_status(e, "matmul_cuda bias")) return -1;
    }
    const float alpha = 1.0f, beta = bias ? 1.0f : 0.0f;
    cublasStatus_t st = cublasSgemm((cublasHandle_t)g->cublas, CUBLAS_OP_T, CUBLAS_OP_N, OUT, N, IN, &alpha, weight, IN,
                                    in, IN, &beta, out, OUT);
    if (st != CUBLAS_STATUS_SUCCESS)
        return err_set(e, "matmul_cuda: cublasSgemm (N %d, IN %d, OUT %d): %s", N, IN, OUT, cublasGetStatusString(st));
    return 0;
}

// Row-major out (M, N) = op(a) · op(b) is column-major outᵀ (N × M) = op(b)ᵀ · op(a)ᵀ; the row-major
// buffer of b read column-major is bᵀ, so op(b)ᵀ is that buffer untransposed unless trans_b (same for a).
extern "C" int gemm_cuda(const GpuCtx *g, int trans_a, int trans_b, int M, int N, int K, const float *a, int lda,
                         const float *b, int ldb, float beta, float *out, int ldo, Error *e) {
    if (M <= 0 || N <= 0) return 0;
    if (!g || !g->cublas) return err_set(e, "gemm_cuda: no cuBLAS handle (gpu_ctx_init)");
    const float alpha = 1.0f;
    cublasStatus_t st = cublasSgemm((cublasHandle_t)g->cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, b, ldb, a, lda, &beta, out,
                                    ldo);
    if (st != CUBLAS_STATUS_SUCCESS)
        return err_set(e, "gemm_cuda: cublasSgemm (%d x %d x %d): %s", M, N, K, cublasGetStatusString(st));
    return 0;
}
