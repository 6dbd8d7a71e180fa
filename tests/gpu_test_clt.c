// gpu_test_clt.c — the CUDA CLT training step (libcommon/clt/clt_cuda.h) against the CPU reference
// (libcommon/clt/clt.c: clt_forward, clt_loss, clt_backward, adam_step), and the NCCL Comm backend
// (libcommon/clt/comm_nccl.cu) on one rank. Needs a GPU; without one it prints a SKIP line and exits 0.
//
// The CLTs are built so that the structure of the step is exactly the same on both sides: x,
// W_enc and b_enc are small dyadic rationals (multiples of 1/8, 1/64 and 1/512), so every partial
// sum of h = x W_encᵀ + b_enc is a multiple of 1/512 far below 2^24/512 — exact in fp32 in any
// summation order (cuBLAS and the CPU GEMM give the same bits). θ = (n + ½)/512 and ε/2 = 64/512
// keep half a grid step from every h, so the active lists and the bandwidth windows agree
// exactly, not just probably. θ spreads over (0, 0.31] while h has σ ≈ 0.32: roughly a third of
// the (token, feature) pairs are active, a third inside the window, two thirds below θ (the
// pre-activation term), so every branch of the backward runs (each case prints its counts).
//
// Metric, as gpu_test_kernels.c: NMSE = Σ(gpu − cpu)² / Σcpu² per tensor; an indexing or formula
// bug gives NMSE ≳ 1e-4. Limits:
//   ŷ                       1e-10  the CPU's summation order; only FMA contraction and b_dec
//                                  added last differ: ~1e-15
//   each gradient group     1e-9   dL/da is a double dot product on both sides; dW_enc is an fp32
//                                  GEMM over B tokens that cuBLAS reorders: ~1e-13
//   loss terms, err/var     1e-6 relative (double sums of the above); L0, active counts, fired:
//                                  exact
//   Adam on the same grads  bit-identical (the kernel uses round-to-nearest intrinsics, no FMA)
//   3 full steps            params 1e-7, moments 1e-9. After step 1 Adam moves each parameter by
//                           lr·m/√v ≈ ±lr whatever |g|: a gradient within rounding of 0 may flip
//                           sign and move one parameter by 2·lr, NMSE ≈ 4e-9 each here; moments
//                           scale with g and do not care. The inputs of steps 2 and 3 are off
//                           the grid, so the seed is chosen (on the CPU) such that every h stays
//                           ≥ 1e-6 from θ and θ ± ε/2 (GPU − CPU differences in h are ~1e-8).
// Determinism: the same step twice gives bit-identical ŷ, gradients, loss and statistics.
#include <stdint.h>

#include "gpu_check.h"
#include "clt.h"
#include "clt_cuda.h"
#include "comm.h"
#include "cuda_common.h"
#include "gpu_ctx.h"

static GpuCtx G;

static int rng_int(uint64_t *r, int lo, int hi) { return lo + (int)(rng_u32(r) % (uint32_t)(hi - lo + 1)); }



// ---- test CLTs -------------------------------------------------------------------------------

typedef struct {
    int L, d, F, B;
    CltParams p;     // the CPU CLT (its flat data is the state both sides start from)
    float **x, **y;  // [L] (B, d)
    float *mean;     // (L, d)
    CltLossParams lp;
} Case;

static const float GRID = 1.0f / 512;  // h is a multiple of GRID

