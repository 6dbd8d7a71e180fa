// attrib.c — the attribution engine of attrib.h: CLT files, the capture pass, logit targets, the
// batched backward through the frozen model and the frozen forward.
#include "attrib.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "act.h"
#include "attrib_vjp.h"
#include "model_block.h"
#include "fileio.h"
#include "clt_io.h"
#include "matmul.h"
#include "rope.h"
#include "threads.h"

// ---------------------------------------------------------------------------------------------
// CLT files

static int tensor_check(const SafeTensors *st, const char *name, int ndim, const int64_t *shape,
                        const StTensor **out, Error *e) {
    const StTensor *t = safetensors_find(st, name);
    if (!t) return err_set(e, "%s: missing tensor \"%s\"", st->path, name);
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char want[96] = "";
        size_t n = 0;
        for (int i = 0; i < ndim; i++)
            n += (size_t)snprintf(want + n, sizeof want - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
        return err_set(e, "%s: tensor \"%s\" must have shape [%s]", st->path, name, want);
    }
    *out = t;
    return 0;
}

static float *load_vector(const SafeTensors *st, const char *name, int64_t n, Error *e) {
    const StTensor *t;
    if (tensor_check(st, name, 1, &n, &t, e)) return NULL;
    float *v = xmalloc((size_t)n * sizeof(float));
    if (safetensors_to_f32(st, t, v, (uint64_t)n, e)) {
        free(v);
        return NULL;
    }
    return v;
}

int attrib_clt_open(AttribClt *c, const char *dir, Error *e) {
    memset(c, 0, sizeof *c);
    char path[4096], name[64];
    int L = 0;
    for (;; L++) {
        snprintf(path, sizeof path, "%s/W_enc_%d.safetensors", dir, L);
        if (access(path, F_OK)) break;
    }
    if (!L) return err_set(e, "%s: no W_enc_0.safetensors (not a CLT directory)", dir);
    snprintf(path, sizeof path, "%s/W_dec_%d.safetensors", dir, L);  // a decoder past the last encoder
    if (!access(path, F_OK)) return err_set(e, "%s/W_enc_%d.safetensors: missing (W_dec_%d is there)", dir, L, L);
    // config.yaml: which hook the CLT reads and writes
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    void *map;
    size_t len;
    if (access(path, F_OK)) return err_set(e, "%s: missing (the CLT's hooks are named there)", path);
    if (map_file(path, &map, &len, e)) return -1;
    char *text = xmalloc(len + 1);  // NUL-terminated copy for the line scan
    if (len) memcpy(text, map, len);
    text[len] = 0;
    if (map) munmap(map, len);
    char out_hook[64], scan[256], model_name[256];
    clt_yaml_value(text, "feature_input_hook", c->input_hook, sizeof c->input_hook);
    clt_yaml_value(text, "feature_output_hook", out_hook, sizeof out_hook);
    clt_yaml_value(text, "scan", scan, sizeof scan);
    clt_yaml_value(text, "model_name", model_name, sizeof model_name);
    free(text);
    if (!strcmp(c->input_hook, "mlp.hook_in") || !strcmp(c->input_hook, "ln2.hook_normalized"))
        c->input = ATTRIB_IN_MLP_IN;
    else if (!strcmp(c->input_hook, "hook_resid_mid")) c->input = ATTRIB_IN_RESID_MID;
    else
        return err_set(e, "%s: feature_input_hook \"%s\" is not supported (mlp.hook_in, ln2.hook_normalized, "
                          "hook_resid_mid)", path, c->input_hook);
    if (strcmp(out_hook, "hook_mlp_out") && strcmp(out_hook, "mlp.hook_out"))
        return err_set(e, "%s: feature_output_hook \"%s\" is not supported (hook_mlp_out)", path, out_hook);
    if (scan[0]) {
        c->name = xstrdup(scan);
    } else {
        const char *base = dir + strlen(dir);
        while (base > dir && base[-1] == '/') base--;
        const char *end = base;
        while (base > dir && base[-1] != '/') base--;
        c->name = xmalloc((size_t)(end - base) + 1);
        memcpy(c->name, base, (size_t)(end - base));
        c->name[end - base] = 0;
    }
    c->dir = xstrdup(dir);
    c->L = L;
    c->enc = xcalloc((size_t)L, sizeof *c->enc);
    c->dec = xcalloc((size_t)L, sizeof *c->dec);
    c->b_enc = xcalloc((size_t)L, sizeof(float *));
    c->threshold = xcalloc((size_t)L, sizeof(float *));
    c->b_dec = xcalloc((size_t)L, sizeof(float *));
    for (int l = 0; l < L; l++) {
        snprintf(path, sizeof path, "%s/W_enc_%d.safetensors", dir, l);
        if (safetensors_open(&c->enc[l], path, e)) goto fail;
        snprintf(path, sizeof path, "%s/W_dec_%d.safetensors", dir, l);
        if (access(path, F_OK)) {
            err_set(e, "%s: missing (every W_enc_l needs its W_dec_l)", path);
            goto fail;
        }
        if (safetensors_open(&c->dec[l], path, e)) goto fail;
        snprintf(name, sizeof name, "W_enc_%d", l);
        const StTensor *t = safetensors_find(&c->enc[l], name);
        if (!t || t->ndim != 2) {
            err_set(e, "%s: missing or malformed \"%s\"", c->enc[l].path, name);
            goto fail;
        }
        if (!l) {
            c->F = (int)t->shape[0];
            c->d = (int)t->shape[1];
        }
        int64_t fd[2] = {c->F, c->d}, fld[3] = {c->F, L - l, c->d};
        if (tensor_check(&c->enc[l], name, 2, fd, &t, e)) goto fail;
        snprintf(name, sizeof name, "W_dec_%d", l);
        if (tensor_check(&c->dec[l], name, 3, fld, &t, e)) goto fail;
        snprintf(name, sizeof name, "b_enc_%d", l);
        if (!(c->b_enc[l] = load_vector(&c->enc[l], name, c->F, e))) goto fail;
        snprintf(name, sizeof name, "threshold_%d", l);
        if (!(c->threshold[l] = load_vector(&c->enc[l], name, c->F, e))) goto fail;
        snprintf(name, sizeof name, "b_dec_%d", l);
        if (!(c->b_dec[l] = load_vector(&c->enc[l], name, c->d, e))) goto fail;
    }
    return 0;
fail:
    attrib_clt_close(c);
    return -1;
}

