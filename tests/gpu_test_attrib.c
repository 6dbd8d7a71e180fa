// gpu_test_attrib.c — the CUDA twins of kernels/attrib_vjp.h against their CPU references on
// random data: GEMMs (both b layouts, strided), the frozen pattern's transpose (recomputed from
// q/k in tiles on both sides: key blocks on the CPU, query blocks on the GPU), frozen-norm VJPs
// (RMS and centered), and the source dot products (decoder vectors grouped by position,
// errors/tokens by position). NMSE as gpu_test_kernels.c: fp32 sums reordered give ~1e-13; limits 1e-9 (an indexing bug
// gives ~1).
// Then whole graphs: attrib_run with the GPU backend (libcommon/attrib/attrib_cuda.h, `attrib --device
// cuda`) against the CPU on the committed tiny Llama and its CLTs (mlp_in and resid_mid), every
// feature row and logit row, in batches of 7 (several batches, a partial last one).
// Needs a GPU; without one it prints a SKIP line and exits 0.
#include <stdint.h>

#include "attrib_cuda.h"
#include "attrib_vjp.h"
#include "cuda_common.h"
#include "gpu_check.h"
#include "gpu_ctx.h"
#include "matmul.h"

static float *rand_vec(uint64_t *r, size_t n, float amp) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = rng_unif(r, amp);
    return x;
}

static void *to_dev(const void *h, size_t nbytes) {
    void *d = cuda_alloc(nbytes ? nbytes : 4);
    if (nbytes) cuda_upload(d, h, nbytes);
    return d;
}

static float *from_dev(const GpuCtx *g, const float *d, size_t n) {
    Error e = {{0}};
    CHECK(gpu_ctx_sync(g, &e) == 0, "%s", e.msg);
    float *h = malloc((n ? n : 1) * sizeof(float));
    cuda_download(h, d, n * sizeof(float));
    return h;
}

static GpuCtx G;

static void test_gemm_and_pattern(void) {
    Group gr = {"attrib gemm/pattern", 1e-9, 0, 0};
    uint64_t r = 7;
    Error e = {{0}};
    const int shapes[][3] = {{1, 1, 1}, {17, 8, 64}, {130, 33, 70}, {512, 64, 256}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
        for (int tb = 0; tb < 2; tb++) {
            int lda = K + 3, ldb = (tb ? K : N) + 2, ldo = N + 1;
            float *a = rand_vec(&r, (size_t)M * lda, 1), *b = rand_vec(&r, (size_t)(tb ? N : K) * ldb, 1);
            float *out = rand_vec(&r, (size_t)M * ldo, 1);
            float *da = to_dev(a, (size_t)M * lda * 4), *db = to_dev(b, (size_t)(tb ? N : K) * ldb * 4);
            float *dout = to_dev(out, (size_t)M * ldo * 4);
            gemm_cpu(0, tb, M, N, K, a, lda, b, ldb, 0.5f, out, ldo);
            CHECK(!gemm_cuda(&G, 0, tb, M, N, K, da, lda, db, ldb, 0.5f, dout, ldo, &e), "%s", e.msg);
            float *got = from_dev(&G, dout, (size_t)M * ldo);
            char what[64];
            snprintf(what, sizeof what, "gemm %dx%dx%d trans_b %d", M, N, K, tb);
            group_check(&gr, what, got, out, (size_t)M * ldo);
            free(got); free(a); free(b); free(out);
            cuda_free(da); cuda_free(db); cuda_free(dout);
        }
    }
    // pattern: recomputed from random q/k (GQA, softcap, window) and their row statistics, Te ≤ T
    // Te, T, cols, window, softcap on, H / KVH
    const int pshapes[][6] = {{1, 1, 8, 0, 0, 1}, {5, 9, 16, 0, 1, 2}, {600, 700, 64, 33, 1, 4},
                              {200, 257, 64, 0, 0, 1}};
    for (size_t si = 0; si < sizeof pshapes / sizeof pshapes[0]; si++) {
        int Te = pshapes[si][0], T = pshapes[si][1], cols = pshapes[si][2], H = 4, KVH = 4 / pshapes[si][5], hd = 16;
        AttnShape sh = {1, T, H, KVH, hd, 0.25f, pshapes[si][4] ? 3.0f : 0.0f, pshapes[si][3]};
        float *q = rand_vec(&r, (size_t)T * H * hd, 1), *k = rand_vec(&r, (size_t)T * KVH * hd, 1);
        float *mx = malloc((size_t)H * T * 4), *inv = malloc((size_t)H * T * 4);
        attention_row_stats_cpu(mx, inv, q, k, &sh);
        float *x = rand_vec(&r, (size_t)Te * cols, 1), *y = rand_vec(&r, (size_t)Te * cols, 1);
        float *dq = to_dev(q, (size_t)T * H * hd * 4), *dk = to_dev(k, (size_t)T * KVH * hd * 4);
        float *dmx = to_dev(mx, (size_t)H * T * 4), *dinv = to_dev(inv, (size_t)H * T * 4);
        float *dx = to_dev(x, (size_t)Te * cols * 4), *dy = to_dev(y, (size_t)Te * cols * 4);
        float *dsc = cuda_alloc((size_t)attrib_pattern_scratch_cuda(Te) * 4);
        AttribPattern hp = {q, k, mx, inv, sh}, dp = {dq, dk, dmx, dinv, sh};
        for (int beta = 1; beta >= 0; beta--) {
            int h = beta ? H - 1 : 1;
            attrib_pattern_t_cpu(y, x, &hp, h, Te, cols, (float)beta);
            CHECK(!attrib_pattern_t_cuda(&G, dy, dx, &dp, h, Te, cols, (float)beta, dsc, &e), "%s", e.msg);
            float *got = from_dev(&G, dy, (size_t)Te * cols);
            char what[80];
            snprintf(what, sizeof what, "pattern Te %d T %d cols %d window %d beta %d", Te, T, cols, sh.window, beta);
            group_check(&gr, what, got, y, (size_t)Te * cols);
            free(got);
        }
        free(q); free(k); free(mx); free(inv); free(x); free(y);
        cuda_free(dq); cuda_free(dk); cuda_free(dmx); cuda_free(dinv); cuda_free(dx); cuda_free(dy); cuda_free(dsc);
    }
    group_report(&gr);
}

