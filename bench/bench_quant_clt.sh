#!/usr/bin/env bash
# The downstream check of quant-acts (issue #4): a CLT trained on a quantized activation cache
# must reach the same held-out NMSE (within 1% relative) as one trained on the fp32 cache.
# stories260K activations; same seed and data order for every encoding; evaluation always on
# the fp32 held-out shard.
#
#   bash bench/bench_quant_clt.sh [STEPS]
source "$(dirname "$0")/lib.sh"
SHARED=${CLTKIT_SHARED:-$ROOT/../shared}
ST=$SHARED/models/stories260K
STEPS=${1:-400}
W=${WORK:-/tmp/cltkit-bench/quant-clt}
mkdir -p "$W"
make -s tools >/dev/null
[ -f /tmp/cltkit-bench/corpus.jsonl ] || python3 bench/make_bench_corpus.py --out /tmp/cltkit-bench/corpus.jsonl
head -n 229 /tmp/cltkit-bench/corpus.jsonl > "$W/corpus.jsonl"
bin/llama2c-convert "$ST/stories260K.bin" --tokenizer "$ST/tok512.model" -o "$W/st" 2>/dev/null
bin/tok encode -t "$W/st/tokenizer.json" -o "$W/c.tok" "$W/corpus.jsonl" 2>/dev/null
bin/fwd-acts -m "$W/st" -o "$W/train.f32.acts" --ctx 64 --shard 0/2 "$W/c.tok" 2>/dev/null
bin/fwd-acts -m "$W/st" -o "$W/heldout.acts" --ctx 64 --shard 1/10 "$W/c.tok" 2>/dev/null
printf '%-10s %12s %14s %10s\n' encoding "train bytes" "held-out NMSE" "vs f32"
base=""
for enc in f32 bf16 int8 int8:31 fp8 int4; do
  src=$W/train.f32.acts
  if [ "$enc" != f32 ]; then src=$W/train.$enc.acts; bin/quant-acts "$W/train.f32.acts" -o "$src" --dtype "$enc" 2>/dev/null; fi
  bin/clt-fit -o "$W/clt.$enc" --features 256 --batch 1024 --steps "$STEPS" --lr 1e-3 --lambda 0.5 --seed 1 "$src" 2>/dev/null
  nmse=$(bin/clt-fit eval "$W/clt.$enc" "$W/heldout.acts" | python3 -c "import json,sys; print(json.load(sys.stdin)['nmse_mean'])")
  [ -n "$base" ] || base=$nmse
  printf '%-10s %12s %14.6f %+9.2f%%\n' "$enc" "$(stat -c %s "$src")" "$nmse" "$(python3 -c "print(100*($nmse/$base-1))")"
done
