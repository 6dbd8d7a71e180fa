#!/usr/bin/env bash
# fwd-acts vs Hugging Face transformers (torch, fp32, same thread counts) on SmolLM2-135M-Instruct
# converted from its GGUF (scripts/fetch_smollm2.sh + gguf-convert: every weight dequantized to
# fp32, so both sides run the same fp32 model): contexts of 256, batch 4, all 30 layers cached.
#
#   bash bench/bench_smollm2.sh
#
# Needs the reference venv with torch (tests/ref/requirements-models.txt; CLTKIT_REFVENV or
# .venv-ref). The converted model (not committed) goes to /tmp/cltkit-bench/smollm2.
source "$(dirname "$0")/lib.sh"
MODEL=/tmp/cltkit-bench/smollm2
W=/tmp/cltkit-bench/fwd-smollm2
mkdir -p "$W"
make -s tools >/dev/null
GGUF=${CLTKIT_SMOLLM2_GGUF:-$(bash scripts/fetch_smollm2.sh)}
[ -f "$MODEL/config.json" ] || bin/gguf-convert "$GGUF" -o "$MODEL"
random_ids "$W" 8 17 49152  # 32 contexts of BOS + 255 tokens (8160 tokens per run)

fwd_vs_hf "$MODEL" "$W"
