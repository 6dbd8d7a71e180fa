// featstore.c — see featstore.h and formats/features.md.
#include "featstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "crc32c.h"
#include "fileio.h"
#include "shard_io.h"  // little-endian fields

#define HEADER_FIXED 24
#define ENTRY_BYTES 24
#define FOOTER_BYTES 32
static const char MAGIC[8] = {'C', 'L', 'T', 'K', 'F', 'E', 'A', 'T'};
static const char END_MAGIC[8] = {'C', 'L', 'T', 'K', 'F', 'E', 'N', 'D'};

typedef unsigned long long ull;

struct FeatStoreWriter {
    char *dir, *tmp_dir, *tmp_path;
    FILE *f;
    uint64_t pos;     // bytes written so far
    uint8_t *index;   // (n_layers * n_features, 24)
    int n_layers, n_features, level;
    uint32_t header_crc;
    uint64_t header_len;
    ZSTD_CCtx *cctx;
    void *comp;
    size_t comp_cap;
};

static void writer_free(FeatStoreWriter *w) {
    if (w->f) fclose(w->f);
    ZSTD_freeCCtx(w->cctx);
    free(w->dir); free(w->tmp_dir); free(w->tmp_path); free(w->index); free(w->comp);
    free(w);
}

// "<a><b>" in a malloc'd string.
static char *strcat2(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = xmalloc(n);
    snprintf(s, n, "%s%s", a, b);
    return s;
}

FeatStoreWriter *featstore_writer_open(const char *dir, int n_layers, const int *layers, int n_features,
                                       const char *meta_json, int zstd_level, Error *e) {
    if (n_layers < 1 || n_layers > FEATSTORE_MAX_LAYERS || n_features < 1 || n_features > FEATSTORE_MAX_FEATURES) {
        err_set(e, "%s: %d layers x %d features is outside the store's bounds", dir, n_layers, n_features);
        return NULL;
    }
    for (int i = 0; i < n_layers; i++)
        if (layers[i] < 0 || (i && layers[i] <= layers[i - 1])) {
            err_set(e, "%s: layers must be non-negative and strictly ascending", dir);
            return NULL;
        }
    if (!meta_json) meta_json = "{}";
    size_t meta_len = strlen(meta_json);
    if (meta_len > FEATSTORE_MAX_META) {
        err_set(e, "%s: meta JSON of %zu bytes is too long", dir, meta_len);
        return NULL;
    }
    FeatStoreWriter *w = xcalloc(1, sizeof *w);
    w->dir = xstrdup(dir);
    // "feats/" names the directory "feats": its temporary sibling is feats.tmp.PID, not feats/.tmp.PID
    for (size_t n = strlen(w->dir); n > 1 && w->dir[n - 1] == '/';) w->dir[--n] = 0;
    char suffix[32];
    snprintf(suffix, sizeof suffix, ".tmp.%ld", (long)getpid());
    w->tmp_dir = strcat2(w->dir, suffix);
    w->tmp_path = strcat2(w->tmp_dir, "/" FEATSTORE_FILE);
    w->n_layers = n_layers;
    w->n_features = n_features;
    w->level = zstd_level ? zstd_level : 3;
    w->index = xcalloc((size_t)n_layers * n_features, ENTRY_BYTES);
    if (!(w->cctx = ZSTD_createCCtx())) fatal("out of memory creating a zstd context");
    if (mkdir(w->tmp_dir, 0755) != 0) {
        err_set(e, "%s: cannot create: %s", w->tmp_dir, strerror(errno));
        writer_free(w);
        return NULL;
    }
    if (!(w->f = fopen(w->tmp_path, "wb"))) {
        err_set(e, "%s: cannot create: %s", w->tmp_path, strerror(errno));
        rmdir(w->tmp_dir);
        writer_free(w);
        return NULL;
    }
    w->header_len = HEADER_FIXED + 4ull * n_layers + meta_len;
    uint8_t *h = xmalloc(w->header_len);
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, FEATSTORE_VERSION);
    put_u32(h + 12, (uint32_t)n_layers);
    put_u32(h + 16, (uint32_t)n_features);
    put_u32(h + 20, (uint32_t)meta_len);
    for (int i = 0; i < n_layers; i++) put_u32(h + HEADER_FIXED + 4 * i, (uint32_t)layers[i]);
    memcpy(h + HEADER_FIXED + 4 * n_layers, meta_json, meta_len);
    w->header_crc = crc32c(h, w->header_len);
    size_t wrote = fwrite(h, 1, w->header_len, w->f);
    free(h);
    if (wrote != w->header_len) {
        err_set(e, "%s: write error: %s", w->tmp_path, strerror(errno));
        featstore_writer_abort(w);
        return NULL;
    }
    w->pos = w->header_len;
    return w;
}

