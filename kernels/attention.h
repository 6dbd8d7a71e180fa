// attention.h — causal multi-head attention with grouped-query heads, fp32.
//   q (B, T, H, hd), k and v (B, T, KVH, hd); query head h reads kv head h / (H / KVH).
//   scores = q·k * scale, then softcap (cap * tanh(s / cap), if softcap > 0), causal mask, and a
//   sliding window (key j visible from query i iff i − window < j ≤ i, if window > 0); softmax.
//   out (B, T, H, hd); probs (B, H, T, T) receives the softmax weights when non-NULL (zeros above
//   the diagonal), which attribution needs.
#pragma once

#include "gpu_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int B, T, H, KVH, hd;
    float scale, softcap;
    int window;
} AttnShape;

void attention_cpu(float *out, float *probs, const float *q, const float *k, const float *v, const AttnShape *s);
// The direct loop (one query row at a time); attention_cpu uses sgemms when built with BLAS and
// is tested against this one.
void attention_naive_cpu(float *out, float *probs, const float *q, const float *k, const float *v, const AttnShape *s);
// Attention of n new queries against a KV cache (one sequence; text generation): q (n, H, hd)
// holds positions pos0..pos0+n-1, k and v (pos0+n, KVH, hd) every position so far, the new ones
// included. Same scale, softcap, causal mask and window as attention_cpu (s->B and s->T unused).
// out (n, H, hd). CPU only: decoding a token is too little work per step for the GPU path yet.
void attention_kv_cpu(float *out, const float *q, const float *k, const float *v, int n, int pos0, const AttnShape *s);
// The pattern recomputed instead of stored (attribution keeps q and k, O(T), not the O(T²) probs).
// One sequence (s->B = 1): q (T, H, hd), k (T, KVH, hd) as attention_cpu takes them.
// attention_row_stats_cpu: each row's softmax statistics, row_max and row_inv (H, T): the largest
// score of row i of head h and 1 / Σ_j exp(score − max). attention_probs_block_cpu: head h's
// probabilities of queries [i0, i0+ni) against keys [j0, j0+nj) from them, p (ni, nj) row stride ldp,
// exp(score − max) · inv and 0 where masked: the values attention_cpu writes to probs. Runs on the
// calling thread (a caller's worker tiles the pattern).
void attention_row_stats_cpu(float *row_max, float *row_inv, const float *q, const float *k, const AttnShape *s);
void attention_probs_block_cpu(float *p, int ldp, const float *q, const float *k, const float *row_max,
                               const float *row_inv, const AttnShape *s, int h, int i0, int ni, int j0, int nj);
// CUDA twin (kernels/attention.cu), same semantics; device pointers, queued on g's stream. One
// block per (b, h, query row) keeps that row's T scores in shared memory (4*(T + hd) bytes, opted
// in past 48 KiB: T up to ~57K on an H100); no other scratch. 0, or -1 with an Error.
int attention_cuda(const GpuCtx *g, float *out, float *probs, const float *q, const float *k, const float *v,
                   const AttnShape *s, Error *e);

#ifdef __cplusplus
}
#endif
