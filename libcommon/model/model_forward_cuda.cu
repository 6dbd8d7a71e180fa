// model_forward_cuda.cu — the GPU forward pass (model_forward_cuda.h), a line-by-line mirror of
// model_forward.c beside it: the block's steps of model_block.c under the same names
// (block_norm_cuda for block_norm_cpu...), reading the same description (ModelConfig.block), over
// the CUDA kernel twins. The only device code of its own: the embedding lookup and the residual add.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "attention.h"
#include "cuda_common.h"
#include "model_forward_cuda.h"
#include "matmul.h"
#include "norm.h"
#include "rope.h"
extern "C" {
#include "model_block.h"  // block_check_tokens, block_attn_shape: host code shared with the CPU path
}

static const unsigned int FWD_BLOCK = 256;
#define CUDA_WHO "forward_cuda"  // the start of the state's and the pass's error messages (cuda_common.h)

#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

// x[r, i] = embed[tokens[r], i] * scale (+ pos[r % T, i]): two roundings like the CPU (no FMA).
__global__ void embed_kernel(float *x, const uint32_t *tokens, const float *embed, const float *pos, float scale,
                             int T, int D, size_t total) {
    GRID_STRIDE(idx, total) {
        size_t r = idx / D, i = idx % D;
        float val = __fmul_rn(embed[(size_t)tokens[r] * D + i], scale);
        if (pos) val = __fadd_rn(val, pos[(r % T) * D + i]);
        x[idx] = val;
    }
}

__global__ void add_inplace_kernel(float *x, const float *t, size_t n) {
    GRID_STRIDE(i, n) x[i] += t[i];
}

// ---- weights ---------------------------------------------------------------------------------

// A device buffer the ModelGpu owns (freed by model_gpu_free).
static int dev_alloc(ModelGpu *mg, void **d, size_t nbytes, Error *e) {
    if (cuda_alloc_e(d, nbytes, "model_gpu_upload", "a weight", e)) return -1;
    if (mg->n_owned == mg->cap_owned) {
        mg->cap_owned = mg->cap_owned ? 2 * mg->cap_owned : 64;
        mg->owned = (void **)xrealloc(mg->owned, (size_t)mg->cap_owned * sizeof *mg->owned);
    }
    mg->owned[mg->n_owned++] = *d;
    mg->bytes += nbytes;
    return 0;
}

// *dst = a device copy of n floats at h (NULL stays NULL).
static int upload(ModelGpu *mg, float **dst, const float *h, size_t n, Error *e) {
    *dst = NULL;
    if (!h) return 0;
    void *d;
    if (dev_alloc(mg, &d, n * sizeof(float), e)) return -1;
    if (cuda_status(cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice), "model_gpu_upload", "cudaMemcpy", e))
        return -1;
    *dst = (float *)d;
    return 0;
}

