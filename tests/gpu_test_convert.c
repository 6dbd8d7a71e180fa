// gpu_test_convert.c — the CUDA conversions (kernels/convert.cu) against the CPU reference
// (kernels/convert.c), bit for bit, with any NaN equal to any NaN: every f16/bf16/fp8 bit
// pattern, and random fp32 bit patterns for the rounding conversions. Needs a GPU; without one it
// prints a SKIP line and exits 0.
#include <stdint.h>

#include "gpu_check.h"
#include "convert.h"
#include "convert_cuda.h"
#include "cuda_common.h"
#include "safetensors.h"


static int f16_isnan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
static int bf16_isnan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f); }

// Compares n fp32 results bitwise (NaN == NaN); prints the first few differences.
static void compare_f32(const char *what, const float *gpu, const float *cpu, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(gpu[i]) && isnan(cpu[i])) continue;
        if (f32_bits(gpu[i]) != f32_bits(cpu[i]) && bad++ < 3)
            printf("  %s [%zu]: gpu 0x%08x cpu 0x%08x\n", what, i, f32_bits(gpu[i]), f32_bits(cpu[i]));
    }
    CHECK(bad == 0, "%s: %zu of %zu differ", what, bad, n);
}

static void compare_u16(const char *what, const uint16_t *gpu, const uint16_t *cpu, size_t n,
                        int (*isnan16)(uint16_t)) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan16(gpu[i]) && isnan16(cpu[i])) continue;
        if (gpu[i] != cpu[i] && bad++ < 3) printf("  %s [%zu]: gpu 0x%04x cpu 0x%04x\n", what, i, gpu[i], cpu[i]);
    }
    CHECK(bad == 0, "%s: %zu of %zu differ", what, bad, n);
}

// Runs convert_to_f32_cuda on n host elements of `dtype` and returns the downloaded result.
static float *gpu_to_f32(int dtype, const void *in, size_t n) {
    size_t es = st_dtype_size((StDtype)dtype);
    void *d_in = cuda_alloc(n * es);
    float *d_out = cuda_alloc(n * sizeof(float));
    cuda_upload(d_in, in, n * es);
    Error e = {{0}};
    CHECK(convert_to_f32_cuda(dtype, d_in, d_out, n, &e) == 0, "%s", e.msg);
    cuda_sync();
    float *out = malloc(n * sizeof(float));
    cuda_download(out, d_out, n * sizeof(float));
    cuda_free(d_in);
    cuda_free(d_out);
    return out;
}

static uint16_t *gpu_from_f32(int dtype, const float *in, size_t n) {
    float *d_in = cuda_alloc(n * sizeof(float));
    void *d_out = cuda_alloc(n * 2);
    cuda_upload(d_in, in, n * sizeof(float));
    Error e = {{0}};
    CHECK(convert_from_f32_cuda(dtype, d_in, d_out, n, &e) == 0, "%s", e.msg);
    cuda_sync();
    uint16_t *out = malloc(n * 2);
    cuda_download(out, d_out, n * 2);
    cuda_free(d_in);
    cuda_free(d_out);
    return out;
}

static void test_f16_all_patterns(void) {
    size_t n = 65536;
    uint16_t *in = malloc(n * 2);
    float *cpu = malloc(n * 4);
    for (size_t i = 0; i < n; i++) in[i] = (uint16_t)i;
    convert_f16_to_f32(in, cpu, n);
    float *gpu = gpu_to_f32(ST_F16, in, n);
    compare_f32("f16->f32", gpu, cpu, n);
    free(in), free(cpu), free(gpu);
}

static void test_bf16_all_patterns(void) {
    size_t n = 65536;
    uint16_t *in = malloc(n * 2);
    float *cpu = malloc(n * 4);
    for (size_t i = 0; i < n; i++) in[i] = (uint16_t)i;
    convert_bf16_to_f32(in, cpu, n);
    float *gpu = gpu_to_f32(ST_BF16, in, n);
    compare_f32("bf16->f32", gpu, cpu, n);
    free(in), free(cpu), free(gpu);
}

static void test_f8e4m3_all_patterns(void) {
    uint8_t in[256];
    float cpu[256];
    for (int i = 0; i < 256; i++) in[i] = (uint8_t)i;
    convert_f8e4m3_to_f32(in, cpu, 256);
    float *gpu = gpu_to_f32(ST_F8_E4M3, in, 256);
    compare_f32("f8e4m3->f32", gpu, cpu, 256);
    free(gpu);
}

