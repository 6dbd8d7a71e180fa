// attrib_cuda.cu — attrib_rows (libcommon/attrib/attrib.c) on the GPU: the same steps in the same order
// over the device twins of kernels/attrib_vjp.h; see attrib_cuda.h.
#include "attrib_cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attrib_vjp.h"
#include "cuda_common.h"
#include "model_forward_cuda.h"
#include "gpu_ctx.h"
#include "matmul.h"

struct AttribGpu {
    GpuCtx g;
    ModelGpu mg;
    int has_g, has_mg, B;
    int64_t n_src;  // attrib_row_sources: the device rows' stride
    // the frozen state: host arrays of device pointers, one per layer
    float **q, **k, **row_max, **row_inv, **attn_rstd, **mlp_rstd, **post_attn_rstd, **dec_act;
    int64_t **dec_off, **dec_row;
    int32_t **dec_src;
    float *final_rstd, *error, *tok_vec, *dec_rows;
    // a batch's work
    float *gr, *tmp, *g_n, *x, *y, *rows, *vecs, *scratch;
    void **owned;
    int n_owned, cap_owned;
};

static void *dev_alloc(AttribGpu *ag, size_t nbytes, Error *e) {
    void *d = NULL;
    cudaError_t err = cudaMalloc(&d, nbytes ? nbytes : 4);
    if (err != cudaSuccess) {
        err_set(e, "attrib --device cuda: cannot allocate %zu bytes on the GPU: %s", nbytes, cudaGetErrorString(err));
        return NULL;
    }
    if (ag->n_owned == ag->cap_owned) {
        ag->cap_owned = ag->cap_owned ? 2 * ag->cap_owned : 64;
        ag->owned = (void **)xrealloc(ag->owned, (size_t)ag->cap_owned * sizeof(void *));
    }
    return ag->owned[ag->n_owned++] = d;
}

static void *dev_copy(AttribGpu *ag, const void *h, size_t nbytes, Error *e) {
    void *d = dev_alloc(ag, nbytes, e);
    if (d && nbytes && cudaMemcpy(d, h, nbytes, cudaMemcpyHostToDevice) != cudaSuccess) {
        err_set(e, "attrib --device cuda: upload of %zu bytes failed", nbytes);
        return NULL;
    }
    return d;
}

// Per-layer host arrays (NULL entries stay NULL) copied to the device, n elements of size each.
template <typename Elem>
static int layers_copy(AttribGpu *ag, Elem **dst, Elem *const *src, int L, size_t n, Error *e) {
    for (int l = 0; l < L; l++)
        if (src && src[l] && !(dst[l] = (Elem *)dev_copy(ag, src[l], n * sizeof(Elem), e))) return -1;
    return 0;
}

extern "C" void attrib_gpu_free(AttribGpu *ag) {
    if (!ag) return;
    for (int i = 0; i < ag->n_owned; i++) cudaFree(ag->owned[i]);
    free(ag->owned);
    free(ag->q); free(ag->k); free(ag->row_max); free(ag->row_inv); free(ag->attn_rstd); free(ag->mlp_rstd);
    free(ag->post_attn_rstd); free(ag->dec_act); free(ag->dec_off); free(ag->dec_row); free(ag->dec_src);
    if (ag->has_mg) model_gpu_free(&ag->mg);
    if (ag->has_g) gpu_ctx_free(&ag->g);
    free(ag);
}

