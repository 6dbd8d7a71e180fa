// test_attrib_graph.c — influence, pruning and graph scores (libcommon/attrib/attrib_graph.c) against
// circuit-tracer 0.5.0's own graph.py (goldens by tests/ref/make_prune_goldens.py), the
// selection-based cut against a sort-based one on graphs full of ties, the graph JSON against the
// schema's required fields and create_graph_files' node/link choice, and the raw file.
#include <stdint.h>

#include <jansson.h>

#include "attrib_graph.h"
#include "check.h"
#include "safetensors.h"
#include "tmpdir.h"

// ---- goldens -----------------------------------------------------------------------------------

static const void *golden(const SafeTensors *st, const char *name, StDtype dt, uint64_t numel) {
    const StTensor *t = safetensors_find(st, name);
    if (!t || t->dtype != dt || (numel && t->numel != numel)) {
        CHECK(0, "%s: tensor %s missing or of the wrong type/size", st->path, name);
        return NULL;
    }
    return t->data;
}

static uint64_t golden_numel(const SafeTensors *st, const char *name) {
    const StTensor *t = safetensors_find(st, name);
    return t ? t->numel : 0;
}

// An AttribGraph from a golden case (rows copied: the graph owns its arrays).
static int load_case(int idx, SafeTensors *st, AttribGraph *g, double *thr) {
    char path[128];
    snprintf(path, sizeof path, "tests/golden/attrib_prune/case%d.safetensors", idx);
    Error e;
    if (safetensors_open(st, path, &e)) {
        CHECK(0, "%s", e.msg);
        return -1;
    }
    const int32_t *dims = golden(st, "dims", ST_I32, 4);
    const double *th = golden(st, "thresholds", ST_F64, 2);
    if (!dims || !th) return -1;
    memset(g, 0, sizeof *g);
    g->n_layers = dims[0];
    g->n_pos = dims[1];
    g->n_feat = g->n_active = dims[2];
    g->n_logits = dims[3];
    g->d_model = 8;
    g->vocab_size = 1000;
    int64_t N = attrib_n_nodes(g), R = g->n_feat + g->n_logits;
    const float *rows = golden(st, "rows", ST_F32, (uint64_t)(R * N));
    const float *prob = golden(st, "logit_prob", ST_F32, (uint64_t)g->n_logits);
    const int32_t *tok = golden(st, "tokens", ST_I32, (uint64_t)g->n_pos);
    const int32_t *act = golden(st, "active", ST_I32, (uint64_t)g->n_active * 3);
    const float *av = golden(st, "activation", ST_F32, (uint64_t)g->n_active);
    const int32_t *lt = golden(st, "logit_token", ST_I32, (uint64_t)g->n_logits);
    if (!rows || !prob || !tok || !act || !av || !lt) return -1;
    g->adj = xmalloc((size_t)(R * N) * sizeof *g->adj);
    memcpy(g->adj, rows, (size_t)(R * N) * sizeof *g->adj);
    g->logit_prob = xmalloc((size_t)g->n_logits * sizeof(float));
    memcpy(g->logit_prob, prob, (size_t)g->n_logits * sizeof(float));
    g->tokens = xmalloc((size_t)g->n_pos * sizeof(int32_t));
    memcpy(g->tokens, tok, (size_t)g->n_pos * sizeof(int32_t));
    g->active = xmalloc((size_t)g->n_active * 3 * sizeof(int32_t));
    memcpy(g->active, act, (size_t)g->n_active * 3 * sizeof(int32_t));
    g->activation = xmalloc((size_t)g->n_active * sizeof(float));
    memcpy(g->activation, av, (size_t)g->n_active * sizeof(float));
    g->logit_token = xmalloc((size_t)g->n_logits * sizeof(int32_t));
    memcpy(g->logit_token, lt, (size_t)g->n_logits * sizeof(int32_t));
    g->feat_active = xmalloc((size_t)g->n_feat * sizeof(int32_t));
    for (int i = 0; i < g->n_feat; i++) g->feat_active[i] = i;
    thr[0] = th[0];
    thr[1] = th[1];
    return 0;
}

// Influences are sums of products of non-negative terms (|A|/row sum, logit probabilities), so
// each value's float32 rounding error is bounded relative to the value itself: at most `depth`
// products of (N + 2)-term sums, depth ≤ N (a path visits each node once): N·(N + 2)·2⁻²⁴.
static double influence_tol(int64_t N) { return (double)N * (double)(N + 2) * 0x1p-24; }

static void test_prune_golden(void) {
    for (int idx = 0; idx < 4; idx++) {
        SafeTensors st;
        AttribGraph g;
        double thr[2];
        if (load_case(idx, &st, &g, thr)) {
            safetensors_close(&st);
            continue;
        }
        int64_t N = attrib_n_nodes(&g), R = g.n_feat + g.n_logits;
        AttribPruned p;
        Error e;
        int rc = attrib_prune(&g, thr[0], thr[1], &p, &e);
        CHECK(rc == 0, "case%d: %s", idx, e.msg);
        const float *infl = golden(&st, "influence", ST_F32, (uint64_t)N);
        const float *cum = golden(&st, "cumulative", ST_F32, (uint64_t)N);
        const uint8_t *nm = golden(&st, "node_mask", ST_U8, (uint64_t)N);
        const uint8_t *em = golden(&st, "edge_mask", ST_U8, (uint64_t)(R * N));
        const double *sc = golden(&st, "scores", ST_F64, 2);
        if (rc || !infl || !cum || !nm || !em || !sc) {
            safetensors_close(&st);
            attrib_graph_free(&g);
            continue;
        }
        double tol = influence_tol(N);
        int bad_infl = 0, bad_node = 0, bad_edge = 0, bad_cum = 0;
        for (int64_t i = 0; i < N; i++) {
            double a = p.influence[i], b = infl[i];
            bad_infl += fabs(a - b) > tol * fmax(fabs(a), fabs(b));
            bad_node += p.node_kept[i] != nm[i];
        }
        for (int64_t i = 0; i < R * N; i++) bad_edge += p.edge_kept[i] != em[i];
        // Nodes of equal influence get their cumulative fractions in sort order, which torch.sort
        // does not fix for ties: compare each tie group's sorted values.
        for (int64_t i = 0; i < N; i++) {
            int64_t rank = 0;  // i's rank among its tie group in our order
            for (int64_t j = 0; j < N; j++) rank += infl[j] == infl[i] && p.cumulative[j] < p.cumulative[i];
            double theirs = NAN;  // the golden's value of the same rank in the group
            for (int64_t j = 0; j < N && theirs != theirs; j++) {
                if (infl[j] != infl[i]) continue;
                int64_t r = 0;
                for (int64_t k = 0; k < N; k++) r += infl[k] == infl[i] && cum[k] < cum[j];
                if (r == rank) theirs = cum[j];
            }
            double mine = p.cumulative[i];
            bad_cum += !(fabs(mine - theirs) <= 2 * tol * fmax(fabs(mine), fabs(theirs)));
        }
        CHECK(!bad_infl, "case%d: %d of %lld influences off by more than %.3g relative", idx, bad_infl, (long long)N,
              tol);
        CHECK(!bad_node, "case%d: node mask differs at %d nodes", idx, bad_node);
        CHECK(!bad_edge, "case%d: edge mask differs at %d entries", idx, bad_edge);
        CHECK(!bad_cum, "case%d: %d cumulative influences differ", idx, bad_cum);
        CHECK_NEAR(p.replacement_score, sc[0], 2 * tol);
        CHECK(fabs(p.completeness_score - sc[1]) <= 2 * tol, "case%d: completeness %.9g vs %.9g", idx,
              p.completeness_score, sc[1]);
        attrib_pruned_free(&p);
        attrib_graph_free(&g);
        safetensors_close(&st);
    }
}