int featstore_put(FeatStoreWriter *w, int li, int feature, const void *data, size_t len, Error *e) {
    if (li < 0 || li >= w->n_layers || feature < 0 || feature >= w->n_features)
        return err_set(e, "%s: record (%d, %d) outside the store", w->tmp_path, li, feature);
    if (len == 0 || len > FEATSTORE_MAX_RECORD) return err_set(e, "%s: record of %zu bytes", w->tmp_path, len);
    uint8_t *ent = w->index + ((size_t)li * w->n_features + feature) * ENTRY_BYTES;
    if (get_u32(ent + 8)) return err_set(e, "%s: record (%d, %d) written twice", w->tmp_path, li, feature);
    size_t bound = ZSTD_compressBound(len);
    if (bound > w->comp_cap) {
        w->comp_cap = bound;
        w->comp = xrealloc(w->comp, bound);
    }
    size_t n = ZSTD_compressCCtx(w->cctx, w->comp, w->comp_cap, data, len, w->level);
    if (ZSTD_isError(n)) return err_set(e, "%s: zstd: %s", w->tmp_path, ZSTD_getErrorName(n));
    if (fwrite(w->comp, 1, n, w->f) != n) return err_set(e, "%s: write error: %s", w->tmp_path, strerror(errno));
    put_u64(ent, w->pos);
    put_u32(ent + 8, (uint32_t)n);
    put_u32(ent + 12, (uint32_t)len);
    put_u32(ent + 16, crc32c(w->comp, n));
    put_u32(ent + 20, crc32c(ent, 20));
    w->pos += n;
    return 0;
}

// Removes the temporary directory and its file.
static void remove_tmp(FeatStoreWriter *w) {
    unlink(w->tmp_path);
    rmdir(w->tmp_dir);
}

void featstore_writer_abort(FeatStoreWriter *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    w->f = NULL;
    remove_tmp(w);
    writer_free(w);
}

// A directory that is a store (holds features.bin and nothing but its temporaries) may be replaced.
static int replace_dir(const char *tmp_dir, const char *dir, Error *e) {
    if (rename(tmp_dir, dir) == 0) return 0;
    if (errno != ENOTEMPTY && errno != EEXIST)
        return err_set(e, "%s: cannot rename %s: %s", dir, tmp_dir, strerror(errno));
    char old_file[4300], old_dir[4200];
    if (strlen(dir) > 4000) return err_set(e, "%s: path too long", dir);
    snprintf(old_file, sizeof old_file, "%s/" FEATSTORE_FILE, dir);
    if (access(old_file, F_OK) != 0) return err_set(e, "%s: exists and is not a feature store; not replacing it", dir);
    snprintf(old_dir, sizeof old_dir, "%s.old.%ld", dir, (long)getpid());
    if (rename(dir, old_dir) != 0) return err_set(e, "%s: cannot move the old store aside: %s", dir, strerror(errno));
    if (rename(tmp_dir, dir) != 0) {
        int err = errno;
        rename(old_dir, dir);
        return err_set(e, "%s: cannot rename %s: %s", dir, tmp_dir, strerror(err));
    }
    snprintf(old_file, sizeof old_file, "%s/" FEATSTORE_FILE, old_dir);
    unlink(old_file);
    if (rmdir(old_dir) != 0) warn("%s: could not remove the replaced store", old_dir);
    return 0;
}

