#!/usr/bin/env bash
# feat-topk on stories260K with a fixed random CLT (tests/golden/feat, tests/ref/make_feat_logits_goldens.py):
# decoder logits against the numpy oracle, --shard + merge identical to one job, --acts equal to
# running the model, show / export in the contract's format, bad input, a killed run.
source "$(dirname "$0")/lib.sh"
FT=$BIN/feat-topk
PY=$(command -v python3)
CLT=$ROOT/tests/golden/feat/clt
need_shared $STORIES_FILES tokenizers/gpt2/tokenizer.json
stories_acts  # $TMP/st, $TMP/c.tok, $TMP/a.acts (64-token contexts)
"$FT" -m "$TMP/st" --clt "$CLT" -o "$TMP/one" --ctx 64 --k 20 --logits 10 "$TMP/c.tok" 2>/dev/null \
  && [ -f "$TMP/one/features.bin" ] && ok feat_run || fail feat_run "no store"

# 1. decoder logits vs the float64 oracle: every position's value within the float32 bound (a
#    sum of d = 64 products of O(1) terms: 64·2^-24 relative to the largest term, 1e-4 with room),
#    its id one the oracle ranks there (near-ties may swap)
for l in 0 1 2 3 4; do for f in $(seq 0 15); do
  "$FT" show "$TMP/one" "$l:$f" --raw | "$PY" -c "import json,sys; r=json.load(sys.stdin); print(json.dumps([$l, $f, r['top_logits'], r['bottom_logits']]))"
done; done >"$TMP/logits.jsonl"
if "$PY" - "$TMP/logits.jsonl" "$ROOT/tests/golden/feat/logits.json" <<'PYEOF'
import json, sys
gold = json.load(open(sys.argv[2]))["features"]
n = 0
for line in open(sys.argv[1]):
    l, f, top, bottom = json.loads(line)
    g = gold[f"{l}:{f}"]
    for mine, ref in ((top, g["top"]), (bottom, g["bottom"])):
        assert len(mine) == 10, (l, f, len(mine))
        scale = max(abs(v) for _, v in ref)
        refv = dict((t, v) for t, v in ref)
        for i, (t, v) in enumerate(mine):
            assert abs(v - ref[i][1]) <= 1e-4 * scale, (l, f, i, v, ref[i])
            assert t in refv and abs(refv[t] - ref[i][1]) <= 1e-4 * scale, (l, f, i, t, ref[i])
            n += 1
assert n == 5 * 16 * 20, n
PYEOF
then ok feat_logits_match_numpy; else fail feat_logits_match_numpy "see above"; fi

# 2. three shards merged (in any order) = one job, byte for byte
for i in 0 1 2; do
  "$FT" -m "$TMP/st" --clt "$CLT" -o "$TMP/s$i" --ctx 64 --k 20 --logits 10 --shard $i/3 "$TMP/c.tok" 2>/dev/null
done
"$FT" merge -o "$TMP/merged" "$TMP/s2" "$TMP/s0" "$TMP/s1" 2>/dev/null
cmp -s "$TMP/one/features.bin" "$TMP/merged/features.bin" && ok feat_shard_merge_identical \
  || fail feat_shard_merge_identical "merged store differs from one job"
# each shard computes its share of the logits (blocks of 64 features: here one per layer, layer l to shard l % 3)
nlog() { "$FT" show "$1" "$2" --raw | "$PY" -c "import json,sys; print(len(json.load(sys.stdin)['top_logits']))"; }
[ "$(nlog "$TMP/s1" 0:0) $(nlog "$TMP/s1" 1:0) $(nlog "$TMP/s1" 4:5) $(nlog "$TMP/s0" 3:2)" = "0 10 10 10" ] \
  && ok feat_shard_logits_once || fail feat_shard_logits_once "a shard's logits are not its share"
# --random 0: no non-activating samples (an empty list used to be dereferenced)
"$FT" -m "$TMP/st" --clt "$CLT" -o "$TMP/r0" --ctx 64 --k 3 --random 0 --max-tokens 2000 "$TMP/c.tok" 2>/dev/null &&
  [ "$("$FT" show "$TMP/r0" 1:3 --raw | "$PY" -c "import json,sys; print(len(json.load(sys.stdin)['random']))")" = 0 ] \
  && ok feat_random_zero || fail feat_random_zero "--random 0 failed"