// sparse: thresholds ~2.5σ above the pre-activations and a narrow window, so fewer than
// CLT_DENSE_DA_FRACTION of the pairs need dL/da (the backward's per-pair path; else its GEMM path).
static void case_init(Case *cs, int L, int d, int F, int B, uint64_t seed, int sparse) {
    memset(cs, 0, sizeof *cs);
    cs->L = L, cs->d = d, cs->F = F, cs->B = B;
    uint64_t r = seed * 0x9E3779B97F4A7C15ULL + 1;
    clt_params_init(&cs->p, L, d, F, NULL);
    float dec = 3.0f / sqrtf((float)L * d);
    for (int l = 0; l < L; l++) {
        for (size_t i = 0; i < (size_t)F * d; i++) cs->p.W_enc[l][i] = rng_int(&r, -8, 8) / 64.0f;
        for (int i = 0; i < F; i++) {
            cs->p.b_enc[l][i] = rng_int(&r, -48, 48) * GRID;
            cs->p.log_theta[l][i] = logf((rng_int(&r, sparse ? 400 : 0, sparse ? 500 : 160) + 0.5f) * GRID);
        }
        for (size_t i = 0; i < (size_t)F * (L - l) * d; i++) cs->p.W_dec[l][i] = rng_unif(&r, dec);
        for (int j = 0; j < d; j++) cs->p.b_dec[l][j] = rng_unif(&r, 0.1f);
    }
    cs->x = malloc((size_t)L * sizeof(float *));
    cs->y = malloc((size_t)L * sizeof(float *));
    cs->mean = malloc((size_t)L * d * sizeof(float));
    for (int l = 0; l < L; l++) {
        cs->x[l] = malloc((size_t)B * d * sizeof(float));
        cs->y[l] = malloc((size_t)B * d * sizeof(float));
        for (size_t i = 0; i < (size_t)B * d; i++) {
            cs->x[l][i] = rng_int(&r, -8, 8) / 8.0f;
            cs->y[l][i] = rng_unif(&r, 1.0f);
        }
    }
    for (size_t i = 0; i < (size_t)L * d; i++) cs->mean[i] = rng_unif(&r, 0.1f);
    cs->lp = (CltLossParams){.lam = 1.0f, .c = 4.0f, .lam_p = 0.3f, .eps = (sparse ? 16 : 128) * GRID};
}

static void case_free(Case *cs) {
    for (int l = 0; l < cs->L; l++) free(cs->x[l]), free(cs->y[l]);
    free(cs->x), free(cs->y), free(cs->mean);
    clt_params_free(&cs->p);
}

static float **alloc_layers(int L, size_t n) {
    float **a = malloc((size_t)L * sizeof(float *));
    for (int l = 0; l < L; l++) a[l] = calloc(n ? n : 1, sizeof(float));
    return a;
}
static void free_layers(float **a, int L) {
    for (int l = 0; l < L; l++) free(a[l]);
    free(a);
}

// The smallest distance of any h to θ or θ ± ε/2 in the last CPU forward (the JumpReLU and window
// edges); and the counts of active, in-window and below-θ pairs.
static double edge_margin(const Case *cs, const CltWork *w, int64_t counts[3]) {
    double m = INFINITY;
    if (counts) counts[0] = counts[1] = counts[2] = 0;
    for (int l = 0; l < cs->L; l++)
        for (size_t at = 0; at < (size_t)cs->B * cs->F; at++) {
            double th = w->theta[l][at % cs->F], gap = (double)w->h[l][at] - th;
            double dm = fmin(fabs(gap), fabs(fabs(gap) - 0.5 * cs->lp.eps));
            if (dm < m) m = dm;
            if (counts) {
                counts[0] += gap > 0;
                counts[1] += fabs(gap) < 0.5 * cs->lp.eps;
                counts[2] += gap < 0;
            }
        }
    return m;
}

// ---- one step --------------------------------------------------------------------------------

typedef struct {
    CltLossTerms lt;
    float **yhat;
    float *grads;
    double *err, *var;
    int64_t *active;
    uint8_t *fired;
} GpuStep;

static void gpu_step_alloc(GpuStep *s, const Case *cs) {
    memset(s, 0, sizeof *s);
    s->yhat = alloc_layers(cs->L, (size_t)cs->B * cs->d);
    s->grads = malloc(cs->p.n * sizeof(float));
    s->err = malloc((size_t)cs->L * sizeof(double));
    s->var = malloc((size_t)cs->L * sizeof(double));
    s->active = malloc((size_t)cs->L * sizeof(int64_t));
    s->fired = malloc((size_t)cs->L * cs->F);
}
static void gpu_step_free(GpuStep *s, const Case *cs) {
    free_layers(s->yhat, cs->L);
    free(s->grads), free(s->err), free(s->var), free(s->active), free(s->fired);
}

