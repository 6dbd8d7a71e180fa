// test_llama2c.c — llama2.c checkpoint -> HF tensors. On the real stories260K.bin: header, every
// tensor against the raw file slices at offsets computed here independently (q/k un-permuted back,
// byte for byte), config.json and the written safetensors. On small synthetic checkpoints:
// version 0 and 1, tied and untied, give the same tensors. Corrupted copies give errors naming
// the file.
#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "tmpdir.h"
#include "llama2c.h"
#include "safetensors.h"

static char ckpt_path[1024];


static void put_bytes(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, n, f) != n) { perror(path); exit(1); }
    fclose(f);
}

// Offsets (floats after the 28-byte header) of the legacy layout, computed here by walking
// export.py legacy_export's order, independently of llama2c.c.
typedef struct {
    size_t emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq, end;
} V0Offsets;

static V0Offsets v0_offsets(size_t L, size_t D, size_t H, size_t KV, size_t V, size_t S, size_t hs) {
    V0Offsets o;
    size_t c = 0;
    o.emb = c; c += V * D;
    o.rms_att = c; c += L * D;
    o.wq = c; c += L * D * D;
    o.wk = c; c += L * KV * D;
    o.wv = c; c += L * KV * D;
    o.wo = c; c += L * D * D;
    o.rms_ffn = c; c += L * D;
    o.w1 = c; c += L * H * D;
    o.w2 = c; c += L * D * H;
    o.w3 = c; c += L * H * D;
    o.rms_final = c; c += D;
    o.freq = c; c += S * hs;
    o.end = c;
    return o;
}

static const Llama2cTensor *find_shape(const Llama2cModel *m, const char *name, int64_t r, int64_t c) {
    const Llama2cTensor *t = llama2c_find(m, name);
    CHECK(t != NULL, "missing tensor %s", name);
    if (!t) return NULL;
    CHECK(t->ndim == (c ? 2 : 1) && t->shape[0] == r && (!c || t->shape[1] == c), "%s: shape [%lld, %lld] ndim %d",
          name, (long long)t->shape[0], (long long)t->shape[1], t->ndim);
    return t;
}

static void test_header(void) {
    Llama2cModel m;
    Error e;
    int rc = llama2c_open(&m, ckpt_path, &e);
    CHECK(rc == 0, "%s", e.msg);
    if (rc) return;
    const Llama2cConfig *c = &m.cfg;
    CHECK(c->dim == 64 && c->hidden_dim == 172 && c->n_layers == 5 && c->n_heads == 8 && c->n_kv_heads == 4 &&
              c->vocab_size == 512 && c->seq_len == 512,
          "header %d %d %d %d %d %d %d", c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size,
          c->seq_len);
    CHECK(c->shared_classifier == 1 && c->version == 0, "shared %d version %d", c->shared_classifier, c->version);
    CHECK(m.n_tensors == 1 + 9 * 5 + 1, "%d tensors", m.n_tensors);
    CHECK(llama2c_find(&m, "lm_head.weight") == NULL, "tied model has lm_head");
    llama2c_free(&m);
}

