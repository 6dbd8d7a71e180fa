// act.h — elementwise activations, fp32.
//   gated (SwiGLU / GeGLU): out = act(gate) * up, act = SiLU or GELU-tanh
//   gelu_tanh in place (GPT-2's gelu_new == PyTorch gelu(approximate="tanh"))
//   softcap in place: x = cap * tanh(x / cap)  (Gemma 2 attention and final logits)
#pragma once
#include <stddef.h>

#include "gpu_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { ACT_SILU = 0, ACT_GELU_TANH = 1 } ActKind;

void gated_act_cpu(float *out, const float *gate, const float *up, size_t n, ActKind kind);
void gelu_tanh_cpu(float *x, size_t n);
void softcap_cpu(float *x, size_t n, float cap);

// CUDA twins (kernels/act.cu): device pointers, queued on g's stream; out may equal gate or up.
// 0, or -1 with an Error if the launch fails.
int gated_act_cuda(const GpuCtx *g, float *out, const float *gate, const float *up, size_t n, ActKind kind, Error *e);
int gelu_tanh_cuda(const GpuCtx *g, float *x, size_t n, Error *e);
int softcap_cuda(const GpuCtx *g, float *x, size_t n, float cap, Error *e);

#ifdef __cplusplus
}
#endif
