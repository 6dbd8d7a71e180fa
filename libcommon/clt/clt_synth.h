// clt_synth.h — synthetic ground truth for CLT training (clt-training.md §6): a planted sparse
// cross-layer transcoder whose activations are written as an activation shard, so a trainer can
// be checked on whether it recovers the planted features.
//
// The planted model, per source layer l (layers are independent of each other):
//   F features in superposition in d dimensions (F > d), each with a unit-norm input direction
//   e_li (d,) and decoders D_li = (D_li,l, …, D_li,L−1), one (d,) vector per target k ≥ l, whose
//   concatenation is unit-norm. Directions are i.i.d. Gaussian, normalized.
//   Firing: feature i fires on a token with probability p_li ∝ (i + 1)^−zipf (capped at 0.9), scaled
//   so Σ_i p_li = l0; the most frequent feature is i = 0. Magnitude when firing: 1 + |N(0, 1)|.
//   x_l = Σ_i a_li e_li + σ·N(0, I)        (hook "resid_mid")
//   y_k = Σ_{l ≤ k} Σ_i a_li D_li,k + σ·N(0, I)   (hook "mlp_out")
// so an encoder can detect each feature from its own layer's input, and a CLT with the planted
// decoders reconstructs every target up to the noise.
#pragma once
#include <stdint.h>

#include "actshard.h"
#include "clt.h"
#include "err.h"

typedef struct {
    int L, d, F;         // layers, width, planted features per layer
    uint64_t n_tokens;   // tokens written
    double l0;           // expected active planted features per layer and token
    double zipf;         // firing-frequency exponent (0: uniform)
    double noise;        // σ of the Gaussian noise on every input and target value
    uint64_t seed;       // the planted model: directions and firing probabilities
    uint64_t data_seed;  // the sampled tokens; another value gives a held-out shard of the same model
    ActDtype dtype;      // shard encoding (ACT_F32 when zero-initialized)
} SynthConfig;

typedef struct {
    int L, d, F;
    float **enc;     // [L] (F, d) unit-norm input directions
    float **dec;     // [L] (F, L−l, d) decoders, each feature's concatenation unit-norm
    float **p_fire;  // [L] (F,) firing probabilities
    double *l0;      // (L,) planted L0 per layer: observed in the shard (after synth_write_shard or
                     // synth_load_truth), else the expected Σ_i p_li
} SynthModel;

// Builds the planted model of c (directions and probabilities from c->seed).
int synth_model_init(SynthModel *m, const SynthConfig *c, Error *e);
void synth_model_free(SynthModel *m);
// Samples c->n_tokens tokens from c->data_seed and writes them as an activation shard (c->dtype,
// layers 0..L−1, hooks resid_mid/mlp_out, synthetic token ids, documents of 128 tokens). Sets
// m->l0 to the observed mean L0 per layer.
int synth_write_shard(SynthModel *m, const SynthConfig *c, const char *path, Error *e);
// The planted truth as dir/truth.safetensors (dir created if missing): enc_{l} (F, d), W_dec_{l}
// (F, L−l, d), p_fire_{l} (F,); metadata: the configuration and the planted L0 per layer.
int synth_save_truth(const char *dir, const SynthModel *m, const SynthConfig *c, Error *e);
int synth_load_truth(const char *dir, SynthModel *m, Error *e);

// Recovery of the planted decoders by a learned CLT p (raw space, as clt_load gives it): for every
// planted feature, the largest cosine similarity between its concatenated decoder and any learned
// feature's concatenated decoder of the same source layer (the MMCS of Sharkey et al.).
typedef struct {
    double *mmcs;        // (L,) mean over planted features of the max cosine
    double *frac_09;     // (L,) fraction of planted features with max cosine > 0.9
    double mmcs_all;     // over all layers' planted features
    double *max_cos;     // (L, F_planted) the per-feature maxima
} SynthRecovery;

int synth_recovery(const SynthModel *m, const CltParams *p, SynthRecovery *r, Error *e);
void synth_recovery_free(SynthRecovery *r);
