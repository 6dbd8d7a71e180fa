#!/usr/bin/env bash
# attrib vs circuit-tracer 0.5.0 (bench/attrib_ct.py), side by side on the same model, CLT, prompt,
# thread count, batch and max-feature-nodes: wall time and peak RSS at each prompt length, and the
# ratios (circuit-tracer / attrib).
#
#   bash bench/bench_attrib.sh                 # stories260K, lengths 32 128 512 2048
#   MODEL=smollm2 LENGTHS="32 128" bash bench/bench_attrib.sh
#   LENGTHS="32 128" THREADS=2 MFN=512 BATCH=32 CT_MEM_GB=12 CT_TIMEOUT=1800 bash bench/bench_attrib.sh
#   MODEL=smollm2 LENGTHS="32 128 512 2048" CT_LENGTHS=32 CT_CPU_S=1200 bash bench/bench_attrib.sh
#
# MODEL=stories (default): stories260K (../shared via bin/llama2c-convert) with max_position_embeddings
# raised from 512 to 4096 in the bench copy so both sides accept 2k prompts (RoPE extrapolates; the
# cost is what is measured); CLT tests/golden/attrib/stories/clt (clt-fit, 64 features per layer,
# mlp_in). MODEL=smollm2: SmolLM2-135M-Instruct from its GGUF (scripts/fetch_smollm2.sh +
# gguf-convert, fp32) with a CLT from a short clt-fit run for timing only (256 features per layer,
# 60 steps on the activations of tests/data/{demo_stories,tok_corpus}.jsonl; cached in
# $CLTKIT_BENCH_CACHE, default
# /tmp/cltkit-bench/attrib/). CLT=DIR
# for another CLT, HOOK=its circuit-tracer hook name. Prompt: BOS + the model's own greedy
# continuation (bin/fwd-acts generate), the first N ids at length N; both sides get the ids as given.
# attrib: `bin/attrib --ids ... --threads N --batch B --max-feature-nodes M -o g.json` (graph JSON
# incl. pruning), under /usr/bin/time. circuit-tracer: attribute() + create_graph_files (its JSON incl.
# pruning) in one process with torch.set_num_threads(N); its address space is capped at CT_MEM_GB
# (ulimit -v; an allocation past it fails cleanly and the row shows the error) and its run at
# CT_TIMEOUT seconds of wall time and CT_CPU_S seconds of CPU time (ulimit -t; default unlimited), and
# it runs only at the lengths in CT_LENGTHS (default: all). "ct s" is attribute()+JSON wall time
# (imports and model loading excluded,
# reported apart as "ct load s"); attrib's time is its whole process. "cpu s": user + system CPU
# seconds of the same spans (the fair measure when other jobs share the cores; "cpu x" is their
# ratio, circuit-tracer / attrib). Peak RSS: the whole process on both sides (circuit-tracer's
# includes ~750 MB of torch + model before attribute(): rss_loaded_mb in attrib_ct.py's JSON).
# Needs the reference venv (tests/ref/requirements-attrib.txt; CLTKIT_REFVENV or .venv-ref).
source "$(dirname "$0")/lib.sh"
LENGTHS=${LENGTHS:-32 128 512 2048}
THREADS=${THREADS:-1} BATCH=${BATCH:-32} MFN=${MFN:-1024}
CT_MEM_GB=${CT_MEM_GB:-12} CT_TIMEOUT=${CT_TIMEOUT:-1800}
CT_CPU_S=${CT_CPU_S:-unlimited} CT_LENGTHS=${CT_LENGTHS:-$LENGTHS}
MODEL=${MODEL:-stories} HOOK=${HOOK:-mlp.hook_in}
CACHE=${CLTKIT_BENCH_CACHE:-/tmp/cltkit-bench/attrib}  # the SmolLM2 CLT, kept between runs
mkdir -p "$CACHE"
W=$(mktemp -d "$CACHE/run.XXXXXX")  # this run's files: concurrent runs must not share them
trap 'rm -rf "$W"' EXIT
SHARED=${CLTKIT_SHARED:-$ROOT/../shared}
make -s tools >/dev/null
case $MODEL in
  stories)
    src=$SHARED/models/stories260K M=$W/st
    "$ROOT/bin/llama2c-convert" "$src/stories260K.bin" --tokenizer "$src/tok512.model" -o "$M" 2>/dev/null
    sed -i 's/"max_position_embeddings": *[0-9]*/"max_position_embeddings": 4096/' "$M/config.json"
    CLT=${CLT:-$ROOT/tests/golden/attrib/stories/clt} ;;
  smollm2)
    M=${SMOLLM2_DIR:-/tmp/cltkit-bench/smollm2}  # as bench_smollm2.sh
    [ -f "$M/config.json" ] || bin/gguf-convert "${CLTKIT_SMOLLM2_GGUF:-$(bash scripts/fetch_smollm2.sh)}" -o "$M"
    if [ -z "${CLT:-}" ]; then
      CLT=$CACHE/smollm2_clt
      if [ ! -f "$CLT/config.yaml" ]; then
        cat tests/data/demo_stories.jsonl tests/data/tok_corpus.jsonl > "$W/corpus.jsonl"  # the text records
        bin/tok encode -t "$M/tokenizer.json" -o "$W/c.tok" "$W/corpus.jsonl" 2>/dev/null
        bin/fwd-acts -m "$M" -o "$W/sm.acts" --ctx 128 --dtype bf16 "$W/c.tok" 2>/dev/null
        bin/clt-fit -o "$CLT" --features 256 --batch 256 --steps 60 --lr 1e-3 --log-every 20 "$W/sm.acts" 2>/dev/null
        rm -f "$W/sm.acts"
      fi
    fi ;;
  *) echo "bench_attrib: MODEL must be stories or smollm2" >&2; exit 1 ;;
