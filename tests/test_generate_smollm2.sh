#!/usr/bin/env bash
# SmolLM2-135M-Instruct end to end: gguf-convert the GGUF, then `generate` must reproduce
# transformers (tests/golden/generate/smollm2.json, from tests/ref/make_generate_goldens.py):
# the chat-template text and ids of each chat case and its first 20 greedy tokens. Skips (with
# the reason) when the GGUF has not been fetched (scripts/fetch_smollm2.sh) or gguf-convert is
# not built. $CLTKIT_SMOLLM2_GGUF overrides the GGUF's path.
source "$(dirname "$0")/lib.sh"
GEN=$BIN/generate
GOLDEN=$ROOT/tests/golden/generate/smollm2.json
GGUF=${CLTKIT_SMOLLM2_GGUF:-${CLTKIT_CACHE:-$HOME/.cache/cltkit}/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
PY=$(command -v python3)
if [ ! -f "$GGUF" ]; then echo "SKIP smollm2: $GGUF not found (bash scripts/fetch_smollm2.sh fetches it)"; exit 0; fi
if [ ! -x "$BIN/gguf-convert" ]; then echo "SKIP smollm2: bin/gguf-convert is not built"; exit 0; fi
if ! "$BIN/gguf-convert" "$GGUF" -o "$TMP/smol" 2> "$TMP/convert.err"; then
  fail smollm2_convert "$(head -1 "$TMP/convert.err")"; exit 0
fi
ok smollm2_convert

# golden field of case i, one id a line for lists (jq-free: python3 reads the JSON)
field() { "$PY" -c "
import json, sys
v = json.load(open('$GOLDEN'))['cases'][$1]$2
print('\n'.join(map(str, v)) if isinstance(v, list) else v, end='')"; }
n_cases=$("$PY" -c "import json; print(len(json.load(open('$GOLDEN'))['cases']))")
for i in $(seq 0 $((n_cases - 1))); do
  name=$(field "$i" "['name']")
  user=$(field "$i" "['messages'][-1]['content']")
  sys_args=()
  if [ "$(field "$i" "['messages'][0]['role']")" = system ]; then sys_args=(--system "$(field "$i" "['messages'][0]['content']")"); fi
  "$GEN" -m "$TMP/smol" "${sys_args[@]}" --prompt-only "$user" > "$TMP/text.txt"
  field "$i" "['template_text']" > "$TMP/want_text.txt"
  cmp -s "$TMP/text.txt" "$TMP/want_text.txt" && ok "smollm2_${name}_template_text" \
    || fail "smollm2_${name}_template_text" "$(diff "$TMP/text.txt" "$TMP/want_text.txt" | head -4 | tr '\n' ' ')"
  "$GEN" -m "$TMP/smol" "${sys_args[@]}" --prompt-only --ids "$user" > "$TMP/ids.txt"
  field "$i" "['template_ids']" > "$TMP/want_ids.txt"; echo >> "$TMP/want_ids.txt"
  cmp -s "$TMP/ids.txt" "$TMP/want_ids.txt" && ok "smollm2_${name}_template_ids" \
    || fail "smollm2_${name}_template_ids" "$(paste -sd' ' "$TMP/ids.txt")"
  # greedy: stdin like interp-prompt sends it; 20 tokens, or fewer ending with the EOS
  printf '%s\n' "$user" | "$GEN" -m "$TMP/smol" "${sys_args[@]}" --ids --max-new-tokens 20 > "$TMP/gen.txt"
  field "$i" "['greedy_ids']" > "$TMP/want_gen.txt"; echo >> "$TMP/want_gen.txt"
  cmp -s "$TMP/gen.txt" "$TMP/want_gen.txt" && ok "smollm2_${name}_greedy_20_match_hf" \
    || fail "smollm2_${name}_greedy_20_match_hf" "got $(paste -sd' ' "$TMP/gen.txt"), want $(paste -sd' ' "$TMP/want_gen.txt")"
  out=$(printf '%s\n' "$user" | "$GEN" -m "$TMP/smol" "${sys_args[@]}" --max-new-tokens 20)
  [ "$out" = "$(field "$i" "['greedy_text']")" ] && ok "smollm2_${name}_text" || fail "smollm2_${name}_text" "'$out'"
done

# the explainer call: a bare model name from the cache (here the converted directory as NAME/hf)
mkdir -p "$TMP/cache/smollm2"; ln -s "$TMP/smol" "$TMP/cache/smollm2/hf"
out=$(echo "Explain in three words: the sun" | CLTKIT_CACHE="$TMP/cache" "$GEN" --model smollm2 --max-new-tokens 20 \
  2>"$TMP/name.err")
[ "$out" = "$(field 0 "['greedy_text']")" ] && grep -q "^generate: model 'smollm2': $TMP/cache/smollm2/hf (the cache)" \
  "$TMP/name.err" && ok smollm2_by_name || fail smollm2_by_name "'$out' $(cat "$TMP/name.err")"