extern "C" int model_gpu_upload(ModelGpu *mg, const Model *m, Error *e) {
    memset(mg, 0, sizeof *mg);
    const ModelConfig *c = &m->cfg;
    mg->cfg = *c;
    mg->cfg.layer_sliding = (uint8_t *)xcalloc((size_t)c->n_layers, 1);
    if (c->layer_sliding) memcpy(mg->cfg.layer_sliding, c->layer_sliding, (size_t)c->n_layers);
    mg->cfg.block.layer = (LayerSpec *)xmalloc((size_t)c->n_layers * sizeof(LayerSpec));
    memcpy(mg->cfg.block.layer, c->block.layer, (size_t)c->n_layers * sizeof(LayerSpec));
    mg->layers = (LayerWeights *)xcalloc((size_t)c->n_layers, sizeof *mg->layers);
    size_t D = c->d_model, F = c->d_ff, V = c->vocab_size;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    int rc = upload(mg, &mg->embed, m->embed, V * D, e) ||
             upload(mg, &mg->pos_embed, m->pos_embed, (size_t)c->max_pos * D, e) ||
             upload(mg, &mg->final_norm_w, m->final_norm_w, D, e) ||
             upload(mg, &mg->final_norm_b, m->final_norm_b, D, e);
    if (!rc) {
        if (m->lm_head == m->embed) mg->lm_head = mg->embed;  // tied: one copy
        else rc = upload(mg, &mg->lm_head, m->lm_head, V * D, e);
    }
    for (int l = 0; !rc && l < c->n_layers; l++) {
        const LayerWeights *L = &m->layers[l];
        LayerWeights *G = &mg->layers[l];
        rc = upload(mg, &G->attn_norm_w, L->attn_norm_w, D, e) || upload(mg, &G->attn_norm_b, L->attn_norm_b, D, e) ||
             upload(mg, &G->wq, L->wq, qd * D, e) || upload(mg, &G->wk, L->wk, kvd * D, e) ||
             upload(mg, &G->wv, L->wv, kvd * D, e) || upload(mg, &G->wo, L->wo, D * qd, e) ||
             upload(mg, &G->bq, L->bq, qd, e) || upload(mg, &G->bk, L->bk, kvd, e) ||
             upload(mg, &G->bv, L->bv, kvd, e) || upload(mg, &G->bo, L->bo, D, e) ||
             upload(mg, &G->post_attn_norm_w, L->post_attn_norm_w, D, e) ||
             upload(mg, &G->mlp_norm_w, L->mlp_norm_w, D, e) || upload(mg, &G->mlp_norm_b, L->mlp_norm_b, D, e) ||
             upload(mg, &G->w_gate, L->w_gate, F * D, e) || upload(mg, &G->w_up, L->w_up, F * D, e) ||
             upload(mg, &G->w_down, L->w_down, D * F, e) || upload(mg, &G->b_up, L->b_up, F, e) ||
             upload(mg, &G->b_down, L->b_down, D, e) ||
             upload(mg, &G->post_mlp_norm_w, L->post_mlp_norm_w, D, e);
    }
    if (rc) {
        model_gpu_free(mg);
        return -1;
    }
    return 0;
}

extern "C" void model_gpu_free(ModelGpu *mg) {
    if (!mg) return;
    for (int i = 0; i < mg->n_owned; i++) cudaFree(mg->owned[i]);
    free(mg->owned);
    free(mg->layers);
    free(mg->cfg.layer_sliding);
    free(mg->cfg.block.layer);
    memset(mg, 0, sizeof *mg);
}

// ---- state -----------------------------------------------------------------------------------

struct ForwardStateGpu {
    int B, T;
    float *x, *xn;          // (N, D) residual stream, normalized
    float *q, *k, *v, *att; // (N, H*hd), (N, KVH*hd) x2, (N, H*hd)
    float *tmp;             // (N, D)
    float *gate, *up;       // (N, F)
    float *cos_t, *sin_t;   // (T, hd/2) device, Llama / Gemma 2
    float *rstd;            // (N,)
    uint32_t *tokens;       // (N,)
    float *probs;           // (B, H, T, T), allocated on first use
    float *logits;          // (N, V), allocated on first use
};

#define SALLOC(ptr, nbytes) cuda_alloc_e(&(ptr), (nbytes), CUDA_WHO, #ptr, e)

extern "C" ForwardStateGpu *forward_state_gpu_new(const ModelGpu *mg, int B, int T, Error *e) {
    const ModelConfig *c = &mg->cfg;
    size_t N = (size_t)B * T, D = c->d_model, F = c->d_ff, f = sizeof(float);
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    ForwardStateGpu *s = (ForwardStateGpu *)xcalloc(1, sizeof *s);
    s->B = B;
    s->T = T;
    int rc = SALLOC(s->x, N * D * f) || SALLOC(s->xn, N * D * f) || SALLOC(s->q, N * qd * f) ||
             SALLOC(s->k, N * kvd * f) || SALLOC(s->v, N * kvd * f) || SALLOC(s->att, N * qd * f) ||
             SALLOC(s->tmp, N * D * f) || SALLOC(s->gate, N * F * f) || SALLOC(s->up, N * F * f) ||
             SALLOC(s->rstd, N * f) || SALLOC(s->tokens, N * sizeof(uint32_t));
    if (!rc && c->block.rope) {
        size_t nt = (size_t)T * (c->head_dim / 2);
        float *cos_h = (float *)xmalloc(nt * f), *sin_h = (float *)xmalloc(nt * f);
        rope_table(cos_h, sin_h, T, c->head_dim, &c->block.rope_params);  // block_rope_table's, on the host
        rc = SALLOC(s->cos_t, nt * f) || SALLOC(s->sin_t, nt * f);
        rc = rc || cuda_status(cudaMemcpy(s->cos_t, cos_h, nt * f, cudaMemcpyHostToDevice), CUDA_WHO, "rope cos", e) ||
             cuda_status(cudaMemcpy(s->sin_t, sin_h, nt * f, cudaMemcpyHostToDevice), CUDA_WHO, "rope sin", e);
        free(cos_h);
        free(sin_h);
    }
    if (rc) {
        forward_state_gpu_free(s);
        return NULL;
    }
    return s;
}

