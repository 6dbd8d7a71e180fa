// tokshard.c — token shard writer and reader; the layout is specified in formats/tokens.md.
//
// file   = header | chunk 0 | ... | chunk n-1 | index | footer
// header = 32 fixed bytes + meta_len bytes of JSON
// chunk  = one zstd frame of: u32 n_tokens, u32 n_docs, n_docs x 20-byte slice, n_tokens x u32
// index  = n_chunks x 48-byte entries;  footer = 56 bytes ending in "CLTKTEND"
//
// The writer only appends (so it can stream to a pipe) and learns the index as it goes; the
// reader starts from the footer. All integers are little-endian and (de)serialised byte by byte
// so the code does not depend on the host's byte order or on struct padding.
// What both shard formats share (the output, index, footer, the reader's file and its chunk
// checks) is the container in shard_io.c; this file holds the header, the payload and the rules
// of token shards.
#include "fileio.h"
#include "shard_io.h"
#include "tokshard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "crc32c.h"

#define MAGIC "CLTKTOKS"
#define END_MAGIC "CLTKTEND"
enum {
    HEADER_FIXED = 32,  // magic, version, vocab_size, tokenizer_hash, chunk_tokens, meta_len
    SLICE_BYTES = 20,   // u64 doc_id, u32 start, u32 n_tokens, u32 pos_in_doc
    CHUNK_PREFIX = 8,   // u32 n_tokens, u32 n_docs
};
static const ShardKind KIND = {MAGIC, END_MAGIC, "a token shard", TOKSHARD_VERSION, HEADER_FIXED};

typedef unsigned long long ull;  // for printf of uint64_t without PRIu64 noise

// Bytes of a chunk's payload before compression.
static uint64_t payload_bytes(uint64_t n_tokens, uint64_t n_docs) {
    return CHUNK_PREFIX + SLICE_BYTES * n_docs + 4 * n_tokens;
}

// ---- writer ----------------------------------------------------------------------------------

struct TokShardWriter {
    ShardOut out;  // path, temp file, bytes written, failure
    uint32_t vocab_size, chunk_tokens;
    int level;
    uint32_t header_crc;
    // the chunk being filled: at most chunk_tokens tokens and chunk_tokens slices
    uint32_t *ids;
    TokChunkDoc *docs;
    uint32_t n_ids, n_slices;
    size_t ids_cap, docs_cap;
    uint8_t *raw, *comp;
    size_t raw_cap, comp_cap;
    ZSTD_CCtx *cctx;
    TokShardIndexEntry *index;
    size_t index_cap;
    uint64_t n_chunks, n_tokens, n_docs;
};

static int write_bytes(TokShardWriter *w, const void *p, size_t n, Error *e) {
    return shard_out_write(&w->out, p, n, e);
}

static void writer_free(TokShardWriter *w) {
    ZSTD_freeCCtx(w->cctx);
    shard_out_free(&w->out);
    free(w->ids);
    free(w->docs);
    free(w->raw);
    free(w->comp);
    free(w->index);
    free(w);
}