// Random fp32 inputs: half uniform bit patterns (every class: NaN, inf, subnormal), half with
// exponents near the f16 range where rounding, overflow and subnormal results happen. Starts with
// hand-picked edges (ties, FLT_MAX, 65520, 2^-25).
static float *random_f32(size_t n, uint64_t *r) {
    static const uint32_t edges[] = {0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001,
                                     0xffffffff, 0x00000001, 0x007fffff, 0x7f7fffff, 0x477ff000, 0x477fefff,
                                     0x33000000, 0x33000001, 0x3f808000, 0x3f818000, 0x38800000, 0x387fffff};
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        uint32_t u = rng_u32(r);
        if (i < sizeof edges / sizeof edges[0]) u = edges[i];
        else if (i & 1) u = (u & 0x807fffffu) | ((97 + rng_u32(r) % 48) << 23);  // 2^-30 .. 2^17
        x[i] = f32_from_bits(u);
    }
    return x;
}

static void test_f32_to_f16_random(void) {
    uint64_t r = 0x9e3779b97f4a7c15ULL;
    size_t n = (1 << 22) + 17;  // not a multiple of the block: exercises the tail
    float *x = random_f32(n, &r);
    uint16_t *cpu = malloc(n * 2);
    convert_f32_to_f16(x, cpu, n);
    uint16_t *gpu = gpu_from_f32(ST_F16, x, n);
    compare_u16("f32->f16", gpu, cpu, n, f16_isnan);
    free(x), free(cpu), free(gpu);
}

static void test_f32_to_bf16_random(void) {
    uint64_t r = 0x2545f4914f6cdd1dULL;
    size_t n = (1 << 22) + 17;
    float *x = random_f32(n, &r);
    uint16_t *cpu = malloc(n * 2);
    convert_f32_to_bf16(x, cpu, n);
    uint16_t *gpu = gpu_from_f32(ST_BF16, x, n);
    compare_u16("f32->bf16", gpu, cpu, n, bf16_isnan);
    free(x), free(cpu), free(gpu);
}

// Large random 16-bit inputs: the grid-stride loop covers more elements than threads launched.
static void test_to_f32_random_large(void) {
    uint64_t r = 12345;
    size_t n = (size_t)40 << 20;  // 40M > 64K blocks x 256 threads
    uint16_t *in = malloc(n * 2);
    for (size_t i = 0; i < n; i++) in[i] = (uint16_t)rng_u32(&r);
    float *cpu = malloc(n * 4);
    convert_f16_to_f32(in, cpu, n);
    float *gpu = gpu_to_f32(ST_F16, in, n);
    compare_f32("f16->f32 large", gpu, cpu, n);
    free(gpu);
    convert_bf16_to_f32(in, cpu, n);
    gpu = gpu_to_f32(ST_BF16, in, n);
    compare_f32("bf16->f32 large", gpu, cpu, n);
    free(gpu), free(in), free(cpu);
}

static void test_f32_copy_and_errors(void) {
    uint64_t r = 7;
    size_t n = 1000;
    float *x = random_f32(n, &r);
    float *gpu = gpu_to_f32(ST_F32, x, n);
    CHECK(!memcmp(gpu, x, n * 4), "F32 -> F32 is not a copy");
    free(gpu), free(x);
    Error e = {{0}};
    void *d = cuda_alloc(64);
    CHECK(convert_to_f32_cuda(ST_I32, d, d, 4, &e) == -1 && strstr(e.msg, "convert.cu"), "I32 accepted: %s", e.msg);
    CHECK(convert_from_f32_cuda(ST_F8_E4M3, d, d, 4, &e) == -1, "F32 -> F8 accepted");
    CHECK(convert_to_f32_cuda(ST_F16, d, d, 0, &e) == 0, "n = 0 is not a no-op");
    cuda_sync();
    cuda_free(d);
}

int main(void) {
    if (!gpu_test_start("gpu_test_convert", NULL)) return 0;
    RUN_TEST(test_f16_all_patterns);
    RUN_TEST(test_bf16_all_patterns);
    RUN_TEST(test_f8e4m3_all_patterns);
    RUN_TEST(test_f32_to_f16_random);
    RUN_TEST(test_f32_to_bf16_random);
    RUN_TEST(test_to_f32_random_large);
    RUN_TEST(test_f32_copy_and_errors);
    return test_summary();
}
