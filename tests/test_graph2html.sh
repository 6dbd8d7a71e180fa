#!/usr/bin/env bash
# graph2html: a graph JSON becomes one self-contained page whose packed tables decode back to the
# input graph (checked by an independent decoder here), that loads nothing from outside, and that
# refuses bad input with one error line and no page. In headless Chromium (when installed:
# scripts/setup.sh) the page's own self-test (#selftest=1) runs on a hand-made hostile graph and on
# a synthetic 5k-node / 50k-link graph: drawn, a scripted click opens the right ranked inputs, the
# URL hash round-trips, nothing from the data runs as markup, no console errors, first frame < 2 s.
# CLTKIT_SCREENSHOT_DIR=DIR keeps the screenshots the test takes.
source "$(dirname "$0")/lib.sh"
PY=$(command -v python3)
G2H=$BIN/graph2html
D=$ROOT/tests/data
HOSTILE_OPTS=(--features "$D/graph_hostile_features" --explanations "$D/graph_hostile_explanations.jsonl")

# ---- the page without a browser ----------------------------------------------------------------------
"$PY" "$ROOT/tests/make_test_graph.py" "$TMP/big.json" --nodes 5000 --links 50000 \
  --features "$TMP/feats" --explanations "$TMP/expl.jsonl"
"$G2H" "$TMP/big.json" -o "$TMP/big.html" --features "$TMP/feats" --explanations "$TMP/expl.jsonl" 2>"$TMP/big.log" \
  && ok graph2html_big_builds || fail graph2html_big_builds "$(cat "$TMP/big.log")"
"$G2H" "$D/graph_hostile.json" -o "$TMP/hostile.html" "${HOSTILE_OPTS[@]}" 2>/dev/null \
  && ok graph2html_hostile_builds || fail graph2html_hostile_builds "exit $?"
echo "  synthetic graph (5000 nodes, 50000 links): $(wc -c <"$TMP/big.json") bytes of JSON -> $(wc -c <"$TMP/big.html") bytes of HTML"

