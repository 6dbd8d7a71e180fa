// fwd-acts end to end against the Hugging Face goldens: the golden prompts go into a token shard,
// bin/fwd-acts writes an activation shard, and every stored vector must equal transformers'
// hook values; --eval must reproduce HF's loss. (Runs the built binary from the repo root.)
#include <unistd.h>

#include "actshard.h"
#include "check.h"
#include "safetensors.h"
#include "tokshard.h"

static char tmpdir[256];

static float *golden(const SafeTensors *g, const char *name, size_t *n) {
    const StTensor *t = safetensors_find(g, name);
    if (!t) return NULL;
    float *buf = malloc(t->numel * sizeof(float));
    Error e;
    safetensors_to_f32(g, t, buf, t->numel, &e);
    if (n) *n = t->numel;
    return buf;
}

// Writes the golden prompts as documents of a token shard; returns B and T.
static int write_prompts(const SafeTensors *g, const char *path, int *B, int *T) {
    const StTensor *t = safetensors_find(g, "input_ids");
    if (!t) return -1;
    *B = (int)t->shape[0];
    *T = (int)t->shape[1];
    float *ids = golden(g, "input_ids", NULL);
    Error e;
    TokShardWriterOptions o = {.vocab_size = 512};
    TokShardWriter *w = tokshard_writer_open(path, &o, &e);
    for (int b = 0; w && b < *B; b++) {
        uint32_t doc[4096];
        for (int i = 0; i < *T; i++) doc[i] = (uint32_t)ids[(size_t)b * *T + i];
        tokshard_write_doc(w, (uint64_t)b, doc, (size_t)*T, &e);
    }
    free(ids);
    return w ? tokshard_writer_close(w, &e) : -1;
}