TokShardWriter *tokshard_writer_open(const char *path, const TokShardWriterOptions *opt, Error *e) {
    if (!opt) return err_set(e, "%s: no writer options", path), NULL;
    if (opt->vocab_size == 0) return err_set(e, "%s: vocab_size must be > 0", path), NULL;
    uint32_t chunk_tokens = opt->chunk_tokens ? opt->chunk_tokens : TOKSHARD_DEFAULT_CHUNK_TOKENS;
    if (chunk_tokens > TOKSHARD_MAX_CHUNK_TOKENS)
        return err_set(e, "%s: chunk_tokens %u > maximum %u", path, chunk_tokens, TOKSHARD_MAX_CHUNK_TOKENS), NULL;
    int level = opt->zstd_level ? opt->zstd_level : SHARD_ZSTD_LEVEL;
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
        return err_set(e, "%s: zstd level %d outside [%d, %d]", path, level, ZSTD_minCLevel(), ZSTD_maxCLevel()), NULL;
    const char *meta = opt->meta_json ? opt->meta_json : "{}";
    size_t meta_len = strlen(meta);
    if (shard_meta_check(path, meta, meta_len, e)) return NULL;

    TokShardWriter *w = xcalloc(1, sizeof *w);
    w->vocab_size = opt->vocab_size;
    w->chunk_tokens = chunk_tokens;
    w->level = level;
    if (shard_out_open(&w->out, path, NULL, e)) {
        writer_free(w);
        return NULL;
    }
    w->cctx = ZSTD_createCCtx();
    if (!w->cctx) fatal("out of memory creating a zstd context");

    uint8_t h[HEADER_FIXED];
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, TOKSHARD_VERSION);
    put_u32(h + 12, w->vocab_size);
    put_u64(h + 16, opt->tokenizer_hash);
    put_u32(h + 24, chunk_tokens);
    put_u32(h + 28, (uint32_t)meta_len);
    w->header_crc = crc32c_update(crc32c(h, sizeof h), meta, meta_len);
    if (write_bytes(w, h, sizeof h, e) || write_bytes(w, meta, meta_len, e)) {
        tokshard_writer_abort(w);
        return NULL;
    }
    return w;
}

// Serialises, compresses and writes the pending chunk, and records its index entry.
static int flush_chunk(TokShardWriter *w, Error *e) {
    size_t raw_n = (size_t)payload_bytes(w->n_ids, w->n_slices);
    w->raw = shard_grow(w->raw, &w->raw_cap, raw_n);
    uint8_t *p = w->raw;
    put_u32(p, w->n_ids);
    put_u32(p + 4, w->n_slices);
    p += CHUNK_PREFIX;
    for (uint32_t k = 0; k < w->n_slices; k++, p += SLICE_BYTES) {
        const TokChunkDoc *d = &w->docs[k];
        put_u64(p, d->doc_id);
        put_u32(p + 8, d->start);
        put_u32(p + 12, d->n_tokens);
        put_u32(p + 16, d->pos_in_doc);
    }
    for (uint32_t k = 0; k < w->n_ids; k++, p += 4) put_u32(p, w->ids[k]);

    w->comp = shard_grow(w->comp, &w->comp_cap, ZSTD_compressBound(raw_n));
    // One-shot compression records the content size in the frame header, which lets readers
    // (zstandard in Python, the zstd CLI) size their output buffer without the index.
    size_t cn = ZSTD_compressCCtx(w->cctx, w->comp, w->comp_cap, w->raw, raw_n, w->level);
    if (ZSTD_isError(cn)) {
        w->out.failed = 1;
        return err_set(e, "%s: chunk %llu: zstd: %s", w->out.path, (ull)w->n_chunks, ZSTD_getErrorName(cn));
    }
    TokShardIndexEntry ix = {
        .offset = w->out.offset,
        .comp_bytes = cn,
        .raw_bytes = raw_n,
        .first_token = w->n_tokens,
        .n_tokens = w->n_ids,
        .n_docs = w->n_slices,
        .crc = crc32c(w->comp, cn),
    };
    if (write_bytes(w, w->comp, cn, e)) return -1;
    w->index = shard_grow(w->index, &w->index_cap, (w->n_chunks + 1) * sizeof ix);
    w->index[w->n_chunks++] = ix;
    w->n_tokens += w->n_ids;
    w->n_ids = w->n_slices = 0;
    return 0;
}

static void add_slice(TokShardWriter *w, uint64_t doc_id, uint32_t n, uint32_t pos_in_doc) {
    w->docs = shard_grow(w->docs, &w->docs_cap, (w->n_slices + 1) * sizeof(TokChunkDoc));
    w->docs[w->n_slices++] = (TokChunkDoc){doc_id, w->n_ids, n, pos_in_doc};
}

