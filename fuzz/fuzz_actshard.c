// fuzz_actshard.c — libFuzzer target for the activation shard reader: open from memory, read
// every chunk (decoded to fp32, then again left encoded), print the info JSON. Any input must
// give either a clean read or an Error that starts with the input's name, never a crash, a
// sanitizer report or a leak. Every encoding (f32/bf16/f16, int8/fp8/int4 with their scales)
// and both zstd layouts (plain, byte planes) are in the seeds.
//
// Each input is read twice: as is, and with every CRC recomputed (footer, header, chunks,
// statistics, index). Random mutations almost never keep five CRC-32Cs right, so without the
// second pass the fuzzer would stop at the checksums and never exercise the placement, zstd,
// payload and statistics checks behind them. The library has no "skip checksums" switch.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actshard.h"
#include "crc32c.h"

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void read_everything(const uint8_t *data, size_t size) {
    ActShard s;
    Error e;
    if (actshard_open_mem(&s, data, size, "fuzz.acts", &e)) {
        if (strncmp(e.msg, "fuzz.acts: ", 11) != 0) abort();  // every error names the input
        return;
    }
    ActChunk c = {0};
    double sum = 0;
    // Last chunk first, so the reused buffers also see shrinking sizes.
    for (uint64_t i = s.n_chunks; i-- > 0;) {
        if (actshard_read_chunk(&s, i, &c, &e)) {
            if (strncmp(e.msg, "fuzz.acts: ", 11) != 0) abort();
            break;
        }
        // touch every decoded value and id (ASan checks the reads)
        size_t v = (size_t)s.n_layers * c.n * (size_t)s.d_model;
        for (size_t k = 0; k < v; k++) sum += c.in[k] + c.out[k];
        for (uint32_t k = 0; k < c.n; k++) sum += c.token_ids[k] + (double)c.doc_ids[k] + c.positions[k];
    }
    actchunk_free(&c);
    // Encoded only: the same checks without decoding; touch every scale and value byte.
    ActChunk ce = {.encoded_only = 1};
    for (uint64_t i = 0; i < s.n_chunks; i++) {
        if (actshard_read_chunk(&s, i, &ce, &e)) {
            if (strncmp(e.msg, "fuzz.acts: ", 11) != 0) abort();
            break;
        }
        for (size_t k = 0; k < 2 * (size_t)s.n_layers * ce.scale_block; k++) sum += ce.scales[k];
        for (size_t k = 0; k < 2 * (size_t)s.n_layers * ce.val_block; k++) sum += ce.vals[k];
    }
    actchunk_free(&ce);
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull) {
        actshard_print_info(&s, devnull, 1, &e);
        fclose(devnull);
    }
    actshard_close(&s);
    (void)sum;
}

// Rewrites the CRCs of a buffer laid out as formats/acts.md says, wherever the fields they
// need lie inside the buffer.
static void fix_crcs(uint8_t *b, size_t n) {
    if (n < 80 + 56) return;
    uint8_t *f = b + n - 56;
    uint64_t index_offset = get64(f), n_chunks = get64(f + 8), stats_offset = get64(f + 24);
    if (index_offset <= n - 56 && n_chunks <= (n - 56 - index_offset) / 48) {
        for (uint64_t i = 0; i < n_chunks; i++) {
            uint8_t *x = b + index_offset + 48 * i;
            uint64_t off = get64(x), cn = get64(x + 8);
            if (off <= n && cn <= n - off) put32(x + 40, crc32c(b + off, cn));
        }
        put32(f + 32, crc32c(b + index_offset, n_chunks * 48));
        if (stats_offset <= index_offset) put32(f + 40, crc32c(b + stats_offset, index_offset - stats_offset));
    }
    uint64_t header_end = 80 + 4ull * get32(b + 24) + get32(b + 72) + get32(b + 76);
    if (header_end <= n) put32(f + 36, crc32c(b, header_end));
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
