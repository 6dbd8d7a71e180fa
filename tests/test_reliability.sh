#!/usr/bin/env bash
# Reliability (issue 11, issue 10 "Nothing left behind"): input that used to crash, hang, allocate
# gigabytes or fail silently now gives one error line naming the file and what is wrong; outputs
# never replace inputs; a full disk is an error; failed or interrupted runs leave no temp files.
source "$(dirname "$0")/lib.sh"
need_shared $STORIES_FILES
stories_acts  # $TMP/st (model), $TMP/c.tok, $TMP/a.acts
ST=$TMP/st
PY=python3

# cfg DIR KEY=JSON...: a model directory sharing $ST's weights with config.json keys replaced
# (KEY=- deletes the key)
cfg() {
  local d=$1; shift
  rm -rf "$d"; mkdir -p "$d"; ln -s "$ST/model.safetensors" "$d/model.safetensors"
  "$PY" - "$ST/config.json" "$d/config.json" "$@" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
for kv in sys.argv[3:]:
    k, v = kv.split("=", 1)
    if v == "-": c.pop(k, None)
    else: c[k] = json.loads(v)
json.dump(c, open(sys.argv[2], "w"))
EOF
}
# no_temps NAME DIR: no *.tmp.* file left in DIR
no_temps() {
  local left; left=$(find "$2" -name '*.tmp.*' | head -3)
  [ -z "$left" ] && ok "$1" || fail "$1" "left $left"
}

# ---- memory errors, overflows, absurd sizes -------------------------------------------------
cfg "$TMP/ix"; cp "$ST/config.json" "$TMP/ix/config.json"
printf '{"weight_map": {"model.embed_tokens.weight": 5}}' > "$TMP/ix/model.safetensors.index.json"
expect_error rel_index_value_not_string 'weight_map\["model.embed_tokens.weight"\] is not a file name' \
  "$BIN/fwd-acts" -m "$TMP/ix" --eval "$TMP/c.tok"
printf '{"weight_map": {"model.embed_tokens.weight": "../x"}}' > "$TMP/ix/model.safetensors.index.json"
expect_error rel_index_value_slash 'weight_map\["model.embed_tokens.weight"\] is not a file name' \
  "$BIN/fwd-acts" -m "$TMP/ix" --eval "$TMP/c.tok"
printf '{' > "$TMP/ix/model.safetensors.index.json"
expect_error rel_index_malformed 'model.safetensors.index.json: ' "$BIN/fwd-acts" -m "$TMP/ix" --eval "$TMP/c.tok"

expect_error rel_layers_empty "--layers: '' selects no layer" "$BIN/fwd-acts" -m "$ST" -o "$TMP/o.acts" --layers "" "$TMP/c.tok"
expect_error rel_layers_trailing_comma "--layers: '1,' ends with a comma" "$BIN/fwd-acts" -m "$ST" -o "$TMP/o.acts" --layers "1," "$TMP/c.tok"
expect_error rel_layers_junk "--layers: '1x' is not a layer list" "$BIN/fwd-acts" -m "$ST" -o "$TMP/o.acts" --layers "1x" "$TMP/c.tok"

cfg "$TMP/heads" num_attention_heads=65536 num_key_value_heads=65536 head_dim=65536
expect_error rel_heads_overflow "config.json: attention heads × head_dim \(65536 × 65536\) is absurd" \
  "$BIN/fwd-acts" -m "$TMP/heads" --eval "$TMP/c.tok"
mkdir -p "$TMP/gpt2"
printf '{"model_type": "gpt2", "n_embd": 1073741824, "n_layer": 1, "n_head": 1, "vocab_size": 10}' > "$TMP/gpt2/config.json"
expect_error rel_gpt2_n_embd_overflow 'config.json: "n_embd" must be an integer in \[0, 16777216\]' \
  "$BIN/fwd-acts" -m "$TMP/gpt2" --eval "$TMP/c.tok"
cfg "$TMP/layers" num_hidden_layers=1073741824
expect_error rel_layers_huge '"num_hidden_layers" must be an integer in' "$BIN/fwd-acts" -m "$TMP/layers" --eval "$TMP/c.tok"
cfg "$TMP/layers" num_hidden_layers=1000000
expect_error rel_layers_absurd "the layer count 1000000 is absurd: the weights hold 47 tensors" \
  "$BIN/fwd-acts" -m "$TMP/layers" --eval "$TMP/c.tok"