void attrib_clt_close(AttribClt *c) {
    for (int l = 0; l < c->L; l++) {
        if (c->enc && c->enc[l].path) safetensors_close(&c->enc[l]);
        if (c->dec && c->dec[l].path) safetensors_close(&c->dec[l]);
        if (c->b_enc) free(c->b_enc[l]);
        if (c->threshold) free(c->threshold[l]);
        if (c->b_dec) free(c->b_dec[l]);
    }
    free(c->enc); free(c->dec); free(c->b_enc); free(c->threshold); free(c->b_dec);
    free(c->dir); free(c->name);
    memset(c, 0, sizeof *c);
}

int attrib_clt_check(const AttribClt *c, const Model *m, Error *e) {
    if (c->L != m->cfg.n_layers)
        return err_set(e, "%s: the CLT has %d layers, the model (%s) %d", c->dir, c->L, m->dir, m->cfg.n_layers);
    if (c->d != m->cfg.d_model)
        return err_set(e, "%s: the CLT's width is %d, the model's (%s) %d", c->dir, c->d, m->dir, m->cfg.d_model);
    return 0;
}

int attrib_clt_encoder(const AttribClt *c, int l, const float **w, float **owned, Error *e) {
    char name[64];
    snprintf(name, sizeof name, "W_enc_%d", l);
    const StTensor *t = safetensors_find(&c->enc[l], name);
    *owned = NULL;
    if (t->dtype == ST_F32 && (uintptr_t)t->data % sizeof(float) == 0) {
        *w = t->data;
        return 0;
    }
    *owned = xmalloc((size_t)c->F * c->d * sizeof(float));
    if (safetensors_to_f32(&c->enc[l], t, *owned, 0, e)) {
        free(*owned);
        *owned = NULL;
        return -1;
    }
    *w = *owned;
    return 0;
}

int attrib_clt_decoder_row(const AttribClt *c, int l, int i, float *out, Error *e) {
    char name[64];
    snprintf(name, sizeof name, "W_dec_%d", l);
    const StTensor *t = safetensors_find(&c->dec[l], name);
    StTensor row = *t;  // a view of row i: only its pages of the mapping are read
    row.numel = (uint64_t)(c->L - l) * c->d;
    row.nbytes = row.numel * st_dtype_size(t->dtype);
    row.data = (const char *)t->data + (size_t)i * row.nbytes;
    return safetensors_to_f32(&c->dec[l], &row, out, 0, e);
}

// ---------------------------------------------------------------------------------------------
// capture

// What the frozen model reads of the block description (model.h): the norms (kind, weight offset),
// the embedding scale and whether the attention output has its own norm. Rope, the attention
// scale, soft-caps and windows shape the patterns, and the MLP its output: both are captured.
static int centered_norm(const Model *m) { return m->cfg.block.norm.kind == NORM_LAYER; }
static float norm_offset(const Model *m) { return m->cfg.block.norm.weight_offset; }

static float **alloc_layers(int L, size_t n) {
    float **p = xcalloc((size_t)L, sizeof(float *));
    for (int l = 0; l < L; l++) p[l] = xcalloc(n, sizeof(float));
    return p;
}

static void free_layers(float **p, int L) {
    if (!p) return;
    for (int l = 0; l < L; l++) free(p[l]);
    free(p);
}

