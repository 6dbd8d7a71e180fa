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
