// cuda_stub.c — the CUDA entry points of kernels/ the tools call, for a build without CUDA
// (NO_CUDA=1, or no nvcc): the Makefile puts this file (and every NAME_stub.c beside a NAME.cu in
// the layer folders: model_forward_cuda_stub.c, clt_cuda_stub.c, comm_nccl_stub.c,
// attrib_cuda_stub.c) in libcommon.a only then, and libkernels_cuda.a's real ones otherwise, so the
// tools have no #ifdef USE_CUDA. Each returns the same error, CUDA_STUB_MSG (cuda_common.h); a tool
// asks cuda_devices first for --device cuda, so that is the one line a user sees. Keep in step with
// the plain C headers it implements: cuda_common.h (cuda_devices), gpu_ctx.h.
#include <stddef.h>

#include "cuda_common.h"
#include "gpu_ctx.h"

int cuda_devices(Error *e) { return err_set(e, CUDA_STUB_MSG); }

int gpu_ctx_init(GpuCtx *g, Error *e) {
    g->cublas = g->stream = NULL;
    return err_set(e, CUDA_STUB_MSG);
}
void gpu_ctx_free(GpuCtx *g) { (void)g; }
int gpu_ctx_sync(const GpuCtx *g, Error *e) { return (void)g, err_set(e, CUDA_STUB_MSG); }
