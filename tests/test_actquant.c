// test_actquant.c — the quantised activation encodings (kernels/actquant.h, formats/acts.md):
// E4M3 and bf16-round-up conversions exhaustively; every encoding's per-element error bound,
// derived here from the row's (int4: group's) absmax and the spec's rule, on random rows of many
// shapes and distributions (outliers, all-zero rows, subnormals, values near 2^96); byte-plane
// decoding equal to plain decoding; shard round trips through the writer and the multi-threaded
// reader (every encoding x shuffle x stored/zstd, partial chunks, statistics of the decoded
// values, encoded_only); NaN/inf/too-large values rejected; corrupt scales, fp8 NaN codes, bad
// parameters and flipped bytes detected; and real activations: stories260K run by our forward
// pass, and the tiny golden models' transformers activations.
#include <stdint.h>
#include <unistd.h>

#include "actquant.h"
#include "actshard.h"
#include "check.h"
#include "shard_check.h"
#include "crc32c.h"
#include "llama2c.h"
#include "model.h"
#include "safetensors.h"


typedef struct {
    ActDtype dt;
    uint32_t param;
} Enc;
// Every quantised encoding, with edge parameters: int8 with 1 level each side, int4 groups that
// do not divide d, a scale per value.
static const Enc QENCS[] = {{ACT_INT8, 127}, {ACT_INT8, 31}, {ACT_INT8, 1}, {ACT_FP8, 0},
                            {ACT_INT4, 32},  {ACT_INT4, 5},  {ACT_INT4, 1}};
#define N_QENCS (sizeof QENCS / sizeof QENCS[0])

static const char *enc_name(Enc q) {
    static char buf[8][32];  // a few names alive at once in one message
    static int k;
    k = (k + 1) % 8;
    return act_encoding_name(q.dt, q.param, buf[k], sizeof buf[k]);
}

// ---- the guarantee, derived from the spec (not from the library's scale) -----------------------

// |x - y| allowed for value x whose row (int4: group) has absmax m. The scale s is absmax / qmax
// rounded up to bf16: at most (1 + 2^-7) absmax / qmax, or bf16's smallest step 2^-133 for rows
// whose absmax / qmax is below bf16's normal range (only fp32 subnormal-sized rows; the floor).
// Rounding x / s to an integer costs at most s / 2; fp8 keeps 3 mantissa bits: half an ulp is
// <= 2^-4 |x / s|, and below E4M3's smallest normal 2^-6 the step is 2^-9, so at most 2^-10 s.
// 2^-22 |x| covers fp32 rounding of x / s.
static double scale_max(double m, double qmax) { return m / qmax * (1 + 0x1p-7) + 0x1p-133; }
static double bound(Enc q, double x, double m) {
    double a = fabs(x), slack = ldexp(a, -22) + 1e-45;
    switch (q.dt) {
    case ACT_INT8: return scale_max(m, q.param) / 2 + slack;
    case ACT_INT4: return scale_max(m, 7) / 2 + slack;
    case ACT_FP8: return fmax(ldexp(a, -4), ldexp(scale_max(m, 448), -10)) + slack;
    default: return 0;
    }
}

typedef struct {
    size_t violations, sign_flips, checked;
    double err2, ref2, worst;  // worst: max |x - y| / bound
} BoundStats;

// Checks y (decoded) against x (rows, d) for encoding q; accumulates into st.
static void check_rows(Enc q, const float *x, const float *y, size_t rows, size_t d, BoundStats *st) {
    size_t g = q.dt == ACT_INT4 ? q.param : d;
    for (size_t r = 0; r < rows; r++)
        for (size_t j0 = 0; j0 < d; j0 += g) {
            size_t j1 = j0 + g < d ? j0 + g : d;
            double m = 0;
            for (size_t j = j0; j < j1; j++) m = fmax(m, fabs(x[r * d + j]));
            for (size_t j = j0; j < j1; j++) {
                double a = x[r * d + j], b = y[r * d + j], err = fabs(a - b), B = bound(q, a, m);
                st->checked++;
                st->err2 += err * err, st->ref2 += a * a;
                if (!(err <= B)) {
                    if (st->violations++ < 3)
                        printf("  %s: x %.9g decoded %.9g, error %.3g > bound %.3g (absmax %.9g)\n", enc_name(q), a, b,
                               err, B, m);
                }
                if (B > 0 && err / B > st->worst) st->worst = err / B;
                if (a * b < 0) st->sign_flips++;
            }
        }
}

// ---- conversions ---------------------------------------------------------------------------------

