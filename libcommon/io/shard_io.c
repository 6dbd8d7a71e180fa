// shard_io.c — see shard_io.h.
#include "shard_io.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "crc32c.h"
#include "fileio.h"

typedef unsigned long long ull;  // for printf of uint64_t without PRIu64 noise

void *shard_grow(void *p, size_t *cap, size_t n) {
    if (p && n <= *cap) return p;
    size_t c = *cap ? *cap : 256;
    while (c < n) c = c > SIZE_MAX / 2 ? n : c * 2;
    *cap = c;
    return xrealloc(p, c);
}

int shard_meta_is_object(const char *text, size_t len, char *why, size_t why_len) {
    if (memchr(text, 0, len)) {
        snprintf(why, why_len, "contains a NUL byte");
        return 0;
    }
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    if (!j) {
        snprintf(why, why_len, "invalid JSON: %s", jerr.text);
        return 0;
    }
    int ok = json_is_object(j);
    json_decref(j);
    if (!ok) snprintf(why, why_len, "not a JSON object");
    return ok;
}

int shard_meta_check(const char *path, const char *meta, size_t len, Error *e) {
    char why[200];
    if (len > SHARD_MAX_META_BYTES)
        return err_set(e, "%s: header metadata is %zu bytes (maximum %u)", path, len, SHARD_MAX_META_BYTES);
    if (!shard_meta_is_object(meta, len, why, sizeof why)) return err_set(e, "%s: header metadata: %s", path, why);
    return 0;
}

// ---- writer ----------------------------------------------------------------------------------

int shard_out_open(ShardOut *o, const char *path, FILE *stream, Error *e) {
    memset(o, 0, sizeof *o);
    o->path = xstrdup(path);
    if (stream) {
        o->f = stream;
    } else if (strcmp(path, "-") == 0) {
        o->f = stdout;
    } else {
        size_t n = strlen(path) + 32;
        o->tmp_path = xmalloc(n);
        if (temp_output_begin(o->tmp_path, n, path, e)) {
            free(o->tmp_path);
            o->tmp_path = NULL;
            shard_out_free(o);
            return -1;
        }
        o->f = fopen(o->tmp_path, "wb");
        if (!o->f) {
            err_set(e, "%s: cannot create %s: %s", path, o->tmp_path, strerror(errno));
            shard_out_free(o);
            return -1;
        }
    }
    return 0;
}

int shard_out_write(ShardOut *o, const void *p, size_t n, Error *e) {
    if (n && fwrite(p, 1, n, o->f) != n) {
        o->failed = 1;
        return err_set(e, "%s: write error: %s", o->path, strerror(errno));
    }
    o->offset += n;
    return 0;
}

// Serialises the index: n entries of SHARD_INDEX_ENTRY bytes (at least one byte allocated).
static uint8_t *index_encode(const ShardIndexEntry *index, uint64_t n, size_t *len) {
    *len = (size_t)n * SHARD_INDEX_ENTRY;
    uint8_t *b = xcalloc(1, *len ? *len : 1);
    for (uint64_t i = 0; i < n; i++) {
        uint8_t *p = b + i * SHARD_INDEX_ENTRY;
        const ShardIndexEntry *x = &index[i];
        put_u64(p, x->offset);
        put_u64(p + 8, x->comp_bytes);
        put_u64(p + 16, x->raw_bytes);
        put_u64(p + 24, x->first_token);
        put_u32(p + 32, x->n_tokens);
        put_u32(p + 36, x->n_docs);
        put_u32(p + 40, x->crc);
        put_u32(p + 44, 0);  // reserved
    }
    return b;
}