int tokshard_write_doc(TokShardWriter *w, uint64_t doc_id, const uint32_t *ids, size_t n, Error *e) {
    if (w->out.failed) return err_set(e, "%s: an earlier write failed", w->out.path);
    if (n > UINT32_MAX)
        return err_set(e, "%s: document %llu has %zu tokens (at most 2^32-1 per document)", w->out.path, (ull)doc_id,
                       n);
    if (n && !ids) return err_set(e, "%s: document %llu: NULL ids", w->out.path, (ull)doc_id);
    for (size_t k = 0; k < n; k++)
        if (ids[k] >= w->vocab_size)
            return err_set(e, "%s: document %llu: token id %u >= vocab_size %u (token %zu)", w->out.path,
                           (ull)doc_id, ids[k], w->vocab_size, k);
    w->n_docs++;
    // The chunk is flushed as soon as it is full (tokens or slices), so a pending chunk always
    // has room, a document that continues always starts the next chunk, and every chunk but the
    // last holds exactly chunk_tokens tokens unless slices ran out first.
    size_t pos = 0;
    do {
        uint32_t take = (uint32_t)(n - pos < w->chunk_tokens - w->n_ids ? n - pos : w->chunk_tokens - w->n_ids);
        add_slice(w, doc_id, take, (uint32_t)pos);
        w->ids = shard_grow(w->ids, &w->ids_cap, ((size_t)w->n_ids + take) * sizeof(uint32_t));
        if (take) memcpy(w->ids + w->n_ids, ids + pos, (size_t)take * sizeof(uint32_t));
        w->n_ids += take;
        pos += take;
        if ((w->n_ids == w->chunk_tokens || w->n_slices == w->chunk_tokens) && flush_chunk(w, e)) return -1;
    } while (pos < n);
    return 0;
}

void tokshard_writer_abort(TokShardWriter *w) {
    if (!w) return;
    shard_out_abort(&w->out);
    writer_free(w);
}

int tokshard_writer_close(TokShardWriter *w, Error *e) {
    if (w->out.failed) {
        err_set(e, "%s: not finished: an earlier write failed", w->out.path);
        tokshard_writer_abort(w);
        return -1;
    }
    if (w->n_slices && flush_chunk(w, e)) {
        tokshard_writer_abort(w);
        return -1;
    }
    ShardFooter f = {.n_chunks = w->n_chunks, .n_tokens = w->n_tokens, .ext64 = w->n_docs,
                     .header_crc = w->header_crc, .ext32 = 0 /* reserved */};
    int rc = shard_out_finish(&w->out, w->index, &f, END_MAGIC, e);
    writer_free(w);
    return rc;
}

// ---- reader ----------------------------------------------------------------------------------

typedef struct {
    const TokShard *s;
    uint64_t slices;  // summed over the entries checked so far
} IndexCheck;

// A token shard's rules for one index entry: 1..chunk_tokens slices, at most chunk_tokens tokens,
// and the payload size those counts make.
static int check_entry(void *ctx, uint64_t i, const ShardIndexEntry *x, Error *e) {
    IndexCheck *c = ctx;
    const TokShard *s = c->s;
    const char *P = s->path;
    if (x->n_docs == 0) return err_set(e, "%s: chunk %llu: no document slices", P, (ull)i);
    if (x->n_tokens > s->chunk_tokens || x->n_docs > s->chunk_tokens)
        return err_set(e, "%s: chunk %llu: %u tokens / %u slices exceed chunk_tokens %u", P, (ull)i, x->n_tokens,
                       x->n_docs, s->chunk_tokens);
    if (x->raw_bytes != payload_bytes(x->n_tokens, x->n_docs))
        return err_set(e, "%s: chunk %llu: raw size %llu, expected %llu for %u tokens and %u slices", P, (ull)i,
                       (ull)x->raw_bytes, (ull)payload_bytes(x->n_tokens, x->n_docs), x->n_tokens, x->n_docs);
    c->slices += x->n_docs;
    return 0;
}