expect_error feat_merge_twice "shard 1/3 is merged twice" "$FT" merge -o "$TMP/m2" "$TMP/s1" "$TMP/s1"
"$FT" -m "$TMP/st" --clt "$CLT" -o "$TMP/k5" --ctx 64 --k 5 --shard 1/3 "$TMP/c.tok" 2>/dev/null
expect_error feat_merge_other_run "not a shard of the same run" "$FT" merge -o "$TMP/m3" "$TMP/s0" "$TMP/k5"
[ ! -e "$TMP/m2" ] && [ ! -e "$TMP/m3" ] && ok feat_merge_nothing_on_error || fail feat_merge_nothing_on_error "store written"

# --max-tokens caps the corpus, not each job's share: capped shards merge into the capped job
# (1000 tokens: batch 0 whole, batch 1 cut inside a row; model and acts mode)
for mode in model acts; do
  if [ $mode = model ]; then run=("$FT" -m "$TMP/st" --clt "$CLT" --ctx 64 --k 20 --logits 10 --max-tokens 1000); in=$TMP/c.tok
  else run=("$FT" --acts -m "$TMP/st" --clt "$CLT" --k 20 --logits 10 --max-tokens 1000); in=$TMP/a.acts; fi
  "${run[@]}" -o "$TMP/cap1_$mode" "$in" 2>/dev/null
  "${run[@]}" -o "$TMP/cap_s0_$mode" --shard 0/2 "$in" 2>/dev/null
  "${run[@]}" -o "$TMP/cap_s1_$mode" --shard 1/2 "$in" 2>/dev/null
  "$FT" merge -o "$TMP/cap_m_$mode" "$TMP/cap_s0_$mode" "$TMP/cap_s1_$mode" 2>/dev/null
  ntok=$("$FT" show "$TMP/cap1_$mode" 0:0 --raw | "$PY" -c "import json,sys; print(json.load(sys.stdin)['n_tokens'])")
  cmp -s "$TMP/cap1_$mode/features.bin" "$TMP/cap_m_$mode/features.bin" && [ "$ntok" = 1000 ] \
    && ok "feat_max_tokens_shards_$mode" || fail "feat_max_tokens_shards_$mode" "n_tokens $ntok, or merged != one job"
done

# 3. from fwd-acts' shard: the same records as running the model (same contexts, same batches)
"$FT" --acts -m "$TMP/st" --clt "$CLT" -o "$TMP/fa" --k 20 --logits 10 "$TMP/a.acts" 2>/dev/null
same=1
for lf in 0:0 1:3 2:7 4:15; do
  cmp -s <("$FT" show "$TMP/one" $lf --raw) <("$FT" show "$TMP/fa" $lf --raw) || same=0
done
[ $same = 1 ] && ok feat_acts_equals_model || fail feat_acts_equals_model "records differ"

# 4. show and export: the contract's fields, the top group first, the bins after it, live features only
"$FT" show "$TMP/one" 1:3 --text | grep -q '<<' && ok feat_show_text || fail feat_show_text "no highlighted max"
"$FT" export "$TMP/one" -o "$TMP/exp" 2>/dev/null
if "$PY" - "$TMP/exp" "$TMP/one" "$FT" <<'PYEOF'
import glob, json, os, subprocess, sys
files = sorted(glob.glob(os.path.join(sys.argv[1], "*.json")))
assert files, "no files"
live = 0
for l in range(5):
    for f in range(16):
        r = json.loads(subprocess.check_output([sys.argv[3], "show", sys.argv[2], f"{l}:{f}", "--raw"]))
        path = os.path.join(sys.argv[1], f"{l}_{f}.json")
        assert os.path.exists(path) == (not r["dead"]), (l, f)
        live += not r["dead"]
        if r["dead"]:
            continue
        x = json.load(open(path))
        for k in ["transcoder_id", "index", "examples_quantiles", "top_logits", "bottom_logits", "act_min", "act_max",
                  "quantile_values", "histogram", "activation_frequency", "layer", "feature", "density", "max_activation",
                  "mean_activation", "dead", "always_on", "next_tokens", "top_logit_values", "bottom_logit_values"]:
            assert k in x, (l, f, k)
        assert (x["layer"], x["index"], x["feature"]) == (l, f, f)
        g = x["examples_quantiles"]
        assert g[0]["quantile_name"] == "Top activations" and len(g[0]["examples"]) == len(r["top"])
        for e in g[0]["examples"]:
            assert len(e["tokens"]) == len(e["tokens_acts_list"]) and all(isinstance(t, str) for t in e["tokens"])
            assert e["split"] in ("explain", "test")
        acts = [e["tokens_acts_list"][e["train_token_ind"]] for e in g[0]["examples"]]  # each window's max
        assert acts == [t["act"] for t in r["top"]] and acts == sorted(acts, reverse=True) and acts[0] == x["act_max"]
        assert all(q["quantile_name"] == f"Quantile {i}" for i, q in enumerate(g[1:], 1))
        assert all(isinstance(t, str) and t for t in x["top_logits"]) and len(x["top_logit_values"]) == 10
        assert abs(x["activation_frequency"] - r["count"] / r["n_tokens"]) < 1e-9
