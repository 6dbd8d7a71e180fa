// attrib.h — the attribution engine: the prompt's forward pass with everything the linearized
// replacement model freezes (attention patterns, norm scales), the CLT's active features, error
// vectors and logit targets, and the batched backward that fills adjacency rows (circuit-tracer's
// semantics: shared/reference/peers-circuitlab-circuit-tracer.md §3.2–3.5).
//
// The replacement model, per layer l (x_l the residual stream entering layer l, (T, D)):
//   x_mid_l = x_l + Attn_l(norm1_l(x_l))           patterns P_l and norm scales frozen
//   x_{l+1} = x_mid_l + m_l                        m_l = CLT reconstruction + error (constant)
// Frozen, everything is linear in the residual stream: attention reduces to its value/output path
// (P·V·W_o), each norm to a fixed per-position scale (LayerNorm keeps its centering), and the MLP
// to nothing but its sources. A[t, s] = ⟨source vector of s, ∂ target t / ∂ (where s writes)⟩:
//   sources  a_s·W_dec[s, k − l_s] into every layer k ≥ l_s (feature s of layer l_s), e_{k,p}
//            (error, layer k, position p), emb_scale·W_E[tok_p] (token at p);
//   targets  w_enc_t · x_in_{l_t}(p_t) (the feature's pre-activation at the CLT's input hook: the
//            normalized MLP input or resid_mid), or (W_U[v] − mean_v' W_U[v']) · norm_f(x_L)(T−1)
//            (the demeaned logit of token v).
// Position 0 (the BOS circuit-tracer always places there) has its features and errors zeroed.
#pragma once
#include <stdint.h>

#include "err.h"
#include "model.h"
#include "attrib_graph.h"
#include "attrib_vjp.h"
#include "safetensors.h"

typedef enum { ATTRIB_IN_MLP_IN = 0, ATTRIB_IN_RESID_MID = 1 } AttribInput;

// A CLT checkpoint in circuit-tracer's layout (formats/clt.md) opened for attribution. Files stay
// mapped: encoders are read a layer at a time while encoding, decoders only for the active
// features (a published CLT of hundreds of thousands of features is never read whole).
typedef struct {
    int L, d, F;
    AttribInput input;
    char *dir;
    char *name;                 // config.yaml's scan or model_name... else the directory's last component
    char input_hook[64];        // as config.yaml says (TransformerLens name)
    SafeTensors *enc, *dec;     // (L,) W_enc_l / W_dec_l files
    float **b_enc, **threshold;  // [L] (F,)
    float **b_dec;              // [L] (d,) of target layer l
} AttribClt;

// Opens dir; errors name the file (missing W_enc_l / W_dec_l, a tensor of the wrong shape, an
// unsupported feature_input_hook or feature_output_hook in config.yaml).
int attrib_clt_open(AttribClt *c, const char *dir, Error *e);
void attrib_clt_close(AttribClt *c);
// The CLT must fit the model: same layer count and width.
int attrib_clt_check(const AttribClt *c, const Model *m, Error *e);
// W_enc_l as fp32 (F, d): the mapped tensor itself when it is F32 and aligned (*owned = NULL),
// else a converted copy in *owned (free it).
int attrib_clt_encoder(const AttribClt *c, int l, const float **w, float **owned, Error *e);
// Decoder row of feature i of layer l: out (L − l, d), slot k − l writes layer k.
int attrib_clt_decoder_row(const AttribClt *c, int l, int i, float *out, Error *e);

// Everything the backward needs from the prompt.
typedef struct {
    int L, T, D, V, H, KVH, hd;
    AttribInput input;
    uint32_t *tokens;      // (T,)
    float *tok_vec;        // (T, D) W_E[tokens] (the token sources before Gemma's √D scale)
    // the frozen forward pass (per layer, T rows)
    float **x_in;          // [L] (T, D) the CLT's input
    float **mlp_out;       // [L] (T, D) the true MLP output
    // the frozen attention patterns, recomputed when needed (attrib_layer_pattern), never stored
    float **q, **k;        // [L] (T, H·hd), (T, KVH·hd) queries and keys after RoPE
    float **row_max, **row_inv;  // [L] (H, T) each pattern row's softmax max and 1 / sum
    float **attn_rstd, **mlp_rstd, **post_attn_rstd;  // [L] (T,); post_attn_rstd: Gemma 2 only, else NULL
    float *final_rstd;     // (T,)
    float *logits;         // (V,) at the last position
    // the CLT on the prompt: active features ordered by (layer, pos, feature)
    int n_active;
    int32_t *active;       // (n_active, 3): layer, pos, feature
    float *activation;     // (n_active,)
    // the distinct (layer, feature) pairs among them, each row read from the CLT once: memory
    // grows with the features the prompt uses, not with every (position, feature, layer) source
    int n_uniq;
    int32_t *uniq_of;      // (n_active,) the pair of each active feature
    float *enc_rows;       // (n_uniq, D): the raw encoder rows (the feature targets' injections)
    int64_t *dec_base;     // (n_uniq,) offset of the pair's decoder block (L − l, D) in dec_rows
    float *dec_rows;       // the decoder blocks W_dec[f] (unscaled), one after another
    int64_t n_dec_rows;    // floats in dec_rows
    float *recon;          // (L, T, D): b_dec + Σ decoder vectors
    float *error;          // (L, T, D): mlp_out − recon, zero at position 0
    // decoder sources by target layer k, grouped by position: dec_off[k][p] ≤ j < dec_off[k][p+1];
    // source j's vector is dec_act[k][j] · dec_rows[dec_row[k][j] ...+D] = a_s · W_dec[s, k − l_s]
    int64_t **dec_off;     // [L] (T+1,)
    int64_t **dec_row;     // [L] (n_k,) offset of W_dec[s, k − l_s] in dec_rows
    float **dec_act;       // [L] (n_k,) a_s
    int32_t **dec_src;     // [L] (n_k,) active index s
    // logit targets
    int n_logits;
    int32_t *logit_token;  // (K,)
    float *logit_prob;     // (K,)
    float *logit_vec;      // (K, D) demeaned unembedding rows
} AttribState;

