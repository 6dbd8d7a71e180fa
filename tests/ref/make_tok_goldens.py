#!/usr/bin/env python3
"""Independent oracle for the C tokenizer: Hugging Face `tokenizers` goldens.

    .venv-ref/bin/python tests/ref/make_tok_goldens.py      # from the repo root
    (venv: python3 -m venv V && V/bin/pip install -r tests/ref/requirements-tok.txt)

Reads tests/data/tok_corpus.jsonl and writes tests/golden/tok/<name>.jsonl for name in
llama3, gemma3, gpt2 (tokenizer.json from $CLTKIT_SHARED/tokenizers/<name>/, default ../shared
relative to the repo root) and tok512 (stories260K's SentencePiece model converted by transformers,
saved as tests/golden/tok/tok512.hf-tokenizer.json). One line per corpus document, in order:

  {"i": index,
   "ids":         encode(text, add_special_tokens=False), encode_special_tokens=True
                  (special added tokens are NOT matched in the text; non-special ones still are),
   "ids_special": encode(text, add_special_tokens=False), encode_special_tokens=False (HF default),
   "ids_post":    encode(text, add_special_tokens=True),  encode_special_tokens=True (post-processor),
   "decoded":     decode(ids_special, skip_special_tokens=False),
   "decoded_skip":decode(ids_special, skip_special_tokens=True)}

It also checks HF's tok512 against llama2.c's run.c encode() goldens
(shared/models/stories260K/golden/tok512_encode_llama2c.tsv) and against SentencePiece itself on
the corpus, and prints mismatches (report only; never fails on them). Writes README.md beside the
goldens with the versions and input checksums.
"""
import hashlib
import json
import os
import sys

import sentencepiece
import tokenizers
import transformers
from tokenizers import Tokenizer
from transformers.convert_slow_tokenizer import convert_slow_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("CLTKIT_SHARED") or os.path.join(ROOT, "..", "shared")
CORPUS = os.path.join(ROOT, "tests", "data", "tok_corpus.jsonl")
OUTDIR = os.path.join(ROOT, "tests", "golden", "tok")
NAMES = ["llama3", "gemma3", "gpt2"]
TOK512_MODEL = os.path.join(SHARED, "models", "stories260K", "tok512.model")
TOK512_JSON = os.path.join(OUTDIR, "tok512.hf-tokenizer.json")
LLAMA2C_TSV = os.path.join(SHARED, "models", "stories260K", "golden", "tok512_encode_llama2c.tsv")

ESCAPE_RAW = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029", "\ufeff": "\\ufeff"}


def dumps(obj):
    s = json.dumps(obj, ensure_ascii=False)
    for k, v in ESCAPE_RAW.items():
        s = s.replace(k, v)
    return s


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def convert_tok512():
    """transformers' own slow->fast path. LlamaTokenizerFast(vocab_file=...) runs
    convert_slow_tokenizer(LlamaTokenizer(...)) (LlamaConverter) and then update_post_processor()
    (TemplateProcessing: <s> + A). add_prefix_space=True must be passed explicitly: with the default
    (None) PreTrainedTokenizerFast stores add_prefix_space=None and LlamaConverter then drops the
    Prepend("\u2581") normalizer (and the Strip decoder), i.e. no dummy prefix."""
    slow = transformers.LlamaTokenizer(vocab_file=TOK512_MODEL, legacy=True)
    plain = json.loads(convert_slow_tokenizer(slow).to_str())
    fast = transformers.LlamaTokenizerFast(vocab_file=TOK512_MODEL, legacy=True, add_prefix_space=True)
    conv = json.loads(fast.backend_tokenizer.to_str())
    for k in ("normalizer", "pre_tokenizer", "decoder", "model"):
        assert conv[k] == plain[k], f"tok512: LlamaTokenizerFast and convert_slow_tokenizer differ in {k}"
    fast.backend_tokenizer.save(TOK512_JSON, pretty=True)
    print("tok512: converted with transformers.LlamaTokenizerFast(vocab_file, legacy=True, add_prefix_space=True)"
          " (= convert_slow_tokenizer(LlamaTokenizer(legacy=True)) + update_post_processor)")
    for k in ("normalizer", "pre_tokenizer", "post_processor", "decoder"):
        print(f"  {k}: {json.dumps(conv[k], ensure_ascii=False)}")
    m = conv["model"]
    print("  model:", json.dumps({k: v for k, v in m.items() if k not in ("vocab", "merges")}),
          f"vocab={len(m['vocab'])} merges={len(m['merges'])}")
    print("  added_tokens:", json.dumps(conv["added_tokens"]))
    return slow


def c_unescape(s):
    # llama2c tsv prompts use C/Python-style escapes (\t \n \xNN = code point U+00NN, \uNNNN)
    return s.encode("latin-1", "backslashreplace").decode("unicode_escape")


