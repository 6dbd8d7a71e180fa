#!/usr/bin/env bash
# End-to-end tests of the tok command line: encode -> shard -> decode against HF goldens,
# sharding, ids, info, convert-spm, and clear one-line errors on bad input.
source "$(dirname "$0")/lib.sh"
TOK=$BIN/tok
CORPUS=$ROOT/tests/data/tok_corpus.jsonl
need_shared tokenizers/gpt2/tokenizer.json tokenizers/gemma3/tokenizer.json tokenizers/llama3/tokenizer.json
GPT2=$SHARED/tokenizers/gpt2/tokenizer.json
GEMMA=$SHARED/tokenizers/gemma3/tokenizer.json
PY=$(command -v python3)

# 1. encode the corpus, decode it back as JSONL, compare ids and text with the HF goldens
for name in gpt2 gemma3; do
  tj=$SHARED/tokenizers/$name/tokenizer.json
  if "$TOK" encode -t "$tj" --threads 2 --chunk-tokens 1000 -o "$TMP/$name.tok" "$CORPUS" 2>"$TMP/err"; then
    "$TOK" decode -t "$tj" --jsonl "$TMP/$name.tok" > "$TMP/$name.decoded.jsonl"
    if "$PY" - "$ROOT/tests/golden/tok/$name.jsonl" "$TMP/$name.decoded.jsonl" "$CORPUS" <<'PYEOF'
import json, sys
gold = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
got = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
corpus = [json.loads(l)["text"] for l in open(sys.argv[3], encoding="utf-8")]
assert len(got) == len(gold), (len(got), len(gold))
for g, d in zip(gold, got):
    assert d["doc_id"] == g["i"], (d["doc_id"], g["i"])
    assert d["text"] == g["decoded"], (g["i"], d["text"][:80], g["decoded"][:80])
PYEOF
    then ok "cli_roundtrip_matches_hf_$name"; else fail "cli_roundtrip_matches_hf_$name" "decoded shard differs from HF"; fi
  else
    fail "cli_roundtrip_matches_hf_$name" "$(cat "$TMP/err")"
  fi
done

# 2. ids through the shard equal the golden ids (info counts too)
n_gold=$("$PY" -c "import json,sys; print(sum(len(json.loads(l)['ids']) for l in open(sys.argv[1])))" "$ROOT/tests/golden/tok/gpt2.jsonl")
n_shard=$("$TOK" info "$TMP/gpt2.tok" | "$PY" -c "import json,sys; d=json.load(sys.stdin); print(d['n_tokens'])")
[ "$n_gold" = "$n_shard" ] && ok cli_info_token_count || fail cli_info_token_count "info says $n_shard tokens, goldens $n_gold"

# 3. --shard 0/2 and 1/2 partition the documents (ids by doc, same tokens)
"$TOK" encode -t "$GPT2" --shard 0/2 -o "$TMP/s0.tok" "$CORPUS" 2>/dev/null
"$TOK" encode -t "$GPT2" --shard 1/2 -o "$TMP/s1.tok" "$CORPUS" 2>/dev/null
"$TOK" decode -t "$GPT2" --jsonl "$TMP/s0.tok" > "$TMP/s0.jsonl"
"$TOK" decode -t "$GPT2" --jsonl "$TMP/s1.tok" > "$TMP/s1.jsonl"
if "$PY" - "$TMP/s0.jsonl" "$TMP/s1.jsonl" "$TMP/gpt2.decoded.jsonl" <<'PYEOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
full = {d["doc_id"]: d["text"] for d in map(json.loads, open(sys.argv[3]))}
assert all(d["doc_id"] % 2 == 0 for d in a) and all(d["doc_id"] % 2 == 1 for d in b)
merged = {d["doc_id"]: d["text"] for d in a + b}
assert merged == full
PYEOF
then ok cli_shard_partition; else fail cli_shard_partition "shards do not partition the corpus"; fi

# 4. tok ids: known Llama 3 ids (llama.cpp's vocab test) and --special
out=$("$TOK" ids -t "$SHARED/tokenizers/llama3/tokenizer.json" "Hello world")
[ "$out" = "[9906, 1917]" ] && ok cli_ids_llama3 || fail cli_ids_llama3 "got $out"
out=$("$TOK" ids -t "$GPT2" --special "a<|endoftext|>b")
[ "$out" = "[64, 50256, 65]" ] && ok cli_ids_special || fail cli_ids_special "got $out"
out=$("$TOK" ids -t "$GPT2" "a<|endoftext|>b")
[ "$out" != "[64, 50256, 65]" ] && ok cli_ids_special_off_by_default || fail cli_ids_special_off_by_default "special token matched without --special"
out=$(printf 'Hello' | "$TOK" ids -t "$GEMMA" --add-special -)
[ "$out" = "[2, 9259]" ] && ok cli_ids_stdin_add_special || fail cli_ids_stdin_add_special "got $out"
out=$("$TOK" decode -t "$GPT2" --ids "[15496, 11, 995]")
[ "$out" = "Hello, world" ] && ok cli_decode_ids || fail cli_decode_ids "got '$out'"

# 5. --bos/--eos flags
printf '{"text": "hi"}\n' > "$TMP/one.jsonl"
"$TOK" encode -t "$GPT2" --bos '<|endoftext|>' --eos 50256 -o "$TMP/be.tok" "$TMP/one.jsonl" 2>/dev/null
out=$("$TOK" decode -t "$GPT2" --jsonl "$TMP/be.tok")
[ "$out" = '{"doc_id":0,"text":"<|endoftext|>hi<|endoftext|>"}' ] && ok cli_bos_eos || fail cli_bos_eos "got $out"

