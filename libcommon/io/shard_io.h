// shard_io.h — the shard container under token shards (tokshard.c) and activation shards
// (actshard.c): little-endian fields, growable buffers, the metadata check, the output a writer
// streams to (temp file + rename, stdout or a caller's stream), the 48-byte index entries and the
// 56-byte footer both formats end with, and a reader's file (pread, or a buffer in memory) with
// the checks of its ends, its index and its chunks (CRC-32C, exactly one zstd frame of the
// index's size). Each format keeps its header, its payload and its own index rules.
//
// file = header | chunk 0 | ... | chunk n-1 | [format's sections] | index | footer
// index entry (48) = u64 offset, u64 comp_bytes, u64 raw_bytes, u64 first_token, u32 n_tokens,
//                    u32 (the format's field), u32 crc, u32 reserved (0)
// footer (56)      = u64 index_offset, u64 n_chunks, u64 n_tokens, u64 (format), u32 index_crc,
//                    u32 header_crc, u32 (format), u32 footer_crc of bytes [0, 44), 8-byte end magic
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

static inline void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

enum { SHARD_INDEX_ENTRY = 48, SHARD_FOOTER = 56 };
#define SHARD_MAX_META_BYTES (16u << 20)  // a header's JSON is metadata, not data

// Returns p grown to hold at least n bytes (amortised doubling); *cap tracks its size.
void *shard_grow(void *p, size_t *cap, size_t n);
// 1 if text (len bytes, not NUL-terminated) is a JSON object without NUL bytes; else 0 and why.
int shard_meta_is_object(const char *text, size_t len, char *why, size_t why_len);
// The writers' check of their metadata: at most SHARD_MAX_META_BYTES, a JSON object.
int shard_meta_check(const char *path, const char *meta, size_t len, Error *e);

// One index entry. The fifth field is the format's: a token shard's slice count (n_docs), an
// activation shard's compression; both names stand for the same word.
typedef struct ShardIndexEntry {
    uint64_t offset;       // file offset of the chunk's stored bytes
    uint64_t comp_bytes;   // stored size
    uint64_t raw_bytes;    // payload size
    uint64_t first_token;  // global index of the chunk's first token
    uint32_t n_tokens;
    union {
        uint32_t n_docs;       // token shards: slices in the chunk
        uint32_t compression;  // activation shards: 0 stored, 1 zstd, 2 zstd of byte planes
    };
    uint32_t crc;  // CRC-32C of the comp_bytes stored bytes
} ShardIndexEntry;

// The footer's fields; ext64 and ext32 are the format's (token shards: n_docs and 0;
// activation shards: stats_offset and stats_crc).
typedef struct {
    uint64_t index_offset, n_chunks, n_tokens, ext64;
    uint32_t index_crc, header_crc, ext32;
} ShardFooter;

// ---- writer ----------------------------------------------------------------------------------

// Where a writer's bytes go: "<path>.tmp.<pid>" renamed into place at close, stdout ("-"), or a
// stream the caller owns. Counts the bytes (offset) and remembers a failed write.
typedef struct {
    char *path;      // as given, for messages
    char *tmp_path;  // NULL when writing to stdout or a caller's stream
    FILE *f;
    int failed;       // a write failed: later calls fail and close removes the temp file
    uint64_t offset;  // bytes written so far, i.e. where the next chunk starts
} ShardOut;

// Opens o onto stream (when not NULL), stdout for "-", else a temp file beside path.
int shard_out_open(ShardOut *o, const char *path, FILE *stream, Error *e);
// fwrite of n bytes counted into offset; a failure sets failed and names the path.
int shard_out_write(ShardOut *o, const void *p, size_t n, Error *e);
// Writes the index (n_chunks entries) and the footer ending in end_magic, then flushes and renames
// the temp file into place (f->index_offset, index_crc and n_chunks are filled in here). On any
// failure the temp file is removed. Does not free o.
int shard_out_finish(ShardOut *o, const ShardIndexEntry *index, ShardFooter *f, const char *end_magic, Error *e);
// Discards a half-written shard: closes and removes the temp file (stdout/a stream: flushed).
void shard_out_abort(ShardOut *o);
void shard_out_free(ShardOut *o);

