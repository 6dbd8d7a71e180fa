#!/usr/bin/env python3
"""Builds the tokenizer benchmark corpus (NOT committed): JSONL, one {"text": ...} per line.

    python3 bench/make_bench_corpus.py [--out /tmp/cltkit-bench/corpus.jsonl] [--mb 40] [--seed 1]

Sources, all offline on a Debian machine: /usr/share/common-licenses/*, the distinct
/usr/share/doc/*/copyright files, GNU info manuals (/usr/share/info/*.gz), the Python stdlib .py
files (code + docstrings), the tokenizer test corpus (tests/data/tok_corpus.jsonl) and, to reach the
size, Debian changelogs (shares of the size: licenses+copyright 25%, info 20%, python 35%, changelogs the rest) (/usr/share/doc/*/changelog*.gz). Each source is cut at blank lines into
documents of 1-20 KB (seeded sizes), the documents are shuffled with the seed, and the output stops
at --mb megabytes of UTF-8 text. Files that are not valid UTF-8 are skipped. Deterministic for a
given machine (the set of installed packages decides the text), stdlib only.
"""
import argparse
import glob
import gzip
import hashlib
import json
import os
import random
import sys
import sysconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_text(path):
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError):
        return None


MAX_DOC = 20480


def pieces(text):
    """Paragraphs (blank-line separated); one longer than MAX_DOC bytes is cut at line ends, and a
    line longer than that at MAX_DOC characters."""
    for p in text.split("\n\n"):
        if len(p.encode("utf-8")) <= MAX_DOC:
            yield p
            continue
        cur, n = [], 0
        for line in p.split("\n"):
            while len(line) > MAX_DOC:
                if cur:
                    yield "\n".join(cur)
                    cur, n = [], 0
                yield line[:MAX_DOC // 4]
                line = line[MAX_DOC // 4:]
            b = len(line.encode("utf-8")) + 1
            if n + b > MAX_DOC and cur:
                yield "\n".join(cur)
                cur, n = [], 0
            cur.append(line)
            n += b
        if cur:
            yield "\n".join(cur)


def chunk(texts, rng, budget):
    """Joins the paragraphs of a source's files (in order) into documents of 1-20 KB (seeded target
    sizes); stops once the source has produced `budget` bytes."""
    out, cur, cur_len, total = [], [], 0, 0
    target = rng.randint(1024, MAX_DOC)
    for text in texts:
        for p in pieces(text):
            b = len(p.encode("utf-8")) + 2
            if cur and cur_len + b > MAX_DOC:
                out.append("\n\n".join(cur))
                total += cur_len
                cur, cur_len = [], 0
                target = rng.randint(1024, MAX_DOC)
            cur.append(p)
            cur_len += b
            if cur_len >= target:
                out.append("\n\n".join(cur))
                total += cur_len
                cur, cur_len = [], 0
                target = rng.randint(1024, MAX_DOC)
            if total >= budget:
                return out
    if cur and "".join(cur).strip():
        out.append("\n\n".join(cur))
    return out


def sources():
    """(name, sorted file list) in a fixed order."""
    lic = sorted(p for p in glob.glob("/usr/share/common-licenses/*") if os.path.isfile(p))
    copy, seen = [], set()
    for p in sorted(glob.glob("/usr/share/doc/*/copyright")):
        t = read_text(p)
        if t is None:
            continue
        h = hashlib.sha1(t.encode()).digest()
        if h not in seen:
            seen.add(h)
            copy.append(p)
    info = sorted(glob.glob("/usr/share/info/*.gz"))
    stdlib_dir = sysconfig.get_paths()["stdlib"]
    py = sorted(p for p in glob.glob(os.path.join(stdlib_dir, "**", "*.py"), recursive=True)
                if "site-packages" not in p and "dist-packages" not in p)
    chlog = sorted(glob.glob("/usr/share/doc/*/changelog*.gz"))
    # (name, files, share of the size limit; the last source fills what is left)
    return [("licenses", lic + copy, 0.25), ("info", info, 0.2), ("python", py, 0.35), ("changelog", chlog, 1.0)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/cltkit-bench/corpus.jsonl")
    ap.add_argument("--mb", type=float, default=40.0, help="stop at this many MB (1e6 bytes) of text")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    limit = int(args.mb * 1e6)
    rng = random.Random(args.seed)

    docs = []
    test_corpus = os.path.join(ROOT, "tests", "data", "tok_corpus.jsonl")
    if os.path.exists(test_corpus):
        with open(test_corpus, encoding="utf-8") as f:
            docs += [json.loads(line)["text"] for line in f]
    total = sum(len(d.encode("utf-8")) for d in docs)
    stats = {"tok_corpus": (len(docs), total)}
    for name, files, share in sources():
        budget = min(limit - total, int(share * limit))
        if budget <= 0:
            break
        texts = (t for t in map(read_text, files) if t)
        new = chunk(texts, rng, budget)
        docs += new
        nb = sum(len(d.encode("utf-8")) for d in new)
        total += nb
        stats[name] = (len(new), nb)
    rng.shuffle(docs)
    # trim to the limit after shuffling so every source keeps its share
    out, size = [], 0
    for d in docs:
        b = len(d.encode("utf-8"))
        if size + b > limit and out:
            continue
        out.append(d)
        size += b
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for d in out:
            f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
    h = hashlib.sha256(open(args.out, "rb").read()).hexdigest()
    for k, (n, b) in stats.items():
        print(f"  source {k}: {n} docs, {b / 1e6:.2f} MB", file=sys.stderr)
    print(json.dumps({"out": args.out, "docs": len(out), "bytes": size, "sha256": h}))


if __name__ == "__main__":
    main()
