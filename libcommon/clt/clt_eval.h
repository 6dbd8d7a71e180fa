// clt_eval.h — a CLT on held-out activation shards: reconstruction and sparsity metrics
// (clt-training.md §1.8). The CLT acts on raw activations (clt_load's weights have the training
// normalization folded in), so shards are read as they are.
//   nmse_k = Σ_t ‖ŷ_k − y_k‖² / Σ_t ‖y_k − ȳ_k‖²    (FVU; ȳ_k from the shards' statistics, token-
//            weighted over shards, the same definition clt-fit logs during training)
//   fve_k  = 1 − nmse_k
//   l0_l   = mean active features of source layer l per token
//   dead_l = features of layer l that never fired on these tokens
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "clt.h"
#include "err.h"

typedef struct {
    int L, F;
    uint64_t tokens;
    double *nmse, *fve;    // (L,) per target layer
    double *l0;            // (L,) per source layer
    int64_t *dead;         // (L,)
    uint64_t *fire_count;  // (L, F) tokens on which each feature fired
    double mse;            // mean over tokens of Σ_k ‖ŷ_k − y_k‖² (raw units)
} CltEvalResult;


// Runs p over every token of the shards (batches of `batch` tokens). Each shard must hold p->L
// layers of width p->d with output hook mlp_out; when input_hook is a name clt-fit writes
// (clt_shard_hook: hook_resid_mid ↔ resid_mid, mlp.hook_in ↔ mlp_in) the shard's input hook must match.
int clt_eval_shards(const CltParams *p, const char *input_hook, char *const *paths, int n_paths, int batch,
                    CltEvalResult *r, Error *e);
void clt_eval_result_free(CltEvalResult *r);
// The result as JSON members (no braces): "tokens", "nmse", "fve", "nmse_mean", "mse", "l0",
// "l0_per_layer", "dead", "dead_per_layer", "dead_frac", indented by `indent` spaces.
void clt_eval_print_members(FILE *f, const CltEvalResult *r, int indent);
