// jsonl.h — one line of a JSONL corpus (tok encode's input): a JSON object whose field holds a
// document's text (a string) or, for already tokenized corpora, its token ids (an array of
// integers in [0, 2^32)). Errors are values, so tok can name file:line and the fuzzer can run it.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct {
    char *text;     // (len + 1) malloc'd, NUL-terminated (the text may hold NULs); NULL with ids
    size_t len;
    uint32_t *ids;  // (n_ids,) malloc'd when the field is read as ids
    size_t n_ids;
} JsonlDoc;

// Parses line[0..n). field names the string field, or with want_ids the ids array. Returns 1 with
// *doc filled, 0 for a blank line (nothing allocated), -1 with e set (the message names the field;
// the caller adds file:line).
int jsonl_parse_line(const char *line, size_t n, const char *field, int want_ids, JsonlDoc *doc, Error *e);
