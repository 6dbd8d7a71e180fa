// attrib_graph.c — influence, pruning and graph scores of an attribution graph (circuit-tracer
// 0.5.0's graph.py, formulas restated in formats/graph.md), over the stored rows only.
//
// Circuit-tracer holds the dense N×N adjacency and sorts all N² edge scores to find the edge cut.
// Here only the n_feat + K rows of nodes with inputs exist (error and token rows are zero), every
// matrix product runs over those rows, and the cuts come from a two-pass radix selection over the
// float bit patterns (a 65536-bin histogram of counts and sums, then one bin resolved exactly):
// memory O(rows · N) for the graph plus O(65536), and the kept set is the sort-based one, ties
// included, because the cut is a value and both pick the same value (see find_cut).
#include "attrib_graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "safetensors.h"
#include "threads.h"
#include "unicode.h"

void attrib_graph_free(AttribGraph *g) {
    if (!g) return;
    free(g->tokens);
    free(g->active);
    free(g->activation);
    free(g->feat_active);
    free(g->logit_token);
    free(g->logit_prob);
    free(g->adj);
    free(g->error_vectors);
    memset(g, 0, sizeof *g);
}

void attrib_pruned_free(AttribPruned *p) {
    if (!p) return;
    free(p->influence);
    free(p->cumulative);
    free(p->node_kept);
    free(p->edge_kept);
    memset(p, 0, sizeof *p);
}

// ---- one power-iteration step: next = v · Ā over the stored rows -----------------------------
// Ā[r, s] = |rows[r, s]| / denom[r] (circuit-tracer's normalize_matrix: a float division), with
// the rows and columns of dropped nodes zero when keep is set. Parallel over column ranges, each
// column summed in row order: the result does not depend on the thread count.
typedef struct {
    const float *rows;
    int64_t n_rows, n_cols;
    const float *denom;    // (n_rows,)
    const int64_t *row_node;  // (n_rows,) node (column) index of each row's target; NULL for the graph
    const uint8_t *keep;   // (n_cols,) or NULL
    const double *v;       // (n_rows,) the weight of each row
    double *next;          // (n_cols,)
} StepCtx;

static void step_range(void *arg, size_t begin, size_t end) {
    const StepCtx *c = arg;
    for (size_t s = begin; s < end; s++) c->next[s] = 0;
    for (int64_t r = 0; r < c->n_rows; r++) {
        double v = c->v[r];
        if (v == 0) continue;
        const float *row = c->rows + r * c->n_cols;
        // v·(|a| / den) as (v / den)·|a| in double: one multiply per entry (the loop vectorises);
        // it differs from torch's float division by less than torch's own summation error.
        double wgt = v / (double)c->denom[r];
        double *next = c->next;
        if (c->keep) {
            const uint8_t *keep = c->keep;
            for (size_t s = begin; s < end; s++) next[s] += keep[s] ? wgt * fabsf(row[s]) : 0.0;
        } else {
            for (size_t s = begin; s < end; s++) next[s] += wgt * fabsf(row[s]);
        }
    }
}

static void influence_step(StepCtx *c) { parallel_for((size_t)c->n_cols, 4096, step_range, c); }

static int any_nonzero(const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (x[i] != 0) return 1;
    return 0;
}

// Row sums of |rows| (masked by keep: a dropped row or column contributes nothing), clamped below
// at `floor` as circuit-tracer clamps them (1e-10 in normalize_matrix, 1e-8 in the partial
// influences).
static void row_denominators(const float *rows, int64_t n_rows, int64_t n_cols, const int64_t *row_node,
                             const uint8_t *keep, float floor, float *denom) {
    for (int64_t r = 0; r < n_rows; r++) {
        const float *row = rows + r * n_cols;
        double sum = 0;
        if (keep && !keep[row_node[r]]) {
            sum = 0;
        } else if (keep) {
            for (int64_t s = 0; s < n_cols; s++)
                if (keep[s]) sum += fabsf(row[s]);
        } else {
            for (int64_t s = 0; s < n_cols; s++) sum += fabsf(row[s]);
        }
        float f = (float)sum;
        denom[r] = f > floor ? f : floor;
    }
}

int attrib_partial_influence(const float *rows, int64_t n_rows, int64_t n_cols, const int64_t *row_node,
                             const float *row_weight, float *influence, Error *e) {
    enum { MAX_ITER = 128 };  // compute_partial_influences' max_iter
    for (int64_t r = 0; r < n_rows; r++)
        if (row_node[r] < 0 || row_node[r] >= n_cols)
            return err_set(e, "partial influence: row %lld targets node %lld, outside [0, %lld)", (long long)r,
                           (long long)row_node[r], (long long)n_cols);
    float *denom = xmalloc((size_t)(n_rows ? n_rows : 1) * sizeof *denom);
    double *v = xmalloc((size_t)(n_rows ? n_rows : 1) * sizeof *v);
    double *prod = xcalloc((size_t)(n_cols ? n_cols : 1), sizeof *prod);
    double *acc = xcalloc((size_t)(n_cols ? n_cols : 1), sizeof *acc);
    row_denominators(rows, n_rows, n_cols, row_node, NULL, 1e-8f, denom);
    // prod starts as the logit probabilities on the logit nodes: gathered per row that is row_weight.
    for (int64_t r = 0; r < n_rows; r++) v[r] = row_weight[r];
    StepCtx c = {rows, n_rows, n_cols, denom, row_node, NULL, v, prod};
    int it, rc = 0;
    for (it = 0; it < MAX_ITER; it++) {
        influence_step(&c);
        if (!any_nonzero(prod, n_cols)) break;
        for (int64_t s = 0; s < n_cols; s++) acc[s] += prod[s];
        for (int64_t r = 0; r < n_rows; r++) v[r] = prod[row_node[r]];
    }
    if (it == MAX_ITER)
        rc = err_set(e, "partial influence did not converge in %d iterations (the rows have a cycle)", MAX_ITER);
    for (int64_t s = 0; s < n_cols; s++) influence[s] = (float)acc[s];
    free(denom);
    free(v);
    free(prod);
    free(acc);
    return rc;
}

