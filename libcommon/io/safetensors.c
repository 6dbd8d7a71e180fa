// safetensors.c — reader (mmap + every check the reference implementation makes) and atomic
// writer for safetensors files. Layout: u64 LE header length N, N bytes of UTF-8 JSON, then the
// tensor bytes; data_offsets in the header are relative to the end of the header. Spec and the
// list of checks: formats/safetensors.md.
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"
#include "fileio.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (the file format is little-endian)"
#endif

#define ST_MAX_HEADER 100000000ull  // the reference rejects larger headers (memory bomb guard)

static const struct {
    const char *name;
    size_t size;
} dtype_info[ST_DTYPE_COUNT] = {
    [ST_F32] = {"F32", 4},  [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},         [ST_I32] = {"I32", 4},
    [ST_I64] = {"I64", 8},  [ST_U8] = {"U8", 1},   [ST_I8] = {"I8", 1},             [ST_F8_E4M3] = {"F8_E4M3", 1},
    [ST_BOOL] = {"BOOL", 1}, [ST_F64] = {"F64", 8},
};

const char *st_dtype_name(StDtype t) { return (unsigned)t < ST_DTYPE_COUNT ? dtype_info[t].name : "?"; }
size_t st_dtype_size(StDtype t) { return (unsigned)t < ST_DTYPE_COUNT ? dtype_info[t].size : 0; }

int st_dtype_parse(const char *name, StDtype *out) {
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        if (!strcmp(name, dtype_info[i].name)) {
            *out = (StDtype)i;
            return 0;
        }
    }
    return -1;
}

// ---- reader ----------------------------------------------------------------------------------

// Rust's str::from_utf8 rules: no overlong forms, no surrogates, nothing above U+10FFFF.
// Returns the offset of the first bad byte, or len if the whole buffer is valid.
static size_t utf8_valid_prefix(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t need;
        unsigned lo = 0x80, hi = 0xbf;  // allowed range of the second byte
        if (c >= 0xc2 && c <= 0xdf) need = 1;
        else if (c == 0xe0) { need = 2; lo = 0xa0; }
        else if (c == 0xed) { need = 2; hi = 0x9f; }  // excludes surrogates D800..DFFF
        else if (c >= 0xe1 && c <= 0xef) need = 2;
        else if (c == 0xf0) { need = 3; lo = 0x90; }
        else if (c >= 0xf1 && c <= 0xf3) need = 3;
        else if (c == 0xf4) { need = 3; hi = 0x8f; }  // caps at U+10FFFF
        else return i;
        if (len - i <= need) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xc0) != 0x80) return i;
        i += need + 1;
    }
    return len;
}

static void free_tensors(StTensor *t, int n) {
    for (int i = 0; i < n; i++) free(t[i].name);
    free(t);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}

// Sort key for the contiguity check: begin, then end, then name (deterministic for empties).
typedef struct {
    uint64_t begin, end;
    const char *name;
    int index;  // into the tensors array
} Span;

