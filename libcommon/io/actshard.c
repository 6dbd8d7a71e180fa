// actshard.c — activation shard writer and reader; the layout is specified in formats/acts.md.
//
// file    = header | chunk 0 | ... | chunk n-1 | stats | index | footer
// header  = 80 fixed bytes + n_layers x u32 layer + model_id bytes + meta_len bytes of JSON
// chunk   = stored bytes (raw, one zstd frame, or one zstd frame of the byte-plane layout) of
//           the payload: u32 n, u32 scale_bytes, u64 doc_ids[n], u32 token_ids[n],
//           u32 positions[n], scales (bf16, (2 hooks, n_layers, n, groups), padded to 8 bytes;
//           empty for f32/bf16/f16), values (2 hooks, n_layers, n, row bytes)
// stats   = n_layers x (40 + 32 d_model) bytes;  index = n_chunks x 48;  footer = 56 bytes
//
// As in tokshard.c the writer only appends and the reader starts from the footer; the container
// both share (output, index, footer, reader's file, chunk CRC and zstd checks) is shard_io.c. Integers are
// (de)serialised byte by byte; activation values are copied as little-endian words (the host is
// little-endian, as kernels/convert.h already assumes). The numbers of each encoding (quantising a
// row, decoding rows) live in kernels/actquant.c; this file lays them out and checks them.
#include "cli.h"
#include "fileio.h"
#include "shard_io.h"
#include "actshard.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "actquant.h"
#include "convert.h"
#include "crc32c.h"
#include "threads.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "actshard.c copies activation words as they are in memory: little-endian hosts only"
#endif

#define MAGIC "CLTKACTS"
#define END_MAGIC "CLTKAEND"
enum {
    HEADER_FIXED = 80,
    CHUNK_PREFIX = 8,   // u32 n_tokens, u32 scale_bytes
    TOKEN_BYTES = 16,   // u64 doc_id + u32 token_id + u32 position per token
    HOOK_STATS_FIXED = 16,  // f64 mean_norm, f64 mean_sq_norm (then mean[d], var[d])
};
enum { COMP_STORED = 0, COMP_ZSTD = 1, COMP_ZSTD_PLANES = 2 };
#define MAX_MODEL_ID_BYTES (64u << 10)
// A zstd block costs at least 4 bytes (3-byte header + 1) and yields at most 128 KiB, so no
// frame decompresses to more than 32768x its size. The reader checks raw_bytes against this
// before allocating, so a corrupt index cannot make it allocate gigabytes for a tiny frame.
#define ZSTD_MAX_RATIO 32768u

static const ShardKind KIND = {MAGIC, END_MAGIC, "an activation shard", ACTSHARD_VERSION, HEADER_FIXED};

typedef unsigned long long ull;

// ---- little-endian helpers -------------------------------------------------------------------

static void put_f64(uint8_t *p, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(p, u);
}
static double get_f64(const uint8_t *p) {
    uint64_t u = get_u64(p);
    double v;
    memcpy(&v, &u, 8);
    return v;
}


// ---- dtypes, shapes, names -------------------------------------------------------------------

static const char *const DTYPE_NAMES[ACT_N_DTYPES] = {"f32", "bf16", "f16", "int8", "fp8", "int4"};

const char *act_dtype_name(ActDtype d) { return (unsigned)d < ACT_N_DTYPES ? DTYPE_NAMES[d] : "?"; }

int act_dtype_parse(const char *name, ActDtype *out) {
    for (int i = 0; i < ACT_N_DTYPES; i++)
        if (strcmp(name, DTYPE_NAMES[i]) == 0) return *out = (ActDtype)i, 0;
    return -1;
}

int act_encoding_check(ActDtype dt, uint32_t *param, Error *e) {
    if ((unsigned)dt >= ACT_N_DTYPES) return err_set(e, "unknown encoding %d", (int)dt);
    if (dt == ACT_INT8) {
        if (*param == 0) *param = ACTQ_INT8_DEFAULT_QMAX;
        if (*param > 127) return err_set(e, "int8 qmax %u outside [1, 127]", *param);
    } else if (dt == ACT_INT4) {
        if (*param == 0) *param = ACTQ_INT4_DEFAULT_GROUP;
        if (*param > ACTSHARD_MAX_D_MODEL)
            return err_set(e, "int4 group size %u outside [1, %u]", *param, ACTSHARD_MAX_D_MODEL);
    } else if (*param != 0) {
        return err_set(e, "encoding %s takes no parameter (got %u)", DTYPE_NAMES[dt], *param);
    }
    return 0;
}

int act_encoding_parse(const char *spec, ActDtype *dt, uint32_t *param, Error *e) {
    char name[16];
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len >= sizeof name || (memcpy(name, spec, len), name[len] = 0, act_dtype_parse(name, dt)))
        return err_set(e, "unknown encoding '%s' (f32, bf16, f16, int8[:QMAX], fp8, int4[:GROUP])", spec);
    *param = 0;
    if (colon) {
        long long v;
        if (parse_int_strict(colon + 1, 1, UINT32_MAX, &v))
            return err_set(e, "encoding '%s': parameter is not a positive integer", spec);
        if (*dt != ACT_INT8 && *dt != ACT_INT4)
            return err_set(e, "encoding '%s': %s takes no parameter", spec, DTYPE_NAMES[*dt]);
        *param = (uint32_t)v;
    }
    return act_encoding_check(*dt, param, e);
}

const char *act_encoding_name(ActDtype dt, uint32_t param, char *buf, size_t len) {
    int dflt =
        (dt == ACT_INT8 && param == ACTQ_INT8_DEFAULT_QMAX) || (dt == ACT_INT4 && param == ACTQ_INT4_DEFAULT_GROUP);
    if ((dt == ACT_INT8 || dt == ACT_INT4) && param && !dflt) snprintf(buf, len, "%s:%u", act_dtype_name(dt), param);
    else snprintf(buf, len, "%s", act_dtype_name(dt));
    return buf;
}

// Measured on stories260K activations (bench/bench_quant.sh, bench/RESULTS.md): byte planes make
// f32/bf16/f16 chunks 5-12% smaller under zstd (the exponent bytes compress, the low mantissa
// bytes do not, and mixed they share one entropy table), and int8/fp8/int4 chunks 0.5-3% smaller
// (only their bf16 scales have planes). Never larger, decoding as fast: on for every encoding.
int act_default_shuffle(ActDtype dt) { return (unsigned)dt < ACT_N_DTYPES; }

// Bytes of the scale block of a chunk of n tokens: bf16 scales (2, n_layers, n, groups), padded
// to a multiple of 8 so the values after it stay aligned.
static uint64_t scale_bytes_of(uint64_t n, uint64_t n_layers, uint64_t d, ActDtype dt, uint32_t param) {
    uint64_t raw = 2 * n_layers * n * actq_row_scales(dt, param, d) * 2;
    return (raw + 7) & ~(uint64_t)7;
}

// Bytes of a chunk payload of n tokens.
static uint64_t payload_bytes(uint64_t n, uint64_t n_layers, uint64_t d, ActDtype dt, uint32_t param) {
    return CHUNK_PREFIX + TOKEN_BYTES * n + scale_bytes_of(n, n_layers, d, dt, param) +
           2 * n_layers * n * actq_row_bytes(dt, d);
}

