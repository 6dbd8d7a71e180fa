// tokshard.h — token shard files: documents of uint32 token ids in zstd-compressed chunks, each
// with a CRC-32C, and an index at the end for random access by chunk. Spec: formats/tokens.md.
//
// Writing streams: documents are appended in order; the writer cuts a chunk every
// `chunk_tokens` tokens (a long document spans chunks). Output to a file is atomic (written to
// "<path>.tmp.<pid>", renamed on close); "-" writes to stdout (no temp file).
// Reading is random access by chunk (pread), so a reader can visit chunks in any order.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "shard_defaults.h"
#include "shard_io.h"

#define TOKSHARD_VERSION 1
#define TOKSHARD_DEFAULT_CHUNK_TOKENS ((uint32_t)TOKSHARD_CHUNK_TOKENS)
// Upper bound on chunk_tokens (and on tokens and slices per chunk), so a reader's memory per
// chunk is bounded (8 + 24 * 2^24 bytes) whatever a corrupt index says.
#define TOKSHARD_MAX_CHUNK_TOKENS (1u << 24)

typedef struct {
    uint32_t vocab_size;      // ids in the shard are < vocab_size
    uint64_t tokenizer_hash;  // FNV-1a 64 from CLTKIT_HASH_OFFSET (fnv.h) of the tokenizer.json bytes, or 0
    uint32_t chunk_tokens;    // target tokens per chunk (0 = default 65536)
    int zstd_level;           // 0 = default SHARD_ZSTD_LEVEL
    const char *meta_json;    // free-form JSON object string stored in the header (may be NULL)
} TokShardWriterOptions;

typedef struct TokShardWriter TokShardWriter;

TokShardWriter *tokshard_writer_open(const char *path, const TokShardWriterOptions *opt, Error *e);
// Appends one document. An empty document (n == 0) is kept (it has a doc id and no tokens).
// Every id must be < vocab_size (checked before anything of the document is written).
int tokshard_write_doc(TokShardWriter *w, uint64_t doc_id, const uint32_t *ids, size_t n, Error *e);
// Flushes the last chunk, writes index and footer, renames the temp file. Frees w.
// On failure the temp file is removed and nothing appears at path.
int tokshard_writer_close(TokShardWriter *w, Error *e);
// Discards a half-written shard (removes the temp file). Frees w.
void tokshard_writer_abort(TokShardWriter *w);

// One document's slice inside a chunk.
typedef struct {
    uint64_t doc_id;
    uint32_t start;       // first token of this slice within the chunk
    uint32_t n_tokens;    // tokens of this slice
    uint32_t pos_in_doc;  // position of the slice's first token within its document
} TokChunkDoc;

// Start from a zeroed TokChunk (`TokChunk c = {0};`); read_chunk reuses its buffers.
typedef struct {
    uint32_t n_tokens, n_docs;
    uint32_t *ids;      // (n_tokens,)
    TokChunkDoc *docs;  // (n_docs,) in order; slices tile [0, n_tokens)
    // Buffers kept across calls (owned; tokchunk_free releases them).
    size_t ids_cap, docs_cap;
    ShardChunkBuf io;
} TokChunk;

// One index entry (formats/tokens.md, "Index"): the container's (shard_io.h), its n_docs
// counting the chunk's slices; offset and comp_bytes locate the chunk's zstd frame.
typedef ShardIndexEntry TokShardIndexEntry;

typedef struct {
    union {  // the open file, as the shard container (shard_io.h) handles it
        ShardFile file;
        struct {
            char *path;
            int fd;              // -1 when opened from memory
            const uint8_t *mem;  // the buffer given to tokshard_open_mem, else NULL
            uint64_t file_size;
        };
    };
    uint32_t version, vocab_size;
    uint32_t chunk_tokens;  // the writer's chunk size (every chunk holds at most this many tokens)
    uint64_t tokenizer_hash;
    char *meta_json;    // header JSON (NUL-terminated), "{}" if none
    uint64_t n_tokens;  // totals from the footer
    uint64_t n_docs;    // distinct documents
    uint64_t n_chunks;
    TokShardIndexEntry *index;  // (n_chunks,)
} TokShard;

// Opens and validates header, footer and index (every bound checked; a corrupt file is an
// error naming the path and the problem, never a crash).
int tokshard_open(TokShard *s, const char *path, Error *e);
// The same checks on a shard held in memory (the fuzzer's entry point); `name` stands for the
// path in messages, and data must outlive s.
int tokshard_open_mem(TokShard *s, const void *data, size_t len, const char *name, Error *e);
void tokshard_close(TokShard *s);
// Reads, checksums and decompresses chunk i into c (buffers owned by c; reused across calls).
// Checks the payload too: slices tile the chunk, ids < vocab_size, counts match the index.
int tokshard_read_chunk(const TokShard *s, uint64_t i, TokChunk *c, Error *e);
void tokchunk_free(TokChunk *c);

// Sequential document iteration, joining slices across chunks. Returns 1 with a document,
// 0 at the end, -1 on error. ids point into the iterator's buffers, valid until the next call.
// Checks what per-chunk reads cannot: a continued slice carries on the document the previous
// chunk ended with, and the document count matches the footer.
typedef struct {
    const TokShard *shard;
    uint64_t next_chunk;
    uint32_t next_doc_in_chunk;
    TokChunk chunk;
    uint32_t *buf;
    size_t buf_cap;
    uint64_t docs_seen;
} TokDocIter;
void tokdoc_iter_init(TokDocIter *it, const TokShard *s);
int tokdoc_iter_next(TokDocIter *it, uint64_t *doc_id, const uint32_t **ids, size_t *n, Error *e);
void tokdoc_iter_free(TokDocIter *it);
