// fuzz_spm.c — libFuzzer target for SentencePiece: spm_parse (the protobuf reader), then the
// conversion to tokenizer.json and loading that back, as `tok convert-spm` does. Any input must
// give a model or an Error naming it; a converted model must load or be refused with an Error.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spm.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    SpmModel m;
    Error e;
    if (spm_parse(&m, copy, size, "fuzz.model", &e) == 0) {
        char *json;
        if (spm_to_tokenizer_json(&m, "fuzz.model", &json, &e) == 0) {
            Tokenizer *t = tokenizer_load_json(json, strlen(json), "fuzz.json", &e);
            if (t) {
                TokScratch *s = tokscratch_new();
                TokIds ids = {0};
                TokEncodeOptions opt = {0};
                if (tokenizer_encode(t, s, "ab a\xe2\x96\x81", 8, &opt, &ids, &e) == 0) {
                    char *text;
                    size_t len;
                    if (tokenizer_decode(t, ids.ids, ids.n, 0, &text, &len, &e) == 0) free(text);
                }
                tokids_free(&ids);
                tokscratch_free(s);
                tokenizer_free(t);
            }
            free(json);
        }
        spm_free(&m);
    } else if (strncmp(e.msg, "fuzz.model", 10) != 0) {
        abort();
    }
    free(copy);
    return 0;
}
