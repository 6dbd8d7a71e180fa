#!/usr/bin/env bash
# gguf-convert on the command line: --help/--version, one-line errors on bad input (nothing
# written), info (and its old spelling --info); then, when the SmolLM2 GGUF can be had (scripts/fetch_smollm2.sh or
# $CLTKIT_SMOLLM2_GGUF), the converted directory used as an ordinary model by the other tools:
# `tok ids` gives HF's ids (both tokenizer modes), `fwd-acts generate` HF's greedy tokens.
# (tests/test_smollm2.c checks logits and the whole corpus through the library.)
source "$(dirname "$0")/lib.sh"
GC=$BIN/gguf-convert
PY=$(command -v python3)
QT=$ROOT/tests/golden/gguf/quant_types.gguf
GOLD=$ROOT/tests/golden/smollm2

"$GC" --help | grep -q "usage: gguf-convert" && ok gguf_cli_help || fail gguf_cli_help "no usage"
"$GC" --version | grep -q "^gguf-convert" && ok gguf_cli_version || fail gguf_cli_version "$("$GC" --version)"
expect_error gguf_cli_no_output "missing -o OUTDIR" "$GC" "$QT"
expect_error gguf_cli_two_inputs "exactly one GGUF" "$GC" "$QT" "$QT" -o "$TMP/x"
expect_error gguf_cli_missing_file "nope.gguf: cannot open" "$GC" "$TMP/nope.gguf" -o "$TMP/out"
printf 'GGML this is not gguf at all........' > "$TMP/bad.gguf"
expect_error gguf_cli_bad_magic "bad.gguf: not a GGUF file \(bad magic" "$GC" "$TMP/bad.gguf" -o "$TMP/out"
head -c 300 "$QT" > "$TMP/trunc.gguf"
expect_error gguf_cli_truncated "trunc.gguf: truncated" "$GC" "$TMP/trunc.gguf" -o "$TMP/out"
expect_error gguf_cli_not_llama "quant_types.gguf: architecture 'test' is not supported" "$GC" "$QT" -o "$TMP/out"
[ ! -e "$TMP/out" ] && ok gguf_cli_nothing_written || fail gguf_cli_nothing_written "$TMP/out exists after errors"

if "$GC" info "$QT" > "$TMP/info.json" && "$PY" - "$TMP/info.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == 3 and d["alignment"] == 64 and d["n_tensors"] == 8, d
assert d["tensor_types"] == {t: 1 for t in ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4_K", "q6_K"]}, d["tensor_types"]
m = d["metadata"]
assert m["test.i64"] == -9000000000000000000 and m["test.string"] == "héllo\nwörld", m
assert m["test.arr_nested"] == {"array_of": "array", "n": 2, "first": [
    {"array_of": "i32", "n": 2, "first": [1, 2]}, {"array_of": "i32", "n": 1, "first": [3]}]}, m["test.arr_nested"]
PYEOF
then ok gguf_cli_info; else fail gguf_cli_info "unexpected info output"; fi
"$GC" --info "$QT" > "$TMP/info_old.json" 2>/dev/null
cmp -s "$TMP/info.json" "$TMP/info_old.json" && ok gguf_cli_info_alias || fail gguf_cli_info_alias "--info differs from info"
expect_error gguf_cli_info_no_output "info writes nothing; drop -o" "$GC" info "$QT" -o "$TMP/x"

# ---- SmolLM2 ------------------------------------------------------------------------------------
if [ -n "${CLTKIT_SMOLLM2_GGUF:-}" ]; then GGUF=$CLTKIT_SMOLLM2_GGUF
elif ! GGUF=$(bash "$ROOT/scripts/fetch_smollm2.sh" 2>"$TMP/fetch.err"); then
  echo "SKIP gguf_cli smollm2 (GGUF unavailable): $(tail -1 "$TMP/fetch.err")"; exit 0
fi
if "$GC" "$GGUF" -o "$TMP/smol" 2>"$TMP/conv.err" && [ -f "$TMP/smol/config.json" ]; then
  ok gguf_cli_convert_smollm2
else
  fail gguf_cli_convert_smollm2 "$(cat "$TMP/conv.err")"; exit 0
fi
"$GC" "$GGUF" --hf-tokenizer -o "$TMP/smol_hf" 2>/dev/null
for f in model.safetensors config.json generation_config.json tokenizer.json tokenizer_config.json; do
  [ -f "$TMP/smol/$f" ] || fail gguf_cli_files "missing $f"
done
ls "$TMP/smol" | grep -q tmp && fail gguf_cli_files "temp files left" || ok gguf_cli_files

# golden ids of corpus document I (key K, falling back to "ids"), as tok ids prints them
gold_ids() { "$PY" -c "
import json, sys
r = [json.loads(l) for l in open('$GOLD/tok.jsonl')][$1]
print(json.dumps(r.get('$2', r['ids'])))"; }
doc_text() { "$PY" -c "
import json, sys
sys.stdout.write([json.loads(l) for l in open('$ROOT/tests/data/tok_corpus.jsonl')][$1]['text'])"; }
n_diff=0
for i in 41 42 43; do  # texts with digits: the two pre-tokenizers differ here
  doc_text $i > "$TMP/doc.txt"
  got=$("$BIN/tok" ids -t "$TMP/smol/tokenizer.json" - < "$TMP/doc.txt")
  [ "$got" = "$(gold_ids $i ids)" ] || { fail "gguf_cli_tok_ids_$i" "differs from HF"; n_diff=1; }
  got=$("$BIN/tok" ids -t "$TMP/smol_hf/tokenizer.json" - < "$TMP/doc.txt")
  [ "$got" = "$(gold_ids $i ids_hf)" ] || { fail "gguf_cli_tok_ids_hf_$i" "differs from HF"; n_diff=1; }
done
[ $n_diff -eq 0 ] && ok gguf_cli_tok_ids_match_hf

# greedy continuation of golden prompt 2 through fwd-acts (the converted dir as an ordinary model)
read -r prompt greedy < <("$PY" - "$GOLD/logits.safetensors" <<'PYEOF'
import json, struct, sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); base = 8 + n
def ints(name):
    t = h[name]; a, b = t["data_offsets"]; f.seek(base + a)
    return [str(x) for x in struct.unpack(f"<{(b - a) // 4}i", f.read(b - a))]
print(",".join(ints("ids.2")), ",".join(ints("greedy.2")))
PYEOF
)
got=$("$BIN/fwd-acts" generate -m "$TMP/smol" --max-new-tokens 8 --prompt-ids "${prompt//,/ }" 2>/dev/null | paste -sd,)
[ "$got" = "$greedy" ] && ok gguf_cli_fwd_acts_greedy_matches_hf || fail gguf_cli_fwd_acts_greedy_matches_hf "got $got, want $greedy"