static int cmp_span(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void format_shape(const StTensor *t, char *buf, size_t cap) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

// Fills *t (except data) from one header entry; name is for messages.
static int parse_entry(const char *file, const char *name, json_t *v, StTensor *t, uint64_t off[2], Error *e) {
    if (!json_is_object(v)) return err_set(e, "%s: tensor '%s': entry is not a JSON object", file, name);

    json_t *dt = json_object_get(v, "dtype");
    if (!dt) return err_set(e, "%s: tensor '%s': missing \"dtype\"", file, name);
    if (!json_is_string(dt)) return err_set(e, "%s: tensor '%s': \"dtype\" is not a string", file, name);
    if (st_dtype_parse(json_string_value(dt), &t->dtype))
        return err_set(e, "%s: tensor '%s': unknown dtype '%.64s'", file, name, json_string_value(dt));

    json_t *shape = json_object_get(v, "shape");
    if (!shape) return err_set(e, "%s: tensor '%s': missing \"shape\"", file, name);
    if (!json_is_array(shape)) return err_set(e, "%s: tensor '%s': \"shape\" is not an array", file, name);
    size_t rank = json_array_size(shape);
    if (rank > ST_MAX_DIMS)
        return err_set(e, "%s: tensor '%s': rank %zu exceeds the maximum %d", file, name, rank, ST_MAX_DIMS);
    t->ndim = (int)rank;
    t->numel = 1;  // a 0-dim tensor is a scalar
    for (size_t d = 0; d < rank; d++) {
        json_t *x = json_array_get(shape, d);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return err_set(e, "%s: tensor '%s': shape[%zu] is not a non-negative integer", file, name, d);
        t->shape[d] = (int64_t)json_integer_value(x);
        uint64_t dim = (uint64_t)t->shape[d];
        if (dim && t->numel > UINT64_MAX / dim)
            return err_set(e, "%s: tensor '%s': element count overflows 64 bits", file, name);
        t->numel *= dim;
    }
    size_t esize = st_dtype_size(t->dtype);
    if (t->numel > UINT64_MAX / esize) return err_set(e, "%s: tensor '%s': byte size overflows 64 bits", file, name);
    t->nbytes = t->numel * esize;

    json_t *offs = json_object_get(v, "data_offsets");
    if (!offs) return err_set(e, "%s: tensor '%s': missing \"data_offsets\"", file, name);
    if (!json_is_array(offs) || json_array_size(offs) != 2)
        return err_set(e, "%s: tensor '%s': \"data_offsets\" is not a [begin, end] pair", file, name);
    for (int k = 0; k < 2; k++) {
        json_t *x = json_array_get(offs, (size_t)k);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return err_set(e, "%s: tensor '%s': data_offsets[%d] is not a non-negative integer", file, name, k);
        off[k] = (uint64_t)json_integer_value(x);
    }
    if (off[1] < off[0])
        return err_set(e, "%s: tensor '%s': data_offsets end %llu is before begin %llu", file, name,
                       (unsigned long long)off[1], (unsigned long long)off[0]);
    if (off[1] - off[0] != t->nbytes) {
        char sh[160];
        format_shape(t, sh, sizeof sh);
        return err_set(e, "%s: tensor '%s': data_offsets span %llu bytes but shape %s of %s needs %llu", file, name,
                       (unsigned long long)(off[1] - off[0]), sh, st_dtype_name(t->dtype),
                       (unsigned long long)t->nbytes);
    }
    return 0;
}

static int check_metadata(const char *file, json_t *meta, Error *e) {
    if (!json_is_object(meta)) return err_set(e, "%s: \"__metadata__\" is not a JSON object", file);
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (!json_is_string(v))
            return err_set(e, "%s: \"__metadata__\" value for key '%.64s' is not a string", file, k);
    }
    return 0;
}

