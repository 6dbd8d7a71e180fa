// The CLT training math (libcommon/clt/clt.c): gradients against PyTorch autograd goldens
// (tests/ref/make_clt_goldens.py) and against central finite differences in C; Adam against
// torch.optim.Adam.
#include "check.h"
#include "clt.h"
#include "clt_io.h"
#include "clt_eval.h"
#include <unistd.h>
#include "safetensors.h"

static double total_loss(const CltParams *p, float **x, float **y, const CltLossParams *lp, CltWork *w) {
    clt_forward(p, x, w->B, w);
    return clt_loss(p, y, lp, w).total;
}

// Central differences in double-perturbed fp32 on the parameters whose true gradient equals the
// implemented one (all but log θ, whose JumpReLU gradient is a pseudo-gradient by design).
static void test_clt_gradients_match_finite_differences(void) {
    int L = 3, d = 6, F = 10, B = 5;
    CltParams p, g;
    clt_params_init(&p, L, d, F, NULL);
    clt_params_init(&g, L, d, F, NULL);
    clt_params_init_random(&p, 42, 0.05f);
    uint64_t s = 7;
    for (int l = 0; l < L; l++)
        for (int i = 0; i < F; i++) p.b_enc[l][i] = 0.1f * rng_unif(&s, 1.0f);
    float *x[3], *y[3];
    for (int l = 0; l < L; l++) {
        x[l] = malloc((size_t)B * d * sizeof(float));
        y[l] = malloc((size_t)B * d * sizeof(float));
        for (int i = 0; i < B * d; i++) { x[l][i] = 2.0f * rng_unif(&s, 1.0f); y[l][i] = rng_unif(&s, 1.0f); }
    }
    CltLossParams lp = {.lam = 0.3f, .c = 4.0f, .lam_p = 0.05f, .eps = 1e-4f};  // tiny ε: no window terms
    CltWork w;
    clt_work_init(&w, L, d, F, B);
    clt_forward(&p, x, B, &w);
    clt_loss(&p, y, &lp, &w);
    clt_backward(&p, x, y, &lp, &w, &g);
    int checked = 0, bad = 0;
    for (size_t k = 0; k < p.n; k += 3) {
        // skip log θ entries
        int is_theta = 0;
        for (int l = 0; l < L; l++)
            if (p.data + k >= p.log_theta[l] && p.data + k < p.log_theta[l] + F) is_theta = 1;
        if (is_theta) continue;
        float orig = p.data[k];
        float hstep = 1e-3f * fmaxf(1.0f, fabsf(orig));
        p.data[k] = orig + hstep;
        double lplus = total_loss(&p, x, y, &lp, &w);
        p.data[k] = orig - hstep;
        double lminus = total_loss(&p, x, y, &lp, &w);
        p.data[k] = orig;
        double fd = (lplus - lminus) / (2.0 * hstep);
        double an = g.data[k];
        // a perturbation that flips a feature on/off makes the loss kink: tolerate a few
        if (fabs(fd - an) > 2e-3 * fmax(1.0, fabs(fd))) bad++;
        checked++;
    }
    CHECK(checked > 100, "only %d parameters checked", checked);
    CHECK(bad <= checked / 50, "%d of %d gradients differ from finite differences", bad, checked);
    for (int l = 0; l < L; l++) { free(x[l]); free(y[l]); }
    clt_work_free(&w);
    clt_params_free(&p);
    clt_params_free(&g);
}


// ---- PyTorch autograd goldens (tests/golden/clt/case*.safetensors) ---------------------------

static float *gt(const SafeTensors *g, const char *name, size_t expect) {
    const StTensor *t = safetensors_find(g, name);
    if (!t || t->numel != expect) return NULL;
    float *buf = malloc((expect ? expect : 1) * sizeof(float));
    Error e;
    if (safetensors_to_f32(g, t, buf, expect, &e)) { free(buf); return NULL; }
    return buf;
}

