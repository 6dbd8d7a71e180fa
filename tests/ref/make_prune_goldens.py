#!/usr/bin/env python3
"""Pruning oracle: circuit-tracer 0.5.0's own graph.py (prune_graph, compute_node_influence,
compute_graph_scores, compute_partial_influences) and utils/create_graph_files.py (create_nodes,
create_used_nodes_and_edges: which nodes and links the JSON holds) run on small synthetic
attribution graphs, for libcommon/attrib/attrib_graph.c (tests/test_attrib_graph.c).

    .venv-ref/bin/python tests/ref/make_prune_goldens.py        # from the repo root
    (venv: python3.11 -m venv .venv-ref && .venv-ref/bin/pip install -r tests/ref/requirements-prune.txt)

Writes tests/golden/attrib_prune/case{0..4}.safetensors (names in tests/golden/attrib_prune/README.md)
and case0.json, the graph JSON circuit-tracer writes for case 0 (node_threshold 0.8 in its metadata,
token id v decoded as "tok{v}").
Deterministic (numpy default_rng per case, one torch thread, float32 as circuit-tracer runs).

Cases (node order [features | errors (layer-major) | tokens | logits], rows = targets):
  0 "realistic": features in layers 0..L-1 at positions, edges only from earlier layers at
    positions <= the target's (errors: layers below; tokens: any earlier position), logits read
    everything; signed Gaussian weights with log-normal scales. Default thresholds 0.8 / 0.98.
  1 random DAG: a random topological order over the features, dense heavy-tailed weights, 0.5/0.9.
  2 dyadic ties: every row has 2^k non-zeros of equal |A| and the logit probabilities are powers
    of two, so every normalised entry, influence and edge score is exact in float32 and float64:
    many exactly equal scores, and the script asserts that each cut falls inside a tie group that
    extends past the cut index (the sort-based cut keeps the whole group; so must a selection).
  3 random DAG, thresholds 0.3 / 0.85 and few logits.
  4 partial influences (attribution's greedy choice): a subset of rows, row_to_node_index, the
    power iteration of compute_partial_influences.

Each case except 2 fails (AssertionError) unless the masks are robust: the same from float64
arithmetic and after a 1e-5 relative perturbation of the adjacency, so a correct float32
implementation with another summation order must reproduce them exactly. Case 2 must give
identical results in float32 and float64 (exact arithmetic).
"""
import os
import types

import numpy as np
import torch
from safetensors.numpy import save_file

from circuit_tracer.graph import (compute_graph_scores, compute_node_influence, compute_partial_influences,
                                  prune_graph)
from circuit_tracer.utils.create_graph_files import build_model, create_nodes, create_used_nodes_and_edges
from circuit_tracer.attribution.targets import LogitTarget

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "attrib_prune")
torch.set_num_threads(1)


def layout(n_feat, n_layers, n_pos, n_logits):
    n = n_feat + (n_layers + 1) * n_pos + n_logits
    return n, n_feat, n_feat + n_layers * n_pos, n_feat + (n_layers + 1) * n_pos


def make_features(rng, n_feat, n_layers, n_pos, d_feat=64):
    """(layer, pos, index) sorted like active features; layer-0 indices >= n_layers so that
    circuit-tracer 0.5.0's error ids `0_{layer}_{pos}` cannot collide with them in the goldens."""
    seen = set()
    while len(seen) < n_feat:
        layer = int(rng.integers(0, n_layers))
        pos = int(rng.integers(1, n_pos))  # BOS position 0 has no features
        idx = int(rng.integers(n_layers, d_feat))
        seen.add((layer, pos, idx))
    return np.array(sorted(seen), dtype=np.int32)


