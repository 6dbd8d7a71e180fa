#!/usr/bin/env bash
# README's "Your own model" block, run as written (the tools by name on PATH) on stories260K and
# the test corpus, with 10 training steps instead of 300: every step succeeds and leaves its output.
source "$(dirname "$0")/lib.sh"
stories_model
block=$(awk '/^<!-- walkthrough:/ {on=1; next} on && /^    / {print substr($0, 5); seen=1; next} on && seen {exit}' \
  "$ROOT/README.md")
[ -n "$block" ] || { fail walkthrough_block "no walkthrough block in README.md"; exit 0; }
mkdir -p "$TMP/w" && cd "$TMP/w" && mv "$TMP/st" model && cp "$ROOT/tests/data/tok_corpus.jsonl" corpus.jsonl
printf '%s\n' "$block" | sed 's/--steps 300/--steps 10/' > walk.sh
PATH="$BIN:$PATH" CLTKIT_CACHE="$TMP/cache" bash -e walk.sh > walk.out 2> walk.err \
  && ok walkthrough_runs || fail walkthrough_runs "$(grep -v '^\s*$' walk.err | tail -2 | tr '\n' ' ')"
missing=""
for f in corpus.tok train.acts clt/config.yaml clt/eval.json feats labels.jsonl graph.json graph.html; do
  [ -s "$f" ] || [ -d "$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && grep -q '</html>' graph.html && ok walkthrough_outputs || fail walkthrough_outputs "missing:$missing"
