#!/usr/bin/env python3
"""The config.json keys Hugging Face transformers reads for each architecture cltkit runs.

    .venv-ref/bin/python tests/ref/list_hf_config_keys.py      # from the repo root
    (venv: python3 -m venv .venv-ref && .venv-ref/bin/pip install -r tests/ref/requirements-models.txt)

Writes tests/golden/models/hf_config_keys.json: {"transformers": version, "keys": {model_type: [key, ...]}}
for llama (LlamaConfig / LlamaForCausalLM), gemma2 and gpt2. A key is listed when any of these holds:
  - it is a parameter of the config class's __init__ (everything the class defines);
  - the modeling file reads it as `config.<key>` (branches a tiny run does not take);
  - it is read from the config object while a tiny model is built and runs a forward pass with a
    cache, labels, attentions and hidden states (the generic code's getattr probes: rope utilities,
    masks, caches);
  - save_pretrained writes it (to_diff_dict);
  - it is an alias in the class's attribute_map (GPT-2's hidden_size = n_embd ...).
Names starting with "_" (runtime settings such as _attn_implementation) and methods are left out.
tests/test_model.c checks that libcommon/model/model.c classifies every listed key as used, checked
(other values refused) or without effect (model_config_key_use), so a key a new transformers reads
cannot go unnoticed: rerun this script when the pinned transformers changes.
"""
import inspect
import json
import os
import re

import torch
import transformers
from transformers import (Gemma2Config, Gemma2ForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM, PretrainedConfig)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "models", "hf_config_keys.json")
TINY = dict(vocab_size=64, hidden_size=32, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
            intermediate_size=64)
ARCHS = [  # model_type, config class, model class, modeling module, tiny config
    ("llama", LlamaConfig, LlamaForCausalLM, "llama", TINY),
    ("gemma2", Gemma2Config, Gemma2ForCausalLM, "gemma2", dict(TINY, head_dim=16)),
    ("gpt2", GPT2Config, GPT2LMHeadModel, "gpt2", dict(vocab_size=64, n_embd=32, n_head=4, n_layer=2)),
]


def runtime_reads(ccls, mcls, kw):
    """Attribute names read from the config while building and running a tiny model."""
    seen = set()
    orig = PretrainedConfig.__getattribute__

    def spy(self, name):
        seen.add(name)
        return orig(self, name)

    cfg = ccls(**kw)
    cfg._attn_implementation = "eager"
    PretrainedConfig.__getattribute__ = spy
    try:
        model = mcls(cfg).eval()
        ids = torch.tensor([[1, 5, 7, 9, 11]])
        with torch.no_grad():
            model(input_ids=ids, labels=ids, use_cache=True, output_attentions=True, output_hidden_states=True)
    finally:
        PretrainedConfig.__getattribute__ = orig
    return {n for n in seen if not callable(getattr(cfg, n, None))}, cfg


def main():
    torch.manual_seed(0)
    base = os.path.dirname(transformers.__file__)
    keys = {}
    for mtype, ccls, mcls, mod, kw in ARCHS:
        sig = set(inspect.signature(ccls.__init__).parameters) - {"self", "kwargs"}
        with open(os.path.join(base, "models", mod, f"modeling_{mod}.py")) as f:
            static = set(re.findall(r"config\.(\w+)", f.read()))
        run, cfg = runtime_reads(ccls, mcls, kw)
        saved = set(cfg.to_diff_dict())
        alias = set(getattr(ccls, "attribute_map", {}))
        keys[mtype] = sorted(k for k in sig | static | run | saved | alias if not k.startswith("_"))
        print(f"{mtype}: {len(keys[mtype])} keys")
    with open(OUT, "w") as f:
        json.dump({"generator": "tests/ref/list_hf_config_keys.py", "transformers": transformers.__version__,
                   "keys": keys}, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
