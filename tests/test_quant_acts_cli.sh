#!/usr/bin/env bash
# quant-acts on real activations (stories260K over the tokenizer test corpus; the tiny golden
# Llama 3 / Gemma 2 / GPT-2 over random ids): conversions to every encoding read back, errors
# within each encoding's guaranteed bound, the in-memory report equal to the files', fwd-acts
# writing a quantised encoding directly, shuffle flags, and bad input (one-line errors, no output).
source "$(dirname "$0")/lib.sh"
QA=$BIN/quant-acts
FWD=$BIN/fwd-acts
PY=$(command -v python3)
# j FILE EXPR: evaluates EXPR on the JSON in FILE (as d); e = {encoding name: entry} of a report
j() { "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); e={x['encoding']: x for x in d.get('encodings', [])}; print($2)" "$1"; }

stories_model
"$BIN/tok" encode -t "$TMP/st/tokenizer.json" -o "$TMP/x.tok" "$ROOT/tests/data/tok_corpus.jsonl" 2>/dev/null
"$FWD" -m "$TMP/st" -o "$TMP/src.acts" --ctx 64 --chunk-tokens 500 --max-tokens 12000 "$TMP/x.tok" 2>/dev/null
# (the source is src.acts: converting it to f32 writes f32.acts, another file: an output may not be its input)
n_tok=$("$FWD" info "$TMP/src.acts" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['n_tokens'])")

# 1. every encoding: converted, read back whole (fwd-acts info decodes and checks every chunk)
ENCS="f32 bf16 f16 int8 int8:31 fp8 int4 int4:16"
ok_conv=1
for e in $ENCS; do
  "$QA" "$TMP/src.acts" -o "$TMP/$e.acts" --dtype "$e" 2>/dev/null || { ok_conv=0; echo "  convert to $e failed"; }
  "$FWD" info "$TMP/$e.acts" > "$TMP/$e.json" 2>/dev/null || { ok_conv=0; echo "  $e does not read back"; }
  [ "$(j "$TMP/$e.json" "d['n_tokens']")" = "$n_tok" ] || { ok_conv=0; echo "  $e: token count"; }
done
[ $ok_conv = 1 ] && ok qa_convert_every_encoding || fail qa_convert_every_encoding "see above"
[ "$(j "$TMP/int4:16.json" "(d['dtype'], d['enc_param'])")" = "('int4', 16)" ] && [ "$(j "$TMP/int8.json" "d['enc_param']")" = 127 ] \
  && ok qa_header_encoding || fail qa_header_encoding "$(j "$TMP/int4:16.json" "d['dtype'], d['enc_param']")"

# 2. the report over the files: every error within its bound, relative MSE ceilings, ratios
files=""; for e in $ENCS; do files="$files $TMP/$e.acts"; done
"$QA" report "$TMP/src.acts" $files --json > "$TMP/rep.json" 2>/dev/null
res=$(j "$TMP/rep.json" "all(x['max_err_over_bound'] <= 1 for x in d['encodings']) and len(d['encodings']) == 8 and \
  e['f32']['max_abs_err'] == 0 and e['bf16']['rel_mse'] < 1e-5 and e['f16']['rel_mse'] < 1e-7 and \
  e['int8']['rel_mse'] < 1e-4 and e['int8:31']['rel_mse'] < 2e-3 and e['fp8']['rel_mse'] < 1.5e-3 and \
  e['int4']['rel_mse'] < 3e-2 and e['int4']['ratio_vs_f32'] > 6 and e['int8']['ratio_vs_f32'] > 3 and \
  all(len(x['layers']) == 10 and all(l['max_err_over_bound'] <= 1 for l in x['layers']) for x in d['encodings'])")
[ "$res" = True ] && ok qa_report_files_within_bounds || fail qa_report_files_within_bounds "$(head -c 600 "$TMP/rep.json")"

