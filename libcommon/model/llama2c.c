// llama2c.c — llama2.c checkpoint reader and the mapping onto HF Llama tensors (see llama2c.h).
#include "llama2c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "safetensors.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "llama2c.c reads little-endian checkpoints in place; big-endian hosts need byte swapping"
#endif

#define LLAMA2C_MAGIC 0x616b3432u  // "ak42", export.py version >= 1
#define V0_HEADER 28                // 7 int32
#define V1_HEADER 256

// The tensors of a checkpoint, as llama2.c names them; per-layer ones hold all layers.
enum { S_EMB, S_RMS_ATT, S_WQ, S_WK, S_WV, S_WO, S_RMS_FFN, S_W1, S_W2, S_W3, S_RMS_FINAL, S_FREQ, S_CLS, S_COUNT };
static const int ORDER_V0[] = {S_EMB, S_RMS_ATT, S_WQ, S_WK, S_WV, S_WO, S_RMS_FFN,
                               S_W1, S_W2, S_W3, S_RMS_FINAL, S_FREQ, S_CLS};
static const int ORDER_V1[] = {S_RMS_ATT, S_RMS_FFN, S_RMS_FINAL, S_EMB, S_WQ, S_WK,
                               S_WV, S_WO, S_W1, S_W2, S_W3, S_CLS};

static int32_t rd_i32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

// Field limits: far above any released llama2.c/Llama model, low enough that every size below
// fits easily in 64 bits, so a corrupt header cannot overflow the size arithmetic.
static int check_field(const char *name, const char *field, int v, int max, Error *e) {
    if (v < 1 || v > max)
        return err_set(e, "%s: header field %s = %d is not in [1, %d] (not a llama2.c checkpoint?)", name, field, v,
                       max);
    return 0;
}

static void describe(const Llama2cConfig *c, char *buf, size_t n) {
    snprintf(buf, n, "dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d%s, seq_len %d",
             c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size,
             c->shared_classifier ? "" : " (untied classifier)", c->seq_len);
}

static void add_tensor(Llama2cModel *m, const char *name, int64_t rows, int64_t cols, const float *data) {
    Llama2cTensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->data = data;
}

// Rows of one projection, [n_heads * hs, cols], from llama2.c's interleaved-pair RoPE order to
// HF's rotate_half order: HF row h*hs + c*(hs/2) + p takes llama2.c row h*hs + 2p + c.
static void permute_rope_rows(float *dst, const float *src, int n_heads, int hs, int cols) {
    int half = hs / 2;
    for (int h = 0; h < n_heads; h++)
        for (int c = 0; c < 2; c++)
            for (int p = 0; p < half; p++)
                memcpy(dst + ((size_t)h * hs + (size_t)c * half + p) * cols,
                       src + ((size_t)h * hs + 2 * (size_t)p + c) * cols, (size_t)cols * sizeof(float));
}