// ---- the graph's rows ---------------------------------------------------------------------------

static int64_t n_rows_of(const AttribGraph *g) { return (int64_t)g->n_feat + g->n_logits; }

static void graph_row_nodes(const AttribGraph *g, int64_t *row_node) {
    int64_t n = attrib_n_nodes(g);
    for (int64_t r = 0; r < g->n_feat; r++) row_node[r] = r;
    for (int k = 0; k < g->n_logits; k++) row_node[g->n_feat + k] = n - g->n_logits + k;
}

// compute_influence(Ā, w): I = w·Ā + w·Ā² + … until the term is exactly zero (Ā of a DAG is
// nilpotent), at most 1000 terms. w is zero except on the logit nodes, whose rows are stored.
static int graph_influence(const AttribGraph *g, const int64_t *row_node, const float *denom, const uint8_t *keep,
                           const double *w, double *influence, Error *e) {
    enum { MAX_ITER = 1000 };  // compute_influence's max_iter
    int64_t R = n_rows_of(g), N = attrib_n_nodes(g);
    double *v = xmalloc((size_t)R * sizeof *v), *cur = xmalloc((size_t)N * sizeof *cur);
    for (int64_t r = 0; r < R; r++) v[r] = w[row_node[r]];
    StepCtx c = {g->adj, R, N, denom, row_node, keep, v, cur};
    influence_step(&c);
    memcpy(influence, cur, (size_t)N * sizeof *cur);
    int rc = 0;
    for (int it = 0; any_nonzero(cur, N); it++) {
        if (it >= MAX_ITER) {
            rc = err_set(e, "influence did not converge after %d iterations (the adjacency has a cycle)", it);
            break;
        }
        // a dropped node's row is zero in the pruned matrix (its column already is)
        for (int64_t r = 0; r < R; r++) v[r] = keep && !keep[row_node[r]] ? 0 : cur[row_node[r]];
        influence_step(&c);
        for (int64_t s = 0; s < N; s++) influence[s] += cur[s];
    }
    free(v);
    free(cur);
    return rc;
}

// ---- the cut: find_threshold without sorting -------------------------------------------------
// circuit-tracer: sorted = sort(scores, descending); cum = cumsum(sorted) / sum(sorted) (cumsum
// accumulates in double on the CPU and rounds to float; the division is in float);
// i = searchsorted(cum, threshold) (first i with cum[i] ≥ threshold, threshold as float);
// i = min(i, n − 1); cut = sorted[i]; keep score ≥ cut.
// All entries equal to sorted[i] share the cut, so only the value matters: it is the largest value
// v whose cumulative sum through all entries ≥ v reaches the threshold (walking the distinct values
// from the top), and the smallest value when none does. Scores are ≥ 0, so their float bit
// patterns sort like the values: a histogram over the high 16 bits finds the bin holding v, a
// second pass over that bin's entries (low 16 bits: exact values) finds v itself.
typedef void (*ScoreRowFn)(void *ctx, int64_t r, float *out);  // fills one row of scores

#define CUT_BINS 65536

static uint32_t score_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return x == 0 ? 0 : u;  // −0 sorts as 0
}

static int reaches(double cum, float total, float threshold) {
    float q = (float)cum / total;  // NaN when everything is zero: never reaches
    return q >= threshold;
}

static float find_cut(ScoreRowFn fn, void *ctx, int64_t n_rows, int64_t n_cols, int64_t implicit_zeros,
                      double threshold) {
    float *row = xmalloc((size_t)(n_cols ? n_cols : 1) * sizeof *row);
    int64_t *count = xcalloc(CUT_BINS, sizeof *count);
    double *sum = xcalloc(CUT_BINS, sizeof *sum);
    double total = 0;
    float min_value = implicit_zeros > 0 ? 0.0f : INFINITY;
    for (int64_t r = 0; r < n_rows; r++) {
        fn(ctx, r, row);
        for (int64_t s = 0; s < n_cols; s++) {
            uint32_t b = score_bits(row[s]) >> 16;
            count[b]++;
            sum[b] += row[s];
            total += row[s];
            if (row[s] < min_value) min_value = row[s];
        }
    }
    float total_f = (float)total, thr = (float)threshold, cut = min_value;
    double before = 0;
    int bin = -1;
    for (int b = CUT_BINS - 1; b >= 0; b--) {
        if (!count[b]) continue;
        if (reaches(before + sum[b], total_f, thr)) {
            bin = b;
            break;
        }
        before += sum[b];
    }
    if (bin >= 0) {
        memset(count, 0, CUT_BINS * sizeof *count);
        for (int64_t r = 0; r < n_rows; r++) {
            fn(ctx, r, row);
            for (int64_t s = 0; s < n_cols; s++) {
                uint32_t u = score_bits(row[s]);
                if ((int)(u >> 16) == bin) count[u & 0xffff]++;
            }
        }
        if (bin == 0) count[0] += implicit_zeros;
        for (int lo = CUT_BINS - 1; lo >= 0; lo--) {
            if (!count[lo]) continue;
            uint32_t u = ((uint32_t)bin << 16) | (uint32_t)lo;
            memcpy(&cut, &u, sizeof cut);
            before += (double)count[lo] * cut;
            // the last value is the bin's smallest: the answer also when the two passes' sums
            // round differently and the threshold is not quite reached inside the bin
            if (reaches(before, total_f, thr)) break;
        }
    }
    if (cut == INFINITY) cut = 0;  // no scores at all
    free(row);
    free(count);
    free(sum);
    return cut;
}

// Scores of the node cut: the node influences as one row.
typedef struct {
    const float *values;
    int64_t n;
} VectorScores;

static void vector_row(void *arg, int64_t r, float *out) {
    const VectorScores *c = arg;
    (void)r;
    memcpy(out, c->values, (size_t)c->n * sizeof *out);
}