int featstore_writer_close(FeatStoreWriter *w, Error *e) {
    size_t n_index = (size_t)w->n_layers * w->n_features * ENTRY_BYTES;
    for (size_t at = 0; at < n_index; at += ENTRY_BYTES)  // absent records: zeros, checksummed too
        if (!get_u32(w->index + at + 8)) put_u32(w->index + at + 20, crc32c(w->index + at, 20));
    uint8_t foot[FOOTER_BYTES];
    put_u64(foot, w->pos);
    put_u64(foot + 8, w->header_len);
    put_u32(foot + 16, w->header_crc);
    put_u32(foot + 20, 0);
    memcpy(foot + 24, END_MAGIC, 8);
    int bad = 0;
    if (fwrite(w->index, 1, n_index, w->f) != n_index || fwrite(foot, 1, FOOTER_BYTES, w->f) != FOOTER_BYTES)
        bad = err_set(e, "%s: write error: %s", w->tmp_path, strerror(errno));
    if (!bad && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0))
        bad = err_set(e, "%s: flush failed: %s", w->tmp_path, strerror(errno));
    if (fclose(w->f) != 0 && !bad) bad = err_set(e, "%s: close failed: %s", w->tmp_path, strerror(errno));
    w->f = NULL;
    if (!bad) bad = replace_dir(w->tmp_dir, w->dir, e);
    if (bad) remove_tmp(w);
    writer_free(w);
    return bad ? -1 : 0;
}

// ---- reader -------------------------------------------------------------------------------------

void featstore_close(FeatStore *s) {
    if (s->fd >= 0) close(s->fd);
    free(s->path); free(s->layers); free(s->meta_json);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

int featstore_open(FeatStore *s, const char *dir, Error *e) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    struct stat sb;
    size_t n = strlen(dir) + sizeof FEATSTORE_FILE + 2;
    s->path = xmalloc(n);
    if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(s->path, n, "%s/%s", dir, FEATSTORE_FILE);
    else snprintf(s->path, n, "%s", dir);
    s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        err_set(e, "%s: cannot open: %s (not a feat-topk store?)", s->path, strerror(errno));
        featstore_close(s);
        return -1;
    }
    if (fstat(s->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        err_set(e, "%s: not a regular file", s->path);
        featstore_close(s);
        return -1;
    }
    s->file_size = (uint64_t)sb.st_size;
    uint8_t h[HEADER_FIXED], foot[FOOTER_BYTES];
    int rc = 0;
    if (s->file_size < HEADER_FIXED + FOOTER_BYTES)
        rc = err_set(e, "%s: %llu bytes: too short for a feature store", s->path, (ull)s->file_size);
    if (!rc) rc = pread_full(s->fd, h, HEADER_FIXED, 0, s->path, e);
    if (!rc && memcmp(h, MAGIC, 8)) rc = err_set(e, "%s: not a feature store (bad magic)", s->path);
    if (!rc && get_u32(h + 8) != FEATSTORE_VERSION)
        rc = err_set(e, "%s: version %u, expected %d", s->path, get_u32(h + 8), FEATSTORE_VERSION);
    uint32_t L = rc ? 0 : get_u32(h + 12), F = rc ? 0 : get_u32(h + 16), meta_len = rc ? 0 : get_u32(h + 20);
    if (!rc &&
        (L < 1 || L > FEATSTORE_MAX_LAYERS || F < 1 || F > FEATSTORE_MAX_FEATURES || meta_len > FEATSTORE_MAX_META))
        rc = err_set(e, "%s: corrupt header (%u layers, %u features, meta %u bytes)", s->path, L, F, meta_len);
    uint64_t header_len = HEADER_FIXED + 4ull * L + meta_len;
    if (!rc) rc = pread_full(s->fd, foot, FOOTER_BYTES, s->file_size - FOOTER_BYTES, s->path, e);
    if (!rc && memcmp(foot + 24, END_MAGIC, 8)) rc = err_set(e, "%s: truncated or corrupt (no footer)", s->path);
    if (!rc) {
        s->index_offset = get_u64(foot);
        uint64_t want = (uint64_t)L * F * ENTRY_BYTES + FOOTER_BYTES;
        if (get_u64(foot + 8) != header_len || s->index_offset < header_len || s->index_offset > s->file_size ||
            s->file_size - s->index_offset != want)
            rc = err_set(e, "%s: corrupt footer (index at %llu, file %llu bytes)", s->path, (ull)s->index_offset,
                         (ull)s->file_size);
    }
    uint8_t *hdr = NULL;
    if (!rc) {
        hdr = xmalloc(header_len + 1);
        rc = pread_full(s->fd, hdr, header_len, 0, s->path, e);
        if (!rc) rc = check_crc(s->path, "header", get_u32(foot + 16), crc32c(hdr, header_len), e);
    }
    if (!rc) {
        s->n_layers = (int)L;
        s->n_features = (int)F;
        s->layers = xmalloc(L * sizeof(int));
        for (uint32_t i = 0; i < L; i++) s->layers[i] = (int)get_u32(hdr + HEADER_FIXED + 4 * i);
        s->meta_json = xmalloc(meta_len + 1);
        memcpy(s->meta_json, hdr + HEADER_FIXED + 4 * L, meta_len);
        s->meta_json[meta_len] = 0;
    }
    free(hdr);
    if (rc) featstore_close(s);
    return rc;
}

