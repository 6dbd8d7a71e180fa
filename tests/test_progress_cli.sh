#!/usr/bin/env bash
# The one progress style on a terminal (script(1) provides one): clt-fit's bar shows integer step
# counts with the total, the loss as its metric, and ends at the summary's step; a resumed run's
# bar continues from its step; feat-topk knows its total. (fwd-acts, quant-acts report: in their CLI tests.)
source "$(dirname "$0")/lib.sh"
command -v script >/dev/null 2>&1 || { echo "SKIP test_progress_cli: needs script(1) for a terminal"; exit 0; }
stories_acts
bars() { tr '\r' '\n' < "$1" | sed 's/\x1b\[K//g' | grep "^clt-fit \["; }
script -qc "'$BIN/clt-fit' -o '$TMP/clt/' --features 32 --batch 128 --steps 30 '$TMP/a.acts'" /dev/null > "$TMP/tty.txt"
last=$(bars "$TMP/tty.txt" | tail -1)
if printf '%s' "$last" | grep -qE "100%  30/30 steps  [0-9.]+ steps/s  loss [0-9.e+-]+  L0 [0-9.]+$" \
   && grep -q "clt-fit: step 30 of 30" "$TMP/tty.txt" && ! bars "$TMP/tty.txt" | grep -q '\.0/'; then
  ok progress_clt_fit
else fail progress_clt_fit "last bar '$last'"; fi
script -qc "'$BIN/clt-fit' -o '$TMP/clt/' --resume --override steps --steps 40" /dev/null > "$TMP/tty2.txt"
first=$(bars "$TMP/tty2.txt" | head -1); last=$(bars "$TMP/tty2.txt" | tail -1)
printf '%s' "$last" | grep -q "100%  40/40 steps" && ! printf '%s' "$first" | grep -qE " [0-9]/40 steps" \
  && ok progress_clt_fit_resumed || fail progress_clt_fit_resumed "first '$first' last '$last'"
# feat-topk: the total from the token shards' footers for this job's batches; the last count is the summary's
script -qc "'$BIN/feat-topk' -m '$TMP/st' --clt '$TMP/clt/' -o '$TMP/f' --shard 1/3 --batch 5 '$TMP/c.tok'" /dev/null \
  > "$TMP/tty3.txt"
n=$(grep -o "^feat-topk: [0-9]* tokens" "$TMP/tty3.txt" | grep -o "[0-9]*")
last=$(tr '\r' '\n' < "$TMP/tty3.txt" | sed 's/\x1b\[K//g' | grep "^feat-topk \[" | tail -1)
[ -n "$n" ] && printf '%s' "$last" | grep -q "100%  $n/$n tok" && ok progress_feat_topk_total \
  || fail progress_feat_topk_total "summary $n, last bar '$last'"