// ---- reader ----------------------------------------------------------------------------------

// A reader's file. TokShard and ActShard hold it as `file`, with the same four fields also
// reachable by their own names (s->path, s->fd, s->mem, s->file_size).
typedef struct {
    char *path;          // as given, for messages
    int fd;              // -1 when opened from memory
    const uint8_t *mem;  // the buffer given to *_open_mem, else NULL
    uint64_t file_size;
} ShardFile;

// Opens a shard for random access: a regular file (not a pipe or stdin: shards are read from
// their end). 0, or -1 with s closed.
int shard_file_open(ShardFile *s, const char *path, Error *e);
// A shard held in memory (data must outlive s); name stands for the path in messages.
void shard_file_open_mem(ShardFile *s, const void *data, size_t len, const char *name);
void shard_file_close(ShardFile *s);
// Copies len bytes at offset off (already checked to lie inside the shard) from mem, or from fd
// when mem is NULL (pread: no file position, so threads may read one shard at once).
int shard_file_read(const ShardFile *s, void *dst, size_t len, uint64_t off, Error *e);

// What a format's ends look like: its first and last 8 bytes, its one version, its fixed header.
typedef struct {
    const char *magic, *end_magic;
    const char *name;       // "a token shard", for "bad magic: not a token shard"
    uint32_t version;       // the version this reader reads (u32 at offset 8)
    size_t header_fixed;    // bytes of the fixed header (<= 128)
} ShardKind;

// Reads the fixed header into h (k->header_fixed bytes) and the footer into f, in the order that
// trusts nothing early: magic, header present, version, footer present with its end magic, footer
// CRC. *version gets the file's version (also when it is not the one this reader reads).
int shard_read_ends(const ShardFile *s, const ShardKind *k, uint8_t *h, uint32_t *version, ShardFooter *f, Error *e);
// The index of f->n_chunks entries must start at or after header_end and end exactly at the footer
// (n_chunks bounded by the room first, so nothing overflows).
int shard_index_check_place(const ShardFile *s, const ShardFooter *f, uint64_t header_end, Error *e);
// Reads the index (placement checked), checks its CRC and the reserved words. *index is always
// allocated (at least one entry), so the caller frees it on failure too.
int shard_index_read(const ShardFile *s, const ShardFooter *f, ShardIndexEntry **index, Error *e);

// The index rules both formats share, with the format's own per-entry check between them:
// chunks are contiguous from header_end and end exactly where `next` starts (the index, or the
// format's section before it), each has 1.. stored bytes that fit, first_token is the running
// sum of n_tokens, and the sum is the footer's n_tokens. `stored` names the bytes in messages
// ("compressed", "stored"); `next` names what follows ("the index", "the statistics").
typedef int (*ShardEntryCheck)(void *ctx, uint64_t i, const ShardIndexEntry *x, Error *e);
typedef struct {
    uint64_t header_end, next_offset, n_tokens;
    const char *stored, *next, *next_starts;  // e.g. "compressed", "the index", "the index starts"
    ShardEntryCheck check;
    void *ctx;
} ShardIndexRules;
int shard_index_check(const ShardFile *s, const ShardIndexEntry *index, uint64_t n_chunks, const ShardIndexRules *r,
                      Error *e);

// A chunk reader's buffers, kept across reads (shard_chunk_buf_free releases them).
typedef struct {
    uint8_t *raw, *comp;
    size_t raw_cap, comp_cap;
    void *zstd_dctx;
} ShardChunkBuf;
// Reads chunk i's stored bytes, checks their CRC and, when zstd (else stored as the payload),
// that they are exactly one zstd frame of x->raw_bytes, and decompresses them. The payload is
// then in b->raw (raw_bytes long, malloc-aligned).
int shard_chunk_load(const ShardFile *s, uint64_t i, const ShardIndexEntry *x, int zstd, ShardChunkBuf *b, Error *e);
void shard_chunk_buf_free(ShardChunkBuf *b);