static uint64_t layer_stats_bytes(uint64_t d) { return 8 + 2 * (HOOK_STATS_FIXED + 16 * d); }

// A hook name: 1..15 characters of [a-z0-9_].
static int hook_ok(const char *h) {
    size_t n = strlen(h);
    if (n == 0 || n >= ACTSHARD_HOOK_BYTES) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= '0' && h[i] <= '9') || h[i] == '_')) return 0;
    return 1;
}


// ---- writer ----------------------------------------------------------------------------------

struct ActShardWriter {
    ShardOut out;  // path, temp file (or stdout, or the caller's stream), bytes written, failure
    ActDtype dtype;
    uint32_t enc_param;
    size_t rb, ns;  // stored bytes and bf16 scales per row
    int planes;     // chunks are compressed in the byte-plane layout
    int threads;    // for parallel_for_n (0 = all)
    int n_layers, d;
    int *layers;  // (n_layers,) for messages
    uint32_t chunk_tokens;
    int level;  // < 0: store
    uint32_t header_crc;
    // The pending chunk, laid out as a full chunk's payload (stride chunk_tokens); flush
    // compacts it in place when the chunk is short.
    uint8_t *raw;
    size_t raw_full;
    uint32_t n_pending;
    uint8_t *comp;
    size_t comp_cap;
    uint8_t *planes_buf;  // one block in the byte-plane layout, when planes
    ZSTD_CCtx *cctx;
    float *rows;  // (2, n_layers, d) per block: a row decoded back from the file, for the statistics
    // Statistics, per (hook, layer) = (2, n_layers): shifted sums over dimensions, norm sums.
    // Sums of x - K and (x - K)^2 with K the first token's row keep the variance accurate
    // even where |mean| >> std, and vectorise, unlike per-value Welford divisions.
    double *shift, *s1, *s2;           // (2, n_layers, d)
    double *norm_sum, *sq_norm_sum;    // (2, n_layers)
    ActShardIndexEntry *index;
    size_t index_cap;
    uint64_t n_chunks, n_tokens;
};

static int write_bytes(ActShardWriter *w, const void *p, size_t n, Error *e) {
    return shard_out_write(&w->out, p, n, e);
}

static void writer_free(ActShardWriter *w) {
    ZSTD_freeCCtx(w->cctx);
    shard_out_free(&w->out);
    free(w->raw);
    free(w->comp);
    free(w->planes_buf);
    free(w->rows);
    free(w->layers);
    free(w->shift);
    free(w->s1);
    free(w->s2);
    free(w->norm_sum);
    free(w->sq_norm_sum);
    free(w->index);
    free(w);
}

// Validates the options and picks chunk_tokens; returns it, or 0 with e set.
static uint32_t check_options(const char *path, const ActShardWriterOptions *o, Error *e) {
    if (o->n_layers < 1 || o->n_layers > ACTSHARD_MAX_LAYERS)
        return err_set(e, "%s: n_layers %d outside [1, %d]", path, o->n_layers, ACTSHARD_MAX_LAYERS), 0;
    if (!o->layers) return err_set(e, "%s: no layers given", path), 0;
    for (int i = 0; i < o->n_layers; i++)
        if (o->layers[i] < 0 || (i && o->layers[i] <= o->layers[i - 1]))
            return err_set(e, "%s: layers must be >= 0 and strictly ascending (layers[%d] = %d)", path, i,
                           o->layers[i]), 0;
    if (o->d_model < 1 || (uint32_t)o->d_model > ACTSHARD_MAX_D_MODEL)
        return err_set(e, "%s: d_model %d outside [1, %u]", path, o->d_model, ACTSHARD_MAX_D_MODEL), 0;
    if ((unsigned)o->dtype >= ACT_N_DTYPES) return err_set(e, "%s: unknown dtype %d", path, (int)o->dtype), 0;
    uint32_t param = o->enc_param;
    if (act_encoding_check(o->dtype, &param, e)) return err_prefix(e, "%s", path), 0;
    const char *hooks[2] = {o->in_hook, o->out_hook};
    for (int h = 0; h < 2; h++)
        if (!hooks[h] || !hook_ok(hooks[h]))
            return err_set(e, "%s: %s hook \"%s\" is not 1..15 characters of [a-z0-9_]", path, h ? "output" : "input",
                           hooks[h] ? hooks[h] : "(null)"), 0;
    if (o->model_id && strlen(o->model_id) > MAX_MODEL_ID_BYTES)
        return err_set(e, "%s: model_id longer than %u bytes", path, MAX_MODEL_ID_BYTES), 0;
    // A chunk holds 2 * n_layers * chunk_tokens * d values; the default shrinks to fit the cap.
    uint64_t per_token = 2ull * (uint64_t)o->n_layers * (uint64_t)o->d_model;
    uint64_t fit = ACTSHARD_MAX_CHUNK_VALUES / per_token;
    if (fit == 0)
        return err_set(e, "%s: one token has %llu values, more than a chunk may hold (%llu)", path, (ull)per_token,
                       (ull)ACTSHARD_MAX_CHUNK_VALUES), 0;
    uint32_t ct = o->chunk_tokens;
    if (ct == 0) ct = fit < ACTSHARD_DEFAULT_CHUNK_TOKENS ? (uint32_t)fit : ACTSHARD_DEFAULT_CHUNK_TOKENS;
    if (ct > ACTSHARD_MAX_CHUNK_TOKENS || ct > fit)
        return err_set(e, "%s: chunk_tokens %u too large (at most %llu for %d layers of d_model %d)", path, ct,
                       (ull)(fit < ACTSHARD_MAX_CHUNK_TOKENS ? fit : ACTSHARD_MAX_CHUNK_TOKENS), o->n_layers,
                       o->d_model), 0;
    if (o->zstd_level > ZSTD_maxCLevel())
        return err_set(e, "%s: zstd level %d above the maximum %d", path, o->zstd_level, ZSTD_maxCLevel()), 0;
    return ct;
}

