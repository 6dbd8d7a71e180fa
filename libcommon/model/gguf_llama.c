// gguf_llama.c — Llama GGUF -> Hugging Face model directory (see gguf_llama.h).
#include "gguf_llama.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf_tokenizer.h"
#include "fileio.h"
#include "safetensors.h"

// Per-layer tensors: GGUF suffix, HF suffix, and the HF shape in terms of the config.
enum { SH_D, SH_Q, SH_KV, SH_O, SH_FD, SH_DF };  // (D) (H*hd,D) (KV*hd,D) (D,H*hd) (F,D) (D,F)
static const struct {
    const char *gguf, *hf;
    int shape;
    int rope;  // 1: q rows (H heads), 2: k rows (KV heads) — undo llama.cpp's RoPE permutation
} LAYER_TENSORS[] = {
    {"attn_norm", "input_layernorm", SH_D, 0},
    {"attn_q", "self_attn.q_proj", SH_Q, 1},
    {"attn_k", "self_attn.k_proj", SH_KV, 2},
    {"attn_v", "self_attn.v_proj", SH_KV, 0},
    {"attn_output", "self_attn.o_proj", SH_O, 0},
    {"ffn_norm", "post_attention_layernorm", SH_D, 0},
    {"ffn_gate", "mlp.gate_proj", SH_FD, 0},
    {"ffn_up", "mlp.up_proj", SH_FD, 0},
    {"ffn_down", "mlp.down_proj", SH_DF, 0},
};
#define N_LAYER_TENSORS (int)(sizeof LAYER_TENSORS / sizeof *LAYER_TENSORS)
// Global tensors take slots 0..2 (embed, norm, lm_head); layer l's tensor k slot 3 + l*9 + k.
enum { SLOT_EMBED, SLOT_NORM, SLOT_LM_HEAD, SLOT_LAYERS };

typedef struct {
    char hf[96];
    int ndim;
    int64_t shape[2];  // HF shape
    int rope;          // see LAYER_TENSORS
    int slot;
} Mapped;

// Maps one GGUF tensor name to its HF tensor; -1 with an error for a name outside the Llama set.
static int map_tensor(const Gguf *g, const GgufLlamaConfig *c, const char *name, Mapped *m, Error *e) {
    memset(m, 0, sizeof *m);
    int64_t D = c->d_model, F = c->d_ff, Q = (int64_t)c->n_heads * c->head_dim,
            KV = (int64_t)c->n_kv_heads * c->head_dim;
    if (!strcmp(name, "token_embd.weight")) {
        *m = (Mapped){"model.embed_tokens.weight", 2, {c->vocab_size, D}, 0, SLOT_EMBED};
        return 0;
    }
    if (!strcmp(name, "output_norm.weight")) {
        *m = (Mapped){"model.norm.weight", 1, {D, 0}, 0, SLOT_NORM};
        return 0;
    }
    if (!strcmp(name, "output.weight")) {
        *m = (Mapped){"lm_head.weight", 2, {c->vocab_size, D}, 0, SLOT_LM_HEAD};
        return 0;
    }
    if (!strcmp(name, "rope_freqs.weight"))
        return err_set(e, "%s: tensor 'rope_freqs.weight' (Llama 3.1 RoPE frequency factors) is not supported",
                       g->path);
    // "blk.<layer>." with the layer in canonical decimal (no sign, no leading zeros)
    int layer = -1, used = 0;
    if (!strncmp(name, "blk.", 4)) {
        const char *p = name + 4;
        long v = 0;
        while (*p >= '0' && *p <= '9' && p - name < 12) v = v * 10 + (*p++ - '0');
        if (p > name + 4 && *p == '.' && !(name[4] == '0' && p > name + 5)) {
            layer = (int)v;
            used = (int)(p + 1 - name);
        }
    }
    if (used > 0 && layer < c->n_layers) {
        for (int k = 0; k < N_LAYER_TENSORS; k++) {
            size_t n = strlen(LAYER_TENSORS[k].gguf);
            if (strncmp(name + used, LAYER_TENSORS[k].gguf, n) || strcmp(name + used + n, ".weight")) continue;
            snprintf(m->hf, sizeof m->hf, "model.layers.%d.%s.weight", layer, LAYER_TENSORS[k].hf);
            int64_t shapes[][2] = {[SH_D] = {D, 0}, [SH_Q] = {Q, D}, [SH_KV] = {KV, D},
                                   [SH_O] = {D, Q}, [SH_FD] = {F, D}, [SH_DF] = {D, F}};
            m->ndim = LAYER_TENSORS[k].shape == SH_D ? 1 : 2;
            m->shape[0] = shapes[LAYER_TENSORS[k].shape][0];
            m->shape[1] = shapes[LAYER_TENSORS[k].shape][1];
            m->rope = LAYER_TENSORS[k].rope;
            m->slot = SLOT_LAYERS + layer * N_LAYER_TENSORS + k;
            return 0;
        }
    }
    return err_set(e, "%s: tensor '%s' is not part of a Llama model (%d layers); not converted", g->path, name,
                   c->n_layers);
}