static void test_partial_influence_golden(void) {
    SafeTensors st;
    Error e;
    if (safetensors_open(&st, "tests/golden/attrib_prune/case4.safetensors", &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    uint64_t n_rows = golden_numel(&st, "row_node"), n_cols = n_rows ? golden_numel(&st, "influence") : 0;
    const float *rows = golden(&st, "rows", ST_F32, n_rows * n_cols);
    const int64_t *row_node = golden(&st, "row_node", ST_I64, n_rows);
    const float *w = golden(&st, "row_weight", ST_F32, n_rows);
    const float *want = golden(&st, "influence", ST_F32, n_cols);
    if (rows && row_node && w && want) {
        float *got = xmalloc(n_cols * sizeof *got);
        int rc = attrib_partial_influence(rows, (int64_t)n_rows, (int64_t)n_cols, row_node, w, got, &e);
        CHECK(rc == 0, "%s", e.msg);
        double tol = influence_tol((int64_t)n_cols);
        int bad = 0;
        for (uint64_t i = 0; i < n_cols; i++) bad += fabs(got[i] - want[i]) > tol * fmax(fabs(got[i]), fabs(want[i]));
        CHECK(!bad, "%d of %llu partial influences off by more than %.3g", bad, (unsigned long long)n_cols, tol);
        // a bad row index is an error, not a crash
        int64_t bad_node[1] = {(int64_t)n_cols};
        CHECK(
            attrib_partial_influence(rows, 1, (int64_t)n_cols, bad_node, w, got, &e) == -1 && strstr(e.msg, "outside"),
            "row index out of range accepted");
        free(got);
    }
    safetensors_close(&st);
}

// ---- the selection cut against a sort: random dyadic graphs (exact arithmetic, many ties) ------

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) { return rng_u32(&rng_state); }

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

// circuit-tracer's find_threshold, literally: sort, cumsum (double, rounded to float) / sum,
// searchsorted (left), clamp to n − 1.
static float sort_threshold(const float *scores, int64_t n, double thr) {
    float *s = xmalloc((size_t)n * sizeof *s);
    memcpy(s, scores, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_desc);
    double total = 0, cum = 0;
    for (int64_t i = 0; i < n; i++) total += s[i];
    int64_t i = 0;
    for (; i < n; i++) {
        cum += s[i];
        if ((float)cum / (float)total >= (float)thr) break;
    }
    if (i >= n) i = n - 1;
    float cut = s[i];
    free(s);
    return cut;
}

// prune_graph on the dense matrix, written from graph.py with the sort-based cut; exact when all
// normalised entries are powers of two.
// Returns how many entries share the edge cut's value (when the cut is positive).
static int64_t dense_prune(const AttribGraph *g, double nt, double et, uint8_t *node, uint8_t *edge) {
    int64_t ties = 0;
    int64_t N = attrib_n_nodes(g), K = g->n_logits, T = g->n_pos, F = g->n_feat;
    float *A = xcalloc((size_t)(N * N), sizeof *A), *norm = xcalloc((size_t)(N * N), sizeof *norm);
    for (int64_t r = 0; r < F + K; r++) {
        int64_t t = r < F ? r : N - K + (r - F);
        memcpy(A + t * N, g->adj + r * N, (size_t)N * sizeof *A);
    }
    float *w = xcalloc((size_t)N, sizeof *w), *cur = xmalloc((size_t)N * sizeof *cur),
          *nxt = xmalloc((size_t)N * sizeof *nxt), *infl = xmalloc((size_t)N * sizeof *infl);
    for (int64_t k = 0; k < K; k++) w[N - K + k] = g->logit_prob[k];
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t t = 0; t < N; t++) {
            double s = 0;
            for (int64_t j = 0; j < N; j++) s += fabsf(A[t * N + j]);
            float d = (float)s > 1e-10f ? (float)s : 1e-10f;
            for (int64_t j = 0; j < N; j++) norm[t * N + j] = fabsf(A[t * N + j]) / d;
        }
        memcpy(cur, w, (size_t)N * sizeof *cur);
        memset(infl, 0, (size_t)N * sizeof *infl);
        for (int it = 0; it < 1000; it++) {
            int any = 0;
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t t = 0; t < N; t++) s += (double)cur[t] * norm[t * N + j];
                nxt[j] = (float)s;
                any |= nxt[j] != 0;
            }
            if (!any) break;
            for (int64_t j = 0; j < N; j++) infl[j] += nxt[j];
            memcpy(cur, nxt, (size_t)N * sizeof *cur);
        }
        if (pass == 0) {
            float cut = sort_threshold(infl, N, nt);
            for (int64_t j = 0; j < N; j++) node[j] = infl[j] >= cut || j >= N - K - T;
            for (int64_t t = 0; t < N; t++)
                for (int64_t j = 0; j < N; j++)
                    if (!node[t] || !node[j]) A[t * N + j] = 0;
        } else {
            for (int64_t t = 0; t < N; t++)
                for (int64_t j = 0; j < N; j++) norm[t * N + j] *= infl[t] + w[t];
            float cut = sort_threshold(norm, N * N, et);
            for (int64_t i = 0; i < N * N; i++) {
                edge[i] = norm[i] >= cut;
                ties += cut > 0 && norm[i] == cut;
            }
        }
    }
    uint8_t *old = xmalloc((size_t)N);
    for (int first = 1;; first = 0) {
        if (!first) {
            if (!memcmp(old, node, (size_t)N)) break;
            for (int64_t t = 0; t < N; t++)
                for (int64_t j = 0; j < N; j++)
                    if (!node[t] || !node[j]) edge[t * N + j] = 0;
        }
        memcpy(old, node, (size_t)N);
        for (int64_t j = 0; j < N - K - T; j++) {
            int any = 0;
            for (int64_t t = 0; t < N; t++) any |= edge[t * N + j];
            node[j] &= (uint8_t)any;
        }
        for (int64_t t = 0; t < F; t++) {
            int any = 0;
            for (int64_t j = 0; j < N; j++) any |= edge[t * N + j];
            node[t] &= (uint8_t)any;
        }
    }
    free(old);
    free(A);
    free(norm);
    free(w);
    free(cur);
    free(nxt);
    free(infl);
    return ties;
}

