#!/usr/bin/env python3
"""The CLT features in attribution graphs (attrib's graph JSON, formats/graph.md), one LAYER:INDEX a
line, sorted and unique: what the pipelines export for graph2html and explain with interp-prompt.

    python3 pipelines/graph_features.py graphs/*.json > features.txt

A feature node's node_id is "{layer}_{index}_{position}" (error nodes have layer -1 and another
feature_type). Standard library only.
"""
import json
import sys


def main(paths):
    found = set()
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                nodes = json.load(f)["nodes"]
            for n in nodes:
                if n.get("feature_type") != "cross layer transcoder":
                    continue
                layer, index, _pos = (int(x) for x in n["node_id"].split("_"))
                found.add((layer, index))
        except (OSError, ValueError, KeyError, TypeError) as e:
            sys.exit(f"graph_features: {path}: not an attrib graph JSON ({e})")
    for layer, index in sorted(found):
        print(f"{layer}:{index}")


if __name__ == "__main__":
    main(sys.argv[1:])
