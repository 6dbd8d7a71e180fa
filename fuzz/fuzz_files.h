// fuzz_files.h — for targets whose parser reads files or a directory (model_load, clt_load,
// llama2c_open): splits one fuzz input into parts and writes them into a private directory made
// once per process. libFuzzer runs one input at a time, so the files are simply overwritten.
#pragma once
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *fuzz_dir(void) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/cltkit-fuzz-XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

// Writes data to fuzz_dir()/name (or removes the file for data == NULL) and returns its path.
static const char *fuzz_put(const char *name, const uint8_t *data, size_t size) {
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", fuzz_dir(), name);
    if (!data) {
        unlink(p);
        return p;
    }
    FILE *f = fopen(p, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) abort();
    return p;
}

// Splits data at the offset its first two bytes name (little endian, modulo the rest's size + 1):
// *a = the bytes before it, *b = the bytes after. Mutating the two bytes moves the boundary.
static void fuzz_split(const uint8_t *data, size_t size, const uint8_t **a, size_t *na, const uint8_t **b, size_t *nb) {
    if (size < 2) {
        *a = *b = data;
        *na = *nb = 0;
        return;
    }
    size_t rest = size - 2, cut = ((size_t)data[0] | (size_t)data[1] << 8) % (rest + 1);
    *a = data + 2;
    *na = cut;
    *b = data + 2 + cut;
    *nb = rest - cut;
}
