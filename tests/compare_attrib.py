#!/usr/bin/env python3
"""Compare an `attrib --raw` file with a circuit-tracer golden (tests/golden/attrib/README.md).

    python3 tests/compare_attrib.py NAME GOLDEN.safetensors RAW.safetensors full|greedy

Standard library only (CI has no numpy). Prints one `ok NAME_<check>` or `FAIL NAME_<check>: why`
line per check (tests/run.sh counts them); exit status 0 even on FAIL (the lines carry it).
The raw file is formats/graph.md's: the visited rows as CSR (row_ptr, col_idx, values; feature rows
in node order, then logit rows), the node tables and masks of libcommon/attrib/attrib_graph.h, the scores in
its metadata. Tolerances: the issue's 1e-4 relative per adjacency row (relative to the row's largest
|A|, the golden's); the same 1e-4 relative to the largest magnitude for activations (per layer) and
error vectors (per layer); influences and scores are sums of normalized |A| terms (each in [0, 1]),
so 1e-4 absolute.
"""
import array
import json
import struct
import sys

DTYPES = {"F32": "f", "F64": "d", "I32": "i", "I64": "q", "U8": "B", "BOOL": "B", "I8": "b", "I16": "h",
          "U16": "H", "U32": "I", "U64": "Q"}


def read_safetensors(path):
    """-> ({name: (dtype, shape, flat array)}, metadata)"""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, t in header.items():
        a = array.array(DTYPES[t["dtype"]])
        b, e = t["data_offsets"]
        a.frombytes(raw[base + b:base + e])
        if sys.byteorder != "little":
            a.byteswap()
        out[name] = (t["dtype"], t["shape"], a)
    return out, meta


class Checker:
    def __init__(self, name):
        self.name = name
        self.failed = 0

    def result(self, what, ok, why="", show=False):
        """why says what was found: printed after FAIL, and with show also after ok (a measurement)."""
        if ok:
            print(f"ok {self.name}_{what}" + (f" ({why})" if show else ""))
        else:
            self.failed += 1
            print(f"FAIL {self.name}_{what}: {why}")
        return ok


def get(tensors, *names):
    for n in names:
        if n in tensors:
            return tensors[n]
    return None


