// The CPU forward pass against goldens from Hugging Face transformers (tests/ref/
// make_model_goldens.py): logits, every hook, attention patterns and the loss, for tiny random
// Llama 3 (sharded fp32 and bf16 weights), Gemma 2 and GPT-2 checkpoints (also with
// scale_attn_by_inverse_layer_idx and with an untied lm_head).
#include <jansson.h>
#include <limits.h>

#include "check.h"
#include "model.h"
#include "safetensors.h"
#include "tmpdir.h"

static float *golden_f32(const SafeTensors *g, const char *name, size_t expect) {
    const StTensor *t = safetensors_find(g, name);
    if (!t || t->numel != expect) return NULL;
    float *buf = malloc(expect * sizeof(float));
    Error e;
    if (safetensors_to_f32(g, t, buf, expect, &e)) { free(buf); return NULL; }
    return buf;
}

static void compare(const char *model, const SafeTensors *g, const char *name, const float *got, size_t n, double tol) {
    float *want = golden_f32(g, name, n);
    CHECK(want != NULL, "%s: golden %s missing or of the wrong size", model, name);
    if (!want) return;
    double err = test_rel_err(got, want, n);
    CHECK(err <= tol, "%s: %s relative error %.3g > %.1g", model, name, err, tol);
    free(want);
}

static void check_model(const char *name) {
    char dir[512], gpath[600];
    snprintf(dir, sizeof dir, "tests/golden/models/%s", name);
    snprintf(gpath, sizeof gpath, "%s/golden.safetensors", dir);
    Model m;
    Error e;
    CHECK(!model_load(&m, dir, &e), "%s", e.msg);
    if (!m.layers) return;
    SafeTensors g;
    CHECK(!safetensors_open(&g, gpath, &e), "%s", e.msg);
    const StTensor *ids_t = safetensors_find(&g, "input_ids");
    CHECK(ids_t && ids_t->ndim == 2, "input_ids");
    int B = (int)ids_t->shape[0], T = (int)ids_t->shape[1];
    const ModelConfig *c = &m.cfg;
    int L = c->n_layers, D = c->d_model, V = c->vocab_size, H = c->n_heads;
    size_t N = (size_t)B * T;
    float *idf = malloc(N * sizeof(float));
    safetensors_to_f32(&g, ids_t, idf, N, &e);
    uint32_t *tokens = malloc(N * sizeof(uint32_t));
    for (size_t i = 0; i < N; i++) tokens[i] = (uint32_t)idf[i];

    float **hooks[5];
    for (int h = 0; h < 5; h++) {
        hooks[h] = calloc((size_t)L, sizeof(float *));
        for (int l = 0; l < L; l++)
            hooks[h][l] = malloc((h == 4 ? (size_t)B * H * T * T : N * D) * sizeof(float));
    }
    float *logits = malloc(N * V * sizeof(float)), *final_hidden = malloc(N * D * sizeof(float));
    ForwardOutputs out = {.resid_pre = hooks[0], .resid_mid = hooks[1], .mlp_in = hooks[2], .mlp_out = hooks[3],
                          .attn_probs = hooks[4], .final_hidden = final_hidden, .logits = logits};
    ForwardState *st = forward_state_new(&m, B, T);
    CHECK(!model_forward(&m, st, tokens, B, T, &out, &e), "%s", e.msg);

    const double tol = getenv("TOL") ? atof(getenv("TOL")) : 1e-4;
    const char *names[5] = {"resid_pre", "resid_mid", "mlp_in", "mlp_out", "attn_probs"};
    for (int h = 0; h < 5; h++)
        for (int l = 0; l < L; l++) {
            char tn[64];
            snprintf(tn, sizeof tn, "%s.%d", names[h], l);
            compare(name, &g, tn, hooks[h][l], h == 4 ? (size_t)B * H * T * T : N * D, tol);
        }
    compare(name, &g, "final_hidden", final_hidden, N * D, tol);
    compare(name, &g, "logits", logits, N * V, tol);
    double loss[16];
    model_loss(logits, tokens, B, T, V, loss);
    float *want_loss = golden_f32(&g, "loss", (size_t)B);
    CHECK(want_loss != NULL, "loss golden");
    for (int b = 0; want_loss && b < B; b++) CHECK_NEAR(loss[b], want_loss[b], 1e-5);
    free(want_loss);

    // Stopping early gives the same hooks for the layers that ran, and no logits.
    ForwardOutputs early = {.mlp_out = hooks[3], .n_run_layers = 1};
    memset(hooks[3][0], 0, N * D * sizeof(float));
    CHECK(!model_forward(&m, st, tokens, B, T, &early, &e), "%s", e.msg);
    compare(name, &g, "mlp_out.0", hooks[3][0], N * D, tol);

    // A token id outside the vocabulary is an error, not a read out of bounds.
    uint32_t saved = tokens[5];
    tokens[5] = (uint32_t)V;
    CHECK(model_forward(&m, st, tokens, B, T, &out, &e) == -1 && strstr(e.msg, "vocab"), "bad id accepted: %s", e.msg);
    tokens[5] = saved;

    forward_state_free(st);
    for (int h = 0; h < 5; h++) {
        for (int l = 0; l < L; l++) free(hooks[h][l]);
        free(hooks[h]);
    }
    free(logits); free(final_hidden); free(tokens); free(idf);
    safetensors_close(&g);
    model_free(&m);
}