// Opens a writer onto f (to_stream: owned by the caller) or onto "<path>.tmp.<pid>" (f NULL).
static ActShardWriter *writer_open(const char *path, FILE *f, const ActShardWriterOptions *opt, Error *e) {
    if (!opt) return err_set(e, "%s: no writer options", path), NULL;
    uint32_t ct = check_options(path, opt, e);
    if (!ct) return NULL;
    const char *meta = opt->meta_json ? opt->meta_json : "{}";
    const char *model_id = opt->model_id ? opt->model_id : "";
    size_t meta_len = strlen(meta), mid_len = strlen(model_id);
    if (shard_meta_check(path, meta, meta_len, e)) return NULL;

    ActShardWriter *w = xcalloc(1, sizeof *w);
    w->dtype = opt->dtype;
    w->enc_param = opt->enc_param;
    act_encoding_check(w->dtype, &w->enc_param, NULL);  // checked above: only fills the default
    w->rb = actq_row_bytes(w->dtype, (size_t)opt->d_model);
    w->ns = actq_row_scales(w->dtype, w->enc_param, (size_t)opt->d_model);
    w->n_layers = opt->n_layers;
    w->layers = xmalloc((size_t)opt->n_layers * sizeof(int));
    memcpy(w->layers, opt->layers, (size_t)opt->n_layers * sizeof(int));
    w->d = opt->d_model;
    w->chunk_tokens = ct;
    w->level = opt->zstd_level == 0 ? SHARD_ZSTD_LEVEL : opt->zstd_level;
    w->planes = w->level >= 0 && (opt->shuffle ? opt->shuffle > 0 : act_default_shuffle(w->dtype));
    w->threads = opt->threads;
    if (shard_out_open(&w->out, path, f, e)) {
        writer_free(w);
        return NULL;
    }
    size_t L = (size_t)w->n_layers, d = (size_t)w->d;
    w->raw_full = (size_t)payload_bytes(ct, L, d, w->dtype, w->enc_param);  // allocated by the first write
    w->rows = xmalloc(2 * L * d * sizeof(float));
    w->shift = xcalloc(2 * L * d, sizeof(double));
    w->s1 = xcalloc(2 * L * d, sizeof(double));
    w->s2 = xcalloc(2 * L * d, sizeof(double));
    w->norm_sum = xcalloc(2 * L, sizeof(double));
    w->sq_norm_sum = xcalloc(2 * L, sizeof(double));
    if (w->level >= 0 && !(w->cctx = ZSTD_createCCtx())) fatal("out of memory creating a zstd context");

    size_t hn = HEADER_FIXED + 4 * L + mid_len + meta_len;
    uint8_t *h = xcalloc(1, hn);
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, ACTSHARD_VERSION);
    put_u32(h + 12, (uint32_t)w->dtype);
    put_u32(h + 16, w->enc_param);  // int8: qmax; int4: group size; 0 for the others
    put_u32(h + 20, (uint32_t)w->d);
    put_u32(h + 24, (uint32_t)w->n_layers);
    put_u32(h + 28, ct);
    put_u64(h + 32, opt->model_hash);
    memcpy(h + 40, opt->in_hook, strlen(opt->in_hook));  // NUL padding from xcalloc
    memcpy(h + 56, opt->out_hook, strlen(opt->out_hook));
    put_u32(h + 72, (uint32_t)mid_len);
    put_u32(h + 76, (uint32_t)meta_len);
    for (size_t l = 0; l < L; l++) put_u32(h + HEADER_FIXED + 4 * l, (uint32_t)opt->layers[l]);
    memcpy(h + HEADER_FIXED + 4 * L, model_id, mid_len);
    memcpy(h + HEADER_FIXED + 4 * L + mid_len, meta, meta_len);
    w->header_crc = crc32c(h, hn);
    int rc = write_bytes(w, h, hn, e);
    free(h);
    if (rc) {
        actshard_writer_abort(w);
        return NULL;
    }
    return w;
}

ActShardWriter *actshard_writer_open(const char *path, const ActShardWriterOptions *opt, Error *e) {
    return writer_open(path, NULL, opt, e);
}

ActShardWriter *actshard_writer_open_stream(FILE *f, const char *name, const ActShardWriterOptions *opt, Error *e) {
    if (!f) return err_set(e, "%s: no stream to write to", name), NULL;
    return writer_open(name, f, opt, e);
}

// Offsets inside the payload of a chunk of n tokens (the pending one is laid out for n =
// chunk_tokens): prefix | doc ids | token ids | positions | scales (+ padding) | values.
static size_t off_docs(void) { return CHUNK_PREFIX; }
static size_t off_toks(size_t n) { return CHUNK_PREFIX + 8 * n; }
static size_t off_pos(size_t n) { return CHUNK_PREFIX + 12 * n; }
static size_t off_scales(size_t n) { return CHUNK_PREFIX + TOKEN_BYTES * n; }
static size_t off_vals(const ActShardWriter *w, size_t n) {
    return off_scales(n) + (size_t)scale_bytes_of(n, (uint64_t)w->n_layers, (uint64_t)w->d, w->dtype, w->enc_param);
}

// Feeds len bytes to the zstd stream (e_end: and finishes the frame) into w->comp at *pos,
// growing it if the bound was not enough.
static int stream_bytes(ActShardWriter *w, const void *p, size_t len, ZSTD_EndDirective end, size_t *pos, Error *e) {
    ZSTD_inBuffer in = {p, len, 0};
    for (;;) {
        if (w->comp_cap - *pos < 4096)
            w->comp = shard_grow(w->comp, &w->comp_cap, w->comp_cap + (w->comp_cap >> 1) + 4096);
        ZSTD_outBuffer out = {w->comp, w->comp_cap, *pos};
        size_t left = ZSTD_compressStream2(w->cctx, &out, &in, end);
        *pos = out.pos;
        if (ZSTD_isError(left)) {
            w->out.failed = 1;
            return err_set(e, "%s: chunk %llu: zstd: %s", w->out.path, (ull)w->n_chunks, ZSTD_getErrorName(left));
        }
        if (in.pos == in.size && (end == ZSTD_e_continue || left == 0)) return 0;
    }
}

// Compresses the payload r (raw_n bytes, n tokens) in the byte-plane layout: every (hook, layer)
// block of bf16 scales, and of f32/bf16/f16 values, goes through w->planes_buf as byte planes.
// Streaming keeps one block of extra memory instead of a second payload; the pledged size puts
// the content size in the frame header, as the one-shot path does.
static int compress_planes(ActShardWriter *w, const uint8_t *r, size_t n, size_t raw_n, size_t *out_n, Error *e) {
    size_t blocks = 2 * (size_t)w->n_layers, es = actq_elem_bytes(w->dtype);
    size_t sblock = n * w->ns * 2, vblock = n * w->rb, pos = 0;
    ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->level);
    ZSTD_CCtx_setPledgedSrcSize(w->cctx, raw_n);
    w->comp = shard_grow(w->comp, &w->comp_cap, ZSTD_compressBound(raw_n));
    if (stream_bytes(w, r, off_scales(n), ZSTD_e_continue, &pos, e)) return -1;
    const uint8_t *sc = r + off_scales(n), *v = r + off_vals(w, n);
    for (size_t b = 0; b < blocks && sblock; b++) {
        actq_to_planes(sc + b * sblock, w->planes_buf, sblock / 2, 2);
        if (stream_bytes(w, w->planes_buf, sblock, ZSTD_e_continue, &pos, e)) return -1;
    }
    if (stream_bytes(w, sc + blocks * sblock, (size_t)(v - sc) - blocks * sblock, ZSTD_e_continue, &pos, e))
        return -1;  // the scale padding
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *src = v + b * vblock;
        if (es > 1) actq_to_planes(src, w->planes_buf, vblock / es, es), src = w->planes_buf;
        if (stream_bytes(w, src, vblock, b + 1 < blocks ? ZSTD_e_continue : ZSTD_e_end, &pos, e)) return -1;
    }
    *out_n = pos;
    return 0;
}

