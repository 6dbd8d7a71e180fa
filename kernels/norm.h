// norm.h — RMSNorm and LayerNorm over the last dimension, fp32.
//   rmsnorm:   out = x / sqrt(mean(x²) + eps) * (weight_offset + w)   (Gemma: offset 1, (1 + w))
//   layernorm: out = (x − mean) / sqrt(var + eps) * w + b             (biased variance, GPT-2)
// rstd (N,) receives 1/sqrt(...) per row when non-NULL: attribution needs the norm scales.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

void rmsnorm_cpu(float *out, const float *x, const float *weight, float weight_offset, int N, int D, float eps, float *rstd);
void layernorm_cpu(float *out, const float *x, const float *weight, const float *bias, int N, int D, float eps, float *rstd);

void rmsnorm_cuda(float *out, const float *x, const float *weight, float weight_offset, int N, int D, float eps, float *rstd);
void layernorm_cuda(float *out, const float *x, const float *weight, const float *bias, int N, int D, float eps, float *rstd);

#ifdef __cplusplus
}
#endif
