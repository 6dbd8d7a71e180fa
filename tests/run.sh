#!/usr/bin/env bash
# Runs test binaries (arguments) and the shell tests (below), counts the "ok"/"FAIL"/"SKIP"
# lines they print, says "N skipped" and ends with the line "N passed, N failed". A binary that crashes or exits
# non-zero without printing a FAIL line counts as one failure.
#
# Portability: machines differ (CPUs with and without AVX-512; OPENBLAS_CORETYPE set by the
# environment), so after the normal run the test binaries run again once per CPU configuration
# this machine can execute — an OpenBLAS kernel family and the matching level of our own per-ISA
# kernels (CLTKIT_CPU, libcommon/base/cpu.h) — with their lines tagged "[core/level]". A tolerance that
# holds for one BLAS kernel only fails here, not on the next machine. CLTKIT_TEST_MATRIX=0 skips it.
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0; skipped=0
run_one() {  # name, command...
  local name=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  printf '%s\n' "$out" | grep -E '^(ok|FAIL|SKIP|  )' | sed "s#^\(ok\|FAIL\|SKIP\) #\1 ${TAG:-}#" || true
  local p f s
  p=$(printf '%s\n' "$out" | grep -c '^ok ') || true
  f=$(printf '%s\n' "$out" | grep -c '^FAIL ') || true
  s=$(printf '%s\n' "$out" | grep -c '^SKIP ') || true
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL ${TAG:-}$name (exit $rc)"; printf '%s\n' "$out" | tail -5 | sed 's/^/  | /'; f=1
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}
for t in "$@"; do
  [ -x "$t" ] || { echo "FAIL $t (not built)"; failed=$((failed + 1)); continue; }
  run_one "$(basename "$t")" "$t"
done
# the shell tests: tests/test_*.sh, or under make test-gpu (CLTKIT_GPU_ONLY) tests/gpu_test_*.sh
for s in $([ -z "${CLTKIT_GPU_ONLY:-}" ] && echo tests/test_*.sh || echo tests/gpu_test_*.sh); do
  [ -f "$s" ] || continue
  run_one "$(basename "$s")" bash "$s"
done
# The CPU matrix (CPU tests only): "OpenBLAS core type/our level" pairs this CPU can run.
if [ -z "${CLTKIT_GPU_ONLY:-}" ] && [ "${CLTKIT_TEST_MATRIX:-1}" != 0 ] && [ $# -gt 0 ]; then
  flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
  configs="Prescott/generic"
  case " $flags " in *" avx2 "*) configs="$configs Haswell/avx2" ;; esac
  case " $flags " in *" avx512f "*) configs="$configs SkylakeX/avx512" ;; esac
  for cfg in $configs; do
    for t in "$@"; do
      [ -x "$t" ] || continue
      TAG="[$cfg] " run_one "$(basename "$t")" env OPENBLAS_CORETYPE="${cfg%/*}" CLTKIT_CPU="${cfg#*/}" "$t"
    done
  done
fi
echo "$skipped skipped (tests needing data or hardware this machine lacks; each SKIP line says which)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