void attrib_state_free(AttribState *s) {
    int L = s->L;
    free(s->tokens);
    free(s->tok_vec);
    free_layers(s->x_in, L); free_layers(s->mlp_out, L);
    free_layers(s->q, L); free_layers(s->k, L); free_layers(s->row_max, L); free_layers(s->row_inv, L);
    free_layers(s->attn_rstd, L); free_layers(s->mlp_rstd, L); free_layers(s->post_attn_rstd, L);
    free(s->final_rstd); free(s->logits);
    free(s->active); free(s->activation); free(s->uniq_of); free(s->enc_rows); free(s->dec_base); free(s->dec_rows);
    free(s->recon); free(s->error);
    if (s->dec_off)
        for (int l = 0; l < L; l++) {
            free(s->dec_off[l]);
            free(s->dec_row[l]);
            free(s->dec_act[l]);
            free(s->dec_src[l]);
        }
    free(s->dec_off); free(s->dec_row); free(s->dec_act); free(s->dec_src);
    free(s->logit_token); free(s->logit_prob); free(s->logit_vec);
    memset(s, 0, sizeof *s);
}

// Encodes every layer: the active features (a = h where h > θ, position 0 excluded) in (layer,
// pos, feature) order, their activations, and the distinct (layer, feature) pairs with their
// encoder rows (*uniq (n_uniq, 2): layer, feature).
static int encode_all(const AttribClt *clt, AttribState *s, int32_t **uniq, Error *e) {
    int L = s->L, T = s->T, D = s->D, F = clt->F;
    int64_t cap = 1024, n = 0, ucap = 256, nu = 0;
    s->active = xmalloc((size_t)cap * 3 * sizeof(int32_t));
    s->activation = xmalloc((size_t)cap * sizeof(float));
    s->uniq_of = xmalloc((size_t)cap * sizeof(int32_t));
    s->enc_rows = xmalloc((size_t)ucap * D * sizeof(float));
    *uniq = xmalloc((size_t)ucap * 2 * sizeof(int32_t));
    int32_t *uid = xmalloc((size_t)(F > 0 ? F : 1) * sizeof(int32_t));  // feature → pair, this layer
    // positions per block: the pre-activations of a block stay under 16M floats
    int rows = (int)((1 << 24) / (F > 0 ? F : 1));
    rows = rows < 1 ? 1 : rows > T ? T : rows;
    float *h = xmalloc((size_t)rows * F * sizeof(float));
    for (int l = 0; l < L; l++) {
        const float *w;
        float *owned;
        if (attrib_clt_encoder(clt, l, &w, &owned, e)) {
            free(h);
            free(uid);
            return -1;
        }
        for (int i = 0; i < F; i++) uid[i] = -1;
        const float *th = clt->threshold[l];
        for (int p0 = 0; p0 < T; p0 += rows) {
            int nr = T - p0 < rows ? T - p0 : rows;
            matmul_cpu(h, s->x_in[l] + (size_t)p0 * D, w, clt->b_enc[l], nr, D, F);
            for (int r = 0; r < nr; r++) {
                int p = p0 + r;
                if (p == 0) continue;  // circuit-tracer's zero_positions: the BOS slot
                const float *hr = h + (size_t)r * F;
                for (int i = 0; i < F; i++) {
                    if (!(hr[i] > th[i]) || hr[i] == 0) continue;
                    if (n == cap) {
                        cap *= 2;
                        s->active = xrealloc(s->active, (size_t)cap * 3 * sizeof(int32_t));
                        s->activation = xrealloc(s->activation, (size_t)cap * sizeof(float));
                        s->uniq_of = xrealloc(s->uniq_of, (size_t)cap * sizeof(int32_t));
                    }
                    if (uid[i] < 0) {
                        if (nu == ucap) {
                            ucap *= 2;
                            s->enc_rows = xrealloc(s->enc_rows, (size_t)ucap * D * sizeof(float));
                            *uniq = xrealloc(*uniq, (size_t)ucap * 2 * sizeof(int32_t));
                        }
                        memcpy(s->enc_rows + (size_t)nu * D, w + (size_t)i * D, (size_t)D * sizeof(float));
                        (*uniq)[2 * nu] = l;
                        (*uniq)[2 * nu + 1] = i;
                        uid[i] = (int32_t)nu++;
                    }
                    s->active[3 * n] = l;
                    s->active[3 * n + 1] = p;
                    s->active[3 * n + 2] = i;
                    s->activation[n] = hr[i];
                    s->uniq_of[n] = uid[i];
                    n++;
                }
            }
        }
        free(owned);
    }
    free(h);
    free(uid);
    s->n_active = (int)n;
    s->n_uniq = (int)nu;
    return 0;
}

