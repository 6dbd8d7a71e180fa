#!/usr/bin/env bash
# python/cltkit_io.py (the Python reader) against the C writers and readers: token shards read
# back with the same documents and ids as `tok dump`; activation shards in every encoding, each
# stored, zstd and zstd with byte planes, decoded bit-identically to the C reader (`quant-acts npy`
# writes the C decode as .npy); corrupt files raise one error naming the file.
source "$(dirname "$0")/lib.sh"
PY=$(numpy_python 2>&1) || { echo "$PY"; exit 0; }
IO=$ROOT/python/cltkit_io.py

# 1. token shards: ids given directly (no tokenizer), documents spanning chunks, an empty document
"$PY" -c "
import json, random
r = random.Random(5)
with open('$TMP/ids.jsonl', 'w') as f:
    for n in [0, 1, 37, 300, 5, 129] + [r.randrange(60) for _ in range(40)]:
        f.write(json.dumps({'ids': [r.randrange(1000) for _ in range(n)]}) + '\n')"
"$BIN/tok" encode --jsonl --ids-field ids --vocab-size 1000 --chunk-tokens 64 -o "$TMP/t.tok" "$TMP/ids.jsonl" 2>/dev/null
"$BIN/tok" dump "$TMP/t.tok" > "$TMP/c.jsonl"
"$PY" "$IO" tokens "$TMP/t.tok" > "$TMP/p.jsonl"
if [ -s "$TMP/c.jsonl" ] && cmp -s "$TMP/c.jsonl" "$TMP/p.jsonl"; then ok py_tokens_equal_tok_dump
else fail py_tokens_equal_tok_dump "$(diff "$TMP/c.jsonl" "$TMP/p.jsonl" | head -3)"; fi
res=$("$PY" -c "
import json, sys; sys.path.insert(0, '$ROOT/python'); import cltkit_io as ck
t = ck.TokShard('$TMP/t.tok')
src = [json.loads(l)['ids'] for l in open('$TMP/ids.jsonl')]
docs = list(t.docs())
print(t.n_docs == len(src) and [d.tolist() for _, d in docs] == src and t.tokens().tolist() == sum(src, [])
      and t.vocab_size == 1000)")
[ "$res" = True ] && ok py_tokens_match_source || fail py_tokens_match_source "$res"

# 2. activation shards: every encoding x compression, bit-identical to the C decode
stories_model  # stories260K over the first 3000 tokens of the test corpus
"$BIN/tok" encode -t "$TMP/st/tokenizer.json" -o "$TMP/c.tok" "$ROOT/tests/data/tok_corpus.jsonl" 2>/dev/null
"$BIN/fwd-acts" -m "$TMP/st" -o "$TMP/a.acts" --ctx 64 --max-tokens 3000 "$TMP/c.tok" 2>/dev/null
bad=""; k=0
for enc in f32 bf16 f16 int8 int8:31 fp8 int4 int4:5; do
  for comp in "--zstd-level -1" "--no-shuffle" "--shuffle"; do
    k=$((k + 1))
    "$BIN/quant-acts" "$TMP/a.acts" -o "$TMP/q$k.acts" --dtype "$enc" --chunk-tokens 333 $comp 2>/dev/null || bad="$bad $enc/$comp"
    for hook in in out; do
      "$BIN/quant-acts" npy "$TMP/q$k.acts" --layer 2 --hook $hook -o "$TMP/q$k.$hook.npy" 2>/dev/null || bad="$bad $enc/$hook:npy"
    done
  done
done
r=$("$PY" -c "
import sys, numpy as np; sys.path.insert(0, '$ROOT/python'); import cltkit_io as ck
good = 0
for k in range(1, $k + 1):
    s = ck.ActShard('$TMP/q%d.acts' % k)
    for hook in ('in', 'out'):
        c = np.load('$TMP/q%d.%s.npy' % (k, hook)); p = s.layer(2, hook)
        good += (c.shape == p.shape == (s.n_tokens, s.d_model) and c.tobytes() == p.tobytes() and s.n_tokens >= 3000
                 and s.token_ids().tolist() == [int(x) for ch in s.chunks() for x in ch['token_ids']])
print(good)" 2>&1)
[ -z "$bad" ] && [ "$r" = 48 ] && ok py_acts_bit_identical_every_encoding || fail py_acts_bit_identical_every_encoding "$r/48:$bad"
# the statistics section and header as the C reader prints them
"$BIN/fwd-acts" info "$TMP/a.acts" > "$TMP/info.json" 2>/dev/null
r=$("$PY" -c "
import json, sys, numpy as np; sys.path.insert(0, '$ROOT/python'); import cltkit_io as ck
s = ck.ActShard('$TMP/a.acts'); i = json.load(open('$TMP/info.json'))
x = np.concatenate([c['in'][0] for c in s.chunks()]); st = s.stats[0]['in']
print(i['n_tokens'] == s.n_tokens and s.in_hook == 'mlp_in' and s.out_hook == 'mlp_out' and
      np.allclose(x.mean(0), st['mean'], rtol=1e-5, atol=1e-6))")
[ "$r" = True ] && ok py_acts_header_stats || fail py_acts_header_stats "$r"

# 3. bad input: a flipped chunk byte, a truncated file, not a shard: one error line naming the file
cp "$TMP/t.tok" "$TMP/bad.tok"
off=$("$PY" -c "import struct; b=open('$TMP/t.tok','rb').read(); print(struct.unpack_from('<Q', b, len(b) - 56)[0] - 3)")
printf '\xff' | dd of="$TMP/bad.tok" bs=1 seek="$off" conv=notrunc 2>/dev/null  # inside the last chunk
expect_error py_tokens_corrupt_chunk "bad.tok: chunk [0-9]+: checksum mismatch" "$PY" "$IO" tokens "$TMP/bad.tok"
head -c -5000 "$TMP/q24.acts" > "$TMP/cut.acts"
expect_error py_acts_truncated "cut.acts: truncated" "$PY" "$IO" npy "$TMP/cut.acts" 0 in "$TMP/x.npy"
expect_error py_acts_not_a_shard "t.tok: bad magic" "$PY" "$IO" npy "$TMP/t.tok" 0 in "$TMP/x.npy"
expect_error py_acts_missing_layer "layer 99 not stored" "$PY" "$IO" npy "$TMP/q24.acts" 99 in "$TMP/x.npy"
expect_error npy_missing_layer "layer 99 is not stored" "$BIN/quant-acts" npy "$TMP/q24.acts" --layer 99 -o "$TMP/x.npy"
[ ! -e "$TMP/x.npy" ] && [ -z "$(ls "$TMP" | grep 'x.npy.tmp')" ] && ok npy_no_output_on_error || fail npy_no_output_on_error "$(ls "$TMP")"