assert live == len(files), (live, len(files))
PYEOF
then ok feat_export_contract; else fail feat_export_contract "see above"; fi

# graph2html --features takes the store itself: the same feature data as through export
"$PY" - "$TMP/g.json" <<'PYEOF'
import json, sys
feats = [(1, 3, 2), (2, 5, 3), (4, 15, 3)]
nodes = [{"node_id": f"{l}_{f}_{p}", "feature": (l + f) * (l + f + 1) // 2 + f, "layer": str(l), "ctx_idx": p,
          "feature_type": "cross layer transcoder", "jsNodeId": f"{l}_{f}-0", "clerp": "", "influence": 0.5,
          "activation": 1.0} for l, f, p in feats]
nodes += [{"node_id": "E_5_0", "feature": 0, "layer": "E", "ctx_idx": 0, "feature_type": "embedding",
           "jsNodeId": "E_5-0", "clerp": ""},
          {"node_id": "6_9_3", "feature": 9, "layer": "6", "ctx_idx": 3, "feature_type": "logit", "jsNodeId": "L_9-3",
           "clerp": "Output \"x\" (p=0.5)", "token_prob": 0.5, "is_target_logit": True}]
links = [{"source": "E_5_0", "target": n["node_id"], "weight": 0.5} for n in nodes[:3]]
links += [{"source": n["node_id"], "target": "6_9_3", "weight": -0.25} for n in nodes[:3]]
json.dump({"metadata": {"slug": "t", "scan": "t", "prompt_tokens": ["a", "b", "c", "d"], "prompt": "abcd",
                        "schema_version": 1}, "qParams": {}, "nodes": nodes, "links": links}, open(sys.argv[1], "w"))
PYEOF
"$BIN/graph2html" -q "$TMP/g.json" --features "$TMP/one" -o "$TMP/g_store.html" &&
  "$BIN/graph2html" -q "$TMP/g.json" --features "$TMP/exp" -o "$TMP/g_exp.html" &&
  "$PY" - "$TMP/g_store.html" "$TMP/g_exp.html" <<'PYEOF' && ok feat_store_in_graph2html || fail feat_store_in_graph2html "see above"
import json, sys
def feats(p):
    t = open(p).read(); i = t.index('"features":{')
    return json.JSONDecoder().raw_decode(t[i + len('"features":'):])[0]
a, b = feats(sys.argv[1]), feats(sys.argv[2])
assert a == b and len(a) >= 1, (len(a), len(b))
PYEOF

# 5. the spec's Python reader (formats/features.md) where zstandard is installed
VPY=$ROOT/.venv-ref/bin/python
if [ -x "$VPY" ] && "$VPY" -c "import zstandard" 2>/dev/null; then
  sed -n '/^```python$/,/^```$/p' "$ROOT/formats/features.md" | sed '1d;$d' >"$TMP/reader.py"
  printf 'import sys\nr = read_feature(sys.argv[1], 2, 7)\nprint(r["layer"], r["feature"], r["count"])\n' >>"$TMP/reader.py"
  want=$("$FT" show "$TMP/one" 2:7 --raw | "$PY" -c "import json,sys; r=json.load(sys.stdin); print(r['layer'], r['feature'], r['count'])")
  [ "$("$VPY" "$TMP/reader.py" "$TMP/one")" = "$want" ] && ok feat_python_reader || fail feat_python_reader "differs"