// Validates the index entries against each other, the header and the footer.
static int check_index(const TokShard *s, uint64_t header_end, uint64_t index_offset, Error *e) {
    IndexCheck c = {s, 0};
    ShardIndexRules rules = {header_end, index_offset, s->n_tokens, "compressed", "the index", "the index starts",
                             check_entry, &c};
    if (shard_index_check(&s->file, s->index, s->n_chunks, &rules, e)) return -1;
    // Only the first slice of chunks 1.. can continue a document, so documents lie between
    // slices - (n_chunks - 1) and slices; the document iterator checks the exact count.
    uint64_t continued_max = s->n_chunks ? s->n_chunks - 1 : 0;
    if (s->n_docs > c.slices || s->n_docs + continued_max < c.slices)
        return err_set(e, "%s: footer says %llu documents, impossible for %llu slices in %llu chunks", s->path,
                       (ull)s->n_docs, (ull)c.slices, (ull)s->n_chunks);
    return 0;
}

// Reads and validates header, footer and index of an opened s (path, fd or mem, file_size set).
static int parse_shard(TokShard *s, Error *e) {
    const char *P = s->path;
    uint64_t size = s->file_size;
    uint8_t h[HEADER_FIXED];
    ShardFooter f;
    if (shard_read_ends(&s->file, &KIND, h, &s->version, &f, e)) return -1;
    s->vocab_size = get_u32(h + 12);
    s->tokenizer_hash = get_u64(h + 16);
    s->chunk_tokens = get_u32(h + 24);
    uint32_t meta_len = get_u32(h + 28);
    s->n_chunks = f.n_chunks;
    s->n_tokens = f.n_tokens;
    s->n_docs = f.ext64;
    if (f.ext32 != 0) return err_set(e, "%s: footer reserved field is not 0", P);

    // Header: the JSON must fit before the footer; its CRC (kept in the footer, since the
    // writer streams) covers the fixed part and the JSON.
    uint64_t header_end = (uint64_t)HEADER_FIXED + meta_len;
    if (meta_len > SHARD_MAX_META_BYTES || header_end > size - SHARD_FOOTER)
        return err_set(e, "%s: header metadata length %u does not fit the file (%llu bytes)", P, meta_len, (ull)size);
    s->meta_json = xmalloc((size_t)meta_len + 1);
    if (shard_file_read(&s->file, s->meta_json, meta_len, HEADER_FIXED, e)) return -1;
    s->meta_json[meta_len] = 0;
    if (check_crc(P, "header", f.header_crc, crc32c_update(crc32c(h, HEADER_FIXED), s->meta_json, meta_len), e))
        return -1;
    char why[200];
    if (!shard_meta_is_object(s->meta_json, meta_len, why, sizeof why))
        return err_set(e, "%s: header metadata: %s", P, why);
    if (s->vocab_size == 0) return err_set(e, "%s: vocab_size is 0", P);
    if (s->chunk_tokens == 0 || s->chunk_tokens > TOKSHARD_MAX_CHUNK_TOKENS)
        return err_set(e, "%s: chunk_tokens %u outside [1, %u]", P, s->chunk_tokens, TOKSHARD_MAX_CHUNK_TOKENS);

    // Index: exactly between the chunks and the footer.
    if (shard_index_check_place(&s->file, &f, header_end, e)) return -1;
    if (shard_index_read(&s->file, &f, &s->index, e)) return -1;
    return check_index(s, header_end, f.index_offset, e);
}

int tokshard_open(TokShard *s, const char *path, Error *e) {
    memset(s, 0, sizeof *s);
    if (shard_file_open(&s->file, path, e)) return -1;
    if (parse_shard(s, e)) {
        tokshard_close(s);
        return -1;
    }
    return 0;
}