"$PY" - "$ST/tokenizer.json" "$TMP/bigid.json" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1])); t["model"]["vocab"]["zzzz"] = 2147483647
json.dump(t, open(sys.argv[2], "w"))
EOF
expect_error rel_tokenizer_huge_id "bigid.json: token id 2147483647 is absurd for a [0-9]+-byte file" \
  "$BIN/tok" ids -t "$TMP/bigid.json" "hello"
mkdir -p "$TMP/adir"
expect_error rel_tokenizer_is_directory "adir: no tokenizer.json in this directory" "$BIN/tok" ids -t "$TMP/adir" "hello"
expect_error rel_llama2c_tokenizer_directory "adir: not a regular file" \
  "$BIN/llama2c-convert" "$SHARED/models/stories260K/stories260K.bin" --tokenizer "$TMP/adir" -o "$TMP/l2"

# data_next_batch looked forever for a pool holding --batch tokens (2048-token chunks here)
expect_error rel_fit_batch_exceeds_pool "--batch 5000 is more than the 2048 tokens a pool of --pool-chunks 1" \
  timeout 60 "$BIN/clt-fit" -o "$TMP/fit" --batch 5000 --pool-chunks 1 --steps 2 "$TMP/a.acts"
"$BIN/fwd-acts" -m "$ST" -o "$TMP/t40.acts" --ctx 16 --max-tokens 40 "$TMP/c.tok" 2>/dev/null
expect_error rel_fit_batch_exceeds_shard "--batch 64 is more than the 40 tokens" \
  timeout 60 "$BIN/clt-fit" -o "$TMP/fit" --batch 64 --steps 2 "$TMP/t40.acts"

# ---- SentencePiece: messages, conversions that must load --------------------------------------
"$PY" - "$TMP" <<'EOF'
import struct, sys
def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if not n: return out + bytes([b])
        out += bytes([b | 0x80])
def fld(num, wire, payload): return varint(num << 3 | wire) + payload
def ld(num, data): return fld(num, 2, varint(len(data)) + data)
def piece(s, score=0.0, typ=1, text=True):
    return ld(1, (ld(1, s) if text else b"") + fld(2, 5, struct.pack("<f", score)) + fld(3, 0, varint(typ)))
base = [(b"<unk>", 0, 2), (b"<s>", 0, 3), (b"</s>", 0, 3), (b"a", -1, 1), (b"b", -2, 1), (b"ab", -3, 1)]
pieces = b"".join(piece(*p) for p in base)
d = sys.argv[1]
open(d + "/ok.model", "wb").write(pieces + ld(2, fld(3, 0, varint(2))))
open(d + "/badunk.model", "wb").write(pieces + ld(2, fld(3, 0, varint(2)) + ld(45, b"<zzz>")))
open(d + "/notext.model", "wb").write(b"".join(piece(*p) for p in base[:4]) + piece(b"", text=False))
EOF
expect_error rel_spm_piece_index "notext.model: piece 4 has no text" "$BIN/tok" convert-spm "$TMP/notext.model" -o "$TMP/nt.json"
expect_error rel_spm_output_must_load "badunk.model: the converted tokenizer.json does not load: .*unk_token '<zzz>'" \
  "$BIN/tok" convert-spm "$TMP/badunk.model" -o "$TMP/bu.json"
[ ! -e "$TMP/bu.json" ] && ok rel_spm_no_output_when_bad || fail rel_spm_no_output_when_bad "wrote bu.json"
"$BIN/tok" convert-spm "$TMP/ok.model" -o "$TMP/ok.json" && "$BIN/tok" ids -t "$TMP/ok.json" "ab" >/dev/null \
  && ok rel_spm_good_converts || fail rel_spm_good_converts "a valid model did not convert and load"

