#!/usr/bin/env python3
"""Transformer forward-pass oracle: tiny random HF checkpoints + fp32 goldens for the C model code.

    .venv-ref/bin/python tests/ref/make_model_goldens.py [name ...]     # from the repo root
    (venv: python3 -m venv V && V/bin/pip install -r tests/ref/requirements-models.txt)

Writes, for name in llama3, llama3_bf16, gemma2, gpt2, gpt2_scaled, gpt2_untied (default: all),
tests/golden/models/<name>/:
  config.json, generation_config.json, the weights (HF save_pretrained layout, safe_serialization):
    llama3       fp32, sharded: model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json
    llama3_bf16  bf16, one model.safetensors (goldens are computed in fp32 from the bf16-rounded
                 weights: from_pretrained(dtype=float32) casts them up)
    gemma2, gpt2 fp32, one model.safetensors (tied embeddings: only the embedding is stored)
    gpt2_scaled  fp32, scale_attn_by_inverse_layer_idx + reorder_and_upcast_attn
    gpt2_untied  fp32, tie_word_embeddings false: lm_head.weight stored and different from wte
  golden.safetensors: the tensors listed in tests/golden/models/README.md (written here too).
Everything is deterministic: weights come from torch.Generator(seed) filled parameter by parameter in
sorted-name order (HF's own init is overwritten), inputs from numpy's default_rng(seed).
Goldens are computed from the checkpoint as reloaded from disk (attn_implementation="eager", fp32,
eval, no_grad, one thread). The script asserts that the hooks capture what their names say:
bitwise residual identities, layer-local manual recomputation of every captured tensor from the
checkpoint weights (norms, RoPE incl. llama3 scaling, GQA, softcapping, sliding window, MLP), HF's
output_hidden_states, and HF's per-prompt labels= loss. It fails (AssertionError) on any mismatch.
tests/ref/requirements-models.txt is written only if it does not exist yet.
"""
import json
import math
import os
import shutil
import sys

import numpy as np
import safetensors
import torch
import torch.nn.functional as F
import transformers
from safetensors.numpy import save_file
from transformers import (Gemma2Config, Gemma2ForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "models")
REQ = os.path.join(ROOT, "tests", "ref", "requirements-models.txt")
P, T, V = 3, 24, 512

LLAMA = dict(vocab_size=V, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
             intermediate_size=128, num_hidden_layers=3, rms_norm_eps=1e-5, rope_theta=500000.0,
             rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                           "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
             max_position_embeddings=64, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
             hidden_act="silu", attention_bias=False, mlp_bias=False)
GEMMA2 = dict(vocab_size=V, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
              intermediate_size=128, num_hidden_layers=4, sliding_window=8, query_pre_attn_scalar=24,
              attn_logit_softcapping=5.0, final_logit_softcapping=3.0,
              hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True, max_position_embeddings=64,
              rms_norm_eps=1e-6, rope_theta=10000.0, initializer_range=0.2,
              bos_token_id=2, eos_token_id=1, pad_token_id=0)
GPT2 = dict(vocab_size=V, n_embd=64, n_head=4, n_layer=3, n_positions=64, layer_norm_epsilon=1e-5,
            activation_function="gelu_new", tie_word_embeddings=True, bos_token_id=1, eos_token_id=1)
# GPT-2 variants whose flags change the computation: scores also divided by (layer index + 1)
# (reorder_and_upcast_attn takes HF's other eager path: the same math in fp32), and its own lm_head.
GPT2_SCALED = dict(GPT2, scale_attn_by_inverse_layer_idx=True, reorder_and_upcast_attn=True)
GPT2_UNTIED = dict(GPT2, tie_word_embeddings=False)

