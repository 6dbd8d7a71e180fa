# tests/lib.sh — helpers for shell tests (sourced). Each check prints "ok <name>" or
# "FAIL <name>: <why>", the lines tests/run.sh counts.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# test data outside the repository: as tests/check.h test_shared_dir()
if [ -n "${CLTKIT_SHARED:-}" ]; then SHARED=$CLTKIT_SHARED
elif [ -d "$ROOT/../shared" ]; then SHARED=$ROOT/../shared
else SHARED=${CLTKIT_CACHE:-$HOME/.cache/cltkit}/shared; fi
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
# need_shared REL...: the test data outside the repository (../shared or $CLTKIT_SHARED; `make
# test-data` fetches it) that the calling script needs. If one is missing the whole script is
# skipped: one SKIP line naming the file and how to get it, exit 0.
need_shared() {
  local rel
  for rel in "$@"; do
    if [ ! -e "$SHARED/$rel" ]; then
      echo "SKIP $(basename "$0" .sh): needs $SHARED/$rel (not found; \`make test-data\` fetches it)"
      exit 0
    fi
  done
}
STORIES_FILES="models/stories260K/stories260K.bin models/stories260K/tok512.model"
# stories260K (../shared, llama2.c's tiny Llama) converted to the HF layout in $TMP/st
stories_model() {
  need_shared $STORIES_FILES
  "$BIN/llama2c-convert" "$SHARED/models/stories260K/stories260K.bin" --tokenizer "$SHARED/models/stories260K/tok512.model" \
    -o "$TMP/st" 2>/dev/null
}
# ... and the test corpus through it: $TMP/c.tok, and $TMP/a.acts (every layer, 64-token contexts, 2048-token chunks)
stories_acts() {
  stories_model
  "$BIN/tok" encode -t "$TMP/st/tokenizer.json" -o "$TMP/c.tok" "$ROOT/tests/data/tok_corpus.jsonl" 2>/dev/null
  "$BIN/fwd-acts" -m "$TMP/st" -o "$TMP/a.acts" --ctx 64 --chunk-tokens 2048 "$TMP/c.tok" 2>/dev/null
}
# numpy_python: prints a Python 3 that imports numpy (python3 on PATH, else Debian's
# /usr/bin/python3, where scripts/setup.sh installs python3-numpy), or SKIPs the whole script.
numpy_python() {
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c "import numpy" 2>/dev/null; then command -v "$py"; return; fi
  done
  echo "SKIP $(basename "$0" .sh): needs python3 with numpy (scripts/setup.sh installs python3-numpy)" >&2
  return 1
}
