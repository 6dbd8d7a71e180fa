#!/usr/bin/env bash
# clt-fit feature sharding under mpirun (skipped without mpirun or an MPI build): 2 ranks match
# 1 rank on stories260K activations, the checkpoint has the 1-rank layout, a 2-rank run resumes
# bit-identically, a 1-rank state resumes on 2 ranks, F not divisible by the ranks is refused.
#
# Tolerance: the 2-rank reconstruction ŷ is the sum of the ranks' partial sums, so it differs from
# the 1-rank sequential sum by float rounding (~1e-7 relative); 30 Adam steps carry that into the
# weights. Per tensor we require max|a−b| ≤ 1e-4·max|b|. Measured (seeds 1, 3, 7, 11; 2 and 4
# ranks): ≤ 9e-6, typically 3e-7 (a few ulps). The outliers are single elements whose gradient is
# a nearly cancelling sum over tokens: rounding changes it relatively a lot, and Adam's normalized
# step (about lr whatever the gradient's size) turns that into an absolute change of the weight.
source "$(dirname "$0")/lib.sh"
if ! command -v mpirun >/dev/null; then echo "SKIP clt_mpi: mpirun not found"; exit 0; fi
PY=$(command -v python3)
stories_acts
FIT=(--features 128 --batch 256 --lr 2e-3 --lambda 0.3 --log-every 10 --pool-chunks 4 --seed 3 --steps 30)
# CI runs as root on 2 cores; vader's single-copy (CMA) needs ptrace rights containers may lack.
# One thread per rank, and the same for the 1-rank reference.
export OMPI_MCA_btl_vader_single_copy_mechanism=none CLTKIT_THREADS=1
MPI2=(mpirun --allow-run-as-root --oversubscribe -np 2)

"$BIN/clt-fit" -o "$TMP/r1" "${FIT[@]}" "$TMP/a.acts" 2>/dev/null
"${MPI2[@]}" "$BIN/clt-fit" -o "$TMP/r2" "${FIT[@]}" "$TMP/a.acts" 2>"$TMP/r2.err"
if grep -q "built without MPI" "$TMP/r2.err"; then echo "SKIP clt_mpi: clt-fit was built without MPI"; exit 0; fi


if out=$("$PY" "$ROOT/tests/compare_clt.py" "$TMP/r1" "$TMP/r2" 1e-4 2>&1); then ok "clt_mpi_two_ranks_match_one ($out)"
else fail clt_mpi_two_ranks_match_one "$out $(tail -3 "$TMP/r2.err")"; fi

if "$PY" - "$TMP/r1/metrics.jsonl" "$TMP/r2/metrics.jsonl" <<'PYEOF'
import json, sys
r1 = [json.loads(l) for l in open(sys.argv[1])]
r2 = [json.loads(l) for l in open(sys.argv[2])]
assert len(r1) == len(r2) == 3, (len(r1), len(r2))
close = lambda x, y, tol: abs(x - y) <= tol * max(abs(x), abs(y), 1e-12)
for a, b in zip(r1, r2):
    for k in ("loss", "mse", "sparsity", "preact"): assert close(a[k], b[k], 1e-4), (k, a[k], b[k])
    for k in ("l0",): assert close(a[k], b[k], 1e-3), (k, a[k], b[k])
    assert a["dead"] == b["dead"] and a["step"] == b["step"]
    assert all(close(x, y, 1e-3) for x, y in zip(a["nmse"] + a["l0_per_layer"], b["nmse"] + b["l0_per_layer"]))
PYEOF
then ok clt_mpi_metrics_close; else fail clt_mpi_metrics_close "$(cat "$TMP/r1/metrics.jsonl" "$TMP/r2/metrics.jsonl")"; fi

# a killed 2-rank run resumes on 2 ranks: the same bytes as the uninterrupted 2-rank run
"${MPI2[@]}" "$BIN/clt-fit" -o "$TMP/res" "${FIT[@]}" --run-steps 12 "$TMP/a.acts" 2>/dev/null
"${MPI2[@]}" "$BIN/clt-fit" -o "$TMP/res" "${FIT[@]}" --resume "$TMP/a.acts" 2>/dev/null
if out=$("$PY" "$ROOT/tests/compare_clt.py" "$TMP/r2" "$TMP/res" 0 2>&1); then ok clt_mpi_resume_bit_identical
else fail clt_mpi_resume_bit_identical "$out"; fi