// Edge scores E[t, s] = Ā′[t, s] · (I′[t] + w[t]) of one stored row (compute_edge_influence), in
// float as circuit-tracer multiplies them; zero where the row's or the column's node was pruned.
typedef struct {
    const AttribGraph *g;
    const int64_t *row_node;
    const float *denom;       // (R,) of the pruned matrix
    const uint8_t *keep;      // (N,)
    const float *out_weight;  // (N,) I′ + w
} EdgeScores;

static void edge_row(void *arg, int64_t r, float *out) {
    const EdgeScores *c = arg;
    int64_t N = attrib_n_nodes(c->g);
    const float *row = c->g->adj + r * N;
    if (!c->keep[c->row_node[r]]) {
        memset(out, 0, (size_t)N * sizeof *out);
        return;
    }
    float den = c->denom[r], wt = c->out_weight[c->row_node[r]];
    for (int64_t s = 0; s < N; s++) out[s] = c->keep[s] ? (fabsf(row[s]) / den) * wt : 0.0f;
}

// ---- prune_graph + compute_graph_scores --------------------------------------------------------

static int check_graph(const AttribGraph *g, Error *e) {
    if (g->n_layers < 1 || g->n_pos < 1)
        return err_set(e, "attribution graph: %d layers, %d positions", g->n_layers, g->n_pos);
    if (g->n_logits < 1) return err_set(e, "attribution graph: no logit targets");
    if (g->n_feat < 0 || g->n_feat > g->n_active)
        return err_set(e, "attribution graph: %d feature nodes of %d active features", g->n_feat, g->n_active);
    if (!g->adj || !g->logit_prob) return err_set(e, "attribution graph: no adjacency rows");
    int64_t N = attrib_n_nodes(g), R = n_rows_of(g);
    for (int64_t i = 0; i < R * N; i++)
        if (!isfinite(g->adj[i]))
            return err_set(e, "attribution graph: adjacency row %lld, column %lld is %g", (long long)(i / N),
                           (long long)(i % N), (double)g->adj[i]);
    return 0;
}

typedef struct {
    int64_t i;
    float v;
} Ranked;

static int rank_desc(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);  // ties in index order (torch.sort is not stable; see graph.md)
}

int attrib_prune(const AttribGraph *g, double node_threshold, double edge_threshold, AttribPruned *out, Error *e) {
    memset(out, 0, sizeof *out);
    if (!(node_threshold >= 0 && node_threshold <= 1))
        return err_set(e, "node threshold %g is not in [0, 1]", node_threshold);
    if (!(edge_threshold >= 0 && edge_threshold <= 1))
        return err_set(e, "edge threshold %g is not in [0, 1]", edge_threshold);
    if (check_graph(g, e)) return -1;
    const int64_t N = attrib_n_nodes(g), R = n_rows_of(g), K = g->n_logits, T = g->n_pos, F = g->n_feat;
    const int64_t err_begin = F, err_end = F + (int64_t)g->n_layers * T, tok_end = err_end + T;
    int64_t *row_node = xmalloc((size_t)R * sizeof *row_node);
    graph_row_nodes(g, row_node);
    double *w = xcalloc((size_t)N, sizeof *w), *infl = xmalloc((size_t)N * sizeof *infl);
    for (int64_t k = 0; k < K; k++) w[N - K + k] = g->logit_prob[k];
    float *denom = xmalloc((size_t)R * sizeof *denom), *infl_f = xmalloc((size_t)N * sizeof *infl_f);
    uint8_t *keep = xcalloc((size_t)N, 1);
    float *out_weight = NULL;
    int rc = -1;

    // Node influence on the unpruned graph and the node cut.
    row_denominators(g->adj, R, N, row_node, NULL, 1e-10f, denom);
    if (graph_influence(g, row_node, denom, NULL, w, infl, e)) goto done;
    for (int64_t s = 0; s < N; s++) infl_f[s] = (float)infl[s];
    VectorScores vs = {infl_f, N};
    float node_cut = find_cut(vector_row, &vs, 1, N, 0, node_threshold);
    for (int64_t s = 0; s < N; s++) keep[s] = infl_f[s] >= node_cut || s >= N - K - T;

    // Graph scores of the unpruned graph (compute_graph_scores).
    {
        double tok = 0, err = 0, num = 0, den = 0;
        for (int64_t s = err_begin; s < err_end; s++) err += infl_f[s];
        for (int64_t s = err_end; s < tok_end; s++) tok += infl_f[s];
        for (int64_t s = 0; s < N; s++) {
            double o = (double)infl_f[s] + w[s];
            num += o;  // rows without inputs: non-error fraction 1
            den += o;
        }
        for (int64_t r = 0; r < R; r++) {
            const float *row = g->adj + r * N;
            double e_frac = 0;
            for (int64_t s = err_begin; s < err_end; s++) e_frac += fabsf(row[s]) / denom[r];
            num -= e_frac * ((double)infl_f[row_node[r]] + w[row_node[r]]);
        }
        out->replacement_score = tok / (tok + err);
        out->completeness_score = num / den;
    }

    // Edge scores on the pruned matrix and the edge cut over all N² entries (the N − R rows
    // without inputs are zeros).
    row_denominators(g->adj, R, N, row_node, keep, 1e-10f, denom);
    double *infl2 = xmalloc((size_t)N * sizeof *infl2);
    if (graph_influence(g, row_node, denom, keep, w, infl2, e)) {
        free(infl2);
        goto done;
    }
    out_weight = xmalloc((size_t)N * sizeof *out_weight);
    for (int64_t s = 0; s < N; s++) out_weight[s] = (float)infl2[s] + (float)w[s];
    free(infl2);
    EdgeScores es = {g, row_node, denom, keep, out_weight};
    float edge_cut = find_cut(edge_row, &es, R, N, (N - R) * N, edge_threshold);
    uint8_t *edge = xmalloc((size_t)(R * N));
    float *row = xmalloc((size_t)N * sizeof *row);
    for (int64_t r = 0; r < R; r++) {
        edge_row(&es, r, row);
        for (int64_t s = 0; s < N; s++) edge[r * N + s] = row[s] >= edge_cut;
    }
    free(row);

    // Clean-up: drop feature and error nodes without a kept outgoing edge and feature nodes without
    // a kept incoming edge, until nothing changes. With a zero cut every entry of every row is kept,
    // also the (unstored) rows of error and token nodes, which then give every kept column an
    // outgoing edge: zero_cut stands in for them.
    const int zero_cut = edge_cut <= 0;
    uint8_t *old = xmalloc((size_t)N), *has_out = xmalloc((size_t)N);
    memcpy(old, keep, (size_t)N);
    for (int pass = 0;; pass++) {
        if (pass > 0) {
            if (!memcmp(old, keep, (size_t)N)) break;
            memcpy(old, keep, (size_t)N);
            for (int64_t r = 0; r < R; r++) {
                uint8_t *er = edge + r * N;
                if (!keep[row_node[r]]) memset(er, 0, (size_t)N);
                else
                    for (int64_t s = 0; s < N; s++) er[s] &= keep[s];
            }
        }
        memset(has_out, zero_cut, (size_t)N);
        for (int64_t r = 0; r < R; r++) {
            const uint8_t *er = edge + r * N;
            for (int64_t s = 0; s < N - K - T; s++) has_out[s] |= er[s];
        }
        for (int64_t s = 0; s < N - K - T; s++) keep[s] &= has_out[s];
        for (int64_t r = 0; r < F; r++) {
            const uint8_t *er = edge + r * N;
            int any = 0;
            for (int64_t s = 0; s < N && !any; s++) any = er[s];
            keep[r] &= (uint8_t)any;
        }
    }
    free(old);
    free(has_out);

    // Cumulative influence fraction at each node's rank.
    Ranked *rk = xmalloc((size_t)N * sizeof *rk);
    double total = 0, cum = 0;
    for (int64_t s = 0; s < N; s++) {
        rk[s] = (Ranked){s, infl_f[s]};
        total += infl_f[s];
    }
    qsort(rk, (size_t)N, sizeof *rk, rank_desc);
    out->cumulative = xmalloc((size_t)N * sizeof *out->cumulative);
    float total_f = (float)total;
    for (int64_t i = 0; i < N; i++) {
        cum += rk[i].v;
        out->cumulative[rk[i].i] = (float)cum / total_f;
    }
    free(rk);

    out->n_nodes = N;
    out->influence = infl_f;
    infl_f = NULL;
    out->node_kept = keep;
    keep = NULL;
    out->edge_kept = edge;
    rc = 0;
done:
    free(row_node);
    free(w);
    free(infl);
    free(denom);
    free(infl_f);
    free(keep);
    free(out_weight);
    if (rc) attrib_pruned_free(out);
    return rc;
}