static void test_e4m3_conversion(void) {
    // every finite code converts back to itself
    for (int c = 0; c < 256; c++) {
        if ((c & 0x7f) == 0x7f) continue;
        float v = f8e4m3_to_f32((uint8_t)c);
        CHECK(actq_f32_to_e4m3(v) == c, "code 0x%02x (%g) -> 0x%02x", c, (double)v, actq_f32_to_e4m3(v));
    }
    // between neighbours: below the midpoint rounds down, above up, the midpoint to the even code
    for (int c = 0; c < 0x7e; c++) {
        double lo = f8e4m3_to_f32((uint8_t)c), hi = f8e4m3_to_f32((uint8_t)(c + 1)), mid = (lo + hi) / 2;
        CHECK(actq_f32_to_e4m3((float)mid) == (c & 1 ? c + 1 : c), "tie between 0x%02x and 0x%02x", c, c + 1);
        CHECK(actq_f32_to_e4m3((float)(mid - (hi - lo) / 64)) == c, "below the midpoint of 0x%02x", c);
        CHECK(actq_f32_to_e4m3((float)(mid + (hi - lo) / 64)) == c + 1, "above the midpoint of 0x%02x", c);
        CHECK(actq_f32_to_e4m3((float)-mid) == ((c & 1 ? c + 1 : c) | 0x80), "negative tie at 0x%02x", c);
    }
    // saturation, NaN, zero signs, tiny values
    CHECK(actq_f32_to_e4m3(448) == 0x7e && actq_f32_to_e4m3(463.9f) == 0x7e && actq_f32_to_e4m3(1e30f) == 0x7e &&
              actq_f32_to_e4m3(INFINITY) == 0x7e && actq_f32_to_e4m3(-INFINITY) == 0xfe, "saturation");
    CHECK(actq_f32_to_e4m3(NAN) == 0x7f, "NaN");
    CHECK(actq_f32_to_e4m3(0.0f) == 0x00 && actq_f32_to_e4m3(-0.0f) == 0x80, "zeros");
    CHECK(actq_f32_to_e4m3(0x1p-10f) == 0 && actq_f32_to_e4m3(0x1.01p-10f) == 1 && actq_f32_to_e4m3(1e-40f) == 0,
          "below the smallest subnormal");
    CHECK(actq_f32_to_e4m3(0x1.fp-7f) == 0x08, "rounds up into the smallest normal");
}

static void test_bf16_round_up(void) {
    CHECK(actq_bf16_round_up(0) == 0, "zero");
    CHECK(actq_bf16_round_up(1.0f) == 0x3f80 && actq_bf16_round_up(0x1.000002p0f) == 0x3f81, "1 and just above");
    CHECK(actq_bf16_round_up(0x1.fffffep0f) == 0x4000, "carry into the exponent");
    CHECK(actq_bf16_round_up(1e-45f) == 0x0001, "a subnormal rounds up, never to 0");
    uint64_t rs = 5;
    for (int k = 0; k < 100000; k++) {
        float r = (float)(rng_unit(&rs) * ldexp(1, (int)(rng_next(&rs) % 200) - 100));
        float s = bf16_to_f32(actq_bf16_round_up(r));
        CHECK(s >= r && s <= r * (1 + 0x1p-7f), "%g -> %g", (double)r, (double)s);
    }
}

// ---- rows ------------------------------------------------------------------------------------------

// Fills (rows, d) with one of several distributions.
static void fill_rows(float *x, size_t rows, size_t d, int kind, uint64_t *rs) {
    for (size_t r = 0; r < rows; r++) {
        double scale = exp(2 * rng_normal(rs));  // tokens of very different norms
        for (size_t j = 0; j < d; j++) {
            double v = scale * rng_normal(rs);
            if (kind == 1 && j % 17 == 3) v *= 60;                 // outlier dimensions
            if (kind == 2) v = r % 3 == 0 ? 0 : v;                  // all-zero tokens
            if (kind == 3) v = ldexp(rng_normal(rs), -140);          // fp32 subnormals
            if (kind == 4) v = (j == 0 ? 0x1.fffp95 : 1e-3) * (r % 2 ? -1 : 1);  // near the cap
            if (kind == 5 && j % 5 == 0) v = 0;                     // exact zeros in a row
            x[r * d + j] = (float)v;
        }
    }
}

