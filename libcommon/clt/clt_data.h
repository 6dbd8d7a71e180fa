// clt_data.h — the CLT trainer's data loader over activation shards (formats/acts.md). Chunks of
// all shards in a seeded random order per epoch, pool_chunks at a time decoded into a pool whose
// tokens are shuffled; a batch is a consecutive slice of the shuffled pool. Everything follows from
// (seed, epoch, pool, batch), so a CltCursor is all a resume needs: a loader opened again on the
// same shards and seed yields, from a saved cursor, the batches an uninterrupted run would have.
//
// Inputs and targets are normalised per layer to mean norm sqrt(d) from the shards' statistics
// (token-weighted over the shards); mean_out holds the normalised target means (NMSE's ȳ).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "actshard.h"
#include "err.h"

typedef struct {
    int64_t epoch, pool, batch;  // the next batch: slice `batch` of pool `pool` of epoch `epoch`
} CltCursor;

typedef struct {
    ActShard *shards;
    int n_shards, L, d;
    uint64_t n_chunks;
    uint32_t *chunk_shard;  // (n_chunks,) which shard
    uint64_t *chunk_index;  // (n_chunks,) chunk within that shard
    float *s_in, *s_out;    // (L,) normalization scales
    float *mean_out;        // (L, d) normalized target means (for NMSE)
    // current pool
    int64_t epoch, pool;  // which pool is loaded (-1: none)
    uint64_t *order;      // (n_chunks,) chunk permutation of the current epoch
    int64_t order_epoch;
    float **px, **py;  // [L] (pool_tokens, d) normalized
    uint32_t *perm;    // (pool_tokens,) token permutation
    size_t pool_tokens, pool_cap;
    int pool_chunks;
    uint64_t seed;
    ActChunk chunk;
} CltData;

// Opens n shards (same layers, width, input hook and model; consecutive layers). 0, or -1 with e
// naming the shard and what differs; D is then closed.
int clt_data_open(CltData *D, char **paths, int n, int pool_chunks, uint64_t seed, Error *e);
void clt_data_close(CltData *D);
// The most tokens any pool can hold: the largest pool_chunks chunks together. A batch larger
// than that never fits.
uint64_t clt_data_max_pool_tokens(const CltData *D);
// Fills x/y (B rows per layer: [L] (B, d)) with the batch at the cursor and advances it. A pool's
// last partial batch is skipped (its tokens come back in later epochs in another order). -1 with
// e when a chunk cannot be read or no pool holds B tokens.
int clt_data_next_batch(CltData *D, CltCursor *cur, int B, float **x, float **y, Error *e);