// ---- the graph JSON (create_graph_files; formats/graph.md) ----------------------------------

// A JSON string: invalid UTF-8 becomes U+FFFD (as Python's decode(errors="replace")), quotes,
// backslashes and control characters are escaped.
static void put_json_string(FILE *f, const char *s) {
    size_t len = s ? strlen(s) : 0;
    char *buf = xmalloc(3 * len + 1);
    size_t n = utf8_lossy((const unsigned char *)(s ? s : ""), len, buf);
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
    free(buf);
}

// A number as JSON: float32 values with 9 significant digits (they read back bit-exact), a
// non-finite one as null (JSON has no NaN).
static void put_json_float(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.9g", x);
    else fputs("null", f);
}

static void put_json_double(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.17g", x);
    else fputs("null", f);
}

// The node id of node i (formats/graph.md): circuit-tracer 0.5.0's, except error nodes, whose
// 0.5.0 id `0_{layer}_{pos}` is also the id of layer-0 feature `layer` at pos; ours puts -1 where
// feature ids have their layer: `-1_{layer}_{pos}` (no layer is -1, so no id can repeat).
static void node_id(const AttribGraph *g, int64_t i, char *out, size_t size) {
    int64_t N = attrib_n_nodes(g), F = g->n_feat, T = g->n_pos, err_end = F + (int64_t)g->n_layers * T;
    if (i < F) {
        const int32_t *a = g->active + 3 * (int64_t)g->feat_active[i];
        snprintf(out, size, "%d_%d_%d", a[0], a[2], a[1]);
    } else if (i < err_end) {
        snprintf(out, size, "-1_%lld_%lld", (long long)((i - F) / T), (long long)((i - F) % T));
    } else if (i < err_end + T) {
        snprintf(out, size, "E_%d_%lld", g->tokens[i - err_end], (long long)(i - err_end));
    } else {
        snprintf(out, size, "%d_%d_%d", g->n_layers + 1, g->logit_token[i - (N - g->n_logits)], g->n_pos - 1);
    }
}

