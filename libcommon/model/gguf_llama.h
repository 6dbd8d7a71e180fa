// gguf_llama.h — a Llama-architecture GGUF (llama.cpp's convert_hf_to_gguf.py output) mapped
// back onto the Hugging Face LlamaForCausalLM layout, so the model becomes an ordinary model
// directory (model.safetensors + config.json + tokenizer files) for the rest of the toolkit.
//
// Tensors (GGUF ne is the reversed HF shape): token_embd -> model.embed_tokens, output_norm ->
// model.norm, output -> lm_head (absent: tied embeddings), blk.N.{attn_norm, attn_q, attn_k,
// attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down} -> model.layers.N.{input_layernorm,
// self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj}. Every tensor is
// dequantized to fp32; any other tensor (e.g. rope_freqs) is an error, not silently dropped.
//
// llama.cpp's converter permutes the rows of q/k per head so its RoPE can rotate adjacent pairs:
// GGUF row h*hd + 2p + c holds HF row h*hd + c*(hd/2) + p (c = 0, 1; p < hd/2). The inverse is
// applied here, so HF's rotate_half RoPE (the engine's) sees HF's weights.
//
// Config from `llama.*` metadata: block_count, embedding_length, feed_forward_length,
// attention.head_count(_kv), attention.key_length (head_dim; default d/heads), context_length,
// rope.freq_base (default 10000), rope.dimension_count (must equal head_dim),
// attention.layer_norm_rms_epsilon, vocab_size (default: token count); bos/eos from
// tokenizer.ggml.*. RoPE scaling (rope.scaling.type other than none) is refused.
#pragma once
#include <stdint.h>

#include "err.h"
#include "gguf.h"

typedef struct {
    int n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab_size, max_pos;
    double rope_theta, norm_eps;
    int tied;                // no output.weight: lm_head is the embedding
    int64_t bos_id, eos_id;  // -1 if absent
} GgufLlamaConfig;

// Reads and checks the config and the tensor set (names, shapes, dequantizable types).
int gguf_llama_config(const Gguf *g, GgufLlamaConfig *c, Error *e);
// config.json text for LlamaForCausalLM (malloc'd).
char *gguf_llama_config_json(const GgufLlamaConfig *c);

// Writes dir/tokenizer.json, tokenizer_config.json, model.safetensors (F32, HF names, q/k
// un-permuted; metadata {"format":"pt"}), generation_config.json and config.json (last, so a
// directory with config.json is complete), each atomically. Everything that can fail on the
// input is checked before the first file is written. dir must exist. hf_tokenizer: see
// gguf_tokenizer.h.
int gguf_llama_write_hf(const Gguf *g, const char *dir, int hf_tokenizer, Error *e);
