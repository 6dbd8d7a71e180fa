// matmul.h — the linear layer: out (N, OUT) = in (N, IN) · weight (OUT, IN)ᵀ + bias (OUT).
// Weights are row-major (OUT, IN) as in PyTorch's nn.Linear. CPU: OpenBLAS sgemm when built with
// it (USE_BLAS), else a blocked C loop over threads. CUDA: cuBLAS sgemm on device pointers.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void matmul_cpu(float *out, const float *in, const float *weight, const float *bias, int N, int IN, int OUT);

// CUDA twin (device pointers); a cuBLAS handle is created on first use per thread.
void matmul_cuda(float *out, const float *in, const float *weight, const float *bias, int N, int IN, int OUT);

#ifdef __cplusplus
}
#endif
