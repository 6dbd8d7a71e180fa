#!/usr/bin/env bash
# make install PREFIX=DIR: every tool into DIR/bin (runnable from anywhere), the Python reader into
# DIR/share/cltkit/python. Installs the tools already built (-o tools: nothing is rebuilt here).
source "$(dirname "$0")/lib.sh"
P=$TMP/prefix
make -C "$ROOT" --no-print-directory -s -o tools install BIN="$BIN" PREFIX="$P" > "$TMP/make.log" 2>&1 \
  || { fail install_runs "$(tail -3 "$TMP/make.log")"; exit 0; }
n_src=$(ls "$ROOT"/tools/*.c | wc -l); n_inst=$(ls "$P/bin" | wc -l)
bad=""
for src in "$ROOT"/tools/*.c; do
  t=$(basename "$src" .c)
  (cd "$TMP" && PATH="$P/bin:/usr/bin:/bin" "$t" --version 2>/dev/null | grep -q "^$t (cltkit)") || bad="$bad $t"
done
[ "$n_src" = "$n_inst" ] && [ -z "$bad" ] && ok install_tools || fail install_tools "$n_inst of $n_src installed; not runnable:$bad"
cmp -s "$P/share/cltkit/python/cltkit_io.py" "$ROOT/python/cltkit_io.py" && ok install_python_reader \
  || fail install_python_reader "not in $P/share/cltkit/python"
if PY=$(numpy_python 2>/dev/null); then
  (cd "$TMP" && PYTHONPATH="$P/share/cltkit/python" "$PY" -c \
    "import cltkit_io, sys; sys.exit(0 if hasattr(cltkit_io, 'TokShard') else 1)") \
    && ok install_python_import || fail install_python_import "cltkit_io not importable from share/cltkit/python"
fi
