#!/usr/bin/env python3
"""Decoder-logit oracle for feat-topk: a small random JumpReLU CLT for stories260K and, for every
feature, the top and bottom logits of its decoder through the unembedding, computed directly in
float64 with numpy (no cltkit code):

    logits(l, i) = lm_head · ( g ⊙ Σ_{k ≥ l} W_dec_l[i, k−l, :] ),   g = the final norm's weight

(circuit-tracer's feature pages; stories260K is a Llama, so g is model.norm.weight as stored and
lm_head is the tied embedding).

    bin/llama2c-convert ../shared/models/stories260K/stories260K.bin \
        --tokenizer ../shared/models/stories260K/tok512.model -o /tmp/st
    .venv-ref/bin/python tests/ref/make_feat_logits_goldens.py /tmp/st      # from the repo root
    (venv: python3 -m venv V && V/bin/pip install numpy==2.4.6 safetensors==0.8.0)

Writes tests/golden/feat/clt/ (W_enc_{l}, W_dec_{l} safetensors in formats/clt.md's layout and
config.yaml; every number from numpy.random.default_rng(0)) and tests/golden/feat/logits.json:
{"n": 12, "features": {"l:i": {"top": [[id, value], ...], "bottom": [...]}}} with the 12 highest
and 12 lowest logits (feat-topk keeps 10; the two extra resolve near-ties at the boundary).
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

L, F, N = 5, 16, 12
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "feat")
model = load_file(os.path.join(sys.argv[1], "model.safetensors"))
emb = model["model.embed_tokens.weight"].astype(np.float64)            # (V, d), tied lm_head
g = model["model.norm.weight"].astype(np.float64)                      # (d,)
d = emb.shape[1]
assert "lm_head.weight" not in model, "stories260K ties its embeddings"

rng = np.random.default_rng(0)
os.makedirs(os.path.join(root, "clt"), exist_ok=True)
golden = {"n": N, "features": {}}
for l in range(L):
    w_enc = rng.standard_normal((F, d))
    w_enc /= np.linalg.norm(w_enc, axis=1, keepdims=True)               # unit rows: h ~ |x| cos
    enc = {f"W_enc_{l}": w_enc.astype(np.float32),
           f"b_enc_{l}": (0.1 * rng.standard_normal(F)).astype(np.float32),
           f"b_dec_{l}": np.zeros(d, np.float32),
           f"threshold_{l}": rng.uniform(0.2, 1.0, F).astype(np.float32)}
    w_dec = (rng.standard_normal((F, L - l, d)) / np.sqrt(d)).astype(np.float32)
    save_file(enc, os.path.join(root, "clt", f"W_enc_{l}.safetensors"))
    save_file({f"W_dec_{l}": w_dec}, os.path.join(root, "clt", f"W_dec_{l}.safetensors"))
    for i in range(F):
        v = w_dec[i].astype(np.float64).sum(axis=0) * g                 # (d,)
        logits = emb @ v                                                 # (V,)
        order = np.argsort(-logits, kind="stable")
        top = [[int(t), float(logits[t])] for t in order[:N]]
        bottom = [[int(t), float(logits[t])] for t in order[::-1][:N]]
        golden["features"][f"{l}:{i}"] = {"top": top, "bottom": bottom}
with open(os.path.join(root, "clt", "config.yaml"), "w") as f:
    f.write("model_kind: cross_layer_transcoder\nmodel_name: stories260K\n"
            "feature_input_hook: ln2.hook_normalized\nfeature_output_hook: hook_mlp_out\n"
            f"activation: jumprelu\nn_layers: {L}\nd_model: {d}\nd_transcoder: {F}\n")
with open(os.path.join(root, "logits.json"), "w") as f:
    json.dump(golden, f, indent=0)
print(f"wrote {root}: {L} layers x {F} features, d {d}, vocab {emb.shape[0]}")
