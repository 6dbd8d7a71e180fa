// model_block.h — the steps of the transformer block (model.h's BlockSpec) on the CPU, shared by
// the batched forward (model_forward.c) and the KV-cache decoder (model_kv.c); the CUDA twin
// (libcommon/model/model_forward_cuda.cu) has the same steps under the same names with _cuda. Each step reads
// the description, never the architecture, so a path is the same sequence of calls for every
// model:
//
//   block_embed_cpu                                    x = embed_scale · E[tok] (+ P[pos])
//   per layer: block_norm_cpu → block_qkv_cpu → block_rope_cpu → attention_cpu (block_attn_shape)
//              → block_attn_out_cpu → block_add_cpu       (attention)
//              block_norm_cpu → block_mlp_cpu → block_add_cpu       (MLP)
//   block_norm_cpu → block_logits_cpu
//
// Rows are tokens: N = B·T batch-major for the batched path, the n new positions of one sequence
// for the cached one. Scratch is the caller's (its own state), so the steps allocate nothing.
#pragma once
#include <stdint.h>

#include "attention.h"
#include "model.h"

// An error naming `what` ("forward", "decode") unless every id of tokens (n,) is in the vocabulary.
int block_check_tokens(const ModelConfig *c, const uint32_t *tokens, int64_t n, const char *what, Error *e);

// x (N, D) = embed_scale · E[tokens] (+ P[pos0 + r % T] with learned positions): row r of N holds
// position pos0 + r % T (B sequences of T, or one sequence's new rows at pos0.. with T = N).
// The ids must be checked (block_check_tokens).
void block_embed_cpu(const Model *m, float *x, const uint32_t *tokens, int N, int T, int pos0);

// out (N, D) = the model's norm of x (N, D) with weight w and bias b (LayerNorm; else unused);
// rstd (N,) receives the norm scales when non-NULL. out may equal x.
void block_norm_cpu(const Model *m, float *out, const float *x, const float *w, const float *b, int N, float *rstd);

// The projections of layer l: q (N, H·hd), k and v (N, KVH·hd) from xn (N, D).
void block_qkv_cpu(const Model *m, int l, float *q, float *k, float *v, const float *xn, int N);

// Rotates q (B·T, H, hd) and k (B·T, KVH, hd) in place when the model uses rope; cos_t, sin_t
// (T, hd/2) are the tables of the rows' positions (block_rope_table).
void block_rope_cpu(const Model *m, float *q, float *k, const float *cos_t, const float *sin_t, int B, int T);

// cos_t, sin_t (T, hd/2) for positions 0..T-1, or nothing without rope (returns 0 then, else 1).
int block_rope_table(const Model *m, float *cos_t, float *sin_t, int T);

// The attention of layer l over B sequences of T queries: scale, soft-cap and window (also the
// CUDA path's: plain host code).
AttnShape block_attn_shape(const ModelConfig *c, int l, int B, int T);

// tmp (N, D) = what the attention of layer l adds to the residual: att (N, H·hd) · W_o (+ b_o),
// then the post-attention norm if the model has one (its scales into post_rstd (N,) if non-NULL).
void block_attn_out_cpu(const Model *m, int l, float *tmp, const float *att, int N, float *post_rstd);

// out (N, D) = what the MLP of layer l adds to the residual, from its normalized input xn (N, D),
// post-MLP norm included; gate and up (N, F) are scratch.
void block_mlp_cpu(const Model *m, int l, float *out, const float *xn, float *gate, float *up, int N);

// x (n) += t (n): the residual add.
void block_add_cpu(float *x, const float *t, size_t n);

// logits (N, V) = h (N, D) · Wᵤᵀ from the final norm's output, soft-capped if the model does.
void block_logits_cpu(const Model *m, float *logits, const float *h, int N);