int shard_out_finish(ShardOut *o, const ShardIndexEntry *index, ShardFooter *ft, const char *end_magic, Error *e) {
    size_t index_n;
    uint8_t *ib = index_encode(index, ft->n_chunks, &index_n);
    ft->index_offset = o->offset;
    ft->index_crc = crc32c(ib, index_n);
    uint8_t f[SHARD_FOOTER];
    put_u64(f, ft->index_offset);
    put_u64(f + 8, ft->n_chunks);
    put_u64(f + 16, ft->n_tokens);
    put_u64(f + 24, ft->ext64);
    put_u32(f + 32, ft->index_crc);
    put_u32(f + 36, ft->header_crc);
    put_u32(f + 40, ft->ext32);
    put_u32(f + 44, crc32c(f, 44));
    memcpy(f + 48, end_magic, 8);
    int rc = shard_out_write(o, ib, index_n, e);
    free(ib);
    if (!rc) rc = shard_out_write(o, f, sizeof f, e);
    if (!rc) rc = finish_output(&o->f, o->tmp_path, o->path, e);
    else if (o->tmp_path) {
        fclose(o->f);
        o->f = NULL;
        unlink(o->tmp_path);
    }
    return rc;
}

void shard_out_abort(ShardOut *o) {
    if (o->tmp_path) {
        if (o->f) fclose(o->f);
        o->f = NULL;
        unlink(o->tmp_path);
    } else if (o->f) {
        fflush(o->f);
    }
}

void shard_out_free(ShardOut *o) {
    free(o->path);
    temp_output_end(o->tmp_path);  // renamed or removed by now (or, on exit, removed by the registry)
    free(o->tmp_path);
    memset(o, 0, sizeof *o);
}

// ---- reader ----------------------------------------------------------------------------------

static int open_file(const char *path, int *fd, uint64_t *size, Error *e) {
    *fd = -1;
    if (!strcmp(path, "-"))  // not a file named "-": stdin, which a shard reader cannot seek in
        return err_set(e, "-: a shard cannot be read from stdin (it is read by random access, from its end); "
                       "give a file");
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return err_set(e, "%s: not a regular file (a shard is read by random access, from its end)", path);
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

int shard_file_open(ShardFile *s, const char *path, Error *e) {
    memset(s, 0, sizeof *s);
    if (open_file(path, &s->fd, &s->file_size, e)) return -1;
    s->path = xstrdup(path);
    return 0;
}

void shard_file_open_mem(ShardFile *s, const void *data, size_t len, const char *name) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->mem = len ? data : (const uint8_t *)"";  // never NULL: mem marks the in-memory mode
    s->path = xstrdup(name);
    s->file_size = len;
}

