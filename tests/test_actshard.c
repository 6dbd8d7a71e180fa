// test_actshard.c — activation shard round trips (f32 exact; bf16/f16 equal to the conversion of
// the input), chunk boundaries, write calls of many sizes, random-order and multi-threaded chunk
// reads, statistics against a direct double-precision computation, zero tokens, atomic writes,
// writer validation, the info JSON, a file built by hand from formats/acts.md, and corrupt
// files, each of which must fail with an error that starts with the path and names the problem.
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>
#include <zstd.h>

#include "actshard.h"
#include "check.h"
#include "shard_check.h"
#include "convert.h"
#include "crc32c.h"



static int starts_with_path(const char *msg, const char *path) { return strncmp(msg, path, strlen(path)) == 0; }

// ---- a data set and its expected decoding ----------------------------------------------------

typedef struct {
    int L, d;
    size_t n;
    int layers[8];
    uint32_t *tok, *pos;  // (n,)
    uint64_t *doc;        // (n,)
    float *x[2];          // (L, n, d) per hook: in, out, as given to the writer
    float *want[2];       // (L, n, d) per hook, as a reader must decode them for a dtype
} Data;

static Data make_data(int L, int d, size_t n, uint64_t seed) {
    Data D = {.L = L, .d = d, .n = n};
    for (int l = 0; l < L; l++) D.layers[l] = 2 * l + (l > 1);  // 0, 2, 5, 7, ...
    D.tok = malloc((n + 1) * 4), D.pos = malloc((n + 1) * 4), D.doc = malloc((n + 1) * 8);
    uint64_t rs = seed;
    for (size_t t = 0; t < n; t++) {
        D.tok[t] = (uint32_t)rng_next(&rs);
        D.doc[t] = rng_next(&rs);
        D.pos[t] = (uint32_t)(t % 37);
    }
    size_t total = (size_t)L * n * d;
    for (int h = 0; h < 2; h++) {
        D.x[h] = malloc((total + 1) * 4);
        D.want[h] = malloc((total + 1) * 4);
        for (size_t k = 0; k < total; k++) {
            int j = (int)(k % (size_t)d);
            // per-dimension offsets and scales (means far from 0 test the variance's precision),
            // plus a few special values: -0, tiny (f16 subnormal / zero), near f16's maximum
            double v = (j % 3 == 0 ? 20.0 * j : 0.1 * j) + (0.5 + j % 4) * rng_normal(&rs);
            if (k % 97 == 5) v = -0.0;
            if (k % 89 == 7) v = 3e-8 * (double)(k % 5);
            if (k % 211 == 11) v = h ? -65500.0 : 65519.0;
            D.x[h][k] = (float)v;
        }
    }
    return D;
}

static void set_want(Data *D, ActDtype dt) {
    size_t total = (size_t)D->L * D->n * D->d;
    for (int h = 0; h < 2; h++)
        for (size_t k = 0; k < total; k++) {
            float v = D->x[h][k];
            D->want[h][k] = dt == ACT_F32 ? v
                : dt == ACT_BF16          ? bf16_to_f32(f32_to_bf16(v))
                                          : f16_to_f32(f32_to_f16(v));
        }
}

static void free_data(Data *D) {
    free(D->tok), free(D->pos), free(D->doc);
    for (int h = 0; h < 2; h++) free(D->x[h]), free(D->want[h]);
}

// Writes D in calls of the given sizes (cycled; 0 is a legal empty call). Returns 0 or -1.
static int write_data(const char *path, const Data *D, ActDtype dt, uint32_t ct, int level, const size_t *sizes,
                      int n_sizes, Error *e) {
    ActShardWriterOptions opt = {.model_id = "stories260K", .model_hash = 0x1234abcd5678ef90ull,
                                 .in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = D->L,
                                 .layers = D->layers, .d_model = D->d, .dtype = dt, .chunk_tokens = ct,
                                 .zstd_level = level, .meta_json = "{\"ctx\": 64, \"tokens\": \"a.tok\"}"};
    ActShardWriter *w = actshard_writer_open(path, &opt, e);
    if (!w) return -1;
    return write_in_calls(w, D->L, D->d, D->n, D->tok, D->doc, D->pos, D->x[0], D->x[1], sizes, n_sizes, e);
}

static int bits_equal(const float *a, const float *b, size_t n) {  // -0 vs 0 and NaN payloads count
    return n == 0 || memcmp(a, b, n * 4) == 0;
}

