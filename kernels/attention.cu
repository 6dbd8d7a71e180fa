// attention.cu — CUDA twin of attention_cpu (attention.h): causal, grouped-query heads, scale,
// optional softcap and sliding window, optional probs (B, H, T, T).
//
// One block per (query row i, head h, batch b) = (blockIdx.x, blockIdx.y, blockIdx.z). The row's
// scores live in dynamic shared memory (T floats, after the hd floats of the query vector):
//   1. scores: one warp per visible key j (j0 <= j <= i), lanes split the head dimension and a
//      shuffle reduction adds them; lane 0 applies scale and softcap and stores sc[j];
//   2. softmax: max and sum with cub::BlockReduce, sc[j] = exp(sc[j] - max) / sum;
//   3. output: thread d computes out[d] = Σ_j sc[j] v_j[d] (coalesced over d);
//   4. probs (if requested): the whole row, zeros outside [j0, i].
#include <math.h>

#include <cub/block/block_reduce.cuh>

#include "attention.h"
#include "cuda_common.h"

static const int ATTN_BLOCK = 256;  // 8 warps
typedef cub::BlockReduce<float, ATTN_BLOCK> AttnReduce;

__device__ __forceinline__ float warp_sum(float x) {
    for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
    return x;  // every lane holds the total
}

__global__ void __launch_bounds__(ATTN_BLOCK) attention_kernel(float *out, float *probs, const float *q, const float *k,
                                                               const float *v, AttnShape s) {
    extern __shared__ float smem[];
    __shared__ typename AttnReduce::TempStorage tmp;
    __shared__ float s_max, s_inv;
    const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int T = s.T, H = s.H, KVH = s.KVH, hd = s.hd;
    const int kvh = h / (H / KVH);
    float *q_s = smem;       // (hd,)
    float *sc = smem + hd;   // (T,): only [j0, i] is used
    const int j0 = s.window > 0 && i - s.window + 1 > 0 ? i - s.window + 1 : 0;

    const float *qi = q + (((size_t)b * T + i) * H + h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) q_s[d] = qi[d];
    __syncthreads();

    // 1. scores, one warp per key (warp-uniform loop: every lane of a warp has the same j)
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    for (int j = j0 + warp; j <= i; j += n_warps) {
        const float *kj = k + (((size_t)b * T + j) * KVH + kvh) * hd;
        float dot = 0;
        for (int d = lane; d < hd; d += 32) dot += q_s[d] * kj[d];
        dot = warp_sum(dot);
        if (lane == 0) {
            dot *= s.scale;
            if (s.softcap > 0) dot = s.softcap * tanhf(dot / s.softcap);
            sc[j] = dot;
        }
    }
    __syncthreads();

    // 2. softmax over sc[j0..i]
    float m = -INFINITY;
    for (int j = j0 + threadIdx.x; j <= i; j += blockDim.x) m = fmaxf(m, sc[j]);
    m = AttnReduce(tmp).Reduce(m, cuda::maximum<>{});  // valid in thread 0
    if (threadIdx.x == 0) s_max = m;
    __syncthreads();  // publishes s_max; tmp may be reused
    m = s_max;
    float sum = 0;
    for (int j = j0 + threadIdx.x; j <= i; j += blockDim.x) {
        float ev = expf(sc[j] - m);
        sc[j] = ev;
        sum += ev;
    }
    sum = AttnReduce(tmp).Sum(sum);
    if (threadIdx.x == 0) s_inv = 1.0f / sum;
    __syncthreads();
    const float inv = s_inv;
    for (int j = j0 + threadIdx.x; j <= i; j += blockDim.x) sc[j] *= inv;
    __syncthreads();

    // 3. out[d] = Σ_j p_j v_j[d]
    float *o = out + (((size_t)b * T + i) * H + h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0;
        for (int j = j0; j <= i; j++) acc += sc[j] * v[(((size_t)b * T + j) * KVH + kvh) * hd + d];
        o[d] = acc;
    }

    // 4. the probs row, zeros above the diagonal and before the window
    if (probs) {
        float *row = probs + (((size_t)b * H + h) * T + i) * T;
        for (int j = threadIdx.x; j < T; j += blockDim.x) row[j] = j >= j0 && j <= i ? sc[j] : 0.0f;
    }
}

extern "C" int attention_cuda(const GpuCtx *g, float *out, float *probs, const float *q, const float *k, const float *v,
                              const AttnShape *s, Error *e) {
    if (s->B <= 0 || s->T <= 0 || s->H <= 0) return 0;
    if (s->KVH <= 0 || s->H % s->KVH)
        return err_set(e, "attention_cuda: %d heads not a multiple of %d kv heads", s->H, s->KVH);
    if (s->H > 65535 || s->B > 65535) return err_set(e, "attention_cuda: B %d or H %d exceeds 65535", s->B, s->H);
    size_t smem = ((size_t)s->hd + s->T) * sizeof(float);
    if (smem > 48 * 1024) {
        int dev = 0, max_optin = 0;
        cudaGetDevice(&dev);
        cudaDeviceGetAttribute(&max_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
        size_t static_smem = sizeof(AttnReduce::TempStorage) + 2 * sizeof(float);
        if (smem + static_smem > (size_t)max_optin)
            return err_set(e, "attention_cuda: T %d needs %zu bytes of shared memory, the device allows %d", s->T,
                           smem + static_smem, max_optin);
        cudaError_t err =
            cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (err != cudaSuccess) return err_set(e, "attention_cuda: shared memory opt-in: %s", cudaGetErrorString(err));
    }
    dim3 grid((unsigned)s->T, (unsigned)s->H, (unsigned)s->B);
    attention_kernel<<<grid, ATTN_BLOCK, smem, gpu_stream(g)>>>(out, probs, q, k, v, *s);
    return gpu_launch_status(e, "attention_cuda");
}