static void test_llama3_sharded_matches_hf(void) { check_model("llama3"); }
static void test_llama3_bf16_matches_hf(void) { check_model("llama3_bf16"); }
static void test_gemma2_matches_hf(void) { check_model("gemma2"); }
static void test_gpt2_matches_hf(void) { check_model("gpt2"); }
// The GPT-2 flags that change the computation (they were once ignored: silently wrong from layer 1 on).
static void test_gpt2_scaled_matches_hf(void) {
    Model m;
    Error e;
    CHECK(!model_load(&m, "tests/golden/models/gpt2_scaled", &e), "%s", e.msg);
    CHECK(m.cfg.attn_scale_by_layer && model_attn_scale(&m.cfg, 2) == m.cfg.query_scale / 3.0f,
          "scale_attn_by_inverse_layer_idx not read");
    model_free(&m);
    check_model("gpt2_scaled");
}
static void test_gpt2_untied_matches_hf(void) {
    Model m;
    Error e;
    CHECK(!model_load(&m, "tests/golden/models/gpt2_untied", &e), "%s", e.msg);
    CHECK(!m.cfg.tie_embeddings && m.lm_head && m.lm_head != m.embed, "tie_word_embeddings=false not honoured");
    model_free(&m);
    check_model("gpt2_untied");
}

// A copy of a golden model directory whose config.json has `key` set to the JSON `value` (NULL: removed).
static void edited_model(TmpDir *t, const char *name, const char *key, const char *value) {
    char src[512], dst[600];
    snprintf(src, sizeof src, "tests/golden/models/%s/config.json", name);
    json_t *cfg = json_load_file(src, 0, NULL);
    if (value) json_object_set_new(cfg, key, json_loads(value, JSON_DECODE_ANY, NULL));
    else json_object_del(cfg, key);
    snprintf(dst, sizeof dst, "%s/config.json", t->dir);
    json_dump_file(cfg, dst, 0);
    json_decref(cfg);
    char target[PATH_MAX], abs[PATH_MAX];
    snprintf(target, sizeof target, "tests/golden/models/%s/model.safetensors", name);
    snprintf(dst, sizeof dst, "%s/model.safetensors", t->dir);
    if (realpath(target, abs)) CHECK(!symlink(abs, dst), "symlink %s", dst);
}

static const struct { const char *type, *golden; ModelArch arch; } ARCHS[] = {
    {"llama", "llama3_bf16", ARCH_LLAMA}, {"gemma2", "gemma2", ARCH_GEMMA2}, {"gpt2", "gpt2", ARCH_GPT2}};