static void test_cut_ties_vs_sort(void) {
    int bad = 0, tied_cuts = 0;
    for (int trial = 0; trial < 60; trial++) {
        AttribGraph g = {0};
        g.n_layers = 1 + (int)(rnd() % 3);
        g.n_pos = 2 + (int)(rnd() % 4);
        g.n_feat = g.n_active = 5 + (int)(rnd() % 30);
        g.n_logits = 1 + (int)(rnd() % 3);
        int64_t N = attrib_n_nodes(&g), R = g.n_feat + g.n_logits, F = g.n_feat, src_end = N - g.n_logits;
        g.adj = xcalloc((size_t)(R * N), sizeof *g.adj);
        g.logit_prob = xmalloc((size_t)g.n_logits * sizeof *g.logit_prob);
        for (int k = 0; k < g.n_logits; k++) g.logit_prob[k] = 1.0f / (float)(2 << k);  // 1/2, 1/4, 1/8
        for (int64_t r = 0; r < R; r++) {
            // 2^k sources of equal |A| (feature r reads features < r and non-features; logits all)
            int64_t n_src = r < F ? r + (src_end - F) : src_end;
            int k = (int)(rnd() % 4);
            while ((1 << k) > n_src) k--;
            float mag = (float)(1 << (rnd() % 3));
            for (int chosen = 0; chosen < (1 << k);) {
                int64_t s = (int64_t)(rnd() % (uint32_t)n_src);
                if (r < F && s >= r) s = s - r + F;  // skip features >= r
                if (g.adj[r * N + s] != 0) continue;
                g.adj[r * N + s] = rnd() & 1 ? mag : -mag;
                chosen++;
            }
        }
        double nt = (double)(rnd() % 100) / 100, et = (double)(rnd() % 100) / 100;
        AttribPruned p;
        Error e;
        if (attrib_prune(&g, nt, et, &p, &e)) {
            CHECK(0, "trial %d: %s", trial, e.msg);
            attrib_graph_free(&g);
            continue;
        }
        uint8_t *node = xmalloc((size_t)N), *edge = xmalloc((size_t)(N * N));
        tied_cuts += dense_prune(&g, nt, et, node, edge) > 1;
        int differs = memcmp(node, p.node_kept, (size_t)N) != 0;
        for (int64_t r = 0; r < R; r++) {
            int64_t t = r < F ? r : N - g.n_logits + (r - F);
            differs |= memcmp(edge + t * N, p.edge_kept + r * N, (size_t)N) != 0;
        }
        bad += differs;
        free(node);
        free(edge);
        attrib_pruned_free(&p);
        attrib_graph_free(&g);
    }
    CHECK(bad == 0, "%d of 60 random dyadic graphs pruned differently from the sort-based cut", bad);
    CHECK(tied_cuts > 10, "only %d of 60 trials had an edge cut shared by several edges", tied_cuts);
}


// ---- the graph JSON ------------------------------------------------------------------------------