// Checks chunk c (chunk i of s) against D. Returns the number of mismatches (thread-safe).
static int chunk_mismatches(const ActShard *s, const ActChunk *c, uint64_t i, const Data *D) {
    const ActShardIndexEntry *x = &s->index[i];
    size_t f = x->first_token, n = c->n, d = (size_t)D->d;
    int bad = (c->n != x->n_tokens) + (c->chunk != i) + (c->first_token != f);
    if (bad || f + n > D->n) return bad + 1;
    bad += memcmp(c->token_ids, D->tok + f, n * 4) != 0;
    bad += memcmp(c->doc_ids, D->doc + f, n * 8) != 0;
    bad += memcmp(c->positions, D->pos + f, n * 4) != 0;
    for (int l = 0; l < D->L; l++) {
        bad += !bits_equal(c->in + (size_t)l * n * d, D->want[0] + ((size_t)l * D->n + f) * d, n * d);
        bad += !bits_equal(c->out + (size_t)l * n * d, D->want[1] + ((size_t)l * D->n + f) * d, n * d);
    }
    return bad;
}

// Statistics of the decoded values, computed directly (two passes, double).
static void check_stats(const ActShard *s, const Data *D) {
    size_t n = D->n, d = (size_t)D->d;
    double *mean = calloc(d, 8), *var = calloc(d, 8);
    for (int l = 0; l < D->L; l++) {
        CHECK(s->stats[l].count == n, "count %llu", (unsigned long long)s->stats[l].count);
        for (int h = 0; h < 2; h++) {
            const ActHookStats *hs = h ? &s->stats[l].out : &s->stats[l].in;
            const float *v = D->want[h] + (size_t)l * n * d;
            double norm = 0, sq = 0;
            memset(mean, 0, d * 8), memset(var, 0, d * 8);
            for (size_t t = 0; t < n; t++) {
                double q = 0;
                for (size_t j = 0; j < d; j++) q += (double)v[t * d + j] * v[t * d + j], mean[j] += v[t * d + j];
                norm += sqrt(q), sq += q;
            }
            for (size_t j = 0; j < d; j++) mean[j] = n ? mean[j] / n : 0;
            for (size_t t = 0; t < n; t++)
                for (size_t j = 0; j < d; j++) var[j] += (v[t * d + j] - mean[j]) * (v[t * d + j] - mean[j]);
            CHECK_NEAR(hs->mean_norm, n ? norm / n : 0, 1e-6);
            CHECK_NEAR(hs->mean_sq_norm, n ? sq / n : 0, 1e-6);
            for (size_t j = 0; j < d; j++) {
                CHECK_NEAR(hs->mean[j], mean[j], 1e-6);
                CHECK_NEAR(hs->var[j], n ? var[j] / n : 0, 1e-6);
            }
        }
    }
    free(mean), free(var);
}

static void shuffle(uint64_t *v, uint64_t n, uint64_t seed) {
    for (uint64_t i = 0; i < n; i++) v[i] = i;
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = rng_next(&seed) % i, t = v[i - 1];
        v[i - 1] = v[j], v[j] = t;
    }
}

static void check_shard(const ActShard *s, const Data *D, ActDtype dt, uint32_t ct, uint64_t seed) {
    Error e = {{0}};
    CHECK(s->version == ACTSHARD_VERSION && s->dtype == dt && s->n_layers == D->L && s->d_model == D->d &&
              s->chunk_tokens == ct, "header fields");
    for (int l = 0; l < D->L; l++) CHECK(s->layers[l] == D->layers[l], "layers[%d] = %d", l, s->layers[l]);
    CHECK(strcmp(s->in_hook, "mlp_in") == 0 && strcmp(s->out_hook, "mlp_out") == 0, "hooks %s %s", s->in_hook,
          s->out_hook);
    CHECK(strcmp(s->model_id, "stories260K") == 0 && s->model_hash == 0x1234abcd5678ef90ull, "model %s", s->model_id);
    CHECK(strcmp(s->meta_json, "{\"ctx\": 64, \"tokens\": \"a.tok\"}") == 0, "meta %s", s->meta_json);
    CHECK(s->n_tokens == D->n, "n_tokens %llu", (unsigned long long)s->n_tokens);
    CHECK(s->n_chunks == (D->n + ct - 1) / ct, "n_chunks %llu", (unsigned long long)s->n_chunks);
    CHECK(actshard_layer_index(s, D->layers[D->L - 1]) == D->L - 1 && actshard_layer_index(s, 1) == -1,
          "layer_index");
    for (uint64_t g = 0; g < D->n; g += 5) CHECK(actshard_chunk_of_token(s, g) == g / ct, "chunk_of_token %llu",
                                                 (unsigned long long)g);
    uint64_t *order = malloc((s->n_chunks + 1) * 8);
    shuffle(order, s->n_chunks, seed);
    ActChunk c = {0};
    for (uint64_t q = 0; q < s->n_chunks; q++) {
        uint64_t i = order[q];
        if (actshard_read_chunk(s, i, &c, &e)) {
            CHECK(0, "chunk %llu: %s", (unsigned long long)i, e.msg);
            continue;
        }
        CHECK(c.n == (i + 1 < s->n_chunks ? ct : D->n - i * ct), "chunk %llu has %u tokens", (unsigned long long)i,
              c.n);
        CHECK(chunk_mismatches(s, &c, i, D) == 0, "chunk %llu differs (%s)", (unsigned long long)i, act_dtype_name(dt));
    }
    CHECK(actshard_read_chunk(s, s->n_chunks, &c, &e) == -1 && starts_with_path(e.msg, s->path) &&
              strstr(e.msg, "out of range"), "%s", e.msg);
    actchunk_free(&c);
    free(order);
    check_stats(s, D);
}

