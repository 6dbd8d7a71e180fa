#!/usr/bin/env bash
# attrib against circuit-tracer 0.5.0 itself: `attrib --ids ... --raw F` on the goldens'
# models, CLTs and prompts (tests/golden/attrib/README.md; made by tests/ref/make_attrib_goldens.py)
# must give the same active features, logit targets, error vectors, adjacency rows (1e-4 relative
# per row), selected feature rows of a greedy run, pruned node set, kept edges (off the edge cut)
# and scores: tests/compare_attrib.py. The stories prompt is also given as text (tokenizer + BOS).
# The tiny Llama's cases need nothing outside the repository; stories260K's needs ../shared (SKIP
# without).
source "$(dirname "$0")/lib.sh"
PY=$(command -v python3)
GOLD=$ROOT/tests/golden/attrib
if [ ! -x "$BIN/attrib" ]; then
  echo "SKIP test_attrib_golden: bin/attrib is not built (the attrib engine; \`make tools\` once it is merged)"
  exit 0
fi

meta() {  # meta GOLDEN KEY: a metadata value of a golden
  "$PY" - "$1" "$2" <<'PYEOF'
import json, struct, sys
raw = open(sys.argv[1], "rb").read(1 << 20)
n = struct.unpack("<Q", raw[:8])[0]
print(json.loads(raw[8:8 + n])["__metadata__"][sys.argv[2]])
PYEOF
}
ids() {  # ids GOLDEN: its prompt ids, space-separated
  "$PY" - "$1" <<'PYEOF'
import array, json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
t = json.loads(raw[8:8 + n])["tokens"]
a = array.array("i"); a.frombytes(raw[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]])
print(" ".join(map(str, a)))
PYEOF
}

# check NAME MODEL_DIR CLT_DIR GOLDEN: the full graph and the greedy one against the golden
check() {
  local name=$1 model=$2 clt=$3 golden=$4 ids_ batch mfn upd
  ids_=$(ids "$golden")
  batch=$(meta "$golden" greedy_batch_size); mfn=$(meta "$golden" greedy_max_feature_nodes)
  upd=$(meta "$golden" update_interval)
  if "$BIN/attrib" -m "$model" --clt "$clt" --ids "$ids_" --batch 8 --threads 1 \
       -o "$TMP/$name.json" --raw "$TMP/$name.full.st" 2>"$TMP/$name.err"; then
    "$PY" "$ROOT/tests/compare_attrib.py" "attrib_golden_$name" "$golden" "$TMP/$name.full.st" full
  else fail "attrib_golden_${name}_full_runs" "$(tail -1 "$TMP/$name.err")"; fi
  if "$BIN/attrib" -m "$model" --clt "$clt" --ids "$ids_" --batch "$batch" --max-feature-nodes "$mfn" \
       --update-interval "$upd" --threads 1 \
       -o "$TMP/$name.g.json" --raw "$TMP/$name.greedy.st" 2>"$TMP/$name.err"; then
    "$PY" "$ROOT/tests/compare_attrib.py" "attrib_golden_$name" "$golden" "$TMP/$name.greedy.st" greedy
  else fail "attrib_golden_${name}_greedy_runs" "$(tail -1 "$TMP/$name.err")"; fi
}

check tiny_mlp_in "$GOLD/tiny/model" "$GOLD/tiny/clt_mlp_in" "$GOLD/tiny/golden_mlp_in.safetensors"
check tiny_resid_mid "$GOLD/tiny/model" "$GOLD/tiny/clt_resid_mid" "$GOLD/tiny/golden_resid_mid.safetensors"
stories_model  # SKIPs (exit 0) without ../shared
check stories "$TMP/st" "$GOLD/stories/clt" "$GOLD/stories/golden.safetensors"
# the same prompt as text: attrib's tokenizer and BOS give circuit-tracer's ids (and so its graph)
if "$BIN/attrib" -m "$TMP/st" --clt "$GOLD/stories/clt" --batch 8 --threads 1 -o "$TMP/text.json" \
     --raw "$TMP/text.st" "$GOLD/stories/prompt.txt" 2>"$TMP/text.err"; then
  "$PY" "$ROOT/tests/compare_attrib.py" attrib_golden_stories_text "$GOLD/stories/golden.safetensors" \
    "$TMP/text.st" full
else fail attrib_golden_stories_text_runs "$(tail -1 "$TMP/text.err")"; fi
