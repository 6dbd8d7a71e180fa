#include "contexts.h"

#include <string.h>

int context_reader_open(ContextReader *r, char **paths, int n_paths, int ctx, int64_t bos, uint32_t vocab_limit,
                        Error *e) {
    memset(r, 0, sizeof *r);
    if (ctx < (bos >= 0 ? 2 : 1)) return err_set(e, "context length %d is too short", ctx);
    r->paths = paths;
    r->n_paths = n_paths;
    r->ctx = ctx;
    r->bos = bos;
    r->vocab_limit = vocab_limit;
    return 0;
}

// Makes the next document current; returns 1, 0 when all shards are done, -1 on error.
static int next_document(ContextReader *r, Error *e) {
    for (;;) {
        if (!r->shard_open) {
            if (r->cur_path >= r->n_paths) return 0;
            if (tokshard_open(&r->shard, r->paths[r->cur_path], e)) return -1;
            if (r->shard.vocab_size > r->vocab_limit) {
                err_set(e, "%s: token vocabulary %u is larger than the model's %u (wrong tokenizer?)",
                        r->paths[r->cur_path], r->shard.vocab_size, r->vocab_limit);
                tokshard_close(&r->shard);
                return -1;
            }
            tokdoc_iter_init(&r->it, &r->shard);
            r->shard_open = 1;
        }
        int rc = tokdoc_iter_next(&r->it, &r->doc_id, &r->doc, &r->doc_len, e);
        if (rc < 0) return -1;
        if (rc == 1) {
            r->doc_pos = 0;
            if (r->doc_len) return 1;
            continue;  // empty documents contribute nothing
        }
        tokdoc_iter_free(&r->it);
        tokshard_close(&r->shard);
        r->shard_open = 0;
        r->cur_path++;
    }
}

int context_reader_next(ContextReader *r, uint32_t *tokens, uint64_t *doc_ids, uint32_t *positions, Error *e) {
    int n = 0;
    if (r->bos >= 0) n = 1;  // BOS slot filled once the first real token is known
    while (n < r->ctx) {
        if (r->doc_pos >= r->doc_len) {
            int rc = next_document(r, e);
            if (rc < 0) return -1;
            if (rc == 0) {
                r->tail_tokens += (uint64_t)(n - (r->bos >= 0));
                return 0;
            }
        }
        size_t take = r->doc_len - r->doc_pos;
        if (take > (size_t)(r->ctx - n)) take = (size_t)(r->ctx - n);
        for (size_t i = 0; i < take; i++, n++) {
            tokens[n] = r->doc[r->doc_pos + i];
            doc_ids[n] = r->doc_id;
            positions[n] = (uint32_t)(r->doc_pos + i);
        }
        r->doc_pos += take;
    }
    if (r->bos >= 0) {
        tokens[0] = (uint32_t)r->bos;
        doc_ids[0] = doc_ids[1];
        positions[0] = CONTEXT_POS_BOS;
    }
    r->contexts_made++;
    return 1;
}

void context_reader_close(ContextReader *r) {
    if (r->shard_open) {
        tokdoc_iter_free(&r->it);
        tokshard_close(&r->shard);
    }
    memset(r, 0, sizeof *r);
}

int context_count(char **paths, int n_paths, int ctx, int64_t bos, uint64_t *n_contexts, Error *e) {
    uint64_t tokens = 0;
    for (int i = 0; i < n_paths; i++) {
        TokShard s;
        if (tokshard_open(&s, paths[i], e)) return -1;
        tokens += s.n_tokens;
        tokshard_close(&s);
    }
    *n_contexts = tokens / (uint64_t)(ctx - (bos >= 0));
    return 0;
}
