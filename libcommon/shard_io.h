// shard_io.h — what the token-shard (tokshard.c) and activation-shard (actshard.c) readers and
// writers share: little-endian fields, growable buffers, the metadata check, counted writes, and
// reads by offset from a file or from memory.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

static inline void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

// Returns p grown to hold at least n bytes (amortised doubling); *cap tracks its size.
void *shard_grow(void *p, size_t *cap, size_t n);
// 1 if text (len bytes, not NUL-terminated) is a JSON object without NUL bytes; else 0 and why.
int shard_meta_is_object(const char *text, size_t len, char *why, size_t why_len);
// Opens a shard for random access: a regular file (not a pipe: shards are read from their end).
int shard_open_file(const char *path, int *fd, uint64_t *size, Error *e);
// Copies len bytes at offset off (already checked to lie inside the shard) from mem, or from fd
// when mem is NULL (pread: no file position, so threads may read one shard at once).
int shard_read_at(int fd, const uint8_t *mem, const char *path, void *dst, size_t len, uint64_t off, Error *e);
// fwrite of n bytes that counts them into *offset; a failure sets *failed and names path.
int shard_write(FILE *f, const char *path, const void *p, size_t n, uint64_t *offset, int *failed, Error *e);