int safetensors_parse(SafeTensors *st, const void *buf, size_t len, const char *name, Error *e) {
    memset(st, 0, sizeof *st);
    const unsigned char *b = buf;
    if (len < 8) return err_set(e, "%s: truncated: %zu bytes, too short for the 8-byte header length", name, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | b[i];  // u64 little-endian
    if (n > ST_MAX_HEADER)
        return err_set(e, "%s: header length %llu exceeds the limit %llu", name, (unsigned long long)n, ST_MAX_HEADER);
    if (8 + n > len)
        return err_set(e, "%s: truncated: header length %llu runs past the end of the file (%zu bytes)", name,
                       (unsigned long long)n, len);
    const unsigned char *hdr = b + 8;
    size_t bad = utf8_valid_prefix(hdr, (size_t)n);
    if (bad != n) return err_set(e, "%s: header is not valid UTF-8 (byte %zu)", name, bad);

    json_error_t jerr;
    json_t *root = json_loadb((const char *)hdr, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_duplicate_key)
            return err_set(e, "%s: header has a duplicate key: %s", name, jerr.text);
        return err_set(e, "%s: header is not valid JSON: %s (line %d, column %d)", name, jerr.text, jerr.line,
                       jerr.column);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(e, "%s: header is not a JSON object", name);
    }

    size_t cap = json_object_size(root);
    StTensor *tensors = xcalloc(cap ? cap : 1, sizeof *tensors);
    Span *spans = xcalloc(cap ? cap : 1, sizeof *spans);
    int nt = 0;
    char *meta_text = NULL;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (json_is_null(val)) continue;  // serde's Option: null means absent
            if (check_metadata(name, val, e)) goto fail;
            meta_text = json_dumps(val, JSON_COMPACT);
            continue;
        }
        StTensor *t = &tensors[nt];
        uint64_t off[2];
        if (parse_entry(name, key, val, t, off, e)) goto fail;
        t->name = xstrdup(key);
        spans[nt] = (Span){off[0], off[1], t->name, nt};
        nt++;
    }

    // Contiguity: sorted by offset, each tensor starts where the previous one ended, from 0.
    qsort(spans, (size_t)nt, sizeof *spans, cmp_span);
    uint64_t end = 0;
    const char *prev = NULL;
    for (int i = 0; i < nt; i++) {
        if (spans[i].begin > end) {
            if (prev)
                err_set(e, "%s: gap: tensor '%s' starts at byte %llu but '%s' ends at %llu", name, spans[i].name,
                        (unsigned long long)spans[i].begin, prev, (unsigned long long)end);
            else
                err_set(e, "%s: gap: the first tensor '%s' starts at byte %llu, not 0", name, spans[i].name,
                        (unsigned long long)spans[i].begin);
            goto fail;
        }
        if (spans[i].begin < end) {
            err_set(e, "%s: overlap: tensor '%s' starts at byte %llu, before '%s' ends at %llu", name, spans[i].name,
                    (unsigned long long)spans[i].begin, prev, (unsigned long long)end);
            goto fail;
        }
        end = spans[i].end;
        prev = spans[i].name;
    }
    // end <= 2^63 (json integers are signed 64-bit) and 8 + n <= 1e8 + 8: no overflow.
    uint64_t need = 8 + n + end;
    if (need > len) {
        err_set(e, "%s: truncated: tensor data ends at byte %llu but the file has %zu bytes", name,
                (unsigned long long)need, len);
        goto fail;
    }
    if (need < len) {
        err_set(e, "%s: trailing bytes: tensor data ends at byte %llu but the file has %zu bytes", name,
                (unsigned long long)need, len);
        goto fail;
    }

    // Data pointers, now that every span is known to lie inside the buffer.
    const unsigned char *data = hdr + n;
    for (int i = 0; i < nt; i++) tensors[spans[i].index].data = data + spans[i].begin;
    qsort(tensors, (size_t)nt, sizeof *tensors, cmp_name);
    free(spans);
    json_decref(root);
    st->path = xstrdup(name);
    st->n_tensors = nt;
    st->tensors = tensors;
    st->metadata_json = meta_text;
    return 0;

fail:
    free(spans);
    free_tensors(tensors, nt);
    free(meta_text);
    json_decref(root);
    return -1;
}