// max |a − b| / max(|b|, floor): relative to the tensor's scale
static double rel(const float *a, const float *b, size_t n, double floor) {
    double md = 0, mr = floor;
    for (size_t i = 0; i < n; i++) {
        double dd = fabs((double)a[i] - b[i]);
        if (dd > md || dd != dd) md = dd != dd ? INFINITY : dd;
        if (fabs(b[i]) > mr) mr = fabs(b[i]);
    }
    return md / mr;
}

static void expect_close(const char *cs, const SafeTensors *g, const char *name, const float *got, size_t n,
                         double tol) {
    float *want = gt(g, name, n);
    CHECK(want != NULL, "%s: golden %s missing or of the wrong size", cs, name);
    if (!want) return;
    double r = rel(got, want, n, 1e-6);
    CHECK(r <= tol, "%s: %s relative error %.3g > %.1g", cs, name, r, tol);
    free(want);
}

// Loads the parameters of a case into p (prefix "" for the initial ones).
static int load_params(const SafeTensors *g, const char *prefix, CltParams *p) {
    char name[96];
    for (int l = 0; l < p->L; l++) {
        struct { const char *n; float *dst; size_t count; } parts[5] = {
            {"W_enc", p->W_enc[l], (size_t)p->F * p->d}, {"b_enc", p->b_enc[l], (size_t)p->F},
            {"log_theta", p->log_theta[l], (size_t)p->F}, {"W_dec", p->W_dec[l], (size_t)p->F * (p->L - l) * p->d},
            {"b_dec", p->b_dec[l], (size_t)p->d}};
        for (int k = 0; k < 5; k++) {
            snprintf(name, sizeof name, "%s%s.%d", prefix, parts[k].n, l);
            float *v = gt(g, name, parts[k].count);
            if (!v) return -1;
            memcpy(parts[k].dst, v, parts[k].count * sizeof(float));
            free(v);
        }
    }
    return 0;
}

// The inputs x.{l} and targets y.{l} (n floats each) of a case.
static void load_inputs(const SafeTensors *g, const char *cs, int L, size_t n, float ***x, float ***y) {
    char name[64];
    *x = calloc((size_t)L, sizeof(float *));
    *y = calloc((size_t)L, sizeof(float *));
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "x.%d", l);
        (*x)[l] = gt(g, name, n);
        snprintf(name, sizeof name, "y.%d", l);
        (*y)[l] = gt(g, name, n);
        CHECK((*x)[l] && (*y)[l], "%s: inputs", cs);
    }
}

// A case's initial parameters into p (allocated here, as grad, for the gradients), its inputs
// and targets into x, y.
static void load_case(const SafeTensors *g, const char *cs, int L, int d, int F, int B, CltParams *p, CltParams *grad,
                      float ***x, float ***y) {
    clt_params_init(p, L, d, F, NULL);
    clt_params_init(grad, L, d, F, NULL);
    CHECK(!load_params(g, "", p), "%s: parameters", cs);
    load_inputs(g, cs, L, (size_t)B * d, x, y);
}

static void compare_grads(const char *cs, const SafeTensors *g, const char *prefix, const CltParams *grad, double tol) {
    char name[96];
    for (int l = 0; l < grad->L; l++) {
        struct { const char *n; const float *src; size_t count;
        } parts[5] = {{"W_enc", grad->W_enc[l], (size_t)grad->F * grad->d},
                      {"b_enc", grad->b_enc[l], (size_t)grad->F},
                      {"log_theta", grad->log_theta[l], (size_t)grad->F},
                      {"W_dec", grad->W_dec[l], (size_t)grad->F * (grad->L - l) * grad->d},
                      {"b_dec", grad->b_dec[l], (size_t)grad->d}};
        for (int k = 0; k < 5; k++) {
            snprintf(name, sizeof name, "%s.%s.%d", prefix, parts[k].n, l);
            expect_close(cs, g, name, parts[k].src, parts[k].count, tol);
        }
    }
}