static void test_rows_random(void) {
    static const size_t ds[] = {1, 2, 3, 7, 64, 100, 257};
    uint64_t rs = 42;
    for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
        size_t d = ds[di], rows = 60;
        float *x = malloc(rows * d * 4), *y = malloc(rows * d * 4), *y2 = malloc(rows * d * 4);
        uint8_t *vals = calloc(rows, d + 8), *planes = malloc(rows * d * 2 + 8);
        uint16_t *sc = malloc(rows * d * 2 + 8);
        for (int kind = 0; kind < 6; kind++) {
            fill_rows(x, rows, d, kind, &rs);
            for (size_t k = 0; k < N_QENCS; k++) {
                Enc q = QENCS[k];
                size_t rb = actq_row_bytes(q.dt, d), ns = actq_row_scales(q.dt, q.param, d);
                for (size_t r = 0; r < rows; r++)
                    actq_encode_row(q.dt, q.param, x + r * d, d, vals + r * rb, sc + r * ns);
                ActqLayout lay = {.enc = q.dt, .param = q.param, .d = d};
                size_t bad = 0;
                CHECK(actq_decode_rows(&lay, vals, (const uint8_t *)sc, rows, y, &bad) == 0, "%s: bad row %zu",
                      enc_name(q), bad);
                BoundStats st = {0};
                check_rows(q, x, y, rows, d, &st);
                CHECK(st.violations == 0 && st.sign_flips == 0,
                      "%s d %zu kind %d: %zu of %zu over the bound, %zu sign flips", enc_name(q), d, kind,
                      st.violations, st.checked, st.sign_flips);
                for (size_t i = 0; i < rows * d; i++)
                    if (x[i] == 0) CHECK(y[i] == 0, "%s: 0 decoded as %g", enc_name(q), (double)y[i]);
                // the scales as byte planes decode to the same bits
                actq_to_planes((const uint8_t *)sc, planes, rows * ns, 2);
                lay.scale_planes = rows * ns;
                CHECK(actq_decode_rows(&lay, vals, planes, rows, y2, &bad) == 0 && !memcmp(y, y2, rows * d * 4),
                      "%s: planes differ", enc_name(q));
                // an odd int4 row's pad nibble is 0
                if (q.dt == ACT_INT4 && d % 2)
                    for (size_t r = 0; r < rows; r++) CHECK((vals[r * rb + rb - 1] >> 4) == 0, "pad nibble");
            }
            // f32/bf16/f16 from byte planes equal their plain decoding
            for (int dt = ACT_F32; dt <= ACT_F16; dt++) {
                if (kind == 4 && dt == ACT_F16) continue;  // overflows f16 (rejected by the writer)
                size_t es = actq_elem_bytes(dt);
                uint8_t *v = malloc(rows * d * es), *p = malloc(rows * d * es);
                for (size_t r = 0; r < rows; r++) actq_encode_row(dt, 0, x + r * d, d, v + r * d * es, NULL);
                ActqLayout lay = {.enc = dt, .d = d};
                size_t bad;
                actq_decode_rows(&lay, v, NULL, rows, y, &bad);
                actq_to_planes(v, p, rows * d, es);
                lay.val_planes = rows * d;
                actq_decode_rows(&lay, p, NULL, rows, y2, &bad);
                CHECK(!memcmp(y, y2, rows * d * 4), "%s planes differ", act_dtype_name((ActDtype)dt));
                free(v), free(p);
            }
        }
        free(x), free(y), free(y2), free(vals), free(planes), free(sc);
    }
}

// The bounds are tight where they should be: on Gaussian rows int8 reaches half its step.
static void test_bounds_are_reached(void) {
    uint64_t rs = 9;
    size_t rows = 400, d = 64;
    float *x = malloc(rows * d * 4), *y = malloc(rows * d * 4);
    uint8_t *vals = malloc(rows * d);
    uint16_t *sc = malloc(rows * d * 2);
    fill_rows(x, rows, d, 0, &rs);
    for (size_t k = 0; k < N_QENCS; k++) {
        Enc q = QENCS[k];
        size_t rb = actq_row_bytes(q.dt, d), ns = actq_row_scales(q.dt, q.param, d), bad;
        for (size_t r = 0; r < rows; r++) actq_encode_row(q.dt, q.param, x + r * d, d, vals + r * rb, sc + r * ns);
        ActqLayout lay = {.enc = q.dt, .param = q.param, .d = d};
        actq_decode_rows(&lay, vals, (const uint8_t *)sc, rows, y, &bad);
        BoundStats st = {0};
        check_rows(q, x, y, rows, d, &st);
        int per_value = q.dt == ACT_INT4 && q.param == 1;  // a scale per value: errors far below the bound
        CHECK(st.worst <= 1 && (per_value || st.worst > 0.9), "%s: worst error / bound %.3f", enc_name(q), st.worst);
        // relative MSE of a uniform quantiser with step s is s^2/12 / E[x^2]; for Gaussian rows of
        // 64 values absmax/rms is about 2.4-3, so int8 lands near 3e-5 and int4 near 1e-2
        double rel = st.err2 / st.ref2, lim = q.dt == ACT_FP8 ? 1e-3 : q.dt == ACT_INT4 ? (q.param == 1 ? 3e-3 : 2e-2)
                                                             : q.param == 127 ? 1e-4 : q.param == 31 ? 1.5e-3 : 1;
        CHECK(rel < lim, "%s: relative MSE %.3g above %.3g", enc_name(q), rel, lim);
    }
    free(x), free(y), free(vals), free(sc);
}

// ---- shards ------------------------------------------------------------------------------------

typedef struct {
    int L, d;
    size_t n;
    int layers[8];
    uint32_t *tok, *pos;
    uint64_t *doc;
    float *x[2];  // (L, n, d) in, out
} Data;

static Data make_data(int L, int d, size_t n, int kind, uint64_t seed) {
    Data D = {.L = L, .d = d, .n = n};
    for (int l = 0; l < L; l++) D.layers[l] = 3 * l + 1;
    D.tok = malloc((n + 1) * 4), D.pos = malloc((n + 1) * 4), D.doc = malloc((n + 1) * 8);
    uint64_t rs = seed;
    for (size_t t = 0; t < n; t++) D.tok[t] = (uint32_t)rng_next(&rs), D.doc[t] = t / 10, D.pos[t] = (uint32_t)(t % 10);
    for (int h = 0; h < 2; h++) {
        D.x[h] = malloc(((size_t)L * n * d + 1) * 4);
        for (int l = 0; l < L; l++) fill_rows(D.x[h] + (size_t)l * n * d, n, (size_t)d, (kind + h + l) % 3, &rs);
    }
    return D;
}

