#!/usr/bin/env bash
# pipelines/gemma2b.mk end to end at toy size on the tiny random Gemma 2 of tests/golden/models/gemma2
# (4 layers, d 64, vocabulary 512) given stories260K's 512-token tokenizer.json: corpus -> CLT on
# resid_mid (gemma2b.mk's hook) -> feat-topk in 2 shards + merge -> feature files for the graph's
# features only (EXPORT=graphs, the default) -> interp-prompt (model-free explainer) -> attrib ->
# graph2html. Then `make` again must do nothing.
source "$(dirname "$0")/lib.sh"
stories_model
mkdir -p "$TMP/gm" "$TMP/prompts"
cp "$ROOT"/tests/golden/models/gemma2/{config.json,generation_config.json,model.safetensors} "$TMP/st/tokenizer.json" \
   "$TMP/gm/"
printf 'Once upon a time, there was a little girl named\n' > "$TMP/prompts/lily.txt"
MK=(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -f "$ROOT/pipelines/gemma2b.mk" MODEL_DIR="$TMP/gm"
    CORPUS="$ROOT/tests/data/tok_corpus.jsonl" OUT="$TMP/out" SHARDS=2 CTX=32 BATCH=8 DTYPE=f32 FEATURES=64
    CLT_BATCH=128 CLT_STEPS=10 FEAT_SHARDS=2 FEAT_K=5 EXPLAINER=tokens PROMPTS="$TMP/prompts" ATTRIB_FLAGS=)
if "${MK[@]}" -j2 >"$TMP/log" 2>&1 && [ -s "$TMP/out/graphs/lily.html" ]; then ok pipeline_gemma2b_runs
else fail pipeline_gemma2b_runs "$(tail -5 "$TMP/log")"; fi
grep -q 'feature_input_hook: "hook_resid_mid"' "$TMP/out/clt/config.yaml" \
  && grep -q '"layers": *4' "$TMP/out/clt/eval.json" \
  && ok pipeline_gemma2b_clt || fail pipeline_gemma2b_clt "$(cat "$TMP/out/clt/config.yaml" "$TMP/out/clt/eval.json")"
# EXPORT=graphs: a file for each of the graph's features and no other, each `feat-topk show --json`
if python3 - "$TMP/out/graphs/features.txt" "$TMP/out/features-json" "$TMP/out/explanations.jsonl" <<'PYEOF'
import json, os, sys
want = [tuple(map(int, l.split(":"))) for l in open(sys.argv[1])]
files = sorted(f for f in os.listdir(sys.argv[2]) if f.endswith(".json"))
assert want and files == sorted(f"{l}_{i}.json" for l, i in want), (want, files)
for l, i in want:
    d = json.load(open(os.path.join(sys.argv[2], f"{l}_{i}.json")))
    assert (d["layer"], d["feature"]) == (l, i) and d["examples_quantiles"], (l, i)
ex = sorted((r["layer"], r["feature"]) for r in map(json.loads, open(sys.argv[3])))
assert ex == sorted(want), (ex, want)
PYEOF
then ok pipeline_gemma2b_graph_features; else fail pipeline_gemma2b_graph_features "feature files or explanations"; fi
grep -qE 'lily\.html: .* ([0-9]+) features \(\1 with files, \1 explained\)' "$TMP/log" \
  && ok pipeline_gemma2b_page || fail pipeline_gemma2b_page "$(grep graph2html "$TMP/log")"
redo=$("${MK[@]}" -n 2>&1)
[ -z "$redo" ] && ok pipeline_gemma2b_up_to_date || fail pipeline_gemma2b_up_to_date "make would redo: ${redo:0:300}"