// Every HF tensor equals its slice of the raw file; q/k after undoing the RoPE row permutation.
static void test_tensors_match_file(void) {
    size_t len;
    char *raw = test_read_file(ckpt_path, &len);
    CHECK(raw != NULL, "cannot read %s", ckpt_path);
    if (!raw) return;
    Llama2cModel m;
    Error e;
    int rc = llama2c_open(&m, ckpt_path, &e);
    CHECK(rc == 0, "%s", e.msg);
    if (rc) { free(raw); return; }
    const size_t L = 5, D = 64, H = 172, KV = 32, V = 512, S = 512, hs = 8, half = hs / 2;
    V0Offsets o = v0_offsets(L, D, H, KV, V, S, hs);
    // The plan in the reference notes (section 6.4) lists these offsets; agree with it too.
    CHECK(o.rms_att == 32768 && o.wq == 33088 && o.wk == 53568 && o.wv == 63808 && o.wo == 74048 &&
              o.rms_ffn == 94528 && o.w1 == 94848 && o.w2 == 149888 && o.w3 == 204928 && o.rms_final == 259968 &&
              o.freq == 260032,
          "offsets disagree with the notes");
    CHECK(28 + o.end * 4 == len, "file is %zu bytes, layout needs %zu", len, 28 + o.end * 4);
    const float *w = (const float *)(raw + 28);
    char nm[128];
    const Llama2cTensor *t;
#define SAME(name, r, c, src)                                                          \
    if ((t = find_shape(&m, name, r, c)))                                              \
        CHECK(!memcmp(t->data, (src), (size_t)(r) * ((c) ? (c) : 1) * 4), "%s differs", name)
    SAME("model.embed_tokens.weight", V, D, w + o.emb);
    SAME("model.norm.weight", D, 0, w + o.rms_final);
    for (size_t l = 0; l < L; l++) {
#define LSAME(suffix, r, c, src) snprintf(nm, sizeof nm, "model.layers.%zu.%s.weight", l, suffix); SAME(nm, r, c, src)
        LSAME("input_layernorm", D, 0, w + o.rms_att + l * D);
        LSAME("self_attn.v_proj", KV, D, w + o.wv + l * KV * D);
        LSAME("self_attn.o_proj", D, D, w + o.wo + l * D * D);
        LSAME("post_attention_layernorm", D, 0, w + o.rms_ffn + l * D);
        LSAME("mlp.gate_proj", H, D, w + o.w1 + l * H * D);
        LSAME("mlp.down_proj", D, H, w + o.w2 + l * D * H);
        LSAME("mlp.up_proj", H, D, w + o.w3 + l * H * D);
#undef LSAME
        // q (8 heads) and k (4 heads): llama2.c row h*hs + 2p + c is HF row h*hs + c*half + p.
        struct { const char *suffix; size_t rows, src; } qk[2] = {{"self_attn.q_proj", D, o.wq + l * D * D},
                                                                  {"self_attn.k_proj", KV, o.wk + l * KV * D}};
        for (int j = 0; j < 2; j++) {
            snprintf(nm, sizeof nm, "model.layers.%zu.%s.weight", l, qk[j].suffix);
            if (!(t = find_shape(&m, nm, (int64_t)qk[j].rows, D))) continue;
            int bad = 0;
            for (size_t h = 0; h < qk[j].rows / hs; h++)
                for (size_t p = 0; p < half; p++)
                    for (size_t c = 0; c < 2; c++)
                        bad += memcmp(t->data + (h * hs + c * half + p) * D, w + qk[j].src + (h * hs + 2 * p + c) * D,
                                      D * 4) != 0;
            CHECK(bad == 0, "%s: %d rows differ after un-permuting", nm, bad);
            // and the permutation is not the identity: row 1 of HF is llama2.c row 2
            CHECK(memcmp(t->data + D, w + qk[j].src + D, D * 4) != 0, "%s: rows not permuted", nm);
        }
    }
#undef SAME
    llama2c_free(&m);
    free(raw);
}

