#!/usr/bin/env python3
"""The model hash of formats/acts.md ("model_hash"), written from the spec, standard library only.

    python3 tests/ref/model_hash.py MODEL_DIR...        # prints "<16 hex digits>  MODEL_DIR"
    python3 tests/ref/model_hash.py --golden            # rewrites tests/golden/models/model_hash.json

FNV-1a 64 over: config.json's bytes; then for each safetensors file of the model (the files named by
model.safetensors.index.json's weight_map, else model.safetensors), in byte order of their names:
the file size (u64 little-endian), the 8-byte header length and the JSON header as stored, and for
each tensor in byte order of its name: all its bytes when it has at most 16 * 64, else 16 windows of
64 bytes starting at floor(k * (nbytes - 64) / 15), k = 0..15 (the first and the last 64 bytes
included). tests/test_model.c checks libcommon/model/model.c against the committed values.
"""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "tests", "golden", "models", "model_hash.json")
WINDOWS, WINDOW = 16, 64


def fnv1a(h, data):
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def model_hash(d):
    with open(os.path.join(d, "config.json"), "rb") as f:
        h = fnv1a(1469598103934665603, f.read())
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()), key=lambda s: s.encode())
    else:
        files = ["model.safetensors"]
    for name in files:
        with open(os.path.join(d, name), "rb") as f:
            buf = f.read()
        h = fnv1a(h, struct.pack("<Q", len(buf)))
        (n_header,) = struct.unpack_from("<Q", buf, 0)
        h = fnv1a(h, buf[:8 + n_header])
        header = json.loads(buf[8:8 + n_header])
        base = 8 + n_header
        for tname in sorted((k for k in header if k != "__metadata__"), key=lambda s: s.encode()):
            b, e = header[tname]["data_offsets"]
            n = e - b
            if n <= WINDOWS * WINDOW:
                h = fnv1a(h, buf[base + b:base + e])
            else:
                for k in range(WINDOWS):
                    o = base + b + (n - WINDOW) * k // (WINDOWS - 1)
                    h = fnv1a(h, buf[o:o + WINDOW])
    return h


def main():
    if sys.argv[1:] == ["--golden"]:
        names = ["llama3", "gemma2", "gpt2"]
        out = {"generator": "tests/ref/model_hash.py",
               "hashes": {n: f"{model_hash(os.path.join(ROOT, 'tests', 'golden', 'models', n)):016x}" for n in names}}
        with open(GOLDEN, "w") as f:
            json.dump(out, f, indent=1, sort_keys=True)
            f.write("\n")
        print(json.dumps(out["hashes"]))
        return
    for d in sys.argv[1:]:
        print(f"{model_hash(d):016x}  {d}")


if __name__ == "__main__":
    main()