// Every config key transformers reads (tests/ref/list_hf_config_keys.py) is implemented, refused
// unless it has a supported value, or without effect; each refusable one is refused with an error
// naming it (a bad value on a golden model).
static void test_every_hf_config_key_handled_or_refused(void) {
    json_error_t je;
    json_t *root = json_load_file("tests/golden/models/hf_config_keys.json", 0, &je);
    CHECK(root, "hf_config_keys.json: %s", je.text);
    if (!root) return;
    int n_keys = 0, n_refused = 0;
    for (int a = 0; a < 3; a++) {
        json_t *keys = json_object_get(json_object_get(root, "keys"), ARCHS[a].type), *k;
        CHECK(json_array_size(keys) > 20, "%s: %zu keys listed", ARCHS[a].type, json_array_size(keys));
        size_t i;
        json_array_foreach(keys, i, k) {
            const char *key = json_string_value(k), *bad;
            int use = model_config_key_use(ARCHS[a].arch, key, &bad);
            CHECK(use >= 0, "%s: config key \"%s\" is read by transformers but neither handled nor refused",
                  ARCHS[a].type, key);
            n_keys++;
            if (use != KEY_CHECKED) continue;
            TmpDir t;
            tmp_open(&t, "cfgkey");
            edited_model(&t, ARCHS[a].golden, key, bad);
            Model m;
            Error e;
            int rc = model_load(&m, t.dir, &e);
            CHECK(rc == -1 && strstr(e.msg, key), "%s: %s=%s accepted (%s)", ARCHS[a].type, key, bad, rc ? e.msg : "");
            if (!rc) model_free(&m);
            n_refused++;
            tmp_close(&t);
        }
    }
    CHECK(n_keys > 100 && n_refused > 20, "%d keys, %d refusals tried", n_keys, n_refused);
    json_decref(root);
}

// Values transformers treats as the plain computation load: rope_scaling "default" is plain RoPE,
// GPT-2's hidden_size etc. are aliases of n_embd etc.
static void test_config_equivalent_spellings(void) {
    struct { const char *golden, *key, *value, *del; int ok; } cases[] = {
        {"llama3_bf16", "rope_scaling", "{\"rope_type\": \"default\"}", NULL, 1},
        {"llama3_bf16", "rope_scaling", "{\"type\": \"default\", \"factor\": 2.0}", NULL, 1},
        {"llama3_bf16", "rope_scaling", "{\"rope_type\": \"linear\", \"factor\": 2.0}", NULL, 0},
        {"gemma2", "rope_scaling", "{\"rope_type\": \"default\"}", NULL, 1},
        {"gemma2", "layer_types",
         "[\"sliding_attention\", \"chunked_attention\", \"full_attention\", \"full_attention\"]", NULL, 0},
        {"gpt2", "hidden_size", "64", "n_embd", 1},
        {"gpt2", "hidden_size", "32", NULL, 0},  // disagrees with n_embd 64
        {"gpt2", "partial_rotary_factor", "1.0", NULL, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        TmpDir t;
        tmp_open(&t, "cfgkey");
        edited_model(&t, cases[i].golden, cases[i].key, cases[i].value);
        if (cases[i].del) {  // rewrite without the canonical key
            char p[600];
            snprintf(p, sizeof p, "%s/config.json", t.dir);
            json_t *cfg = json_load_file(p, 0, NULL);
            json_object_del(cfg, cases[i].del);
            json_dump_file(cfg, p, 0);
            json_decref(cfg);
        }
        Model m;
        Error e;
        int rc = model_load(&m, t.dir, &e);
        CHECK(cases[i].ok ? rc == 0 : rc == -1, "%s %s=%s: %s", cases[i].golden, cases[i].key, cases[i].value,
              rc ? e.msg : "accepted");
        if (!rc) {
            CHECK(!m.cfg.rope_llama3 && m.cfg.d_model == 64, "%s %s: rope_llama3 %d, d_model %d", cases[i].golden,
                  cases[i].key, m.cfg.rope_llama3, m.cfg.d_model);
            model_free(&m);
        }
        tmp_close(&t);
    }
}

// The model hash (formats/acts.md) equals the independent implementation tests/ref/model_hash.py on
// sharded and single-file checkpoints.
static void test_model_hash_matches_reference(void) {
    json_error_t je;
    json_t *root = json_load_file("tests/golden/models/model_hash.json", 0, &je);
    CHECK(root, "model_hash.json: %s", je.text);
    if (!root) return;
    const char *key;
    json_t *val;
    int n = 0;
    json_object_foreach(json_object_get(root, "hashes"), key, val) {
        char dir[256], got[17];
        snprintf(dir, sizeof dir, "tests/golden/models/%s", key);
        Model m;
        Error e;
        if (model_load(&m, dir, &e)) { CHECK(0, "%s", e.msg); continue; }
        snprintf(got, sizeof got, "%016llx", (unsigned long long)m.weights_hash);
        const char *want = json_string_value(val);
        CHECK(want && !strcmp(got, want), "%s: model hash %s, reference %s", key, got, want ? want : "?");
        model_free(&m);
        n++;
    }
    CHECK(n == 3, "%d reference hashes", n);
    json_decref(root);
}

// Copies src to dst byte for byte; with flip >= 0, byte `flip` is XOR-ed by 1. Returns the size.
static long copy_flipped(const char *src, const char *dst, long flip) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    CHECK(in && out, "copy %s to %s", src, dst);
    long size = 0;
    if (in && out) {
        fseek(in, 0, SEEK_END);
        size = ftell(in);
        rewind(in);
        unsigned char *buf = malloc((size_t)size);
        CHECK(fread(buf, 1, (size_t)size, in) == (size_t)size && flip < size, "read %s", src);
        if (flip >= 0 && flip < size) buf[flip] ^= 1;
        CHECK(fwrite(buf, 1, (size_t)size, out) == (size_t)size, "write %s", dst);
        free(buf);
    }
    if (in) fclose(in);
    if (out) fclose(out);
    return size;
}

