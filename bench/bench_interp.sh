#!/usr/bin/env bash
# interp-prompt throughput (bench/RESULTS.md): explanations per minute
#  1. the builtin explainer (SmolLM2-135M-Instruct, scripts/fetch_smollm2.sh) on N features of a
#     stories260K store, no scoring, then the same with the builtin scorer; prefill tokens/s from
#     the tool's own counters (the prompt's forward dominates);
#  2. the http explainer against tests/interp_stub_server.py answering after a 0.5 s delay, with
#     --concurrency 1 and 8: the ratio shows the requests overlap.
# Usage: bash bench/bench_interp.sh [N_FEATURES (default 6)] [THREADS (default 2)]
# (SKIP_BUILTIN=1: only the http part)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${1:-6}
export CLTKIT_THREADS=${2:-2}
W=$(mktemp -d)
trap 'kill $STUB 2>/dev/null || true; rm -rf "$W"' EXIT
STUB=
SHARED=${CLTKIT_SHARED:-$ROOT/../shared}
bin/llama2c-convert "$SHARED/models/stories260K/stories260K.bin" --tokenizer "$SHARED/models/stories260K/tok512.model" \
  -o "$W/st" 2>/dev/null
bin/tok encode -t "$W/st/tokenizer.json" -o "$W/c.tok" tests/data/tok_corpus.jsonl 2>/dev/null
bin/feat-topk -m "$W/st" --clt tests/golden/feat/clt -o "$W/store" --ctx 64 --k 20 "$W/c.tok" 2>/dev/null
FEATS="0:0-$((N - 1))"

elapsed() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$@"; }
per_min() { python3 -c "import sys; print(round(60 * float(sys.argv[1]) / float(sys.argv[2]), 1))" "$@"; }

echo "| run | features | prompts | wall s | explanations/min | prefill tok/s |"
echo "|---|---|---|---|---|---|"
for scorer in $([ -n "${SKIP_BUILTIN:-}" ] || echo none builtin); do
  t0=$(date +%s.%N)
  bin/interp-prompt "$W/store" --features "$FEATS" --scorer $scorer --score-examples 6 -o "$W/b.jsonl" 2>"$W/b.err"
  t1=$(date +%s.%N)
  s=$(elapsed "$t0" "$t1")
  tok_s=$(grep -oE '\(([0-9]+) tok/s' "$W/b.err" | grep -oE '[0-9]+')
  prompts=$(grep -oE '^interp-prompt: [a-z]+: [0-9]+ prompts' "$W/b.err" | grep -oE '[0-9]+' | paste -sd+ | bc)
  printf '| builtin smollm2, scorer %s, %s threads | %s | %s | %.1f | %s | %s |\n' "$scorer" "$CLTKIT_THREADS" "$N" \
    "$prompts" "$s" "$(per_min "$N" "$s")" "$tok_s"
done

python3 tests/interp_stub_server.py --log "$W/stub.log" --delay 0.5 >"$W/port" &
STUB=$!
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
URL="http://127.0.0.1:$(cat "$W/port")/slow/v1/chat/completions"
for j in 1 8; do
  t0=$(date +%s.%N)
  bin/interp-prompt "$W/store" --features 0:all --explainer "http:$URL" --model stub --scorer none --concurrency $j \
    -o "$W/h.jsonl" 2>/dev/null
  t1=$(date +%s.%N)
  s=$(elapsed "$t0" "$t1")
  echo "| http stub (0.5 s a reply), --concurrency $j | 16 | 16 | $(printf %.1f "$s") | $(per_min 16 "$s") | - |"
done