# ---- bad values -------------------------------------------------------------------------------
cfg "$TMP/bos" bos_token_id=1099511627776
expect_error rel_bos_huge '"bos_token_id" is not a token id' "$BIN/fwd-acts" -m "$TMP/bos" --eval "$TMP/c.tok"
cfg "$TMP/bos" eos_token_id=512
expect_error rel_eos_outside_vocab "eos_token_id 512 outside the vocabulary" "$BIN/fwd-acts" -m "$TMP/bos" --eval "$TMP/c.tok"
cfg "$TMP/eps" rms_norm_eps=-1
expect_error rel_negative_eps "norm epsilon -1 must be >= 0" "$BIN/fwd-acts" -m "$TMP/eps" --eval "$TMP/c.tok"
cfg "$TMP/theta" rope_theta=0
expect_error rel_rope_theta_zero '"rope_theta" 0 must be > 0' "$BIN/fwd-acts" -m "$TMP/theta" --eval "$TMP/c.tok"
cfg "$TMP/factor" 'rope_scaling={"rope_type": "llama3", "factor": 0}'
expect_error rel_rope_factor_zero "rope_scaling needs factor > 0" "$BIN/fwd-acts" -m "$TMP/factor" --eval "$TMP/c.tok"
cfg "$TMP/big" rope_theta=1e300
expect_error rel_rope_theta_inf '"rope_theta" must be a finite number' "$BIN/fwd-acts" -m "$TMP/big" --eval "$TMP/c.tok"

# weights: a NaN, an integer dtype
hdr_end() { "$PY" -c "import struct,sys; print(8 + struct.unpack('<Q', open(sys.argv[1],'rb').read(8))[0])" "$1"; }
mkdir -p "$TMP/nanw"; cp "$ST/config.json" "$TMP/nanw/"; cp "$ST/model.safetensors" "$TMP/nanw/"
printf '\x00\x00\xc0\x7f' | dd of="$TMP/nanw/model.safetensors" bs=1 seek=$(( $(hdr_end "$ST/model.safetensors") + 40 )) \
  conv=notrunc 2>/dev/null
expect_error rel_nan_weight "model.safetensors: tensor \".*\" element [0-9]+ is nan: weights must be finite" \
  "$BIN/fwd-acts" -m "$TMP/nanw" --eval "$TMP/c.tok"
mkdir -p "$TMP/i32"; cp "$ST/config.json" "$TMP/i32/"
"$PY" - "$ST/model.safetensors" "$TMP/i32/model.safetensors" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b'"F32"'); b[i + 1:i + 2] = b"I"  # same length: the header stays valid
open(sys.argv[2], "wb").write(b)
EOF
expect_error rel_int_weight "has dtype I32: weights must be floating point" "$BIN/fwd-acts" -m "$TMP/i32" --eval "$TMP/c.tok"

# numbers parsed strictly
expect_error rel_prompt_ids_junk "--prompt-ids: 'abc' is not an integer" "$BIN/fwd-acts" -m "$ST" --generate 2 --prompt-ids "1 abc 2"
expect_error rel_prompt_ids_overflow "--prompt-ids: 4294967297 is out of range \[0, 511\]" \
  "$BIN/fwd-acts" -m "$ST" --generate 2 --prompt-ids "1 4294967297"
expect_error rel_temperature_nan "--temperature: 'nan' is not a finite number" "$BIN/generate" -m "$ST" --temperature nan hi
expect_error rel_shard_overflow "--shard: '0/99999999999' is not a shard" "$BIN/fwd-acts" -m "$ST" -o "$TMP/o.acts" --shard 0/99999999999 "$TMP/c.tok"
expect_error rel_shard_junk "--shard: '1/2x' is not a shard" "$BIN/tok" encode -t "$ST/tokenizer.json" -o "$TMP/o.tok" --shard 1/2x "$TMP/c.tok"
expect_error rel_lambda_negative "--lambda: -1 is out of range" "$BIN/clt-fit" -o "$TMP/fit" --lambda -1 "$TMP/a.acts"
expect_error rel_bandwidth_inf "--bandwidth: 'inf' is not a finite number" "$BIN/clt-fit" -o "$TMP/fit" --bandwidth inf "$TMP/a.acts"
expect_error rel_lr_hex "--lr: '0x1p-3' is not a finite number" "$BIN/clt-fit" -o "$TMP/fit" --lr 0x1p-3 "$TMP/a.acts"
expect_error rel_decode_ids_junk "--ids: '2x' is not an integer" "$BIN/tok" decode -t "$ST/tokenizer.json" --ids "1 2x"
expect_error rel_env_threads "CLTKIT_THREADS='two' is not an integer" env CLTKIT_THREADS=two "$BIN/clt-fit" -o "$TMP/fit" --steps 1 "$TMP/a.acts"
expect_error rel_stdin_shard "-: a shard cannot be read from stdin" "$BIN/tok" info -

