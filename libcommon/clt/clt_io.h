// clt_io.h — CLT checkpoints in circuit-tracer's layout (formats/clt.md), so our CLTs load in
// circuit-tracer and published CLTs load in our tools:
//   W_enc_{l}.safetensors: W_enc_{l} (F, d), b_enc_{l} (F,), b_dec_{l} (d,), threshold_{l} (F,)
//   W_dec_{l}.safetensors: W_dec_{l} (F, L−l, d)
//   config.yaml: model_kind cross_layer_transcoder, feature_input_hook, feature_output_hook, scan,
//                model_name, model_hash
// Training runs on normalized activations (x·s_in[l], y·s_out[k]); saving folds the scales into
// the weights so the files act on raw activations: W_enc·s_in, W_dec/s_out[k], b_dec/s_out[k].
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "clt.h"
#include "err.h"

typedef struct {
    const char *model_name;   // the model's name (no local path: clt_model_name), or NULL
    const char *input_hook;   // circuit-tracer name: "mlp.hook_in" or "hook_resid_mid" (clt_input_hook)
    const char *output_hook;  // "hook_mlp_out"
    const char *trained_as;   // NULL, or a note such as "batchtopk k=32" (a YAML comment line)
    uint64_t model_hash;      // formats/acts.md's model hash of the activations' model, 0 if unknown
    const char *scan;         // circuit-tracer's feature-set identifier, or NULL (derived from the above)
} CltSaveInfo;

// The value of `key:` in a flat YAML text such as config.yaml (quotes and a trailing comment
// stripped) into out (cap bytes); "" when absent.
void clt_yaml_value(const char *text, const char *key, char *out, size_t cap);
// The same from clt_dir/config.yaml: 0, or -1 (no error set) when the file or the key is missing.
int clt_config_value(const char *clt_dir, const char *key, char *out, size_t cap);

// circuit-tracer's name of an activation shard's input hook: mlp_in (the normalized MLP input, the
// norm's weight applied: what the MLP receives) is "mlp.hook_in", resid_mid "hook_resid_mid".
const char *clt_input_hook(const char *shard_hook);
// The shard hook a config.yaml feature_input_hook means, or NULL for one clt-fit does not write.
// Also accepts "ln2.hook_normalized", which clt-fit wrote for mlp_in before (wrongly: in
// circuit-tracer that is the value before the norm's weight).
const char *clt_shard_hook(const char *input_hook);
// The model's name from a shard's model_id (a path for fwd-acts): its last path component.
void clt_model_name(const char *model_id, char *buf, size_t n);

// Writes a checkpoint into dir (created if missing) as one set (fileio.h DirTxn): W_enc_{l},
// W_dec_{l}, config.yaml, whatever extra (may be NULL) writes into the staging directory it is
// given, and checkpoint.json (step, and every file's size and CRC-32C), all switched in together, so
// dir never holds files of two checkpoints. Every value written must be finite and every threshold
// in (0, inf): otherwise an error names the first bad value and dir is left as it was.
// s_in/s_out (L,) may be NULL (no normalization); step < 0 leaves it out of checkpoint.json.
typedef int (*CltExtraWriter)(const char *stage_dir, void *ctx, Error *e);
int clt_save_checkpoint(const char *dir, const CltParams *p, const float *s_in, const float *s_out,
                        const CltSaveInfo *info, int64_t step, CltExtraWriter extra, void *ctx, Error *e);
int clt_save(const char *dir, const CltParams *p, const float *s_in, const float *s_out, const CltSaveInfo *info,
             Error *e);
// Checks dir's checkpoint.json: every file it lists has its size and CRC-32C, no CLT or train-state
// file beside them is unlisted, and no interrupted switch is pending. 0: verified (*step, may be
// NULL, its step or -1); 1: no checkpoint.json (a CLT from elsewhere: nothing to check); -1: error.
int clt_checkpoint_verify(const char *dir, int64_t *step, Error *e);
// Loads a checkpoint in that layout (any float dtype) into p (allocated here; thresholds become
// log θ), after clt_checkpoint_verify. Missing threshold_{l} (a ReLU CLT) is an error for now.
int clt_load(const char *dir, CltParams *p, Error *e);
