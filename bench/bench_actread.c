// bench_actread — how fast a whole activation shard reads back, and where the time goes.
//
//   build/bench/bench_actread SHARD.acts [-n ITERS]
//
// Every chunk is read (pread, CRC, zstd, decode to fp32) in four ways, each the best of ITERS
// passes, printed as one JSON line with GB/s of decoded fp32:
//   verify        encoded_only on one thread: CRC + decompression + scale checks, no decoding
//   one_thread    the full read on one thread (ActChunk.threads = 1)
//   blocks        one reader, each chunk's (hook, layer) blocks decoded on all threads
//   chunks        one reader thread per core, each with its own ActChunk, chunks interleaved
// zstd decompresses a chunk as one frame on one thread, so `blocks` can only speed up the
// decoding that follows it; `chunks` is how a trainer's loader scales.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actshard.h"
#include "err.h"
#include "progress.h"
#include "threads.h"

typedef struct {
    const ActShard *s;
    int t, T, threads, encoded_only;
    int failed;
} Reader;

static void *read_some(void *arg) {
    Reader *r = arg;
    ActChunk c = {.threads = r->threads, .encoded_only = r->encoded_only};
    Error e;
    for (uint64_t i = (uint64_t)r->t; i < r->s->n_chunks; i += (uint64_t)r->T)
        if (actshard_read_chunk(r->s, i, &c, &e)) {
            fprintf(stderr, "bench_actread: %s\n", e.msg);
            r->failed = 1;
            break;
        }
    actchunk_free(&c);
    return NULL;
}

// One pass with T reader threads, each decoding with `threads`; returns seconds.
static double pass(const ActShard *s, int T, int threads, int encoded_only) {
    pthread_t tid[64];
    Reader r[64];
    double t0 = now_seconds();
    for (int t = 0; t < T; t++) {
        r[t] = (Reader){s, t, T, threads, encoded_only, 0};
        if (pthread_create(&tid[t], NULL, read_some, &r[t])) fatal("cannot start a thread");
    }
    for (int t = 0; t < T; t++) pthread_join(tid[t], NULL);
    double dt = now_seconds() - t0;
    for (int t = 0; t < T; t++)
        if (r[t].failed) exit(1);
    return dt;
}

int main(int argc, char **argv) {
    if (argc < 2) fatal("usage: bench_actread SHARD.acts [-n ITERS]");
    int iters = argc > 3 && !strcmp(argv[2], "-n") ? atoi(argv[3]) : 3;
    ActShard s;
    Error e;
    if (actshard_open(&s, argv[1], &e)) fatal_err(&e);
    int cores = parallel_threads();
    if (cores > 64) cores = 64;
    double gb = (double)s.n_tokens * 8.0 * s.n_layers * s.d_model / 1e9;
    struct {
        const char *name;
        int T, threads, encoded_only;
    } jobs[] = {{"verify", 1, 1, 1}, {"one_thread", 1, 1, 0}, {"blocks", 1, cores, 0}, {"chunks", cores, 1, 0}};
    for (size_t k = 0; k < sizeof jobs / sizeof jobs[0]; k++) {
        double best = 1e30;
        for (int it = 0; it < iters; it++) {
            double dt = pass(&s, jobs[k].T, jobs[k].threads, jobs[k].encoded_only);
            best = dt < best ? dt : best;
        }
        printf("{\"job\": \"%s\", \"readers\": %d, \"decode_threads\": %d, \"encoding\": \"%s\", \"tokens\": %llu, "
               "\"gb_fp32\": %.4f, \"seconds\": %.4f, \"gb_per_s\": %.3f}\n",
               jobs[k].name, jobs[k].T, jobs[k].threads, act_dtype_name(s.dtype), (unsigned long long)s.n_tokens, gb,
               best, gb / best);
    }
    actshard_close(&s);
    return 0;
}
