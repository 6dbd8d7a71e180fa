// llama2c.h — llama2.c checkpoints (karpathy/llama2.c export.py) read and mapped onto the
// Hugging Face Llama layout, so a tinyllamas model becomes an ordinary model directory
// (model.safetensors + config.json) for the rest of the toolkit.
//
// Formats: version 0 ("legacy"): 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len; vocab_size < 0 means an untied classifier follows), then fp32 tensors:
// embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_cis cos and sin
// (seq_len x head_size/2 each, unused), [classifier]. Version 1: 256-byte header (uint32 magic
// "ak42", int32 version 1, the 7 ints, uint8 shared_classifier, zero padding), then rms_att,
// rms_ffn, rms_final, embedding, wq, wk, wv, wo, w1, w2, w3, [classifier]. Each per-layer tensor
// is stored for all layers back to back. The file size must match the header exactly.
//
// llama2.c applies RoPE to adjacent pairs (2p, 2p+1) of each head; HF rotates halves (p, p+hs/2).
// So q_proj/k_proj rows are permuted per head: HF row c*(hs/2)+p takes llama2.c row 2p+c
// (export.py permute_original). Everything else is copied unchanged.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;  // vocab_size > 0
    int shared_classifier;  // 1: lm_head is the embedding (tie_word_embeddings)
    int version;            // 0 legacy, 1 "ak42" version 1
} Llama2cConfig;

typedef struct {
    char name[64];       // HF name, e.g. model.layers.0.self_attn.q_proj.weight
    int ndim;
    int64_t shape[2];
    const float *data;   // into the checkpoint (or, for q/k, into Llama2cModel.permuted)
} Llama2cTensor;

typedef struct {
    Llama2cConfig cfg;
    int n_tensors;
    Llama2cTensor *tensors;  // HF order: embed, per layer (norms, q,k,v,o, gate,down,up), norm, [lm_head]
    float *permuted;         // owned storage of the permuted q/k weights
    void *map;               // llama2c_open's mapping (NULL after llama2c_parse)
    size_t map_size;
} Llama2cModel;

// Maps path and parses it. Errors name the file.
int llama2c_open(Llama2cModel *m, const char *path, Error *e);
// Parses an in-memory checkpoint (little-endian, 4-byte aligned); buf must outlive m.
int llama2c_parse(Llama2cModel *m, const void *buf, size_t len, const char *name, Error *e);
void llama2c_free(Llama2cModel *m);
const Llama2cTensor *llama2c_find(const Llama2cModel *m, const char *name);

// config.json text for LlamaForCausalLM (malloc'd, NUL-terminated).
char *llama2c_config_json(const Llama2cConfig *c);
// Writes dir/model.safetensors (F32, metadata {"format":"pt"}), dir/config.json and
// dir/generation_config.json, each atomically (temp file + rename). dir must exist.
int llama2c_write_hf(const Llama2cModel *m, const char *dir, Error *e);
