#!/usr/bin/env bash
# Runs test binaries (arguments) and the shell tests in tests/*.sh, counts the "ok"/"FAIL"
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
if [ -z "${CLTKIT_GPU_ONLY:-}" ]; then
  for s in tests/test_*.sh; do
    [ -f "$s" ] || continue
    run_one "$(basename "$s")" bash "$s"
  done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
