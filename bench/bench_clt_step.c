// bench_clt_step — throughput of one clt-fit training step on the CPU (libcommon/clt/clt.c): encoder
// GEMMs + JumpReLU, sparse decode, loss, backward, Adam. The torch twin is bench/clt_step_torch.py
// (dense decoder, as CircuitLab/CLT-Forge train); bench/bench_clt_step.sh runs both side by side.
//
//   build/bench/bench_clt_step [-L 8] [-d 512] [-F 8192] [-B 1024] [-n 5] [--l0 32] [--window W]
//
// Data: x, y ~ N(0, 1) per coordinate (norm ≈ √d, what clt-fit's normalization gives). Parameters:
// clt_params_init_random, then every layer's threshold θ is set to the quantile of its
// pre-activations on the first batch that leaves --l0 features active per token, and the bandwidth
// ε so that a fraction --window of the (token, feature) pairs lies inside the straight-through
// window |h − θ| < ε/2 (the threshold gradient needs dL/da there, so that fraction sets how much
// of the decoder the backward touches). Each step is timed phase by phase after one warm-up step
// (learning rate 1e-6, so L0 and the window stay put); one JSON line with the best step and its phases.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clt.h"
#include "err.h"
#include "matmul.h"
#include "progress.h"
#include "threads.h"

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int L = 8, d = 512, F = 8192, B = 1024, iters = 5;
    double l0_target = 32, window = 0.02;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) fatal("bench_clt_step: %s needs a value", a);
        if (!strcmp(a, "-L")) L = (int)cli_parse_int("-L", v, 1, 64);
        else if (!strcmp(a, "-d")) d = (int)cli_parse_int("-d", v, 1, 1 << 16);
        else if (!strcmp(a, "-F")) F = (int)cli_parse_int("-F", v, 1, 1 << 22);
        else if (!strcmp(a, "-B")) B = (int)cli_parse_int("-B", v, 1, 1 << 20);
        else if (!strcmp(a, "-n")) iters = (int)cli_parse_int("-n", v, 1, 1000);
        else if (!strcmp(a, "--l0")) l0_target = cli_parse_double("--l0", v, 0, 1 << 22);
        else if (!strcmp(a, "--window")) window = cli_parse_double("--window", v, 0, 1);
        else fatal("bench_clt_step: unknown option %s", a);
        i++;
    }
    CltParams p, g;
    clt_params_init(&p, L, d, F, NULL);
    clt_params_init(&g, L, d, F, NULL);
    clt_params_init_random(&p, 1, 0.1f);
    float *m = xcalloc(p.n, sizeof(float)), *v = xcalloc(p.n, sizeof(float));
    float **x = xmalloc((size_t)L * sizeof(float *)), **y = xmalloc((size_t)L * sizeof(float *));
    uint64_t s = 7;
    for (int l = 0; l < L; l++) {
        x[l] = xmalloc((size_t)B * d * sizeof(float));
        y[l] = xmalloc((size_t)B * d * sizeof(float));
        for (size_t i = 0; i < (size_t)B * d; i++) {  // Box-Muller pairs
            float u1 = 0.5f + 0.5f * clt_uniform_pm(&s, 1.0f) + 1e-7f, u2 = clt_uniform_pm(&s, 1.0f);
            x[l][i] = sqrtf(-2 * logf(u1)) * cosf(3.14159265f * u2);
            y[l][i] = sqrtf(-2 * logf(u1)) * sinf(3.14159265f * u2);
        }
    }
    CltWork w;
    clt_work_init(&w, L, d, F, B);
    // thresholds for the wanted L0, bandwidth for the wanted window fraction (of layer 0's pairs)
    size_t n_h = (size_t)B * F;
    float *hs = xmalloc(n_h * sizeof(float));
    float eps = 0;
    for (int l = 0; l < L; l++) {
        matmul_cpu(hs, x[l], p.W_enc[l], p.b_enc[l], B, d, F);  // the pre-activations (B, F)
        qsort(hs, n_h, sizeof(float), cmp_float);
        size_t keep = (size_t)(l0_target * B);
        float theta = hs[n_h - 1 - (keep < n_h ? keep : n_h - 1)];
        for (int i = 0; i < F; i++) p.log_theta[l][i] = logf(theta > 1e-6f ? theta : 1e-6f);
        if (l == 0) {  // the smallest ε whose window holds the wanted fraction of the pairs
            for (size_t i = 0; i < n_h; i++) hs[i] = fabsf(hs[i] - theta);
            qsort(hs, n_h, sizeof(float), cmp_float);
            size_t k = (size_t)(window * (double)n_h);
            eps = 2.0f * hs[k < n_h ? k : n_h - 1] + 1e-6f;
        }
    }
    free(hs);
    CltLossParams lp = {1e-3f, 4.0f, 3e-6f, eps};
    double best[5] = {INFINITY, INFINITY, INFINITY, INFINITY, INFINITY};  // forward loss backward adam total
    CltLossTerms lt = {0};
    for (int it = 0; it <= iters; it++) {
        double t0 = now_seconds();
        clt_forward(&p, x, B, &w);
        double t1 = now_seconds();
        lt = clt_loss(&p, y, &lp, &w);
        double t2 = now_seconds();
        clt_backward(&p, x, y, &lp, &w, &g);
        double t3 = now_seconds();
        adam_step(p.data, g.data, m, v, p.n, 1e-6f, 0.9f, 0.999f, 1e-8f, it + 1);
        double t4 = now_seconds();
        if (it == 0) continue;  // warm-up
        double ph[5] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0};
        if (ph[4] < best[4]) memcpy(best, ph, sizeof best);
    }
    printf(
        "{\"impl\": \"cltkit\", \"L\": %d, \"d\": %d, \"F\": %d, \"batch\": %d, \"threads\": %d, \"l0_per_layer\": %.2f, "
        "\"window_fraction\": %.4f, \"bandwidth\": %.4g, \"params\": %zu, \"seconds\": %.4f, \"tokens_per_s\": %.1f, "
        "\"forward_s\": %.4f, \"loss_s\": %.4f, \"backward_s\": %.4f, \"adam_s\": %.4f}\n",
        L, d, F, B, parallel_threads(), lt.l0 / L, lt.window / ((double)L * F), eps, p.n, best[4], B / best[4], best[0],
        best[1], best[2], best[3]);
    for (int l = 0; l < L; l++) { free(x[l]); free(y[l]); }
    free(x); free(y); free(m); free(v);
    clt_work_free(&w);
    clt_params_free(&p);
    clt_params_free(&g);
    return 0;
}
