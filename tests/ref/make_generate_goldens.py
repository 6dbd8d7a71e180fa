#!/usr/bin/env python3
"""Text-generation oracle: greedy continuations and chat prompts from Hugging Face transformers.

    .venv-ref/bin/python tests/ref/make_generate_goldens.py [--gguf PATH] [tiny|smollm2 ...]
    (from the repo root; venv: tests/ref/requirements-generate.txt; default: both sets)

tiny    -> tests/golden/generate/tiny.json: for each tiny random checkpoint of tests/golden/models
           (llama3, llama3_bf16, gemma2, gpt2, gpt2_scaled, gpt2_untied) and a few seeded prompts,
           the greedy continuation of
           transformers' generate() (its KV cache: DynamicCache, Gemma 2's sliding-window cache),
           checked equal to a plain argmax loop without cache or EOS stop that reruns the whole
           sequence each step (so every one of the 20 steps counts). The prompts are long enough for Gemma 2's sliding
           window (8) to bite both in the prefill and while decoding.
smollm2 -> tests/golden/generate/smollm2.json: SmolLM2-135M-Instruct loaded from its GGUF
           (from_pretrained(gguf_file=..., dtype=float32): transformers dequantizes Q4_1/Q8_0 to
           fp32), for each chat case: the template text and ids of apply_chat_template(messages,
           add_generation_prompt=True), and generate(do_sample=False, max_new_tokens=20) ids (the
           model's EOS stops it, and is then the last id), plus the decoded answer. --gguf
           defaults to ~/.cache/cltkit/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
           (scripts/fetch_smollm2.sh puts it there).
Deterministic: fixed prompts and numpy default_rng seeds; greedy decoding; one thread.
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "generate")
MODELS = os.path.join(ROOT, "tests", "golden", "models")
TINY = ["llama3", "llama3_bf16", "gemma2", "gpt2", "gpt2_scaled", "gpt2_untied"]
NEW_TOKENS = 20
DEFAULT_GGUF = os.path.expanduser("~/.cache/cltkit/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
CHAT_CASES = [
    {"name": "default_system", "messages": [{"role": "user", "content": "Explain in three words: the sun"}]},
    {"name": "own_system", "messages": [
        {"role": "system", "content": "You label neurons of a language model."},
        {"role": "user", "content": "These words activate a feature: ocean, wave, tide, shore. Name the feature."}]},
]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def versions():
    return {"transformers": transformers.__version__, "torch": torch.__version__}


def greedy_no_cache(model, ids, n):
    seq = list(ids)
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([seq]), use_cache=False).logits[0, -1]
            seq.append(int(torch.argmax(logits)))
    return seq[len(ids):]


def make_tiny():
    cases = []
    for name in TINY:
        model = AutoModelForCausalLM.from_pretrained(os.path.join(MODELS, name), dtype=torch.float32,
                                                     attn_implementation="eager").eval()
        gc = transformers.GenerationConfig(max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None,
                                           pad_token_id=0, bos_token_id=model.config.bos_token_id)
        rng = np.random.default_rng(7000 + TINY.index(name))
        for length in (1, 5, 13):
            ids = [model.config.bos_token_id] + [int(x) for x in rng.integers(3, model.config.vocab_size, length - 1)]
            with torch.no_grad():
                out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                     generation_config=gc)
            new = out[0, len(ids):].tolist()
            check(len(new) == NEW_TOKENS, f"{name}: generate gave {len(new)} tokens")
            check(new == greedy_no_cache(model, ids, NEW_TOKENS), f"{name}: cached and uncached greedy differ")
            cases.append({"model": name, "prompt_ids": ids, "greedy_ids": new})
            print(f"tiny {name} prompt {len(ids)}: {new}")
    doc = {"info": "tests/ref/make_generate_goldens.py tiny", "versions": versions(), "new_tokens": NEW_TOKENS,
           "cases": cases}
    with open(os.path.join(OUT, "tiny.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def make_smollm2(gguf):
    check(os.path.exists(gguf), f"{gguf}: not found (scripts/fetch_smollm2.sh, or pass --gguf)")
    with open(gguf, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    d, fn = os.path.dirname(os.path.abspath(gguf)), os.path.basename(gguf)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=fn)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=fn, dtype=torch.float32).eval()
    cases = []
    for case in CHAT_CASES:
        text = tok.apply_chat_template(case["messages"], tokenize=False, add_generation_prompt=True)
        ids = tok.apply_chat_template(case["messages"], tokenize=True, add_generation_prompt=True)
        check(tok(text, add_special_tokens=False)["input_ids"] == ids, "template text and ids disagree")
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=NEW_TOKENS, do_sample=False)
        new = out[0, len(ids):].tolist()
        cases.append({"name": case["name"], "messages": case["messages"], "template_text": text,
                      "template_ids": ids, "greedy_ids": new,
                      "greedy_text": tok.decode(new, skip_special_tokens=True)})
        print(f"smollm2 {case['name']}: {len(ids)} prompt ids; {new}\n  {tok.decode(new)!r}")
    doc = {"info": "tests/ref/make_generate_goldens.py smollm2", "versions": versions(),
           "gguf": fn, "gguf_sha256": sha, "chat_template": tok.chat_template,
           "eos_token_id": model.generation_config.eos_token_id, "new_tokens": NEW_TOKENS, "cases": cases}
    with open(os.path.join(OUT, "smollm2.json"), "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    args = sys.argv[1:]
    gguf = DEFAULT_GGUF
    if "--gguf" in args:
        i = args.index("--gguf")
        gguf = args[i + 1]
        del args[i:i + 2]
    which = args or ["tiny", "smollm2"]
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for w in which:
        if w == "tiny":
            make_tiny()
        elif w == "smollm2":
            make_smollm2(gguf)
        else:
            raise SystemExit(f"unknown golden set {w!r} (tiny, smollm2)")


if __name__ == "__main__":
    main()
