// test_gguf.c — the GGUF reader, dequantizers, tokenizer conversion and Llama mapping.
// GGUF files are built here byte by byte (a tiny writer below) for every metadata value type,
// nested arrays, custom alignment and each dequantized type, whose results are compared with a
// reference written here from the block definitions (element by element, independently of
// gguf_dequant.c). A file written by gguf-py (tests/golden/gguf/quant_types.gguf) is compared
// with gguf-py's own dequantization. Broken files (every truncation, bad magic/version, absurd
// counts and lengths, bad offsets, unknown types, duplicates) must give errors naming the file.
#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "convert.h"
#include "gguf.h"
#include "gguf_llama.h"
#include "gguf_tokenizer.h"
#include "model.h"
#include "safetensors.h"
#include "tokenizer.h"

// ---- a minimal GGUF writer --------------------------------------------------------------------

typedef struct {
    uint8_t *p;
    size_t n, cap;
} Buf;

static void put(Buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u8(Buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u32(Buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(Buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(Buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void kv_head(Buf *b, const char *key, uint32_t type) {
    put_str(b, key);
    put_u32(b, type);
}
static void kv_u32(Buf *b, const char *key, uint32_t v) { kv_head(b, key, GGUF_U32); put_u32(b, v); }
static void kv_f32(Buf *b, const char *key, float v) { kv_head(b, key, GGUF_F32); put(b, &v, 4); }
static void kv_str(Buf *b, const char *key, const char *v) { kv_head(b, key, GGUF_STRING); put_str(b, v); }
static void kv_bool(Buf *b, const char *key, int v) { kv_head(b, key, GGUF_BOOL); put_u8(b, (uint8_t)v); }
static void kv_strs(Buf *b, const char *key, const char *const *v, int n) {
    kv_head(b, key, GGUF_ARRAY);
    put_u32(b, GGUF_STRING);
    put_u64(b, (uint64_t)n);
    for (int i = 0; i < n; i++) put_str(b, v[i]);
}
static void kv_i32s(Buf *b, const char *key, const int32_t *v, int n) {
    kv_head(b, key, GGUF_ARRAY);
    put_u32(b, GGUF_I32);
    put_u64(b, (uint64_t)n);
    put(b, v, 4 * (size_t)n);
}

typedef struct {
    const char *name;
    uint32_t type;
    int n_dims;
    uint64_t ne[5];  // room for one dimension too many
    const void *data;
    size_t nbytes;
} TInfo;

// header + kvs (n_kv entries, pre-serialized) + tensor infos + padding + data, offsets aligned.
static Buf build(const Buf *kvs, uint64_t n_kv, const TInfo *ts, int n_t, uint32_t align) {
    Buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, (uint64_t)n_t);
    put_u64(&b, n_kv);
    if (kvs && kvs->n) put(&b, kvs->p, kvs->n);
    uint64_t off = 0;
    for (int i = 0; i < n_t; i++) {
        put_str(&b, ts[i].name);
        put_u32(&b, (uint32_t)ts[i].n_dims);
        for (int d = 0; d < ts[i].n_dims; d++) put_u64(&b, ts[i].ne[d]);
        put_u32(&b, ts[i].type);
        put_u64(&b, off);
        off += (ts[i].nbytes + align - 1) / align * align;
    }
    while (b.n % align) put_u8(&b, 0);
    for (int i = 0; i < n_t; i++) {
        put(&b, ts[i].data, ts[i].nbytes);
        while (i + 1 < n_t && (b.n % align)) put_u8(&b, 0);
    }
    return b;
}

// ---- reference dequantization, element by element from the block definitions ------------------

static float h2f(const uint8_t *p) { return f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

static float ref_weight(uint32_t type, const uint8_t *blocks, uint64_t i) {
    switch (type) {
        case GGML_TYPE_F32: { float f; memcpy(&f, blocks + 4 * i, 4); return f; }
        case GGML_TYPE_F16: return h2f(blocks + 2 * i);
        case GGML_TYPE_BF16: {
            uint32_t u = (uint32_t)(blocks[2 * i] | blocks[2 * i + 1] << 8) << 16;
            return f32_from_bits(u);
        }
        case GGML_TYPE_Q8_0: {
            const uint8_t *b = blocks + (i / 32) * 34;
            return (float)(int8_t)b[2 + i % 32] * h2f(b);
        }
        case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: {
            int q1 = type == GGML_TYPE_Q4_1;
            const uint8_t *b = blocks + (i / 32) * (q1 ? 20 : 18);
            int j = (int)(i % 32);
            int nib = j < 16 ? b[(q1 ? 4 : 2) + j] & 15 : b[(q1 ? 4 : 2) + j - 16] >> 4;
            return q1 ? (float)nib * h2f(b) + h2f(b + 2) : (float)(nib - 8) * h2f(b);
        }
        case GGML_TYPE_Q4_K: {
            const uint8_t *b = blocks + (i / 256) * 144, *sc = b + 4;
            int r = (int)(i % 256), sub = r / 32, chunk = r / 64;
            uint8_t byte = b[16 + 32 * chunk + r % 32];
            int q = (sub % 2) ? byte >> 4 : byte & 15;
            // 6-bit scale and min of sub-block `sub`: the low 6 bits of bytes 0-3 (scales 0-3)
            // and 4-7 (mins 0-3); scales/mins 4-7 take their low 4 bits from bytes 8-11 and their
            // top 2 bits from the top bits of bytes 0-3 / 4-7.
            int scale, min;
            if (sub < 4) {
                scale = sc[sub] & 0x3f;
                min = sc[sub + 4] & 0x3f;
            } else {
                scale = (sc[sub + 4] & 0x0f) + 16 * (sc[sub - 4] >> 6);
                min = (sc[sub + 4] >> 4) + 16 * (sc[sub] >> 6);
            }
            return h2f(b) * (float)scale * (float)q - h2f(b + 2) * (float)min;
        }
        case GGML_TYPE_Q6_K: {
            const uint8_t *b = blocks + (i / 256) * 210;
            int r = (int)(i % 256), h = r / 128, g = (r % 128) / 32, l = r % 32;
            uint8_t lo_byte = b[64 * h + l + 32 * (g & 1)];
            int lo = g < 2 ? lo_byte & 15 : lo_byte >> 4;
            int hi = (b[128 + 32 * h + l] >> (2 * g)) & 3;
            return h2f(b + 208) * (float)(int8_t)b[192 + r / 16] * (float)(lo + 16 * hi - 32);
        }
    }
    return NAN;
}

// Random blocks whose f16 fields are finite (some subnormal, both signs).
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) { return rng_u32(&rng_state); }
static void put_f16_at(uint8_t *p, int k) {
    float v = ((float)(rnd() % 2001) - 1000.0f) * 1e-4f;
    if (k % 5 == 0) v = (k % 2 ? -1 : 1) * 3e-6f;  // subnormal half
    uint16_t h = f32_to_f16(v);
    memcpy(p, &h, 2);
}
static uint8_t *random_tensor(uint32_t type, uint64_t n, size_t *nbytes) {
    const GgmlTypeInfo *ti = ggml_type_info(type);
    uint64_t nb = n / (uint64_t)ti->block_size;
    *nbytes = (size_t)(nb * (uint64_t)ti->type_size);
    uint8_t *d = malloc(*nbytes);
    for (size_t i = 0; i < *nbytes; i++) d[i] = (uint8_t)rnd();
    for (uint64_t k = 0; k < nb; k++) {
        uint8_t *b = d + k * (uint64_t)ti->type_size;
        switch (type) {
            case GGML_TYPE_F32: { float f = ((float)(rnd() % 20001) - 10000.0f) * 1e-3f; memcpy(b, &f, 4); break; }
            case GGML_TYPE_F16: put_f16_at(b, (int)k); break;
            case GGML_TYPE_BF16: {
                uint16_t h = f32_to_bf16(((float)(rnd() % 2001) - 1000.0f) * 1e-2f);
                memcpy(b, &h, 2);
                break;
            }
            case GGML_TYPE_Q8_0: case GGML_TYPE_Q4_0: put_f16_at(b, (int)k); break;
            case GGML_TYPE_Q4_1: case GGML_TYPE_Q4_K: put_f16_at(b, (int)k); put_f16_at(b + 2, (int)k + 1); break;
            case GGML_TYPE_Q6_K: put_f16_at(b + 208, (int)k); break;
        }
    }
    return d;
}

static const uint32_t DEQ_TYPES[] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0,
                                     GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K};
#define N_DEQ (int)(sizeof DEQ_TYPES / sizeof *DEQ_TYPES)

// ---- tests ------------------------------------------------------------------------------------

static void test_type_table(void) {
    // sizes from ggml.c's type_traits (blck_size, type_size)
    struct {
        uint32_t t;
        int bs, ts;
    } want[] = {{0, 1, 4},      {1, 1, 2},      {2, 32, 18},    {3, 32, 20},    {6, 32, 22},
                {7, 32, 24},    {8, 32, 34},    {9, 32, 36},    {10, 256, 84},  {11, 256, 110},
                {12, 256, 144}, {13, 256, 176}, {14, 256, 210}, {15, 256, 292}, {30, 1, 2}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const GgmlTypeInfo *ti = ggml_type_info(want[i].t);
        CHECK(ti && ti->block_size == want[i].bs && ti->type_size == want[i].ts, "type %u", want[i].t);
    }
    CHECK(!ggml_type_info(4) && !ggml_type_info(5) && !ggml_type_info(31) && !ggml_type_info(1000), "removed types");
}

static void test_dequant_reference(void) {
    for (int k = 0; k < N_DEQ; k++) {
        uint32_t type = DEQ_TYPES[k];
        uint64_t n = 4 * 256;
        size_t nbytes;
        uint8_t *raw = random_tensor(type, n, &nbytes);
        // unaligned source: the reader hands out pointers into an mmapped file at any offset
        uint8_t *shifted = malloc(nbytes + 1);
        memcpy(shifted + 1, raw, nbytes);
        float *out = malloc(n * sizeof(float));
        CHECK(ggml_dequantize(type, shifted + 1, out, n) == 0, "%s dequantizes", ggml_type_info(type)->name);
        int bad = 0;
        for (uint64_t i = 0; i < n; i++) {
            float want = ref_weight(type, raw, i);
            if (memcmp(&want, &out[i], 4) && bad++ < 3)
                CHECK(0, "%s weight %llu: %.9g, reference %.9g", ggml_type_info(type)->name, (unsigned long long)i,
                      out[i], want);
        }
        CHECK(bad == 0, "%s: %d of %llu weights differ", ggml_type_info(type)->name, bad, (unsigned long long)n);
        free(raw);
        free(shifted);
        free(out);
    }
    float dummy[32];
    CHECK(ggml_dequantize(GGML_TYPE_Q5_0, dummy, dummy, 32) == -1, "q5_0 is not dequantized");
}

// Known values: a hand-made block of each kind.
static void test_dequant_known_values(void) {
    uint8_t q40[18] = {0};
    uint16_t two = f32_to_f16(2.0f), half = f32_to_f16(0.5f), one = f32_to_f16(1.0f);
    memcpy(q40, &two, 2);
    q40[2] = 0x9f;  // low nibble 15 -> (15-8)*2 = 14 (w0); high nibble 9 -> (9-8)*2 = 2 (w16)
    float out[256];
    dequant_q4_0(q40, out, 32);
    CHECK(out[0] == 14.0f && out[16] == 2.0f && out[1] == -16.0f, "q4_0: %g %g %g", out[0], out[16], out[1]);
    uint8_t q41[20] = {0};
    memcpy(q41, &half, 2);
    memcpy(q41 + 2, &one, 2);
    q41[4 + 3] = 0x4a;  // w3 = 10*0.5+1 = 6, w19 = 4*0.5+1 = 3
    dequant_q4_1(q41, out, 32);
    CHECK(out[3] == 6.0f && out[19] == 3.0f && out[0] == 1.0f, "q4_1: %g %g %g", out[3], out[19], out[0]);
    uint8_t q80[34] = {0};
    memcpy(q80, &half, 2);
    q80[2 + 5] = (uint8_t)-7;
    dequant_q8_0(q80, out, 32);
    CHECK(out[5] == -3.5f && out[0] == 0.0f, "q8_0: %g", out[5]);
    // Q4_K: d=1, dmin=0.5; sub-block 5 scale = (scales[9] & 15) | (scales[1] >> 6) << 4 = 3 | 2<<4 = 35,
    // min = (scales[9] >> 4) | (scales[5] >> 6) << 4 = 1 | 1<<4 = 17; weight 5*32+7 = 167 is in chunk 2's
    // high nibbles: qs[64 + 7] >> 4 = 12 -> 1*35*12 - 0.5*17 = 411.5
    uint8_t q4k[144] = {0};
    memcpy(q4k, &one, 2);
    memcpy(q4k + 2, &half, 2);
    q4k[4 + 9] = 0x13;
    q4k[4 + 1] = 0x80;
    q4k[4 + 5] = 0x40;
    q4k[16 + 64 + 7] = 0xc0;
    dequant_q4_k(q4k, out, 256);
    CHECK(out[167] == 411.5f, "q4_K weight 167: %g", out[167]);
    // Q6_K: d=0.5; weight 128+64+3 = 195: h=1, g=2, l=3 -> low = ql[64+3] >> 4, high = (qh[32+3] >> 4) & 3,
    // scale = scales[195/16 = 12]
    uint8_t q6k[210] = {0};
    memcpy(q6k + 208, &half, 2);
    q6k[64 + 3] = 0x50;        // low 4 bits 5
    q6k[128 + 32 + 3] = 0x20;  // high 2 bits 2 -> q = 5 + 32 - 32 = 5
    q6k[192 + 12] = (uint8_t)-3;
    dequant_q6_k(q6k, out, 256);
    CHECK(out[195] == -7.5f && out[0] == 0.5f * 0 * -32.0f, "q6_K weight 195: %g", out[195]);
}

static Error err;

static int parse_buf(Gguf *g, const Buf *b) {
    memset(&err, 0, sizeof err);
    return gguf_parse(g, b->p, b->n, "mem.gguf", &err);
}

// A file with one key of each value type, arrays (scalar, string, nested) and one tensor of each
// dequantized type, alignment 64.
static Buf metadata_kvs(uint64_t *n) {
    Buf k = {0};
    kv_head(&k, "t.u8", GGUF_U8); put_u8(&k, 200);
    kv_head(&k, "t.i8", GGUF_I8); put_u8(&k, (uint8_t)-100);
    kv_head(&k, "t.u16", GGUF_U16); { uint16_t v = 60000; put(&k, &v, 2); }
    kv_head(&k, "t.i16", GGUF_I16); { int16_t v = -30000; put(&k, &v, 2); }
    kv_head(&k, "t.u32", GGUF_U32); put_u32(&k, 4000000000u);
    kv_head(&k, "t.i32", GGUF_I32); put_u32(&k, (uint32_t)-2000000000);
    kv_f32(&k, "t.f32", 0.15625f);
    kv_bool(&k, "t.bool", 1);
    kv_str(&k, "t.str", "h\xc3\xa9llo");
    kv_head(&k, "t.u64", GGUF_U64); put_u64(&k, 18000000000000000000ull);
    kv_head(&k, "t.i64", GGUF_I64); put_u64(&k, (uint64_t)-9000000000000000000ll);
    kv_head(&k, "t.f64", GGUF_F64); { double v = -2.5e-300; put(&k, &v, 8); }
    int32_t ints[3] = {1, -2, 3};
    kv_i32s(&k, "t.arr_i32", ints, 3);
    const char *strs[3] = {"a", "", "xyz"};
    kv_strs(&k, "t.arr_str", strs, 3);
    kv_head(&k, "t.nested", GGUF_ARRAY);  // [[1, 2], [], [[7]] as array of arrays of ...] -> [[u16 1,2], [u16]]
    put_u32(&k, GGUF_ARRAY);
    put_u64(&k, 2);
    put_u32(&k, GGUF_U16); put_u64(&k, 2); { uint16_t v[2] = {1, 2}; put(&k, v, 4); }
    put_u32(&k, GGUF_U16); put_u64(&k, 0);
    kv_head(&k, "t.empty", GGUF_ARRAY); put_u32(&k, GGUF_F64); put_u64(&k, 0);
    kv_u32(&k, "general.alignment", 64);
    *n = 17;
    return k;
}

static void test_metadata_and_tensors(void) {
    uint64_t n_kv;
    Buf kvs = metadata_kvs(&n_kv);
    TInfo ts[N_DEQ];
    uint8_t *raws[N_DEQ];
    char names[N_DEQ][32];
    for (int k = 0; k < N_DEQ; k++) {
        size_t nb;
        raws[k] = random_tensor(DEQ_TYPES[k], 3 * 256, &nb);
        snprintf(names[k], sizeof names[k], "w.%s", ggml_type_info(DEQ_TYPES[k])->name);
        ts[k] = (TInfo){names[k], DEQ_TYPES[k], 2, {256, 3, 1, 1}, raws[k], nb};
    }
    Buf f = build(&kvs, n_kv, ts, N_DEQ, 64);
    Gguf g;
    int rc = parse_buf(&g, &f);
    CHECK(rc == 0, "parse: %s", err.msg);
    if (rc) return;
    CHECK(g.version == 3 && g.alignment == 64 && g.n_kv == n_kv && g.n_tensors == N_DEQ, "header");
    CHECK(g.data_offset % 64 == 0, "data offset %llu aligned", (unsigned long long)g.data_offset);
    int64_t iv;
    double dv;
    GgufStr sv;
    int bv;
    CHECK(gguf_get_int(&g, "t.u8", &iv, &err) == 0 && iv == 200, "u8");
    CHECK(gguf_get_int(&g, "t.i8", &iv, &err) == 0 && iv == -100, "i8");
    CHECK(gguf_get_int(&g, "t.u16", &iv, &err) == 0 && iv == 60000, "u16");
    CHECK(gguf_get_int(&g, "t.i16", &iv, &err) == 0 && iv == -30000, "i16");
    CHECK(gguf_get_int(&g, "t.u32", &iv, &err) == 0 && iv == 4000000000ll, "u32");
    CHECK(gguf_get_int(&g, "t.i32", &iv, &err) == 0 && iv == -2000000000, "i32");
    CHECK(gguf_get_float(&g, "t.f32", &dv, &err) == 0 && dv == 0.15625, "f32");
    CHECK(gguf_get_bool(&g, "t.bool", &bv, &err) == 0 && bv == 1, "bool");
    CHECK(gguf_get_str(&g, "t.str", &sv, &err) == 0 && sv.len == 6 && !memcmp(sv.ptr, "h\xc3\xa9llo", 6), "string");
    CHECK(gguf_get_int(&g, "t.u64", &iv, &err) == -1 && strstr(err.msg, "too large"), "u64 above int64: %s", err.msg);
    CHECK(gguf_find_kv(&g, "t.u64")->value.u == 18000000000000000000ull, "u64 raw");
    CHECK(gguf_get_int(&g, "t.i64", &iv, &err) == 0 && iv == -9000000000000000000ll, "i64");
    CHECK(gguf_get_float(&g, "t.f64", &dv, &err) == 0 && dv == -2.5e-300, "f64");
    CHECK(gguf_get_int(&g, "missing", &iv, &err) == 1, "absent key");
    CHECK(gguf_get_int(&g, "t.str", &iv, &err) == -1 && strstr(err.msg, "mem.gguf") && strstr(err.msg, "t.str") &&
              strstr(err.msg, "string"), "type mismatch: %s", err.msg);
    const GgufValue *a;
    CHECK(gguf_get_array(&g, "t.arr_i32", GGUF_I32, &a, &err) == 0 && a->arr.n == 3 && gguf_array_int(a, 1) == -2 &&
              gguf_array_float(a, 2) == 3.0, "i32 array");
    CHECK(gguf_get_array(&g, "t.arr_i32", GGUF_STRING, &a, &err) == -1 && strstr(err.msg, "array of i32"), "%s",
          err.msg);
    CHECK(gguf_get_array(&g, "t.arr_str", GGUF_STRING, &a, &err) == 0 && a->arr.n == 3 && a->arr.items[1].s.len == 0 &&
              a->arr.items[2].s.len == 3 && !memcmp(a->arr.items[2].s.ptr, "xyz", 3), "string array");
    CHECK(gguf_get_array(&g, "t.nested", GGUF_ARRAY, &a, &err) == 0 && a->arr.n == 2 &&
              a->arr.items[0].arr.type == GGUF_U16 && a->arr.items[0].arr.n == 2 &&
              gguf_array_int(&a->arr.items[0], 1) == 2 && a->arr.items[1].arr.n == 0, "nested array");
    CHECK(gguf_get_array(&g, "t.empty", GGUF_F64, &a, &err) == 0 && a->arr.n == 0, "empty array");
    for (int k = 0; k < N_DEQ; k++) {
        const GgufTensor *t = gguf_find_tensor(&g, names[k]);
        CHECK(t && t->numel == 768 && t->n_dims == 2 && t->ne[0] == 256 && t->ne[1] == 3 && t->offset % 64 == 0 &&
                  (t->data - (const uint8_t *)f.p) % 64 == 0, "tensor %s info", names[k]);
        if (!t) continue;
        float out[768];
        CHECK(gguf_tensor_to_f32(&g, t, out, &err) == 0, "%s", err.msg);
        int bad = 0;
        for (int i = 0; i < 768; i++) {
            float want = ref_weight(DEQ_TYPES[k], raws[k], (uint64_t)i);
            bad += memcmp(&want, &out[i], 4) != 0;
        }
        CHECK(bad == 0, "%s: %d weights differ from the reference", names[k], bad);
    }
    gguf_close(&g);
    for (int k = 0; k < N_DEQ; k++) free(raws[k]);
    free(f.p);
    free(kvs.p);
}

// The file gguf-py wrote, against gguf-py's dequantization.
static void test_gguf_py_file(void) {
    Gguf g;
    const char *path = "tests/golden/gguf/quant_types.gguf";
    int rc = gguf_open(&g, path, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (rc) return;
    SafeTensors st;
    rc = safetensors_open(&st, "tests/golden/gguf/quant_types.expected.safetensors", &err);
    CHECK(rc == 0, "%s", err.msg);
    if (rc) { gguf_close(&g); return; }
    CHECK(g.alignment == 64 && g.n_tensors == 8, "alignment %u, %llu tensors", g.alignment,
          (unsigned long long)g.n_tensors);
    int64_t iv;
    double dv;
    GgufStr sv;
    const GgufValue *a;
    CHECK(gguf_get_int(&g, "test.i8", &iv, &err) == 0 && iv == -100, "i8");
    CHECK(gguf_get_int(&g, "test.u32", &iv, &err) == 0 && iv == 4000000000ll, "u32");
    CHECK(gguf_get_int(&g, "test.i64", &iv, &err) == 0 && iv == -9000000000000000000ll, "i64");
    CHECK(gguf_get_float(&g, "test.f64", &dv, &err) == 0 && dv == -2.5e-300, "f64");
    CHECK(gguf_get_str(&g, "test.string", &sv, &err) == 0 && sv.len == 13 &&
              !memcmp(sv.ptr, "h\xc3\xa9llo\nw\xc3\xb6rld", 13),
          "string");
    CHECK(gguf_get_array(&g, "test.arr_nested", GGUF_ARRAY, &a, &err) == 0 && a->arr.n == 2 &&
              a->arr.items[0].arr.n == 2 && gguf_array_int(&a->arr.items[1], 0) == 3, "nested: %s", err.msg);
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const GgufTensor *t = &g.tensors[i];
        const StTensor *want = safetensors_find(&st, t->name);
        CHECK(want && want->numel == t->numel, "%s expected", t->name);
        if (!want || want->numel != t->numel) continue;
        float *out = malloc(t->numel * sizeof(float)), *ref = malloc(t->numel * sizeof(float));
        CHECK(gguf_tensor_to_f32(&g, t, out, &err) == 0, "%s", err.msg);
        safetensors_to_f32(&st, want, ref, t->numel, &err);
        CHECK(!memcmp(out, ref, t->numel * sizeof(float)), "%s differs from gguf-py", t->name);
        free(out);
        free(ref);
    }
    safetensors_close(&st);
    gguf_close(&g);
}

// ---- broken files -----------------------------------------------------------------------------

static void expect_fail(const Buf *b, const char *want, const char *what) {
    Gguf g;
    int rc = parse_buf(&g, b);
    CHECK(rc == -1, "%s: parsed", what);
    if (!rc) { gguf_close(&g); return; }
    CHECK(strstr(err.msg, "mem.gguf") != NULL, "%s: error does not name the file: %s", what, err.msg);
    CHECK(strstr(err.msg, want) != NULL, "%s: error '%s' lacks '%s'", what, err.msg, want);
}

static Buf header(uint32_t version, uint64_t n_t, uint64_t n_kv) {
    Buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, version);
    put_u64(&b, n_t);
    put_u64(&b, n_kv);
    return b;
}

static void test_bad_headers(void) {
    Buf b = header(3, 0, 0);
    Gguf g;
    CHECK(parse_buf(&g, &b) == 0, "empty but valid: %s", err.msg);
    gguf_close(&g);
    b.p[0] = 'X';
    expect_fail(&b, "bad magic", "magic");
    b.p[0] = 'G';
    memcpy(b.p + 4, &(uint32_t){1}, 4);
    expect_fail(&b, "version 1", "v1");
    memcpy(b.p + 4, &(uint32_t){4}, 4);
    expect_fail(&b, "unsupported GGUF version 4", "v4");
    memcpy(b.p + 4, &(uint32_t){0x03000000}, 4);
    expect_fail(&b, "big-endian", "big-endian");
    Buf empty = {0};
    expect_fail(&empty, "empty", "empty");
    free(b.p);
    b = header(3, 0, 1000000);
    expect_fail(&b, "metadata entries", "absurd n_kv");
    free(b.p);
    b = header(3, UINT64_MAX, 0);
    expect_fail(&b, "tensors", "absurd n_tensors");
    free(b.p);
    b = header(2, 0, 0);
    CHECK(parse_buf(&g, &b) == 0 && g.version == 2, "version 2 accepted: %s", err.msg);
    gguf_close(&g);
    free(b.p);
}

// Builds header(3, n_t, 1) + one key + given tail.
static Buf one_kv(void (*fill)(Buf *)) {
    Buf b = header(3, 0, 1);
    fill(&b);
    return b;
}
static void f_long_string(Buf *b) { kv_head(b, "k", GGUF_STRING); put_u64(b, 1ull << 60); put(b, "abc", 3); }
static void f_bad_vtype(Buf *b) { kv_head(b, "k", 13); put_u32(b, 0); }
static void f_big_array(Buf *b) {
    kv_head(b, "k", GGUF_ARRAY);
    put_u32(b, GGUF_U64);
    put_u64(b, 1ull << 62);
    put_u64(b, 0);
}
static void f_bad_elem(Buf *b) { kv_head(b, "k", GGUF_ARRAY); put_u32(b, 77); put_u64(b, 1); put_u64(b, 0); }
static void f_bool2(Buf *b) { kv_bool(b, "k", 2); }
static void f_empty_key(Buf *b) { kv_head(b, "", GGUF_U16); put_u8(b, 0); put_u8(b, 0); }
static void f_deep(Buf *b) {
    kv_head(b, "deep", GGUF_ARRAY);
    for (int d = 0; d < 12; d++) { put_u32(b, GGUF_ARRAY); put_u64(b, 1); }
    put_u32(b, GGUF_U8); put_u64(b, 0);
}
static void f_str_array_trunc(Buf *b) {
    kv_head(b, "k", GGUF_ARRAY); put_u32(b, GGUF_STRING); put_u64(b, 3);
    put_str(b, "one"); put_str(b, "two"); put_u64(b, 100); put(b, "x", 1);
}
static void f_align_type(Buf *b) { kv_head(b, "general.alignment", GGUF_U64); put_u64(b, 32); }
static void f_align_pow2(Buf *b) { kv_u32(b, "general.alignment", 48); }

static void test_bad_metadata(void) {
    struct { void (*fill)(Buf *); const char *want; } cases[] = {
        {f_long_string, "string length"}, {f_bad_vtype, "unknown value type 13"},
        {f_big_array, "array of"},        {f_bad_elem, "unknown array element type 77"},
        {f_bool2, "not 0 or 1"},          {f_empty_key, "empty"},
        {f_deep, "nested deeper"},        {f_str_array_trunc, "k'[2]"},
        {f_align_type, "must be u32"},    {f_align_pow2, "not a power of two"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Buf b = one_kv(cases[i].fill);
        expect_fail(&b, cases[i].want, cases[i].want);
        free(b.p);
    }
    Buf k = {0};
    kv_u32(&k, "dup", 1);
    kv_u32(&k, "dup", 2);
    Buf b = build(&k, 2, NULL, 0, 32);
    expect_fail(&b, "duplicate metadata key 'dup'", "duplicate key");
    free(b.p);
    free(k.p);
}

static void test_bad_tensors(void) {
    uint8_t data[4096] = {0};
    TInfo ok = {"w", GGML_TYPE_Q8_0, 2, {64, 2, 1, 1}, data, 4 * 34};
    struct { TInfo t; const char *want; } cases[] = {
        {{"w", 99, 1, {32}, data, 32}, "unknown ggml type 99"},
        {{"w", GGML_TYPE_Q4_0, 1, {48}, data, 18}, "not a multiple of the q4_0 block size 32"},
        {{"w", GGML_TYPE_F32, 5, {1, 1, 1, 1, 1}, data, 4}, "5 dimensions"},
        {{"w", GGML_TYPE_F32, 2, {1ull << 40, 1ull << 40}, data, 4}, "overflow"},
        {{"w", GGML_TYPE_F32, 1, {1ull << 40}, data, 4}, "outside the file"},
        {{"", GGML_TYPE_F32, 1, {1}, data, 4}, "empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Buf b = build(NULL, 0, &cases[i].t, 1, 32);
        expect_fail(&b, cases[i].want, cases[i].want);
        free(b.p);
    }
    TInfo two[2] = {ok, ok};
    Buf b = build(NULL, 0, two, 2, 32);
    expect_fail(&b, "duplicate tensor name 'w'", "duplicate tensor");
    free(b.p);
    // offsets: patch the second tensor's offset field (the last 8 bytes of its info)
    two[1].name = "v";
    b = build(NULL, 0, two, 2, 32);
    Gguf g;
    CHECK(parse_buf(&g, &b) == 0, "two tensors: %s", err.msg);
    size_t info_end = (size_t)g.tensors[1].offset;  // 160 (136 rounded up to 32)
    CHECK(info_end == 160, "second offset %zu", info_end);
    gguf_close(&g);
    size_t off_field = 24 + (8 + 1 + 4 + 16 + 4 + 8) + (8 + 1 + 4 + 16 + 4);
    memcpy(b.p + off_field, &(uint64_t){64}, 8);
    expect_fail(&b, "overlap", "overlap");
    memcpy(b.p + off_field, &(uint64_t){33}, 8);
    expect_fail(&b, "not a multiple of the alignment 32", "unaligned offset");
    memcpy(b.p + off_field, &(uint64_t){1ull << 62}, 8);
    expect_fail(&b, "outside the file", "offset outside");
    // 2^64 - 32 (aligned): the reader formed data + offset before the check failed, a pointer
    // overflow that UBSan reports under `make sanitize`
    memcpy(b.p + off_field, &(uint64_t){UINT64_MAX - 31}, 8);
    expect_fail(&b, "outside the file", "offset near 2^64");
    free(b.p);
    // data section would start past the end
    b = build(NULL, 0, &ok, 1, 32);
    b.n = 24 + 8 + 1 + 4 + 16 + 4 + 8 + 1;  // infos complete, padding cut
    expect_fail(&b, "truncated", "no data section");
    free(b.p);
}

// Every prefix of a valid file fails with an error (never a crash), naming the file.
static void test_truncations(void) {
    uint64_t n_kv;
    Buf kvs = metadata_kvs(&n_kv);
    size_t nb;
    uint8_t *raw = random_tensor(GGML_TYPE_Q4_K, 256, &nb);
    TInfo t = {"w", GGML_TYPE_Q4_K, 1, {256}, raw, nb};
    Buf f = build(&kvs, n_kv, &t, 1, 64);
    int failed = 0, unnamed = 0;
    for (size_t len = 0; len < f.n; len++) {
        uint8_t *copy = malloc(len ? len : 1);  // exact size, so ASan sees any overread
        memcpy(copy, f.p, len);
        Gguf g;
        memset(&err, 0, sizeof err);
        if (gguf_parse(&g, copy, len, "mem.gguf", &err) == 0) {
            gguf_close(&g);
        } else {
            failed++;
            unnamed += strstr(err.msg, "mem.gguf") == NULL;
        }
        free(copy);
    }
    CHECK(failed == (int)f.n, "%d of %zu truncations rejected", failed, f.n);
    CHECK(unnamed == 0, "%d errors without the file name", unnamed);
    free(raw);
    free(f.p);
    free(kvs.p);
}

static void test_open_errors(void) {
    Gguf g;
    CHECK(gguf_open(&g, "/nonexistent/x.gguf", &err) == -1 && strstr(err.msg, "/nonexistent/x.gguf: cannot open"), "%s",
          err.msg);
    char path[] = "/tmp/cltkit_gguf_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    CHECK(gguf_open(&g, path, &err) == -1 && strstr(err.msg, path) && strstr(err.msg, "empty"), "empty: %s", err.msg);
    CHECK(write(fd, "GGML1234", 8) == 8, "write");
    CHECK(gguf_open(&g, path, &err) == -1 && strstr(err.msg, "bad magic"), "short: %s", err.msg);
    close(fd);
    unlink(path);
    CHECK(gguf_open(&g, "/tmp", &err) == -1 && strstr(err.msg, "not a regular file"), "%s", err.msg);
}

// ---- tokenizer and Llama mapping --------------------------------------------------------------

// Vocab: the byte-level alphabet for "a b c d 1 2 space(Ġ)" plus merges and three control tokens.
static const char *const TOKS[] = {"<|end|>", "<|start|>", "a", "b", "c", "\xc4\xa0", "1", "2", "ab", "\xc4\xa0" "a",
                                   "12", "abc", "<user>", "d", "\xc4\xa0" "ab", "\xc4\xa0" "1"};
#define N_TOKS 16
static const char *const MERGES[] = {"a b", "\xc4\xa0 a", "1 2", "ab c", "\xc4\xa0 ab", "\xc4\xa0 1"};
static const int32_t TYPES[N_TOKS] = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1, 1, 1};

static void tok_kvs(Buf *k, uint64_t *n, const char *pre, const char *model) {
    kv_str(k, "tokenizer.ggml.model", model); (*n)++;
    if (pre) { kv_str(k, "tokenizer.ggml.pre", pre); (*n)++; }
    kv_strs(k, "tokenizer.ggml.tokens", TOKS, N_TOKS); (*n)++;
    kv_i32s(k, "tokenizer.ggml.token_type", TYPES, N_TOKS); (*n)++;
    kv_strs(k, "tokenizer.ggml.merges", MERGES, 6); (*n)++;
    kv_u32(k, "tokenizer.ggml.bos_token_id", 1); (*n)++;
    kv_u32(k, "tokenizer.ggml.eos_token_id", 0); (*n)++;
    kv_str(k, "tokenizer.chat_template", "{{ messages }}"); (*n)++;
}

static Tokenizer *tok_from(const Gguf *g, int hf) {
    char *json = NULL;
    if (gguf_tokenizer_json(g, hf, &json, &err)) return NULL;
    Tokenizer *t = tokenizer_load_json(json, strlen(json), "tok.json", &err);
    free(json);
    return t;
}

static int encode_eq(const Tokenizer *t, const char *text, const uint32_t *want, size_t n) {
    TokScratch *s = tokscratch_new();
    TokIds ids = {0};
    TokEncodeOptions o = {1, 0};
    int ok = tokenizer_encode(t, s, text, strlen(text), &o, &ids, &err) == 0 && ids.n == n &&
             (n == 0 || !memcmp(ids.ids, want, n * sizeof *want));
    if (!ok) {
        printf("  got:");
        for (size_t i = 0; i < ids.n; i++) printf(" %u", ids.ids[i]);
        printf("\n");
    }
    tokids_free(&ids);
    tokscratch_free(s);
    return ok;
}

static void test_tokenizer(void) {
    Buf k = {0};
    uint64_t n = 0;
    tok_kvs(&k, &n, "smollm", "gpt2");
    Buf f = build(&k, n, NULL, 0, 32);
    Gguf g;
    CHECK(parse_buf(&g, &f) == 0, "%s", err.msg);
    Tokenizer *t = tok_from(&g, 0);
    CHECK(t != NULL, "smollm tokenizer: %s", err.msg);
    if (t) {
        // digits split one by one (no "12", no "Ġ1"); "Ġab" via the merges; control token matched
        CHECK(encode_eq(t, "abc ab 12<|start|>", (uint32_t[]){11, 14, 5, 6, 7, 1}, 6), "smollm encode");
        CHECK(encode_eq(t, " 1<user>d", (uint32_t[]){5, 6, 12, 13}, 4), "user-defined added token");
        tokenizer_free(t);
    }
    t = tok_from(&g, 1);  // transformers' way: GPT-2 split only, "Ġ1" and "12" merge
    CHECK(t != NULL, "hf tokenizer: %s", err.msg);
    if (t) {
        CHECK(encode_eq(t, "abc ab 12", (uint32_t[]){11, 14, 5, 10}, 4), "hf-compat encode");
        CHECK(encode_eq(t, " 12", (uint32_t[]){5, 10}, 2), "hf-compat ' 12'");
        tokenizer_free(t);
    }
    char *cfg = NULL;
    CHECK(gguf_tokenizer_config_json(&g, &cfg, &err) == 0, "%s", err.msg);
    json_t *j = cfg ? json_loads(cfg, 0, NULL) : NULL;
    CHECK(j && !strcmp(json_string_value(json_object_get(j, "bos_token")), "<|start|>") &&
              !strcmp(json_string_value(json_object_get(j, "eos_token")), "<|end|>") &&
              !strcmp(json_string_value(json_object_get(j, "chat_template")), "{{ messages }}"),
          "tokenizer_config.json: %s", cfg ? cfg : "-");
    json_decref(j);
    free(cfg);
    gguf_close(&g);
    free(f.p);
    free(k.p);

    // other pre-tokenizers load; unknown ones and SentencePiece vocabularies are refused
    const char *pres[] = {"gpt2", "llama-bpe", "qwen2"};
    for (int i = 0; i < 3; i++) {
        Buf k2 = {0};
        uint64_t n2 = 0;
        tok_kvs(&k2, &n2, pres[i], "gpt2");
        Buf f2 = build(&k2, n2, NULL, 0, 32);
        CHECK(parse_buf(&g, &f2) == 0, "%s", err.msg);
        t = tok_from(&g, 0);
        CHECK(t != NULL, "pre %s: %s", pres[i], err.msg);
        if (t) CHECK(encode_eq(t, "ab", (uint32_t[]){8}, 1), "pre %s encode", pres[i]);
        tokenizer_free(t);
        gguf_close(&g);
        free(f2.p);
        free(k2.p);
    }
    struct { const char *pre, *model, *want; } bad[] = {
        {"mystery", "gpt2", "tokenizer.ggml.pre 'mystery' is not supported"},
        {NULL, "gpt2", "tokenizer.ggml.pre is missing"},
        {"smollm", "llama", "SentencePiece"},
        {"smollm", "bert", "'bert' is not supported"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        Buf k2 = {0};
        uint64_t n2 = 0;
        tok_kvs(&k2, &n2, bad[i].pre, bad[i].model);
        Buf f2 = build(&k2, n2, NULL, 0, 32);
        CHECK(parse_buf(&g, &f2) == 0, "%s", err.msg);
        char *json = NULL;
        CHECK(gguf_tokenizer_json(&g, 0, &json, &err) == -1 && strstr(err.msg, "mem.gguf") &&
                  strstr(err.msg, bad[i].want),
              "'%s' vs %s", err.msg, bad[i].want);
        free(json);
        gguf_close(&g);
        free(f2.p);
        free(k2.p);
    }
    // a malformed merge
    Buf k3 = {0};
    uint64_t n3 = 0;
    kv_str(&k3, "tokenizer.ggml.model", "gpt2"); n3++;
    kv_str(&k3, "tokenizer.ggml.pre", "gpt2"); n3++;
    kv_strs(&k3, "tokenizer.ggml.tokens", TOKS, N_TOKS); n3++;
    kv_strs(&k3, "tokenizer.ggml.merges", (const char *[]){"a b", "abc"}, 2); n3++;
    Buf f3 = build(&k3, n3, NULL, 0, 32);
    CHECK(parse_buf(&g, &f3) == 0, "%s", err.msg);
    char *json = NULL;
    CHECK(gguf_tokenizer_json(&g, 0, &json, &err) == -1 && strstr(err.msg, "merges[1]"), "%s", err.msg);
    free(json);
    gguf_close(&g);
    free(f3.p);
    free(k3.p);
}

// A tiny Llama GGUF: D=8, H=2, KV=1, hd=4, F=12, 1 layer, V=16 (the test vocab), f32/f16/q8_0 mix.
#define LD 8
#define LH 2
#define LKV 1
#define LHD 4
#define LF 12
#define LV N_TOKS
typedef struct {
    float w[16][LV * LF];  // raw fp32 values per tensor slot (enough room for each)
} LlamaRaw;

static Buf tiny_llama(int tied, const char *extra_tensor, int bad_shape, LlamaRaw *raw) {
    Buf k = {0};
    uint64_t n = 0;
    kv_str(&k, "general.architecture", "llama"); n++;
    kv_u32(&k, "llama.block_count", 1); n++;
    kv_u32(&k, "llama.context_length", 64); n++;
    kv_u32(&k, "llama.embedding_length", LD); n++;
    kv_u32(&k, "llama.feed_forward_length", LF); n++;
    kv_u32(&k, "llama.attention.head_count", LH); n++;
    kv_u32(&k, "llama.attention.head_count_kv", LKV); n++;
    kv_f32(&k, "llama.rope.freq_base", 5000.0f); n++;
    kv_f32(&k, "llama.attention.layer_norm_rms_epsilon", 1e-6f); n++;
    kv_u32(&k, "llama.rope.dimension_count", LHD); n++;
    tok_kvs(&k, &n, "smollm", "gpt2");
    struct { const char *name; int n_dims; uint64_t ne0, ne1; } spec[] = {
        {"token_embd.weight", 2, LD, LV},       {"output_norm.weight", 1, LD, 1},
        {"blk.0.attn_norm.weight", 1, LD, 1},   {"blk.0.attn_q.weight", 2, LD, LH * LHD},
        {"blk.0.attn_k.weight", 2, LD, LKV * LHD}, {"blk.0.attn_v.weight", 2, LD, LKV * LHD},
        {"blk.0.attn_output.weight", 2, LH * LHD, LD}, {"blk.0.ffn_norm.weight", 1, LD, 1},
        {"blk.0.ffn_gate.weight", 2, LD, LF},   {"blk.0.ffn_up.weight", 2, LD, LF},
        {"blk.0.ffn_down.weight", 2, LF, LD},   {"output.weight", 2, LD, LV},
        {extra_tensor, 1, 4, 1},
    };
    int n_t = 11 + !tied + (extra_tensor != NULL);
    TInfo ts[13];
    uint16_t f16buf[LV * LF];
    for (int i = 0, slot = 0; slot < 13; slot++) {
        if (slot == 11 && tied) continue;
        if (slot == 12 && !extra_tensor) continue;
        uint64_t numel = spec[slot].ne0 * spec[slot].ne1;
        for (uint64_t j = 0; j < numel; j++) raw->w[slot][j] = (float)((int)(rnd() % 17) - 8) * 0.125f;
        ts[i] = (TInfo){spec[slot].name, GGML_TYPE_F32, spec[slot].n_dims, {spec[slot].ne0, spec[slot].ne1, 1, 1},
                        raw->w[slot], numel * 4};
        if (bad_shape && slot == 4) ts[i].ne[1] = 2 * LKV * LHD, ts[i].nbytes *= 2;
        if (slot == 9) {  // one f16 tensor (values exact in f16)
            for (uint64_t j = 0; j < numel; j++) f16buf[j] = f32_to_f16(raw->w[slot][j]);
            ts[i].type = GGML_TYPE_F16;
            ts[i].data = f16buf;
            ts[i].nbytes = numel * 2;
        }
        i++;
    }
    Buf f = build(&k, n, ts, n_t, 32);
    free(k.p);
    return f;
}

static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *ent;
    char p[512];
    while (d && (ent = readdir(d))) {
        if (ent->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, ent->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

static void test_llama_mapping(void) {
    static LlamaRaw raw;
    Buf f = tiny_llama(1, NULL, 0, &raw);
    Gguf g;
    CHECK(parse_buf(&g, &f) == 0, "%s", err.msg);
    GgufLlamaConfig c;
    CHECK(gguf_llama_config(&g, &c, &err) == 0, "%s", err.msg);
    CHECK(c.n_layers == 1 && c.d_model == LD && c.n_heads == LH && c.n_kv_heads == LKV && c.head_dim == LHD &&
              c.d_ff == LF && c.vocab_size == LV && c.tied && c.rope_theta == 5000.0 && c.bos_id == 1 && c.eos_id == 0,
          "config");
    char dir[] = "/tmp/cltkit_gguf_dir_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    CHECK(gguf_llama_write_hf(&g, dir, 0, &err) == 0, "%s", err.msg);
    Model m;
    int rc = model_load(&m, dir, &err);
    CHECK(rc == 0, "model_load: %s", err.msg);
    if (!rc) {
        CHECK(m.cfg.tie_embeddings && m.lm_head == m.embed && m.cfg.rope_theta == 5000.0f &&
                  fabsf(m.cfg.norm_eps - 1e-6f) < 1e-12f && m.cfg.n_kv_heads == LKV, "loaded config");
        CHECK(!memcmp(m.embed, raw.w[0], sizeof(float) * LV * LD), "embedding copied");
        CHECK(!memcmp(m.layers[0].w_up, raw.w[9], sizeof(float) * LF * LD), "f16 tensor dequantized");
        // HF row h*hd + c*(hd/2) + p = GGUF row h*hd + 2p + c
        int bad = 0;
        for (int h = 0; h < LH; h++)
            for (int cc = 0; cc < 2; cc++)
                for (int p = 0; p < LHD / 2; p++)
                    for (int col = 0; col < LD; col++) {
                        bad += m.layers[0].wq[(h * LHD + cc * LHD / 2 + p) * LD + col] !=
                            raw.w[3][(h * LHD + 2 * p + cc) * LD + col];
                        if (h < LKV)
                            bad += m.layers[0].wk[(h * LHD + cc * LHD / 2 + p) * LD + col] !=
                                raw.w[4][(h * LHD + 2 * p + cc) * LD + col];
                    }
        CHECK(bad == 0, "q/k un-permutation: %d mismatches", bad);
        CHECK(!memcmp(m.layers[0].wv, raw.w[5], sizeof(float) * LKV * LHD * LD), "v unchanged");
        model_free(&m);
    }
    char p[600];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    Tokenizer *t = tokenizer_load(p, &err);
    CHECK(t != NULL, "written tokenizer.json: %s", err.msg);
    tokenizer_free(t);
    rm_dir(dir);
    gguf_close(&g);
    free(f.p);

    // untied: lm_head is its own tensor
    f = tiny_llama(0, NULL, 0, &raw);
    CHECK(parse_buf(&g, &f) == 0 && gguf_llama_config(&g, &c, &err) == 0 && !c.tied, "untied: %s", err.msg);
    gguf_close(&g);
    free(f.p);

    struct { int tied; const char *extra; int bad_shape; const char *want; } bad[] = {
        {1, "rope_freqs.weight", 0, "rope_freqs"},
        {1, "blk.7.attn_q.weight", 0, "'blk.7.attn_q.weight' is not part of a Llama model"},
        {1, "mystery.weight", 0, "'mystery.weight' is not part of"},
        {1, "blk.00.attn_q.weight", 0, "'blk.00.attn_q.weight' is not part of"},
        {1, "blk.-0.attn_q.weight", 0, "'blk.-0.attn_q.weight' is not part of"},
        {1, NULL, 1, "'blk.0.attn_k.weight' has ne [8, 8], the config implies [8, 4]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        f = tiny_llama(bad[i].tied, bad[i].extra, bad[i].bad_shape, &raw);
        CHECK(parse_buf(&g, &f) == 0, "%s", err.msg);
        CHECK(gguf_llama_config(&g, &c, &err) == -1 && strstr(err.msg, "mem.gguf") && strstr(err.msg, bad[i].want),
              "'%s' vs '%s'", err.msg, bad[i].want);
        gguf_close(&g);
        free(f.p);
    }
    // a missing tensor and a non-Llama architecture
    Buf k = {0};
    kv_str(&k, "general.architecture", "gemma"); 
    f = build(&k, 1, NULL, 0, 32);
    CHECK(
        parse_buf(&g, &f) == 0 && gguf_llama_config(&g, &c, &err) == -1 && strstr(err.msg, "'gemma' is not supported"),
        "%s", err.msg);
    gguf_close(&g);
    free(f.p);
    free(k.p);
    k = (Buf){0};
    kv_str(&k, "general.architecture", "llama");
    kv_u32(&k, "llama.block_count", 1);
    kv_u32(&k, "llama.embedding_length", 8);
    kv_u32(&k, "llama.feed_forward_length", 8);
    kv_u32(&k, "llama.attention.head_count", 2);
    kv_u32(&k, "llama.vocab_size", 4);
    f = build(&k, 6, NULL, 0, 32);
    CHECK(parse_buf(&g, &f) == 0 && gguf_llama_config(&g, &c, &err) == -1 &&
              strstr(err.msg, "'token_embd.weight' is missing"),
          "%s", err.msg);
    gguf_close(&g);
    free(f.p);
    free(k.p);
}

int main(void) {
    RUN_TEST(test_type_table);
    RUN_TEST(test_dequant_reference);
    RUN_TEST(test_dequant_known_values);
    RUN_TEST(test_metadata_and_tensors);
    RUN_TEST(test_gguf_py_file);
    RUN_TEST(test_bad_headers);
    RUN_TEST(test_bad_metadata);
    RUN_TEST(test_bad_tensors);
    RUN_TEST(test_truncations);
    RUN_TEST(test_open_errors);
    RUN_TEST(test_tokenizer);
    RUN_TEST(test_llama_mapping);
    return test_summary();
}
