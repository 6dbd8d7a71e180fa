// attrib_vjp.cu — CUDA twins of kernels/attrib_vjp.h (device pointers, GpuCtx stream).
//
// Row-major buffers are the transposed column-major matrices of cuBLAS: out (M, N) = a · op(b)
// becomes outᵀ (N × M, ld ldo) = op(b)ᵀ · aᵀ, i.e. cublasSgemm(op_b', N, N, M, K, b, a, out) with
// op_b' = N for a row-major b (K, N) and T for b (N, K).
#include "attrib_vjp.h"
#include "cuda_common.h"

static const unsigned int BLOCK = 256;

static int gemm_cm(const GpuCtx *g, cublasOperation_t opa, cublasOperation_t opb, int m, int n, int k, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc, const char *what, Error *e) {
    if (!g || !g->cublas) return err_set(e, "%s: no cuBLAS handle (gpu_ctx_init)", what);
    const float alpha = 1.0f;
    cublasStatus_t st =
        cublasSgemm((cublasHandle_t)g->cublas, opa, opb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc);
    if (st != CUBLAS_STATUS_SUCCESS)
        return err_set(e, "%s: cublasSgemm (%d x %d x %d): %s", what, m, n, k, cublasGetStatusString(st));
    return 0;
}

extern "C" int attrib_gemm_cuda(const GpuCtx *g, int trans_b, int M, int N, int K, const float *a, int lda,
                                const float *b, int ldb, float beta, float *out, int ldo, Error *e) {
    if (M <= 0 || N <= 0) return 0;
    return gemm_cm(g, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, b, ldb, a, lda, beta, out, ldo,
                   "attrib_gemm_cuda", e);
}

// y (Te, cols) = beta·y + Pᵀ x: column-major yᵀ (cols × Te) = xᵀ (cols × Te) · P, and the row-major
// P buffer read column-major is Pᵀ, hence op = T.
extern "C" int attrib_pattern_t_cuda(const GpuCtx *g, float *y, const float *x, const float *probs, int Te, int T,
                                     int cols, float beta, Error *e) {
    if (Te <= 0 || cols <= 0) return 0;
    return gemm_cm(g, CUBLAS_OP_N, CUBLAS_OP_T, cols, Te, Te, x, cols, probs, T, beta, y, cols,
                   "attrib_pattern_t_cuda", e);
}

// One block per row (position r / B, batch element r % B).
__global__ void norm_vjp_kernel(float *out, const float *gr, const float *w, float w_off, int centered,
                                const float *rstd, int B, int D, int accumulate) {
    size_t r = blockIdx.x;
    const float *g = gr + r * D;
    float *o = out + r * D;
    __shared__ float part[256];
    float mean = 0;
    if (centered) {
        float s = 0;
        for (int i = threadIdx.x; i < D; i += blockDim.x) s += g[i] * (w_off + w[i]);
        part[threadIdx.x] = s;
        __syncthreads();
        for (int k = blockDim.x / 2; k > 0; k >>= 1) {
            if ((int)threadIdx.x < k) part[threadIdx.x] += part[threadIdx.x + k];
            __syncthreads();
        }
        mean = part[0] / D;
    }
    float sc = rstd[r / B];
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float v = (g[i] * (w_off + w[i]) - mean) * sc;
        o[i] = accumulate ? o[i] + v : v;
    }
}

extern "C" int attrib_norm_vjp_cuda(const GpuCtx *g, float *out, const float *gr, const float *w, float w_off,
                                    int centered, const float *rstd, int B, int Te, int D, int accumulate, Error *e) {
    size_t rows = (size_t)B * Te;
    if (!rows) return 0;
    if (rows > 0x7fffffffu) return err_set(e, "attrib_norm_vjp_cuda: %zu rows exceed one grid", rows);
    norm_vjp_kernel<<<(unsigned int)rows, BLOCK, 0, gpu_stream(g)>>>(out, gr, w, w_off, centered, rstd, B, D,
                                                                      accumulate);
    return gpu_launch_status(e, "attrib_norm_vjp_cuda");
}

// A warp's dot product of two D-vectors, the sum in lane 0.
__device__ float warp_dot(const float *a, const float *b, float b_scale, int D) {
    float s = 0;
    for (int i = threadIdx.x % 32; i < D; i += 32) s += a[i] * (b[i] * b_scale);
    for (int k = 16; k > 0; k >>= 1) s += __shfl_down_sync(0xffffffffu, s, k);
    return s;
}

// One warp per (source, batch element); the source's position from off by binary search.
__global__ void decoder_dots_kernel(float *rows, int64_t ld, const int64_t *off, int T, int64_t n_src,
                                    const int32_t *col, const float *vecs, const float *gr, int B, int Te, int D) {
    int64_t item = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32, stride = (int64_t)gridDim.x * blockDim.x / 32;
    for (; item < n_src * B; item += stride) {
        int64_t s = item / B;
        int b = (int)(item % B);
        int lo = 0, hi = T;  // the p with off[p] <= s < off[p+1]
        while (hi - lo > 1) {
            int mid = (lo + hi) / 2;
            if (off[mid] <= s) lo = mid;
            else hi = mid;
        }
        if (lo >= Te) continue;  // no gradient there
        float v = warp_dot(gr + ((size_t)lo * B + b) * D, vecs + (size_t)s * D, 1.0f, D);
        if (threadIdx.x % 32 == 0) rows[(size_t)b * ld + col[s]] += v;
    }
}

extern "C" int attrib_decoder_dots_cuda(const GpuCtx *g, float *rows, int64_t ld_rows, const int64_t *off, int T,
                                        int64_t n_src, const int32_t *col, const float *vecs, const float *gr, int B,
                                        int Te, int D, Error *e) {
    if (!n_src || !B) return 0;
    decoder_dots_kernel<<<cuda_grid_for((size_t)n_src * B * 32, BLOCK), BLOCK, 0, gpu_stream(g)>>>(
        rows, ld_rows, off, T, n_src, col, vecs, gr, B, Te, D);
    return gpu_launch_status(e, "attrib_decoder_dots_cuda");
}

// One warp per (batch element, position).
__global__ void position_dots_kernel(float *rows, int64_t ld, int64_t col0, const float *vecs, float scale,
                                     const float *gr, int B, int Te, int T, int D) {
    int64_t item = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32, stride = (int64_t)gridDim.x * blockDim.x / 32;
    for (; item < (int64_t)B * T; item += stride) {
        int b = (int)(item / T), p = (int)(item % T);
        float v = p < Te ? warp_dot(gr + ((size_t)p * B + b) * D, vecs + (size_t)p * D, scale, D) : 0.0f;
        if (threadIdx.x % 32 == 0) rows[(size_t)b * ld + col0 + p] = v;
    }
}

extern "C" int attrib_position_dots_cuda(const GpuCtx *g, float *rows, int64_t ld_rows, int64_t col0,
                                         const float *vecs, float vec_scale, const float *gr, int B, int Te, int T,
                                         int D, Error *e) {
    if (!B || !T) return 0;
    position_dots_kernel<<<cuda_grid_for((size_t)B * T * 32, BLOCK), BLOCK, 0, gpu_stream(g)>>>(
        rows, ld_rows, col0, vecs, vec_scale, gr, B, Te, T, D);
    return gpu_launch_status(e, "attrib_position_dots_cuda");
}
