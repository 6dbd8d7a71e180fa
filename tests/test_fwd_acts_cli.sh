#!/usr/bin/env bash
# fwd-acts on the real stories260K model (converted from llama2.c) and bad-input handling.
source "$(dirname "$0")/lib.sh"
FWD=$BIN/fwd-acts
TOK=$BIN/tok
need_shared $STORIES_FILES tokenizers/gpt2/tokenizer.json
ST=$SHARED/models/stories260K
PY=$(command -v python3)
info() { "$FWD" info "$1" | "$PY" -c "import json,sys; d=json.load(sys.stdin); print(d$2)"; }

# 1. stories260K: greedy 200 tokens from BOS equals llama2.c's run.c exactly
stories_model
"$FWD" generate -m "$TMP/st" --max-new-tokens 200 > "$TMP/greedy.txt"
grep -v '^#' "$ST/golden/greedy_ids_200.txt" | awk '{print $2}' > "$TMP/want.txt"
cmp -s "$TMP/greedy.txt" "$TMP/want.txt" && ok fwd_stories260K_greedy_200_matches_llama2c \
  || fail fwd_stories260K_greedy_200_matches_llama2c "first difference: $(diff "$TMP/greedy.txt" "$TMP/want.txt" | head -3 | tr '\n' ' ')"
"$TOK" decode -t "$TMP/st/tokenizer.json" --ids "1 $(tr '\n' ' ' < "$TMP/greedy.txt")" --skip-special > "$TMP/text.txt"
head -c 60 "$TMP/text.txt" | grep -q "^Once upon a time, there was a little girl named Lily" && ok fwd_stories260K_text \
  || fail fwd_stories260K_text "$(head -c 80 "$TMP/text.txt")"

# 2. activations of the demo stories: counts, layers, BOS handling, sharding, max-tokens
"$TOK" encode -t "$TMP/st/tokenizer.json" -o "$TMP/demo.tok" "$ROOT/tests/data/demo_stories.jsonl" 2>/dev/null
"$FWD" -m "$TMP/st" -o "$TMP/all.acts" --ctx 16 --batch 3 "$TMP/demo.tok" 2>/dev/null
n_all=$(info "$TMP/all.acts" "['n_tokens']")
n_doc=$("$TOK" info "$TMP/demo.tok" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['n_tokens'])")
# contexts are BOS + 15 document tokens; the BOS rows are not written; the tail is dropped
[ "$n_all" = $(( n_doc / 15 * 15 )) ] && ok fwd_token_count || fail fwd_token_count "wrote $n_all of $n_doc tokens"
"$FWD" -m "$TMP/st" -o "$TMP/kb.acts" --ctx 16 --keep-bos "$TMP/demo.tok" 2>/dev/null
[ "$(info "$TMP/kb.acts" "['n_tokens']")" = $(( n_doc / 15 * 16 )) ] && ok fwd_keep_bos || fail fwd_keep_bos "wrong count"
"$FWD" -m "$TMP/st" -o "$TMP/l.acts" --ctx 16 --layers 1,3-4 --in resid_mid --dtype f16 "$TMP/demo.tok" 2>/dev/null
[ "$(info "$TMP/l.acts" "['layers']")" = "[1, 3, 4]" ] && [ "$(info "$TMP/l.acts" "['in_hook']")" = resid_mid ] \
  && ok fwd_layers_select || fail fwd_layers_select "$(info "$TMP/l.acts" "['layers']")"
"$FWD" -m "$TMP/st" -o "$TMP/s0.acts" --ctx 16 --shard 0/2 "$TMP/demo.tok" 2>/dev/null
"$FWD" -m "$TMP/st" -o "$TMP/s1.acts" --ctx 16 --shard 1/2 "$TMP/demo.tok" 2>/dev/null
[ $(( $(info "$TMP/s0.acts" "['n_tokens']") + $(info "$TMP/s1.acts" "['n_tokens']") )) = "$n_all" ] \
  && ok fwd_shards_partition || fail fwd_shards_partition "shard counts do not add up"
"$FWD" -m "$TMP/st" -o "$TMP/m.acts" --ctx 16 --max-tokens 20 "$TMP/demo.tok" 2>/dev/null
[ "$(info "$TMP/m.acts" "['n_tokens']")" = 20 ] && ok fwd_max_tokens || fail fwd_max_tokens "wrong count"
loss=$("$FWD" eval -m "$TMP/st" --ctx 16 "$TMP/demo.tok" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['loss'])")
"$PY" -c "import sys; sys.exit(0 if 1.0 < $loss < 4.0 else 1)" && ok fwd_eval_loss_plausible || fail fwd_eval_loss_plausible "loss $loss on TinyStories-like text"