// The distinct pairs' decoder blocks, the sources grouped by target layer and position, the
// reconstruction and the error vectors.
static int decode_all(const AttribClt *clt, AttribState *s, const int32_t *uniq, Error *e) {
    int L = s->L, T = s->T, D = s->D;
    s->dec_base = xmalloc(((size_t)s->n_uniq + 1) * sizeof(int64_t));
    int64_t total = 0;
    for (int u = 0; u < s->n_uniq; u++) {
        s->dec_base[u] = total;
        total += (int64_t)(L - uniq[2 * u]) * D;
    }
    s->n_dec_rows = total;
    s->dec_rows = xmalloc(((size_t)total + 1) * sizeof(float));
    for (int u = 0; u < s->n_uniq; u++)
        if (attrib_clt_decoder_row(clt, uniq[2 * u], uniq[2 * u + 1], s->dec_rows + s->dec_base[u], e)) return -1;
    s->dec_off = xcalloc((size_t)L, sizeof(int64_t *));
    s->dec_row = xcalloc((size_t)L, sizeof(int64_t *));
    s->dec_act = xcalloc((size_t)L, sizeof(float *));
    s->dec_src = xcalloc((size_t)L, sizeof(int32_t *));
    for (int k = 0; k < L; k++) s->dec_off[k] = xcalloc((size_t)T + 1, sizeof(int64_t));
    for (int a = 0; a < s->n_active; a++)
        for (int k = s->active[3 * a]; k < L; k++) s->dec_off[k][s->active[3 * a + 1] + 1]++;
    int64_t **fill = xcalloc((size_t)L, sizeof(int64_t *));
    for (int k = 0; k < L; k++) {
        for (int p = 0; p < T; p++) s->dec_off[k][p + 1] += s->dec_off[k][p];
        size_t n_k = (size_t)s->dec_off[k][T] + 1;
        s->dec_row[k] = xmalloc(n_k * sizeof(int64_t));
        s->dec_act[k] = xmalloc(n_k * sizeof(float));
        s->dec_src[k] = xmalloc(n_k * sizeof(int32_t));
        fill[k] = xmalloc((size_t)T * sizeof(int64_t));
        memcpy(fill[k], s->dec_off[k], (size_t)T * sizeof(int64_t));
    }
    for (int a = 0; a < s->n_active; a++) {
        int l = s->active[3 * a], p = s->active[3 * a + 1];
        for (int k = l; k < L; k++) {
            int64_t j = fill[k][p]++;
            s->dec_row[k][j] = s->dec_base[s->uniq_of[a]] + (int64_t)(k - l) * D;
            s->dec_act[k][j] = s->activation[a];
            s->dec_src[k][j] = a;
        }
    }
    for (int k = 0; k < L; k++) free(fill[k]);
    free(fill);
    size_t TD = (size_t)T * D;
    s->recon = xmalloc((size_t)L * TD * sizeof(float));
    s->error = xmalloc((size_t)L * TD * sizeof(float));
    for (int k = 0; k < L; k++)
        for (int p = 0; p < T; p++) {
            float *r = s->recon + k * TD + (size_t)p * D, *er = s->error + k * TD + (size_t)p * D;
            const float *y = s->mlp_out[k] + (size_t)p * D;
            memcpy(r, clt->b_dec[k], (size_t)D * sizeof(float));
            for (int64_t j = s->dec_off[k][p]; j < s->dec_off[k][p + 1]; j++) {
                const float *v = s->dec_rows + s->dec_row[k][j];
                float act = s->dec_act[k][j];
                for (int i = 0; i < D; i++) r[i] += v[i] * act;
            }
            for (int i = 0; i < D; i++) er[i] = p == 0 ? 0.0f : y[i] - r[i];
        }
    return 0;
}

// A norm with its scale frozen at rstd (T,): RMSNorm x·rstd·(off + w), LayerNorm (x − mean)·rstd·w + b.
static void frozen_norm(const Model *m, float *out, const float *x, const float *w, const float *b, const float *rstd,
                        int T, int D) {
    float off = norm_offset(m);
    for (int p = 0; p < T; p++) {
        const float *xr = x + (size_t)p * D;
        float *o = out + (size_t)p * D;
        float mean = 0;
        if (centered_norm(m)) {
            double sum = 0;
            for (int i = 0; i < D; i++) sum += xr[i];
            mean = (float)(sum / D);
        }
        for (int i = 0; i < D; i++) o[i] = (xr[i] - mean) * rstd[p] * (off + w[i]) + (b ? b[i] : 0.0f);
    }
}

AttribPattern attrib_layer_pattern(const Model *m, const AttribState *s, int l) {
    const ModelConfig *c = &m->cfg;
    AttnShape sh = {1, s->T, s->H, s->KVH, s->hd, model_attn_scale(c, l), c->attn_softcap,
                    c->layer_sliding[l] ? c->sliding_window : 0};
    return (AttribPattern){s->q[l], s->k[l], s->row_max[l], s->row_inv[l], sh};
}

