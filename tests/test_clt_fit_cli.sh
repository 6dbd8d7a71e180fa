#!/usr/bin/env bash
# clt-fit end to end on stories260K activations: training reduces the reconstruction error,
# checkpoints load back, a resumed run is bit-identical to an uninterrupted one, bad input.
source "$(dirname "$0")/lib.sh"
PY=$(command -v python3)
stories_acts
FIT=(--features 128 --batch 256 --lr 2e-3 --lambda 0.3 --log-every 10 --pool-chunks 4 --seed 3)

"$BIN/clt-fit" -o "$TMP/full" "${FIT[@]}" --steps 40 "$TMP/a.acts" 2>/dev/null
if "$PY" - "$TMP/full/metrics.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 4, len(rows)
first, last = rows[0], rows[-1]
assert last["mse"] < 0.7 * first["mse"], (first["mse"], last["mse"])
assert all(n < 1.0 for n in last["nmse"]), last["nmse"]
assert len(last["l0_per_layer"]) == 5
PYEOF
then ok clt_fit_learns; else fail clt_fit_learns "$(cat "$TMP/full/metrics.jsonl")"; fi
for f in config.yaml W_enc_0.safetensors W_dec_4.safetensors train_state.safetensors; do
  [ -s "$TMP/full/$f" ] || fail clt_fit_checkpoint_files "missing $f"
done
grep -q "model_kind: cross_layer_transcoder" "$TMP/full/config.yaml" && ok clt_fit_checkpoint_files || fail clt_fit_checkpoint_files "config.yaml"
# config.yaml in circuit-tracer's terms: mlp_in is mlp.hook_in, a scan, the model by name and hash (not a local path)
hash=$("$BIN/fwd-acts" info "$TMP/a.acts" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['model_hash'])")
Y=$TMP/full/config.yaml
if grep -qx 'feature_input_hook: "mlp.hook_in"' "$Y" && grep -qx 'feature_output_hook: "hook_mlp_out"' "$Y" \
  && grep -qx 'model_name: "st"' "$Y" && grep -qx "model_hash: \"$hash\"" "$Y" \
  && grep -qx "scan: \"st-clt-128-${hash:0:8}\"" "$Y" && ! grep -q "$TMP" "$Y"; then
  ok clt_fit_config_names
else fail clt_fit_config_names "$(cat "$TMP/full/config.yaml")"; fi

# kill-and-resume: 15 steps, then resume to 40: the same bytes as the uninterrupted run; also for
# BatchTopK, whose thresholds (the running mean of the batch cutoffs) live in the train state
for act in jumprelu batchtopk; do
  [ $act = jumprelu ] && full=full || { full=full_$act; "$BIN/clt-fit" -o "$TMP/$full" "${FIT[@]}" --activation $act --k 8 --steps 40 "$TMP/a.acts" 2>/dev/null; }
  "$BIN/clt-fit" -o "$TMP/res_$act" "${FIT[@]}" --activation $act --k 8 --steps 40 --run-steps 15 "$TMP/a.acts" 2>/dev/null
  "$BIN/clt-fit" -o "$TMP/res_$act" "${FIT[@]}" --activation $act --k 8 --steps 40 --resume "$TMP/a.acts" 2>/dev/null
  if out=$("$PY" "$ROOT/tests/compare_clt.py" "$TMP/$full" "$TMP/res_$act" 0 2>&1); then ok "clt_fit_resume_bit_identical_$act"
  else fail "clt_fit_resume_bit_identical_$act" "$out"; fi
done

expect_error clt_fit_no_output "missing -o/--output" "$BIN/clt-fit" "$TMP/a.acts"
expect_error clt_fit_bad_shard "nope.acts" "$BIN/clt-fit" -o "$TMP/x" "$TMP/nope.acts"
"$BIN/fwd-acts" -m "$TMP/st" -o "$TMP/b.acts" --ctx 64 --layers 0,2 "$TMP/c.tok" 2>/dev/null
expect_error clt_fit_layers_mismatch "layers or width differ" "$BIN/clt-fit" -o "$TMP/x" "$TMP/a.acts" "$TMP/b.acts"
expect_error clt_fit_non_consecutive "consecutive layers" "$BIN/clt-fit" -o "$TMP/x" "$TMP/b.acts"
mkdir -p "$TMP/st2"; cp "$TMP/st/"* "$TMP/st2/"; echo >> "$TMP/st2/config.json"  # another model hash, same shapes
"$BIN/fwd-acts" -m "$TMP/st2" -o "$TMP/other.acts" --ctx 64 --max-tokens 500 "$TMP/c.tok" 2>/dev/null
expect_error clt_fit_other_model "other.acts: made with another model than .*a.acts \(model hash" \
  "$BIN/clt-fit" -o "$TMP/x" "$TMP/a.acts" "$TMP/other.acts"
