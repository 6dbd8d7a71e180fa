// test_safetensors.c — safetensors writer/reader round trip, the fp conversions against known
// values and exhaustive properties, and every malformed-file check (the bad files are built here,
// in a temporary directory).
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "tmpdir.h"
#include "convert.h"
#include "safetensors.h"


static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *ent;
    int n = 0;
    while (d && (ent = readdir(d))) n += ent->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static void put_bytes(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, n, f) != n) { perror(path); exit(1); }
    fclose(f);
}

// A file with header length `hlen` (as written in the first 8 bytes), `hl` bytes of header text,
// and `ndata` bytes of tensor data (0x11 each).
static void put_raw(const char *path, uint64_t hlen, const char *header, size_t hl, size_t ndata) {
    size_t n = 8 + hl + ndata;
    unsigned char *buf = malloc(n);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, header, hl);
    memset(buf + 8 + hl, 0x11, ndata);
    put_bytes(path, buf, n);
    free(buf);
}

static void put_header(const char *path, const char *header, size_t ndata) {
    put_raw(path, strlen(header), header, strlen(header), ndata);
}

static float bits_f32(uint32_t u) { return f32_from_bits(u); }

// ---- round trip ------------------------------------------------------------------------------

static void test_roundtrip(void) {
    TmpDir td;
    tmp_open(&td, "st");
    char path[128];
    snprintf(path, sizeof path, "%s/rt.safetensors", td.dir);

    float f32[6] = {1, -2, 3.5f, 0, -0.0f, 1e-40f};
    float scalar = 3.25f;
    uint16_t f16[4] = {0x3c00, 0xc000, 0x0001, 0x7bff};  // 1, -2, 2^-24, 65504
    uint16_t bf16[3] = {0x3f80, 0x4049, 0xff80};           // 1, 3.140625, -inf
    int32_t i32[2] = {-7, 2147483647};
    int64_t i64[1] = {-(1LL << 40)};
    uint8_t u8[5] = {0, 1, 127, 128, 255};
    int8_t i8[3] = {-128, 0, 127};
    uint8_t f8[4] = {0x38, 0x7e, 0x01, 0x80};  // 1, 448, 2^-9, -0
    uint8_t bools[2] = {1, 0};
    double f64[2] = {0.5, -1e300};
    StWriteTensor ts[] = {
        {"a.f32", ST_F32, 2, {2, 3}, f32},      {"scalar", ST_F32, 0, {0}, &scalar},
        {"empty", ST_F32, 1, {0}, NULL},        {"empty2d", ST_BF16, 2, {2, 0}, NULL},
        {"h.f16", ST_F16, 1, {4}, f16},         {"b.bf16", ST_BF16, 2, {3, 1}, bf16},
        {"i32", ST_I32, 1, {2}, i32},           {"i64", ST_I64, 1, {1}, i64},
        {"u8", ST_U8, 1, {5}, u8},              {"i8", ST_I8, 1, {3}, i8},
        {"f8", ST_F8_E4M3, 3, {2, 1, 2}, f8},   {"bool", ST_BOOL, 1, {2}, bools},
        {"f64", ST_F64, 1, {2}, f64},
    };
    int n = (int)(sizeof ts / sizeof ts[0]);
    Error e = {{0}};
    CHECK(safetensors_write(path, ts, n, "{\"format\":\"pt\",\"note\":\"héllo\"}", &e) == 0, "%s", e.msg);
    CHECK(count_files(td.dir) == 1, "temp file left behind");

    SafeTensors st;
    int rc = safetensors_open(&st, path, &e);
    CHECK(rc == 0, "%s", e.msg);
    if (rc) { tmp_close(&td); return; }
    CHECK(st.n_tensors == n, "%d tensors", st.n_tensors);
    CHECK(st.metadata_json && !strcmp(st.metadata_json, "{\"format\":\"pt\",\"note\":\"héllo\"}"), "%s",
          st.metadata_json ? st.metadata_json : "(null)");
    uint64_t hlen;
    memcpy(&hlen, st.map, 8);
    CHECK(hlen % 8 == 0, "header length %llu not padded to 8", (unsigned long long)hlen);
    for (int i = 1; i < st.n_tensors; i++)
        CHECK(strcmp(st.tensors[i - 1].name, st.tensors[i].name) < 0, "tensors not sorted by name");

    for (int i = 0; i < n; i++) {
        const StTensor *t = safetensors_find(&st, ts[i].name);
        CHECK(t != NULL, "missing %s", ts[i].name);
        if (!t) continue;
        CHECK(t->dtype == ts[i].dtype && t->ndim == ts[i].ndim, "%s: dtype/rank", ts[i].name);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            CHECK(t->shape[d] == ts[i].shape[d], "%s: shape[%d]", ts[i].name, d);
            numel *= (uint64_t)ts[i].shape[d];
        }
        CHECK(t->numel == numel && t->nbytes == numel * st_dtype_size(t->dtype), "%s: numel", ts[i].name);
        if (t->nbytes) CHECK(!memcmp(t->data, ts[i].data, t->nbytes), "%s: bytes differ", ts[i].name);
        // the writer's layout keeps every tensor aligned to its dtype within the mapping
        size_t off = (size_t)((const char *)t->data - (const char *)st.map);
        CHECK(off % st_dtype_size(t->dtype) == 0, "%s: misaligned at %zu", ts[i].name, off);
    }
    CHECK(safetensors_find(&st, "nope") == NULL, "found a missing name");

    float out[8];
    const StTensor *t = safetensors_find(&st, "scalar");
    CHECK(t && t->numel == 1 && safetensors_to_f32(&st, t, out, 1, &e) == 0 && out[0] == 3.25f, "scalar");
    t = safetensors_find(&st, "empty");
    CHECK(t && t->numel == 0 && safetensors_to_f32(&st, t, out, 0, &e) == 0, "empty");
    t = safetensors_find(&st, "h.f16");
    CHECK(t && safetensors_to_f32(&st, t, out, 4, &e) == 0, "%s", e.msg);
    CHECK(out[0] == 1 && out[1] == -2 && out[2] == ldexpf(1, -24) && out[3] == 65504, "f16 values");
    t = safetensors_find(&st, "b.bf16");
    CHECK(t && safetensors_to_f32(&st, t, out, 3, &e) == 0, "%s", e.msg);
    CHECK(out[0] == 1 && out[1] == 3.140625f && isinf(out[2]) && out[2] < 0, "bf16 values");
    t = safetensors_find(&st, "f8");
    CHECK(t && safetensors_to_f32(&st, t, out, 4, &e) == 0, "%s", e.msg);
    CHECK(out[0] == 1 && out[1] == 448 && out[2] == ldexpf(1, -9) && out[3] == 0 && signbit(out[3]), "f8 values");
    t = safetensors_find(&st, "i32");
    CHECK(t && safetensors_to_f32(&st, t, out, 0, &e) == 0 && out[0] == -7 && out[1] == 2147483648.0f, "i32");
    t = safetensors_find(&st, "i64");
    CHECK(t && safetensors_to_f32(&st, t, out, 0, &e) == 0 && out[0] == -1099511627776.0f, "i64");
    t = safetensors_find(&st, "u8");
    CHECK(t && safetensors_to_f32(&st, t, out, 0, &e) == 0 && out[3] == 128 && out[4] == 255, "u8");
    t = safetensors_find(&st, "i8");
    CHECK(t && safetensors_to_f32(&st, t, out, 0, &e) == 0 && out[0] == -128 && out[2] == 127, "i8");
    t = safetensors_find(&st, "bool");
    CHECK(t && safetensors_to_f32(&st, t, out, 0, &e) == 0 && out[0] == 1 && out[1] == 0, "bool");
    t = safetensors_find(&st, "f64");
    CHECK(t && safetensors_to_f32(&st, t, out, 0, &e) == 0 && out[0] == 0.5f && isinf(out[1]), "f64");
    t = safetensors_find(&st, "a.f32");
    CHECK(t && safetensors_to_f32(&st, t, out, 6, &e) == 0 && !memcmp(out, f32, sizeof f32), "f32");

    // a wrong expected element count names the file and the tensor
    CHECK(t && safetensors_to_f32(&st, t, out, 5, &e) == -1, "expected_numel not checked");
    CHECK(strstr(e.msg, path) && strstr(e.msg, "a.f32") && strstr(e.msg, "expected 5"), "%s", e.msg);

    // the same bytes at an odd address: conversions must not assume alignment
    unsigned char *copy = malloc(st.map_size + 1);
    memcpy(copy + 1, st.map, st.map_size);
    SafeTensors st2;
    CHECK(safetensors_parse(&st2, copy + 1, st.map_size, "mem", &e) == 0, "%s", e.msg);
    t = safetensors_find(&st2, "h.f16");
    CHECK(t && safetensors_to_f32(&st2, t, out, 4, &e) == 0 && out[3] == 65504, "unaligned f16");
    t = safetensors_find(&st2, "f64");
    CHECK(t && safetensors_to_f32(&st2, t, out, 2, &e) == 0 && out[0] == 0.5f, "unaligned f64");
    safetensors_close(&st2);
    free(copy);
    safetensors_close(&st);
    CHECK(st.map == NULL && st.tensors == NULL, "close did not reset");
    safetensors_close(&st);  // closing twice is harmless
    tmp_close(&td);
}

