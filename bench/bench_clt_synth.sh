#!/usr/bin/env bash
# CLT recovery of a planted model at benchmark size (bench/RESULTS.md, "CLT recovery"): `clt-fit
# synth` writes training and held-out shards of a planted sparse CLT, clt-fit trains on the
# first, `eval-synth` measures the mean max cosine (MMCS) of planted vs learned decoders and the
# learned vs planted L0 on the second, `report` draws the curves. The CI size is
# tests/test_clt_synth.sh (2 layers, d 32, 64 planted, 128 learned). Sizes are environment
# variables; the defaults are the documented benchmark size.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/cltkit-bench/clt-synth}
L=${L:-4} D=${D:-64} PLANTED=${PLANTED:-256} K=${K:-5} TOKENS=${TOKENS:-200000}
FEATURES=${FEATURES:-512} BATCH=${BATCH:-1024} STEPS=${STEPS:-2500} LR=${LR:-2e-3} LAMBDA=${LAMBDA:-0.1}
mkdir -p "$OUT"
SYN=(--layers "$L" --d "$D" --features "$PLANTED" --l0 "$K" --seed 1)
bin/clt-fit synth -o "$OUT/train.acts" "${SYN[@]}" --tokens "$TOKENS" --save-truth "$OUT/truth"
bin/clt-fit synth -o "$OUT/held.acts" "${SYN[@]}" --tokens $((TOKENS / 10)) --data-seed 2 >/dev/null
start=$(date +%s)
bin/clt-fit -o "$OUT/clt" --features "$FEATURES" --batch "$BATCH" --steps "$STEPS" --lr "$LR" --lambda "$LAMBDA" \
  --log-every 50 "$OUT/train.acts"
echo "training: $(($(date +%s) - start)) s"
bin/clt-fit eval-synth "$OUT/clt" "$OUT/truth" "$OUT/held.acts" | tee "$OUT/recovery.json"
bin/clt-fit report "$OUT/clt/metrics.jsonl" -o "$OUT/report.html"
