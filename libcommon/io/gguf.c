// gguf.c — GGUF reader (see gguf.h and formats/gguf.md). The parser walks the mapping with a
// bounds-checked cursor; nothing is allocated for a count before the bytes it needs are known
// to be there, so a corrupt or hostile file costs at most memory proportional to its size.
#include "fileio.h"
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hashmap.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c reads little-endian GGUF in place; big-endian hosts need byte swapping"
#endif

#define GGUF_MAGIC "GGUF"
#define HEADER_SIZE 24  // magic, version, n_tensors, n_kv

static const char *const VALUE_TYPE_NAMES[GGUF_VALUE_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
static const uint8_t VALUE_SIZE[GGUF_VALUE_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *gguf_value_type_name(uint32_t t) { return t < GGUF_VALUE_TYPE_COUNT ? VALUE_TYPE_NAMES[t] : "?"; }

// Fewest bytes one value of type t can take: bounds element counts before any allocation.
static uint64_t min_value_size(uint32_t t) {
    if (t == GGUF_STRING) return 8;   // u64 length
    if (t == GGUF_ARRAY) return 12;   // u32 type + u64 count
    return VALUE_SIZE[t];
}

typedef struct {
    const uint8_t *base, *p, *end;
    const char *name;  // file name for messages
    Error *e;
} Cursor;

static uint64_t left(const Cursor *c) { return (uint64_t)(c->end - c->p); }
static uint64_t pos(const Cursor *c) { return (uint64_t)(c->p - c->base); }

static int need(Cursor *c, uint64_t n, const char *what) {
    if (n > left(c))
        return err_set(c->e, "%s: truncated: %s needs %llu bytes at offset %llu, %llu left", c->name, what,
                       (unsigned long long)n, (unsigned long long)pos(c), (unsigned long long)left(c));
    return 0;
}

static int rd_u32(Cursor *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return -1;
    memcpy(v, c->p, 4);
    c->p += 4;
    return 0;
}

static int rd_u64(Cursor *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return -1;
    memcpy(v, c->p, 8);
    c->p += 8;
    return 0;
}

static int rd_str(Cursor *c, GgufStr *s, const char *what) {
    uint64_t n;
    if (rd_u64(c, &n, what)) return -1;
    if (n > left(c))
        return err_set(c->e, "%s: %s: string length %llu at offset %llu exceeds the %llu bytes left", c->name, what,
                       (unsigned long long)n, (unsigned long long)(pos(c) - 8), (unsigned long long)left(c));
    s->ptr = (const char *)c->p;
    s->len = n;
    c->p += n;
    return 0;
}

// A NUL-terminated copy of a key or tensor name; embedded NULs are refused (they would make two
// different names compare equal as C strings).
static int dup_name(Cursor *c, GgufStr s, char **out, const char *what) {
    if (s.len == 0) return err_set(c->e, "%s: %s is empty", c->name, what);
    if (memchr(s.ptr, 0, s.len)) return err_set(c->e, "%s: %s contains a NUL byte", c->name, what);
    *out = xmalloc(s.len + 1);
    memcpy(*out, s.ptr, s.len);
    (*out)[s.len] = 0;
    return 0;
}

static void free_value(GgufValue *v) {
    if (v->type == GGUF_ARRAY && v->arr.items) {
        for (uint64_t i = 0; i < v->arr.n; i++) free_value(&v->arr.items[i]);
        free(v->arr.items);
        v->arr.items = NULL;
    }
}

// Reads one value of type t (already read) into v. ctx names the key for messages.
static int rd_value(Cursor *c, uint32_t t, GgufValue *v, int depth, const char *ctx) {
    memset(v, 0, sizeof *v);
    if (t >= GGUF_VALUE_TYPE_COUNT)
        return err_set(c->e, "%s: %s: unknown value type %u at offset %llu", c->name, ctx, t,
                       (unsigned long long)(pos(c) - 4));
    v->type = (GgufValueType)t;
    if (t == GGUF_STRING) return rd_str(c, &v->s, ctx);
    if (t == GGUF_ARRAY) {
        if (depth >= GGUF_MAX_DEPTH)
            return err_set(c->e, "%s: %s: arrays nested deeper than %d", c->name, ctx, GGUF_MAX_DEPTH);
        uint32_t et;
        uint64_t n;
        if (rd_u32(c, &et, ctx) || rd_u64(c, &n, ctx)) return -1;
        if (et >= GGUF_VALUE_TYPE_COUNT)
            return err_set(c->e, "%s: %s: unknown array element type %u", c->name, ctx, et);
        uint64_t min = min_value_size(et);
        if (n > left(c) / min)
            return err_set(c->e, "%s: %s: array of %llu %s elements needs at least %llu bytes, %llu left", c->name, ctx,
                           (unsigned long long)n, VALUE_TYPE_NAMES[et],
                           n > UINT64_MAX / min ? UINT64_MAX : (unsigned long long)(n * min),
                           (unsigned long long)left(c));
        v->arr.type = (GgufValueType)et;
        v->arr.n = n;
        v->arr.data = c->p;
        if (et != GGUF_STRING && et != GGUF_ARRAY) {
            if (et == GGUF_BOOL)
                for (uint64_t i = 0; i < n; i++)
                    if (c->p[i] > 1) return err_set(c->e, "%s: %s: bool element %llu is %u, not 0 or 1", c->name, ctx,
                                                    (unsigned long long)i, c->p[i]);
            c->p += n * min;
            return 0;
        }
        v->arr.items = xcalloc(n ? n : 1, sizeof *v->arr.items);
        for (uint64_t i = 0; i < n; i++) {
            char sub[320];
            snprintf(sub, sizeof sub, "%s[%llu]", ctx, (unsigned long long)i);
            if (rd_value(c, et, &v->arr.items[i], depth + 1, sub)) {
                v->arr.n = i + 1;  // free what was parsed, including the failed element's parts
                free_value(v);
                return -1;
            }
        }
        return 0;
    }
    if (need(c, VALUE_SIZE[t], ctx)) return -1;
    const uint8_t *p = c->p;
    c->p += VALUE_SIZE[t];
    switch (t) {
        case GGUF_U8: v->u = p[0]; break;
        case GGUF_I8: v->i = (int8_t)p[0]; break;
        case GGUF_BOOL:
            if (p[0] > 1) return err_set(c->e, "%s: %s: bool value is %u, not 0 or 1", c->name, ctx, p[0]);
            v->u = p[0];
            break;
        case GGUF_U16: { uint16_t x; memcpy(&x, p, 2); v->u = x; break; }
        case GGUF_I16: { int16_t x; memcpy(&x, p, 2); v->i = x; break; }
        case GGUF_U32: { uint32_t x; memcpy(&x, p, 4); v->u = x; break; }
        case GGUF_I32: { int32_t x; memcpy(&x, p, 4); v->i = x; break; }
        case GGUF_U64: memcpy(&v->u, p, 8); break;
        case GGUF_I64: memcpy(&v->i, p, 8); break;
        case GGUF_F32: { float x; memcpy(&x, p, 4); v->f = x; break; }
        case GGUF_F64: memcpy(&v->f, p, 8); break;
    }
    return 0;
}

typedef struct {
    uint64_t begin, end;
    uint64_t index;
} Span;

static int cmp_span(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static void describe_dims(const GgufTensor *t, char *buf, size_t cap) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->n_dims && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%llu", d ? ", " : "", (unsigned long long)t->ne[d]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

// One tensor info: name, dims, type, offset; sizes derived and checked (offset checked later,
// once the data section is known).
static int rd_tensor_info(Cursor *c, GgufTensor *t, uint64_t index) {
    char what[64];
    snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)index);
    GgufStr name;
    if (rd_str(c, &name, what) || dup_name(c, name, &t->name, what)) return -1;
    uint32_t n_dims;
    if (rd_u32(c, &n_dims, what)) return -1;
    if (n_dims > GGUF_MAX_DIMS)
        return err_set(c->e, "%s: tensor '%s': %u dimensions (at most %d)", c->name, t->name, n_dims, GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        if (rd_u64(c, &t->ne[d], what)) return -1;
    uint64_t off;
    if (rd_u32(c, &t->type, what) || rd_u64(c, &off, what)) return -1;
    t->offset = off;
    const GgmlTypeInfo *ti = ggml_type_info(t->type);
    if (!ti) return err_set(c->e, "%s: tensor '%s': unknown ggml type %u", c->name, t->name, t->type);
    // ggml indexes with int64: every dimension and the element count must fit
    uint64_t numel = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        if (t->ne[d] > (uint64_t)INT64_MAX || (t->ne[d] && numel > (uint64_t)INT64_MAX / t->ne[d])) {
            char dims[160];
            describe_dims(t, dims, sizeof dims);
            return err_set(c->e, "%s: tensor '%s': dimensions %s overflow 64-bit sizes", c->name, t->name, dims);
        }
        numel *= t->ne[d];
    }
    if (t->ne[0] % (uint64_t)ti->block_size)
        return err_set(c->e, "%s: tensor '%s': row length %llu is not a multiple of the %s block size %d", c->name,
                       t->name, (unsigned long long)t->ne[0], ti->name, ti->block_size);
    uint64_t blocks = numel / (uint64_t)ti->block_size;
    if (blocks > UINT64_MAX / (uint64_t)ti->type_size)
        return err_set(c->e, "%s: tensor '%s': byte size overflows", c->name, t->name);
    t->numel = numel;
    t->nbytes = blocks * (uint64_t)ti->type_size;
    return 0;
}

static void free_all(Gguf *g) {
    for (uint64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free_value(&g->kv[i].value);
    }
    free(g->kv);
    for (uint64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->tensors);
    free(g->path);
}

// Checks every tensor's span against the data section (aligned, inside, no two overlapping)
// and points it at its bytes.
static int place_tensors(Gguf *g, const uint8_t *buf, size_t len, Error *e) {
    uint64_t hdr_end = g->data_offset, a = g->alignment;
    // The data section starts at the next multiple of the alignment (a file without tensors may
    // end before it).
    uint64_t data = hdr_end + (a - hdr_end % a) % a;
    g->data_offset = data;
    if (!g->n_tensors) return 0;
    if (data > (uint64_t)len)
        return err_set(e, "%s: truncated: tensor data would start at offset %llu (after alignment to %u) but the "
                       "file is %zu bytes", g->path, (unsigned long long)data, g->alignment, len);
    uint64_t data_size = (uint64_t)len - data;
    Span *spans = xmalloc(g->n_tensors * sizeof *spans);
    int rc = 0;
    for (uint64_t i = 0; i < g->n_tensors && !rc; i++) {
        GgufTensor *t = &g->tensors[i];
        if (t->offset % a)
            rc = err_set(e, "%s: tensor '%s': offset %llu is not a multiple of the alignment %u", g->path, t->name,
                         (unsigned long long)t->offset, g->alignment);
        else if (t->offset > data_size || t->nbytes > data_size - t->offset)
            rc = err_set(e, "%s: tensor '%s': bytes [%llu, +%llu) of the data section are outside the file (the "
                         "data section is %llu bytes from offset %llu)", g->path, t->name,
                         (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                         (unsigned long long)data_size, (unsigned long long)data);
        if (rc) break;  // the pointer below is only formed for an offset inside the file
        t->data = buf + data + t->offset;
        spans[i] = (Span){t->offset, t->offset + t->nbytes, i};
    }
    if (!rc && g->n_tensors > 1) qsort(spans, g->n_tensors, sizeof *spans, cmp_span);
    for (uint64_t i = 1; i < g->n_tensors && !rc; i++)
        if (spans[i].begin < spans[i - 1].end)
            rc = err_set(e, "%s: tensors '%s' and '%s' overlap in the data section", g->path,
                         g->tensors[spans[i - 1].index].name, g->tensors[spans[i].index].name);
    free(spans);
    return rc;
}

static int rd_alignment(Gguf *g, Error *e) {
    const GgufKV *al = gguf_find_kv(g, "general.alignment");
    if (!al) return 0;
    if (al->value.type != GGUF_U32)
        return err_set(e, "%s: general.alignment has type %s (must be u32)", g->path, VALUE_TYPE_NAMES[al->value.type]);
    uint64_t a = al->value.u;
    if (a == 0 || (a & (a - 1)))
        return err_set(e, "%s: general.alignment %llu is not a power of two", g->path, (unsigned long long)a);
    g->alignment = (uint32_t)a;
    return 0;
}

static int rd_kvs(Gguf *g, Cursor *c, uint64_t n_kv) {
    StrMap seen;
    strmap_init(&seen, (uint32_t)(n_kv < (1u << 20) ? n_kv : (1u << 20)));
    g->kv = xcalloc(n_kv ? n_kv : 1, sizeof *g->kv);
    int rc = 0;
    for (uint64_t i = 0; i < n_kv && !rc; i++) {
        char what[64], ctx[300];
        snprintf(what, sizeof what, "metadata key %llu", (unsigned long long)i);
        GgufStr key;
        GgufKV *kv = &g->kv[i];
        uint32_t t;
        if (rd_str(c, &key, what) || dup_name(c, key, &kv->key, what)) { rc = -1; break; }
        g->n_kv = i + 1;
        if (key.len >= (1u << 24) || !strmap_put(&seen, kv->key, key.len, 0)) {
            rc = err_set(c->e, "%s: duplicate metadata key '%.200s'", c->name, kv->key);
            break;
        }
        snprintf(ctx, sizeof ctx, "key '%.200s'", kv->key);
        rc = rd_u32(c, &t, ctx) || rd_value(c, t, &kv->value, 0, ctx) ? -1 : 0;
    }
    strmap_free(&seen);
    return rc;
}

static int rd_tensor_infos(Gguf *g, Cursor *c, uint64_t n_tensors) {
    StrMap seen;
    strmap_init(&seen, (uint32_t)(n_tensors < (1u << 20) ? n_tensors : (1u << 20)));
    g->tensors = xcalloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    int rc = 0;
    for (uint64_t i = 0; i < n_tensors && !rc; i++) {
        GgufTensor *t = &g->tensors[i];
        rc = rd_tensor_info(c, t, i);
        if (t->name) g->n_tensors = i + 1;
        if (!rc && (strlen(t->name) >= (1u << 24) || !strmap_put(&seen, t->name, strlen(t->name), 0)))
            rc = err_set(c->e, "%s: duplicate tensor name '%.200s'", c->name, t->name);
    }
    strmap_free(&seen);
    return rc;
}

int gguf_parse(Gguf *g, const void *buf, size_t len, const char *name, Error *e) {
    memset(g, 0, sizeof *g);
    if (len == 0) return err_set(e, "%s: empty file (not a GGUF file)", name);  // (buf may be NULL: no buf + 0)
    Cursor c = {buf, buf, (const uint8_t *)buf + len, name, e};
    if (len < 4 || memcmp(buf, GGUF_MAGIC, 4))
        return err_set(e, "%s: not a GGUF file (bad magic; expected \"GGUF\")", name);
    c.p += 4;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    if (rd_u32(&c, &version, "the header")) return -1;
    if (version == 1) return err_set(e, "%s: GGUF version 1 is not supported (only 2 and 3)", name);
    if (version != 2 && version != 3 && (version & 0xffff) == 0)
        return err_set(e, "%s: big-endian GGUF (version field %#x) is not supported", name, version);
    if (version != 2 && version != 3) return err_set(e, "%s: unsupported GGUF version %u (expected 3)", name, version);
    if (rd_u64(&c, &n_tensors, "the header") || rd_u64(&c, &n_kv, "the header")) return -1;
    // each key/value takes >= 8 + 1 + 4 + 1 bytes, each tensor info >= 8 + 1 + 4 + 4 + 8
    if (n_kv > left(&c) / 14)
        return err_set(e, "%s: header claims %llu metadata entries; the file has room for at most %llu", name,
                       (unsigned long long)n_kv, (unsigned long long)(left(&c) / 14));
    if (n_tensors > left(&c) / 25)
        return err_set(e, "%s: header claims %llu tensors; the file has room for at most %llu", name,
                       (unsigned long long)n_tensors, (unsigned long long)(left(&c) / 25));
    g->path = xstrdup(name);
    g->version = version;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (rd_kvs(g, &c, n_kv) || rd_alignment(g, e) || rd_tensor_infos(g, &c, n_tensors)) goto fail;
    g->data_offset = pos(&c);  // end of the header; place_tensors aligns it
    if (place_tensors(g, buf, len, e)) goto fail;
    return 0;
fail:
    free_all(g);
    memset(g, 0, sizeof *g);
    return -1;
}

int gguf_open(Gguf *g, const char *path, Error *e) {
    memset(g, 0, sizeof *g);
    void *map;
    size_t n;
    if (map_file(path, &map, &n, e)) return -1;
    if (n < HEADER_SIZE) {  // parse what there is, for the precise "truncated" message
        uint8_t small[HEADER_SIZE];
        if (n) memcpy(small, map, n);
        if (map) munmap(map, n);
        Gguf tmp;
        if (!gguf_parse(&tmp, small, n, path, e)) gguf_close(&tmp);  // unreachable: 24 header bytes are required
        return -1;
    }
    if (gguf_parse(g, map, n, path, e)) {
        munmap(map, n);
        return -1;
    }
    g->map = map;
    g->map_size = n;
    return 0;
}

void gguf_close(Gguf *g) {
    void *map = g->map;
    size_t n = g->map_size;
    free_all(g);
    if (map) munmap(map, n);
    memset(g, 0, sizeof *g);
}

const GgufKV *gguf_find_kv(const Gguf *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const GgufTensor *gguf_find_tensor(const Gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

static int is_int_type(uint32_t t) {
    return t == GGUF_U8 || t == GGUF_I8 || t == GGUF_U16 || t == GGUF_I16 || t == GGUF_U32 || t == GGUF_I32 ||
           t == GGUF_U64 || t == GGUF_I64;
}
static int is_signed(uint32_t t) { return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64; }

static int wrong_type(const Gguf *g, const GgufKV *kv, const char *want, Error *e) {
    const char *have = VALUE_TYPE_NAMES[kv->value.type];
    if (kv->value.type == GGUF_ARRAY)
        return err_set(e, "%s: metadata '%s' is an array of %s, expected %s", g->path, kv->key,
                       VALUE_TYPE_NAMES[kv->value.arr.type], want);
    return err_set(e, "%s: metadata '%s' has type %s, expected %s", g->path, kv->key, have, want);
}

int gguf_get_int(const Gguf *g, const char *key, int64_t *out, Error *e) {
    const GgufKV *kv = gguf_find_kv(g, key);
    if (!kv) return 1;
    uint32_t t = kv->value.type;
    if (!is_int_type(t)) return wrong_type(g, kv, "an integer", e);
    if (!is_signed(t) && kv->value.u > (uint64_t)INT64_MAX)
        return err_set(e, "%s: metadata '%s' = %llu is too large", g->path, key, (unsigned long long)kv->value.u);
    *out = is_signed(t) ? kv->value.i : (int64_t)kv->value.u;
    return 0;
}

int gguf_get_float(const Gguf *g, const char *key, double *out, Error *e) {
    const GgufKV *kv = gguf_find_kv(g, key);
    if (!kv) return 1;
    uint32_t t = kv->value.type;
    if (t == GGUF_F32 || t == GGUF_F64) *out = kv->value.f;
    else if (is_int_type(t)) *out = is_signed(t) ? (double)kv->value.i : (double)kv->value.u;
    else return wrong_type(g, kv, "a number", e);
    return 0;
}

int gguf_get_str(const Gguf *g, const char *key, GgufStr *out, Error *e) {
    const GgufKV *kv = gguf_find_kv(g, key);
    if (!kv) return 1;
    if (kv->value.type != GGUF_STRING) return wrong_type(g, kv, "a string", e);
    *out = kv->value.s;
    return 0;
}

int gguf_get_bool(const Gguf *g, const char *key, int *out, Error *e) {
    const GgufKV *kv = gguf_find_kv(g, key);
    if (!kv) return 1;
    if (kv->value.type != GGUF_BOOL) return wrong_type(g, kv, "a bool", e);
    *out = (int)kv->value.u;
    return 0;
}

int gguf_get_array(const Gguf *g, const char *key, GgufValueType elem, const GgufValue **out, Error *e) {
    const GgufKV *kv = gguf_find_kv(g, key);
    if (!kv) return 1;
    if (kv->value.type != GGUF_ARRAY || kv->value.arr.type != elem) {
        char want[64];
        snprintf(want, sizeof want, "an array of %s", VALUE_TYPE_NAMES[elem]);
        return wrong_type(g, kv, want, e);
    }
    *out = &kv->value;
    return 0;
}

// Truncation toward zero, saturating (NaN -> 0): a float outside int64 must not be UB.
static int64_t f64_to_i64(double x) {
    if (!(x == x)) return 0;
    if (x >= 9223372036854775807.0) return INT64_MAX;
    if (x <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)x;
}

int64_t gguf_array_int(const GgufValue *v, uint64_t i) {
    const uint8_t *p = v->arr.data + i * VALUE_SIZE[v->arr.type];
    switch (v->arr.type) {
        case GGUF_U8: case GGUF_BOOL: return p[0];
        case GGUF_I8: return (int8_t)p[0];
        case GGUF_U16: { uint16_t x; memcpy(&x, p, 2); return x; }
        case GGUF_I16: { int16_t x; memcpy(&x, p, 2); return x; }
        case GGUF_U32: { uint32_t x; memcpy(&x, p, 4); return x; }
        case GGUF_I32: { int32_t x; memcpy(&x, p, 4); return x; }
        case GGUF_U64: case GGUF_I64: { int64_t x; memcpy(&x, p, 8); return x; }
        case GGUF_F32: { float x; memcpy(&x, p, 4); return f64_to_i64(x); }
        case GGUF_F64: { double x; memcpy(&x, p, 8); return f64_to_i64(x); }
        default: return 0;
    }
}

double gguf_array_float(const GgufValue *v, uint64_t i) {
    const uint8_t *p = v->arr.data + i * VALUE_SIZE[v->arr.type];
    if (v->arr.type == GGUF_F32) { float x; memcpy(&x, p, 4); return x; }
    if (v->arr.type == GGUF_F64) { double x; memcpy(&x, p, 8); return x; }
    if (v->arr.type == GGUF_U64) { uint64_t x; memcpy(&x, p, 8); return (double)x; }
    return (double)gguf_array_int(v, i);
}

int gguf_tensor_to_f32(const Gguf *g, const GgufTensor *t, float *out, Error *e) {
    const GgmlTypeInfo *ti = ggml_type_info(t->type);
    if (!ti || !ti->dequant)
        return err_set(e, "%s: tensor '%s': ggml type %s cannot be dequantized (supported: f32, f16, bf16, q8_0, "
                       "q4_0, q4_1, q4_K, q6_K)", g->path, t->name, ti ? ti->name : "?");
    ggml_dequantize(t->type, t->data, out, t->numel);
    return 0;
}
