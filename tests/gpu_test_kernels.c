// gpu_test_kernels.c — every CUDA kernel twin (kernels/*.cu) against its CPU reference
// (kernels/*.c) on random data over many shapes: odd sizes, tails past the block size and past
// the grid-stride cap, GQA ratios 1/2/4, softcap and sliding window on and off, T = 1 .. 12300.
// Needs a GPU; without one it prints a SKIP line and exits 0.
//
// Metric, as ggml's test-backend-ops: NMSE = Σ(gpu − cpu)² / Σcpu². An indexing bug gives
// NMSE ~ 1; fp32 reassociation gives ~1e-14 .. 1e-12. The limits sit well above the fp32 noise
// and far below any real bug (ggml uses 1e-7 by default, 5e-4 for its low-precision matmuls):
//   elementwise act / softcap / rope   1e-10  same formula per element; CUDA expf/tanhf/sinf are
//                                             within 2 ulp of glibc: NMSE ~ 1e-14
//   rmsnorm / layernorm (+ rstd)       1e-10  a float tree reduction vs the CPU's double sum:
//                                             rstd differs by ~1e-7 relative
//   matmul                             1e-9   fp32 dot products of up to 2048 terms reordered:
//                                             ~1e-12; TF32 (10-bit mantissa) would give ~1e-7
//                                             and must fail, it would break the forward's 1e-4
//   attention out and probs            1e-8   dot-product reordering amplified by exp and the
//                                             softcap's tanh: ~1e-12 .. 1e-11
// Each group prints the worst NMSE it saw, so the margins are visible on every run.
#include <stdint.h>

#include "act.h"
#include "attention.h"
#include "gpu_check.h"
#include "cuda_common.h"
#include "gpu_ctx.h"
#include "matmul.h"
#include "norm.h"
#include "rope.h"

static GpuCtx G;


// uniform in [-amp, amp)
static float *rand_vec(uint64_t *r, size_t n, float amp) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = rng_unif(r, amp);
    return x;
}


static float *to_dev(const float *h, size_t n) {
    float *d = cuda_alloc(n * sizeof(float));
    cuda_upload(d, h, n * sizeof(float));
    return d;
}

static float *from_dev(const float *d, size_t n) {
    Error e = {{0}};
    CHECK(gpu_ctx_sync(&G, &e) == 0, "%s", e.msg);
    float *h = malloc((n ? n : 1) * sizeof(float));
    cuda_download(h, d, n * sizeof(float));
    return h;
}


// ---- act.h -----------------------------------------------------------------------------------

static void test_act(void) {
    Group gr = {"act", 1e-10, 0, 0};
    uint64_t r = 42;
    // 17M > 64K blocks x 256 threads: the grid-stride loop must wrap
    const size_t sizes[] = {1, 7, 255, 257, 1000, (1u << 20) + 3, (size_t)17 << 20};
    Error e = {{0}};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        char what[64];
        float *gate = rand_vec(&r, n, 10.0f), *up = rand_vec(&r, n, 3.0f), *cpu = malloc(n * sizeof(float));
        float *d_gate = to_dev(gate, n), *d_up = to_dev(up, n), *d_out = cuda_alloc(n * sizeof(float));
        for (int kind = 0; kind < 2; kind++) {
            gated_act_cpu(cpu, gate, up, n, (ActKind)kind);
            CHECK(gated_act_cuda(&G, d_out, d_gate, d_up, n, (ActKind)kind, &e) == 0, "%s", e.msg);
            float *got = from_dev(d_out, n);
            snprintf(what, sizeof what, "gated %s n=%zu", kind ? "gelu" : "silu", n);
            group_check(&gr, what, got, cpu, n);
            free(got);
        }
        // in place, as the forward pass calls it: out == up
        float *d_up2 = to_dev(up, n);
        CHECK(gated_act_cuda(&G, d_up2, d_gate, d_up2, n, ACT_SILU, &e) == 0, "%s", e.msg);
        gated_act_cpu(cpu, gate, up, n, ACT_SILU);
        float *got = from_dev(d_up2, n);
        snprintf(what, sizeof what, "gated silu in place n=%zu", n);
        group_check(&gr, what, got, cpu, n);
        free(got);
        // gelu_tanh in place
        memcpy(cpu, gate, n * sizeof(float));
        gelu_tanh_cpu(cpu, n);
        CHECK(gelu_tanh_cuda(&G, d_gate, n, &e) == 0, "%s", e.msg);
        got = from_dev(d_gate, n);
        snprintf(what, sizeof what, "gelu_tanh n=%zu", n);
        group_check(&gr, what, got, cpu, n);
        free(got);
        // softcap in place, a cap that bites (|x| up to 10) and one that barely does
        const float caps[] = {3.0f, 30.0f};
        for (int ci = 0; ci < 2; ci++) {
            cuda_upload(d_gate, gate, n * sizeof(float));
            memcpy(cpu, gate, n * sizeof(float));
            softcap_cpu(cpu, n, caps[ci]);
            CHECK(softcap_cuda(&G, d_gate, n, caps[ci], &e) == 0, "%s", e.msg);
            got = from_dev(d_gate, n);
            snprintf(what, sizeof what, "softcap %g n=%zu", caps[ci], n);
            group_check(&gr, what, got, cpu, n);
            free(got);
        }
        cuda_free(d_gate), cuda_free(d_up), cuda_free(d_up2), cuda_free(d_out);
        free(gate), free(up), free(cpu);
    }
    CHECK(gelu_tanh_cuda(&G, NULL, 0, &e) == 0, "n = 0 is not a no-op");
    group_report(&gr);
}

