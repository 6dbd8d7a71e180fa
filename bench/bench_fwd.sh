#!/usr/bin/env bash
# fwd-acts vs Hugging Face transformers (torch, fp32, same thread counts) on a mid-size random
# Llama (d 768, 8 layers, 12/4 heads, ffn 2048, vocab 32000), contexts of 256, batch 4; plus the
# fraction of this machine's measured sgemm peak.
#
#   bash bench/bench_fwd.sh
#
# Needs the reference venv with torch (tests/ref/requirements-models.txt; CLTKIT_REFVENV or
# .venv-ref). The model (not committed) goes to /tmp/cltkit-bench/llama-mid.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENV=${CLTKIT_REFVENV:-$ROOT/.venv-ref}
PY=$VENV/bin/python
MODEL=/tmp/cltkit-bench/llama-mid
W=/tmp/cltkit-bench/fwd
mkdir -p "$W"
make -s tools build/bench/sgemm_peak >/dev/null
[ -f "$MODEL/config.json" ] || "$PY" bench/make_bench_model.py --out "$MODEL"

# 16 documents of 1020 random ids -> 64 contexts of BOS + 255 tokens
"$PY" -c "
import json, random
r = random.Random(0)
with open('$W/ids.jsonl', 'w') as f:
    for d in range(16): f.write(json.dumps({'ids': [r.randrange(3, 32000) for _ in range(1020)]}) + '\n')"
bin/tok encode --ids-field ids --vocab-size 32000 -o "$W/ids.tok" "$W/ids.jsonl" 2>/dev/null

peak=$(build/bench/sgemm_peak | tail -1 | "$PY" -c "import json,sys; print(json.load(sys.stdin)['peak_gflops'])")
# matmul FLOPs per token: 2 x the weights of the linear layers (layers only; + lm_head for --eval)
read -r flop_layers flop_head < <("$PY" -c "
import json; c = json.load(open('$MODEL/config.json'))
d, f, L, V = c['hidden_size'], c['intermediate_size'], c['num_hidden_layers'], c['vocab_size']
hd = d // c['num_attention_heads']; kv = c['num_key_value_heads'] * hd
print(2 * L * (2 * d * d + 2 * d * kv + 3 * d * f), 2 * d * V)")

torch_json=$("$PY" bench/fwd_torch.py --model "$MODEL" --threads both --attn sdpa --batch 4 --ctx 256 --repeat 3)
best() {  # command... -> best tokens/s of 3 runs, read from fwd-acts' stderr / stdout
  local b=0 v
  for _ in 1 2 3; do
    v=$("$@" 2>&1 | grep -oE '[0-9.]+ tokens/s|"tokens_per_s": [0-9.]+' | grep -oE '[0-9.]+' | head -1)
    b=$(awk -v a="$b" -v c="$v" 'BEGIN{print (c>a)?c:a}')
  done
  echo "$b"
}
printf '%-8s %-34s %10s %10s %7s %9s\n' threads job "HF tok/s" "ours" ratio "%peak"
for n in 1 $(nproc); do
  mode=$([ "$n" = 1 ] && echo 1 || echo all)
  line=$(printf '%s\n' "$torch_json" | "$PY" -c "
import json, sys
for l in sys.stdin:
    d = json.loads(l)
    if str(d['threads']) in ('$n', '$mode'): print(d['tokens_per_s'], d['tokens_per_s_hidden_states'])" | head -1)
  hf_plain=${line% *}; hf_hidden=${line#* }
  acts=$(CLTKIT_THREADS=$n OPENBLAS_NUM_THREADS=$n best bin/fwd-acts -m "$MODEL" -o "$W/out.acts" --ctx 256 --batch 4 --dtype bf16 "$W/ids.tok")
  evl=$(CLTKIT_THREADS=$n OPENBLAS_NUM_THREADS=$n best bin/fwd-acts -m "$MODEL" --eval --ctx 256 --batch 4 "$W/ids.tok")
  pct_acts=$(awk -v t="$acts" -v f="$flop_layers" -v p="$peak" -v n="$n" -v c="$(nproc)" 'BEGIN{printf "%.0f%%", 100*t*f/1e9/(p*n/c)}')
  pct_eval=$(awk -v t="$evl" -v f="$flop_layers" -v h="$flop_head" -v p="$peak" -v n="$n" -v c="$(nproc)" 'BEGIN{printf "%.0f%%", 100*t*(f+h)/1e9/(p*n/c)}')
  printf '%-8s %-34s %10.0f %10.0f %7s %9s\n' "$n" "cache all layers (HF: hidden states)" "$hf_hidden" "$acts" "$(awk -v a="$acts" -v b="$hf_hidden" 'BEGIN{printf "%.2fx", a/b}')" "$pct_acts"
  printf '%-8s %-34s %10.0f %10.0f %7s %9s\n' "$n" "full forward + logits (--eval)" "$hf_plain" "$evl" "$(awk -v a="$evl" -v b="$hf_plain" 'BEGIN{printf "%.2fx", a/b}')" "$pct_eval"
done
echo "sgemm peak (all $(nproc) threads): $peak GFLOP/s; %peak scales it by threads/cores"