static int get_dim(const Gguf *g, const char *arch, const char *key, int64_t def, int64_t max, int *out, Error *e) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int64_t v = def;
    int rc = gguf_get_int(g, full, &v, e);
    if (rc < 0) return -1;
    if (rc > 0 && def < 0) return err_set(e, "%s: metadata '%s' is missing", g->path, full);
    if (v < 1 || v > max)
        return err_set(e, "%s: metadata '%s' = %lld is not in [1, %lld]", g->path, full, (long long)v, (long long)max);
    *out = (int)v;
    return 0;
}

static int get_real(const Gguf *g, const char *arch, const char *key, double def, double *out, Error *e) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    *out = def;
    int rc = gguf_get_float(g, full, out, e);
    if (rc < 0) return -1;
    if (!(*out > 0) || *out > 1e30)
        return err_set(e, "%s: metadata '%s' = %g is not a positive number", g->path, full, *out);
    return 0;
}

static void describe_ne(const GgufTensor *t, char *buf, size_t cap) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->n_dims && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%llu", d ? ", " : "", (unsigned long long)t->ne[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

int gguf_llama_config(const Gguf *g, GgufLlamaConfig *c, Error *e) {
    memset(c, 0, sizeof *c);
    GgufStr arch;
    int rc = gguf_get_str(g, "general.architecture", &arch, e);
    if (rc < 0) return -1;
    if (rc > 0) return err_set(e, "%s: general.architecture is missing", g->path);
    if (arch.len != 5 || memcmp(arch.ptr, "llama", 5))
        return err_set(e, "%s: architecture '%.*s' is not supported (only llama)", g->path,
                       (int)(arch.len < 64 ? arch.len : 64), arch.ptr);
    const char *A = "llama";
    const GgufValue *tokens = NULL;
    if (gguf_get_array(g, "tokenizer.ggml.tokens", GGUF_STRING, &tokens, e) < 0) return -1;
    int64_t n_tok = tokens ? (int64_t)tokens->arr.n : -1;
    if (get_dim(g, A, "block_count", -1, 4096, &c->n_layers, e) ||
        get_dim(g, A, "embedding_length", -1, 1 << 16, &c->d_model, e) ||
        get_dim(g, A, "feed_forward_length", -1, 1 << 20, &c->d_ff, e) ||
        get_dim(g, A, "attention.head_count", -1, c->d_model, &c->n_heads, e) ||
        get_dim(g, A, "attention.head_count_kv", c->n_heads, c->n_heads, &c->n_kv_heads, e) ||
        get_dim(g, A, "context_length", 2048, 1 << 24, &c->max_pos, e) ||
        get_dim(g, A, "vocab_size", n_tok > 0 ? n_tok : -1, 1 << 24, &c->vocab_size, e) ||
        get_dim(g, A, "attention.key_length", c->d_model / c->n_heads, 1 << 12, &c->head_dim, e) ||
        get_real(g, A, "rope.freq_base", 10000.0, &c->rope_theta, e) ||
        get_real(g, A, "attention.layer_norm_rms_epsilon", 1e-5, &c->norm_eps, e))
        return -1;
    if (c->n_heads % c->n_kv_heads)
        return err_set(e, "%s: llama.attention.head_count_kv %d does not divide head_count %d", g->path, c->n_kv_heads,
                       c->n_heads);
    if (c->head_dim % 2) return err_set(e, "%s: head size %d is odd; RoPE rotates pairs", g->path, c->head_dim);
    int vlen = c->head_dim;
    if (get_dim(g, A, "attention.value_length", c->head_dim, 1 << 12, &vlen, e)) return -1;
    if (vlen != c->head_dim)
        return err_set(e, "%s: llama.attention.value_length %d != key_length %d is not supported", g->path, vlen,
                       c->head_dim);
    int rope_dims = c->head_dim;
    if (get_dim(g, A, "rope.dimension_count", c->head_dim, 1 << 12, &rope_dims, e)) return -1;
    if (rope_dims != c->head_dim)
        return err_set(e, "%s: partial RoPE (llama.rope.dimension_count %d, head size %d) is not supported", g->path,
                       rope_dims, c->head_dim);
    GgufStr scaling;
    rc = gguf_get_str(g, "llama.rope.scaling.type", &scaling, e);
    if (rc < 0) return -1;
    if (rc == 0 && !(scaling.len == 4 && !memcmp(scaling.ptr, "none", 4)))
        return err_set(e, "%s: RoPE scaling '%.*s' (llama.rope.scaling.type) is not supported", g->path,
                       (int)(scaling.len < 64 ? scaling.len : 64), scaling.ptr);
    if (n_tok > 0 && n_tok != c->vocab_size)
        return err_set(e, "%s: llama.vocab_size %d but tokenizer.ggml.tokens has %lld tokens", g->path, c->vocab_size,
                       (long long)n_tok);
    c->bos_id = c->eos_id = -1;
    if (gguf_get_int(g, "tokenizer.ggml.bos_token_id", &c->bos_id, e) < 0 ||
        gguf_get_int(g, "tokenizer.ggml.eos_token_id", &c->eos_id, e) < 0)
        return -1;
    if (c->bos_id >= c->vocab_size || c->bos_id < -1 || c->eos_id >= c->vocab_size || c->eos_id < -1)
        return err_set(e, "%s: bos/eos token ids (%lld, %lld) outside the vocab of %d", g->path, (long long)c->bos_id,
                       (long long)c->eos_id, c->vocab_size);

    // The tensor set: every tensor known, with the shape the config implies, each exactly once.
    int n_slots = SLOT_LAYERS + c->n_layers * N_LAYER_TENSORS;
    char *seen = xcalloc((size_t)n_slots, 1);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const GgufTensor *t = &g->tensors[i];
        Mapped m;
        if (map_tensor(g, c, t->name, &m, e)) goto fail;
        int shape_ok = t->n_dims == m.ndim && t->ne[0] == (uint64_t)(m.ndim == 1 ? m.shape[0] : m.shape[1]) &&
                       (m.ndim == 1 || t->ne[1] == (uint64_t)m.shape[0]);
        if (!shape_ok) {
            char ne[160];
            describe_ne(t, ne, sizeof ne);
            if (m.ndim == 1)
                err_set(e, "%s: tensor '%s' has ne %s, the config implies [%lld]", g->path, t->name, ne,
                        (long long)m.shape[0]);
            else
                err_set(e, "%s: tensor '%s' has ne %s, the config implies [%lld, %lld]", g->path, t->name, ne,
                        (long long)m.shape[1], (long long)m.shape[0]);
            goto fail;
        }
        const GgmlTypeInfo *ti = ggml_type_info(t->type);
        if (!ti->dequant) {
            err_set(e, "%s: tensor '%s' has ggml type %s, which cannot be dequantized (supported: f32, f16, bf16, "
                    "q8_0, q4_0, q4_1, q4_K, q6_K)", g->path, t->name, ti->name);
            goto fail;
        }
        if (seen[m.slot]) {
            err_set(e, "%s: tensor '%s' appears twice", g->path, m.hf);
            goto fail;
        }
        seen[m.slot] = 1;
    }
    c->tied = !seen[SLOT_LM_HEAD];
    seen[SLOT_LM_HEAD] = 1;
    for (int s = 0; s < n_slots; s++) {
        if (seen[s]) continue;
        if (s == SLOT_EMBED) err_set(e, "%s: tensor 'token_embd.weight' is missing", g->path);
        else if (s == SLOT_NORM) err_set(e, "%s: tensor 'output_norm.weight' is missing", g->path);
        else err_set(e, "%s: tensor 'blk.%d.%s.weight' is missing", g->path, (s - SLOT_LAYERS) / N_LAYER_TENSORS,
                     LAYER_TENSORS[(s - SLOT_LAYERS) % N_LAYER_TENSORS].gguf);
        goto fail;
    }
    free(seen);
    return 0;
