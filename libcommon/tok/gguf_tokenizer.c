// gguf_tokenizer.c — tokenizer.json / tokenizer_config.json from GGUF tokenizer metadata (see
// gguf_tokenizer.h for the mapping and why there are two pre-tokenizer modes).
#include "gguf_tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

// The Split patterns as they appear in the models' own tokenizer.json files (tok recognizes
// exactly these strings).
static const char LLAMA3_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

#define TOKEN_NORMAL 1
#define TOKEN_CONTROL 3
#define TOKEN_USER_DEFINED 4

static int str_eq(GgufStr s, const char *lit) { return s.len == strlen(lit) && !memcmp(s.ptr, lit, s.len); }

static json_t *byte_level(int use_regex, int trim_offsets) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets",
                     trim_offsets, "use_regex", use_regex);
}

static json_t *split_then_bytes(const char *pattern) {
    return json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, o]}", "type", "Sequence", "pretokenizers", "type", "Split",
                     "pattern", "Regex", pattern, "behavior", "Isolated", "invert", 0, byte_level(0, 1));
}

// The pre_tokenizer for tokenizer.ggml.pre; NULL (error set) if the type is unknown.
static json_t *pre_tokenizer(const Gguf *g, int hf_compat, Error *e) {
    if (hf_compat) return byte_level(1, 0);  // transformers' GGUFLlamaConverter "llama 3" hack
    GgufStr pre;
    int rc = gguf_get_str(g, "tokenizer.ggml.pre", &pre, e);
    if (rc < 0) return NULL;
    if (rc > 0) {
        err_set(e, "%s: tokenizer.ggml.pre is missing, so the pre-tokenizer is unknown (--hf-tokenizer writes the "
                "plain GPT-2 split transformers uses)", g->path);
        return NULL;
    }
    if (str_eq(pre, "smollm"))
        return json_pack("{s:s, s:[{s:s, s:b}, o]}", "type", "Sequence", "pretokenizers", "type", "Digits",
                         "individual_digits", 1, byte_level(1, 1));
    if (str_eq(pre, "gpt2") || str_eq(pre, "gpt-2")) return byte_level(1, 1);
    if (str_eq(pre, "llama-bpe") || str_eq(pre, "llama3")) return split_then_bytes(LLAMA3_PATTERN);
    if (str_eq(pre, "qwen2")) return split_then_bytes(QWEN2_PATTERN);
    err_set(e,
            "%s: tokenizer.ggml.pre '%.*s' is not supported (known: smollm, gpt2, llama-bpe, qwen2; "
            "--hf-tokenizer writes the plain GPT-2 split transformers uses)",
            g->path, (int)(pre.len < 64 ? pre.len : 64), pre.ptr);
    return NULL;
}

// Checks a token/merge string is usable as JSON text.
static int check_text(const Gguf *g, GgufStr s, const char *what, uint64_t i, Error *e) {
    if (memchr(s.ptr, 0, s.len))
        return err_set(e, "%s: %s %llu contains a NUL byte", g->path, what, (unsigned long long)i);
    if (utf8_valid_prefix((const unsigned char *)s.ptr, s.len) != s.len)
        return err_set(e, "%s: %s %llu is not valid UTF-8", g->path, what, (unsigned long long)i);
    return 0;
}

// An optional token id key; -1 if absent. Out-of-range ids are errors.
static int token_id(const Gguf *g, const char *key, uint64_t n_tokens, int64_t *id, Error *e) {
    *id = -1;
    int rc = gguf_get_int(g, key, id, e);
    if (rc < 0) return -1;
    if (rc == 0 && (*id < 0 || (uint64_t)*id >= n_tokens))
        return err_set(e, "%s: %s = %lld is not a token id (vocab has %llu tokens)", g->path, key, (long long)*id,
                       (unsigned long long)n_tokens);
    return 0;
}

static json_t *added_token(uint64_t id, GgufStr s, int special) {
    return json_pack("{s:I, s:s%, s:b, s:b, s:b, s:b, s:b}", "id", (json_int_t)id, "content", s.ptr, (size_t)s.len,
                     "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", special);
}

// The vocab: tokens, types and ids shared by both output files.
typedef struct {
    const GgufValue *tokens, *types;  // types may be NULL
    int64_t bos, eos, unk, pad;
    int add_bos, add_eos;
} Vocab;

