// gguf_tokenizer.h — a GGUF file's byte-level BPE tokenizer (`tokenizer.ggml.*` metadata) as a
// Hugging Face tokenizer.json that `tok` reads, plus the tokenizer_config.json (chat template,
// special tokens) chat tools need.
//
// Mapping (tokenizer.ggml.model = "gpt2", the byte-level BPE of GPT-2/Llama 3/SmolLM/Qwen 2):
//   tokens[i] -> vocab id i; merges "a b" -> ["a", "b"] in order (rank = position);
//   token_type 3 (control) -> special added token, 4 (user defined) -> plain added token (both
//   normalized=false, as llama.cpp matches them in raw text); without token_type: unk, bos, eos
//   become special added tokens; unknown_token_id -> unk_token.
//   tokenizer.ggml.pre names llama.cpp's pre-tokenizer, mapped to the HF pre_tokenizer the
//   original model ships with:
//     smollm                  Sequence[Digits(individual_digits), ByteLevel(use_regex)]
//     gpt2 / gpt-2            ByteLevel(use_regex)  (the GPT-2 pattern)
//     llama-bpe / llama3      Sequence[Split(Llama 3 pattern, Isolated), ByteLevel(no regex)]
//     qwen2                   Sequence[Split(Qwen 2 pattern, Isolated), ByteLevel(no regex)]
//   anything else is an error. decoder ByteLevel; post_processor: BOS (and/or EOS) template
//   when tokenizer.ggml.add_bos_token / add_eos_token are true, else ByteLevel (ids unchanged).
//
// hf_compat = 1 instead reproduces what transformers 4.57 builds from the GGUF
// (AutoTokenizer.from_pretrained(..., gguf_file=)): its converter ignores tokenizer.ggml.pre and
// always uses the plain GPT-2 ByteLevel split (so "smollm" loses the digit split), sets
// fuse_unk and byte_fallback on the BPE model, and ignores user-defined token types.
#pragma once
#include "err.h"
#include "gguf.h"

// tokenizer.json text (malloc'd, NUL-terminated). Errors name the file and the metadata key.
int gguf_tokenizer_json(const Gguf *g, int hf_compat, char **json_out, Error *e);
// tokenizer_config.json text: tokenizer_class PreTrainedTokenizerFast, bos/eos/unk/pad token
// strings, add_bos_token/add_eos_token, model_max_length (llama.context_length), and
// chat_template (tokenizer.chat_template) when present.
int gguf_tokenizer_config_json(const Gguf *g, char **json_out, Error *e);