static void test_config_json(void) {
    Llama2cModel m;
    Error e;
    if (llama2c_open(&m, ckpt_path, &e)) { CHECK(0, "%s", e.msg); return; }
    char *text = llama2c_config_json(&m.cfg);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    CHECK(j != NULL, "config.json does not parse: %s", jerr.text);
    if (j) {
        struct { const char *key; long long v; } ints[] = {
            {"hidden_size", 64}, {"intermediate_size", 172}, {"num_hidden_layers", 5}, {"num_attention_heads", 8},
            {"num_key_value_heads", 4}, {"head_dim", 8}, {"vocab_size", 512}, {"max_position_embeddings", 512},
            {"bos_token_id", 1}, {"eos_token_id", 2}};
        for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
            json_t *v = json_object_get(j, ints[i].key);
            CHECK(json_is_integer(v) && json_integer_value(v) == ints[i].v, "%s", ints[i].key);
        }
        CHECK(json_real_value(json_object_get(j, "rms_norm_eps")) == 1e-5, "rms_norm_eps");
        CHECK(json_real_value(json_object_get(j, "rope_theta")) == 10000.0, "rope_theta");
        CHECK(json_is_true(json_object_get(j, "tie_word_embeddings")), "tie_word_embeddings");
        CHECK(!strcmp(json_string_value(json_object_get(j, "model_type")), "llama"), "model_type");
        CHECK(!strcmp(json_string_value(json_object_get(j, "hidden_act")), "silu"), "hidden_act");
        CHECK(!strcmp(json_string_value(json_object_get(j, "torch_dtype")), "float32"), "torch_dtype");
        json_t *arch = json_object_get(j, "architectures");
        CHECK(json_array_size(arch) == 1 && !strcmp(json_string_value(json_array_get(arch, 0)), "LlamaForCausalLM"),
              "architectures");
        json_decref(j);
    }
    free(text);
    llama2c_free(&m);
}

// Written directory: our safetensors reader sees every tensor, byte-identical, and the metadata.
static void test_write_hf(void) {
    Llama2cModel m;
    Error e;
    if (llama2c_open(&m, ckpt_path, &e)) { CHECK(0, "%s", e.msg); return; }
    TmpDir td;
    tmp_open(&td, "l2c");
    int rc = llama2c_write_hf(&m, td.dir, &e);
    CHECK(rc == 0, "%s", e.msg);
    char p[256];
    snprintf(p, sizeof p, "%s/model.safetensors", td.dir);
    SafeTensors st;
    if (!rc && safetensors_open(&st, p, &e) == 0) {
        CHECK(st.n_tensors == m.n_tensors, "%d tensors", st.n_tensors);
        for (int i = 0; i < m.n_tensors; i++) {
            const Llama2cTensor *t = &m.tensors[i];
            const StTensor *s = safetensors_find(&st, t->name);
            CHECK(s && s->dtype == ST_F32 && s->ndim == t->ndim && s->shape[0] == t->shape[0] &&
                      (t->ndim == 1 || s->shape[1] == t->shape[1]) && !memcmp(s->data, t->data, s->nbytes),
                  "%s", t->name);
        }
        CHECK(st.metadata_json && strstr(st.metadata_json, "\"format\"") && strstr(st.metadata_json, "\"pt\""),
              "metadata %s", st.metadata_json ? st.metadata_json : "(none)");
        safetensors_close(&st);
    } else {
        CHECK(0, "%s", e.msg);
    }
    snprintf(p, sizeof p, "%s/generation_config.json", td.dir);
    char *g = test_read_file(p, NULL);
    CHECK(g && strstr(g, "\"bos_token_id\": 1") && strstr(g, "\"eos_token_id\": 2"), "generation_config %s",
          g ? g : "");
    free(g);
    snprintf(p, sizeof p, "%s/config.json", td.dir);
    CHECK(access(p, R_OK) == 0, "no config.json");
    tmp_close(&td);
    llama2c_free(&m);
}