extern "C" AttribGpu *attrib_gpu_new(const Model *m, const AttribState *s, int B, Error *e) {
    if (cuda_device_count() < 1) {
        err_set(e, "attrib --device cuda: no CUDA device is visible");
        return NULL;
    }
    AttribGpu *ag = (AttribGpu *)xcalloc(1, sizeof *ag);
    int L = s->L, T = s->T, D = s->D, H = s->H, qd = H * s->hd, kvd = s->KVH * s->hd;
    size_t TD = (size_t)T * D, BT = (size_t)B * T;
    ag->B = B;
    ag->n_src = attrib_row_sources(s);
    float ***fl[] = {&ag->q, &ag->k, &ag->row_max, &ag->row_inv, &ag->attn_rstd, &ag->mlp_rstd, &ag->post_attn_rstd,
                     &ag->dec_act};
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) *fl[i] = (float **)xcalloc((size_t)L, sizeof(float *));
    ag->dec_off = (int64_t **)xcalloc((size_t)L, sizeof(int64_t *));
    ag->dec_row = (int64_t **)xcalloc((size_t)L, sizeof(int64_t *));
    ag->dec_src = (int32_t **)xcalloc((size_t)L, sizeof(int32_t *));
    if (gpu_ctx_init(&ag->g, e)) goto fail;
    ag->has_g = 1;
    if (model_gpu_upload(&ag->mg, m, e)) goto fail;
    ag->has_mg = 1;
    if (layers_copy(ag, ag->q, s->q, L, (size_t)T * qd, e) || layers_copy(ag, ag->k, s->k, L, (size_t)T * kvd, e) ||
        layers_copy(ag, ag->row_max, s->row_max, L, (size_t)H * T, e) ||
        layers_copy(ag, ag->row_inv, s->row_inv, L, (size_t)H * T, e) ||
        layers_copy(ag, ag->attn_rstd, s->attn_rstd, L, (size_t)T, e) ||
        layers_copy(ag, ag->mlp_rstd, s->mlp_rstd, L, (size_t)T, e) ||
        layers_copy(ag, ag->post_attn_rstd, s->post_attn_rstd, L, (size_t)T, e) ||
        layers_copy(ag, ag->dec_off, s->dec_off, L, (size_t)T + 1, e))
        goto fail;
    for (int l = 0; l < L; l++) {
        size_t n_k = (size_t)s->dec_off[l][T];
        if (!(ag->dec_row[l] = (int64_t *)dev_copy(ag, s->dec_row[l], n_k * sizeof(int64_t), e)) ||
            !(ag->dec_act[l] = (float *)dev_copy(ag, s->dec_act[l], n_k * sizeof(float), e)) ||
            !(ag->dec_src[l] = (int32_t *)dev_copy(ag, s->dec_src[l], n_k * sizeof(int32_t), e)))
            goto fail;
    }
    if (!(ag->dec_rows = (float *)dev_copy(ag, s->dec_rows, (size_t)s->n_dec_rows * sizeof(float), e)) ||
        !(ag->final_rstd = (float *)dev_copy(ag, s->final_rstd, (size_t)T * sizeof(float), e)) ||
        !(ag->error = (float *)dev_copy(ag, s->error, (size_t)L * TD * sizeof(float), e)) ||
        !(ag->tok_vec = (float *)dev_copy(ag, s->tok_vec, TD * sizeof(float), e)) ||
        !(ag->gr = (float *)dev_alloc(ag, BT * D * sizeof(float), e)) ||
        !(ag->tmp = (float *)dev_alloc(ag, BT * D * sizeof(float), e)) ||
        !(ag->g_n = (float *)dev_alloc(ag, BT * D * sizeof(float), e)) ||
        !(ag->x = (float *)dev_alloc(ag, BT * s->hd * sizeof(float), e)) ||
        !(ag->y = (float *)dev_alloc(ag, BT * s->hd * sizeof(float), e)) ||
        !(ag->rows = (float *)dev_alloc(ag, (size_t)B * ag->n_src * sizeof(float), e)) ||
        !(ag->vecs = (float *)dev_alloc(ag, (size_t)B * D * sizeof(float), e)) ||
        !(ag->scratch = (float *)dev_alloc(ag, (size_t)attrib_pattern_scratch_cuda(T) * sizeof(float), e)))
        goto fail;
    return ag;
fail:
    attrib_gpu_free(ag);
    return NULL;
}

static int cuda_status(cudaError_t err, const char *what, Error *e) {
    return err == cudaSuccess ? 0 : err_set(e, "attrib --device cuda: %s: %s", what, cudaGetErrorString(err));
}

// attn_vjp of libcommon/attrib/attrib.c on the device: g += the frozen attention block's VJP of layer l.
static int attn_vjp_gpu(AttribGpu *ag, const Model *m, const AttribState *s, int l, int n, int Te, Error *e) {
    const GpuCtx *g = &ag->g;
    const LayerWeights *Lw = &ag->mg.layers[l];  // device pointers
    int D = s->D, hd = s->hd, qd = s->H * hd, group = s->H / s->KVH, rows = n * Te;
    float off = m->cfg.arch == ARCH_GEMMA2 ? 1.0f : 0.0f;
    const float *go = ag->gr;
    if (Lw->post_attn_norm_w) {
        if (attrib_norm_vjp_cuda(g, ag->tmp, ag->gr, Lw->post_attn_norm_w, 1.0f, 0, ag->post_attn_rstd[l], n, Te, D, 0,
                                 e))
            return -1;
        go = ag->tmp;
    }
    AttribPattern pat = attrib_layer_pattern(m, s, l);
    pat.q = ag->q[l];
    pat.k = ag->k[l];
    pat.row_max = ag->row_max[l];
    pat.row_inv = ag->row_inv[l];
    for (int gh = 0; gh < s->KVH; gh++) {
        for (int k = 0; k < group; k++) {
            int h = gh * group + k;
            if (gemm_cuda(g, 0, 0, rows, hd, D, go, D, Lw->wo + (size_t)h * hd, qd, 0.0f, ag->x, hd, e) ||
                attrib_pattern_t_cuda(g, ag->y, ag->x, &pat, h, Te, n * hd, k ? 1.0f : 0.0f, ag->scratch, e))
                return -1;
        }
        if (gemm_cuda(g, 0, 0, rows, D, hd, ag->y, hd, Lw->wv + (size_t)gh * hd * D, D, gh ? 1.0f : 0.0f, ag->g_n, D,
                      e))
            return -1;
    }
    return attrib_norm_vjp_cuda(g, ag->gr, ag->g_n, Lw->attn_norm_w, off, m->cfg.arch == ARCH_GPT2,
                                ag->attn_rstd[l], n, Te, D, 1, e);
}