static void put_node(FILE *f, const AttribGraph *g, const AttribPruned *p, const AttribMeta *m, int64_t i) {
    int64_t N = attrib_n_nodes(g), F = g->n_feat, T = g->n_pos, err_end = F + (int64_t)g->n_layers * T;
    char id[96], js[96], layer[24];
    node_id(g, i, id, sizeof id);
    long long feature, ctx;
    const char *type;
    double token_prob = 0, activation = NAN, influence = p->cumulative[i];
    int target = 0;
    char clerp[512] = "";
    if (i < F) {
        const int32_t *a = g->active + 3 * (int64_t)g->feat_active[i];
        long long l = a[0], idx = a[2];
        feature = (l + idx) * (l + idx + 1) / 2 + idx;  // Cantor pairing of (layer, index)
        snprintf(layer, sizeof layer, "%d", a[0]);
        ctx = a[1];
        type = "cross layer transcoder";
        snprintf(js, sizeof js, "%d_%d-0", a[0], a[2]);
        activation = g->activation[g->feat_active[i]];
    } else if (i < err_end) {
        long long l = (i - F) / T, pos = (i - F) % T;
        feature = -1;
        snprintf(layer, sizeof layer, "%lld", l);
        ctx = pos;
        type = "mlp reconstruction error";
        snprintf(js, sizeof js, "-1_%lld-%lld", l, pos);
    } else if (i < err_end + T) {
        ctx = i - err_end;
        feature = ctx;
        snprintf(layer, sizeof layer, "E");
        type = "embedding";
        snprintf(js, sizeof js, "E_%d-%lld", g->tokens[ctx], ctx);
    } else {
        int k = (int)(i - (N - g->n_logits));
        feature = g->logit_token[k];
        snprintf(layer, sizeof layer, "%d", g->n_layers + 1);
        ctx = T - 1;
        type = "logit";
        token_prob = g->logit_prob[k];
        target = k == 0;
        snprintf(js, sizeof js, "L_%d-%d", g->logit_token[k], g->n_pos - 1);
        influence = NAN;  // create_nodes gives logit nodes no influence
        char tok[32];
        snprintf(tok, sizeof tok, "%d", g->logit_token[k]);
        const char *s = m->logit_strings ? m->logit_strings[k] : tok;
        snprintf(clerp, sizeof clerp, "Output \"%s\" (p=%.3f)", s, token_prob);
    }
    fprintf(
        f,
        "    {\"node_id\": \"%s\", \"feature\": %lld, \"layer\": \"%s\", \"ctx_idx\": %lld, \"feature_type\": \"%s\", "
        "\"token_prob\": ",
        id, feature, layer, ctx, type);
    put_json_float(f, token_prob);
    fprintf(f, ", \"is_target_logit\": %s, \"run_idx\": 0, \"reverse_ctx_idx\": 0, \"jsNodeId\": \"%s\", \"clerp\": ",
            target ? "true" : "false", js);
    put_json_string(f, clerp);
    fputs(", \"influence\": ", f);
    put_json_float(f, influence);
    fputs(", \"activation\": ", f);
    put_json_float(f, activation);
    fputc('}', f);
}

static void put_metadata(FILE *f, const AttribGraph *g, const AttribPruned *p, const AttribMeta *m) {
    fputs("  \"metadata\": {\"slug\": ", f);
    put_json_string(f, m->slug);
    fputs(", \"scan\": ", f);
    put_json_string(f, m->scan);
    fputs(", \"transcoder_list\": [], \"prompt_tokens\": [", f);
    for (int t = 0; t < g->n_pos; t++) {
        char id[32];
        snprintf(id, sizeof id, "%d", g->tokens[t]);
        if (t) fputs(", ", f);
        put_json_string(f, m->token_strings ? m->token_strings[t] : id);
    }
    fputs("],\n    \"prompt\": ", f);
    put_json_string(f, m->prompt);
    fputs(", \"node_threshold\": ", f);
    put_json_double(f, m->node_threshold);
    fputs(", \"schema_version\": 1,\n    \"info\": {\"description\": ", f);
    char desc[256];
    snprintf(desc, sizeof desc, "replacement score %.4f, completeness score %.4f", p->replacement_score,
             p->completeness_score);
    put_json_string(f, desc);
    fputs(", \"generator\": {\"name\": \"cltkit attrib\"}, \"replacement_score\": ", f);
    put_json_double(f, p->replacement_score);
    fputs(", \"completeness_score\": ", f);
    put_json_double(f, p->completeness_score);
    fputs("},\n    \"generation_settings\": {\"max_n_logits\": ", f);
    fprintf(f, "%d, \"desired_logit_prob\": ", m->max_n_logits);
    put_json_double(f, m->desired_logit_prob);
    fprintf(f, ", \"batch_size\": %d, \"max_feature_nodes\": %d, \"model\": ", m->batch_size,
            m->max_feature_nodes > 0 ? m->max_feature_nodes : g->n_active);
    put_json_string(f, m->model_name);
    fputs(", \"clt\": ", f);
    put_json_string(f, m->clt_name);
    fputs("},\n    \"pruning_settings\": {\"node_threshold\": ", f);
    put_json_double(f, m->node_threshold);
    fputs(", \"edge_threshold\": ", f);
    put_json_double(f, m->edge_threshold);
    fputs("}},\n", f);
}

int attrib_write_json(FILE *f, const char *name, const AttribGraph *g, const AttribPruned *p, const AttribMeta *meta,
                      Error *e) {
    const int64_t N = attrib_n_nodes(g), R = n_rows_of(g);
    if (p->n_nodes != N)
        return err_set(e, "%s: pruning result has %lld nodes, the graph %lld", name, (long long)p->n_nodes,
                       (long long)N);
    int64_t *row_node = xmalloc((size_t)(R ? R : 1) * sizeof *row_node);
    graph_row_nodes(g, row_node);
    // create_used_nodes_and_edges: the links are the kept edges between kept nodes (target order,
    // then source order); a node is written when a link touches it, embeddings and logits always.
    uint8_t *used = xcalloc((size_t)N, 1);
    for (int64_t s = N - g->n_logits - g->n_pos; s < N; s++) used[s] = p->node_kept[s];
    for (int64_t r = 0; r < R; r++) {
        if (!p->node_kept[row_node[r]]) continue;
        const uint8_t *er = p->edge_kept + r * N;
        for (int64_t s = 0; s < N; s++)
            if (er[s] && p->node_kept[s]) used[s] = used[row_node[r]] = 1;
    }
    fputs("{\n", f);
    put_metadata(f, g, p, meta);
    fputs("  \"qParams\": {\"pinnedIds\": [], \"supernodes\": [], \"linkType\": \"both\", \"clickedId\": \"\", "
          "\"sg_pos\": \"\"},\n  \"nodes\": [\n", f);
    int first = 1;
    for (int64_t i = 0; i < N; i++) {
        if (!used[i]) continue;
        if (!first) fputs(",\n", f);
        first = 0;
        put_node(f, g, p, meta, i);
    }
    fputs("\n  ],\n  \"links\": [\n", f);
    first = 1;
    for (int64_t r = 0; r < R; r++) {
        if (!p->node_kept[row_node[r]]) continue;
        char tid[96], sid[96];
        node_id(g, row_node[r], tid, sizeof tid);
        const uint8_t *er = p->edge_kept + r * N;
        for (int64_t s = 0; s < N; s++) {
            if (!er[s] || !p->node_kept[s]) continue;
            node_id(g, s, sid, sizeof sid);
            fprintf(f, "%s    {\"source\": \"%s\", \"target\": \"%s\", \"weight\": ", first ? "" : ",\n", sid, tid);
            put_json_float(f, g->adj[r * N + s]);
            fputc('}', f);
            first = 0;
        }
    }
    fputs("\n  ]\n}\n", f);
    free(row_node);
    free(used);
    if (fflush(f) || ferror(f)) return err_set(e, "%s: write failed", name);
    return 0;
}

