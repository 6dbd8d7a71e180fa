// generate.h — text generation with the model engine (model.h): a KV-cache decoder (model_kv.c)
// and the generation loop around it (generate.c): prefill the prompt, then sample one token at a
// time until an EOS id, a stop string, the token budget or (GPT-2) the last learned position.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

// ---- KV-cache decoder (model_kv.c) -----------------------------------------------------------

// One sequence's keys and values for every layer, plus scratch for the rows being run. The cache
// grows as positions are added; the model is borrowed and must outlive the decoder.
typedef struct KVDecoder KVDecoder;

KVDecoder *kv_decoder_new(const Model *m);
void kv_decoder_free(KVDecoder *d);
void kv_decoder_reset(KVDecoder *d);      // forget every cached position
void kv_decoder_truncate(KVDecoder *d, int pos);  // forget the positions >= pos (a shared prefix stays)
int kv_decoder_pos(const KVDecoder *d);   // positions cached so far
const Model *kv_decoder_model(const KVDecoder *d);
// Runs n tokens at positions pos..pos+n-1 (pos = kv_decoder_pos) through the model with the
// batched kernels, appending their keys and values to the cache; writes the logits (V,) of the
// last of them when logits is non-NULL. Equals model_forward's logits at those positions on the
// whole sequence. Errors: an id outside the vocabulary, or past max_position_embeddings.
int kv_decoder_forward(KVDecoder *d, const uint32_t *tokens, int n, float *logits, Error *e);

// ---- generation loop (generate.c) -------------------------------------------------------------

typedef enum { GEN_STOP_LENGTH, GEN_STOP_EOS, GEN_STOP_STRING, GEN_STOP_CONTEXT } GenerateStop;

typedef struct {
    int max_tokens;               // new tokens at most
    SamplerOptions sampling;
    const uint32_t *eos_ids;      // stop after sampling one of these (it is kept in the ids)
    int n_eos;
    const char *const *stop;      // stop when the answer text contains one (cut before it)
    int n_stop;
    const Tokenizer *tok;         // decodes the answer (skipping special tokens); NULL: ids only
    int cached_prefix;            // the decoder already holds the first cached_prefix prompt ids (from an
                                  // earlier run on the same ids): only the rest is prefilled; 0: reset
    // Optional streaming callbacks: every sampled id; answer text as it becomes final (held back
    // while it could still be the start of a stop string or an unfinished UTF-8 character).
    void (*on_token)(void *ctx, uint32_t id);
    void (*on_text)(void *ctx, const char *text, size_t len);
    void *ctx;
} GenerateOptions;

typedef struct {
    uint32_t *ids;           // generated ids (n), the stopping EOS included
    int n;
    char *text;              // the answer (NULL without a tokenizer), cut before a stop string
    size_t len;
    GenerateStop stop;
    int n_prompt;
    double prefill_s, decode_s;  // wall time of the prompt's forward and of the remaining steps
} GenerateResult;

// Resets d, prefills prompt (n_prompt >= 1 ids) and generates. r is owned by the caller.
int generate(KVDecoder *d, const uint32_t *prompt, int n_prompt, const GenerateOptions *o, GenerateResult *r, Error *e);
void generate_result_free(GenerateResult *r);
const char *generate_stop_name(GenerateStop s);  // "length", "eos", "stop_string", "context"
