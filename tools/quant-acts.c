// quant-acts — convert activation shards between encodings (f32, bf16, f16, int8, fp8, int4, each
// + zstd), and report what an encoding costs: bytes per token, ratios, errors against the source
// and the encoding's guaranteed bound, encode/decode throughput. Formats: formats/acts.md.
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "actquant.h"
#include "actshard.h"
#include "cli.h"
#include "err.h"
#include "fileio.h"
#include "progress.h"

static const char USAGE[] =
    "usage: quant-acts IN.acts -o OUT.acts --dtype ENC [options]\n"
    "       quant-acts report SRC.acts [ENC.acts...] [--json] [options]   (--report: the same)\n"
    "       quant-acts npy SRC.acts --layer L [--hook in|out] -o OUT.npy\n"
    "\n"
    "Converts an activation shard to another encoding (formats/acts.md), each followed by zstd:\n"
    "  f32, bf16, f16   one word per value\n"
    "  int8[:QMAX]      int8 with one bf16 absmax scale per token, layer and hook; QMAX levels each\n"
    "                   side (default 127; fewer levels: smaller under zstd, larger errors)\n"
    "  fp8              OCP E4M3 with one bf16 scale per token, layer and hook\n"
    "  int4[:GROUP]     4-bit with one bf16 scale per GROUP values of a token (default 32)\n"
    "Every reader of activation shards decodes every encoding. Output is atomic.\n"
    "\n"
    "report compares with SRC every ENC.acts given (same tokens, same chunks), or, with none,\n"
    "every encoding of --dtype (default: all) encoded in memory: per layer and hook and overall,\n"
    "bytes per token, ratio to raw f32 and raw bf16, relative MSE (sum (x-y)^2 / sum x^2), NMSE\n"
    "(over the variance), max abs error, max error / the encoding's guaranteed bound (<= 1 when\n"
    "the guarantee holds), and encode/decode throughput on one core (MB of fp32 per second).\n"
    "Overall bytes are the shard's chunk bytes (activations, scales and the 16 bytes of ids per\n"
    "token, compressed); a layer's bytes are its block compressed alone.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE     shard to write\n"
    "  --dtype ENC           target encoding; in report a comma list (default: f32,bf16,f16,\n"
    "                        int8,int8:31,fp8,int4)\n"
    "  --zstd-level N        zstd level (default " SHARD_STR(SHARD_ZSTD_LEVEL) "; negative: store uncompressed)\n"
    "  --shuffle             byte planes before zstd (the default); --no-shuffle: plain\n"
    "  --chunk-tokens N      tokens per chunk (default: the source's, so that report can compare the\n"
    "                        two chunk by chunk; fwd-acts writes " SHARD_STR(ACTSHARD_CHUNK_TOKENS) ")\n"
    "  --max-tokens N        report: only the first chunks holding N tokens\n"
    "  --json                report: one JSON object instead of tables\n"
    "  --repeat N            report: time each chunk's decoding N times, keep the fastest (default 1)\n"
    "  --report              = quant-acts report (the old spelling)\n"
    "  -h, --help, --version\n"
    "\n"
    "npy writes one stored model layer's activations (--layer L, the model's block index; --hook\n"
    "in = the CLT input, out = the target) as a NumPy .npy array (n_tokens, d_model) float32, in\n"
    "token order (python/cltkit_io.py reads whole shards without this step).\n"
    "  --layer L             model layer to export (required)\n"
    "  --hook in|out         which hook (default in)\n";

#define DEFAULT_REPORT "f32,bf16,f16,int8,int8:31,fp8,int4"
#define WINDOW_VALUES (64u << 20)  // report: source values encoded in memory at a time (256 MB fp32)

typedef struct {
    const char *out_path, *dtype;
    int zstd_level, shuffle, json, report, repeat;
    uint32_t chunk_tokens;
    uint64_t max_tokens;
} Options;

// ---- convert ---------------------------------------------------------------------------------