// The required fields and types of shared/reference/graph-schema-v1.json (Neuronpedia's schema
// version 1), plus what a reader needs: unique node ids and links between existing nodes.
// Returns the number of problems; the first few are reported.
static int schema_problems(json_t *root) {
    int bad = 0;
#define NEED(cond, ...)                                                   \
    do {                                                                  \
        if (!(cond)) {                                                    \
            if (bad++ < 5) { printf("  schema: "); printf(__VA_ARGS__); printf("\n"); } \
        }                                                                 \
    } while (0)
    NEED(json_is_object(root), "root is not an object");
    if (!json_is_object(root)) return bad;
    json_t *md = json_object_get(root, "metadata"), *q = json_object_get(root, "qParams");
    json_t *nodes = json_object_get(root, "nodes"), *links = json_object_get(root, "links");
    NEED(json_is_object(md) && json_is_object(q) && json_is_array(nodes) && json_is_array(links),
         "metadata/qParams/nodes/links missing or of the wrong type");
    if (bad) return bad;
    NEED(json_is_string(json_object_get(md, "slug")), "metadata.slug");
    NEED(json_is_string(json_object_get(md, "scan")), "metadata.scan");
    NEED(json_is_string(json_object_get(md, "prompt")), "metadata.prompt");
    json_t *pt = json_object_get(md, "prompt_tokens"), *v;
    size_t i;
    NEED(json_is_array(pt), "metadata.prompt_tokens");
    json_array_foreach(pt, i, v) NEED(json_is_string(v), "metadata.prompt_tokens[%zu]", i);
    v = json_object_get(md, "node_threshold");
    NEED(!v || json_is_number(v), "metadata.node_threshold");
    v = json_object_get(md, "schema_version");
    NEED(!v || json_is_integer(v), "metadata.schema_version");
    const char *objs[] = {"info", "generation_settings", "pruning_settings", "feature_details"};
    for (int k = 0; k < 4; k++) {
        v = json_object_get(md, objs[k]);
        NEED(!v || json_is_object(v), "metadata.%s", objs[k]);
    }
    v = json_object_get(q, "pinnedIds");
    NEED(!v || json_is_array(v), "qParams.pinnedIds");
    v = json_object_get(q, "supernodes");
    NEED(!v || json_is_array(v), "qParams.supernodes");
    const char *qs[] = {"linkType", "clickedId", "sg_pos"};
    for (int k = 0; k < 3; k++) {
        v = json_object_get(q, qs[k]);
        NEED(!v || json_is_string(v), "qParams.%s", qs[k]);
    }
    json_t *ids = json_object();
    json_array_foreach(nodes, i, v) {
        NEED(json_is_object(v), "nodes[%zu] is not an object", i);
        if (!json_is_object(v)) continue;
        json_t *id = json_object_get(v, "node_id"), *feat = json_object_get(v, "feature"),
               *layer = json_object_get(v, "layer");
        NEED(json_is_string(id), "nodes[%zu].node_id", i);
        NEED(json_is_integer(feat) || json_is_null(feat), "nodes[%zu].feature", i);
        NEED(json_is_string(layer) || json_is_integer(layer), "nodes[%zu].layer", i);
        NEED(json_is_integer(json_object_get(v, "ctx_idx")), "nodes[%zu].ctx_idx", i);
        NEED(json_is_string(json_object_get(v, "feature_type")), "nodes[%zu].feature_type", i);
        NEED(json_is_string(json_object_get(v, "jsNodeId")), "nodes[%zu].jsNodeId", i);
        NEED(json_is_string(json_object_get(v, "clerp")), "nodes[%zu].clerp", i);
        const char *opt[] = {"influence", "activation"};
        for (int k = 0; k < 2; k++) {
            json_t *o = json_object_get(v, opt[k]);
            NEED(!o || json_is_number(o) || json_is_null(o), "nodes[%zu].%s", i, opt[k]);
        }
        if (json_is_string(id)) {
            NEED(!json_object_get(ids, json_string_value(id)), "node id %s repeats", json_string_value(id));
            json_object_set_new(ids, json_string_value(id), json_true());
        }
    }
    json_array_foreach(links, i, v) {
        json_t *src = json_object_get(v, "source"), *dst = json_object_get(v, "target");
        NEED(json_is_string(src) && json_is_string(dst) && json_is_number(json_object_get(v, "weight")),
             "links[%zu] fields", i);
        if (json_is_string(src) && json_is_string(dst))
            NEED(json_object_get(ids, json_string_value(src)) && json_object_get(ids, json_string_value(dst)),
                 "links[%zu] joins unknown nodes %s -> %s", i, json_string_value(src), json_string_value(dst));
    }
    json_decref(ids);
#undef NEED
    return bad;
}

// The node id convention of formats/graph.md, restated independently of attrib_graph.c.
static void expected_id(const AttribGraph *g, int64_t i, char *out, size_t n) {
    int64_t F = g->n_feat, T = g->n_pos, E = F + (int64_t)g->n_layers * T, N = attrib_n_nodes(g);
    if (i < F) snprintf(out, n, "%d_%d_%d", g->active[3 * i], g->active[3 * i + 2], g->active[3 * i + 1]);
    else if (i < E) snprintf(out, n, "-1_%lld_%lld", (long long)((i - F) / T), (long long)((i - F) % T));
    else if (i < E + T) snprintf(out, n, "E_%d_%lld", g->tokens[i - E], (long long)(i - E));
    else snprintf(out, n, "%d_%d_%d", g->n_layers + 1, g->logit_token[i - (N - g->n_logits)], g->n_pos - 1);
}

static json_t *write_and_parse(const AttribGraph *g, const AttribPruned *p, const AttribMeta *m) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    Error e;
    int rc = attrib_write_json(f, "mem", g, p, m, &e);
    fclose(f);
    CHECK(rc == 0, "%s", e.msg);
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    CHECK(root != NULL, "JSON does not parse: line %d: %s", je.line, je.text);
    free(buf);
    return root;
}

static void test_json_golden(void) {
    for (int idx = 0; idx < 4; idx++) {
        SafeTensors st;
        AttribGraph g;
        double thr[2];
        if (load_case(idx, &st, &g, thr)) {
            safetensors_close(&st);
            continue;
        }
        AttribPruned p;
        Error e;
        CHECK(attrib_prune(&g, thr[0], thr[1], &p, &e) == 0, "%s", e.msg);
        char *toks[64], *logits[8];
        for (int t = 0; t < g.n_pos; t++) toks[t] = t == 1 ? "a \"quoted\"\n\\ token \xff" : "tok";
        for (int k = 0; k < g.n_logits; k++) logits[k] = k == 0 ? "\xe2\x80" : "x";
        AttribMeta m = {.slug = "case",
                        .scan = "test-scan",
                        .prompt = "a prompt",
                        .token_strings = toks,
                        .logit_strings = logits,
                        .model_name = "m",
                        .clt_name = "c",
                        .max_n_logits = 10,
                        .desired_logit_prob = 0.95,
                        .batch_size = 8,
                        .node_threshold = thr[0],
                        .edge_threshold = thr[1]};
        json_t *root = write_and_parse(&g, &p, &m);
        uint64_t n_nodes = golden_numel(&st, "json_nodes"), n_links = golden_numel(&st, "json_weights");
        const int64_t *jn = golden(&st, "json_nodes", ST_I64, n_nodes);
        const int64_t *jl = golden(&st, "json_links", ST_I64, 2 * n_links);
        const float *jw = golden(&st, "json_weights", ST_F32, n_links);
        if (root && jn && (jl || !n_links) && (jw || !n_links)) {
            CHECK(schema_problems(root) == 0, "case%d: JSON breaks the schema", idx);
            json_t *nodes = json_object_get(root, "nodes"), *links = json_object_get(root, "links");
            CHECK(json_array_size(nodes) == n_nodes, "case%d: %zu nodes, circuit-tracer %llu", idx,
                  json_array_size(nodes), (unsigned long long)n_nodes);
            CHECK(json_array_size(links) == n_links, "case%d: %zu links, circuit-tracer %llu", idx,
                  json_array_size(links), (unsigned long long)n_links);
            char want[96], want2[96];
            int bad = 0;
            for (size_t i = 0; i < json_array_size(nodes) && i < n_nodes; i++) {
                expected_id(&g, jn[i], want, sizeof want);
                bad += strcmp(json_string_value(json_object_get(json_array_get(nodes, i), "node_id")), want) != 0;
            }
            CHECK(!bad, "case%d: %d node ids differ from circuit-tracer's nodes", idx, bad);
            bad = 0;
            for (size_t i = 0; i < json_array_size(links) && i < n_links; i++) {
                json_t *l = json_array_get(links, i);
                expected_id(&g, jl[2 * i], want, sizeof want);
                expected_id(&g, jl[2 * i + 1], want2, sizeof want2);
                bad += strcmp(json_string_value(json_object_get(l, "target")), want) != 0 ||
                       strcmp(json_string_value(json_object_get(l, "source")), want2) != 0 ||
                       (float)json_number_value(json_object_get(l, "weight")) != jw[i];
            }
            CHECK(!bad, "case%d: %d links differ from circuit-tracer's", idx, bad);
            // the strings survive escaping (invalid UTF-8 as U+FFFD, as Python's decode)
            json_t *md = json_object_get(root, "metadata");
            CHECK(!strcmp(json_string_value(json_array_get(json_object_get(md, "prompt_tokens"), 1)),
                          "a \"quoted\"\n\\ token \xef\xbf\xbd"), "prompt token escaping");
            json_t *info = json_object_get(md, "info");
            CHECK(json_real_value(json_object_get(info, "replacement_score")) == p.replacement_score,
                  "scores in metadata.info");
            // feature nodes: Cantor id, activation; logit nodes: clerp and the first is the target
            size_t i;
            json_t *v;
            int checked = 0;
            json_array_foreach(nodes, i, v) {
                const char *type = json_string_value(json_object_get(v, "feature_type"));
                if (!strcmp(type, "cross layer transcoder") && !checked++) {
                    int l, fi, pos;
                    sscanf(json_string_value(json_object_get(v, "node_id")), "%d_%d_%d", &l, &fi, &pos);
                    CHECK(json_integer_value(json_object_get(v, "feature")) == (l + fi) * (l + fi + 1) / 2 + fi,
                          "cantor id");
                    CHECK(json_is_number(json_object_get(v, "activation")), "feature activation");
                }
                if (!strcmp(type, "logit") && json_is_true(json_object_get(v, "is_target_logit"))) {
                    char clerp[64];
                    snprintf(clerp, sizeof clerp, "Output \"\xef\xbf\xbd\" (p=%.3f)", (double)g.logit_prob[0]);
                    CHECK(!strcmp(json_string_value(json_object_get(v, "clerp")), clerp), "logit clerp %s",
                          json_string_value(json_object_get(v, "clerp")));
                }
            }
        }
        json_decref(root);
        attrib_pruned_free(&p);
        attrib_graph_free(&g);
        safetensors_close(&st);
    }
}