static void roundtrip(const char *name, Data *D, ActDtype dt, uint32_t ct, int level, const size_t *sizes,
                      int n_sizes) {
    set_want(D, dt);
    char *path = tpath(name);
    Error e = {{0}};
    CHECK(write_data(path, D, dt, ct, level, sizes, n_sizes, &e) == 0, "write: %s", e.msg);
    uint32_t ct_eff = ct ? ct : ACTSHARD_DEFAULT_CHUNK_TOKENS;
    ActShard s;
    if (actshard_open(&s, path, &e) == 0) {
        check_shard(&s, D, dt, ct_eff, 11);
        for (uint64_t i = 0; i < s.n_chunks; i++)
            CHECK(s.index[i].compression == (level < 0 ? 0u : act_default_shuffle(dt) ? 2u : 1u), "compression %u",
                  s.index[i].compression);
        actshard_close(&s);
    } else {
        CHECK(0, "open: %s", e.msg);
    }
    size_t len;
    char *bytes = test_read_file(path, &len);
    if (bytes && actshard_open_mem(&s, bytes, len, path, &e) == 0) {
        check_shard(&s, D, dt, ct_eff, 12);
        actshard_close(&s);
    } else {
        CHECK(0, "open_mem: %s", e.msg);
    }
    free(bytes);
    unlink(path);
    free(path);
}

static void test_roundtrip_dtypes(void) {
    const size_t sizes[] = {1, 6, 0, 7, 13, 2, 30};  // across, onto and within chunk boundaries
    Data D = make_data(3, 17, 100, 1);                  // 100 = 14 chunks of 7 + 2
    roundtrip("f32.acts", &D, ACT_F32, 7, 0, sizes, 7);
    roundtrip("bf16.acts", &D, ACT_BF16, 7, 0, sizes, 7);
    roundtrip("f16.acts", &D, ACT_F16, 7, 0, sizes, 7);
    roundtrip("f32_store.acts", &D, ACT_F32, 7, -1, sizes, 7);
    roundtrip("bf16_store.acts", &D, ACT_BF16, 7, -1, sizes, 7);
    roundtrip("f16_z9.acts", &D, ACT_F16, 7, 9, sizes, 7);
    const size_t one[] = {100};
    roundtrip("f32_one.acts", &D, ACT_F32, 0, 0, one, 1);  // default chunk: one partial chunk
    roundtrip("bf16_exact.acts", &D, ACT_BF16, 25, 0, one, 1);  // chunks exactly full
    free_data(&D);
    // One layer, d = 1, one token per chunk; and bigger rows with many small writes.
    Data D1 = make_data(1, 1, 9, 2);
    const size_t two[] = {2};
    roundtrip("tiny.acts", &D1, ACT_F16, 1, 0, two, 1);
    free_data(&D1);
    Data D2 = make_data(5, 64, 300, 3);
    const size_t s2[] = {3, 50, 1, 77};
    roundtrip("wide.acts", &D2, ACT_BF16, 64, 3, s2, 4);
    free_data(&D2);
}

static void test_bf16_f16_encoding(void) {
    // The file holds the rounded words: NaN excluded (the writer rejects it), ties to even,
    // f16 subnormals and the top of f16's range.
    float v[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -2.5f, 0x1p-20f, 65504.0f, 65519.0f, -0.0f, 3.0e38f};
    size_t n = sizeof v / sizeof v[0];
    for (int dt = ACT_BF16; dt <= ACT_F16; dt++) {
        int L = 1, layers[1] = {4};
        char *path = tpath("enc.acts");
        Error e = {{0}};
        ActShardWriterOptions opt = {.in_hook = "resid_mid", .out_hook = "mlp_out", .n_layers = L, .layers = layers,
                                     .d_model = (int)n, .dtype = (ActDtype)dt, .zstd_level = -1};
        ActShardWriter *w = actshard_writer_open(path, &opt, &e);
        CHECK(w != NULL, "%s", e.msg);
        if (!w) return;
        uint32_t tok = 1, pos = 0;
        uint64_t doc = 0;
        float in[8], out[8];
        memcpy(in, v, sizeof in), memcpy(out, v, sizeof out);
        if (dt == ACT_F16) in[7] = out[7] = 1.0f;  // 3e38 overflows f16 (tested below)
        CHECK(actshard_write(w, 1, &tok, &doc, &pos, in, out, &e) == 0, "%s", e.msg);
        CHECK(actshard_writer_close(w, &e) == 0, "%s", e.msg);
        ActShard s;
        ActChunk c = {0};
        if (actshard_open(&s, path, &e) || actshard_read_chunk(&s, 0, &c, &e)) {
            CHECK(0, "%s", e.msg);
        } else {
            for (size_t k = 0; k < n; k++) {
                float want = dt == ACT_BF16 ? bf16_to_f32(f32_to_bf16(in[k])) : f16_to_f32(f32_to_f16(in[k]));
                CHECK(f32_bits(c.in[k]) == f32_bits(want), "%s value %zu: %g vs %g", act_dtype_name((ActDtype)dt), k,
                      (double)c.in[k], (double)want);
            }
            CHECK(strcmp(s.in_hook, "resid_mid") == 0 && strcmp(s.model_id, "") == 0 && strcmp(s.meta_json, "{}") == 0,
                  "defaults");
        }
        CHECK(bf16_to_f32(f32_to_bf16(1.0f + 0x1p-8f)) == 1.0f, "bf16 tie rounds to even (down)");
        CHECK(bf16_to_f32(f32_to_bf16(1.0f + 3 * 0x1p-8f)) == 1.0f + 0x1p-6f, "bf16 tie rounds to even (up)");
        actchunk_free(&c);
        actshard_close(&s);
        unlink(path);
        free(path);
    }
}