int safetensors_open(SafeTensors *st, const char *path, Error *e) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        err_set(e, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    void *map = NULL;
    if (size > 0) {  // mmap of 0 bytes fails; parse reports the empty file
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            err_set(e, "%s: cannot mmap: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    close(fd);  // the mapping keeps the file alive
    static const unsigned char empty[1];
    if (safetensors_parse(st, map ? map : empty, size, path, e)) {
        if (map) munmap(map, size);
        return -1;
    }
    st->map = map;
    st->map_size = size;
    return 0;
}

void safetensors_close(SafeTensors *st) {
    if (st->map) munmap(st->map, st->map_size);
    free_tensors(st->tensors, st->n_tensors);
    free(st->metadata_json);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const StTensor *safetensors_find(const SafeTensors *st, const char *name) {
    if (!st->n_tensors) return NULL;
    StTensor key = {.name = (char *)name};
    return bsearch(&key, st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_name);
}

// Tensor bytes in an mmapped file need not be aligned for their type, so integer/float loads go
// through memcpy into an aligned chunk buffer.
#define CHUNK 4096

int safetensors_to_f32(const SafeTensors *st, const StTensor *t, float *out, uint64_t expected_numel, Error *e) {
    const char *file = st->path ? st->path : "safetensors";
    if (expected_numel && t->numel != expected_numel)
        return err_set(e, "%s: tensor '%s': has %llu elements, expected %llu", file, t->name,
                       (unsigned long long)t->numel, (unsigned long long)expected_numel);
    const unsigned char *src = t->data;
    uint64_t n = t->numel;
    size_t es = st_dtype_size(t->dtype);
    if (t->dtype == ST_F32) {
        if (n) memcpy(out, src, (size_t)n * 4);
        return 0;
    }
    union {
        uint16_t u16[CHUNK];
        int32_t i32[CHUNK];
        int64_t i64[CHUNK];
        double f64[CHUNK];
        uint8_t u8[CHUNK];
    } tmp;
    for (uint64_t i0 = 0; i0 < n; i0 += CHUNK) {
        size_t m = (size_t)(n - i0 < CHUNK ? n - i0 : CHUNK);
        memcpy(&tmp, src + i0 * es, m * es);
        float *o = out + i0;
        switch (t->dtype) {
        case ST_F16: convert_f16_to_f32(tmp.u16, o, m); break;
        case ST_BF16: convert_bf16_to_f32(tmp.u16, o, m); break;
        case ST_F8_E4M3: convert_f8e4m3_to_f32(tmp.u8, o, m); break;
        case ST_I32: for (size_t k = 0; k < m; k++) o[k] = (float)tmp.i32[k]; break;
        case ST_I64: for (size_t k = 0; k < m; k++) o[k] = (float)tmp.i64[k]; break;
        case ST_U8: for (size_t k = 0; k < m; k++) o[k] = (float)tmp.u8[k]; break;
        case ST_I8: for (size_t k = 0; k < m; k++) o[k] = (float)(int8_t)tmp.u8[k]; break;
        case ST_BOOL: for (size_t k = 0; k < m; k++) o[k] = tmp.u8[k] ? 1.0f : 0.0f; break;
        case ST_F64: for (size_t k = 0; k < m; k++) o[k] = (float)tmp.f64[k]; break;
        default: return err_set(e, "%s: tensor '%s': cannot convert %s to F32", file, t->name, st_dtype_name(t->dtype));
        }
    }
    return 0;
}

// ---- writer ----------------------------------------------------------------------------------

typedef struct {
    const StWriteTensor *t;
    uint64_t nbytes;
} WriteItem;

// The reference writer's layout: descending by its Dtype enum order, then by name. That order
// puts larger dtypes first, which keeps every tensor aligned to its dtype when the header length
// is a multiple of 8; matching it exactly makes our files byte-identical to the reference's.
static const int write_rank[ST_DTYPE_COUNT] = {
    [ST_I64] = 0, [ST_F64] = 1, [ST_F32] = 2, [ST_I32] = 3, [ST_BF16] = 4,
    [ST_F16] = 5, [ST_F8_E4M3] = 6, [ST_I8] = 7, [ST_U8] = 8, [ST_BOOL] = 9,
};

static int cmp_write(const void *a, const void *b) {
    const WriteItem *x = a, *y = b;
    int rx = write_rank[x->t->dtype], ry = write_rank[y->t->dtype];
    if (rx != ry) return rx < ry ? -1 : 1;
    return strcmp(x->t->name, y->t->name);
}

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

// Builds the padded header text; returns NULL with e set on bad input.
static char *build_header(const char *path, WriteItem *items, int n, const char *metadata_json, size_t *len_out,
                          Error *e) {
    json_t *root = json_object();
    if (metadata_json) {
        json_error_t jerr;
        json_t *meta = json_loads(metadata_json, JSON_REJECT_DUPLICATES, &jerr);
        if (!meta) {
            err_set(e, "%s: metadata is not valid JSON: %s", path, jerr.text);
            goto fail;
        }
        json_object_set_new(root, "__metadata__", meta);  // first, like the reference writer
        if (check_metadata(path, meta, e)) goto fail;
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const StWriteTensor *t = items[i].t;
        json_t *name = json_string(t->name);  // NULL when the name is not valid UTF-8
        if (!name) {
            err_set(e, "%s: tensor name is not valid UTF-8", path);
            goto fail;
        }
        json_decref(name);
        if (json_object_get(root, t->name)) {
            err_set(e, "%s: tensor '%s': duplicate name", path, t->name);
            goto fail;
        }
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *entry = json_object();
        json_object_set_new(entry, "dtype", json_string(st_dtype_name(t->dtype)));
        json_object_set_new(entry, "shape", shape);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + items[i].nbytes)));
        json_object_set_new(entry, "data_offsets", offs);
        json_object_set_new(root, t->name, entry);
        off += items[i].nbytes;
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    char *hdr = xmalloc(padded);
    memcpy(hdr, text, len);
    memset(hdr + len, ' ', padded - len);  // spaces are JSON whitespace: readers ignore them
    free(text);
    *len_out = padded;
    return hdr;
fail:
    json_decref(root);
    return NULL;
}

int safetensors_write(const char *path, const StWriteTensor *tensors, int n, const char *metadata_json, Error *e) {
    if (n < 0) return err_set(e, "%s: negative tensor count %d", path, n);
    WriteItem *items = xcalloc((size_t)(n ? n : 1), sizeof *items);
    for (int i = 0; i < n; i++) {
        const StWriteTensor *t = &tensors[i];
        items[i].t = t;
        if (!t->name || !*t->name || !strcmp(t->name, "__metadata__")) {
            free(items);
            return err_set(e, "%s: tensor %d: empty or reserved name", path, i);
        }
        if ((unsigned)t->dtype >= ST_DTYPE_COUNT || t->ndim < 0 || t->ndim > ST_MAX_DIMS) {
            free(items);
            return err_set(e, "%s: tensor '%s': bad dtype or rank", path, t->name);
        }
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            uint64_t dim = (uint64_t)t->shape[d];
            if (t->shape[d] < 0 || (dim && numel > (UINT64_MAX >> 4) / dim)) {
                free(items);
                return err_set(e, "%s: tensor '%s': bad shape", path, t->name);
            }
            numel *= dim;
        }
        items[i].nbytes = numel * st_dtype_size(t->dtype);
        if (items[i].nbytes && !t->data) {
            free(items);
            return err_set(e, "%s: tensor '%s': no data", path, t->name);
        }
    }
    qsort(items, (size_t)n, sizeof *items, cmp_write);
    size_t hlen = 0;
    char *hdr = build_header(path, items, n, metadata_json, &hlen, e);
    if (!hdr) {
        free(items);
        return -1;
    }

    char tmp[4200];
    if (temp_output_begin(tmp, sizeof tmp, path, e)) {
        free(hdr);
        free(items);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        err_set(e, "%s: cannot create: %s", tmp, strerror(errno));
        temp_output_end(tmp);
        free(hdr);
        free(items);
        return -1;
    }
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int bad = write_all(fd, lenbuf, 8) || write_all(fd, hdr, hlen);
    for (int i = 0; i < n && !bad; i++) bad = write_all(fd, items[i].t->data, (size_t)items[i].nbytes);
    if (bad) err_set(e, "%s: write error: %s", tmp, strerror(errno));
    // fsync before rename: after a crash the path holds either the old file or the whole new one
    if (!bad && fsync(fd) != 0) bad = err_set(e, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && !bad) bad = err_set(e, "%s: close failed: %s", tmp, strerror(errno));
    if (!bad && rename(tmp, path) != 0) bad = err_set(e, "%s: cannot rename %s: %s", path, tmp, strerror(errno));
    if (bad) unlink(tmp);
    temp_output_end(tmp);
    free(hdr);
    free(items);
    return bad ? -1 : 0;
}

int safetensors_load_f32(const SafeTensors *st, const char *name, const int64_t *shape, int ndim, float *dst,
                         Error *e) {
    const StTensor *t = safetensors_find(st, name);
    if (!t) return err_set(e, "%s: missing tensor \"%s\"", st->path, name);
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) return err_set(e, "%s: tensor \"%s\" has an unexpected shape", st->path, name);
    return safetensors_to_f32(st, t, dst, t->numel, e);
}