// Compacts the pending payload from stride chunk_tokens to stride n, compresses (or stores) it,
// writes it and records its index entry.
static int flush_chunk(ActShardWriter *w, Error *e) {
    size_t n = w->n_pending, ct = w->chunk_tokens, blocks = 2 * (size_t)w->n_layers;
    size_t sblock = n * w->ns * 2, sblock_full = ct * w->ns * 2;
    size_t vblock = n * w->rb, vblock_full = ct * w->rb;
    uint8_t *r = w->raw;
    if (n < ct) {
        // Every region moves down (or stays), and regions are moved in file order, so a move
        // never overwrites a region not yet moved.
        memmove(r + off_toks(n), r + off_toks(ct), 4 * n);
        memmove(r + off_pos(n), r + off_pos(ct), 4 * n);
        for (size_t b = 0; b < blocks; b++)
            memmove(r + off_scales(n) + b * sblock, r + off_scales(ct) + b * sblock_full, sblock);
        for (size_t b = 0; b < blocks; b++)
            memmove(r + off_vals(w, n) + b * vblock, r + off_vals(w, ct) + b * vblock_full, vblock);
    }
    // the scale padding (0 to 6 bytes) is zero
    memset(r + off_scales(n) + blocks * sblock, 0, off_vals(w, n) - off_scales(n) - blocks * sblock);
    put_u32(r, (uint32_t)n);
    put_u32(r + 4, (uint32_t)(off_vals(w, n) - off_scales(n)));  // scale_bytes
    size_t raw_n = (size_t)payload_bytes(n, (uint64_t)w->n_layers, (uint64_t)w->d, w->dtype, w->enc_param);
    const uint8_t *stored = r;
    size_t stored_n = raw_n;
    if (w->planes) {
        if (compress_planes(w, r, n, raw_n, &stored_n, e)) return -1;
        stored = w->comp;
    } else if (w->level >= 0) {
        w->comp = shard_grow(w->comp, &w->comp_cap, ZSTD_compressBound(raw_n));
        // One-shot compression records the content size in the frame header (readers in other
        // languages can size their buffer from it).
        size_t cn = ZSTD_compressCCtx(w->cctx, w->comp, w->comp_cap, r, raw_n, w->level);
        if (ZSTD_isError(cn)) {
            w->out.failed = 1;
            return err_set(e, "%s: chunk %llu: zstd: %s", w->out.path, (ull)w->n_chunks, ZSTD_getErrorName(cn));
        }
        stored = w->comp;
        stored_n = cn;
    }
    ActShardIndexEntry ix = {
        .offset = w->out.offset,
        .comp_bytes = stored_n,
        .raw_bytes = raw_n,
        .first_token = w->n_tokens,
        .n_tokens = (uint32_t)n,
        .compression = w->planes ? COMP_ZSTD_PLANES : w->level >= 0 ? COMP_ZSTD : COMP_STORED,
        .crc = crc32c(stored, stored_n),
    };
    if (write_bytes(w, stored, stored_n, e)) return -1;
    w->index = shard_grow(w->index, &w->index_cap, (w->n_chunks + 1) * sizeof ix);
    w->index[w->n_chunks++] = ix;
    w->n_tokens += n;
    w->n_pending = 0;
    return 0;
}

// Checks every value of x (n_layers, n, d) before anything is written. Returns 0 or -1 with e.
static int check_values(const ActShardWriter *w, const float *x, size_t n, const char *hook, Error *e) {
    size_t total = (size_t)w->n_layers * n * (size_t)w->d;
    // f16's largest finite value is 65504: anything from 65520 up rounds to inf. The quantised
    // encodings cap |x| below 2^96 so every scale, and every decoded value, stays finite.
    float lim = w->dtype == ACT_F16 ? 65520.0f : actq_is_quantized(w->dtype) ? ACTQ_MAX_ABS : INFINITY;
    for (size_t k = 0; k < total; k++) {
        float a = fabsf(x[k]);
        if (a < lim) continue;  // false for NaN too
        size_t row = k / (size_t)w->d;
        int layer = w->layers[row / n];
        if (isfinite(a) && w->dtype == ACT_F16)
            return err_set(e, "%s: %s value %g at layer %d, token %zu of this write, dimension %zu overflows f16 "
                           "(max 65504); write bf16 or f32", w->out.path, hook, (double)x[k], layer, row % n,
                           k % (size_t)w->d);
        if (isfinite(a))
            return err_set(e, "%s: %s value %g at layer %d, token %zu of this write, dimension %zu is too large for "
                           "%s (|x| must be below 2^96)", w->out.path, hook, (double)x[k], layer, row % n,
                           k % (size_t)w->d, act_dtype_name(w->dtype));
        return err_set(e, "%s: non-finite %s value %g at layer %d, token %zu of this write, dimension %zu", w->out.path,
                       hook, (double)x[k], layer, row % n, k % (size_t)w->d);
    }
    return 0;
}

// Encodes one row of block b = (hook h, layer li) into slot t of the pending chunk and adds it,
// as a reader will decode it, to the statistics of the block. Touches only block b's bytes,
// statistics and scratch row, so blocks can be encoded on different threads.
static void put_row(ActShardWriter *w, size_t b, size_t t, const float *src, int first) {
    size_t d = (size_t)w->d, ct = w->chunk_tokens;
    uint8_t *vals = w->raw + off_vals(w, ct) + (b * ct + t) * w->rb;  // aligned for its words
    uint16_t *scales = (uint16_t *)(void *)(w->raw + off_scales(ct) + (b * ct + t) * w->ns * 2);
    actq_encode_row(w->dtype, w->enc_param, src, d, vals, scales);
    const float *v = src;
    if (w->dtype != ACT_F32) {
        ActqLayout lay = {.enc = w->dtype, .param = w->enc_param, .d = d};
        size_t bad;
        float *row = w->rows + b * d;
        actq_decode_rows(&lay, vals, (const uint8_t *)scales, 1, row, &bad);  // our own scales: in range
        v = row;
    }
    double *K = w->shift + b * d, *s1 = w->s1 + b * d, *s2 = w->s2 + b * d;
    if (first)  // the shard's first token sets the shift
        for (size_t j = 0; j < d; j++) K[j] = v[j];
    double sq = 0;
    for (size_t j = 0; j < d; j++) {
        double x = v[j], y = x - K[j];
        sq += x * x;
        s1[j] += y;
        s2[j] += y * y;
    }
    w->norm_sum[b] += sqrt(sq);
    w->sq_norm_sum[b] += sq;
}

typedef struct {
    ActShardWriter *w;
    const float *x[2];  // in, out: (n_layers, n, d)
    size_t n, pos, take;
} PutJob;

static void put_blocks(void *ctx, size_t b0, size_t b1) {
    PutJob *j = ctx;
    ActShardWriter *w = j->w;
    size_t L = (size_t)w->n_layers, d = (size_t)w->d;
    for (size_t b = b0; b < b1; b++) {
        const float *x = j->x[b / L] + ((b % L) * j->n + j->pos) * d;
        for (size_t k = 0; k < j->take; k++) {
            size_t t = w->n_pending + k;  // slot in the pending chunk
            put_row(w, b, t, x + k * d, w->n_tokens == 0 && t == 0);
        }
    }
}