// ---- norm.h ----------------------------------------------------------------------------------

static void test_norm(void) {
    Group gr = {"norm", 1e-10, 0, 0};
    uint64_t r = 7;
    const int shapes[][2] = {{1, 1},   {1, 64},   {3, 7},     {17, 64},  {5, 255},
                             {4, 257}, {5, 1000}, {64, 4096}, {2, 5000}, {300, 96}};
    Error e = {{0}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int N = shapes[si][0], D = shapes[si][1];
        size_t ND = (size_t)N * D;
        char what[96];
        for (int shift = 0; shift < 2; shift++) {
            float *x = rand_vec(&r, ND, 2.0f), *w = rand_vec(&r, (size_t)D, 1.5f), *b = rand_vec(&r, (size_t)D, 0.5f);
            if (shift)  // a row mean far from zero: LayerNorm's centring matters
                for (size_t i = 0; i < ND; i++) x[i] += 3.0f;
            float *cpu = malloc(ND * sizeof(float)), *cpu_rstd = malloc((size_t)N * sizeof(float));
            float *d_x = to_dev(x, ND), *d_w = to_dev(w, (size_t)D), *d_b = to_dev(b, (size_t)D);
            float *d_out = cuda_alloc(ND * sizeof(float)), *d_rstd = cuda_alloc((size_t)N * sizeof(float));
            // rmsnorm, Llama (offset 0) and Gemma (offset 1) weights
            for (int off = 0; off < 2; off++) {
                float eps = off ? 1e-6f : 1e-5f;
                rmsnorm_cpu(cpu, x, w, (float)off, N, D, eps, cpu_rstd);
                CHECK(rmsnorm_cuda(&G, d_out, d_x, d_w, (float)off, N, D, eps, d_rstd, &e) == 0, "%s", e.msg);
                float *got = from_dev(d_out, ND), *got_rstd = from_dev(d_rstd, (size_t)N);
                snprintf(what, sizeof what, "rmsnorm N=%d D=%d offset %d shift %d", N, D, off, shift);
                group_check(&gr, what, got, cpu, ND);
                group_check(&gr, "rmsnorm rstd", got_rstd, cpu_rstd, (size_t)N);
                free(got), free(got_rstd);
            }
            // layernorm
            layernorm_cpu(cpu, x, w, b, N, D, 1e-5f, cpu_rstd);
            CHECK(layernorm_cuda(&G, d_out, d_x, d_w, d_b, N, D, 1e-5f, d_rstd, &e) == 0, "%s", e.msg);
            float *got = from_dev(d_out, ND), *got_rstd = from_dev(d_rstd, (size_t)N);
            snprintf(what, sizeof what, "layernorm N=%d D=%d shift %d", N, D, shift);
            group_check(&gr, what, got, cpu, ND);
            group_check(&gr, "layernorm rstd", got_rstd, cpu_rstd, (size_t)N);
            free(got), free(got_rstd);
            // in place (out == x) without rstd, as the Gemma 2 post-norms run
            rmsnorm_cpu(cpu, x, w, 1.0f, N, D, 1e-6f, NULL);
            CHECK(rmsnorm_cuda(&G, d_x, d_x, d_w, 1.0f, N, D, 1e-6f, NULL, &e) == 0, "%s", e.msg);
            got = from_dev(d_x, ND);
            snprintf(what, sizeof what, "rmsnorm in place N=%d D=%d", N, D);
            group_check(&gr, what, got, cpu, ND);
            free(got);
            cuda_upload(d_x, x, ND * sizeof(float));
            layernorm_cpu(cpu, x, w, b, N, D, 1e-5f, NULL);
            CHECK(layernorm_cuda(&G, d_x, d_x, d_w, d_b, N, D, 1e-5f, NULL, &e) == 0, "%s", e.msg);
            got = from_dev(d_x, ND);
            snprintf(what, sizeof what, "layernorm in place N=%d D=%d", N, D);
            group_check(&gr, what, got, cpu, ND);
            free(got);
            cuda_free(d_x), cuda_free(d_w), cuda_free(d_b), cuda_free(d_out), cuda_free(d_rstd);
            free(x), free(w), free(b), free(cpu), free(cpu_rstd);
        }
    }
    group_report(&gr);
}

