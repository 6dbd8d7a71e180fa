#!/usr/bin/env python3
"""A real attribution graph written by circuit-tracer's own create_graph_files, for graph2html's
tests (graphs made by circuit-tracer must load) and its README screenshot.

    .venv-ref/bin/python tests/ref/make_graph2html_ct_graph.py [CLT_DIR]     # from the repo root

circuit-tracer 0.5.0 (tests/ref/requirements-attrib.txt), nnsight backend, float32, CPU:
stories260K (../shared, converted to HF by bin/llama2c-convert) with the clt-fit CLT of the attrib
goldens (default tests/golden/attrib/stories/clt, made by tests/ref/make_attrib_goldens.py), the
prompt "Lily saw a big dog. She was", every active feature a node (max_feature_nodes=None),
create_graph_files(node_threshold=0.8, edge_threshold=0.98). Writes tests/data/graph_ct_stories.json
(circuit-tracer's indent=2 JSON as it is, error-node ids "0_{layer}_{pos}" included).
"""
import os
import shutil
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "bin")
PROMPT = "Lily saw a big dog. She was"


def main():
    clt_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "golden", "attrib", "stories", "clt")
    shared = os.environ.get("CLTKIT_SHARED") or os.path.join(ROOT, "..", "shared")
    src = os.path.join(shared, "models", "stories260K")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    from circuit_tracer import ReplacementModel
    from circuit_tracer.attribution.attribute import attribute
    from circuit_tracer.transcoder.cross_layer_transcoder import load_clt
    from circuit_tracer.utils.create_graph_files import create_graph_files
    from tokenizers import Tokenizer
    with tempfile.TemporaryDirectory() as tmp:
        st = os.path.join(tmp, "stories260K")
        subprocess.run([f"{BIN}/llama2c-convert", f"{src}/stories260K.bin", "--tokenizer", f"{src}/tok512.model",
                        "-o", st], check=True, stderr=subprocess.DEVNULL)
        clt = load_clt(os.path.abspath(clt_dir), feature_input_hook="mlp.hook_in", feature_output_hook="hook_mlp_out",
                       scan="stories260K-clt", device=torch.device("cpu"), dtype=torch.float32, lazy_decoder=False)
        model = ReplacementModel.from_pretrained_and_transcoders(st, clt, backend="nnsight", device=torch.device("cpu"),
                                                                dtype=torch.float32)
        ids = Tokenizer.from_file(f"{st}/tokenizer.json").encode(PROMPT).ids
        graph = attribute(torch.tensor(ids), model, max_n_logits=10, desired_logit_prob=0.95, batch_size=64,
                          max_feature_nodes=None)
        graph.cfg.tokenizer_name = st  # the converted directory's tokenizer.json decodes the prompt
        out = os.path.join(tmp, "out")
        create_graph_files(graph, "stories260K-lily", out, scan="stories260K-clt", node_threshold=0.8,
                           edge_threshold=0.98)
        dst = os.path.join(ROOT, "tests", "data", "graph_ct_stories.json")
        shutil.copy(os.path.join(out, "stories260K-lily.json"), dst)
        print(dst, os.path.getsize(dst), "bytes")


if __name__ == "__main__":
    main()
