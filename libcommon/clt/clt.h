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
//
// TopK / BatchTopK (clt_work_set_activation): instead of θ, layer l keeps per token its k largest
// positive pre-activations (TopK), or over the whole batch its B·k largest (BatchTopK, Bussmann et
// al. 2024): a = h where h > 0 and h ≥ the cutoff. The loss is then the reconstruction alone (λ, λ_P
// and θ play no part); the gradient passes through the selected features (∂a/∂h = 1 there, 0
// elsewhere). Each batch yields a threshold estimate per layer (cut_stat): for BatchTopK the
// smallest selected pre-activation, for TopK the mean over tokens of each token's smallest; the
// trainer averages them into θ so the saved CLT is a JumpReLU one (the BatchTopK → JumpReLU
// conversion of Bussmann et al., one θ per layer).
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

typedef enum { CLT_JUMPRELU = 0, CLT_TOPK = 1, CLT_BATCHTOPK = 2 } CltActivation;

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
    int B;                // capacity in tokens
    int n;                // tokens of the last forward (≤ B; the loss and backward need n == B)
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
    CltActivation act;    // CLT_JUMPRELU unless clt_work_set_activation says otherwise
    int k;                // TopK / BatchTopK: features per token per layer
    double *cut_stat;     // [L] the batch's threshold estimate (TopK modes; 0 for JumpReLU)
    double *sq_err;       // [L] Σ‖ŷ_k − y_k‖² over the batch per target layer, set by clt_loss
    int L, d, F;
} CltWork;

void clt_work_init(CltWork *w, int L, int d, int F, int B);
void clt_work_free(CltWork *w);
void clt_work_set_activation(CltWork *w, CltActivation act, int k);

// x, y: [L] pointers to (B, d) rows. Forward fills h, a, yhat, norm and the active lists:
// clt_encode, then per layer (TopK modes: candidates and cutoffs) clt_select, then clt_decode.
void clt_forward(const CltParams *p, float *const *x, int B, CltWork *w);
// The steps, for the sharded forward (clt_shard.c), whose TopK cutoffs span every rank's features.
// Encode: h (GEMM), θ = exp(log θ) and the decoder norms.
void clt_encode(const CltParams *p, float *const *x, int B, CltWork *w);
// TopK modes: the selection runs over groups (a token for TopK, the batch for BatchTopK) of
// K = k (TopK) or B·k (BatchTopK) kept values. Candidates: layer l's K largest positive h of each
// group (unordered, zero-padded), (groups, K). Cutoffs: the K-th largest of each group over n_sets
// candidate blocks laid end to end (one per rank), (groups,); 0 when a group has fewer than K
// positive values (all of them are kept).
size_t clt_topk_groups(const CltWork *w);
size_t clt_topk_candidates_per_group(const CltWork *w);
void clt_topk_candidates(const CltWork *w, int l, float *cand);
void clt_topk_cutoffs(const CltWork *w, const float *cand, int n_sets, float *cut);
// a and the active lists of layer l: JumpReLU (cut unused, may be NULL) or the TopK cutoffs.
void clt_select(CltWork *w, int l, const float *cut);
// ŷ from the active lists: b_dec + the sparse sum over active features.
void clt_decode(const CltParams *p, CltWork *w);
// Loss terms of the last forward against targets y.
CltLossTerms clt_loss(const CltParams *p, float *const *y, const CltLossParams *lp, CltWork *w);
// Past this fraction of a layer's (token, feature) pairs needing dL/da (active or inside the
// threshold's window), the backward computes dL/da of every pair with one GEMM, dŷ[:, l:] ·
// W_dec[l]ᵀ, instead of one dot product per pair (the CPU here and the CUDA twin alike).
#define CLT_DENSE_DA_FRACTION 0.05
// Gradients of the total loss into g (same layout as p; overwritten), after clt_forward.
void clt_backward(const CltParams *p, float *const *x, float *const *y, const CltLossParams *lp, CltWork *w,
                  CltParams *g);

// Adam with fp32 master weights and moments; t is the 1-based step. lr_scale per parameter
// group is not applied here (caller scales lr).
void adam_step(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1, float beta2,
               float eps, int64_t t);