// ---- rope.h ----------------------------------------------------------------------------------

static void test_rope(void) {
    Group gr = {"rope", 1e-10, 0, 0};
    uint64_t r = 99;
    const int shapes[][4] = {{1, 1, 1, 2},    {2, 7, 3, 16},   {2, 5, 2, 6},
                             {1, 33, 5, 128}, {3, 300, 4, 64}, {2, 24, 8, 256}};
    Error e = {{0}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int B = shapes[si][0], T = shapes[si][1], nh = shapes[si][2], hd = shapes[si][3];
        for (int llama3 = 0; llama3 < 2; llama3++) {
            RopeParams p = {llama3 ? 500000.0f : 10000.0f, llama3, 8.0f, 1.0f, 4.0f, 16};
            size_t nt = (size_t)T * (hd / 2), n = (size_t)B * T * nh * hd;
            float *cos_t = malloc(nt * sizeof(float)), *sin_t = malloc(nt * sizeof(float));
            rope_table(cos_t, sin_t, T, hd, &p);
            float *x = rand_vec(&r, n, 2.0f);
            float *d_x = to_dev(x, n), *d_cos = to_dev(cos_t, nt), *d_sin = to_dev(sin_t, nt);
            rope_apply_cpu(x, cos_t, sin_t, B, T, nh, hd);
            CHECK(rope_apply_cuda(&G, d_x, d_cos, d_sin, B, T, nh, hd, &e) == 0, "%s", e.msg);
            float *got = from_dev(d_x, n);
            char what[96];
            snprintf(what, sizeof what, "B=%d T=%d heads=%d hd=%d llama3 %d", B, T, nh, hd, llama3);
            group_check(&gr, what, got, x, n);
            free(got), free(x), free(cos_t), free(sin_t);
            cuda_free(d_x), cuda_free(d_cos), cuda_free(d_sin);
        }
    }
    group_report(&gr);
}

// ---- matmul.h --------------------------------------------------------------------------------

