# tests/lib.sh — helpers for shell tests (sourced). Each check prints "ok <name>" or
# "FAIL <name>: <why>", the lines tests/run.sh counts.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${CLTKIT_SHARED:-$ROOT/../shared}
BIN=$ROOT/bin
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
ok()   { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
# expect_error NAME PATTERN CMD...: the command must exit non-zero with one stderr line matching PATTERN.
expect_error() {
  local name=$1 pattern=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq 0 ]; then fail "$name" "exit 0, expected an error"; return; fi
  if [ $rc -ge 128 ]; then fail "$name" "crashed (exit $rc): $err"; return; fi
  if ! printf '%s' "$err" | grep -qE -- "$pattern"; then fail "$name" "error '$err' does not match /$pattern/"; return; fi
  if [ "$(printf '%s\n' "$err" | wc -l)" -gt 1 ]; then fail "$name" "error is not one line: $err"; return; fi
  ok "$name"
}
