// clt_shard.h — feature sharding of a CLT (clt.h) across the ranks of a Comm (comm.h).
//
// Rank r of R owns features [r·F/R, (r+1)·F/R) of every layer: their W_enc rows, b_enc, log θ and
// W_dec rows. Its CltParams is an ordinary CLT with F_local = F/R features (same flat layout);
// b_dec is replicated. One step:
//   forward   each rank encodes its features and decodes its partial ŷ (without b_dec); one
//             all-reduce sums the partials; b_dec is added after it, on every rank.
//   loss      the MSE is computed from the summed ŷ (identical everywhere); the sparsity and
//             pre-activation terms and L0 are per-feature sums, all-reduced for reporting.
//   backward  clt_backward on the shard as is: dŷ is identical everywhere, so each rank gets the
//             gradients of its own features and the same b_dec gradient (the replicas stay equal).
//   Adam      per rank, on its flat vector (its slice + b_dec).
// With one rank every function here is exactly the unsharded one (bit-identical results).
#pragma once
#include "clt.h"
#include "comm.h"
#include "err.h"

typedef struct {
    const Comm *comm;
    int L, d, F;           // the full CLT
    int F_local, first;    // this rank's features of every layer: [first, first + F_local)
    float *zeros;          // (d,) zeros
    float **zero_bias;     // [L] -> zeros: b_dec of a partial forward
} CltShard;

// Errors unless F is divisible by the number of ranks.
int clt_shard_init(CltShard *s, const Comm *c, int L, int d, int F, Error *e);
void clt_shard_free(CltShard *s);

// This rank's slice of clt_params_init_random(full CLT with s->F features, seed, theta0): the same
// numbers whatever the rank count (the generator is skipped ahead to each slice). p: F_local.
void clt_shard_init_random(const CltShard *s, CltParams *p, uint64_t seed, float theta0);

// Collective forward: fills w as clt_forward does, with yhat the full reconstruction.
int clt_shard_forward(const CltShard *s, const CltParams *p, float *const *x, int B, CltWork *w, Error *e);
// Collective loss after clt_shard_forward: every term over all features, equal on every rank.
int clt_shard_loss(const CltShard *s, const CltParams *p, float *const *y, const CltLossParams *lp, CltWork *w,
                   CltLossTerms *out, Error *e);

// Flat vectors in the CltParams layout (parameters, gradients, Adam moments). gather: the shards'
// local vectors (clt_param_count(L, d, F_local)) into root 0's full vector (clt_param_count(L, d,
// F); ignored elsewhere), b_dec from rank 0. scatter: the inverse, b_dec broadcast to all ranks.
int clt_shard_gather(const CltShard *s, const float *local, float *full, Error *e);
int clt_shard_scatter(const CltShard *s, const float *full, float *local, Error *e);