// The hash of golden model gpt2 with weight-file byte `at` (negative: from the end) flipped.
static uint64_t gpt2_hash_with_flip(long at) {
    TmpDir t;
    tmp_open(&t, "hash");
    char dst[600];
    snprintf(dst, sizeof dst, "%s/config.json", t.dir);
    copy_flipped("tests/golden/models/gpt2/config.json", dst, -1);
    snprintf(dst, sizeof dst, "%s/model.safetensors", t.dir);
    const char *src = "tests/golden/models/gpt2/model.safetensors";
    FILE *f = fopen(src, "rb");
    long size = 0;
    if (f) { fseek(f, 0, SEEK_END); size = ftell(f); fclose(f); }
    copy_flipped(src, dst, at < 0 ? size + at : at);
    Model m;
    Error e;
    uint64_t h = 0;
    if (!model_load(&m, t.dir, &e)) {
        h = m.weights_hash;
        model_free(&m);
    } else {
        CHECK(0, "%s", e.msg);
    }
    tmp_close(&t);
    return h;
}

// What the hash detects and, by design, what it does not (formats/acts.md): a change of the last
// weight byte (the end of the last tensor) or of a tensor's first byte changes it; one byte in the
// middle of a large tensor, between the sampled windows, does not.
static void test_model_hash_detects(void) {
    Model m;
    Error e;
    CHECK(!model_load(&m, "tests/golden/models/gpt2", &e), "%s", e.msg);
    uint64_t h0 = m.weights_hash;
    model_free(&m);
    CHECK(gpt2_hash_with_flip(-(1L << 40)) == h0, "an unchanged copy has another hash");  // flip out of range: none
    CHECK(gpt2_hash_with_flip(-1) != h0, "flipping the last weight byte leaves the hash");
    // wte, the largest tensor (512 x 64 fp32 = 128 KiB): its 16 windows of 64 bytes are ~8.7 KiB apart
    SafeTensors st;
    CHECK(!safetensors_open(&st, "tests/golden/models/gpt2/model.safetensors", &e), "%s", e.msg);
    const StTensor *wte = safetensors_find(&st, "transformer.wte.weight");
    CHECK(wte && wte->nbytes == 512 * 64 * 4, "wte");
    long first = wte ? (long)((const char *)wte->data - (const char *)st.map) : 0;
    long gap = wte ? first + (long)((wte->nbytes - 64) / 15) + 64 + 100 : 0;  // past window 1, before window 2
    safetensors_close(&st);
    CHECK(gpt2_hash_with_flip(first) != h0, "flipping wte's first byte leaves the hash");
    CHECK(gpt2_hash_with_flip(gap) == h0,
          "a byte between the windows changes the hash: formats/acts.md says it does not");
}

int main(void) {
    RUN_TEST(test_llama3_sharded_matches_hf);
    RUN_TEST(test_llama3_bf16_matches_hf);
    RUN_TEST(test_gemma2_matches_hf);
    RUN_TEST(test_gpt2_matches_hf);
    RUN_TEST(test_gpt2_scaled_matches_hf);
    RUN_TEST(test_gpt2_untied_matches_hf);
    RUN_TEST(test_every_hf_config_key_handled_or_refused);
    RUN_TEST(test_config_equivalent_spellings);
    RUN_TEST(test_model_hash_matches_reference);
    RUN_TEST(test_model_hash_detects);
    return test_summary();
}