// The source's metadata with what converted it added under "quant_acts".
static char *convert_meta(const ActShard *s, const char *in_path, const char *enc) {
    json_t *meta = json_loads(s->meta_json, 0, NULL);
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    json_t *q = json_object();
    json_object_set_new(q, "version", json_string(CLTKIT_VERSION));
    json_object_set_new(q, "source", json_string(in_path));
    json_object_set_new(q, "source_dtype", json_string(act_dtype_name(s->dtype)));
    json_object_set_new(q, "encoding", json_string(enc));
    json_object_set_new(meta, "quant_acts", q);
    char *text = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(meta);
    return text;
}

static ActShardWriterOptions writer_options(const ActShard *s, ActDtype dt, uint32_t param, const Options *o) {
    return (ActShardWriterOptions){.model_id = s->model_id, .model_hash = s->model_hash, .in_hook = s->in_hook,
                                   .out_hook = s->out_hook, .n_layers = s->n_layers, .layers = s->layers,
                                   .d_model = s->d_model, .dtype = dt, .enc_param = param, .shuffle = o->shuffle,
                                   .chunk_tokens = o->chunk_tokens ? o->chunk_tokens : s->chunk_tokens,
                                   .zstd_level = o->zstd_level};
}

static int run_convert(const char *in_path, const Options *o) {
    ActDtype dt;
    uint32_t param;
    Error e;
    if (act_encoding_parse(o->dtype, &dt, &param, &e)) cli_usage_error("quant-acts", "--dtype: %s", e.msg);
    ActShard s;
    if (actshard_open(&s, in_path, &e)) fatal_err(&e);
    char name[32];
    char *meta = convert_meta(&s, in_path, act_encoding_name(dt, param, name, sizeof name));
    ActShardWriterOptions wo = writer_options(&s, dt, param, o);
    wo.meta_json = meta;
    ActShardWriter *w = actshard_writer_open(o->out_path, &wo, &e);
    if (!w) fatal_err(&e);
    Progress prog;
    progress_init(&prog, "quant-acts", "tok", 1, s.n_tokens);
    ActChunk c = {0};
    double t0 = now_seconds();
    for (uint64_t i = 0; i < s.n_chunks; i++) {
        if (actshard_read_chunk(&s, i, &c, &e)) {
            actshard_writer_abort(w);
            fatal_err(&e);
        }
        if (actshard_write(w, c.n, c.token_ids, c.doc_ids, c.positions, c.in, c.out, &e)) {
            actshard_writer_abort(w);  // the value is the input's: name it first, the output second
            err_prefix(&e, "%s: chunk %llu holds a value %s cannot store", in_path, (unsigned long long)i, name);
            fatal_err(&e);
        }
        progress_update(&prog, c.first_token + c.n);
    }
    if (actshard_writer_close(w, &e)) fatal_err(&e);
    progress_finish(&prog);
    double dt_s = now_seconds() - t0;
    if (strcmp(o->out_path, "-")) {
        ActShard out;
        if (actshard_open(&out, o->out_path, &e)) fatal_err(&e);
        fprintf(stderr, "quant-acts: %llu tokens, %s -> %s: %llu -> %llu bytes (%.2fx) in %.2f s\n",
                (unsigned long long)s.n_tokens, act_dtype_name(s.dtype), name, (unsigned long long)s.file_size,
                (unsigned long long)out.file_size, out.file_size ? (double)s.file_size / (double)out.file_size : 0,
                dt_s);
        actshard_close(&out);
    }
    actchunk_free(&c);
    actshard_close(&s);
    free(meta);
    return 0;
}

// ---- report ----------------------------------------------------------------------------------

typedef struct {
    double err2, ref2, max_err, max_ratio;  // sum (x-y)^2, sum x^2, max |x-y|, max |x-y| / bound
    double bytes;                           // the block's stored bytes compressed alone
} Acc;

typedef struct {
    char name[32];
    ActDtype dt;
    uint32_t param;
    int planes;           // chunks stored as byte planes
    const char *path;     // NULL: encoded in memory
    Acc *blocks;          // (2, n_layers)
    uint64_t chunk_bytes, tokens;
    double enc_s, dec_s;  // enc_s < 0: not measured (a file)
} Report;