def realistic(rng, n_feat, n_layers, n_pos, n_logits, density=0.5):
    n, f_end, e_end, t_end = layout(n_feat, n_layers, n_pos, n_logits)
    feats = make_features(rng, n_feat, n_layers, n_pos)
    A = np.zeros((n, n), np.float64)
    scale = np.exp(rng.normal(0, 1.0, n))  # per-source scale: a few dominant sources

    def src_ok(t_layer, t_pos, s):  # can source s feed a target at (layer, pos)?
        if s < f_end:
            sl, sp, _ = feats[s]
            return sl < t_layer and sp <= t_pos
        if s < e_end:
            sl, sp = divmod(s - f_end, n_pos)
            return sl < t_layer and sp <= t_pos
        if s < t_end:
            return s - e_end <= t_pos
        return False

    for t in list(range(f_end)) + list(range(t_end, n)):
        tl, tp = (feats[t][0], feats[t][1]) if t < f_end else (n_layers, n_pos - 1)
        for s in range(t_end):
            if src_ok(tl, tp, s) and rng.random() < density:
                A[t, s] = rng.normal() * scale[s]
    return A, feats


def random_dag(rng, n_feat, n_layers, n_pos, n_logits, density=0.6):
    n, f_end, e_end, t_end = layout(n_feat, n_layers, n_pos, n_logits)
    feats = make_features(rng, n_feat, n_layers, n_pos)
    order = rng.permutation(n_feat)  # feature order[i] may read features order[:i]
    rank = np.empty(n_feat, int)
    rank[order] = np.arange(n_feat)
    A = np.zeros((n, n), np.float64)
    heavy = lambda: rng.standard_t(2) * np.exp(rng.normal(0, 1.5))
    for t in list(range(f_end)) + list(range(t_end, n)):
        for s in range(t_end):
            ok = s >= f_end or t >= t_end or rank[s] < rank[t]
            if ok and rng.random() < density:
                A[t, s] = heavy()
    return A, feats


def dyadic(rng, n_feat, n_layers, n_pos, n_logits):
    """Rows with 2^k equal-magnitude entries: every normalised entry is 2^-k exactly."""
    n, f_end, e_end, t_end = layout(n_feat, n_layers, n_pos, n_logits)
    feats = make_features(rng, n_feat, n_layers, n_pos)
    A = np.zeros((n, n), np.float64)
    for t in list(range(f_end)) + list(range(t_end, n)):
        cand = [s for s in range(t_end) if s >= f_end or s < t or t >= t_end]
        k = int(rng.integers(0, 4))
        while (1 << k) > len(cand):
            k -= 1
        src = rng.choice(cand, 1 << k, replace=False)
        mag = float(2.0 ** rng.integers(-2, 3))
        A[t, src] = mag * rng.choice([-1.0, 1.0], len(src))
    return A, feats


def graph_ns(A, feats, n_layers, n_pos, probs, dtype):
    n_feat = len(feats)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 500, n_pos)
    vocab = [int(v) for v in rng.choice(1000, len(probs), replace=False)]
    return types.SimpleNamespace(
        adjacency_matrix=torch.tensor(A, dtype=dtype),
        input_string="a prompt",
        input_tokens=torch.tensor(tokens),
        logit_targets=[LogitTarget(f"tok{v}", v) for v in vocab],  # token strings as TokTokenizer
        logit_probabilities=torch.tensor(probs, dtype=dtype),
        selected_features=torch.arange(n_feat),
        active_features=torch.tensor(feats, dtype=torch.long),
        activation_values=torch.tensor(np.abs(rng.normal(1, 0.5, n_feat)) + 0.01, dtype=torch.float32),
        cfg=types.SimpleNamespace(n_layers=n_layers),
        n_pos=n_pos,
    )


def run_ct(g, node_thr, edge_thr):
    """circuit-tracer's own functions; float64 graphs run with torch's default dtype float64
    (prune_graph allocates its logit weights with the default dtype)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(g.adjacency_matrix.dtype)
    try:
        n = g.adjacency_matrix.shape[0]
        w = torch.zeros(n, dtype=g.adjacency_matrix.dtype)
        w[-len(g.logit_targets):] = g.logit_probabilities
        influence = compute_node_influence(g.adjacency_matrix, w)
        node_mask, edge_mask, cumulative = prune_graph(g, node_thr, edge_thr)
        scores = compute_graph_scores(g)
    finally:
        torch.set_default_dtype(old)
    return influence, node_mask, edge_mask, cumulative, scores


class TokTokenizer:
    """Stands in for the model's tokenizer: token id v decodes to "tok{v}"."""

    def decode(self, t):
        return f"tok{int(t)}"


