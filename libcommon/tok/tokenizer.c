// tokenizer.c — see tokenizer.h. The order of operations is HF's: added tokens are split out of
// the raw text, each remaining segment is normalized, pre-tokenized into pieces, and each piece
// goes through the BPE model; then the post-processor adds BOS/EOS.
#include "tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "pretok.h"
#include "unicode.h"

// ---------------------------------------------------------------------------------------------
// Configuration read from tokenizer.json

typedef enum { NORM_REPLACE, NORM_PREPEND } NormKind;
typedef struct {
    NormKind kind;
    char *pattern, *content;  // Replace: literal pattern -> content; Prepend: content
    size_t pattern_len, content_len;
} NormStep;

typedef enum { PT_REGEX, PT_STRING, PT_BYTELEVEL, PT_METASPACE, PT_DIGITS } PreTokKind;
typedef enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS } SplitBehavior;
typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } PrependScheme;
typedef struct {
    PreTokKind kind;
    SplitBehavior behavior;
    PretokRegex regex;
    char *pattern;  // PT_STRING literal, PT_METASPACE replacement (UTF-8)
    size_t pattern_len;
    int add_prefix_space, use_regex;  // ByteLevel
    PrependScheme prepend_scheme;     // Metaspace
    int split;                        // Metaspace
    int individual_digits;            // Digits
} PreTokStep;

typedef enum { DEC_BYTELEVEL, DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_METASPACE } DecKind;
typedef struct {
    DecKind kind;
    char *pattern, *content;
    size_t pattern_len, content_len;
    uint32_t strip_char;
    int strip_start, strip_stop;
    uint32_t replacement;
    PrependScheme prepend_scheme;
} DecStep;

typedef struct {
    uint32_t id;
    char *content;
    size_t len;
    int special, normalized, lstrip, rstrip;
} AddedToken;

// Byte trie over added-token contents for leftmost-longest matching.
typedef struct {
    U64Map edges;        // (node << 8 | byte) -> child node
    int32_t *terminal;   // (n_nodes,) index into added[] or -1
    uint32_t n_nodes, cap_nodes;
    uint8_t first_byte[256];
} Trie;

struct Tokenizer {
    char *name;
    // model (BPE)
    StrMap vocab;
    U64Map merges;  // (left id << 32 | right id) -> (rank << 32 | merged id)
    char **id_token;  // (vocab_size,) token strings (NUL-terminated), NULL for holes
    size_t *id_token_len;
    uint32_t vocab_size;
    int byte_fallback, ignore_merges, fuse_unk;
    int64_t unk_id;
    int64_t byte_ids[256];  // "<0xXX>" ids for byte_fallback, -1 if absent
    char *cont_prefix, *word_suffix;
    size_t cont_prefix_len, word_suffix_len;
    // pipeline
    NormStep *norm;
    int n_norm;
    PreTokStep *pretok;
    int n_pretok;
    DecStep *dec;
    int n_dec;
    int has_decoder;
    AddedToken *added;
    int n_added;
    StrMap added_by_content;
    uint8_t *is_special_id;  // (vocab_size,)
    Trie trie_raw, trie_norm;  // added tokens matched before / after normalization
    uint32_t *post_prefix, *post_suffix;
    size_t n_post_prefix, n_post_suffix;
};

// ---------------------------------------------------------------------------------------------
// Small growable buffers

typedef struct { char *p; size_t n, cap; } Buf;
static void buf_reserve(Buf *b, size_t extra) {
    if (b->n + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra) cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}
static void buf_append(Buf *b, const void *src, size_t len) {
    if (!len) return;
    buf_reserve(b, len);
    memcpy(b->p + b->n, src, len);
    b->n += len;
}

typedef struct { size_t off, len; int first; } Span;  // first: starts at original offset 0
typedef struct { Span *v; size_t n, cap; } Spans;
static void spans_push(Spans *s, size_t off, size_t len, int first) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = (Span){off, len, first};
}

void tokids_push(TokIds *v, uint32_t id) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 256;
        v->ids = xrealloc(v->ids, v->cap * sizeof *v->ids);
    }
    v->ids[v->n++] = id;
}
void tokids_free(TokIds *v) {
    free(v->ids);
    memset(v, 0, sizeof *v);
}

// Per-thread working memory, reused across calls so encoding does not allocate in steady state.
typedef struct { uint32_t id; int32_t prev, next; uint32_t len; } Symbol;
typedef struct { uint64_t key; uint32_t new_id; } HeapItem;  // key = rank << 32 | position

#define CACHE_SLOTS 8192
#define CACHE_MAX_BYTES 46
#define CACHE_MAX_IDS 12
typedef struct {
    uint64_t hash;
    uint8_t len, n_ids;
    char bytes[CACHE_MAX_BYTES];
    uint32_t ids[CACHE_MAX_IDS];
} CacheEntry;

struct TokScratch {
    Buf norm, piece_a, piece_b, mapped;
    Spans spans_a, spans_b, segments;
    uint32_t *cps;
    uint8_t *flags;
    size_t *ends;
    size_t cp_cap;
    Symbol *sym;
    size_t sym_cap;
    HeapItem *heap;
    size_t heap_cap;
    CacheEntry *cache;
    const Tokenizer *cache_owner;
};

TokScratch *tokscratch_new(void) { return xcalloc(1, sizeof(TokScratch)); }
void tokscratch_free(TokScratch *s) {
    if (!s) return;
    free(s->norm.p); free(s->piece_a.p); free(s->piece_b.p); free(s->mapped.p);
    free(s->spans_a.v); free(s->spans_b.v); free(s->segments.v);
    free(s->cps); free(s->flags); free(s->ends);
    free(s->sym); free(s->heap); free(s->cache);
    free(s);
}

static void scratch_reserve_cps(TokScratch *s, size_t n) {
    if (n <= s->cp_cap) return;
    size_t cap = s->cp_cap ? s->cp_cap : 1024;
    while (cap < n) cap *= 2;
    s->cps = xrealloc(s->cps, cap * sizeof *s->cps);
    s->flags = xrealloc(s->flags, cap * sizeof *s->flags);
    s->ends = xrealloc(s->ends, cap * sizeof *s->ends);
    s->cp_cap = cap;
}

// Decodes valid UTF-8 into s->cps / s->flags; returns the code point count. (Input was
// validated once at the top of tokenizer_encode.)
static size_t decode_cps(TokScratch *s, const char *p, size_t len) {
    scratch_reserve_cps(s, len + 1);
    size_t n = 0, i = 0;
    while (i < len) {
        uint32_t cp;
        int k = utf8_decode((const unsigned char *)p + i, len - i, &cp);
        if (k <= 0) { cp = 0xFFFD; k = 1; }
        s->cps[n] = cp;
        s->flags[n] = unicode_flags(cp);
        n++;
        i += (size_t)k;
    }
    return n;
}

// ---------------------------------------------------------------------------------------------
// Byte-level alphabet (GPT-2): printable bytes map to themselves, the other 68 bytes to
// U+0100.. in increasing byte order.

static uint32_t bytelevel_char(uint8_t b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) return b;
    uint32_t k = 0;
    for (uint32_t x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE))) k++;
    return 0x100 + k;
}
// Inverse: code point -> byte, or -1.
static int bytelevel_byte(uint32_t cp) {
    if (cp < 0x100) return bytelevel_char((uint8_t)cp) == cp ? (int)cp : -1;
    if (cp >= 0x100 + 68) return -1;
    for (int b = 0; b < 256; b++)
        if (bytelevel_char((uint8_t)b) == cp) return b;
    return -1;
}

// ---------------------------------------------------------------------------------------------
// Loading

