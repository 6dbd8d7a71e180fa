// fuzz_tokshard.c — libFuzzer target for the token shard reader: open from memory, read every
// chunk, iterate every document. Any input must give either a clean read or an Error, never a
// crash, a sanitizer report or a leak.
//
// Each input is read twice: as is, and with every CRC recomputed (footer, header, index,
// chunks). Random mutations almost never keep four CRC-32Cs right, so without the second pass
// the fuzzer would stop at the checksums and never exercise the index, zstd and payload checks
// behind them. The library itself has no "skip checksums" switch.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "tokshard.h"

static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void read_everything(const uint8_t *data, size_t size) {
    TokShard s;
    Error e;
    if (tokshard_open_mem(&s, data, size, "fuzz.tok", &e)) return;
    TokChunk c = {0};
    // Last chunk first, so the reused buffers also see shrinking sizes.
    for (uint64_t i = s.n_chunks; i-- > 0;)
        if (tokshard_read_chunk(&s, i, &c, &e)) break;
    tokchunk_free(&c);
    TokDocIter it;
    tokdoc_iter_init(&it, &s);
    uint64_t id;
    const uint32_t *ids;
    size_t n;
    uint64_t sum = 0;
    while (tokdoc_iter_next(&it, &id, &ids, &n, &e) == 1)
        for (size_t k = 0; k < n; k++) sum += ids[k];  // touch every id (ASan checks the reads)
    tokdoc_iter_free(&it);
    tokshard_close(&s);
    (void)sum;
}

// Rewrites the CRCs of a buffer laid out as formats/tokens.md says, wherever the fields it
// needs lie inside the buffer.
static void fix_crcs(uint8_t *b, size_t n) {
    if (n < 32 + 56) return;
    uint8_t *f = b + n - 56;
    uint64_t index_offset = get64(f), n_chunks = get64(f + 8);
    if (index_offset <= n - 56 && n_chunks <= (n - 56 - index_offset) / 48) {
        for (uint64_t i = 0; i < n_chunks; i++) {
            uint8_t *x = b + index_offset + 48 * i;
            uint64_t off = get64(x), cn = get64(x + 8);
            if (off <= n && cn <= n - off) put32(x + 40, crc32c(b + off, cn));
        }
        put32(f + 32, crc32c(b + index_offset, n_chunks * 48));
    }
    uint64_t meta_len = (uint64_t)b[28] | (uint64_t)b[29] << 8 | (uint64_t)b[30] << 16 | (uint64_t)b[31] << 24;
    if (32 + meta_len <= n) put32(f + 36, crc32c(b, 32 + meta_len));
    put32(f + 44, crc32c(f, 44));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    read_everything(data, size);
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    fix_crcs(copy, size);
    read_everything(copy, size);
    free(copy);
    return 0;
}