def json_golden(g, node_mask, edge_mask, cumulative, json_path=None):
    """Which nodes (by index) and links (target, source) create_graph_files would write; with
    json_path also the JSON itself (create_graph_files' steps without its tokenizer download)."""
    g32 = types.SimpleNamespace(**vars(g))
    g32.adjacency_matrix = g.adjacency_matrix.float()
    nodes = create_nodes(g32, node_mask, None, cumulative)
    used_nodes, used_edges = create_used_nodes_and_edges(g32, nodes, edge_mask)
    if json_path:
        g32.input_string = "a prompt"
        model = build_model(g32, used_nodes, used_edges, "case", "test-scan", 0.8, TokTokenizer())
        with open(json_path, "w") as f:
            f.write(model.model_dump_json(indent=2))
    ids = [nd.node_id for nd in nodes.values()]
    assert len(ids) == len(set(ids)), "node id collision in the golden (pick another seed)"
    index_of = {nd.node_id: i for i, nd in nodes.items()}
    node_idx = np.array([index_of[nd.node_id] for nd in used_nodes], np.int64)
    links = np.array([[index_of[e["target"]], index_of[e["source"]]] for e in used_edges], np.int64).reshape(-1, 2)
    weights = np.array([e["weight"] for e in used_edges], np.float32)
    return node_idx, links, weights


def stored_rows(A, n_feat, n_logits):
    return np.concatenate([A[:n_feat], A[A.shape[0] - n_logits:]])


def check_unstored_rows(edge_mask, n_feat, n_logits):
    mid = edge_mask[n_feat:edge_mask.shape[0] - n_logits]
    assert not mid.any() or mid.all(), "rows without inputs partly kept"
    return int(bool(mid.all()))


def cut_tie_info(scores, thr):
    s = torch.sort(scores.flatten().double(), descending=True).values
    cum = torch.cumsum(s, 0) / s.sum()
    i = min(int(torch.searchsorted(cum, thr)), len(s) - 1)
    return int((s == s[i]).sum()), int((s[i + 1:] == s[i]).sum())


def make_case(idx, kind, n_feat, n_layers, n_pos, probs, node_thr, edge_thr, seed):
    probs = np.asarray(probs, np.float64)
    for attempt in range(50):
        rng = np.random.default_rng(seed + 1000 * attempt)
        A, feats = kind(rng, n_feat, n_layers, n_pos, len(probs))
        g32 = graph_ns(A, feats, n_layers, n_pos, probs, torch.float32)
        res32 = run_ct(g32, node_thr, edge_thr)
        g64 = graph_ns(A, feats, n_layers, n_pos, probs, torch.float64)
        res64 = run_ct(g64, node_thr, edge_thr)
        same = torch.equal(res32[1], res64[1]) and torch.equal(res32[2], res64[2])
        if kind is dyadic:
            assert same and torch.equal(res32[0].double(), res64[0]), "dyadic case is not exact"
            w = torch.zeros(A.shape[0], dtype=torch.float64)
            w[-len(probs):] = torch.tensor(probs)
            node_ties = cut_tie_info(res64[0], node_thr)
            pm = torch.tensor(A).clone()
            pm[~res64[1]] = 0
            pm[:, ~res64[1]] = 0
            from circuit_tracer.graph import compute_edge_influence
            old = torch.get_default_dtype()
            torch.set_default_dtype(torch.float64)
            edge_ties = cut_tie_info(compute_edge_influence(pm, w), edge_thr)
            torch.set_default_dtype(old)
            if node_ties[1] == 0 or edge_ties[1] == 0:
                continue  # the cuts must land inside tie groups
            print(f"  case{idx}: node cut tie group {node_ties}, edge cut tie group {edge_ties}")
        else:
            if not same:
                continue
            noisy = A * (1 + 1e-5 * rng.uniform(-1, 1, A.shape))
            resn = run_ct(graph_ns(noisy, feats, n_layers, n_pos, probs, torch.float64), node_thr, edge_thr)
            if not (torch.equal(res32[1], resn[1]) and torch.equal(res32[2], resn[2])):
                continue
        break
    else:
        raise AssertionError(f"case{idx}: no robust graph in 50 attempts")
    influence, node_mask, edge_mask, cumulative, scores = res32
    json_path = os.path.join(OUT, f"case{idx}.json") if idx == 0 else None
    nodes, links, weights = json_golden(g32, node_mask, edge_mask, cumulative, json_path)
    n_logits = len(probs)
    zero_rows = check_unstored_rows(edge_mask.numpy(), n_feat, n_logits)
    t = {
        "dims": np.array([n_layers, n_pos, n_feat, n_logits], np.int32),
        "thresholds": np.array([node_thr, edge_thr], np.float64),
        "rows": stored_rows(A.astype(np.float32), n_feat, n_logits),
        "logit_prob": probs.astype(np.float32),
        "tokens": g32.input_tokens.numpy().astype(np.int32),
        "active": feats.astype(np.int32),
        "activation": g32.activation_values.numpy(),
        "logit_token": np.array([lt.vocab_idx for lt in g32.logit_targets], np.int32),
        "influence": influence.numpy().astype(np.float32),
        "node_mask": node_mask.numpy().astype(np.uint8),
        "edge_mask": stored_rows(edge_mask.numpy().astype(np.uint8), n_feat, n_logits),
        "unstored_rows_kept": np.array([zero_rows], np.uint8),
        "cumulative": cumulative.numpy().astype(np.float32),
        "scores": np.array(scores, np.float64),
        "json_nodes": nodes,
        "json_links": links,
        "json_weights": weights,
    }
    save_file(t, os.path.join(OUT, f"case{idx}.safetensors"))
    n = A.shape[0]
    print(f"case{idx}: {kind.__name__} N={n} rows={n_feat + n_logits} kept nodes {int(node_mask.sum())}/{n}, "
          f"edges {int(edge_mask.sum())}, links {len(links)}, scores {scores[0]:.4f} {scores[1]:.4f}")