def check_llama2c(tok):
    if not os.path.exists(LLAMA2C_TSV):
        print(f"llama2c check: {LLAMA2C_TSV} missing, skipped")
        return
    tok.encode_special_tokens = True
    n = bad = 0
    with open(LLAMA2C_TSV, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip("\n"):
                continue
            idx, prompt, ids = line.rstrip("\n").split("\t")
            text = c_unescape(prompt)
            want = [int(x) for x in ids.split()]
            got = tok.encode(text, add_special_tokens=True).ids
            n += 1
            if got != want:
                bad += 1
                print(f"  llama2c MISMATCH #{idx} {text!r}: llama2.c={want} hf={got}")
    print(f"llama2c check: {n - bad}/{n} prompts identical (HF tok512, add_special_tokens=True)")


def check_sentencepiece(tok, texts):
    sp = sentencepiece.SentencePieceProcessor(model_file=TOK512_MODEL)
    tok.encode_special_tokens = True
    bad = []
    for i, t in enumerate(texts):
        if sp.encode(t) != tok.encode(t, add_special_tokens=False).ids:
            bad.append(i)
    print(f"sentencepiece check: HF tok512 == sentencepiece {sentencepiece.__version__} on "
          f"{len(texts) - len(bad)}/{len(texts)} corpus docs (differences expected: tok512.model has "
          f"remove_extra_whitespaces and split_digits, which the HF conversion ignores)")
    if bad:
        print(f"  differing docs: {bad[:40]}{' ...' if len(bad) > 40 else ''}")


def goldens(name, tok, texts):
    path = os.path.join(OUTDIR, f"{name}.jsonl")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for i, t in enumerate(texts):
            tok.encode_special_tokens = True
            ids = tok.encode(t, add_special_tokens=False).ids
            ids_post = tok.encode(t, add_special_tokens=True).ids
            tok.encode_special_tokens = False
            ids_special = tok.encode(t, add_special_tokens=False).ids
            rec = {"i": i, "ids": ids, "ids_special": ids_special, "ids_post": ids_post,
                   "decoded": tok.decode(ids_special, skip_special_tokens=False),
                   "decoded_skip": tok.decode(ids_special, skip_special_tokens=True)}
            f.write(dumps(rec) + "\n")
    tok.encode_special_tokens = False
    ntok = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
    print(f"{name}: wrote {path} ({os.path.getsize(path)} bytes, {ntok} ids_special tokens)")
    return path


def write_readme(inputs):
    lines = [
        "# Tokenizer goldens (Hugging Face `tokenizers` oracle)",
        "",
        "Generated, not hand-edited. Regenerate from the repo root with:",
        "",
        "    python3 tests/ref/make_tok_corpus.py                      # tests/data/tok_corpus.jsonl",
        "    .venv-ref/bin/python tests/ref/make_tok_goldens.py     # this folder",
        "",
        "(any venv made with `pip install -r tests/ref/requirements-tok.txt` will do; shared data is",
        "found at `$CLTKIT_SHARED` or `../shared`.)",
        "",
        f"Versions: tokenizers {tokenizers.__version__}, transformers {transformers.__version__}, "
        f"sentencepiece {sentencepiece.__version__}, Python {sys.version.split()[0]}.",
        "",
        "`<name>.jsonl`: one line per corpus document, in corpus order, with keys",
        "- `i`: corpus index;",
        "- `ids`: `encode(text, add_special_tokens=False)` with `encode_special_tokens=True` (special added",
        "  tokens are not matched in the text; non-special added tokens, e.g. Gemma's `<unused0>`, `\\n`,",
        "  `▁▁`, `<table>`, still are);",
        "- `ids_special`: same with `encode_special_tokens=False` (HF default: special tokens matched);",
        "- `ids_post`: `encode(text, add_special_tokens=True)`, `encode_special_tokens=True` (post-processor:",
        "  Gemma and tok512 prepend BOS; GPT-2/Llama-3 files here have a ByteLevel post-processor, no BOS);",
        "- `decoded` / `decoded_skip`: `decode(ids_special, skip_special_tokens=False / True)`.",
        "",
        "`tok512.hf-tokenizer.json`: stories260K's `tok512.model` converted by transformers",
        "(`LlamaTokenizerFast(vocab_file=..., legacy=True, add_prefix_space=True)`, i.e.",
        "`convert_slow_tokenizer(LlamaTokenizer(legacy=True))` plus the `<s>` TemplateProcessing",
        "post-processor). `tok512.jsonl` uses that file.",
        "",
        "JSON strings are UTF-8 (`ensure_ascii=False`) except U+0085, U+2028, U+2029, U+FEFF, and the",
        "control characters that JSON requires escaped (including U+0000), which appear as `\\u` escapes.",
        "",
        "Inputs (sha256):",
        "",
    ]
    for label, path in inputs:
        lines.append(f"- `{label}`: `{sha256(path)}`")
    with open(os.path.join(OUTDIR, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main():
    os.makedirs(OUTDIR, exist_ok=True)
    with open(CORPUS, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    print(f"corpus: {len(texts)} documents from {CORPUS}")
    inputs = [("tests/data/tok_corpus.jsonl", CORPUS)]

    for name in NAMES:
        p = os.path.join(SHARED, "tokenizers", name, "tokenizer.json")
        goldens(name, Tokenizer.from_file(p), texts)
        inputs.append((f"shared/tokenizers/{name}/tokenizer.json", p))

    convert_tok512()
    tok512 = Tokenizer.from_file(TOK512_JSON)
    goldens("tok512", tok512, texts)
    inputs.append(("shared/models/stories260K/tok512.model", TOK512_MODEL))
    check_llama2c(tok512)
    check_sentencepiece(tok512, texts)
    write_readme(inputs)


if __name__ == "__main__":
    main()
