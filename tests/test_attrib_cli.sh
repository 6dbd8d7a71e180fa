#!/usr/bin/env bash
# attrib's command line on the tiny random Llama of tests/golden/models with random CLTs written
# here (python3, standard library only): a run writes graph JSON and the raw file, intervene prints
# logits, and bad input (empty prompt, too long, unknown ids, a CLT of another width or depth, a
# CLT directory missing a file or naming an unsupported hook, bad options) gets one error line and
# a non-zero exit.
source "$(dirname "$0")/lib.sh"
A=$BIN/attrib
M=$ROOT/tests/golden/models/llama3

# mkclt DIR L D F HOOK: a random CLT in circuit-tracer's layout
mkclt() {
  python3 - "$@" <<'PYEOF'
import json, os, random, struct, sys
d, L, D, F, hook = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
os.makedirs(d, exist_ok=True)
rng = random.Random(7)
def write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, shape, vals in tensors:
        b = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode(); h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
for l in range(L):
    u = lambda n, s: [rng.uniform(-s, s) for _ in range(n)]
    write(f"{d}/W_enc_{l}.safetensors", [(f"W_enc_{l}", [F, D], u(F * D, 0.5)), (f"b_enc_{l}", [F], [0.0] * F),
          (f"b_dec_{l}", [D], [0.0] * D), (f"threshold_{l}", [F], [0.05] * F)])
    write(f"{d}/W_dec_{l}.safetensors", [(f"W_dec_{l}", [F, L - l, D], u(F * (L - l) * D, 0.1))])
open(f"{d}/config.yaml", "w").write(f"model_kind: cross_layer_transcoder\nfeature_input_hook: {hook}\n"
                                    "feature_output_hook: hook_mlp_out\n")
PYEOF
}
C=$TMP/clt; mkclt "$C" 3 64 16 mlp.hook_in
IDS="1 5 9 13 17 21 25 29"

# shape NAME.st: "<feature nodes> <rows>" from a raw file's header
shape() {
  python3 - "$1" <<'PYEOF'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
h = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
print(h["feat_active"]["shape"][0], h["row_ptr"]["shape"][0] - 1)
PYEOF
}
if "$A" -m "$M" --clt "$C" --ids "$IDS" --batch 4 -o "$TMP/g.json" --raw "$TMP/g.st" 2>"$TMP/err" &&
   python3 -c "import json,sys; g=json.load(open(sys.argv[1])); assert g['nodes'] and g['links']" "$TMP/g.json"
then ok attrib_cli_run; else fail attrib_cli_run "$(tail -1 "$TMP/err")"; fi
# greedy with a cap: 5 feature rows (plus the logits' rows) instead of all of them
if "$A" -m "$M" --clt "$C" --ids "$IDS" --max-feature-nodes 5 --batch 2 --raw "$TMP/g5.st" >"$TMP/g5.json" \
     2>"$TMP/err"; then
  read -r nf nr < <(shape "$TMP/g.st"); read -r nf5 nr5 < <(shape "$TMP/g5.st")
  if [ "$nf" -gt 5 ] && [ "$nf5" -eq 5 ] && [ $((nr - nf)) -eq $((nr5 - nf5)) ]; then ok attrib_cli_greedy
  else fail attrib_cli_greedy "feature nodes $nf5 of $nf, rows $nr5 vs $nr"; fi
else fail attrib_cli_greedy "$(tail -1 "$TMP/err")"; fi
if "$A" intervene -m "$M" --clt "$C" --ids "$IDS" --set 0:3:4=5 --scale 1:2:6=0 --top 3 >"$TMP/i.json" 2>"$TMP/err" &&
   "$A" intervene -m "$M" --clt "$C" --ids "$IDS" --set 0:3:4=5 --recompute >"$TMP/r.json" 2>>"$TMP/err" &&
   python3 -c "
import json,sys
for p in sys.argv[1:]:
    g=json.load(open(p)); assert len(g['before'])>=3 and len(g['after'])>=3, p
" "$TMP/i.json" "$TMP/r.json"; then ok attrib_cli_intervene; else fail attrib_cli_intervene "$(tail -1 "$TMP/err")"; fi

