// fuzz_gguf.c — libFuzzer target for the GGUF reader: any input must either parse into
// metadata and tensors whose bytes lie inside the buffer, or fail with an Error naming the input;
// never crash, leak or read out of bounds (ASan/UBSan). On parsed input it walks every metadata
// value (nested arrays included), dequantizes every tensor of a supported type, and runs the
// Llama config check and both tokenizer conversions, which read the metadata as a model would.
// Build: `make fuzz`; run: see fuzz/README.md.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_llama.h"
#include "gguf_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void name_check(const Error *e) {
    if (strncmp(e->msg, "fuzz: ", 6) != 0) abort();  // every error names the input
}

// Touches every byte a value claims, so ASan sees any span outside the input.
static uint64_t walk(const GgufValue *v, const uint8_t *lo, const uint8_t *hi) {
    uint64_t acc = 0;
    if (v->type == GGUF_STRING) {
        if (v->s.len && ((const uint8_t *)v->s.ptr < lo || (const uint8_t *)v->s.ptr + v->s.len > hi)) abort();
        for (uint64_t i = 0; i < v->s.len; i++) acc += (uint8_t)v->s.ptr[i];
    } else if (v->type == GGUF_ARRAY) {
        if (v->arr.items) {
            for (uint64_t i = 0; i < v->arr.n; i++) acc += walk(&v->arr.items[i], lo, hi);
        } else {  // (a negative float has no uint64_t: compare, don't convert)
            for (uint64_t i = 0; i < v->arr.n; i++)
                acc += (uint64_t)gguf_array_int(v, i) + (gguf_array_float(v, i) > 0);
        }
    }
    return acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // An odd address, as tensors in a real mapping can be: dequantizers must not assume alignment.
    uint8_t *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy + 1, data, size);
    const uint8_t *buf = copy + 1;

    Gguf g;
    Error e = {{0}};
    if (gguf_parse(&g, buf, size, "fuzz", &e) != 0) {
        name_check(&e);
        free(copy);
        return 0;
    }
    volatile uint64_t sink = 0;
    for (uint64_t i = 0; i < g.n_kv; i++) {
        if (gguf_find_kv(&g, g.kv[i].key) != &g.kv[i]) abort();  // keys are unique
        sink += walk(&g.kv[i].value, buf, buf + size);
    }
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const GgufTensor *t = &g.tensors[i];
        if (t->data < buf || t->nbytes > size || t->data + t->nbytes > buf + size) abort();  // inside
        if (gguf_find_tensor(&g, t->name) != t) abort();
        if (!ggml_type_info(t->type)->dequant || t->numel > (64u << 20) / sizeof(float)) continue;
        float *out = malloc(t->numel ? t->numel * sizeof(float) : 1);
        if (gguf_tensor_to_f32(&g, t, out, &e) != 0) abort();  // every supported type converts
        for (uint64_t k = 0; k < t->numel; k += 97) sink += (uint64_t)(out[k] == out[k]);
        free(out);
    }
    GgufLlamaConfig c;
    if (gguf_llama_config(&g, &c, &e)) name_check(&e);
    for (int hf = 0; hf < 2; hf++) {
        char *json = NULL;
        if (gguf_tokenizer_json(&g, hf, &json, &e)) name_check(&e);
        free(json);
    }
    char *cfg = NULL;
    if (gguf_tokenizer_config_json(&g, &cfg, &e)) name_check(&e);
    free(cfg);
    gguf_close(&g);
    free(copy);
    return 0;
}