int llama2c_parse(Llama2cModel *m, const void *buf, size_t len, const char *name, Error *e) {
    memset(m, 0, sizeof *m);
    const unsigned char *b = buf;
    Llama2cConfig c = {0};
    size_t header;
    if (len >= 4 && rd_i32(b) == (int32_t)LLAMA2C_MAGIC) {
        if (len < 8) return err_set(e, "%s: truncated header (%zu bytes)", name, len);
        int version = rd_i32(b + 4);
        if (version == 2)
            return err_set(
                e, "%s: llama2.c version 2 (int8 Q8_0) checkpoints are not supported; export with --version 0 or 1",
                name);
        if (version != 1) return err_set(e, "%s: unknown llama2.c checkpoint version %d", name, version);
        if (len < V1_HEADER)
            return err_set(e, "%s: truncated header (%zu bytes, version 1 needs %d)", name, len, V1_HEADER);
        header = V1_HEADER;
        c.version = 1;
        if (b[36] > 1) return err_set(e, "%s: header flag shared_classifier = %d is not 0 or 1", name, b[36]);
        c.shared_classifier = b[36];
        b += 8;  // the 7 ints follow magic and version
    } else {
        if (len < V0_HEADER) return err_set(e, "%s: truncated header (%zu bytes, need %d)", name, len, V0_HEADER);
        header = V0_HEADER;
        c.version = 0;
        c.shared_classifier = rd_i32(b + 20) > 0;  // legacy: negative vocab_size = untied classifier
    }
    c.dim = rd_i32(b);
    c.hidden_dim = rd_i32(b + 4);
    c.n_layers = rd_i32(b + 8);
    c.n_heads = rd_i32(b + 12);
    c.n_kv_heads = rd_i32(b + 16);
    int32_t vraw = rd_i32(b + 20);
    c.seq_len = rd_i32(b + 24);
    if (c.version == 0 && vraw < 0) {
        if (vraw == INT32_MIN) return err_set(e, "%s: header field vocab_size = %d is nonsense", name, vraw);
        vraw = -vraw;
    }
    c.vocab_size = vraw;
    if (check_field(name, "dim", c.dim, 1 << 16, e) || check_field(name, "hidden_dim", c.hidden_dim, 1 << 20, e) ||
        check_field(name, "n_layers", c.n_layers, 4096, e) || check_field(name, "n_heads", c.n_heads, c.dim, e) ||
        check_field(name, "n_kv_heads", c.n_kv_heads, c.n_heads, e) ||
        check_field(name, "vocab_size", c.vocab_size, 1 << 24, e) ||
        check_field(name, "seq_len", c.seq_len, 1 << 24, e))
        return -1;
    if (c.dim % c.n_heads) return err_set(e, "%s: n_heads %d does not divide dim %d", name, c.n_heads, c.dim);
    if (c.n_heads % c.n_kv_heads)
        return err_set(e, "%s: n_kv_heads %d does not divide n_heads %d", name, c.n_kv_heads, c.n_heads);
    int hs = c.dim / c.n_heads;
    if (hs % 2)
        return err_set(e, "%s: head size %d (dim %d / n_heads %d) is odd; RoPE rotates pairs", name, hs, c.dim,
                       c.n_heads);
    if ((uintptr_t)buf % sizeof(float)) return err_set(e, "%s: buffer is not 4-byte aligned", name);

    // Sizes in floats (the limits above keep every product below 2^50).
    uint64_t L = (uint64_t)c.n_layers, D = (uint64_t)c.dim, H = (uint64_t)c.hidden_dim, V = (uint64_t)c.vocab_size;
    uint64_t KV = D * (uint64_t)c.n_kv_heads / (uint64_t)c.n_heads;
    uint64_t size[S_COUNT] = {
        [S_EMB] = V * D, [S_RMS_ATT] = L * D, [S_WQ] = L * D * D, [S_WK] = L * KV * D, [S_WV] = L * KV * D,
        [S_WO] = L * D * D, [S_RMS_FFN] = L * D, [S_W1] = L * H * D, [S_W2] = L * D * H, [S_W3] = L * H * D,
        [S_RMS_FINAL] = D, [S_FREQ] = (uint64_t)c.seq_len * (uint64_t)hs,  // cos and sin, seq_len x hs/2 each
        [S_CLS] = c.shared_classifier ? 0 : V * D};
    const int *order = c.version ? ORDER_V1 : ORDER_V0;
    int n_order = c.version ? (int)(sizeof ORDER_V1 / sizeof *ORDER_V1) : (int)(sizeof ORDER_V0 / sizeof *ORDER_V0);
    uint64_t off[S_COUNT] = {0}, cur = 0;
    for (int i = 0; i < n_order; i++) {
        off[order[i]] = cur;
        cur += size[order[i]];
    }
    uint64_t need = header + cur * sizeof(float);
    if ((uint64_t)len != need) {
        char desc[256];
        describe(&c, desc, sizeof desc);
        if ((uint64_t)len < need)
            return err_set(e, "%s: truncated or wrong header: file is %zu bytes, the header (%s) needs %llu", name, len,
                           desc, (unsigned long long)need);
        return err_set(e, "%s: size mismatch: file is %zu bytes, the header (%s) needs %llu (%llu extra bytes)", name,
                       len, desc, (unsigned long long)need, (unsigned long long)(len - need));
    }

    const float *w = (const float *)((const unsigned char *)buf + header);
    m->cfg = c;
    m->tensors = xcalloc((size_t)(3 + 9 * c.n_layers), sizeof *m->tensors);
    m->permuted = xmalloc((size_t)(size[S_WQ] + size[S_WK]) * sizeof(float));
    char nm[64];
    add_tensor(m, "model.embed_tokens.weight", c.vocab_size, c.dim, w + off[S_EMB]);
    for (int l = 0; l < c.n_layers; l++) {
        uint64_t ul = (uint64_t)l;
        float *q = m->permuted + ul * D * D, *k = m->permuted + size[S_WQ] + ul * KV * D;
        permute_rope_rows(q, w + off[S_WQ] + ul * D * D, c.n_heads, hs, c.dim);
        permute_rope_rows(k, w + off[S_WK] + ul * KV * D, c.n_kv_heads, hs, c.dim);
#define LAYER(suffix, rows, cols, ptr) \
    snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, suffix); \
    add_tensor(m, nm, (int64_t)(rows), (int64_t)(cols), ptr)
        LAYER("input_layernorm", D, 0, w + off[S_RMS_ATT] + ul * D);
        LAYER("self_attn.q_proj", D, D, q);
        LAYER("self_attn.k_proj", KV, D, k);
        LAYER("self_attn.v_proj", KV, D, w + off[S_WV] + ul * KV * D);
        LAYER("self_attn.o_proj", D, D, w + off[S_WO] + ul * D * D);
        LAYER("post_attention_layernorm", D, 0, w + off[S_RMS_FFN] + ul * D);
        LAYER("mlp.gate_proj", H, D, w + off[S_W1] + ul * H * D);
        LAYER("mlp.down_proj", D, H, w + off[S_W2] + ul * D * H);
        LAYER("mlp.up_proj", H, D, w + off[S_W3] + ul * H * D);
#undef LAYER
    }
    add_tensor(m, "model.norm.weight", c.dim, 0, w + off[S_RMS_FINAL]);
    if (!c.shared_classifier) add_tensor(m, "lm_head.weight", c.vocab_size, c.dim, w + off[S_CLS]);
    return 0;
}

