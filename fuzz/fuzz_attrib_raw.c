// fuzz_attrib_raw.c — libFuzzer target for the attribution raw-file reader (attrib_parse_raw,
// formats/graph.md): any input must either load into a graph whose node tables and CSR rows are
// consistent, or fail with an Error naming the input; never crash, leak or read out of bounds.
// A loaded graph is pruned and written back (JSON to /dev/null) to exercise the whole path.
// Build: `make fuzz`; run: see fuzz/README.md.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrib_graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // 8-byte aligned, as a file mapping is (the reader rejects misaligned tensors itself)
    uint64_t *copy = malloc((size / 8 + 1) * 8);
    if (!copy) return 0;
    memcpy(copy, data, size);
    AttribGraph g;
    AttribPruned p;
    Error e = {{0}};
    if (attrib_parse_raw(copy, size, "fuzz", &g, &p, &e) != 0) {
        if (strncmp(e.msg, "fuzz: ", 6) != 0) abort();  // every error names the input
        free(copy);
        return 0;
    }
    int64_t n = attrib_n_nodes(&g);
    if (p.n_nodes != n) abort();
    // small graphs only: the fuzzer should explore the parser, not allocate gigabytes
    if (n * (g.n_feat + g.n_logits) <= (1 << 20)) {
        AttribPruned q;
        if (attrib_prune(&g, 0.8, 0.98, &q, &e) == 0) {
            FILE *f = fopen("/dev/null", "w");
            AttribMeta m = {.slug = "s", .scan = "x", .prompt = ""};
            if (f && attrib_write_json(f, "null", &g, &q, &m, &e) && strncmp(e.msg, "null", 4)) abort();
            if (f) fclose(f);
            attrib_pruned_free(&q);
        }
    }
    attrib_pruned_free(&p);
    attrib_graph_free(&g);
    free(copy);
    return 0;
}