fi

# 6. bad input: one line naming the file, non-zero exit, no store
"$BIN/clt-fit" synth -o "$TMP/d16.acts" --layers 5 --d 16 --features 8 --tokens 512 >/dev/null 2>&1
"$BIN/clt-fit" -o "$TMP/clt16" --features 8 --batch 256 --steps 2 "$TMP/d16.acts" >/dev/null 2>&1
# a CLT reading a hook feat-topk cannot compute is refused by name (it used to be read as mlp_in)
cp -r "$CLT" "$TMP/cltpre" && sed -i 's/^feature_input_hook:.*/feature_input_hook: "hook_resid_pre"/' "$TMP/cltpre/config.yaml"
rm -f "$TMP/cltpre/checkpoint.json"
expect_error feat_clt_unsupported_hook 'feature_input_hook "hook_resid_pre" is not supported' \
  "$FT" -m "$TMP/st" --clt "$TMP/cltpre" -o "$TMP/pre" --ctx 64 "$TMP/c.tok"
expect_error feat_clt_model_mismatch "clt16: the CLT's width 16 does not match the model's d_model 64" \
  "$FT" -m "$TMP/st" --clt "$TMP/clt16" -o "$TMP/bad" "$TMP/c.tok"
expect_error feat_clt_acts_mismatch "a.acts: d_model 64 does not match the CLT's 16" \
  "$FT" --acts --clt "$TMP/clt16" -o "$TMP/bad" "$TMP/a.acts"
"$BIN/tok" encode -t "$SHARED/tokenizers/gpt2/tokenizer.json" -o "$TMP/gpt2.tok" "$ROOT/tests/data/tok_corpus.jsonl" 2>/dev/null
expect_error feat_wrong_tokenizer "gpt2.tok: token vocabulary .* larger than the model" \
  "$FT" -m "$TMP/st" --clt "$CLT" -o "$TMP/bad" "$TMP/gpt2.tok"
cp -r "$TMP/one" "$TMP/corrupt"
printf '\x55' | dd of="$TMP/corrupt/features.bin" bs=1 seek=3000 conv=notrunc 2>/dev/null
expect_error feat_corrupt_store "features.bin: record .* checksum mismatch" "$FT" show "$TMP/corrupt" 0:0 --raw
for f in $(seq 0 15); do "$FT" show "$TMP/corrupt" 0:$f --raw >/dev/null 2>&1 || break; done
expect_error feat_corrupt_store_any "checksum mismatch" "$FT" show "$TMP/corrupt" 0:$f --raw
expect_error feat_not_a_store "nope: cannot open" "$FT" show "$TMP/nope" 0:0
expect_error feat_bad_feature_id "not LAYER:FEATURE" "$FT" show "$TMP/one" 1-3
expect_error feat_feature_range "feature 99 outside 0..15" "$FT" show "$TMP/one" 1:99
[ ! -e "$TMP/bad" ] && ok feat_bad_input_no_store || fail feat_bad_input_no_store "store written"

# 7. a killed run leaves no store under its name (and an existing store there untouched)
for i in $(seq 1 12); do cat "$ROOT/tests/data/tok_corpus.jsonl"; done >"$TMP/big.jsonl"
"$BIN/tok" encode -t "$TMP/st/tokenizer.json" -o "$TMP/big.tok" "$TMP/big.jsonl" 2>/dev/null
"$FT" -m "$TMP/st" --clt "$CLT" -o "$TMP/killed" --ctx 64 "$TMP/big.tok" 2>/dev/null &
pid=$!
sleep 1; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
[ ! -e "$TMP/killed" ] && ok feat_killed_no_store || fail feat_killed_no_store "a store appeared"
cp -r "$TMP/one" "$TMP/keep"
"$FT" -m "$TMP/st" --clt "$CLT" -o "$TMP/keep" --ctx 64 "$TMP/big.tok" 2>/dev/null &
pid=$!
sleep 1; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
cmp -s "$TMP/one/features.bin" "$TMP/keep/features.bin" && ok feat_killed_keeps_old || fail feat_killed_keeps_old "old store changed"