# name: (family, model class, config class, config kwargs, seed, weight std, save dtype, max_shard_size)
SPECS = {
    "llama3":      ("llama", LlamaForCausalLM, LlamaConfig, LLAMA, 1001, 0.15, torch.float32, "400KB"),
    "llama3_bf16": ("llama", LlamaForCausalLM, LlamaConfig, LLAMA, 2002, 0.15, torch.bfloat16, None),
    "gemma2":      ("gemma2", Gemma2ForCausalLM, Gemma2Config, GEMMA2, 3003, 0.2, torch.float32, None),
    "gpt2":        ("gpt2", GPT2LMHeadModel, GPT2Config, GPT2, 4004, 0.15, torch.float32, None),
    "gpt2_scaled": ("gpt2", GPT2LMHeadModel, GPT2Config, GPT2_SCALED, 5005, 0.15, torch.float32, None),
    "gpt2_untied": ("gpt2", GPT2LMHeadModel, GPT2Config, GPT2_UNTIED, 6006, 0.15, torch.float32, None),
}

REQUIREMENTS = """\
# Python reference for tests/ref/make_model_goldens.py (not needed by CI: the goldens are committed).
# CPU torch is enough: pip install --index-url https://download.pytorch.org/whl/cpu torch==2.9.1
torch==2.9.1
transformers==4.57.1
safetensors==0.6.2
numpy
"""


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def same(a, b, what):
    check(a.shape == b.shape and torch.equal(a, b), f"{what}: not bitwise equal "
          f"(max diff {(a - b).abs().max().item() if a.shape == b.shape else 'shape'})")


def close(a, b, what, atol=2e-5, rtol=1e-4):
    check(a.shape == b.shape, f"{what}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
    d = (a.double() - b.double()).abs().max().item()
    check(torch.allclose(a, b, atol=atol, rtol=rtol), f"{what}: max abs diff {d:g}")
    return d


def init_weights(model, fam, seed, std):
    """Every parameter random (norm weights around their identity value, biases nonzero)."""
    g = torch.Generator().manual_seed(seed)
    norm_params = set()
    for mname, mod in model.named_modules():
        if "Norm" in type(mod).__name__:
            for pname, _ in mod.named_parameters(recurse=False):
                norm_params.add(f"{mname}.{pname}")
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):  # tied lm_head appears once (embedding)
            if name in norm_params and name.endswith("weight"):
                if fam == "gemma2":   # Gemma2RMSNorm multiplies by (1 + w), w stored
                    v = torch.randn(p.shape, generator=g) * 0.4
                else:                 # Llama RMSNorm / LayerNorm multiply by w
                    v = 0.5 + torch.rand(p.shape, generator=g)
            elif name in norm_params or name.endswith("bias"):
                v = torch.randn(p.shape, generator=g) * 0.1
            else:
                v = torch.randn(p.shape, generator=g) * std
            p.copy_(v)


# ---------------------------------------------------------------- independent layer-local math

def rms(x, w, eps, gemma):
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * (1.0 + w) if gemma else w * y


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def inv_freq_ref(cfg, hd):
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    rs = getattr(cfg, "rope_scaling", None)
    if not rs:
        return inv, inv
    f, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
    out = []
    for w in inv.tolist():
        wl = 2 * math.pi / w
        if wl < old / hi:
            out.append(w)
        elif wl > old / lo:
            out.append(w / f)
        else:
            s = (old / wl - lo) / (hi - lo)
            out.append((1 - s) * w / f + s * w)
    return torch.tensor(out, dtype=torch.float32), inv


def rope(x, inv):  # x [P,H,T,hd], HF "rotate_half" layout (pairs i, i+hd/2)
    t = torch.arange(x.shape[2], dtype=torch.float32)
    fr = torch.outer(t, inv)
    emb = torch.cat([fr, fr], -1)
    cos, sin = emb.cos(), emb.sin()
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], -1)
    return x * cos + rot * sin


