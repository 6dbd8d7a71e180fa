#!/usr/bin/env bash
# `clt-fit report`: the metrics of a short real run become one self-contained HTML file that
# parses as XML, has one chart per metric with one line per series, axes and legends, and loads
# nothing from outside; a resumed log's superseded rows are dropped; bad input is one-line error.
source "$(dirname "$0")/lib.sh"
PY=$(command -v python3)
FIT=$BIN/clt-fit
"$FIT" synth -o "$TMP/a.acts" --layers 3 --d 16 --features 32 --tokens 8192 >/dev/null
"$FIT" -o "$TMP/clt" --features 48 --batch 256 --steps 60 --lr 3e-3 --lambda 0.1 --log-every 10 "$TMP/a.acts" 2>/dev/null
"$FIT" report "$TMP/clt/metrics.jsonl" -o "$TMP/r.html" 2>/dev/null
if "$PY" - "$TMP/r.html" 3 6 <<'PYEOF'
import re, sys, xml.dom.minidom
path, L, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
text = open(path, encoding="utf-8").read()
doc = xml.dom.minidom.parseString(text.encode())  # the whole page is well-formed XML
svgs = {s.getAttribute("id"): s for s in doc.getElementsByTagName("svg")}
want = {"loss": 4, "nmse": L, "l0": L, "dead": 1, "lambda": 1, "lr": 1, "tokens_per_s": 1}
assert sorted(svgs) == sorted("chart-" + k for k in want), sorted(svgs)
for k, n in want.items():
    s = svgs["chart-" + k]
    groups = [g for g in s.getElementsByTagName("g") if g.getElementsByTagName("polyline")]
    assert len(groups) == n, (k, len(groups))
    for g in groups:  # one unbroken line through every logged step
        pts = g.getElementsByTagName("polyline")[0].getAttribute("points").split()
        assert len(pts) == rows, (k, len(pts))
        xs = [float(p.split(",")[0]) for p in pts]
        assert xs == sorted(xs), (k, xs)
    texts = [t.firstChild.data for t in s.getElementsByTagName("text") if t.firstChild]
    assert "step" in texts, (k, texts)                       # x-axis label
    assert len(texts) >= 8, (k, texts)                       # title, labels, ticks
    assert s.getElementsByTagName("title"), k
    if n > 1:
        assert sum(t.startswith("layer ") or t in ("total", "mse") for t in texts) >= 2, (k, texts)  # legend
assert "<script" not in text and not re.search(r'(src|href)="', text), "external resources or scripts"
assert not re.search(r"https?://(?!www\.w3\.org/)", text), "network reference"
PYEOF
then ok clt_report_structure; else fail clt_report_structure "see $TMP/r.html"; fi

# a resumed run re-logging steps 20 and 30 supersedes the earlier rows from step 20 on
"$PY" - "$TMP/clt/metrics.jsonl" "$TMP/resumed.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])][:3]            # steps 10, 20, 30
again = [dict(r, loss=r["loss"] * 0.5) for r in rows[1:]]        # resumed from step 10
with open(sys.argv[2], "w") as f:
    for r in rows + again: f.write(json.dumps(r) + "\n")
PYEOF
"$FIT" report "$TMP/resumed.jsonl" -o "$TMP/resumed.html" 2>/dev/null
if "$PY" - "$TMP/resumed.html" <<'PYEOF'
import sys, xml.dom.minidom
doc = xml.dom.minidom.parse(sys.argv[1])
svg = [s for s in doc.getElementsByTagName("svg") if s.getAttribute("id") == "chart-loss"][0]
pts = svg.getElementsByTagName("polyline")[0].getAttribute("points").split()
assert len(pts) == 3, pts
PYEOF
then ok clt_report_resumed_log; else fail clt_report_resumed_log "superseded rows kept"; fi

# default output name, stdout, errors
"$FIT" report "$TMP/clt/metrics.jsonl" 2>/dev/null && [ -s "$TMP/clt/metrics.html" ] \
  && "$FIT" report "$TMP/clt/metrics.jsonl" -o - | grep -q "</html>" && ok clt_report_outputs || fail clt_report_outputs "metrics.html / stdout"
printf '{"step": 1, "loss": 2}\nnot json\n' >"$TMP/bad.jsonl"
expect_error clt_report_bad_line "bad.jsonl:2: not a JSON object" "$FIT" report "$TMP/bad.jsonl" -o "$TMP/x.html"
printf '{"loss": 2}\n' >"$TMP/nostep.jsonl"
expect_error clt_report_no_step "no \"step\"" "$FIT" report "$TMP/nostep.jsonl" -o "$TMP/x.html"
: >"$TMP/empty.jsonl"
expect_error clt_report_empty "no metrics rows" "$FIT" report "$TMP/empty.jsonl" -o "$TMP/x.html"
expect_error clt_report_missing "nope.jsonl: cannot open" "$FIT" report "$TMP/nope.jsonl"
[ ! -e "$TMP/x.html" ] && ok clt_report_nothing_on_error || fail clt_report_nothing_on_error "x.html written"