// The guaranteed error bound of an encoding (formats/acts.md, "Error bounds") for the values of
// a row (int4: a group) with absolute maximum m: |x - y| <= max(floor, rel |x|) + 2^-23 |x|, the
// last term for fp32's rounding of x / s. Returns 0 for f32 (exact).
typedef struct {
    double floor, rel, eps;
} Bound;

static Bound bound_of(ActDtype dt, uint32_t param, float m) {
    switch (dt) {
    case ACT_BF16: return (Bound){0x1p-134, 0x1p-8, 0};  // half a bf16 ulp; bf16's smallest step 2^-133
    case ACT_F16: return (Bound){0x1p-25, 0x1p-11, 0};   // half an f16 ulp; f16's subnormal step 2^-24
    case ACT_INT8: return (Bound){0.5 * bf16_to_f32(actq_scale_bf16(m, (float)param)), 0, 0x1p-23};
    case ACT_INT4: return (Bound){0.5 * bf16_to_f32(actq_scale_bf16(m, 7.0f)), 0, 0x1p-23};
    case ACT_FP8: return (Bound){0x1p-10 * bf16_to_f32(actq_scale_bf16(m, ACTQ_FP8_MAX)), 0x1p-4, 0x1p-23};
    default: return (Bound){0, 0, 0};
    }
}

// Adds block (n rows of d) of the source x and its decoding y to acc.
static void compare_block(const Report *r, const float *x, const float *y, size_t n, size_t d, Acc *acc) {
    size_t g = r->dt == ACT_INT4 ? r->param : d;
    for (size_t t = 0; t < n; t++)
        for (size_t j0 = 0; j0 < d; j0 += g) {
            size_t j1 = j0 + g < d ? j0 + g : d;
            float m = 0;
            for (size_t j = j0; j < j1; j++) m = fmaxf(m, fabsf(x[t * d + j]));
            Bound B = bound_of(r->dt, r->param, m);
            for (size_t j = j0; j < j1; j++) {
                double a = x[t * d + j], b = y[t * d + j], err = fabs(a - b), ax = fabs(a);
                double bound = fmax(B.floor, B.rel * ax) + B.eps * ax;
                acc->err2 += err * err;
                acc->ref2 += a * a;
                if (err > acc->max_err || err != err) acc->max_err = err != err ? INFINITY : err;
                double ratio = bound > 0 ? err / bound : err > 0 ? INFINITY : 0;
                if (ratio > acc->max_ratio) acc->max_ratio = ratio;
            }
        }
}

// Compares chunk i of the source (sc) with the encoded chunk ec; adds the blocks' sizes.
static int compare_chunk(const ActShard *src, const ActChunk *sc, const ActChunk *ec, Report *r, ZSTD_CCtx *cctx,
                         int level, uint8_t **buf, size_t *cap, Error *e) {
    if (sc->n != ec->n || memcmp(sc->token_ids, ec->token_ids, sc->n * sizeof *sc->token_ids) ||
        memcmp(sc->doc_ids, ec->doc_ids, sc->n * sizeof *sc->doc_ids) ||
        memcmp(sc->positions, ec->positions, sc->n * sizeof *sc->positions))
        return err_set(e, "%s: chunk %llu holds other tokens than %s's (compare shards of the same tokens and "
                       "chunking)", r->path ? r->path : r->name, (unsigned long long)sc->chunk, src->path);
    size_t L = (size_t)src->n_layers, d = (size_t)src->d_model, n = sc->n;
    for (size_t b = 0; b < 2 * L; b++) {
        const float *x = (b < L ? sc->in : sc->out) + (b % L) * n * d;
        const float *y = (b < L ? ec->in : ec->out) + (b % L) * n * d;
        compare_block(r, x, y, n, d, &r->blocks[b]);
        // the block as stored (scales, then values), compressed alone
        size_t len = ec->scale_block + ec->val_block;  // then room for its compressed bytes
        if (len > *cap) *buf = xrealloc(*buf, *cap = len);
        memcpy(*buf, ec->scales + b * ec->scale_block, ec->scale_block);
        memcpy(*buf + ec->scale_block, ec->vals + b * ec->val_block, ec->val_block);
        size_t bound = ZSTD_compressBound(len), cn = len;
        if (level >= 0) {
            if (len + bound > *cap) *buf = xrealloc(*buf, *cap = len + bound);
            cn = ZSTD_compressCCtx(cctx, *buf + len, bound, *buf, len, level);
            if (ZSTD_isError(cn)) return err_set(e, "zstd: %s", ZSTD_getErrorName(cn));
        }
        r->blocks[b].bytes += (double)cn;
    }
    return 0;
}

