// shard_check.h — what the token- and activation-shard tests (test_tokshard.c, test_actshard.c)
// share: a seeded generator, a temporary directory, raw file writes, the count of left-over temp
// files, and little-endian fields for the files they build by hand. The byte helpers are the
// tests' own (not libcommon's), so a hand-built file checks the format spec independently.
#pragma once
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_next(uint64_t *s) {  // xorshift64*
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static char tmpdir[64];
// Creates tmpdir as /tmp/cltkit_<name>_XXXXXX; 0, or -1 (reported) on failure.
static int tmpdir_create(const char *name) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cltkit_%s_XXXXXX", name);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}
static char *tpath(const char *name) {  // caller frees
    char *p = malloc(strlen(tmpdir) + strlen(name) + 2);
    sprintf(p, "%s/%s", tmpdir, name);
    return p;
}
static int tmp_files_left(void) {  // "*.tmp.*" files in tmpdir
    DIR *d = opendir(tmpdir);
    int n = 0;
    for (struct dirent *ent; d && (ent = readdir(d));) n += strstr(ent->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}
static void write_file(const char *path, const void *p, size_t n) {
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
