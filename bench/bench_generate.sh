#!/usr/bin/env bash
# Text generation: `generate` vs Hugging Face transformers generate() on SmolLM2-135M-Instruct
# (fp32 both, greedy, same thread counts, the same chat prompt, 64 new tokens): prefill tokens/s
# (the prompt's forward) and decode tokens/s (the tokens after the first) separately, best of 3.
#
#   bash bench/bench_generate.sh            # prints a markdown table for bench/RESULTS.md
#
# Needs the GGUF (scripts/fetch_smollm2.sh; converted once with bin/gguf-convert into
# /tmp/cltkit-bench/smollm2) and the reference venv with torch + transformers
# (tests/ref/requirements-generate.txt; CLTKIT_REFVENV or .venv-ref). THREADS="1 2" by default.
source "$(dirname "$0")/lib.sh"
MODEL=/tmp/cltkit-bench/smollm2
PROMPT="Write a poem about the sea."
NEW=64
make -s tools >/dev/null
if [ ! -f "$MODEL/config.json" ]; then
  gguf=$(bash scripts/fetch_smollm2.sh)
  mkdir -p "$MODEL"
  bin/gguf-convert "$gguf" -o "$MODEL"
fi

ours() {  # threads -> best prefill and decode tokens/s of 3 runs, and the ids of the last
  local best_p=0 best_d=0 s
  for _ in 1 2 3; do
    s=$(CLTKIT_THREADS=$1 bin/generate -m "$MODEL" --ids --ignore-eos --max-new-tokens $NEW --stats "$PROMPT" 2>&1 >"$W/ours.ids")
    read -r p d < <(echo "$s" | "$PY" -c "import json,sys; d=json.load(sys.stdin); print(d['prefill_tok_s'], d['decode_tok_s'])")
    best_p=$("$PY" -c "print(max($best_p, $p))"); best_d=$("$PY" -c "print(max($best_d, $d))")
  done
  echo "$best_p $best_d"
}

W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
echo "| threads | prompt tokens | HF prefill tok/s | ours prefill tok/s | HF decode tok/s | ours decode tok/s | decode ratio | same 64 ids |"
echo "|---|---|---|---|---|---|---|---|"
for t in ${THREADS:-1 2}; do
  hf=$("$PY" bench/generate_hf.py --model "$MODEL" --prompt "$PROMPT" --threads "$t" --new $NEW 2>/dev/null)
  read -r n hp hd < <(echo "$hf" | "$PY" -c "import json,sys; d=json.load(sys.stdin); print(d['prompt_tokens'], d['prefill_tok_s'], d['decode_tok_s'])")
  echo "$hf" | "$PY" -c "import json,sys; print('\n'.join(map(str, json.load(sys.stdin)['ids'])))" > "$W/hf.ids"
  read -r op od < <(ours "$t")
  same=$(cmp -s "$W/hf.ids" "$W/ours.ids" && echo yes || echo no)
  "$PY" -c "print('| $t | $n | %.0f | %.0f | %.1f | %.1f | %.2fx | $same |' % ($hp, $op, $hd, $od, $od / $hd))"
done
