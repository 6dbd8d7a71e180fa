// cuda_common.cu — the C-callable device-memory helpers declared in cuda_common.h.
#include "cuda_common.h"

#include <stdio.h>
#include <stdlib.h>

// The tests' check: print the caller's file:line and the CUDA error, then exit.
static void cuda_check_at(cudaError_t err, const char *file, int line) {
    if (err != cudaSuccess) {
        fprintf(stderr, "%s:%d: CUDA error: %s (%s)\n", file, line, cudaGetErrorString(err), cudaGetErrorName(err));
        exit(EXIT_FAILURE);
    }
}

extern "C" void *cuda_alloc_at(size_t nbytes, const char *file, int line) {
    void *d = nullptr;
    cuda_check_at(cudaMalloc(&d, nbytes ? nbytes : 1), file, line);
    return d;
}

extern "C" void cuda_free_at(void *d, const char *file, int line) {
    if (d) cuda_check_at(cudaFree(d), file, line);
}

extern "C" void cuda_upload_at(void *d_dst, const void *h_src, size_t nbytes, const char *file, int line) {
    if (nbytes) cuda_check_at(cudaMemcpy(d_dst, h_src, nbytes, cudaMemcpyHostToDevice), file, line);
}

extern "C" void cuda_download_at(void *h_dst, const void *d_src, size_t nbytes, const char *file, int line) {
    if (nbytes) cuda_check_at(cudaMemcpy(h_dst, d_src, nbytes, cudaMemcpyDeviceToHost), file, line);
}

extern "C" void cuda_sync_at(const char *file, int line) {
    cuda_check_at(cudaGetLastError(), file, line);  // launch errors first, then execution errors
    cuda_check_at(cudaDeviceSynchronize(), file, line);
}

extern "C" int cuda_devices(Error *e) {
    int n = cuda_device_count();
    return n > 0 ? n : err_set(e, "no CUDA device is visible");
}

extern "C" int cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();  // clear the sticky "no device" error
        return 0;
    }
    return n;
}