static char *json_strdup_len(json_t *v, size_t *len) {
    size_t n = json_string_length(v);
    char *s = xmalloc(n + 1);
    memcpy(s, json_string_value(v), n);
    s[n] = 0;
    if (len) *len = n;
    return s;
}

// Reads {"String": "..."} (the only pattern form our normalizers/decoders accept).
static int get_string_pattern(const char *name, const char *where, json_t *obj, char **out, size_t *len, Error *e) {
    json_t *pat = json_object_get(obj, "pattern");
    json_t *str = json_is_object(pat) ? json_object_get(pat, "String") : NULL;
    if (!json_is_string(str))
        return err_set(e, "%s: %s: only {\"String\": ...} patterns are supported", name, where);
    *out = json_strdup_len(str, len);
    return 0;
}

static int parse_normalizer(Tokenizer *t, json_t *n, Error *e) {
    if (json_is_null(n) || !n) return 0;
    const char *type = json_string_value(json_object_get(n, "type"));
    if (!type) return err_set(e, "%s: normalizer: missing \"type\"", t->name);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list)) return err_set(e, "%s: normalizer Sequence: missing \"normalizers\" array", t->name);
        for (size_t i = 0; i < json_array_size(list); i++)
            if (parse_normalizer(t, json_array_get(list, i), e)) return -1;
        return 0;
    }
    NormStep st = {0};
    if (!strcmp(type, "Replace")) {
        st.kind = NORM_REPLACE;
        if (get_string_pattern(t->name, "normalizer Replace", n, &st.pattern, &st.pattern_len, e)) return -1;
        json_t *c = json_object_get(n, "content");
        if (!json_is_string(c)) return err_set(e, "%s: normalizer Replace: missing \"content\"", t->name);
        if (!st.pattern_len) return err_set(e, "%s: normalizer Replace: empty pattern", t->name);
        st.content = json_strdup_len(c, &st.content_len);
    } else if (!strcmp(type, "Prepend")) {
        st.kind = NORM_PREPEND;
        json_t *c = json_object_get(n, "prepend");
        if (!json_is_string(c)) return err_set(e, "%s: normalizer Prepend: missing \"prepend\"", t->name);
        st.content = json_strdup_len(c, &st.content_len);
    } else {
        return err_set(e, "%s: normalizer type '%s' is not supported", t->name, type);
    }
    t->norm = xrealloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *t->norm);
    t->norm[t->n_norm++] = st;
    return 0;
}

static int parse_behavior(const Tokenizer *t, json_t *v, SplitBehavior *b, Error *e) {
    const char *s = json_string_value(v);
    if (!s) return err_set(e, "%s: pre_tokenizer Split: missing \"behavior\"", t->name);
    if (!strcmp(s, "Removed")) *b = SPLIT_REMOVED;
    else if (!strcmp(s, "Isolated")) *b = SPLIT_ISOLATED;
    else if (!strcmp(s, "MergedWithPrevious")) *b = SPLIT_MERGED_PREV;
    else if (!strcmp(s, "MergedWithNext")) *b = SPLIT_MERGED_NEXT;
    else if (!strcmp(s, "Contiguous")) *b = SPLIT_CONTIGUOUS;
    else return err_set(e, "%s: pre_tokenizer Split: unknown behavior '%s'", t->name, s);
    return 0;
}

static int parse_prepend_scheme(const Tokenizer *t, json_t *obj, PrependScheme *p, Error *e) {
    json_t *ps = json_object_get(obj, "prepend_scheme");
    if (json_is_string(ps)) {
        const char *s = json_string_value(ps);
        if (!strcmp(s, "always")) *p = PREPEND_ALWAYS;
        else if (!strcmp(s, "first")) *p = PREPEND_FIRST;
        else if (!strcmp(s, "never")) *p = PREPEND_NEVER;
        else return err_set(e, "%s: Metaspace: unknown prepend_scheme '%s'", t->name, s);
    } else {  // older files: add_prefix_space boolean
        *p = json_is_false(json_object_get(obj, "add_prefix_space")) ? PREPEND_NEVER : PREPEND_ALWAYS;
    }
    return 0;
}

static int get_replacement_char(const Tokenizer *t, json_t *obj, uint32_t *cp, Error *e) {
    json_t *r = json_object_get(obj, "replacement");
    if (!json_is_string(r)) return err_set(e, "%s: Metaspace: missing \"replacement\"", t->name);
    const unsigned char *s = (const unsigned char *)json_string_value(r);
    size_t len = json_string_length(r);
    if (!len || utf8_decode(s, len, cp) != (int)len)
        return err_set(e, "%s: Metaspace: \"replacement\" must be one character", t->name);
    return 0;
}

static int parse_pretok(Tokenizer *t, json_t *p, Error *e) {
    if (!p || json_is_null(p)) return 0;
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) return err_set(e, "%s: pre_tokenizer: missing \"type\"", t->name);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(p, "pretokenizers");
        if (!json_is_array(list))
            return err_set(e, "%s: pre_tokenizer Sequence: missing \"pretokenizers\" array", t->name);
        for (size_t i = 0; i < json_array_size(list); i++)
            if (parse_pretok(t, json_array_get(list, i), e)) return -1;
        return 0;
    }
    PreTokStep st = {0};
    if (!strcmp(type, "Split")) {
        if (json_is_true(json_object_get(p, "invert")))
            return err_set(e, "%s: pre_tokenizer Split: invert=true is not supported", t->name);
        if (parse_behavior(t, json_object_get(p, "behavior"), &st.behavior, e)) return -1;
        json_t *pat = json_object_get(p, "pattern");
        json_t *re = json_is_object(pat) ? json_object_get(pat, "Regex") : NULL;
        json_t *str = json_is_object(pat) ? json_object_get(pat, "String") : NULL;
        if (json_is_string(re)) {
            st.kind = PT_REGEX;
            if (pretok_regex_lookup(json_string_value(re), &st.regex))
                return err_set(
                    e,
                    "%s: pre_tokenizer Split: regex is not one of the supported patterns (GPT-2, Llama 3, Qwen 2): %.80s",
                    t->name, json_string_value(re));
        } else if (json_is_string(str)) {
            st.kind = PT_STRING;
            st.pattern = json_strdup_len(str, &st.pattern_len);
            if (!st.pattern_len) return err_set(e, "%s: pre_tokenizer Split: empty pattern", t->name);
        } else {
            return err_set(e, "%s: pre_tokenizer Split: missing \"pattern\" (Regex or String)", t->name);
        }
    } else if (!strcmp(type, "ByteLevel")) {
        st.kind = PT_BYTELEVEL;
        st.add_prefix_space = json_is_true(json_object_get(p, "add_prefix_space"));
        json_t *ur = json_object_get(p, "use_regex");
        st.use_regex = ur ? json_is_true(ur) : 1;
        st.regex = PRETOK_REGEX_GPT2;
        st.behavior = SPLIT_ISOLATED;
    } else if (!strcmp(type, "Metaspace")) {
        st.kind = PT_METASPACE;
        uint32_t cp;
        if (get_replacement_char(t, p, &cp, e)) return -1;
        st.pattern = xmalloc(5);
        st.pattern_len = (size_t)utf8_encode(cp, st.pattern);
        st.pattern[st.pattern_len] = 0;
        if (parse_prepend_scheme(t, p, &st.prepend_scheme, e)) return -1;
        json_t *sp = json_object_get(p, "split");
        st.split = sp ? json_is_true(sp) : 1;
    } else if (!strcmp(type, "Digits")) {
        st.kind = PT_DIGITS;
        st.individual_digits = json_is_true(json_object_get(p, "individual_digits"));
    } else {
        return err_set(e, "%s: pre_tokenizer type '%s' is not supported", t->name, type);
    }
    t->pretok = xrealloc(t->pretok, (size_t)(t->n_pretok + 1) * sizeof *t->pretok);
    t->pretok[t->n_pretok++] = st;
    return 0;
}