// set_state + set_batch + forward + loss + backward + stats, everything downloaded.
static int gpu_step(CltGpu *c, const Comm *comm, const Case *cs, GpuStep *s) {
    Error e = {{0}};
    int rc = clt_gpu_set_state(c, cs->p.data, NULL, NULL, &e) || clt_gpu_set_batch(c, cs->x, cs->y, &e) ||
             clt_gpu_set_target_mean(c, cs->mean, &e) || clt_gpu_forward(c, comm, &e) ||
             clt_gpu_loss(c, comm, &cs->lp, &s->lt, &e) ||
             clt_gpu_batch_stats(c, s->err, s->var, s->active, s->fired, &e) || clt_gpu_backward(c, &cs->lp, &e) ||
             clt_gpu_get_yhat(c, s->yhat, &e) || clt_gpu_get_grads(c, s->grads, &e) || gpu_ctx_sync(&G, &e);
    CHECK(!rc, "GPU step: %s", e.msg);
    return rc;
}

static void test_step_case(int L, int d, int F, int B, uint64_t seed, int sparse, Group *gy, Group *gg, Group *gb) {
    Case cs;
    case_init(&cs, L, d, F, B, seed, sparse);
    char what[96];
    // CPU reference
    CltWork w;
    clt_work_init(&w, L, d, F, B);
    CltParams g;
    clt_params_init(&g, L, d, F, NULL);
    clt_forward(&cs.p, cs.x, B, &w);
    CltLossTerms lt = clt_loss(&cs.p, cs.y, &cs.lp, &w);
    int64_t counts[3];
    double margin = edge_margin(&cs, &w, counts);
    printf("  L %d d %d F %d B %d: %lld active, %lld in the window, %lld below θ of %lld pairs (edge margin %.2g)\n", L,
           d, F, B, (long long)counts[0], (long long)counts[1], (long long)counts[2], (long long)L * B * F, margin);
    CHECK(margin > 0.5 * GRID * 0.99, "the grid construction failed: margin %g", margin);
    double pair_frac = (double)(counts[0] + counts[1]) / ((double)L * B * F);  // ≥ the fraction of pairs
    CHECK(sparse ? pair_frac < CLT_DENSE_DA_FRACTION : pair_frac > CLT_DENSE_DA_FRACTION,
          "the case meant to use the %s path has %.3g of its pairs active or in the window",
          sparse ? "per-pair" : "GEMM", pair_frac);
    clt_backward(&cs.p, cs.x, cs.y, &cs.lp, &w, &g);
    // GPU
    Comm one;
    comm_init_single(&one);
    Error e = {{0}};
    CltGpu *c = NULL;
    GpuStep s, s2;
    gpu_step_alloc(&s, &cs);
    gpu_step_alloc(&s2, &cs);
    int rc = clt_gpu_init(&c, &G, L, d, F, B, &e);
    CHECK(!rc, "clt_gpu_init: %s", e.msg);
    if (!rc && gpu_step(c, &one, &cs, &s) == 0) {
        for (int k = 0; k < L; k++) {
            snprintf(what, sizeof what, "L%d d%d F%d B%d layer %d", L, d, F, B, k);
            group_check(gy, what, s.yhat[k], w.yhat[k], (size_t)B * d);
        }
        CHECK_NEAR(s.lt.mse, lt.mse, 1e-6);
        CHECK_NEAR(s.lt.sparsity, lt.sparsity, 1e-6);
        CHECK_NEAR(s.lt.preact, lt.preact, 1e-6);
        CHECK_NEAR(s.lt.total, lt.total, 1e-6);
        CHECK(s.lt.l0 == lt.l0, "l0 %.17g vs %.17g", s.lt.l0, lt.l0);
        CHECK(s.lt.window == lt.window, "window %.17g vs %.17g", s.lt.window, lt.window);
        // every gradient group separately, so a failure names the group
        CltParams gv;
        clt_params_init(&gv, L, d, F, s.grads);
        for (int l = 0; l < L; l++) {
            snprintf(what, sizeof what, "L%d d%d F%d B%d layer %d W_enc", L, d, F, B, l);
            group_check(&gg[0], what, gv.W_enc[l], g.W_enc[l], (size_t)F * d);
            snprintf(what, sizeof what, "L%d d%d F%d B%d layer %d b_enc", L, d, F, B, l);
            group_check(&gg[1], what, gv.b_enc[l], g.b_enc[l], (size_t)F);
            snprintf(what, sizeof what, "L%d d%d F%d B%d layer %d log_theta", L, d, F, B, l);
            group_check(&gg[2], what, gv.log_theta[l], g.log_theta[l], (size_t)F);
            snprintf(what, sizeof what, "L%d d%d F%d B%d layer %d W_dec", L, d, F, B, l);
            group_check(&gg[3], what, gv.W_dec[l], g.W_dec[l], (size_t)F * (L - l) * d);
            snprintf(what, sizeof what, "L%d d%d F%d B%d layer %d b_dec", L, d, F, B, l);
            group_check(&gg[4], what, gv.b_dec[l], g.b_dec[l], (size_t)d);
        }
        clt_params_free(&gv);
        // batch statistics (clt-fit's metrics)
        uint8_t *fired = calloc((size_t)L * F, 1);
        for (int k = 0; k < L; k++) {
            double ev = 0, vv = 0;
            for (size_t i = 0; i < (size_t)B * d; i++) {
                double a = (double)w.yhat[k][i] - cs.y[k][i], b = (double)cs.y[k][i] - cs.mean[(size_t)k * d + i % d];
                ev += a * a;
                vv += b * b;
            }
            CHECK_NEAR(s.err[k], ev, 1e-6);
            CHECK_NEAR(s.var[k], vv, 1e-6);
            CHECK(s.active[k] == w.act_off[k][B], "layer %d: %lld active vs %d", k, (long long)s.active[k],
                  w.act_off[k][B]);
            for (int32_t q = 0; q < w.act_off[k][B]; q++) fired[(size_t)k * F + w.act_idx[k][q]] = 1;
        }
        CHECK(!memcmp(fired, s.fired, (size_t)L * F), "fired features differ");
        free(fired);
        // determinism: the same step again, bit for bit
        if (gpu_step(c, &one, &cs, &s2) == 0) {
            int same = !memcmp(s.grads, s2.grads, cs.p.n * sizeof(float)) && !memcmp(&s.lt, &s2.lt, sizeof s.lt) &&
                !memcmp(s.err, s2.err, (size_t)L * sizeof(double)) &&
                !memcmp(s.var, s2.var, (size_t)L * sizeof(double));
            for (int k = 0; k < L; k++) same = same && !memcmp(s.yhat[k], s2.yhat[k], (size_t)B * d * sizeof(float));
            CHECK(same, "L%d d%d F%d B%d: a second run of the same step is not bit-identical", L, d, F, B);
        }
        // bf16 encoder GEMMs: W_enc and x lie on a grid bf16 holds exactly, so h, the masks and ŷ
        // are the fp32 ones; dW_enc = dhᵀ x sees dh rounded to bf16 (2^-9 relative per element: NMSE
        // ~1e-6); every other gradient is untouched
        Error eb = {{0}};
        CHECK(clt_gpu_set_bf16(c, 1, &eb) == 0, "clt_gpu_set_bf16: %s", eb.msg);
        if (gpu_step(c, &one, &cs, &s2) == 0) {
            CltParams gb16;
            clt_params_init(&gb16, L, d, F, s2.grads);
            for (int k = 0; k < L; k++) {
                snprintf(what, sizeof what, "bf16 L%d d%d F%d B%d layer %d", L, d, F, B, k);
                group_check(gy, what, s2.yhat[k], w.yhat[k], (size_t)B * d);
                group_check(gb, what, gb16.W_enc[k], g.W_enc[k], (size_t)F * d);
                group_check(&gg[3], what, gb16.W_dec[k], g.W_dec[k], (size_t)F * (L - k) * d);
            }
            clt_params_free(&gb16);
        }
        clt_gpu_set_bf16(c, 0, &eb);
    }
    gpu_step_free(&s, &cs);
    gpu_step_free(&s2, &cs);
    clt_gpu_free(c);
    clt_params_free(&g);
    clt_work_free(&w);
    case_free(&cs);
}