// per_pair: 1 if the case must take the backward's per-pair path in every layer (fewer than
// CLT_DENSE_DA_FRACTION of the pairs active or in the window), 0 if its dense dL/da GEMM path.
static void check_case(const char *cs, int per_pair) {
    char path[256];
    snprintf(path, sizeof path, "tests/golden/clt/%s.safetensors", cs);
    SafeTensors g;
    Error e;
    CHECK(!safetensors_open(&g, path, &e), "%s", e.msg);
    if (!g.tensors) return;
    float *ci = gt(&g, "config.int", 4), *cf = gt(&g, "config.f64", 4);
    CHECK(ci && cf, "%s: config tensors", cs);
    if (!ci || !cf) { safetensors_close(&g); return; }
    int L = (int)ci[0], d = (int)ci[1], F = (int)ci[2], B = (int)ci[3];
    CltLossParams lp = {cf[0], cf[1], cf[2], cf[3]};
    CltParams p, grad;
    float **x, **y;
    load_case(&g, cs, L, d, F, B, &p, &grad, &x, &y);
    char name[64];
    CltWork w;
    clt_work_init(&w, L, d, F, B);
    clt_forward(&p, x, B, &w);
    CltLossTerms lt = clt_loss(&p, y, &lp, &w);
    for (int l = 0; l < L; l++) {
        int pairs = 0;
        for (int i = 0; i < B * F; i++) {
            float th = w.theta[l][i % F];
            pairs += w.h[l][i] > th || fabsf(w.h[l][i] - th) < 0.5f * lp.eps;
        }
        int sparse = pairs <= CLT_DENSE_DA_FRACTION * B * F;
        CHECK(sparse == per_pair, "%s layer %d: %d of %d pairs need dL/da: not the %s path", cs, l, pairs, B * F,
              per_pair ? "per-pair" : "dense");
    }
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "h.%d", l);
        expect_close(cs, &g, name, w.h[l], (size_t)B * F, 1e-5);
        snprintf(name, sizeof name, "a.%d", l);
        expect_close(cs, &g, name, w.a[l], (size_t)B * F, 1e-5);
        snprintf(name, sizeof name, "yhat.%d", l);
        expect_close(cs, &g, name, w.yhat[l], (size_t)B * d, 1e-5);
        snprintf(name, sizeof name, "norm.%d", l);
        expect_close(cs, &g, name, w.norm[l], (size_t)F, 1e-5);
    }
    float terms[4] = {(float)lt.total, (float)lt.mse, (float)lt.sparsity, (float)lt.preact};
    expect_close(cs, &g, "loss", &terms[0], 1, 1e-5);
    expect_close(cs, &g, "loss_mse", &terms[1], 1, 1e-5);
    expect_close(cs, &g, "loss_sparsity", &terms[2], 1, 1e-5);
    expect_close(cs, &g, "loss_preact", &terms[3], 1, 1e-5);
    // gradients: full loss, without the pre-activation term, without the sparsity term
    clt_backward(&p, x, y, &lp, &w, &grad);
    compare_grads(cs, &g, "grad", &grad, 1e-4);
    CltLossParams nopre = lp, nosparse = lp;
    nopre.lam_p = 0;
    nosparse.lam = 0;
    clt_backward(&p, x, y, &nopre, &w, &grad);
    compare_grads(cs, &g, "grad_nopre", &grad, 1e-4);
    clt_backward(&p, x, y, &nosparse, &w, &grad);
    compare_grads(cs, &g, "grad_nosparse", &grad, 1e-4);
    // Adam steps (cases that have them): torch.optim.Adam from zero moments
    float *ac = gt(&g, "adam.config", 5);
    if (ac) {
        float *m = calloc(p.n, sizeof(float)), *v = calloc(p.n, sizeof(float));
        int steps = (int)ac[4];
        for (int t = 1; t <= steps; t++) {
            clt_forward(&p, x, B, &w);
            clt_loss(&p, y, &lp, &w);
            clt_backward(&p, x, y, &lp, &w, &grad);
            adam_step(p.data, grad.data, m, v, p.n, ac[0], ac[1], ac[2], ac[3], t);
            CltParams want;
            clt_params_init(&want, L, d, F, NULL);
            CHECK(!load_params(&g, t == 1 ? "adam." : "adam2.", &want), "%s: Adam golden for step %d", cs, t);
            double r = rel(p.data, want.data, p.n, 1e-6);
            CHECK(r < 1e-4, "%s: parameters after Adam step %d differ by %.3g", cs, t, r);
            clt_params_free(&want);
        }
        free(m); free(v); free(ac);
    }
    for (int l = 0; l < L; l++) { free(x[l]); free(y[l]); }
    free(x); free(y); free(ci); free(cf);
    clt_work_free(&w);
    clt_params_free(&p);
    clt_params_free(&grad);
    safetensors_close(&g);
}

