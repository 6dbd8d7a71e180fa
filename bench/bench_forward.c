// bench_forward — forward-pass throughput, CPU (model_forward) and, when built with CUDA
// (-DUSE_CUDA, the Makefile does it where nvcc exists) and a GPU is present, GPU (forward_cuda).
//
//   build/bench/bench_forward [MODEL_DIR | --random] [-b BATCH] [-t CTX] [-n ITERS] [--no-cpu]
//
// --random builds bench/make_bench_model.py's mid-size Llama in memory (d 768, 8 layers, 12/4
// heads, head_dim 64, ffn 2048, vocab 32000, untied; uniform weights with std 0.02, norm weights
// U(0.5, 1.5)), so the GPU machine needs neither Python nor the checkpoint. Jobs, each timed as the
// best of ITERS runs after a warm-up, printed as one JSON line with tokens/s:
//   logits        full forward + logits to host memory (what fwd-acts eval does)
//   logits_dev    (GPU) full forward + logits kept in device memory: the compute alone
//   acts          mlp_in and mlp_out of every layer to host memory (what fwd-acts caches)
// Before timing, the GPU logits and hooks are checked against the CPU's (max relative error).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "model.h"
#include "progress.h"
#ifdef USE_CUDA
#include "cuda_common.h"
#include "model_forward_cuda.h"
#include "gpu_ctx.h"
#endif

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static double rnd01(void) {  // xorshift64*, uniform [0, 1)
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static float *rand_tensor(Model *m, size_t n, float lo, float hi) {
    if (m->n_owned == m->cap_owned) {
        m->cap_owned = m->cap_owned ? 2 * m->cap_owned : 64;
        m->owned = xrealloc(m->owned, (size_t)m->cap_owned * sizeof *m->owned);
    }
    float *p = m->owned[m->n_owned++] = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * (float)rnd01();
    return p;
}

// bench/make_bench_model.py's configuration, weights drawn here (uniform with std 0.02).
static void random_llama(Model *m) {
    memset(m, 0, sizeof *m);
    ModelConfig *c = &m->cfg;
    c->arch = ARCH_LLAMA;
    snprintf(c->model_type, sizeof c->model_type, "llama");
    c->n_layers = 8, c->d_model = 768, c->n_heads = 12, c->n_kv_heads = 4, c->head_dim = 64, c->d_ff = 2048;
    c->vocab_size = 32000, c->max_pos = 2048, c->norm_eps = 1e-5f, c->rope_theta = 500000.0f;
    c->query_scale = 1.0f / sqrtf((float)c->head_dim);
    c->layer_sliding = xcalloc((size_t)c->n_layers, 1);
    c->bos_id = 1, c->eos_id = 2;
    model_describe(c);
    m->dir = xstrdup("(random llama-mid)");
    const float a = 0.02f * sqrtf(3.0f);  // U(-a, a) has std 0.02
    size_t D = 768, F = 2048, V = 32000, qd = 768, kvd = 256;
    m->embed = rand_tensor(m, V * D, -a, a);
    m->lm_head = rand_tensor(m, V * D, -a, a);
    m->final_norm_w = rand_tensor(m, D, 0.5f, 1.5f);
    m->layers = xcalloc((size_t)c->n_layers, sizeof *m->layers);
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *L = &m->layers[l];
        L->attn_norm_w = rand_tensor(m, D, 0.5f, 1.5f);
        L->mlp_norm_w = rand_tensor(m, D, 0.5f, 1.5f);
        L->wq = rand_tensor(m, qd * D, -a, a);
        L->wk = rand_tensor(m, kvd * D, -a, a);
        L->wv = rand_tensor(m, kvd * D, -a, a);
        L->wo = rand_tensor(m, D * qd, -a, a);
        L->w_gate = rand_tensor(m, F * D, -a, a);
        L->w_up = rand_tensor(m, F * D, -a, a);
        L->w_down = rand_tensor(m, D * F, -a, a);
    }
}

#ifdef USE_CUDA
static double rel_err(const float *a, const float *b, size_t n) {
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > max_diff || d != d) max_diff = d != d ? INFINITY : d;
        if (fabs(b[i]) > max_ref) max_ref = fabs(b[i]);
    }
    return max_diff / (max_ref > 0 ? max_ref : 1);
}
#endif

static void report(const char *backend, const char *job, int B, int T, double best_s) {
    printf(
        "{\"backend\": \"%s\", \"job\": \"%s\", \"batch\": %d, \"ctx\": %d, \"seconds\": %.4f, \"tokens_per_s\": %.1f}\n",
        backend, job, B, T, best_s, (double)B * T / best_s);
    fflush(stdout);
}

typedef struct {
    float **mlp_in, **mlp_out;
    float *logits;
} HostOuts;

