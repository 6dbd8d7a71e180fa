// model_forward_cuda_stub.c — model_forward_cuda.cu's entry points in a build without CUDA: each
// returns CUDA_STUB_MSG. Like every *_stub.c, in libcommon.a only then (see kernels/cuda_stub.c).
#include <stddef.h>

#include "model_forward_cuda.h"
#include "cuda_common.h"

int model_gpu_upload(ModelGpu *mg, const Model *m, Error *e) { return (void)mg, (void)m, err_set(e, CUDA_STUB_MSG); }
void model_gpu_free(ModelGpu *mg) { (void)mg; }
ForwardStateGpu *forward_state_gpu_new(const ModelGpu *mg, int B, int T, Error *e) {
    (void)mg, (void)B, (void)T;
    err_set(e, CUDA_STUB_MSG);
    return NULL;
}
void forward_state_gpu_free(ForwardStateGpu *s) { (void)s; }
int forward_cuda(const GpuCtx *g, const ModelGpu *mg, ForwardStateGpu *s, const uint32_t *tokens, int B, int T,
                 ForwardOutputs *out, Error *e) {
    (void)g, (void)mg, (void)s, (void)tokens, (void)B, (void)T, (void)out;
    return err_set(e, CUDA_STUB_MSG);
}
