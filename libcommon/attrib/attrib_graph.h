// attrib_graph.h — an attribution graph as `attrib` computes it (the adjacency rows of the visited
// targets) and what is made of it: influence, node/edge pruning, graph scores, the Neuronpedia
// graph JSON (schema version 1) and the raw file (formats/graph.md).
//
// Node order is circuit-tracer's (shared/reference/peers-circuitlab-circuit-tracer.md §3.3):
//   [ features (n_feat, the selected = visited active features, in active order)
//   | errors   (L·T, layer-major: n_feat + l·T + p)
//   | tokens   (T, by position)
//   | logits   (K, in target order) ]                      n_nodes = n_feat + (L+1)·T + K
// A[t, s] (row = target, column = source) is the direct effect of source s on target t through the
// linearized replacement model. Error and token nodes have no inputs, so only the rows of feature
// and logit nodes are stored: memory is (n_feat + K) · n_nodes floats, never n_nodes².
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

typedef struct {
    int n_layers;  // L
    int n_pos;     // T, prompt positions (BOS included)
    int d_model;   // d
    int vocab_size;
    int32_t *tokens;  // (T,) prompt ids
    // Every active CLT feature on the prompt (post-activation a > 0 and not at a zeroed BOS
    // position), ordered by (layer, pos, feature).
    int n_active;
    int32_t *active;    // (n_active, 3): layer, pos, feature index within the layer
    float *activation;  // (n_active,) post-activation value a_s
    // The feature nodes: indices into `active`, ascending.
    int n_feat;
    int32_t *feat_active;  // (n_feat,)
    // Logit targets.
    int n_logits;          // K
    int32_t *logit_token;  // (K,) vocab ids
    float *logit_prob;     // (K,) softmax probability at the last position
    // Adjacency rows: row r < n_feat is feature node r; row n_feat + k is logit k.
    float *adj;  // (n_feat + K, n_nodes)
    // Optional (NULL when absent): error vectors e = mlp_out − CLT reconstruction (b_dec included).
    float *error_vectors;  // (L, T, d)
} AttribGraph;

static inline int64_t attrib_n_nodes(const AttribGraph *g) {
    return (int64_t)g->n_feat + (int64_t)(g->n_layers + 1) * g->n_pos + g->n_logits;
}
void attrib_graph_free(AttribGraph *g);

// Pruning result (circuit-tracer's prune_graph and compute_graph_scores, §3.6).
typedef struct {
    int64_t n_nodes;
    float *influence;         // (n_nodes,) I = w·(Ā + Ā² + …) of the unpruned graph
    float *cumulative;        // (n_nodes,) cumulative influence fraction at the node's rank ("influence" in JSON)
    uint8_t *node_kept;       // (n_nodes,)
    uint8_t *edge_kept;       // (n_feat + K, n_nodes), aligned with AttribGraph.adj
    double replacement_score;   // of the unpruned graph
    double completeness_score;  // of the unpruned graph
} AttribPruned;

// Influence of every node on the logits through the rows filled so far, for the greedy choice of
// the next feature rows to visit (circuit-tracer's compute_partial_influences): rows (n_rows,
// n_cols), row_node[r] = the column index of row r's target node, row_weight[r] = the logit
// probability for logit rows and 0 otherwise. influence: (n_cols,).
int attrib_partial_influence(const float *rows, int64_t n_rows, int64_t n_cols, const int64_t *row_node,
                             const float *row_weight, float *influence, Error *e);

int attrib_prune(const AttribGraph *g, double node_threshold, double edge_threshold, AttribPruned *out, Error *e);
void attrib_pruned_free(AttribPruned *p);

// Everything the JSON needs besides the numbers.
typedef struct {
    const char *slug;
    const char *scan;             // model name + CLT identity (clt-fit's scan, else the CLT dir's name)
    const char *prompt;           // the prompt text (ids joined when given as --ids)
    char *const *token_strings;   // (T,) decoded prompt tokens
    char *const *logit_strings;   // (K,) decoded target tokens
    const char *model_name;
    const char *clt_name;
    int max_n_logits;
    double desired_logit_prob;
    int batch_size;
    int max_feature_nodes;  // 0 = all
    double node_threshold, edge_threshold;
} AttribMeta;

// Neuronpedia graph JSON, schema version 1 (shared/reference/graph-schema-v1.json), with the
// graph scores under metadata.info / top level as formats/graph.md documents.
int attrib_write_json(FILE *f, const char *name, const AttribGraph *g, const AttribPruned *p,
                      const AttribMeta *meta, Error *e);
// The raw file (formats/graph.md): the unpruned rows (sparse), the node tables, the pruning masks
// and scores; written atomically. attrib_read_raw loads it back (adj dense) for tools and tests.
int attrib_write_raw(const char *path, const AttribGraph *g, const AttribPruned *p, Error *e);
int attrib_read_raw(const char *path, AttribGraph *g, AttribPruned *p, Error *e);
// The same from a buffer (name: the input's name in messages; used by the fuzzer). p may be NULL.
int attrib_parse_raw(const void *buf, size_t len, const char *name, AttribGraph *g, AttribPruned *p, Error *e);