static void check_model(const char *name, const char *in_hook, const char *dtype, double tol) {
    char dir[256], gpath[300], tok_path[300], acts_path[300], cmd[2048];
    snprintf(dir, sizeof dir, "tests/golden/models/%s", name);
    snprintf(gpath, sizeof gpath, "%s/golden.safetensors", dir);
    snprintf(tok_path, sizeof tok_path, "%s/%s.tok", tmpdir, name);
    snprintf(acts_path, sizeof acts_path, "%s/%s.%s.%s.acts", tmpdir, name, in_hook, dtype);
    SafeTensors g;
    Error e;
    CHECK(!safetensors_open(&g, gpath, &e), "%s", e.msg);
    int B = 0, T = 0;
    CHECK(!write_prompts(&g, tok_path, &B, &T), "writing %s", tok_path);
    // the prompts already start with BOS: no BOS prepended, and BOS rows kept, so every golden row is compared
    snprintf(cmd, sizeof cmd,
             "%s/fwd-acts -m %s -o %s --ctx %d --batch 2 --no-bos --keep-bos --in %s --dtype %s --chunk-tokens 10 %s "
             "2>/dev/null",
             bin_dir(), dir, acts_path, T, in_hook, dtype, tok_path);
    CHECK(system(cmd) == 0, "failed: %s", cmd);
    ActShard s;
    CHECK(!actshard_open(&s, acts_path, &e), "%s", e.msg);
    if (!s.index) { safetensors_close(&g); return; }
    CHECK(s.n_tokens == (uint64_t)B * T, "%llu tokens, want %d", (unsigned long long)s.n_tokens, B * T);
    int D = s.d_model;
    size_t n_rows = (size_t)B * T;
    float *got_in = calloc((size_t)s.n_layers * n_rows * D, sizeof(float)),
          *got_out = calloc((size_t)s.n_layers * n_rows * D, sizeof(float));
    uint32_t *got_pos = calloc(n_rows, sizeof(uint32_t));
    uint64_t *got_doc = calloc(n_rows, sizeof(uint64_t));
    ActChunk c = {0};
    for (uint64_t k = 0; k < s.n_chunks; k++) {
        CHECK(!actshard_read_chunk(&s, k, &c, &e), "%s", e.msg);
        for (uint32_t r = 0; r < c.n; r++) {
            size_t row = (size_t)(c.first_token + r);
            got_pos[row] = c.positions[r];
            got_doc[row] = c.doc_ids[r];
            for (int li = 0; li < s.n_layers; li++) {
                memcpy(got_in + ((size_t)li * n_rows + row) * D, c.in + ((size_t)li * c.n + r) * D,
                       (size_t)D * sizeof(float));
                memcpy(got_out + ((size_t)li * n_rows + row) * D, c.out + ((size_t)li * c.n + r) * D,
                       (size_t)D * sizeof(float));
            }
        }
    }
    actchunk_free(&c);
    for (size_t row = 0; row < n_rows; row++) {
        CHECK(got_doc[row] == row / (size_t)T && got_pos[row] == row % (size_t)T, "row %zu: doc %llu pos %u", row,
              (unsigned long long)got_doc[row], got_pos[row]);
    }
    for (int li = 0; li < s.n_layers; li++) {
        char hn[64];
        snprintf(hn, sizeof hn, "%s.%d", in_hook, s.layers[li]);
        float *want = golden(&g, hn, NULL);
        CHECK(want && test_rel_err(got_in + (size_t)li * n_rows * D, want, n_rows * D) <= tol, "%s %s %s: error %.3g",
              name, dtype, hn, want ? test_rel_err(got_in + (size_t)li * n_rows * D, want, n_rows * D) : -1.0);
        free(want);
        snprintf(hn, sizeof hn, "mlp_out.%d", s.layers[li]);
        want = golden(&g, hn, NULL);
        CHECK(want && test_rel_err(got_out + (size_t)li * n_rows * D, want, n_rows * D) <= tol, "%s %s %s: error %.3g",
              name, dtype, hn, want ? test_rel_err(got_out + (size_t)li * n_rows * D, want, n_rows * D) : -1.0);
        free(want);
    }
    free(got_in); free(got_out); free(got_pos); free(got_doc);
    actshard_close(&s);

    // --eval: the mean loss over all prompts equals the mean of HF's per-prompt losses (same T)
    snprintf(cmd, sizeof cmd, "%s/fwd-acts -m %s --eval --ctx %d --no-bos %s 2>/dev/null", bin_dir(), dir, T, tok_path);
    FILE *p = popen(cmd, "r");
    char line[1024] = "";
    if (p) { if (!fgets(line, sizeof line, p)) line[0] = 0; pclose(p); }
    char *lp = strstr(line, "\"loss\": ");
    CHECK(lp != NULL, "no loss in '%s'", line);
    float *want_loss = golden(&g, "loss", NULL);
    double mean = 0;
    for (int b = 0; b < B; b++) mean += want_loss[b] / B;
    if (lp) CHECK_NEAR(atof(lp + 8), mean, 1e-5);
    free(want_loss);
    safetensors_close(&g);
}

static void test_fwd_acts_llama3_mlp_in(void) { check_model("llama3", "mlp_in", "f32", 1e-4); }
static void test_fwd_acts_llama3_resid_mid(void) { check_model("llama3", "resid_mid", "f32", 1e-4); }
static void test_fwd_acts_gemma2(void) { check_model("gemma2", "mlp_in", "f32", 1e-4); }
static void test_fwd_acts_gpt2(void) { check_model("gpt2", "mlp_in", "f32", 1e-4); }
// bf16 storage: 8 mantissa bits, relative rounding error <= 2^-9 per value
static void test_fwd_acts_bf16_storage(void) { check_model("llama3_bf16", "mlp_in", "bf16", 1.0 / 256); }
static void test_fwd_acts_f16_storage(void) { check_model("gemma2", "resid_mid", "f16", 1.0 / 1024); }

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cltkit-test-fwd-%d", (int)getpid());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmpdir);
    if (system(cmd)) return 1;
    RUN_TEST(test_fwd_acts_llama3_mlp_in);
    RUN_TEST(test_fwd_acts_llama3_resid_mid);
    RUN_TEST(test_fwd_acts_gemma2);
    RUN_TEST(test_fwd_acts_gpt2);
    RUN_TEST(test_fwd_acts_bf16_storage);
    RUN_TEST(test_fwd_acts_f16_storage);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) return 1;
    return test_summary();
}
