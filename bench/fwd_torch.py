#!/usr/bin/env python3
"""Hugging Face transformers forward throughput on CPU (the baseline for the C forward pass).

    .venv-ref/bin/python bench/make_bench_model.py       # once: /tmp/cltkit-bench/llama-mid
    .venv-ref/bin/python bench/fwd_torch.py [--model DIR] [--threads 1|all|both]
        [--attn eager|sdpa|both] [--batch 4] [--ctx 256] [--repeat 3]

Loads DIR with from_pretrained(dtype=float32, attn_implementation=ATTN), eval(), no_grad(),
use_cache=False, and runs one forward over a [batch, ctx] block of random ids (seed 0, no padding or
attention mask). For each thread count (torch.set_num_threads(N); "all" = os.cpu_count()) and
attention implementation: one warm-up forward each, then --repeat rounds alternating a plain forward
and one with output_hidden_states=True; the best wall time of each is reported (activation capture: embeddings + every layer's output).
Prints one JSON line per (threads, attn):
  {"impl": "hf-transformers", "model", "attn", "threads", "batch", "ctx", "tokens",
   "seconds", "tokens_per_s", "seconds_hidden_states", "tokens_per_s_hidden_states",
   "capture_overhead", "params", "torch", "transformers", "cpus"}
tokens = batch * ctx; tokens_per_s = tokens / best seconds; the logits ([batch, ctx, vocab]) are
computed in both timings, as the C side should too for a like-for-like comparison.
"""
import argparse
import json
import os
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def best_times(fns, repeat):
    """Warm each fn up once, then run them interleaved `repeat` times; best wall time of each."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="/tmp/cltkit-bench/llama-mid")
    ap.add_argument("--threads", default="both", choices=["1", "all", "both"])
    ap.add_argument("--attn", default="eager", choices=["eager", "sdpa", "both"])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    cpus = os.cpu_count()
    threads = {"1": [1], "all": [cpus], "both": [1, cpus] if cpus > 1 else [1]}[a.threads]
    attns = ["eager", "sdpa"] if a.attn == "both" else [a.attn]
    for attn in attns:
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32,
                                                     attn_implementation=attn).eval()
        vocab = model.config.vocab_size
        ids = torch.randint(0, vocab, (a.batch, a.ctx), generator=torch.Generator().manual_seed(0))
        params = sum(p.numel() for p in model.parameters())
        for n in threads:
            torch.set_num_threads(n)
            with torch.no_grad():
                plain, hidden = best_times(
                    [lambda: model(input_ids=ids, use_cache=False),
                     lambda: model(input_ids=ids, use_cache=False, output_hidden_states=True)], a.repeat)
            tok = a.batch * a.ctx
            print(json.dumps({
                "impl": "hf-transformers", "model": a.model, "attn": attn, "threads": n,
                "batch": a.batch, "ctx": a.ctx, "tokens": tok,
                "seconds": round(plain, 4), "tokens_per_s": round(tok / plain, 1),
                "seconds_hidden_states": round(hidden, 4),
                "tokens_per_s_hidden_states": round(tok / hidden, 1),
                "capture_overhead": round(hidden / plain - 1, 4), "params": params,
                "torch": torch.__version__, "transformers": transformers.__version__, "cpus": cpus}),
                flush=True)
        del model


if __name__ == "__main__":
    main()