// Reads every chunk in [c0, c1) of enc (chunk c0 + k of src is chunk k of enc when
// enc_offset = c0) and compares it with src. Decoding on one thread is what dec_s times.
static int compare_shards(const ActShard *src, const ActShard *enc, uint64_t c0, uint64_t c1, uint64_t enc_offset,
                          Report *r, const Options *o, Error *e) {
    ActChunk sc = {0}, ec = {.threads = 1};
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (uint64_t i = c0; i < c1 && !rc; i++) {
        rc = actshard_read_chunk(src, i, &sc, e);
        double best = INFINITY;  // the fastest of --repeat reads: timings on a shared machine are noisy
        for (int k = 0; k < o->repeat && !rc; k++) {
            double t = now_seconds();
            rc = actshard_read_chunk(enc, i - enc_offset, &ec, e);
            best = fmin(best, now_seconds() - t);
        }
        if (!rc) r->dec_s += best;
        if (!rc) rc = compare_chunk(src, &sc, &ec, r, cctx, o->zstd_level, &buf, &cap, e);
        if (!rc) r->chunk_bytes += enc->index[i - enc_offset].comp_bytes, r->tokens += ec.n;
    }
    ZSTD_freeCCtx(cctx);
    free(buf);
    actchunk_free(&sc);
    actchunk_free(&ec);
    return rc;
}

// Encodes chunks [0, n_chunks) of src window by window into memory, then compares.
static int report_in_memory(const ActShard *src, uint64_t n_chunks, Report *r, const Options *o, Progress *prog,
                            uint64_t *done, Error *e) {
    uint64_t per_token = 2ull * (uint64_t)src->n_layers * (uint64_t)src->d_model;
    ActChunk sc = {0};
    int rc = 0;
    for (uint64_t c0 = 0; c0 < n_chunks && !rc;) {
        uint64_t c1 = c0, values = 0;
        while (c1 < n_chunks && (c1 == c0 || values + src->index[c1].n_tokens * per_token <= WINDOW_VALUES))
            values += src->index[c1++].n_tokens * per_token;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) fatal("open_memstream: out of memory");
        ActShardWriterOptions wo = writer_options(src, r->dt, r->param, o);
        wo.chunk_tokens = src->chunk_tokens;  // same chunks as the source, to compare them one by one
        wo.threads = 1;                       // throughput per core
        ActShardWriter *w = actshard_writer_open_stream(f, r->name, &wo, e);
        rc = w ? 0 : -1;
        for (uint64_t i = c0; i < c1 && !rc; i++) {
            rc = actshard_read_chunk(src, i, &sc, e);
            double t = now_seconds();
            if (!rc) rc = actshard_write(w, sc.n, sc.token_ids, sc.doc_ids, sc.positions, sc.in, sc.out, e);
            r->enc_s += now_seconds() - t;
        }
        if (w && rc) actshard_writer_abort(w);
        if (w && !rc) {
            double t = now_seconds();
            rc = actshard_writer_close(w, e);
            r->enc_s += now_seconds() - t;
        }
        fclose(f);
        ActShard enc;
        if (!rc && !(rc = actshard_open_mem(&enc, buf, len, r->name, e))) {
            r->planes = enc.n_chunks && enc.index[0].compression == 2;
            rc = compare_shards(src, &enc, c0, c1, c0, r, o, e);
            actshard_close(&enc);
        }
        free(buf);
        *done += values / per_token;
        progress_update(prog, *done);
        c0 = c1;
    }
    actchunk_free(&sc);
    return rc;
}