int featstore_layer_index(const FeatStore *s, int layer) {
    for (int i = 0; i < s->n_layers; i++)
        if (s->layers[i] == layer) return i;
    return -1;
}

int featstore_get(const FeatStore *s, int li, int feature, char **data, size_t *len, Error *e) {
    *data = NULL;
    *len = 0;
    if (li < 0 || li >= s->n_layers || feature < 0 || feature >= s->n_features)
        return err_set(e, "%s: feature %d of stored layer %d is outside the store (%d layers x %d features)", s->path,
                       feature, li, s->n_layers, s->n_features);
    uint8_t ent[ENTRY_BYTES];
    uint64_t at = s->index_offset + ((uint64_t)li * s->n_features + feature) * ENTRY_BYTES;
    if (pread_full(s->fd, ent, ENTRY_BYTES, at, s->path, e)) return -1;
    char what[64];
    snprintf(what, sizeof what, "index entry (%d, %d)", s->layers[li], feature);
    if (check_crc(s->path, what, get_u32(ent + 20), crc32c(ent, 20), e)) return -1;
    uint64_t off = get_u64(ent);
    uint32_t comp = get_u32(ent + 8), raw = get_u32(ent + 12);
    if (!comp) return 0;
    if (off < HEADER_FIXED || off + comp > s->index_offset || raw == 0 || raw > FEATSTORE_MAX_RECORD)
        return err_set(e, "%s: corrupt %s (offset %llu, %u -> %u bytes)", s->path, what, (ull)off, comp, raw);
    uint8_t *buf = xmalloc(comp);
    char *out = NULL;
    int rc = pread_full(s->fd, buf, comp, off, s->path, e);
    snprintf(what, sizeof what, "record (%d, %d)", s->layers[li], feature);
    if (!rc) rc = check_crc(s->path, what, get_u32(ent + 16), crc32c(buf, comp), e);
    if (!rc) {
        out = xmalloc((size_t)raw + 1);
        size_t got = ZSTD_decompress(out, raw, buf, comp);
        if (ZSTD_isError(got) || got != raw)
            rc = err_set(e, "%s: %s: zstd: %s", s->path, what,
                         ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong size");
        else out[raw] = 0;
    }
    free(buf);
    if (rc) {
        free(out);
        return -1;
    }
    *data = out;
    *len = raw;
    return 1;
}
