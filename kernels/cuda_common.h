// cuda_common.h — error checking for CUDA code, llm.c style: cudaCheck(...) / cublasCheck(...)
// print file:line and the CUDA error string on stderr, then exit. Exiting is only right in tools
// and tests; library entry points return -1 with an Error instead.
//
// The first part is plain C with no CUDA headers, so C tests compiled by gcc (which may not see
// the CUDA include directory) can move data to and from the device. The macros below it are for
// .cu files, compiled by nvcc.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Implemented in cuda_common.cu; each failure prints the caller's file:line and exits.
void *cuda_alloc_at(size_t nbytes, const char *file, int line);
void cuda_free_at(void *d, const char *file, int line);
void cuda_upload_at(void *d_dst, const void *h_src, size_t nbytes, const char *file, int line);
void cuda_download_at(void *h_dst, const void *d_src, size_t nbytes, const char *file, int line);
void cuda_sync_at(const char *file, int line);  // cudaDeviceSynchronize, surfaces kernel errors
int cuda_device_count(void);                    // 0 when there is no usable GPU (no exit)

#define cuda_alloc(nbytes) cuda_alloc_at((nbytes), __FILE__, __LINE__)
#define cuda_free(d) cuda_free_at((d), __FILE__, __LINE__)
#define cuda_upload(d, h, nbytes) cuda_upload_at((d), (h), (nbytes), __FILE__, __LINE__)
#define cuda_download(h, d, nbytes) cuda_download_at((h), (d), (nbytes), __FILE__, __LINE__)
#define cuda_sync() cuda_sync_at(__FILE__, __LINE__)

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

static inline void cuda_check_at(cudaError_t err, const char *file, int line) {
    if (err != cudaSuccess) {
        fprintf(stderr, "%s:%d: CUDA error: %s (%s)\n", file, line, cudaGetErrorString(err),
                cudaGetErrorName(err));
        exit(EXIT_FAILURE);
    }
}
#define cudaCheck(err) cuda_check_at((err), __FILE__, __LINE__)

static inline void cublas_check_at(cublasStatus_t status, const char *file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "%s:%d: cuBLAS error: %s (%d)\n", file, line, cublasGetStatusString(status),
                (int)status);
        exit(EXIT_FAILURE);
    }
}
#define cublasCheck(status) cublas_check_at((status), __FILE__, __LINE__)

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never past 2^31-1.
static inline unsigned int cuda_grid_for(size_t n, unsigned int block) {
    size_t blocks = (n + block - 1) / block;
    const size_t cap = (size_t)1 << 16;  // 64K blocks x 256 threads saturates an H100
    return (unsigned int)(blocks < 1 ? 1 : blocks > cap ? cap : blocks);
}
#endif
