#include "threads.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"

int parallel_threads(void) {
    long long env = cli_env_int("CLTKIT_THREADS", 0, 0, 4096);  // 0: one per CPU
    if (env > 0) return (int)env;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

typedef struct {
    ParallelFn fn;
    void *ctx;
    size_t begin, end;
} ParallelRange;

static void *parallel_run(void *arg) {
    ParallelRange *r = arg;
    r->fn(r->ctx, r->begin, r->end);
    return NULL;
}

void parallel_for(size_t n, size_t min_chunk, ParallelFn fn, void *ctx) { parallel_for_n(n, min_chunk, 0, fn, ctx); }

void parallel_for_n(size_t n, size_t min_chunk, int max_threads, ParallelFn fn, void *ctx) {
    if (!n) return;
    size_t threads = (size_t)(max_threads > 0 ? max_threads : parallel_threads());
    if (min_chunk < 1) min_chunk = 1;
    if (threads > n / min_chunk) threads = n / min_chunk;
    if (threads <= 1) {
        fn(ctx, 0, n);
        return;
    }
    if (threads > 64) threads = 64;
    pthread_t tid[64];
    ParallelRange ranges[64];
    for (size_t t = 0; t < threads; t++) ranges[t] = (ParallelRange){fn, ctx, n * t / threads, n * (t + 1) / threads};
    // the calling thread takes the first range itself
    for (size_t t = 1; t < threads; t++)
        if (pthread_create(&tid[t], NULL, parallel_run, &ranges[t])) fatal("cannot start a worker thread");
    parallel_run(&ranges[0]);
    for (size_t t = 1; t < threads; t++) pthread_join(tid[t], NULL);
}
