#!/usr/bin/env python3
"""circuit-tracer 0.5.0's attribution on a local model + CLT: the baseline for `attrib` (bench_attrib.sh).

    .venv-ref/bin/python bench/attrib_ct.py --model DIR --clt DIR --ids "1 2 3 ..." [--hook mlp.hook_in]
        [--threads 1] [--batch 32] [--max-feature-nodes N] [--node-threshold 0.8] [--edge-threshold 0.98]
        [--out DIR]
    .venv-ref/bin/python bench/attrib_ct.py --make-ids N --tokenizer tokenizer.json TEXT_JSONL  # -> N ids

The same job `attrib -m DIR --clt DIR --ids ... -o g.json` does: attribute() (nnsight backend, fp32,
CPU, torch.set_num_threads(--threads)), then prune_graph + create_graph_files (circuit-tracer's graph
JSON; it prunes inside). The ids are used as given (they start with BOS, so circuit-tracer prepends nothing). Prints one
JSON line: load_s (imports + model + CLT), attribute_s, graph_s (pruning + JSON) and their CPU times
(attribute_cpu_s, graph_cpu_s: user + system of all threads, the fair measure on a busy machine), n_active,
n_feature_nodes, n_nodes, rss_loaded_mb (peak RSS before attribute()), peak_rss_mb (whole process),
versions. On failure (e.g. out of memory): {"error": "..."} and exit 1.

--make-ids: the first N ids of the documents of a JSONL file ("text" fields) tokenized with
tokenizer.json (BOS + document tokens, documents joined), for prompts of a chosen length.
"""
import argparse
import json
import os
import resource
import sys
import time


def describe(e):
    """One line for an exception; nnsight wraps the real one (its own str() can fail) as __context__."""
    for x in (e, e.__cause__, e.__context__):
        if x is None:
            continue
        try:
            line = str(x).splitlines()[0] if str(x) else ""
        except Exception:
            continue
        return f"{type(x).__name__}: {line[:200]}"
    return type(e).__name__


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_ids(n, tokenizer, corpus):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer)
    ids = [1]
    with open(corpus) as f:
        for line in f:
            ids += tok.encode(json.loads(line)["text"], add_special_tokens=False).ids
            if len(ids) >= n:
                break
    if len(ids) < n:
        sys.exit(f"{corpus}: only {len(ids)} tokens, want {n}")
    print(" ".join(map(str, ids[:n])))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--clt")
    ap.add_argument("--ids")
    ap.add_argument("--hook", default="mlp.hook_in")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-feature-nodes", type=int, default=None)
    ap.add_argument("--node-threshold", type=float, default=0.8)
    ap.add_argument("--edge-threshold", type=float, default=0.98)
    ap.add_argument("--out", default=None, help="directory for the graph JSON (default: a temporary one)")
    ap.add_argument("--make-ids", type=int, default=None)
    ap.add_argument("--tokenizer")
    ap.add_argument("corpus", nargs="?")
    a = ap.parse_args()
    if a.make_ids:
        return make_ids(a.make_ids, a.tokenizer, a.corpus)

    t0 = time.perf_counter()
    import tempfile

    import torch
    torch.set_num_threads(a.threads)
    import circuit_tracer
    from circuit_tracer import ReplacementModel, attribute
    from circuit_tracer.transcoder.cross_layer_transcoder import load_clt
    from circuit_tracer.utils.create_graph_files import create_graph_files

    ids = torch.tensor([int(x) for x in a.ids.split()])
    clt = load_clt(os.path.abspath(a.clt), feature_input_hook=a.hook, feature_output_hook="hook_mlp_out",
                   scan=os.path.basename(os.path.normpath(a.clt)), device=torch.device("cpu"),
                   dtype=torch.float32)
    model = ReplacementModel.from_pretrained_and_transcoders(os.path.abspath(a.model), clt, backend="nnsight",
                                                            device=torch.device("cpu"), dtype=torch.float32)
    load_s = time.perf_counter() - t0
    rss_loaded = rss_mb()
    res = {"impl": "circuit-tracer", "tokens": len(ids), "threads": a.threads, "batch": a.batch,
           "max_feature_nodes": a.max_feature_nodes, "load_s": round(load_s, 3), "rss_loaded_mb": round(rss_loaded)}
    try:
        t1, c1 = time.perf_counter(), time.process_time()
        graph = attribute(ids, model, batch_size=a.batch, max_feature_nodes=a.max_feature_nodes)
        res["attribute_s"] = round(time.perf_counter() - t1, 3)
        res["attribute_cpu_s"] = round(time.process_time() - c1, 3)
        res["n_active"] = len(graph.active_features)
        res["n_feature_nodes"] = len(graph.selected_features)
        res["n_nodes"] = graph.adjacency_matrix.shape[0]
        t2, c2 = time.perf_counter(), time.process_time()
        with tempfile.TemporaryDirectory() as tmp:
            out = a.out or tmp
            create_graph_files(graph, "bench", output_path=out, scan=clt.scan, node_threshold=a.node_threshold,
                               edge_threshold=a.edge_threshold)
        res["graph_s"] = round(time.perf_counter() - t2, 3)
        res["graph_cpu_s"] = round(time.process_time() - c2, 3)
    except Exception as e:  # torch reports allocation failures as RuntimeError, nnsight wraps them
        res["error"] = describe(e)
    res["peak_rss_mb"] = round(rss_mb())
    res["versions"] = f"circuit-tracer {circuit_tracer.__version__}, torch {torch.__version__}"
    print(json.dumps(res))
    return 1 if "error" in res else 0


if __name__ == "__main__":
    sys.exit(main())