int main(int argc, char **argv) {
    const char *dir = NULL;
    int B = 4, T = 256, iters = 3, no_cpu = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-cpu")) no_cpu = 1;
        else if (!strcmp(argv[i], "--random")) dir = NULL;
        else if (argv[i][0] != '-') dir = argv[i];
        else {
            fprintf(stderr, "usage: bench_forward [MODEL_DIR | --random] [-b BATCH] [-t CTX] [-n ITERS] [--no-cpu]\n");
            return 2;
        }
    }
    if (B < 1 || T < 1 || iters < 1) fatal("bad -b/-t/-n");
    Model m;
    Error e = {{0}};
    double t0 = now_seconds();
    if (dir) {
        if (model_load(&m, dir, &e)) fatal_err(&e);
    } else {
        random_llama(&m);
    }
    const ModelConfig *c = &m.cfg;
    fprintf(stderr, "model %s: %d layers, d %d, vocab %d (%.1f s to load); batch %d x ctx %d, best of %d\n", m.dir,
            c->n_layers, c->d_model, c->vocab_size, now_seconds() - t0, B, T, iters);
    // learned absolute positions (no rope) end at max_pos; rotary ones do not
    if (!c->block.rope && T > c->max_pos) fatal("ctx %d > the model's %d learned positions", T, c->max_pos);

    size_t N = (size_t)B * T, D = c->d_model, V = c->vocab_size;
    int L = c->n_layers;
    uint32_t *tokens = xmalloc(N * sizeof(uint32_t));
    for (size_t i = 0; i < N; i++) tokens[i] = (uint32_t)(rnd01() * V);
    HostOuts h = {xcalloc((size_t)L, sizeof(float *)), xcalloc((size_t)L, sizeof(float *)),
                  xmalloc(N * V * sizeof(float))};
    for (int l = 0; l < L; l++)
        h.mlp_in[l] = xmalloc(N * D * sizeof(float)), h.mlp_out[l] = xmalloc(N * D * sizeof(float));
    ForwardOutputs f_logits = {.logits = h.logits}, f_acts = {.mlp_in = h.mlp_in, .mlp_out = h.mlp_out};

    // CPU reference outputs (also the correctness check of the GPU below)
    float *cpu_logits = xmalloc(N * V * sizeof(float)), *cpu_mlp_out = xmalloc(N * D * sizeof(float));
    {
        ForwardState *s = forward_state_new(&m, B, T);
        float **hooks = xcalloc((size_t)L, sizeof(float *));
        hooks[L - 1] = cpu_mlp_out;
        ForwardOutputs f = {.logits = cpu_logits, .mlp_out = hooks};
        if (model_forward(&m, s, tokens, B, T, &f, &e)) fatal_err(&e);
        if (!no_cpu) {
            ForwardOutputs *jobs[2] = {&f_logits, &f_acts};
            const char *names[2] = {"logits", "acts"};
            for (int j = 0; j < 2; j++) {
                double best = INFINITY;
                for (int it = 0; it < iters; it++) {
                    double ts = now_seconds();
                    if (model_forward(&m, s, tokens, B, T, jobs[j], &e)) fatal_err(&e);
                    double dt = now_seconds() - ts;
                    if (dt < best) best = dt;
                }
                report("cpu", names[j], B, T, best);
            }
        }
        free(hooks);
        forward_state_free(s);
    }

#ifdef USE_CUDA
    if (cuda_device_count() > 0) {
        GpuCtx g;
        ModelGpu mg;
        if (gpu_ctx_init(&g, &e) || model_gpu_upload(&mg, &m, &e)) fatal_err(&e);
        ForwardStateGpu *s = forward_state_gpu_new(&mg, B, T, &e);
        if (!s) fatal_err(&e);
        fprintf(stderr, "gpu: %.1f MB of weights uploaded\n", mg.bytes / 1e6);
        float *d_logits = cuda_alloc(N * V * sizeof(float));
        ForwardOutputs f_dev = {.logits = d_logits};
        // correctness first: logits and the last layer's mlp_out against the CPU
        if (forward_cuda(&g, &mg, s, tokens, B, T, &f_logits, &e) ||
            forward_cuda(&g, &mg, s, tokens, B, T, &f_acts, &e))
            fatal_err(&e);
        double err_logits = rel_err(h.logits, cpu_logits, N * V),
               err_acts = rel_err(h.mlp_out[L - 1], cpu_mlp_out, N * D);
        printf("{\"check\": \"gpu vs cpu\", \"logits_rel_err\": %.3g, \"mlp_out_last_rel_err\": %.3g, \"ok\": %s}\n",
               err_logits, err_acts, err_logits <= 1e-4 && err_acts <= 1e-4 ? "true" : "false");
        ForwardOutputs *jobs[3] = {&f_logits, &f_dev, &f_acts};
        const char *names[3] = {"logits", "logits_dev", "acts"};
        for (int j = 0; j < 3; j++) {
            if (forward_cuda(&g, &mg, s, tokens, B, T, jobs[j], &e)) fatal_err(&e);  // warm-up
            double best = INFINITY;
            for (int it = 0; it < iters; it++) {
                double ts = now_seconds();
                if (forward_cuda(&g, &mg, s, tokens, B, T, jobs[j], &e)) fatal_err(&e);  // returns synchronized
                double dt = now_seconds() - ts;
                if (dt < best) best = dt;
            }
            report("gpu", names[j], B, T, best);
        }
        cuda_free(d_logits);
        forward_state_gpu_free(s);
        model_gpu_free(&mg);
        gpu_ctx_free(&g);
    } else {
        fprintf(stderr, "gpu: no CUDA device, CPU only\n");
    }
#else
    fprintf(stderr, "gpu: built without CUDA, CPU only\n");
#endif

    for (int l = 0; l < L; l++) free(h.mlp_in[l]), free(h.mlp_out[l]);
    free(h.mlp_in), free(h.mlp_out), free(h.logits), free(cpu_logits), free(cpu_mlp_out), free(tokens);
    model_free(&m);
    return 0;
}