// The header the reference writer (safetensors 0.8, Python) produced for these tensors: layout
// by its dtype order then name, compact JSON, space padding to a multiple of 8.
static void test_reference_layout(void) {
    TmpDir td;
    tmp_open(&td, "st");
    char path[128];
    snprintf(path, sizeof path, "%s/layout.safetensors", td.dir);
    uint64_t zero = 0;
    StWriteTensor ts[] = {
        {"t0", ST_F32, 1, {1}, &zero},  {"t1", ST_F16, 1, {1}, &zero},  {"t2", ST_BF16, 1, {1}, &zero},
        {"t3", ST_I32, 1, {1}, &zero},  {"t4", ST_I64, 1, {1}, &zero},  {"t5", ST_U8, 1, {1}, &zero},
        {"t6", ST_I8, 1, {1}, &zero},   {"t7", ST_F8_E4M3, 1, {1}, &zero}, {"t8", ST_BOOL, 1, {1}, &zero},
        {"t9", ST_F64, 1, {1}, &zero},  {"b2", ST_F32, 0, {0}, &zero},
    };
    const char *want =
        "{\"__metadata__\":{\"k\":\"v\"},\"t4\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
        "\"t9\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]},\"b2\":{\"dtype\":\"F32\",\"shape\":[],"
        "\"data_offsets\":[16,20]},\"t0\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]},\"t3\":{\"dtype\":"
        "\"I32\",\"shape\":[1],\"data_offsets\":[24,28]},\"t2\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[28,"
        "30]},\"t1\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[30,32]},\"t7\":{\"dtype\":\"F8_E4M3\",\"shape\":"
        "[1],\"data_offsets\":[32,33]},\"t6\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[33,34]},\"t5\":{\"dtype\":"
        "\"U8\",\"shape\":[1],\"data_offsets\":[34,35]},\"t8\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[35,36]}}"
        "      ";
    Error e = {{0}};
    CHECK(safetensors_write(path, ts, (int)(sizeof ts / sizeof ts[0]), "{\"k\":\"v\"}", &e) == 0, "%s", e.msg);
    size_t len = 0;
    char *bytes = test_read_file(path, &len);
    size_t wl = strlen(want);
    CHECK(wl == 648 && len == 8 + wl + 36, "file is %zu bytes", len);
    uint64_t hlen = 0;
    if (bytes && len >= 8) memcpy(&hlen, bytes, 8);
    CHECK(hlen == wl, "header length %llu", (unsigned long long)hlen);
    CHECK(bytes && len >= 8 + wl && !memcmp(bytes + 8, want, wl), "header differs: %.*s", (int)(len > 8 ? len - 8 : 0),
          bytes ? bytes + 8 : "");
    free(bytes);
    tmp_close(&td);
}