static void test_norm_and_dots(void) {
    Group gr = {"attrib norm/dots", 1e-9, 0, 0};
    uint64_t r = 11;
    Error e = {{0}};
    const int shapes[][4] = {{1, 1, 1, 16}, {3, 7, 9, 64}, {32, 100, 128, 300}};  // B, Te, T, D
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int B = shapes[si][0], Te = shapes[si][1], T = shapes[si][2], D = shapes[si][3];
        size_t n = (size_t)B * Te * D;
        float *g = rand_vec(&r, n, 1), *w = rand_vec(&r, (size_t)D, 1), *rstd = rand_vec(&r, (size_t)T, 2);
        float *dg = to_dev(g, n * 4), *dw = to_dev(w, (size_t)D * 4), *drs = to_dev(rstd, (size_t)T * 4);
        for (int centered = 0; centered < 2; centered++) {
            float *out = rand_vec(&r, n, 1), *dout = to_dev(out, n * 4);
            attrib_norm_vjp_cpu(out, g, w, 1.0f, centered, rstd, B, Te, D, 1);
            CHECK(!attrib_norm_vjp_cuda(&G, dout, dg, dw, 1.0f, centered, drs, B, Te, D, 1, &e), "%s", e.msg);
            float *got = from_dev(&G, dout, n);
            char what[64];
            snprintf(what, sizeof what, "norm centered %d B %d Te %d D %d", centered, B, Te, D);
            group_check(&gr, what, got, out, n);
            free(got); free(out); cuda_free(dout);
        }
        // decoder sources: a few per position, columns a permutation
        int64_t *off = malloc(((size_t)T + 1) * sizeof(int64_t));
        off[0] = 0;
        for (int p = 0; p < T; p++) off[p + 1] = off[p] + (rng_u32(&r) % 4);
        int64_t n_src = off[T], ld = n_src + 2 * T + 5;
        int32_t *col = malloc(((size_t)n_src + 1) * sizeof(int32_t));
        for (int64_t s = 0; s < n_src; s++) col[s] = (int32_t)(n_src - 1 - s);  // reversed: a permutation
        // decoder rows: a shared pool read at shuffled offsets, each source scaled by its activation
        float *vecs = rand_vec(&r, (size_t)n_src * D + 1, 1), *rows = rand_vec(&r, (size_t)B * ld, 1);
        float *act = rand_vec(&r, (size_t)n_src + 1, 2);
        int64_t *row = malloc(((size_t)n_src + 1) * sizeof(int64_t));
        for (int64_t s = 0; s < n_src; s++) row[s] = (int64_t)(rng_u32(&r) % (uint32_t)n_src) * D;
        float *evec = rand_vec(&r, (size_t)T * D, 1);
        float *dvecs = to_dev(vecs, (size_t)n_src * D * 4), *drows = to_dev(rows, (size_t)B * ld * 4);
        float *dact = to_dev(act, (size_t)n_src * 4);
        int64_t *drow = to_dev(row, (size_t)n_src * sizeof(int64_t));
        float *devec = to_dev(evec, (size_t)T * D * 4);
        int64_t *doff = to_dev(off, ((size_t)T + 1) * sizeof(int64_t));
        int32_t *dcol = to_dev(col, (size_t)n_src * sizeof(int32_t));
        attrib_decoder_dots_cpu(rows, ld, off, col, vecs, row, act, g, B, Te, D);
        attrib_position_dots_cpu(rows, ld, n_src + T, evec, 0.5f, g, B, Te, T, D);
        CHECK(!attrib_decoder_dots_cuda(&G, drows, ld, doff, T, n_src, dcol, dvecs, drow, dact, dg, B, Te, D, &e), "%s",
              e.msg);
        CHECK(!attrib_position_dots_cuda(&G, drows, ld, n_src + T, devec, 0.5f, dg, B, Te, T, D, &e), "%s", e.msg);
        float *got = from_dev(&G, drows, (size_t)B * ld);
        char what[64];
        snprintf(what, sizeof what, "dots B %d Te %d T %d D %d", B, Te, T, D);
        group_check(&gr, what, got, rows, (size_t)B * ld);
        free(got); free(off); free(col); free(vecs); free(act); free(row);
        cuda_free(dact); cuda_free(drow); free(rows); free(evec); free(g); free(w); free(rstd);
        cuda_free(dvecs); cuda_free(drows); cuda_free(devec); cuda_free(doff); cuda_free(dcol);
        cuda_free(dg); cuda_free(dw); cuda_free(drs);
    }
    group_report(&gr);
}

