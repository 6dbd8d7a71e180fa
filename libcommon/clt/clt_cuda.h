// clt_cuda.h — the CUDA twin of clt.c's training step: one rank's shard of a JumpReLU CLT
// (L layers, width d, F local features per layer, batch B tokens), resident on the device.
// Same math as clt_forward / clt_loss / clt_backward / adam_step (clt.h), same flat parameter
// layout (clt_param_count floats: params, gradients and both Adam moments), so checkpoints and
// the CPU trainer's state move between the two unchanged.
//
// One step:  set_batch → forward → loss → backward → adam   (batch_stats after the forward).
//   forward   h = x W_encᵀ (cuBLAS fp32, no TF32), then one fused epilogue per layer: + b_enc,
//             θ = exp(log θ), the JumpReLU test h > θ and per-token active counts; a CUB scan of
//             the counts gives the CSR offsets of the active lists (token-major, feature ids
//             ascending within a token, as clt.c's act_off/act_idx), one block per token fills
//             them (cub::BlockScan). Decoder norms ‖W_dec,li‖ (double sums). The sparse decode
//             (one block per token, source layers in order, each token's active features in
//             ascending order) writes the partial ŷ without b_dec; with comm->size > 1 it is
//             all-reduced (in place on the device with an NCCL Comm, staged through the host
//             with any other backend), then b_dec is added.
//   loss      mse from the full ŷ; sparsity, pre-activation and L0 over this rank's features,
//             all-reduced over comm as host doubles (as clt_shard_loss).
//   backward  dŷ = 2(ŷ − y)/B; the (token, feature) pairs that are active or in the bandwidth
//             window |h − θ| < ε/2 are listed per feature (CSC: a count per feature, a CUB scan,
//             tokens ascending), one warp per pair computes dL/da = W_dec row · dŷ (+ the tanh
//             term), one thread per feature walks its tokens in order for dh, the threshold's
//             pseudo-gradient, the pre-activation term, b_enc and ‖W_dec‖'s gradient; one block
//             per feature sums its W_dec gradient over its active tokens in order; dW_enc = dhᵀ x
//             is one cuBLAS GEMM per layer.
//   adam      adam_step's formula with round-to-nearest intrinsics (no FMA contraction), so
//             given the same gradients it is bit-identical to the CPU.
//
// Determinism: no atomics on floating-point results. Every sum has a fixed order (per-thread
// loops in index order, fixed-shape shuffle/block trees, fixed grids for the loss reductions with
// the partials summed on the host in order), so the same inputs give bit-identical outputs run
// after run (clt-fit --resume relies on it). The all-reduce adds the backend's order (fixed for a
// given rank count).
//
// Against the CPU (tests/gpu_test_clt.c, make test-gpu) results differ by summation order and
// FMA contraction only: ŷ and every gradient group to NMSE ≤ 1e-9, loss terms to ~1e-7 relative.
//
// Work is queued on g's stream; entry points that return host results synchronize. Each returns
// 0, or -1 with an Error. g must outlive the CltGpu (its stream and cuBLAS handle are used).
// Plain C: no CUDA headers here.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "gpu_ctx.h"  // first: it includes err.h with C linkage

#ifdef __cplusplus
extern "C" {
#endif

#include "clt.h"
#include "comm.h"

typedef struct CltGpu CltGpu;

// Allocates params/grads/Adam moments (zeroed) and the work buffers on the current device.
// Errors unless B·F < 2^31 (per-layer dense indices are 32-bit).
int clt_gpu_init(CltGpu **out, const GpuCtx *g, int L, int d, int F, int B, Error *e);
void clt_gpu_free(CltGpu *c);

// bf16 encoder GEMMs (on: 1): h = x W_encᵀ and dW_enc = dhᵀ x take bf16 copies of W_enc, x and
// dh (rounded to nearest even each step from the fp32 values) with fp32 accumulation and output
// (cublasGemmEx); everything else, the master weights and Adam's moments stay fp32. Off (the
// default): fp32 GEMMs throughout. Allocates the bf16 scratch (F·d + B·d + B·F halves).
int clt_gpu_set_bf16(CltGpu *c, int on, Error *e);
// Host flat vectors (clt_param_count(L, d, F) floats) to the device; m, v may be NULL (zeros).
int clt_gpu_set_state(CltGpu *c, const float *params, const float *m, const float *v, Error *e);
// Device to host; any of them may be NULL.
int clt_gpu_get_state(CltGpu *c, float *params, float *m, float *v, Error *e);
// x, y: host [L] pointers to (B, d) inputs and targets.
int clt_gpu_set_batch(CltGpu *c, float *const *x, float *const *y, Error *e);
// Host (L, d) target means, for batch_stats' variance (zeros until set).
int clt_gpu_set_target_mean(CltGpu *c, const float *mean_out, Error *e);

// Collective over comm (NULL = one process).
int clt_gpu_forward(CltGpu *c, const Comm *comm, Error *e);
// After clt_gpu_forward; collective over comm. Every term as clt_shard_loss computes it.
int clt_gpu_loss(CltGpu *c, const Comm *comm, const CltLossParams *lp, CltLossTerms *out, Error *e);
// After clt_gpu_forward (and set_batch's y): the gradients of the total loss into the device
// gradient vector (as clt_backward; no communication needed).
int clt_gpu_backward(CltGpu *c, const CltLossParams *lp, Error *e);
// adam_step on the device: t is the 1-based step.
int clt_gpu_adam(CltGpu *c, float lr, float beta1, float beta2, float eps, int64_t t, Error *e);

// After clt_gpu_forward, for the trainer's metrics (any pointer may be NULL):
//   err[k] = Σ‖ŷ_k − y_k‖², var[k] = Σ‖y_k − mean_k‖² (double sums over the batch),
//   active[k] = active (token, feature) pairs of layer k, fired (L, F) = 1 where feature i of
//   layer k fired on some token of the batch, else 0.
int clt_gpu_batch_stats(CltGpu *c, double *err, double *var, int64_t *active, uint8_t *fired, Error *e);

// For tests: the reconstruction into host [L] (B, d) buffers; the gradient flat vector.
int clt_gpu_get_yhat(CltGpu *c, float *const *yhat, Error *e);
int clt_gpu_get_grads(CltGpu *c, float *grads, Error *e);

#ifdef __cplusplus
}
#endif
