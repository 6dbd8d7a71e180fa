#!/usr/bin/env python3
"""Attribution-graph oracle: circuit-tracer itself computes the graphs that `attrib` must reproduce.

    .venv-ref/bin/python tests/ref/make_attrib_goldens.py [tiny] [stories]    # from the repo root
    (venv: python3 -m venv .venv-ref && .venv-ref/bin/pip install -r tests/ref/requirements-attrib.txt;
     `stories` also needs `make tools` and ../shared/models/stories260K, see tests/lib.sh)

circuit-tracer 0.5.0, nnsight backend, float32, CPU, one thread (bit-reproducible). Writes
tests/golden/attrib/ (layout and tensor names: tests/golden/attrib/README.md):
  tiny/model/        a random Llama in HF layout (d 48, 3 layers, 4 heads / 2 kv heads (GQA), ffn 96,
                     untied, vocab 64 with a tiny BPE tokenizer.json), from a seeded torch.Generator
  tiny/clt_mlp_in/   a random CLT (formats/clt.md, 32 features per layer) reading `mlp.hook_in`
  tiny/clt_resid_mid/ the same shapes reading `hook_resid_mid`
  tiny/golden_mlp_in.safetensors, tiny/golden_resid_mid.safetensors
  stories/clt/       a `clt-fit` CLT (64 features per layer, mlp_in: `ln2.hook_normalized` in its
                     config.yaml, given to circuit-tracer as `mlp.hook_in`, the same tensor) on
                     stories260K (../shared, converted to HF by bin/llama2c-convert; not committed)
  stories/golden.safetensors
The random CLTs' thresholds are placed per feature in a gap of its pre-activations over the
prompt (10-40% of the (position, feature) pairs fire, none within 2e-3 of its threshold), so an
engine whose activations differ from circuit-tracer's by float rounding finds the same features.

Each golden holds the full run (max_feature_nodes=None: every active feature is a node) and one
greedy run (max_feature_nodes a fraction of n_active, update_interval 4, batch_size the first of
8, 6, 5, 7, 4 whose rounds cut without ties: rows chosen by partial influence), their pruning
(prune_graph at node_threshold 0.8, edge_threshold 0.98) and graph
scores. The script checks the goldens before writing them (AssertionError otherwise):
  - row sums: with b_dec zeroed and BOS kept (zero_positions emptied), every feature row of the
    adjacency sums to h - b_enc and every logit row to the demeaned logit, within the float32
    rounding bound of the sum; this shows the rows are complete direct effects;
  - the active set is {h > theta} off BOS, with every pre-activation at least 1e-4 max(theta, 1)
    away from its threshold (the smallest distance is metadata `min_margin`);
  - the logit targets' cumulative probabilities are not within 1e-4 of desired_logit_prob;
  - the node cut of pruning is not a tie (every influence >= 1e-4 of the threshold away from it);
    edges within 1e-3 of the edge cut are listed (edge_near_cut), the test lets them differ;
  - in the greedy run every round's cut (the last chosen vs the first unchosen partial influence)
    is a gap of at least 2e-4 of the round's largest influence, so the chosen set is not a tie.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "golden", "attrib")
BIN = os.path.join(ROOT, "bin")
EPS32 = 2.0 ** -24
NODE_THRESHOLD, EDGE_THRESHOLD = 0.8, 0.98
MAX_N_LOGITS, DESIRED_LOGIT_PROB = 10, 0.95
BATCH, UPDATE_INTERVAL = 8, 4
GREEDY_BATCHES = (8, 6, 5, 7, 4)


def shared_dir():
    """As tests/lib.sh: $CLTKIT_SHARED, else ../shared, else ~/.cache/cltkit/shared."""
    if os.environ.get("CLTKIT_SHARED"):
        return os.environ["CLTKIT_SHARED"]
    if os.path.isdir(os.path.join(ROOT, "..", "shared")):
        return os.path.join(ROOT, "..", "shared")
    return os.path.join(os.environ.get("CLTKIT_CACHE", os.path.expanduser("~/.cache/cltkit")), "shared")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# ---------------------------------------------------------------------------------------------
# the tiny model: a random Llama + a BPE tokenizer.json with a 64-token vocabulary

TINY = dict(vocab_size=64, hidden_size=48, num_attention_heads=4, num_key_value_heads=2, head_dim=12,
            intermediate_size=96, num_hidden_layers=3, rms_norm_eps=1e-5, rope_theta=10000.0,
            max_position_embeddings=64, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
            hidden_act="silu", attention_bias=False, mlp_bias=False)
TINY_SEED, TINY_T, TINY_F = 1414, 10, 32


def tiny_tokenizer_json():
    """llama2c-convert's tokenizer.json layout (Prepend/Replace normalizer, BPE, Metaspace-style
    decoder) without byte fallback: specials, '▁', letters, punctuation, digits and 20 merges."""
    chars = ["▁"] + list("abcdefghijklmnopqrstuvwxyz") + list(".,!?") + list("0123456789")
    merges = [("▁", "t"), ("▁", "a"), ("t", "h"), ("h", "e"), ("i", "n"), ("e", "r"), ("a", "n"), ("r", "e"),
              ("o", "n"), ("a", "t"), ("e", "n"), ("n", "d"), ("s", "t"), ("e", "s"), ("o", "r"), ("t", "e"),
              ("o", "f"), ("e", "d"), ("i", "s"), ("i", "t")]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for t in chars + [a + b for a, b in merges]:
        vocab[t] = len(vocab)
    check(len(vocab) == TINY["vocab_size"], f"tiny vocab has {len(vocab)} tokens")
    special = lambda i, c: dict(id=i, content=c, single_word=False, lstrip=False, rstrip=False,
                                normalized=False, special=True)
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }


def make_tiny_model(out):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(**TINY)
    model = LlamaForCausalLM(cfg)
    g = torch.Generator().manual_seed(TINY_SEED)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "norm" in name:  # random around 1 so a missing norm weight shows
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))
    model.save_pretrained(out, safe_serialization=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tiny_tokenizer_json(), f, ensure_ascii=False, indent=1)
    # AutoTokenizer reads the special tokens' roles from here
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
                   "unk_token": "<unk>", "add_bos_token": True, "model_max_length": 64}, f, indent=1)


def hook_inputs(model_dir, ids, hook, final=False):
    """x_l (L, T, d) at the CLT input hook, from plain transformers (the oracle for the thresholds);
    with final, also the final-norm output (T, d) and the unembedding (V, d)."""
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    xs = []
    hooks = []
    for layer in m.model.layers:
        def grab(mod, args, out):
            xs.append((out if hook == "mlp.hook_in" else args[0])[0].detach().clone())
        hooks.append(layer.post_attention_layernorm.register_forward_hook(grab))
    with torch.no_grad():
        out = m(torch.tensor([ids]), output_hidden_states=True)
    for h in hooks:
        h.remove()
    if final:
        return torch.stack(xs), out.hidden_states[-1][0], m.lm_head.weight.detach()
    return torch.stack(xs)


def place_thresholds(h, rng, min_gap):
    """h (T, F) pre-activations off BOS -> theta (F,): per feature the midpoint of a gap between
    consecutive sorted values, at a random quantile in [0.6, 0.9], with gap >= 2 min_gap, theta > 0."""
    T, F = h.shape
    theta = np.empty(F, np.float32)
    for f in range(F):
        v = np.sort(h[:, f])
        cand = [(v[0] - 1.0, 1.0)] + [((v[i] + v[i + 1]) / 2, v[i + 1] - v[i]) for i in range(T - 1)] + \
               [(v[-1] + 1.0, 1.0)]
        q = rng.uniform(0.6, 0.9)
        best = None
        for k, (mid, gap) in enumerate(cand):
            if mid <= min_gap or gap < 2 * min_gap:
                continue
            score = abs(k / T - q)
            if best is None or score < best[0]:
                best = (score, mid)
        theta[f] = best[1] if best else float(v[-1]) + 1.0  # all negative: never fires
    return theta


def make_random_clt(model_dir, ids, hook, out, seed):
    cfg = TINY
    L, d, F = cfg["num_hidden_layers"], cfg["hidden_size"], TINY_F
    x = hook_inputs(model_dir, ids, hook).numpy()  # (L, T, d)
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    from safetensors.numpy import save_file as sf
    for l in range(L):
        scale = 1.0 / np.mean(np.linalg.norm(x[l, 1:], axis=-1))  # h of order 1 whatever the hook's norm
        W_enc = (rng.standard_normal((F, d)) * scale).astype(np.float32)
        b_enc = (0.1 * rng.standard_normal(F)).astype(np.float32)
        b_dec = (0.05 * rng.standard_normal(d)).astype(np.float32)
        h = x[l, 1:] @ W_enc.T + b_enc  # BOS is zeroed by circuit-tracer: its h does not matter
        theta = place_thresholds(h.astype(np.float64), rng, 2e-3)
        W_dec = (rng.standard_normal((F, L - l, d)) * 0.3 / np.sqrt(d)).astype(np.float32)
        sf({f"W_enc_{l}": W_enc, f"b_enc_{l}": b_enc, f"b_dec_{l}": b_dec, f"threshold_{l}": theta},
           os.path.join(out, f"W_enc_{l}.safetensors"))
        sf({f"W_dec_{l}": W_dec}, os.path.join(out, f"W_dec_{l}.safetensors"))
    with open(os.path.join(out, "config.yaml"), "w") as f:
        f.write("model_kind: cross_layer_transcoder\nmodel_name: \"tiny-llama\"\n"
                f"feature_input_hook: \"{hook}\"\nfeature_output_hook: \"hook_mlp_out\"\n"
                f"activation: jumprelu\nn_layers: {L}\nd_model: {d}\nd_transcoder: {F}\n")


# ---------------------------------------------------------------------------------------------
# circuit-tracer runs

def load_replacement(model_dir, clt_dir, hook):
    from circuit_tracer import ReplacementModel
    from circuit_tracer.transcoder.cross_layer_transcoder import load_clt
    clt = load_clt(os.path.abspath(clt_dir), feature_input_hook=hook, feature_output_hook="hook_mlp_out",
                   scan=os.path.basename(os.path.normpath(clt_dir)), device=torch.device("cpu"),
                   dtype=torch.float32, lazy_decoder=False)
    return ReplacementModel.from_pretrained_and_transcoders(os.path.abspath(model_dir), clt, backend="nnsight",
                                                           device=torch.device("cpu"), dtype=torch.float32)


def run_attribute(model, ids, max_feature_nodes, cut_log=None, batch=BATCH):
    """circuit-tracer's attribute(); with cut_log, every greedy round's cut is recorded through a
    wrapper around compute_partial_influences (the same function, called with the same arguments)."""
    import circuit_tracer.attribution.attribute as att
    orig = att.compute_partial_influences
    if cut_log is not None:
        def wrapped(edge_matrix, logit_p, row_to_node_index, *a, **k):
            infl = orig(edge_matrix, logit_p, row_to_node_index, *a, **k)
            n_logits = len(logit_p)
            cut_log.append((infl.clone(), row_to_node_index[n_logits:].clone().long(), n_logits))
            return infl
        att.compute_partial_influences = wrapped
    try:
        return att.attribute(torch.tensor(ids), model, max_n_logits=MAX_N_LOGITS,
                             desired_logit_prob=DESIRED_LOGIT_PROB, batch_size=batch,
                             max_feature_nodes=max_feature_nodes, update_interval=UPDATE_INTERVAL)
    finally:
        att.compute_partial_influences = orig


def check_cuts(cut_log, n_active, max_feature_nodes, batch):
    """Every round's chosen queue is separated from the rest by a real gap (not a tie)."""
    worst = np.inf
    for infl, visited_rows, _ in cut_log:
        infl = infl[:n_active].double()
        visited = torch.zeros(n_active, dtype=torch.bool)
        visited[visited_rows] = True
        n_visited = int(visited.sum())
        q = min(UPDATE_INTERVAL * batch, max_feature_nodes - n_visited)
        rest = torch.sort(infl[~visited], descending=True).values
        if q >= len(rest):
            continue
        gap = float(rest[q - 1] - rest[q]) / max(float(rest[0]), 1e-30)
        worst = min(worst, gap)
        check(gap >= 2e-4, f"greedy round at {n_visited} visited: cut gap {gap:.2e} of the max influence (a tie)")
    return worst


