#!/usr/bin/env bash
# generate on the real stories260K model (converted from llama2.c): raw prompts, stop strings,
# ids, sampling options, stats, and the one-line errors. SmolLM2 chat: test_generate_smollm2.sh.
source "$(dirname "$0")/lib.sh"
GEN=$BIN/generate
PY=$(command -v python3)
stories_model

# 1. greedy continuation: the same ids as fwd-acts generate (which llama2.c's golden pins)
ids=$("$GEN" -m "$TMP/st" --prompt-only --ids "Once upon a time" | tr '\n' ' ')
[ "$ids" = "1 403 407 261 378 " ] && ok gen_prompt_ids_with_bos || fail gen_prompt_ids_with_bos "$ids"
"$GEN" -m "$TMP/st" --ids --max-new-tokens 25 "Once upon a time" > "$TMP/a.txt"
"$BIN/fwd-acts" generate -m "$TMP/st" --max-new-tokens 25 --prompt-ids "1 403 407 261 378" > "$TMP/b.txt"
cmp -s "$TMP/a.txt" "$TMP/b.txt" && ok gen_ids_equal_fwd_acts || fail gen_ids_equal_fwd_acts "$(paste -sd' ' "$TMP/a.txt")"
out=$(echo "Once upon a time" | "$GEN" -m "$TMP/st" --max-new-tokens 12)
[ "$out" = ", there was a little girl named Lily. She" ] && ok gen_text_stdin || fail gen_text_stdin "'$out'"
out=$("$GEN" -m "$TMP/st" --max-new-tokens 40 --stop "Lily" --stop "park" Once upon a time)
[ "$out" = ", there was a little girl named " ] && ok gen_stop_string || fail gen_stop_string "'$out'"

# 2. sampling: seeded runs repeat, other seeds differ, top-k 1 is greedy
s1=$("$GEN" -m "$TMP/st" --max-new-tokens 40 --temperature 1 --top-p 0.95 --seed 7 "Lily")
s2=$("$GEN" -m "$TMP/st" --max-new-tokens 40 --temperature 1 --top-p 0.95 --seed 7 "Lily")
s3=$("$GEN" -m "$TMP/st" --max-new-tokens 40 --temperature 1 --top-p 0.95 --seed 8 "Lily")
[ "$s1" = "$s2" ] && [ "$s1" != "$s3" ] && ok gen_seeded_sampling || fail gen_seeded_sampling "'$s1' / '$s2' / '$s3'"
g=$("$GEN" -m "$TMP/st" --max-new-tokens 40 "Lily")
k=$("$GEN" -m "$TMP/st" --max-new-tokens 40 --temperature 1.3 --top-k 1 --seed 9 "Lily")
[ "$g" = "$k" ] && ok gen_top_k_1_is_greedy || fail gen_top_k_1_is_greedy "'$g' vs '$k'"

# 3. --stats: one JSON line on stderr
"$GEN" -m "$TMP/st" --max-new-tokens 10 --stats "Lily" 2> "$TMP/stats.json" >/dev/null
"$PY" -c "import json,sys; d=json.load(open('$TMP/stats.json')); sys.exit(0 if d['prompt_tokens']==2 and d['new_tokens']==10 and d['stop']=='length' and d['decode_tok_s']>0 else 1)" \
  && ok gen_stats_json || fail gen_stats_json "$(cat "$TMP/stats.json")"

