#!/usr/bin/env bash
# pipelines/smollm2.mk without running SmolLM2 (its tiny end-to-end run is in bench/RESULTS.md; the
# real one takes hours): the offline corpus (pipelines/pystdlib_corpus.py) is JSONL the tokenizer
# reads, the same bytes on a second run, without the test suites; `make -n` plans the fetch +
# conversion of a missing model, the corpus, and the documented CLT size (30 layers x 1024).
source "$(dirname "$0")/lib.sh"
python3 "$ROOT/pipelines/pystdlib_corpus.py" > "$TMP/c1.jsonl" 2>"$TMP/c.err"
python3 "$ROOT/pipelines/pystdlib_corpus.py" > "$TMP/c2.jsonl" 2>/dev/null
if cmp -s "$TMP/c1.jsonl" "$TMP/c2.jsonl" && python3 - "$TMP/c1.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
src = [r["source"] for r in rows]
assert len(rows) > 100 and len(set(src)) == len(src), len(rows)
assert "os.py" in src and all(r["text"].strip() for r in rows)
assert not any(s.startswith(("test/", "idlelib/idle_test/")) or "/tests/" in s for s in src)
assert "def makedirs(" in next(r["text"] for r in rows if r["source"] == "os.py")
PYEOF
then ok "smollm2_corpus ($(cat "$TMP/c.err"))"; else fail smollm2_corpus "$(head -c 300 "$TMP/c.err")"; fi
# --kind docstrings: os.py's docstrings (os.makedirs' "Super-mkdir") without its code
python3 "$ROOT/pipelines/pystdlib_corpus.py" --kind docstrings 2>/dev/null | grep '"source": "os.py"' > "$TMP/d.jsonl"
grep -q 'Super-mkdir' "$TMP/d.jsonl" && ! grep -q 'def makedirs(' "$TMP/d.jsonl" \
  && ok smollm2_corpus_docstrings || fail smollm2_corpus_docstrings "$(head -c 200 "$TMP/d.jsonl")"
plan=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -n -f "$ROOT/pipelines/smollm2.mk" \
       MODEL_DIR="$TMP/model" OUT="$TMP/out" \
       2>&1 | sed -e ':a' -e '/\\$/N; s/\\\n *//; ta')  # one line a command
grep -q "fetch_smollm2.sh) && .*gguf-convert \"\$gguf\" -o $TMP/model" <<< "$plan" \
  && grep -q "pystdlib_corpus.py --kind source > $TMP/out/corpus-source.jsonl.tmp" <<< "$plan" \
  && grep -q -- "clt-fit -o $TMP/out/clt --features 1024 --batch 1024 --steps 300 " <<< "$plan" \
  && grep -q -- "--dtype int8 --layers all --in mlp_in --max-tokens 50000" <<< "$plan" \
  && [ "$(grep -c 'attrib -m' <<< "$plan")" -eq "$(ls "$ROOT"/pipelines/prompts/circuits/*.txt | wc -l)" ] && grep -q -- "--explainer builtin" <<< "$plan" \
  && ok smollm2_plan || fail smollm2_plan "${plan:0:600}"