// ---- zero tokens -------------------------------------------------------------------------------

static void test_zero_tokens(void) {
    Data D = make_data(2, 5, 0, 4);
    for (int dt = 0; dt < ACT_N_DTYPES; dt++) {
        set_want(&D, (ActDtype)dt);
        char *path = tpath("zero.acts");
        Error e = {{0}};
        ActShardWriterOptions opt = {.in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = 2, .layers = D.layers,
                                     .d_model = 5, .dtype = (ActDtype)dt};
        ActShardWriter *w = actshard_writer_open(path, &opt, &e);
        CHECK(w && actshard_write(w, 0, NULL, NULL, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
        CHECK(w && actshard_writer_close(w, &e) == 0, "%s", e.msg);
        ActShard s;
        if (actshard_open(&s, path, &e) == 0) {
            CHECK(s.n_tokens == 0 && s.n_chunks == 0, "zero shard has tokens");
            check_stats(&s, &D);
            ActChunk c = {0};
            CHECK(actshard_read_chunk(&s, 0, &c, &e) == -1 && strstr(e.msg, "out of range"), "%s", e.msg);
            actchunk_free(&c);
            actshard_close(&s);
        } else {
            CHECK(0, "%s", e.msg);
        }
        unlink(path);
        free(path);
    }
    free_data(&D);
}

// ---- threads -----------------------------------------------------------------------------------

typedef struct {
    const ActShard *s;
    const Data *D;
    uint64_t seed;
    int bad;
    char msg[1024];
} ReaderArgs;

static void *reader_thread(void *p) {
    ReaderArgs *a = p;
    ActChunk c = {0};  // per-thread chunk: the shard itself is shared and const
    Error e;
    uint64_t *order = malloc((a->s->n_chunks + 1) * 8);
    for (int rep = 0; rep < 20; rep++) {
        shuffle(order, a->s->n_chunks, a->seed + (uint64_t)rep);
        for (uint64_t q = 0; q < a->s->n_chunks; q++) {
            if (actshard_read_chunk(a->s, order[q], &c, &e)) {
                a->bad++;
                snprintf(a->msg, sizeof a->msg, "%s", e.msg);
                continue;
            }
            a->bad += chunk_mismatches(a->s, &c, order[q], a->D);
        }
    }
    free(order);
    actchunk_free(&c);
    return NULL;
}

static void test_threaded_reads(void) {
    Data D = make_data(2, 33, 500, 5);
    set_want(&D, ACT_BF16);
    const size_t sizes[] = {64};
    char *path = tpath("threads.acts");
    Error e = {{0}};
    CHECK(write_data(path, &D, ACT_BF16, 16, 0, sizes, 1, &e) == 0, "%s", e.msg);
    ActShard s;
    if (actshard_open(&s, path, &e) == 0) {
        enum { T = 4 };
        pthread_t th[T];
        ReaderArgs args[T];
        for (int t = 0; t < T; t++) {
            args[t] = (ReaderArgs){.s = &s, .D = &D, .seed = 100 + (uint64_t)t};
            pthread_create(&th[t], NULL, reader_thread, &args[t]);
        }
        for (int t = 0; t < T; t++) {
            pthread_join(th[t], NULL);
            CHECK(args[t].bad == 0, "thread %d: %d mismatches %s", t, args[t].bad, args[t].msg);
        }
        actshard_close(&s);
    } else {
        CHECK(0, "%s", e.msg);
    }
    unlink(path);
    free(path);
    free_data(&D);
}

// ---- atomic writes and writer validation -------------------------------------------------------


static void test_atomic_write(void) {
    char *path = tpath("atomic.acts");
    Error e = {{0}};
    int layers[2] = {1, 3};
    ActShardWriterOptions opt = {.in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = 2, .layers = layers,
                                 .d_model = 4, .dtype = ACT_F16, .chunk_tokens = 2};
    uint32_t tok[3] = {1, 2, 3}, pos[3] = {0, 1, 2};
    uint64_t doc[3] = {9, 9, 9};
    float in[24], out[24];
    for (int k = 0; k < 24; k++) in[k] = (float)k, out[k] = -(float)k;
    ActShardWriter *w = actshard_writer_open(path, &opt, &e);
    CHECK(w != NULL, "%s", e.msg);
    if (!w) return;
    CHECK(actshard_write(w, 3, tok, doc, pos, in, out, &e) == 0, "%s", e.msg);
    CHECK(access(path, F_OK) != 0, "file visible before close");
    CHECK(tmp_files_left() == 1, "expected one temp file while writing");

    // A bad value fails the call, names path, layer, hook, token and dimension, and writes
    // nothing of the call: the writer carries on.
    in[1 * 12 + 2 * 4 + 3] = NAN;  // layer index 1 (model layer 3), token 2, dimension 3
    CHECK(actshard_write(w, 3, tok, doc, pos, in, out, &e) == -1 && starts_with_path(e.msg, path) &&
              strstr(e.msg, "non-finite input value nan at layer 3, token 2 of this write, dimension 3"), "%s", e.msg);
    in[23] = 1.0f;
    out[5] = 70000.0f;
    CHECK(actshard_write(w, 3, tok, doc, pos, in, out, &e) == -1 &&
              strstr(e.msg, "output value 70000 at layer 1, token 1 of this write, dimension 1 overflows f16"), "%s",
          e.msg);
    out[5] = 65504.0f;
    CHECK(actshard_write(w, 3, tok, doc, pos, in, out, &e) == 0, "%s", e.msg);
    CHECK(actshard_writer_close(w, &e) == 0, "%s", e.msg);
    CHECK(access(path, F_OK) == 0, "no file after close");
    CHECK(tmp_files_left() == 0, "temp file left after close");
    ActShard s;
    if (actshard_open(&s, path, &e) == 0) {
        CHECK(s.n_tokens == 6 && s.n_chunks == 3, "%llu tokens", (unsigned long long)s.n_tokens);
        actshard_close(&s);
    } else {
        CHECK(0, "%s", e.msg);
    }
    unlink(path);

    w = actshard_writer_open(path, &opt, &e);
    CHECK(w != NULL, "%s", e.msg);
    if (!w) return;
    CHECK(actshard_write(w, 2, tok, doc, pos, out, out, &e) == 0, "%s", e.msg);
    actshard_writer_abort(w);
    CHECK(access(path, F_OK) != 0, "file exists after abort");
    CHECK(tmp_files_left() == 0, "temp file left after abort");

    // Bad options: nothing is created, the error names the path and the problem.
    struct {
        ActShardWriterOptions o;
        const char *want;
    } bad[] = {
        {{.in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = 2, .layers = (int[]){3, 3}, .d_model = 4},
         "strictly ascending"},
        {{.in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = 0, .layers = layers, .d_model = 4}, "n_layers 0"},
        {{.in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = 2, .layers = layers, .d_model = 0}, "d_model 0"},
        {{.in_hook = "MLP in", .out_hook = "mlp_out", .n_layers = 2, .layers = layers, .d_model = 4},
         "input hook \"MLP in\""},
        {{.in_hook = "mlp_in", .n_layers = 2, .layers = layers, .d_model = 4}, "output hook"},
        {{.in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = 2, .layers = layers, .d_model = 4,
          .meta_json = "[1]"}, "not a JSON object"},
        {{.in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = 2, .layers = layers, .d_model = 4,
          .dtype = (ActDtype)7}, "unknown dtype 7"},
        {{.in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = 2, .layers = layers, .d_model = 1 << 20,
          .chunk_tokens = 4096}, "chunk_tokens 4096 too large (at most 256"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        e.msg[0] = 0;
        w = actshard_writer_open(path, &bad[k].o, &e);
        CHECK(w == NULL && starts_with_path(e.msg, path) && strstr(e.msg, bad[k].want), "want \"%s\", got \"%s\"",
              bad[k].want, e.msg);
        actshard_writer_abort(w);
    }
    // The default chunk size shrinks to fit the per-chunk cap (2^30 values / 2^19 per token)
    // instead of failing.
    ActShardWriterOptions big = {.in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = 1, .layers = layers,
                                 .d_model = 1 << 18, .dtype = ACT_BF16};
    w = actshard_writer_open(path, &big, &e);
    CHECK(w != NULL && actshard_writer_close(w, &e) == 0, "%s", e.msg);
    if (actshard_open(&s, path, &e) == 0) {
        CHECK(s.chunk_tokens == 2048, "default chunk_tokens %u", s.chunk_tokens);
        actshard_close(&s);
    } else {
        CHECK(0, "%s", e.msg);
    }
    unlink(path);
    CHECK(access(path, F_OK) != 0 && tmp_files_left() == 0, "failed writers left files");
    free(path);
}

// ---- info JSON ---------------------------------------------------------------------------------

static void test_info_json(void) {
    Data D = make_data(2, 3, 20, 6);
    set_want(&D, ACT_F32);
    const size_t sizes[] = {20};
    char *path = tpath("info.acts");
    Error e = {{0}};
    CHECK(write_data(path, &D, ACT_F32, 8, 0, sizes, 1, &e) == 0, "%s", e.msg);
    ActShard s;
    if (actshard_open(&s, path, &e)) {
        CHECK(0, "%s", e.msg);
        free(path), free_data(&D);
        return;
    }
    for (int per_dim = 0; per_dim < 2; per_dim++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        CHECK(actshard_print_info(&s, f, per_dim, &e) == 0, "%s", e.msg);
        fclose(f);
        json_error_t jerr;
        json_t *j = json_loads(buf, 0, &jerr);
        CHECK(j != NULL, "info is not JSON: %s", jerr.text);
        if (j) {
            json_t *st = json_array_get(json_object_get(j, "stats"), 1);
            json_t *in = json_object_get(st, "in");
            CHECK(json_integer_value(json_object_get(j, "n_tokens")) == 20 &&
                      json_integer_value(json_object_get(j, "n_chunks")) == 3 &&
                      strcmp(json_string_value(json_object_get(j, "dtype")), "f32") == 0 &&
                      strcmp(json_string_value(json_object_get(j, "model_hash")), "1234abcd5678ef90") == 0 &&
                      json_integer_value(json_object_get(json_object_get(j, "meta"), "ctx")) == 64 &&
                      json_integer_value(json_object_get(st, "layer")) == D.layers[1],
                  "fields: %s", buf);
            CHECK_NEAR(json_real_value(json_object_get(in, "mean_norm")), s.stats[1].in.mean_norm, 1e-9);
            // E||x||^2 = ||mean||^2 + sum(var)
            double nm = json_real_value(json_object_get(in, "norm_of_mean"));
            CHECK_NEAR(nm * nm + json_real_value(json_object_get(in, "total_var")), s.stats[1].in.mean_sq_norm, 1e-6);
            CHECK((json_array_size(json_object_get(in, "var")) == 3) == (per_dim == 1), "per_dim %d", per_dim);
            json_decref(j);
        }
        free(buf);
    }
    actshard_close(&s);
    unlink(path);
    free(path);
    free_data(&D);
}

// ---- a file built by hand from formats/acts.md -------------------------------------------------

static void putf64(uint8_t *p, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    put64(p, u);
}


// One f32 layer (model layer 6) of d = 2, three tokens, one chunk, stored or zstd; `scale`
// puts scale_bytes in the payload, `count` is written as the statistics' token count.
static size_t build_shard(uint8_t *b, int zstd, uint32_t scale, uint64_t count) {
    const float in[3][2] = {{1, 2}, {3, 4}, {-1, 0}}, out[3][2] = {{0.5f, 0}, {0, 0}, {2, 2}};
    uint8_t raw[256] = {0};
    put32(raw, 3), put32(raw + 4, scale);
    for (int t = 0; t < 3; t++) {
        put64(raw + 8 + 8 * t, 100 + t);             // doc ids
        put32(raw + 32 + 4 * t, 7 * (uint32_t)t);    // token ids
        put32(raw + 44 + 4 * t, (uint32_t)t);        // positions
        memcpy(raw + 56 + 8 * t, in[t], 8);          // in: (1 layer, 3, 2)
        memcpy(raw + 80 + 8 * t, out[t], 8);         // out
    }
    size_t raw_n = 104;
    size_t n = 0;
    memcpy(b, "CLTKACTS", 8);
    put32(b + 8, 1), put32(b + 12, 0), put32(b + 16, 0), put32(b + 20, 2), put32(b + 24, 1), put32(b + 28, 4);
    put64(b + 32, 0);
    memset(b + 40, 0, 32), memcpy(b + 40, "resid_mid", 9), memcpy(b + 56, "mlp_out", 7);
    put32(b + 72, 1), put32(b + 76, 2);
    put32(b + 80, 6), b[84] = 'm', memcpy(b + 85, "{}", 2);
    n = 87;
    uint64_t header_end = n;
    size_t cn = zstd ? ZSTD_compress(b + n, 512, raw, raw_n, 3) : raw_n;
    if (!zstd) memcpy(b + n, raw, raw_n);
    uint32_t chunk_crc = crc32c(b + n, cn);
    n += cn;
    uint64_t stats_offset = n;  // one layer: u64 count + 2 x (2 f64 + 2 x 2 f64) = 104 bytes
    put64(b + n, count);
    const float(*x[2])[2] = {in, out};
    for (int h = 0; h < 2; h++) {
        uint8_t *p = b + n + 8 + 48 * h;
        double norm = 0, sq = 0, m[2] = {0, 0}, v[2] = {0, 0};
        for (int t = 0; t < 3; t++) {
            double q = x[h][t][0] * x[h][t][0] + x[h][t][1] * x[h][t][1];
            norm += sqrt(q) / 3, sq += q / 3, m[0] += x[h][t][0] / 3.0, m[1] += x[h][t][1] / 3.0;
        }
        for (int t = 0; t < 3; t++)
            for (int j = 0; j < 2; j++) v[j] += (x[h][t][j] - m[j]) * (x[h][t][j] - m[j]) / 3;
        putf64(p, norm), putf64(p + 8, sq), putf64(p + 16, m[0]), putf64(p + 24, m[1]);
        putf64(p + 32, v[0]), putf64(p + 40, v[1]);
    }
    uint32_t stats_crc = crc32c(b + n, 104);
    n += 104;
    uint64_t index_offset = n;
    uint8_t *x0 = b + n;
    put64(x0, header_end), put64(x0 + 8, cn), put64(x0 + 16, raw_n), put64(x0 + 24, 0);
    put32(x0 + 32, 3), put32(x0 + 36, zstd ? 1 : 0), put32(x0 + 40, chunk_crc), put32(x0 + 44, 0);
    n += 48;
    uint8_t *f = b + n;
    put64(f, index_offset), put64(f + 8, 1), put64(f + 16, 3), put64(f + 24, stats_offset);
    put32(f + 32, crc32c(x0, 48)), put32(f + 36, crc32c(b, header_end)), put32(f + 40, stats_crc);
    put32(f + 44, crc32c(f, 44));
    memcpy(f + 48, "CLTKAEND", 8);
    return n + 56;
}

static void test_hand_built(void) {
    uint8_t b[1024];
    char *path = tpath("hand.acts");
    Error e = {{0}};
    for (int z = 0; z < 2; z++) {
        size_t n = build_shard(b, z, 0, 3);
        write_file(path, b, n);
        ActShard s;
        ActChunk c = {0};
        if (actshard_open(&s, path, &e) || actshard_read_chunk(&s, 0, &c, &e)) {
            CHECK(0, "%s", e.msg);
            continue;
        }
        CHECK(s.n_layers == 1 && s.layers[0] == 6 && s.d_model == 2 && strcmp(s.model_id, "m") == 0 &&
                  strcmp(s.in_hook, "resid_mid") == 0 && s.chunk_tokens == 4, "header");
        CHECK(c.n == 3 && c.doc_ids[2] == 102 && c.token_ids[1] == 7 && c.positions[2] == 2, "tokens");
        CHECK(c.in[2] == 3 && c.in[5] == 0 && c.out[0] == 0.5f && c.out[5] == 2, "values");
        CHECK_NEAR(s.stats[0].in.mean[0], 1.0, 1e-12);
        CHECK_NEAR(s.stats[0].out.var[1], 8.0 / 9.0, 1e-12);
        actchunk_free(&c);
        actshard_close(&s);
    }
    // Scale data under an encoding that has none; statistics that count other tokens.
    struct { uint32_t scale; uint64_t count; const char *want; } bad[] = {
        {8, 3, "chunk 0: 8 bytes of scale data, but encoding f32 has none"},
        {0, 4, "statistics of layer 6 count 4 tokens, the shard has 3"},
    };
    for (int k = 0; k < 2; k++) {
        write_file(path, b, build_shard(b, 1, bad[k].scale, bad[k].count));
        ActShard s;
        ActChunk c = {0};
        e.msg[0] = 0;
        if (actshard_open(&s, path, &e) == 0) {
            actshard_read_chunk(&s, 0, &c, &e);
            actchunk_free(&c);
            actshard_close(&s);
        }
        CHECK(starts_with_path(e.msg, path) && strstr(e.msg, bad[k].want), "want \"%s\", got \"%s\"", bad[k].want,
              e.msg);
    }
    unlink(path);
    free(path);
}

// ---- corrupt files -----------------------------------------------------------------------------

// Opens path and reads every chunk; leaves the first error in e (or "" if none).
static void read_all(const char *path, Error *e) {
    e->msg[0] = 0;
    ActShard s;
    if (actshard_open(&s, path, e)) return;
    ActChunk c = {0};
    for (uint64_t i = 0; i < s.n_chunks; i++)
        if (actshard_read_chunk(&s, i, &c, e)) break;
    actchunk_free(&c);
    actshard_close(&s);
}

static void expect_corrupt(const char *name, const uint8_t *b, size_t n, const char *want) {
    char *path = tpath(name);
    write_file(path, b, n);
    Error e;
    read_all(path, &e);
    CHECK(e.msg[0] && starts_with_path(e.msg, path) && strstr(e.msg, want), "%s: want \"%s\", got \"%s\"", name, want,
          e.msg);
    unlink(path);
    free(path);
}

// Recomputes the footer's header CRC and its own CRC, after a test edited the header or footer.
static void fix_footer(uint8_t *b, size_t n) {
    uint8_t *f = b + n - 56;
    uint64_t header_end = 80 + 4ull * get32(b + 24) + get32(b + 72) + get32(b + 76);
    if (header_end <= n) put32(f + 36, crc32c(b, header_end));
    put32(f + 44, crc32c(f, 44));
}

static void corrupt_suite(int level, const char *tag) {
    Data D = make_data(2, 6, 40, 7);
    const size_t sizes[] = {40};
    char *path = tpath("good.acts");
    Error e = {{0}};
    CHECK(write_data(path, &D, ACT_BF16, 7, level, sizes, 1, &e) == 0, "%s", e.msg);
    free_data(&D);
    size_t n;
    uint8_t *good = (uint8_t *)test_read_file(path, &n);
    ActShard s;
    if (!good || actshard_open(&s, path, &e)) {
        CHECK(0, "%s", e.msg);
        free(good), free(path);
        return;
    }
    read_all(path, &e);
    CHECK(e.msg[0] == 0, "good shard (%s): %s", tag, e.msg);
    uint64_t c3 = s.index[3].offset + s.index[3].comp_bytes / 2;
    uint64_t index_offset = get64(good + n - 56), stats_offset = get64(good + n - 56 + 24);
    actshard_close(&s);
    uint8_t *b = malloc(n);

    memcpy(b, good, n), b[c3] ^= 0x10;
    expect_corrupt("flip.acts", b, n, "chunk 3: checksum mismatch (stored 0x");
    expect_corrupt("trunc.acts", good, n - 10, "truncated: footer missing");
    expect_corrupt("trunc_body.acts", good, n / 2, "truncated: footer missing");
    expect_corrupt("trunc_hdr.acts", good, 50, "truncated: header missing");
    expect_corrupt("empty_file.acts", good, 0, "truncated: header missing");
    memcpy(b, good, n), b[3] = 'X';
    expect_corrupt("magic.acts", b, n, "bad magic");
    memcpy(b, good, n), put32(b + 8, 2);
    expect_corrupt("version.acts", b, n, "unsupported version 2");
    memcpy(b, good, n), b[index_offset + 50] ^= 1;
    expect_corrupt("index_crc.acts", b, n, "index checksum mismatch");
    memcpy(b, good, n), b[n - 56 + 17] ^= 1;
    expect_corrupt("footer_crc.acts", b, n, "footer checksum mismatch");
    memcpy(b, good, n), b[90] ^= 1;
    expect_corrupt("header_crc.acts", b, n, "header checksum mismatch");
    memcpy(b, good, n), b[stats_offset + 20] ^= 1;
    expect_corrupt("stats_crc.acts", b, n, "statistics checksum mismatch");
    // Header and footer fields behind valid CRCs.
    memcpy(b, good, n), put32(b + 12, 7), fix_footer(b, n);
    expect_corrupt("encoding.acts", b, n, "unsupported encoding 7");
    memcpy(b, good, n), put32(b + 16, 1), fix_footer(b, n);
    expect_corrupt("enc_param.acts", b, n, "encoding bf16 takes no parameter");
    memcpy(b, good, n), b[46] = 'X', fix_footer(b, n);
    expect_corrupt("hook.acts", b, n, "input hook name");
    memcpy(b, good, n), put32(b + 84, 0), fix_footer(b, n);  // layers {0, 2} -> {0, 0}
    expect_corrupt("layers.acts", b, n, "layers are not strictly ascending");
    memcpy(b, good, n), put32(b + 20, 7), fix_footer(b, n);  // d_model 6 -> 7: stats size differs
    expect_corrupt("d_model.acts", b, n, "statistics at offset");
    memcpy(b, good, n), put32(b + 76, 1u << 30), fix_footer(b, n);
    expect_corrupt("meta_len.acts", b, n, "does not fit the file");
    memcpy(b, good, n), put64(b + n - 56 + 8, 1ull << 61), fix_footer(b, n);
    expect_corrupt("n_chunks.acts", b, n, "does not end at the footer");
    memcpy(b, good, n), put64(b + n - 56 + 16, 41), fix_footer(b, n);
    expect_corrupt("n_tokens.acts", b, n, "footer says 41 tokens, index chunks hold 40");

    free(b);
    free(good);
    unlink(path);
    free(path);
}

static void test_corrupt_shards(void) {
    corrupt_suite(0, "zstd");
    corrupt_suite(-1, "stored");
}

int main(void) {
    tmp_open(&shard_tmp, "actshard");
    RUN_TEST(test_roundtrip_dtypes);
    RUN_TEST(test_bf16_f16_encoding);
    RUN_TEST(test_zero_tokens);
    RUN_TEST(test_threaded_reads);
    RUN_TEST(test_atomic_write);
    RUN_TEST(test_info_json);
    RUN_TEST(test_hand_built);
    RUN_TEST(test_corrupt_shards);
    tmp_close(&shard_tmp);
    return test_summary();
}
