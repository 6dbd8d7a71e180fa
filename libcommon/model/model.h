// model.h — transformer language models from a Hugging Face checkpoint directory (config.json +
// model.safetensors or model.safetensors.index.json shards), weights held in fp32 on the CPU.
// Architectures: Llama (incl. Llama 3 rope scaling, GQA, tied or untied), Gemma 2 and GPT-2.
// The config parser settles how the block computes once, into a BlockSpec (below); every forward
// path (model_forward.c batched, model_kv.c cached, model_forward_cuda.cu, attrib's frozen
// backward) reads only that description, through the step functions of model_block.h.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "act.h"
#include "err.h"
#include "rope.h"

typedef enum { ARCH_LLAMA, ARCH_GEMMA2, ARCH_GPT2 } ModelArch;

// ---- the block description ------------------------------------------------------------------
//
// Every architecture here is one pre-norm block repeated n_layers times:
//
//   x = embed_scale · E[token] (+ P[position] without rope)                   // (N, D)
//   per layer l:
//     a = attention(norm(x)): q, k rotated if rope; scores · layer[l].attn_scale, soft-capped
//         by attn_softcap, causal within layer[l].window; a = norm(a) if post_attn_norm; x += a
//     m = mlp(norm(x)) of kind `mlp` with `act`; m = norm(m) if post_mlp_norm; x += m
//   logits = softcap(norm(x) · Wᵤᵀ, final_softcap)                             // (N, V)
//
// where every norm is `norm` (RMSNorm or LayerNorm, its eps and weight offset). model_describe
// (model.c) is the one place that maps an architecture to this description; the forward paths
// never look at `arch`.
//
// Adding an architecture: an ARCH_ value, its branch of the config parser and its CONFIG_KEYS rows
// (model.c), its case in model_describe, and its tensor names in the weight loader. A variant of a
// step the description already has (Mistral: a window on every layer; Qwen 2: q/k/v biases, which
// LayerWeights already carries) needs no other change. A new kind of step (Qwen 3 and Gemma 3 norm
// q and k per head; Gemma 3 rotates its sliding layers with another rope base) is a field here, a
// tensor in LayerWeights, and the step in model_block.c with its CUDA twin in model_forward_cuda.cu.

typedef enum { NORM_RMS, NORM_LAYER } NormKind;

typedef struct {
    NormKind kind;        // RMS: x·rstd·(offset + w); LAYER: (x − mean)·rstd·w + b (biased variance)
    float eps;
    float weight_offset;  // RMS only: Gemma stores its scales as w − 1 (offset 1), else 0
} NormSpec;

typedef enum {
    MLP_GATED,  // down(act(gate·h) ⊙ up·h), no biases (SwiGLU, GeGLU)
    MLP_PLAIN,  // down(act(up·h + b_up)) + b_down (GPT-2)
} MlpKind;

typedef struct {
    float attn_scale;     // the score scale: 1/sqrt(head_dim), Gemma 2 query_pre_attn_scalar, GPT-2 / (l + 1)
    int window;           // sliding window in keys (0: full causal)
} LayerSpec;

typedef struct {
    NormSpec norm;        // every norm of the model: before attention and MLP, the post norms, the final one
    int rope;             // rotate q and k (rope_params); 0: learned absolute positions (pos_embed)
    RopeParams rope_params;
    float embed_scale;    // Gemma: sqrt(D) rounded to fp32 (its normalizer in the activation dtype), else 1
    float attn_softcap;   // scores = c·tanh(scores / c); 0 = off
    MlpKind mlp;
    ActKind act;          // the MLP's activation (MLP_PLAIN: GELU-tanh only so far)
    int post_attn_norm, post_mlp_norm;  // Gemma 2's norms of the attention and MLP outputs
    float final_softcap;  // as attn_softcap, on the logits
    LayerSpec *layer;     // (n_layers,)
} BlockSpec;

// ---- the model --------------------------------------------------------------------------------

// The config.json values the parser read; model_describe turns them into `block`, which is the
// only part the forward paths read (dimensions aside).
typedef struct {
    ModelArch arch;
    char model_type[32];
    int n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab_size, max_pos;
    float norm_eps;
    // rotary embeddings (Llama, Gemma 2)
    float rope_theta;
    int rope_llama3;
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_pos;
    // Gemma 2
    float attn_softcap, final_softcap;  // 0 = off
    float query_scale;                  // attention score scale (1/sqrt(head_dim) unless Gemma 2)
    int attn_scale_by_layer;            // GPT-2 scale_attn_by_inverse_layer_idx: layer l also / (l+1)
    int sliding_window;
    uint8_t *layer_sliding;             // (n_layers,) 1 if the layer uses the sliding window
    int tie_embeddings;
    int attn_bias;                      // q/k/v/o biases (GPT-2 always; Llama attention_bias)
    int bos_id, eos_id;                 // -1 if unknown
    BlockSpec block;                    // how the block computes, from the values above (model_describe)
} ModelConfig;

