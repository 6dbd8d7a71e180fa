#!/usr/bin/env bash
# Runs test binaries (arguments) and the shell tests (below), counts the "ok"/"FAIL"
# lines they print, and ends with "N passed, N failed". A binary that crashes or exits
# non-zero without printing a FAIL line counts as one failure.
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0
run_one() {  # name, command...
  local name=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  printf '%s\n' "$out" | grep -E '^(ok|FAIL|SKIP|  )' || true
  local p f
  p=$(printf '%s\n' "$out" | grep -c '^ok ') || true
  f=$(printf '%s\n' "$out" | grep -c '^FAIL ') || true
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name (exit $rc)"; printf '%s\n' "$out" | tail -5 | sed 's/^/  | /'; f=1
  fi
  passed=$((passed + p)); failed=$((failed + f))
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
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