# The packed data decoded here (base64 little-endian typed arrays) equals the input graph: every
# node's kind/row/position/feature, every link's endpoints and float32 weight, sorted as documented.
check_packed() {  # graph.json page.html [features_dir explanations]
  "$PY" - "$@" <<'PYEOF'
import base64, json, math, re, struct, sys
g = json.load(open(sys.argv[1]))
page = open(sys.argv[2], encoding="utf-8").read()
scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
assert len(scripts) == 2, f"{len(scripts)} script elements"
assert 'type="application/json"' in scripts[0][0] and "nonce=" in scripts[1][0]
assert "Content-Security-Policy" in page and "default-src 'none'" in page
# nothing from outside: no src/href attributes, no URLs but the SVG namespace
assert not re.search(r"\b(src|href)\s*=", page.replace(scripts[0][1], "").replace(scripts[1][1], "")), "src/href in markup"
assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page.replace(scripts[0][1], "")), "a URL in the page"
body = scripts[0][1]
assert "<" not in body and ">" not in body and "&" not in body, "unescaped < > & in the data"
d = json.loads(body)
dec = lambda s, f: list(struct.unpack("<%d%s" % (len(base64.b64decode(s)) // 4, f), base64.b64decode(s)))
ni, nf, li, lw = dec(d["node_i32"], "i"), dec(d["node_f32"], "f"), dec(d["link_i32"], "i"), dec(d["link_f32"], "f")
N, M = len(g["nodes"]), len(g["links"])
assert d["n_nodes"] == N and len(ni) == 6 * N and len(nf) == 3 * N, "node tables"
assert d["n_links"] == M and len(li) == 2 * M and len(lw) == M, "link tables"
assert d["node_id"] == [n["node_id"] for n in g["nodes"]] and d["clerp"] == [n.get("clerp", "") for n in g["nodes"]]
kinds = {"embedding": 2, "logit": 3, "mlp reconstruction error": 1}
top = max(int(n["layer"]) + 1 for n in g["nodes"] if n["feature_type"] not in ("embedding", "logit"))
f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
for i, n in enumerate(g["nodes"]):
    k = kinds.get(n["feature_type"], 0)
    row = 0 if k == 2 else top + 1 if k == 3 else int(n["layer"]) + 1
    assert ni[6 * i: 6 * i + 3] == [k, row, n["ctx_idx"]], (i, ni[6 * i: 6 * i + 3])
    if k == 0:
        l, f, _ = map(int, n["node_id"].split("_"))
        assert ni[6 * i + 3: 6 * i + 5] == [l, f] and n["feature"] == (l + f) * (l + f + 1) // 2 + f, n
    for j, key in enumerate(["influence", "activation", "token_prob"]):
        v = n.get(key)
        assert (math.isnan(nf[3 * i + j]) if v is None else nf[3 * i + j] == f32(v)), (i, key)
idx = {n["node_id"]: i for i, n in reversed(list(enumerate(g["nodes"])))}
want = sorted((idx[l["target"]], -abs(f32(l["weight"])), idx[l["source"]], f32(l["weight"])) for l in g["links"])
got = [(li[2 * k + 1], -abs(lw[k]), li[2 * k], lw[k]) for k in range(M)]
assert sorted(got) == want, "links differ"
assert all(got[k][:2] <= got[k + 1][:2] for k in range(M - 1)), "links not sorted by target, then |weight| descending"
if len(sys.argv) > 3:
    import os
    keys = {f"{ni[6*i+3]}_{ni[6*i+4]}" for i in range(N) if ni[6 * i] == 0}
    files = {k for k in keys if os.path.exists(os.path.join(sys.argv[3], k + ".json"))}
    assert set(d["features"]) == files and files, (sorted(d["features"]), sorted(files))
    expl = {f'{o["layer"]}_{o["feature"]}' for o in map(json.loads, filter(str.strip, open(sys.argv[4])))}
    assert set(d["explanations"]) == expl & keys, sorted(d["explanations"])
PYEOF
}
check_packed "$TMP/big.json" "$TMP/big.html" "$TMP/feats" "$TMP/expl.jsonl" && ok graph2html_packed_big || fail graph2html_packed_big "decoded data differs"
check_packed "$D/graph_hostile.json" "$TMP/hostile.html" "$D/graph_hostile_features" "$D/graph_hostile_explanations.jsonl" \
  && ok graph2html_packed_hostile || fail graph2html_packed_hostile "decoded data differs"
grep -q '<title>hostile&lt;/title&gt;&lt;script&gt;' "$TMP/hostile.html" && ok graph2html_title_escaped || fail graph2html_title_escaped "title"
# a graph as circuit-tracer 0.5.0's create_graph_files wrote it (stories260K, tests/ref/make_graph2html_ct_graph.py)
"$G2H" -q "$D/graph_ct_stories.json" -o "$TMP/stories.html" && check_packed "$D/graph_ct_stories.json" "$TMP/stories.html" \
  && ok graph2html_circuit_tracer_graph || fail graph2html_circuit_tracer_graph "circuit-tracer's graph did not load"

# stdin -> stdout is the same page as file -> file; --max-examples trims the feature examples
(cd "$D" && "$G2H" -q graph_hostile.json "${HOSTILE_OPTS[@]}" -o "$TMP/fromfile.html") &&
  "$G2H" -q <"$D/graph_hostile.json" "${HOSTILE_OPTS[@]}" >"$TMP/stdout.html" && sed 's#"source":"graph_hostile.json"#"source":"stdin"#' "$TMP/fromfile.html" \
  | sed 's/nonce-g[0-9a-f]*/N/; s/nonce="g[0-9a-f]*"/N/' >"$TMP/a" && sed 's/nonce-g[0-9a-f]*/N/; s/nonce="g[0-9a-f]*"/N/' "$TMP/stdout.html" >"$TMP/b" \
  && cmp -s "$TMP/a" "$TMP/b" && ok graph2html_stdio || fail graph2html_stdio "stdin/stdout page differs"
"$G2H" -q "$D/graph_hostile.json" "${HOSTILE_OPTS[@]}" --max-examples 1 -o "$TMP/m1.html" &&
  "$PY" -c "
import json,re,sys; d=json.loads(re.search(r'<script id=\"graph-data\"[^>]*>(.*?)</script>', open(sys.argv[1]).read(), re.S).group(1))
assert [len(q['examples']) for q in d['features']['1_7']['examples_quantiles']] == [1, 1]" "$TMP/m1.html" \
  && ok graph2html_max_examples || fail graph2html_max_examples "examples not trimmed"

# circuit-tracer's frontend names feature files by the Cantor id: feature (1, 7) is 43.json
mkdir -p "$TMP/ctfeat" && cp "$D/graph_hostile_features/1_7.json" "$TMP/ctfeat/43.json"
"$G2H" "$D/graph_hostile.json" --features "$TMP/ctfeat" -o "$TMP/ctfeat.html" 2>"$TMP/ctfeat.log" &&
  grep -q "2 features (1 with files" "$TMP/ctfeat.log" && grep -q '"features":{"1_7":{' "$TMP/ctfeat.html" \
  && ok graph2html_features_cantor_names || fail graph2html_features_cantor_names "$(cat "$TMP/ctfeat.log")"

# circuit-tracer 0.5 names error nodes "0_{layer}_{pos}", which can repeat a layer-0 feature's id:
# the page is still written, the summary counts the duplicates
"$PY" - "$D/graph_hostile.json" "$TMP/dup.json" <<'PYEOF'
import json, sys
g = json.load(open(sys.argv[1]))
g["nodes"].append(dict(g["nodes"][5], feature_type="mlp reconstruction error", feature=-1))
json.dump(g, open(sys.argv[2], "w"))
PYEOF
"$G2H" "$TMP/dup.json" -o "$TMP/dup.html" 2>"$TMP/dup.log" && grep -q "1 duplicate node_ids" "$TMP/dup.log" \
  && ok graph2html_duplicate_ids || fail graph2html_duplicate_ids "$(cat "$TMP/dup.log")"

# ---- bad input: one line, non-zero, no page ---------------------------------------------------------------
bad() {  # name pattern json-edit-python
  "$PY" - "$D/graph_hostile.json" "$TMP/$1.json" "$3" <<'PYEOF'
import json, sys
g = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(g, open(sys.argv[2], "w"))
PYEOF
  expect_error "graph2html_bad_$1" "$2" "$G2H" "$TMP/$1.json" -o "$TMP/$1.html"
  [ ! -e "$TMP/$1.html" ] || fail "graph2html_bad_$1_nopage" "a page was written"
}
printf 'not json {' >"$TMP/notjson.json"
expect_error graph2html_bad_notjson "notjson.json: not JSON" "$G2H" "$TMP/notjson.json" -o "$TMP/notjson.html"
: >"$TMP/empty.json"
expect_error graph2html_bad_emptyfile "empty.json: empty input" "$G2H" "$TMP/empty.json" -o "$TMP/empty.html"
bad version "schema_version 2 is not supported" 'g["metadata"]["schema_version"] = 2'
bad nonodes "the graph is empty" 'g["nodes"] = []; g["links"] = []'
bad missingnode 'links\[3\]: target "9_9_9" is not a node' 'g["links"][3]["target"] = "9_9_9"'
bad nometa 'no "metadata" object' 'del g["metadata"]'
bad nolinks 'no "links" array' 'del g["links"]'
bad ctx "ctx_idx 7 is outside the 5 prompt tokens" 'g["nodes"][6]["ctx_idx"] = 7'
bad layer 'layer x is not a layer number' 'g["nodes"][6]["layer"] = "x"'
bad weight 'links\[0\]: "weight" is not a number' 'g["links"][0]["weight"] = "1"'
bad nodeid 'nodes\[2\]: missing "node_id"' 'del g["nodes"][2]["node_id"]'
bad tokens "prompt_tokens is not an array of strings" 'g["metadata"]["prompt_tokens"][1] = 3'
for f in notjson empty; do [ ! -e "$TMP/$f.html" ] || fail "graph2html_bad_${f}_nopage" "a page was written"; done
mkdir -p "$TMP/badfeat" && cp "$D/graph_hostile_features/1_7.json" "$TMP/badfeat/" && printf '{"examples_quantiles": 3}' >"$TMP/badfeat/0_3.json"
expect_error graph2html_bad_feature_file '0_3.json: "examples_quantiles" has the wrong type' \
  "$G2H" "$D/graph_hostile.json" --features "$TMP/badfeat" -o "$TMP/bf.html"
printf '{"layer": 1, "feature": 7}\n{"layer": "x"}\n' >"$TMP/badexpl.jsonl"
expect_error graph2html_bad_explanations 'badexpl.jsonl:2: want an object with integer "layer" and "feature"' \
  "$G2H" "$D/graph_hostile.json" --explanations "$TMP/badexpl.jsonl" -o "$TMP/be.html"
expect_error graph2html_bad_features_dir 'nowhere: not a directory' "$G2H" "$D/graph_hostile.json" --features "$TMP/nowhere" -o "$TMP/nd.html"
[ ! -e "$TMP/bf.html" ] && [ ! -e "$TMP/be.html" ] && [ ! -e "$TMP/nd.html" ] && ok graph2html_bad_nopage || fail graph2html_bad_nopage "a page was written"

# ---- in a browser -------------------------------------------------------------------------------------------
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROME" ]; then
  echo "SKIP graph2html_browser: no chromium (scripts/setup.sh installs Debian's chromium)"
  exit 0
fi
chrome() { timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --no-first-run \
  --user-data-dir="$TMP/chrome-profile" --window-size=1500,1300 "$@" 2>>"$TMP/chrome.log"; }
selftest() {  # name page
  chrome --dump-dom "file://$2#selftest=1" >"$TMP/$1.dom"
  "$PY" - "$TMP/$1.dom" "$1" <<'PYEOF'
import html, re, sys
dom, name = open(sys.argv[1], encoding="utf-8").read(), sys.argv[2]
m = re.search(r'<pre id="selftest">(.*?)</pre>', dom, re.S)
if not m:
    print(f"FAIL {name}_selftest: the page's self-test did not run"); sys.exit(0)
for line in html.unescape(m.group(1)).splitlines():
    if line.startswith(("ok ", "FAIL ")):
        status, rest = line.split(" ", 1)
        print(f"{status} {name}_{rest}")
    else:
        print("  " + line)
m = re.search(r'<pre id="selftest-export" hidden="">(.*?)</pre>', dom, re.S)
if m:
    open(sys.argv[1] + ".export.json", "w", encoding="utf-8").write(html.unescape(m.group(1)))
PYEOF
  # the page's "export subgraph JSON" is a graph graph2html reads again, with the page's state
  "$G2H" -q "$TMP/$1.dom.export.json" -o "$TMP/$1.export.html" && "$PY" - "$TMP/$1.dom.export.json" <<'PYEOF' \
    && ok "${1}_export_reloads" || fail "${1}_export_reloads" "the exported subgraph is not a valid graph"
import json, sys
g = json.load(open(sys.argv[1]))
ids = {n["node_id"] for n in g["nodes"]}
assert g["qParams"]["pinnedIds"] and set(g["qParams"]["pinnedIds"]) == ids and len(g["qParams"]["supernodes"]) == 1
assert all(l["source"] in ids and l["target"] in ids for l in g["links"])
PYEOF
}
selftest hostile "$TMP/hostile.html"
# the hostile strings are in the rendered page as text
"$PY" - "$TMP/hostile.dom" <<'PYEOF' && ok hostile_text_in_dom || fail hostile_text_in_dom "hostile strings not rendered as text"
import sys
dom = open(sys.argv[1], encoding="utf-8").read()
for s in ["&lt;img src=x onerror=\"window.__pwned=2\"&gt;", "&lt;/script&gt;&lt;script&gt;window.__pwned=1&lt;/script&gt;",
          "\\u{202e}evil\\u{202c}", "a\\u{200b}b", "&lt;svg onload=\"window.__pwned=9\"&gt; fires on \"quotes\""]:
    assert s in dom, s
PYEOF
selftest stories "$TMP/stories.html"
selftest big "$TMP/big.html"
ms=$(sed -n 's/.*first_frame_ms \([0-9.]*\)$/\1/p' "$TMP/big.dom")
# a timing on a shared machine: the better of two loads
if [ -n "$ms" ] && ! awk -v m="$ms" 'BEGIN{exit !(m < 2000)}'; then
  chrome --dump-dom "file://$TMP/big.html#selftest=1" >"$TMP/big2.dom"
  ms2=$(sed -n 's/.*first_frame_ms \([0-9.]*\)$/\1/p' "$TMP/big2.dom")
  echo "  first load ${ms} ms, second ${ms2:-?} ms"
  [ -n "$ms2" ] && ms=$(awk -v a="$ms" -v b="$ms2" 'BEGIN{print (a < b ? a : b)}')
fi
if [ -n "$ms" ] && awk -v m="$ms" 'BEGIN{exit !(m < 2000)}'; then ok "big_first_frame_under_2s ($ms ms)"
else fail big_first_frame_under_2s "first frame ${ms:-?} ms"; fi
# screenshots (looked at when the viewer changes; CLTKIT_SCREENSHOT_DIR keeps them)
shots=${CLTKIT_SCREENSHOT_DIR:-$TMP}
mkdir -p "$shots"
clicked=$("$PY" -c "
import json,collections,sys; g=json.load(open(sys.argv[1])); c=collections.Counter(l['target'] for l in g['links'])
print(max((n['node_id'] for n in g['nodes'] if n['feature_type']=='cross layer transcoder'), key=lambda i: c[i]))" "$TMP/big.json")
chrome --screenshot="$shots/graph2html_synthetic.png" "file://$TMP/big.html#clickedId=$clicked&pinnedIds=$clicked" >/dev/null
chrome --screenshot="$shots/graph2html_stories.png" "file://$TMP/stories.html#clickedId=3_41_9&pinnedIds=3_41_9,2_50_9,0_39_9" >/dev/null
for s in synthetic stories; do
  "$PY" - "$shots/graph2html_$s.png" <<'PYEOF' && ok "graph2html_screenshot_$s" || fail "graph2html_screenshot_$s" "no 1500x1300 PNG"
import struct, sys
b = open(sys.argv[1], "rb").read(32)
assert b[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", b[16:24]) == (1500, 1300)
PYEOF
done
