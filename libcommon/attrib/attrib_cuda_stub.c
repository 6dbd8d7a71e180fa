// attrib_cuda_stub.c — attrib_cuda.cu's entry points in a build without CUDA: each returns
// CUDA_STUB_MSG. Like every *_stub.c, in libcommon.a only then (see kernels/cuda_stub.c).
#include <stddef.h>

#include "attrib_cuda.h"
#include "cuda_common.h"

AttribGpu *attrib_gpu_new(const Model *m, const AttribState *s, int B, Error *e) {
    (void)m, (void)s, (void)B;
    err_set(e, CUDA_STUB_MSG);
    return NULL;
}
void attrib_gpu_free(AttribGpu *ag) { (void)ag; }
AttribBackend attrib_gpu_backend(AttribGpu *ag) { return (void)ag, (AttribBackend){0}; }
