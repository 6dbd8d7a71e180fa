#!/usr/bin/env bash
# feat-topk on SmolLM2-135M-Instruct (converted from its GGUF, fp32) with a clt-fit CLT, against
# fwd-acts on the same corpus and contexts (256 tokens, batch 4): tokens/s of the whole pass, the
# time in the forward, the CLT encoder and the collection, and peak RSS.
#
#   bash bench/bench_feat_topk.sh            # FEATURES=1152 TOKENS=8160 STEPS=12 by default
#   MODEL=~/.cache/cltkit/smollm2/hf CORPUS=pystd TOKENS=51000 bash bench/bench_feat_topk.sh
#
# The CLT: clt-fit, BatchTopK k=32 (saved as JumpReLU), FEATURES per layer over all 30 layers,
# trained STEPS steps on the first 8192 tokens (int8 activations) — a short run: the costs below
# depend on the shape and the firing rate, not on the quality. Corpus: tests/data/tok_corpus.jsonl
# (~8k tokens), or CORPUS=pystd: the first 400,000 bytes (whole modules) of
# pipelines/pystdlib_corpus.py --kind source (with Debian's Python 3.11.2: 12 modules, 88,634 SmolLM2
# tokens). MODEL:
# a model directory (default: the GGUF of scripts/fetch_smollm2.sh, converted).
source "$(dirname "$0")/lib.sh"
W=/tmp/cltkit-bench/feat
MODEL=${MODEL:-$W/smollm2} CORPUS=${CORPUS:-tests/data/tok_corpus.jsonl}
FEATURES=${FEATURES:-1152} TOKENS=${TOKENS:-8160} STEPS=${STEPS:-12}
mkdir -p "$W"
make -s tools >/dev/null
if [ ! -f "$MODEL/config.json" ]; then
  GGUF=${CLTKIT_SMOLLM2_GGUF:-$(bash scripts/fetch_smollm2.sh)}
  bin/gguf-convert "$GGUF" -o "$MODEL" >/dev/null
fi
if [ "$CORPUS" = pystd ]; then
  python3 pipelines/pystdlib_corpus.py --kind source >"$W/pystd-all.jsonl" 2>/dev/null
  head -c 400000 "$W/pystd-all.jsonl" | head -n -1 >"$W/pystd.jsonl"
  CORPUS=$W/pystd.jsonl
fi
bin/tok encode -t "$MODEL/tokenizer.json" -o "$W/c.tok" "$CORPUS" 2>/dev/null
CLT=$W/clt-$FEATURES-$(basename "$CORPUS" .jsonl)-$(basename "$MODEL")  # trained on this corpus and model
if [ ! -f "$CLT/config.yaml" ]; then
  bin/fwd-acts -m "$MODEL" -o "$W/train.acts" --ctx 256 --batch 4 --dtype int8 --max-tokens 8192 "$W/c.tok" 2>/dev/null
  bin/clt-fit -o "$CLT" --features "$FEATURES" --batch 256 --steps "$STEPS" --activation batchtopk --k 32 \
    "$W/train.acts" 2>/dev/null
  rm -f "$W/train.acts"
fi
fwd=$(/usr/bin/time -f 'rss %M' bin/fwd-acts -m "$MODEL" -o "$W/out.acts" --ctx 256 --batch 4 --dtype bf16 \
  --max-tokens "$TOKENS" "$W/c.tok" 2>&1)
ft=$(/usr/bin/time -f 'rss %M' bin/feat-topk -m "$MODEL" --clt "$CLT" -o "$W/feats" --ctx 256 --batch 4 \
  --max-tokens "$TOKENS" "$W/c.tok" 2>&1)
rm -f "$W/out.acts"
echo "fwd-acts:  $(printf '%s\n' "$fwd" | grep -oE '[0-9]+ tokens/s forward') peak RSS $(printf '%s\n' "$fwd" | awk '/^rss/{printf "%.0f MiB", $2/1024}')"
echo "feat-topk: $(printf '%s\n' "$ft" | grep '^feat-topk')"
printf '%s\n' "$ft" | grep -oE 'forward [0-9.]+ s, encoder [0-9.]+ s, collection [0-9.]+ s' \
  | awk '{f=$2; e=$5; c=$8; printf "encoder + collection = %.1f%% of the forward\n", 100*(e+c)/f}'