def partial_case(idx, seed):
    """compute_partial_influences on a prefix of rows as attribute() calls it mid-way: logit rows
    first, then some feature rows; columns are all nodes, logits last."""
    rng = np.random.default_rng(seed)
    n_feat, n_layers, n_pos, probs = 50, 3, 6, np.array([0.6, 0.25, 0.1], np.float32)
    A, feats = random_dag(rng, n_feat, n_layers, n_pos, len(probs))
    n = A.shape[0]
    visited = np.sort(rng.choice(n_feat, 20, replace=False))
    rows_idx = np.concatenate([np.arange(n - len(probs), n), visited])
    rows = A[rows_idx].astype(np.float32)
    row_node = torch.tensor(rows_idx, dtype=torch.int32)
    infl = compute_partial_influences(torch.tensor(rows), torch.tensor(probs), row_node, device="cpu")
    torch.set_default_dtype(torch.float64)
    infl64 = compute_partial_influences(torch.tensor(rows, dtype=torch.float64), torch.tensor(probs, dtype=torch.float64),
                                        row_node, device="cpu")
    torch.set_default_dtype(torch.float32)
    assert np.allclose(infl.numpy(), infl64.numpy(), rtol=1e-4, atol=0)
    weight = np.zeros(len(rows_idx), np.float32)
    weight[:len(probs)] = probs
    save_file({"rows": rows, "row_node": rows_idx.astype(np.int64), "row_weight": weight,
               "influence": infl.numpy().astype(np.float32)}, os.path.join(OUT, f"case{idx}.safetensors"))
    print(f"case{idx}: partial influences, {len(rows_idx)} rows x {n} columns")


def main():
    os.makedirs(OUT, exist_ok=True)
    make_case(0, realistic, 60, 3, 6, [0.5, 0.3, 0.12, 0.05], 0.8, 0.98, 11)
    make_case(1, random_dag, 120, 4, 7, [0.7, 0.2, 0.06], 0.5, 0.9, 22)
    make_case(2, dyadic, 80, 3, 6, [0.5, 0.25, 0.125, 0.125], 0.8, 0.98, 33)
    make_case(3, random_dag, 90, 2, 9, [0.9, 0.05], 0.3, 0.85, 44)
    partial_case(4, 55)


if __name__ == "__main__":
    main()
