// gpu_test_forward.c — the GPU forward pass (libcommon/model/model_forward_cuda.cu) against the CPU forward
// (libcommon/model/model_forward.c) and against the Hugging Face goldens directly, on every model in
// tests/golden/models: every hook (resid_pre/mid, mlp_in/out, attention probs, the three rstd
// outputs), final_hidden, logits and the loss, with test_model.c's metric and tolerance (max
// |a − b| / max |b| ≤ 1e-4 per tensor). Also: stopping after layer 0, a bad token id, device
// output pointers, a smaller batch than the state, and a longer random context (every position
// the model has: 64) where the sliding window and long rows matter. Needs a GPU; SKIPs without one.
#include <stdint.h>

#include "gpu_check.h"
#include "cuda_common.h"
#include "model_forward_cuda.h"
#include "gpu_ctx.h"
#include "model.h"
#include "safetensors.h"

static GpuCtx G;
static double TOL = 1e-4;

static void compare(const char *model, const char *what, const char *name, const float *got, const float *want,
                    size_t n, double tol) {
    double err = test_rel_err(got, want, n);
    CHECK(err <= tol, "%s: %s %s relative error %.3g > %.1g", model, what, name, err, tol);
}

static float *golden_f32(const SafeTensors *g, const char *name, size_t expect) {
    const StTensor *t = safetensors_find(g, name);
    if (!t || t->numel != expect) return NULL;
    float *buf = malloc(expect * sizeof(float));
    Error e;
    if (safetensors_to_f32(g, t, buf, expect, &e)) { free(buf); return NULL; }
    return buf;
}

// Every output of a forward pass, in host memory.
enum { H_RESID_PRE, H_RESID_MID, H_MLP_IN, H_MLP_OUT, H_PROBS, H_ATTN_RSTD, H_MLP_RSTD, N_HOOKS };
static const char *HOOK_NAMES[N_HOOKS] = {"resid_pre",  "resid_mid", "mlp_in",  "mlp_out",
                                          "attn_probs", "attn_rstd", "mlp_rstd"};

typedef struct {
    int L, B, T, D, H, V;
    float **hooks[N_HOOKS];
    float *final_hidden, *final_rstd, *logits;
} Outs;

static size_t hook_size(const Outs *o, int h) {
    size_t N = (size_t)o->B * o->T;
    return h == H_PROBS ? (size_t)o->B * o->H * o->T * o->T : h >= H_ATTN_RSTD ? N : N * o->D;
}

static void outs_new(Outs *o, const ModelConfig *c, int B, int T) {
    *o = (Outs){.L = c->n_layers, .B = B, .T = T, .D = c->d_model, .H = c->n_heads, .V = c->vocab_size};
    size_t N = (size_t)B * T;
    for (int h = 0; h < N_HOOKS; h++) {
        o->hooks[h] = calloc((size_t)o->L, sizeof(float *));
        for (int l = 0; l < o->L; l++) {
            size_t n = hook_size(o, h);
            o->hooks[h][l] = malloc(n * sizeof(float));
            for (size_t i = 0; i < n; i++) o->hooks[h][l][i] = NAN;  // every entry must be written
        }
    }
    o->final_hidden = malloc(N * o->D * sizeof(float));
    o->final_rstd = malloc(N * sizeof(float));
    o->logits = malloc(N * o->V * sizeof(float));
}

static ForwardOutputs outs_all(const Outs *o) {
    return (ForwardOutputs){.resid_pre = o->hooks[H_RESID_PRE], .resid_mid = o->hooks[H_RESID_MID],
                            .mlp_in = o->hooks[H_MLP_IN], .mlp_out = o->hooks[H_MLP_OUT],
                            .attn_probs = o->hooks[H_PROBS], .attn_rstd = o->hooks[H_ATTN_RSTD],
                            .mlp_rstd = o->hooks[H_MLP_RSTD], .final_hidden = o->final_hidden,
                            .final_rstd = o->final_rstd, .logits = o->logits};
}