esac
bos=$("$PY" -c "import json; print(json.load(open('$M/config.json'))['bos_token_id'])")
max=0; for n in $LENGTHS; do [ "$n" -gt "$max" ] && max=$n; done
echo "$bos $(bin/fwd-acts generate -m "$M" --max-new-tokens $((max - 1)) --prompt-ids "$bos" | tr '\n' ' ')" > "$W/ids.txt"

printf '%-6s %8s %9s %9s %9s %9s %9s %10s %10s %9s %8s  %s\n' tokens n_active "attrib s" "cpu s" "attrib MB" \
  "ct s" "cpu s" "ct load s" "ct MB" "cpu x" "RSS x" "circuit-tracer error"
for n in $LENGTHS; do
  ids=$(cut -d' ' -f1-"$n" "$W/ids.txt")
  got=$(wc -w <<< "$ids")
  [ "$got" -eq "$n" ] || { echo "bench_attrib: only $got prompt ids, want $n" >&2; exit 1; }
  ours="n/a n/a n/a"
  if [ -x bin/attrib ]; then
    if /usr/bin/time -f '%e %U %S %M' -o "$W/time.txt" bin/attrib -m "$M" --clt "$CLT" --ids "$ids" \
         --threads "$THREADS" --batch "$BATCH" --max-feature-nodes "$MFN" -o "$W/g.json" 2>"$W/attrib.err"; then
      ours=$(awk '{printf "%s %.2f %d", $1, $2 + $3, $4 / 1024}' "$W/time.txt")
    else ours="failed failed failed"; echo "attrib at $n tokens: $(tail -1 "$W/attrib.err")" >&2; fi
  fi
  ct='{"error": "not run (CT_LENGTHS)"}'
  [[ " $CT_LENGTHS " == *" $n "* ]] && ct=$( (ulimit -v $((CT_MEM_GB * 1024 * 1024)); ulimit -t "$CT_CPU_S"
          timeout "$CT_TIMEOUT" "$PY" bench/attrib_ct.py --model "$M" \
          --clt "$CLT" --hook "$HOOK" --ids "$ids" --threads "$THREADS" --batch "$BATCH" --max-feature-nodes "$MFN" \
          2>"$W/ct.err") || true)
  [ -n "$ct" ] || ct='{"error": "no result (timeout '"$CT_TIMEOUT"' s / '"$CT_CPU_S"' CPU s, or: '"$(tail -1 "$W/ct.err" | tr -d '"\\')"')"}'
  printf '%s\n' "$ct" > "$W/ct_$n.json"
  # shellcheck disable=SC2086
  "$PY" - "$n" $ours "$W/ct_$n.json" <<'PYEOF'
import json, sys
n, ours_s, ours_cpu, ours_mb, path = sys.argv[1:6]
ct = json.load(open(path))
num = lambda x: float(x) if x.replace(".", "", 1).isdigit() else None
ow, oc, om = num(ours_s), num(ours_cpu), num(ours_mb)
ok = "graph_s" in ct
cw = ct["attribute_s"] + ct["graph_s"] if ok else None
cc = ct["attribute_cpu_s"] + ct["graph_cpu_s"] if ok else None
cm = ct.get("peak_rss_mb") if ok else None
f = lambda x, fmt: (fmt % x) if x is not None else "-"
print("%-6s %8s %9s %9s %9s %9s %9s %10s %10s %9s %8s  %s" % (
    n, ct.get("n_active", "-"), ours_s, ours_cpu, ours_mb, f(cw, "%.2f"), f(cc, "%.2f"), f(ct.get("load_s"), "%.1f"),
    f(cm, "%.0f"), f(cc / oc if cc and oc else None, "%.2fx"), f(cm / om if cm and om else None, "%.2fx"),
    ct.get("error", "")))
PYEOF
done
echo "$MODEL; threads $THREADS, batch $BATCH, max-feature-nodes $MFN, CLT $(basename "$CLT"); circuit-tracer" \
  "capped at $CT_MEM_GB GB address space, $CT_TIMEOUT s and $CT_CPU_S CPU s"
