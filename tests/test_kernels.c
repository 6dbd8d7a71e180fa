// CPU kernels checked against their direct definitions: the sgemm-based attention against the
// row-by-row loop (GQA ratios, soft-capping, sliding windows, T=1), and matmul against a
// double-precision loop. (The model goldens test everything end to end against HF.)
#include "attention.h"
#include "check.h"
#include "matmul.h"

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

static void test_attention_matches_naive(void) {
    struct { int B, T, H, KVH, hd, window; float softcap; } cases[] = {
        {1, 1, 1, 1, 8, 0, 0}, {2, 24, 4, 2, 16, 0, 0}, {1, 37, 8, 2, 32, 8, 5.0f}, {3, 64, 6, 6, 10, 0, 3.0f},
        {1, 130, 4, 1, 64, 17, 0}, {2, 9, 2, 1, 4, 1, 0},
    };
    uint64_t seed = 1;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        AttnShape s = {cases[c].B, cases[c].T, cases[c].H, cases[c].KVH, cases[c].hd,
                       1.0f / sqrtf((float)cases[c].hd) * 3.0f, cases[c].softcap, cases[c].window};
        size_t nq = (size_t)s.B * s.T * s.H * s.hd, nk = (size_t)s.B * s.T * s.KVH * s.hd, np = (size_t)s.B * s.H * s.T * s.T;
        float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4);
        float *o1 = malloc(nq * 4), *o2 = malloc(nq * 4), *p1 = malloc(np * 4), *p2 = malloc(np * 4);
        for (size_t i = 0; i < nq; i++) q[i] = rng_unif(&seed, 1.0f);
        for (size_t i = 0; i < nk; i++) { k[i] = rng_unif(&seed, 1.0f); v[i] = rng_unif(&seed, 1.0f); }
        attention_cpu(o1, p1, q, k, v, &s);
        attention_naive_cpu(o2, p2, q, k, v, &s);
        CHECK(max_abs_diff(o1, o2, nq) < 1e-5, "case %zu: outputs differ by %.3g", c, max_abs_diff(o1, o2, nq));
        CHECK(max_abs_diff(p1, p2, np) < 1e-5, "case %zu: probs differ by %.3g", c, max_abs_diff(p1, p2, np));
        attention_cpu(o1, NULL, q, k, v, &s);  // without probs, same output
        CHECK(max_abs_diff(o1, o2, nq) < 1e-5, "case %zu: outputs without probs differ", c);
        free(q); free(k); free(v); free(o1); free(o2); free(p1); free(p2);
    }
}

static void test_matmul_matches_double_loop(void) {
    int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {64, 96, 33}, {5, 300, 129}};
    uint64_t seed = 7;
    for (int c = 0; c < 4; c++) {
        int N = shapes[c][0], IN = shapes[c][1], OUT = shapes[c][2];
        float *x = malloc((size_t)N * IN * 4), *w = malloc((size_t)OUT * IN * 4), *b = malloc((size_t)OUT * 4), *y = malloc((size_t)N * OUT * 4);
        for (int i = 0; i < N * IN; i++) x[i] = rng_unif(&seed, 1.0f);
        for (int i = 0; i < OUT * IN; i++) w[i] = rng_unif(&seed, 1.0f);
        for (int i = 0; i < OUT; i++) b[i] = rng_unif(&seed, 1.0f);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            matmul_cpu(y, x, w, with_bias ? b : NULL, N, IN, OUT);
            double worst = 0;
            for (int n = 0; n < N; n++)
                for (int o = 0; o < OUT; o++) {
                    double ref = with_bias ? b[o] : 0;
                    for (int i = 0; i < IN; i++) ref += (double)x[(size_t)n * IN + i] * w[(size_t)o * IN + i];
                    double d = fabs(ref - y[(size_t)n * OUT + o]);
                    if (d > worst) worst = d;
                }
            CHECK(worst < 1e-4, "shape %dx%dx%d bias %d: error %.3g", N, IN, OUT, with_bias, worst);
        }
        free(x); free(w); free(b); free(y);
    }
}

int main(void) {
    RUN_TEST(test_attention_matches_naive);
    RUN_TEST(test_matmul_matches_double_loop);
    return test_summary();
}