// Our JSON against the JSON circuit-tracer itself writes for case 0 (tests/golden/attrib_prune/
// case0.json): every metadata key and node field it has, the links in order. Differences by
// design: error node ids (formats/graph.md), numbers compared as numbers (float32 values as float32).
static int same_number(json_t *a, json_t *b) {
    return json_is_number(a) && json_is_number(b) && (float)json_number_value(a) == (float)json_number_value(b);
}

static void test_json_matches_circuit_tracer(void) {
    SafeTensors st;
    AttribGraph g;
    double thr[2];
    if (load_case(0, &st, &g, thr)) {
        safetensors_close(&st);
        return;
    }
    json_error_t je;
    json_t *theirs = json_load_file("tests/golden/attrib_prune/case0.json", 0, &je);
    CHECK(theirs != NULL, "case0.json: %s", je.text);
    AttribPruned p;
    Error e;
    CHECK(attrib_prune(&g, thr[0], thr[1], &p, &e) == 0, "%s", e.msg);
    char tok_buf[64][16], logit_buf[8][16];
    char *toks[64], *logits[8];
    for (int t = 0; t < g.n_pos; t++) snprintf(toks[t] = tok_buf[t], 16, "tok%d", g.tokens[t]);
    for (int k = 0; k < g.n_logits; k++) snprintf(logits[k] = logit_buf[k], 16, "tok%d", g.logit_token[k]);
    AttribMeta m = {.slug = "case", .scan = "test-scan", .prompt = "a prompt", .token_strings = toks,
                    .logit_strings = logits, .node_threshold = 0.8, .edge_threshold = thr[1]};
    json_t *ours = write_and_parse(&g, &p, &m);
    if (theirs && ours) {
        const char *key;
        json_t *v;
        json_t *md = json_object_get(ours, "metadata");
        json_object_foreach(json_object_get(theirs, "metadata"), key, v) {
            json_t *o = json_object_get(md, key);
            CHECK(json_equal(o, v) || same_number(o, v), "metadata.%s differs", key);
        }
        CHECK(json_equal(json_object_get(ours, "qParams"), json_object_get(theirs, "qParams")), "qParams differ");
        json_t *on = json_object_get(ours, "nodes"), *tn = json_object_get(theirs, "nodes");
        json_t *ids = json_object();  // circuit-tracer's error ids -> ours
        CHECK(json_array_size(on) == json_array_size(tn), "%zu nodes, circuit-tracer %zu", json_array_size(on),
              json_array_size(tn));
        size_t i;
        json_t *tnode;
        double tol = influence_tol(attrib_n_nodes(&g));
        int bad = 0;
        json_array_foreach(tn, i, tnode) {
            json_t *onode = json_array_get(on, i);
            if (!onode) break;
            int is_err = !strcmp(json_string_value(json_object_get(tnode, "feature_type")), "mlp reconstruction error");
            if (is_err) {
                json_object_set(ids, json_string_value(json_object_get(tnode, "node_id")),
                                json_object_get(onode, "node_id"));
                char want[64];
                snprintf(want, sizeof want, "-1_%s_%lld", json_string_value(json_object_get(tnode, "layer")),
                         json_integer_value(json_object_get(tnode, "ctx_idx")));
                bad += strcmp(json_string_value(json_object_get(onode, "node_id")), want) != 0;
            }
            json_object_foreach(tnode, key, v) {
                json_t *o = json_object_get(onode, key);
                if (is_err && (!strcmp(key, "node_id") || !strcmp(key, "jsNodeId"))) continue;
                int ok;
                if (!strcmp(key, "influence") && json_is_number(v))
                    ok = json_is_number(o) &&
                         fabs(json_number_value(o) - json_number_value(v)) <= 2 * tol * json_number_value(v);
                else
                    ok = json_equal(o, v) || same_number(o, v);
                if (!ok && bad++ < 5) printf("  node %zu field %s differs\n", i, key);
            }
        }
        CHECK(!bad, "%d node fields differ from circuit-tracer's", bad);
        json_t *ol = json_object_get(ours, "links"), *tl = json_object_get(theirs, "links");
        CHECK(json_array_size(ol) == json_array_size(tl), "%zu links, circuit-tracer %zu", json_array_size(ol),
              json_array_size(tl));
        bad = 0;
        json_t *tlink;
        json_array_foreach(tl, i, tlink) {
            json_t *olink = json_array_get(ol, i);
            if (!olink) break;
            const char *ends[2] = {"source", "target"};
            for (int k = 0; k < 2; k++) {
                json_t *want = json_object_get(tlink, ends[k]), *mapped = json_object_get(ids, json_string_value(want));
                bad += !json_equal(json_object_get(olink, ends[k]), mapped ? mapped : want);
            }
            bad += !same_number(json_object_get(olink, "weight"), json_object_get(tlink, "weight"));
        }
        CHECK(!bad, "%d link fields differ from circuit-tracer's", bad);
        json_decref(ids);
    }
    json_decref(ours);
    json_decref(theirs);
    attrib_pruned_free(&p);
    attrib_graph_free(&g);
    safetensors_close(&st);
}