static int parse_decoder(Tokenizer *t, json_t *d, Error *e) {
    if (!d || json_is_null(d)) return 0;
    t->has_decoder = 1;
    const char *type = json_string_value(json_object_get(d, "type"));
    if (!type) return err_set(e, "%s: decoder: missing \"type\"", t->name);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(d, "decoders");
        if (!json_is_array(list)) return err_set(e, "%s: decoder Sequence: missing \"decoders\" array", t->name);
        for (size_t i = 0; i < json_array_size(list); i++)
            if (parse_decoder(t, json_array_get(list, i), e)) return -1;
        return 0;
    }
    DecStep st = {0};
    if (!strcmp(type, "ByteLevel")) st.kind = DEC_BYTELEVEL;
    else if (!strcmp(type, "ByteFallback")) st.kind = DEC_BYTEFALLBACK;
    else if (!strcmp(type, "Fuse")) st.kind = DEC_FUSE;
    else if (!strcmp(type, "Replace")) {
        st.kind = DEC_REPLACE;
        if (get_string_pattern(t->name, "decoder Replace", d, &st.pattern, &st.pattern_len, e)) return -1;
        json_t *c = json_object_get(d, "content");
        if (!json_is_string(c)) return err_set(e, "%s: decoder Replace: missing \"content\"", t->name);
        if (!st.pattern_len) return err_set(e, "%s: decoder Replace: empty pattern", t->name);
        st.content = json_strdup_len(c, &st.content_len);
    } else if (!strcmp(type, "Strip")) {
        st.kind = DEC_STRIP;
        json_t *c = json_object_get(d, "content");
        const unsigned char *cs = (const unsigned char *)json_string_value(c);
        if (!cs || utf8_decode(cs, json_string_length(c), &st.strip_char) != (int)json_string_length(c))
            return err_set(e, "%s: decoder Strip: \"content\" must be one character", t->name);
        st.strip_start = (int)json_integer_value(json_object_get(d, "start"));
        st.strip_stop = (int)json_integer_value(json_object_get(d, "stop"));
    } else if (!strcmp(type, "Metaspace")) {
        st.kind = DEC_METASPACE;
        if (get_replacement_char(t, d, &st.replacement, e)) return -1;
        if (parse_prepend_scheme(t, d, &st.prepend_scheme, e)) return -1;
    } else {
        return err_set(e, "%s: decoder type '%s' is not supported", t->name, type);
    }
    t->dec = xrealloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *t->dec);
    t->dec[t->n_dec++] = st;
    return 0;
}

static void ids_append(uint32_t **v, size_t *n, uint32_t id) {
    *v = xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = id;
}

// Looks up the ids of a template's special token ("special_tokens": {name: {"ids": [...]}}).
static int template_special_ids(Tokenizer *t, json_t *specials, const char *name, uint32_t **v, size_t *n, Error *e) {
    json_t *entry = json_object_get(specials, name);
    json_t *ids = entry ? json_object_get(entry, "ids") : NULL;
    if (!json_is_array(ids)) return err_set(e, "%s: post_processor: special token '%s' has no \"ids\"", t->name, name);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        json_int_t id = json_integer_value(json_array_get(ids, i));
        if (id < 0 || id >= (json_int_t)t->vocab_size)
            return err_set(e, "%s: post_processor: id %lld of '%s' is out of the vocabulary", t->name, (long long)id,
                           name);
        ids_append(v, n, (uint32_t)id);
    }
    return 0;
}

static int parse_post(Tokenizer *t, json_t *p, Error *e) {
    if (!p || json_is_null(p)) return 0;
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) return err_set(e, "%s: post_processor: missing \"type\"", t->name);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(p, "processors");
        if (!json_is_array(list))
            return err_set(e, "%s: post_processor Sequence: missing \"processors\" array", t->name);
        for (size_t i = 0; i < json_array_size(list); i++)
            if (parse_post(t, json_array_get(list, i), e)) return -1;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) return 0;  // only adjusts offsets
    if (!strcmp(type, "TemplateProcessing")) {
        json_t *single = json_object_get(p, "single");
        json_t *specials = json_object_get(p, "special_tokens");
        if (!json_is_array(single))
            return err_set(e, "%s: post_processor TemplateProcessing: missing \"single\"", t->name);
        int seen_seq = 0;
        for (size_t i = 0; i < json_array_size(single); i++) {
            json_t *item = json_array_get(single, i);
            json_t *sp = json_object_get(item, "SpecialToken");
            if (json_object_get(item, "Sequence")) { seen_seq = 1; continue; }
            const char *name = json_string_value(json_object_get(sp, "id"));
            if (!name)
                return err_set(e, "%s: post_processor TemplateProcessing: bad item %zu in \"single\"", t->name, i);
            if (seen_seq ? template_special_ids(t, specials, name, &t->post_suffix, &t->n_post_suffix, e)
                         : template_special_ids(t, specials, name, &t->post_prefix, &t->n_post_prefix, e))
                return -1;
        }
        return 0;
    }
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        json_t *cls = json_object_get(p, "cls"), *sep = json_object_get(p, "sep");
        if (!json_is_array(cls) || !json_is_array(sep))
            return err_set(e, "%s: post_processor %s: missing \"cls\"/\"sep\"", t->name, type);
        ids_append(&t->post_prefix, &t->n_post_prefix, (uint32_t)json_integer_value(json_array_get(cls, 1)));
        ids_append(&t->post_suffix, &t->n_post_suffix, (uint32_t)json_integer_value(json_array_get(sep, 1)));
        return 0;
    }
    return err_set(e, "%s: post_processor type '%s' is not supported", t->name, type);
}

static void trie_init(Trie *tr) {
    u64map_init(&tr->edges, 64);
    tr->cap_nodes = 64;
    tr->terminal = xmalloc(tr->cap_nodes * sizeof *tr->terminal);
    tr->terminal[0] = -1;
    tr->n_nodes = 1;
    memset(tr->first_byte, 0, sizeof tr->first_byte);
}
static void trie_free(Trie *tr) {
    u64map_free(&tr->edges);
    free(tr->terminal);
}
static void trie_add(Trie *tr, const char *s, size_t len, int32_t value) {
    uint64_t node = 0;
    tr->first_byte[(uint8_t)s[0]] = 1;
    for (size_t i = 0; i < len; i++) {
        uint64_t key = node << 8 | (uint8_t)s[i], child;
        if (!u64map_get(&tr->edges, key, &child)) {
            if (tr->n_nodes == tr->cap_nodes) {
                tr->cap_nodes *= 2;
                tr->terminal = xrealloc(tr->terminal, tr->cap_nodes * sizeof *tr->terminal);
            }
            child = tr->n_nodes++;
            tr->terminal[child] = -1;
            u64map_put(&tr->edges, key, child);
        }
        node = child;
    }
    tr->terminal[node] = value;
}
// Longest added token starting at text[i]; returns its index in added[] or -1 (and *len).
static int32_t trie_longest(const Trie *tr, const char *text, size_t len, size_t i, size_t *match_len) {
    if (!tr->first_byte[(uint8_t)text[i]]) return -1;
    uint64_t node = 0;
    int32_t best = -1;
    for (size_t j = i; j < len; j++) {
        uint64_t child;
        if (!u64map_get(&tr->edges, node << 8 | (uint8_t)text[j], &child)) break;
        node = child;
        if (tr->terminal[node] >= 0) {
            best = tr->terminal[node];
            *match_len = j + 1 - i;
        }
    }
    return best;
}