static void test_step(void) {
    Group gy = {"yhat", 1e-10, 0, 0};
    Group gg[5] = {{"grad W_enc", 1e-9, 0, 0}, {"grad b_enc", 1e-9, 0, 0}, {"grad log_theta", 1e-9, 0, 0},
                   {"grad W_dec", 1e-9, 0, 0}, {"grad b_dec", 1e-9, 0, 0}};
    // the main shape; one layer and one token; odd widths (d not a multiple of 32, F not of 256)
    // (all past CLT_DENSE_DA_FRACTION: dL/da by GEMMs); the same shapes with few pairs (per pair)
    Group gb = {"grad W_enc (bf16 GEMMs)", 1e-4, 0, 0};
    test_step_case(3, 48, 200, 96, 1, 0, &gy, gg, &gb);
    test_step_case(1, 37, 45, 1, 2, 0, &gy, gg, &gb);
    test_step_case(2, 33, 300, 7, 3, 0, &gy, gg, &gb);
    test_step_case(4, 70, 64, 130, 4, 0, &gy, gg, &gb);
    test_step_case(3, 48, 200, 96, 5, 1, &gy, gg, &gb);
    test_step_case(4, 70, 64, 130, 6, 1, &gy, gg, &gb);
    group_report(&gy);
    for (int i = 0; i < 5; i++) group_report(&gg[i]);
    group_report(&gb);
}

