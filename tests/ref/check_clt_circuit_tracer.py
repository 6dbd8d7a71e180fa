#!/usr/bin/env python3
"""circuit-tracer loads a clt-fit checkpoint and computes the same feature activations.

    .venv-ref/bin/python tests/ref/check_clt_circuit_tracer.py MODEL_DIR   # from the repo root, after make
    (venv: python3 -m venv .venv-ref && .venv-ref/bin/pip install -r tests/ref/requirements-circuit-tracer.txt)

MODEL_DIR: a Llama model directory with tokenizer.json (e.g. stories260K through llama2c-convert;
circuit-tracer's nnsight backend maps Llama's mlp.hook_in, see formats/clt.md). In a temporary
directory the script writes one document of 63 random ids, caches its mlp_in / mlp_out with
bin/fwd-acts (BOS + 63 tokens, stored f32), trains a small CLT on them with bin/clt-fit, then:
  - our feature activations: JumpReLU(W_enc x + b_enc) from the shard's mlp_in rows and the
    checkpoint files, in numpy (the shard read with the sketch reader of formats/acts.md, which
    this script takes from the spec itself);
  - circuit-tracer's: ReplacementModel.from_pretrained(MODEL_DIR, CLT_DIR, backend="nnsight")
    .get_activations(BOS + ids), which reads config.yaml's feature_input_hook itself.
Asserts they agree to 1e-5 of the largest activation (64 float32 products: ~64 * 2^-24) with the
same active set except within that tolerance of a threshold, and that config.yaml has no local
path. Prints the measured difference. Before config.yaml said mlp.hook_in, this failed with
KeyError: 'ln2.hook_normalized'.
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.numpy import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "bin")


def acts_reader():
    """read_acts from formats/acts.md's Python sketch."""
    with open(os.path.join(ROOT, "formats", "acts.md")) as f:
        code = re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)
    ns = {}
    exec(code, ns)
    return ns["read_acts"]


def run(*args):
    subprocess.run([os.path.join(BIN, args[0]), *args[1:]], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def main():
    model_dir = os.path.abspath(sys.argv[1])
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    bos, vocab = cfg["bos_token_id"], cfg["vocab_size"]
    with tempfile.TemporaryDirectory() as t:  # absolute: circuit-tracer takes a relative CLT path for a hub id
        rng = random.Random(5)
        with open(f"{t}/doc.jsonl", "w") as f:
            f.write(json.dumps({"ids": [rng.randrange(3, vocab) for _ in range(63)]}) + "\n")
        big = [rng.randrange(3, vocab) for _ in range(20000)]
        with open(f"{t}/train.jsonl", "w") as f:
            f.write(json.dumps({"ids": big}) + "\n")
        tok = os.path.join(model_dir, "tokenizer.json")
        run("tok", "encode", "-t", tok, "--ids-field", "ids", "-o", f"{t}/doc.tok", f"{t}/doc.jsonl")
        run("tok", "encode", "-t", tok, "--ids-field", "ids", "-o", f"{t}/train.tok", f"{t}/train.jsonl")
        run("fwd-acts", "-m", model_dir, "-o", f"{t}/doc.acts", "--ctx", "64", "--zstd-level", "-1", f"{t}/doc.tok")
        run("fwd-acts", "-m", model_dir, "-o", f"{t}/train.acts", "--ctx", "64", f"{t}/train.tok")
        clt = f"{t}/clt"
        run("clt-fit", "-o", clt, "--features", "64", "--batch", "128", "--steps", "60", "--lambda", "0.01",
            "--log-every", "60", f"{t}/train.acts")
        with open(f"{clt}/config.yaml") as f:
            yaml = f.read()
        assert 'feature_input_hook: "mlp.hook_in"' in yaml and t not in yaml and model_dir not in yaml, yaml

        head, _, chunks = acts_reader()(f"{t}/doc.acts")
        ch = list(chunks)
        x = np.concatenate([c["in"] for c in ch], 1)  # (L, 63, d): positions 1..63 of BOS + ids
        ids = np.concatenate([c["token_ids"] for c in ch]).tolist()
        assert head["in_hook"] == "mlp_in" and x.shape[1] == 63
        ours, pre, thr = [], [], []
        for l in range(x.shape[0]):
            w = load_file(f"{clt}/W_enc_{l}.safetensors")
            h = x[l].astype(np.float64) @ w[f"W_enc_{l}"].T.astype(np.float64) + w[f"b_enc_{l}"]
            ours.append(np.where(h > w[f"threshold_{l}"], h, 0))
            pre.append(h)
            thr.append(np.broadcast_to(w[f"threshold_{l}"], h.shape))
        ours, pre, thr = np.stack(ours), np.stack(pre), np.stack(thr)

        from circuit_tracer import ReplacementModel
        torch.set_num_threads(2)
        model = ReplacementModel.from_pretrained(model_dir, clt, backend="nnsight", dtype=torch.float32)
        _, cache = model.get_activations(torch.tensor([[bos] + ids]))
        theirs = cache[:, 1:, :].double().numpy()  # position 0 (BOS) is zeroed by circuit-tracer

    scale = np.abs(ours).max()
    err = np.abs(theirs - ours).max() / scale
    flips = (theirs > 0) != (ours > 0)
    near = np.abs(pre - thr) <= 1e-5 * scale
    print(f"features active: ours {(ours > 0).sum()}, circuit-tracer {(theirs > 0).sum()}; "
          f"max |difference| / max activation {err:.2e}; active-set differences {flips.sum()} "
          f"({(flips & ~near).sum()} away from a threshold)")
    assert (ours > 0).sum() > 0, "no active feature: nothing compared"
    assert err < 1e-5 and not (flips & ~near).any(), "circuit-tracer disagrees"
    print("ok")


if __name__ == "__main__":
    main()
