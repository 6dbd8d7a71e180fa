#include "jsonl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int jsonl_parse_line(const char *line, size_t n, const char *field, int want_ids, JsonlDoc *doc, Error *e) {
    memset(doc, 0, sizeof *doc);
    size_t k = 0;
    while (k < n && (line[k] == ' ' || line[k] == '\t' || line[k] == '\n' || line[k] == '\r')) k++;
    if (k == n) return 0;
    json_error_t jerr;
    json_t *obj = json_loadb(line, n, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!obj) return err_set(e, "invalid JSON: %s", jerr.text);
    json_t *v = json_is_object(obj) ? json_object_get(obj, field) : NULL;
    int rc = 1;
    if (want_ids) {
        if (!json_is_array(v)) {
            rc = err_set(e, "no array field \"%s\"", field);
        } else {
            size_t n_ids = json_array_size(v);
            uint32_t *ids = xmalloc((n_ids ? n_ids : 1) * sizeof *ids);
            for (size_t i = 0; i < n_ids && rc == 1; i++) {
                json_t *x = json_array_get(v, i);
                if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 0xFFFFFFFFLL)
                    rc = err_set(e, "\"%s\"[%zu] is not a token id", field, i);
                else ids[i] = (uint32_t)json_integer_value(x);
            }
            if (rc == 1) {
                doc->ids = ids;
                doc->n_ids = n_ids;
            } else {
                free(ids);
            }
        }
    } else if (!json_is_string(v)) {
        rc = err_set(e, "no string field \"%s\"", field);
    } else {
        doc->len = json_string_length(v);
        doc->text = xmalloc(doc->len + 1);
        memcpy(doc->text, json_string_value(v), doc->len);
        doc->text[doc->len] = 0;
    }
    json_decref(obj);
    return rc;
}
