#include "hashmap.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fnv.h"

uint64_t hash_bytes(const void *data, size_t len) {
    // FNV-1a with a final avalanche (murmur3 fmix64): fast on the short keys tokenizers have.
    uint64_t h = fnv1a64_update(CLTKIT_HASH_OFFSET, data, len);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static uint32_t pow2_at_least(uint64_t n) {
    uint64_t c = 16;
    while (c < n) c <<= 1;
    return (uint32_t)c;
}

void strmap_init(StrMap *m, uint32_t expected) {
    memset(m, 0, sizeof *m);
    uint32_t cap = pow2_at_least((uint64_t)expected * 2 + 16);
    m->slots = xcalloc(cap, sizeof *m->slots);
    m->cap_mask = cap - 1;
    m->entries_cap = expected ? expected : 16;
    m->key_off = xmalloc(m->entries_cap * sizeof *m->key_off);
    m->values = xmalloc(m->entries_cap * sizeof *m->values);
    m->pool_cap = 1024;
    m->pool = xmalloc(m->pool_cap);
}

void strmap_free(StrMap *m) {
    free(m->slots);
    free(m->key_off);
    free(m->values);
    free(m->pool);
    memset(m, 0, sizeof *m);
}

static int strmap_key_eq(const StrMap *m, uint32_t entry, const char *key, size_t len) {
    uint64_t ko = m->key_off[entry];
    return (ko & 0xFFFFFF) == len && !memcmp(m->pool + (ko >> 24), key, len);
}

// Finds the slot holding key, or the empty slot where it would go.
static uint32_t strmap_find_slot(const StrMap *m, const char *key, size_t len, uint32_t h32) {
    uint32_t i = h32 & m->cap_mask;
    for (;;) {
        uint64_t s = m->slots[i];
        if (!s) return i;
        if ((uint32_t)s == h32 && strmap_key_eq(m, (uint32_t)(s >> 32) - 1, key, len)) return i;
        i = (i + 1) & m->cap_mask;
    }
}

static void strmap_grow(StrMap *m) {
    uint32_t cap = (m->cap_mask + 1) * 2;
    uint64_t *old = m->slots;
    uint32_t old_cap = m->cap_mask + 1;
    m->slots = xcalloc(cap, sizeof *m->slots);
    m->cap_mask = cap - 1;
    for (uint32_t j = 0; j < old_cap; j++) {
        if (!old[j]) continue;
        uint32_t i = (uint32_t)old[j] & m->cap_mask;
        while (m->slots[i]) i = (i + 1) & m->cap_mask;
        m->slots[i] = old[j];
    }
    free(old);
}

int strmap_put(StrMap *m, const char *key, size_t len, uint32_t value) {
    if (len >= (1u << 24)) fatal("hashmap key of %zu bytes is too long", len);
    uint32_t h32 = (uint32_t)hash_bytes(key, len);
    uint32_t i = strmap_find_slot(m, key, len, h32);
    if (m->slots[i]) {
        m->values[(m->slots[i] >> 32) - 1] = value;
        return 0;
    }
    if (m->n == m->entries_cap) {
        m->entries_cap *= 2;
        m->key_off = xrealloc(m->key_off, m->entries_cap * sizeof *m->key_off);
        m->values = xrealloc(m->values, m->entries_cap * sizeof *m->values);
    }
    if (m->pool_len + len > m->pool_cap) {
        while (m->pool_len + len > m->pool_cap) m->pool_cap *= 2;
        m->pool = xrealloc(m->pool, m->pool_cap);
    }
    memcpy(m->pool + m->pool_len, key, len);
    m->key_off[m->n] = ((uint64_t)m->pool_len << 24) | len;
    m->values[m->n] = value;
    m->pool_len += len;
    m->slots[i] = ((uint64_t)(m->n + 1) << 32) | h32;
    m->n++;
    if ((uint64_t)m->n * 2 > m->cap_mask) strmap_grow(m);
    return 1;
}

int strmap_get(const StrMap *m, const char *key, size_t len, uint32_t *value) {
    uint32_t h32 = (uint32_t)hash_bytes(key, len);
    uint32_t i = strmap_find_slot(m, key, len, h32);
    if (!m->slots[i]) return 0;
    *value = m->values[(m->slots[i] >> 32) - 1];
    return 1;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

void u64map_init(U64Map *m, uint64_t expected) {
    uint64_t cap = pow2_at_least(expected * 2 + 16);
    m->keys = xcalloc(cap, sizeof *m->keys);
    m->values = xmalloc(cap * sizeof *m->values);
    m->cap_mask = cap - 1;
    m->n = 0;
}

void u64map_free(U64Map *m) {
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

static void u64map_grow(U64Map *m) {
    U64Map bigger;
    u64map_init(&bigger, (m->cap_mask + 1));
    for (uint64_t j = 0; j <= m->cap_mask; j++)
        if (m->keys[j]) u64map_put(&bigger, m->keys[j] - 1, m->values[j]);
    u64map_free(m);
    *m = bigger;
}

void u64map_put(U64Map *m, uint64_t key, uint64_t value) {
    uint64_t i = mix64(key) & m->cap_mask;
    while (m->keys[i] && m->keys[i] != key + 1) i = (i + 1) & m->cap_mask;
    if (!m->keys[i]) {
        m->keys[i] = key + 1;
        m->n++;
    }
    m->values[i] = value;
    if (m->n * 2 > m->cap_mask) u64map_grow(m);
}

int u64map_get(const U64Map *m, uint64_t key, uint64_t *value) {
    uint64_t i = mix64(key) & m->cap_mask;
    for (;;) {
        uint64_t k = m->keys[i];
        if (!k) return 0;
        if (k == key + 1) {
            *value = m->values[i];
            return 1;
        }
        i = (i + 1) & m->cap_mask;
    }
}