static void test_matmul(void) {
    Group gr = {"matmul", 1e-9, 0, 0};
    uint64_t r = 2024;
    const int shapes[][3] = {{1, 1, 1}, {1, 64, 512}, {7, 13, 5}, {24, 64, 128}, {33, 64, 17}, {128, 256, 96},
                             {300, 1000, 513}, {512, 2048, 1536}, {3, 2048, 32000}};
    Error e = {{0}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int N = shapes[si][0], IN = shapes[si][1], OUT = shapes[si][2];
        size_t nin = (size_t)N * IN, nw = (size_t)OUT * IN, nout = (size_t)N * OUT;
        float *in = rand_vec(&r, nin, 1.0f), *w = rand_vec(&r, nw, 0.1f), *bias = rand_vec(&r, (size_t)OUT, 1.0f);
        float *cpu = malloc(nout * sizeof(float));
        float *d_in = to_dev(in, nin), *d_w = to_dev(w, nw), *d_bias = to_dev(bias, (size_t)OUT);
        float *d_out = cuda_alloc(nout * sizeof(float));
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            // NaN garbage in out: beta = 0 must not read it, the bias fill must overwrite it
            float *nan = malloc(nout * sizeof(float));
            for (size_t i = 0; i < nout; i++) nan[i] = NAN;
            cuda_upload(d_out, nan, nout * sizeof(float));
            free(nan);
            matmul_cpu(cpu, in, w, with_bias ? bias : NULL, N, IN, OUT);
            CHECK(matmul_cuda(&G, d_out, d_in, d_w, with_bias ? d_bias : NULL, N, IN, OUT, &e) == 0, "%s", e.msg);
            float *got = from_dev(d_out, nout);
            char what[96];
            snprintf(what, sizeof what, "N=%d IN=%d OUT=%d bias %d", N, IN, OUT, with_bias);
            group_check(&gr, what, got, cpu, nout);
            free(got);
        }
        cuda_free(d_in), cuda_free(d_w), cuda_free(d_bias), cuda_free(d_out);
        free(in), free(w), free(bias), free(cpu);
    }
    // no handle: an Error, not a crash
    CHECK(matmul_cuda(NULL, NULL, NULL, NULL, NULL, 2, 2, 2, &e) == -1 && strstr(e.msg, "cuBLAS"),
          "no handle accepted");
    group_report(&gr);
}

// ---- attention.h -----------------------------------------------------------------------------

typedef struct {
    int B, T, H, KVH, hd;
    float softcap;
    int window, probs;
    float amp;  // input magnitude: scores of order amp² * sqrt(hd) * scale
} AttnCase;

static void attn_case(Group *gr, Group *gp, const AttnCase *c, uint64_t *r) {
    AttnShape s = {c->B, c->T, c->H, c->KVH, c->hd, 1.0f / sqrtf((float)c->hd), c->softcap, c->window};
    size_t nq = (size_t)c->B * c->T * c->H * c->hd, nkv = (size_t)c->B * c->T * c->KVH * c->hd;
    size_t np = (size_t)c->B * c->H * c->T * c->T;
    float *q = rand_vec(r, nq, c->amp), *k = rand_vec(r, nkv, c->amp), *v = rand_vec(r, nkv, 1.0f);
    float *cpu = malloc(nq * sizeof(float)), *cpu_p = c->probs ? malloc(np * sizeof(float)) : NULL;
    attention_cpu(cpu, cpu_p, q, k, v, &s);
    float *d_q = to_dev(q, nq), *d_k = to_dev(k, nkv), *d_v = to_dev(v, nkv), *d_out = cuda_alloc(nq * sizeof(float));
    float *d_p = NULL;
    if (c->probs) {  // garbage first: every entry, zeros included, must be written
        float *nan = malloc(np * sizeof(float));
        for (size_t i = 0; i < np; i++) nan[i] = NAN;
        d_p = to_dev(nan, np);
        free(nan);
    }
    Error e = {{0}};
    CHECK(attention_cuda(&G, d_out, d_p, d_q, d_k, d_v, &s, &e) == 0, "%s", e.msg);
    float *got = from_dev(d_out, nq);
    char what[128];
    snprintf(what, sizeof what, "B=%d T=%d H=%d KVH=%d hd=%d softcap %g window %d", c->B, c->T, c->H, c->KVH, c->hd,
             c->softcap, c->window);
    group_check(gr, what, got, cpu, nq);
    free(got);
    if (c->probs) {
        float *gp_h = from_dev(d_p, np);
        group_check(gp, what, gp_h, cpu_p, np);
        // exact structure: zeros above the diagonal and outside the window, rows summing to 1
        size_t bad_zero = 0, bad_sum = 0;
        for (int bh = 0; bh < c->B * c->H; bh++)
            for (int i = 0; i < c->T; i++) {
                const float *row = gp_h + ((size_t)bh * c->T + i) * c->T;
                double sum = 0;
                for (int j = 0; j < c->T; j++) {
                    int visible = j <= i && (c->window <= 0 || j > i - c->window);
                    if (!visible && row[j] != 0.0f) bad_zero++;
                    sum += row[j];
                }
                if (fabs(sum - 1.0) > 1e-5) bad_sum++;
            }
        CHECK(bad_zero == 0, "%s: %zu masked probs not 0", what, bad_zero);
        CHECK(bad_sum == 0, "%s: %zu prob rows do not sum to 1", what, bad_sum);
        free(gp_h);
    }
    cuda_free(d_q), cuda_free(d_k), cuda_free(d_v), cuda_free(d_out), cuda_free(d_p);
    free(q), free(k), free(v), free(cpu), free(cpu_p);
}

