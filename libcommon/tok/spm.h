// spm.h — SentencePiece .model (protobuf ModelProto) reader and its conversion to a Hugging Face
// tokenizer.json, following transformers' LlamaConverter for BPE models (legacy mode): vocab in
// piece order, merges generated from the vocab and scores like SentencePieceExtractor,
// normalizer Prepend("▁") + Replace(" " -> "▁"), byte_fallback, fuse_unk, decoder Replace +
// ByteFallback + Fuse + Strip, control pieces as special added tokens, and the BOS template.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct {
    char *piece;
    size_t len;
    float score;
    int type;  // 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte
} SpmPiece;

typedef struct {
    SpmPiece *pieces;
    int n_pieces;
    int model_type;        // 1 unigram, 2 BPE, 3 word, 4 char
    int byte_fallback;
    int add_dummy_prefix;  // normalizer_spec.add_dummy_prefix (default true)
    char unk_piece[64], bos_piece[64], eos_piece[64];
} SpmModel;

int spm_parse(SpmModel *m, const void *buf, size_t len, const char *name, Error *e);
// spm_parse of the file at path (a regular file).
int spm_load(SpmModel *m, const char *path, Error *e);
void spm_free(SpmModel *m);
// Builds tokenizer.json text (malloc'd, NUL-terminated).
int spm_to_tokenizer_json(const SpmModel *m, const char *name, char **json_out, Error *e);
// Reads model_path, writes tokenizer.json to out_path ("-" = stdout; files atomically).
int spm_convert_file(const char *model_path, const char *out_path, Error *e);
