# bench/lib.sh — sourced by the bench scripts: the repository root (made the working directory),
# the reference venv's python, and the forward-pass comparison that bench_fwd.sh and
# bench_smollm2.sh run on their models.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${CLTKIT_REFVENV:-$ROOT/.venv-ref}  # tests/ref/requirements-*.txt
PY=$VENV/bin/python

best() {  # command... -> best tokens/s of 3 runs, read from fwd-acts' stderr / stdout
  local b=0 v
  for _ in 1 2 3; do
    v=$("$@" 2>&1 | grep -oE '[0-9.]+ tokens/s|"tokens_per_s": [0-9.]+' | grep -oE '[0-9.]+' | head -1)
    b=$(awk -v a="$b" -v c="$v" 'BEGIN{print (c>a)?c:a}')
  done
  echo "$b"
}

# random_ids W N_DOCS LO HI: N_DOCS documents of 1020 random ids in [LO, HI) (seed 0) -> W/ids.tok
# (contexts of BOS + 255 tokens at --ctx 256)
random_ids() {
  "$PY" -c "
import json, random
r = random.Random(0)
with open('$1/ids.jsonl', 'w') as f:
    for d in range($2): f.write(json.dumps({'ids': [r.randrange($3, $4) for _ in range(1020)]}) + '\n')"
  bin/tok encode --ids-field ids --vocab-size "$4" -o "$1/ids.tok" "$1/ids.jsonl" 2>/dev/null
}

# fwd_vs_hf MODEL W [PEAK FLOP_LAYERS FLOP_HEAD]: fwd-acts (caching every layer; eval) against
# bench/fwd_torch.py (hidden states; plain forward) on W/ids.tok, contexts of 256, batch 4, at 1
# thread and at all cores; with PEAK (GFLOP/s, all cores) and the matmul FLOPs per token of the
# layers and of the lm_head, also the fraction of the peak reached.
fwd_vs_hf() {
  local model=$1 w=$2 peak=${3:-} flop_layers=${4:-} flop_head=${5:-}
  local torch_json n mode line hf_plain hf_hidden acts evl pa pe
  torch_json=$("$PY" bench/fwd_torch.py --model "$model" --threads both --attn sdpa --batch 4 --ctx 256 --repeat 3)
  printf '%-8s %-34s %10s %10s %7s %9s\n' threads job "HF tok/s" "ours" ratio "${peak:+%peak}"
  for n in 1 $(nproc); do
    mode=$([ "$n" = 1 ] && echo 1 || echo all)
    line=$(printf '%s\n' "$torch_json" | "$PY" -c "
import json, sys
for l in sys.stdin:
    d = json.loads(l)
    if str(d['threads']) in ('$n', '$mode'): print(d['tokens_per_s'], d['tokens_per_s_hidden_states'])" | head -1)
    hf_plain=${line% *}; hf_hidden=${line#* }
    acts=$(CLTKIT_THREADS=$n OPENBLAS_NUM_THREADS=$n best bin/fwd-acts -m "$model" -o "$w/out.acts" --ctx 256 --batch 4 --dtype bf16 "$w/ids.tok")
    evl=$(CLTKIT_THREADS=$n OPENBLAS_NUM_THREADS=$n best bin/fwd-acts eval -m "$model" --ctx 256 --batch 4 "$w/ids.tok")
    pa= pe=
    if [ -n "$peak" ]; then
      pa=$(awk -v t="$acts" -v f="$flop_layers" -v p="$peak" -v n="$n" -v c="$(nproc)" 'BEGIN{printf "%.0f%%", 100*t*f/1e9/(p*n/c)}')
      pe=$(awk -v t="$evl" -v f="$flop_layers" -v h="$flop_head" -v p="$peak" -v n="$n" -v c="$(nproc)" 'BEGIN{printf "%.0f%%", 100*t*(f+h)/1e9/(p*n/c)}')
    fi
    printf '%-8s %-34s %10.0f %10.0f %7s %9s\n' "$n" "cache all layers (HF: hidden states)" "$hf_hidden" "$acts" "$(awk -v a="$acts" -v b="$hf_hidden" 'BEGIN{printf "%.2fx", a/b}')" "$pa"
    printf '%-8s %-34s %10.0f %10.0f %7s %9s\n' "$n" "full forward + logits (eval)" "$hf_plain" "$evl" "$(awk -v a="$evl" -v b="$hf_plain" 'BEGIN{printf "%.2fx", a/b}')" "$pe"
  done
  rm -f "$w/out.acts"
}