int actshard_write(ActShardWriter *w, size_t n, const uint32_t *token_ids, const uint64_t *doc_ids,
                   const uint32_t *positions, const float *in, const float *out, Error *e) {
    if (w->out.failed) return err_set(e, "%s: an earlier write failed", w->out.path);
    if (n == 0) return 0;
    if (!token_ids || !doc_ids || !positions || !in || !out)
        return err_set(e, "%s: actshard_write: NULL array for %zu tokens", w->out.path, n);
    if (check_values(w, in, n, "input", e) || check_values(w, out, n, "output", e)) return -1;

    if (!w->raw) w->raw = xmalloc(w->raw_full);
    if (w->planes && !w->planes_buf) {
        size_t ct = w->chunk_tokens, sblock = ct * w->ns * 2, vblock = ct * w->rb;
        w->planes_buf = xmalloc(sblock > vblock ? sblock : vblock);
    }
    size_t ct = w->chunk_tokens, blocks = 2 * (size_t)w->n_layers;
    for (size_t pos = 0; pos < n;) {
        size_t take = n - pos < ct - w->n_pending ? n - pos : ct - w->n_pending;
        for (size_t k = 0; k < take; k++) {
            size_t t = w->n_pending + k;
            put_u64(w->raw + off_docs() + 8 * t, doc_ids[pos + k]);
            put_u32(w->raw + off_toks(ct) + 4 * t, token_ids[pos + k]);
            put_u32(w->raw + off_pos(ct) + 4 * t, positions[pos + k]);
        }
        // One (hook, layer) block per thread, once there is enough work to pay for the threads.
        PutJob job = {w, {in, out}, n, pos, take};
        int threads = take * blocks * (size_t)w->d < (1u << 16) ? 1 : w->threads;
        parallel_for_n(blocks, 1, threads, put_blocks, &job);
        w->n_pending += (uint32_t)take;
        pos += take;
        if (w->n_pending == ct && flush_chunk(w, e)) return -1;
    }
    return 0;
}

void actshard_writer_abort(ActShardWriter *w) {
    if (!w) return;
    shard_out_abort(&w->out);
    writer_free(w);
}

// Serialises the statistics section (formats/acts.md, "Statistics"); returns its bytes.
static uint8_t *build_stats(const ActShardWriter *w, size_t *len) {
    size_t L = (size_t)w->n_layers, d = (size_t)w->d;
    size_t per = (size_t)layer_stats_bytes(d);
    uint8_t *b = xmalloc(L * per);
    double N = (double)w->n_tokens;
    for (size_t l = 0; l < L; l++) {
        uint8_t *p = b + l * per;
        put_u64(p, w->n_tokens);
        p += 8;
        for (int h = 0; h < 2; h++) {
            size_t hl = (size_t)h * L + l;
            put_f64(p, N ? w->norm_sum[hl] / N : 0);
            put_f64(p + 8, N ? w->sq_norm_sum[hl] / N : 0);
            p += HOOK_STATS_FIXED;
            const double *K = w->shift + hl * d, *s1 = w->s1 + hl * d, *s2 = w->s2 + hl * d;
            for (size_t j = 0; j < d; j++) {
                double m1 = N ? s1[j] / N : 0, var = N ? s2[j] / N - m1 * m1 : 0;
                put_f64(p + 8 * j, K[j] + m1);
                put_f64(p + 8 * (d + j), var > 0 ? var : 0);
            }
            p += 16 * d;
        }
    }
    *len = L * per;
    return b;
}

int actshard_writer_close(ActShardWriter *w, Error *e) {
    if (w->out.failed) {
        err_set(e, "%s: not finished: an earlier write failed", w->out.path);
        actshard_writer_abort(w);
        return -1;
    }
    if (w->n_pending && flush_chunk(w, e)) {
        actshard_writer_abort(w);
        return -1;
    }
    uint64_t stats_offset = w->out.offset;
    size_t stats_n;
    uint8_t *stats = build_stats(w, &stats_n);
    uint32_t stats_crc = crc32c(stats, stats_n);
    int rc = write_bytes(w, stats, stats_n, e);
    free(stats);
    ShardFooter f = {.n_chunks = w->n_chunks, .n_tokens = w->n_tokens, .ext64 = stats_offset,
                     .header_crc = w->header_crc, .ext32 = stats_crc};
    if (rc) shard_out_abort(&w->out);
    else rc = shard_out_finish(&w->out, w->index, &f, END_MAGIC, e);
    writer_free(w);
    return rc;
}

// ---- reader ----------------------------------------------------------------------------------

// Validates the header fields read into s (after the header CRC matched).
static int check_header(ActShard *s, uint32_t enc_param, const uint8_t *h, Error *e) {
    const char *P = s->path;
    s->enc_param = enc_param;
    if (s->dtype == ACT_INT8 && (enc_param < 1 || enc_param > 127))
        return err_set(e, "%s: int8 qmax %u outside [1, 127]", P, enc_param);
    if (s->dtype == ACT_INT4 && (enc_param < 1 || enc_param > ACTSHARD_MAX_D_MODEL))
        return err_set(e, "%s: int4 group size %u outside [1, %u]", P, enc_param, ACTSHARD_MAX_D_MODEL);
    if (s->dtype != ACT_INT8 && s->dtype != ACT_INT4 && enc_param != 0)
        return err_set(e, "%s: encoding %s takes no parameter, header has %u", P, act_dtype_name(s->dtype), enc_param);
    if (s->chunk_tokens == 0 || s->chunk_tokens > ACTSHARD_MAX_CHUNK_TOKENS)
        return err_set(e, "%s: chunk_tokens %u outside [1, %u]", P, s->chunk_tokens, ACTSHARD_MAX_CHUNK_TOKENS);
    uint64_t values = 2ull * (uint64_t)s->n_layers * s->chunk_tokens * (uint64_t)s->d_model;  // < 2^58
    if (values > ACTSHARD_MAX_CHUNK_VALUES)
        return err_set(e, "%s: a chunk of %u tokens x %d layers x 2 x d_model %d has %llu values (maximum %llu)", P,
                       s->chunk_tokens, s->n_layers, s->d_model, (ull)values, (ull)ACTSHARD_MAX_CHUNK_VALUES);
    for (int k = 0; k < 2; k++) {
        const uint8_t *src = h + 40 + 16 * k;
        char *dst = k ? s->out_hook : s->in_hook;
        size_t len = strnlen((const char *)src, ACTSHARD_HOOK_BYTES);
        int pad_ok = len < ACTSHARD_HOOK_BYTES;
        for (size_t i = len; pad_ok && i < ACTSHARD_HOOK_BYTES; i++) pad_ok = src[i] == 0;
        memcpy(dst, src, ACTSHARD_HOOK_BYTES);
        dst[ACTSHARD_HOOK_BYTES - 1] = 0;
        if (!pad_ok || !hook_ok(dst))
            return err_set(e, "%s: %s hook name is not 1..15 characters of [a-z0-9_] padded with NUL bytes", P,
                           k ? "output" : "input");
    }
    for (int l = 0; l < s->n_layers; l++) {
        uint32_t v = get_u32(h + HEADER_FIXED + 4 * (size_t)l);
        if (v > INT32_MAX || (l && (int)v <= s->layers[l - 1]))
            return err_set(e, "%s: layers are not strictly ascending below 2^31 (layers[%d] = %u)", P, l, v);
        s->layers[l] = (int)v;
    }
    return 0;
}