static void outs_free(Outs *o) {
    for (int h = 0; h < N_HOOKS; h++) {
        for (int l = 0; l < o->L; l++) free(o->hooks[h][l]);
        free(o->hooks[h]);
    }
    free(o->final_hidden), free(o->final_rstd), free(o->logits);
}

// GPU outputs against CPU outputs, all of them.
static void compare_outs(const char *model, const char *what, const Outs *gpu, const Outs *cpu) {
    size_t N = (size_t)cpu->B * cpu->T;
    char name[64];
    for (int h = 0; h < N_HOOKS; h++)
        for (int l = 0; l < cpu->L; l++) {
            snprintf(name, sizeof name, "%s.%d", HOOK_NAMES[h], l);
            compare(model, what, name, gpu->hooks[h][l], cpu->hooks[h][l], hook_size(cpu, h), TOL);
        }
    compare(model, what, "final_hidden", gpu->final_hidden, cpu->final_hidden, N * cpu->D, TOL);
    compare(model, what, "final_rstd", gpu->final_rstd, cpu->final_rstd, N, TOL);
    compare(model, what, "logits", gpu->logits, cpu->logits, N * cpu->V, TOL);
}

static void run_gpu(const ModelGpu *mg, ForwardStateGpu *s, const uint32_t *tokens, int B, int T, ForwardOutputs *fo) {
    Error e = {{0}};
    CHECK(forward_cuda(&G, mg, s, tokens, B, T, fo, &e) == 0, "%s", e.msg);
}