static int parse_added(Tokenizer *t, json_t *list, Error *e) {
    if (!list || json_is_null(list)) return 0;
    if (!json_is_array(list)) return err_set(e, "%s: \"added_tokens\" must be an array", t->name);
    size_t n = json_array_size(list);
    t->added = xcalloc(n ? n : 1, sizeof *t->added);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(list, i);
        json_t *id = json_object_get(a, "id"), *content = json_object_get(a, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > 0x7FFFFFFF)
            return err_set(e, "%s: added_tokens[%zu]: missing or invalid \"id\"", t->name, i);
        if (!json_is_string(content) || !json_string_length(content))
            return err_set(e, "%s: added_tokens[%zu]: missing or empty \"content\"", t->name, i);
        if (json_is_true(json_object_get(a, "single_word")))
            return err_set(e, "%s: added_tokens[%zu]: single_word=true is not supported", t->name, i);
        AddedToken *at = &t->added[t->n_added++];
        at->id = (uint32_t)json_integer_value(id);
        at->content = json_strdup_len(content, &at->len);
        at->special = json_is_true(json_object_get(a, "special"));
        json_t *norm = json_object_get(a, "normalized");
        at->normalized = norm ? json_is_true(norm) : !at->special;
        at->lstrip = json_is_true(json_object_get(a, "lstrip"));
        at->rstrip = json_is_true(json_object_get(a, "rstrip"));
    }
    return 0;
}

static int parse_model(Tokenizer *t, json_t *m, size_t text_len, Error *e) {
    if (!json_is_object(m)) return err_set(e, "%s: missing \"model\" object", t->name);
    const char *type = json_string_value(json_object_get(m, "type"));
    json_t *vocab = json_object_get(m, "vocab"), *merges = json_object_get(m, "merges");
    if (type && strcmp(type, "BPE"))
        return err_set(e, "%s: model type '%s' is not supported (only BPE)", t->name, type);
    if (!json_is_object(vocab)) return err_set(e, "%s: model: missing \"vocab\" object", t->name);
    if (!json_is_array(merges)) return err_set(e, "%s: model: missing \"merges\" array", t->name);
    if (json_is_number(json_object_get(m, "dropout")) && json_number_value(json_object_get(m, "dropout")) > 0)
        return err_set(e, "%s: model: BPE dropout is not supported", t->name);
    t->byte_fallback = json_is_true(json_object_get(m, "byte_fallback"));
    t->ignore_merges = json_is_true(json_object_get(m, "ignore_merges"));
    t->fuse_unk = json_is_true(json_object_get(m, "fuse_unk"));
    json_t *cp = json_object_get(m, "continuing_subword_prefix");
    json_t *sf = json_object_get(m, "end_of_word_suffix");
    if (json_is_string(cp)) t->cont_prefix = json_strdup_len(cp, &t->cont_prefix_len);
    if (json_is_string(sf)) t->word_suffix = json_strdup_len(sf, &t->word_suffix_len);

    // vocab
    strmap_init(&t->vocab, (uint32_t)json_object_size(vocab));
    const char *key;
    json_t *val;
    uint32_t max_id = 0;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) > 0x7FFFFFFF)
            return err_set(e, "%s: model.vocab: token '%.40s' has an invalid id", t->name, key);
        uint32_t id = (uint32_t)json_integer_value(val);
        strmap_put(&t->vocab, key, strlen(key), id);
        if (id > max_id) max_id = id;
    }
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id > max_id) max_id = t->added[i].id;
    // The id table has max_id + 1 slots; each id takes several bytes of the file, so an id beyond the file's size
    // is a corrupt file, not a reason to allocate gigabytes.
    if (max_id >= text_len)
        return err_set(e, "%s: token id %u is absurd for a %zu-byte file (ids are at most one per byte)", t->name,
                       max_id, text_len);
    t->vocab_size = max_id + 1;
    t->id_token = xcalloc(t->vocab_size, sizeof *t->id_token);
    t->id_token_len = xcalloc(t->vocab_size, sizeof *t->id_token_len);
    json_object_foreach(vocab, key, val) {
        uint32_t id = (uint32_t)json_integer_value(val);
        if (t->id_token[id]) return err_set(e, "%s: model.vocab: id %u is used twice", t->name, id);
        t->id_token_len[id] = strlen(key);
        t->id_token[id] = xstrdup(key);
    }

    t->unk_id = -1;
    json_t *unk = json_object_get(m, "unk_token");
    if (json_is_string(unk)) {
        uint32_t id;
        if (!strmap_get(&t->vocab, json_string_value(unk), json_string_length(unk), &id))
            return err_set(e, "%s: model: unk_token '%s' is not in the vocab", t->name, json_string_value(unk));
        t->unk_id = id;
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        uint32_t id;
        t->byte_ids[b] = strmap_get(&t->vocab, name, 6, &id) ? (int64_t)id : -1;
    }

    // merges: rank = position in the list; "a b" strings or ["a", "b"] pairs
    size_t n_merges = json_array_size(merges);
    u64map_init(&t->merges, n_merges);
    for (size_t r = 0; r < n_merges; r++) {
        json_t *mv = json_array_get(merges, r);
        const char *a, *b;
        size_t alen, blen;
        if (json_is_string(mv)) {
            const char *s = json_string_value(mv);
            const char *sp = strchr(s, ' ');
            if (!sp) return err_set(e, "%s: model.merges[%zu]: '%.40s' is not \"a b\"", t->name, r, s);
            a = s;
            alen = (size_t)(sp - s);
            b = sp + 1;
            blen = json_string_length(mv) - alen - 1;
        } else if (json_is_array(mv) && json_array_size(mv) == 2 && json_is_string(json_array_get(mv, 0)) &&
                   json_is_string(json_array_get(mv, 1))) {
            a = json_string_value(json_array_get(mv, 0));
            alen = json_string_length(json_array_get(mv, 0));
            b = json_string_value(json_array_get(mv, 1));
            blen = json_string_length(json_array_get(mv, 1));
        } else {
            return err_set(e, "%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", t->name, r);
        }
        uint32_t ida, idb, idm;
        char *joined = xmalloc(alen + blen + 1);
        memcpy(joined, a, alen);
        memcpy(joined + alen, b, blen);
        int ok = strmap_get(&t->vocab, a, alen, &ida) && strmap_get(&t->vocab, b, blen, &idb) &&
                 strmap_get(&t->vocab, joined, alen + blen, &idm);
        free(joined);
        if (!ok) return err_set(e, "%s: model.merges[%zu]: a token of the merge is not in the vocab", t->name, r);
        u64map_put(&t->merges, (uint64_t)ida << 32 | idb, (uint64_t)r << 32 | idm);
    }
    return 0;
}

Tokenizer *tokenizer_load_json(const char *text, size_t len, const char *name, Error *e) {
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root) {
        err_set(e, "%s: invalid JSON at line %d: %s", name, jerr.line, jerr.text);
        return NULL;
    }
    Tokenizer *t = xcalloc(1, sizeof *t);
    t->name = xstrdup(name);
    int rc = -1;
    if (!json_is_object(root)) { err_set(e, "%s: top level is not a JSON object", name); goto done; }
    if (parse_added(t, json_object_get(root, "added_tokens"), e)) goto done;
    if (parse_model(t, json_object_get(root, "model"), len, e)) goto done;
    if (parse_normalizer(t, json_object_get(root, "normalizer"), e)) goto done;
    if (parse_pretok(t, json_object_get(root, "pre_tokenizer"), e)) goto done;
    if (parse_decoder(t, json_object_get(root, "decoder"), e)) goto done;
    if (parse_post(t, json_object_get(root, "post_processor"), e)) goto done;

    // Added tokens: content lookup, specials, and the two tries (raw text / normalized text).
    strmap_init(&t->added_by_content, (uint32_t)t->n_added + 1);
    t->is_special_id = xcalloc(t->vocab_size, 1);
    trie_init(&t->trie_raw);
    trie_init(&t->trie_norm);
    for (int i = 0; i < t->n_added; i++) {
        AddedToken *a = &t->added[i];
        strmap_put(&t->added_by_content, a->content, a->len, a->id);
        if (a->special) t->is_special_id[a->id] = 1;
        // Without a normalizer, matching before or after normalization is the same.
        trie_add(a->normalized && t->n_norm ? &t->trie_norm : &t->trie_raw, a->content, a->len, i);
        if (!t->id_token[a->id]) {
            t->id_token[a->id] = xstrdup(a->content);
            t->id_token_len[a->id] = a->len;
        }
    }
    rc = 0;