typedef struct {
    float *attn_norm_w, *attn_norm_b;   // (D,) ; b: GPT-2 only
    float *wq, *wk, *wv, *wo;           // (H*hd, D), (KVH*hd, D), (KVH*hd, D), (D, H*hd)
    float *bq, *bk, *bv, *bo;           // biases or NULL
    float *post_attn_norm_w;            // Gemma 2: norm of the attention output, else NULL
    float *mlp_norm_w, *mlp_norm_b;     // (D,) the norm producing mlp_in
    float *w_gate, *w_up, *w_down;      // (F, D), (F, D), (D, F); GPT-2: w_up = c_fc, no gate
    float *b_up, *b_down;               // GPT-2 biases or NULL
    float *post_mlp_norm_w;             // Gemma 2: norm of the MLP output, else NULL
} LayerWeights;

typedef struct {
    ModelConfig cfg;
    char *dir;
    uint64_t weights_hash;  // the model hash of formats/acts.md: config.json, headers, sampled weight bytes
    float *embed;           // (V, D)
    float *pos_embed;       // (max_pos, D) GPT-2, else NULL
    LayerWeights *layers;   // (n_layers,)
    float *final_norm_w, *final_norm_b;
    float *lm_head;         // (V, D); == embed when tied
    float **owned;          // every allocation, for model_free
    int n_owned, cap_owned;
} Model;

int model_load(Model *m, const char *dir, Error *e);

// Fills c->block from c->arch and the config values (allocating c->block.layer, which model_free
// frees). The config parser calls it; a config built by hand (bench/bench_forward.c) calls it too.
void model_describe(ModelConfig *c);

// What model.c does with a config.json key of an architecture (every key transformers reads for it is
// listed in tests/golden/models/hf_config_keys.json): implemented; CHECKED: only some values are
// implemented and the others refused (*bad: one refused value, JSON); no effect on an fp32 eval
// forward pass (dropout, init, output selection). -1: not a key transformers reads (ignored).
typedef enum { KEY_USED, KEY_CHECKED, KEY_NO_EFFECT } ModelKeyUse;
int model_config_key_use(ModelArch arch, const char *key, const char **bad);

// An error unless n positions fit the model: every architecture here runs on at most
// max_position_embeddings positions (GPT-2 has no embedding beyond; RoPE models are not trained
// beyond and transformers warns). `what` starts the message ("--ctx", "prompt"...).
int model_check_positions(const ModelConfig *c, int64_t n, const char *what, Error *e);

// The attention score scale of layer l (the description's).
static inline float model_attn_scale(const ModelConfig *c, int l) { return c->block.layer[l].attn_scale; }
void model_free(Model *m);

// ---- forward pass (model_forward.c) ---------------------------------------------------------

// Optional outputs. Every pointer may be NULL; per-layer arrays have n_layers entries, each NULL
// or a buffer of the size noted (rows are the B*T tokens, batch-major).
typedef struct {
    float **resid_pre;    // (B*T, D): the layer's input residual stream
    float **resid_mid;    // (B*T, D): after attention (Gemma 2: after its post-attention norm)
    float **mlp_in;       // (B*T, D): the normalized MLP input
    float **mlp_out;      // (B*T, D): what the MLP adds to the residual (Gemma 2: post-normed)
    float **attn_probs;   // (B, H, T, T): softmax attention weights
    float **attn_rstd;    // (B*T,): 1/rms (or 1/std) of the attention-input norm
    float **mlp_rstd;     // (B*T,): same for the MLP-input norm
    float **post_attn_rstd;  // (B*T,): Gemma 2's norm of the attention output (attrib freezes it); CPU only
    float *final_hidden;  // (B*T, D): after the final norm
    float *final_rstd;    // (B*T,)
    float *logits;        // (B*T, V)
    float **mlp_add;      // input, not an output: (B*T, D) per layer or NULL, added to the MLP output
                          // (feature interventions: `attrib intervene --recompute`); CPU only so far
    int n_run_layers;     // run only layers [0, n_run_layers) (0 = all); no logits unless all run
} ForwardOutputs;

typedef struct ForwardState ForwardState;

ForwardState *forward_state_new(const Model *m, int B, int T);
void forward_state_free(ForwardState *s);
// tokens (B, T); every id must be < vocab_size and T <= max_pos (errors otherwise).
int model_forward(const Model *m, ForwardState *s, const uint32_t *tokens, int B, int T, ForwardOutputs *out, Error *e);
// Mean next-token cross-entropy of each sequence: loss (B,) from logits (B*T, V) and tokens.
void model_loss(const float *logits, const uint32_t *tokens, int B, int T, int V, double *loss);