# ---- an output never replaces an input (same inode) ---------------------------------------------
same() {  # NAME FILE CMD...: refused, FILE unchanged
  local name=$1 file=$2; shift 2
  local before; before=$(cksum < "$file")
  expect_error "$name" "the output is the input" "$@"
  [ "$(cksum < "$file")" = "$before" ] && ok "${name}_input_intact" || fail "${name}_input_intact" "$file changed"
}
cp "$ROOT/tests/data/tok_corpus.jsonl" "$TMP/corpus.jsonl"
same rel_same_tok_encode "$TMP/corpus.jsonl" "$BIN/tok" encode -t "$ST/tokenizer.json" -o "$TMP/corpus.jsonl" "$TMP/corpus.jsonl"
ln -f "$TMP/corpus.jsonl" "$TMP/hardlink.jsonl"
same rel_same_tok_encode_hardlink "$TMP/corpus.jsonl" "$BIN/tok" encode -t "$ST/tokenizer.json" -o "$TMP/hardlink.jsonl" "$TMP/corpus.jsonl"
cp "$TMP/c.tok" "$TMP/in.tok"
same rel_same_fwd_acts "$TMP/in.tok" "$BIN/fwd-acts" -m "$ST" -o "$TMP/in.tok" "$TMP/in.tok"
same rel_same_quant_acts "$TMP/t40.acts" "$BIN/quant-acts" --dtype int8 -o "$TMP/t40.acts" "$TMP/t40.acts"
same rel_same_clt_fit_metrics "$TMP/t40.acts" "$BIN/clt-fit" -o "$TMP/fit" --batch 8 --metrics "$TMP/t40.acts" "$TMP/t40.acts"
printf '{"step": 1, "loss": 1}\n' > "$TMP/m.jsonl"
same rel_same_report "$TMP/m.jsonl" "$BIN/clt-fit" report "$TMP/m.jsonl" -o "$TMP/m.jsonl"
same rel_same_convert_spm "$TMP/ok.model" "$BIN/tok" convert-spm "$TMP/ok.model" -o "$TMP/ok.model"
mkdir -p "$TMP/l2"; cp "$SHARED/models/stories260K/tok512.model" "$TMP/l2/tokenizer.json"
same rel_same_llama2c_convert "$TMP/l2/tokenizer.json" "$BIN/llama2c-convert" "$SHARED/models/stories260K/stories260K.bin" \
  --tokenizer "$TMP/l2/tokenizer.json" -o "$TMP/l2"

# ---- a full disk is an error, never exit 0 ------------------------------------------------------
# full NAME CMD...: stdout on /dev/full: non-zero exit, one line saying so
full() {
  local name=$1; shift
  local err rc
  err=$("$@" 2>&1 >/dev/full); rc=$?
  if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then fail "$name" "exit $rc on a full disk"; return; fi
  printf '%s' "$err" | grep -qE "write error|cannot write" || { fail "$name" "no write error: $err"; return; }
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && ok "$name" || fail "$name" "more than one line: $err"
}
if [ -w /dev/full ]; then
  "$BIN/clt-fit" -o "$TMP/clt" --features 16 --steps 2 --batch 64 "$TMP/a.acts" 2>/dev/null
  full rel_full_tok_decode "$BIN/tok" decode -t "$ST/tokenizer.json" "$TMP/c.tok"
  full rel_full_tok_decode_ids "$BIN/tok" decode -t "$ST/tokenizer.json" --ids "1 2 3"
  full rel_full_tok_info "$BIN/tok" info "$TMP/c.tok"
  full rel_full_tok_ids "$BIN/tok" ids -t "$ST/tokenizer.json" "hello"
  full rel_full_convert_spm "$BIN/tok" convert-spm "$TMP/ok.model"
  full rel_full_fwd_eval "$BIN/fwd-acts" -m "$ST" --eval --ctx 16 --max-tokens 64 "$TMP/c.tok"
  full rel_full_fwd_generate "$BIN/fwd-acts" -m "$ST" --generate 3
  full rel_full_fwd_info "$BIN/fwd-acts" --info "$TMP/t40.acts"
  full rel_full_generate "$BIN/generate" -m "$ST" --max-new-tokens 3 Once
  full rel_full_quant_report "$BIN/quant-acts" --report --max-tokens 64 "$TMP/t40.acts"
  full rel_full_clt_eval "$BIN/clt-fit" eval "$TMP/clt" "$TMP/t40.acts"
  full rel_full_gguf_info "$BIN/gguf-convert" --info "$ROOT/tests/golden/gguf/quant_types.gguf"
  full rel_full_help "$BIN/fwd-acts" --help
  expect_error rel_full_metrics "/dev/full: write error" "$BIN/clt-fit" -o "$TMP/fitm" --features 16 --steps 2 --batch 64 \
    --log-every 1 --metrics /dev/full "$TMP/a.acts"