static void test_accepts(void) {
    TmpDir td;
    tmp_open(&td, "st");
    char path[128];
    snprintf(path, sizeof path, "%s/ok.safetensors", td.dir);
    Error e = {{0}};
    SafeTensors st;
    const char *good[] = {
        "{}",
        "{}        ",  // padding
        "{\"__metadata__\":null}",
        "{\"__metadata__\":{}}",
        "{\"x\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2],\"extra\":1}}",  // unknown fields ignored
        ("{\"e1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"  // (one element, two lines)
         "\"e2\":{\"dtype\":\"I64\",\"shape\":[3,0],\"data_offsets\":[0,0]}}"),  // empties share an offset
    };
    size_t ndata[] = {0, 0, 0, 0, 2, 0};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        put_header(path, good[i], ndata[i]);
        int rc = safetensors_open(&st, path, &e);
        CHECK(rc == 0, "case %zu: %s", i, e.msg);
        if (!rc) safetensors_close(&st);
    }
    // zero tensors written by the writer
    CHECK(safetensors_write(path, NULL, 0, NULL, &e) == 0, "%s", e.msg);
    CHECK(safetensors_open(&st, path, &e) == 0 && st.n_tensors == 0 && !st.metadata_json, "%s", e.msg);
    safetensors_close(&st);
    tmp_close(&td);
}

