// norm.h — RMSNorm and LayerNorm over the last dimension, fp32.
//   rmsnorm:   out = x / sqrt(mean(x²) + eps) * (weight_offset + w)   (Gemma: offset 1, (1 + w))
//   layernorm: out = (x − mean) / sqrt(var + eps) * w + b             (biased variance, GPT-2)
// rstd (N,) receives 1/sqrt(...) per row when non-NULL: attribution needs the norm scales.
#pragma once

#include "gpu_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

void rmsnorm_cpu(float *out, const float *x, const float *weight, float weight_offset, int N, int D, float eps,
                 float *rstd);
void layernorm_cpu(float *out, const float *x, const float *weight, const float *bias, int N, int D, float eps,
                   float *rstd);

// CUDA twins (kernels/norm.cu): device pointers, queued on g's stream; out may equal x. 0, or -1
// with an Error if the launch fails (gpu_ctx.h).
int rmsnorm_cuda(const GpuCtx *g, float *out, const float *x, const float *weight, float weight_offset, int N, int D,
                 float eps, float *rstd, Error *e);
int layernorm_cuda(const GpuCtx *g, float *out, const float *x, const float *weight, const float *bias, int N, int D,
                   float eps, float *rstd, Error *e);

#ifdef __cplusplus
}
#endif