"$BIN/fwd-acts" -m "$TMP/st" -o "$TMP/few.acts" --ctx 64 --max-tokens 10 "$TMP/c.tok" 2>/dev/null
expect_error clt_fit_batch_larger_than_data "--batch 128 is more than the 10 tokens a pool" \
  timeout 60 "$BIN/clt-fit" -o "$TMP/x" --features 64 --batch 128 --steps 5 "$TMP/few.acts"
expect_error clt_fit_resume_missing "train_state.safetensors" "$BIN/clt-fit" -o "$TMP/fresh" --resume "$TMP/a.acts"
"$BIN/clt-fit" --help | grep -q "usage: clt-fit" && ok clt_fit_help || fail clt_fit_help "--help"
expect_error clt_fit_bad_device "--device must be cpu or cuda" "$BIN/clt-fit" -o "$TMP/x" --device tpu "$TMP/a.acts"
expect_error clt_fit_bf16_needs_cuda "--bf16 goes with --device cuda" "$BIN/clt-fit" -o "$TMP/x" --bf16 "$TMP/a.acts"
expect_error clt_fit_cuda_jumprelu_only "--device cuda trains --activation jumprelu only" \
  "$BIN/clt-fit" -o "$TMP/x" --device cuda --activation batchtopk "$TMP/a.acts"
# without a GPU (CI), --device cuda says why it cannot run; with one, tests/gpu_test_clt_fit.sh runs it
if ! nvidia-smi -L >/dev/null 2>&1; then
  expect_error clt_fit_cuda_unavailable "--device cuda: (no CUDA device is visible|built without CUDA \(make without NO_CUDA=1\))" \
    "$BIN/clt-fit" -o "$TMP/x" --device cuda --steps 2 "$TMP/a.acts"
fi
# a diverging run (absurd learning rate) stops with one line; the parameters are checked after the
# update, before a checkpoint is written, so the checkpoint it names is one that loads and
# evaluates, and when there is none it says so
"$BIN/clt-fit" -o "$TMP/nan" "${FIT[@]}" --steps 50 --run-steps 10 --save-every 5 "$TMP/a.acts" 2>/dev/null
err=$("$BIN/clt-fit" -o "$TMP/nan" --resume --override lr --lr 1e30 --save-every 1 2>&1 >/dev/null); rc=$?
if [ $rc -eq 1 ] && [ "$(printf '%s\n' "$err" | grep -vc '^clt-fit: resuming')" = 1 ] && printf '%s' "$err" | grep -qE \
  "step [0-9]+: (loss is|the parameters are not finite).*; the last good checkpoint in .*nan \(step 10\) is kept$"
then ok clt_fit_nan_detected; else fail clt_fit_nan_detected "exit $rc: $err"; fi
if "$BIN/clt-fit" eval "$TMP/nan" "$TMP/a.acts" >"$TMP/nan_eval.json" 2>"$TMP/nan_eval.err" && "$PY" - "$TMP/nan" "$TMP/nan_eval.json" <<'PYEOF'
import json, struct, sys
raw = open(sys.argv[1] + "/train_state.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
assert json.loads(raw[8:8 + n])["__metadata__"]["step"] == "10"
r = json.load(open(sys.argv[2]))
assert all(0 <= x < 10 for x in r["nmse"]), r["nmse"]
PYEOF
then ok clt_fit_nan_keeps_good_checkpoint; else fail clt_fit_nan_keeps_good_checkpoint "$(cat "$TMP/nan_eval.err")"; fi
for every in 1 5; do
  expect_error "clt_fit_nan_no_checkpoint_$every" "step [0-9]+: (loss is|the parameters are not finite).*; no checkpoint was written" \
    "$BIN/clt-fit" -o "$TMP/nan$every" "${FIT[@]}" --lr 1e30 --steps 50 --save-every $every "$TMP/a.acts"
  [ ! -e "$TMP/nan$every/train_state.safetensors" ] && ok "clt_fit_nan_nothing_written_$every" || fail "clt_fit_nan_nothing_written_$every" "a state exists"
done
# a mistyped subcommand is named as one (it used to say "missing -o/--output")
expect_error clt_fit_typo_subcommand "unknown command 'reprot' \(did you mean 'report'\?\)" "$BIN/clt-fit" reprot x.jsonl
expect_error clt_fit_unknown_word "unknown command 'frobnicate'" "$BIN/clt-fit" frobnicate
