// actshard.h — activation shard files: for every token, the CLT's input (hook mlp_in or
// resid_mid) and target (mlp_out) at chosen layers, with the token id, document id and position.
// Written by fwd-acts and quant-acts, read by clt-fit. Spec: formats/acts.md. Values are stored
// in one of six encodings (f32, bf16, f16; int8, fp8, int4 with bf16 scales) and every reader
// gets fp32 back from actshard_read_chunk, whatever the encoding.
//
// Same conventions as token shards (tokshard.h): zstd chunks with a CRC-32C each, an index and
// a footer at the end so the writer only appends (it can stream to a pipe), atomic writes via
// "<path>.tmp.<pid>" + rename. On top of that the writer keeps per-layer, per-hook statistics
// (mean norm, per-dimension mean and variance) and stores them at close, so clt-fit can
// normalise and compute NMSE without a pass over the data.
// Reading is random access by chunk (pread); read_chunk takes a const ActShard and a chunk
// object owned by the caller, so several threads can read chunks of one shard at once.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dtype.h"
#include "err.h"
#include "shard_defaults.h"
#include "shard_io.h"

#define ACTSHARD_VERSION 1
#define ACTSHARD_DEFAULT_CHUNK_TOKENS ((uint32_t)ACTSHARD_CHUNK_TOKENS)
#define ACTSHARD_HOOK_BYTES 16  // hook names are stored NUL-padded in 16 bytes (at most 15 chars)
// Bounds that keep a reader's memory per chunk finite whatever a corrupt file says, checked by
// writer and reader alike: 2 * n_layers * chunk_tokens * d_model <= ACTSHARD_MAX_CHUNK_VALUES.
#define ACTSHARD_MAX_LAYERS 4096
#define ACTSHARD_MAX_D_MODEL (1u << 20)
#define ACTSHARD_MAX_CHUNK_TOKENS (1u << 24)
#define ACTSHARD_MAX_CHUNK_VALUES (1ull << 30)  // 4 GiB of fp32 once decoded

// ActDtype (the file encodings, ACT_F32 … ACT_INT4) is in base/dtype.h.

const char *act_dtype_name(ActDtype d);                // "f32", "bf16", "f16", "int8", "fp8", "int4"; "?"
int act_dtype_parse(const char *name, ActDtype *out);  // 0, or -1 if the name is unknown
// "NAME" or "NAME:PARAM" (int8:31 = qmax 31, int4:64 = groups of 64): 0, or -1 with e saying why.
// *param gets the encoding's parameter (its default when not given; 0 for f32/bf16/f16/fp8).
int act_encoding_parse(const char *spec, ActDtype *dt, uint32_t *param, Error *e);
// The canonical spec of an encoding ("int8", "int8:31", "int4", "int4:64", "bf16") into buf.
const char *act_encoding_name(ActDtype dt, uint32_t param, char *buf, size_t len);
// 0 if param is valid for dt (after defaulting 0 -> the default), else -1 with e (no path).
int act_encoding_check(ActDtype dt, uint32_t *param, Error *e);
// Whether writers store chunks as byte planes ("shuffled", compression 2) unless told otherwise:
// chosen per encoding from the measurement in bench/RESULTS.md.
int act_default_shuffle(ActDtype dt);

// ---- writer ----------------------------------------------------------------------------------

typedef struct {
    const char *model_id;             // e.g. "stories260K" or a path (may be NULL: "")
    uint64_t model_hash;              // the model hash of formats/acts.md (0 if unknown)
    const char *in_hook, *out_hook;   // "mlp_in" | "resid_mid", "mlp_out": [a-z0-9_], 1..15 chars
    int n_layers;
    const int *layers;                // (n_layers,) model layers, strictly ascending, >= 0
    int d_model;
    ActDtype dtype;
    uint32_t enc_param;     // int8: qmax (0 = 127); int4: group size (0 = 32); else 0
    int shuffle;            // 0 = the encoding's default (act_default_shuffle), 1 = byte planes, -1 = plain
    int threads;            // encoding threads: 0 = parallel_threads(), 1 = the calling thread only
    uint32_t chunk_tokens;  // tokens per chunk (0 = default 4096, lowered if a chunk would exceed
                            // ACTSHARD_MAX_CHUNK_VALUES)
    int zstd_level;         // 0 = default SHARD_ZSTD_LEVEL; negative = store chunks uncompressed
    const char *meta_json;  // free-form JSON object (tokenizer, token shard, ctx, bos...), may be NULL
} ActShardWriterOptions;

typedef struct ActShardWriter ActShardWriter;

ActShardWriter *actshard_writer_open(const char *path, const ActShardWriterOptions *opt, Error *e);
// The same onto a stream the caller owns (e.g. open_memstream, to encode in memory): no temp file,
// no rename; close flushes f but does not close it. `name` stands for the path in messages.
ActShardWriter *actshard_writer_open_stream(FILE *f, const char *name, const ActShardWriterOptions *opt, Error *e);
// Appends n tokens. in/out: (n_layers, n, d_model) fp32, layer-major; token_ids, doc_ids,
// positions: (n,). Values must be finite (and, for f16, below 65520 in magnitude so they do not
// round to inf; for int8/fp8/int4 below 2^96): a bad value fails the call before any of its
// tokens is written, naming the layer, hook and token, and the writer stays usable. Encoding
// runs on parallel_threads() threads (one (hook, layer) block each) when the call is large.
int actshard_write(ActShardWriter *w, size_t n, const uint32_t *token_ids, const uint64_t *doc_ids,
                   const uint32_t *positions, const float *in, const float *out, Error *e);