// ---- Adam ------------------------------------------------------------------------------------

// The Adam kernel against adam_step on the GPU's own gradients: bit-identical.
static void test_adam_exact(void) {
    Case cs;
    int L = 2, d = 40, F = 96, B = 24;
    case_init(&cs, L, d, F, B, 11, 0);
    size_t n = cs.p.n;
    uint64_t r = 99;
    float *m = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float)), *grads = malloc(n * sizeof(float));
    float *p2 = malloc(n * sizeof(float)), *m2 = malloc(n * sizeof(float)), *v2 = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        m[i] = rng_unif(&r, 1e-2f);
        v[i] = fabsf(rng_unif(&r, 1e-4f));
    }
    Error e = {{0}};
    CltGpu *c = NULL;
    Comm one;
    comm_init_single(&one);
    CltLossTerms lt;
    int rc = clt_gpu_init(&c, &G, L, d, F, B, &e) || clt_gpu_set_state(c, cs.p.data, m, v, &e) ||
        clt_gpu_set_batch(c, cs.x, cs.y, &e) || clt_gpu_forward(c, &one, &e) ||
        clt_gpu_loss(c, &one, &cs.lp, &lt, &e) || clt_gpu_backward(c, &cs.lp, &e) || clt_gpu_get_grads(c, grads, &e) ||
        clt_gpu_adam(c, 3e-3f, 0.9f, 0.999f, 1e-8f, 7, &e) || clt_gpu_get_state(c, p2, m2, v2, &e);
    CHECK(!rc, "%s", e.msg);
    if (!rc) {
        adam_step(cs.p.data, grads, m, v, n, 3e-3f, 0.9f, 0.999f, 1e-8f, 7);
        CHECK(!memcmp(p2, cs.p.data, n * sizeof(float)), "params after Adam differ (nmse %.3g)",
              nmse(p2, cs.p.data, n));
        CHECK(!memcmp(m2, m, n * sizeof(float)), "Adam m differs (nmse %.3g)", nmse(m2, m, n));
        CHECK(!memcmp(v2, v, n * sizeof(float)), "Adam v differs (nmse %.3g)", nmse(v2, v, n));
    }
    clt_gpu_free(c);
    free(m), free(v), free(grads), free(p2), free(m2), free(v2);
    case_free(&cs);
}