# the state is the full CLT: a 1-rank state resumes on 2 ranks (close to the 1-rank run)
"$BIN/clt-fit" -o "$TMP/res12" "${FIT[@]}" --run-steps 12 "$TMP/a.acts" 2>/dev/null
"${MPI2[@]}" "$BIN/clt-fit" -o "$TMP/res12" "${FIT[@]}" --resume "$TMP/a.acts" 2>/dev/null
if out=$("$PY" "$ROOT/tests/compare_clt.py" "$TMP/r1" "$TMP/res12" 1e-4 2>&1); then ok clt_mpi_resume_other_rank_count
else fail clt_mpi_resume_other_rank_count "$out"; fi

# TopK modes: the cutoffs span both ranks' features (each rank's K best per group are gathered,
# rank 0 picks the K best of the union), so 2 ranks select what 1 rank selects. Compared by norm:
# a rounding difference in ŷ flips the sign of a nearly cancelling gradient element now and then,
# and Adam's first steps move such an element by about ±lr whatever its gradient's size (seen:
# one element of 16384 after one step; after 30 steps, where TopK's per-token cutoffs let such a
# change flip a selection now and then, max ‖a−b‖/‖b‖ 1.5e-6 for batchtopk and 5.9e-4 for topk).
for act in batchtopk topk; do
  "$BIN/clt-fit" -o "$TMP/${act}1" "${FIT[@]}" --activation $act --k 8 "$TMP/a.acts" 2>/dev/null
  "${MPI2[@]}" "$BIN/clt-fit" -o "$TMP/${act}2" "${FIT[@]}" --activation $act --k 8 "$TMP/a.acts" 2>/dev/null
  if out=$("$PY" "$ROOT/tests/compare_clt.py" "$TMP/${act}1" "$TMP/${act}2" 5e-3 norm 2>&1) \
    && [ "$(tail -1 "$TMP/${act}1/metrics.jsonl" | grep -o '"l0_per_layer": [^]]*')" = \
         "$(tail -1 "$TMP/${act}2/metrics.jsonl" | grep -o '"l0_per_layer": [^]]*')" ]; then ok "clt_mpi_${act}_two_ranks_match_one ($out)"
  else fail "clt_mpi_${act}_two_ranks_match_one" "$out"; fi
done

# F not divisible by the ranks: one message (from rank 0), non-zero exit
err=$("${MPI2[@]}" "$BIN/clt-fit" -o "$TMP/bad" --features 127 --steps 2 "$TMP/a.acts" 2>&1 >/dev/null); rc=$?
if [ $rc -ne 0 ] && [ "$(printf '%s\n' "$err" | grep -c 'not divisible by the 2 ranks')" = 1 ]; then ok clt_mpi_features_not_divisible
else fail clt_mpi_features_not_divisible "exit $rc: $err"; fi

# SIGTERM to mpirun reaches every rank: they agree to finish the step, rank 0 saves, and
# `--resume -o DIR` (settings and shards from run.json) ends bit-identical to an uninterrupted run
"$BIN/clt-fit" synth -o "$TMP/s.acts" --layers 3 --d 16 --features 32 --tokens 16384 >/dev/null
LONG=(--features 32 --batch 64 --log-every 5 --seed 2 --steps 3000)
"${MPI2[@]}" "$BIN/clt-fit" -o "$TMP/full2" "${LONG[@]}" "$TMP/s.acts" 2>/dev/null
"${MPI2[@]}" "$BIN/clt-fit" -o "$TMP/term2" "${LONG[@]}" "$TMP/s.acts" 2>"$TMP/term2.err" & pid=$!
for _ in $(seq 200); do [ -s "$TMP/term2/metrics.jsonl" ] && break; sleep 0.05; done
kill -TERM $pid; wait $pid
"${MPI2[@]}" "$BIN/clt-fit" -o "$TMP/term2" --resume 2>/dev/null
if grep -q "stopped by SIGTERM" "$TMP/term2.err" && out=$("$PY" "$ROOT/tests/compare_clt.py" "$TMP/full2" "$TMP/term2" 0 2>&1)
then ok clt_mpi_sigterm_resume_bit_identical; else fail clt_mpi_sigterm_resume_bit_identical "$(cat "$TMP/term2.err") ${out:-}"; fi
