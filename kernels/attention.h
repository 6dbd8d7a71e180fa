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
// CUDA twin (kernels/attention.cu), same semantics; device pointers, queued on g's stream. One
// block per (b, h, query row) keeps that row's T scores in shared memory (4*(T + hd) bytes, opted
// in past 48 KiB: T up to ~57K on an H100); no other scratch. 0, or -1 with an Error.
int attention_cuda(const GpuCtx *g, float *out, float *probs, const float *q, const float *k, const float *v, const AttnShape *s, Error *e);

#ifdef __cplusplus
}
#endif