int tokshard_open_mem(TokShard *s, const void *data, size_t len, const char *name, Error *e) {
    memset(s, 0, sizeof *s);
    shard_file_open_mem(&s->file, data, len, name);
    if (parse_shard(s, e)) {
        tokshard_close(s);
        return -1;
    }
    return 0;
}

void tokshard_close(TokShard *s) {
    free(s->meta_json);
    free(s->index);
    shard_file_close(&s->file);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

void tokchunk_free(TokChunk *c) {
    free(c->ids);
    free(c->docs);
    shard_chunk_buf_free(&c->io);
    memset(c, 0, sizeof *c);
}

// Decodes and validates a decompressed payload of chunk i into c.
static int parse_payload(const TokShard *s, uint64_t i, TokChunk *c, Error *e) {
    const char *P = s->path;
    const TokShardIndexEntry *x = &s->index[i];
    const uint8_t *p = c->io.raw;
    uint32_t nt = get_u32(p), nd = get_u32(p + 4);
    if (nt != x->n_tokens || nd != x->n_docs)
        return err_set(e, "%s: chunk %llu: payload says %u tokens and %u slices, index says %u and %u", P, (ull)i, nt,
                       nd, x->n_tokens, x->n_docs);
    c->docs = shard_grow(c->docs, &c->docs_cap, (size_t)nd * sizeof *c->docs);
    c->ids = shard_grow(c->ids, &c->ids_cap, (size_t)nt * sizeof *c->ids);
    p += CHUNK_PREFIX;
    uint32_t pos = 0;
    for (uint32_t k = 0; k < nd; k++, p += SLICE_BYTES) {
        TokChunkDoc d = {get_u64(p), get_u32(p + 8), get_u32(p + 12), get_u32(p + 16)};
        if (d.start != pos)
            return err_set(e, "%s: chunk %llu: slice %u starts at token %u, expected %u (slices must tile the chunk)",
                           P, (ull)i, k, d.start, pos);
        if (d.n_tokens > nt - pos)
            return err_set(e, "%s: chunk %llu: slice %u (%u tokens at %u) runs past the chunk's %u tokens", P, (ull)i,
                           k, d.n_tokens, d.start, nt);
        if (d.pos_in_doc) {
            if (k != 0)
                return err_set(e, "%s: chunk %llu: slice %u continues document %llu (pos_in_doc %u), but only a "
                               "chunk's first slice may", P, (ull)i, k, (ull)d.doc_id, d.pos_in_doc);
            if (i == 0)
                return err_set(e, "%s: chunk 0: first slice continues document %llu (pos_in_doc %u) with no earlier "
                               "chunk", P, (ull)d.doc_id, d.pos_in_doc);
            if (d.n_tokens == 0)
                return err_set(e, "%s: chunk %llu: empty continuation slice of document %llu", P, (ull)i,
                               (ull)d.doc_id);
        }
        if (d.n_tokens > UINT32_MAX - d.pos_in_doc)
            return err_set(e, "%s: chunk %llu: slice %u makes document %llu longer than 2^32-1 tokens", P, (ull)i, k,
                           (ull)d.doc_id);
        c->docs[k] = d;
        pos += d.n_tokens;
    }
    if (pos != nt)
        return err_set(e, "%s: chunk %llu: slices cover %u of %u tokens (slices must tile the chunk)", P, (ull)i, pos,
                       nt);
    for (uint32_t k = 0; k < nt; k++, p += 4) {
        uint32_t id = get_u32(p);
        if (id >= s->vocab_size)
            return err_set(e, "%s: token id %u >= vocab_size %u in chunk %llu (token %u of the chunk)", P, id,
                           s->vocab_size, (ull)i, k);
        c->ids[k] = id;
    }
    c->n_tokens = nt;
    c->n_docs = nd;
    return 0;
}

int tokshard_read_chunk(const TokShard *s, uint64_t i, TokChunk *c, Error *e) {
    const char *P = s->path;
    c->n_tokens = c->n_docs = 0;
    if (i >= s->n_chunks)
        return err_set(e, "%s: chunk %llu out of range (%llu chunks)", P, (ull)i, (ull)s->n_chunks);
    if (shard_chunk_load(&s->file, i, &s->index[i], 1, &c->io, e)) return -1;
    return parse_payload(s, i, c, e);
}

// ---- document iterator -----------------------------------------------------------------------

void tokdoc_iter_init(TokDocIter *it, const TokShard *s) {
    memset(it, 0, sizeof *it);
    it->shard = s;
}

void tokdoc_iter_free(TokDocIter *it) {
    tokchunk_free(&it->chunk);
    free(it->buf);
    memset(it, 0, sizeof *it);
}

static int iter_load(TokDocIter *it, Error *e) {
    if (tokshard_read_chunk(it->shard, it->next_chunk, &it->chunk, e)) return -1;
    it->next_chunk++;
    it->next_doc_in_chunk = 0;
    return 0;
}

int tokdoc_iter_next(TokDocIter *it, uint64_t *doc_id, const uint32_t **ids, size_t *n, Error *e) {
    const TokShard *s = it->shard;
    TokChunk *c = &it->chunk;
    if (it->next_doc_in_chunk == c->n_docs) {  // current chunk used up (or none loaded yet)
        if (it->next_chunk == s->n_chunks) {
            if (it->docs_seen != s->n_docs)
                return err_set(e, "%s: footer says %llu documents, chunks hold %llu", s->path, (ull)s->n_docs,
                               (ull)it->docs_seen);
            return 0;
        }
        if (iter_load(it, e)) return -1;
        // A continuation here would have been consumed with the document it continues.
        if (c->docs[0].pos_in_doc)
            return err_set(e, "%s: chunk %llu: first slice continues document %llu, which the previous chunk "
                           "did not end with", s->path, (ull)(it->next_chunk - 1), (ull)c->docs[0].doc_id);
    }
    TokChunkDoc d = c->docs[it->next_doc_in_chunk++];
    it->docs_seen++;
    *doc_id = d.doc_id;
    int last = it->next_doc_in_chunk == c->n_docs;
    if (!last || it->next_chunk == s->n_chunks) {  // cannot continue: point into the chunk
        *ids = c->ids + d.start;
        *n = d.n_tokens;
        return 1;
    }
    // The last slice of a chunk may continue into the next ones: gather it in buf, then append
    // each following chunk's first slice while it carries on this document.
    size_t len = d.n_tokens;
    it->buf = shard_grow(it->buf, &it->buf_cap, (len ? len : 1) * sizeof(uint32_t));
    memcpy(it->buf, c->ids + d.start, len * sizeof(uint32_t));
    while (it->next_doc_in_chunk == c->n_docs && it->next_chunk < s->n_chunks) {
        if (iter_load(it, e)) return -1;
        TokChunkDoc f = c->docs[0];
        if (f.pos_in_doc == 0) break;  // a new document: leave it for the next call
        if (f.doc_id != d.doc_id || f.pos_in_doc != len)
            return err_set(e, "%s: chunk %llu: first slice continues document %llu at token %u, but the previous "
                           "chunk ended document %llu at token %zu", s->path, (ull)(it->next_chunk - 1),
                           (ull)f.doc_id, f.pos_in_doc, (ull)d.doc_id, len);
        it->buf = shard_grow(it->buf, &it->buf_cap, (len + f.n_tokens) * sizeof(uint32_t));
        memcpy(it->buf + len, c->ids, (size_t)f.n_tokens * sizeof(uint32_t));
        len += f.n_tokens;
        it->next_doc_in_chunk = 1;
    }
    *ids = it->buf;
    *n = len;
    return 1;
}
