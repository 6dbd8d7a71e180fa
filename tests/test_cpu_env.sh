#!/usr/bin/env bash
# An OPENBLAS_CORETYPE this CPU cannot run (the environment may set one: SkylakeX on a CPU without
# AVX-512 used to kill every GEMM with SIGILL) is dropped before main (libcommon/base/cpu.c) and the
# program runs as without it: the numeric tests pass and the tools' outputs are identical.
source "$(dirname "$0")/lib.sh"
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
bad=""
if ! has avx512f; then bad=SkylakeX
elif ! has avx512_bf16; then bad=Cooperlake
fi
if [ -z "$bad" ]; then echo "SKIP cpu_env: this CPU runs every OpenBLAS core type (nothing to guard against)"; exit 0; fi
for t in test_kernels test_model test_clt; do
  out=$(OPENBLAS_CORETYPE=$bad "$ROOT/build/tests/$t" 2>&1); rc=$?
  if [ $rc -eq 0 ] && ! printf '%s\n' "$out" | grep -q '^FAIL' && printf '%s\n' "$out" | grep -q '^ok'; then ok "cpu_env_${t}_$bad"
  else fail "cpu_env_${t}_$bad" "exit $rc: $(printf '%s\n' "$out" | grep -m2 -E 'FAIL|Illegal')"; fi
done
M=$ROOT/tests/golden/models/llama3
"$BIN/fwd-acts" generate -m "$M" --max-new-tokens 8 > "$TMP/a.txt" 2>/dev/null
OPENBLAS_CORETYPE=$bad "$BIN/fwd-acts" generate -m "$M" --max-new-tokens 8 > "$TMP/b.txt" 2>"$TMP/b.err"
[ -s "$TMP/a.txt" ] && cmp -s "$TMP/a.txt" "$TMP/b.txt" && [ ! -s "$TMP/b.err" ] && ok "cpu_env_tool_$bad" \
  || fail "cpu_env_tool_$bad" "$(head -2 "$TMP/b.err")"