def prune_and_score(graph):
    """prune_graph and compute_graph_scores, plus the cuts' margins: the node cut (every node
    influence off the threshold by >= 1e-4 of it, asserted) and the edges whose score lies within
    1e-3 of the edge cut (returned: an engine may keep them or not; every other edge must match).
    The cuts are recomputed with prune_graph's own functions in its order."""
    from circuit_tracer.graph import (compute_edge_influence, compute_graph_scores, compute_node_influence,
                                      find_threshold, prune_graph)
    n_logits = len(graph.logit_targets)
    A = graph.adjacency_matrix
    w = torch.zeros(A.shape[0])
    w[-n_logits:] = graph.logit_probabilities
    influence = compute_node_influence(A, w)
    pr = prune_graph(graph, node_threshold=NODE_THRESHOLD, edge_threshold=EDGE_THRESHOLD)
    rep, comp = compute_graph_scores(graph)

    node_thr = find_threshold(influence, NODE_THRESHOLD)
    off = (influence - node_thr).abs()
    off = off[off > 0]
    node_gap = float(off.min() / node_thr) if len(off) else 1.0
    check(node_gap >= 1e-4, f"a node influence is {node_gap:.2e} (relative) from the node cut")
    node_mask = influence >= node_thr
    node_mask[-n_logits - len(graph.input_tokens):] = True
    pruned = A.clone()
    pruned[~node_mask] = 0
    pruned[:, ~node_mask] = 0
    scores = compute_edge_influence(pruned, w)
    edge_thr = find_threshold(scores.flatten(), EDGE_THRESHOLD)
    near = ((scores - edge_thr).abs() <= 1e-3 * edge_thr) & (scores != 0)
    return influence, pr, rep, comp, node_gap, near


