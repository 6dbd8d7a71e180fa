// fuzz_train_state.c — libFuzzer target for clt-fit's train_state.safetensors metadata: the input
// is a safetensors file (safetensors_parse) whose metadata goes through clt_state_meta_parse, as
// `clt-fit --resume` reads it. Any input must parse into values in their documented ranges or fail
// with an Error naming the file — never crash.
#include <stdint.h>
#include <stdlib.h>

#include "clt_state.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SafeTensors st;
    Error e;
    if (safetensors_parse(&st, data, size, "train_state.safetensors", &e)) return 0;
    CltStateMeta m;
    if (clt_state_meta_parse("train_state.safetensors", st.metadata_json, &m, &e) == 0) {
        if (m.step < 0 || m.epoch < 0 || m.pool < 0 || m.batch < 0 || m.L < 1 || m.d < 1 || m.F < 1 || !(m.time_s >= 0))
            abort();  // out of the documented ranges
    } else if (e.msg[0] != 't') {
        abort();  // every error starts with the file's name
    }
    safetensors_close(&st);
    return 0;
}
