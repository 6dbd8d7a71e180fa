// gpu_ctx.cu — GpuCtx: one stream and one cuBLAS handle bound to it (gpu_ctx.h).
#include "cuda_common.h"
#include "gpu_ctx.h"

extern "C" int gpu_ctx_init(GpuCtx *g, Error *e) {
    g->cublas = nullptr;
    g->stream = nullptr;
    cudaStream_t stream;
    if (cuda_status(cudaStreamCreate(&stream), "gpu_ctx", "cudaStreamCreate", e)) return -1;
    cublasHandle_t h;
    cublasStatus_t st = cublasCreate(&h);
    if (cublas_status(st, "gpu_ctx", "cublasCreate", e)) {
        cudaStreamDestroy(stream);
        return -1;
    }
    if ((st = cublasSetStream(h, stream)) != CUBLAS_STATUS_SUCCESS ||
        (st = cublasSetMathMode(h, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(h);
        cudaStreamDestroy(stream);
        return cublas_status(st, "gpu_ctx", "cuBLAS setup", e);
    }
    g->cublas = h;
    g->stream = stream;
    return 0;
}

extern "C" void gpu_ctx_free(GpuCtx *g) {
    if (!g) return;
    if (g->cublas) cublasDestroy((cublasHandle_t)g->cublas);
    if (g->stream) cudaStreamDestroy((cudaStream_t)g->stream);
    g->cublas = nullptr;
    g->stream = nullptr;
}

extern "C" int gpu_ctx_sync(const GpuCtx *g, Error *e) {
    cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess) err = cudaStreamSynchronize(gpu_stream(g));
    if (err != cudaSuccess) return err_set(e, "CUDA error: %s (%s)", cudaGetErrorString(err), cudaGetErrorName(err));
    return 0;
}
