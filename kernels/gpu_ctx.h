// gpu_ctx.h — the explicit context every CUDA kernel twin takes: a cuBLAS handle and the stream
// work is queued on. No global mutable state: each thread (or each concurrent pipeline) owns its
// own GpuCtx. Plain C (opaque pointers), so gcc-compiled callers need no CUDA headers.
//
// The stream is a blocking stream (cudaStreamCreate), so it is ordered with the legacy default
// stream: the synchronous cuda_upload/cuda_download helpers of cuda_common.h see its results.
// The cuBLAS handle is bound to the stream and uses CUBLAS_DEFAULT_MATH (no TF32: fp32 GEMMs
// stay fp32, which the 1e-4 forward tolerances need).
//
// Error convention of the kernel twins (norm.h, rope.h, attention.h, act.h, matmul.h): they
// queue work and return 0, or -1 with an Error when the launch (or cuBLAS call) fails; errors
// during execution surface at the next gpu_ctx_sync.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

#include "err.h"  // inside extern "C": err_set is a C function, also when nvcc compiles this

typedef struct GpuCtx {
    void *cublas;  // cublasHandle_t
    void *stream;  // cudaStream_t
} GpuCtx;

// Creates the stream and the cuBLAS handle on the current device. 0, or -1 with an Error.
int gpu_ctx_init(GpuCtx *g, Error *e);
void gpu_ctx_free(GpuCtx *g);
// Waits for the stream; 0, or -1 with an Error naming any launch or execution failure.
int gpu_ctx_sync(const GpuCtx *g, Error *e);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#include <cublas_v2.h>
#include <cuda_runtime.h>

static inline cudaStream_t gpu_stream(const GpuCtx *g) { return g ? (cudaStream_t)g->stream : (cudaStream_t)0; }

// The launch status of the kernel just queued: 0, or -1 with an Error naming `what`.
static inline int gpu_launch_status(Error *e, const char *what) {
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err_set(e, "%s: launch failed: %s", what, cudaGetErrorString(err));
    return 0;
}
#endif
