#!/usr/bin/env bash
# Synthetic ground truth (clt-training.md §6): `clt-fit synth` plants a sparse CLT (2 layers,
# d 32, 64 features per layer in superposition, L0 ~3 per layer, Zipf 0.5 firing, noise 0.05),
# clt-fit (128 features) must recover it: mean max cosine of planted vs learned decoders >= 0.95
# and learned L0 within a factor 4/3 of the planted L0 on held-out tokens (measured: MMCS ~0.99,
# L0 ratio ~0.91). Also `clt-fit eval` against the trainer's own NMSE, and its errors.
# A larger benchmark size is in bench/RESULTS.md ("CLT recovery of a planted model").
source "$(dirname "$0")/lib.sh"
PY=$(command -v python3)
FIT=$BIN/clt-fit
SYN=(--layers 2 --d 32 --features 64 --l0 3 --seed 11)
"$FIT" synth -o "$TMP/train.acts" "${SYN[@]}" --tokens 60000 --save-truth "$TMP/truth" >"$TMP/synth.json"
"$FIT" synth -o "$TMP/held.acts" "${SYN[@]}" --tokens 10000 --data-seed 12 >/dev/null
if "$PY" - "$TMP/synth.json" "$TMP/truth/truth.safetensors" <<'PYEOF'
import json, struct, sys
s = json.load(open(sys.argv[1]))
assert s["tokens"] == 60000 and len(s["planted_l0_per_layer"]) == 2, s
assert all(2.8 < x < 3.2 for x in s["planted_l0_per_layer"]), s
raw = open(sys.argv[2], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
assert h["W_dec_0"]["shape"] == [64, 2, 32] and h["W_dec_1"]["shape"] == [64, 1, 32], h
assert h["enc_0"]["shape"] == [64, 32] and h["__metadata__"]["F"] == "64", h
PYEOF
then ok clt_synth_writes; else fail clt_synth_writes "$(cat "$TMP/synth.json")"; fi

# same model, other tokens: held-out data share directions but not samples
"$FIT" synth -o "$TMP/again.acts" "${SYN[@]}" --tokens 60000 >/dev/null
cmp -s "$TMP/train.acts" "$TMP/again.acts" && ok clt_synth_deterministic || fail clt_synth_deterministic "two runs differ"

t0=$(date +%s)
"$FIT" -o "$TMP/clt" --features 128 --batch 512 --steps 1000 --lr 3e-3 --lambda 0.1 --log-every 50 --seed 1 \
  "$TMP/train.acts" 2>/dev/null
t1=$(date +%s)
"$FIT" eval-synth "$TMP/clt" "$TMP/truth" "$TMP/held.acts" >"$TMP/rec.json"
if "$PY" - "$TMP/rec.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["mmcs"] >= 0.95, r
assert min(r["mmcs_per_layer"]) >= 0.9, r
assert 0.75 <= r["l0_ratio"] <= 4 / 3, r
assert r["eval"]["tokens"] == 10000, r
PYEOF
then ok clt_synth_recovery; echo "  $(tr -d '\n ' <"$TMP/rec.json" | grep -oE '"mmcs":[0-9.]+|"l0_ratio":[0-9.]+' | tr '\n' ' ')(training $((t1 - t0)) s)"
else fail clt_synth_recovery "$(cat "$TMP/rec.json")"; fi

# BatchTopK (k 3 per token per layer) on the same data, saved as JumpReLU: recovers the planted
# decoders too, and the per-layer thresholds from the batch cutoffs give held-out L0 close to k and
# the NMSE the trainer saw (measured: MMCS ~0.98, L0 ~2.98, NMSE 0.14 vs 0.14)
"$FIT" -o "$TMP/btk" --activation batchtopk --k 3 --features 128 --batch 512 --steps 1000 --lr 3e-3 --log-every 100 \
  --seed 1 "$TMP/train.acts" 2>/dev/null
"$FIT" eval-synth "$TMP/btk" "$TMP/truth" "$TMP/held.acts" >"$TMP/btk.json"
if "$PY" - "$TMP/btk.json" "$TMP/btk/metrics.jsonl" "$TMP/btk/config.yaml" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
last = [json.loads(l) for l in open(sys.argv[2])][-1]
assert r["mmcs"] >= 0.95, r
assert all(2.4 <= x <= 3.6 for x in r["learned_l0_per_layer"]), r
assert last["l0_per_layer"] == [3, 3] and last["lambda"] == 0 and last["sparsity"] == 0, last
for a, b in zip(r["eval"]["nmse"], last["nmse"]):
    assert abs(a - b) <= 0.15 * b + 0.01, (r["eval"]["nmse"], last["nmse"])
assert "# trained as batchtopk k=3" in open(sys.argv[3]).read()
PYEOF
then ok clt_batchtopk_recovery_and_conversion; else fail clt_batchtopk_recovery_and_conversion "$(cat "$TMP/btk.json")"; fi
expect_error clt_bad_activation "--activation must be jumprelu, topk or batchtopk" "$FIT" -o "$TMP/x" --activation relu "$TMP/train.acts"
expect_error clt_k_too_large "--k 200 exceeds the 128 features per layer" "$FIT" -o "$TMP/x" --activation topk --k 200 --features 128 "$TMP/train.acts"

# eval on the training shard agrees with the NMSE the trainer logged last (same definition)
"$FIT" eval "$TMP/clt" "$TMP/train.acts" >"$TMP/eval.json"
if "$PY" - "$TMP/eval.json" "$TMP/clt/metrics.jsonl" <<'PYEOF'
import json, sys
ev = json.load(open(sys.argv[1]))
last = [json.loads(l) for l in open(sys.argv[2])][-1]
assert ev["tokens"] == 60000 and ev["layers"] == 2 and ev["features"] == 128, ev
for a, b in zip(ev["nmse"], last["nmse"]):
    assert abs(a - b) <= 0.1 * b + 0.01, (ev["nmse"], last["nmse"])
for a, b in zip(ev["l0_per_layer"], last["l0_per_layer"]):
    assert abs(a - b) <= 0.15 * b + 0.1, (ev["l0_per_layer"], last["l0_per_layer"])
assert all(abs(f + n - 1) < 1e-9 for f, n in zip(ev["fve"], ev["nmse"])), ev
assert 0 <= ev["dead"] <= 256 and len(ev["dead_per_layer"]) == 2, ev
PYEOF
then ok clt_eval_matches_training; else fail clt_eval_matches_training "$(cat "$TMP/eval.json"; tail -1 "$TMP/clt/metrics.jsonl")"; fi

# errors: mismatched shards, non-shards, mismatched truth, bad synth arguments
"$FIT" synth -o "$TMP/l3.acts" --layers 3 --d 32 --features 64 --tokens 500 --save-truth "$TMP/truth3" >/dev/null
"$FIT" synth -o "$TMP/d16.acts" --layers 2 --d 16 --features 64 --tokens 500 >/dev/null
printf 'not a shard' >"$TMP/junk.acts"
expect_error clt_eval_layers_mismatch "l3.acts: 3 layers of width 32, but the CLT has 2 layers of width 32" \
  "$FIT" eval "$TMP/clt" "$TMP/l3.acts"
expect_error clt_eval_width_mismatch "d16.acts: 2 layers of width 16" "$FIT" eval "$TMP/clt" "$TMP/train.acts" "$TMP/d16.acts"
expect_error clt_eval_not_a_shard "junk.acts" "$FIT" eval "$TMP/clt" "$TMP/junk.acts"
cp -r "$TMP/clt" "$TMP/clt_mlp_in" && sed -i 's/hook_resid_mid/ln2.hook_normalized/' "$TMP/clt_mlp_in/config.yaml" && rm "$TMP/clt_mlp_in/checkpoint.json"  # hand-edited: no longer the checkpoint its manifest lists
expect_error clt_eval_hook_mismatch "held.acts: input hook resid_mid, but the CLT reads ln2.hook_normalized" \
  "$FIT" eval "$TMP/clt_mlp_in" "$TMP/held.acts"
sed -i 's/ln2.hook_normalized/mlp.hook_in/' "$TMP/clt_mlp_in/config.yaml"
expect_error clt_eval_hook_mismatch_new_name \
  "held.acts: input hook resid_mid, but the CLT reads mlp.hook_in \(mlp_in\)" \
  "$FIT" eval "$TMP/clt_mlp_in" "$TMP/held.acts"
expect_error clt_eval_not_a_clt "not a CLT checkpoint" "$FIT" eval "$TMP/truth" "$TMP/train.acts"
expect_error clt_eval_no_shards "expected CLT_DIR and at least one" "$FIT" eval "$TMP/clt"
expect_error clt_eval_synth_mismatch "3 layers" "$FIT" eval-synth "$TMP/clt" "$TMP/truth3"
expect_error clt_synth_bad_l0 "l0 100 must be positive and at most" "$FIT" synth -o "$TMP/x.acts" --layers 1 --d 8 --features 16 --tokens 10 --l0 100
expect_error clt_synth_missing "--layers, --d, --features and --tokens are required" "$FIT" synth -o "$TMP/x.acts" --layers 1
"$FIT" synth --help | grep -q "usage: clt-fit synth" && "$FIT" --help | grep -q "clt-fit eval CLT_DIR" \
  && ok clt_subcommand_help || fail clt_subcommand_help "--help"
