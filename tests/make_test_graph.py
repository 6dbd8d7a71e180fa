#!/usr/bin/env python3
"""A synthetic attribution graph in the Neuronpedia schema-v1 JSON that circuit-tracer's
create_graph_files writes (node ids, Cantor feature ids, cumulative influence, logit clerps), for
graph2html's tests and screenshots while no real graph is at hand. Standard library only; seeded.

    python3 tests/make_test_graph.py OUT.json [--nodes 5000] [--links 50000] [--layers 12]
        [--tokens 20] [--seed 1] [--features DIR] [--explanations FILE]

--features writes DIR/{layer}_{index}.json (feat-topk export / circuit-tracer feature format) and
--explanations an interp-prompt JSONL for a sample of the graph's features.
"""
import argparse
import json
import math
import os
import random

WORDS = ("Once upon a time there was a little girl named Lily who loved to play in the park with her "
         "dog Max . One day she saw a big red ball").split()


def cantor(a, b):
    return (a + b) * (a + b + 1) // 2 + b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--links", type=int, default=50000)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--logits", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--features")
    ap.add_argument("--explanations")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    L, T, K = a.layers, a.tokens, a.logits
    toks = [" " + WORDS[i % len(WORDS)] if i else "<s>" for i in range(T)]
    vocab = [rnd.randrange(512) for _ in range(T)]
    nodes = []
    # embeddings, errors (every layer and position), logits; the rest are features
    for p in range(T):
        nodes.append(dict(node_id=f"E_{vocab[p]}_{p}", feature=p, layer="E", ctx_idx=p, feature_type="embedding",
                          jsNodeId=f"E_{vocab[p]}-{p}", clerp="", influence=None))
    for l in range(L):
        for p in range(T):
            nodes.append(dict(node_id=f"{l}_-1_{p}", feature=-1, layer=str(l), ctx_idx=p,
                              feature_type="mlp reconstruction error", jsNodeId=f"{l}_{p}-0", clerp=""))
    probs = sorted((rnd.random() for _ in range(K)), reverse=True)
    s = sum(probs) / 0.9
    for k in range(K):
        v = 1000 + k
        pk = probs[k] / s
        nodes.append(dict(node_id=f"{L + 1}_{v}_{T - 1}", feature=v, layer=str(L + 1), ctx_idx=T - 1,
                          feature_type="logit", token_prob=pk, is_target_logit=k == 0, jsNodeId=f"L_{v}-{T - 1}",
                          clerp=f'Output " {WORDS[(k * 7) % len(WORDS)]}" (p={pk:.3f})', influence=None))
    n_feat = max(0, a.nodes - len(nodes))
    feats = []
    seen = set()
    while len(feats) < n_feat:
        l = min(L - 1, int(rnd.random() ** 1.3 * L))
        # a feature is often active at several positions: reuse an index of this layer
        idx = rnd.randrange(200) if rnd.random() < 0.3 else rnd.randrange(20000)
        p = rnd.randrange(T)
        if (l, idx, p) in seen:
            continue
        seen.add((l, idx, p))
        feats.append((l, idx, p))
    for (l, idx, p) in feats:
        nodes.append(dict(node_id=f"{l}_{idx}_{p}", feature=cantor(l, idx), layer=str(l), ctx_idx=p,
                          feature_type="cross layer transcoder", jsNodeId=f"{l}_{idx}-0",
                          clerp=f"feature {l}/{idx}" if rnd.random() < 0.2 else "",
                          influence=None, activation=round(rnd.lognormvariate(0, 0.7), 4)))
    # cumulative influence: a random ranking of the non-logit nodes
    ranked = [n for n in nodes if n["feature_type"] != "logit"]
    rnd.shuffle(ranked)
    for r, n in enumerate(ranked):
        n["influence"] = round(0.8 * (r + 1) / len(ranked), 6)

    def level(n):
        t = n["feature_type"]
        return -1 if t == "embedding" else L + 1 if t == "logit" else int(n["layer"])
    by_level = {}
    for i, n in enumerate(nodes):
        by_level.setdefault(level(n), []).append(i)
    targets = [i for i, n in enumerate(nodes) if n["feature_type"] in ("cross layer transcoder", "logit")]
    links, have = [], set()
    tries = 0
    while len(links) < a.links and tries < 50 * a.links:
        tries += 1
        t = rnd.choice(targets)
        lt, pt = level(nodes[t]), nodes[t]["ctx_idx"]
        ls = rnd.randrange(-1, lt) if lt > -1 else None
        if ls is None or ls not in by_level:
            continue
        s = rnd.choice(by_level[ls])
        if nodes[s]["ctx_idx"] > pt or (s, t) in have:
            continue
        if nodes[s]["ctx_idx"] != pt and rnd.random() < 0.6:  # most edges stay in one column
            continue
        have.add((s, t))
        w = rnd.gauss(0, 1) * math.exp(rnd.gauss(0, 1))
        links.append(dict(source=nodes[s]["node_id"], target=nodes[t]["node_id"], weight=round(w, 5)))
    graph = dict(
        metadata=dict(slug="synthetic-5k", scan="synthetic/clt", transcoder_list=[], prompt_tokens=toks,
                      prompt="".join(toks[1:]), node_threshold=0.8, schema_version=1,
                      info=dict(description="synthetic graph for graph2html tests", model_name="synthetic",
                                clt_name="synthetic-clt", generator=dict(name="make_test_graph.py", version="1"),
                                replacement_score=0.71, completeness_score=0.88),
                      generation_settings=dict(max_n_logits=K, desired_logit_prob=0.95, batch_size=256,
                                               max_feature_nodes=n_feat),
                      pruning_settings=dict(node_threshold=0.8, edge_threshold=0.98)),
        qParams=dict(pinnedIds=[], supernodes=[], linkType="both", clickedId="", sg_pos=""),
        nodes=nodes, links=links)
    with open(a.out, "w") as f:
        json.dump(graph, f, indent=2)  # indented as create_graph_files writes it
    sample = sorted({(l, idx) for (l, idx, _) in feats})[:: max(1, len(feats) // 60)]
    if a.features:
        os.makedirs(a.features, exist_ok=True)
        for (l, idx) in sample:
            amax = round(rnd.uniform(2, 8), 3)
            groups = []
            for gname in ["Top activations"] + [f"Subsample Interval {q}" for q in range(4)]:
                exs = []
                for _ in range(6):
                    n = 24
                    tk = [WORDS[rnd.randrange(len(WORDS))] for _ in range(n)]
                    acts = [round(max(0.0, rnd.gauss(0, amax / 4)), 3) for _ in range(n)]
                    m = rnd.randrange(n)
                    acts[m] = amax if gname.startswith("Top") else round(amax * rnd.random(), 3)
                    exs.append(dict(tokens=tk, tokens_acts_list=acts, train_token_ind=m, is_repeated_datapoint=False))
                groups.append(dict(quantile_name=gname, examples=exs))
            f = dict(transcoder_id="synthetic", index=cantor(l, idx), layer=l, feature=idx, examples_quantiles=groups,
                     top_logits=[" " + w for w in rnd.sample(WORDS, 5)], bottom_logits=[" " + w for w in rnd.sample(WORDS, 5)],
                     top_logit_values=[round(rnd.uniform(0.5, 2), 3) for _ in range(5)],
                     bottom_logit_values=[round(-rnd.uniform(0.5, 2), 3) for _ in range(5)],
                     act_min=0.0, act_max=amax, quantile_values=[round(amax * q / 10, 3) for q in range(11)],
                     histogram=[int(1000 * math.exp(-b / 8)) for b in range(50)], activation_frequency=0.01,
                     density=0.01, max_activation=amax, mean_activation=round(amax / 5, 3), dead=False, always_on=False,
                     next_tokens=[" " + w for w in rnd.sample(WORDS, 3)])
            with open(os.path.join(a.features, f"{l}_{idx}.json"), "w") as fh:
                json.dump(f, fh)
    if a.explanations:
        with open(a.explanations, "w") as fh:
            for (l, idx) in sample:
                fh.write(json.dumps(dict(layer=l, feature=idx, label=f"say {WORDS[idx % len(WORDS)]}",
                                         explanation=f"Fires before the word {WORDS[idx % len(WORDS)]!r}.",
                                         explainer="tokens", scores=dict(detection=dict(balanced_accuracy=0.8),
                                                                         fuzzing=dict(balanced_accuracy=0.7)))) + "\n")


if __name__ == "__main__":
    main()