static int read_vocab(const Gguf *g, Vocab *v, Error *e) {
    memset(v, 0, sizeof *v);
    GgufStr model;
    int rc = gguf_get_str(g, "tokenizer.ggml.model", &model, e);
    if (rc < 0) return -1;
    if (rc > 0) return err_set(e, "%s: no tokenizer (tokenizer.ggml.model is missing)", g->path);
    if (str_eq(model, "llama"))
        return err_set(e, "%s: tokenizer.ggml.model 'llama' (SentencePiece) is not supported; only byte-level BPE "
                       "('gpt2')", g->path);
    if (!str_eq(model, "gpt2"))
        return err_set(e, "%s: tokenizer.ggml.model '%.*s' is not supported; only byte-level BPE ('gpt2')", g->path,
                       (int)(model.len < 64 ? model.len : 64), model.ptr);
    rc = gguf_get_array(g, "tokenizer.ggml.tokens", GGUF_STRING, &v->tokens, e);
    if (rc < 0) return -1;
    if (rc > 0) return err_set(e, "%s: tokenizer.ggml.tokens is missing", g->path);
    uint64_t n = v->tokens->arr.n;
    if (n == 0 || n > (1u << 30))
        return err_set(e, "%s: tokenizer.ggml.tokens has %llu tokens", g->path, (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++)
        if (check_text(g, v->tokens->arr.items[i].s, "token", i, e)) return -1;
    v->types = NULL;
    const GgufKV *kv = gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (kv) {
        if (kv->value.type != GGUF_ARRAY || (kv->value.arr.type != GGUF_I32 && kv->value.arr.type != GGUF_U32 &&
                                             kv->value.arr.type != GGUF_I8 && kv->value.arr.type != GGUF_U8))
            return err_set(e, "%s: tokenizer.ggml.token_type is not an integer array", g->path);
        if (kv->value.arr.n != n)
            return err_set(e, "%s: tokenizer.ggml.token_type has %llu entries for %llu tokens", g->path,
                           (unsigned long long)kv->value.arr.n, (unsigned long long)n);
        v->types = &kv->value;
    }
    if (token_id(g, "tokenizer.ggml.bos_token_id", n, &v->bos, e) ||
        token_id(g, "tokenizer.ggml.eos_token_id", n, &v->eos, e) ||
        token_id(g, "tokenizer.ggml.unknown_token_id", n, &v->unk, e) ||
        token_id(g, "tokenizer.ggml.padding_token_id", n, &v->pad, e))
        return -1;
    if (gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &v->add_bos, e) < 0 ||
        gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &v->add_eos, e) < 0)
        return -1;
    return 0;
}

static json_t *token_json(const Vocab *v, int64_t id) {
    if (id < 0) return json_null();
    GgufStr s = v->tokens->arr.items[id].s;
    return json_stringn(s.ptr, (size_t)s.len);
}

// Appends {"SpecialToken": {"id": token, "type_id": type_id}} for token id (when wanted).
static void template_special(json_t *arr, json_t *specials, const Vocab *v, int wanted, int64_t id, int type_id) {
    if (!wanted || id < 0) return;
    GgufStr s = v->tokens->arr.items[id].s;
    char *tok = strndup(s.ptr, (size_t)s.len);
    json_array_append_new(arr, json_pack("{s:{s:s, s:i}}", "SpecialToken", "id", tok, "type_id", type_id));
    json_object_set_new(specials, tok,
                        json_pack("{s:s, s:[I], s:[s]}", "id", tok, "ids", (json_int_t)id, "tokens", tok));
    free(tok);
}

// TemplateProcessing as HF writes it for Llama: single = [bos] A [eos], pair = [bos] A [eos]
// [bos] B [eos]; a ByteLevel post-processor (no ids added) when the GGUF adds neither.
static json_t *post_processor(const Vocab *v) {
    if (!(v->add_bos && v->bos >= 0) && !(v->add_eos && v->eos >= 0))
        return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 0,
                         "use_regex", 1);
    json_t *single = json_array(), *pair = json_array(), *specials = json_object();
    for (int seq = 0; seq < 2; seq++) {
        for (int k = 0; k < (seq ? 1 : 2); k++) {  // A goes into both templates, B only into pair
            json_t *arr = k ? single : pair;
            template_special(arr, specials, v, v->add_bos, v->bos, seq);
            json_array_append_new(arr, json_pack("{s:{s:s, s:i}}", "Sequence", "id", seq ? "B" : "A", "type_id", seq));
            template_special(arr, specials, v, v->add_eos, v->eos, seq);
        }
    }
    return json_pack("{s:s, s:o, s:o, s:o}", "type", "TemplateProcessing", "single", single, "pair", pair,
                     "special_tokens", specials);
}