int llama2c_open(Llama2cModel *m, const char *path, Error *e) {
    memset(m, 0, sizeof *m);
    void *map;
    size_t n;
    if (map_file(path, &map, &n, e)) return -1;
    if (n < V0_HEADER) {
        if (map) munmap(map, n);
        return err_set(e, "%s: truncated header (%zu bytes, need %d)", path, n, V0_HEADER);
    }
    if (llama2c_parse(m, map, n, path, e)) {
        munmap(map, n);
        return -1;
    }
    m->map = map;
    m->map_size = n;
    return 0;
}

void llama2c_free(Llama2cModel *m) {
    free(m->tensors);
    free(m->permuted);
    if (m->map) munmap(m->map, m->map_size);
    memset(m, 0, sizeof *m);
}

const Llama2cTensor *llama2c_find(const Llama2cModel *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

char *llama2c_config_json(const Llama2cConfig *c) {
    // rms_norm_eps and rope_theta are llama2.c's (model.py norm_eps, run.c's 10000.0 base).
    char *s = xmalloc(2048);
    snprintf(s, 2048,
             "{\n"
             "  \"architectures\": [\"LlamaForCausalLM\"],\n"
             "  \"model_type\": \"llama\",\n"
             "  \"hidden_size\": %d,\n"
             "  \"intermediate_size\": %d,\n"
             "  \"num_hidden_layers\": %d,\n"
             "  \"num_attention_heads\": %d,\n"
             "  \"num_key_value_heads\": %d,\n"
             "  \"head_dim\": %d,\n"
             "  \"vocab_size\": %d,\n"
             "  \"max_position_embeddings\": %d,\n"
             "  \"rms_norm_eps\": 1e-05,\n"
             "  \"rope_theta\": 10000.0,\n"
             "  \"hidden_act\": \"silu\",\n"
             "  \"attention_bias\": false,\n"
             "  \"mlp_bias\": false,\n"
             "  \"tie_word_embeddings\": %s,\n"
             "  \"bos_token_id\": 1,\n"
             "  \"eos_token_id\": 2,\n"
             "  \"torch_dtype\": \"float32\"\n"
             "}\n",
             c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->dim / c->n_heads, c->vocab_size,
             c->seq_len, c->shared_classifier ? "true" : "false");
    return s;
}

// Writes text to dir/file through a temp file, fsync and rename, so a reader never sees half a file.
int llama2c_write_hf(const Llama2cModel *m, const char *dir, Error *e) {
    StWriteTensor *st = xcalloc((size_t)m->n_tensors, sizeof *st);
    for (int i = 0; i < m->n_tensors; i++) {
        const Llama2cTensor *t = &m->tensors[i];
        st[i] = (StWriteTensor){.name = t->name, .dtype = ST_F32, .ndim = t->ndim, .data = t->data};
        st[i].shape[0] = t->shape[0];
        st[i].shape[1] = t->shape[1];
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = safetensors_write(path, st, m->n_tensors, "{\"format\":\"pt\"}", e);
    free(st);
    if (rc) return -1;
    // config.json last: a directory that has it has the weights too.
    if (write_text_atomic(dir, "generation_config.json", "{\"bos_token_id\": 1, \"eos_token_id\": 2}\n", e)) return -1;
    char *cfg = llama2c_config_json(&m->cfg);
    rc = write_text_atomic(dir, "config.json", cfg, e);
    free(cfg);
    return rc;
}
