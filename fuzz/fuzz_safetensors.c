// fuzz_safetensors.c — libFuzzer target for the safetensors reader: any input must either parse
// into tensors whose bytes lie inside the buffer, or fail with an Error naming the input; never
// crash, leak or read out of bounds (ASan/UBSan). Build: `make fuzz`; run: see fuzz/README.md.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // An odd address, as tensors in a real mapping can be: conversions must not assume alignment.
    uint8_t *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy + 1, data, size);
    const uint8_t *buf = copy + 1;

    SafeTensors st;
    Error e = {{0}};
    if (safetensors_parse(&st, buf, size, "fuzz", &e) != 0) {
        if (strncmp(e.msg, "fuzz: ", 6) != 0) abort();  // every error names the input
        free(copy);
        return 0;
    }
    for (int i = 0; i < st.n_tensors; i++) {
        const StTensor *t = &st.tensors[i];
        const uint8_t *p = t->data;
        if (p < buf || t->nbytes > size || p + t->nbytes > buf + size) abort();  // must lie inside
        if (safetensors_find(&st, t->name) != t) abort();
        float *out = malloc(t->numel ? t->numel * sizeof(float) : 1);  // numel <= size: bytes are in buf
        if (safetensors_to_f32(&st, t, out, t->numel, &e) != 0) abort();  // every dtype converts
        free(out);
    }
    safetensors_close(&st);
    free(copy);
    return 0;
}
