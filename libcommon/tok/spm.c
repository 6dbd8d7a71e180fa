#include "spm.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileio.h"
#include "hashmap.h"
#include "tokenizer.h"
#include "unicode.h"

// ---------------------------------------------------------------------------------------------
// Minimal protobuf wire-format reader (varint, 64-bit, length-delimited, 32-bit), bounds checked.

typedef struct { const uint8_t *p, *end; } PbReader;

static int pb_varint(PbReader *r, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return -1;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) { *v = x; return 0; }
    }
    return -1;
}

// Reads one field header and its payload; *sub is set for length-delimited, *num for others.
static int pb_field(PbReader *r, uint32_t *field, int *wire, uint64_t *num, PbReader *sub) {
    uint64_t key;
    if (pb_varint(r, &key)) return -1;
    *field = (uint32_t)(key >> 3);
    *wire = (int)(key & 7);
    switch (*wire) {
        case 0: return pb_varint(r, num);
        case 1:
            if (r->end - r->p < 8) return -1;
            memcpy(num, r->p, 8);
            r->p += 8;
            return 0;
        case 2: {
            uint64_t len;
            if (pb_varint(r, &len) || len > (uint64_t)(r->end - r->p)) return -1;
            sub->p = r->p;
            sub->end = r->p + len;
            r->p += len;
            return 0;
        }
        case 5: {
            uint32_t v;
            if (r->end - r->p < 4) return -1;
            memcpy(&v, r->p, 4);
            r->p += 4;
            *num = v;
            return 0;
        }
        default: return -1;
    }
}

static void copy_piece_name(char *dst, size_t cap, PbReader s) {
    size_t n = (size_t)(s.end - s.p);
    if (n >= cap) n = cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = 0;
}

int spm_parse(SpmModel *m, const void *buf, size_t len, const char *name, Error *e) {
    memset(m, 0, sizeof *m);
    m->model_type = 1;
    m->add_dummy_prefix = 1;
    strcpy(m->unk_piece, "<unk>");
    strcpy(m->bos_piece, "<s>");
    strcpy(m->eos_piece, "</s>");
    PbReader r = {buf, (const uint8_t *)buf + len};
    int cap = 0;
    while (r.p < r.end) {
        uint32_t field;
        int wire;
        uint64_t num = 0;
        PbReader sub = {0};
        if (pb_field(&r, &field, &wire, &num, &sub)) goto corrupt;
        if (field == 1 && wire == 2) {  // SentencePiece
            SpmPiece pc = {.type = 1};
            int have_piece = 0;
            while (sub.p < sub.end) {
                uint32_t f2;
                int w2;
                uint64_t n2 = 0;
                PbReader s2 = {0};
                if (pb_field(&sub, &f2, &w2, &n2, &s2)) { free(pc.piece); goto corrupt; }
                if (f2 == 1 && w2 == 2) {
                    free(pc.piece);
                    pc.len = (size_t)(s2.end - s2.p);
                    pc.piece = xmalloc(pc.len + 1);
                    memcpy(pc.piece, s2.p, pc.len);
                    pc.piece[pc.len] = 0;
                    have_piece = 1;
                } else if (f2 == 2 && w2 == 5) {
                    uint32_t bits = (uint32_t)n2;
                    memcpy(&pc.score, &bits, 4);
                } else if (f2 == 3 && w2 == 0) {
                    pc.type = (int)n2;
                }
            }
            // (the message is formatted before spm_free, which zeroes n_pieces)
            if (!have_piece) {
                err_set(e, "%s: piece %d has no text", name, m->n_pieces);
                spm_free(m);
                return -1;
            }
            if (utf8_valid_prefix((const unsigned char *)pc.piece, pc.len) != pc.len) {
                err_set(e, "%s: piece %d is not valid UTF-8", name, m->n_pieces);
                free(pc.piece);
                spm_free(m);
                return -1;
            }
            if (m->n_pieces == cap) {
                cap = cap ? cap * 2 : 256;
                m->pieces = xrealloc(m->pieces, (size_t)cap * sizeof *m->pieces);
            }
            m->pieces[m->n_pieces++] = pc;
        } else if (field == 2 && wire == 2) {  // TrainerSpec
            while (sub.p < sub.end) {
                uint32_t f2;
                int w2;
                uint64_t n2 = 0;
                PbReader s2 = {0};
                if (pb_field(&sub, &f2, &w2, &n2, &s2)) goto corrupt;
                if (f2 == 3 && w2 == 0) m->model_type = (int)n2;
                else if (f2 == 35 && w2 == 0) m->byte_fallback = n2 != 0;
                else if (f2 == 45 && w2 == 2) copy_piece_name(m->unk_piece, sizeof m->unk_piece, s2);
                else if (f2 == 46 && w2 == 2) copy_piece_name(m->bos_piece, sizeof m->bos_piece, s2);
                else if (f2 == 47 && w2 == 2) copy_piece_name(m->eos_piece, sizeof m->eos_piece, s2);
            }
        } else if (field == 3 && wire == 2) {  // NormalizerSpec
            while (sub.p < sub.end) {
                uint32_t f2;
                int w2;
                uint64_t n2 = 0;
                PbReader s2 = {0};
                if (pb_field(&sub, &f2, &w2, &n2, &s2)) goto corrupt;
                if (f2 == 3 && w2 == 0) m->add_dummy_prefix = n2 != 0;
            }
        }
    }
    if (m->n_pieces < 3) {
        spm_free(m);
        return err_set(e, "%s: not a SentencePiece model (%d pieces)", name, m->n_pieces);
    }
    return 0;
corrupt:
    spm_free(m);
    return err_set(e, "%s: corrupt SentencePiece model (bad protobuf field)", name);
}