// Sums blocks [b0, b1) (all: the overall line).
static Acc sum_blocks(const Report *r, size_t b0, size_t b1) {
    Acc a = {0};
    for (size_t b = b0; b < b1; b++) {
        const Acc *x = &r->blocks[b];
        a.err2 += x->err2, a.ref2 += x->ref2, a.bytes += x->bytes;
        a.max_err = fmax(a.max_err, x->max_err);
        a.max_ratio = fmax(a.max_ratio, x->max_ratio);
    }
    return a;
}

// The NMSE denominator of blocks [b0, b1): sum over tokens of ||x - mean||^2 (source statistics).
static double var_sum(const ActShard *s, size_t b0, size_t b1) {
    size_t L = (size_t)s->n_layers;
    double v = 0;
    for (size_t b = b0; b < b1; b++) {
        const ActHookStats *h = b < L ? &s->stats[b % L].in : &s->stats[b % L].out;
        for (int j = 0; j < s->d_model; j++) v += h->var[j];
    }
    return v;
}

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

typedef struct {
    double bytes_per_token, x_f32, x_bf16, rel_mse, nmse, max_err, max_ratio;
} Line;

// One line: blocks [b0, b1), or overall (whole = 1: the shard's chunk bytes, ids included).
static Line make_line(const ActShard *s, const Report *r, size_t b0, size_t b1, int whole) {
    Acc a = sum_blocks(r, b0, b1);
    double tok = r->tokens ? (double)r->tokens : 1, d = s->d_model;
    double raw_f32 = 4 * d * (double)(b1 - b0) + (whole ? 16 : 0),
           raw_bf16 = 2 * d * (double)(b1 - b0) + (whole ? 16 : 0);
    double bpt = (whole ? (double)r->chunk_bytes : a.bytes) / tok;
    // the statistics cover the whole source; scale them to the tokens compared
    double var = var_sum(s, b0, b1) * (double)r->tokens;
    return (Line){bpt, raw_f32 / bpt, raw_bf16 / bpt, a.ref2 > 0 ? a.err2 / a.ref2 : 0, var > 0 ? a.err2 / var : 0,
                  a.max_err, a.max_ratio};
}

static void set_line(json_t *o, const Line *l) {
    json_object_set_new(o, "bytes_per_token", jnum(l->bytes_per_token));
    json_object_set_new(o, "ratio_vs_f32", jnum(l->x_f32));
    json_object_set_new(o, "ratio_vs_bf16", jnum(l->x_bf16));
    json_object_set_new(o, "rel_mse", jnum(l->rel_mse));
    json_object_set_new(o, "nmse", jnum(l->nmse));
    json_object_set_new(o, "max_abs_err", jnum(l->max_err));
    json_object_set_new(o, "max_err_over_bound", jnum(l->max_ratio));
}