# a no-op (scale by 1) leaves the logits where they were, frozen or recomputed (up to rounding)
if "$A" intervene -m "$M" --clt "$C" --ids "$IDS" --scale 1:2:6=1 >"$TMP/n.json" 2>"$TMP/err" &&
   "$A" intervene -m "$M" --clt "$C" --ids "$IDS" --scale 1:2:6=1 --recompute >"$TMP/nr.json" 2>>"$TMP/err" &&
   python3 -c "
import json,sys
for p in sys.argv[1:]:
    g=json.load(open(p))
    assert [t['id'] for t in g['before']] == [t['id'] for t in g['after']], p
    for a, b in zip(g['before'], g['after']):
        assert abs(a['logit'] - b['logit']) <= 1e-4 * (1 + abs(a['logit'])), p
" "$TMP/n.json" "$TMP/nr.json"; then ok attrib_cli_intervene_noop; else fail attrib_cli_intervene_noop "$(tail -1 "$TMP/err")"; fi

expect_error attrib_cli_empty_prompt "empty" "$A" -m "$M" --clt "$C" --ids ""
expect_error attrib_cli_too_long "context of 64" "$A" -m "$M" --clt "$C" --ids "$(seq -s ' ' 1 70)"
expect_error attrib_cli_unknown_id "vocabulary" "$A" -m "$M" --clt "$C" --ids "1 2 999999"
expect_error attrib_cli_bad_ids "not a list" "$A" -m "$M" --clt "$C" --ids "1 two 3"
mkclt "$TMP/narrow" 3 32 8 mlp.hook_in
expect_error attrib_cli_clt_width "width is 32" "$A" -m "$M" --clt "$TMP/narrow" --ids "$IDS"
mkclt "$TMP/shallow" 2 64 8 mlp.hook_in
expect_error attrib_cli_clt_layers "2 layers" "$A" -m "$M" --clt "$TMP/shallow" --ids "$IDS"
mkclt "$TMP/hook" 3 64 8 hook_resid_pre
expect_error attrib_cli_clt_hook "hook_resid_pre" "$A" -m "$M" --clt "$TMP/hook" --ids "$IDS"
mkclt "$TMP/nodec" 3 64 8 mlp.hook_in; rm "$TMP/nodec/W_dec_2.safetensors"
expect_error attrib_cli_clt_missing_file "W_dec_2" "$A" -m "$M" --clt "$TMP/nodec" --ids "$IDS"
mkclt "$TMP/noenc" 3 64 8 mlp.hook_in; rm "$TMP/noenc/W_enc_2.safetensors"
expect_error attrib_cli_clt_missing_enc "W_enc_2" "$A" -m "$M" --clt "$TMP/noenc" --ids "$IDS"
mkclt "$TMP/nocfg" 3 64 8 mlp.hook_in; rm "$TMP/nocfg/config.yaml"
expect_error attrib_cli_clt_missing_config "config.yaml" "$A" -m "$M" --clt "$TMP/nocfg" --ids "$IDS"
expect_error attrib_cli_clt_dir "W_enc_0" "$A" -m "$M" --clt "$TMP/none" --ids "$IDS"
expect_error attrib_cli_no_tokenizer "tokenizer.json" "$A" -m "$M" --clt "$C" /dev/null
expect_error attrib_cli_needs_clt "--clt" "$A" -m "$M" --ids "$IDS"
expect_error attrib_cli_device "cuda" "$A" -m "$M" --clt "$C" --ids "$IDS" --device cuda
expect_error attrib_cli_target "out of range" "$A" -m "$M" --clt "$C" --ids "$IDS" --target id:999999
expect_error attrib_cli_set_spec "LAYER:FEATURE:POS" "$A" intervene -m "$M" --clt "$C" --ids "$IDS" --set 0:3=1
expect_error attrib_cli_set_range "out of range" "$A" intervene -m "$M" --clt "$C" --ids "$IDS" --set 0:99:1=1
expect_error attrib_cli_output_dir "attrib" "$A" -m "$M" --clt "$C" --ids "$IDS" -o "$TMP/no/such/dir/g.json"