static void free_data(Data *D) {
    free(D->tok), free(D->pos), free(D->doc), free(D->x[0]), free(D->x[1]);
}

static int write_shard(const char *path, const Data *D, Enc q, int shuffle, int level, uint32_t ct, Error *e) {
    ActShardWriterOptions o = {.model_id = "t", .in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = D->L,
                               .layers = D->layers, .d_model = D->d, .dtype = q.dt, .enc_param = q.param,
                               .shuffle = shuffle, .chunk_tokens = ct, .zstd_level = level};
    ActShardWriter *w = actshard_writer_open(path, &o, e);
    if (!w) return -1;
    const size_t sizes[] = {1, 50, 13, 0, 77, 2};
    return write_in_calls(w, D->L, D->d, D->n, D->tok, D->doc, D->pos, D->x[0], D->x[1], sizes, 6, e);
}

// The reference decoding of token t's row of (hook h, layer l): encode and decode one row.
static void reference_row(const Data *D, Enc q, int h, size_t l, size_t t, float *out) {
    size_t d = (size_t)D->d;
    uint8_t *v = calloc(d * 4 + 8, 1);
    uint16_t *s = calloc(d + 1, 2);
    actq_encode_row(q.dt, q.param, D->x[h] + (l * D->n + t) * d, d, v, s);
    ActqLayout lay = {.enc = q.dt, .param = q.param, .d = d};
    size_t bad;
    actq_decode_rows(&lay, v, (const uint8_t *)s, 1, out, &bad);
    free(v), free(s);
}

