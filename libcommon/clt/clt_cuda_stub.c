// clt_cuda_stub.c — clt_cuda.cu's entry points in a build without CUDA: each returns
// CUDA_STUB_MSG. Like every *_stub.c, in libcommon.a only then (see kernels/cuda_stub.c).
#include <stddef.h>

#include "clt_cuda.h"
#include "cuda_common.h"

int clt_gpu_init(CltGpu **out, const GpuCtx *g, int L, int d, int F, int B, Error *e) {
    (void)g, (void)L, (void)d, (void)F, (void)B;
    *out = NULL;
    return err_set(e, CUDA_STUB_MSG);
}
void clt_gpu_free(CltGpu *c) { (void)c; }
int clt_gpu_set_bf16(CltGpu *c, int on, Error *e) { return (void)c, (void)on, err_set(e, CUDA_STUB_MSG); }
int clt_gpu_set_state(CltGpu *c, const float *params, const float *m, const float *v, Error *e) {
    return (void)c, (void)params, (void)m, (void)v, err_set(e, CUDA_STUB_MSG);
}
int clt_gpu_get_state(CltGpu *c, float *params, float *m, float *v, Error *e) {
    return (void)c, (void)params, (void)m, (void)v, err_set(e, CUDA_STUB_MSG);
}
int clt_gpu_set_batch(CltGpu *c, float *const *x, float *const *y, Error *e) {
    return (void)c, (void)x, (void)y, err_set(e, CUDA_STUB_MSG);
}
int clt_gpu_set_target_mean(CltGpu *c, const float *mean_out, Error *e) {
    return (void)c, (void)mean_out, err_set(e, CUDA_STUB_MSG);
}
int clt_gpu_forward(CltGpu *c, const Comm *comm, Error *e) { return (void)c, (void)comm, err_set(e, CUDA_STUB_MSG); }
int clt_gpu_loss(CltGpu *c, const Comm *comm, const CltLossParams *lp, CltLossTerms *out, Error *e) {
    return (void)c, (void)comm, (void)lp, (void)out, err_set(e, CUDA_STUB_MSG);
}
int clt_gpu_backward(CltGpu *c, const CltLossParams *lp, Error *e) {
    return (void)c, (void)lp, err_set(e, CUDA_STUB_MSG);
}
int clt_gpu_adam(CltGpu *c, float lr, float beta1, float beta2, float eps, int64_t t, Error *e) {
    return (void)c, (void)lr, (void)beta1, (void)beta2, (void)eps, (void)t, err_set(e, CUDA_STUB_MSG);
}
int clt_gpu_batch_stats(CltGpu *c, double *err, double *var, int64_t *active, uint8_t *fired, Error *e) {
    return (void)c, (void)err, (void)var, (void)active, (void)fired, err_set(e, CUDA_STUB_MSG);
}
int clt_gpu_get_yhat(CltGpu *c, float *const *yhat, Error *e) { return (void)c, (void)yhat, err_set(e, CUDA_STUB_MSG); }
int clt_gpu_get_grads(CltGpu *c, float *grads, Error *e) { return (void)c, (void)grads, err_set(e, CUDA_STUB_MSG); }