static void test_rows_tiny(void) {
    Group gr = {"attrib rows", 1e-9, 0, 0};
    const char *clts[] = {"tests/golden/attrib/tiny/clt_mlp_in", "tests/golden/attrib/tiny/clt_resid_mid"};
    Error e = {{0}};
    Model m;
    CHECK(!model_load(&m, "tests/golden/attrib/tiny/model", &e), "%s", e.msg);
    uint32_t tokens[12] = {1, 17, 5, 42, 9, 33, 60, 2, 28, 11, 47, 3};
    for (int c = 0; c < 2; c++) {
        AttribClt clt;
        AttribState s;
        CHECK(!attrib_clt_open(&clt, clts[c], &e), "%s", e.msg);
        CHECK(!attrib_capture(&m, &clt, tokens, 12, &s, &e), "%s", e.msg);
        CHECK(!attrib_logit_targets(&s, &m, NULL, 0, 5, 0.95, &e), "%s", e.msg);
        AttribRunOptions o = {7, 0, 4, NULL, NULL, NULL};
        AttribGraph cpu, gpu;
        CHECK(!attrib_run(&m, &s, &o, &cpu, &e), "%s", e.msg);
        AttribGpu *ag = attrib_gpu_new(&m, &s, 7, &e);
        CHECK(ag, "%s", e.msg);
        AttribBackend be = attrib_gpu_backend(ag);
        o.backend = &be;
        CHECK(!attrib_run(&m, &s, &o, &gpu, &e), "%s", e.msg);
        int64_t n = (int64_t)(cpu.n_feat + cpu.n_logits) * attrib_n_nodes(&cpu);
        char what[160];
        snprintf(what, sizeof what, "%s: %d feature rows + %d logit rows", clts[c], cpu.n_feat, cpu.n_logits);
        group_check(&gr, what, gpu.adj, cpu.adj, (size_t)n);
        attrib_gpu_free(ag);
        attrib_graph_free(&cpu);
        attrib_graph_free(&gpu);
        attrib_state_free(&s);
        attrib_clt_close(&clt);
    }
    model_free(&m);
    group_report(&gr);
}

int main(void) {
    if (!gpu_test_start("gpu_test_attrib", &G)) return 0;
    RUN_TEST(test_gemm_and_pattern);
    RUN_TEST(test_norm_and_dots);
    RUN_TEST(test_rows_tiny);
    gpu_ctx_free(&G);
    return test_summary();
}
