// graph_html.h — an attribution graph (Neuronpedia graph JSON, schema version 1, as `attrib` and
// circuit-tracer's create_graph_files write it) as one self-contained HTML page: the graph is
// validated, packed compactly (node/link tables as base64 little-endian typed arrays, strings as
// JSON arrays) and embedded with the viewer (libcommon/attrib/graph_html/viewer.{html,css,js}, compiled
// in at build time) into a page that needs no server and loads nothing from outside.
//
// Packed data (the page's <script id="graph-data" type="application/json">), N nodes, M links:
//   node_i32 (N, 6): kind (GH_*), row (0 = embeddings, layer + 1, logits on top), ctx_idx,
//                    feature layer, feature index (vocab id for embeddings/logits; -1 unknown),
//                    flags (GH_FLAG_*)
//   node_f32 (N, 3): influence, activation, token_prob (NaN where the JSON has none)
//   link_i32 (M, 2): source, target node index; sorted by target, then |weight| descending
//   link_f32 (M,):   weight (raw, signed A[t, s])
//   node_id, clerp:  (N,) strings; metadata, qParams, scores, features, explanations: JSON.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum { GH_FEATURE = 0, GH_ERROR = 1, GH_EMBEDDING = 2, GH_LOGIT = 3 };
enum { GH_FLAG_TARGET_LOGIT = 1, GH_FLAG_DUPLICATE_ID = 2 };

typedef struct {
    const char *features_dir;       // a feat-topk store (DIR/features.bin), DIR/{layer}_{index}.json (feat-topk
                                    // export) or DIR/{cantor id}.json (circuit-tracer); NULL: none
    const char *explanations_path;  // interp-prompt JSONL ({"layer", "feature", "label", ...}); NULL: none
    const char *title;              // page title; NULL: the graph's slug
    int max_examples;               // examples kept per quantile group of a feature file (0: all)
} GraphHtmlOptions;

// What went into the page, for the tool's summary line.
typedef struct {
    int n_nodes, n_links, n_tokens;
    int n_features;           // distinct (layer, index) of the feature nodes
    int n_feature_files;      // of those, found in features_dir
    int n_explanations;       // of those, with an explanation line
    int n_duplicate_ids;      // nodes whose node_id repeats an earlier one (links go to the first)
    size_t html_bytes;
} GraphHtmlStats;

// Validates the graph JSON text (name: its file, for messages) and builds the page in *html
// (malloc'd, NUL-terminated). Bad input — not JSON, schema_version other than 1, a missing or
// mistyped required field, a link to a missing node, no nodes, a bad feature file or
// explanation line — is an error naming the file and what is wrong; nothing is built.
int graph_html_build(const char *text, size_t len, const char *name, const GraphHtmlOptions *o, char **html,
                     GraphHtmlStats *stats, Error *e);

// Reads in_path ("-": stdin), builds the page and writes it to out_path ("-": stdout), a file
// atomically (temp + rename). On any error nothing is written.
int graph_html_convert(const char *in_path, const GraphHtmlOptions *o, const char *out_path, GraphHtmlStats *stats,
                       Error *e);

// s as the body of a JSON string inside an HTML <script> element: JSON escapes plus '<', '>',
// '&', U+2028 and U+2029 as \u escapes (\u003c ...), so no text can close the element or start a comment.
// Returns a malloc'd string.
char *graph_html_script_json(const char *json_text);

// Cantor pairing as circuit-tracer numbers features (layer, index), and its inverse (returns 0
// and leaves *layer/*index alone if z is negative).
int64_t graph_html_cantor(int64_t layer, int64_t index);
int graph_html_uncantor(int64_t z, int64_t *layer, int64_t *index);
