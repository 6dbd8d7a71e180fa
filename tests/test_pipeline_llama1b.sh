#!/usr/bin/env bash
# pipelines/llama1b.mk (and pipelines/common.mk) end to end at toy size: the real Makefile (tokens
# -> activation shards -> CLT on all shards but the held-out one -> report -> held-out eval ->
# feat-topk in 2 parallel shards + merge -> export -> interp-prompt (model-free explainer) ->
# attrib on two prompts -> graph2html) on stories260K converted to the HF layout, with the settings
# shrunk through its variables, under make -j2. Then `make` again must do nothing (every output is
# a finished file), and a deleted CLT is retrained from the kept shards.
source "$(dirname "$0")/lib.sh"
stories_model
mkdir -p "$TMP/prompts"
printf 'Once upon a time, there was a little girl named\n' > "$TMP/prompts/lily.txt"
printf 'The cat sat on the\n' > "$TMP/prompts/cat.txt"
# (a make of its own: under `make -j test` the parent's jobserver flags would add a warning line)
MK=(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -f "$ROOT/pipelines/llama1b.mk" MODEL_DIR="$TMP/st"
    CORPUS="$ROOT/tests/data/tok_corpus.jsonl" OUT="$TMP/out" SHARDS=3 CTX=32 BATCH=8 DTYPE=f32 D_MODEL=64
    EXPANSION=2 CLT_BATCH=128 CLT_STEPS=20 FEAT_SHARDS=2 FEAT_K=10 EXPORT=all EXPLAINER=tokens
    PROMPTS="$TMP/prompts" ATTRIB_FLAGS=)
if "${MK[@]}" -j2 >"$TMP/log" 2>&1 && [ -f "$TMP/out/clt/eval.json" ] && [ -f "$TMP/out/clt/report.html" ]; then
  if python3 - "$TMP/out/clt/eval.json" "$TMP/out/clt/config.yaml" "$TMP/out/clt/metrics.jsonl" <<'PYEOF'
import json, sys
ev = json.load(open(sys.argv[1]))
assert ev["layers"] == 5 and ev["features"] == 128 and ev["tokens"] > 0, ev
assert all(0 < x < 2 for x in ev["nmse"]), ev
assert "d_transcoder: 128" in open(sys.argv[2]).read()
assert [json.loads(l) for l in open(sys.argv[3])][-1]["step"] == 20
PYEOF
  then ok pipeline_llama1b_runs; else fail pipeline_llama1b_runs "$(cat "$TMP/out/clt/eval.json")"; fi
else fail pipeline_llama1b_runs "$(tail -5 "$TMP/log")"; fi
# the held-out shard (part2) is evaluated, not trained on
grep -q "part2.acts" <("${MK[@]}" -n -B clt-eval 2>/dev/null | grep "clt-fit eval") \
  && ! grep -q "part2.acts" <("${MK[@]}" -n -B clt 2>/dev/null | grep "clt-fit -o" -A2) \
  && ok pipeline_llama1b_held_out || fail pipeline_llama1b_held_out "part2 not held out"
# the 2 feat-topk shards merge into the store of one job over all token shards (same --batch)
"$BIN/feat-topk" -m "$TMP/st" --clt "$TMP/out/clt" -o "$TMP/one" --ctx 32 --batch 8 --k 10 \
    "$TMP"/out/tokens/part{0,1,2}.tok 2>/dev/null
cmp -s "$TMP/one/features.bin" "$TMP/out/features/features.bin" && [ -f "$TMP/out/feat-parts/part1/features.bin" ] \
  && ok pipeline_llama1b_feat_shards || fail pipeline_llama1b_feat_shards "merged store differs from one job's"
# every feature exported; every graph feature explained, with its file and label on the page
n_json=$(find "$TMP/out/features-json" -name '*.json' | wc -l)
[ "$n_json" -eq 640 ] && ok pipeline_llama1b_export || fail pipeline_llama1b_export "$n_json feature files, not 640"
if python3 - "$TMP/out/graphs/features.txt" "$TMP/out/explanations.jsonl" "$TMP/out/graphs/"{lily,cat}.json <<'PYEOF'
import json, sys
want = [tuple(map(int, l.split(":"))) for l in open(sys.argv[1])]
ex = [json.loads(l) for l in open(sys.argv[2])]
got = sorted((r["layer"], r["feature"]) for r in ex)
assert want and got == sorted(want), (want[:5], got[:5])
assert all(r["explainer"] == "tokens" and r["label"] for r in ex)
in_graphs = set()
for p in sys.argv[3:]:
    g = json.load(open(p))
    assert g["metadata"]["slug"] in p and g["nodes"], p
    in_graphs |= {tuple(map(int, n["node_id"].split("_")[:2])) for n in g["nodes"]
                  if n["feature_type"] == "cross layer transcoder"}
assert in_graphs == set(want)
PYEOF
then ok pipeline_llama1b_interp; else fail pipeline_llama1b_interp "explanations do not match the graphs' features"; fi
pages=$(grep -cE 'graph2html: .*/(lily|cat)\.html: .* ([0-9]+) features \(\2 with files, \2 explained\)' "$TMP/log")
[ "$pages" -eq 2 ] && [ -s "$TMP/out/graphs/lily.html" ] && [ -s "$TMP/out/graphs/cat.html" ] \
  && ok pipeline_llama1b_pages || fail pipeline_llama1b_pages "$(grep graph2html "$TMP/log")"
redo=$("${MK[@]}" -n 2>&1)
[ -z "$redo" ] && ok pipeline_llama1b_up_to_date || fail pipeline_llama1b_up_to_date "make would redo: ${redo:0:300}"
rm -rf "$TMP/out/clt"
"${MK[@]}" clt-eval >/dev/null 2>&1 && [ -f "$TMP/out/clt/eval.json" ] && ok pipeline_llama1b_retrains_clt \
  || fail pipeline_llama1b_retrains_clt "no eval.json"