int gguf_tokenizer_json(const Gguf *g, int hf_compat, char **json_out, Error *e) {
    *json_out = NULL;
    Vocab v;
    if (read_vocab(g, &v, e)) return -1;
    uint64_t n = v.tokens->arr.n;
    const GgufValue *merges;
    int rc = gguf_get_array(g, "tokenizer.ggml.merges", GGUF_STRING, &merges, e);
    if (rc < 0) return -1;
    if (rc > 0) return err_set(e, "%s: tokenizer.ggml.merges is missing (a BPE tokenizer needs its merges)", g->path);
    json_t *pre = pre_tokenizer(g, hf_compat, e);
    if (!pre) return -1;

    json_t *root = json_object(), *added = json_array(), *vocab = json_object(), *jm = json_array();
    for (uint64_t i = 0; i < merges->arr.n; i++) {
        GgufStr m = merges->arr.items[i].s;
        const char *sp = memchr(m.ptr, ' ', m.len);
        int bad = check_text(g, m, "merge", i, e);
        if (!bad &&
            (!sp || sp == m.ptr || sp + 1 == m.ptr + m.len || memchr(sp + 1, ' ', m.len - (size_t)(sp - m.ptr) - 1)))
            bad = err_set(e, "%s: tokenizer.ggml.merges[%llu] is not two tokens separated by one space", g->path,
                          (unsigned long long)i);
        if (bad) {
            json_decref(root);
            json_decref(added);
            json_decref(vocab);
            json_decref(jm);
            json_decref(pre);
            return -1;
        }
        size_t ll = (size_t)(sp - m.ptr);
        json_array_append_new(jm, json_pack("[s%, s%]", m.ptr, ll, sp + 1, (size_t)m.len - ll - 1));
    }
    for (uint64_t i = 0; i < n; i++) {
        GgufStr s = v.tokens->arr.items[i].s;
        // a repeated token keeps the last id, as the Python dict HF builds does
        json_object_setn_new(vocab, s.ptr, (size_t)s.len, json_integer((json_int_t)i));
        int64_t type = v.types ? gguf_array_int(v.types, i) : TOKEN_NORMAL;
        int special = type == TOKEN_CONTROL;
        if (!v.types) special = (int64_t)i == v.unk || (int64_t)i == v.bos || (int64_t)i == v.eos;
        if (special) json_array_append_new(added, added_token(i, s, 1));
        else if (type == TOKEN_USER_DEFINED && !hf_compat) json_array_append_new(added, added_token(i, s, 0));
    }
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", json_null());
    json_object_set_new(root, "padding", json_null());
    json_object_set_new(root, "added_tokens", added);
    json_object_set_new(root, "normalizer", json_null());
    json_object_set_new(root, "pre_tokenizer", pre);
    json_object_set_new(root, "post_processor", post_processor(&v));
    json_object_set_new(root, "decoder", json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1,
                                                   "trim_offsets", 1, "use_regex", 1));
    json_t *model = json_pack("{s:s, s:n, s:o, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout",
                              "unk_token", token_json(&v, v.unk), "continuing_subword_prefix", "end_of_word_suffix",
                              "fuse_unk", hf_compat, "byte_fallback", hf_compat, "ignore_merges", 0, "vocab", vocab,
                              "merges", jm);
    json_object_set_new(root, "model", model);
    *json_out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!*json_out) return err_set(e, "%s: could not serialize tokenizer.json", g->path);
    return 0;
}

int gguf_tokenizer_config_json(const Gguf *g, char **json_out, Error *e) {
    *json_out = NULL;
    Vocab v;
    if (read_vocab(g, &v, e)) return -1;
    json_t *root = json_object();
    json_object_set_new(root, "tokenizer_class", json_string("PreTrainedTokenizerFast"));
    json_object_set_new(root, "add_bos_token", json_boolean(v.add_bos));
    json_object_set_new(root, "add_eos_token", json_boolean(v.add_eos));
    json_object_set_new(root, "bos_token", token_json(&v, v.bos));
    json_object_set_new(root, "eos_token", token_json(&v, v.eos));
    json_object_set_new(root, "unk_token", token_json(&v, v.unk));
    json_object_set_new(root, "pad_token", token_json(&v, v.pad));
    json_object_set_new(root, "clean_up_tokenization_spaces", json_false());
    GgufStr arch;
    int64_t ctx;
    if (gguf_get_str(g, "general.architecture", &arch, NULL) == 0 && arch.len < 64) {
        char key[96];
        snprintf(key, sizeof key, "%.*s.context_length", (int)arch.len, arch.ptr);
        if (gguf_get_int(g, key, &ctx, NULL) == 0) json_object_set_new(root, "model_max_length", json_integer(ctx));
    }
    GgufStr tmpl;
    int rc = gguf_get_str(g, "tokenizer.chat_template", &tmpl, e);
    if (rc < 0 || (rc == 0 && check_text(g, tmpl, "tokenizer.chat_template", 0, e))) {
        json_decref(root);
        return -1;
    }
    if (rc == 0) json_object_set_new(root, "chat_template", json_stringn(tmpl.ptr, (size_t)tmpl.len));
    *json_out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!*json_out) return err_set(e, "%s: could not serialize tokenizer_config.json", g->path);
    return 0;
}