// The CPU trajectory of 3 steps (forward, loss, backward, Adam): final state, per-step totals, and
// the smallest edge margin of its 3 forwards.
static double cpu_steps(Case *cs, float *m, float *v, double *totals, float lr) {
    CltWork w;
    clt_work_init(&w, cs->L, cs->d, cs->F, cs->B);
    CltParams g;
    clt_params_init(&g, cs->L, cs->d, cs->F, NULL);
    memset(m, 0, cs->p.n * sizeof(float));
    memset(v, 0, cs->p.n * sizeof(float));
    double margin = INFINITY;
    for (int t = 1; t <= 3; t++) {
        clt_forward(&cs->p, cs->x, cs->B, &w);
        totals[t - 1] = clt_loss(&cs->p, cs->y, &cs->lp, &w).total;
        margin = fmin(margin, edge_margin(cs, &w, NULL));
        clt_backward(&cs->p, cs->x, cs->y, &cs->lp, &w, &g);
        adam_step(cs->p.data, g.data, m, v, cs->p.n, lr, 0.9f, 0.999f, 1e-8f, t);
    }
    clt_params_free(&g);
    clt_work_free(&w);
    return margin;
}

static void test_adam_steps(void) {
    int L = 2, d = 40, F = 96, B = 24;
    const float lr = 1e-3f;
    Case cs;
    float *p0 = NULL, *m = NULL, *v = NULL;
    double totals[3], margin = 0;
    uint64_t seed = 20;
    for (; seed < 40; seed++) {  // a seed whose off-grid steps 2 and 3 keep clear of the edges
        case_init(&cs, L, d, F, B, seed, 0);
        p0 = malloc(cs.p.n * sizeof(float)), m = malloc(cs.p.n * sizeof(float)), v = malloc(cs.p.n * sizeof(float));
        memcpy(p0, cs.p.data, cs.p.n * sizeof(float));
        margin = cpu_steps(&cs, m, v, totals, lr);
        if (margin >= 1e-6) break;
        free(p0), free(m), free(v);
        case_free(&cs);
    }
    CHECK(seed < 40, "no seed keeps h 1e-6 away from the JumpReLU edges");
    if (seed == 40) return;
    printf("  seed %llu: edge margin %.2g over the 3 steps\n", (unsigned long long)seed, margin);
    size_t n = cs.p.n;
    float *gp = malloc(n * sizeof(float)), *gm = malloc(n * sizeof(float)), *gv = malloc(n * sizeof(float));
    Error e = {{0}};
    CltGpu *c = NULL;
    Comm one;
    comm_init_single(&one);
    int rc = clt_gpu_init(&c, &G, L, d, F, B, &e) || clt_gpu_set_state(c, p0, NULL, NULL, &e) ||
             clt_gpu_set_batch(c, cs.x, cs.y, &e);
    for (int t = 1; t <= 3 && !rc; t++) {
        CltLossTerms lt;
        rc = clt_gpu_forward(c, &one, &e) || clt_gpu_loss(c, &one, &cs.lp, &lt, &e) ||
            clt_gpu_backward(c, &cs.lp, &e) || clt_gpu_adam(c, lr, 0.9f, 0.999f, 1e-8f, t, &e);
        if (!rc) CHECK_NEAR(lt.total, totals[t - 1], 1e-6);
    }
    rc = rc || clt_gpu_get_state(c, gp, gm, gv, &e);
    CHECK(!rc, "%s", e.msg);
    if (!rc) {
        Group gr[3] = {
            {"3 steps: params", 1e-7, 0, 0}, {"3 steps: adam m", 1e-9, 0, 0}, {"3 steps: adam v", 1e-9, 0, 0}};
        group_check(&gr[0], "", gp, cs.p.data, n);
        group_check(&gr[1], "", gm, m, n);
        group_check(&gr[2], "", gv, v, n);
        for (int i = 0; i < 3; i++) group_report(&gr[i]);
    }
    clt_gpu_free(c);
    free(gp), free(gm), free(gv), free(p0), free(m), free(v);
    case_free(&cs);
}

