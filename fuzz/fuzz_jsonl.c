// fuzz_jsonl.c — libFuzzer target for tok encode's JSONL reader (jsonl_parse_line): every line of
// the input, read as text (field "text") and as token ids (field "ids"). Any line must give a
// document, a blank line or an Error — never a crash or a leak.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        char *line = malloc(n ? n : 1);  // exactly the line: reads past it are reported
        memcpy(line, p, n);
        for (int want_ids = 0; want_ids < 2; want_ids++) {
            JsonlDoc d;
            Error e;
            if (jsonl_parse_line(line, n, want_ids ? "ids" : "text", want_ids, &d, &e) == 1) {
                if (!want_ids && (!d.text || d.text[d.len])) abort();  // NUL-terminated
                free(d.text);
                free(d.ids);
            }
        }
        free(line);
        p += n;
    }
    return 0;
}