def graph_rows(graph):
    """(n_feat + K, n_nodes): the rows that can be non-zero (feature rows, then logit rows)."""
    n_feat, K = len(graph.selected_features), len(graph.logit_targets)
    A = graph.adjacency_matrix
    rows = torch.cat([A[:n_feat], A[A.shape[0] - K:]])
    n_nodes = A.shape[0]
    check(bool((A[n_feat:n_nodes - K] == 0).all()), "error/token rows of the adjacency are not zero")
    return rows


def kept_edges(edge_mask, n_feat, K):
    """Flat indices r * n_nodes + c of the kept edges, rows as in graph_rows."""
    n_nodes = edge_mask.shape[0]
    m = torch.cat([edge_mask[:n_feat], edge_mask[n_nodes - K:]])
    check(bool(edge_mask[n_feat:n_nodes - K].sum() == 0), "kept edges into error/token nodes")
    return torch.nonzero(m.flatten()).flatten().numpy().astype(np.int64)


def row_sum_check(model, model_dir, hook, ids):
    """b_dec zeroed, BOS kept: feature rows sum to h - b_enc, logit rows to the demeaned logit.
    Bound: float32 rounding of n-term sums, n = the nodes plus the backward's depth (4 L d), times
    the magnitudes involved: the row's terms, the target value, and the dot product that forms the
    target (sum_i |w_i x_i|, which the row's terms cancel down to h - b_enc like the forward does)."""
    x, xf, W_U = hook_inputs(model_dir, ids, hook, final=True)
    x, xf, W_U = x.double(), xf.double(), W_U.double()
    W_enc = model.transcoders.W_enc.data.double()
    model.transcoders.b_dec.data.zero_()
    model.zero_positions = slice(0, 0)
    g = run_attribute(model, ids, None)
    logits, pre = model.get_activations(torch.tensor(ids), apply_activation_function=False)
    pre = pre.double()
    A = g.adjacency_matrix.double()
    n_feat, K, n_nodes = len(g.selected_features), len(g.logit_targets), A.shape[0]
    af = g.active_features.long()
    b_enc = model.transcoders.b_enc.data.double()
    worst = 0.0
    d, L = model.cfg.d_model, model.cfg.n_layers
    for r in range(n_feat):
        l, p, f = af[g.selected_features[r]].tolist()
        want = float(pre[l, p, f] - b_enc[l, f])
        got = float(A[r].sum())
        mag = float((W_enc[l, f].abs() * x[l, p].abs()).sum())
        bound = (n_nodes + 4 * L * d) * EPS32 * (float(A[r].abs().sum()) + abs(want) + mag)
        worst = max(worst, abs(got - want) / bound)
        check(abs(got - want) <= bound, f"feature row {r} (l{l} p{p} f{f}) sums to {got}, h - b_enc = {want}")
    last = logits[0, -1].double() if logits.ndim == 3 else logits[-1].double()
    for k in range(K):
        tok = int(g.logit_targets[k].vocab_idx)
        want = float(last[tok] - last.mean())
        row = A[n_nodes - K + k]
        got = float(row.sum())
        mag = float(((W_U[tok] - W_U.mean(0)).abs() * xf[-1].abs()).sum()) + float(last.abs().max())
        bound = (n_nodes + 4 * L * d + W_U.shape[0]) * EPS32 * (float(row.abs().sum()) + abs(want) + mag)
        worst = max(worst, abs(got - want) / bound)
        check(abs(got - want) <= bound, f"logit row {k} (token {tok}) sums to {got}, demeaned logit = {want}")
    return worst