# 3. bad input: one line naming the file, non-zero exit, no output left behind
expect_error fwd_missing_model "nope: no such directory" "$FWD" -m "$TMP/nope" -o "$TMP/x.acts" "$TMP/demo.tok"
mkdir -p "$TMP/bad"; cp "$TMP/st/"* "$TMP/bad/"
sed 's/"model_type": *"llama"/"model_type": "mamba"/' "$TMP/st/config.json" > "$TMP/bad/config.json"
expect_error fwd_unknown_arch "config.json: unknown model_type \"mamba\"" "$FWD" -m "$TMP/bad" -o "$TMP/x.acts" "$TMP/demo.tok"
cp "$TMP/st/config.json" "$TMP/bad/config.json"
head -c 300000 "$TMP/st/model.safetensors" > "$TMP/bad/model.safetensors"
expect_error fwd_truncated_weights "model.safetensors" "$FWD" -m "$TMP/bad" -o "$TMP/x.acts" "$TMP/demo.tok"
sed 's/"intermediate_size": *172/"intermediate_size": 170/' "$TMP/st/config.json" > "$TMP/bad/config.json"
cp "$TMP/st/model.safetensors" "$TMP/bad/model.safetensors"
expect_error fwd_shape_mismatch "has shape \[172, 64\], config implies \[170, 64\]" "$FWD" -m "$TMP/bad" -o "$TMP/x.acts" "$TMP/demo.tok"
sed 's/"num_hidden_layers": *5/"num_hidden_layers": 6/' "$TMP/st/config.json" > "$TMP/bad/config.json"
expect_error fwd_missing_tensor "missing tensor \"model.layers.5" "$FWD" -m "$TMP/bad" -o "$TMP/x.acts" "$TMP/demo.tok"
printf '{"ids": [1, 5, 9000]}\n' > "$TMP/big.jsonl"
"$TOK" encode -t "$SHARED/tokenizers/gpt2/tokenizer.json" --ids-field ids -o "$TMP/big.tok" "$TMP/big.jsonl" 2>/dev/null
expect_error fwd_vocab_mismatch "big.tok: token vocabulary 50257 is larger than the model's 512" "$FWD" -m "$TMP/st" -o "$TMP/x.acts" --ctx 2 "$TMP/big.tok"
[ ! -e "$TMP/x.acts" ] && ok fwd_no_partial_output || fail fwd_no_partial_output "left $TMP/x.acts"
cp "$TMP/all.acts" "$TMP/flip.acts"
printf '\x55' | dd of="$TMP/flip.acts" bs=1 seek=$(( $(stat -c %s "$TMP/flip.acts") / 3 )) conv=notrunc 2>/dev/null
expect_error fwd_corrupt_chunk "flip.acts.*(checksum|crc)" "$FWD" info "$TMP/flip.acts"
expect_error fwd_bad_layers "--layers: 2-9 is outside the model's layers 0-4" "$FWD" -m "$TMP/st" -o "$TMP/x.acts" --layers 2-9 "$TMP/demo.tok"
expect_error fwd_bad_dtype "--dtype: unknown encoding .int3. \(f32, bf16, f16, int8" "$FWD" -m "$TMP/st" -o "$TMP/x.acts" --dtype int3 "$TMP/demo.tok"
# contexts the model cannot run, and runs with nothing to compute: errors, not a crash or a silent 0
expect_error fwd_ctx_beyond_positions "--ctx: 513 tokens, more than the model's 512 positions" \
  "$FWD" -m "$TMP/st" -o "$TMP/x.acts" --ctx 513 "$TMP/demo.tok"
"$PY" -c "import random; random.seed(1); print('{\"ids\": [%s]}' % ','.join(
  str(random.randrange(3, 512)) for _ in range(100001)))" > "$TMP/long.jsonl"
"$TOK" encode -t "$TMP/st/tokenizer.json" --ids-field ids -o "$TMP/long.tok" "$TMP/long.jsonl" 2>/dev/null
expect_error fwd_ctx_huge "--ctx: 100000 tokens, more than the model's 512 positions" \
  "$FWD" -m "$TMP/st" -o "$TMP/x.acts" --ctx 100000 --batch 1 "$TMP/long.tok"
expect_error fwd_eval_no_context "no context of --ctx 512 tokens in the token shards \(they hold [0-9]+ tokens\)" \
  "$FWD" -m "$TMP/st" --eval --ctx 512 "$TMP/demo.tok"
expect_error fwd_acts_no_context "no context of --ctx 512 tokens" \
  "$FWD" -m "$TMP/st" -o "$TMP/x.acts" --ctx 512 "$TMP/demo.tok"
left=$(ls "$TMP" | grep x.acts)
[ -z "$left" ] && ok fwd_no_context_no_output || fail fwd_no_context_no_output "$left"
ids=$("$FWD" generate -m "$TMP/st" --max-new-tokens 20 --prompt-ids "$(seq -s ' ' 3 500)" 2>"$TMP/gen.err" | wc -l)
[ "$ids" = 15 ] && grep -q "stopped after 15 of 20 ids at the model's 512 positions" "$TMP/gen.err" \
  && ok fwd_generate_stops_at_positions || fail fwd_generate_stops_at_positions "$ids ids: $(cat "$TMP/gen.err")"
