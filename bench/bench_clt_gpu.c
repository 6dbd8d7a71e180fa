// bench_clt_gpu — throughput of one CLT training step on the GPU (libcommon/clt/clt_cuda.h): batch
// upload + forward + loss + backward + Adam, as clt-fit runs it, and optionally the same step on
// the CPU (clt.c) for the speedup.
//
//   build/bench/bench_clt_gpu [-L 8] [-d 512] [-F 8192] [-B 1024] [--l0 32] [-n ITERS] [--cpu]
//
// A random CLT (clt_params_init_random: W_enc ~ U(±1/√F)) on Gaussian inputs with mean norm √d
// (clt-fit's normalization), so h_i ~ N(0, σ²) with σ² = d/(3F); the thresholds are set to σ·z
// with P(Z > z) = l0/F, which gives about --l0 active features per token and layer (the measured
// L0 is printed). Each timing is the mean of ITERS steps after one warm-up step; one JSON line
// per backend (the GPU twice: fp32 GEMMs, then bf16 encoder GEMMs as clt-fit --bf16). Built with -DUSE_CUDA where nvcc
// exists (Makefile); SKIPs without CUDA or a GPU.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clt.h"
#include "err.h"
#ifdef USE_CUDA
#include "clt_cuda.h"
#include "comm.h"
#include "cuda_common.h"
#include "gpu_ctx.h"
#endif

#ifdef USE_CUDA
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static double rnd01(void) {  // xorshift64*, uniform (0, 1)
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return ((double)((rng_state * 0x2545F4914F6CDD1DULL) >> 11) + 0.5) / 9007199254740992.0;
}
static float gauss(void) { return (float)(sqrt(-2 * log(rnd01())) * cos(6.283185307179586 * rnd01())); }

// z with P(Z > z) = p for a standard normal (bisection on erfc).
static double normal_upper_quantile(double p) {
    double lo = -10, hi = 10;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(mid / sqrt(2.0)) > p) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}
#endif

int main(int argc, char **argv) {
    int L = 8, d = 512, F = 8192, B = 1024, iters = 5, cpu = 0;
    double l0 = 32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--cpu")) { cpu = 1; continue; }
        if (!v) fatal("usage: bench_clt_gpu [-L N] [-d N] [-F N] [-B N] [--l0 X] [-n ITERS] [--cpu]");
        if (!strcmp(a, "-L")) L = atoi(v);
        else if (!strcmp(a, "-d")) d = atoi(v);
        else if (!strcmp(a, "-F")) F = atoi(v);
        else if (!strcmp(a, "-B")) B = atoi(v);
        else if (!strcmp(a, "--l0")) l0 = atof(v);
        else if (!strcmp(a, "-n")) iters = atoi(v);
        else fatal("unknown option %s", a);
        i++;
    }
    if (L < 1 || d < 1 || F < 1 || B < 1 || iters < 1 || !(l0 > 0 && l0 < F)) fatal("bad arguments");
#ifndef USE_CUDA
    (void)cpu;
    printf("SKIP bench_clt_gpu: built without CUDA\n");
    return 0;