# 3. encoding in memory gives the files' numbers (same chunks, same level)
"$QA" report "$TMP/src.acts" --dtype int8,fp8,int4:16 --json > "$TMP/mem.json" 2>/dev/null
res=$("$PY" -c "
import json
f = {x['encoding']: x for x in json.load(open('$TMP/rep.json'))['encodings']}
m = {x['encoding']: x for x in json.load(open('$TMP/mem.json'))['encodings']}
print(all(abs(m[k]['bytes_per_token'] - f[k]['bytes_per_token']) < 1e-9 and m[k]['rel_mse'] == f[k]['rel_mse']
          and m[k]['encode_mb_s'] > 0 and m[k]['decode_mb_s'] > 0 for k in m) and len(m) == 3)")
[ "$res" = True ] && ok qa_report_in_memory_matches_files || fail qa_report_in_memory_matches_files "$res"
"$QA" report "$TMP/src.acts" --dtype int8 --max-tokens 600 > "$TMP/rep.txt" 2>/dev/null
grep -q "^int8 .*mlp_out" "$TMP/rep.txt" && grep -q "1000 tokens" "$TMP/rep.txt" && grep -q "err/bound" "$TMP/rep.txt" \
  && ok qa_report_text || fail qa_report_text "$(head -5 "$TMP/rep.txt")"

# 4. fwd-acts writes the encoding directly: the same values as converting its f32 output
"$FWD" -m "$TMP/st" -o "$TMP/direct.acts" --ctx 64 --chunk-tokens 500 --max-tokens 12000 --dtype int8:31 "$TMP/x.tok" 2>/dev/null
"$QA" report "$TMP/int8:31.acts" "$TMP/direct.acts" --json > "$TMP/direct.json" 2>/dev/null
[ "$(j "$TMP/direct.json" "e['int8:31']['max_abs_err']")" = 0.0 ] && ok qa_fwd_acts_direct_int8 \
  || fail qa_fwd_acts_direct_int8 "$(head -c 300 "$TMP/direct.json")"

# 5. byte planes by default, plain on request; chains: a quantised source converts again
"$QA" "$TMP/src.acts" -o "$TMP/i8s.acts" --dtype int8 --no-shuffle 2>/dev/null
"$QA" "$TMP/src.acts" -o "$TMP/bf16p.acts" --dtype bf16 --no-shuffle 2>/dev/null
"$QA" "$TMP/int4.acts" -o "$TMP/chain.acts" --dtype fp8 --zstd-level -1 --chunk-tokens 77 2>/dev/null
"$FWD" info "$TMP/i8s.acts" > "$TMP/a.json"; "$FWD" info "$TMP/bf16p.acts" > "$TMP/b.json"; "$FWD" info "$TMP/chain.acts" > "$TMP/c.json"
[ "$(j "$TMP/a.json" "d['byte_plane_chunks']")" = 0 ] && [ "$(j "$TMP/b.json" "d['byte_plane_chunks']")" = 0 ] \
  && [ "$(j "$TMP/int8.json" "d['byte_plane_chunks'] == d['n_chunks'] > 0")" = True ] && [ "$(j "$TMP/bf16.json" "d['byte_plane_chunks'] == d['n_chunks']")" = True ] \
  && [ "$(j "$TMP/c.json" "(d['chunk_tokens'], d['stored_bytes'] == d['payload_bytes'], d['meta']['quant_acts']['source_dtype'])")" = "(77, True, 'int4')" ] \
  && ok qa_shuffle_flags_and_chains || fail qa_shuffle_flags_and_chains "$(j "$TMP/c.json" "d['chunk_tokens'], d['meta']")"

# 6. the tiny golden models (random weights, transformers-verified forward) over random ids
"$PY" -c "
import json, random
r = random.Random(1)
with open('$TMP/ids.jsonl', 'w') as f:
    for _ in range(6): f.write(json.dumps({'ids': [r.randrange(3, 512) for _ in range(200)]}) + '\n')"
"$BIN/tok" encode --ids-field ids --vocab-size 512 -o "$TMP/ids.tok" "$TMP/ids.jsonl" 2>/dev/null
for m in llama3 gemma2 gpt2; do
  "$FWD" -m "$ROOT/tests/golden/models/$m" -o "$TMP/$m.acts" --ctx 48 "$TMP/ids.tok" 2>/dev/null
  "$QA" report "$TMP/$m.acts" --json > "$TMP/$m.rep" 2>/dev/null
  res=$(j "$TMP/$m.rep" "len(d['encodings']) == 7 and all(x['max_err_over_bound'] <= 1 for x in d['encodings']) and d['tokens'] > 1000")
  [ "$res" = True ] && ok "qa_golden_${m}_within_bounds" || fail "qa_golden_${m}_within_bounds" "$(head -c 400 "$TMP/$m.rep")"
done

# 7. bad input: one line naming the problem, non-zero exit, nothing left behind
cp "$TMP/int8.acts" "$TMP/flip.acts"
printf '\x55' | dd of="$TMP/flip.acts" bs=1 seek=$(( $(stat -c %s "$TMP/flip.acts") / 3 )) conv=notrunc 2>/dev/null
expect_error qa_corrupt_chunk "flip.acts: chunk [0-9]+: checksum mismatch" "$QA" "$TMP/flip.acts" -o "$TMP/out.acts" --dtype int4
[ ! -e "$TMP/out.acts" ] && [ -z "$(ls "$TMP" | grep '\.tmp\.')" ] && ok qa_no_partial_output || fail qa_no_partial_output "$(ls "$TMP")"
expect_error qa_corrupt_report "flip.acts: chunk [0-9]+: checksum mismatch" "$QA" report "$TMP/src.acts" "$TMP/flip.acts"
expect_error qa_bad_dtype "--dtype: unknown encoding 'int3'" "$QA" "$TMP/src.acts" -o "$TMP/out.acts" --dtype int3
expect_error qa_bad_param "--dtype: int8 qmax 200 outside \[1, 127\]" "$QA" "$TMP/src.acts" -o "$TMP/out.acts" --dtype int8:200
expect_error qa_missing_output "missing -o/--output" "$QA" "$TMP/src.acts" --dtype int8
expect_error qa_missing_dtype "missing --dtype" "$QA" "$TMP/src.acts" -o "$TMP/out.acts"
expect_error qa_report_with_output "report writes no shard" "$QA" report "$TMP/src.acts" -o "$TMP/out.acts"
expect_error qa_missing_input "nope.acts: cannot open" "$QA" "$TMP/nope.acts" -o "$TMP/out.acts" --dtype int8
"$FWD" -m "$TMP/st" -o "$TMP/l12.acts" --ctx 64 --chunk-tokens 500 --max-tokens 1000 --layers 1,2 "$TMP/x.tok" 2>/dev/null
expect_error qa_report_mismatch "l12.acts: not the same layers" "$QA" report "$TMP/src.acts" "$TMP/l12.acts"
expect_error qa_report_chunking "chunk 0 does not cover the tokens" "$QA" report "$TMP/src.acts" "$TMP/chain.acts"
"$QA" --help | grep -q "usage: quant-acts" && "$QA" --version | grep -q "^quant-acts .*0.1.0" && ok qa_help_version \
  || fail qa_help_version "$("$QA" --version)"

# the old spelling of the mode, --report, is an alias with the same output (timings aside)
untimed() { "$PY" -c "import json,sys; d=json.load(sys.stdin); [e.pop(k) for e in d['encodings'] for k in ('encode_mb_s','decode_mb_s')]; print(json.dumps(d))"; }
"$QA" --report "$TMP/src.acts" "$TMP/int8.acts" --json 2>/dev/null | untimed > "$TMP/r_old.txt"
"$QA" report "$TMP/src.acts" "$TMP/int8.acts" --json 2>/dev/null | untimed > "$TMP/r_new.txt"
cmp -s "$TMP/r_old.txt" "$TMP/r_new.txt" && grep -q rel_mse "$TMP/r_new.txt" && ok qa_alias_report || fail qa_alias_report "differ"
# report's progress counts the source's tokens (not tokens x encodings), the encoding as its metric
if command -v script >/dev/null 2>&1; then
  script -qc "'$QA' report '$TMP/src.acts' --dtype int8,bf16" /dev/null > "$TMP/tty.txt"
  bar=$(tr '\r' '\n' < "$TMP/tty.txt" | sed 's/\x1b\[K//g' | grep "^quant-acts report \[" | tail -1)
  printf '%s' "$bar" | grep -qE "100%  $n_tok/$n_tok tok  [0-9.]+ tok/s  bf16 \(2 of 2\)$" && ok qa_progress_tokens \
    || fail qa_progress_tokens "bar '$bar' for $n_tok tokens"
fi