// Reads every chunk of path (threads decode threads) and checks values against the reference
// bit for bit, the bound, and the statistics against the decoded values.
static void check_shard(const char *path, const Data *D, Enc q, int threads, int want_planes) {
    Error e = {{0}};
    ActShard s;
    if (actshard_open(&s, path, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    CHECK(s.dtype == q.dt && s.enc_param == q.param, "%s: header says %s %u", enc_name(q), act_dtype_name(s.dtype),
          s.enc_param);
    size_t L = (size_t)D->L, d = (size_t)D->d, mismatches = 0;
    float *ref = malloc(d * 4);
    double *sum = calloc(2 * L * d, 8), *sum2 = calloc(2 * L * d, 8);
    BoundStats st = {0};
    ActChunk c = {.threads = threads}, ce = {.threads = threads, .encoded_only = 1};
    for (uint64_t i = 0; i < s.n_chunks; i++) {
        if (actshard_read_chunk(&s, i, &c, &e)) {
            CHECK(0, "%s chunk %llu: %s", enc_name(q), (unsigned long long)i, e.msg);
            break;
        }
        CHECK(s.index[i].compression == (unsigned)want_planes, "%s: compression %u", enc_name(q),
              s.index[i].compression);
        for (int h = 0; h < 2; h++)
            for (size_t l = 0; l < L; l++) {
                const float *got = (h ? c.out : c.in) + l * c.n * d;
                for (size_t k = 0; k < c.n; k++) {
                    size_t t = c.first_token + k;
                    reference_row(D, q, h, l, t, ref);
                    mismatches += memcmp(ref, got + k * d, d * 4) != 0;
                    check_rows(q, D->x[h] + (l * D->n + t) * d, got + k * d, 1, d, &st);
                    for (size_t j = 0; j < d; j++) {
                        double v = got[k * d + j];
                        sum[(h * L + l) * d + j] += v, sum2[(h * L + l) * d + j] += v * v;
                    }
                }
            }
        // encoded_only: the same bytes, decodable block by block from scales/vals
        if (actshard_read_chunk(&s, i, &ce, &e)) {
            CHECK(0, "encoded_only: %s", e.msg);
            continue;
        }
        CHECK(ce.in == NULL && ce.planes == (want_planes == 2), "encoded_only fields");
        float *y = malloc(c.n * d * 4);
        for (size_t b = 0; b < 2 * L; b++) {
            size_t ns = actq_row_scales(q.dt, q.param, d);
            ActqLayout lay = {.enc = q.dt, .param = q.param, .d = d, .scale_planes = ce.planes ? ce.n * ns : 0};
            size_t bad;
            actq_decode_rows(&lay, ce.vals + b * ce.val_block, ce.scales + b * ce.scale_block, ce.n, y, &bad);
            CHECK(!memcmp(y, c.act + b * c.n * d, c.n * d * 4), "encoded_only block %zu decodes differently", b);
        }
        free(y);
    }
    CHECK(mismatches == 0, "%s: %zu rows differ from the per-row reference", enc_name(q), mismatches);
    CHECK(st.violations == 0, "%s: %zu values over the bound", enc_name(q), st.violations);
    // statistics: over the decoded values
    for (size_t b = 0; b < 2 * L; b++)
        for (size_t j = 0; j < d; j++) {
            const ActHookStats *hs = b < L ? &s.stats[b % L].in : &s.stats[b % L].out;
            double n = (double)D->n, m = sum[b * d + j] / n, var = sum2[b * d + j] / n - m * m;
            CHECK(fabs(hs->mean[j] - m) <= 1e-9 * (1 + fabs(m)) * 1e3, "mean %g vs %g", hs->mean[j], m);
            CHECK(fabs(hs->var[j] - var) <= 1e-6 * (1 + fabs(var)), "var %g vs %g", hs->var[j], var);
        }
    actchunk_free(&c), actchunk_free(&ce);
    free(ref), free(sum), free(sum2);
    actshard_close(&s);
}

static void test_shard_roundtrip(void) {
    Data D = make_data(2, 40, 200, 0, 77);
    char *path = tpath("q.acts");
    for (size_t k = 0; k < N_QENCS; k++) {
        int shuffles[] = {0, 1, -1};
        for (int si = 0; si < 3; si++)
            for (int level = -1; level <= 3; level += 4) {
                Error e = {{0}};
                CHECK(write_shard(path, &D, QENCS[k], shuffles[si], level, 37, &e) == 0, "%s", e.msg);
                int planes = level >= 0 && (shuffles[si] ? shuffles[si] > 0 : act_default_shuffle(QENCS[k].dt));
                check_shard(path, &D, QENCS[k], si + 1, level < 0 ? 0 : planes ? 2 : 1);
            }
    }
    unlink(path);
    free(path);
    free_data(&D);
}

// Big enough chunks that decoding splits blocks across threads (2 blocks, more parts than blocks).
static void test_parallel_decode(void) {
    Data D = make_data(1, 256, 1000, 1, 78);
    char *path = tpath("par.acts");
    Enc encs[] = {{ACT_INT4, 32}, {ACT_FP8, 0}, {ACT_BF16, 0}, {ACT_F32, 0}};
    for (int k = 0; k < 4; k++) {
        Error e = {{0}};
        CHECK(write_shard(path, &D, encs[k], 1, 1, 0, &e) == 0, "%s", e.msg);
        ActShard s;
        if (actshard_open(&s, path, &e)) {
            CHECK(0, "%s", e.msg);
            continue;
        }
        ActChunk c1 = {.threads = 1}, c7 = {.threads = 7};
        CHECK(!actshard_read_chunk(&s, 0, &c1, &e) && !actshard_read_chunk(&s, 0, &c7, &e), "%s", e.msg);
        CHECK(c1.n == 1000 && !memcmp(c1.act, c7.act, 2 * 1000 * 256 * 4), "%s: 7 threads decode differently",
              enc_name(encs[k]));
        actchunk_free(&c1), actchunk_free(&c7);
        actshard_close(&s);
    }
    unlink(path);
    free(path);
    free_data(&D);
}

// ---- rejected values and parameters ------------------------------------------------------------

static void test_rejects(void) {
    char *path = tpath("rej.acts");
    int layers[2] = {2, 5};
    float in[2 * 3 * 4], out[2 * 3 * 4];
    uint32_t tok[3] = {1, 2, 3}, pos[3] = {0, 1, 2};
    uint64_t doc[3] = {0, 0, 0};
    for (size_t k = 0; k < N_QENCS; k++) {
        Error e = {{0}};
        ActShardWriterOptions o = {.in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = 2, .layers = layers,
                                   .d_model = 4, .dtype = QENCS[k].dt, .enc_param = QENCS[k].param};
        ActShardWriter *w = actshard_writer_open(path, &o, &e);
        CHECK(w != NULL, "%s", e.msg);
        if (!w) continue;
        struct {
            float v;
            const char *want;
        } bad[] = {{NAN, "non-finite output value nan at layer 5, token 2 of this write, dimension 1"},
                   {-INFINITY, "non-finite output value -inf at layer 5"},
                   {0x1p96f, "output value 7.92282e+28 at layer 5, token 2 of this write, dimension 1 is too large"}};
        for (int b = 0; b < 3; b++) {
            for (int i = 0; i < 24; i++) in[i] = out[i] = (float)i - 10;
            out[1 * 12 + 2 * 4 + 1] = bad[b].v;
            CHECK(actshard_write(w, 3, tok, doc, pos, in, out, &e) == -1 && strstr(e.msg, bad[b].want) &&
                      !strncmp(e.msg, path, strlen(path)), "%s: want \"%s\", got \"%s\"", enc_name(QENCS[k]),
                  bad[b].want, e.msg);
        }
        out[1 * 12 + 2 * 4 + 1] = -0x1.fffffep95f;  // the largest magnitude allowed
        CHECK(actshard_write(w, 3, tok, doc, pos, in, out, &e) == 0, "%s", e.msg);
        CHECK(actshard_writer_close(w, &e) == 0, "%s", e.msg);
        ActShard s;
        ActChunk c = {0};
        if (actshard_open(&s, path, &e) || actshard_read_chunk(&s, 0, &c, &e)) {
            CHECK(0, "%s", e.msg);
        } else {
            CHECK(s.n_tokens == 3 && isfinite(c.out[21]) && c.out[21] < -0x1p95f, "huge value decoded as %g",
                  (double)c.out[21]);
            for (int i = 0; i < 24; i++) CHECK(isfinite(c.in[i]) && isfinite(c.out[i]), "non-finite decoded value");
        }
        actchunk_free(&c);
        actshard_close(&s);
    }
    // parameters
    struct {
        const char *spec, *want;
        ActDtype dt;
        uint32_t param;
    } specs[] = {
        {"int8", NULL, ACT_INT8, 127},   {"int8:31", NULL, ACT_INT8, 31},   {"int4", NULL, ACT_INT4, 32},
        {"int4:7", NULL, ACT_INT4, 7},   {"fp8", NULL, ACT_FP8, 0},         {"bf16", NULL, ACT_BF16, 0},
        {"int8:128", "int8 qmax 128 outside [1, 127]", 0, 0},
        {"int8:0", "not a positive integer", 0, 0},
        {"int8:-3", "not a positive integer", 0, 0},
        {"int4:x", "not a positive integer", 0, 0},
        {"int4:2000000", "int4 group size 2000000 outside", 0, 0},
        {"fp8:2", "fp8 takes no parameter", 0, 0},
        {"int3", "unknown encoding 'int3'", 0, 0},
        {"", "unknown encoding ''", 0, 0},
    };
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        ActDtype dt = ACT_F32;
        uint32_t param = 99;
        Error e = {{0}};
        int rc = act_encoding_parse(specs[k].spec, &dt, &param, &e);
        if (specs[k].want) CHECK(rc == -1 && strstr(e.msg, specs[k].want), "%s: got \"%s\"", specs[k].spec, e.msg);
        else CHECK(rc == 0 && dt == specs[k].dt && param == specs[k].param, "%s: %s", specs[k].spec, e.msg);
    }
    Error e = {{0}};
    ActShardWriterOptions o = {.in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = 2, .layers = layers,
                               .d_model = 4, .dtype = ACT_FP8, .enc_param = 3};
    CHECK(actshard_writer_open(path, &o, &e) == NULL && strstr(e.msg, "encoding fp8 takes no parameter") &&
              !strncmp(e.msg, path, strlen(path)), "%s", e.msg);
    o.dtype = ACT_INT8, o.enc_param = 200;
    CHECK(actshard_writer_open(path, &o, &e) == NULL && strstr(e.msg, "int8 qmax 200"), "%s", e.msg);
    CHECK(access(path, F_OK) == 0, "the last good shard is still there");
    unlink(path);
    free(path);
}

// ---- corrupt files -------------------------------------------------------------------------------


// Recomputes every CRC of a shard (stored chunks), as a writer would have.
static void fix_crcs(uint8_t *b, size_t n) {
    uint8_t *f = b + n - 56;
    uint64_t index_offset = get64(f), n_chunks = get64(f + 8);
    for (uint64_t i = 0; i < n_chunks; i++) {
        uint8_t *x = b + index_offset + 48 * i;
        put32(x + 40, crc32c(b + get64(x), get64(x + 8)));
    }
    put32(f + 32, crc32c(b + index_offset, n_chunks * 48));
    put32(f + 36, crc32c(b, 80 + 4ull * get32(b + 24) + get32(b + 72) + get32(b + 76)));
    put32(f + 44, crc32c(f, 44));
}

static void expect_error(const char *path, const uint8_t *b, size_t n, const char *want) {
    FILE *f = fopen(path, "wb");
    if (f) fwrite(b, 1, n, f), fclose(f);
    Error e = {{0}};
    ActShard s;
    if (actshard_open(&s, path, &e) == 0) {
        ActChunk c = {0};
        for (uint64_t i = 0; i < s.n_chunks; i++)
            if (actshard_read_chunk(&s, i, &c, &e)) break;
        actchunk_free(&c);
        actshard_close(&s);
    }
    CHECK(!strncmp(e.msg, path, strlen(path)) && strstr(e.msg, want), "want \"%s\", got \"%s\"", want, e.msg);
}

static void test_corrupt(void) {
    Data D = make_data(2, 6, 20, 0, 79);
    char *path = tpath("good.acts"), *bad = tpath("bad.acts");
    Enc encs[] = {{ACT_INT8, 127}, {ACT_FP8, 0}, {ACT_INT4, 4}};
    for (int k = 0; k < 3; k++) {
        Error e = {{0}};
        CHECK(write_shard(path, &D, encs[k], 1, -1, 8, &e) == 0, "%s", e.msg);  // stored: bytes at known places
        size_t n = 0;
        uint8_t *good = (uint8_t *)test_read_file(path, &n), *b = malloc(n + 1);
        ActShard s;
        if (!good || actshard_open(&s, path, &e)) {
            CHECK(0, "%s", e.msg);
            free(good), free(b);
            continue;
        }
        // chunk 1: 8 tokens; its scales start after 8 + 16*8 bytes, its values after the scale block
        uint64_t c1 = s.index[1].offset, scales = c1 + 8 + 16 * 8;
        uint64_t vals = scales + get32(good + c1 + 4);
        actshard_close(&s);
        size_t ns = actq_row_scales(encs[k].dt, encs[k].param, 6);
        // (output hook, layer 5 = block 3) token 2: its first scale word
        uint64_t at = scales + (3 * 8 + 2) * ns * 2;
        memcpy(b, good, n), b[at] = 0x80, b[at + 1] = 0x7f, fix_crcs(b, n);  // +inf
        expect_error(bad, b, n, "chunk 1: output of layer 4, token 2: scale out of range");
        memcpy(b, good, n), b[at] = 0x81, b[at + 1] = 0x6f, fix_crcs(b, n);  // just above 2^96
        expect_error(bad, b, n, "scale out of range");
        memcpy(b, good, n), b[at + 1] |= 0x80, fix_crcs(b, n);  // negative
        expect_error(bad, b, n, "scale out of range");
        if (encs[k].dt == ACT_FP8) {
            memcpy(b, good, n), b[vals + (1 * 8 + 5) * 6 + 3] = 0xff, fix_crcs(b, n);  // input layer 2, token 5
            expect_error(bad, b, n, "chunk 1: input of layer 4, token 5: fp8 NaN code");
        }
        memcpy(b, good, n), put32(b + c1 + 4, get32(good + c1 + 4) + 8), fix_crcs(b, n);
        expect_error(bad, b, n, "chunk 1: ");
        memcpy(b, good, n), b[vals + 7] ^= 0x20;  // no CRC fix: a flipped value byte
        expect_error(bad, b, n, "chunk 1: checksum mismatch");
        memcpy(b, good, n), put32(b + 16, encs[k].dt == ACT_INT8 ? 0 : encs[k].dt == ACT_INT4 ? 0 : 1), fix_crcs(b, n);
        expect_error(bad, b, n, encs[k].dt == ACT_INT8 ? "int8 qmax 0 outside [1, 127]"
                                : encs[k].dt == ACT_INT4 ? "int4 group size 0 outside"
                                                          : "encoding fp8 takes no parameter, header has 1");
        memcpy(b, good, n), put32(b + 16, encs[k].dt == ACT_INT4 ? 1 : get32(good + 16)), fix_crcs(b, n);
        if (encs[k].dt == ACT_INT4) expect_error(bad, b, n, "raw size");  // groups of 1: other sizes
        free(good), free(b);
    }
    unlink(path), unlink(bad);
    free(path), free(bad);
    free_data(&D);
}

// ---- real activations ----------------------------------------------------------------------------

// Writes in/out (L, n, d) with every encoding, reads it back and checks bounds, bit-exactness
// against the per-row reference and relative MSE ceilings (loose: 2-3x what the data give).
static void roundtrip_real(const char *what, int L, int d, size_t n, const float *in, const float *out) {
    Data D = {.L = L, .d = d, .n = n};
    for (int l = 0; l < L; l++) D.layers[l] = l;
    D.tok = calloc(n, 4), D.pos = calloc(n, 4), D.doc = calloc(n, 8);
    for (size_t t = 0; t < n; t++) D.pos[t] = (uint32_t)t;
    D.x[0] = (float *)in, D.x[1] = (float *)out;
    char *path = tpath("real.acts");
    Enc all[] = {{ACT_INT8, 127}, {ACT_INT8, 31}, {ACT_FP8, 0}, {ACT_INT4, 32}, {ACT_INT4, 16}};
    double lim[] = {2e-4, 3e-3, 2e-3, 5e-2, 4e-2};
    for (int k = 0; k < 5; k++) {
        Error e = {{0}};
        CHECK(write_shard(path, &D, all[k], 0, 1, 64, &e) == 0, "%s", e.msg);
        check_shard(path, &D, all[k], 2, act_default_shuffle(all[k].dt) ? 2 : 1);
        // the relative MSE over everything
        ActShard s;
        ActChunk c = {0};
        BoundStats st = {0};
        if (!actshard_open(&s, path, &e)) {
            for (uint64_t i = 0; i < s.n_chunks && !actshard_read_chunk(&s, i, &c, &e); i++)
                for (int h = 0; h < 2; h++)
                    for (int l = 0; l < L; l++)
                        check_rows(all[k], D.x[h] + ((size_t)l * n + c.first_token) * d,
                                   (h ? c.out : c.in) + (size_t)l * c.n * d, c.n, (size_t)d, &st);
            actchunk_free(&c);
            actshard_close(&s);
        }
        double rel = st.err2 / st.ref2;
        printf("  %-12s %-8s relative MSE %.3g, worst error/bound %.3f\n", what, enc_name(all[k]), rel, st.worst);
        CHECK(st.checked == 2 * (size_t)L * n * d && st.violations == 0 && rel < lim[k], "%s %s: rel MSE %.3g",
              what, enc_name(all[k]), rel);
    }
    unlink(path);
    free(path);
    free(D.tok), free(D.pos), free(D.doc);
}

static void test_real_stories260K(void) {
    char ckpt[512], dir[64] = "/tmp/cltkit_aq_XXXXXX", p[600], ids_path[512];
    if (!test_need_shared(ckpt, sizeof ckpt, "models/stories260K/stories260K.bin") ||
        !test_need_shared(ids_path, sizeof ids_path, "models/stories260K/golden/greedy_ids_200.txt"))
        return;
    Llama2cModel lm;
    Error e = {{0}};
    if (!mkdtemp(dir) || llama2c_open(&lm, ckpt, &e)) {
        CHECK(0, "stories260K: %s", e.msg);
        return;
    }
    int rc = llama2c_write_hf(&lm, dir, &e);
    llama2c_free(&lm);
    Model m;
    if (rc || model_load(&m, dir, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    // the model's own greedy story (real text) and a second context of the same ids shifted
    uint32_t ids[2 * 200];
    int T = 0;
    FILE *f = fopen(ids_path, "r");
    char line[256];
    ids[T++] = 1;
    while (f && T < 200 && fgets(line, sizeof line, f)) {
        int pos, id;
        if (line[0] != '#' && sscanf(line, "%d %d", &pos, &id) == 2) ids[T++] = (uint32_t)id;
    }
    if (f) fclose(f);
    CHECK(T == 200, "read %d ids from %s", T, ids_path);
    for (int t = 0; t < T; t++) ids[T + t] = ids[(t + 57) % T];
    int B = 2, L = m.cfg.n_layers, d = m.cfg.d_model;
    size_t n = (size_t)B * T;
    float **mi = calloc((size_t)L, sizeof(float *)), **mo = calloc((size_t)L, sizeof(float *));
    float *in = malloc((size_t)L * n * d * 4), *out = malloc((size_t)L * n * d * 4);
    for (int l = 0; l < L; l++) mi[l] = in + (size_t)l * n * d, mo[l] = out + (size_t)l * n * d;
    ForwardState *st = forward_state_new(&m, B, T);
    ForwardOutputs fo = {.mlp_in = mi, .mlp_out = mo};
    CHECK(model_forward(&m, st, ids, B, T, &fo, &e) == 0, "%s", e.msg);
    roundtrip_real("stories260K", L, d, n, in, out);
    forward_state_free(st);
    model_free(&m);
    free(mi), free(mo), free(in), free(out);
    const char *files[] = {"model.safetensors", "config.json", "generation_config.json"};
    for (int i = 0; i < 3; i++) snprintf(p, sizeof p, "%s/%s", dir, files[i]), unlink(p);
    rmdir(dir);
}

// The golden models' mlp_in / mlp_out as transformers computed them (tests/golden/models).
static void test_real_golden_models(void) {
    const char *names[] = {"llama3", "gemma2", "gpt2"};
    for (int k = 0; k < 3; k++) {
        char path[256];
        snprintf(path, sizeof path, "tests/golden/models/%s/golden.safetensors", names[k]);
        SafeTensors g;
        Error e = {{0}};
        if (safetensors_open(&g, path, &e)) {
            CHECK(0, "%s", e.msg);
            continue;
        }
        int L = 0;
        char name[64];
        for (;; L++) {
            snprintf(name, sizeof name, "mlp_in.%d", L);
            if (!safetensors_find(&g, name)) break;
        }
        const StTensor *t0 = safetensors_find(&g, "mlp_in.0");
        size_t numel = t0 ? t0->numel : 0, d = t0 ? (size_t)t0->shape[t0->ndim - 1] : 1, n = numel / d;
        float *in = malloc((size_t)L * numel * 4 + 4), *out = malloc((size_t)L * numel * 4 + 4);
        for (int l = 0; l < L; l++) {
            snprintf(name, sizeof name, "mlp_in.%d", l);
            const StTensor *ti = safetensors_find(&g, name);
            snprintf(name, sizeof name, "mlp_out.%d", l);
            const StTensor *to = safetensors_find(&g, name);
            CHECK(ti && to && ti->numel == numel && to->numel == numel, "%s layer %d", names[k], l);
            if (!ti || !to) continue;
            safetensors_to_f32(&g, ti, in + (size_t)l * numel, numel, &e);
            safetensors_to_f32(&g, to, out + (size_t)l * numel, numel, &e);
        }
        CHECK(L > 0 && n > 0, "%s: no mlp_in/mlp_out goldens", names[k]);
        if (L > 0 && n > 0) roundtrip_real(names[k], L, (int)d, n, in, out);
        free(in), free(out);
        safetensors_close(&g);
    }
}

int main(void) {
    tmp_open(&shard_tmp, "actquant");
    RUN_TEST(test_e4m3_conversion);
    RUN_TEST(test_bf16_round_up);
    RUN_TEST(test_rows_random);
    RUN_TEST(test_bounds_are_reached);
    RUN_TEST(test_shard_roundtrip);
    RUN_TEST(test_parallel_decode);
    RUN_TEST(test_rejects);
    RUN_TEST(test_corrupt);
    RUN_TEST(test_real_stories260K);
    RUN_TEST(test_real_golden_models);
    tmp_close(&shard_tmp);
    return test_summary();
}
