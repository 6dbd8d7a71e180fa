// rope.h — rotary position embeddings in Hugging Face's rotate_half layout: within a head of
// size hd, element i pairs with element i + hd/2. The cos/sin tables are built on the CPU (also
// for the GPU path) from theta and the optional Llama 3 frequency scaling.
#pragma once

#include "gpu_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float theta;
    int llama3;  // apply Llama 3 "rope_type": "llama3" scaling
    float factor, low_freq_factor, high_freq_factor;
    int original_max_pos;
} RopeParams;

// cos, sin: (T, hd/2) for positions 0..T-1.
void rope_table(float *cos_t, float *sin_t, int T, int hd, const RopeParams *p);
// x: (B*T, n_heads, hd) in place; row r has position r % T (sequences of length T).
void rope_apply_cpu(float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd);
// CUDA twin (kernels/rope.cu): x, cos_t, sin_t are device pointers (the tables uploaded from
// rope_table); queued on g's stream. 0, or -1 with an Error if the launch fails.
int rope_apply_cuda(const GpuCtx *g, float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads,
                    int hd, Error *e);

#ifdef __cplusplus
}
#endif