expect_error fwd_generate_prompt_too_long "--prompt-ids: 513 tokens, more than the model's 512" \
  "$FWD" -m "$TMP/st" --generate 5 --prompt-ids "$(for i in $(seq 1 513); do printf '%d ' $((i % 500)); done)"
"$FWD" --help | grep -q "usage: fwd-acts" && ok fwd_help || fail fwd_help "--help"

# 4. one grammar: the modes are subcommands; the old flags are aliases with the same output
"$FWD" --info "$TMP/all.acts" > "$TMP/i_old.json"; "$FWD" info "$TMP/all.acts" > "$TMP/i_new.json"
cmp -s "$TMP/i_old.json" "$TMP/i_new.json" && [ -s "$TMP/i_new.json" ] && ok fwd_alias_info || fail fwd_alias_info "differ"
"$FWD" -m "$TMP/st" --eval --ctx 16 "$TMP/demo.tok" | sed 's/"tokens_per_s.*//' > "$TMP/e_old.txt"
"$FWD" eval -m "$TMP/st" --ctx 16 "$TMP/demo.tok" | sed 's/"tokens_per_s.*//' > "$TMP/e_new.txt"
cmp -s "$TMP/e_old.txt" "$TMP/e_new.txt" && grep -q '"loss"' "$TMP/e_new.txt" && ok fwd_alias_eval || fail fwd_alias_eval "differ"
"$FWD" -m "$TMP/st" --generate 7 > "$TMP/g_old.txt"; "$FWD" generate -m "$TMP/st" --max-new-tokens 7 > "$TMP/g_new.txt"
cmp -s "$TMP/g_old.txt" "$TMP/g_new.txt" && [ "$(wc -l < "$TMP/g_new.txt")" = 7 ] && ok fwd_alias_generate \
  || fail fwd_alias_generate "differ"
[ "$("$FWD" generate -m "$TMP/st" | wc -l)" = 50 ] && ok fwd_generate_default_50 || fail fwd_generate_default_50 "count"
expect_error fwd_info_one_shard "info takes one shard" "$FWD" info "$TMP/all.acts" "$TMP/kb.acts"
expect_error fwd_generate_no_shards "generate reads no token shards" "$FWD" generate -m "$TMP/st" "$TMP/demo.tok"
expect_error fwd_two_modes "eval and generate are two modes" "$FWD" eval -m "$TMP/st" --generate 3 "$TMP/demo.tok"
# --max-tokens is the input read in every mode: eval takes the contexts that hold N document tokens
n15=$("$FWD" eval -m "$TMP/st" --ctx 16 --max-tokens 40 "$TMP/demo.tok" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['contexts'])")
[ "$n15" = 3 ] && ok fwd_eval_max_tokens || fail fwd_eval_max_tokens "$n15 contexts for 40 tokens of 15 a context"

# 5. progress: on a terminal (script(1) gives one) the bar has the total from the shards' footers,
# and its last count is the summary's; off a terminal stderr holds only the summary line
last_bar() { tr '\r' '\n' | sed 's/\x1b\[K//g' | grep "^$1 \[" | tail -1; }
if command -v script >/dev/null 2>&1; then
  script -qc "'$FWD' -m '$TMP/st' -o '$TMP/p.acts' --ctx 16 --shard 1/2 '$TMP/demo.tok'" /dev/null > "$TMP/tty.txt"
  n=$(info "$TMP/p.acts" "['n_tokens']")
  bar=$(last_bar fwd-acts < "$TMP/tty.txt")
  if grep -q "fwd-acts: $n tokens" "$TMP/tty.txt" && printf '%s' "$bar" | grep -qE "100%  $n/$n tok  [0-9.]+ tok/s"; then
    ok fwd_progress_total_and_final
  else fail fwd_progress_total_and_final "n=$n bar '$bar'"; fi
  script -qc "'$FWD' eval -m '$TMP/st' --ctx 16 --max-tokens 40 '$TMP/demo.tok'" /dev/null > "$TMP/tty.txt"
  bar=$(last_bar "fwd-acts eval" < "$TMP/tty.txt")
  printf '%s' "$bar" | grep -q "100%  45/45 tok" && ok fwd_progress_eval || fail fwd_progress_eval "bar '$bar'"
else
  echo "SKIP fwd_progress_total_and_final: needs script(1) for a terminal"
fi
"$FWD" -m "$TMP/st" -o "$TMP/q.acts" --ctx 16 "$TMP/demo.tok" 2> "$TMP/quiet.err"
[ "$(wc -l < "$TMP/quiet.err")" = 1 ] && grep -q "^fwd-acts: [0-9]* tokens" "$TMP/quiet.err" && ok fwd_progress_quiet_off_tty \
  || fail fwd_progress_quiet_off_tty "$(head -c 300 "$TMP/quiet.err")"