static void print_report(const ActShard *s, Report *reps, int n_reps, const Options *o) {
    size_t L = (size_t)s->n_layers;
    uint64_t tokens = n_reps ? reps[0].tokens : 0;
    double mb = (double)tokens * 8.0 * (double)L * s->d_model / 1e6;  // fp32 MB of the tokens compared
    if (o->json) {
        json_t *root = json_object(), *encs = json_array();
        json_object_set_new(root, "source", json_string(s->path));
        json_object_set_new(root, "source_dtype", json_string(act_dtype_name(s->dtype)));
        json_object_set_new(root, "tokens", json_integer((json_int_t)tokens));
        json_object_set_new(root, "n_layers", json_integer(s->n_layers));
        json_object_set_new(root, "d_model", json_integer(s->d_model));
        json_object_set_new(root, "zstd_level", json_integer(o->zstd_level));
        for (int k = 0; k < n_reps; k++) {
            Report *r = &reps[k];
            json_t *e = json_object(), *layers = json_array();
            json_object_set_new(e, "encoding", json_string(r->name));
            if (r->path) json_object_set_new(e, "path", json_string(r->path));
            json_object_set_new(e, "byte_planes", json_boolean(r->planes));
            Line all = make_line(s, r, 0, 2 * L, 1);
            set_line(e, &all);
            json_object_set_new(e, "encode_mb_s", r->enc_s > 0 ? json_real(mb / r->enc_s) : json_null());
            json_object_set_new(e, "decode_mb_s", r->dec_s > 0 ? json_real(mb / r->dec_s) : json_null());
            for (size_t b = 0; b < 2 * L; b++) {
                json_t *lj = json_object();
                json_object_set_new(lj, "layer", json_integer(s->layers[b % L]));
                json_object_set_new(lj, "hook", json_string(b < L ? s->in_hook : s->out_hook));
                Line l = make_line(s, r, b, b + 1, 0);
                set_line(lj, &l);
                json_array_append_new(layers, lj);
            }
            json_object_set_new(e, "layers", layers);
            json_array_append_new(encs, e);
        }
        json_object_set_new(root, "encodings", encs);
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        putchar('\n');
        json_decref(root);
        return;
    }
    printf("quant-acts report: %s (%s), %llu tokens, %d layers, d_model %d; zstd level %d; throughput on one core\n",
           s->path, act_dtype_name(s->dtype), (unsigned long long)tokens, s->n_layers, s->d_model,
           o->zstd_level);
    printf("ratios: to raw f32 / bf16 payloads (incl. 16 B/token of ids overall); err/bound <= 1: guarantee held\n\n");
    printf("%-10s %-6s %10s %7s %7s %10s %10s %10s %9s %9s %9s\n", "encoding", "planes", "bytes/tok", "x f32",
           "x bf16", "rel MSE", "NMSE", "max|err|", "err/bound", "enc MB/s", "dec MB/s");
    for (int k = 0; k < n_reps; k++) {
        Report *r = &reps[k];
        Line l = make_line(s, r, 0, 2 * L, 1);
        char enc[16] = "-";
        if (r->enc_s > 0) snprintf(enc, sizeof enc, "%.0f", mb / r->enc_s);
        printf("%-10s %-6s %10.1f %7.2f %7.2f %10.3g %10.3g %10.3g %9.3g %9s %9.0f\n", r->name,
               r->planes ? "yes" : "no", l.bytes_per_token, l.x_f32, l.x_bf16, l.rel_mse, l.nmse, l.max_err,
               l.max_ratio, enc, r->dec_s > 0 ? mb / r->dec_s : 0);
    }
    printf("\nper layer and hook (bytes/token: the block compressed alone)\n");
    printf("%-10s %5s %-9s %10s %7s %7s %10s %10s %10s %9s\n", "encoding", "layer", "hook", "bytes/tok", "x f32",
           "x bf16", "rel MSE", "NMSE", "max|err|", "err/bound");
    for (int k = 0; k < n_reps; k++)
        for (size_t b = 0; b < 2 * L; b++) {
            Line l = make_line(s, &reps[k], b, b + 1, 0);
            printf("%-10s %5d %-9s %10.1f %7.2f %7.2f %10.3g %10.3g %10.3g %9.3g\n", reps[k].name, s->layers[b % L],
                   b < L ? s->in_hook : s->out_hook, l.bytes_per_token, l.x_f32, l.x_bf16, l.rel_mse, l.nmse,
                   l.max_err, l.max_ratio);
        }
}

