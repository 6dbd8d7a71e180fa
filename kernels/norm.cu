// norm.cu — CUDA twins of kernels/norm.c: one block per row, sums with cub::BlockReduce.
// out may alias x (the forward pass normalizes in place): every read of a row's x happens before
// the barrier that precedes the writes, and each thread writes only the elements it reads.
#include <cub/block/block_reduce.cuh>

#include "cuda_common.h"
#include "norm.h"

static const int NORM_BLOCK = 256;
typedef cub::BlockReduce<float, NORM_BLOCK> NormReduce;

__global__ void rmsnorm_kernel(float *out, const float *x, const float *weight, float weight_offset, int D,
                               float eps, float *rstd) {
    __shared__ typename NormReduce::TempStorage tmp;
    __shared__ float s_r;
    const float *xr = x + (size_t)blockIdx.x * D;
    float *o = out + (size_t)blockIdx.x * D;
    float ss = 0;
    for (int i = threadIdx.x; i < D; i += blockDim.x) ss += xr[i] * xr[i];
    float total = NormReduce(tmp).Sum(ss);  // valid in thread 0 only
    if (threadIdx.x == 0) {
        s_r = 1.0f / sqrtf(total / (float)D + eps);
        if (rstd) rstd[blockIdx.x] = s_r;
    }
    __syncthreads();
    float r = s_r;
    for (int i = threadIdx.x; i < D; i += blockDim.x) o[i] = xr[i] * r * (weight_offset + weight[i]);
}

__global__ void layernorm_kernel(float *out, const float *x, const float *weight, const float *bias, int D,
                                 float eps, float *rstd) {
    __shared__ typename NormReduce::TempStorage tmp;
    __shared__ float s_mean, s_r;
    const float *xr = x + (size_t)blockIdx.x * D;
    float *o = out + (size_t)blockIdx.x * D;
    float sum = 0;
    for (int i = threadIdx.x; i < D; i += blockDim.x) sum += xr[i];
    float total = NormReduce(tmp).Sum(sum);
    if (threadIdx.x == 0) s_mean = total / (float)D;
    __syncthreads();  // publishes s_mean and frees tmp for the second reduction
    float mean = s_mean;
    float var = 0;
    for (int i = threadIdx.x; i < D; i += blockDim.x) var += (xr[i] - mean) * (xr[i] - mean);
    float total_var = NormReduce(tmp).Sum(var);
    if (threadIdx.x == 0) {
        s_r = 1.0f / sqrtf(total_var / (float)D + eps);
        if (rstd) rstd[blockIdx.x] = s_r;
    }
    __syncthreads();
    float r = s_r;
    for (int i = threadIdx.x; i < D; i += blockDim.x) o[i] = (xr[i] - mean) * r * weight[i] + bias[i];
}

extern "C" int rmsnorm_cuda(const GpuCtx *g, float *out, const float *x, const float *weight, float weight_offset,
                            int N, int D, float eps, float *rstd, Error *e) {
    if (N <= 0) return 0;
    rmsnorm_kernel<<<N, NORM_BLOCK, 0, gpu_stream(g)>>>(out, x, weight, weight_offset, D, eps, rstd);
    return gpu_launch_status(e, "rmsnorm_cuda");
}

extern "C" int layernorm_cuda(const GpuCtx *g, float *out, const float *x, const float *weight, const float *bias,
                              int N, int D, float eps, float *rstd, Error *e) {
    if (N <= 0) return 0;
    layernorm_kernel<<<N, NORM_BLOCK, 0, gpu_stream(g)>>>(out, x, weight, bias, D, eps, rstd);
    return gpu_launch_status(e, "layernorm_cuda");
}