// attrib_rows's contract (attrib.h) on the device.
static int rows_gpu(void *ctx, const Model *m, const AttribState *s, int n, const int *layer, const int *pos,
                    const float *vecs, float *rows, int64_t ld, Error *e) {
    AttribGpu *ag = (AttribGpu *)ctx;
    const GpuCtx *g = &ag->g;
    cudaStream_t st = gpu_stream(g);
    int L = s->L, T = s->T, D = s->D, Te, top, centered = m->cfg.arch == ARCH_GPT2;
    float off = m->cfg.arch == ARCH_GEMMA2 ? 1.0f : 0.0f;
    int64_t ns = ag->n_src;
    if (n < 1) return 0;
    if (n > ag->B) return err_set(e, "attrib_rows: %d targets for a work area of %d", n, ag->B);
    if (attrib_batch_span(s, n, layer, pos, &Te, &top, e)) return -1;
    if (cuda_status(cudaMemsetAsync(ag->rows, 0, (size_t)n * ns * sizeof(float), st), "clearing the rows", e) ||
        cuda_status(cudaMemsetAsync(ag->gr, 0, (size_t)n * Te * D * sizeof(float), st), "clearing the gradient", e) ||
        cuda_status(cudaMemcpyAsync(ag->vecs, vecs, (size_t)n * D * sizeof(float), cudaMemcpyHostToDevice, st),
                    "uploading the targets", e))
        return -1;
    for (int b = 0; b < n; b++)
        if (layer[b] == L &&
            attrib_norm_vjp_cuda(g, ag->gr + ((size_t)pos[b] * n + b) * D, ag->vecs + (size_t)b * D,
                                 ag->mg.final_norm_w, off, centered, ag->final_rstd + pos[b], 1, 1, D, 1, e))
            return -1;
    for (int l = top < L ? top : L - 1; l >= 0; l--) {
        if (l < top &&
            (attrib_decoder_dots_cuda(g, ag->rows, ns, ag->dec_off[l], T, s->dec_off[l][T], ag->dec_src[l],
                                      ag->dec_rows, ag->dec_row[l], ag->dec_act[l], ag->gr, n, Te, D, e) ||
             attrib_position_dots_cuda(g, ag->rows, ns, s->n_active + (int64_t)l * T, ag->error + (size_t)l * T * D,
                                       1.0f, ag->gr, n, Te, T, D, e)))
            return -1;
        for (int b = 0; b < n; b++) {
            if (layer[b] != l) continue;
            float *gp = ag->gr + ((size_t)pos[b] * n + b) * D;
            const float *v = ag->vecs + (size_t)b * D, one = 1.0f;
            if (s->input == ATTRIB_IN_RESID_MID) {
                cublasStatus_t cs = cublasSaxpy((cublasHandle_t)g->cublas, D, &one, v, 1, gp, 1);
                if (cs != CUBLAS_STATUS_SUCCESS) return err_set(e, "attrib --device cuda: cublasSaxpy failed");
            } else if (attrib_norm_vjp_cuda(g, gp, v, ag->mg.layers[l].mlp_norm_w, off, centered,
                                            ag->mlp_rstd[l] + pos[b], 1, 1, D, 1, e)) {
                return -1;
            }
        }
        if (attn_vjp_gpu(ag, m, s, l, n, Te, e)) return -1;
    }
    if (attrib_position_dots_cuda(g, ag->rows, ns, s->n_active + (int64_t)L * T, ag->tok_vec,
                                  m->cfg.arch == ARCH_GEMMA2 ? sqrtf((float)D) : 1.0f, ag->gr, n, Te, T, D, e))
        return -1;
    if (cuda_status(cudaMemcpy2DAsync(rows, (size_t)ld * sizeof(float), ag->rows, (size_t)ns * sizeof(float),
                                      (size_t)ns * sizeof(float), (size_t)n, cudaMemcpyDeviceToHost, st),
                    "downloading the rows", e))
        return -1;
    return gpu_ctx_sync(g, e);
}

extern "C" AttribBackend attrib_gpu_backend(AttribGpu *ag) {
    AttribBackend be = {ag, rows_gpu};
    return be;
}
