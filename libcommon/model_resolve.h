// model_resolve.h — model names as the generating tools take them: a model directory, or a bare
// name in the model cache ($CLTKIT_CACHE, default ~/.cache/cltkit), where
// scripts/fetch_smollm2.sh puts SmolLM2. `generate -m` and `interp-prompt --explainer builtin`
// share this one resolver, and the EOS rules a chat answer stops at.
#pragma once
#include <stdint.h>

#include "err.h"
#include "model.h"
#include "tokenizer.h"

// A model directory (it holds config.json, or the name has a '/'), else NAME/ or NAME/hf/ in the
// cache holding config.json, else NAME/ holding one GGUF, converted once into NAME/hf/ as
// gguf-convert does (one line on stderr says so). malloc'd path; -1 with a message naming the
// cache directory (and scripts/fetch_smollm2.sh for "smollm2") when there is no such model.
int model_resolve(const char *name, char **dir, Error *e);

// The ids generation stops at: config.json's eos, generation_config.json's eos_token_id (an id
// or a list), and with chat ChatML's <|im_end|>. Writes at most 16 into eos; returns how many.
int model_eos_ids(const Model *m, const Tokenizer *tok, int chat, uint32_t *eos);