def make_golden(model_dir, clt_dir, hook, ids, out_path, greedy_fracs=(3, 4, 5, 6, 8)):
    torch.set_num_threads(1)
    model = load_replacement(model_dir, clt_dir, hook)
    T = len(ids)
    full = run_attribute(model, ids, None)
    n_active = len(full.active_features)
    n_feat, K = len(full.selected_features), len(full.logit_targets)
    check(n_feat == n_active, "full run: not every active feature is a node")
    L, d, F = model.cfg.n_layers, model.cfg.d_model, model.transcoders.d_transcoder
    check(bool((full.active_features[:, 1] > 0).all()), "a feature is active at the BOS position")

    # active set = {h > theta} with a margin; the same pre-activations circuit-tracer encodes
    _, pre = model.get_activations(torch.tensor(ids), apply_activation_function=False)
    theta = model.transcoders.activation_function.threshold.data.reshape(L, F)
    diff = (pre[:, 1:] - theta[:, None, :]).double()
    want_active = torch.nonzero(diff > 0).tolist()
    got_active = [[l, p - 1, f] for l, p, f in full.active_features.tolist()]
    check(sorted(want_active) == sorted(got_active), "active features differ from {h > theta}")
    min_margin = float(diff.abs().min())
    scale = float(theta.abs().max())
    check(min_margin >= 1e-4 * max(scale, 1.0), f"a pre-activation is {min_margin:.2e} from its threshold")
    act_frac = n_active / (L * (T - 1) * F)

    # logit targets away from the cumulative-probability cut
    logits = full.logit_probabilities.double()
    probs_all = torch.softmax(model.get_activations(torch.tensor(ids))[0][0, -1].double(), -1)
    top = torch.sort(probs_all, descending=True).values[:MAX_N_LOGITS]
    cum = torch.cumsum(top, 0)
    check(bool(((cum - DESIRED_LOGIT_PROB).abs() > 1e-4).all()), "a cumulative logit probability is at the cut")
    check(bool((top[:-1] - top[1:] > 1e-6).all()), "tied logit probabilities")

    ctx = model.setup_attribution(torch.tensor(ids))
    err = ctx.error_vectors.detach().float().numpy()  # (L, T, d), BOS zeroed
    check(err.shape == (L, T, d), f"error vectors shape {err.shape}")

    influence, pr, rep, comp, node_gap, near = prune_and_score(full)
    rows = graph_rows(full)
    n_nodes = full.adjacency_matrix.shape[0]

    # greedy run: the first (batch size, max_feature_nodes = a fraction of n_active) whose rounds
    # all cut at gaps, with at least two rounds
    greedy = None
    for gb in GREEDY_BATCHES:
        for frac in greedy_fracs:
            mfn = n_active // frac
            if mfn <= UPDATE_INTERVAL * gb:
                continue
            log = []
            g = run_attribute(model, ids, mfn, cut_log=log, batch=gb)
            try:
                gap = check_cuts(log, n_active, mfn, gb)
            except AssertionError as e:
                print(f"  greedy batch {gb} max_feature_nodes={mfn}: {e}; trying another")
                continue
            greedy = (gb, mfn, g, gap, len(log))
            break
        if greedy:
            break
    check(greedy is not None, "no greedy (batch, max_feature_nodes) without ties")
    gb, mfn, g, gap, n_rounds = greedy
    g_infl, g_pr, g_rep, g_comp, g_node_gap, g_near = prune_and_score(g)
    g_rows = graph_rows(g)
    g_nsel = len(g.selected_features)

    import circuit_tracer
    import nnsight
    import transformers
    meta = {
        "hook": hook, "n_layers": str(L), "d_model": str(d), "d_transcoder": str(F), "n_pos": str(T),
        "n_active": str(n_active), "n_logits": str(K), "n_nodes": str(n_nodes),
        "active_fraction": f"{act_frac:.4f}", "min_margin": f"{min_margin:.6g}",
        "max_n_logits": str(MAX_N_LOGITS), "desired_logit_prob": str(DESIRED_LOGIT_PROB),
        "batch_size": str(BATCH), "update_interval": str(UPDATE_INTERVAL),
        "node_threshold": str(NODE_THRESHOLD), "edge_threshold": str(EDGE_THRESHOLD),
        "replacement_score": repr(float(rep)), "completeness_score": repr(float(comp)),
        "greedy_batch_size": str(gb), "greedy_max_feature_nodes": str(mfn), "greedy_rounds": str(n_rounds),
        "greedy_min_cut_gap": f"{gap:.4g}", "node_cut_gap": f"{node_gap:.4g}",
        "greedy_node_cut_gap": f"{g_node_gap:.4g}",
        "greedy_replacement_score": repr(float(g_rep)), "greedy_completeness_score": repr(float(g_comp)),
        "versions": f"circuit-tracer {circuit_tracer.__version__}, "
                    f"nnsight {nnsight.__version__}, torch {torch.__version__}, "
                    f"transformers {transformers.__version__}",
    }
    tensors = {
        "tokens": np.asarray(ids, np.int32),
        "active": full.active_features.numpy().astype(np.int32),
        "activation": full.activation_values.float().numpy(),
        "preact": pre[tuple(full.active_features.long().T)].float().numpy(),
        "error_vectors": err,
        "logit_token": np.asarray([t.vocab_idx for t in full.logit_targets], np.int32),
        "logit_prob": full.logit_probabilities.float().numpy(),
        "adj": rows.float().numpy(),
        "influence": influence.float().numpy(),
        "cumulative": pr.cumulative_scores.float().numpy(),
        "node_mask": pr.node_mask.numpy().astype(np.uint8),
        "edge_kept": kept_edges(pr.edge_mask, n_feat, K),
        "edge_near_cut": kept_edges(near, n_feat, K),
        "greedy_selected": g.selected_features.numpy().astype(np.int32),
        "greedy_adj": g_rows.float().numpy(),
        "greedy_influence": g_infl.float().numpy(),
        "greedy_cumulative": g_pr.cumulative_scores.float().numpy(),
        "greedy_node_mask": g_pr.node_mask.numpy().astype(np.uint8),
        "greedy_edge_kept": kept_edges(g_pr.edge_mask, g_nsel, K),
        "greedy_edge_near_cut": kept_edges(g_near, g_nsel, K),
    }
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}

    worst = row_sum_check(model, model_dir, hook, ids)  # mutates model (b_dec, zero_positions): last
    meta["row_sum_worst_of_bound"] = f"{worst:.3g}"
    save_file(tensors, out_path, metadata=meta)
    print(f"{os.path.relpath(out_path, ROOT)}: T={T} n_active={n_active} ({100 * act_frac:.0f}%) K={K} "
          f"n_nodes={n_nodes} kept {int(pr.node_mask.sum())} nodes / {len(tensors['edge_kept'])} edges "
          f"({len(tensors['edge_near_cut'])} near the cut; node cut gap {node_gap:.2g}); "
          f"greedy {mfn} (batch {gb}) in {n_rounds} rounds (min cut gap {gap:.2g}); scores {rep:.4f} {comp:.4f}; "
          f"min margin {min_margin:.2g}; row sums within {worst:.2g} of the bound")


