// gpu_test_dequant.c — the CUDA dequantiser (kernels/actquant.cu) against the CPU reference
// (kernels/actquant.c), bit for bit (NaN equal to NaN for raw f32/bf16/f16 words): every
// encoding, plain and byte-plane layouts, odd row lengths and int4 groups that do not divide
// them, sizes past the grid-stride cap; random bytes with valid scales (every int8/int4 pattern,
// every E4M3 code but NaN, subnormal and large scales), and real chunks of shards written by the
// writer and read back with encoded_only. Needs a GPU; without one it prints a SKIP line.
#include <stdint.h>

#include "actquant.h"
#include "actshard.h"
#include "gpu_check.h"
#include "cuda_common.h"
#include "gpu_ctx.h"

static GpuCtx G;


// Decodes rows on the GPU and compares with the CPU; returns the differing values.
static size_t compare(const char *what, const ActqLayout *lay, const uint8_t *vals, size_t vals_n,
                      const uint8_t *scales, size_t scales_n, size_t rows) {
    size_t n = rows * lay->d, bad_row = 0;
    float *cpu = malloc(n * sizeof(float) + 4), *gpu = malloc(n * sizeof(float) + 4);
    CHECK(actq_decode_rows(lay, vals, scales, rows, cpu, &bad_row) == 0, "%s: CPU rejects row %zu", what, bad_row);
    uint8_t *d_vals = cuda_alloc(vals_n + 1), *d_scales = cuda_alloc(scales_n + 1);
    float *d_out = cuda_alloc(n * sizeof(float) + 4);
    cuda_upload(d_vals, vals, vals_n);
    if (scales_n) cuda_upload(d_scales, scales, scales_n);
    Error e = {{0}};
    CHECK(actq_decode_rows_cuda(&G, lay, d_vals, d_scales, rows, d_out, &e) == 0, "%s: %s", what, e.msg);
    CHECK(gpu_ctx_sync(&G, &e) == 0, "%s: %s", what, e.msg);
    cuda_download(gpu, d_out, n * sizeof(float));
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(cpu[i]) && isnan(gpu[i])) continue;
        if (f32_bits(cpu[i]) != f32_bits(gpu[i]) && diff++ < 3)
            printf("  %s [%zu]: gpu %.9g (0x%08x) cpu %.9g (0x%08x)\n", what, i, (double)gpu[i], f32_bits(gpu[i]),
                   (double)cpu[i], f32_bits(cpu[i]));
    }
    CHECK(diff == 0, "%s: %zu of %zu values differ", what, diff, n);
    cuda_free(d_vals), cuda_free(d_scales), cuda_free(d_out);
    free(cpu), free(gpu);
    return diff;
}

// A random valid scale word: the whole range up to 2^96, subnormals and zero included.
static uint16_t random_scale(uint64_t *r) {
    uint32_t k = rng_u32(r) % 16;
    if (k == 0) return 0;
    if (k == 1) return (uint16_t)(rng_u32(r) % 0x80);  // bf16 subnormals
    return (uint16_t)(rng_u32(r) % (ACTQ_MAX_SCALE_BITS + 1));
}

static void random_case(int enc, uint32_t param, size_t d, size_t rows, int planes, uint64_t *r) {
    size_t es = actq_elem_bytes(enc), rb = actq_row_bytes(enc, d), ns = actq_row_scales(enc, param, d);
    size_t vals_n = rows * rb, scales_n = rows * ns * 2;
    uint8_t *vals = malloc(vals_n + 1), *scales = malloc(scales_n + 1);
    for (size_t i = 0; i < vals_n; i++) {
        uint8_t b = (uint8_t)rng_u32(r);
        if (enc == ACT_FP8 && (b & 0x7f) == 0x7f) b ^= 1;  // NaN codes are rejected, never decoded
        vals[i] = b;
    }
    for (size_t i = 0; i < rows * ns; i++) {
        uint16_t w = random_scale(r);
        if (planes) scales[i] = (uint8_t)w, scales[rows * ns + i] = (uint8_t)(w >> 8);
        else scales[2 * i] = (uint8_t)w, scales[2 * i + 1] = (uint8_t)(w >> 8);
    }
    ActqLayout lay = {.enc = enc, .param = param, .d = d, .val_planes = planes && es > 1 ? rows * d : 0,
                      .scale_planes = planes ? rows * ns : 0};
    char what[96];
    snprintf(what, sizeof what, "%s param %u d %zu rows %zu%s", act_dtype_name((ActDtype)enc), param, d, rows,
             planes ? " planes" : "");
    // plain f32/bf16/f16 words must be aligned: malloc's are
    compare(what, &lay, vals, vals_n, scales, scales_n, rows);
    free(vals), free(scales);
}

static void test_random_bytes(void) {
    uint64_t r = 0x9e3779b97f4a7c15ULL;
    static const size_t ds[] = {1, 3, 64, 129, 2048};
    struct {
        int enc;
        uint32_t param;
    } encs[] = {{ACT_F32, 0}, {ACT_BF16, 0}, {ACT_F16, 0}, {ACT_INT8, 127}, {ACT_FP8, 0},
                {ACT_INT4, 32}, {ACT_INT4, 5}, {ACT_INT4, 1}};
    for (size_t k = 0; k < sizeof encs / sizeof encs[0]; k++)
        for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++)
            for (int planes = 0; planes < 2; planes++)
                random_case(encs[k].enc, encs[k].param, ds[di], ds[di] > 1000 ? 64 : 300, planes, &r);
}

