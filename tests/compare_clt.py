#!/usr/bin/env python3
"""compare_clt.py A B TOL [norm]: two CLT checkpoint directories (formats/clt.md) hold the same
files with the same safetensors headers (names, shapes, offsets, metadata but the train state's
time_s) and config.yaml, and
every tensor is within TOL·max|b| (TOL 0: bitwise); with "norm", ‖a−b‖₂ ≤ TOL·‖b‖₂ per tensor.
Prints the worst tensor; exits non-zero (AssertionError) past TOL. Standard library only (CI has
no numpy). Used by tests/test_clt_mpi.sh and tests/gpu_test_clt_fit.sh."""
import array, json, os, struct, sys
a, b, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
by_norm = len(sys.argv) > 4 and sys.argv[4] == "norm"
def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        t = array.array("f"); t.frombytes(raw[8 + n + s:8 + n + e]); out[k] = t
    meta = head.get("__metadata__", {})
    meta.pop("time_s", None)  # the train state's wall-clock: differs between any two runs
    return json.dumps(head, sort_keys=True), out
files = sorted(f for f in os.listdir(a) if f.endswith(".safetensors"))
assert files == sorted(f for f in os.listdir(b) if f.endswith(".safetensors")), "different files"
assert open(f"{a}/config.yaml").read() == open(f"{b}/config.yaml").read(), "config.yaml differs"
worst = (0.0, "")
for f in files:
    ha, ta = load(f"{a}/{f}"); hb, tb = load(f"{b}/{f}")
    assert ha == hb, f"{f}: header (layout) differs"
    for k in ta:
        if by_norm:
            scale = sum(y * y for y in tb[k]) ** 0.5
            err = sum((x - y) ** 2 for x, y in zip(ta[k], tb[k])) ** 0.5
        else:
            scale = max(map(abs, tb[k]))
            err = max(abs(x - y) for x, y in zip(ta[k], tb[k]))
        rel = err / scale if scale else (0.0 if err == 0 else float("inf"))
        if rel >= worst[0]: worst = (rel, f"{f}:{k}")
print(f"max {'|a-b|2/|b|2' if by_norm else '|a-b|/max|b|'} = {worst[0]:.3g} ({worst[1]})")
assert worst[0] <= tol, f"exceeds {tol}"
