#!/usr/bin/env python3
"""An offline corpus from the running Python's own standard library, as JSONL ({"text", "source"}
a line, one module a line, sorted by path): what pipelines/smollm2.mk trains on.

    python3 pipelines/pystdlib_corpus.py [--kind source|docstrings] > corpus.jsonl

--kind source (default): each module's source file as is (code, comments and docstrings);
--kind docstrings: each module's docstrings only (module, classes, functions), English prose.
Test suites (test/, tests/, idle_test/) and site-packages are left out. The stdlib exists on any
machine with Python 3 (scripts/setup.sh installs Debian's python3), needs no network, is under
the PSF license, and is the same text for the same Python version (printed on stderr with the
corpus' size).
"""
import argparse
import ast
import json
import os
import sys
import sysconfig

SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


def docstrings(text):
    parts = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            d = ast.get_docstring(node)
            if d:
                parts.append(d)
    return "\n\n".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", choices=("source", "docstrings"), default="source")
    args = ap.parse_args()
    root = sysconfig.get_paths()["stdlib"]
    n_docs = n_chars = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                if args.kind == "docstrings":
                    text = docstrings(text)
            except (UnicodeDecodeError, SyntaxError, ValueError):
                continue  # a few files are deliberately not valid UTF-8 or Python
            if text.strip():
                print(json.dumps({"text": text, "source": os.path.relpath(path, root)}, ensure_ascii=False))
                n_docs += 1
                n_chars += len(text)
    print(f"pystdlib_corpus: Python {sys.version.split()[0]} stdlib ({root}), {args.kind}: {n_docs} modules, "
          f"{n_chars} characters", file=sys.stderr)


if __name__ == "__main__":
    main()