static void test_clt_case0_matches_torch(void) { check_case("case0", 0); }
static void test_clt_case1_matches_torch(void) { check_case("case1", 0); }
static void test_clt_case2_matches_torch(void) { check_case("case2", 0); }
static void test_clt_case3_per_pair_matches_torch(void) { check_case("case3", 1); }

// TopK / BatchTopK against torch.topk + autograd (tests/ref/make_clt_topk_goldens.py): the
// selected set, ŷ, the loss (reconstruction only), every gradient (log θ: none), and the batch's
// threshold estimate that the BatchTopK → JumpReLU conversion averages.
static void check_topk_case(const char *cs) {
    char path[256], name[64];
    snprintf(path, sizeof path, "tests/golden/clt/%s.safetensors", cs);
    SafeTensors g;
    Error e;
    CHECK(!safetensors_open(&g, path, &e), "%s", e.msg);
    if (!g.tensors) return;
    float *ci = gt(&g, "config.int", 6);
    CHECK(ci != NULL, "%s: config", cs);
    if (!ci) { safetensors_close(&g); return; }
    int L = (int)ci[0], d = (int)ci[1], F = (int)ci[2], B = (int)ci[3], k = (int)ci[5];
    CltActivation act = (int)ci[4] == 1 ? CLT_TOPK : CLT_BATCHTOPK;
    CltParams p, grad;
    float **x, **y;
    load_case(&g, cs, L, d, F, B, &p, &grad, &x, &y);
    CltWork w;
    clt_work_init(&w, L, d, F, B);
    clt_work_set_activation(&w, act, k);
    clt_forward(&p, x, B, &w);
    CltLossParams lp = {.lam = 0.5f, .c = 4.0f, .lam_p = 0.01f, .eps = 1.0f};  // ignored in TopK modes
    CltLossTerms lt = clt_loss(&p, y, &lp, &w);
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "yhat.%d", l);
        expect_close(cs, &g, name, w.yhat[l], (size_t)B * d, 1e-5);
        float l0 = (float)w.act_off[l][B] / (float)B, cut = (float)w.cut_stat[l];
        snprintf(name, sizeof name, "l0.%d", l);
        expect_close(cs, &g, name, &l0, 1, 1e-6);
        snprintf(name, sizeof name, "cut_stat.%d", l);
        expect_close(cs, &g, name, &cut, 1, 1e-5);
    }
    float loss = (float)lt.total;
    expect_close(cs, &g, "loss", &loss, 1, 1e-5);
    CHECK(lt.sparsity == 0 && lt.preact == 0 && lt.window == 0, "%s: TopK loss has only the reconstruction term", cs);
    clt_backward(&p, x, y, &lp, &w, &grad);
    compare_grads(cs, &g, "grad", &grad, 1e-4);
    for (int l = 0; l < L; l++) { free(x[l]); free(y[l]); }
    free(x); free(y); free(ci);
    clt_work_free(&w);
    clt_params_free(&p);
    clt_params_free(&grad);
    safetensors_close(&g);
}

static void test_clt_topk_matches_torch(void) { check_topk_case("topk0"); }
static void test_clt_batchtopk_matches_torch(void) {
    check_topk_case("topk1");
    check_topk_case("topk2");
}