done:
    json_decref(root);
    if (rc) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

Tokenizer *tokenizer_load(const char *path, Error *e) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(e, "%s: cannot open tokenizer: %s", path, strerror(errno));
        return NULL;
    }
    Buf b = {0};
    char chunk[1 << 16];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) buf_append(&b, chunk, got);
    if (ferror(f)) {  // e.g. a directory: fopen succeeds, reading fails with EISDIR
        err_set(e, "%s: cannot read tokenizer: %s", path, strerror(errno));
        fclose(f);
        free(b.p);
        return NULL;
    }
    fclose(f);
    Tokenizer *t = tokenizer_load_json(b.p ? b.p : "", b.n, path, e);
    free(b.p);
    return t;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    strmap_free(&t->vocab);
    if (t->merges.keys) u64map_free(&t->merges);
    for (uint32_t i = 0; i < t->vocab_size && t->id_token; i++) free(t->id_token[i]);
    free(t->id_token);
    free(t->id_token_len);
    for (int i = 0; i < t->n_norm; i++) { free(t->norm[i].pattern); free(t->norm[i].content); }
    free(t->norm);
    for (int i = 0; i < t->n_pretok; i++) free(t->pretok[i].pattern);
    free(t->pretok);
    for (int i = 0; i < t->n_dec; i++) { free(t->dec[i].pattern); free(t->dec[i].content); }
    free(t->dec);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    if (t->added_by_content.slots) strmap_free(&t->added_by_content);
    free(t->is_special_id);
    if (t->trie_raw.terminal) trie_free(&t->trie_raw);
    if (t->trie_norm.terminal) trie_free(&t->trie_norm);
    free(t->post_prefix);
    free(t->post_suffix);
    free(t->cont_prefix);
    free(t->word_suffix);
    free(t->name);
    free(t);
}

uint32_t tokenizer_vocab_size(const Tokenizer *t) { return t->vocab_size; }

const char *tokenizer_id_to_token(const Tokenizer *t, uint32_t id, size_t *len) {
    if (id >= t->vocab_size || !t->id_token[id]) return NULL;
    if (len) *len = t->id_token_len[id];
    return t->id_token[id];
}

int64_t tokenizer_token_to_id(const Tokenizer *t, const char *token, size_t len) {
    uint32_t id;
    if (strmap_get(&t->added_by_content, token, len, &id)) return id;
    if (strmap_get(&t->vocab, token, len, &id)) return id;
    return -1;
}

const uint32_t *tokenizer_post_prefix(const Tokenizer *t, size_t *n) { *n = t->n_post_prefix; return t->post_prefix; }
const uint32_t *tokenizer_post_suffix(const Tokenizer *t, size_t *n) { *n = t->n_post_suffix; return t->post_suffix; }

// ---------------------------------------------------------------------------------------------
// Encoding: splitting a piece by matches with HF's five delimiter behaviours

typedef struct { size_t start, end; int is_match; } Interval;
typedef struct { Interval *v; size_t n, cap; } Intervals;
static void iv_push(Intervals *iv, size_t start, size_t end, int is_match) {
    if (start == end) return;
    if (iv->n == iv->cap) {
        iv->cap = iv->cap ? iv->cap * 2 : 64;
        iv->v = xrealloc(iv->v, iv->cap * sizeof *iv->v);
    }
    iv->v[iv->n++] = (Interval){start, end, is_match};
}

// Emits the pieces of src[off..off+len) into out (bytes appended to ob) following behavior.
// iv covers the piece in order (offsets relative to the piece).
static void emit_split(const char *piece, int first, Intervals *iv, SplitBehavior behavior, Buf *ob, Spans *out) {
    size_t n = 0;
    Interval *v = iv->v;
    // Rewrites v in place into the final list of pieces (is_match unused afterwards).
    if (behavior == SPLIT_ISOLATED) {
        n = iv->n;
    } else if (behavior == SPLIT_REMOVED) {
        for (size_t i = 0; i < iv->n; i++)
            if (!v[i].is_match) v[n++] = v[i];
    } else if (behavior == SPLIT_MERGED_PREV || behavior == SPLIT_CONTIGUOUS) {
        int prev_match = 0;
        for (size_t i = 0; i < iv->n; i++) {
            Interval cur = v[i];
            int merge = behavior == SPLIT_MERGED_PREV ? (cur.is_match && !prev_match) : (cur.is_match == prev_match);
            if (merge && n) v[n - 1].end = cur.end;
            else v[n++] = cur;
            prev_match = cur.is_match;
        }
    } else {  // SPLIT_MERGED_NEXT: the same fold from the right
        int prev_match = 0;
        size_t w = iv->n;  // fill from the back
        for (size_t i = iv->n; i-- > 0;) {
            Interval cur = v[i];
            if (cur.is_match && !prev_match && w < iv->n) v[w].start = cur.start;
            else v[--w] = cur;
            prev_match = cur.is_match;
        }
        memmove(v, v + w, (iv->n - w) * sizeof *v);
        n = iv->n - w;
    }
    for (size_t i = 0; i < n; i++) {
        size_t off = ob->n;
        buf_append(ob, piece + v[i].start, v[i].end - v[i].start);
        spans_push(out, off, v[i].end - v[i].start, first && v[i].start == 0);
    }
}

// Intervals of the literal pattern in piece (non-overlapping, left to right).
static void find_literal(const char *piece, size_t len, const char *pat, size_t plen, Intervals *iv) {
    size_t i = 0, last = 0;
    while (plen && i + plen <= len) {
        if (!memcmp(piece + i, pat, plen)) {
            iv_push(iv, last, i, 0);
            iv_push(iv, i, i + plen, 1);
            i += plen;
            last = i;
        } else {
            i++;
        }
    }
    iv_push(iv, last, len, 0);
}

// Replaces every occurrence of pat in src with rep, writing to dst (cleared first).
static void replace_all(const char *src, size_t len, const char *pat, size_t plen, const char *rep, size_t rlen,
                        Buf *dst) {
    dst->n = 0;
    buf_reserve(dst, len + 16);
    size_t i = 0, last = 0;
    while (i + plen <= len) {
        if (!memcmp(src + i, pat, plen)) {
            buf_append(dst, src + last, i - last);
            buf_append(dst, rep, rlen);
            i += plen;
            last = i;
        } else {
            i++;
        }
    }
    buf_append(dst, src + last, len - last);
}

typedef struct {
    Intervals iv;
    Buf tmp;
} SplitScratch;