static int run_report(char **paths, int n_paths, const Options *o) {
    Error e;
    ActShard src;
    if (actshard_open(&src, paths[0], &e)) fatal_err(&e);
    // the chunks compared: all, or the first holding max_tokens
    uint64_t n_chunks = src.n_chunks, tokens = src.n_tokens;
    if (o->max_tokens) {
        n_chunks = 0, tokens = 0;
        while (n_chunks < src.n_chunks && tokens < o->max_tokens) tokens += src.index[n_chunks++].n_tokens;
    }
    int n_reps = 0;
    Report *reps = NULL;
    if (n_paths > 1) {  // files: each compared as it is
        reps = xcalloc((size_t)n_paths - 1, sizeof *reps);
        for (int k = 1; k < n_paths; k++) {
            Report *r = &reps[n_reps++];
            r->path = paths[k];
            r->enc_s = -1;
        }
    } else {
        char *list = xstrdup(o->dtype ? o->dtype : DEFAULT_REPORT);
        reps = xcalloc(strlen(list) / 2 + 2, sizeof *reps);
        for (char *save, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            Report *r = &reps[n_reps++];
            if (act_encoding_parse(tok, &r->dt, &r->param, &e)) cli_usage_error("quant-acts", "--dtype: %s", e.msg);
            act_encoding_name(r->dt, r->param, r->name, sizeof r->name);
        }
        free(list);
    }
    // the bar counts the source's tokens, once per encoding (restarting), the encoding its metric
    Progress prog;
    progress_init(&prog, "quant-acts report", "tok", 1, tokens);
    uint64_t done = 0;
    for (int k = 0; k < n_reps; k++) {
        Report *r = &reps[k];
        done = 0;
        prog.start_s = now_seconds();  // the rate and ETA of this encoding
        progress_metric(&prog, "%s (%d of %d)", r->path ? r->path : r->name, k + 1, n_reps);
        r->blocks = xcalloc(2 * (size_t)src.n_layers, sizeof *r->blocks);
        if (r->path) {
            ActShard enc;
            if (actshard_open(&enc, r->path, &e)) fatal_err(&e);
            if (enc.n_layers != src.n_layers || enc.d_model != src.d_model ||
                memcmp(enc.layers, src.layers, (size_t)src.n_layers * sizeof(int)) || enc.n_chunks < n_chunks)
                fatal("%s: not the same layers, d_model and chunks as %s", r->path, src.path);
            for (uint64_t i = 0; i < n_chunks; i++)
                if (enc.index[i].first_token != src.index[i].first_token ||
                    enc.index[i].n_tokens != src.index[i].n_tokens)
                    fatal("%s: chunk %llu does not cover the tokens of %s's (compare shards with the same chunking)",
                          r->path, (unsigned long long)i, src.path);
            r->dt = enc.dtype;
            r->param = enc.enc_param;
            act_encoding_name(r->dt, r->param, r->name, sizeof r->name);
            r->planes = enc.n_chunks && enc.index[0].compression == 2;
            if (compare_shards(&src, &enc, 0, n_chunks, 0, r, o, &e)) fatal_err(&e);
            done = tokens;
            progress_update(&prog, done);
            actshard_close(&enc);
        } else if (report_in_memory(&src, n_chunks, r, o, &prog, &done, &e)) {
            fatal_err(&e);
        }
    }
    progress_finish(&prog);
    print_report(&src, reps, n_reps, o);
    for (int k = 0; k < n_reps; k++) free(reps[k].blocks);
    free(reps);
    actshard_close(&src);
    return 0;
}

// ---- npy -------------------------------------------------------------------------------------
// Writes the NumPy format version 1.0 header: magic, version, little-endian u16 header length,
// a Python dict literal padded with spaces and a newline so the data starts 64-byte aligned.
static void write_npy_header(FILE *f, uint64_t rows, uint32_t cols, const char *path) {
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%llu, %u), }",
                     (unsigned long long)rows, cols);
    int total = (10 + n + 1 + 63) / 64 * 64;  // 10 bytes of preamble, the dict, '\n'
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)((total - 10) & 0xFF),
                             (unsigned char)((total - 10) >> 8)};
    fwriteCheck(pre, 1, sizeof pre, f, path);
    fwriteCheck(dict, 1, (size_t)n, f, path);
    for (int i = 10 + n; i < total - 1; i++) fputc(' ', f);
    fputc('\n', f);
}