// ---- the raw file (formats/graph.md) ------------------------------------------------------------

#define RAW_FORMAT "cltkit-attrib-raw"
#define RAW_VERSION 1

int attrib_write_raw(const char *path, const AttribGraph *g, const AttribPruned *p, Error *e) {
    const int64_t N = attrib_n_nodes(g), R = n_rows_of(g);
    if (p && p->n_nodes != N)
        return err_set(e, "%s: pruning result has %lld nodes, the graph %lld", path, (long long)p->n_nodes,
                       (long long)N);
    // CSR of the stored rows: exact zeros (no path) are left out.
    int64_t *row_ptr = xmalloc((size_t)(R + 1) * sizeof *row_ptr), nnz = 0;
    for (int64_t i = 0; i < R * N; i++) nnz += g->adj[i] != 0;
    int32_t *col = xmalloc((size_t)(nnz ? nnz : 1) * sizeof *col);
    float *val = xmalloc((size_t)(nnz ? nnz : 1) * sizeof *val);
    uint8_t *kept = p ? xmalloc((size_t)(nnz ? nnz : 1)) : NULL;
    // A kept edge where A is zero happens only when the edge cut is 0, and then every entry is
    // kept (see attrib_prune): one flag stands for them.
    int kept_all = 0, kept_zero = 0;
    if (p) {
        kept_all = 1;
        for (int64_t i = 0; i < R * N; i++) {
            kept_all &= p->edge_kept[i];
            kept_zero |= p->edge_kept[i] && g->adj[i] == 0;
        }
    }
    int rc = 0;
    if (kept_zero && !kept_all) {
        rc = err_set(e, "%s: edge mask keeps a zero edge but not all edges", path);
        goto done;
    }
    nnz = 0;
    row_ptr[0] = 0;
    for (int64_t r = 0; r < R; r++) {
        for (int64_t s = 0; s < N; s++) {
            float a = g->adj[r * N + s];
            if (a == 0) continue;
            col[nnz] = (int32_t)s;
            val[nnz] = a;
            if (kept) kept[nnz] = p->edge_kept[r * N + s];
            nnz++;
        }
        row_ptr[r + 1] = nnz;
    }
    StWriteTensor t[16];
    int n = 0;
    t[n++] = (StWriteTensor){"row_ptr", ST_I64, 1, {R + 1}, row_ptr};
    t[n++] = (StWriteTensor){"col_idx", ST_I32, 1, {nnz}, col};
    t[n++] = (StWriteTensor){"values", ST_F32, 1, {nnz}, val};
    t[n++] = (StWriteTensor){"tokens", ST_I32, 1, {g->n_pos}, g->tokens};
    t[n++] = (StWriteTensor){"active", ST_I32, 2, {g->n_active, 3}, g->active};
    t[n++] = (StWriteTensor){"activation", ST_F32, 1, {g->n_active}, g->activation};
    t[n++] = (StWriteTensor){"feat_active", ST_I32, 1, {g->n_feat}, g->feat_active};
    t[n++] = (StWriteTensor){"logit_token", ST_I32, 1, {g->n_logits}, g->logit_token};
    t[n++] = (StWriteTensor){"logit_prob", ST_F32, 1, {g->n_logits}, g->logit_prob};
    if (g->error_vectors)
        t[n++] = (StWriteTensor){"error_vectors", ST_F32, 3, {g->n_layers, g->n_pos, g->d_model}, g->error_vectors};
    if (p) {
        t[n++] = (StWriteTensor){"influence", ST_F32, 1, {N}, p->influence};
        t[n++] = (StWriteTensor){"cumulative", ST_F32, 1, {N}, p->cumulative};
        t[n++] = (StWriteTensor){"node_kept", ST_U8, 1, {N}, p->node_kept};
        t[n++] = (StWriteTensor){"edge_kept", ST_U8, 1, {nnz}, kept};
    }
    char meta[1024];
    int len =
        snprintf(meta, sizeof meta,
                 "{\"format\": \"" RAW_FORMAT
                 "\", \"version\": \"%d\", \"n_layers\": \"%d\", \"n_pos\": \"%d\", "
                 "\"d_model\": \"%d\", \"vocab_size\": \"%d\", \"n_active\": \"%d\", \"n_feat\": \"%d\", "
                 "\"n_logits\": \"%d\"",
                 RAW_VERSION, g->n_layers, g->n_pos, g->d_model, g->vocab_size, g->n_active, g->n_feat, g->n_logits);
    if (p)
        snprintf(meta + len, sizeof meta - (size_t)len,
                 ", \"replacement_score\": \"%.17g\", \"completeness_score\": \"%.17g\", \"edge_kept_all\": \"%d\"}",
                 p->replacement_score, p->completeness_score, kept_all);
    else
        snprintf(meta + len, sizeof meta - (size_t)len, "}");
    rc = safetensors_write(path, t, n, meta, e);
done:
    free(row_ptr);
    free(col);
    free(val);
    free(kept);
    return rc;
}