else
  echo "SKIP rel_full: /dev/full is not writable here"
fi

# ---- checkpoints with non-finite values, a missing encoder ---------------------------------------
if [ -d "$TMP/clt" ]; then
  cp -r "$TMP/clt" "$TMP/cltnan"; rm -f "$TMP/cltnan/checkpoint.json"  # a hand-edited CLT (no manifest)
  printf '\x00\x00\xc0\x7f' | dd of="$TMP/cltnan/W_dec_2.safetensors" bs=1 \
    seek=$(( $(hdr_end "$TMP/cltnan/W_dec_2.safetensors") + 8 )) conv=notrunc 2>/dev/null
  expect_error rel_clt_nan_decoder "W_dec_2 element 2 is nan" "$BIN/clt-fit" eval "$TMP/cltnan" "$TMP/t40.acts"
  cp -r "$TMP/clt" "$TMP/cltgap"; rm "$TMP/cltgap/W_enc_1.safetensors" "$TMP/cltgap/checkpoint.json"
  expect_error rel_clt_missing_encoder "W_enc_1.safetensors: missing" "$BIN/clt-fit" eval "$TMP/cltgap" "$TMP/t40.acts"
fi

# ---- nothing left behind: temp outputs removed on errors and on signals --------------------------
mkdir -p "$TMP/out"
expect_error rel_tmp_encode_missing_input "nosuch.jsonl" "$BIN/tok" encode -t "$ST/tokenizer.json" -o "$TMP/out/a.tok" "$TMP/nosuch.jsonl"
no_temps rel_tmp_encode_error_cleaned "$TMP/out"
cfg "$TMP/nanw2"; rm "$TMP/nanw2/model.safetensors"; cp "$TMP/nanw/model.safetensors" "$TMP/nanw2/"
expect_error rel_tmp_fwd_error "must be finite" "$BIN/fwd-acts" -m "$TMP/nanw2" -o "$TMP/out/b.acts" "$TMP/c.tok"
no_temps rel_tmp_fwd_error_cleaned "$TMP/out"
# a signal mid-write: the job runs with job control on (set -m) so SIGINT is not ignored as in a
# plain background job; it must die of the signal and remove its temp file
for sig in INT TERM HUP; do
  rm -f "$TMP/out/"*
  set -m
  "$BIN/fwd-acts" -m "$ST" -o "$TMP/out/s.acts" --ctx 64 --batch 1 "$TMP/c.tok" 2>/dev/null &
  pid=$!
  set +m
  for _ in $(seq 1 200); do [ -n "$(find "$TMP/out" -name 's.acts.tmp.*')" ] && break; sleep 0.05; done
  seen=$(find "$TMP/out" -name 's.acts.tmp.*' | wc -l)
  kill -s $sig $pid 2>/dev/null
  { wait $pid; } 2>/dev/null; rc=$?
  if [ "$seen" -eq 0 ]; then fail rel_tmp_sig$sig "no temp file appeared while writing"
  elif [ $rc -lt 128 ]; then fail rel_tmp_sig$sig "exit $rc: did not die of SIG$sig"
  else no_temps rel_tmp_sig$sig "$TMP/out"; fi
done