// More values than one grid-stride pass covers (64K blocks x 256 threads = 16.7M).
static void test_large(void) {
    uint64_t r = 12345;
    random_case(ACT_INT8, 127, 4096, 5000, 0, &r);  // 20.5M values
    random_case(ACT_INT4, 32, 4096, 5000, 1, &r);
}

// Every int8 value and E4M3 code times a few scales, every int4 nibble pair.
static void test_all_codes(void) {
    uint8_t vals[256], scales[8];
    uint16_t sw[4] = {0x3f80, 0x0001, 0x6f80, 0x2b5a};  // 1, smallest subnormal, 2^96, something
    for (int i = 0; i < 256; i++) vals[i] = (uint8_t)i;
    for (int k = 0; k < 4; k++) scales[2 * k] = (uint8_t)sw[k], scales[2 * k + 1] = (uint8_t)(sw[k] >> 8);
    ActqLayout i8 = {.enc = ACT_INT8, .param = 127, .d = 64}, i4 = {.enc = ACT_INT4, .param = 128, .d = 128};
    compare("int8 all codes", &i8, vals, 256, scales, 8, 4);
    compare("int4 all nibble pairs", &i4, vals, 256, scales, 8, 4);
    uint8_t f8[4 * 64];
    int n = 0;
    for (int i = 0; i < 256; i++)
        if ((i & 0x7f) != 0x7f) f8[n++] = (uint8_t)i;
    while (n < 256) f8[n] = f8[n - 254], n++;
    ActqLayout fp = {.enc = ACT_FP8, .d = 64};
    compare("fp8 all codes", &fp, f8, 256, scales, 8, 4);
}

// Real chunks: the writer's bytes, read back without decoding, decoded on both sides.
static void test_real_chunks(void) {
    int layers[3] = {0, 3, 7};
    size_t n = 300, d = 96, L = 3;
    float *in = malloc(L * n * d * 4), *out = malloc(L * n * d * 4);
    uint64_t r = 77;
    for (size_t i = 0; i < L * n * d; i++) {
        in[i] = (float)((int32_t)rng_u32(&r)) * 0x1p-31f * (i % 7 == 0 ? 40 : 1);
        out[i] = (float)((int32_t)rng_u32(&r)) * 0x1p-40f;
    }
    uint32_t *tok = calloc(n, 4), *pos = calloc(n, 4);
    uint64_t *doc = calloc(n, 8);
    struct {
        ActDtype dt;
        uint32_t param;
        int shuffle;
    } encs[] = {{ACT_INT8, 127, 0}, {ACT_INT8, 31, 1}, {ACT_FP8, 0, 0}, {ACT_INT4, 32, 1},
                {ACT_INT4, 7, -1},  {ACT_BF16, 0, 1},  {ACT_F16, 0, -1}, {ACT_F32, 0, 1}};
    for (size_t k = 0; k < sizeof encs / sizeof encs[0]; k++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        Error e = {{0}};
        ActShardWriterOptions o = {.in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = 3, .layers = layers,
                                   .d_model = (int)d, .dtype = encs[k].dt, .enc_param = encs[k].param,
                                   .shuffle = encs[k].shuffle, .chunk_tokens = 128};
        ActShardWriter *w = actshard_writer_open_stream(f, "mem.acts", &o, &e);
        CHECK(w && actshard_write(w, n, tok, doc, pos, in, out, &e) == 0 && actshard_writer_close(w, &e) == 0, "%s",
              e.msg);
        fclose(f);
        ActShard s;
        if (actshard_open_mem(&s, buf, len, "mem.acts", &e)) {
            CHECK(0, "%s", e.msg);
            free(buf);
            continue;
        }
        ActChunk c = {.encoded_only = 1};
        for (uint64_t i = 0; i < s.n_chunks; i++) {
            CHECK(!actshard_read_chunk(&s, i, &c, &e), "%s", e.msg);
            size_t ns = actq_row_scales(s.dtype, s.enc_param, d), es = actq_elem_bytes(s.dtype);
            for (size_t b = 0; b < 2 * L; b++) {
                ActqLayout lay = {.enc = s.dtype,
                                  .param = s.enc_param,
                                  .d = d,
                                  .val_planes = c.planes && es > 1 ? c.n * d : 0,
                                  .scale_planes = c.planes ? c.n * ns : 0};
                char what[64];
                snprintf(what, sizeof what, "real %s chunk %llu block %zu", act_dtype_name(s.dtype),
                         (unsigned long long)i, b);
                compare(what, &lay, c.vals + b * c.val_block, c.val_block, c.scales + b * c.scale_block, c.scale_block,
                        c.n);
            }
        }
        actchunk_free(&c);
        actshard_close(&s);
        free(buf);
    }
    free(in), free(out), free(tok), free(pos), free(doc);
}

static void test_errors(void) {
    Error e = {{0}};
    ActqLayout lay = {.enc = 9, .d = 4};
    CHECK(actq_decode_rows_cuda(&G, &lay, NULL, NULL, 1, NULL, &e) == -1 &&
              strstr(e.msg, "actquant.cu: unknown encoding 9"),
          "%s", e.msg);
    lay.enc = ACT_INT8;
    CHECK(actq_decode_rows_cuda(&G, &lay, NULL, NULL, 0, NULL, &e) == 0, "0 rows is not a no-op");
}

int main(void) {
    if (!gpu_test_start("gpu_test_dequant", &G)) return 0;
    RUN_TEST(test_all_codes);
    RUN_TEST(test_random_bytes);
    RUN_TEST(test_large);
    RUN_TEST(test_real_chunks);
    RUN_TEST(test_errors);
    gpu_ctx_free(&G);
    return test_summary();
}
