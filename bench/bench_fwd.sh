#!/usr/bin/env bash
# fwd-acts vs Hugging Face transformers (torch, fp32, same thread counts) on a mid-size random
# Llama (d 768, 8 layers, 12/4 heads, ffn 2048, vocab 32000), contexts of 256, batch 4; plus the
# fraction of this machine's measured sgemm peak.
#
#   bash bench/bench_fwd.sh
#
# Needs the reference venv with torch (tests/ref/requirements-models.txt; CLTKIT_REFVENV or
# .venv-ref). The model (not committed) goes to /tmp/cltkit-bench/llama-mid.
source "$(dirname "$0")/lib.sh"
MODEL=/tmp/cltkit-bench/llama-mid
W=/tmp/cltkit-bench/fwd
mkdir -p "$W"
make -s tools build/bench/sgemm_peak >/dev/null
[ -f "$MODEL/config.json" ] || "$PY" bench/make_bench_model.py --out "$MODEL"
random_ids "$W" 16 3 32000  # 64 contexts of BOS + 255 tokens

peak=$(build/bench/sgemm_peak | tail -1 | "$PY" -c "import json,sys; print(json.load(sys.stdin)['peak_gflops'])")
# matmul FLOPs per token: 2 x the weights of the linear layers (layers only; + lm_head for eval)
read -r flop_layers flop_head < <("$PY" -c "
import json; c = json.load(open('$MODEL/config.json'))
d, f, L, V = c['hidden_size'], c['intermediate_size'], c['num_hidden_layers'], c['vocab_size']
hd = d // c['num_attention_heads']; kv = c['num_key_value_heads'] * hd
print(2 * L * (2 * d * d + 2 * d * kv + 3 * d * f), 2 * d * V)")

fwd_vs_hf "$MODEL" "$W" "$peak" "$flop_layers" "$flop_head"
echo "sgemm peak (all $(nproc) threads): $peak GFLOP/s; %peak scales it by threads/cores"
