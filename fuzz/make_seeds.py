#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets that read whole files or directories (fuzz/README.md):
fuzz/corpus/{model,clt,llama2c,spm,jsonl}/. Standard library only; tiny valid inputs, so that the
fuzzer starts past the first checks. Run from the repository root: python3 fuzz/make_seeds.py"""
import json
import os
import struct


def safetensors(tensors, metadata=None):
    """tensors: [(name, shape, [floats])] as F32 -> the bytes of a .safetensors file."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, shape, vals in tensors:
        raw = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def vals(n, scale=0.1):
    return [scale * (((i * 7919) % 17) - 8) / 8 for i in range(n)]


def split_input(a, b):
    """The layout of fuzz_files.h's fuzz_split: 2-byte cut, then a, then b."""
    return struct.pack("<H", len(a)) + a + b


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def model_seeds():
    D, F, V, H, KV, HD = 4, 6, 8, 2, 1, 2
    cfg = {"model_type": "llama", "hidden_size": D, "intermediate_size": F, "num_hidden_layers": 1,
           "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": HD, "vocab_size": V,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2,
           "tie_word_embeddings": True, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
           "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}
    p = "model.layers.0."
    t = [("model.embed_tokens.weight", [V, D], vals(V * D)), (p + "input_layernorm.weight", [D], vals(D, 1)),
         (p + "self_attn.q_proj.weight", [H * HD, D], vals(H * HD * D)),
         (p + "self_attn.k_proj.weight", [KV * HD, D], vals(KV * HD * D)),
         (p + "self_attn.v_proj.weight", [KV * HD, D], vals(KV * HD * D)),
         (p + "self_attn.o_proj.weight", [D, H * HD], vals(D * H * HD)),
         (p + "mlp.gate_proj.weight", [F, D], vals(F * D)), (p + "mlp.up_proj.weight", [F, D], vals(F * D)),
         (p + "mlp.down_proj.weight", [D, F], vals(D * F)), (p + "post_attention_layernorm.weight", [D], vals(D, 1)),
         ("model.norm.weight", [D], vals(D, 1))]
    write("fuzz/corpus/model/llama_tiny", split_input(json.dumps(cfg).encode(), safetensors(t)))
    g = {"model_type": "gpt2", "n_embd": D, "n_layer": 1, "n_head": 2, "vocab_size": V, "n_positions": 8}
    gt = [("wte.weight", [V, D], vals(V * D)), ("wpe.weight", [8, D], vals(8 * D)),
          ("h.0.ln_1.weight", [D], vals(D, 1)), ("h.0.ln_1.bias", [D], vals(D)),
          ("h.0.attn.c_attn.weight", [D, 3 * D], vals(3 * D * D)), ("h.0.attn.c_attn.bias", [3 * D], vals(3 * D)),
          ("h.0.attn.c_proj.weight", [D, D], vals(D * D)), ("h.0.attn.c_proj.bias", [D], vals(D)),
          ("h.0.ln_2.weight", [D], vals(D, 1)), ("h.0.ln_2.bias", [D], vals(D)),
          ("h.0.mlp.c_fc.weight", [D, 4 * D], vals(4 * D * D)), ("h.0.mlp.c_fc.bias", [4 * D], vals(4 * D)),
          ("h.0.mlp.c_proj.weight", [4 * D, D], vals(4 * D * D)), ("h.0.mlp.c_proj.bias", [D], vals(D)),
          ("ln_f.weight", [D], vals(D, 1)), ("ln_f.bias", [D], vals(D))]
    write("fuzz/corpus/model/gpt2_tiny", split_input(json.dumps(g).encode(), safetensors(gt)))
    gem = dict(cfg, model_type="gemma2", query_pre_attn_scalar=2, attn_logit_softcapping=50.0,
               final_logit_softcapping=30.0, sliding_window=4, layer_types=["sliding_attention"])
    del gem["rope_scaling"]
    gemt = t[:-2] + [(p + "pre_feedforward_layernorm.weight", [D], vals(D, 1)),
                     (p + "post_feedforward_layernorm.weight", [D], vals(D, 1)),
                     (p + "post_attention_layernorm.weight", [D], vals(D, 1)), ("model.norm.weight", [D], vals(D, 1))]
    write("fuzz/corpus/model/gemma2_tiny", split_input(json.dumps(gem).encode(), safetensors(gemt)))


def clt_seeds():
    F, d = 4, 3
    enc = safetensors([("W_enc_0", [F, d], vals(F * d)), ("b_enc_0", [F], vals(F)), ("b_dec_0", [d], vals(d)),
                       ("threshold_0", [F], [0.1] * F)])
    dec = safetensors([("W_dec_0", [F, 1, d], vals(F * d))])
    write("fuzz/corpus/clt/one_layer", split_input(enc, dec))


def llama2c_seeds():
    dim, hidden, L, H, KV, V, T = 4, 6, 1, 2, 1, 8, 4
    hs, kvd = dim // H, dim // H * KV
    sizes = [V * dim, L * dim, L * dim * dim, L * dim * kvd, L * dim * kvd, L * dim * dim, L * dim,
             L * hidden * dim, L * dim * hidden, L * hidden * dim, dim, T * hs // 2, T * hs // 2]
    body = b"".join(struct.pack("<%df" % n, *vals(n)) for n in sizes)
    write("fuzz/corpus/llama2c/v0_shared", struct.pack("<7i", dim, hidden, L, H, KV, V, T) + body)
    write("fuzz/corpus/llama2c/v0_unshared", struct.pack("<7i", dim, hidden, L, H, KV, -V, T) + body +
          struct.pack("<%df" % (V * dim), *vals(V * dim)))


def spm_seeds():
    def varint(n):
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            if not n:
                return out + bytes([b])
            out += bytes([b | 0x80])

    def ld(num, data):
        return varint(num << 3 | 2) + varint(len(data)) + data

    def piece(s, score, typ):
        return ld(1, ld(1, s) + varint(2 << 3 | 5) + struct.pack("<f", score) + varint(3 << 3) + varint(typ))
    pieces = [(b"<unk>", 0, 2), (b"<s>", 0, 3), (b"</s>", 0, 3), (b"<0x41>", 0, 6), (b"\xe2\x96\x81", -1, 1),
              (b"a", -2, 1), (b"b", -3, 1), (b"ab", -4, 1), (b"\xe2\x96\x81a", -5, 1)]
    trainer = ld(2, varint(3 << 3) + varint(2) + varint(35 << 3) + varint(1))
    write("fuzz/corpus/spm/tiny_bpe", b"".join(piece(*p) for p in pieces) + trainer + ld(3, varint(3 << 3) + varint(1)))


def jsonl_seeds():
    write("fuzz/corpus/jsonl/text_and_ids", b'{"text": "Once upon a time", "ids": [1, 2, 3]}\n\n'
          b'{"text": "caf\\u00e9 \\u0000 nul", "ids": []}\n{"ids": [4294967295]}\n')


if __name__ == "__main__":
    model_seeds()
    clt_seeds()
    llama2c_seeds()
    spm_seeds()
    jsonl_seeds()
