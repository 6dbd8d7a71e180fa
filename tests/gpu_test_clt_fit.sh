#!/usr/bin/env bash
# clt-fit --device cuda end to end (make test-gpu; SKIP without a GPU): the GPU trainer
# (libcommon/clt/clt_cuda.h) against the CPU trainer on stories260K activations, 30 steps with the same
# data order; a killed GPU run resumes bit-identically (the GPU step is deterministic); a GPU
# checkpoint resumes on the CPU; with two GPUs and mpirun, 2 ranks (NCCL) match 1.
#
# Tolerance: GPU and CPU sum in different orders (cuBLAS vs OpenBLAS, per-feature sums), so as
# between MPI rank counts (tests/test_clt_mpi.sh) Adam's ±lr first steps amplify the rounding of
# nearly cancelling gradient elements now and then: per tensor ‖gpu − cpu‖ ≤ 1e-2·‖cpu‖, and the
# logged losses within 1e-3 relative. (Not yet run on a GPU: see bench/RESULTS.md.)
source "$(dirname "$0")/lib.sh"
PY=$(command -v python3)
stories_acts
FIT=(--features 128 --batch 256 --lr 2e-3 --lambda 0.3 --log-every 10 --pool-chunks 4 --seed 3 --steps 30)
err=$("$BIN/clt-fit" -o "$TMP/gpu" "${FIT[@]}" --device cuda "$TMP/a.acts" 2>&1 >/dev/null)
case "$err" in
  *"no CUDA device"*|*"built without CUDA"*) echo "SKIP gpu_test_clt_fit: ${err#clt-fit: }"; exit 0 ;;
esac
[ -f "$TMP/gpu/train_state.safetensors" ] && ok clt_fit_cuda_runs || fail clt_fit_cuda_runs "$err"
"$BIN/clt-fit" -o "$TMP/cpu" "${FIT[@]}" "$TMP/a.acts" 2>/dev/null
if out=$("$PY" "$ROOT/tests/compare_clt.py" "$TMP/gpu" "$TMP/cpu" 1e-2 norm 2>&1); then ok "clt_fit_cuda_matches_cpu ($out)"
else fail clt_fit_cuda_matches_cpu "$out"; fi
if "$PY" - "$TMP/gpu/metrics.jsonl" "$TMP/cpu/metrics.jsonl" <<'PYEOF'
import json, sys
g = [json.loads(l) for l in open(sys.argv[1])]
c = [json.loads(l) for l in open(sys.argv[2])]
assert len(g) == len(c) == 3, (len(g), len(c))
for a, b in zip(g, c):
    for k in ("loss", "mse", "sparsity", "preact", "l0", "window"):
        assert abs(a[k] - b[k]) <= 1e-3 * max(abs(a[k]), abs(b[k]), 1e-9), (k, a[k], b[k])
    assert all(abs(x - y) <= 1e-3 * max(abs(y), 1e-9) for x, y in zip(a["nmse"], b["nmse"])), (a["nmse"], b["nmse"])
PYEOF
then ok clt_fit_cuda_metrics_match_cpu; else fail clt_fit_cuda_metrics_match_cpu "$(tail -1 "$TMP/gpu/metrics.jsonl"; tail -1 "$TMP/cpu/metrics.jsonl")"; fi

# bf16 encoder GEMMs: the same run within bf16's rounding (losses within 2%)
"$BIN/clt-fit" -o "$TMP/bf16" "${FIT[@]}" --device cuda --bf16 "$TMP/a.acts" 2>/dev/null
if "$PY" - "$TMP/bf16/metrics.jsonl" "$TMP/cpu/metrics.jsonl" <<'PYEOF'
import json, sys
g = [json.loads(l) for l in open(sys.argv[1])]
c = [json.loads(l) for l in open(sys.argv[2])]
assert len(g) == len(c) == 3, (len(g), len(c))
for a, b in zip(g, c):
    assert abs(a["loss"] - b["loss"]) <= 2e-2 * b["loss"], (a["loss"], b["loss"])
PYEOF
then ok clt_fit_cuda_bf16_close_to_cpu; else fail clt_fit_cuda_bf16_close_to_cpu "$(tail -1 "$TMP/bf16/metrics.jsonl"; tail -1 "$TMP/cpu/metrics.jsonl")"; fi

# a killed GPU run resumes to the same bytes; a GPU state continues on the CPU
"$BIN/clt-fit" -o "$TMP/res" "${FIT[@]}" --device cuda --run-steps 12 "$TMP/a.acts" 2>/dev/null
cp -r "$TMP/res" "$TMP/res_cpu"
"$BIN/clt-fit" -o "$TMP/res" "${FIT[@]}" --device cuda --resume "$TMP/a.acts" 2>/dev/null
if out=$("$PY" "$ROOT/tests/compare_clt.py" "$TMP/gpu" "$TMP/res" 0 2>&1); then ok clt_fit_cuda_resume_bit_identical
else fail clt_fit_cuda_resume_bit_identical "$out"; fi
"$BIN/clt-fit" -o "$TMP/res_cpu" "${FIT[@]}" --resume "$TMP/a.acts" 2>/dev/null
if out=$("$PY" "$ROOT/tests/compare_clt.py" "$TMP/cpu" "$TMP/res_cpu" 1e-2 norm 2>&1); then ok clt_fit_cuda_state_resumes_on_cpu
else fail clt_fit_cuda_state_resumes_on_cpu "$out"; fi

# two GPUs: 2 ranks with NCCL match 1 rank
if command -v mpirun >/dev/null && [ "$(nvidia-smi -L 2>/dev/null | wc -l)" -ge 2 ]; then
  # as tests/test_clt_mpi.sh: containers may lack the ptrace rights of vader's single-copy mode
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
  mpirun --allow-run-as-root --oversubscribe -np 2 "$BIN/clt-fit" -o "$TMP/gpu2" "${FIT[@]}" --device cuda "$TMP/a.acts" 2>"$TMP/gpu2.err"
  if grep -q "built without MPI" "$TMP/gpu2.err"; then echo "SKIP clt_fit_cuda_nccl_two_ranks: clt-fit was built without MPI"
  elif out=$("$PY" "$ROOT/tests/compare_clt.py" "$TMP/gpu" "$TMP/gpu2" 1e-2 norm 2>&1); then ok "clt_fit_cuda_nccl_two_ranks ($out)"
  else fail clt_fit_cuda_nccl_two_ranks "$out $(tail -3 "$TMP/gpu2.err")"; fi
else
  echo "SKIP clt_fit_cuda_nccl_two_ranks: needs mpirun and two GPUs"
fi
