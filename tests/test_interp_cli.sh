#!/usr/bin/env bash
# interp-prompt end to end on a feature store built here from stories260K (../shared) and the
# golden random CLT: the model-free tokens explainer with the lexical scorer; the http: explainer
# against a local stub server (tests/interp_stub_server.py: request body, API key, concurrency,
# retries on 429 and 500, timeouts, malformed JSON, answers without a label, one prompt failing
# among good ones, the cache); the cmd: explainer with hostile data; bad input.
source "$(dirname "$0")/lib.sh"
stories_model
IP="$BIN/interp-prompt"
"$BIN/tok" encode -t "$TMP/st/tokenizer.json" -o "$TMP/c.tok" "$ROOT/tests/data/tok_corpus.jsonl" 2>/dev/null
"$BIN/feat-topk" -m "$TMP/st" --clt "$ROOT/tests/golden/feat/clt" -o "$TMP/store" --ctx 64 --k 20 "$TMP/c.tok" \
  2>/dev/null || { fail interp_store "feat-topk could not build the store"; exit 0; }
PY=python3
# jq-free JSONL checks: check NAME FILE PYTHON-EXPRESSION over `rows` (the parsed lines)
check() {
  local name=$1 file=$2 expr=$3 msg
  if msg=$($PY - "$file" "$expr" 2>&1 <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = eval("(" + sys.argv[2] + ")")  # parenthesized: the expression may span lines
if ok is not True:
    print(f"false: {sys.argv[2]} (rows: {len(rows)}; first: {json.dumps(rows[0])[:300] if rows else None})")
    sys.exit(1)
EOF
  ); then ok "$name"; else fail "$name" "$msg"; fi
}

# ---- tokens explainer + lexical scorer over the whole store ----
"$IP" "$TMP/store" --explainer tokens -o "$TMP/tok.jsonl" --report >"$TMP/report.txt" 2>"$TMP/err.txt"
if [ $? -ne 0 ]; then fail interp_tokens "exit non-zero: $(cat "$TMP/err.txt")"; fi
check interp_tokens_rows "$TMP/tok.jsonl" \
  'len(rows) > 0 and all(r["label"] and r["explainer"] == "tokens" and r["scorer"] == "lexical" for r in rows)'
check interp_tokens_keys "$TMP/tok.jsonl" \
  'len({(r["layer"], r["feature"]) for r in rows}) == len(rows) and all(0 <= r["feature"] < 16 for r in rows)'
check interp_tokens_metrics "$TMP/tok.jsonl" \
  'all(0 <= r["scores"][t]["balanced_accuracy"] <= 1
   and r["scores"][t]["n"] > 0 for r in rows for t in ("detection", "fuzzing"))'
# always-yes / always-no are chance by construction; their precision is the positives' share
check interp_tokens_constant_controls "$TMP/tok.jsonl" \
  'all(r["controls"][c][t]["balanced_accuracy"] == 0.5 for r in rows
    for c in ("always_yes", "always_no") for t in ("detection", "fuzzing"))
   and all(r["controls"]["always_no"]["detection"]["recall"] == 0
   and r["controls"]["always_yes"]["detection"]["recall"] == 1 for r in rows)'
# the store's tokens explanation must beat another feature's on detection, averaged over features
check interp_tokens_beats_shuffled "$TMP/tok.jsonl" \
  'sum(r["scores"]["detection"]["balanced_accuracy"] for r in rows)
    > sum(r["controls"]["shuffled"]["detection"]["balanced_accuracy"] for r in rows)'
if grep -q '^all ' "$TMP/report.txt" && grep -q 'always_yes' "$TMP/report.txt"; then ok interp_report
else fail interp_report "no 'all' row: $(cat "$TMP/report.txt")"; fi
"$IP" "$TMP/store" --explainer tokens -o "$TMP/tok2.jsonl" 2>/dev/null
if cmp -s "$TMP/tok.jsonl" "$TMP/tok2.jsonl"; then ok interp_tokens_deterministic
else fail interp_tokens_deterministic "two runs differ"; fi
"$IP" "$TMP/store" --explainer tokens --features 0:1-3,5,2:all -o "$TMP/sel.jsonl" 2>/dev/null
check interp_features_spec "$TMP/sel.jsonl" \
  'sorted((r["layer"], r["feature"]) for r in rows)
    == sorted([(0, f) for f in (1, 2, 3, 5)] + [(2, f) for f in range(16)])'

# ---- dry run: prompts printed, no call made (the URL points nowhere) ----
out=$("$IP" "$TMP/store" --explainer http:http://127.0.0.1:9/v1/chat/completions --model m --features 0:1 \
  --dry-run 2>&1)