# --- what the report tells about a run -----------------------------------------------------------
svgq() {  # svgq HTML PYTHON-EXPR: evaluates EXPR with doc (minidom), svgs {id: svg}, text
  "$PY" - "$1" "$2" <<'PYEOF'
import sys, xml.dom.minidom
text = open(sys.argv[1], encoding="utf-8").read()
doc = xml.dom.minidom.parseString(text.encode())
svgs = {s.getAttribute("id")[6:]: s for s in doc.getElementsByTagName("svg")}
lines = lambda k: [g for g in svgs[k].getElementsByTagName("g") if g.getElementsByTagName("polyline")]
assert eval("(" + sys.argv[2] + ")"), sys.argv[2]
PYEOF
}
# dead features count from the first log row, relative to the tokens seen: thresholds no
# pre-activation reaches make every feature dead at step 10 (a ~1M-token window would say 0)
"$FIT" -o "$TMP/dead" --features 48 --batch 256 --steps 20 --theta0 1000 --log-every 10 "$TMP/a.acts" 2>/dev/null
"$PY" -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline()); assert r["dead"]==3*48 and r["dead_frac"]==1 and r["dead_window_tokens"]==2560, r' \
  "$TMP/dead/metrics.jsonl" && ok clt_report_dead_relative_to_tokens || fail clt_report_dead_relative_to_tokens "$(head -1 "$TMP/dead/metrics.jsonl")"
# run config, wall clock, hover values, held-out eval (eval.json beside the log)
"$FIT" eval "$TMP/clt" "$TMP/a.acts" -o "$TMP/clt/eval.json" 2>/dev/null
"$FIT" report "$TMP/clt/metrics.jsonl" -o "$TMP/full.html" 2>/dev/null
svgq "$TMP/full.html" '"run config (run.json)" in text and "wall clock" in text and "held-out eval (eval.json)" in text
  and all(c.getElementsByTagName("title") and "step 60" in c.getElementsByTagName("title")[0].firstChild.data
          for c in [lines("loss")[0].getElementsByTagName("circle")[-1]])
  and "<meta http-equiv=\"refresh\"" not in text' && ok clt_report_config_eval_hover || fail clt_report_config_eval_hover "see $TMP/full.html"
# BatchTopK: only the reconstruction loss, no lambda chart, one L0 line
"$FIT" -o "$TMP/btk" --features 48 --batch 256 --steps 30 --lr 3e-3 --log-every 10 --activation batchtopk --k 4 "$TMP/a.acts" 2>/dev/null
"$FIT" report "$TMP/btk/metrics.jsonl" -o "$TMP/btk.html" 2>/dev/null
svgq "$TMP/btk.html" 'len(lines("loss")) == 1 and "lambda" not in svgs and len(lines("l0")) == 1 and ">sparsity<" not in text' \
  && ok clt_report_batchtopk_draws_its_mode || fail clt_report_batchtopk_draws_its_mode "see $TMP/btk.html"
# many layers: NMSE and L0 as layer x step heatmaps with a value per cell
"$FIT" synth -o "$TMP/l12.acts" --layers 12 --d 8 --features 8 --tokens 4096 >/dev/null
"$FIT" -o "$TMP/l12" --features 8 --batch 128 --steps 20 --log-every 5 "$TMP/l12.acts" 2>/dev/null
"$FIT" report "$TMP/l12/metrics.jsonl" -o "$TMP/l12.html" 2>/dev/null
svgq "$TMP/l12.html" 'all("heatmap" in svgs[k].getAttribute("class") and not lines(k)
  and len([r for r in svgs[k].getElementsByTagName("rect") if r.getElementsByTagName("title")]) == 12 * 4 for k in ("nmse", "l0"))' \
  && ok clt_report_many_layers_heatmap || fail clt_report_many_layers_heatmap "see $TMP/l12.html"
# several runs overlaid: one line per run, the settings side by side with the differences marked
"$FIT" report "$TMP/clt/metrics.jsonl" "$TMP/btk/metrics.jsonl" -o "$TMP/two.html" 2>/dev/null
svgq "$TMP/two.html" 'all(len(lines(k)) == 2 for k in ("loss", "nmse", "l0", "lr")) and ">clt<" in text and ">btk<" in text
  and "class=\"diff\"><th>activation" in text' && ok clt_report_runs_overlaid || fail clt_report_runs_overlaid "see $TMP/two.html"
# --watch: while the run trains the page reloads itself; when it has finished the loop ends
"$FIT" -o "$TMP/w" --features 48 --batch 256 --steps 40 --run-steps 10 --log-every 5 "$TMP/a.acts" 2>/dev/null
"$FIT" report "$TMP/w/metrics.jsonl" -o "$TMP/w.html" --watch 1 2>/dev/null & wpid=$!
for _ in $(seq 100); do [ -s "$TMP/w.html" ] && break; sleep 0.05; done
grep -q '<meta http-equiv="refresh" content="1"/>' "$TMP/w.html" && ok clt_report_watch_refreshes || fail clt_report_watch_refreshes "no refresh"
"$FIT" -o "$TMP/w" --resume 2>/dev/null
for _ in $(seq 50); do kill -0 $wpid 2>/dev/null || break; sleep 0.1; done
if ! kill -0 $wpid 2>/dev/null && ! grep -q 'http-equiv="refresh"' "$TMP/w.html"; then ok clt_report_watch_ends
else kill $wpid 2>/dev/null; fail clt_report_watch_ends "still watching or still refreshing"; fi
# outputs go through a temporary file renamed into place, except to a device or FIFO (renaming
# over one would replace it): written in place there
mkfifo "$TMP/fifo"
for cmd in "report $TMP/clt/metrics.jsonl" "eval $TMP/clt $TMP/a.acts"; do
  timeout 20 cat "$TMP/fifo" >"$TMP/fifo.out" & cpid=$!
  timeout 20 "$FIT" $cmd -o "$TMP/fifo" 2>/dev/null; rc=$?
  wait $cpid
  if [ $rc = 0 ] && [ -p "$TMP/fifo" ] && [ -s "$TMP/fifo.out" ] && ! ls "$TMP" | grep -q 'fifo.tmp'; then ok "clt_report_fifo_in_place_${cmd%% *}"
  else fail "clt_report_fifo_in_place_${cmd%% *}" "exit $rc"; fi
done