// An error node and a layer-0 feature whose index equals the error's layer, at the same position:
// circuit-tracer 0.5.0 gives both the id 0_1_2; ours must stay distinct.
static void test_json_no_id_collision(void) {
    AttribGraph g = {0};
    g.n_layers = 2;
    g.n_pos = 3;
    g.n_feat = g.n_active = 1;
    g.n_logits = 1;
    int64_t N = attrib_n_nodes(&g);
    int32_t active[3] = {0, 2, 1}, tokens[3] = {1, 2, 3}, lt[1] = {7}, fa[1] = {0};
    float act[1] = {1}, prob[1] = {1};
    float *adj = xcalloc((size_t)(2 * N), sizeof *adj);
    int64_t err_l1_p2 = 1 + 1 * 3 + 2;
    adj[0 * N + (N - 1 - 3 + 2)] = 1;  // feature <- token at pos 2
    adj[0 * N + err_l1_p2 - 3] = 1;    // feature <- error layer 0, pos 2
    adj[1 * N + 0] = 2;                // logit <- feature
    adj[1 * N + err_l1_p2] = 1;        // logit <- error layer 1, pos 2
    g.adj = adj;
    g.active = active;
    g.activation = act;
    g.feat_active = fa;
    g.tokens = tokens;
    g.logit_token = lt;
    g.logit_prob = prob;
    AttribPruned p;
    Error e;
    CHECK(attrib_prune(&g, 1.0, 1.0, &p, &e) == 0, "%s", e.msg);
    AttribMeta m = {.slug = "s", .scan = "x", .prompt = ""};
    json_t *root = write_and_parse(&g, &p, &m);
    CHECK(root && schema_problems(root) == 0, "collision graph breaks the schema");
    int found_feat = 0, found_err = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(root, "nodes"), i, v) {
        const char *id = json_string_value(json_object_get(v, "node_id"));
        found_feat += !strcmp(id, "0_1_2");
        found_err += !strcmp(id, "-1_1_2");
    }
    CHECK(found_feat == 1 && found_err == 1, "feature 0_1_2 %d, error -1_1_2 %d", found_feat, found_err);
    json_decref(root);
    attrib_pruned_free(&p);
    free(adj);
}


// ---- the raw file ------------------------------------------------------------------------------

static void test_raw_roundtrip(void) {
    TmpDir td;
    tmp_open(&td, "attribraw");
    char path[128];
    snprintf(path, sizeof path, "%s/g.safetensors", td.dir);
    for (int idx = 0; idx < 4; idx++) {
        SafeTensors st;
        AttribGraph g, h;
        double thr[2];
        if (load_case(idx, &st, &g, thr)) {
            safetensors_close(&st);
            continue;
        }
        g.d_model = 3;
        size_t ne = (size_t)g.n_layers * (size_t)g.n_pos * 3;
        if (idx == 1) {  // error vectors are optional: one case with, the others without
            g.error_vectors = xmalloc(ne * sizeof(float));
            for (size_t i = 0; i < ne; i++) g.error_vectors[i] = (float)i * 0.25f - 1;
        }
        AttribPruned p, q;
        Error e;
        CHECK(attrib_prune(&g, thr[0], thr[1], &p, &e) == 0, "%s", e.msg);
        CHECK(attrib_write_raw(path, &g, &p, &e) == 0, "%s", e.msg);
        if (attrib_read_raw(path, &h, &q, &e)) {
            CHECK(0, "case%d: %s", idx, e.msg);
        } else {
            int64_t N = attrib_n_nodes(&g), R = g.n_feat + g.n_logits;
            CHECK(h.n_layers == g.n_layers && h.n_pos == g.n_pos && h.d_model == g.d_model &&
                      h.vocab_size == g.vocab_size && h.n_active == g.n_active && h.n_feat == g.n_feat &&
                      h.n_logits == g.n_logits,
                  "case%d: sizes", idx);
            CHECK(!memcmp(h.adj, g.adj, (size_t)(R * N) * sizeof(float)), "case%d: adjacency", idx);
            CHECK(!memcmp(h.tokens, g.tokens, (size_t)g.n_pos * 4) &&
                      !memcmp(h.active, g.active, (size_t)g.n_active * 12) &&
                      !memcmp(h.activation, g.activation, (size_t)g.n_active * 4) &&
                      !memcmp(h.feat_active, g.feat_active, (size_t)g.n_feat * 4) &&
                      !memcmp(h.logit_token, g.logit_token, (size_t)g.n_logits * 4) &&
                      !memcmp(h.logit_prob, g.logit_prob, (size_t)g.n_logits * 4),
                  "case%d: node tables", idx);
            CHECK(idx == 1 ? h.error_vectors && !memcmp(h.error_vectors, g.error_vectors, ne * 4) : !h.error_vectors,
                  "case%d: error vectors", idx);
            CHECK(q.n_nodes == N && !memcmp(q.influence, p.influence, (size_t)N * 4) &&
                      !memcmp(q.cumulative, p.cumulative, (size_t)N * 4) &&
                      !memcmp(q.node_kept, p.node_kept, (size_t)N) &&
                      !memcmp(q.edge_kept, p.edge_kept, (size_t)(R * N)),
                  "case%d: pruning result", idx);
            CHECK(q.replacement_score == p.replacement_score && q.completeness_score == p.completeness_score,
                  "case%d: scores", idx);
            // the graph read back prunes the same
            AttribPruned again;
            CHECK(attrib_prune(&h, thr[0], thr[1], &again, &e) == 0 &&
                      !memcmp(again.edge_kept, p.edge_kept, (size_t)(R * N)),
                  "case%d: read graph prunes differently", idx);
            attrib_pruned_free(&again);
            attrib_pruned_free(&q);
            attrib_graph_free(&h);
        }
        // without a pruning result the file still reads as a graph; asking for pruning is an error
        CHECK(attrib_write_raw(path, &g, NULL, &e) == 0, "%s", e.msg);
        CHECK(attrib_read_raw(path, &h, NULL, &e) == 0, "%s", e.msg);
        attrib_graph_free(&h);
        CHECK(attrib_read_raw(path, &h, &q, &e) == -1 && strstr(e.msg, "no pruning result"), "missing pruning: %s",
              e.msg);
        attrib_pruned_free(&p);
        attrib_graph_free(&g);
        safetensors_close(&st);
    }
    tmp_close(&td);
}

