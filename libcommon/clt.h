// clt.h — a JumpReLU cross-layer transcoder (CLT) and its training math on the CPU.
//
// L layers, F features per layer, model width d. Source layer l reads x_l (B, d):
//   h_l = x_l W_enc[l]ᵀ + b_enc[l]                       (B, F)
//   a_l = JumpReLU(h_l; θ_l) = h_l · H(h_l − θ_l),  θ_l = exp(log_theta[l])
//   ŷ_k = b_dec[k] + Σ_{l ≤ k} a_l W_dec[l][:, k−l, :]    (B, d) for target layers k
// Loss per batch (summed over d and layers, averaged over tokens):
//   mse      = (1/B) Σ_k ‖ŷ_k − y_k‖²
//   sparsity = λ  (1/B) Σ_l Σ_i tanh(c · a_li · ‖W_dec,li‖)
//   preact   = λ_P (1/B) Σ_l Σ_i ReLU(θ_li − h_li) · ‖W_dec,li‖
// with ‖W_dec,li‖ the norm of feature i's decoders concatenated over its targets k ≥ l.
// JumpReLU pseudo-gradients (rectangle kernel, bandwidth ε): ∂a/∂h = H(h − θ),
// ∂a/∂θ = −(θ/ε)·1[|h − θ| < ε/2], applied wherever a is used (also in the sparsity term).
// The decoder is sparse: forward and backward touch only active features (plus, for the
// threshold's pseudo-gradient, those inside the bandwidth window).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"

// All parameters in one flat buffer (so gradients, Adam moments and checkpoints share one
// layout); the per-layer pointers are views into it.
typedef struct {
    int L, d, F;
    size_t n;           // total floats
    float *data;        // (n,)
    float **W_enc;      // [L] (F, d)
    float **b_enc;      // [L] (F,)
    float **log_theta;  // [L] (F,)
    float **W_dec;      // [L] (F, L−l, d)
    float **b_dec;      // [L] (d,) per target layer
    int owns_data;
} CltParams;

// Allocates zeroed parameters (data == NULL) or views an existing buffer of clt_param_count().
void clt_params_init(CltParams *p, int L, int d, int F, float *data);
void clt_params_free(CltParams *p);
size_t clt_param_count(int L, int d, int F);
// Anthropic-style initialization (clt-training.md §1.4): W_enc ~ U(±1/√F), W_dec ~ U(±1/√(L·d)),
// biases 0, thresholds θ = theta0; deterministic from seed.
void clt_params_init_random(CltParams *p, uint64_t seed, float theta0);

// The initialization's random stream: splitmix64 (no global state) and a uniform draw in
// [−bound, bound). Draw k from a seed depends only on seed + (k+1)·γ, so a rank can start a slice
// of the stream at state seed + k·γ (clt_shard.c).
uint64_t clt_splitmix64(uint64_t *state);
float clt_uniform_pm(uint64_t *state, float bound);

typedef struct {
    float lam, c, lam_p, eps;  // sparsity coefficient, tanh scale, pre-activation coefficient, STE bandwidth
} CltLossParams;

typedef struct {
    double mse, sparsity, preact, total;
    double l0;      // mean active features per token, summed over layers
    double window;  // mean (token, feature) pairs inside the straight-through window |h − θ| < ε/2
                    // per token, summed over layers: how much of the decoder the backward reads
} CltLossTerms;

// Work buffers for a batch of B tokens.
typedef struct {
    int B;
    float **h, **a;       // [L] (B, F)
    float **yhat;         // [L] (B, d)
    float *dy;            // (B, L, d) dLoss/dŷ: token-major, so a feature's targets k ≥ l are one
                          // contiguous run dy[t, l:, :] matching its decoder row W_dec[l][i] (L−l, d)
    float **dh;           // [L] (B, F)
    float **norm;         // [L] (F,)
    float **theta;        // [L] (F,) exp(log θ), computed once per forward
    float **gnorm;        // [L] (F,) dLoss/d‖W_dec,i‖
    int32_t **act_off;    // [L] (B+1,) CSR offsets of active features per token
    int32_t **act_idx;    // [L] (capacity,) active feature ids
    size_t *act_cap;      // [L]
    int L, d, F;
} CltWork;

void clt_work_init(CltWork *w, int L, int d, int F, int B);
void clt_work_free(CltWork *w);

// x, y: [L] pointers to (B, d) rows. Forward fills h, a, yhat, norm and the active lists.
void clt_forward(const CltParams *p, float *const *x, int B, CltWork *w);
// Loss terms of the last forward against targets y.
CltLossTerms clt_loss(const CltParams *p, float *const *y, const CltLossParams *lp, CltWork *w);
// Gradients of the total loss into g (same layout as p; overwritten), after clt_forward.
void clt_backward(const CltParams *p, float *const *x, float *const *y, const CltLossParams *lp, CltWork *w, CltParams *g);

// Adam with fp32 master weights and moments; t is the 1-based step. lr_scale per parameter
// group is not applied here (caller scales lr).
void adam_step(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1, float beta2,
               float eps, int64_t t);