// Applies one pre-tokenizer step to every piece: (a, sa) -> (b, sb).
static void pretok_step(const Tokenizer *t, const PreTokStep *st, TokScratch *s, SplitScratch *ss,
                        const Buf *a, const Spans *sa, Buf *b, Spans *sb) {
    b->n = 0;
    sb->n = 0;
    for (size_t k = 0; k < sa->n; k++) {
        const char *piece = a->p + sa->v[k].off;
        size_t len = sa->v[k].len;
        int first = sa->v[k].first;
        ss->iv.n = 0;
        if (st->kind == PT_METASPACE) {
            // Replace spaces, maybe prepend the replacement, then split before each replacement.
            replace_all(piece, len, " ", 1, st->pattern, st->pattern_len, &ss->tmp);
            int starts = ss->tmp.n >= st->pattern_len && !memcmp(ss->tmp.p, st->pattern, st->pattern_len);
            if (!starts && (st->prepend_scheme == PREPEND_ALWAYS || (st->prepend_scheme == PREPEND_FIRST && first))) {
                buf_reserve(&ss->tmp, st->pattern_len);
                memmove(ss->tmp.p + st->pattern_len, ss->tmp.p, ss->tmp.n);
                memcpy(ss->tmp.p, st->pattern, st->pattern_len);
                ss->tmp.n += st->pattern_len;
            }
            if (st->split) find_literal(ss->tmp.p, ss->tmp.n, st->pattern, st->pattern_len, &ss->iv);
            else iv_push(&ss->iv, 0, ss->tmp.n, 0);
            emit_split(ss->tmp.p, first, &ss->iv, st->split ? SPLIT_MERGED_NEXT : SPLIT_ISOLATED, b, sb);
            continue;
        }
        if (st->kind == PT_BYTELEVEL && st->add_prefix_space && (len == 0 || piece[0] != ' ')) {
            ss->tmp.n = 0;
            buf_append(&ss->tmp, " ", 1);
            buf_append(&ss->tmp, piece, len);
            piece = ss->tmp.p;
            len = ss->tmp.n;
        }
        if (st->kind == PT_STRING) {
            find_literal(piece, len, st->pattern, st->pattern_len, &ss->iv);
        } else if (st->kind == PT_REGEX || (st->kind == PT_BYTELEVEL && st->use_regex)) {
            size_t ncp = decode_cps(s, piece, len);
            size_t nm = pretok_regex_split(st->regex, s->cps, s->flags, ncp, s->ends);
            // Convert code-point ends to byte offsets by walking the piece once.
            size_t cp_i = 0, byte_i = 0, start = 0;
            for (size_t m = 0; m < nm; m++) {
                while (cp_i < s->ends[m]) {
                    uint32_t cp;
                    int kb = utf8_decode((const unsigned char *)piece + byte_i, len - byte_i, &cp);
                    byte_i += kb > 0 ? (size_t)kb : 1;
                    cp_i++;
                }
                iv_push(&ss->iv, start, byte_i, 1);
                start = byte_i;
            }
        } else if (st->kind == PT_DIGITS) {
            size_t i = 0, last = 0;
            while (i < len) {
                uint32_t cp;
                int kb = utf8_decode((const unsigned char *)piece + i, len - i, &cp);
                if (kb <= 0) kb = 1;
                if (unicode_flags(cp) & UF_NUMBER) {
                    iv_push(&ss->iv, last, i, 0);
                    iv_push(&ss->iv, i, i + (size_t)kb, 1);
                    last = i + (size_t)kb;
                }
                i += (size_t)kb;
            }
            iv_push(&ss->iv, last, len, 0);
        } else {
            iv_push(&ss->iv, 0, len, 0);
        }
        SplitBehavior beh = st->kind == PT_DIGITS ? (st->individual_digits ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS)
                          : st->kind == PT_BYTELEVEL ? SPLIT_ISOLATED : st->behavior;
        if (st->kind != PT_BYTELEVEL) {
            emit_split(piece, first, &ss->iv, beh, b, sb);
            continue;
        }
        // ByteLevel: split, then map every byte of every new piece to its alphabet character.
        size_t from = sb->n;
        emit_split(piece, first, &ss->iv, beh, &s->mapped, sb);
        for (size_t q = from; q < sb->n; q++) {
            size_t off = b->n;
            const unsigned char *src = (const unsigned char *)s->mapped.p + sb->v[q].off;
            buf_reserve(b, 2 * sb->v[q].len);
            for (size_t j = 0; j < sb->v[q].len; j++) {
                uint32_t c = bytelevel_char(src[j]);
                b->n += (size_t)utf8_encode(c, b->p + b->n);
            }
            sb->v[q].off = off;
            sb->v[q].len = b->n - off;
        }
        s->mapped.n = 0;
    }
    (void)t;
}

// ---------------------------------------------------------------------------------------------
// The BPE model on one piece

static void heap_push(TokScratch *s, size_t *n, uint64_t key, uint32_t new_id) {
    if (*n == s->heap_cap) {
        s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 256;
        s->heap = xrealloc(s->heap, s->heap_cap * sizeof *s->heap);
    }
    HeapItem *h = s->heap;
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h[parent].key <= key) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = (HeapItem){key, new_id};
}

static HeapItem heap_pop(TokScratch *s, size_t *n) {
    HeapItem *h = s->heap;
    HeapItem top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1].key < h[c].key) c++;
        if (last.key <= h[c].key) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static void push_pair(const Tokenizer *t, TokScratch *s, size_t *hn, int32_t pos) {
    Symbol *sym = s->sym;
    int32_t next = sym[pos].next;
    if (next < 0) return;
    uint64_t m;
    if (u64map_get(&t->merges, (uint64_t)sym[pos].id << 32 | sym[next].id, &m))
        heap_push(s, hn, (m & 0xFFFFFFFF00000000ULL) | (uint32_t)pos, (uint32_t)m);
}

static void add_symbol(TokScratch *s, size_t *n, uint32_t id, uint32_t len) {
    if (*n == s->sym_cap) {
        s->sym_cap = s->sym_cap ? s->sym_cap * 2 : 256;
        s->sym = xrealloc(s->sym, s->sym_cap * sizeof *s->sym);
    }
    int32_t i = (int32_t)*n;
    s->sym[i] = (Symbol){id, i - 1, -1, len};
    if (i > 0) s->sym[i - 1].next = i;
    (*n)++;
}

