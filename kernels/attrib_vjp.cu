// attrib_vjp.cu — CUDA twins of kernels/attrib_vjp.h (device pointers, GpuCtx stream).
// GEMMs through matmul.h's gemm_cuda (cuBLAS, row-major views).
#include "attrib_vjp.h"
#include "cuda_common.h"
#include "matmul.h"

static const unsigned int BLOCK = 256;

// Query rows per pattern tile: the scratch holds PAT_QB × Te scores (32 MB at 16k tokens).
static const int PAT_QB = 512;

extern "C" int64_t attrib_pattern_scratch_cuda(int Te) { return (int64_t)PAT_QB * (Te > 0 ? Te : 1); }

// Scores → probabilities in place, p (ni, nj) for queries i0 + r: exp(softcap(scale·s) − max)·inv,
// 0 where masked (attention_probs_block_cpu's arithmetic).
__global__ void probs_from_scores_kernel(float *p, int ni, int nj, int i0, const float *row_max,
                                         const float *row_inv, float scale, float softcap, int window) {
    size_t n = (size_t)ni * nj;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        int i = i0 + (int)(idx / nj), j = (int)(idx % nj);
        float v = p[idx] * scale;
        if (softcap > 0) v = softcap * tanhf(v / softcap);
        p[idx] = j > i || (window > 0 && j <= i - window) ? 0.0f : expf(v - row_max[i]) * row_inv[i];
    }
}

// y (Te, cols) = beta·y + Pᵀ x, tile by tile of PAT_QB query rows: scores of the tile against every
// key up to its end (one GEMM), probabilities, then y[:end] += P_tileᵀ x[tile] (one GEMM).
extern "C" int attrib_pattern_t_cuda(const GpuCtx *g, float *y, const float *x, const AttribPattern *p, int h, int Te,
                                     int cols, float beta, float *scratch, Error *e) {
    if (Te <= 0 || cols <= 0) return 0;
    if (beta != 0.0f && beta != 1.0f) return err_set(e, "attrib_pattern_t_cuda: beta must be 0 or 1 (got %g)", beta);
    const AttnShape *s = &p->shape;
    int H = s->H, KVH = s->KVH, hd = s->hd;
    if (beta == 0.0f) {
        cudaError_t err = cudaMemsetAsync(y, 0, (size_t)Te * cols * sizeof(float), gpu_stream(g));
        if (err != cudaSuccess) return err_set(e, "attrib_pattern_t_cuda: %s", cudaGetErrorString(err));
    }
    for (int i0 = 0; i0 < Te; i0 += PAT_QB) {
        int ni = Te - i0 < PAT_QB ? Te - i0 : PAT_QB, nj = i0 + ni;
        if (gemm_cuda(g, 0, 1, ni, nj, hd, p->q + (size_t)i0 * H * hd + (size_t)h * hd, H * hd,
                      p->k + (size_t)(h / (H / KVH)) * hd, KVH * hd, 0.0f, scratch, nj, e))
            return -1;
        probs_from_scores_kernel<<<cuda_grid_for((size_t)ni * nj, BLOCK), BLOCK, 0, gpu_stream(g)>>>(
            scratch, ni, nj, i0, p->row_max + (size_t)h * s->T, p->row_inv + (size_t)h * s->T, s->scale, s->softcap,
            s->window);
        if (gpu_launch_status(e, "attrib_pattern_t_cuda")) return -1;
        if (gemm_cuda(g, 1, 0, nj, cols, ni, scratch, nj, x + (size_t)i0 * cols, cols, 1.0f, y, cols, e)) return -1;
    }
    return 0;
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
                                    const int32_t *col, const float *base, const int64_t *row, const float *act,
                                    const float *gr, int B, int Te, int D) {
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
        float v = warp_dot(gr + ((size_t)lo * B + b) * D, base + row[s], act[s], D);
        if (threadIdx.x % 32 == 0) rows[(size_t)b * ld + col[s]] += v;
    }
}

extern "C" int attrib_decoder_dots_cuda(const GpuCtx *g, float *rows, int64_t ld_rows, const int64_t *off, int T,
                                        int64_t n_src, const int32_t *col, const float *base, const int64_t *row,
                                        const float *act, const float *gr, int B, int Te, int D, Error *e) {
    if (!n_src || !B) return 0;
    decoder_dots_kernel<<<cuda_grid_for((size_t)n_src * B * 32, BLOCK), BLOCK, 0, gpu_stream(g)>>>(
        rows, ld_rows, off, T, n_src, col, base, row, act, gr, B, Te, D);
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