// An activation shard's rules for one index entry: 1..chunk_tokens tokens, the payload size they
// make, and a known compression whose stored size can hold the payload.
static int check_entry(void *ctx, uint64_t i, const ShardIndexEntry *x, Error *e) {
    const ActShard *s = ctx;
    const char *P = s->path;
    if (x->n_tokens == 0 || x->n_tokens > s->chunk_tokens)
        return err_set(e, "%s: chunk %llu: %u tokens outside [1, chunk_tokens %u]", P, (ull)i, x->n_tokens,
                       s->chunk_tokens);
    uint64_t want = payload_bytes(x->n_tokens, (uint64_t)s->n_layers, (uint64_t)s->d_model, s->dtype, s->enc_param);
    if (x->raw_bytes != want)
        return err_set(e, "%s: chunk %llu: raw size %llu, expected %llu for %u tokens", P, (ull)i, (ull)x->raw_bytes,
                       (ull)want, x->n_tokens);
    if (x->compression == COMP_STORED) {
        if (x->comp_bytes != x->raw_bytes)
            return err_set(e, "%s: chunk %llu: stored uncompressed but %llu bytes, payload is %llu", P, (ull)i,
                           (ull)x->comp_bytes, (ull)x->raw_bytes);
    } else if (x->compression == COMP_ZSTD || x->compression == COMP_ZSTD_PLANES) {
        if (x->raw_bytes / ZSTD_MAX_RATIO > x->comp_bytes)
            return err_set(e, "%s: chunk %llu: %llu raw bytes cannot come from a %llu-byte zstd frame", P, (ull)i,
                           (ull)x->raw_bytes, (ull)x->comp_bytes);
    } else {
        return err_set(e, "%s: chunk %llu: unknown compression %u", P, (ull)i, x->compression);
    }
    return 0;
}

// Validates the index entries against each other, the header and the footer.
static int check_index(const ActShard *s, uint64_t header_end, uint64_t stats_offset, Error *e) {
    ShardIndexRules rules = {header_end, stats_offset, s->n_tokens, "stored", "the statistics",
                             "the statistics start", check_entry, (void *)s};
    return shard_index_check(&s->file, s->index, s->n_chunks, &rules, e);
}

// Decodes and validates the statistics section (raw, n bytes, CRC already checked).
static int parse_stats(ActShard *s, const uint8_t *raw, Error *e) {
    size_t L = (size_t)s->n_layers, d = (size_t)s->d_model;
    size_t per = (size_t)layer_stats_bytes(d);
    s->stats = xcalloc(L, sizeof *s->stats);
    for (size_t l = 0; l < L; l++) {  // allocate all first so close frees a partial parse
        for (int h = 0; h < 2; h++) {
            ActHookStats *hs = h ? &s->stats[l].out : &s->stats[l].in;
            hs->mean = xmalloc(d * sizeof(double));
            hs->var = xmalloc(d * sizeof(double));
        }
    }
    for (size_t l = 0; l < L; l++) {
        const uint8_t *p = raw + l * per;
        ActLayerStats *ls = &s->stats[l];
        ls->count = get_u64(p);
        if (ls->count != s->n_tokens)
            return err_set(e, "%s: statistics of layer %d count %llu tokens, the shard has %llu", s->path,
                           s->layers[l], (ull)ls->count, (ull)s->n_tokens);
        p += 8;
        for (int h = 0; h < 2; h++) {
            ActHookStats *hs = h ? &ls->out : &ls->in;
            hs->mean_norm = get_f64(p);
            hs->mean_sq_norm = get_f64(p + 8);
            p += HOOK_STATS_FIXED;
            int ok = isfinite(hs->mean_norm) && isfinite(hs->mean_sq_norm) && hs->mean_norm >= 0 &&
                     hs->mean_sq_norm >= 0;
            for (size_t j = 0; j < d; j++) {
                hs->mean[j] = get_f64(p + 8 * j);
                hs->var[j] = get_f64(p + 8 * (d + j));
                ok &= isfinite(hs->mean[j]) && isfinite(hs->var[j]) && hs->var[j] >= 0;
            }
            if (!ok)
                return err_set(e, "%s: statistics of layer %d (%s): a norm or variance is negative or not finite",
                               s->path, s->layers[l], h ? "output" : "input");
            p += 16 * d;
        }
    }
    return 0;
}

// Reads and validates everything but the chunks of an opened s (path, fd or mem, file_size set).
static int parse_shard(ActShard *s, Error *e) {
    const char *P = s->path;
    uint64_t size = s->file_size;
    uint8_t h0[HEADER_FIXED];
    ShardFooter f;
    if (shard_read_ends(&s->file, &KIND, h0, &s->version, &f, e)) return -1;
    uint64_t index_offset = f.index_offset, stats_offset = f.ext64;
    s->n_chunks = f.n_chunks;
    s->n_tokens = f.n_tokens;

    // Header: its variable part must fit before the footer; its CRC (kept in the footer) covers
    // all of it. Lengths are bounded before they are added, so nothing overflows.
    uint32_t encoding = get_u32(h0 + 12), enc_param = get_u32(h0 + 16);
    uint32_t n_layers = get_u32(h0 + 24), mid_len = get_u32(h0 + 72), meta_len = get_u32(h0 + 76);
    if (n_layers == 0 || n_layers > ACTSHARD_MAX_LAYERS)
        return err_set(e, "%s: n_layers %u outside [1, %d]", P, n_layers, ACTSHARD_MAX_LAYERS);
    uint64_t header_end = (uint64_t)HEADER_FIXED + 4ull * n_layers + mid_len + meta_len;
    if (mid_len > MAX_MODEL_ID_BYTES || meta_len > SHARD_MAX_META_BYTES || header_end > size - SHARD_FOOTER)
        return err_set(e, "%s: header (%u layers, model id of %u bytes, metadata of %u bytes) does not fit the file "
                       "(%llu bytes)", P, n_layers, mid_len, meta_len, (ull)size);
    uint8_t *h = xmalloc((size_t)header_end);
    if (shard_file_read(&s->file, h, (size_t)header_end, 0, e)) {
        free(h);
        return -1;
    }
    if (check_crc(P, "header", f.header_crc, crc32c(h, (size_t)header_end), e)) {
        free(h);
        return -1;
    }
    if (encoding >= ACT_N_DTYPES) {
        free(h);
        return err_set(e, "%s: unsupported encoding %u (this reader knows f32, bf16, f16, int8, fp8, int4)", P,
                       encoding);
    }
    s->dtype = (ActDtype)encoding;
    s->n_layers = (int)n_layers;
    uint32_t d_model = get_u32(h0 + 20);
    if (d_model == 0 || d_model > ACTSHARD_MAX_D_MODEL) {
        free(h);
        return err_set(e, "%s: d_model %u outside [1, %u]", P, d_model, ACTSHARD_MAX_D_MODEL);
    }
    s->d_model = (int)d_model;
    s->chunk_tokens = get_u32(h0 + 28);
    s->model_hash = get_u64(h0 + 32);
    s->layers = xcalloc(n_layers, sizeof(int));
    const char *mid = (const char *)h + HEADER_FIXED + 4 * (size_t)n_layers, *meta = mid + mid_len;
    s->model_id = xmalloc((size_t)mid_len + 1);
    memcpy(s->model_id, mid, mid_len);
    s->model_id[mid_len] = 0;
    s->meta_json = xmalloc((size_t)meta_len + 1);
    memcpy(s->meta_json, meta, meta_len);
    s->meta_json[meta_len] = 0;
    char why[200];
    int rc = check_header(s, enc_param, h, e);
    if (!rc && memchr(mid, 0, mid_len)) rc = err_set(e, "%s: model id contains a NUL byte", P);
    if (!rc && !shard_meta_is_object(meta, meta_len, why, sizeof why))
        rc = err_set(e, "%s: header metadata: %s", P, why);
    free(h);
    if (rc) return rc;

    // Placement: header | chunks | stats | index | footer, the stats of fixed size.
    uint64_t stats_bytes = (uint64_t)n_layers * layer_stats_bytes((uint64_t)s->d_model);  // < 2^58
    if (shard_index_check_place(&s->file, &f, header_end, e)) return -1;
    if (stats_offset < header_end || stats_offset > index_offset || index_offset - stats_offset != stats_bytes)
        return err_set(e, "%s: statistics at offset %llu do not fill the %llu bytes before the index at %llu "
                       "(header ends at %llu)", P, (ull)stats_offset, (ull)stats_bytes, (ull)index_offset,
                       (ull)header_end);
    if (shard_index_read(&s->file, &f, &s->index, e) || check_index(s, header_end, stats_offset, e)) return -1;

    uint8_t *raw = xmalloc((size_t)stats_bytes);
    rc = shard_file_read(&s->file, raw, (size_t)stats_bytes, stats_offset, e);
    if (!rc) rc = check_crc(P, "statistics", f.ext32, crc32c(raw, (size_t)stats_bytes), e);
    if (!rc) rc = parse_stats(s, raw, e);
    free(raw);
    return rc;
}