void spm_free(SpmModel *m) {
    for (int i = 0; i < m->n_pieces; i++) free(m->pieces[i].piece);
    free(m->pieces);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------------------------------------
// Merges as transformers' SentencePieceExtractor generates them: for every piece, every split
// into two pieces of the vocab (ordered by the ids of left then right), then all merges sorted
// by (score, chars of left, chars of right) descending, stable.

typedef struct {
    int left, right;  // piece ids
    float score;
    int left_chars, right_chars;
    size_t order;
} Merge;

static int merge_cmp(const void *a, const void *b) {
    const Merge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->left_chars != y->left_chars) return x->left_chars > y->left_chars ? -1 : 1;
    if (x->right_chars != y->right_chars) return x->right_chars > y->right_chars ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int count_chars(const char *s, size_t len) {
    int n = 0;
    for (size_t i = 0; i < len; i++) n += ((uint8_t)s[i] & 0xC0) != 0x80;
    return n;
}

int spm_to_tokenizer_json(const SpmModel *m, const char *name, char **json_out, Error *e) {
    if (m->model_type != 2)
        return err_set(e, "%s: SentencePiece model_type %d is not BPE (only BPE models convert)", name, m->model_type);
    StrMap vocab;
    strmap_init(&vocab, (uint32_t)m->n_pieces);
    for (int i = 0; i < m->n_pieces; i++) strmap_put(&vocab, m->pieces[i].piece, m->pieces[i].len, (uint32_t)i);

    Merge *merges = NULL;
    size_t n_merges = 0, cap = 0;
    for (int i = 0; i < m->n_pieces; i++) {
        const SpmPiece *p = &m->pieces[i];
        size_t first = n_merges;
        for (size_t cut = 1; cut < p->len; cut++) {
            if (((uint8_t)p->piece[cut] & 0xC0) == 0x80) continue;  // split at character boundaries
            uint32_t l, r;
            if (!strmap_get(&vocab, p->piece, cut, &l) || !strmap_get(&vocab, p->piece + cut, p->len - cut, &r))
                continue;
            if (n_merges == cap) {
                cap = cap ? cap * 2 : 1024;
                merges = xrealloc(merges, cap * sizeof *merges);
            }
            merges[n_merges++] = (Merge){(int)l, (int)r, p->score, count_chars(p->piece, cut),
                                         count_chars(p->piece + cut, p->len - cut), 0};
        }
        // local order: by left id, then right id
        for (size_t a = first + 1; a < n_merges; a++)
            for (size_t b = a; b > first &&
                 (merges[b - 1].left > merges[b].left ||
                  (merges[b - 1].left == merges[b].left && merges[b - 1].right > merges[b].right));
                 b--) {
                Merge t = merges[b]; merges[b] = merges[b - 1]; merges[b - 1] = t;
            }
    }
    for (size_t i = 0; i < n_merges; i++) merges[i].order = i;
    if (n_merges) qsort(merges, n_merges, sizeof *merges, merge_cmp);

    json_t *root = json_object();
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", json_null());
    json_object_set_new(root, "padding", json_null());

    json_t *added = json_array();
    for (int i = 0; i < m->n_pieces; i++) {
        // unknown and control pieces are special tokens, user-defined ones plain added tokens
        int type = m->pieces[i].type;
        if (type != 2 && type != 3 && type != 4) continue;
        json_t *a = json_object();
        json_object_set_new(a, "id", json_integer(i));
        json_object_set_new(a, "content", json_stringn(m->pieces[i].piece, m->pieces[i].len));
        json_object_set_new(a, "single_word", json_false());
        json_object_set_new(a, "lstrip", json_false());
        json_object_set_new(a, "rstrip", json_false());
        json_object_set_new(a, "normalized", json_false());
        json_object_set_new(a, "special", json_boolean(type != 4));
        json_array_append_new(added, a);
    }
    json_object_set_new(root, "added_tokens", added);

    json_t *norms = json_array();
    if (m->add_dummy_prefix)
        json_array_append_new(norms, json_pack("{s:s, s:s}", "type", "Prepend", "prepend", "\xE2\x96\x81"));
    json_array_append_new(
        norms,
        json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", " ", "content", "\xE2\x96\x81"));
    json_object_set_new(root, "normalizer", json_pack("{s:s, s:o}", "type", "Sequence", "normalizers", norms));
    json_object_set_new(root, "pre_tokenizer", json_null());

    uint32_t bos_id;
    if (strmap_get(&vocab, m->bos_piece, strlen(m->bos_piece), &bos_id)) {
        json_object_set_new(
            root, "post_processor",
            json_pack(
                "{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}], s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}], s:{s:{s:s, s:[i], s:[s]}}}",
                "type", "TemplateProcessing", "single", "SpecialToken", "id", m->bos_piece, "type_id", 0, "Sequence",
                "id", "A", "type_id", 0, "pair", "SpecialToken", "id", m->bos_piece, "type_id", 0, "Sequence", "id",
                "A", "type_id", 0, "SpecialToken", "id", m->bos_piece, "type_id", 1, "Sequence", "id", "B", "type_id",
                1, "special_tokens", m->bos_piece, "id", m->bos_piece, "ids", (int)bos_id, "tokens", m->bos_piece));
    } else {
        json_object_set_new(root, "post_processor", json_null());
    }

    json_t *decs = json_array();
    json_array_append_new(
        decs, json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", "\xE2\x96\x81", "content", " "));
    json_array_append_new(decs, json_pack("{s:s}", "type", "ByteFallback"));
    json_array_append_new(decs, json_pack("{s:s}", "type", "Fuse"));
    if (m->add_dummy_prefix)
        json_array_append_new(
            decs, json_pack("{s:s, s:s, s:i, s:i}", "type", "Strip", "content", " ", "start", 1, "stop", 0));
    json_object_set_new(root, "decoder", json_pack("{s:s, s:o}", "type", "Sequence", "decoders", decs));

    json_t *jv = json_object();
    for (int i = 0; i < m->n_pieces; i++) {
        // later duplicates keep the first id, like a dict built in order would not: SentencePiece
        // models have unique pieces, so this only matters for corrupt input
        char *key = xmalloc(m->pieces[i].len + 1);
        memcpy(key, m->pieces[i].piece, m->pieces[i].len + 1);
        json_object_set_new(jv, key, json_integer(i));
        free(key);
    }
    json_t *jm = json_array();
    for (size_t i = 0; i < n_merges; i++) {
        const SpmPiece *l = &m->pieces[merges[i].left], *r = &m->pieces[merges[i].right];
        json_array_append_new(jm, json_pack("[s#, s#]", l->piece, (int)l->len, r->piece, (int)r->len));
    }
    json_t *model = json_pack("{s:s, s:n, s:s, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout",
                              "unk_token", m->unk_piece, "continuing_subword_prefix", "end_of_word_suffix",
                              "fuse_unk", 1, "byte_fallback", 1, "ignore_merges", 0, "vocab", jv, "merges", jm);
    json_object_set_new(root, "model", model);
    *json_out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    free(merges);
    strmap_free(&vocab);
    if (!*json_out) return err_set(e, "%s: could not serialize tokenizer.json", name);
    return 0;
}

int spm_load(SpmModel *m, const char *path, Error *e) {
    void *map;
    size_t n;
    if (map_file(path, &map, &n, e)) return -1;  // (refuses a directory, whose size is no size)
    int rc = spm_parse(m, map, n, path, e);
    if (map) munmap(map, n);
    return rc;
}

int spm_convert_file(const char *model_path, const char *out_path, Error *e) {
    SpmModel m;
    if (spm_load(&m, model_path, e)) return -1;
    int rc;
    char *json;
    rc = spm_to_tokenizer_json(&m, model_path, &json, e);
    spm_free(&m);
    if (rc) return -1;
    // What we write must load: a model our converter handles wrongly fails here, not in a later `tok`.
    Tokenizer *check = tokenizer_load_json(json, strlen(json), model_path, e);
    if (!check) {
        free(json);
        return err_prefix(e, "%s: the converted tokenizer.json does not load", model_path);
    }
    tokenizer_free(check);
    if (!strcmp(out_path, "-")) {
        fputs(json, stdout);
        fputc('\n', stdout);
    } else {
        size_t n = strlen(json);
        json = xrealloc(json, n + 2);
        json[n] = '\n';
        json[n + 1] = 0;
        if (write_file_atomic(out_path, json, n + 1, e)) { free(json); return -1; }
    }
    free(json);
    return 0;
}