# ---------------------------------------------------------------------------------------------

def tiny():
    d = os.path.join(OUT, "tiny")
    model_dir = os.path.join(d, "model")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(model_dir)
    make_tiny_model(model_dir)
    rng = np.random.default_rng(TINY_SEED)
    ids = [1] + rng.integers(3, TINY["vocab_size"], TINY_T - 1).tolist()
    for hook, name, seed in (("mlp.hook_in", "mlp_in", 7), ("hook_resid_mid", "resid_mid", 8)):
        clt = os.path.join(d, f"clt_{name}")
        make_random_clt(model_dir, ids, hook, clt, seed)
        make_golden(model_dir, clt, hook, ids, os.path.join(d, f"golden_{name}.safetensors"))


STORIES_PROMPT = "Lily saw a big dog. She was"
STORIES_FIT = ["--features", "64", "--batch", "256", "--steps", "400", "--lr", "2e-3", "--lambda", "1.0",
               "--log-every", "100", "--pool-chunks", "4", "--seed", "5"]


def stories():
    sh = shared_dir()
    src = os.path.join(sh, "models", "stories260K")
    for f in ("stories260K.bin", "tok512.model"):
        check(os.path.exists(os.path.join(src, f)), f"needs {src}/{f} (`make test-data` fetches it)")
    for tool in ("llama2c-convert", "tok", "fwd-acts", "clt-fit"):
        check(os.access(os.path.join(BIN, tool), os.X_OK), f"needs bin/{tool} (`make tools`)")
    d = os.path.join(OUT, "stories")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with tempfile.TemporaryDirectory() as tmp:
        st = os.path.join(tmp, "st")
        run = lambda *a: subprocess.run([str(x) for x in a], check=True, stderr=subprocess.DEVNULL)
        run(f"{BIN}/llama2c-convert", f"{src}/stories260K.bin", "--tokenizer", f"{src}/tok512.model", "-o", st)
        run(f"{BIN}/tok", "encode", "-t", f"{st}/tokenizer.json", "-o", f"{tmp}/c.tok",
            os.path.join(ROOT, "tests", "data", "tok_corpus.jsonl"))
        run(f"{BIN}/fwd-acts", "-m", st, "-o", f"{tmp}/a.acts", "--in", "mlp_in", "--ctx", "64",
            "--chunk-tokens", "2048", f"{tmp}/c.tok")
        clt = os.path.join(d, "clt")
        run(f"{BIN}/clt-fit", "-o", clt, *STORIES_FIT, f"{tmp}/a.acts")
        for f in ("train_state.safetensors", "metrics.jsonl"):  # training state: not needed here
            os.remove(os.path.join(clt, f))
        cfg_path = os.path.join(clt, "config.yaml")  # clt-fit names the model by its (temporary) dir
        with open(cfg_path) as f:
            cfg = f.read().replace(f'model_name: "{st}"', 'model_name: "stories260K"')
        with open(cfg_path, "w") as f:
            f.write(cfg)
        from tokenizers import Tokenizer
        ids = Tokenizer.from_file(f"{st}/tokenizer.json").encode(STORIES_PROMPT).ids
        check(ids[0] == 1, "the stories prompt does not start with BOS")
        with open(os.path.join(d, "prompt.txt"), "w") as f:
            f.write(STORIES_PROMPT + "\n")
        make_golden(st, clt, "mlp.hook_in", ids, os.path.join(d, "golden.safetensors"))


def main():
    which = sys.argv[1:] or ["tiny", "stories"]
    for w in which:
        check(w in ("tiny", "stories"), f"unknown golden set {w!r} (tiny, stories)")
    if "tiny" in which:
        tiny()
    if "stories" in which:
        stories()


if __name__ == "__main__":
    main()