void shard_file_close(ShardFile *s) {
    if (s->path && s->fd >= 0) close(s->fd);  // path is set by every open, so a zeroed s is safe
    free(s->path);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

int shard_file_read(const ShardFile *s, void *dst, size_t len, uint64_t off, Error *e) {
    if (s->mem) {
        memcpy(dst, s->mem + off, len);
        return 0;
    }
    return pread_full(s->fd, dst, len, off, s->path, e);
}

int shard_read_ends(const ShardFile *s, const ShardKind *k, uint8_t *h, uint32_t *version, ShardFooter *ft, Error *e) {
    const char *P = s->path;
    uint64_t size = s->file_size;
    size_t hn = size < k->header_fixed ? (size_t)size : k->header_fixed;
    if (shard_file_read(s, h, hn, 0, e)) return -1;
    // Magic first (compared over what exists), then the version: a later version may change
    // everything after it, so nothing else is trusted until both match.
    if (memcmp(h, k->magic, hn < 8 ? hn : 8) != 0)
        return err_set(e, "%s: bad magic: not %s (expected \"%s\" at offset 0)", P, k->name, k->magic);
    if (size < k->header_fixed)
        return err_set(e, "%s: truncated: header missing (file is %llu bytes)", P, (ull)size);
    *version = get_u32(h + 8);
    if (*version != k->version)
        return err_set(e, "%s: unsupported version %u (this reader reads version %u)", P, *version, k->version);

    uint8_t f[SHARD_FOOTER];
    if (size < k->header_fixed + SHARD_FOOTER)
        return err_set(e, "%s: truncated: footer missing (file is %llu bytes)", P, (ull)size);
    if (shard_file_read(s, f, SHARD_FOOTER, size - SHARD_FOOTER, e)) return -1;
    if (memcmp(f + 48, k->end_magic, 8) != 0)
        return err_set(e, "%s: truncated: footer missing (the last 8 bytes are not \"%s\"; the writer did not finish "
                       "or the file was cut)", P, k->end_magic);
    if (check_crc(P, "footer", get_u32(f + 44), crc32c(f, 44), e)) return -1;
    *ft = (ShardFooter){
        .index_offset = get_u64(f),
        .n_chunks = get_u64(f + 8),
        .n_tokens = get_u64(f + 16),
        .ext64 = get_u64(f + 24),
        .index_crc = get_u32(f + 32),
        .header_crc = get_u32(f + 36),
        .ext32 = get_u32(f + 40),
    };
    return 0;
}

int shard_index_check_place(const ShardFile *s, const ShardFooter *f, uint64_t header_end, Error *e) {
    uint64_t end = s->file_size - SHARD_FOOTER;  // header_end <= end: checked by the caller
    if (f->index_offset < header_end || f->index_offset > end ||
        f->n_chunks > (end - f->index_offset) / SHARD_INDEX_ENTRY ||
        f->index_offset + f->n_chunks * SHARD_INDEX_ENTRY != end)
        return err_set(e, "%s: index at offset %llu with %llu entries does not end at the footer (file is %llu bytes)",
                       s->path, (ull)f->index_offset, (ull)f->n_chunks, (ull)s->file_size);
    return 0;
}

int shard_index_read(const ShardFile *s, const ShardFooter *f, ShardIndexEntry **index, Error *e) {
    size_t index_n = (size_t)(f->n_chunks * SHARD_INDEX_ENTRY);
    *index = xcalloc(f->n_chunks ? f->n_chunks : 1, sizeof **index);
    uint8_t *raw = xmalloc(index_n ? index_n : 1);
    if (shard_file_read(s, raw, index_n, f->index_offset, e)) {
        free(raw);
        return -1;
    }
    int rc = check_crc(s->path, "index", f->index_crc, crc32c(raw, index_n), e);
    for (uint64_t i = 0; !rc && i < f->n_chunks; i++) {
        const uint8_t *p = raw + i * SHARD_INDEX_ENTRY;
        (*index)[i] = (ShardIndexEntry){
            .offset = get_u64(p),
            .comp_bytes = get_u64(p + 8),
            .raw_bytes = get_u64(p + 16),
            .first_token = get_u64(p + 24),
            .n_tokens = get_u32(p + 32),
            .n_docs = get_u32(p + 36),
            .crc = get_u32(p + 40),
        };
        if (get_u32(p + 44) != 0) rc = err_set(e, "%s: chunk %llu: index reserved field is not 0", s->path, (ull)i);
    }
    free(raw);
    return rc;
}

int shard_index_check(const ShardFile *s, const ShardIndexEntry *index, uint64_t n_chunks, const ShardIndexRules *r,
                      Error *e) {
    const char *P = s->path;
    uint64_t off = r->header_end, tokens = 0;
    for (uint64_t i = 0; i < n_chunks; i++) {
        const ShardIndexEntry *x = &index[i];
        if (x->offset != off)
            return err_set(e, "%s: chunk %llu: offset %llu, expected %llu (chunks are contiguous)", P, (ull)i,
                           (ull)x->offset, (ull)off);
        if (x->comp_bytes == 0 || x->comp_bytes > r->next_offset - off)
            return err_set(e, "%s: chunk %llu: %llu %s bytes at offset %llu do not fit before %s at %llu", P, (ull)i,
                           (ull)x->comp_bytes, r->stored, (ull)off, r->next, (ull)r->next_offset);
        if (r->check && r->check(r->ctx, i, x, e)) return -1;
        if (x->first_token != tokens)
            return err_set(e, "%s: chunk %llu: first token %llu, expected %llu", P, (ull)i, (ull)x->first_token,
                           (ull)tokens);
        off += x->comp_bytes;
        tokens += x->n_tokens;
    }
    if (off != r->next_offset)
        return err_set(e, "%s: chunks end at offset %llu but %s at %llu", P, (ull)off, r->next_starts,
                       (ull)r->next_offset);
    if (tokens != r->n_tokens)
        return err_set(e, "%s: footer says %llu tokens, index chunks hold %llu", P, (ull)r->n_tokens, (ull)tokens);
    return 0;
}

int shard_chunk_load(const ShardFile *s, uint64_t i, const ShardIndexEntry *x, int zstd, ShardChunkBuf *b, Error *e) {
    const char *P = s->path;
    size_t cn = (size_t)x->comp_bytes, rn = (size_t)x->raw_bytes;  // fit: open checked both
    // Stored chunks go straight into raw (aligned, as the payload parsers need); zstd frames are
    // read into comp, or used in place when the shard is in memory.
    const uint8_t *src;
    if (!zstd) {
        b->raw = shard_grow(b->raw, &b->raw_cap, rn);
        if (shard_file_read(s, b->raw, rn, x->offset, e)) return -1;
        src = b->raw;
    } else if (s->mem) {
        src = s->mem + x->offset;
    } else {
        b->comp = shard_grow(b->comp, &b->comp_cap, cn);
        if (shard_file_read(s, b->comp, cn, x->offset, e)) return -1;
        src = b->comp;
    }
    uint32_t crc = crc32c(src, cn);
    if (crc != x->crc)
        return err_set(e, "%s: chunk %llu: checksum mismatch (stored 0x%08x, computed 0x%08x)", P, (ull)i, x->crc, crc);
    if (!zstd) return 0;
    // Exactly one zstd frame whose declared size (when present) is the index's raw size; the
    // output buffer is the index's raw size, which the format bounded at open.
    unsigned long long fcs = ZSTD_getFrameContentSize(src, cn);
    if (fcs == ZSTD_CONTENTSIZE_ERROR) return err_set(e, "%s: chunk %llu: not a zstd frame", P, (ull)i);
    if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != x->raw_bytes)
        return err_set(e, "%s: chunk %llu: decompressed size mismatch (frame says %llu bytes, index says %llu)", P,
                       (ull)i, fcs, (ull)x->raw_bytes);
    size_t fsz = ZSTD_findFrameCompressedSize(src, cn);
    if (ZSTD_isError(fsz) || fsz != cn)
        return err_set(e, "%s: chunk %llu: not exactly one zstd frame of %zu bytes%s%s", P, (ull)i, cn,
                       ZSTD_isError(fsz) ? ": " : "", ZSTD_isError(fsz) ? ZSTD_getErrorName(fsz) : "");
    b->raw = shard_grow(b->raw, &b->raw_cap, rn);
    if (!b->zstd_dctx && !(b->zstd_dctx = ZSTD_createDCtx())) fatal("out of memory creating a zstd context");
    size_t got = ZSTD_decompressDCtx(b->zstd_dctx, b->raw, rn, src, cn);
    if (ZSTD_isError(got) && ZSTD_getErrorCode(got) == ZSTD_error_dstSize_tooSmall)
        return err_set(e, "%s: chunk %llu: decompressed size mismatch (more than the index's %zu bytes)", P, (ull)i,
                       rn);
    if (ZSTD_isError(got)) return err_set(e, "%s: chunk %llu: zstd: %s", P, (ull)i, ZSTD_getErrorName(got));
    if (got != rn)
        return err_set(e, "%s: chunk %llu: decompressed size mismatch (got %zu bytes, index says %zu)", P, (ull)i, got,
                       rn);
    return 0;
}

void shard_chunk_buf_free(ShardChunkBuf *b) {
    free(b->raw);
    free(b->comp);
    ZSTD_freeDCtx(b->zstd_dctx);
    memset(b, 0, sizeof *b);
}