// ---- malformed files -------------------------------------------------------------------------

// Opening path must fail with a message naming the file and containing `problem`.
static void expect_bad(const char *path, const char *problem, const char *what) {
    SafeTensors st;
    Error e = {{0}};
    int rc = safetensors_open(&st, path, &e);
    CHECK(rc == -1, "%s: accepted", what);
    if (rc == 0) { safetensors_close(&st); return; }
    CHECK(strstr(e.msg, path) != NULL, "%s: message does not name the file: %s", what, e.msg);
    CHECK(strstr(e.msg, problem) != NULL, "%s: message lacks '%s': %s", what, problem, e.msg);
    CHECK(st.tensors == NULL && st.map == NULL, "%s: state not reset", what);
    safetensors_close(&st);
}

#define T1(dtype, shape, offs) "{\"t\":{\"dtype\":" dtype ",\"shape\":" shape ",\"data_offsets\":" offs "}}"

static void test_bad_files(void) {
    TmpDir td;
    tmp_open(&td, "st");
    char path[128];
    snprintf(path, sizeof path, "%s/bad.safetensors", td.dir);

    put_bytes(path, "", 0);
    expect_bad(path, "truncated", "empty file");
    put_bytes(path, "\x02\0\0", 3);
    expect_bad(path, "truncated", "3-byte file");
    put_raw(path, 100000001, "{}", 2, 0);
    expect_bad(path, "exceeds the limit", "header length too big");
    put_raw(path, 1000, "{}", 2, 0);
    expect_bad(path, "truncated: header length", "header past EOF");
    put_raw(path, UINT64_MAX, "{}", 2, 0);
    expect_bad(path, "exceeds the limit", "header length 2^64-1");

    // a valid file with the last byte cut off
    float v[2] = {1, 2};
    StWriteTensor w = {"w", ST_F32, 1, {2}, v};
    Error e = {{0}};
    CHECK(safetensors_write(path, &w, 1, NULL, &e) == 0, "%s", e.msg);
    size_t len = 0;
    char *bytes = test_read_file(path, &len);
    if (!bytes || len < 16) { CHECK(0, "cannot read back %s", path); tmp_close(&td); return; }
    put_bytes(path, bytes, len - 1);
    expect_bad(path, "truncated", "truncated data");
    put_bytes(path, bytes, len - 8);
    expect_bad(path, "truncated", "truncated data 2");
    free(bytes);

    put_header(path, "{not json", 0);
    expect_bad(path, "not valid JSON", "garbage header");
    put_header(path, "{} x", 0);
    expect_bad(path, "not valid JSON", "text after the object");
    put_header(path, "[1,2]", 0);
    expect_bad(path, "not a JSON object", "array header");
    put_header(path, "{\"\xff\":1}", 0);
    expect_bad(path, "UTF-8", "bad UTF-8");
    put_header(path, "{\"\xed\xa0\x80\":1}", 0);
    expect_bad(path, "UTF-8", "surrogate in UTF-8");
    put_raw(path, 3, "{}\0", 3, 0);
    expect_bad(path, "not valid JSON", "NUL in header");
    put_header(path, "{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_bad(path, "missing \"dtype\"", "missing dtype");
    put_header(path, "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4);
    expect_bad(path, "missing \"shape\"", "missing shape");
    put_header(path, "{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4);
    expect_bad(path, "missing \"data_offsets\"", "missing data_offsets");
    put_header(path, "{\"t\":3}", 0);
    expect_bad(path, "not a JSON object", "entry not an object");
    put_header(path, T1("\"F7\"", "[1]", "[0,4]"), 4);
    expect_bad(path, "unknown dtype 'F7'", "unknown dtype");
    put_header(path, T1("4", "[1]", "[0,4]"), 4);
    expect_bad(path, "\"dtype\" is not a string", "numeric dtype");
    put_header(path, T1("\"F32\"", "[2]", "[0,4]"), 4);
    expect_bad(path, "data_offsets span 4 bytes but shape [2] of F32 needs 8", "shape/offset mismatch");
    put_header(path, T1("\"F32\"", "[-1]", "[0,4]"), 4);
    expect_bad(path, "shape[0]", "negative dim");
    put_header(path, T1("\"F32\"", "[1.0]", "[0,4]"), 4);
    expect_bad(path, "shape[0]", "float dim");
    put_header(path, T1("\"F32\"", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 4);
    expect_bad(path, "rank 9", "rank too big");
    put_header(path, T1("\"U8\"", "[4294967296,4294967296]", "[0,0]"), 0);
    expect_bad(path, "overflows", "numel overflow");
    put_header(path, T1("\"F32\"", "[1]", "[4,0]"), 4);
    expect_bad(path, "before begin", "end < begin");
    put_header(path, T1("\"F32\"", "[1]", "[0]"), 4);
    expect_bad(path, "[begin, end]", "one offset");
    put_header(path, T1("\"F32\"", "[1]", "[0,-4]"), 4);
    expect_bad(path, "data_offsets[1]", "negative offset");
    put_header(path, T1("\"F32\"", "[1]", "[4,8]"), 8);
    expect_bad(path, "gap", "first tensor not at 0");
    put_header(path,
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               12);
    expect_bad(path, "gap", "gap between tensors");
    put_header(path,
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8);
    expect_bad(path, "overlap", "overlap");
    put_header(path, T1("\"F32\"", "[1]", "[0,4]"), 5);
    expect_bad(path, "trailing bytes", "trailing bytes");
    put_header(path, "{}", 1);
    expect_bad(path, "trailing bytes", "trailing bytes, no tensors");
    put_header(path,
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8);
    expect_bad(path, "duplicate key", "duplicate tensor name");
    put_header(path, "{\"__metadata__\":{\"k\":1}}", 0);
    expect_bad(path, "\"__metadata__\" value for key 'k' is not a string", "metadata value not a string");
    put_header(path, "{\"__metadata__\":[\"a\"]}", 0);
    expect_bad(path, "\"__metadata__\" is not a JSON object", "metadata not an object");
    put_header(path, "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0);
    expect_bad(path, "duplicate key", "duplicate metadata key");

    char missing[160];
    snprintf(missing, sizeof missing, "%s/does-not-exist", td.dir);
    expect_bad(missing, "cannot open", "missing file");
    tmp_close(&td);
}

static void test_writer_errors(void) {
    TmpDir td;
    tmp_open(&td, "st");
    char path[128];
    snprintf(path, sizeof path, "%s/w.safetensors", td.dir);
    float v = 1;
    Error e = {{0}};
    StWriteTensor dup[2] = {{"x", ST_F32, 0, {0}, &v}, {"x", ST_F32, 0, {0}, &v}};
    CHECK(safetensors_write(path, dup, 2, NULL, &e) == -1 && strstr(e.msg, "duplicate name"), "%s", e.msg);
    CHECK(safetensors_write(path, dup, 1, "{\"k\":2}", &e) == -1 && strstr(e.msg, "__metadata__"), "%s", e.msg);
    CHECK(safetensors_write(path, dup, 1, "{oops", &e) == -1 && strstr(e.msg, "metadata is not valid JSON"), "%s",
          e.msg);
    StWriteTensor reserved = {"__metadata__", ST_F32, 0, {0}, &v};
    CHECK(safetensors_write(path, &reserved, 1, NULL, &e) == -1 && strstr(e.msg, "reserved"), "%s", e.msg);
    StWriteTensor neg = {"n", ST_F32, 1, {-1}, &v};
    CHECK(safetensors_write(path, &neg, 1, NULL, &e) == -1 && strstr(e.msg, "bad shape"), "%s", e.msg);
    CHECK(count_files(td.dir) == 0, "a failed write left a file");
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir.safetensors", td.dir);
    CHECK(safetensors_write(nodir, dup, 1, NULL, &e) == -1 && strstr(e.msg, "cannot create"), "%s", e.msg);
    tmp_close(&td);
}

// ---- conversions -----------------------------------------------------------------------------

static int same_f32(float a, float b) { return (isnan(a) && isnan(b)) || f32_bits(a) == f32_bits(b); }
static int f16_isnan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
static int bf16_isnan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f); }

static void test_f16_known(void) {
    struct { uint16_t h; float f; } cases[] = {
        {0x0000, 0.0f}, {0x8000, -0.0f}, {0x0001, 5.9604644775390625e-08f}, {0x03ff, 6.097555160522461e-05f},
        {0x0400, 6.103515625e-05f}, {0x3c00, 1.0f}, {0x3c01, 1.0009765625f}, {0xc000, -2.0f},
        {0x7bff, 65504.0f}, {0xfbff, -65504.0f}, {0x7c00, INFINITY}, {0xfc00, -INFINITY}, {0x3555, 0.333251953125f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float f = f16_to_f32(cases[i].h);
        CHECK(same_f32(f, cases[i].f), "f16 0x%04x -> %a, want %a", cases[i].h, f, cases[i].f);
        CHECK(f32_to_f16(cases[i].f) == cases[i].h, "%a -> f16 0x%04x, want 0x%04x", cases[i].f,
              f32_to_f16(cases[i].f), cases[i].h);
    }
    CHECK(isnan(f16_to_f32(0x7e00)) && isnan(f16_to_f32(0x7c01)) && isnan(f16_to_f32(0xfe00)), "f16 NaN");
    // f32 -> f16 edges: overflow, ties to even, subnormal results
    struct { float f; uint16_t h; } down[] = {
        {65519.0f, 0x7bff}, {65520.0f, 0x7c00}, {1e10f, 0x7c00}, {-1e10f, 0xfc00}, {FLT_MAX, 0x7c00},
        {1.0f + 0x1p-11f, 0x3c00},           // tie -> even (down)
        {1.0f + 3 * 0x1p-11f, 0x3c02},       // tie -> even (up)
        {1.0f + 0x1p-11f + 0x1p-23f, 0x3c01},  // just above the tie
        {0x1p-24f, 0x0001}, {0x1p-25f, 0x0000},  // 2^-25 ties to even zero
        {0x1.000002p-25f, 0x0001}, {-0x1p-25f, 0x8000}, {3 * 0x1p-25f, 0x0002},  // 1.5 ulp ties to 2
        {0x1.ff8p-15f, 0x03ff},  // largest subnormal
        {0x1.ffcp-15f, 0x0400},  // halfway to the smallest normal: rounds up (even)
        {0x1p-14f, 0x0400}, {1e-8f, 0x0000}, {0x1p-149f, 0x0000},
    };
    for (size_t i = 0; i < sizeof down / sizeof down[0]; i++)
        CHECK(f32_to_f16(down[i].f) == down[i].h, "%a -> f16 0x%04x, want 0x%04x", down[i].f, f32_to_f16(down[i].f),
              down[i].h);
    CHECK(f16_isnan(f32_to_f16(NAN)) && f16_isnan(f32_to_f16(-NAN)), "NaN -> f16 NaN");
    CHECK(f16_isnan(f32_to_f16(bits_f32(0x7f800001))), "NaN with low payload -> f16 NaN, not inf");
    CHECK(f32_to_f16(-NAN) & 0x8000, "NaN sign kept");
}

// Every f16 round-trips through f32; every midpoint between neighbours rounds to the even one,
// and one f32 ulp either side rounds to the nearer one.
static void test_f16_exhaustive(void) {
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = f16_to_f32((uint16_t)h);
        if (f16_isnan((uint16_t)h)) CHECK(isnan(f) && f16_isnan(f32_to_f16(f)), "NaN 0x%04x", h);
        else CHECK(f32_to_f16(f) == h, "0x%04x -> %a -> 0x%04x", h, f, f32_to_f16(f));
    }
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float lo = f16_to_f32((uint16_t)h), hi = h == 0x7bff ? 65536.0f : f16_to_f32((uint16_t)(h + 1));
        float mid = (lo + hi) / 2;  // exact: 12 significant bits
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        CHECK(f32_to_f16(mid) == even, "mid 0x%04x: %a -> 0x%04x", h, mid, f32_to_f16(mid));
        CHECK(f32_to_f16(nextafterf(mid, 0)) == h, "below mid 0x%04x", h);
        CHECK(f32_to_f16(nextafterf(mid, INFINITY)) == h + 1, "above mid 0x%04x", h);
        CHECK(f32_to_f16(-mid) == (even | 0x8000), "negative mid 0x%04x", h);
    }
}

static void test_bf16(void) {
    CHECK(bf16_to_f32(0x3f80) == 1.0f && bf16_to_f32(0xc040) == -3.0f, "bf16 basics");
    CHECK(same_f32(bf16_to_f32(0x8000), -0.0f) && bf16_to_f32(0x0001) == 0x1p-133f, "bf16 -0, subnormal");
    CHECK(bf16_to_f32(0x7f7f) == 0x1.fep127f && isinf(bf16_to_f32(0x7f80)) && isnan(bf16_to_f32(0x7fc0)),
          "bf16 max/inf/nan");
    struct { uint32_t f; uint16_t b; } down[] = {
        {0x3f808000, 0x3f80},  // 1 + 2^-8: tie -> even (down)
        {0x3f818000, 0x3f82},  // tie -> even (up)
        {0x3f808001, 0x3f81}, {0x3f807fff, 0x3f80},
        {0x7f7fffff, 0x7f80},  // FLT_MAX rounds to inf
        {0x7f7f7fff, 0x7f7f}, {0xff7fffff, 0xff80},
        {0x00008000, 0x0000}, {0x00018000, 0x0002}, {0x00000001, 0x0000},  // f32 subnormals
        {0x80000000, 0x8000}, {0x7f800000, 0x7f80}, {0xff800000, 0xff80},
    };
    for (size_t i = 0; i < sizeof down / sizeof down[0]; i++) {
        uint16_t got = f32_to_bf16(bits_f32(down[i].f));
        CHECK(got == down[i].b, "0x%08x -> bf16 0x%04x, want 0x%04x", down[i].f, got, down[i].b);
    }
    CHECK(bf16_isnan(f32_to_bf16(bits_f32(0x7f800001))), "low-payload NaN stays NaN");
    CHECK(f32_to_bf16(bits_f32(0xffc00000)) == 0xffc0, "negative quiet NaN");
    for (uint32_t b = 0; b < 0x10000; b++) {
        float f = bf16_to_f32((uint16_t)b);
        if (bf16_isnan((uint16_t)b)) CHECK(isnan(f) && bf16_isnan(f32_to_bf16(f)), "NaN 0x%04x", b);
        else CHECK(f32_to_bf16(f) == b, "0x%04x round trip", b);
    }
    for (uint32_t b = 0; b < 0x7f80; b++) {  // midpoints between neighbours: exact in f32
        uint32_t mid = (b << 16) | 0x8000;
        uint16_t even = (b & 1) ? (uint16_t)(b + 1) : (uint16_t)b;
        CHECK(f32_to_bf16(bits_f32(mid)) == even, "bf16 mid 0x%04x", b);
        CHECK(f32_to_bf16(bits_f32(mid - 1)) == b && f32_to_bf16(bits_f32(mid + 1)) == b + 1, "bf16 near mid 0x%04x",
              b);
    }
}

static void test_f8e4m3(void) {
    struct { uint8_t v; float f; } cases[] = {
        {0x00, 0.0f}, {0x80, -0.0f}, {0x01, 0x1p-9f}, {0x07, 7 * 0x1p-9f}, {0x08, 0x1p-6f}, {0x38, 1.0f},
        {0x39, 1.125f}, {0xb8, -1.0f}, {0x78, 256.0f}, {0x7e, 448.0f}, {0xfe, -448.0f}, {0x40, 2.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float f = f8e4m3_to_f32(cases[i].v);
        CHECK(same_f32(f, cases[i].f), "f8 0x%02x -> %a, want %a", cases[i].v, f, cases[i].f);
    }
    CHECK(isnan(f8e4m3_to_f32(0x7f)) && isnan(f8e4m3_to_f32(0xff)), "f8 NaN");
    // no infinities; positives strictly increase with the bit pattern; negatives mirror them
    float prev = -1;
    for (int v = 0; v < 0x7f; v++) {
        float f = f8e4m3_to_f32((uint8_t)v);
        CHECK(isfinite(f) && f > prev, "f8 0x%02x = %a not increasing", v, f);
        CHECK(same_f32(f8e4m3_to_f32((uint8_t)(v | 0x80)), -f), "f8 0x%02x sign", v | 0x80);
        prev = f;
    }
    uint8_t all[256];
    float out[256];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
    convert_f8e4m3_to_f32(all, out, 256);
    for (int i = 0; i < 256; i++) CHECK(same_f32(out[i], f8e4m3_to_f32((uint8_t)i)), "array f8 0x%02x", i);
}

int main(void) {
    RUN_TEST(test_roundtrip);
    RUN_TEST(test_reference_layout);
    RUN_TEST(test_accepts);
    RUN_TEST(test_bad_files);
    RUN_TEST(test_writer_errors);
    RUN_TEST(test_f16_known);
    RUN_TEST(test_f16_exhaustive);
    RUN_TEST(test_bf16);
    RUN_TEST(test_f8e4m3);
    return test_summary();
}