// Runs BPE on piece, appending ids; mirrors tokenizers' BPE::merge_word + Word::merge_all.
static void bpe_word(const Tokenizer *t, TokScratch *s, const char *piece, size_t len, TokIds *out) {
    uint32_t id;
    if (!len) return;
    if (t->ignore_merges && strmap_get(&t->vocab, piece, len, &id)) {
        tokids_push(out, id);
        return;
    }
    size_t n = 0;
    int64_t unk = -1;
    uint32_t unk_len = 0;
    char tmp[64];
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int kb = utf8_decode((const unsigned char *)piece + i, len - i, &cp);
        size_t clen = kb > 0 ? (size_t)kb : 1;
        int is_first = i == 0, is_last = i + clen == len;
        const char *key = piece + i;
        size_t key_len = clen;
        if ((!is_first && t->cont_prefix_len) || (is_last && t->word_suffix_len)) {
            size_t p = 0;
            if (!is_first && t->cont_prefix_len + clen + t->word_suffix_len <= sizeof tmp) {
                memcpy(tmp, t->cont_prefix, t->cont_prefix_len);
                p = t->cont_prefix_len;
            }
            memcpy(tmp + p, piece + i, clen);
            p += clen;
            if (is_last && p + t->word_suffix_len <= sizeof tmp) {
                memcpy(tmp + p, t->word_suffix, t->word_suffix_len);
                p += t->word_suffix_len;
            }
            key = tmp;
            key_len = p;
        }
        if (strmap_get(&t->vocab, key, key_len, &id)) {
            if (unk >= 0) { add_symbol(s, &n, (uint32_t)unk, unk_len); unk = -1; }
            add_symbol(s, &n, id, (uint32_t)clen);
        } else {
            int all_bytes = t->byte_fallback;
            for (size_t j = 0; all_bytes && j < key_len; j++) all_bytes = t->byte_ids[(uint8_t)key[j]] >= 0;
            if (all_bytes) {
                for (size_t j = 0; j < key_len; j++) add_symbol(s, &n, (uint32_t)t->byte_ids[(uint8_t)key[j]], 1);
            } else if (t->unk_id >= 0) {
                if (unk >= 0 && t->fuse_unk) {
                    unk_len += (uint32_t)clen;
                } else {
                    if (unk >= 0) add_symbol(s, &n, (uint32_t)unk, unk_len);
                    unk = t->unk_id;
                    unk_len = (uint32_t)clen;
                }
            }
        }
        i += clen;
    }
    if (unk >= 0) add_symbol(s, &n, (uint32_t)unk, unk_len);

    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(t, s, &hn, (int32_t)i);
    Symbol *sym = s->sym;
    while (hn) {
        HeapItem top = heap_pop(s, &hn);
        int32_t pos = (int32_t)(uint32_t)top.key;
        if (sym[pos].len == 0 || sym[pos].next < 0) continue;
        int32_t next = sym[pos].next;
        uint64_t m;
        // Stale entry: one side was merged since this pair was queued.
        if (!u64map_get(&t->merges, (uint64_t)sym[pos].id << 32 | sym[next].id, &m) || (uint32_t)m != top.new_id)
            continue;
        sym[pos].id = top.new_id;
        sym[pos].len += sym[next].len;
        sym[pos].next = sym[next].next;
        sym[next].len = 0;
        if (sym[pos].next >= 0) sym[sym[pos].next].prev = pos;
        if (sym[pos].prev >= 0) push_pair(t, s, &hn, sym[pos].prev);
        push_pair(t, s, &hn, pos);
    }
    for (size_t i = 0; i < n; i++)
        if (sym[i].len) tokids_push(out, sym[i].id);
}

