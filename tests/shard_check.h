// shard_check.h — what the token- and activation-shard tests (test_tokshard.c, test_actshard.c)
// share: the test's temporary directory, raw file writes, activation writes in
// calls of varied sizes, the count of left-over temp
// files, and little-endian fields for the files they build by hand. The byte helpers are the
// tests' own (not libcommon's), so a hand-built file checks the format spec independently.
#pragma once
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actshard.h"
#include "check.h"  // rng_next, rng_unit, rng_normal
#include "tmpdir.h"

static TmpDir shard_tmp;  // the test's directory (tmp_open in main, tmp_close at the end)
static inline char *tpath(const char *name) {  // caller frees
    char *p = malloc(strlen(shard_tmp.dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", shard_tmp.dir, name);
    return p;
}
static inline int tmp_files_left(void) {  // "*.tmp.*" files in the test's directory
    DIR *d = opendir(shard_tmp.dir);
    int n = 0;
    for (struct dirent *ent; d && (ent = readdir(d));) n += strstr(ent->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}
static inline void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) fwrite(p, 1, n, f), fclose(f);
}

static inline void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static inline uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// Writes n tokens of activations into w in calls of the given sizes (cycled; 0 is a legal empty
// call), so the writer's chunking meets every boundary; x_in, x_out (L, n, d) hook-major as the
// tests hold them, tok/doc/pos (n,). Closes w (aborts it on an error). 0 or -1.
static inline int write_in_calls(ActShardWriter *w, int L_, int d_, size_t n, const uint32_t *tok, const uint64_t *doc,
                                 const uint32_t *pos, const float *x_in, const float *x_out, const size_t *sizes,
                                 int n_sizes, Error *e) {
    size_t L = (size_t)L_, d = (size_t)d_;
    float *bin = malloc((L * n * d + 1) * 4), *bout = malloc((L * n * d + 1) * 4);
    int rc = 0;
    for (size_t t = 0, call = 0; t < n && !rc; call++) {
        size_t m = sizes[call % (size_t)n_sizes];
        if (m > n - t) m = n - t;
        for (size_t l = 0; l < L; l++) {  // (L, m, d) slices of the (L, n, d) arrays
            memcpy(bin + l * m * d, x_in + (l * n + t) * d, m * d * 4);
            memcpy(bout + l * m * d, x_out + (l * n + t) * d, m * d * 4);
        }
        rc = actshard_write(w, m, tok + t, doc + t, pos + t, bin, bout, e);
        t += m;
    }
    free(bin), free(bout);
    if (rc) {
        actshard_writer_abort(w);
        return -1;
    }
    return actshard_writer_close(w, e);
}
