// fuzz_graph_html.c — libFuzzer target for graph2html's reader: the input as a graph JSON through
// validation, packing and page assembly (graph_html_build). Any input must give either a page or
// an Error that starts with the input's name, never a crash, a sanitizer report or a leak.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph_html.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *html = NULL;
    GraphHtmlStats st;
    Error e;
    if (graph_html_build((const char *)data, size, "fuzz.json", NULL, &html, &st, &e)) {
        if (strncmp(e.msg, "fuzz.json: ", 11) != 0) abort();  // every error names the input
        return 0;
    }
    if (!html || strlen(html) != st.html_bytes) abort();
    free(html);
    return 0;
}