// A non-negative integer from the raw file's metadata (safetensors metadata values are strings).
static int meta_int(const char *path, json_t *meta, const char *key, int64_t max, int *out, Error *e) {
    const char *s = json_string_value(json_object_get(meta, key));
    char *end;
    if (!s) return err_set(e, "%s: metadata has no \"%s\"", path, key);
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0 || v > max)
        return err_set(e, "%s: metadata \"%s\" = \"%s\" is not in [0, %lld]", path, key, s, (long long)max);
    *out = (int)v;
    return 0;
}

static int meta_double(const char *path, json_t *meta, const char *key, double *out, Error *e) {
    const char *s = json_string_value(json_object_get(meta, key));
    char *end;
    if (!s) return err_set(e, "%s: metadata has no \"%s\"", path, key);
    *out = strtod(s, &end);
    if (!*s || *end) return err_set(e, "%s: metadata \"%s\" = \"%s\" is not a number", path, key, s);
    return 0;
}

// The tensor `name` with this dtype and shape, or an error naming the file and the tensor.
static const void *raw_tensor(const SafeTensors *st, const char *name, StDtype dt, int ndim, const int64_t *shape,
                              Error *e) {
    const StTensor *t = safetensors_find(st, name);
    if (!t) {
        err_set(e, "%s: no tensor \"%s\"", st->path, name);
        return NULL;
    }
    int ok = t->dtype == dt && t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (!ok) {
        char want[128] = "", have[128] = "";
        for (int d = 0; d < ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "", (long long)shape[d]);
        for (int d = 0; d < t->ndim; d++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", d ? "," : "", (long long)t->shape[d]);
        err_set(e, "%s: tensor \"%s\" is %s [%s], expected %s [%s]", st->path, name, st_dtype_name(t->dtype), have,
                st_dtype_name(dt), want);
        return NULL;
    }
    if (t->data && (uintptr_t)t->data % st_dtype_size(dt)) {  // attrib's writer aligns every tensor
        err_set(e, "%s: tensor \"%s\" is not aligned to %zu bytes (not written by attrib)", st->path, name,
                st_dtype_size(dt));
        return NULL;
    }
    return t->data ? t->data : (const void *)"";  // a zero-size tensor has no data pointer
}

static void *copy_of(const void *src, size_t n) {
    void *d = xmalloc(n ? n : 1);
    if (n) memcpy(d, src, n);
    return d;
}

// The raw file's contents from a parsed safetensors file (path = its name in messages).
static int raw_from_st(const SafeTensors *stp, AttribGraph *g, AttribPruned *p, Error *e) {
    const SafeTensors st = *stp;
    const char *path = st.path;
    memset(g, 0, sizeof *g);
    if (p) memset(p, 0, sizeof *p);
    int rc = -1;
    json_t *meta = st.metadata_json ? json_loads(st.metadata_json, 0, NULL) : NULL;
    const char *format = json_string_value(json_object_get(meta, "format"));
    if (!format || strcmp(format, RAW_FORMAT)) {
        err_set(e, "%s: not an attribution raw file (metadata \"format\" is not \"" RAW_FORMAT "\")", path);
        goto done;
    }
    int version;
    if (meta_int(path, meta, "version", 1 << 30, &version, e)) goto done;
    if (version != RAW_VERSION) {
        err_set(e, "%s: raw file version %d, this build reads version %d", path, version, RAW_VERSION);
        goto done;
    }
    // Bounds keep every product below 2^62.
    if (meta_int(path, meta, "n_layers", 1 << 16, &g->n_layers, e) ||
        meta_int(path, meta, "n_pos", 1 << 24, &g->n_pos, e) ||
        meta_int(path, meta, "d_model", 1 << 24, &g->d_model, e) ||
        meta_int(path, meta, "vocab_size", INT32_MAX, &g->vocab_size, e) ||
        meta_int(path, meta, "n_active", 1 << 30, &g->n_active, e) ||
        meta_int(path, meta, "n_feat", 1 << 30, &g->n_feat, e) ||
        meta_int(path, meta, "n_logits", 1 << 20, &g->n_logits, e))
        goto done;
    if (g->n_layers < 1 || g->n_pos < 1 || g->n_logits < 1 || g->n_feat > g->n_active) {
        err_set(e, "%s: bad sizes: %d layers, %d positions, %d logits, %d of %d features", path, g->n_layers, g->n_pos,
                g->n_logits, g->n_feat, g->n_active);
        goto done;
    }
    const int64_t N = attrib_n_nodes(g), R = n_rows_of(g);
    if (N > INT32_MAX) {
        err_set(e, "%s: %lld nodes do not fit the int32 column indices", path, (long long)N);
        goto done;
    }
    int64_t sh[3];
    sh[0] = R + 1;
    const int64_t *row_ptr = raw_tensor(&st, "row_ptr", ST_I64, 1, sh, e);
    if (!row_ptr) goto done;
    int64_t nnz = row_ptr[R];
    if (row_ptr[0] != 0 || nnz < 0 || nnz > R * N) {
        err_set(e, "%s: row_ptr starts at %lld and ends at %lld (expected 0 and at most %lld)", path,
                (long long)row_ptr[0], (long long)nnz, (long long)(R * N));
        goto done;
    }
    sh[0] = nnz;
    const int32_t *col = raw_tensor(&st, "col_idx", ST_I32, 1, sh, e);
    const float *val = col ? raw_tensor(&st, "values", ST_F32, 1, sh, e) : NULL;
    if (!val) goto done;
    for (int64_t r = 0; r < R; r++) {
        if (row_ptr[r + 1] < row_ptr[r]) {
            err_set(e, "%s: row_ptr decreases at row %lld", path, (long long)r);
            goto done;
        }
        for (int64_t i = row_ptr[r]; i < row_ptr[r + 1]; i++)
            if (col[i] < 0 || col[i] >= N || (i > row_ptr[r] && col[i] <= col[i - 1])) {
                err_set(e, "%s: row %lld: column index %d out of range or out of order", path, (long long)r, col[i]);
                goto done;
            }
    }
    sh[0] = g->n_pos;
    const int32_t *tokens = raw_tensor(&st, "tokens", ST_I32, 1, sh, e);
    sh[0] = g->n_active;
    sh[1] = 3;
    const int32_t *active = tokens ? raw_tensor(&st, "active", ST_I32, 2, sh, e) : NULL;
    const float *activation = active ? raw_tensor(&st, "activation", ST_F32, 1, sh, e) : NULL;
    sh[0] = g->n_feat;
    const int32_t *feat_active = activation ? raw_tensor(&st, "feat_active", ST_I32, 1, sh, e) : NULL;
    sh[0] = g->n_logits;
    const int32_t *logit_token = feat_active ? raw_tensor(&st, "logit_token", ST_I32, 1, sh, e) : NULL;
    const float *logit_prob = logit_token ? raw_tensor(&st, "logit_prob", ST_F32, 1, sh, e) : NULL;
    if (!logit_prob) goto done;
    for (int i = 0; i < g->n_active; i++) {
        const int32_t *a = active + 3 * i;
        if (a[0] < 0 || a[0] >= g->n_layers || a[1] < 0 || a[1] >= g->n_pos || a[2] < 0) {
            err_set(e, "%s: active feature %d = (layer %d, pos %d, index %d) is out of range", path, i, a[0], a[1],
                    a[2]);
            goto done;
        }
    }
    for (int i = 0; i < g->n_feat; i++)
        if (feat_active[i] < 0 || feat_active[i] >= g->n_active || (i && feat_active[i] <= feat_active[i - 1])) {
            err_set(e, "%s: feat_active[%d] = %d is out of range or out of order", path, i, feat_active[i]);
            goto done;
        }
    const float *errv = NULL;
    if (safetensors_find(&st, "error_vectors")) {
        sh[0] = g->n_layers;
        sh[1] = g->n_pos;
        sh[2] = g->d_model;
        if (!(errv = raw_tensor(&st, "error_vectors", ST_F32, 3, sh, e))) goto done;
    }
    const float *infl = NULL, *cum = NULL;
    const uint8_t *node_kept = NULL, *edge_kept = NULL;
    double rs = 0, cs = 0;
    int kept_all = 0;
    if (p) {
        if (!safetensors_find(&st, "node_kept")) {
            err_set(e, "%s: no pruning result in the file (tensor \"node_kept\")", path);
            goto done;
        }
        sh[0] = N;
        if (!(infl = raw_tensor(&st, "influence", ST_F32, 1, sh, e)) ||
            !(cum = raw_tensor(&st, "cumulative", ST_F32, 1, sh, e)) ||
            !(node_kept = raw_tensor(&st, "node_kept", ST_U8, 1, sh, e)))
            goto done;
        sh[0] = nnz;
        if (!(edge_kept = raw_tensor(&st, "edge_kept", ST_U8, 1, sh, e))) goto done;
        if (meta_double(path, meta, "replacement_score", &rs, e) ||
            meta_double(path, meta, "completeness_score", &cs, e) ||
            meta_int(path, meta, "edge_kept_all", 1, &kept_all, e))
            goto done;
    }

    // Everything checked: copy out.
    g->adj = xcalloc((size_t)(R * N), sizeof *g->adj);
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = row_ptr[r]; i < row_ptr[r + 1]; i++) g->adj[r * N + col[i]] = val[i];
    g->tokens = copy_of(tokens, (size_t)g->n_pos * sizeof *tokens);
    g->active = copy_of(active, (size_t)g->n_active * 3 * sizeof *active);
    g->activation = copy_of(activation, (size_t)g->n_active * sizeof *activation);
    g->feat_active = copy_of(feat_active, (size_t)g->n_feat * sizeof *feat_active);
    g->logit_token = copy_of(logit_token, (size_t)g->n_logits * sizeof *logit_token);
    g->logit_prob = copy_of(logit_prob, (size_t)g->n_logits * sizeof *logit_prob);
    if (errv)
        g->error_vectors = copy_of(errv, (size_t)g->n_layers * (size_t)g->n_pos * (size_t)g->d_model * sizeof *errv);
    if (p) {
        p->n_nodes = N;
        p->influence = copy_of(infl, (size_t)N * sizeof *infl);
        p->cumulative = copy_of(cum, (size_t)N * sizeof *cum);
        p->node_kept = copy_of(node_kept, (size_t)N);
        p->edge_kept = xmalloc((size_t)(R * N));
        memset(p->edge_kept, kept_all, (size_t)(R * N));
        for (int64_t r = 0; r < R; r++)
            for (int64_t i = row_ptr[r]; i < row_ptr[r + 1]; i++) p->edge_kept[r * N + col[i]] = edge_kept[i] != 0;
        p->replacement_score = rs;
        p->completeness_score = cs;
    }
    rc = 0;
done:
    json_decref(meta);
    if (rc) attrib_graph_free(g);
    return rc;
}

int attrib_read_raw(const char *path, AttribGraph *g, AttribPruned *p, Error *e) {
    memset(g, 0, sizeof *g);
    if (p) memset(p, 0, sizeof *p);
    SafeTensors st;
    if (safetensors_open(&st, path, e)) return -1;
    int rc = raw_from_st(&st, g, p, e);
    safetensors_close(&st);
    return rc;
}

int attrib_parse_raw(const void *buf, size_t len, const char *name, AttribGraph *g, AttribPruned *p, Error *e) {
    memset(g, 0, sizeof *g);
    if (p) memset(p, 0, sizeof *p);
    SafeTensors st;
    if (safetensors_parse(&st, buf, len, name, e)) return -1;
    int rc = raw_from_st(&st, g, p, e);
    safetensors_close(&st);
    return rc;
}
