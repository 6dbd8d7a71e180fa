// fuzz_llama2c.c — libFuzzer target for the llama2.c checkpoint reader (llama2c_parse): header
// (legacy v0 and "ak42" v1), sizes, shared classifier. Any input must parse or fail with an Error
// naming the input; on success every tensor's bytes lie inside it (ASan checks the reads).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llama2c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);  // exactly the input's bytes: reads past it are reported
    memcpy(copy, data, size);
    Llama2cModel m;
    Error e;
    if (llama2c_parse(&m, copy, size, "fuzz.bin", &e) == 0) llama2c_free(&m);
    else if (strncmp(e.msg, "fuzz.bin", 8) != 0) abort();
    free(copy);
    return 0;
}