# 6. text inputs: one document per file, or per line
printf 'first line\nsecond line\n' > "$TMP/two.txt"
"$TOK" encode -t "$GPT2" -o "$TMP/file.tok" "$TMP/two.txt" "$TMP/two.txt" 2>/dev/null
"$TOK" encode -t "$GPT2" --lines -o "$TMP/lines.tok" "$TMP/two.txt" 2>/dev/null
d1=$("$TOK" info "$TMP/file.tok" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['n_docs'])")
d2=$("$TOK" info "$TMP/lines.tok" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['n_docs'])")
[ "$d1" = 2 ] && [ "$d2" = 2 ] && ok cli_text_inputs || fail cli_text_inputs "docs: per-file $d1, per-line $d2"
cat "$TMP/two.txt" | "$TOK" encode -t "$GPT2" --lines -o - - 2>/dev/null > "$TMP/stdout.tok"
"$TOK" decode -t "$GPT2" --jsonl "$TMP/stdout.tok" > "$TMP/stdout.jsonl"
"$TOK" decode -t "$GPT2" --jsonl "$TMP/lines.tok" > "$TMP/lines.jsonl"
[ -s "$TMP/stdout.jsonl" ] && cmp -s "$TMP/stdout.jsonl" "$TMP/lines.jsonl" && ok cli_stdin_stdout || fail cli_stdin_stdout "stdin->stdout shard differs from file->file"

# 7. convert-spm reproduces transformers' conversion of tok512
if [ -f "$SHARED/models/stories260K/tok512.model" ]; then
  "$TOK" convert-spm "$SHARED/models/stories260K/tok512.model" -o "$TMP/tok512.json"
  out=$("$TOK" ids -t "$TMP/tok512.json" --add-special "Once upon a time")
  [ "$out" = "[1, 403, 407, 261, 378]" ] && ok cli_convert_spm || fail cli_convert_spm "got $out"
fi

# 8. bad input: one clear line naming the file, non-zero exit, no crash
printf '{"text": "ok"}\n{"text": \n' > "$TMP/badjson.jsonl"
expect_error cli_bad_jsonl "badjson.jsonl:2: invalid JSON" "$TOK" encode -t "$GPT2" -o "$TMP/x.tok" "$TMP/badjson.jsonl"
[ ! -e "$TMP/x.tok" ] && ok cli_no_partial_output || fail cli_no_partial_output "a failed encode left $TMP/x.tok"
printf '{"txt": "ok"}\n' > "$TMP/nofield.jsonl"
expect_error cli_missing_field 'nofield.jsonl:1: no string field "text"' "$TOK" encode -t "$GPT2" -o "$TMP/x.tok" "$TMP/nofield.jsonl"
printf 'abc \xc3\x28 def' > "$TMP/bad-utf8.txt"
expect_error cli_invalid_utf8 "bad-utf8.txt: invalid UTF-8 at byte 4" "$TOK" encode -t "$GPT2" -o "$TMP/x.tok" "$TMP/bad-utf8.txt"
"$TOK" encode -t "$GPT2" --utf8-replace -o "$TMP/r.tok" "$TMP/bad-utf8.txt" 2>/dev/null
out=$("$TOK" decode -t "$GPT2" --jsonl "$TMP/r.tok")
[ "$out" = '{"doc_id":0,"text":"abc \ufffd( def"}' ] || [ "$out" = "{\"doc_id\":0,\"text\":\"abc �( def\"}" ] && ok cli_utf8_replace || fail cli_utf8_replace "got $out"
expect_error cli_missing_tokenizer "/nonexistent.json" "$TOK" encode -t /nonexistent.json -o "$TMP/x.tok" "$CORPUS"
printf '{"model": {"type": "WordPiece"}}' > "$TMP/wp.json"
expect_error cli_unsupported_model "wp.json: model type 'WordPiece' is not supported" "$TOK" ids -t "$TMP/wp.json" hi
expect_error cli_missing_input "nope.txt: cannot open" "$TOK" encode -t "$GPT2" -o "$TMP/x.tok" "$TMP/nope.txt"
expect_error cli_bad_shard "--shard: '2/2' is not a shard" "$TOK" encode -t "$GPT2" --shard 2/2 -o "$TMP/x.tok" "$CORPUS"
expect_error cli_unknown_command "unknown command 'frobnicate'" "$TOK" frobnicate
head -c 100 "$TMP/gpt2.tok" > "$TMP/trunc.tok"
expect_error cli_truncated_shard "trunc.tok" "$TOK" decode -t "$GPT2" "$TMP/trunc.tok"
cp "$TMP/gpt2.tok" "$TMP/flip.tok"
size=$(stat -c %s "$TMP/flip.tok")
# invert the middle byte (writing a constant changes nothing where the byte already is that value;
# the file's length, and so which byte is in the middle, depends on the paths in its metadata)
byte=$(od -An -tu1 -j $((size / 2)) -N1 "$TMP/flip.tok")
printf "\\$(printf '%03o' $((byte ^ 255)))" | dd of="$TMP/flip.tok" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
expect_error cli_corrupt_shard "flip.tok.*(checksum|crc|corrupt)" "$TOK" decode -t "$GPT2" "$TMP/flip.tok"
expect_error cli_decode_bad_id "not in the vocabulary" "$TOK" decode -t "$GPT2" --ids "1 2 99999999"
"$TOK" --help | grep -q "usage: tok" && ok cli_help || fail cli_help "--help"
"$TOK" --version | grep -q "tok (cltkit)" && ok cli_version || fail cli_version "--version"