def main():
    name, golden_path, raw_path, run = sys.argv[1:5]
    assert run in ("full", "greedy")
    G, gmeta = read_safetensors(golden_path)
    R, rmeta = read_safetensors(raw_path)
    c = Checker(f"{name}_{run}")
    pre = "" if run == "full" else "greedy_"

    def g(key):
        return G[key][2]

    def r(*keys):
        t = get(R, *keys)
        return None if t is None else t[2]

    # prompt, active features, logit targets
    c.result("tokens", list(r("tokens") or []) == list(g("tokens")), "prompt ids differ")
    act_g, act_r = list(g("active")), list(r("active") or [])
    if c.result("active_features", act_r == act_g,
                f"{len(act_r) // 3} active features vs circuit-tracer's {len(act_g) // 3}"):
        a_g, a_r = g("activation"), r("activation")
        L = int(gmeta["n_layers"])
        worst = 0.0
        for l in range(L):
            idx = [i for i in range(len(a_g)) if act_g[3 * i] == l]
            if not idx:
                continue
            scale = max(abs(a_g[i]) for i in idx)
            worst = max(worst, max(abs(a_r[i] - a_g[i]) for i in idx) / scale)
        c.result("activations", worst <= 1e-4, f"max |da| = {worst:.2e} of the layer's largest activation", True)
    lt_g, lt_r = list(g("logit_token")), list(r("logit_token") or [])
    if c.result("logit_targets", lt_r == lt_g, f"targets {lt_r} vs circuit-tracer's {lt_g}"):
        dp = max(abs(x - y) for x, y in zip(r("logit_prob"), g("logit_prob")))
        c.result("logit_probs", dp <= 1e-5, f"max |dp| = {dp:.2e}", True)
    ev = r("error_vectors")
    if c.result("error_vectors_present", ev is not None, "the raw file has no error_vectors"):
        e_g = g("error_vectors")
        L, T, d = int(gmeta["n_layers"]), int(gmeta["n_pos"]), int(gmeta["d_model"])
        worst = 0.0
        if len(ev) == len(e_g):
            for l in range(L):
                sl = slice(l * T * d, (l + 1) * T * d)
                scale = max(max(abs(x) for x in e_g[sl]), 1e-30)
                worst = max(worst, max(abs(x - y) for x, y in zip(ev[sl], e_g[sl])) / scale)
        c.result("error_vectors", len(ev) == len(e_g) and worst <= 1e-4,
                 f"{len(ev)} values vs {len(e_g)}; max |de| = {worst:.2e} of the layer's largest", True)
    if c.failed:
        return  # the node sets differ: the rows cannot be compared

    # the selected features and the rows
    n_active = len(act_g) // 3
    sel_g = list(range(n_active)) if run == "full" else list(g("greedy_selected"))
    sel_r = list(r("feat_active") or [])
    why = f"{len(sel_r)} feature rows vs circuit-tracer's {len(sel_g)}"
    if sel_r != sel_g and len(sel_r) == len(sel_g):
        why += f" (first difference at row {next(i for i in range(len(sel_g)) if sel_r[i] != sel_g[i])})"
    if not c.result("selected_features", sel_r == sel_g, why):
        return
    adj = G[pre + "adj"]
    n_rows, n_nodes = adj[1]
    A = adj[2]
    row_ptr, col_idx, vals = r("row_ptr"), r("col_idx"), r("values")
    if not c.result("rows_present", None not in (row_ptr, col_idx, vals) and len(row_ptr) == n_rows + 1,
                    f"the raw file's CSR (row_ptr, col_idx, values) is missing or has {len(row_ptr or []) - 1} "
                    f"rows, want {n_rows}"):
        return
    worst, worst_row = 0.0, -1
    for i in range(n_rows):
        dense = [0.0] * n_nodes
        for k in range(row_ptr[i], row_ptr[i + 1]):
            dense[col_idx[k]] = vals[k]
        ref = A[i * n_nodes:(i + 1) * n_nodes]
        scale = max(abs(x) for x in ref)
        diff = max(abs(x - y) for x, y in zip(dense, ref))
        rel = diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))
        if rel > worst:
            worst, worst_row = rel, i
    c.result("adjacency_rows", worst <= 1e-4, f"row {worst_row}: max |dA| = {worst:.2e} of the row's largest |A|",
             True)

    # pruning
    nk_g, nk_r = list(g(pre + "node_mask")), r("node_kept", "node_mask")
    if c.result("pruned_nodes", nk_r is not None and [int(x != 0) for x in nk_r] == [int(x) for x in nk_g],
                "node sets differ" if nk_r is not None else "no node_kept in the raw file"):
        ek = r("edge_kept", "edge_mask")
        if ek is not None:
            if rmeta.get("edge_kept_all") == "1":  # formats/graph.md: every entry kept (the cut was 0)
                kept_r = set(range(n_rows * n_nodes))
            elif len(ek) == n_rows * n_nodes:
                kept_r = {i for i, x in enumerate(ek) if x}
            elif len(ek) == len(vals):  # aligned with the CSR values
                kept_r = {i * n_nodes + col_idx[k] for i in range(n_rows) for k in range(row_ptr[i], row_ptr[i + 1])
                          if ek[k]}
            else:
                kept_r = None
        kept_g = set(g(pre + "edge_kept"))
        near = set(g(pre + "edge_near_cut"))
        if c.result("pruned_edges_present", ek is not None and kept_r is not None,
                    "no edge_kept in the raw file (dense over the rows or aligned with values)"):
            bad = (kept_r ^ kept_g) - near
            c.result("pruned_edges", not bad, f"{len(bad)} kept edges differ away from the edge cut "
                                              f"(of {len(kept_g)}; {len(near)} near the cut may)", True)
    for key, want in (("cumulative", g(pre + "cumulative")), ("influence", g(pre + "influence"))):
        got = r(key)
        if got is None:
            c.result(key, False, f"no {key} in the raw file")
            continue
        total = max(abs(x) for x in want) if key == "influence" else 1.0
        diff = max(abs(x - y) for x, y in zip(got, want)) / total if len(got) == len(want) else float("inf")
        c.result(key, diff <= 1e-4, f"max difference {diff:.2e}", True)
    for key in ("replacement_score", "completeness_score"):
        want = float(gmeta[pre + key])
        got = rmeta.get(key)
        c.result(key, got is not None and abs(float(got) - want) <= 1e-4, f"{got} vs circuit-tracer's {want}", True)


if __name__ == "__main__":
    main()
