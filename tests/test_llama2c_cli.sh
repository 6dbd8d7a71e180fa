#!/usr/bin/env bash
# End-to-end test of llama2c-convert on stories260K: the output directory is a HF model directory
# that our safetensors reader and tokenizer accept (names, shapes, metadata, tokenizer ids), and
# bad inputs are one clear line with no output written.
source "$(dirname "$0")/lib.sh"
CONV=$BIN/llama2c-convert
M=$SHARED/models/stories260K
PY=$(command -v python3)
need_shared $STORIES_FILES

OUT=$TMP/hf
if "$CONV" "$M/stories260K.bin" --tokenizer "$M/tok512.model" -o "$OUT" 2>"$TMP/err"; then
  ok cli_llama2c_convert
else
  fail cli_llama2c_convert "$(cat "$TMP/err")"
fi
ls "$OUT" | sort | tr '\n' ' ' > "$TMP/ls"
[ "$(cat "$TMP/ls")" = "config.json generation_config.json model.safetensors tokenizer.json " ] \
  && ok cli_llama2c_files || fail cli_llama2c_files "got: $(cat "$TMP/ls")"

# safetensors: header parsed here in Python (names, dtypes, shapes, contiguous offsets, metadata)
if "$PY" - "$OUT/model.safetensors" <<'PYEOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
assert h.pop("__metadata__") == {"format": "pt"}
D, H, KV, V, L = 64, 172, 32, 512, 5
want = {"model.embed_tokens.weight": [V, D], "model.norm.weight": [D]}
for i in range(L):
    p = f"model.layers.{i}."
    want.update({p + "input_layernorm.weight": [D], p + "post_attention_layernorm.weight": [D],
                 p + "self_attn.q_proj.weight": [D, D], p + "self_attn.k_proj.weight": [KV, D],
                 p + "self_attn.v_proj.weight": [KV, D], p + "self_attn.o_proj.weight": [D, D],
                 p + "mlp.gate_proj.weight": [H, D], p + "mlp.down_proj.weight": [D, H], p + "mlp.up_proj.weight": [H, D]})
assert {k: v["shape"] for k, v in h.items()} == want, set(h) ^ set(want)
assert all(v["dtype"] == "F32" for v in h.values())
spans = sorted(tuple(v["data_offsets"]) for v in h.values())
assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[-1][1] == len(b) - 8 - n
cfg = json.load(open(sys.argv[1].replace("model.safetensors", "config.json")))
assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["tie_word_embeddings"] is True
assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_key_value_heads"], cfg["max_position_embeddings"]) == (64, 5, 4, 512)
PYEOF
then ok cli_llama2c_safetensors_layout; else fail cli_llama2c_safetensors_layout "unexpected tensors/config"; fi

# tokenizer.json (our C safetensors reader reads model.safetensors back in test_llama2c.c)
out=$("$BIN/tok" ids -t "$OUT/tokenizer.json" --add-special "Once upon a time")
[ "$out" = "[1, 403, 407, 261, 378]" ] && ok cli_llama2c_tokenizer || fail cli_llama2c_tokenizer "got $out"

# rerunning over an existing directory replaces the files, byte for byte the same
cp "$OUT/model.safetensors" "$TMP/first.safetensors"
"$CONV" "$M/stories260K.bin" -t "$M/tok512.model" -o "$OUT" 2>/dev/null
cmp -s "$OUT/model.safetensors" "$TMP/first.safetensors" && [ -z "$(ls "$OUT" | grep tmp)" ] \
  && ok cli_llama2c_rerun || fail cli_llama2c_rerun "second run differs or left temp files"