int actshard_open(ActShard *s, const char *path, Error *e) {
    memset(s, 0, sizeof *s);
    if (shard_file_open(&s->file, path, e)) return -1;
    if (parse_shard(s, e)) {
        actshard_close(s);
        return -1;
    }
    return 0;
}

int actshard_open_mem(ActShard *s, const void *data, size_t len, const char *name, Error *e) {
    memset(s, 0, sizeof *s);
    shard_file_open_mem(&s->file, data, len, name);
    if (parse_shard(s, e)) {
        actshard_close(s);
        return -1;
    }
    return 0;
}

void actshard_close(ActShard *s) {
    if (s->stats)
        for (int l = 0; l < s->n_layers; l++) {
            free(s->stats[l].in.mean);
            free(s->stats[l].in.var);
            free(s->stats[l].out.mean);
            free(s->stats[l].out.var);
        }
    free(s->stats);
    free(s->layers);
    free(s->model_id);
    free(s->meta_json);
    free(s->index);
    shard_file_close(&s->file);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

int actshard_layer_index(const ActShard *s, int layer) {
    for (int i = 0; i < s->n_layers; i++)
        if (s->layers[i] == layer) return i;
    return -1;
}

uint64_t actshard_chunk_of_token(const ActShard *s, uint64_t g) {
    uint64_t lo = 0, hi = s->n_chunks;  // the answer is in [lo, hi)
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (s->index[mid].first_token <= g) lo = mid;
        else hi = mid;
    }
    return lo;
}

void actchunk_free(ActChunk *c) {
    free(c->token_ids);
    free(c->doc_ids);
    free(c->positions);
    free(c->act);
    shard_chunk_buf_free(&c->io);
    memset(c, 0, sizeof *c);
}

// Decoding work for parallel_for: task t decodes rows [n*p/P, n*(p+1)/P) of block t / P, p = t % P.
typedef struct {
    const ActShard *s;
    ActChunk *c;
    size_t parts;
    size_t *bad;  // (tasks,) first bad row of the block in each task, or SIZE_MAX
} DecodeJob;

static void decode_tasks(void *ctx, size_t t0, size_t t1) {
    DecodeJob *j = ctx;
    const ActChunk *c = j->c;
    size_t n = c->n, d = (size_t)j->s->d_model, ns = actq_row_scales(j->s->dtype, j->s->enc_param, d);
    size_t es = actq_elem_bytes(j->s->dtype), rb = actq_row_bytes(j->s->dtype, d);
    for (size_t t = t0; t < t1; t++) {
        size_t b = t / j->parts, p = t % j->parts;
        size_t r0 = n * p / j->parts, r1 = n * (p + 1) / j->parts;
        ActqLayout lay = {.enc = j->s->dtype, .param = j->s->enc_param, .d = d};
        const uint8_t *v = c->vals + b * c->val_block, *sc = c->scales + b * c->scale_block;
        if (c->planes) {
            lay.val_planes = es > 1 ? n * d : 0;
            lay.scale_planes = n * ns;
            v += es > 1 ? r0 * d : r0 * rb;
            sc += r0 * ns;
        } else {
            v += r0 * rb;
            sc += r0 * ns * 2;
        }
        size_t bad = SIZE_MAX;
        int rc = c->encoded_only ? actq_validate_rows(&lay, v, sc, r1 - r0, &bad)
                                 : actq_decode_rows(&lay, v, sc, r1 - r0, c->act + (b * n + r0) * d, &bad);
        j->bad[t] = rc ? r0 + bad : SIZE_MAX;
    }
}

