#!/usr/bin/env python3
"""Random mid-size Llama checkpoint for forward-pass benchmarks (not committed).

    .venv-ref/bin/python bench/make_bench_model.py [--out /tmp/cltkit-bench/llama-mid]

LlamaForCausalLM: hidden 768, 12 heads, 4 kv heads (head_dim 64), intermediate 2048, 8 layers,
vocab 32000, untied lm_head, rope_theta 500000, rms_norm_eps 1e-5, bos 1 / eos 2; ~99.5M parameters,
fp32, written with save_pretrained (one model.safetensors, ~400 MB) in HF layout. Weights are
N(0, 0.02) from a seeded generator, norm weights U(0.5, 1.5), so runs are reproducible.
"""
import argparse
import os

import torch
from transformers import LlamaConfig, LlamaForCausalLM

CONFIG = dict(vocab_size=32000, hidden_size=768, num_attention_heads=12, num_key_value_heads=4,
              head_dim=64, intermediate_size=2048, num_hidden_layers=8, max_position_embeddings=2048,
              rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False, bos_token_id=1,
              eos_token_id=2, hidden_act="silu")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/cltkit-bench/llama-mid")
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    model = LlamaForCausalLM(LlamaConfig(**CONFIG)).eval()
    g = torch.Generator().manual_seed(a.seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(a.out, safe_serialization=True)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.out}: {n / 1e6:.1f}M parameters, files {sorted(os.listdir(a.out))}")


if __name__ == "__main__":
    main()
