// tokenizer.h — Hugging Face tokenizer.json, implemented exactly as the `tokenizers` library
// encodes and decodes: added tokens (leftmost-longest), normalizers (Replace, Prepend,
// Sequence), pre-tokenizers (ByteLevel, Split with the GPT-2 / Llama 3 / Qwen 2 regexes or a
// string, Metaspace, Digits, Sequence), the BPE model (merges by rank, ignore_merges,
// byte_fallback, unk/fuse_unk) and post-processors (TemplateProcessing, Bert/Roberta, ByteLevel).
// A loaded Tokenizer is read-only: many threads encode with it at once, each with its own
// TokScratch.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct Tokenizer Tokenizer;
typedef struct TokScratch TokScratch;

typedef struct {
    uint32_t *ids;
    size_t n, cap;
} TokIds;

typedef struct {
    int match_special;  // match special added tokens in the text (HF default); else they are text
    int add_special;    // apply the post-processor (e.g. prepend BOS) as HF add_special_tokens
} TokEncodeOptions;

// Loads tokenizer.json; errors name the file and the missing/invalid field.
Tokenizer *tokenizer_load(const char *path, Error *e);
// Same from JSON text in memory (name is used in messages).
Tokenizer *tokenizer_load_json(const char *json, size_t len, const char *name, Error *e);
void tokenizer_free(Tokenizer *t);

TokScratch *tokscratch_new(void);
void tokscratch_free(TokScratch *s);

// Encodes UTF-8 text, appending ids to out. Invalid UTF-8 is an error (HF accepts only valid
// Unicode strings); use utf8_lossy() first for Python's errors='replace' behaviour.
int tokenizer_encode(const Tokenizer *t, TokScratch *s, const char *text, size_t len,
                     const TokEncodeOptions *opt, TokIds *out, Error *e);
// Decodes ids to a NUL-terminated malloc'd string (length in *len), as HF decode().
int tokenizer_decode(const Tokenizer *t, const uint32_t *ids, size_t n, int skip_special,
                     char **text, size_t *len, Error *e);

uint32_t tokenizer_vocab_size(const Tokenizer *t);  // 1 + the largest id
// The token string of id (vocab or added token), or NULL.
const char *tokenizer_id_to_token(const Tokenizer *t, uint32_t id, size_t *len);
// The id of a token string (added tokens first, then the model vocab); -1 if none.
int64_t tokenizer_token_to_id(const Tokenizer *t, const char *token, size_t len);
// Ids the post-processor adds before/after a single sequence (e.g. BOS); NULL/0 if none.
const uint32_t *tokenizer_post_prefix(const Tokenizer *t, size_t *n);
const uint32_t *tokenizer_post_suffix(const Tokenizer *t, size_t *n);

void tokids_push(TokIds *v, uint32_t id);
void tokids_free(TokIds *v);
