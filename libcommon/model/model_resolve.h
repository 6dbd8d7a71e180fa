// model_resolve.h — model names as every tool takes them (-m/--model of fwd-acts, feat-topk,
// attrib, generate, interp-prompt's builtin explainer; tok -t): a model directory, or a name in
// the model cache ($CLTKIT_CACHE, default ~/.cache/cltkit), where scripts/fetch_smollm2.sh puts
// SmolLM2; and the EOS rules a chat answer stops at.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"
#include "tokenizer.h"

// The rule every tool's -m/--model follows: NAME is a path when it has a '/' or starts with '.'
// (./smollm2, /models/x, ../m), and must then be a directory holding config.json. Any other NAME
// is a model's name, looked up first in the cache ($CLTKIT_CACHE, default ~/.cache/cltkit):
// NAME/ or NAME/hf/ holding config.json, or NAME/ holding one GGUF, converted once into NAME/hf/
// as gguf-convert does (one line on stderr says so); only when the cache has no NAME is a
// directory NAME here used. So a ./smollm2 folder never shadows the cached smollm2; the tools say
// which one they used. malloc'd path; -1 with one message naming NAME once (and
// scripts/fetch_smollm2.sh for "smollm2") when there is no such model.
int model_resolve(const char *name, char **dir, Error *e);
// The same, and for a name (not a path) writes into note where it was found ("the cache", "a
// directory here; ..."); "" for a path.
int model_resolve_note(const char *name, char **dir, char *note, size_t note_len, Error *e);
// For a tool's -m: model_resolve, fatal on error; for a name, one line on stderr says which
// directory was used: "<tool>: model 'smollm2': /root/.cache/cltkit/smollm2/hf (the cache)".
char *model_resolve_cli(const char *tool, const char *name);
// For a tool's -t/--tokenizer: a tokenizer.json file as given; a directory's tokenizer.json (a
// model directory, or one holding just the tokenizer); else a model's name (model_resolve_cli)
// and its tokenizer.json. Fatal, naming the path, when there is none. malloc'd.
char *tokenizer_resolve_cli(const char *tool, const char *arg);

// The ids generation stops at: config.json's eos, generation_config.json's eos_token_id (an id
// or a list), and with chat ChatML's <|im_end|>. Writes at most 16 into eos; returns how many.
int model_eos_ids(const Model *m, const Tokenizer *tok, int chat, uint32_t *eos);