fail:
    free(seen);
    return -1;
}

// A JSON object text with a trailing newline, for the small files.
static char *dump_with_newline(json_t *j) {
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!s) fatal("out of memory serializing JSON");
    size_t n = strlen(s);
    s = xrealloc(s, n + 2);
    s[n] = '\n';
    s[n + 1] = 0;
    return s;
}

char *gguf_llama_config_json(const GgufLlamaConfig *c) {
    json_t *j = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:s, s:b, s:b, s:b}",
                          "architectures", "LlamaForCausalLM", "model_type", "llama", "hidden_size", c->d_model,
                          "intermediate_size", c->d_ff, "num_hidden_layers", c->n_layers, "num_attention_heads",
                          c->n_heads, "num_key_value_heads", c->n_kv_heads, "head_dim", c->head_dim, "vocab_size",
                          c->vocab_size, "max_position_embeddings", c->max_pos, "rms_norm_eps", c->norm_eps,
                          "rope_theta", c->rope_theta, "hidden_act", "silu", "attention_bias", 0, "mlp_bias", 0,
                          "tie_word_embeddings", c->tied);
    json_object_set_new(j, "bos_token_id", c->bos_id >= 0 ? json_integer(c->bos_id) : json_null());
    json_object_set_new(j, "eos_token_id", c->eos_id >= 0 ? json_integer(c->eos_id) : json_null());
    json_object_set_new(j, "torch_dtype", json_string("float32"));
    return dump_with_newline(j);
}

