#!/usr/bin/env python3
"""HF transformers side of bench/bench_generate.sh: greedy generate() on a model directory, fp32.

    python bench/generate_hf.py --model DIR --prompt TEXT --threads N [--new 64] [--repeat 3]

The prompt goes through the tokenizer's chat template (as `generate` does). Prefill = generate()
with max_new_tokens=1 (the prompt's forward + one argmax); decode = the remaining new-1 tokens
of generate(max_new_tokens=new, min_new_tokens=new) (EOS suppressed so every run makes `new`
tokens), i.e. (total - prefill). Best of --repeat for each. Prints one JSON line.
"""
import argparse
import json
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    ids = tok.apply_chat_template([{"role": "user", "content": a.prompt}], add_generation_prompt=True,
                                  return_tensors="pt")
    mask = torch.ones_like(ids)

    def run(n):
        t = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                 pad_token_id=tok.eos_token_id)
        return time.perf_counter() - t, out[0, ids.shape[1]:].tolist()

    run(4)  # warm-up
    prefill = min(run(1)[0] for _ in range(a.repeat))
    total, new_ids = min(run(a.new) for _ in range(a.repeat))
    decode = total - prefill
    print(json.dumps({"impl": "transformers " + transformers.__version__ + " / torch " + torch.__version__,
                      "threads": a.threads, "prompt_tokens": ids.shape[1], "new_tokens": len(new_ids),
                      "prefill_s": prefill, "prefill_tok_s": ids.shape[1] / prefill,
                      "decode_s": decode, "decode_tok_s": (len(new_ids) - 1) / decode, "ids": new_ids}))


if __name__ == "__main__":
    main()
