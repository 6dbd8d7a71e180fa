// clt_data.c — see clt_data.h.
#include "clt_data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clt.h"  // clt_splitmix64

// Closes what clt_data_open has opened so far (n_shards of them) and returns -1.
static int fail(CltData *D) {
    clt_data_close(D);
    return -1;
}

static uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t z = a * 0x9E3779B97F4A7C15ULL ^ (b + 0xBF58476D1CE4E5B9ULL) * 0x94D049BB133111EBULL ^
                 (c + 1) * 0xD6E8FEB86659FD93ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int clt_data_open(CltData *D, char **paths, int n, int pool_chunks, uint64_t seed, Error *e) {
    memset(D, 0, sizeof *D);
    D->shards = xcalloc((size_t)n, sizeof *D->shards);
    D->pool_chunks = pool_chunks;
    D->seed = seed;
    D->epoch = D->pool = -1;
    D->order_epoch = -1;
    for (int i = 0; i < n; i++) {
        if (actshard_open(&D->shards[i], paths[i], e)) return fail(D);
        D->n_shards = i + 1;
        const ActShard *s = &D->shards[i], *s0 = &D->shards[0];
        if (s->n_layers != s0->n_layers || s->d_model != s0->d_model ||
            memcmp(s->layers, s0->layers, (size_t)s->n_layers * sizeof(int)))
            return err_set(e, "%s: layers or width differ from %s", paths[i], paths[0]), fail(D);
        if (strcmp(s->in_hook, s0->in_hook))
            return err_set(e, "%s: input hook %s differs from %s's %s", paths[i], s->in_hook, paths[0], s0->in_hook),
                   fail(D);
        if (s->model_hash && s0->model_hash && s->model_hash != s0->model_hash)
            return err_set(e, "%s: made with another model than %s (model hash %016llx, not %016llx)", paths[i],
                           paths[0], (unsigned long long)s->model_hash, (unsigned long long)s0->model_hash),
                   fail(D);
        D->n_chunks += s->n_chunks;
    }
    D->L = D->shards[0].n_layers;
    D->d = D->shards[0].d_model;
    for (int l = 1; l < D->L; l++)
        if (D->shards[0].layers[l] != D->shards[0].layers[l - 1] + 1)
            return err_set(e, "%s: the CLT needs consecutive layers (got layer %d after %d)", paths[0],
                           D->shards[0].layers[l], D->shards[0].layers[l - 1]),
                   fail(D);
    if (!D->n_chunks) return err_set(e, "%s: no activations", paths[0]), fail(D);
    D->chunk_shard = xmalloc(D->n_chunks * sizeof *D->chunk_shard);
    D->chunk_index = xmalloc(D->n_chunks * sizeof *D->chunk_index);
    D->order = xmalloc(D->n_chunks * sizeof *D->order);
    uint64_t k = 0;
    for (int i = 0; i < n; i++)
        for (uint64_t c = 0; c < D->shards[i].n_chunks; c++, k++) {
            D->chunk_shard[k] = (uint32_t)i;
            D->chunk_index[k] = c;
        }
    // normalization: mean norm sqrt(d) per layer, from all shards' statistics (token-weighted)
    int L = D->L, d = D->d;
    D->s_in = xmalloc((size_t)L * sizeof(float));
    D->s_out = xmalloc((size_t)L * sizeof(float));
    D->mean_out = xcalloc((size_t)L * d, sizeof(float));
    for (int l = 0; l < L; l++) {
        double tok = 0, nin = 0, nout = 0;
        double *mo = xcalloc((size_t)d, sizeof(double));
        for (int i = 0; i < n; i++) {
            const ActLayerStats *st = &D->shards[i].stats[l];
            tok += (double)st->count;
            nin += st->in.mean_norm * (double)st->count;
            nout += st->out.mean_norm * (double)st->count;
            for (int j = 0; j < d; j++) mo[j] += st->out.mean[j] * (double)st->count;
        }
        D->s_in[l] = nin > 0 ? (float)(sqrt((double)d) * tok / nin) : 1.0f;
        D->s_out[l] = nout > 0 ? (float)(sqrt((double)d) * tok / nout) : 1.0f;
        for (int j = 0; j < d; j++) D->mean_out[(size_t)l * d + j] = (float)(mo[j] / tok) * D->s_out[l];
        free(mo);
    }
    D->px = xcalloc((size_t)L, sizeof(float *));
    D->py = xcalloc((size_t)L, sizeof(float *));
    return 0;
}

