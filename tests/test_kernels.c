// CPU kernels checked against their direct definitions: the sgemm-based attention against the
// row-by-row loop (GQA ratios, soft-capping, sliding windows, T=1); the pattern recomputed in
// blocks (attention_row_stats_cpu + attention_probs_block_cpu) and attrib's tiled transpose
// against attention_cpu's stored probs; matmul and the strided gemm against double-precision
// loops. (The model goldens test everything end to end against HF.)
#include "attention.h"
#include "attrib_vjp.h"
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
        size_t nq = (size_t)s.B * s.T * s.H * s.hd, nk = (size_t)s.B * s.T * s.KVH * s.hd,
               np = (size_t)s.B * s.H * s.T * s.T;
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
        float *x = malloc((size_t)N * IN * 4), *w = malloc((size_t)OUT * IN * 4), *b = malloc((size_t)OUT * 4),
              *y = malloc((size_t)N * OUT * 4);
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

// The pattern recomputed from q, k and the row statistics equals the stored one (the same fp32
// score and softmax arithmetic: differences of a few ulps of p ≤ 1), in arbitrary blocks; and
// the tiled Pᵀx equals the product with the stored pattern (sums of ≤ 300 terms |p·x| ≤ 1).
static void test_attention_recomputed(void) {
    struct { int T, H, KVH, hd, window; float softcap; int Te, cols; } cases[] = {
        {1, 1, 1, 8, 0, 0, 1, 3}, {37, 8, 2, 32, 8, 5.0f, 30, 17}, {130, 4, 1, 64, 17, 0, 130, 64},
        {300, 3, 3, 16, 0, 2.0f, 257, 96}, {64, 2, 1, 8, 1, 0, 64, 5},
    };
    uint64_t seed = 3;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int T = cases[c].T, H = cases[c].H, hd = cases[c].hd, Te = cases[c].Te, cols = cases[c].cols;
        AttnShape s = {1, T, H, cases[c].KVH, hd, 1.0f / sqrtf((float)hd) * 3.0f, cases[c].softcap, cases[c].window};
        size_t nq = (size_t)T * H * hd, nk = (size_t)T * s.KVH * hd, np = (size_t)H * T * T;
        float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4), *o = malloc(nq * 4);
        float *p = malloc(np * 4), *blk = malloc((size_t)T * T * 4), *mx = malloc((size_t)H * T * 4);
        float *inv = malloc((size_t)H * T * 4);
        for (size_t i = 0; i < nq; i++) q[i] = rng_unif(&seed, 1.0f);
        for (size_t i = 0; i < nk; i++) { k[i] = rng_unif(&seed, 1.0f); v[i] = rng_unif(&seed, 1.0f); }
        attention_cpu(o, p, q, k, v, &s);
        attention_row_stats_cpu(mx, inv, q, k, &s);
        double worst = 0;
        for (int h = 0; h < H; h++)
            for (int i0 = 0; i0 < T; i0 += 7)
                for (int j0 = 0; j0 < T; j0 += 11) {
                    int ni = T - i0 < 9 ? T - i0 : 9, nj = T - j0 < 13 ? T - j0 : 13;
                    attention_probs_block_cpu(blk, nj + 2, q, k, mx, inv, &s, h, i0, ni, j0, nj);
                    for (int r = 0; r < ni; r++)
                        for (int cc = 0; cc < nj; cc++) {
                            double d = fabs(blk[(size_t)r * (nj + 2) + cc] - p[((size_t)h * T + i0 + r) * T + j0 + cc]);
                            worst = d > worst || d != d ? (d != d ? INFINITY : d) : worst;
                        }
                }
        CHECK(worst < 1e-6, "case %zu: recomputed probs differ by %.3g", c, worst);
        size_t nx = (size_t)Te * cols;
        float *x = malloc(nx * 4), *y = malloc(nx * 4), *ref = malloc(nx * 4);
        for (size_t i = 0; i < (size_t)Te * cols; i++) {
            x[i] = rng_unif(&seed, 1.0f);
            y[i] = ref[i] = rng_unif(&seed, 1.0f);
        }
        AttribPattern pat = {q, k, mx, inv, s};
        int h = H - 1;
        attrib_pattern_t_cpu(y, x, &pat, h, Te, cols, 0.5f);
        for (int j = 0; j < Te; j++)
            for (int cc = 0; cc < cols; cc++) {
                double acc = 0.5 * ref[(size_t)j * cols + cc];
                for (int i = 0; i < Te; i++) acc += (double)p[((size_t)h * T + i) * T + j] * x[(size_t)i * cols + cc];
                ref[(size_t)j * cols + cc] = (float)acc;
            }
        CHECK(max_abs_diff(y, ref, (size_t)Te * cols) < 1e-5, "case %zu: tiled Pᵀx differs by %.3g", c,
              max_abs_diff(y, ref, (size_t)Te * cols));
        free(q); free(k); free(v); free(o); free(p); free(blk); free(mx); free(inv); free(x); free(y); free(ref);
    }
}

// gemm_cpu on strided views, every transpose combination, beta 0 and 0.5 (K ≤ 129 terms of |a·b| ≤ 1).
static void test_gemm_matches_double_loop(void) {
    int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {200, 96, 33}, {5, 300, 129}};
    uint64_t seed = 9;
    for (int c = 0; c < 4; c++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shapes[c][0], N = shapes[c][1], K = shapes[c][2];
                int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldo = N + 2;
                float *a = malloc((size_t)(ta ? K : M) * lda * 4), *b = malloc((size_t)(tb ? N : K) * ldb * 4);
                float *o = malloc((size_t)M * ldo * 4), *o0 = malloc((size_t)M * ldo * 4);
                for (size_t i = 0; i < (size_t)(ta ? K : M) * lda; i++) a[i] = rng_unif(&seed, 1.0f);
                for (size_t i = 0; i < (size_t)(tb ? N : K) * ldb; i++) b[i] = rng_unif(&seed, 1.0f);
                for (size_t i = 0; i < (size_t)M * ldo; i++) o[i] = o0[i] = rng_unif(&seed, 1.0f);
                float beta = (c + ta + tb) % 2 ? 0.5f : 0.0f;
                gemm_cpu(ta, tb, M, N, K, a, lda, b, ldb, beta, o, ldo);
                double worst = 0;
                for (int m = 0; m < M; m++)
                    for (int n = 0; n < N; n++) {
                        double ref = beta * (double)o0[(size_t)m * ldo + n];
                        for (int kk = 0; kk < K; kk++)
                            ref += (double)(ta ? a[(size_t)kk * lda + m] : a[(size_t)m * lda + kk]) *
                                   (tb ? b[(size_t)n * ldb + kk] : b[(size_t)kk * ldb + n]);
                        double d = fabs(ref - o[(size_t)m * ldo + n]);
                        worst = d > worst || d != d ? (d != d ? INFINITY : d) : worst;
                    }
                CHECK(worst < 1e-4, "gemm %dx%dx%d trans %d%d: error %.3g", M, N, K, ta, tb, worst);
                free(a); free(b); free(o); free(o0);
            }
}

int main(void) {
    RUN_TEST(test_attention_matches_naive);
    RUN_TEST(test_attention_recomputed);
    RUN_TEST(test_matmul_matches_double_loop);
    RUN_TEST(test_gemm_matches_double_loop);
    return test_summary();
}