// ---- the all-reduce of ŷ across ranks --------------------------------------------------------

// A 2-rank Comm whose other rank holds the same shard: its all-reduce doubles the buffer. With
// device_buffers set, f32 buffers arrive as device pointers (ŷ in place), f64 ones on the host.
static int twin_allreduce(const Comm *c, void *buf, size_t n, int is_double, Error *e) {
    (void)e;
    if (is_double) {
        for (size_t i = 0; i < n; i++) ((double *)buf)[i] *= 2;
        return 0;
    }
    float *h = buf;
    if (c->ops->device_buffers) {
        h = malloc(n * sizeof(float));
        cuda_download(h, buf, n * sizeof(float));
    }
    for (size_t i = 0; i < n; i++) h[i] *= 2;
    if (c->ops->device_buffers) {
        cuda_upload(buf, h, n * sizeof(float));
        free(h);
    }
    return 0;
}
static int twin_unused(const Comm *c, Error *e) {
    (void)c;
    return err_set(e, "twin comm: unexpected collective");
}
static const CommOps TWIN_HOST = {twin_allreduce, NULL, twin_unused, NULL, NULL, NULL, 0};
static const CommOps TWIN_DEVICE = {twin_allreduce, NULL, twin_unused, NULL, NULL, NULL, 1};

static void test_two_rank_forward(void) {
    int L = 3, d = 48, F = 200, B = 16;
    Case cs;
    case_init(&cs, L, d, F, B, 5, 0);
    // CPU: the partial (no b_dec), as clt_shard_forward computes it; the 2-rank ŷ = 2·partial + b_dec
    CltWork w;
    clt_work_init(&w, L, d, F, B);
    clt_forward(&cs.p, cs.x, B, &w);
    CltLossTerms one_rank = clt_loss(&cs.p, cs.y, &cs.lp, &w);
    float *zeros = calloc((size_t)d, sizeof(float));
    float **zero_bias = malloc((size_t)L * sizeof(float *)), **saved = cs.p.b_dec;
    for (int l = 0; l < L; l++) zero_bias[l] = zeros;
    cs.p.b_dec = zero_bias;
    clt_forward(&cs.p, cs.x, B, &w);
    cs.p.b_dec = saved;
    double mse = 0;
    for (int k = 0; k < L; k++)
        for (size_t i = 0; i < (size_t)B * d; i++) {
            w.yhat[k][i] = 2 * w.yhat[k][i] + cs.p.b_dec[k][i % d];
            double ev = (double)w.yhat[k][i] - cs.y[k][i];
            mse += ev * ev;
        }
    mse /= B;
    Group gy = {"2-rank yhat", 1e-10, 0, 0};
    for (int dev = 0; dev < 2; dev++) {
        Comm twin = {.rank = 0, .size = 2, .ops = dev ? &TWIN_DEVICE : &TWIN_HOST, .impl = NULL};
        GpuStep s;
        gpu_step_alloc(&s, &cs);
        CltGpu *c = NULL;
        Error e = {{0}};
        int rc = clt_gpu_init(&c, &G, L, d, F, B, &e) || clt_gpu_set_state(c, cs.p.data, NULL, NULL, &e) ||
                 clt_gpu_set_batch(c, cs.x, cs.y, &e) || clt_gpu_forward(c, &twin, &e) ||
                 clt_gpu_loss(c, &twin, &cs.lp, &s.lt, &e) || clt_gpu_get_yhat(c, s.yhat, &e);
        CHECK(!rc, "%s comm: %s", dev ? "device" : "host", e.msg);
        if (!rc) {
            for (int k = 0; k < L; k++)
                group_check(&gy, dev ? "device comm" : "host comm", s.yhat[k], w.yhat[k], (size_t)B * d);
            CHECK_NEAR(s.lt.mse, mse, 1e-6);
            CHECK_NEAR(s.lt.sparsity, 2 * one_rank.sparsity, 1e-6);
            CHECK_NEAR(s.lt.preact, 2 * one_rank.preact, 1e-6);
            CHECK(s.lt.l0 == 2 * one_rank.l0, "l0 %g vs %g", s.lt.l0, 2 * one_rank.l0);
        }
        clt_gpu_free(c);
        gpu_step_free(&s, &cs);
    }
    group_report(&gy);
    free(zeros), free(zero_bias);
    clt_work_free(&w);
    case_free(&cs);
}