def attention_ref(q, k, v, scale, softcap=None, window=None):
    """q [P,H,T,d], k/v [P,KV,T,d] -> probs [P,H,T,T], out [P,T,H*d], max |pre-cap score|."""
    H, KV = q.shape[1], k.shape[1]
    k = k.repeat_interleave(H // KV, dim=1)  # head h uses kv head h // (H/KV)
    v = v.repeat_interleave(H // KV, dim=1)
    s = q @ k.transpose(-1, -2) * scale
    i = torch.arange(q.shape[2])[:, None]
    j = torch.arange(q.shape[2])[None, :]
    allowed = j <= i
    if window is not None:
        allowed = allowed & (j > i - window)
    raw_max = s.masked_fill(~allowed, 0).abs().max().item()
    if softcap is not None:
        s = torch.tanh(s / softcap) * softcap
    s = s.masked_fill(~allowed, float("-inf"))
    pr = torch.softmax(s, -1)
    o = (pr @ v).transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)
    return pr, o, raw_max


def heads(x, n):  # [P,T,n*d] -> [P,n,T,d]
    return x.view(x.shape[0], x.shape[1], n, -1).transpose(1, 2)


def verify_layer(fam, cfg, layer, l, g, cap, stats):
    """Recompute layer l's captured tensors from its weights and the captured inputs."""
    sd = {k: v.detach() for k, v in layer.state_dict().items()}
    x, mid = g[f"resid_pre.{l}"], g[f"resid_mid.{l}"]
    probs = g[f"attn_probs.{l}"]
    if fam in ("llama", "gemma2"):
        gem = fam == "gemma2"
        eps = cfg.rms_norm_eps
        H, KV, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        a = rms(x, sd["input_layernorm.weight"], eps, gem)
        q = heads(a @ sd["self_attn.q_proj.weight"].T, H)
        k = heads(a @ sd["self_attn.k_proj.weight"].T, KV)
        v = heads(a @ sd["self_attn.v_proj.weight"].T, KV)
        inv, inv0 = inv_freq_ref(cfg, hd)
        q, k = rope(q, inv), rope(k, inv)
        if gem:
            window = cfg.sliding_window if cfg.layer_types[l] == "sliding_attention" else None
            pr, o, raw = attention_ref(q, k, v, cfg.query_pre_attn_scalar ** -0.5,
                                       cfg.attn_logit_softcapping, window)
            stats["max_precap_attn_score"] = max(stats.get("max_precap_attn_score", 0), raw)
        else:
            pr, o, raw = attention_ref(q, k, v, hd ** -0.5)
        attn = o @ sd["self_attn.o_proj.weight"].T
        if gem:
            attn = rms(attn, sd["post_attention_layernorm.weight"], eps, True)
            mlp_norm = "pre_feedforward_layernorm.weight"
        else:
            mlp_norm = "post_attention_layernorm.weight"
        m_in = rms(mid, sd[mlp_norm], eps, gem)
        act = gelu_tanh if gem else F.silu
        m = (act(m_in @ sd["mlp.gate_proj.weight"].T) * (m_in @ sd["mlp.up_proj.weight"].T)) @ sd["mlp.down_proj.weight"].T
        if gem:
            m = rms(m, sd["post_feedforward_layernorm.weight"], eps, True)
    else:  # gpt2: Conv1D weights are [in, out]
        H, D = cfg.n_head, cfg.n_embd
        a = F.layer_norm(x, (D,), sd["ln_1.weight"], sd["ln_1.bias"], cfg.layer_norm_epsilon)
        qkv = a @ sd["attn.c_attn.weight"] + sd["attn.c_attn.bias"]
        q, k, v = (heads(t, H) for t in qkv.split(D, -1))
        scale = (D // H) ** -0.5 / (l + 1 if cfg.scale_attn_by_inverse_layer_idx else 1)
        pr, o, _ = attention_ref(q, k, v, scale)
        attn = o @ sd["attn.c_proj.weight"] + sd["attn.c_proj.bias"]
        m_in = F.layer_norm(mid, (D,), sd["ln_2.weight"], sd["ln_2.bias"], cfg.layer_norm_epsilon)
        hmid = gelu_tanh(m_in @ sd["mlp.c_fc.weight"] + sd["mlp.c_fc.bias"])
        m = hmid @ sd["mlp.c_proj.weight"] + sd["mlp.c_proj.bias"]
    d = [close(pr, probs, f"attn_probs.{l} vs manual"),
         close(attn, cap["attn_contrib"][l], f"attention contribution {l} vs manual"),
         close(x + attn, mid, f"resid_mid.{l} vs resid_pre + manual attention"),
         close(m_in, g[f"mlp_in.{l}"], f"mlp_in.{l} vs manual norm"),
         close(m, g[f"mlp_out.{l}"], f"mlp_out.{l} vs manual MLP")]
    stats["max_manual_diff"] = max(stats.get("max_manual_diff", 0.0), *d)


# ---------------------------------------------------------------- hooks

def module_paths(fam, model):
    if fam == "gpt2":
        base = model.transformer
        return base.h, dict(mid_norm="ln_2", mlp="mlp", attn="attn", attn_add=None), base.ln_f
    base = model.model
    if fam == "llama":
        return base.layers, dict(mid_norm="post_attention_layernorm", mlp="mlp", attn="self_attn",
                                 attn_add=None), base.norm
    return base.layers, dict(mid_norm="pre_feedforward_layernorm", mlp="post_feedforward_layernorm",
                             attn="self_attn", attn_add="post_attention_layernorm",
                             mlp_raw="mlp"), base.norm


def first(t):
    return t[0] if isinstance(t, (tuple, list)) else t


def capture(fam, model, ids):
    layers, names, final_norm = module_paths(fam, model)
    L = len(layers)
    cap = {k: [None] * L for k in ("resid_pre", "resid_mid", "mlp_in", "mlp_out", "attn_contrib",
                                   "attn_raw", "mlp_raw", "mlp_norm_in", "attn_norm_in", "layer_out")}
    cap["final"] = [None, None]
    hs = []

    def put(key, l, fn):
        return lambda m, *a: cap[key].__setitem__(l, fn(*a).detach().clone())

    for l, layer in enumerate(layers):
        mid_norm = getattr(layer, names["mid_norm"])
        hs.append(layer.register_forward_pre_hook(
            lambda m, args, kwargs, l=l: cap["resid_pre"].__setitem__(
                l, (args[0] if args else kwargs["hidden_states"]).detach().clone()), with_kwargs=True))
        hs.append(layer.register_forward_hook(put("layer_out", l, lambda i, o: first(o))))
        hs.append(mid_norm.register_forward_pre_hook(put("resid_mid", l, lambda i: i[0])))
        hs.append(mid_norm.register_forward_hook(put("mlp_in", l, lambda i, o: o)))
        hs.append(getattr(layer, names["mlp"]).register_forward_hook(put("mlp_out", l, lambda i, o: o)))
        hs.append(getattr(layer, names["attn"]).register_forward_hook(put("attn_raw", l, lambda i, o: first(o))))
        if names["attn_add"]:  # gemma2: attention contribution = post_attention_layernorm(attn_out)
            n = getattr(layer, names["attn_add"])
            hs.append(n.register_forward_pre_hook(put("attn_norm_in", l, lambda i: i[0])))
            hs.append(n.register_forward_hook(put("attn_contrib", l, lambda i, o: o)))
            hs.append(getattr(layer, names["mlp_raw"]).register_forward_hook(put("mlp_raw", l, lambda i, o: o)))
            hs.append(getattr(layer, names["mlp"]).register_forward_pre_hook(put("mlp_norm_in", l, lambda i: i[0])))
    hs.append(final_norm.register_forward_pre_hook(lambda m, i: cap["final"].__setitem__(0, i[0].detach().clone())))
    hs.append(final_norm.register_forward_hook(lambda m, i, o: cap["final"].__setitem__(1, o.detach().clone())))
    pre_logits = []
    hs.append(model.get_output_embeddings().register_forward_hook(
        lambda m, i, o: pre_logits.append(o.detach().clone())))
    try:
        out = model(input_ids=ids, output_attentions=True, output_hidden_states=True, use_cache=False)
    finally:
        for h in hs:
            h.remove()
    if fam != "gemma2":
        cap["attn_contrib"] = cap["attn_raw"]
    return out, cap, pre_logits[0]


# ---------------------------------------------------------------- per model

def make(name):
    fam, mcls, ccls, ckw, seed, std, save_dtype, shard = SPECS[name]
    d = os.path.join(OUT, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    torch.manual_seed(seed)
    cfg = ccls(**ckw)
    cfg._attn_implementation = "eager"
    model = mcls(cfg).eval()
    init_weights(model, fam, seed, std)
    kw = dict(safe_serialization=True)
    if shard:
        kw["max_shard_size"] = shard
    model.to(save_dtype).save_pretrained(d, **kw)
    files = sorted(os.listdir(d))
    if shard:
        check(files.count("model.safetensors.index.json") == 1 and
              sum(f.endswith(".safetensors") for f in files) == 2, f"{name}: expected 2 shards, got {files}")

    model = mcls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    cfg = model.config
    if fam == "gpt2":  # the flag the variant is about must survive save + reload and take effect
        lm, wte = model.get_output_embeddings().weight, model.transformer.wte.weight
        check(cfg.tie_word_embeddings == (lm.data_ptr() == wte.data_ptr()), f"{name}: tie_word_embeddings ignored")
        check(cfg.tie_word_embeddings or not torch.equal(lm, wte), f"{name}: untied lm_head equals wte")
        check(cfg.scale_attn_by_inverse_layer_idx == ckw.get("scale_attn_by_inverse_layer_idx", False),
              f"{name}: scale_attn_by_inverse_layer_idx lost")
    check(all(p.dtype == torch.float32 for p in model.parameters()), "reloaded model not fp32")
    rng = np.random.default_rng(seed)
    bos = cfg.bos_token_id
    ids_np = rng.integers(3, V, size=(P, T), dtype=np.int64)
    ids_np[:, 0] = bos
    ids = torch.from_numpy(ids_np)

    with torch.no_grad():
        out, cap, pre_logits = capture(fam, model, ids)
        L = cfg.num_hidden_layers
        g = {"input_ids": ids.to(torch.int32), "logits": out.logits.detach().clone()}
        for l in range(L):
            for k in ("resid_pre", "resid_mid", "mlp_in", "mlp_out"):
                g[f"{k}.{l}"] = cap[k][l]
            g[f"attn_probs.{l}"] = out.attentions[l].detach().clone()
        g["final_hidden"] = cap["final"][1]

        # ---- bitwise identities: the hooks sit on the tensors their names say
        if fam == "gemma2":
            emb = model.model.embed_tokens(ids) * torch.tensor(cfg.hidden_size ** 0.5, dtype=torch.float32)
        elif fam == "gpt2":
            emb = model.transformer.wte(ids) + model.transformer.wpe(torch.arange(T))[None]
        else:
            emb = model.model.embed_tokens(ids)
        same(g["resid_pre.0"], emb, "resid_pre.0 == embeddings")
        for l in range(L):
            same(g[f"resid_mid.{l}"], g[f"resid_pre.{l}"] + cap["attn_contrib"][l], f"resid_mid.{l} == resid_pre + attn")
            nxt = g[f"resid_pre.{l + 1}"] if l + 1 < L else cap["final"][0]
            same(nxt, g[f"resid_mid.{l}"] + g[f"mlp_out.{l}"], f"resid_pre.{l + 1} == resid_mid.{l} + mlp_out.{l}")
            same(cap["layer_out"][l], nxt, f"layer {l} output")
            if fam == "gemma2":
                same(cap["attn_norm_in"][l], cap["attn_raw"][l], f"post_attention_layernorm input == self_attn out {l}")
                same(cap["mlp_norm_in"][l], cap["mlp_raw"][l], f"post_feedforward_layernorm input == mlp out {l}")
            same(out.hidden_states[l], g[f"resid_pre.{l}"], f"output_hidden_states[{l}] == resid_pre.{l}")
        check(len(out.hidden_states) == L + 1, "hidden_states count")
        same(out.hidden_states[L], g["final_hidden"], "output_hidden_states[L] == final_hidden")
        close(pre_logits, g["final_hidden"] @ model.get_output_embeddings().weight.T, "lm_head(final_hidden)")
        stats = {"max_abs_logit": g["logits"].abs().max().item()}
        if fam == "gemma2":
            c = cfg.final_logit_softcapping
            same(g["logits"], torch.tanh(pre_logits / c) * c, "final softcap")
            stats["max_precap_logit"] = pre_logits.abs().max().item()
            check(stats["max_precap_logit"] > c, "final softcap does not bite")
        else:
            same(g["logits"], pre_logits, "logits == lm_head output")
        if fam in ("llama", "gemma2"):
            inv, inv0 = inv_freq_ref(cfg, cfg.head_dim)
            rot = model.model.rotary_emb
            close(rot.inv_freq, inv, "HF inv_freq vs manual", atol=0, rtol=1e-6)
            check(rot.attention_scaling == 1.0, "rope attention_scaling != 1")
            if fam == "llama":
                check(not torch.allclose(inv, inv0), "llama3 rope scaling changes nothing")
                stats["rope_scaled_pairs"] = int((inv != inv0).sum())

        # ---- attention probabilities: rows sum to 1, causal, sliding window where configured
        i = torch.arange(T)[:, None]
        j = torch.arange(T)[None, :]
        for l in range(L):
            pr = g[f"attn_probs.{l}"]
            close(pr.sum(-1), torch.ones(pr.shape[:-1]), f"attn_probs.{l} rows sum to 1", atol=1e-5)
            check((pr[..., j > i] == 0).all(), f"attn_probs.{l} not causal")
            if fam == "gemma2":
                far = pr[..., (j <= i - cfg.sliding_window)]
                if cfg.layer_types[l] == "sliding_attention":
                    check((far == 0).all(), f"layer {l} should slide")
                else:
                    check((far > 0).any(), f"layer {l} should be global")

        # ---- layer-local manual recomputation from the weights
        layers, _, _ = module_paths(fam, model)
        for l in range(L):
            verify_layer(fam, cfg, layers[l], l, g, cap, stats)
        if fam == "gemma2":
            check(stats["max_precap_attn_score"] > cfg.attn_logit_softcapping, "attn softcap does not bite")
        fn = model.model.norm if fam != "gpt2" else model.transformer.ln_f
        if fam == "gpt2":
            fh = F.layer_norm(cap["final"][0], (cfg.n_embd,), fn.weight, fn.bias, cfg.layer_norm_epsilon)
        else:
            fh = rms(cap["final"][0], fn.weight, cfg.rms_norm_eps, fam == "gemma2")
        close(fh, g["final_hidden"], "final_hidden vs manual norm")

        # ---- loss: HF labels=input_ids, one prompt at a time
        losses = []
        for p in range(P):
            o1 = model(input_ids=ids[p:p + 1], labels=ids[p:p + 1], use_cache=False)
            close(o1.logits[0], g["logits"][p], f"prompt {p} alone vs batched logits", atol=1e-5)
            ce = F.cross_entropy(g["logits"][p, :-1], ids[p, 1:])
            close(o1.loss, ce, f"loss {p}: HF vs manual CE", atol=1e-5)
            losses.append(o1.loss.item())
        g["loss"] = torch.tensor(losses, dtype=torch.float32)

    arrays = {k: v.contiguous().numpy() for k, v in g.items()}
    for k, a in arrays.items():
        check(a.dtype == (np.int32 if k == "input_ids" else np.float32), f"{k} dtype {a.dtype}")
    meta = {"generator": "tests/ref/make_model_goldens.py", "model": name, "seed": str(seed),
            "transformers": transformers.__version__, "torch": torch.__version__,
            "attn_implementation": "eager", "dtype": "float32", "weights_saved_as": str(save_dtype)}
    # one metadata key: safetensors orders several keys by a randomized hash map (non-reproducible bytes)
    save_file(arrays, os.path.join(d, "golden.safetensors"), metadata={"info": json.dumps(meta, sort_keys=True)})
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    extra = f" layer_types={cfg.layer_types}" if fam == "gemma2" else ""
    print(f"{name}: ok, {len(arrays)} tensors, dir {size / 1024:.0f} KiB, files {sorted(os.listdir(d))}{extra}")
    print(f"  stats {json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in stats.items()})}"
          f" loss {[round(x, 4) for x in losses]}")
    if fam == "gemma2":
        stats["layer_types"] = list(cfg.layer_types)
    return stats


README = """\
# Transformer forward goldens

Generated by `tests/ref/make_model_goldens.py` (run from the repo root with
`.venv-ref/bin/python tests/ref/make_model_goldens.py`; requirements in
`tests/ref/requirements-models.txt`) with transformers {tf}, torch {torch}, safetensors {st},
numpy {np}. Do not edit by hand: rerun the script (deterministic seeds; the weights are filled by a
seeded `torch.Generator` and the prompts by `numpy.random.default_rng`). CI needs none of these.

Each `<name>/` is a Hugging Face `save_pretrained` checkpoint (config.json, generation_config.json,
safetensors weights) plus `golden.safetensors`. All weights are random; every norm weight/bias and
every bias is random too (not ones/zeros) so norm and bias bugs show.

| name | class | notes |
|---|---|---|
| llama3 | LlamaForCausalLM | D=64, H=4, KV=2 (GQA), head_dim 16, ffn 128, 3 layers, V=512, eps 1e-5, rope_theta 5e5, rope_scaling llama3 (factor 8, low 1, high 4, original_max_position_embeddings 16: the scaling changes {scaled} of the 8 frequency pairs at T=24), untied, bos 1. fp32, **sharded**: 2 files + model.safetensors.index.json |
| llama3_bf16 | LlamaForCausalLM | same architecture, other seed, weights stored **bf16** (one file); goldens computed in fp32 from the bf16-rounded weights |
| gemma2 | Gemma2ForCausalLM | D=64, H=4, KV=2, head_dim 32 (!= D/H), ffn 128, 4 layers, V=512, sliding_window 8, query_pre_attn_scalar 24, attn_logit_softcapping 5, final_logit_softcapping 3, gelu_pytorch_tanh, tied, bos 2 |
| gpt2 | GPT2LMHeadModel | n_embd 64, n_head 4, n_layer 3, n_positions 64, n_inner 4*64, V=512, eps 1e-5, gelu_new, tied, bos 1 |
| gpt2_scaled | GPT2LMHeadModel | as gpt2 (other seed) with `scale_attn_by_inverse_layer_idx` (layer l's scores also divided by l+1) and `reorder_and_upcast_attn` (HF's baddbmm path: the same math in fp32) |
| gpt2_untied | GPT2LMHeadModel | as gpt2 (other seed) with `tie_word_embeddings: false`: `lm_head.weight` is stored and differs from `wte` |

Forward: `from_pretrained(dir, dtype=float32, attn_implementation="eager")`, `eval()`, `no_grad()`,
one batch of the P prompts, no attention mask / padding, positions 0..T-1, no KV cache.

## golden.safetensors (P=3 prompts, T=24 tokens, V=512, L layers, D hidden, H query heads)

| tensor | dtype, shape | meaning |
|---|---|---|
| `input_ids` | I32 [P,T] | random ids in [3,512), `input_ids[:,0]` = bos |
| `logits` | F32 [P,T,V] | model output (Gemma 2: after final softcapping `tanh(x/3)*3`) |
| `resid_pre.{{l}}` | F32 [P,T,D] | input hidden state of layer l (l=0: token embeddings; Gemma 2: embeddings * sqrt(D) computed as an fp32 scalar 8.0; GPT-2: wte + wpe) |
| `resid_mid.{{l}}` | F32 [P,T,D] | residual stream after attention, before the MLP norm: `resid_pre + attn` (Gemma 2: `resid_pre + post_attention_layernorm(attn_out)`) |
| `mlp_in.{{l}}` | F32 [P,T,D] | normalized MLP input: Llama post_attention_layernorm(resid_mid), Gemma 2 pre_feedforward_layernorm(resid_mid), GPT-2 ln_2(resid_mid) |
| `mlp_out.{{l}}` | F32 [P,T,D] | what the MLP adds to the stream: Llama/GPT-2 mlp output, Gemma 2 post_feedforward_layernorm(mlp output). `resid_pre.{{l+1}} = resid_mid.{{l}} + mlp_out.{{l}}` |
| `attn_probs.{{l}}` | F32 [P,H,T,T] | softmax attention weights (output_attentions=True), [query, key]; 0 where masked |
| `final_hidden` | F32 [P,T,D] | after the final norm (Llama/Gemma 2 `model.norm`, GPT-2 `ln_f`); equals output_hidden_states[-1] |
| `loss` | F32 [P] | per prompt: HF `model(ids[p:p+1], labels=ids[p:p+1]).loss` = mean over T-1 next-token cross-entropies (Gemma 2: on capped logits) |

safetensors metadata: one key `info`, a JSON string with model, seed and versions.

## Conventions worth knowing (transformers {tf})

- Llama RMSNorm: `w * (x * rsqrt(mean(x^2) + eps))`. Gemma 2 RMSNorm: `(1 + w) * (...)` with `w` stored
  (eps 1e-6). RoPE is HF "rotate_half" layout (dim i pairs with i + head_dim/2), positions 0..T-1.
- GQA: query head h uses kv head `h // (H/KV)`.
- Gemma 2: score scale `query_pre_attn_scalar**-0.5` (not head_dim), then `tanh(s/5)*5`, then mask,
  softmax. Sliding layers come from `config.layer_types` (written to config.json; the default is
  `sliding_attention` for even layer index i, i.e. `(i+1) % 2`): layers {layer_types}. A sliding
  layer lets query i see keys j with `i - 8 < j <= i` (8 keys including itself).
  Gemma 2 MLP: `down(gelu_tanh(gate(x)) * up(x))`; Llama: `down(silu(gate(x)) * up(x))`.
- GPT-2 linear layers are `Conv1D` with weights stored [in, out] (`y = x @ W + b`); c_attn packs
  q|k|v along the output dim. Scale `head_dim**-0.5`, times `1/(l+1)` in layer l with
  `scale_attn_by_inverse_layer_idx`.
- Tied models (gemma2, gpt2, gpt2_scaled) store only the embedding; `lm_head` = embedding matrix.

## Checks the generator asserts (fails otherwise)

Bitwise: `resid_pre.0` == embeddings; `resid_mid.{{l}}` == `resid_pre.{{l}}` + attention contribution
(HF attention module output; Gemma 2: post_attention_layernorm output whose input is the attention
output); `resid_pre.{{l+1}}` (or the final norm input) == `resid_mid.{{l}}` + `mlp_out.{{l}}` == the layer's
output; `output_hidden_states[l]` == `resid_pre.{{l}}`, `[L]` == `final_hidden`; logits == lm_head(final_hidden)
(+ softcap). Recomputed independently from the checkpoint weights, layer by layer from the captured
inputs (max abs diff {maxdiff:.1e}): attention probabilities (RoPE with the llama3 frequency formula, GQA,
scaling, softcap, sliding window), attention contribution, mlp_in, mlp_out, final_hidden. Also:
attention rows sum to 1, causal zeros, sliding layers zero beyond the window and global layers not;
per-prompt HF loss == cross-entropy of the batched logits; each prompt alone gives the batched logits.
Gemma 2 softcaps bite: max |pre-cap logit| {pcl:.2f} > 3, max |pre-cap attention score| {pca:.2f} > 5.
"""


def main():
    torch.set_num_threads(1)
    names = sys.argv[1:] or list(SPECS)
    for n in names:
        check(n in SPECS, f"unknown model {n}; choose from {list(SPECS)}")
    if not os.path.exists(REQ):
        with open(REQ, "w") as f:
            f.write(REQUIREMENTS)
        print(f"wrote {os.path.relpath(REQ, ROOT)}")
    stats = {n: make(n) for n in names}
    if set(names) == set(SPECS):
        gm = stats["gemma2"]
        with open(os.path.join(OUT, "README.md"), "w") as f:
            f.write(README.format(
                tf=transformers.__version__, torch=torch.__version__, st=safetensors.__version__,
                np=np.__version__, scaled=stats["llama3"]["rope_scaled_pairs"],
                layer_types=", ".join(f"{i}={t}" for i, t in enumerate(gm["layer_types"])),
                maxdiff=max(s["max_manual_diff"] for s in stats.values()),
                pcl=gm["max_precap_logit"], pca=gm["max_precap_attn_score"]))
        print("wrote tests/golden/models/README.md")
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"tests/golden/models total {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