extern "C" void forward_state_gpu_free(ForwardStateGpu *s) {
    if (!s) return;
    float *bufs[] = {s->x, s->xn, s->q, s->k, s->v, s->att, s->tmp, s->gate, s->up, s->cos_t, s->sin_t, s->rstd,
                     s->probs, s->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cudaFree(bufs[i]);
    cudaFree(s->tokens);
    free(s);
}

#define TRY(call) \
    do {          \
        if (call) return -1; \
    } while (0)

// ---- the block's steps: model_block.h's, on the device (same names, _cuda) ----------------------

static int block_embed_cuda(const GpuCtx *g, const ModelGpu *mg, float *x, const uint32_t *tokens, int N, int T,
                            Error *e) {
    size_t ND = (size_t)N * mg->cfg.d_model;
    embed_kernel<<<cuda_grid_for(ND, FWD_BLOCK), FWD_BLOCK, 0, gpu_stream(g)>>>(
        x, tokens, mg->embed, mg->pos_embed, mg->cfg.block.embed_scale, T, mg->cfg.d_model, ND);
    return gpu_launch_status(e, "forward_cuda: embeddings");
}

static int block_norm_cuda(const GpuCtx *g, const ModelGpu *mg, float *out, const float *x, const float *w,
                           const float *b, int N, float *rstd, Error *e) {
    const NormSpec *n = &mg->cfg.block.norm;
    if (n->kind == NORM_LAYER) return layernorm_cuda(g, out, x, w, b, N, mg->cfg.d_model, n->eps, rstd, e);
    return rmsnorm_cuda(g, out, x, w, n->weight_offset, N, mg->cfg.d_model, n->eps, rstd, e);
}

static int block_qkv_cuda(const GpuCtx *g, const ModelGpu *mg, int l, float *q, float *k, float *v, const float *xn,
                          int N, Error *e) {
    const ModelConfig *c = &mg->cfg;
    const LayerWeights *L = &mg->layers[l];
    int D = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    return matmul_cuda(g, q, xn, L->wq, L->bq, N, D, qd, e) || matmul_cuda(g, k, xn, L->wk, L->bk, N, D, kvd, e) ||
           matmul_cuda(g, v, xn, L->wv, L->bv, N, D, kvd, e);
}

static int block_rope_cuda(const GpuCtx *g, const ModelGpu *mg, float *q, float *k, const float *cos_t,
                           const float *sin_t, int B, int T, Error *e) {
    const ModelConfig *c = &mg->cfg;
    if (!c->block.rope) return 0;
    return rope_apply_cuda(g, q, cos_t, sin_t, B, T, c->n_heads, c->head_dim, e) ||
           rope_apply_cuda(g, k, cos_t, sin_t, B, T, c->n_kv_heads, c->head_dim, e);
}

static int block_attn_out_cuda(const GpuCtx *g, const ModelGpu *mg, int l, float *tmp, const float *att, int N,
                               Error *e) {
    const ModelConfig *c = &mg->cfg;
    const LayerWeights *L = &mg->layers[l];
    if (matmul_cuda(g, tmp, att, L->wo, L->bo, N, c->n_heads * c->head_dim, c->d_model, e)) return -1;
    return c->block.post_attn_norm ? block_norm_cuda(g, mg, tmp, tmp, L->post_attn_norm_w, NULL, N, NULL, e) : 0;
}

static int block_mlp_cuda(const GpuCtx *g, const ModelGpu *mg, int l, float *out, const float *xn, float *gate,
                          float *up, int N, Error *e) {
    const ModelConfig *c = &mg->cfg;
    const LayerWeights *L = &mg->layers[l];
    int D = c->d_model, F = c->d_ff;
    size_t NF = (size_t)N * F;
    if (c->block.mlp == MLP_PLAIN) {
        TRY(matmul_cuda(g, up, xn, L->w_up, L->b_up, N, D, F, e));
        TRY(gelu_tanh_cuda(g, up, NF, e));  // the only activation model_describe gives a plain MLP
        TRY(matmul_cuda(g, out, up, L->w_down, L->b_down, N, F, D, e));
    } else {
        TRY(matmul_cuda(g, gate, xn, L->w_gate, NULL, N, D, F, e));
        TRY(matmul_cuda(g, up, xn, L->w_up, NULL, N, D, F, e));
        TRY(gated_act_cuda(g, up, gate, up, NF, c->block.act, e));
        TRY(matmul_cuda(g, out, up, L->w_down, NULL, N, F, D, e));
    }
    return c->block.post_mlp_norm ? block_norm_cuda(g, mg, out, out, L->post_mlp_norm_w, NULL, N, NULL, e) : 0;
}

static int block_add_cuda(const GpuCtx *g, float *x, const float *t, size_t n, Error *e) {
    add_inplace_kernel<<<cuda_grid_for(n, FWD_BLOCK), FWD_BLOCK, 0, gpu_stream(g)>>>(x, t, n);
    return gpu_launch_status(e, "forward_cuda: residual add");
}

static int block_logits_cuda(const GpuCtx *g, const ModelGpu *mg, float *logits, const float *h, int N, Error *e) {
    const ModelConfig *c = &mg->cfg;
    TRY(matmul_cuda(g, logits, h, mg->lm_head, NULL, N, c->d_model, c->vocab_size, e));
    float cap = c->block.final_softcap;
    return cap > 0 ? softcap_cuda(g, logits, (size_t)N * c->vocab_size, cap, e) : 0;
}

// ---- forward: model_forward's sequence of steps --------------------------------------------------

// Copies n floats of device src to dst (host or device memory) on the stream.
static int copy_out(const GpuCtx *g, float *dst, const float *src, size_t n, Error *e) {
    CUDA_OK(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDefault, gpu_stream(g)), "copying an output");
    return 0;
}