static void test_attention(void) {
    Group gr = {"attention out", 1e-8, 0, 0}, gp = {"attention probs", 1e-8, 0, 0};
    uint64_t r = 31337;
    // GQA ratio 1, 2, 4 x softcap off/on x window off/on, at T = 1, 24 and 300
    const int gqa[][2] = {{4, 4}, {4, 2}, {8, 2}};
    const int Ts[] = {1, 24, 300};
    for (int gi = 0; gi < 3; gi++)
        for (int ti = 0; ti < 3; ti++)
            for (int cap = 0; cap < 2; cap++)
                for (int win = 0; win < 2; win++) {
                    AttnCase c = {2,           Ts[ti], gqa[gi][0],       gqa[gi][1], 32, cap ? 2.0f : 0.0f,
                                  win ? 8 : 0, 1,      cap ? 3.0f : 1.5f};
                    attn_case(&gr, &gp, &c, &r);
                }
    // odd head sizes (not a multiple of 32, larger than the block), batch 3, windows 1 and > T
    const AttnCase odd[] = {
        {3, 17, 2, 1, 17, 0, 0, 1, 1.0f},    {1, 9, 3, 3, 1, 0, 0, 1, 1.0f},      {2, 40, 4, 2, 24, 5.0f, 8, 1, 3.0f},
        {1, 33, 2, 2, 320, 0, 0, 1, 0.5f},   {2, 50, 4, 1, 256, 30.0f, 16, 1, 0.5f}, {2, 20, 2, 1, 64, 0, 1, 1, 1.0f},
        {1, 20, 2, 1, 64, 0, 100, 1, 1.0f},  {1, 257, 1, 1, 128, 0, 0, 1, 1.0f},
        // long contexts: T = 4096 with probs; 12300 (+ hd 32) needs the > 48 KiB shared-memory opt-in
        {1, 4096, 2, 1, 64, 0, 0, 1, 1.0f},  {1, 4096, 2, 2, 64, 50.0f, 1024, 0, 2.0f},
        {1, 12300, 1, 1, 32, 0, 0, 0, 1.0f},
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) attn_case(&gr, &gp, &odd[i], &r);
    // a head count that is not a multiple of the kv heads: an Error
    Error e = {{0}};
    AttnShape bad = {1, 4, 3, 2, 8, 1.0f, 0, 0};
    CHECK(attention_cuda(&G, NULL, NULL, NULL, NULL, NULL, &bad, &e) == -1 && strstr(e.msg, "kv heads"),
          "3 heads / 2 kv accepted");
    group_report(&gr);
    group_report(&gp);
}

int main(void) {
    if (!gpu_test_start("gpu_test_kernels", &G)) return 0;
    RUN_TEST(test_act);
    RUN_TEST(test_norm);
    RUN_TEST(test_rope);
    RUN_TEST(test_matmul);
    RUN_TEST(test_attention);
    gpu_ctx_free(&G);
    return test_summary();
}