// Each layer's queries and keys (after RoPE) from its input resid[l] (T, D), as the forward pass
// makes them (the attention-input norm at its captured scale, the q/k projections, RoPE), and the
// softmax statistics of its pattern rows: all attrib_layer_pattern needs, O(T) per layer.
static void capture_patterns(const Model *m, AttribState *s, float **resid) {
    const ModelConfig *c = &m->cfg;
    int L = s->L, T = s->T, D = s->D, qd = s->H * s->hd, kvd = s->KVH * s->hd;
    s->q = alloc_layers(L, (size_t)T * qd);
    s->k = alloc_layers(L, (size_t)T * kvd);
    s->row_max = alloc_layers(L, (size_t)s->H * T);
    s->row_inv = alloc_layers(L, (size_t)s->H * T);
    float *xn = xmalloc((size_t)T * D * sizeof(float)), *cos_t = NULL, *sin_t = NULL;
    if (c->block.rope) {
        cos_t = xmalloc((size_t)T * s->hd / 2 * sizeof(float));
        sin_t = xmalloc((size_t)T * s->hd / 2 * sizeof(float));
        rope_table(cos_t, sin_t, T, s->hd, &c->block.rope_params);
    }
    for (int l = 0; l < L; l++) {
        const LayerWeights *Lw = &m->layers[l];
        frozen_norm(m, xn, resid[l], Lw->attn_norm_w, Lw->attn_norm_b, s->attn_rstd[l], T, D);
        matmul_cpu(s->q[l], xn, Lw->wq, Lw->bq, T, D, qd);
        matmul_cpu(s->k[l], xn, Lw->wk, Lw->bk, T, D, kvd);
        if (cos_t) {
            rope_apply_cpu(s->q[l], cos_t, sin_t, 1, T, s->H, s->hd);
            rope_apply_cpu(s->k[l], cos_t, sin_t, 1, T, s->KVH, s->hd);
        }
        AttribPattern p = attrib_layer_pattern(m, s, l);
        attention_row_stats_cpu(s->row_max[l], s->row_inv[l], s->q[l], s->k[l], &p.shape);
    }
    free(xn); free(cos_t); free(sin_t);
}

