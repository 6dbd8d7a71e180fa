#!/usr/bin/env bash
# feat-topk on SmolLM2-135M-Instruct (converted from its GGUF, fp32) with a clt-fit CLT, against
# fwd-acts on the same corpus and contexts (256 tokens, batch 4): tokens/s of the whole pass, the
# time in the forward, the CLT encoder and the collection, and peak RSS.
#
#   bash bench/bench_feat_topk.sh            # FEATURES=1152 TOKENS=8160 STEPS=12 by default
#
# The CLT: clt-fit, BatchTopK k=32 (saved as JumpReLU), FEATURES per layer over all 30 layers,
# trained STEPS steps on the first 8192 tokens (int8 activations) — a short run: the costs below
# depend on the shape and the firing rate, not on the quality. Corpus: tests/data/tok_corpus.jsonl.
source "$(dirname "$0")/lib.sh"
W=/tmp/cltkit-bench/feat
MODEL=$W/smollm2
FEATURES=${FEATURES:-1152} TOKENS=${TOKENS:-8160} STEPS=${STEPS:-12}
mkdir -p "$W"
make -s tools >/dev/null
GGUF=${CLTKIT_SMOLLM2_GGUF:-$(bash scripts/fetch_smollm2.sh)}
[ -f "$MODEL/config.json" ] || bin/gguf-convert "$GGUF" -o "$MODEL" >/dev/null
bin/tok encode -t "$MODEL/tokenizer.json" -o "$W/c.tok" tests/data/tok_corpus.jsonl 2>/dev/null
if [ ! -f "$W/clt-$FEATURES/config.yaml" ]; then
  bin/fwd-acts -m "$MODEL" -o "$W/train.acts" --ctx 256 --batch 4 --dtype int8 --max-tokens 8192 "$W/c.tok" 2>/dev/null
  bin/clt-fit -o "$W/clt-$FEATURES" --features "$FEATURES" --batch 256 --steps "$STEPS" --activation batchtopk --k 32 \
    "$W/train.acts" 2>/dev/null
  rm -f "$W/train.acts"
fi
fwd=$(/usr/bin/time -f 'rss %M' bin/fwd-acts -m "$MODEL" -o "$W/out.acts" --ctx 256 --batch 4 --dtype bf16 \
  --max-tokens "$TOKENS" "$W/c.tok" 2>&1)
ft=$(/usr/bin/time -f 'rss %M' bin/feat-topk -m "$MODEL" --clt "$W/clt-$FEATURES" -o "$W/feats" --ctx 256 --batch 4 \
  --max-tokens "$TOKENS" "$W/c.tok" 2>&1)
rm -f "$W/out.acts"
echo "fwd-acts:  $(printf '%s\n' "$fwd" | grep -oE '[0-9]+ tokens/s forward') peak RSS $(printf '%s\n' "$fwd" | awk '/^rss/{printf "%.0f MiB", $2/1024}')"
echo "feat-topk: $(printf '%s\n' "$ft" | grep '^feat-topk')"
printf '%s\n' "$ft" | grep -oE 'forward [0-9.]+ s, encoder [0-9.]+ s, collection [0-9.]+ s' \
  | awk '{f=$2; e=$5; c=$8; printf "encoder + collection = %.1f%% of the forward\n", 100*(e+c)/f}'