static int run_npy(int argc, char **argv) {
    static const struct option opts[] = {{"output", required_argument, 0, 'o'}, {"layer", required_argument, 0, 'l'},
                                         {"hook", required_argument, 0, 'k'},   {0, 0, 0, 0}};
    const char *out_path = NULL, *hook = "in";
    long long layer = -1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
            case 'o': out_path = optarg; break;
            case 'l': layer = cli_parse_int("--layer", optarg, 0, INT32_MAX); break;
            case 'k': hook = optarg; break;
            default: cli_usage_error("quant-acts npy", "bad option");
        }
    }
    if (optind != argc - 1) cli_usage_error("quant-acts npy", "give one input shard");
    if (!out_path) cli_usage_error("quant-acts npy", "missing -o/--output");
    if (layer < 0) cli_usage_error("quant-acts npy", "missing --layer");
    if (strcmp(hook, "in") && strcmp(hook, "out")) cli_usage_error("quant-acts npy", "--hook is in or out");
    const char *path = argv[optind];
    Error e;
    ActShard s;
    if (actshard_open(&s, path, &e)) fatal_err(&e);
    int li = actshard_layer_index(&s, (int)layer);
    if (li < 0) fatal("%s: layer %lld is not stored in this shard", path, layer);
    size_t d = (size_t)s.d_model;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", out_path, (int)getpid());
    FILE *f = fopenCheck(tmp, "wb");
    write_npy_header(f, s.n_tokens, s.d_model, tmp);
    ActChunk ch = {0};
    for (uint64_t i = 0; i < s.n_chunks; i++) {
        if (actshard_read_chunk(&s, i, &ch, &e)) { fclose(f); unlink(tmp); fatal_err(&e); }
        const float *rows = (hook[0] == 'i' ? ch.in : ch.out) + (size_t)li * ch.n * d;  // (n, d)
        fwriteCheck(rows, sizeof(float), (size_t)ch.n * d, f, tmp);
    }
    actchunk_free(&ch);
    actshard_close(&s);
    if (finish_output(&f, tmp, out_path, &e)) fatal_err(&e);
    return 0;
}

int main(int argc, char **argv) {
    cli_standard(argc, argv, "quant-acts", USAGE);
    if (argc > 1 && !strcmp(argv[1], "npy")) return run_npy(argc - 1, argv + 1);
    static const char *const modes[] = {"report", NULL};
    int report_mode = cli_subcommand(&argc, &argv, modes) != NULL;
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},      {"dtype", required_argument, 0, 'd'},
        {"zstd-level", required_argument, 0, 'z'},  {"shuffle", no_argument, 0, 'S'},
        {"no-shuffle", no_argument, 0, 'P'},        {"chunk-tokens", required_argument, 0, 'C'},
        {"max-tokens", required_argument, 0, 'x'},  {"json", no_argument, 0, 'j'},
        {"report", no_argument, 0, 'R'},            {"repeat", required_argument, 0, 'r'},
        {0, 0, 0, 0}};
    Options o = {.repeat = 1, .report = report_mode};
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
            case 'o': o.out_path = optarg; break;
            case 'd': o.dtype = optarg; break;
            case 'z': o.zstd_level = (int)cli_parse_int("--zstd-level", optarg, -1, 22); break;
            case 'S': o.shuffle = 1; break;
            case 'P': o.shuffle = -1; break;
            case 'C': o.chunk_tokens = (uint32_t)cli_parse_int("--chunk-tokens", optarg, 1, 1 << 24); break;
            case 'x': o.max_tokens = (uint64_t)cli_parse_int("--max-tokens", optarg, 1, INT64_MAX); break;
            case 'j': o.json = 1; break;
            case 'R': o.report = 1; break;
            case 'r': o.repeat = (int)cli_parse_int("--repeat", optarg, 1, 100); break;
            default: cli_usage_error("quant-acts", "bad option");
        }
    }
    if (optind >= argc) cli_usage_error("quant-acts", "no input shard given");
    if (o.zstd_level == 0) o.zstd_level = SHARD_ZSTD_LEVEL;  // the writers' default
    if (o.report) {
        if (o.out_path) cli_usage_error("quant-acts", "report writes no shard; drop -o");
        return run_report(argv + optind, argc - optind, &o);
    }
    if (o.json || o.max_tokens || o.repeat > 1)
        cli_usage_error("quant-acts", "--json, --max-tokens and --repeat go with report (quant-acts report ...)");
    if (!o.out_path) cli_usage_error("quant-acts", "missing -o/--output");
    if (!o.dtype) cli_usage_error("quant-acts", "missing --dtype");
    if (argc - optind != 1) cli_usage_error("quant-acts", "convert takes one input shard, got %d", argc - optind);
    cli_check_not_input(o.out_path, (const char *const *)argv + optind, 1);
    return run_convert(argv[optind], &o);
}