int attrib_capture(const Model *m, const AttribClt *clt, const uint32_t *tokens, int T, AttribState *s, Error *e) {
    const ModelConfig *c = &m->cfg;
    memset(s, 0, sizeof *s);
    if (T < 1) return err_set(e, "attrib: the prompt is empty (no tokens)");
    if (T > c->max_pos)
        return err_set(e, "attrib: the prompt has %d tokens, more than the model's context of %d (%s)", T, c->max_pos,
                       m->dir);
    for (int p = 0; p < T; p++)
        if (tokens[p] >= (uint32_t)c->vocab_size)
            return err_set(e, "attrib: token id %u at position %d is outside the vocabulary (%d ids, %s)", tokens[p], p,
                           c->vocab_size, m->dir);
    if (attrib_clt_check(clt, m, e)) return -1;
    int L = c->n_layers, D = c->d_model;
    s->L = L; s->T = T; s->D = D; s->V = c->vocab_size;
    s->H = c->n_heads; s->KVH = c->n_kv_heads; s->hd = c->head_dim;
    s->input = clt->input;
    s->tokens = xmalloc((size_t)T * sizeof(uint32_t));
    memcpy(s->tokens, tokens, (size_t)T * sizeof(uint32_t));
    size_t TD = (size_t)T * D;
    s->tok_vec = xmalloc(TD * sizeof(float));
    for (int p = 0; p < T; p++)
        memcpy(s->tok_vec + (size_t)p * D, m->embed + (size_t)tokens[p] * D, (size_t)D * sizeof(float));
    s->x_in = alloc_layers(L, TD);
    s->mlp_out = alloc_layers(L, TD);
    s->attn_rstd = alloc_layers(L, (size_t)T);
    s->mlp_rstd = alloc_layers(L, (size_t)T);
    if (m->cfg.block.post_attn_norm) s->post_attn_rstd = alloc_layers(L, (size_t)T);
    s->final_rstd = xmalloc((size_t)T * sizeof(float));
    float *final = xmalloc(TD * sizeof(float));
    float **resid = alloc_layers(L, TD);  // the layers' inputs, until their q and k are made
    ForwardOutputs out = {.mlp_out = s->mlp_out, .resid_pre = resid, .attn_rstd = s->attn_rstd,
                          .mlp_rstd = s->mlp_rstd, .post_attn_rstd = s->post_attn_rstd,
                          .final_hidden = final, .final_rstd = s->final_rstd};
    if (clt->input == ATTRIB_IN_MLP_IN) out.mlp_in = s->x_in;
    else out.resid_mid = s->x_in;
    ForwardState *fs = forward_state_new(m, 1, T);
    int rc = model_forward(m, fs, tokens, 1, T, &out, e);
    forward_state_free(fs);
    if (!rc) {
        // logits of the last position only: (V, D) · final[T−1]
        s->logits = xmalloc((size_t)s->V * sizeof(float));
        block_logits_cpu(m, s->logits, final + (size_t)(T - 1) * D, 1);
    }
    free(final);
    if (!rc) capture_patterns(m, s, resid);
    free_layers(resid, L);
    int32_t *uniq = NULL;
    if (rc || encode_all(clt, s, &uniq, e) || decode_all(clt, s, uniq, e)) {
        free(uniq);
        attrib_state_free(s);
        return -1;
    }
    free(uniq);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// logit targets

typedef struct {
    float p;
    int32_t id;
} ProbId;

static int by_prob_desc(const void *a, const void *b) {
    const ProbId *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int attrib_logit_targets(AttribState *s, const Model *m, const int32_t *targets, int n_targets, int max_n_logits,
                         double desired_prob, Error *e) {
    int V = s->V, D = s->D;
    // softmax of the last position (float, as torch.softmax on float32 logits)
    float *prob = xmalloc((size_t)V * sizeof(float));
    float mx = s->logits[0];
    for (int v = 1; v < V; v++) mx = s->logits[v] > mx ? s->logits[v] : mx;
    double z = 0;
    for (int v = 0; v < V; v++) z += prob[v] = expf(s->logits[v] - mx);
    for (int v = 0; v < V; v++) prob[v] = (float)(prob[v] / z);
    int K;
    int32_t *ids;
    if (n_targets > 0) {
        for (int k = 0; k < n_targets; k++)
            if (targets[k] < 0 || targets[k] >= V) {
                free(prob);
                return err_set(e, "attrib: target token id %d is outside the vocabulary (%d ids, %s)", targets[k], V,
                               m->dir);
            }
        K = n_targets;
        ids = xmalloc((size_t)K * sizeof(int32_t));
        memcpy(ids, targets, (size_t)K * sizeof(int32_t));
    } else {
        if (max_n_logits < 1) {
            free(prob);
            return err_set(e, "attrib: max_n_logits must be >= 1 (got %d)", max_n_logits);
        }
        int top = max_n_logits < V ? max_n_logits : V;
        ProbId *pi = xmalloc((size_t)V * sizeof *pi);
        for (int v = 0; v < V; v++) pi[v] = (ProbId){prob[v], v};
        qsort(pi, (size_t)V, sizeof *pi, by_prob_desc);
        // searchsorted(cumsum(top_p), desired) + 1: the first index whose cumulative probability
        // (torch's CPU cumsum accumulates in double, stores float) reaches desired_prob
        double cum = 0;
        K = top;
        for (int k = 0; k < top; k++) {
            cum += pi[k].p;
            if ((float)cum >= (float)desired_prob) {
                K = k + 1;
                break;
            }
        }
        ids = xmalloc((size_t)K * sizeof(int32_t));
        for (int k = 0; k < K; k++) ids[k] = pi[k].id;
        free(pi);
    }
    // demeaned unembedding rows: W_U[v] − mean over the vocabulary
    double *mean = xcalloc((size_t)D, sizeof(double));
    for (int v = 0; v < V; v++) {
        const float *r = m->lm_head + (size_t)v * D;
        for (int i = 0; i < D; i++) mean[i] += r[i];
    }
    free(s->logit_token); free(s->logit_prob); free(s->logit_vec);
    s->n_logits = K;
    s->logit_token = ids;
    s->logit_prob = xmalloc((size_t)K * sizeof(float));
    s->logit_vec = xmalloc((size_t)K * D * sizeof(float));
    for (int k = 0; k < K; k++) {
        s->logit_prob[k] = prob[ids[k]];
        const float *r = m->lm_head + (size_t)ids[k] * D;
        for (int i = 0; i < D; i++) s->logit_vec[(size_t)k * D + i] = r[i] - (float)(mean[i] / V);
    }
    free(mean);
    free(prob);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// the batched backward

struct AttribWork {
    int B;
    float *g;    // (T, B, D) gradient at the residual stream, position-major
    float *tmp;  // (T, B, D) the post-attention norm's gradient
    float *g_n;  // (T, B, D) the value path's gradient at the attention-input norm's output
    float *x;    // (T, B, hd) one head's gradient at the attention output
    float *y;    // (T, B, hd) one kv head's gradient at the values
};

AttribWork *attrib_work_new(const AttribState *s, int B) {
    AttribWork *w = xcalloc(1, sizeof *w);
    size_t BT = (size_t)B * s->T;
    w->B = B;
    w->g = xmalloc(BT * s->D * sizeof(float));
    w->tmp = xmalloc(BT * s->D * sizeof(float));
    w->g_n = xmalloc(BT * s->D * sizeof(float));
    w->x = xmalloc(BT * s->hd * sizeof(float));
    w->y = xmalloc(BT * s->hd * sizeof(float));
    return w;
}

void attrib_work_free(AttribWork *w) {
    if (!w) return;
    free(w->g); free(w->tmp); free(w->g_n); free(w->x); free(w->y);
    free(w);
}

// g += the frozen attention block's vector–Jacobian product (value/output path) of layer l, one
// (kv) head at a time over the whole batch: x = g_o · W_o[:, head] (Te·n, hd), y = Σ_head Pᵀ x,
// g_n += y · W_v[kv head] (Te·n, D); then back through the attention-input norm.
static void attn_vjp(const Model *m, const AttribState *s, AttribWork *w, int l, int n, int Te) {
    const LayerWeights *Lw = &m->layers[l];
    int D = s->D, hd = s->hd, qd = s->H * hd, group = s->H / s->KVH, rows = n * Te;
    const float *go = w->g;
    AttribPattern pat = attrib_layer_pattern(m, s, l);
    if (Lw->post_attn_norm_w) {  // Gemma 2: the attention output's norm, its scale frozen
        attrib_norm_vjp_cpu(w->tmp, w->g, Lw->post_attn_norm_w, 1.0f, 0, s->post_attn_rstd[l], n, Te, D, 0);
        go = w->tmp;
    }
    for (int g = 0; g < s->KVH; g++) {
        for (int k = 0; k < group; k++) {
            int h = g * group + k;
            gemm_cpu(0, 0, rows, hd, D, go, D, Lw->wo + (size_t)h * hd, qd, 0.0f, w->x, hd);
            attrib_pattern_t_cpu(w->y, w->x, &pat, h, Te, n * hd, k ? 1.0f : 0.0f);
        }
        gemm_cpu(0, 0, rows, D, hd, w->y, hd, Lw->wv + (size_t)g * hd * D, D, g ? 1.0f : 0.0f, w->g_n, D);
    }
    attrib_norm_vjp_cpu(w->g, w->g_n, Lw->attn_norm_w, norm_offset(m), centered_norm(m), s->attn_rstd[l], n, Te, D, 1);
}

int attrib_batch_span(const AttribState *s, int n, const int *layer, const int *pos, int *Te, int *top, Error *e) {
    *Te = *top = 0;
    for (int b = 0; b < n; b++) {
        if (layer[b] < 0 || layer[b] > s->L || pos[b] < 0 || pos[b] >= s->T)
            return err_set(e, "attrib_rows: target %d at layer %d, position %d is outside the model", b, layer[b],
                           pos[b]);
        *Te = pos[b] + 1 > *Te ? pos[b] + 1 : *Te;
        *top = layer[b] > *top ? layer[b] : *top;
    }
    return 0;
}

int attrib_rows(const Model *m, const AttribState *s, AttribWork *w, int n, const int *layer, const int *pos,
                const float *vecs, float *rows, int64_t ld, Error *e) {
    int L = s->L, T = s->T, D = s->D;
    if (n < 1) return 0;
    if (n > w->B) return err_set(e, "attrib_rows: %d targets for a work area of %d", n, w->B);
    int Te, top;
    if (attrib_batch_span(s, n, layer, pos, &Te, &top, e)) return -1;
    int64_t n_src = attrib_row_sources(s);
    for (int b = 0; b < n; b++) memset(rows + (size_t)b * ld, 0, (size_t)n_src * sizeof(float));
    memset(w->g, 0, (size_t)n * Te * D * sizeof(float));
    for (int b = 0; b < n; b++)
        if (layer[b] == L)  // a logit: the direction after the final norm
            attrib_norm_vjp_cpu(w->g + ((size_t)pos[b] * n + b) * D, vecs + (size_t)b * D, m->final_norm_w,
                                norm_offset(m), centered_norm(m), s->final_rstd + pos[b], 1, 1, D, 1);
    for (int l = top < L ? top : L - 1; l >= 0; l--) {
        // g is the gradient at the residual after layer l: what layer l's MLP sources write into
        if (l < top) {
            attrib_decoder_dots_cpu(rows, ld, s->dec_off[l], s->dec_src[l], s->dec_rows, s->dec_row[l], s->dec_act[l],
                                    w->g, n, Te, D);
            attrib_position_dots_cpu(rows, ld, s->n_active + (int64_t)l * T, s->error + (size_t)l * T * D, 1.0f, w->g,
                                     n, Te, T, D);
        }
        for (int b = 0; b < n; b++) {
            if (layer[b] != l) continue;
            float *gp = w->g + ((size_t)pos[b] * n + b) * D;
            const float *v = vecs + (size_t)b * D;
            if (s->input == ATTRIB_IN_RESID_MID)
                for (int i = 0; i < D; i++) gp[i] += v[i];
            else
                attrib_norm_vjp_cpu(gp, v, m->layers[l].mlp_norm_w, norm_offset(m), centered_norm(m),
                                    s->mlp_rstd[l] + pos[b], 1, 1, D, 1);
        }
        attn_vjp(m, s, w, l, n, Te);  // g becomes the gradient at the residual entering layer l
    }
    // token sources: ⟨g at the embeddings, emb_scale · W_E[token]⟩
    attrib_position_dots_cpu(rows, ld, s->n_active + (int64_t)L * T, s->tok_vec, m->cfg.block.embed_scale,
                             w->g, n, Te, T, D);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// the frozen forward

enum { PV_ROWS = 64 };

typedef struct {
    float *att;
    const float *v;
    const AttribPattern *p;
} PatternVCtx;

// att_h = P_h · v_kv(h) for items (head, block of PV_ROWS query rows): the rows' pattern (against
// the keys up to the block's end) recomputed, then one product.
static void pattern_v_items(void *arg, size_t begin, size_t end) {
    const PatternVCtx *c = arg;
    const AttnShape *s = &c->p->shape;
    int T = s->T, H = s->H, hd = s->hd, nb = (T + PV_ROWS - 1) / PV_ROWS;
    float *pt = xmalloc((size_t)PV_ROWS * T * sizeof(float));
    for (size_t item = begin; item < end; item++) {
        int h = (int)(item / (size_t)nb), i0 = (int)(item % (size_t)nb) * PV_ROWS;
        int ni = T - i0 < PV_ROWS ? T - i0 : PV_ROWS, nj = i0 + ni;
        attention_probs_block_cpu(pt, nj, c->p->q, c->p->k, c->p->row_max, c->p->row_inv, s, h, i0, ni, 0, nj);
        gemm_serial_cpu(0, 0, ni, hd, nj, pt, nj, c->v + (size_t)(h / (H / s->KVH)) * hd, s->KVH * hd, 0.0f,
                        c->att + (size_t)i0 * H * hd + (size_t)h * hd, H * hd);
    }
    free(pt);
}

int attrib_frozen_forward(const Model *m, const AttribState *s, float *const *mlp, const float *add_resid, int linear,
                          float **x_in, float *final, Error *e) {
    int L = s->L, T = s->T, D = s->D, H = s->H, KVH = s->KVH, hd = s->hd, qd = H * hd, kvd = KVH * hd;
    size_t TD = (size_t)T * D;
    (void)e;
    float *x = xmalloc(TD * sizeof(float)), *xn = xmalloc(TD * sizeof(float));
    float *v = xmalloc((size_t)T * kvd * sizeof(float)), *att = xmalloc((size_t)T * qd * sizeof(float));
    float emb_scale = m->cfg.block.embed_scale;
    for (int p = 0; p < T; p++) {
        const float *emb = m->embed + (size_t)s->tokens[p] * D;
        const float *pe = m->pos_embed ? m->pos_embed + (size_t)p * D : NULL;
        for (int i = 0; i < D; i++) x[(size_t)p * D + i] = linear ? 0.0f : emb[i] * emb_scale + (pe ? pe[i] : 0.0f);
    }
    if (add_resid)
        for (size_t i = 0; i < TD; i++) x[i] += add_resid[i];
    for (int l = 0; l < L; l++) {
        const LayerWeights *Lw = &m->layers[l];
        frozen_norm(m, xn, x, Lw->attn_norm_w, linear ? NULL : Lw->attn_norm_b, s->attn_rstd[l], T, D);
        matmul_cpu(v, xn, Lw->wv, linear ? NULL : Lw->bv, T, D, kvd);
        AttribPattern pat = attrib_layer_pattern(m, s, l);
        PatternVCtx pc = {att, v, &pat};
        parallel_for((size_t)H * ((T + PV_ROWS - 1) / PV_ROWS), 1, pattern_v_items, &pc);
        matmul_cpu(xn, att, Lw->wo, linear ? NULL : Lw->bo, T, qd, D);
        if (Lw->post_attn_norm_w) frozen_norm(m, xn, xn, Lw->post_attn_norm_w, NULL, s->post_attn_rstd[l], T, D);
        for (size_t i = 0; i < TD; i++) x[i] += xn[i];
        if (x_in && x_in[l]) {
            if (s->input == ATTRIB_IN_RESID_MID) memcpy(x_in[l], x, TD * sizeof(float));
            else frozen_norm(m, x_in[l], x, Lw->mlp_norm_w, linear ? NULL : Lw->mlp_norm_b, s->mlp_rstd[l], T, D);
        }
        for (size_t i = 0; i < TD; i++) x[i] += mlp[l][i];
        if (add_resid)
            for (size_t i = 0; i < TD; i++) x[i] += add_resid[(size_t)(l + 1) * TD + i];
    }
    if (final) frozen_norm(m, final, x, m->final_norm_w, linear ? NULL : m->final_norm_b, s->final_rstd, T, D);
    free(x); free(xn); free(v); free(att);
    return 0;
}