if printf '%s' "$out" | grep -q 'TOP_ACTIVATING_TEXTS' && printf '%s' "$out" | grep -q '<<'; then ok interp_dry_run
else fail interp_dry_run "$out"; fi
out=$("$IP" "$TMP/store" --explainer cmd:true --template delphi --features 0:1 --dry-run 2>&1)
if printf '%s' "$out" | grep -q 'Activations:'; then ok interp_dry_run_delphi
else fail interp_dry_run_delphi "$out"; fi

# ---- the stub server ----
KEY="sk-test-$$-secret"
STUB_EXPECT_KEY=$KEY "$PY" "$ROOT/tests/interp_stub_server.py" --log "$TMP/stub.log" --delay 0.5 \
  >"$TMP/port" 2>"$TMP/stub.err" &
STUB=$!
trap 'kill $STUB 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
PORT=$(cat "$TMP/port")
URL="http://127.0.0.1:$PORT"
stats() { $PY -c "import json,urllib.request; print(json.load(urllib.request.urlopen('$URL/stats'))['$1'])"; }
run_http() {  # run_http SCENARIO OUT [options...]
  local sc=$1 out=$2; shift 2
  MY_KEY=$KEY "$IP" "$TMP/store" --explainer "http:$URL/$sc/v1/chat/completions" --model stub-model \
    --api-key-env MY_KEY --features 0:0-3 --scorer lexical -o "$out" "$@"
}

run_http ok "$TMP/ok.jsonl" --concurrency 4 >"$TMP/ok.out" 2>"$TMP/ok.err"
check interp_http_ok "$TMP/ok.jsonl" \
  'len(rows) == 4 and all(r["label"] == "stub label" and r["parse"] == "ok"
   and r["explainer"].startswith("http:") for r in rows)'
check interp_http_request "$TMP/stub.log" \
  'all(r["body"]["model"] == "stub-model" and [m["role"] for m in r["body"]["messages"]] == ["system", "user"]
   and r["body"]["max_tokens"] == 128 and r["auth_ok"] for r in rows)'
if grep -q -- "$KEY" "$TMP/ok.jsonl" "$TMP/ok.err" "$TMP/ok.out"; then
  fail interp_http_key_hidden "the API key was printed"
else ok interp_http_key_hidden; fi

# the cache: the same run again makes no request
before=$(stats requests)
run_http ok "$TMP/c1.jsonl" --cache "$TMP/cache" 2>/dev/null
mid=$(stats requests)
run_http ok "$TMP/c2.jsonl" --cache "$TMP/cache" 2>/dev/null
after=$(stats requests)
if [ $((mid - before)) -eq 4 ] && [ "$after" -eq "$mid" ] && cmp -s "$TMP/c1.jsonl" "$TMP/c2.jsonl"; then
  ok interp_cache
else fail interp_cache "requests $before -> $mid -> $after"; fi

# retries: 429, then 500, then the answer
: >"$TMP/stub.log"
run_http flaky "$TMP/flaky.jsonl" --retries 3 --backoff 0.05 2>"$TMP/flaky.err"
check interp_http_retry "$TMP/flaky.jsonl" 'len(rows) == 4 and all(r["label"] == "stub label" for r in rows)'
check interp_http_retry_attempts "$TMP/stub.log" 'len(rows) == 12 and max(r["attempt"] for r in rows) == 3'
: >"$TMP/stub.log"
run_http flaky "$TMP/flaky1.jsonl" --retries 1 --backoff 0.05 --features 1:0-1 2>/dev/null
check interp_http_retry_exhausted "$TMP/flaky1.jsonl" \
  'len(rows) == 2 and all(r["parse"] == "error" and "status 500" in r["error"] and r["label"] == "" for r in rows)'

# malformed JSON, an answer with no label, a timeout: no crash, every feature accounted for
run_http malformed "$TMP/bad.jsonl" --retries 1 --backoff 0.01 2>/dev/null; rc=$?
check interp_http_malformed "$TMP/bad.jsonl" \
  'len(rows) == 4 and all(r["parse"] == "error" and "malformed JSON" in r["error"] for r in rows)'
[ $rc -eq 0 ] || fail interp_http_malformed_exit "exit $rc"
run_http nolabel "$TMP/nolabel.jsonl" 2>/dev/null
check interp_http_nolabel "$TMP/nolabel.jsonl" \
  'len(rows) == 4 and all(r["parse"] == "no_label" and r["label"]
   and r["explanation"].startswith("The feature fires") for r in rows)'
t0=$(date +%s.%N)
run_http hang "$TMP/hang.jsonl" --timeout 0.5 --retries 1 --backoff 0.01 --concurrency 4 2>/dev/null; rc=$?
t1=$(date +%s.%N)
check interp_http_timeout "$TMP/hang.jsonl" \
  'len(rows) == 4 and all("Timeout" in r["error"] or "timed out" in r["error"] for r in rows)'
