#!/usr/bin/env bash
# One CLT training step, cltkit (sparse decoder, build/bench/bench_clt_step) vs the PyTorch reference
# with a dense decoder (bench/clt_step_torch.py, CircuitLab/CLT-Forge's formulation), same shape,
# same thread count, same L0. The sparse backward reads the decoders of active features and of
# those inside the threshold's straight-through window, so cltkit is timed at several window
# fractions (WINDOWS); torch's dense step does not depend on it.
#
#   bash bench/bench_clt_step.sh      # prints a markdown table for bench/RESULTS.md
#
# Sizes are environment variables (defaults: the issue's d 512, 8 layers, 16x expansion, L0 32,
# 1024-token batches). Needs the reference venv with torch (CLTKIT_REFVENV or .venv-ref).
source "$(dirname "$0")/lib.sh"
L=${L:-8} D=${D:-512} F=${F:-8192} B=${B:-1024} L0=${L0:-32} THREADS=${THREADS:-2} WINDOWS=${WINDOWS:-"0.005 0.02 0.1"}
make -s bench-bins >/dev/null
field() { "$PY" -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }
torch_json=$("$PY" bench/clt_step_torch.py -L "$L" -d "$D" -F "$F" -B "$B" --l0 "$L0" --threads "$THREADS" -n 2)
torch_s=$(echo "$torch_json" | field seconds)
echo "$torch_json" >&2
echo "| impl | L × d × F | batch | threads | L0/layer | window | step (s) | tokens/s | vs torch |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "| torch dense decoder | $L × $D × $F | $B | $THREADS | $(echo "$torch_json" | field l0_per_layer) | (any) | $torch_s | $(echo "$torch_json" | field tokens_per_s) | 1.00x |"
for win in $WINDOWS; do
  j=$(CLTKIT_THREADS=$THREADS build/bench/bench_clt_step -L "$L" -d "$D" -F "$F" -B "$B" --l0 "$L0" --window "$win" -n 3)
  echo "$j" >&2
  s=$(echo "$j" | field seconds)
  echo "| cltkit sparse | $L × $D × $F | $B | $THREADS | $(echo "$j" | field l0_per_layer) | $(echo "$j" | field window_fraction) | $s | $(echo "$j" | field tokens_per_s) | $("$PY" -c "print(f'{$torch_s / $s:.2f}x')") |"
done