// The BatchTopK cutoff does not depend on how the batch is split (TOPK_SLICES, ranks): the K
// largest of a union of per-part K largest are the K largest of the whole. Checked on a batch with
// many ties and fewer positive values than K in some slices, against a plain sort.
static void test_clt_batchtopk_cutoff_is_exact(void) {
    int L = 1, d = 4, F = 37, B = 50, k = 3;
    CltWork w;
    clt_work_init(&w, L, d, F, B);
    clt_work_set_activation(&w, CLT_BATCHTOPK, k);
    uint64_t s = 99;
    for (int i = 0; i < B * F; i++) {
        float r = rng_unif(&s, 1.0f);
        w.h[0][i] = i < B * F / 2 ? -fabsf(r) : roundf(r * 8.0f) / 8.0f;  // first half negative, ties
    }
    size_t K = clt_topk_candidates_per_group(&w);
    CHECK(clt_topk_groups(&w) == 1 && K == (size_t)B * k, "BatchTopK: one group of B*k");
    float *cand = malloc(K * sizeof(float)), cut = -1;
    clt_topk_candidates(&w, 0, cand);
    clt_topk_cutoffs(&w, cand, 1, &cut);
    float *sorted = malloc((size_t)B * F * sizeof(float));
    memcpy(sorted, w.h[0], (size_t)B * F * sizeof(float));
    for (int i = 1; i < B * F; i++)  // insertion sort, descending
        for (int j = i; j > 0 && sorted[j] > sorted[j - 1]; j--) {
            float t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    float want = sorted[K - 1] > 0 ? sorted[K - 1] : 0;
    CHECK(cut == want, "BatchTopK cutoff %g, sorted K-th largest %g", cut, want);
    // two "ranks": candidate blocks of each half, cut over both, is the same value
    float *both = malloc(2 * K * sizeof(float)), cut2 = -1;
    w.n = B / 2;  // rank 0's view: tokens [0, B/2) (negative only: every candidate pads with 0)
    K = clt_topk_candidates_per_group(&w);
    clt_topk_candidates(&w, 0, both);
    float *save = w.h[0];
    w.h[0] = save + (size_t)(B / 2) * F;  // rank 1: tokens [B/2, B)
    clt_topk_candidates(&w, 0, both + K);
    w.h[0] = save;
    clt_topk_cutoffs(&w, both, 2, &cut2);
    float want2 = sorted[K - 1] > 0 ? sorted[K - 1] : 0;
    CHECK(cut2 == want2, "two-part BatchTopK cutoff %g, want %g", cut2, want2);
    free(cand); free(sorted); free(both);
    clt_work_free(&w);
}

// Saving folds the normalization into the weights: the loaded CLT applied to raw activations
// reproduces the trained one on normalized activations, rescaled (ŷ_raw = ŷ_norm / s_out).
static void test_clt_save_load_folds_normalization(void) {
    int L = 3, d = 5, F = 7, B = 4;
    CltParams p;
    clt_params_init(&p, L, d, F, NULL);
    clt_params_init_random(&p, 11, 0.05f);
    uint64_t s = 3;
    for (int l = 0; l < L; l++) {
        for (int j = 0; j < d; j++) p.b_dec[l][j] = 0.1f * rng_unif(&s, 1.0f);
        for (int i = 0; i < F; i++) p.b_enc[l][i] = 0.1f * rng_unif(&s, 1.0f);
    }
    float s_in[3] = {0.5f, 2.0f, 1.25f}, s_out[3] = {4.0f, 0.25f, 1.5f};
    float *xr[3], *xn[3];
    for (int l = 0; l < L; l++) {
        xr[l] = malloc((size_t)B * d * sizeof(float));
        xn[l] = malloc((size_t)B * d * sizeof(float));
        for (int i = 0; i < B * d; i++) { xr[l][i] = 3.0f * rng_unif(&s, 1.0f); xn[l][i] = xr[l][i] * s_in[l]; }
    }
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/cltkit-test-clt-%d", (int)getpid());
    CltSaveInfo info = {.model_name = "test \"model\"", .input_hook = clt_input_hook("mlp_in"),
                        .output_hook = "hook_mlp_out", .model_hash = 0x0123456789abcdefull};
    Error e;
    CHECK(!clt_save(dir, &p, s_in, s_out, &info, &e), "%s", e.msg);
    // config.yaml: circuit-tracer's hook names, a scan, the model by name and hash (formats/clt.md)
    char path[256], yaml[2048] = "";
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(yaml, 1, sizeof yaml - 1, f) : 0;
    yaml[got] = 0;
    if (f) fclose(f);
    CHECK(strstr(yaml, "feature_input_hook: \"mlp.hook_in\"\n") &&
              strstr(yaml, "feature_output_hook: \"hook_mlp_out\"\n") &&
              strstr(yaml, "model_name: \"test \\\"model\\\"\"\n") &&
              strstr(yaml, "model_hash: \"0123456789abcdef\"\n") &&
              strstr(yaml, "scan: \"test \\\"model\\\"-clt-") && strstr(yaml, "-01234567\"\n"),
          "config.yaml:\n%s", yaml);
    char hook[64];
    CHECK(!clt_config_value(dir, "feature_input_hook", hook, sizeof hook) && !strcmp(clt_shard_hook(hook), "mlp_in"),
          "hook %s", hook);
    CltParams q;
    CHECK(!clt_load(dir, &q, &e), "%s", e.msg);
    if (q.data) {
        CHECK(q.L == L && q.d == d && q.F == F, "loaded shape %d %d %d", q.L, q.d, q.F);
        CltWork w1, w2;
        clt_work_init(&w1, L, d, F, B);
        clt_work_init(&w2, L, d, F, B);
        clt_forward(&p, xn, B, &w1);
        clt_forward(&q, xr, B, &w2);
        double worst = 0;
        for (int k = 0; k < L; k++)
            for (int i = 0; i < B * d; i++) worst = fmax(worst, fabs(w1.yhat[k][i] / s_out[k] - w2.yhat[k][i]));
        CHECK(worst < 1e-5, "folded CLT differs by %.3g", worst);
        CHECK(w1.act_off[0][B] == w2.act_off[0][B], "active counts differ");
        clt_work_free(&w1);
        clt_work_free(&w2);
        clt_params_free(&q);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    for (int l = 0; l < L; l++) { free(xr[l]); free(xn[l]); }
    clt_params_free(&p);
    CHECK(clt_load("/nonexistent-dir", &q, &e) == -1 && strstr(e.msg, "/nonexistent-dir"), "%s", e.msg);
}

// Names: the shard hooks and circuit-tracer's (the old, wrong mlp_in name still reads), a model id
// that is a path becomes its last component.
static void test_clt_names(void) {
    CHECK(!strcmp(clt_input_hook("mlp_in"), "mlp.hook_in") && !strcmp(clt_input_hook("resid_mid"), "hook_resid_mid"),
          "input hooks");
    CHECK(!strcmp(clt_shard_hook("mlp.hook_in"), "mlp_in") &&
              !strcmp(clt_shard_hook("ln2.hook_normalized"), "mlp_in") &&
              !strcmp(clt_shard_hook("hook_resid_mid"), "resid_mid") && !clt_shard_hook("hook_resid_pre"),
          "shard hooks");
    const char *ids[][2] = {{"/srv/runs/demo-out/model", "model"}, {"models/stories260K/", "stories260K"},
                            {"smollm2", "smollm2"}, {"", ""}, {"/", ""}};
    for (int i = 0; i < 5; i++) {
        char name[64];
        clt_model_name(ids[i][0], name, sizeof name);
        CHECK(!strcmp(name, ids[i][1]), "model id '%s' -> '%s', expected '%s'", ids[i][0], name, ids[i][1]);
    }
}

int main(void) {
    RUN_TEST(test_clt_gradients_match_finite_differences);
    RUN_TEST(test_clt_case0_matches_torch);
    RUN_TEST(test_clt_case1_matches_torch);
    RUN_TEST(test_clt_case2_matches_torch);
    RUN_TEST(test_clt_case3_per_pair_matches_torch);
    RUN_TEST(test_clt_topk_matches_torch);
    RUN_TEST(test_clt_batchtopk_matches_torch);
    RUN_TEST(test_clt_batchtopk_cutoff_is_exact);
    RUN_TEST(test_clt_save_load_folds_normalization);
    RUN_TEST(test_clt_names);
    return test_summary();
}