if [ $rc -eq 0 ] && $PY -c "import sys; sys.exit(0 if $t1 - $t0 < 10 else 1)"; then ok interp_http_timeout_fast
else fail interp_http_timeout_fast "exit $rc after $($PY -c "print($t1 - $t0)") s"; fi

# one prompt that always fails does not take the finished ones with it
printf 'System text.\n---\nFeature FAIL-ME-{{feature}}: {{max_tokens}}\n' >"$TMP/pick.tmpl"
run_http pick "$TMP/pick.jsonl" --retries 1 --backoff 0.01 --template "$TMP/pick.tmpl" 2>/dev/null
check interp_http_one_fails "$TMP/pick.jsonl" \
  'len(rows) == 4 and [r["parse"] for r in sorted(rows, key=lambda r: r["feature"])] == ["ok", "ok", "error", "ok"]'

# the scorer through the same endpoint: every window gets an answer (the stub says 1 to all)
run_http ok "$TMP/score.jsonl" --scorer "http:$URL/ok/v1/chat/completions" --score-examples 4 2>/dev/null
check interp_http_scorer "$TMP/score.jsonl" \
  'all(r["scores"]["detection"]["failed"] == 0 and r["scores"]["detection"]["recall"] == 1
   and r["scores"]["detection"]["n"] > 0 and r["controls"]["shuffled"] is not None for r in rows)'

# concurrency: 8 prompts of 0.5 s each with 8 in flight take far less than 4 s
before_max=$(stats max_in_flight)
t0=$(date +%s.%N)
"$IP" "$TMP/store" --explainer "http:$URL/slow/v1/chat/completions" --model m --features 1:0-7 \
  --scorer none --concurrency 8 -o "$TMP/slow.jsonl" 2>/dev/null
t1=$(date +%s.%N)
if $PY -c "import sys; sys.exit(0 if $t1 - $t0 < 3.0 else 1)" && [ "$(stats max_in_flight)" -ge 4 ]; then
  ok interp_http_concurrency
else
  fail interp_http_concurrency \
    "8 x 0.5 s took $($PY -c "print(round($t1 - $t0, 2))") s, max in flight $(stats max_in_flight) (before $before_max)"
fi
check interp_scorer_none "$TMP/slow.jsonl" 'len(rows) == 8 and all("scores" not in r for r in rows)'

# ---- cmd: hostile data stays data ----
printf 'x\n---\nData: $(touch %s/PWNED) `touch %s/PWNED2` '"'"'"; touch %s/PWNED3 # \001\033[31m %s {{feature}}\n' \
  "$TMP" "$TMP" "$TMP" '<script>alert(1)</script>' >"$TMP/hostile.tmpl"
printf '[LABEL]: <b>bold</b> "quoted" $(touch %s/PWNED4) \001\033[31m\n[EXPLANATION]: It %s says `id`.\n' \
  "$TMP" '<script>alert(1)</script>' >"$TMP/answer.txt"
"$IP" "$TMP/store" --explainer "cmd:cat >\"$TMP/seen.txt\"; cat \"$TMP/answer.txt\"" --template "$TMP/hostile.tmpl" \
  --features 0:0-1 --scorer lexical -o "$TMP/cmd.jsonl" 2>"$TMP/cmd.err"
if [ -e "$TMP/PWNED" ] || [ -e "$TMP/PWNED2" ] || [ -e "$TMP/PWNED3" ] || [ -e "$TMP/PWNED4" ]; then
  fail interp_cmd_hostile "data was executed"
elif ! grep -qF '$(touch' "$TMP/seen.txt"; then
  fail interp_cmd_hostile "the prompt did not reach the command: $(cat "$TMP/cmd.err")"
else ok interp_cmd_hostile; fi
check interp_cmd_hostile_json "$TMP/cmd.jsonl" \
  'len(rows) == 2 and all(r["label"].startswith("<b>bold</b>") and "$(touch" in r["label"]
   and not any(ord(c) < 32 for c in r["label"] + r["explanation"]) and "<script>" in r["explanation"] for r in rows)'
"$IP" "$TMP/store" --explainer "cmd:exit 3" --features 0:0 --scorer none -o "$TMP/cmdfail.jsonl" 2>/dev/null
check interp_cmd_failure "$TMP/cmdfail.jsonl" 'len(rows) == 1 and "exit status 3" in rows[0]["error"]'
"$IP" "$TMP/store" --explainer "cmd:sleep 5" --timeout 0.3 --features 0:0 --scorer none -o "$TMP/cmdslow.jsonl" \
  2>/dev/null
check interp_cmd_timeout "$TMP/cmdslow.jsonl" 'len(rows) == 1 and "timed out" in rows[0]["error"]'

