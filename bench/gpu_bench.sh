#!/usr/bin/env bash
# GPU check and benchmark, for the machine with the GPU: builds everything, runs the GPU-vs-CPU
# tests (make test-gpu: every CUDA kernel against its CPU reference, the GPU forward against the
# CPU forward and the HF goldens), then times forward_cuda against the CPU forward
# (build/bench/bench_forward) on the mid-size random Llama of bench/make_bench_model.py.
#
#   bash bench/gpu_bench.sh [BATCH CTX ...]     # default: 4 256  8 512  1 2048
#
# Model: $MODEL (default /tmp/cltkit-bench/llama-mid) if it exists, else the same configuration
# built in memory by bench_forward --random (no Python needed on the GPU machine). Set
# CPU=0 to skip the CPU timings (slow at long contexts), ITERS to change the repetitions.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MODEL=${MODEL:-/tmp/cltkit-bench/llama-mid}
ITERS=${ITERS:-3}
CPU=${CPU:-1}
command -v nvcc >/dev/null || { echo "gpu_bench: nvcc not found" >&2; exit 1; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

echo "== build"
make -s -j"$(nproc)" all build/bench/bench_forward build/bench/bench_clt_gpu >/dev/null || { echo "gpu_bench: build failed" >&2; exit 1; }

echo "== make test-gpu"
make -s test-gpu; tests_rc=$?

echo "== forward throughput (tokens/s; cpu threads: ${CLTKIT_THREADS:-$(nproc)})"
src=$MODEL; [ -f "$MODEL/config.json" ] || src=--random
cpu_flag=; [ "$CPU" = 0 ] && cpu_flag=--no-cpu
shapes=("$@"); [ ${#shapes[@]} -gt 0 ] || shapes=(4 256 8 512 1 2048)
bench_rc=0
: > /tmp/gpu_bench_forward.jsonl
for ((i = 0; i + 1 < ${#shapes[@]}; i += 2)); do
  b=${shapes[i]} t=${shapes[i+1]}
  # the CPU at 2048 tokens of context is slow: time it once
  iters=$ITERS; [ "$t" -ge 2048 ] && iters=1
  build/bench/bench_forward "$src" -b "$b" -t "$t" -n "$iters" $cpu_flag | tee -a /tmp/gpu_bench_forward.jsonl
  [ "${PIPESTATUS[0]}" -eq 0 ] || bench_rc=1
done

# summary: GPU/CPU speedup per (batch, ctx, job)
python3 - /tmp/gpu_bench_forward.jsonl <<'PY' || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
checks = [r for r in rows if "check" in r]
runs = {(r["batch"], r["ctx"], r["job"], r["backend"]): r["tokens_per_s"] for r in rows if "backend" in r}
print(f"{'batch':>5} {'ctx':>5} {'job':<11} {'cpu tok/s':>10} {'gpu tok/s':>10} {'speedup':>8}")
for (b, t, job, be), v in sorted(runs.items()):
    if be != "gpu": continue
    cpu = runs.get((b, t, "logits" if job == "logits_dev" else job, "cpu"))
    print(f"{b:>5} {t:>5} {job:<11} {cpu or float('nan'):>10.0f} {v:>10.0f} {(v / cpu if cpu else float('nan')):>7.1f}x")
for c in checks:
    print("gpu vs cpu:", "ok" if c["ok"] else "MISMATCH", f"logits {c['logits_rel_err']:.2g}, mlp_out {c['mlp_out_last_rel_err']:.2g}")
PY
if grep -q '"ok": false' /tmp/gpu_bench_forward.jsonl; then bench_rc=1; fi

echo "== CLT training step (tokens/s)"
clt_cpu=--cpu; [ "$CPU" = 0 ] && clt_cpu=
# shellcheck disable=SC2086  # CLT_ARGS is a list of options
build/bench/bench_clt_gpu ${CLT_ARGS:-} $clt_cpu | tee /tmp/gpu_bench_clt.jsonl
[ "${PIPESTATUS[0]}" -eq 0 ] || bench_rc=1
echo "test-gpu exit $tests_rc, bench exit $bench_rc"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
