#!/usr/bin/env bash
# fwd-acts vs Hugging Face transformers (torch, fp32, same thread counts) on SmolLM2-135M-Instruct
# converted from its GGUF (scripts/fetch_smollm2.sh + gguf-convert: every weight dequantized to
# fp32, so both sides run the same fp32 model): contexts of 256, batch 4, all 30 layers cached.
#
#   bash bench/bench_smollm2.sh
#
# Needs the reference venv with torch (tests/ref/requirements-models.txt; CLTKIT_REFVENV or
# .venv-ref). The converted model (not committed) goes to /tmp/cltkit-bench/smollm2.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENV=${CLTKIT_REFVENV:-$ROOT/.venv-ref}
PY=$VENV/bin/python
MODEL=/tmp/cltkit-bench/smollm2
W=/tmp/cltkit-bench/fwd-smollm2
mkdir -p "$W"
make -s tools >/dev/null
GGUF=${CLTKIT_SMOLLM2_GGUF:-$(bash scripts/fetch_smollm2.sh)}
[ -f "$MODEL/config.json" ] || bin/gguf-convert "$GGUF" -o "$MODEL"

# 8 documents of 1020 random ids -> 32 contexts of BOS + 255 tokens (8160 tokens per run)
"$PY" -c "
import json, random
r = random.Random(0)
with open('$W/ids.jsonl', 'w') as f:
    for d in range(8): f.write(json.dumps({'ids': [r.randrange(17, 49152) for _ in range(1020)]}) + '\n')"
bin/tok encode --ids-field ids --vocab-size 49152 -o "$W/ids.tok" "$W/ids.jsonl" 2>/dev/null

torch_json=$("$PY" bench/fwd_torch.py --model "$MODEL" --threads both --attn sdpa --batch 4 --ctx 256 --repeat 3)
best() {  # command... -> best tokens/s of 3 runs, read from fwd-acts' stderr / stdout
  local b=0 v
  for _ in 1 2 3; do
    v=$("$@" 2>&1 | grep -oE '[0-9.]+ tokens/s|"tokens_per_s": [0-9.]+' | grep -oE '[0-9.]+' | head -1)
    b=$(awk -v a="$b" -v c="$v" 'BEGIN{print (c>a)?c:a}')
  done
  echo "$b"
}
printf '%-8s %-34s %10s %10s %7s\n' threads job "HF tok/s" "ours" ratio
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
  printf '%-8s %-34s %10.0f %10.0f %7s\n' "$n" "cache all layers (HF: hidden states)" "$hf_hidden" "$acts" "$(awk -v a="$acts" -v b="$hf_hidden" 'BEGIN{printf "%.2fx", a/b}')"
  printf '%-8s %-34s %10.0f %10.0f %7s\n' "$n" "full forward + logits (--eval)" "$hf_plain" "$evl" "$(awk -v a="$evl" -v b="$hf_plain" 'BEGIN{printf "%.2fx", a/b}')"
done
rm -f "$W/out.acts"
