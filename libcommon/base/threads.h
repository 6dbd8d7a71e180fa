// threads.h — a parallel for-loop over pthreads for the CPU kernels (no OpenMP dependency).
// fn(ctx, begin, end) is called on disjoint ranges covering [0, n); each range is at least
// min_chunk items so tiny loops stay on the calling thread.
#pragma once
#include <stddef.h>

typedef void (*ParallelFn)(void *ctx, size_t begin, size_t end);

void parallel_for(size_t n, size_t min_chunk, ParallelFn fn, void *ctx);
// The same with at most `threads` threads (0 = parallel_threads()): for library code whose caller
// may already run it on several threads (e.g. actshard_read_chunk from a pool of readers).
void parallel_for_n(size_t n, size_t min_chunk, int threads, ParallelFn fn, void *ctx);
// Threads used by parallel_for: $CLTKIT_THREADS, else the online cores.
int parallel_threads(void);