// A bad raw file is one error naming the file and the problem.
static void expect_raw_error(const char *path, const char *what) {
    AttribGraph g;
    AttribPruned p;
    Error e = {{0}};
    int rc = attrib_read_raw(path, &g, &p, &e);
    CHECK(rc == -1 && strstr(e.msg, path) && strstr(e.msg, what), "%s: expected an error with \"%s\", got rc %d: %s",
          path, what, rc, e.msg);
    if (!rc) {
        attrib_graph_free(&g);
        attrib_pruned_free(&p);
    }
}

static void test_raw_bad_files(void) {
    TmpDir td;
    tmp_open(&td, "attribbad");
    char path[128];
    Error e;
    snprintf(path, sizeof path, "%s/missing.safetensors", td.dir);
    expect_raw_error(path, "missing");
    snprintf(path, sizeof path, "%s/text.safetensors", td.dir);
    FILE *f = fopen(path, "w");
    fputs("this is not a safetensors file\n", f);
    fclose(f);
    expect_raw_error(path, "text.safetensors");

    // a safetensors file of something else
    float x[2] = {1, 2};
    StWriteTensor t = {"x", ST_F32, 1, {2}, x};
    snprintf(path, sizeof path, "%s/other.safetensors", td.dir);
    CHECK(safetensors_write(path, &t, 1, "{\"format\": \"pt\"}", &e) == 0, "%s", e.msg);
    expect_raw_error(path, "not an attribution raw file");

    // a good file, then damaged copies of it
    SafeTensors st;
    AttribGraph g;
    double thr[2];
    if (load_case(0, &st, &g, thr)) {
        safetensors_close(&st);
        tmp_close(&td);
        return;
    }
    AttribPruned p;
    CHECK(attrib_prune(&g, thr[0], thr[1], &p, &e) == 0, "%s", e.msg);
    snprintf(path, sizeof path, "%s/good.safetensors", td.dir);
    CHECK(attrib_write_raw(path, &g, &p, &e) == 0, "%s", e.msg);
    size_t len = 0;
    char *buf = test_read_file(path, &len);
    // the same bytes at an odd address: every tensor misaligned
    char *odd = xmalloc(len + 1);
    memcpy(odd + 1, buf, len);
    AttribGraph h;
    CHECK(
        attrib_parse_raw(odd + 1, len, "odd", &h, NULL, &e) == -1 && strstr(e.msg, "odd: ") && strstr(e.msg, "aligned"),
        "misaligned tensors: %s", e.msg);
    // and aligned, from the buffer
    memcpy(odd, buf, len);
    CHECK(attrib_parse_raw(odd, len, "mem", &h, NULL, &e) == 0, "%s", e.msg);
    attrib_graph_free(&h);
    free(odd);
    snprintf(path, sizeof path, "%s/truncated.safetensors", td.dir);
    f = fopen(path, "wb");
    fwrite(buf, 1, len - 5, f);
    fclose(f);
    expect_raw_error(path, "truncated");
    free(buf);

    // a column index out of range: rewrite the tensors with one index changed
    SafeTensors good;
    snprintf(path, sizeof path, "%s/good.safetensors", td.dir);
    CHECK(safetensors_open(&good, path, &e) == 0, "%s", e.msg);
    StWriteTensor ts[16];
    int n = 0;
    for (int i = 0; i < good.n_tensors && n < 16; i++) {
        const StTensor *s = &good.tensors[i];
        ts[n] = (StWriteTensor){s->name, s->dtype, s->ndim, {0}, s->data};
        for (int d = 0; d < s->ndim; d++) ts[n].shape[d] = s->shape[d];
        n++;
    }
    const StTensor *ci = safetensors_find(&good, "col_idx");
    int32_t *cols = xmalloc(ci->nbytes);
    memcpy(cols, ci->data, ci->nbytes);
    cols[0] = 1 << 30;
    for (int i = 0; i < n; i++)
        if (!strcmp(ts[i].name, "col_idx")) ts[i].data = cols;
    snprintf(path, sizeof path, "%s/badcol.safetensors", td.dir);
    CHECK(safetensors_write(path, ts, n, good.metadata_json, &e) == 0, "%s", e.msg);
    expect_raw_error(path, "column index");
    // a tensor of the wrong shape: node_kept one short
    for (int i = 0; i < n; i++) {
        if (!strcmp(ts[i].name, "col_idx")) ts[i].data = ci->data;
        if (!strcmp(ts[i].name, "node_kept")) ts[i].shape[0]--;
    }
    snprintf(path, sizeof path, "%s/badshape.safetensors", td.dir);
    CHECK(safetensors_write(path, ts, n, good.metadata_json, &e) == 0, "%s", e.msg);
    expect_raw_error(path, "\"node_kept\" is U8");
    // metadata that lies about the sizes
    for (int i = 0; i < n; i++)
        if (!strcmp(ts[i].name, "node_kept")) ts[i].shape[0]++;
    char *meta = xstrdup(good.metadata_json);
    char *at = strstr(meta, "\"n_pos\"");
    CHECK(at != NULL, "metadata has n_pos");
    if (at) {
        char fixed[2048];
        snprintf(fixed, sizeof fixed, "%.*s\"n_pos\":\"x%s", (int)(at - meta), meta, strchr(at + 8, '"') + 1);
        snprintf(path, sizeof path, "%s/badmeta.safetensors", td.dir);
        CHECK(safetensors_write(path, ts, n, fixed, &e) == 0, "%s: %s", e.msg, fixed);
        expect_raw_error(path, "\"n_pos\"");
    }
    free(meta);
    free(cols);
    safetensors_close(&good);
    attrib_pruned_free(&p);
    attrib_graph_free(&g);
    safetensors_close(&st);
    tmp_close(&td);
}


