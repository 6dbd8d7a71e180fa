#!/usr/bin/env bash
# pipelines/llama1b.mk end to end at toy size: the real Makefile (tokens -> activation shards ->
# CLT on all shards but the held-out one -> report -> held-out eval) on stories260K converted to
# the HF layout, with the settings shrunk through its variables. Then `make` again must do nothing
# (every output is a finished file), and a deleted CLT is retrained from the kept shards.
source "$(dirname "$0")/lib.sh"
stories_model
# (a make of its own: under `make -j test` the parent's jobserver flags would add a warning line)
MK=(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -f "$ROOT/pipelines/llama1b.mk" MODEL_DIR="$TMP/st" CORPUS="$ROOT/tests/data/tok_corpus.jsonl"
    OUT="$TMP/out" SHARDS=3 CTX=32 BATCH=8 DTYPE=f32 D_MODEL=64 EXPANSION=2 CLT_BATCH=128 CLT_STEPS=20)
if "${MK[@]}" >"$TMP/log" 2>&1 && [ -f "$TMP/out/clt/eval.json" ] && [ -f "$TMP/out/clt/report.html" ]; then
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
[ -z "$("${MK[@]}" -n 2>&1)" ] && ok pipeline_llama1b_up_to_date || fail pipeline_llama1b_up_to_date "make would redo: $("${MK[@]}" -n 2>&1 | head -3)"
rm -rf "$TMP/out/clt"
"${MK[@]}" >/dev/null 2>&1 && [ -f "$TMP/out/clt/eval.json" ] && ok pipeline_llama1b_retrains_clt || fail pipeline_llama1b_retrains_clt "no eval.json"