static int copy_hook(const GpuCtx *g, float **hooks, int l, const float *src, size_t n, Error *e) {
    return hooks && hooks[l] ? copy_out(g, hooks[l], src, n, e) : 0;
}

static float *layer_out(float **outs, int l) { return outs ? outs[l] : NULL; }

static int forward_queue(const GpuCtx *g, const ModelGpu *mg, ForwardStateGpu *s, const uint32_t *tokens, int B,
                         int T, ForwardOutputs *out, Error *e) {
    const ModelConfig *c = &mg->cfg;
    int N = B * T, H = c->n_heads;
    size_t ND = (size_t)N * c->d_model;
    int n_run = out->n_run_layers > 0 && out->n_run_layers < c->n_layers ? out->n_run_layers : c->n_layers;
    cudaStream_t stream = gpu_stream(g);

    TRY(block_check_tokens(c, tokens, N, "forward", e));
    CUDA_OK(cudaMemcpyAsync(s->tokens, tokens, (size_t)N * sizeof(uint32_t), cudaMemcpyHostToDevice, stream),
            "uploading tokens");
    if (out->attn_probs && !s->probs && SALLOC(s->probs, (size_t)s->B * H * T * T * sizeof(float))) return -1;
    if (out->logits && n_run == c->n_layers && !s->logits &&
        SALLOC(s->logits, (size_t)s->B * T * c->vocab_size * sizeof(float)))
        return -1;

    TRY(block_embed_cuda(g, mg, s->x, s->tokens, N, T, e));  // (N, D)
    for (int l = 0; l < n_run; l++) {
        const LayerWeights *L = &mg->layers[l];
        TRY(copy_hook(g, out->resid_pre, l, s->x, ND, e));
        // attention (rstd and probs are computed in device scratch, then copied to the caller's buffer)
        float *rstd = layer_out(out->attn_rstd, l);
        TRY(block_norm_cuda(g, mg, s->xn, s->x, L->attn_norm_w, L->attn_norm_b, N, rstd ? s->rstd : NULL, e));
        if (rstd) TRY(copy_out(g, rstd, s->rstd, (size_t)N, e));
        TRY(block_qkv_cuda(g, mg, l, s->q, s->k, s->v, s->xn, N, e));  // (N, H*hd), (N, KVH*hd), (N, KVH*hd)
        TRY(block_rope_cuda(g, mg, s->q, s->k, s->cos_t, s->sin_t, B, T, e));
        AttnShape as = block_attn_shape(c, l, B, T);
        float *probs = layer_out(out->attn_probs, l);
        TRY(attention_cuda(g, s->att, probs ? s->probs : NULL, s->q, s->k, s->v, &as, e));  // (N, H*hd)
        if (probs) TRY(copy_out(g, probs, s->probs, (size_t)B * H * T * T, e));  // (B, H, T, T)
        TRY(block_attn_out_cuda(g, mg, l, s->tmp, s->att, N, e));  // (N, D)
        TRY(block_add_cuda(g, s->x, s->tmp, ND, e));
        TRY(copy_hook(g, out->resid_mid, l, s->x, ND, e));
        // MLP
        rstd = layer_out(out->mlp_rstd, l);
        TRY(block_norm_cuda(g, mg, s->xn, s->x, L->mlp_norm_w, L->mlp_norm_b, N, rstd ? s->rstd : NULL, e));  // (N, D)
        if (rstd) TRY(copy_out(g, rstd, s->rstd, (size_t)N, e));
        TRY(copy_hook(g, out->mlp_in, l, s->xn, ND, e));
        TRY(block_mlp_cuda(g, mg, l, s->tmp, s->xn, s->gate, s->up, N, e));  // (N, D)
        TRY(copy_hook(g, out->mlp_out, l, s->tmp, ND, e));
        TRY(block_add_cuda(g, s->x, s->tmp, ND, e));
    }
    if (n_run < c->n_layers) return 0;

    if (out->final_hidden || out->logits) {
        TRY(block_norm_cuda(g, mg, s->xn, s->x, mg->final_norm_w, mg->final_norm_b, N, out->final_rstd ? s->rstd : NULL,
                            e));  // (N, D)
        if (out->final_rstd) TRY(copy_out(g, out->final_rstd, s->rstd, (size_t)N, e));
        if (out->final_hidden) TRY(copy_out(g, out->final_hidden, s->xn, ND, e));
        if (out->logits) {
            TRY(block_logits_cuda(g, mg, s->logits, s->xn, N, e));  // (N, V)
            TRY(copy_out(g, out->logits, s->logits, (size_t)N * c->vocab_size, e));
        }
    }
    return 0;
}

extern "C" int forward_cuda(const GpuCtx *g, const ModelGpu *mg, ForwardStateGpu *s, const uint32_t *tokens, int B,
                            int T, ForwardOutputs *out, Error *e) {
    const ModelConfig *c = &mg->cfg;
    if (B > s->B || T != s->T) return err_set(e, "forward: state built for %dx%d, called with %dx%d", s->B, s->T, B, T);
    if (model_check_positions(c, T, "forward", e)) return -1;
    int rc = forward_queue(g, mg, s, tokens, B, T, out, e);
    // Always drain the stream, also after a failure, so the state can be reused or freed safely.
    cudaError_t err = cudaStreamSynchronize(gpu_stream(g));
    if (err == cudaSuccess) err = cudaGetLastError();
    return rc ? -1 : cuda_status(err, CUDA_WHO, "running the pass", e);
}
