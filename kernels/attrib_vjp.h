// attrib_vjp.h — the hot steps of `attrib`'s backward pass through the linearized model (frozen
// attention patterns and norm scales): a batch of B targets at once, gradients laid out
// position-major (Te, B, D) with Te ≤ T the positions that can carry gradient (causality: a
// target at position p moves nothing after p). Position-major, a head's slice of the whole batch
// is one (Te, B·hd) matrix, so the frozen pattern's transpose is one GEMM per head. CPU over
// OpenBLAS (a plain C loop without it); the CUDA twin is kernels/attrib_vjp.cu over cuBLAS. Plain
// GEMMs are kernels/matmul.h's gemm_cpu / gemm_cuda.
#pragma once
#include <stdint.h>

#include "attention.h"
#include "gpu_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

// One layer's frozen attention pattern, never held whole: recomputed in tiles from the prompt's
// queries and keys (after RoPE) and each row's softmax statistics (kernels/attention.h). Memory
// O(T·(H + KVH)·hd) instead of H·T² floats; pointers on the host (CPU) or the device (CUDA).
typedef struct {
    const float *q, *k;              // (T, H·hd), (T, KVH·hd)
    const float *row_max, *row_inv;  // (H, T)
    AttnShape shape;                 // B = 1; T the prompt's length
} AttribPattern;

// The frozen pattern's transpose for head h: y (Te, cols) = beta·y + P[:Te, :Te]ᵀ x, x (Te, cols).
// Causal: output row j (a key) reads x rows i ≥ j only. Each worker owns blocks of output rows and
// recomputes their pattern columns tile by tile (flash-attention's backward order), so the
// pattern costs (IB × JB) floats of scratch per thread.
void attrib_pattern_t_cpu(float *y, const float *x, const AttribPattern *p, int h, int Te, int cols, float beta);

// The vector–Jacobian product of a norm with its scale frozen at the prompt's value:
//   RMSNorm   out = x · rstd · (w_off + w)            →  g_x = g · (w_off + w) · rstd
//   LayerNorm out = (x − mean x) · rstd · w + b       →  g_x = C(g · w) · rstd,  C(u) = u − mean(u)
// (the centering is linear and stays). g (Te, B, D); rstd (T,) per position; out (Te, B, D)
// receives g_x (accumulate: added to out, else overwritten).
void attrib_norm_vjp_cpu(float *out, const float *g, const float *w, float w_off, int centered, const float *rstd,
                         int B, int Te, int D, int accumulate);

// The decoder sources writing into one layer, grouped by position: sources off[p] ≤ s < off[p+1]
// sit at position p (off (T+1,)); source s's vector is act[s] · base[row[s] .. row[s] + D) (an
// activation-scaled decoder row), col (n,) their row columns. g (Te, B, D). For every batch element
// b and p < Te:
//   rows[b·ld_rows + col[s]] += Σ_d g[b, p, d] · act[s] · base[row[s] + d]
// A column appears at most once per call (one decoder vector per feature and layer).
void attrib_decoder_dots_cpu(float *rows, int64_t ld_rows, const int64_t *off, const int32_t *col, const float *base,
                             const int64_t *row, const float *act, const float *g, int B, int Te, int D);

// One source per position: rows[b·ld_rows + col0 + p] = Σ_d g[p, b, d] · vecs[p, d] for p < Te and 0
// for Te ≤ p < T. vecs (T, D): error vectors of one layer, or the token embeddings (scaled by
// vec_scale: Gemma's √D embedding scale).
void attrib_position_dots_cpu(float *rows, int64_t ld_rows, int64_t col0, const float *vecs, float vec_scale,
                              const float *g, int B, int Te, int T, int D);

// CUDA twins (kernels/attrib_vjp.cu): the same semantics on device pointers (off and col too),
// queued on g's stream; fp32 cuBLAS GEMMs (no TF32). attrib_pattern_t_cuda recomputes the pattern in
// blocks of query rows against every key up to the block's end (the zeros above the diagonal
// included). 0, or -1 with an Error.
// scratch: device floats for one tile of the pattern, at least attrib_pattern_scratch_cuda(Te);
// beta 0 or 1.
int64_t attrib_pattern_scratch_cuda(int Te);
int attrib_pattern_t_cuda(const GpuCtx *g, float *y, const float *x, const AttribPattern *p, int h, int Te, int cols,
                          float beta, float *scratch, Error *e);
int attrib_norm_vjp_cuda(const GpuCtx *g, float *out, const float *gr, const float *w, float w_off, int centered,
                         const float *rstd, int B, int Te, int D, int accumulate, Error *e);
// n_src: the number of sources (off[T]); T: positions in off.
int attrib_decoder_dots_cuda(const GpuCtx *g, float *rows, int64_t ld_rows, const int64_t *off, int T, int64_t n_src,
                             const int32_t *col, const float *base, const int64_t *row, const float *act,
                             const float *gr, int B, int Te, int D, Error *e);
int attrib_position_dots_cuda(const GpuCtx *g, float *rows, int64_t ld_rows, int64_t col0, const float *vecs,
                              float vec_scale, const float *gr, int B, int Te, int T, int D, Error *e);

#ifdef __cplusplus
}
#endif