# 4. errors: one line, non-zero exit
expect_error gen_missing_model "nope" "$GEN" -m "$TMP/nope/x" hi
expect_error gen_unknown_name "model 'nosuchmodel': no model directory of that name here or in " env CLTKIT_CACHE="$TMP/cache" "$GEN" -m nosuchmodel hi
expect_error gen_smollm2_not_fetched "fetch_smollm2.sh" env CLTKIT_CACHE="$TMP/cache" "$GEN" -m smollm2 hi
expect_error gen_empty_prompt "empty prompt" sh -c "printf '' | '$GEN' -m '$TMP/st'"
expect_error gen_chat_without_template "no chat template.*--raw" "$GEN" -m "$TMP/st" --chat hi
expect_error gen_system_raw "--system needs the chat template" "$GEN" -m "$TMP/st" --raw --system x hi
expect_error gen_bad_top_p "--top-p must be in" "$GEN" -m "$TMP/st" --top-p 1.5 hi
mkdir -p "$TMP/llama2chat"; for f in "$TMP/st"/*; do ln -s "$f" "$TMP/llama2chat/"; done
printf '{"chat_template": "{%% for m in messages %%}[INST] {{ m.content }} [/INST]{%% endfor %%}"}' > "$TMP/llama2chat/tokenizer_config.json"
expect_error gen_unknown_template "unknown chat template.*--raw" "$GEN" -m "$TMP/llama2chat" hi
out=$("$GEN" -m "$TMP/llama2chat" --raw --max-new-tokens 12 "Once upon a time")
[ "$out" = ", there was a little girl named Lily. She" ] && ok gen_raw_ignores_template || fail gen_raw_ignores_template "'$out'"
# prompts longer than the model's 512 positions: an error at once; one that nearly fills them: a warning
long=$(for i in $(seq 200); do printf 'Once upon a time '; done)
expect_error gen_prompt_too_long "the prompt: [0-9]+ tokens, more than the model's 512 positions" \
  "$GEN" -m "$TMP/st" --raw "$long"
near=$(for i in $(seq 127); do printf 'Once upon a time '; done)
n=$("$GEN" -m "$TMP/st" --prompt-only --ids "$near" | wc -l)
"$GEN" -m "$TMP/st" --ids --max-new-tokens 50 "$near" 2>"$TMP/w.err" >"$TMP/w.out"
got=$(wc -l < "$TMP/w.out")
[ "$n" -le 512 ] && [ "$got" = $(( 512 - n + 1 )) ] && grep -q "stopped after .* at the model's 512 positions" "$TMP/w.err" \
  && ok gen_stops_at_positions_with_warning || fail gen_stops_at_positions_with_warning "prompt $n, $got ids: $(cat "$TMP/w.err")"
"$GEN" --help | grep -q "usage: generate" && ok gen_help || fail gen_help "--help"
"$GEN" --version | grep -q "generate" && ok gen_version || fail gen_version "--version"
# --samples N --jsonl: N answers in one run, the k-th exactly the single run with seed + k
"$GEN" -m "$TMP/st" --raw --temperature 0.8 --seed 7 --max-new-tokens 30 --samples 3 --jsonl "Once upon a time" > "$TMP/s.jsonl"
good=1
for k in 0 1 2; do
  one=$("$GEN" -m "$TMP/st" --raw --temperature 0.8 --seed $((7 + k)) --max-new-tokens 30 "Once upon a time")
  got=$(sed -n "$((k + 1))p" "$TMP/s.jsonl" | python3 -c "import json,sys; d=json.load(sys.stdin); \
assert d['seed'] == $((7 + k)) and d['text'] == d['prompt'] + d['answer']; print(d['answer'])")
  [ "$got" = "$one" ] || { good=0; echo "  sample $k: '$got' vs '$one'"; }
done
[ $good = 1 ] && [ "$(wc -l < "$TMP/s.jsonl")" = 3 ] && ok gen_samples_jsonl_equal_single_runs || fail gen_samples_jsonl_equal_single_runs "see above"
expect_error gen_samples_need_jsonl "needs --jsonl" "$GEN" -m "$TMP/st" --samples 2 hi
# --stop takes escapes: '\n' as a shell passes it (backslash, n) stops at the first newline, like a real one
a=$("$GEN" -m "$TMP/st" --raw --max-new-tokens 200 --stop '\n' "Once upon a time" | od -c)
n=$("$GEN" -m "$TMP/st" --raw --max-new-tokens 200 --stop '\n' "Once upon a time" | wc -l)
[ "$n" = 1 ] && [ -n "$a" ] && ok gen_stop_escapes || fail gen_stop_escapes "$n lines"

# --max-tokens means the input read (fwd-acts, feat-topk, quant-acts); a generating tool says the new name
expect_error gen_max_tokens_renamed "--max-tokens is now --max-new-tokens" "$GEN" -m "$TMP/st" --max-tokens 5 "Lily"