# ---- builtin: our engine in-process, here with stories260K itself as the model (no chat
# template: raw text; a 512-token context, so a short template and one window per scorer prompt;
# fuzzing prompts do not fit and are counted as failed). The scorer decodes its 0/1 list
# constrained, so every detection window whose prompt fits gets an answer; greedy + the cache: a rerun
# is identical. (The SmolLM2 end-to-end numbers are in bench/RESULTS.md.)
printf 'Say what the marked words share.\n---\n{{texts}}\n' >"$TMP/short.tmpl"
for run in 1 2; do
  "$IP" "$TMP/store" --explainer "builtin:$TMP/st" --template "$TMP/short.tmpl" --features 0:1-2 --max-examples 2 \
    --score-examples 2 --score-batch 1 --score-style list --max-new-tokens 16 --cache "$TMP/bcache" \
    -o "$TMP/builtin$run.jsonl" 2>"$TMP/b.err"
done
check interp_builtin "$TMP/builtin1.jsonl" \
  'len(rows) == 2 and all(r["explainer"] == "builtin:" + sys.argv[1].rsplit("/", 1)[0] + "/st" and r["explanation"]
    and r["scores"]["detection"]["n"] + r["scores"]["detection"]["failed"] == 4 for r in rows)
   and sum(r["scores"]["detection"]["n"] for r in rows) >= 4'
if cmp -s "$TMP/builtin1.jsonl" "$TMP/builtin2.jsonl" && grep -q "from the cache" "$TMP/b.err"; then
  ok interp_builtin_cached
else fail interp_builtin_cached "the cached rerun differs: $(cat "$TMP/b.err")"; fi
# The default builtin scoring: one window a prompt after worked examples, answered by the log-odds
# of "yes" over "no" (here their first pieces, "▁y" vs "▁n"). Every detection window is
# answered, every fuzzing window answered or counted failed (a few prompts pass stories260K's 512
# positions; the small template's worked examples do not fit at all), and the worked examples
# stay in the KV cache from one prompt to the next.
"$IP" "$TMP/store" --explainer "builtin:$TMP/st" --template "$TMP/short.tmpl" --features 0:1-2 --max-examples 2 \
  --score-examples 2 --max-new-tokens 16 -o "$TMP/yesno.jsonl" 2>"$TMP/y.err"
check interp_builtin_yesno "$TMP/yesno.jsonl" \
  'len(rows) == 2 and all(s["detection"]["n"] == 4 and s["fuzzing"]["n"] + s["fuzzing"]["failed"] == 4
    for r in rows for s in (r["scores"], r["controls"]["shuffled"]))'
if grep -Eq "[1-9][0-9]* more held from the prompt before" "$TMP/y.err"; then ok interp_builtin_prefix_held
else fail interp_builtin_prefix_held "$(cat "$TMP/y.err")"; fi

# ---- bad input: one line, non-zero, no crash ----
expect_error interp_no_store "nope" "$IP" "$TMP/nope" --explainer tokens -o "$TMP/x.jsonl"
expect_error interp_bad_features "features" "$IP" "$TMP/store" --explainer tokens --features 0:9-2 -o "$TMP/x.jsonl"
expect_error interp_feature_range "past the store" "$IP" "$TMP/store" --explainer tokens --features 0:99 \
  -o "$TMP/x.jsonl"
expect_error interp_bad_layer "layer 7" "$IP" "$TMP/store" --explainer tokens --features 7:1 -o "$TMP/x.jsonl"
expect_error interp_http_no_model "needs --model" "$IP" "$TMP/store" --explainer http:http://127.0.0.1:9/ \
  -o "$TMP/x.jsonl"
expect_error interp_bad_explainer "expected tokens" "$IP" "$TMP/store" --explainer gpt -o "$TMP/x.jsonl"
printf 'no placeholder\n' >"$TMP/empty.tmpl"
expect_error interp_bad_template "placeholder" "$IP" "$TMP/store" --explainer cmd:cat --template "$TMP/empty.tmpl" \
  -o "$TMP/x.jsonl"
expect_error interp_builtin_missing "none: no such directory" "$IP" "$TMP/store" --explainer "builtin:$TMP/none" \
  --features 0:0 -o "$TMP/x.jsonl"
if [ -e "$TMP/x.jsonl" ]; then fail interp_no_partial_output "an output was left by a failed run"
else ok interp_no_partial_output; fi
# --max-tokens is the input read elsewhere; here it is an error naming --max-new-tokens
expect_error interp_max_tokens_renamed "--max-tokens is now --max-new-tokens" \
  "$IP" "$TMP/store" --explainer tokens -o "$TMP/renamed.jsonl" --max-tokens 5
