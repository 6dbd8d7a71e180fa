// fuzz_model.c — libFuzzer target for model_load: config.json parsing (every architecture's keys,
// sizes, ids, RoPE scaling) and the weight loading behind it. The input is split (fuzz_files.h)
// into config.json and model.safetensors, written into a directory, and loaded; any input must
// load or fail with an Error naming a file — never crash, overflow, or allocate beyond the files.
#include <stdint.h>

#include "fuzz_files.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *cfg, *st;
    size_t ncfg, nst;
    fuzz_split(data, size, &cfg, &ncfg, &st, &nst);
    fuzz_put("config.json", cfg, ncfg);
    fuzz_put("model.safetensors", st, nst);
    Model m;
    Error e;
    if (model_load(&m, fuzz_dir(), &e) == 0) model_free(&m);
    else if (!strstr(e.msg, fuzz_dir())) abort();  // every error names the file it is about
    return 0;
}