# bad inputs: one line naming the file, non-zero exit, no output directory
head -c 1000 "$M/stories260K.bin" > "$TMP/trunc.bin"
expect_error cli_llama2c_truncated "trunc.bin: truncated" "$CONV" "$TMP/trunc.bin" -o "$TMP/o1"
[ ! -e "$TMP/o1" ] && ok cli_llama2c_no_output_on_error || fail cli_llama2c_no_output_on_error "$TMP/o1 was created"
cp "$M/stories260K.bin" "$TMP/extra.bin"; printf 'xxxx' >> "$TMP/extra.bin"
expect_error cli_llama2c_trailing "extra.bin: size mismatch.*4 extra bytes" "$CONV" "$TMP/extra.bin" -o "$TMP/o2"
expect_error cli_llama2c_not_a_checkpoint "tok512.model: header field dim = [0-9]+ is not in" "$CONV" "$M/tok512.model" -o "$TMP/o3"
# a valid (synthetic, zero-weight) checkpoint whose vocab (10) does not fit tok512 (512 pieces)
"$PY" -c "import struct,sys; L,D,H,V,S=1,8,12,10,4; n=V*D+L*D+2*L*D*D+2*L*4*D+L*D+3*L*H*D+D+S*4
sys.stdout.buffer.write(struct.pack('<7i',D,H,L,2,1,V,S)+bytes(4*n))" > "$TMP/small.bin"
expect_error cli_llama2c_vocab_mismatch "tok512.model: tokenizer has 512 pieces but the checkpoint's vocab_size is 10" "$CONV" "$TMP/small.bin" -t "$M/tok512.model" -o "$TMP/o6"
[ ! -e "$TMP/o6" ] && ok cli_llama2c_vocab_mismatch_no_output || fail cli_llama2c_vocab_mismatch_no_output "$TMP/o6 was created"
expect_error cli_llama2c_tokenizer_not_spm "tok512.bin" "$CONV" "$M/stories260K.bin" -t "$M/tok512.bin" -o "$TMP/o4"
[ ! -e "$TMP/o4" ] && ok cli_llama2c_bad_tokenizer_no_output || fail cli_llama2c_bad_tokenizer_no_output "$TMP/o4 was created"
expect_error cli_llama2c_missing "nope.bin: cannot open" "$CONV" "$TMP/nope.bin" -o "$TMP/o5"
expect_error cli_llama2c_no_outdir "missing -o" "$CONV" "$M/stories260K.bin"
"$CONV" --help | grep -q "usage: llama2c-convert" && ok cli_llama2c_help || fail cli_llama2c_help "--help"
"$CONV" --version | grep -q "llama2c-convert (cltkit)" && ok cli_llama2c_version || fail cli_llama2c_version "--version"

# converting into an existing model directory switches the files in as one set: a kill between the
# moves (simulated: the committed set half moved) makes loaders refuse the mixture, and the next
# conversion finishes the switch, removes a killed run's orphans and leaves no staging behind
cp -r "$OUT" "$TMP/re" && mkdir "$TMP/re/.cltkit-commit" && cp "$OUT/model.safetensors" "$OUT/config.json" "$TMP/re/.cltkit-commit/"
mv "$TMP/re/.cltkit-commit/config.json" "$TMP/re/"
expect_error cli_llama2c_half_switch_refused "interrupted conversion left a mixture" \
  "$BIN/fwd-acts" -m "$TMP/re" -o "$TMP/re.acts" --ctx 8 "$TMP/ls"
mkdir "$TMP/re/.cltkit-staging.4194303" && touch "$TMP/re/.cltkit-staging.4194303/tokenizer.json" "$TMP/re/config.json.tmp.4194302"
if "$CONV" "$M/stories260K.bin" --tokenizer "$M/tok512.model" -o "$TMP/re" 2>/dev/null \
  && [ "$(ls -A "$TMP/re" | sort | tr '\n' ' ')" = "config.json generation_config.json model.safetensors tokenizer.json " ] \
  && cmp -s "$OUT/model.safetensors" "$TMP/re/model.safetensors" && cmp -s "$OUT/tokenizer.json" "$TMP/re/tokenizer.json"
then ok cli_llama2c_switch_as_one_set; else fail cli_llama2c_switch_as_one_set "$(ls -A "$TMP/re")"; fi
