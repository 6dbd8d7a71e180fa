// clt_state.h — the metadata of clt-fit's train_state.safetensors (formats/clt.md "Training
// state"): where a run is (step, data cursor, wall clock) and the shape it belongs to. Parsed
// strictly — every value a decimal string in range, nothing else — because a resume trusts it.
#pragma once
#include <stdint.h>

#include "err.h"

typedef struct {
    int64_t step, epoch, pool, batch;  // in [0, 2^61]
    int32_t L, d, F;                   // in [1, 2^31 - 1]
    double time_s;                     // training wall clock so far, >= 0 (0 when absent)
} CltStateMeta;

// Parses the safetensors metadata JSON text (NULL: "no training metadata") of the file at path
// (named in every error).
int clt_state_meta_parse(const char *path, const char *metadata_json, CltStateMeta *out, Error *e);
