// act.cu — CUDA twins of kernels/act.c: elementwise grid-stride loops with the same formulas
// (expf, tanhf; full-precision device functions, no fast-math).
#include "act.h"
#include "cuda_common.h"

static const unsigned int ACT_BLOCK = 256;

__device__ __forceinline__ float silu_d(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float gelu_tanh_d(float x) {
    const float k = 0.7978845608028654f;  // sqrt(2/pi)
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

__global__ void gated_act_kernel(float *out, const float *gate, const float *up, size_t n, int kind) {
    GRID_STRIDE(i, n) {
        float gv = gate[i];
        out[i] = (kind == ACT_SILU ? silu_d(gv) : gelu_tanh_d(gv)) * up[i];
    }
}

__global__ void gelu_tanh_kernel(float *x, size_t n) {
    GRID_STRIDE(i, n) x[i] = gelu_tanh_d(x[i]);
}

__global__ void softcap_kernel(float *x, size_t n, float cap) {
    GRID_STRIDE(i, n) x[i] = cap * tanhf(x[i] / cap);
}

extern "C" int gated_act_cuda(const GpuCtx *g, float *out, const float *gate, const float *up, size_t n, ActKind kind,
                              Error *e) {
    if (n == 0) return 0;
    gated_act_kernel<<<cuda_grid_for(n, ACT_BLOCK), ACT_BLOCK, 0, gpu_stream(g)>>>(out, gate, up, n, (int)kind);
    return gpu_launch_status(e, "gated_act_cuda");
}

extern "C" int gelu_tanh_cuda(const GpuCtx *g, float *x, size_t n, Error *e) {
    if (n == 0) return 0;
    gelu_tanh_kernel<<<cuda_grid_for(n, ACT_BLOCK), ACT_BLOCK, 0, gpu_stream(g)>>>(x, n);
    return gpu_launch_status(e, "gelu_tanh_cuda");
}

extern "C" int softcap_cuda(const GpuCtx *g, float *x, size_t n, float cap, Error *e) {
    if (n == 0) return 0;
    softcap_kernel<<<cuda_grid_for(n, ACT_BLOCK), ACT_BLOCK, 0, gpu_stream(g)>>>(x, n, cap);
    return gpu_launch_status(e, "softcap_cuda");
}
