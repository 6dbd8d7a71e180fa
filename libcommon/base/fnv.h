// fnv.h — FNV-1a 64, the one hash of bytes: a token shard's tokenizer_hash, the model hash
// (formats/acts.md, "model_hash"; tests/ref/model_hash.py is its independent twin) and hash-map
// keys (hashmap.c adds an avalanche). Inline: the hash map calls it on every token lookup.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FNV1A64_OFFSET 0xcbf29ce484222325ull  // FNV's offset basis, 14695981039346656037
#define FNV1A64_PRIME 0x100000001b3ull
// The start the hashes stored in files have always had: 1469598103934665603, FNV's basis with its
// last digit lost (a common slip). The model hash in activation shards and CLT configs, the
// tokenizer_hash of token shards and tests/ref/model_hash.py all use it, so it stays until the
// formats change; formats/tokens.md and formats/acts.md ("Conventions") state it as the start.
#define CLTKIT_HASH_OFFSET 1469598103934665603ull

// Continues hash h over len more bytes.
static inline uint64_t fnv1a64_update(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * FNV1A64_PRIME;
    return h;
}
static inline uint64_t fnv1a64(const void *data, size_t len) { return fnv1a64_update(FNV1A64_OFFSET, data, len); }
// Continues *h over a whole file's bytes, read in 64 KiB blocks. 0, or -1 with e naming the file.
int fnv1a64_file(const char *path, uint64_t *h, Error *e);