// Runs the prompt (T tokens, T ≥ 1) through the model, encodes it with the CLT and decodes the
// sources. Errors: an empty prompt, T beyond the model's context, ids outside the vocabulary.
int attrib_capture(const Model *m, const AttribClt *clt, const uint32_t *tokens, int T, AttribState *s, Error *e);
// The logit targets: the given tokens (n_targets > 0), else the salient ones (the top max_n_logits
// by probability, cut after the first reaching cumulative probability desired_prob).
int attrib_logit_targets(AttribState *s, const Model *m, const int32_t *targets, int n_targets, int max_n_logits,
                         double desired_prob, Error *e);
void attrib_state_free(AttribState *s);
// The encoder row of active feature a (D,).
static inline const float *attrib_enc_vec(const AttribState *s, int64_t a) {
    return s->enc_rows + (size_t)s->uniq_of[a] * s->D;
}
// Layer l's frozen attention pattern (views of s's q, k and statistics).
AttribPattern attrib_layer_pattern(const Model *m, const AttribState *s, int l);

// Row layout of the backward: the sources [active features | errors (l·T + p) | tokens], then room
// for the logit columns circuit-tracer keeps (zero: logits are never sources).
static inline int64_t attrib_row_sources(const AttribState *s) {
    return (int64_t)s->n_active + (int64_t)(s->L + 1) * s->T;
}

typedef struct AttribWork AttribWork;
AttribWork *attrib_work_new(const AttribState *s, int B);
void attrib_work_free(AttribWork *w);

// Adjacency rows of n ≤ B targets at once: target b sits at layer[b] (0..L−1: injected at the
// CLT's input hook of that layer; L: after the final norm) and position pos[b], its direction
// vecs[b] (D,). rows (n, ld) receive columns [0, attrib_row_sources) (overwritten).
int attrib_rows(const Model *m, const AttribState *s, AttribWork *w, int n, const int *layer, const int *pos,
                const float *vecs, float *rows, int64_t ld, Error *e);
// What a batch of targets spans: Te (positions 0..Te−1 carry gradient) and top (the highest
// target layer); an error for a target outside the model. attrib_rows and its CUDA twin check here.
int attrib_batch_span(const AttribState *s, int n, const int *layer, const int *pos, int *Te, int *top, Error *e);

// Another device for attrib_rows (same contract, host rows out): libcommon/attrib/attrib_cuda.h makes one.
// attrib_run uses it when AttribRunOptions.backend is set, else the CPU.
typedef struct {
    void *ctx;
    int (*rows)(void *ctx, const Model *m, const AttribState *s, int n, const int *layer, const int *pos,
                const float *vecs, float *rows, int64_t ld, Error *e);
} AttribBackend;

// The replacement model run forward with everything frozen (patterns, norm scales): from the
// embeddings, with the MLP outputs replaced by mlp[l] (T, D), plus optional additions: add_resid
// (L+1, T, D) added to the residual after layer l's MLP (index l+1; index 0: to the embeddings),
// NULL for none. Outputs (any may be NULL): x_in [L] (T, D) the CLT's input per layer, final
// (T, D) after the final norm. Affine in mlp and add_resid; with linear set, the constants
// (embeddings, biases) are left out and the map is linear: the intervention test feeds it one
// source vector and reads the targets' change without cancellation.
int attrib_frozen_forward(const Model *m, const AttribState *s, float *const *mlp, const float *add_resid, int linear,
                          float **x_in, float *final, Error *e);

// ---- the whole graph (attrib_run.c) ---------------------------------------------------------

typedef struct {
    int batch;              // targets per backward pass (B)
    int max_feature_nodes;  // feature rows to visit; 0 or ≥ n_active: all, in order
    int update_interval;    // batches between re-rankings by partial influence (circuit-tracer: 4)
    // progress: phase "logits" or "features", rows done of total; may be NULL
    void (*progress)(void *ctx, const char *phase, int64_t done, int64_t total);
    void *progress_ctx;
    const AttribBackend *backend;  // NULL: the CPU (attrib_rows)
} AttribRunOptions;

// circuit-tracer's attribute() after the setup: the logit rows, then the feature rows — all of
// them in order when max_feature_nodes covers every active feature, else greedily: rank the
// unvisited features by attrib_partial_influence over the rows so far and visit the next
// update_interval·B of them, until max_feature_nodes are visited. Fills g (attrib_graph.h):
// the visited features ascending, rows [features | logits] over the columns [visited features |
// errors | tokens | logits], and a copy of the error vectors.
int attrib_run(const Model *m, const AttribState *s, const AttribRunOptions *o, AttribGraph *g, Error *e);