// 11 stored rows and N = 200,011 nodes: an N² buffer (160 GB of floats) cannot exist, so this
// finishing shows that pruning's memory grows with the rows only. The graph: tokens -> feature ->
// logits, and tokens -> logits directly.
static void test_prune_rows_only_memory(void) {
    AttribGraph g = {0};
    g.n_layers = 1;
    g.n_pos = 100000;
    g.n_feat = g.n_active = 1;
    g.n_logits = 10;
    int64_t N = attrib_n_nodes(&g), R = 11, tok0 = 1 + 100000;
    g.adj = xcalloc((size_t)(R * N), sizeof *g.adj);
    g.logit_prob = xmalloc(10 * sizeof(float));
    for (int k = 0; k < 10; k++) g.logit_prob[k] = 0.05f;
    for (int64_t p = 0; p < g.n_pos; p += 7) g.adj[tok0 + p] = (float)(1 + p % 5);  // feature row
    for (int64_t r = 1; r < R; r++) {
        g.adj[r * N + 0] = 3;  // logit <- feature
        for (int64_t p = 0; p < g.n_pos; p += 1000) g.adj[r * N + tok0 + p] = 0.5f;
    }
    AttribPruned p;
    Error e;
    CHECK(attrib_prune(&g, 0.8, 0.98, &p, &e) == 0, "%s", e.msg);
    if (p.node_kept) {
        CHECK(p.node_kept[0], "the feature carries most of the influence and must stay");
        CHECK(p.influence[N - 1] == 0 && p.influence[0] > 0, "logits have no influence, the feature has");
        attrib_pruned_free(&p);
    }
    attrib_graph_free(&g);
}


// All logit probabilities zero: every influence and edge score is 0, so both cuts are 0 and
// circuit-tracer keeps every node and every entry (edge_mask all true, also at A = 0). The raw file
// stands for that with its edge_kept_all flag.
static void test_zero_cut(void) {
    AttribGraph g = {0};
    g.n_layers = 2;
    g.n_pos = 3;
    g.n_feat = g.n_active = 2;
    g.n_logits = 2;
    int64_t N = attrib_n_nodes(&g), R = 4;
    g.adj = xcalloc((size_t)(R * N), sizeof *g.adj);
    g.adj[0 * N + 2 + 6 + 1] = 1;
    g.adj[1 * N + 0] = -1;
    g.adj[2 * N + 1] = 2;
    g.adj[3 * N + 2 + 6 + 2] = 1;
    g.logit_prob = xcalloc(2, sizeof(float));
    g.tokens = xcalloc(3, sizeof(int32_t));
    g.active = xcalloc(6, sizeof(int32_t));
    g.activation = xcalloc(2, sizeof(float));
    g.feat_active = xmalloc(2 * sizeof(int32_t));
    g.feat_active[0] = 0;
    g.feat_active[1] = 1;
    g.logit_token = xcalloc(2, sizeof(int32_t));
    AttribPruned p, q;
    Error e;
    if (attrib_prune(&g, 0.8, 0.98, &p, &e)) {
        CHECK(0, "%s", e.msg);
        attrib_graph_free(&g);
        return;
    }
    int all_nodes = 1, all_edges = 1;
    for (int64_t i = 0; i < N; i++) all_nodes &= p.node_kept[i];
    for (int64_t i = 0; i < R * N; i++) all_edges &= p.edge_kept[i];
    CHECK(all_nodes && all_edges, "zero cut: nodes all kept %d, edges all kept %d", all_nodes, all_edges);
    TmpDir td;
    tmp_open(&td, "attribzero");
    char path[128];
    snprintf(path, sizeof path, "%s/z.safetensors", td.dir);
    AttribGraph h;
    CHECK(attrib_write_raw(path, &g, &p, &e) == 0, "%s", e.msg);
    if (attrib_read_raw(path, &h, &q, &e) == 0) {
        CHECK(!memcmp(q.edge_kept, p.edge_kept, (size_t)(R * N)), "edge_kept_all lost in the raw file");
        attrib_pruned_free(&q);
        attrib_graph_free(&h);
    } else {
        CHECK(0, "%s", e.msg);
    }
    tmp_close(&td);
    attrib_pruned_free(&p);
    attrib_graph_free(&g);
}

static void test_prune_bad_input(void) {
    AttribGraph g = {0};
    g.n_layers = 1;
    g.n_pos = 2;
    g.n_logits = 1;
    int64_t N = attrib_n_nodes(&g);
    g.adj = xcalloc((size_t)N, sizeof *g.adj);
    g.logit_prob = xcalloc(1, sizeof *g.logit_prob);
    AttribPruned p;
    Error e;
    CHECK(attrib_prune(&g, 1.5, 0.98, &p, &e) == -1 && strstr(e.msg, "node threshold"), "threshold 1.5 accepted");
    CHECK(attrib_prune(&g, 0.8, -0.1, &p, &e) == -1 && strstr(e.msg, "edge threshold"), "threshold -0.1 accepted");
    g.adj[1] = NAN;
    CHECK(attrib_prune(&g, 0.8, 0.98, &p, &e) == -1 && strstr(e.msg, "column 1"), "NaN accepted: %s", e.msg);
    g.adj[1] = 0;
    // a cycle: the logit row reads itself
    g.adj[N - 1] = 1;
    g.logit_prob[0] = 1;
    CHECK(attrib_prune(&g, 0.8, 0.98, &p, &e) == -1 && strstr(e.msg, "converge"), "cycle accepted: %s", e.msg);
    attrib_graph_free(&g);
}

int main(void) {
    RUN_TEST(test_prune_golden);
    RUN_TEST(test_partial_influence_golden);
    RUN_TEST(test_cut_ties_vs_sort);
    RUN_TEST(test_json_golden);
    RUN_TEST(test_json_matches_circuit_tracer);
    RUN_TEST(test_json_no_id_collision);
    RUN_TEST(test_raw_roundtrip);
    RUN_TEST(test_raw_bad_files);
    RUN_TEST(test_prune_rows_only_memory);
    RUN_TEST(test_zero_cut);
    RUN_TEST(test_prune_bad_input);
    return test_summary();
}