// bpe_word behind a per-thread cache of short pieces (most words repeat).
static void bpe_cached(const Tokenizer *t, TokScratch *s, const char *piece, size_t len, TokIds *out) {
    if (len > CACHE_MAX_BYTES) {
        bpe_word(t, s, piece, len, out);
        return;
    }
    if (!s->cache || s->cache_owner != t) {
        if (!s->cache) s->cache = xmalloc(CACHE_SLOTS * sizeof *s->cache);
        memset(s->cache, 0, CACHE_SLOTS * sizeof *s->cache);
        s->cache_owner = t;
    }
    uint64_t h = hash_bytes(piece, len) | 1;
    CacheEntry *ce = &s->cache[h & (CACHE_SLOTS - 1)];
    if (ce->hash == h && ce->len == len && !memcmp(ce->bytes, piece, len)) {
        for (int i = 0; i < ce->n_ids; i++) tokids_push(out, ce->ids[i]);
        return;
    }
    size_t before = out->n;
    bpe_word(t, s, piece, len, out);
    size_t produced = out->n - before;
    if (produced <= CACHE_MAX_IDS) {
        ce->hash = h;
        ce->len = (uint8_t)len;
        memcpy(ce->bytes, piece, len);
        ce->n_ids = (uint8_t)produced;
        if (produced) memcpy(ce->ids, out->ids + before, produced * sizeof *out->ids);  // ids is NULL until a push
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding: a text segment between added tokens

static void encode_plain(const Tokenizer *t, TokScratch *s, const char *text, size_t len, int first, TokIds *out) {
    SplitScratch ss = {0};
    Buf *a = &s->piece_a, *b = &s->piece_b;
    Spans *sa = &s->spans_a, *sb = &s->spans_b;
    a->n = 0;
    sa->n = 0;
    buf_append(a, text, len);
    spans_push(sa, 0, len, first);
    for (int k = 0; k < t->n_pretok; k++) {
        pretok_step(t, &t->pretok[k], s, &ss, a, sa, b, sb);
        Buf *tb = a; a = b; b = tb;
        Spans *ts = sa; sa = sb; sb = ts;
    }
    for (size_t k = 0; k < sa->n; k++) bpe_cached(t, s, a->p + sa->v[k].off, sa->v[k].len, out);
    // Keep the (possibly swapped, possibly grown) buffers owned by the scratch.
    Buf fa = *a, fb = *b;
    Spans fsa = *sa, fsb = *sb;
    s->piece_a = fa; s->piece_b = fb; s->spans_a = fsa; s->spans_b = fsb;
    free(ss.iv.v);
    free(ss.tmp.p);
}

// Splits text by the trie's added tokens (leftmost-longest, like the Aho-Corasick automaton of
// tokenizers); each text gap goes to on_text, each kept match appends its id.
typedef void (*TextFn)(const Tokenizer *t, TokScratch *s, const char *p, size_t len, int first, TokIds *out);

static int is_ws_at(const char *p, size_t len, size_t i, size_t *clen) {
    uint32_t cp;
    int k = utf8_decode((const unsigned char *)p + i, len - i, &cp);
    *clen = k > 0 ? (size_t)k : 1;
    return k > 0 && (unicode_flags(cp) & UF_WHITESPACE);
}

static void split_added(const Tokenizer *t, TokScratch *s, const Trie *trie, const char *text, size_t len,
                        size_t base_offset, int match_special, TextFn on_text, TokIds *out) {
    size_t seg_start = 0, i = 0;
    while (i < len) {
        size_t mlen = 0;
        int32_t idx = trie_longest(trie, text, len, i, &mlen);
        if (idx < 0) { i++; continue; }
        const AddedToken *a = &t->added[idx];
        if (a->special && !match_special) { i += mlen; continue; }
        size_t start = i, end = i + mlen, c;
        if (a->lstrip) {  // absorb whitespace before the token (within the current gap)
            size_t ws = seg_start;  // start of the gap's trailing whitespace run
            for (size_t j = seg_start; j < start; j += c)
                if (!is_ws_at(text, len, j, &c)) ws = j + c;
            start = ws;
        }
        if (a->rstrip)
            while (end < len && is_ws_at(text, len, end, &c)) end += c;
        if (start > seg_start) on_text(t, s, text + seg_start, start - seg_start, base_offset + seg_start == 0, out);
        tokids_push(out, a->id);
        seg_start = i = end;
    }
    if (len > seg_start) on_text(t, s, text + seg_start, len - seg_start, base_offset + seg_start == 0, out);
}

static void encode_normalized_gap(const Tokenizer *t, TokScratch *s, const char *p, size_t len, int first,
                                  TokIds *out) {
    encode_plain(t, s, p, len, first, out);
}

// A raw-text gap: normalize, then match normalized added tokens, then the model.
static void encode_raw_gap_impl(const Tokenizer *t, TokScratch *s, const char *p, size_t len, int first,
                                int match_special, TokIds *out) {
    if (!t->n_norm) {
        encode_plain(t, s, p, len, first, out);
        return;
    }
    Buf cur = {0}, nxt = {0};
    buf_append(&cur, p, len);
    for (int k = 0; k < t->n_norm; k++) {
        const NormStep *st = &t->norm[k];
        if (st->kind == NORM_REPLACE) {
            replace_all(cur.p, cur.n, st->pattern, st->pattern_len, st->content, st->content_len, &nxt);
            Buf tb = cur; cur = nxt; nxt = tb;
        } else if (cur.n) {  // Prepend leaves an empty string empty
            nxt.n = 0;
            buf_append(&nxt, st->content, st->content_len);
            buf_append(&nxt, cur.p, cur.n);
            Buf tb = cur; cur = nxt; nxt = tb;
        }
    }
    split_added(t, s, &t->trie_norm, cur.p, cur.n, first ? 0 : 1, match_special, encode_normalized_gap, out);
    free(cur.p);
    free(nxt.p);
}
static void encode_raw_gap_special(const Tokenizer *t, TokScratch *s, const char *p, size_t len, int first,
                                   TokIds *out) {
    encode_raw_gap_impl(t, s, p, len, first, 1, out);
}
static void encode_raw_gap_plain(const Tokenizer *t, TokScratch *s, const char *p, size_t len, int first, TokIds *out) {
    encode_raw_gap_impl(t, s, p, len, first, 0, out);
}

int tokenizer_encode(const Tokenizer *t, TokScratch *s, const char *text, size_t len,
                     const TokEncodeOptions *opt, TokIds *out, Error *e) {
    size_t valid = utf8_valid_prefix((const unsigned char *)text, len);
    if (valid != len) return err_set(e, "invalid UTF-8 at byte %zu", valid);
    if (opt->add_special)
        for (size_t i = 0; i < t->n_post_prefix; i++) tokids_push(out, t->post_prefix[i]);
    split_added(t, s, &t->trie_raw, text, len, 0, opt->match_special,
                opt->match_special ? encode_raw_gap_special : encode_raw_gap_plain, out);
    if (opt->add_special)
        for (size_t i = 0; i < t->n_post_suffix; i++) tokids_push(out, t->post_suffix[i]);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Decoding: ids -> token strings -> the decoder chain

typedef struct { Buf b; Spans sp; } StrList;
static void sl_push(StrList *l, const char *p, size_t len) {
    size_t off = l->b.n;
    buf_reserve(&l->b, 1);  // b.p is never NULL once a span exists: b.p + off is always defined
    buf_append(&l->b, p, len);
    spans_push(&l->sp, off, len, 0);
}
static void sl_free(StrList *l) { free(l->b.p); free(l->sp.v); }

static int parse_byte_token(const char *p, size_t len) {
    if (len != 6 || memcmp(p, "<0x", 3) || p[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = p[k];
        int d = c >= '0' && c <= '9' ? c - '0'
            : c >= 'a' && c <= 'f'   ? c - 'a' + 10
            : c >= 'A' && c <= 'F'   ? c - 'A' + 10
                                     : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static void flush_bytes(StrList *out, Buf *bytes) {
    if (!bytes->n) return;
    if (utf8_valid_prefix((const unsigned char *)bytes->p, bytes->n) == bytes->n) {
        sl_push(out, bytes->p, bytes->n);
    } else {
        for (size_t k = 0; k < bytes->n; k++) sl_push(out, "\xEF\xBF\xBD", 3);
    }
    bytes->n = 0;
}

static void decode_step(const DecStep *st, StrList *in, StrList *out) {
    out->b.n = 0;
    out->sp.n = 0;
    if (st->kind == DEC_BYTELEVEL) {
        Buf bytes = {0};
        for (size_t i = 0; i < in->sp.n; i++) {
            const char *p = in->b.p + in->sp.v[i].off;
            size_t len = in->sp.v[i].len, start = bytes.n;
            int mapped_all = 1;
            for (size_t j = 0; j < len;) {
                uint32_t cp;
                int k = utf8_decode((const unsigned char *)p + j, len - j, &cp);
                int byte = k > 0 ? bytelevel_byte(cp) : -1;
                if (byte < 0) { mapped_all = 0; break; }
                char c = (char)byte;
                buf_append(&bytes, &c, 1);
                j += (size_t)k;
            }
            if (!mapped_all) {  // a token outside the alphabet passes through as its own bytes
                bytes.n = start;
                buf_append(&bytes, p, len);
            }
        }
        char *lossy = xmalloc(3 * bytes.n + 1);
        size_t n = utf8_lossy((const unsigned char *)bytes.p, bytes.n, lossy);
        sl_push(out, lossy, n);
        free(lossy);
        free(bytes.p);
        return;
    }
    if (st->kind == DEC_FUSE) {
        sl_push(out, in->b.p, 0);
        for (size_t i = 0; i < in->sp.n; i++) buf_append(&out->b, in->b.p + in->sp.v[i].off, in->sp.v[i].len);
        out->sp.v[0].len = out->b.n;
        return;
    }
    if (st->kind == DEC_BYTEFALLBACK) {
        Buf bytes = {0};
        for (size_t i = 0; i < in->sp.n; i++) {
            const char *p = in->b.p + in->sp.v[i].off;
            int v = parse_byte_token(p, in->sp.v[i].len);
            if (v >= 0) {
                char c = (char)v;
                buf_append(&bytes, &c, 1);
                continue;
            }
            flush_bytes(out, &bytes);
            sl_push(out, p, in->sp.v[i].len);
        }
        flush_bytes(out, &bytes);
        free(bytes.p);
        return;
    }
    Buf tmp = {0};
    for (size_t i = 0; i < in->sp.n; i++) {
        const char *p = in->b.p + in->sp.v[i].off;
        size_t len = in->sp.v[i].len;
        if (st->kind == DEC_REPLACE) {
            replace_all(p, len, st->pattern, st->pattern_len, st->content, st->content_len, &tmp);
            sl_push(out, tmp.p, tmp.n);
        } else if (st->kind == DEC_METASPACE) {
            // Every replacement becomes a space, except in the first token where it is dropped.
            tmp.n = 0;
            for (size_t j = 0; j < len;) {
                uint32_t cp;
                int k = utf8_decode((const unsigned char *)p + j, len - j, &cp);
                size_t kl = k > 0 ? (size_t)k : 1;
                if (k > 0 && cp == st->replacement) {
                    if (!(i == 0 && st->prepend_scheme != PREPEND_NEVER)) buf_append(&tmp, " ", 1);
                } else {
                    buf_append(&tmp, p + j, kl);
                }
                j += kl;
            }
            sl_push(out, tmp.p ? tmp.p : "", tmp.n);
        } else {  // DEC_STRIP: up to start/stop copies of the character at each end of each token
            char enc[4];
            size_t el = (size_t)utf8_encode(st->strip_char, enc);
            size_t a = 0, z = len;
            for (int k = 0; k < st->strip_start && z - a >= el && !memcmp(p + a, enc, el); k++) a += el;
            for (int k = 0; k < st->strip_stop && z - a >= el && !memcmp(p + z - el, enc, el); k++) z -= el;
            sl_push(out, p + a, z - a);
        }
    }
    free(tmp.p);
}

int tokenizer_decode(const Tokenizer *t, const uint32_t *ids, size_t n, int skip_special,
                     char **text, size_t *len, Error *e) {
    StrList a = {0}, b = {0};
    for (size_t i = 0; i < n; i++) {
        size_t tl;
        const char *tok = tokenizer_id_to_token(t, ids[i], &tl);
        if (!tok) {
            sl_free(&a);
            return err_set(e, "token id %u is not in the vocabulary (size %u)", ids[i], t->vocab_size);
        }
        if (skip_special && t->is_special_id[ids[i]]) continue;
        sl_push(&a, tok, tl);
    }
    Buf res = {0};
    if (t->has_decoder) {
        for (int k = 0; k < t->n_dec; k++) {
            decode_step(&t->dec[k], &a, &b);
            StrList tmp = a; a = b; b = tmp;
        }
        for (size_t i = 0; i < a.sp.n; i++) buf_append(&res, a.b.p + a.sp.v[i].off, a.sp.v[i].len);
    } else {  // no decoder: tokens joined by spaces
        for (size_t i = 0; i < a.sp.n; i++) {
            if (i) buf_append(&res, " ", 1);
            buf_append(&res, a.b.p + a.sp.v[i].off, a.sp.v[i].len);
        }
    }
    buf_append(&res, "", 1);
    *text = res.p;
    *len = res.n - 1;
    sl_free(&a);
    sl_free(&b);
    return 0;
}
