#!/usr/bin/env bash
# Tokenizer throughput: bin/tok encode vs Hugging Face `tokenizers` on the same corpus and
# tokenizer.json, one thread and all threads, side by side with ratios. Also checks that both
# produce the same total number of tokens.
#
#   bash bench/bench_tok.sh [gpt2 llama3 gemma3 ...]
#
# Needs the reference venv (created on first use in .venv-ref from tests/ref/requirements-tok.txt,
# PyPI access) and ../shared/tokenizers. The corpus (~40 MB, not committed) is built by
# bench/make_bench_corpus.py into /tmp/cltkit-bench/corpus.jsonl.
source "$(dirname "$0")/lib.sh"
SHARED=${CLTKIT_SHARED:-$ROOT/../shared}
CORPUS=${CORPUS:-/tmp/cltkit-bench/corpus.jsonl}
NAMES=("$@"); [ ${#NAMES[@]} -gt 0 ] || NAMES=(gpt2 llama3 gemma3)
THREADS=$(nproc)

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tests/ref/requirements-tok.txt
fi
[ -f "$CORPUS" ] || "$VENV/bin/python" bench/make_bench_corpus.py --out "$CORPUS"
make -s bin/tok >/dev/null

printf '%-8s %-8s %12s %12s %8s %s\n' tokenizer threads "HF MB/s" "tok MB/s" ratio tokens
for name in "${NAMES[@]}"; do
  tj=$SHARED/tokenizers/$name/tokenizer.json
  hf=$(CLTKIT_SHARED=$SHARED "$VENV/bin/python" bench/tok_hf.py "$tj" --threads both --corpus "$CORPUS")
  for mode in 1 all; do
    n=$([ $mode = 1 ] && echo 1 || echo "$THREADS")
    hf_line=$(printf '%s\n' "$hf" | grep "\"threads\": \"\\?$([ $mode = 1 ] && echo 1 || echo all)" | head -1 || true)
    [ -n "$hf_line" ] || hf_line=$(printf '%s\n' "$hf" | sed -n "$([ $mode = 1 ] && echo 1 || echo 2)p")
    hf_mbs=$(printf '%s' "$hf_line" | "$VENV/bin/python" -c "import json,sys; print(json.load(sys.stdin)['mb_per_s'])")
    hf_tokens=$(printf '%s' "$hf_line" | "$VENV/bin/python" -c "import json,sys; print(json.load(sys.stdin)['tokens'])")
    best=0; ours_tokens=0
    for rep in 1 2 3; do
      line=$(bin/tok encode -t "$tj" --threads "$n" -o /tmp/cltkit-bench/$name.tok "$CORPUS" 2>&1 | tail -1)
      mbs=$(printf '%s' "$line" | sed -E 's/.*\(([0-9.]+) MB\/s.*/\1/')
      ours_tokens=$(printf '%s' "$line" | sed -E 's/.* documents, ([0-9]+) tokens.*/\1/')
      best=$(awk -v a="$best" -v b="$mbs" 'BEGIN{print (b>a)?b:a}')
    done
    ratio=$(awk -v a="$best" -v b="$hf_mbs" 'BEGIN{printf "%.1fx", a/b}')
    same=$([ "$ours_tokens" = "$hf_tokens" ] && echo "equal ($ours_tokens)" || echo "DIFFER: tok $ours_tokens vs HF $hf_tokens")
    printf '%-8s %-8s %12.2f %12.2f %8s %s\n' "$name" "$n" "$hf_mbs" "$best" "$ratio" "$same"
  done
done