#else
    if (cuda_device_count() == 0) {
        printf("SKIP bench_clt_gpu: no CUDA device\n");
        return 0;
    }
    double sigma = sqrt((double)d / (3.0 * F)), theta0 = sigma * normal_upper_quantile(l0 / F);
    CltParams p;
    clt_params_init(&p, L, d, F, NULL);
    clt_params_init_random(&p, 1234, (float)theta0);
    float **x = xmalloc((size_t)L * sizeof(float *)), **y = xmalloc((size_t)L * sizeof(float *));
    for (int l = 0; l < L; l++) {
        x[l] = xmalloc((size_t)B * d * sizeof(float));
        y[l] = xmalloc((size_t)B * d * sizeof(float));
        for (size_t i = 0; i < (size_t)B * d; i++) x[l][i] = gauss(), y[l][i] = gauss();
    }
    CltLossParams lp = {.lam = 1e-3f, .c = 4.0f, .lam_p = 3e-6f, .eps = 2.0f};
    const float lr = 1e-4f;

    Error e = {{0}};
    GpuCtx g;
    CltGpu *c = NULL;
    Comm one;
    comm_init_single(&one);
    if (gpu_ctx_init(&g, &e) || clt_gpu_init(&c, &g, L, d, F, B, &e) || clt_gpu_set_state(c, p.data, NULL, NULL, &e))
        fatal_err(&e);
    CltLossTerms lt = {0};
    double t0 = 0, gpu_s = 0;
    for (int bf16 = 0; bf16 <= 1; bf16++) {  // fp32 GEMMs, then the encoder GEMMs in bf16 (--bf16), same start
        if (clt_gpu_set_state(c, p.data, NULL, NULL, &e) || clt_gpu_set_bf16(c, bf16, &e)) fatal_err(&e);
        for (int it = 0; it <= iters; it++) {  // step 0 is the warm-up
            if (it == 1) t0 = now_s();
            if (clt_gpu_set_batch(c, x, y, &e) || clt_gpu_forward(c, &one, &e) || clt_gpu_loss(c, &one, &lp, &lt, &e) ||
                clt_gpu_backward(c, &lp, &e) || clt_gpu_adam(c, lr, 0.9f, 0.999f, 1e-8f, it + 1, &e) ||
                gpu_ctx_sync(&g, &e))
                fatal_err(&e);
        }
        double s_step = (now_s() - t0) / iters;
        if (!bf16) gpu_s = s_step;
        printf(
            "{\"bench\": \"clt_step\", \"backend\": \"gpu\", \"encoder\": \"%s\", \"L\": %d, \"d\": %d, \"F\": %d, \"B\": %d, "
            "\"l0_per_layer\": %.1f, \"window_per_layer\": %.1f, \"ms_per_step\": %.3f, \"tokens_per_s\": %.0f}\n",
            bf16 ? "bf16" : "fp32", L, d, F, B, lt.l0 / L, lt.window / L, s_step * 1e3, B / s_step);
        fflush(stdout);
    }
    clt_gpu_free(c);
    gpu_ctx_free(&g);

    if (cpu) {  // the same step on the CPU, from the same initial state
        clt_params_init_random(&p, 1234, (float)theta0);
        CltWork w;
        clt_work_init(&w, L, d, F, B);
        CltParams gr;
        clt_params_init(&gr, L, d, F, NULL);
        float *m = xcalloc(p.n, sizeof(float)), *v = xcalloc(p.n, sizeof(float));
        int cpu_iters = iters < 2 ? iters : 2;  // seconds per step at the default shape
        for (int it = 0; it <= cpu_iters; it++) {
            if (it == 1) t0 = now_s();
            clt_forward(&p, x, B, &w);
            lt = clt_loss(&p, y, &lp, &w);
            clt_backward(&p, x, y, &lp, &w, &gr);
            adam_step(p.data, gr.data, m, v, p.n, lr, 0.9f, 0.999f, 1e-8f, it + 1);
        }
        double cpu_s = (now_s() - t0) / cpu_iters;
        printf(
            "{\"bench\": \"clt_step\", \"backend\": \"cpu\", \"L\": %d, \"d\": %d, \"F\": %d, \"B\": %d, \"l0_per_layer\": %.1f, "
            "\"ms_per_step\": %.3f, \"tokens_per_s\": %.0f, \"gpu_speedup\": %.1f}\n",
            L, d, F, B, lt.l0 / L, cpu_s * 1e3, B / cpu_s, cpu_s / gpu_s);
        free(m), free(v);
        clt_params_free(&gr);
        clt_work_free(&w);
    }
    for (int l = 0; l < L; l++) free(x[l]), free(y[l]);
    free(x), free(y);
    clt_params_free(&p);
    return 0;
#endif
}
