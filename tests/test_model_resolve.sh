#!/usr/bin/env bash
# Model names resolve one way in every tool (libcommon/model/model_resolve.h): a path (a '/' or a leading
# '.') is a directory; a name is looked up in the cache ($CLTKIT_CACHE) first, then here; a local
# folder never silently shadows the cache, and the tools say on stderr which model they used.
# tok -t takes a tokenizer.json, a directory, or a model's name.
source "$(dirname "$0")/lib.sh"
stories_model
export CLTKIT_CACHE=$TMP/cache
mkdir -p "$CLTKIT_CACHE" "$TMP/work"
cp -r "$TMP/st" "$CLTKIT_CACHE/mini"
cd "$TMP/work"
"$BIN/tok" encode -t "$TMP/st/tokenizer.json" -o c.tok "$ROOT/tests/data/demo_stories.jsonl" 2>/dev/null
want=$("$BIN/fwd-acts" generate -m "$TMP/st" --max-new-tokens 5 | paste -sd,)

# 1. a name in the cache: every tool finds it and says so
for args in "fwd-acts generate --max-new-tokens 5 -m mini" "generate --raw --ids --max-new-tokens 3 -m mini Lily"; do
  set -- $args; tool=$1; shift
  "$BIN/$tool" "$@" > out.txt 2> err.txt
  if [ $? -eq 0 ] && grep -q "^$tool: model 'mini': $CLTKIT_CACHE/mini (the cache)$" err.txt; then ok "resolve_cache_$tool"
  else fail "resolve_cache_$tool" "$(cat err.txt)"; fi
done
[ "$("$BIN/fwd-acts" generate -m mini --max-new-tokens 5 2>/dev/null | paste -sd,)" = "$want" ] && ok resolve_cache_same_model \
  || fail resolve_cache_same_model "other ids"
"$BIN/fwd-acts" eval -m mini --ctx 16 c.tok > /dev/null 2> err.txt && grep -q "model 'mini'" err.txt && ok resolve_cache_eval \
  || fail resolve_cache_eval "$(cat err.txt)"
"$BIN/tok" ids -t mini "Lily" > a.txt 2> err.txt; "$BIN/tok" ids -t "$TMP/st/tokenizer.json" "Lily" > b.txt
cmp -s a.txt b.txt && grep -q "^tok: model 'mini': " err.txt && ok resolve_tok_name || fail resolve_tok_name "$(cat err.txt)"

# 2. tok -t DIR: the directory's tokenizer.json (not "invalid JSON"); the plain file is quiet as before
"$BIN/tok" ids -t "$TMP/st" "Lily" > c.txt 2> err.txt
cmp -s c.txt b.txt && [ ! -s err.txt ] && ok resolve_tok_dir || fail resolve_tok_dir "$(cat err.txt)"
mkdir -p tokonly && cp "$TMP/st/tokenizer.json" tokonly/
"$BIN/tok" ids -t tokonly "Lily" > d.txt 2>/dev/null; cmp -s d.txt b.txt && ok resolve_tok_tokenizer_dir || fail resolve_tok_tokenizer_dir "differs"
mkdir -p empty
expect_error resolve_tok_dir_without "empty: no tokenizer.json in this directory" "$BIN/tok" ids -t ./empty "Lily"

# 3. a local folder of the same name: the cache wins and stderr says how to pick the folder; ./mini picks it
cp -r "$TMP/st" mini && sed -i 's/"max_position_embeddings": *512/"max_position_embeddings": 500/' mini/config.json
"$BIN/fwd-acts" generate -m mini --max-new-tokens 2 > /dev/null 2> err.txt
grep -q "model 'mini': $CLTKIT_CACHE/mini (the cache; for the directory here write ./mini)" err.txt \
  && ok resolve_local_does_not_shadow || fail resolve_local_does_not_shadow "$(cat err.txt)"
"$BIN/fwd-acts" generate -m ./mini --max-new-tokens 2 > /dev/null 2> err.txt
[ ! -s err.txt ] && ok resolve_path_quiet || fail resolve_path_quiet "$(cat err.txt)"
mv mini other
"$BIN/fwd-acts" generate -m other --max-new-tokens 2 > /dev/null 2> err.txt
grep -q "model 'other': other (a directory here; no model of that name in $CLTKIT_CACHE)" err.txt \
  && ok resolve_local_fallback || fail resolve_local_fallback "$(cat err.txt)"

# 4. no such model: one line that names it once
expect_error resolve_no_name "^fwd-acts: model 'nosuchdir': no model directory of that name here or in .*/cache$" \
  "$BIN/fwd-acts" -m nosuchdir -o x.acts c.tok
expect_error resolve_no_path "^fwd-acts: ./nosuchdir: no such directory$" "$BIN/fwd-acts" -m ./nosuchdir -o x.acts c.tok
expect_error resolve_not_model "^fwd-acts: ./empty: not a model directory \(it has no config.json\)$" \
  "$BIN/fwd-acts" -m ./empty -o x.acts c.tok
expect_error resolve_smollm2_hint "fetch it with scripts/fetch_smollm2.sh" "$BIN/generate" -m smollm2 hi
expect_error resolve_tok_missing "^tok: model 'nosuch': no model directory" "$BIN/tok" ids -t nosuch "Lily"
expect_error resolve_feat_topk "^feat-topk: model 'nosuch': " "$BIN/feat-topk" -m nosuch --clt ./none -o f c.tok