// Loads pool (epoch, pool) if not loaded: 1, or 0 if the epoch has no such pool, -1 on a read error.
static int load_pool(CltData *D, int64_t epoch, int64_t pool, Error *e) {
    if (D->epoch == epoch && D->pool == pool) return 1;
    uint64_t first = (uint64_t)pool * (uint64_t)D->pool_chunks;
    if (first >= D->n_chunks) return 0;
    if (D->order_epoch != epoch) {  // Fisher-Yates with the epoch's seed
        uint64_t s = mix_seed(D->seed, (uint64_t)epoch, 0xC0FFEE);
        for (uint64_t i = 0; i < D->n_chunks; i++) D->order[i] = i;
        for (uint64_t i = D->n_chunks; i > 1; i--) {
            uint64_t j = clt_splitmix64(&s) % i, t = D->order[i - 1];
            D->order[i - 1] = D->order[j];
            D->order[j] = t;
        }
        D->order_epoch = epoch;
    }
    uint64_t last = first + (uint64_t)D->pool_chunks;
    if (last > D->n_chunks) last = D->n_chunks;
    int L = D->L, d = D->d;
    size_t total = 0;
    for (uint64_t c = first; c < last; c++) {
        uint64_t k = D->order[c];
        total += D->shards[D->chunk_shard[k]].index[D->chunk_index[k]].n_tokens;
    }
    if (total > D->pool_cap) {
        D->pool_cap = total;
        for (int l = 0; l < L; l++) {
            D->px[l] = xrealloc(D->px[l], total * d * sizeof(float));
            D->py[l] = xrealloc(D->py[l], total * d * sizeof(float));
        }
        D->perm = xrealloc(D->perm, total * sizeof(uint32_t));
    }
    size_t at = 0;
    for (uint64_t c = first; c < last; c++) {
        uint64_t k = D->order[c];
        const ActShard *sh = &D->shards[D->chunk_shard[k]];
        if (actshard_read_chunk(sh, D->chunk_index[k], &D->chunk, e)) {
            D->epoch = D->pool = -1;  // the pool is half loaded
            return -1;
        }
        uint32_t nt = D->chunk.n;
        for (int l = 0; l < L; l++) {
            const float *src_in = D->chunk.in + (size_t)l * nt * d, *src_out = D->chunk.out + (size_t)l * nt * d;
            float *dx = D->px[l] + at * d, *dy = D->py[l] + at * d;
            for (size_t i = 0; i < (size_t)nt * d; i++) {
                dx[i] = src_in[i] * D->s_in[l];
                dy[i] = src_out[i] * D->s_out[l];
            }
        }
        at += nt;
    }
    D->pool_tokens = total;
    uint64_t s = mix_seed(D->seed, (uint64_t)epoch, (uint64_t)pool + 1);
    for (size_t i = 0; i < total; i++) D->perm[i] = (uint32_t)i;
    for (size_t i = total; i > 1; i--) {
        size_t j = (size_t)(clt_splitmix64(&s) % i);
        uint32_t t = D->perm[i - 1];
        D->perm[i - 1] = D->perm[j];
        D->perm[j] = t;
    }
    D->epoch = epoch;
    D->pool = pool;
    return 1;
}

static int cmp_u64_desc(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

uint64_t clt_data_max_pool_tokens(const CltData *D) {
    uint64_t *n = xmalloc(D->n_chunks * sizeof *n), total = 0;
    for (uint64_t k = 0; k < D->n_chunks; k++) n[k] = D->shards[D->chunk_shard[k]].index[D->chunk_index[k]].n_tokens;
    qsort(n, D->n_chunks, sizeof *n, cmp_u64_desc);
    for (uint64_t k = 0; k < D->n_chunks && k < (uint64_t)D->pool_chunks; k++) total += n[k];
    free(n);
    return total;
}

int clt_data_next_batch(CltData *D, CltCursor *cur, int B, float **x, float **y, Error *e) {
    int epochs_crossed = 0;
    for (;;) {
        int loaded = load_pool(D, cur->epoch, cur->pool, e);
        if (loaded < 0) return -1;
        if (!loaded) {
            // a whole epoch passed without a full batch: no pool will ever hold one (was an endless loop)
            if (++epochs_crossed == 2)
                return err_set(e, "--batch %d: no shuffle pool holds that many tokens (pools of %d chunks; the "
                               "shards' chunks hold fewer); lower --batch or raise --pool-chunks", B, D->pool_chunks);
            cur->epoch++;
            cur->pool = 0;
            cur->batch = 0;
            continue;
        }
        if ((size_t)(cur->batch + 1) * (size_t)B > D->pool_tokens) {
            cur->pool++;
            cur->batch = 0;
            continue;
        }
        break;
    }
    int d = D->d;
    for (int l = 0; l < D->L; l++)
        for (int t = 0; t < B; t++) {
            uint32_t src = D->perm[(size_t)cur->batch * B + t];
            memcpy(x[l] + (size_t)t * d, D->px[l] + (size_t)src * d, (size_t)d * sizeof(float));
            memcpy(y[l] + (size_t)t * d, D->py[l] + (size_t)src * d, (size_t)d * sizeof(float));
        }
    cur->batch++;
    return 0;
}

void clt_data_close(CltData *D) {
    for (int i = 0; i < D->n_shards; i++) actshard_close(&D->shards[i]);
    for (int l = 0; D->px && l < D->L; l++) {
        free(D->px[l]);
        free(D->py[l]);
    }
    free(D->px);
    free(D->py);
    free(D->perm);
    free(D->order);
    free(D->shards);
    free(D->chunk_shard);
    free(D->chunk_index);
    free(D->s_in);
    free(D->s_out);
    free(D->mean_out);
    actchunk_free(&D->chunk);
    memset(D, 0, sizeof *D);
}