// A small synthetic checkpoint, serialized as version 0 or 1, tied or untied. Values are distinct
// (segment * 1e4 + index) so a misplaced slice cannot go unnoticed.
enum { SL = 2, SD = 8, SH = 12, SHEADS = 2, SKV = 1, SV = 10, SS = 4 };
static size_t synth(unsigned char *out, int version, int tied) {
    size_t hs = SD / SHEADS, kv = SD * SKV / SHEADS;
    size_t sizes[13] = {SV * SD, SL * SD, SL * SD * SD, SL * kv * SD, SL * kv * SD, SL * SD * SD, SL * SD,
                        SL * SH * SD, SL * SD * SH, SL * SH * SD, SD, SS * hs, tied ? 0 : SV * SD};
    // segment ids: 0 emb 1 rms_att 2 wq 3 wk 4 wv 5 wo 6 rms_ffn 7 w1 8 w2 9 w3 10 rms_final 11 freq 12 cls
    static const int v0[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    static const int v1[] = {1, 6, 10, 0, 2, 3, 4, 5, 7, 8, 9, 12};
    size_t n = 0;
    int32_t hdr[7] = {SD, SH, SL, SHEADS, SKV, version == 0 && !tied ? -SV : SV, SS};
    if (version == 1) {
        memset(out, 0, 256);
        uint32_t magic = 0x616b3432u;
        int32_t ver = 1;
        memcpy(out, &magic, 4);
        memcpy(out + 4, &ver, 4);
        memcpy(out + 8, hdr, sizeof hdr);
        out[36] = (unsigned char)tied;
        n = 256;
    } else {
        memcpy(out, hdr, sizeof hdr);
        n = sizeof hdr;
    }
    const int *order = version ? v1 : v0;
    int n_order = version ? 12 : 13;
    for (int i = 0; i < n_order; i++)
        for (size_t k = 0; k < sizes[order[i]]; k++) {
            float f = (float)(order[i] * 10000 + (int)k);
            memcpy(out + n, &f, 4);
            n += 4;
        }
    return n;
}

static void test_synthetic_versions(void) {
    static float buf[4][8192];  // float storage keeps the buffers 4-byte aligned
    size_t len[4];
    Llama2cModel m[4];
    Error e;
    for (int i = 0; i < 4; i++) {
        len[i] = synth((unsigned char *)buf[i], i / 2, i % 2);
        CHECK(llama2c_parse(&m[i], buf[i], len[i], "synthetic.bin", &e) == 0, "version %d tied %d: %s", i / 2, i % 2,
              e.msg);
    }
    for (int i = 0; i < 4; i++) {
        CHECK(m[i].cfg.version == i / 2 && m[i].cfg.shared_classifier == i % 2 && m[i].cfg.vocab_size == SV,
              "cfg %d", i);
        CHECK(m[i].n_tensors == 2 + 9 * SL + !(i % 2), "model %d: %d tensors", i, m[i].n_tensors);
        // every version/tying gives the same tensors as version 0 untied (model 0)
        for (int k = 0; k < m[i].n_tensors; k++) {
            const Llama2cTensor *a = &m[i].tensors[k], *b = llama2c_find(&m[0], a->name);
            size_t numel = (size_t)a->shape[0] * (size_t)(a->ndim == 2 ? a->shape[1] : 1);
            CHECK(b && b->shape[0] == a->shape[0] && !memcmp(a->data, b->data, numel * 4), "model %d: %s", i, a->name);
        }
        char *cfg = llama2c_config_json(&m[i].cfg);
        CHECK(strstr(cfg, i % 2 ? "\"tie_word_embeddings\": true" : "\"tie_word_embeddings\": false"), "tie %d", i);
        free(cfg);
    }
    const Llama2cTensor *lm = llama2c_find(&m[0], "lm_head.weight");
    CHECK(lm && lm->data[0] == 120000.0f && lm->shape[0] == SV && lm->shape[1] == SD, "lm_head is the classifier");
    // q of head 1, HF row hs + 1 (c = 0, p = 1) is llama2.c row hs + 2 -> value 20000 + (4 + 2) * 8
    const Llama2cTensor *q = llama2c_find(&m[0], "model.layers.0.self_attn.q_proj.weight");
    CHECK(q && q->data[(4 + 1) * SD] == 20000.0f + 6 * SD, "q permutation %g", q ? q->data[(4 + 1) * SD] : 0);
    for (int i = 0; i < 4; i++) llama2c_free(&m[i]);
}

// Corrupted copies of the real checkpoint (and a few synthetic headers): each is an error that
// names the file and says what is wrong.
static void expect_bad(const char *dir, const char *file, const void *buf, size_t n, const char *what) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    put_bytes(path, buf, n);
    Llama2cModel m;
    Error e = {{0}};
    int rc = llama2c_open(&m, path, &e);
    CHECK(rc == -1, "%s: accepted", file);
    if (rc == 0) { llama2c_free(&m); return; }
    CHECK(strstr(e.msg, path) != NULL, "%s: error does not name the file: %s", file, e.msg);
    CHECK(strstr(e.msg, what) != NULL, "%s: error '%s' lacks '%s'", file, e.msg, what);
}