// ---- NCCL on one rank ------------------------------------------------------------------------

static void test_comm_nccl(void) {
    Comm boot, nc;
    comm_init_single(&boot);
    Error e = {{0}};
    if (comm_init_nccl(&nc, &boot, 0, &e)) {
        if (strstr(e.msg, "no NCCL backend")) {
            printf("  no NCCL in this build: %s\n", e.msg);
            CHECK(nc.size == 1 && nc.ops == NULL, "the stub left a Comm behind");
        } else {
            CHECK(0, "comm_init_nccl: %s", e.msg);
        }
        return;
    }
    CHECK(nc.rank == 0 && nc.size == 1 && nc.ops && nc.ops->device_buffers, "rank %d size %d", nc.rank, nc.size);
    // the backend's own ops (the comm_* wrappers skip them with one rank): a sum over one rank is
    // the identity, for host f32 and f64 (staged) and device f32 (in place)
    float hf[5] = {1, -2, 3.5f, 0, 1e-3f}, hf0[5];
    double hd[3] = {1e300, -0.5, 7}, hd0[3];
    memcpy(hf0, hf, sizeof hf), memcpy(hd0, hd, sizeof hd);
    CHECK(nc.ops->allreduce_sum(&nc, hf, 5, 0, &e) == 0 && !memcmp(hf, hf0, sizeof hf), "host f32: %s", e.msg);
    CHECK(nc.ops->allreduce_sum(&nc, hd, 3, 1, &e) == 0 && !memcmp(hd, hd0, sizeof hd), "host f64: %s", e.msg);
    size_t n = 100003;
    float *x = malloc(n * sizeof(float)), *back = malloc(n * sizeof(float));
    uint64_t r = 3;
    for (size_t i = 0; i < n; i++) x[i] = rng_unif(&r, 5.0f);
    float *dx = cuda_alloc(n * sizeof(float));
    cuda_upload(dx, x, n * sizeof(float));
    CHECK(nc.ops->allreduce_sum(&nc, dx, n, 0, &e) == 0, "device f32: %s", e.msg);
    cuda_download(back, dx, n * sizeof(float));
    CHECK(!memcmp(back, x, n * sizeof(float)), "device f32 all-reduce over one rank changed the data");
    // the control plane goes to the bootstrap
    float g[5] = {0};
    CHECK(nc.ops->bcast(&nc, hf, sizeof hf, 0, &e) == 0 && nc.ops->barrier(&nc, &e) == 0, "bcast/barrier: %s", e.msg);
    CHECK(nc.ops->gatherv(&nc, hf, 5, g, 0, &e) == 0 && !memcmp(g, hf, sizeof g), "gatherv: %s", e.msg);
    memset(g, 0, sizeof g);
    CHECK(nc.ops->scatterv(&nc, hf, g, 5, 0, &e) == 0 && !memcmp(g, hf, sizeof g), "scatterv: %s", e.msg);
    cuda_free(dx);
    free(x), free(back);
    comm_free(&nc);
    comm_free(&boot);
}

int main(void) {
    if (!gpu_test_start("gpu_test_clt", &G)) return 0;
    RUN_TEST(test_step);
    RUN_TEST(test_adam_exact);
    RUN_TEST(test_adam_steps);
    RUN_TEST(test_two_rank_forward);
    RUN_TEST(test_comm_nccl);
    gpu_ctx_free(&G);
    return test_summary();
}
