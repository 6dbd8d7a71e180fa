// cuda_common.h — what every CUDA file shares. Two parts:
// - plain C with no CUDA headers, so C tests compiled by gcc (which may not see the CUDA include
//   directory) can move data to and from the device: cuda_alloc(...) and friends print the
//   caller's file:line and the CUDA error, then exit. Exiting is only right in tests and tools.
//   cuda_devices is the one entry point a tool asks before any other (a stub without CUDA).
// - for .cu files (nvcc): the error-returning checks of library code, which return -1 with an
//   Error "WHO: WHAT: <CUDA's message>" (cuda_status, cublas_status, CUDA_OK, cuda_alloc_e), and
//   the grid size of grid-stride loops. There is one family of each; use these, not local copies.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "err.h"  // inside extern "C": err_set is a C function, also when nvcc compiles this

// The number of usable GPUs (> 0), or -1 with e: "no CUDA device is visible", or in a build
// without CUDA (kernels/cuda_stub.c) CUDA_STUB_MSG. Tools check it once for --device cuda and
// print "--device cuda: " and the message.
int cuda_devices(Error *e);
// What every entry point of a *_stub.c (a build without CUDA) returns as its error.
#define CUDA_STUB_MSG "built without CUDA (make without NO_CUDA=1)"

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

// 0, or -1 with e = "WHO: WHAT: <CUDA's message>".
static inline int cuda_status(cudaError_t err, const char *who, const char *what, Error *e) {
    if (err == cudaSuccess) return 0;
    return err_set(e, "%s: %s: %s", who, what, cudaGetErrorString(err));
}
static inline int cublas_status(cublasStatus_t st, const char *who, const char *what, Error *e) {
    if (st == CUBLAS_STATUS_SUCCESS) return 0;
    return err_set(e, "%s: %s: %s", who, what, cublasGetStatusString(st));
}
// Returns -1 from the calling function, which has an `Error *e`, when call fails; the message
// starts with the file's CUDA_WHO (e.g. `#define CUDA_WHO "clt_gpu"` before the first use).
#define CUDA_OK(call, what)                                         \
    do {                                                            \
        if (cuda_status((call), CUDA_WHO, (what), e)) return -1;    \
    } while (0)

// cudaMalloc of nbytes (at least 1 byte, so every buffer has an address) into *(void **)p: 0, or
// -1 with *p NULL and e = "WHO: cudaMalloc WHAT (N bytes): <CUDA's message>".
static inline int cuda_alloc_e(void *p, size_t nbytes, const char *who, const char *what, Error *e) {
    void **pp = (void **)p;
    *pp = nullptr;
    cudaError_t err = cudaMalloc(pp, nbytes ? nbytes : 1);
    if (err == cudaSuccess) return 0;
    *pp = nullptr;
    return err_set(e, "%s: cudaMalloc %s (%zu bytes): %s", who, what, nbytes, cudaGetErrorString(err));
}

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never past 2^31-1.
static inline unsigned int cuda_grid_for(size_t n, unsigned int block) {
    size_t blocks = (n + block - 1) / block;
    const size_t cap = (size_t)1 << 16;  // 64K blocks x 256 threads saturates an H100
    return (unsigned int)(blocks < 1 ? 1 : blocks > cap ? cap : blocks);
}
#endif
