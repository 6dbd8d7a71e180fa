// attrib_run.c — the row schedule of attrib.h's attrib_run (circuit-tracer's attribute(), phases
// 3–5): logit rows, feature rows visited greedily by partial influence, and the packaging into an
// AttribGraph.
#include <stdlib.h>
#include <string.h>

#include "attrib.h"

typedef struct {
    float v;
    int32_t i;
} Ranked;

// Descending influence; ties by index so the order is deterministic.
static int by_influence(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

// Orders a queue of feature targets by position (then layer): a batch's backward covers positions
// up to its last target's and layers up to its highest, so neighbours in position share a cheap
// batch. Rows do not depend on the batch they are computed in.
static int by_position(const void *a, const void *b, void *state) {
    const int32_t *s = ((const AttribState *)state)->active, x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (s[3 * x + 1] != s[3 * y + 1]) return s[3 * x + 1] - s[3 * y + 1];
    if (s[3 * x] != s[3 * y]) return s[3 * x] - s[3 * y];
    return (x > y) - (x < y);
}

// Rows for n targets (all logits or all features) at rows + st·n_cols.
static int run_batch(const Model *m, const AttribState *s, const AttribBackend *be, AttribWork *w, int n,
                     const int32_t *idx, int logits, float *rows, int64_t n_cols, int *layer, int *pos, float *vecs,
                     Error *e) {
    int D = s->D;
    for (int b = 0; b < n; b++) {
        int32_t i = idx[b];
        if (logits) {
            layer[b] = s->L;
            pos[b] = s->T - 1;
            memcpy(vecs + (size_t)b * D, s->logit_vec + (size_t)i * D, (size_t)D * sizeof(float));
        } else {
            layer[b] = s->active[3 * i];
            pos[b] = s->active[3 * i + 1];
            memcpy(vecs + (size_t)b * D, attrib_enc_vec(s, i), (size_t)D * sizeof(float));
        }
    }
    if (be) return be->rows(be->ctx, m, s, n, layer, pos, vecs, rows, n_cols, e);
    return attrib_rows(m, s, w, n, layer, pos, vecs, rows, n_cols, e);
}

int attrib_run(const Model *m, const AttribState *s, const AttribRunOptions *o, AttribGraph *g, Error *e) {
    memset(g, 0, sizeof *g);
    int L = s->L, T = s->T, D = s->D, K = s->n_logits, n_act = s->n_active;
    int B = o->batch > 0 ? o->batch : 256, interval = o->update_interval > 0 ? o->update_interval : 4;
    if (K < 1) return err_set(e, "attrib: no logit targets");
    int max_feat = o->max_feature_nodes > 0 && o->max_feature_nodes < n_act ? o->max_feature_nodes : n_act;
    int64_t n_src = attrib_row_sources(s), logit_off = n_src, n_cols = n_src + K;
    int64_t n_rows = (int64_t)max_feat + K;
    float *rows = xcalloc((size_t)n_rows * n_cols, sizeof(float));
    int64_t *row_node = xmalloc((size_t)n_rows * sizeof(int64_t));
    float *row_weight = xcalloc((size_t)n_rows, sizeof(float));
    int *layer = xmalloc((size_t)B * sizeof(int)), *pos = xmalloc((size_t)B * sizeof(int));
    float *vecs = xmalloc((size_t)B * D * sizeof(float));
    int32_t *idx = xmalloc(((size_t)(n_act > K ? n_act : K) + 1) * sizeof(int32_t));
    uint8_t *visited = xcalloc((size_t)n_act + 1, 1);
    AttribWork *w = o->backend ? NULL : attrib_work_new(s, B);
    int rc = 0;

    // logit rows first
    for (int k0 = 0; k0 < K && !rc; k0 += B) {
        int n = K - k0 < B ? K - k0 : B;
        for (int b = 0; b < n; b++) {
            idx[b] = k0 + b;
            row_node[k0 + b] = logit_off + k0 + b;
            row_weight[k0 + b] = s->logit_prob[k0 + b];
        }
        rc = run_batch(m, s, o->backend, w, n, idx, 1, rows + (size_t)k0 * n_cols, n_cols, layer, pos, vecs, e);
        if (o->progress) o->progress(o->progress_ctx, "logits", k0 + n, K);
    }
    // feature rows
    int64_t st = K;
    int n_visited = 0;
    float *influence = max_feat < n_act ? xmalloc((size_t)n_cols * sizeof(float)) : NULL;
    Ranked *rank = max_feat < n_act ? xmalloc((size_t)n_act * sizeof(Ranked)) : NULL;
    while (!rc && n_visited < max_feat) {
        int n_pending = 0;
        if (max_feat == n_act) {
            for (int i = 0; i < n_act; i++) idx[n_pending++] = i;
        } else {
            if ((rc = attrib_partial_influence(rows, st, n_cols, row_node, row_weight, influence, e))) break;
            for (int i = 0; i < n_act; i++) rank[i] = (Ranked){influence[i], i};
            qsort(rank, (size_t)n_act, sizeof *rank, by_influence);
            int64_t queue = (int64_t)interval * B;
            if (queue > max_feat - n_visited) queue = max_feat - n_visited;
            for (int r = 0; r < n_act && n_pending < queue; r++)
                if (!visited[rank[r].i]) idx[n_pending++] = rank[r].i;
        }
        qsort_r(idx, (size_t)n_pending, sizeof *idx, by_position, (void *)s);
        for (int q = 0; q < n_pending && !rc; q += B) {
            int n = n_pending - q < B ? n_pending - q : B;
            rc = run_batch(m, s, o->backend, w, n, idx + q, 0, rows + (size_t)st * n_cols, n_cols, layer, pos, vecs, e);
            for (int b = 0; b < n; b++) {
                row_node[st + b] = idx[q + b];
                visited[idx[q + b]] = 1;
            }
            st += n;
            n_visited += n;
            if (o->progress) o->progress(o->progress_ctx, "features", n_visited, max_feat);
        }
    }
    free(influence); free(rank);
    attrib_work_free(w);
    free(layer); free(pos); free(vecs);

    if (!rc) {
        // packaging: visited features ascending, then logits; columns [visited | errors | tokens | logits]
        g->n_layers = L;
        g->n_pos = T;
        g->d_model = D;
        g->vocab_size = s->V;
        g->tokens = xmalloc((size_t)T * sizeof(int32_t));
        for (int p = 0; p < T; p++) g->tokens[p] = (int32_t)s->tokens[p];
        g->n_active = n_act;
        g->active = xmalloc(((size_t)n_act + 1) * 3 * sizeof(int32_t));
        memcpy(g->active, s->active, (size_t)n_act * 3 * sizeof(int32_t));
        g->activation = xmalloc(((size_t)n_act + 1) * sizeof(float));
        memcpy(g->activation, s->activation, (size_t)n_act * sizeof(float));
        g->n_feat = max_feat;
        g->feat_active = xmalloc(((size_t)max_feat + 1) * sizeof(int32_t));
        int32_t *col_of = xmalloc(((size_t)n_act + 1) * sizeof(int32_t));  // active index → feature node
        for (int i = 0, f = 0; i < n_act; i++) {
            col_of[i] = visited[i] ? f : -1;
            if (visited[i]) g->feat_active[f++] = i;
        }
        g->n_logits = K;
        g->logit_token = xmalloc((size_t)K * sizeof(int32_t));
        memcpy(g->logit_token, s->logit_token, (size_t)K * sizeof(int32_t));
        g->logit_prob = xmalloc((size_t)K * sizeof(float));
        memcpy(g->logit_prob, s->logit_prob, (size_t)K * sizeof(float));
        // in place, so the peak stays one copy of the rows: compact each row's columns (a column
        // only moves left), order the rows (cycles of the permutation, one row of scratch), then
        // close the gaps between rows (n_nodes ≤ n_cols: each row moves left, in ascending order)
        int64_t n_nodes = attrib_n_nodes(g);
        int64_t *src_of = xmalloc((size_t)n_rows * sizeof(int64_t));  // packed row → computed row
        for (int64_t r = 0; r < n_rows; r++) {
            int64_t node = row_node[r];
            src_of[node >= logit_off ? max_feat + (node - logit_off) : col_of[node]] = r;
            float *row = rows + (size_t)r * n_cols;
            for (int i = 0; i < n_act; i++)
                if (col_of[i] >= 0) row[col_of[i]] = row[i];
            memmove(row + max_feat, row + n_act, (size_t)(n_src - n_act) * sizeof(float));
            memset(row + (n_nodes - K), 0, (size_t)K * sizeof(float));
        }
        float *tmp = xmalloc((size_t)n_nodes * sizeof(float));
        uint8_t *placed = xcalloc((size_t)n_rows, 1);
        for (int64_t start = 0; start < n_rows; start++) {
            if (placed[start]) continue;
            memcpy(tmp, rows + (size_t)start * n_cols, (size_t)n_nodes * sizeof(float));
            int64_t cur = start;
            while (src_of[cur] != start) {
                memcpy(rows + (size_t)cur * n_cols, rows + (size_t)src_of[cur] * n_cols,
                       (size_t)n_nodes * sizeof(float));
                placed[cur] = 1;
                cur = src_of[cur];
            }
            memcpy(rows + (size_t)cur * n_cols, tmp, (size_t)n_nodes * sizeof(float));
            placed[cur] = 1;
        }
        free(tmp); free(placed); free(src_of);
        for (int64_t r = 1; r < n_rows; r++)
            memmove(rows + (size_t)r * n_nodes, rows + (size_t)r * n_cols, (size_t)n_nodes * sizeof(float));
        g->adj = xrealloc(rows, (size_t)(n_rows > 0 ? n_rows : 1) * n_nodes * sizeof(float));
        rows = NULL;
        free(col_of);
        size_t LTD = (size_t)L * T * D;
        g->error_vectors = xmalloc(LTD * sizeof(float));
        memcpy(g->error_vectors, s->error, LTD * sizeof(float));
    }
    free(rows); free(row_node); free(row_weight); free(idx); free(visited);
    return rc;
}
