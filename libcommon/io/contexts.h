// contexts.h — cuts the documents of token shards into fixed-length model contexts.
// Documents are concatenated in order; each context is BOS (if bos >= 0) followed by the next
// ctx-1 tokens (ctx without BOS). Every token keeps its document id and its position in that
// document, so an activation can be traced back to its text. A prepended BOS gets the document
// id of the token after it and position CONTEXT_POS_BOS. The tail shorter than a full context
// is not returned (its length is reported).
#pragma once
#include <stdint.h>

#include "err.h"
#include "tokshard.h"

#define CONTEXT_POS_BOS UINT32_MAX

typedef struct {
    char **paths;
    int n_paths, cur_path;
    TokShard shard;
    int shard_open;
    TokDocIter it;
    int ctx;
    int64_t bos;           // -1: no BOS prepended
    uint32_t vocab_limit;  // ids must be < this (the model's vocab)
    // the current document, partly consumed
    const uint32_t *doc;
    size_t doc_len, doc_pos;
    uint64_t doc_id;
    uint64_t contexts_made;
    uint64_t tail_tokens;  // tokens left over at the end (fewer than a context)
} ContextReader;

int context_reader_open(ContextReader *r, char **paths, int n_paths, int ctx, int64_t bos, uint32_t vocab_limit,
                        Error *e);
// Fills tokens/doc_ids/positions (ctx each) with the next context; returns 1, 0 at the end, -1 on error.
int context_reader_next(ContextReader *r, uint32_t *tokens, uint64_t *doc_ids, uint32_t *positions, Error *e);
void context_reader_close(ContextReader *r);
// How many contexts the reader will return for these shards, from their footers (no token read):
// the documents' tokens over the document tokens a context holds (ctx - 1 with BOS, else ctx). A
// progress bar's total.
int context_count(char **paths, int n_paths, int ctx, int64_t bos, uint64_t *n_contexts, Error *e);
