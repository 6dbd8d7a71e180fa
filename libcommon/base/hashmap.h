// hashmap.h — two open-addressing hash tables the tokenizer needs on its hot path:
// StrMap (byte string -> u32, strings kept in one pool) and U64Map (u64 key -> u64 value).
// Both are built once and read concurrently by many threads (lookups never write).
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *slots;  // (cap,) packed: high 32 bits = entry index + 1 (0 = empty), low 32 = hash
    uint32_t cap_mask;
    uint32_t n;
    char *pool;           // all keys, back to back
    size_t pool_len, pool_cap;
    uint64_t *key_off;    // (n,) offset<<24 | length in pool (length < 16 MiB)
    uint32_t *values;     // (n,)
    uint32_t entries_cap;
} StrMap;

void strmap_init(StrMap *m, uint32_t expected);
void strmap_free(StrMap *m);
// Inserts or overwrites; returns 1 if the key was new.
int strmap_put(StrMap *m, const char *key, size_t len, uint32_t value);
// Returns 1 and sets *value if found.
int strmap_get(const StrMap *m, const char *key, size_t len, uint32_t *value);
uint64_t hash_bytes(const void *data, size_t len);

typedef struct {
    uint64_t *keys;    // (cap,) key + 1 stored so 0 means empty; keys must not be UINT64_MAX
    uint64_t *values;  // (cap,)
    uint64_t cap_mask;
    uint64_t n;
} U64Map;

void u64map_init(U64Map *m, uint64_t expected);
void u64map_free(U64Map *m);
void u64map_put(U64Map *m, uint64_t key, uint64_t value);  // overwrites
int u64map_get(const U64Map *m, uint64_t key, uint64_t *value);