// Writes text to dir/file through a temp file, fsync and rename, so a reader never sees half a file.
// Rows of one projection [n_heads*hd, cols] from llama.cpp's order back to HF's:
// HF row h*hd + c*(hd/2) + p takes GGUF row h*hd + 2p + c.
static void unpermute_rope_rows(float *dst, const float *src, int n_heads, int hd, int64_t cols) {
    int half = hd / 2;
    for (int h = 0; h < n_heads; h++)
        for (int c = 0; c < 2; c++)
            for (int p = 0; p < half; p++)
                memcpy(dst + ((size_t)h * hd + (size_t)c * half + p) * (size_t)cols,
                       src + ((size_t)h * hd + 2 * (size_t)p + c) * (size_t)cols, (size_t)cols * sizeof(float));
}

int gguf_llama_write_hf(const Gguf *g, const char *dir, int hf_tokenizer, Error *e) {
    GgufLlamaConfig c;
    if (gguf_llama_config(g, &c, e)) return -1;
    char *tok_json = NULL, *tok_cfg = NULL;
    if (gguf_tokenizer_json(g, hf_tokenizer, &tok_json, e) || gguf_tokenizer_config_json(g, &tok_cfg, e)) {
        free(tok_json);
        return -1;
    }
    size_t tl = strlen(tok_json);
    tok_json = xrealloc(tok_json, tl + 2);
    memcpy(tok_json + tl, "\n", 2);

    // Dequantize everything (the checks above guarantee every tensor maps and dequantizes).
    uint64_t n = g->n_tensors;
    StWriteTensor *st = xcalloc(n ? n : 1, sizeof *st);
    Mapped *maps = xcalloc(n ? n : 1, sizeof *maps);
    float **bufs = xcalloc(n ? n : 1, sizeof *bufs);
    int rc = 0;
    for (uint64_t i = 0; i < n && !rc; i++) {
        const GgufTensor *t = &g->tensors[i];
        map_tensor(g, &c, t->name, &maps[i], e);
        bufs[i] = xmalloc(t->numel * sizeof(float));
        rc = gguf_tensor_to_f32(g, t, bufs[i], e);
        if (!rc && maps[i].rope) {
            float *tmp = xmalloc(t->numel * sizeof(float));
            unpermute_rope_rows(tmp, bufs[i], maps[i].rope == 1 ? c.n_heads : c.n_kv_heads, c.head_dim,
                                maps[i].shape[1]);
            free(bufs[i]);
            bufs[i] = tmp;
        }
        st[i] = (StWriteTensor){.name = maps[i].hf, .dtype = ST_F32, .ndim = maps[i].ndim, .data = bufs[i]};
        st[i].shape[0] = maps[i].shape[0];
        st[i].shape[1] = maps[i].shape[1];
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc) rc = write_text_atomic(dir, "tokenizer.json", tok_json, e);
    if (!rc) rc = write_text_atomic(dir, "tokenizer_config.json", tok_cfg, e);
    if (!rc) rc = safetensors_write(path, st, (int)n, "{\"format\":\"pt\"}", e);
    for (uint64_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(maps);
    free(st);
    free(tok_json);
    free(tok_cfg);
    if (rc) return -1;
    // config.json last: a directory that has it has the weights too.
    json_t *gen = json_object();
    json_object_set_new(gen, "bos_token_id", c.bos_id >= 0 ? json_integer(c.bos_id) : json_null());
    json_object_set_new(gen, "eos_token_id", c.eos_id >= 0 ? json_integer(c.eos_id) : json_null());
    char *gen_s = dump_with_newline(gen);
    rc = write_text_atomic(dir, "generation_config.json", gen_s, e);
    free(gen_s);
    if (rc) return -1;
    char *cfg = gguf_llama_config_json(&c);
    rc = write_text_atomic(dir, "config.json", cfg, e);
    free(cfg);
    return rc;
}
