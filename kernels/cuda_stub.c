// cuda_stub.c — the CUDA entry points the tools call, for a build without CUDA (NO_CUDA=1, or no
// nvcc): the Makefile puts this file in libcommon.a only then, and libkernels_cuda.a's real ones
// otherwise, so the tools have no #ifdef USE_CUDA. Each returns the same error; a tool asks
// cuda_devices first for --device cuda, so that is the one line a user sees. Keep in step with the
// plain C headers it implements: cuda_common.h (cuda_devices), gpu_ctx.h, forward_cuda.h,
// clt_cuda.h, attrib_cuda.h, comm.h (comm_init_nccl).
#include <stddef.h>

#include "attrib_cuda.h"
#include "clt_cuda.h"
#include "comm.h"
#include "cuda_common.h"
#include "forward_cuda.h"
#include "gpu_ctx.h"

#define NO_CUDA "built without CUDA (make without NO_CUDA=1)"

int cuda_devices(Error *e) { return err_set(e, NO_CUDA); }

int gpu_ctx_init(GpuCtx *g, Error *e) {
    g->cublas = g->stream = NULL;
    return err_set(e, NO_CUDA);
}
void gpu_ctx_free(GpuCtx *g) { (void)g; }
int gpu_ctx_sync(const GpuCtx *g, Error *e) { return (void)g, err_set(e, NO_CUDA); }

int model_gpu_upload(ModelGpu *mg, const Model *m, Error *e) { return (void)mg, (void)m, err_set(e, NO_CUDA); }
void model_gpu_free(ModelGpu *mg) { (void)mg; }
ForwardStateGpu *forward_state_gpu_new(const ModelGpu *mg, int B, int T, Error *e) {
    (void)mg, (void)B, (void)T;
    err_set(e, NO_CUDA);
    return NULL;
}
void forward_state_gpu_free(ForwardStateGpu *s) { (void)s; }
int forward_cuda(const GpuCtx *g, const ModelGpu *mg, ForwardStateGpu *s, const uint32_t *tokens, int B, int T,
                 ForwardOutputs *out, Error *e) {
    (void)g, (void)mg, (void)s, (void)tokens, (void)B, (void)T, (void)out;
    return err_set(e, NO_CUDA);
}

int clt_gpu_init(CltGpu **out, const GpuCtx *g, int L, int d, int F, int B, Error *e) {
    (void)g, (void)L, (void)d, (void)F, (void)B;
    *out = NULL;
    return err_set(e, NO_CUDA);
}
void clt_gpu_free(CltGpu *c) { (void)c; }
int clt_gpu_set_bf16(CltGpu *c, int on, Error *e) { return (void)c, (void)on, err_set(e, NO_CUDA); }
int clt_gpu_set_state(CltGpu *c, const float *params, const float *m, const float *v, Error *e) {
    return (void)c, (void)params, (void)m, (void)v, err_set(e, NO_CUDA);
}
int clt_gpu_get_state(CltGpu *c, float *params, float *m, float *v, Error *e) {
    return (void)c, (void)params, (void)m, (void)v, err_set(e, NO_CUDA);
}
int clt_gpu_set_batch(CltGpu *c, float *const *x, float *const *y, Error *e) {
    return (void)c, (void)x, (void)y, err_set(e, NO_CUDA);
}
int clt_gpu_set_target_mean(CltGpu *c, const float *mean_out, Error *e) {
    return (void)c, (void)mean_out, err_set(e, NO_CUDA);
}
int clt_gpu_forward(CltGpu *c, const Comm *comm, Error *e) { return (void)c, (void)comm, err_set(e, NO_CUDA); }
int clt_gpu_loss(CltGpu *c, const Comm *comm, const CltLossParams *lp, CltLossTerms *out, Error *e) {
    return (void)c, (void)comm, (void)lp, (void)out, err_set(e, NO_CUDA);
}
int clt_gpu_backward(CltGpu *c, const CltLossParams *lp, Error *e) { return (void)c, (void)lp, err_set(e, NO_CUDA); }
int clt_gpu_adam(CltGpu *c, float lr, float beta1, float beta2, float eps, int64_t t, Error *e) {
    return (void)c, (void)lr, (void)beta1, (void)beta2, (void)eps, (void)t, err_set(e, NO_CUDA);
}
int clt_gpu_batch_stats(CltGpu *c, double *err, double *var, int64_t *active, uint8_t *fired, Error *e) {
    return (void)c, (void)err, (void)var, (void)active, (void)fired, err_set(e, NO_CUDA);
}
int clt_gpu_get_yhat(CltGpu *c, float *const *yhat, Error *e) { return (void)c, (void)yhat, err_set(e, NO_CUDA); }
int clt_gpu_get_grads(CltGpu *c, float *grads, Error *e) { return (void)c, (void)grads, err_set(e, NO_CUDA); }

int comm_init_nccl(Comm *c, const Comm *bootstrap, int device, Error *e) {
    (void)bootstrap, (void)device;
    comm_init_single(c);
    return err_set(e, NO_CUDA);
}

AttribGpu *attrib_gpu_new(const Model *m, const AttribState *s, int B, Error *e) {
    (void)m, (void)s, (void)B;
    err_set(e, NO_CUDA);
    return NULL;
}
void attrib_gpu_free(AttribGpu *ag) { (void)ag; }
AttribBackend attrib_gpu_backend(AttribGpu *ag) { return (void)ag, (AttribBackend){0}; }