// Flushes the last chunk, writes statistics, index and footer, renames the temp file. Frees w.
// On failure the temp file is removed and nothing appears at path.
int actshard_writer_close(ActShardWriter *w, Error *e);
// Discards a half-written shard (removes the temp file). Frees w.
void actshard_writer_abort(ActShardWriter *w);

// ---- reader ----------------------------------------------------------------------------------

// Statistics of one hook at one layer over all tokens of the shard, computed by the writer in
// double precision over the values as stored (i.e. after bf16/f16 rounding).
typedef struct {
    double mean_norm;     // mean over tokens of ||x||_2
    double mean_sq_norm;  // mean over tokens of ||x||_2^2
    double *mean;         // (d_model,) per-dimension mean
    double *var;          // (d_model,) per-dimension population variance (divided by count)
} ActHookStats;           // sum(var) = mean ||x - mean||^2, the denominator of NMSE

typedef struct {
    uint64_t count;  // tokens (= the shard's n_tokens)
    ActHookStats in, out;
} ActLayerStats;

// One index entry (formats/acts.md, "Index"): the container's (shard_io.h), with compression
// 0 = stored (raw_bytes = comp_bytes), 1 = zstd, 2 = zstd of the byte-plane layout.
typedef ShardIndexEntry ActShardIndexEntry;

typedef struct {
    union {  // the open file, as the shard container (shard_io.h) handles it
        ShardFile file;
        struct {
            char *path;
            int fd;              // -1 when opened from memory
            const uint8_t *mem;  // the buffer given to actshard_open_mem, else NULL
            uint64_t file_size;
        };
    };
    uint32_t version;
    ActDtype dtype;
    uint32_t enc_param;  // int8: qmax; int4: group size; else 0
    int n_layers, d_model;
    int *layers;  // (n_layers,) model layer numbers, ascending
    uint32_t chunk_tokens;
    uint64_t model_hash;
    char *model_id;
    char in_hook[ACTSHARD_HOOK_BYTES], out_hook[ACTSHARD_HOOK_BYTES];
    char *meta_json;  // header JSON object (NUL-terminated), "{}" if none
    uint64_t n_tokens, n_chunks;
    ActShardIndexEntry *index;  // (n_chunks,)
    ActLayerStats *stats;       // (n_layers,)
} ActShard;

// Opens and validates header, footer, index and statistics (every bound checked; a corrupt file
// is an error that starts with the path, never a crash or a huge allocation).
int actshard_open(ActShard *s, const char *path, Error *e);
// The same on a shard held in memory (the fuzzer's entry point); `name` stands for the path in
// messages, and data must outlive s.
int actshard_open_mem(ActShard *s, const void *data, size_t len, const char *name, Error *e);
void actshard_close(ActShard *s);
// Position of model layer `layer` in s->layers (the li of in/out blocks), or -1.
int actshard_layer_index(const ActShard *s, int layer);
// The chunk holding global token g (binary search over first_token); requires g < n_tokens.
uint64_t actshard_chunk_of_token(const ActShard *s, uint64_t g);
// Writes a JSON summary (header fields, totals, per-layer statistics; with per_dim also the
// per-dimension means and variances) and a newline to f. For an `info` mode of the tools.
int actshard_print_info(const ActShard *s, FILE *f, int per_dim, Error *e);

// A decoded chunk. Start from a zeroed ActChunk (`ActChunk c = {0};`); read_chunk reuses its
// buffers, so a thread reading many chunks keeps one ActChunk. Memory per ActChunk is bounded by
// one chunk (its stored bytes, its payload and its fp32 values).
typedef struct {
    // Set by the caller before reading (zero = defaults):
    int threads;       // decode threads: 0 = parallel_threads(), 1 = the calling thread only (set 1
                       // when several threads each read their own chunks)
    int encoded_only;  // 1: verify and decompress but leave the values encoded (in/out NULL)
    // Set by read_chunk:
    uint64_t chunk;        // which chunk this is
    uint64_t first_token;  // global index of token 0
    uint32_t n;            // tokens
    uint32_t *token_ids;   // (n,)
    uint64_t *doc_ids;     // (n,)
    uint32_t *positions;   // (n,)
    float *in, *out;       // (n_layers, n, d_model) fp32, decoded; layer li at + li * n * d_model
    // The encoded activations as stored in the payload (formats/acts.md, "Chunks"), to decode
    // elsewhere (a GPU: kernels/actquant.h). Block b = hook * n_layers + li: its scales at
    // scales + b * scale_block (none for f32/bf16/f16), its values at vals + b * val_block; when
    // `planes`, multi-byte elements are byte planes within each block. Valid until the next read.
    const uint8_t *scales, *vals;
    size_t scale_block, val_block;
    int planes;
    // Buffers kept across calls (owned; actchunk_free releases them).
    float *act;  // in and out point into it
    size_t act_cap, tok_cap;
    ShardChunkBuf io;
} ActChunk;

// Reads chunk i: verifies the CRC, decompresses, checks the payload against the index (and the
// scales: finite, in range) and decodes the activations to fp32, one (hook, layer) block per
// thread. Does not modify s (thread-safe across distinct ActChunks).
int actshard_read_chunk(const ActShard *s, uint64_t i, ActChunk *c, Error *e);
void actchunk_free(ActChunk *c);
