#!/usr/bin/env bash
# attrib vs circuit-tracer 0.5.0 (bench/attrib_ct.py), side by side on the same model, CLT, prompt,
# thread count, batch and max-feature-nodes: wall time and peak RSS at each prompt length, and the
# ratios (circuit-tracer / attrib).
#
#   bash bench/bench_attrib.sh                 # stories260K, lengths 32 128 512 2048
#   LENGTHS="32 128" THREADS=2 MFN=512 BATCH=32 CT_MEM_GB=12 CT_TIMEOUT=1800 bash bench/bench_attrib.sh
#
# Model: stories260K (../shared via bin/llama2c-convert) with max_position_embeddings raised from 512
# to 4096 in the bench copy so both sides accept 2k prompts (RoPE extrapolates; the cost is what is
# measured). CLT: tests/golden/attrib/stories/clt (clt-fit, 64 features per layer, mlp_in; CLT=DIR for
# another, HOOK=its circuit-tracer hook name). Prompt: BOS + the model's own greedy continuation
# (bin/fwd-acts --generate), the first N ids at length N; both sides get the ids as given.
# attrib: `bin/attrib --ids ... --threads N --batch B --max-feature-nodes M -o g.json` (graph JSON
# incl. pruning), under /usr/bin/time. circuit-tracer: attribute() + create_graph_files (its JSON incl.
# pruning) in one process with torch.set_num_threads(N); its address space is capped at CT_MEM_GB
# (ulimit -v; an allocation past it fails cleanly and the row shows the error) and its run at
# CT_TIMEOUT seconds. "ct s" is attribute()+JSON time (imports and model loading excluded, reported
# apart); attrib's time is its whole process. Peak RSS: the whole process on both sides (circuit-
# tracer's includes ~750 MB of torch + model before attribute(), shown as "ct base MB").
# Needs the reference venv (tests/ref/requirements-attrib.txt; CLTKIT_REFVENV or .venv-ref).
source "$(dirname "$0")/lib.sh"
LENGTHS=${LENGTHS:-32 128 512 2048}
THREADS=${THREADS:-1} BATCH=${BATCH:-32} MFN=${MFN:-1024}
CT_MEM_GB=${CT_MEM_GB:-12} CT_TIMEOUT=${CT_TIMEOUT:-1800}
CLT=${CLT:-$ROOT/tests/golden/attrib/stories/clt} HOOK=${HOOK:-mlp.hook_in}
W=/tmp/cltkit-bench/attrib
SHARED=${CLTKIT_SHARED:-$ROOT/../shared}
mkdir -p "$W"
make -s tools >/dev/null
src=$SHARED/models/stories260K
"$ROOT/bin/llama2c-convert" "$src/stories260K.bin" --tokenizer "$src/tok512.model" -o "$W/st" 2>/dev/null
sed -i 's/"max_position_embeddings": *[0-9]*/"max_position_embeddings": 4096/' "$W/st/config.json"
max=0; for n in $LENGTHS; do [ "$n" -gt "$max" ] && max=$n; done
echo "1 $(bin/fwd-acts -m "$W/st" --generate $((max - 1)) --prompt-ids 1 | tr '\n' ' ')" > "$W/ids.txt"

printf '%-6s %8s %9s %10s %9s %9s %10s %10s %8s %8s  %s\n' tokens n_active "attrib s" "attrib MB" "ct s" "ct load s" \
  "ct MB" "ct base MB" "time x" "RSS x" "circuit-tracer error"
for n in $LENGTHS; do
  ids=$(cut -d' ' -f1-"$n" "$W/ids.txt")
  ours_s=n/a ours_mb=n/a
  if [ -x bin/attrib ]; then
    if /usr/bin/time -f '%e %M' -o "$W/time.txt" bin/attrib -m "$W/st" --clt "$CLT" --ids "$ids" --threads "$THREADS" \
         --batch "$BATCH" --max-feature-nodes "$MFN" -o "$W/g.json" 2>"$W/attrib.err"; then
      read -r ours_s kb < "$W/time.txt"; ours_mb=$((kb / 1024))
    else ours_s="failed: $(tail -1 "$W/attrib.err")"; fi
  fi
  ct=$( (ulimit -v $((CT_MEM_GB * 1024 * 1024)); timeout "$CT_TIMEOUT" "$PY" bench/attrib_ct.py --model "$W/st" \
          --clt "$CLT" --hook "$HOOK" --ids "$ids" --threads "$THREADS" --batch "$BATCH" --max-feature-nodes "$MFN" \
          2>"$W/ct.err") || true)
  [ -n "$ct" ] || ct='{"error": "no result (timeout '"$CT_TIMEOUT"' s, or: '"$(tail -1 "$W/ct.err" | tr -d '"\\')"')"}'
  printf '%s\n' "$ct" > "$W/ct_$n.json"
  "$PY" - "$n" "$ours_s" "$ours_mb" "$W/ct_$n.json" <<'PYEOF'
import json, sys
n, ours_s, ours_mb, path = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ct = json.load(open(path))
num = lambda x: float(x) if x.replace(".", "", 1).isdigit() else None
os_, om = num(ours_s), num(ours_mb)
cs = ct["attribute_s"] + ct["graph_s"] if "graph_s" in ct else None
cm = ct.get("peak_rss_mb") if "error" not in ct else None
f = lambda x, fmt: (fmt % x) if x is not None else "-"
print("%-6s %8s %9s %10s %9s %9s %10s %10s %8s %8s  %s" % (
    n, ct.get("n_active", "-"), ours_s if os_ is None else "%.2f" % os_, ours_mb, f(cs, "%.2f"),
    f(ct.get("load_s"), "%.1f"), f(cm, "%.0f"), f(ct.get("rss_loaded_mb"), "%.0f"),
    f(cs / os_ if cs and os_ else None, "%.2fx"), f(cm / om if cm and om else None, "%.2fx"), ct.get("error", "")))
PYEOF
done
echo "threads $THREADS, batch $BATCH, max-feature-nodes $MFN, CLT $(basename "$CLT");" \
  "circuit-tracer capped at $CT_MEM_GB GB address space, $CT_TIMEOUT s"