static void check_model(const char *name) {
    char dir[512], gpath[600];
    snprintf(dir, sizeof dir, "tests/golden/models/%s", name);
    snprintf(gpath, sizeof gpath, "%s/golden.safetensors", dir);
    Model m;
    Error e = {{0}};
    CHECK(!model_load(&m, dir, &e), "%s", e.msg);
    if (!m.layers) return;
    SafeTensors g;
    CHECK(!safetensors_open(&g, gpath, &e), "%s", e.msg);
    const StTensor *ids_t = safetensors_find(&g, "input_ids");
    CHECK(ids_t && ids_t->ndim == 2, "input_ids");
    if (!ids_t) return;
    int B = (int)ids_t->shape[0], T = (int)ids_t->shape[1];
    const ModelConfig *c = &m.cfg;
    int L = c->n_layers, D = c->d_model, V = c->vocab_size;
    size_t N = (size_t)B * T;
    float *idf = malloc(N * sizeof(float));
    safetensors_to_f32(&g, ids_t, idf, N, &e);
    uint32_t *tokens = malloc(N * sizeof(uint32_t));
    for (size_t i = 0; i < N; i++) tokens[i] = (uint32_t)idf[i];

    // CPU and GPU, every output
    Outs cpu, gpu;
    outs_new(&cpu, c, B, T);
    outs_new(&gpu, c, B, T);
    ForwardOutputs fc = outs_all(&cpu), fg = outs_all(&gpu);
    ForwardState *st = forward_state_new(&m, B, T);
    CHECK(!model_forward(&m, st, tokens, B, T, &fc, &e), "%s", e.msg);
    ModelGpu mg;
    int up_rc = model_gpu_upload(&mg, &m, &e);
    CHECK(up_rc == 0, "%s", e.msg);
    if (up_rc) return;
    ForwardStateGpu *sg = forward_state_gpu_new(&mg, B, T, &e);
    CHECK(sg != NULL, "%s", e.msg);
    if (!sg) return;
    run_gpu(&mg, sg, tokens, B, T, &fg);
    compare_outs(name, "gpu vs cpu", &gpu, &cpu);

    // GPU against the HF goldens directly
    for (int h = 0; h <= H_PROBS; h++)
        for (int l = 0; l < L; l++) {
            char tn[64];
            snprintf(tn, sizeof tn, "%s.%d", HOOK_NAMES[h], l);
            size_t n = hook_size(&gpu, h);
            float *want = golden_f32(&g, tn, n);
            CHECK(want != NULL, "%s: golden %s missing", name, tn);
            if (want) compare(name, "gpu vs hf", tn, gpu.hooks[h][l], want, n, TOL);
            free(want);
        }
    float *want = golden_f32(&g, "final_hidden", N * D);
    CHECK(want != NULL, "final_hidden golden");
    if (want) compare(name, "gpu vs hf", "final_hidden", gpu.final_hidden, want, N * D, TOL);
    free(want);
    want = golden_f32(&g, "logits", N * V);
    CHECK(want != NULL, "logits golden");
    if (want) compare(name, "gpu vs hf", "logits", gpu.logits, want, N * V, TOL);
    free(want);
    double loss[16];
    model_loss(gpu.logits, tokens, B, T, V, loss);
    float *want_loss = golden_f32(&g, "loss", (size_t)B);
    CHECK(want_loss != NULL, "loss golden");
    for (int b = 0; want_loss && b < B && b < 16; b++) CHECK_NEAR(loss[b], want_loss[b], 1e-5);
    free(want_loss);

    // Stopping after layer 0: that layer's hooks, no logits (the buffer stays untouched).
    float *early_mlp = malloc(N * D * sizeof(float)), *sentinel = malloc(N * V * sizeof(float));
    for (size_t i = 0; i < N * V; i++) sentinel[i] = 12345.0f;
    float *early_hooks[64] = {early_mlp};
    ForwardOutputs early = {.mlp_out = early_hooks, .logits = sentinel, .n_run_layers = 1};
    run_gpu(&mg, sg, tokens, B, T, &early);
    compare(name, "early stop", "mlp_out.0", early_mlp, cpu.hooks[H_MLP_OUT][0], N * D, TOL);
    size_t touched = 0;
    for (size_t i = 0; i < N * V; i++) touched += sentinel[i] != 12345.0f;
    CHECK(touched == 0, "%s: early stop wrote %zu logits", name, touched);
    free(early_mlp), free(sentinel);

    // A token id outside the vocabulary is an Error naming it; wrong shapes too.
    uint32_t saved = tokens[5];
    tokens[5] = (uint32_t)V;
    CHECK(forward_cuda(&G, &mg, sg, tokens, B, T, &fg, &e) == -1 && strstr(e.msg, "vocab"), "bad id accepted: %s",
          e.msg);
    tokens[5] = saved;
    CHECK(forward_cuda(&G, &mg, sg, tokens, B + 1, T, &fg, &e) == -1, "B > state's B accepted");
    CHECK(forward_cuda(&G, &mg, sg, tokens, B, T - 1, &fg, &e) == -1, "T != state's T accepted");

    // Device output pointers: the same numbers as the host ones.
    size_t np = (size_t)B * c->n_heads * T * T;
    float *d_logits = cuda_alloc(N * V * sizeof(float)), *d_probs = cuda_alloc(np * sizeof(float));
    float *d_mid = cuda_alloc(N * D * sizeof(float)), *d_rstd = cuda_alloc(N * sizeof(float));
    float *probs_hooks[64] = {0}, *mid_hooks[64] = {0}, *rstd_hooks[64] = {0};
    probs_hooks[0] = d_probs;
    mid_hooks[L - 1] = d_mid;
    rstd_hooks[L - 1] = d_rstd;
    ForwardOutputs dev = {
        .attn_probs = probs_hooks, .resid_mid = mid_hooks, .mlp_rstd = rstd_hooks, .logits = d_logits};
    run_gpu(&mg, sg, tokens, B, T, &dev);
    float *h_logits = malloc(N * V * sizeof(float)), *h_probs = malloc(np * sizeof(float));
    float *h_mid = malloc(N * D * sizeof(float)), *h_rstd = malloc(N * sizeof(float));
    cuda_download(h_logits, d_logits, N * V * sizeof(float));
    cuda_download(h_probs, d_probs, np * sizeof(float));
    cuda_download(h_mid, d_mid, N * D * sizeof(float));
    cuda_download(h_rstd, d_rstd, N * sizeof(float));
    compare(name, "device outputs", "logits", h_logits, gpu.logits, N * V, 1e-6);
    compare(name, "device outputs", "attn_probs.0", h_probs, gpu.hooks[H_PROBS][0], np, 1e-6);
    compare(name, "device outputs", "resid_mid.last", h_mid, gpu.hooks[H_RESID_MID][L - 1], N * D, 1e-6);
    compare(name, "device outputs", "mlp_rstd.last", h_rstd, gpu.hooks[H_MLP_RSTD][L - 1], N, 1e-6);
    cuda_free(d_logits), cuda_free(d_probs), cuda_free(d_mid), cuda_free(d_rstd);
    free(h_logits), free(h_probs), free(h_mid), free(h_rstd);

    // A smaller batch than the state holds: the last prompt alone gives its rows of the batch.
    float *one_logits = malloc((size_t)T * V * sizeof(float)),
          *one_probs = malloc((size_t)c->n_heads * T * T * sizeof(float));
    float *one_probs_hooks[64] = {0};
    one_probs_hooks[L - 1] = one_probs;
    ForwardOutputs one = {.logits = one_logits, .attn_probs = one_probs_hooks};
    run_gpu(&mg, sg, tokens + (size_t)(B - 1) * T, 1, T, &one);
    compare(name, "batch of 1", "logits", one_logits, cpu.logits + (size_t)(B - 1) * T * V, (size_t)T * V, TOL);
    compare(name, "batch of 1", "attn_probs.last", one_probs,
            cpu.hooks[H_PROBS][L - 1] + (size_t)(B - 1) * c->n_heads * T * T, (size_t)c->n_heads * T * T, TOL);
    free(one_logits), free(one_probs);

    forward_state_gpu_free(sg);
    forward_state_free(st);
    outs_free(&cpu), outs_free(&gpu);

    // A longer random context, B = 2: windows and rows much longer than Gemma 2's window of 8 (at most
    // max_position_embeddings: a longer one is refused).
    int B2 = 2, T2 = c->max_pos;
    size_t N2 = (size_t)B2 * T2;
    uint32_t *tok2 = malloc(N2 * sizeof(uint32_t));
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < N2; i++) tok2[i] = (uint32_t)(rng_next(&x) % (uint64_t)V);
    outs_new(&cpu, c, B2, T2);
    outs_new(&gpu, c, B2, T2);
    fc = outs_all(&cpu), fg = outs_all(&gpu);
    st = forward_state_new(&m, B2, T2);
    sg = forward_state_gpu_new(&mg, B2, T2, &e);
    CHECK(sg != NULL, "%s", e.msg);
    CHECK(!model_forward(&m, st, tok2, B2, T2, &fc, &e), "%s", e.msg);
    if (sg) {
        run_gpu(&mg, sg, tok2, B2, T2, &fg);
        compare_outs(name, "random T=200/64", &gpu, &cpu);
    }
    forward_state_gpu_free(sg);
    forward_state_free(st);
    outs_free(&cpu), outs_free(&gpu);
    free(tok2);

    model_gpu_free(&mg);
    free(tokens), free(idf);
    safetensors_close(&g);
    model_free(&m);
}

static void test_llama3_gpu(void) { check_model("llama3"); }
static void test_llama3_bf16_gpu(void) { check_model("llama3_bf16"); }
static void test_gemma2_gpu(void) { check_model("gemma2"); }
static void test_gpt2_gpu(void) { check_model("gpt2"); }
static void test_gpt2_scaled_gpu(void) { check_model("gpt2_scaled"); }
static void test_gpt2_untied_gpu(void) { check_model("gpt2_untied"); }

int main(void) {
    if (!gpu_test_start("gpu_test_forward", &G)) return 0;
    if (getenv("TOL")) TOL = atof(getenv("TOL"));
    RUN_TEST(test_llama3_gpu);
    RUN_TEST(test_llama3_bf16_gpu);
    RUN_TEST(test_gemma2_gpu);
    RUN_TEST(test_gpt2_gpu);
    RUN_TEST(test_gpt2_scaled_gpu);
    RUN_TEST(test_gpt2_untied_gpu);
    gpu_ctx_free(&G);
    return test_summary();
}
