// clt_io.h — CLT checkpoints in circuit-tracer's layout (formats/clt.md), so our CLTs load in
// circuit-tracer and published CLTs load in our tools:
//   W_enc_{l}.safetensors: W_enc_{l} (F, d), b_enc_{l} (F,), b_dec_{l} (d,), threshold_{l} (F,)
//   W_dec_{l}.safetensors: W_dec_{l} (F, L−l, d)
//   config.yaml: model_kind cross_layer_transcoder, feature_input_hook, feature_output_hook, model_name
// Training runs on normalized activations (x·s_in[l], y·s_out[k]); saving folds the scales into
// the weights so the files act on raw activations: W_enc·s_in, W_dec/s_out[k], b_dec/s_out[k].
#pragma once
#include "clt.h"
#include "err.h"

typedef struct {
    const char *model_name;   // e.g. the model directory
    const char *input_hook;   // TransformerLens name, e.g. "hook_resid_mid" or "ln2.hook_normalized"
    const char *output_hook;  // "hook_mlp_out"
    const char *trained_as;   // NULL, or a note such as "batchtopk k=32" (a YAML comment line)
} CltSaveInfo;

// Writes the checkpoint into dir (created if missing); each file is written atomically and
// config.yaml last. s_in/s_out (L,) may be NULL (no normalization).
int clt_save(const char *dir, const CltParams *p, const float *s_in, const float *s_out, const CltSaveInfo *info, Error *e);
// Loads a checkpoint in that layout (any float dtype) into p (allocated here; thresholds become
// log θ). Missing threshold_{l} (a ReLU CLT) is an error for now.
int clt_load(const char *dir, CltParams *p, Error *e);