// Decodes the payload of chunk i (in c->io.raw, raw_bytes long) into c's arrays.
static int parse_payload(const ActShard *s, uint64_t i, ActChunk *c, Error *e) {
    const ActShardIndexEntry *x = &s->index[i];
    const uint8_t *r = c->io.raw;
    uint32_t n = get_u32(r), scale_bytes = get_u32(r + 4);
    if (n != x->n_tokens)
        return err_set(e, "%s: chunk %llu: payload says %u tokens, index says %u", s->path, (ull)i, n, x->n_tokens);
    size_t L = (size_t)s->n_layers, d = (size_t)s->d_model, blocks = 2 * L;
    uint64_t want_scale = scale_bytes_of(n, L, d, s->dtype, s->enc_param);
    if (scale_bytes != want_scale && want_scale == 0)
        return err_set(e, "%s: chunk %llu: %u bytes of scale data, but encoding %s has none", s->path, (ull)i,
                       scale_bytes, act_dtype_name(s->dtype));
    if (scale_bytes != want_scale)
        return err_set(e, "%s: chunk %llu: %u bytes of scale data, encoding %s needs %llu for %u tokens", s->path,
                       (ull)i, scale_bytes, act_dtype_name(s->dtype), (ull)want_scale, n);
    if (n > c->tok_cap) {
        c->token_ids = xrealloc(c->token_ids, (size_t)n * sizeof *c->token_ids);
        c->doc_ids = xrealloc(c->doc_ids, (size_t)n * sizeof *c->doc_ids);
        c->positions = xrealloc(c->positions, (size_t)n * sizeof *c->positions);
        c->tok_cap = n;
    }
    for (uint32_t k = 0; k < n; k++) {
        c->doc_ids[k] = get_u64(r + off_docs() + 8 * (size_t)k);
        c->token_ids[k] = get_u32(r + off_toks(n) + 4 * (size_t)k);
        c->positions[k] = get_u32(r + off_pos(n) + 4 * (size_t)k);
    }
    c->n = n;
    c->chunk = i;
    c->first_token = x->first_token;
    c->scales = r + off_scales(n);  // 8-aligned in a malloc'd buffer, as are the values
    c->vals = c->scales + scale_bytes;
    c->scale_block = (size_t)n * actq_row_scales(s->dtype, s->enc_param, d) * 2;
    c->val_block = (size_t)n * actq_row_bytes(s->dtype, d);
    c->planes = x->compression == COMP_ZSTD_PLANES;
    // The activations are hook-major (2, n_layers, n, d): decoded, block b is rows [b*n, (b+1)*n)
    // of one (2 * n_layers * n, d) array, in then out. One task per block, or per part of a
    // block when there are fewer blocks than threads; small chunks stay on this thread.
    size_t values = blocks * n * d;
    int threads = values < (1u << 17) ? 1 : c->threads > 0 ? c->threads : parallel_threads();
    size_t parts = (size_t)threads > blocks ? ((size_t)threads + blocks - 1) / blocks : 1;
    if (parts > n) parts = n;
    if (!c->encoded_only) c->act = shard_grow(c->act, &c->act_cap, values * sizeof(float));
    size_t tasks = blocks * parts;
    DecodeJob job = {s, c, parts, xmalloc(tasks * sizeof(size_t))};
    parallel_for_n(tasks, 1, threads, decode_tasks, &job);
    size_t t = 0;
    while (t < tasks && job.bad[t] == SIZE_MAX) t++;
    if (t < tasks) {
        size_t b = t / parts, row = job.bad[t];
        free(job.bad);
        c->n = 0;
        const char *hook = b < L ? "input" : "output";
        int layer = s->layers[b % L];
        if (s->dtype == ACT_FP8) {  // which check failed: a scale, or a NaN code
            ActqLayout lay = {.enc = ACT_INT8, .param = s->enc_param, .d = d,
                              .scale_planes = c->planes ? (size_t)n : 0};
            const uint8_t *sc = c->scales + b * c->scale_block + (c->planes ? row : 2 * row);
            size_t dummy;
            if (!actq_validate_rows(&lay, NULL, sc, 1, &dummy))
                return err_set(e, "%s: chunk %llu: %s of layer %d, token %zu: fp8 NaN code (0x7F or 0xFF), which "
                               "writers never store", s->path, (ull)i, hook, layer, row);
        }
        return err_set(e, "%s: chunk %llu: %s of layer %d, token %zu: scale out of range (a scale must be a bf16 "
                       "in [0, 2^96])", s->path, (ull)i, hook, layer, row);
    }
    free(job.bad);
    c->in = c->encoded_only ? NULL : c->act;
    c->out = c->encoded_only ? NULL : c->act + values / 2;
    return 0;
}

int actshard_read_chunk(const ActShard *s, uint64_t i, ActChunk *c, Error *e) {
    const char *P = s->path;
    c->n = 0;
    if (i >= s->n_chunks)
        return err_set(e, "%s: chunk %llu out of range (%llu chunks)", P, (ull)i, (ull)s->n_chunks);
    const ActShardIndexEntry *x = &s->index[i];
    if (shard_chunk_load(&s->file, i, x, x->compression != COMP_STORED, &c->io, e)) return -1;
    return parse_payload(s, i, c, e);
}

// ---- info ------------------------------------------------------------------------------------

static json_t *hook_json(const ActHookStats *hs, int d, int per_dim) {
    double total_var = 0, mean_sq = 0;
    for (int j = 0; j < d; j++) total_var += hs->var[j], mean_sq += hs->mean[j] * hs->mean[j];
    json_t *o = json_object();
    json_object_set_new(o, "mean_norm", json_real(hs->mean_norm));
    json_object_set_new(o, "mean_sq_norm", json_real(hs->mean_sq_norm));
    // E||x - mean||^2 (the NMSE denominator) and ||mean||; their sum is mean_sq_norm.
    json_object_set_new(o, "total_var", json_real(total_var));
    json_object_set_new(o, "norm_of_mean", json_real(sqrt(mean_sq)));
    if (per_dim) {
        json_t *m = json_array(), *v = json_array();
        for (int j = 0; j < d; j++) {
            json_array_append_new(m, json_real(hs->mean[j]));
            json_array_append_new(v, json_real(hs->var[j]));
        }
        json_object_set_new(o, "mean", m);
        json_object_set_new(o, "var", v);
    }
    return o;
}

int actshard_print_info(const ActShard *s, FILE *f, int per_dim, Error *e) {
    char hash[24];
    snprintf(hash, sizeof hash, "%016llx", (ull)s->model_hash);
    uint64_t comp = 0, raw = 0;
    for (uint64_t i = 0; i < s->n_chunks; i++) comp += s->index[i].comp_bytes, raw += s->index[i].raw_bytes;
    json_t *o = json_object();
    json_object_set_new(o, "path", json_string(s->path));
    json_object_set_new(o, "format", json_string("cltkit activation shard"));
    json_object_set_new(o, "version", json_integer(s->version));
    json_object_set_new(o, "model_id", json_string(s->model_id));  // NULL (skipped) if not UTF-8
    json_object_set_new(o, "model_hash", json_string(hash));
    json_object_set_new(o, "in_hook", json_string(s->in_hook));
    json_object_set_new(o, "out_hook", json_string(s->out_hook));
    json_object_set_new(o, "dtype", json_string(act_dtype_name(s->dtype)));
    json_object_set_new(o, "enc_param", json_integer(s->enc_param));
    uint64_t planes = 0;
    for (uint64_t i = 0; i < s->n_chunks; i++) planes += s->index[i].compression == COMP_ZSTD_PLANES;
    json_object_set_new(o, "byte_plane_chunks", json_integer((json_int_t)planes));
    json_object_set_new(o, "d_model", json_integer(s->d_model));
    json_t *layers = json_array();
    for (int l = 0; l < s->n_layers; l++) json_array_append_new(layers, json_integer(s->layers[l]));
    json_object_set_new(o, "layers", layers);
    json_object_set_new(o, "chunk_tokens", json_integer(s->chunk_tokens));
    json_object_set_new(o, "n_tokens", json_integer((json_int_t)s->n_tokens));
    json_object_set_new(o, "n_chunks", json_integer((json_int_t)s->n_chunks));
    json_object_set_new(o, "file_bytes", json_integer((json_int_t)s->file_size));
    json_object_set_new(o, "payload_bytes", json_integer((json_int_t)raw));
    json_object_set_new(o, "stored_bytes", json_integer((json_int_t)comp));
    json_object_set_new(o, "meta", json_loads(s->meta_json, 0, NULL));
    json_t *stats = json_array();
    for (int l = 0; l < s->n_layers; l++) {
        json_t *ls = json_object();
        json_object_set_new(ls, "layer", json_integer(s->layers[l]));
        json_object_set_new(ls, "count", json_integer((json_int_t)s->stats[l].count));
        json_object_set_new(ls, "in", hook_json(&s->stats[l].in, s->d_model, per_dim));
        json_object_set_new(ls, "out", hook_json(&s->stats[l].out, s->d_model, per_dim));
        json_array_append_new(stats, ls);
    }
    json_object_set_new(o, "stats", stats);
    int rc = json_dumpf(o, f, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (rc != 0 || fputc('\n', f) == EOF || fflush(f) != 0)
        return err_set(e, "%s: cannot write the info JSON: %s", s->path, strerror(errno));
    return 0;
}
