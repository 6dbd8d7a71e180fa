#!/usr/bin/env python3
"""Hugging Face `tokenizers` encode throughput on the benchmark corpus (the baseline for bin/tok).

    .venv-ref/bin/python bench/make_bench_corpus.py          # once: /tmp/cltkit-bench/corpus.jsonl
    .venv-ref/bin/python bench/tok_hf.py gpt2 llama3 gemma3 [--threads 1|all|both] [--corpus F]
        [--counts-out DIR] [--repeat N]

Each argument is a name under $CLTKIT_SHARED/tokenizers (default ../shared), or a tokenizer.json
path. Settings: encode_special_tokens=True, add_special_tokens=False. Modes, each in a fresh child
process because rayon reads its settings once, before import:
  threads=1:   RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false, a Python loop over encode();
  threads=all: RAYON_NUM_THREADS unset, TOKENIZERS_PARALLELISM=true, one encode_batch() call.
Prints one JSON line per tokenizer and mode:
  {"tokenizer", "threads", "mb_per_s", "seconds", "tokens", "bytes", "docs", "cpus"}
with mb_per_s = UTF-8 input bytes / 1e6 / best wall time of --repeat runs (corpus loading excluded),
and tokens = the total id count (compare with the C side). --counts-out DIR also writes
DIR/<tokenizer>.counts: one line per document with its id count, then a line "total N".
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("CLTKIT_SHARED") or os.path.join(ROOT, "..", "shared")


def resolve(name):
    if os.path.exists(name):
        return name
    return os.path.join(SHARED, "tokenizers", name, "tokenizer.json")


def label(name):
    if os.path.exists(name) and name.endswith(".json"):
        base = os.path.basename(name)
        return os.path.basename(os.path.dirname(os.path.abspath(name))) if base == "tokenizer.json" else base
    return name


def worker(args):
    from tokenizers import Tokenizer  # imported after the environment is set

    with open(args.corpus, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    tok = Tokenizer.from_file(resolve(args.tokenizer))
    tok.encode_special_tokens = True
    tok.encode(texts[0][:1000], add_special_tokens=False)  # warm up
    best, counts = None, None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        if args.threads == "1":
            encs = [tok.encode(t, add_special_tokens=False) for t in texts]
        else:
            encs = tok.encode_batch(texts, add_special_tokens=False)
        dt = time.perf_counter() - t0
        counts = [len(e.ids) for e in encs]
        del encs
        best = dt if best is None else min(best, dt)
    nthreads = 1 if args.threads == "1" else int(os.environ.get("RAYON_NUM_THREADS") or os.cpu_count())
    rec = {"tokenizer": label(args.tokenizer), "threads": nthreads,
           "mb_per_s": round(nbytes / 1e6 / best, 3), "seconds": round(best, 3), "tokens": sum(counts),
           "bytes": nbytes, "docs": len(texts), "cpus": os.cpu_count()}
    if args.counts_out:
        os.makedirs(args.counts_out, exist_ok=True)
        with open(os.path.join(args.counts_out, label(args.tokenizer) + ".counts"), "w") as f:
            f.write("".join(f"{c}\n" for c in counts))
            f.write(f"total {sum(counts)}\n")
    print(json.dumps(rec), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tokenizers", nargs="*", default=["gpt2", "llama3", "gemma3"])
    ap.add_argument("--corpus", default="/tmp/cltkit-bench/corpus.jsonl")
    ap.add_argument("--threads", choices=["1", "all", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--counts-out", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tokenizer", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if not os.path.exists(args.corpus):
        sys.exit(f"{args.corpus} missing: run bench/make_bench_corpus.py first")
    modes = ["1", "all"] if args.threads == "both" else [args.threads]
    rc = 0
    for name in args.tokenizers:
        totals = set()
        for mode in modes:
            env = dict(os.environ)
            if mode == "1":
                env["RAYON_NUM_THREADS"] = "1"
                env["TOKENIZERS_PARALLELISM"] = "false"
            else:
                env.pop("RAYON_NUM_THREADS", None)
                env["TOKENIZERS_PARALLELISM"] = "true"
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--tokenizer", name,
                   "--threads", mode, "--corpus", args.corpus, "--repeat", str(args.repeat)]
            if args.counts_out and mode == modes[0]:
                cmd += ["--counts-out", args.counts_out]
            p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
            sys.stdout.write(p.stdout)
            sys.stdout.flush()
            if p.returncode != 0:
                rc = 1
                continue
            totals.add(json.loads(p.stdout.strip().splitlines()[-1])["tokens"])
        if len(totals) > 1:
            print(f"error: {name}: token totals differ between modes: {sorted(totals)}", file=sys.stderr)
            rc = 1
    sys.exit(rc)


if __name__ == "__main__":
    main()
