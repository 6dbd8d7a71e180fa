#!/usr/bin/env python3
"""Independent oracle for llama2c-convert: Hugging Face transformers runs the converted model.

    make tools && bin/llama2c-convert ../shared/models/stories260K/stories260K.bin \
        --tokenizer ../shared/models/stories260K/tok512.model -o /tmp/stories260K-hf
    .venv-ref/bin/python tests/ref/check_llama2c_hf.py /tmp/stories260K-hf     # from the repo root
    (venv: python3 -m venv V && V/bin/pip install -r tests/ref/requirements-models.txt)

Loads DIR with LlamaForCausalLM.from_pretrained(DIR, torch_dtype=torch.float32) (its own
safetensors reader, config parsing and rotate_half RoPE), decodes greedily from BOS for 200
steps, and compares the ids with llama2.c run.c's goldens
($CLTKIT_SHARED/models/stories260K/golden/greedy_ids_200.txt, column 2; default ../shared
relative to the repo root). If our q/k row permutation, the tensor mapping or config.json were
wrong, the continuation would diverge within a few tokens. Also decodes the ids with DIR's
tokenizer.json through transformers' tokenizer, and compares with greedy_text_200.txt.
Exit status 0 on a match, 1 otherwise.
"""
import os
import sys

import torch
from transformers import AutoTokenizer, LlamaForCausalLM


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_llama2c_hf.py CONVERTED_DIR")
    model_dir = sys.argv[1]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    shared = os.environ.get("CLTKIT_SHARED") or os.path.join(root, "..", "shared")
    golden_dir = os.path.join(shared, "models", "stories260K", "golden")
    gold = [int(line.split()[1]) for line in open(os.path.join(golden_dir, "greedy_ids_200.txt"))
            if line.strip() and not line.startswith("#")]
    assert len(gold) == 200, len(gold)

    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.eval()
    # A plain loop over the full prefix (no KV cache, no generate() defaults to second-guess):
    # next = argmax of the last position's logits; argmax takes the first maximum, like run.c.
    ids = [1]
    with torch.no_grad():
        for _ in range(200):
            logits = model(torch.tensor([ids])).logits[0, -1]
            ids.append(int(torch.argmax(logits)))
    got = ids[1:]
    ok = got == gold
    if ok:
        print("ok hf_greedy_200_matches_llama2c: 200/200 ids equal")
    else:
        first = next(i for i, (a, b) in enumerate(zip(got, gold)) if a != b)
        print(f"FAIL hf_greedy_200_matches_llama2c: first difference at step {first + 1}: "
              f"hf {got[first]} vs llama2.c {gold[first]}")

    tj = os.path.join(model_dir, "tokenizer.json")
    if os.path.exists(tj):
        tok = AutoTokenizer.from_pretrained(model_dir)
        text = tok.decode(got, skip_special_tokens=True)
        want = open(os.path.join(golden_dir, "greedy_text_200.txt"), encoding="utf-8").read()
        # run.c prints pieces as it goes; compare modulo the trailing newline it may add.
        if text.strip() == want.strip():
            print("ok hf_greedy_text_matches_llama2c")
        else:
            ok = False
            print(f"FAIL hf_greedy_text_matches_llama2c: {text[:80]!r} vs {want[:80]!r}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