static void test_bad_inputs(void) {
    size_t len;
    char *raw = test_read_file(ckpt_path, &len);
    CHECK(raw != NULL, "cannot read %s", ckpt_path);
    if (!raw) return;
    char *b = malloc(len + 16);
    TmpDir td;
    tmp_open(&td, "l2c");
    int32_t v;
#define WITH_FIELD(idx, val, file, what) \
    memcpy(b, raw, len); v = (val); memcpy(b + 4 * (idx), &v, 4); expect_bad(td.dir, file, b, len, what)
    expect_bad(td.dir, "truncated.bin", raw, len - 4, "truncated");
    expect_bad(td.dir, "half.bin", raw, len / 2, "truncated");
    expect_bad(td.dir, "tiny.bin", raw, 10, "truncated header");
    expect_bad(td.dir, "empty.bin", raw, 0, "truncated header");
    memcpy(b, raw, len);
    memset(b + len, 0, 16);
    expect_bad(td.dir, "trailing.bin", b, len + 16, "16 extra bytes");
    WITH_FIELD(2, 6, "six_layers.bin", "n_layers 6");
    WITH_FIELD(0, -64, "neg_dim.bin", "dim = -64");
    WITH_FIELD(3, 7, "heads7.bin", "n_heads 7 does not divide dim 64");
    WITH_FIELD(4, 3, "kv3.bin", "n_kv_heads 3 does not divide n_heads 8");
    WITH_FIELD(4, 0, "kv0.bin", "n_kv_heads = 0");
    WITH_FIELD(3, 64, "hs1.bin", "odd");
    WITH_FIELD(5, 0, "vocab0.bin", "vocab_size = 0");
    WITH_FIELD(5, -512, "untied_missing.bin", "untied classifier");
    WITH_FIELD(6, 1 << 30, "seq.bin", "seq_len");
    WITH_FIELD(1, 1 << 30, "hidden.bin", "hidden_dim");
    // version-1 magic with a version we do not read
    int32_t hdr[2] = {0x616b3432, 2};
    memcpy(b, raw, len);
    memcpy(b, hdr, 8);
    expect_bad(td.dir, "v2.bin", b, len, "version 2");
    hdr[1] = 9;
    memcpy(b, hdr, 8);
    expect_bad(td.dir, "v9.bin", b, len, "unknown llama2.c checkpoint version 9");
#undef WITH_FIELD
    Llama2cModel m;
    Error e;
    CHECK(llama2c_open(&m, "/nonexistent/x.bin", &e) == -1 && strstr(e.msg, "/nonexistent/x.bin: cannot open"), "%s",
          e.msg);
    tmp_close(&td);
    free(b);
    free(raw);
}

int main(void) {
    int n = snprintf(ckpt_path, sizeof ckpt_path, "%s/models/stories260K/stories260K.bin", test_shared_dir());
    RUN_TEST(test_synthetic_versions);
    if (n < 0 || (size_t)n >= sizeof ckpt_path || access(ckpt_path, R_OK) != 0) {
        printf("SKIP llama2c stories260K tests: needs %s (not found; `make test-data` fetches it)\n", ckpt_path);
        return test_summary();
    }
    RUN_TEST(test_header);
    RUN_TEST(test_tensors_match_file);
    RUN_TEST(test_config_json);
    RUN_TEST(test_write_hf);
    RUN_TEST(test_bad_inputs);
    return test_summary();
}
