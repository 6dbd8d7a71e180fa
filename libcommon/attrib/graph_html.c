// graph_html.c — validate a graph JSON, pack it, and write the self-contained viewer page.
// The viewer's code is libcommon/attrib/graph_html/viewer.{html,css,js}; the build turns those files into
// C arrays (scripts/embed.sh -> build/gen/graph_html_assets.c), declared below.
#include "graph_html.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "feat_collect.h"
#include "featstore.h"
#include "fileio.h"
#include "hashmap.h"
#include "tokenizer.h"

extern const unsigned char graph_html_viewer_html[], graph_html_viewer_css[], graph_html_viewer_js[];
#define VIEWER_HTML ((const char *)graph_html_viewer_html)
#define VIEWER_CSS ((const char *)graph_html_viewer_css)
#define VIEWER_JS ((const char *)graph_html_viewer_js)

// ---- small helpers ---------------------------------------------------------------------------

int64_t graph_html_cantor(int64_t layer, int64_t index) {
    return (layer + index) * (layer + index + 1) / 2 + index;
}

int graph_html_uncantor(int64_t z, int64_t *layer, int64_t *index) {
    if (z < 0) return 0;
    int64_t w = (int64_t)floor((sqrt(8.0 * (double)z + 1.0) - 1.0) / 2.0);
    while (w * (w + 1) / 2 > z) w--;  // the double square root can be one off for large z
    while ((w + 1) * (w + 2) / 2 <= z) w++;
    *index = z - w * (w + 1) / 2;
    *layer = w - *index;
    return 1;
}

char *graph_html_script_json(const char *s) {
    size_t n = strlen(s), k = 0;
    char *out = xmalloc(6 * n + 1);  // each byte becomes at most "\u00XX" (6 bytes)
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '<' || c == '>' || c == '&') {
            k += (size_t)sprintf(out + k, "\\u%04x", c);
        } else if (c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                   ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
            // U+2028/U+2029: valid in JSON strings, line terminators to older JavaScript parsers
            k += (size_t)sprintf(out + k, "\\u%04x", 0x2000 + (unsigned char)s[i + 2] - 0x80);
            i += 2;
        } else {
            out[k++] = (char)c;
        }
    }
    out[k] = 0;
    return out;
}

static char *base64(const void *data, size_t n) {
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    char *out = xmalloc(4 * ((n + 2) / 3) + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *o++ = T[v >> 18 & 63];
        *o++ = T[v >> 12 & 63];
        *o++ = i + 1 < n ? T[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? T[v & 63] : '=';
    }
    *o = 0;
    return out;
}

// Base64 of the array as little-endian bytes (the page reads them as Int32Array/Float32Array,
// which are little-endian on every platform a browser runs on).
static json_t *packed_array(const void *data, size_t n_words) {
    const unsigned char *src = data;
    unsigned char *le = xmalloc(4 * n_words + 1);
    for (size_t i = 0; i < n_words; i++) {
        uint32_t w;
        memcpy(&w, src + 4 * i, 4);
        le[4 * i] = (unsigned char)w, le[4 * i + 1] = (unsigned char)(w >> 8);
        le[4 * i + 2] = (unsigned char)(w >> 16), le[4 * i + 3] = (unsigned char)(w >> 24);
    }
    char *b = base64(le, 4 * n_words);
    json_t *s = json_string(b);
    free(le);
    free(b);
    return s;
}

// A JSON integer, or a string holding one ("3"), into *v.
static int json_int_like(json_t *j, long long *v) {
    if (json_is_integer(j)) return *v = json_integer_value(j), 1;
    if (!json_is_string(j)) return 0;
    const char *s = json_string_value(j);
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno) return 0;
    *v = x;
    return 1;
}

static float json_float_or_nan(json_t *j) { return json_is_number(j) ? (float)json_number_value(j) : NAN; }

// ---- the graph -------------------------------------------------------------------------------

typedef struct {
    int n_nodes, n_links, n_tokens;
    int32_t *node_i32;  // (N, 6)
    float *node_f32;    // (N, 3)
    int32_t *link_i32;  // (M, 2)
    float *link_f32;    // (M,)
    json_t *ids, *clerps;
} Packed;

static void packed_free(Packed *p) {
    free(p->node_i32), free(p->node_f32), free(p->link_i32), free(p->link_f32);
    json_decref(p->ids), json_decref(p->clerps);
    memset(p, 0, sizeof *p);
}

static int node_kind(const char *type) {
    if (strstr(type, "error")) return GH_ERROR;  // "mlp reconstruction error", "lorsa error"
    if (!strcmp(type, "embedding")) return GH_EMBEDDING;
    if (!strcmp(type, "logit")) return GH_LOGIT;
    return GH_FEATURE;  // transcoder features, lorsa, bias, unknown: a feature glyph
}

static int require(json_t *obj, const char *key, int type_ok, const char *want, const char *name, const char *where,
                   int i, Error *e) {
    json_t *v = json_object_get(obj, key);
    if (!v) return err_set(e, "%s: %s[%d]: missing \"%s\"", name, where, i, key);
    if (!type_ok) return err_set(e, "%s: %s[%d]: \"%s\" is not %s", name, where, i, key, want);
    return 0;
}

// A link with its sort key: by target, then |weight| descending, then input order (stable).
typedef struct {
    int32_t src, tgt, order;
    float w;
} LinkRec;
static int cmp_link(const void *a, const void *b) {
    const LinkRec *x = a, *y = b;
    if (x->tgt != y->tgt) return x->tgt < y->tgt ? -1 : 1;
    float wx = fabsf(x->w), wy = fabsf(y->w);
    if (wx != wy) return wx > wy ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int pack_nodes(json_t *nodes, int n_tokens, const char *name, Packed *p, StrMap *idmap, int *n_dup, Error *e) {
    int N = p->n_nodes;
    p->node_i32 = xcalloc((size_t)N * 6, sizeof(int32_t));
    p->node_f32 = xcalloc((size_t)N * 3, sizeof(float));
    p->ids = json_array();
    p->clerps = json_array();
    int max_row = 0;
    for (int i = 0; i < N; i++) {
        json_t *n = json_array_get(nodes, (size_t)i);
        if (!json_is_object(n)) return err_set(e, "%s: nodes[%d] is not an object", name, i);
        json_t *id = json_object_get(n, "node_id"), *type = json_object_get(n, "feature_type");
        json_t *layer = json_object_get(n, "layer"), *ctx = json_object_get(n, "ctx_idx");
        json_t *feat = json_object_get(n, "feature"), *clerp = json_object_get(n, "clerp");
        if (require(n, "node_id", json_is_string(id), "a string", name, "nodes", i, e) ||
            require(n, "feature_type", json_is_string(type), "a string", name, "nodes", i, e) ||
            require(n, "layer", json_is_string(layer) || json_is_integer(layer), "a string or an integer", name,
                    "nodes", i, e) ||
            require(n, "ctx_idx", json_is_integer(ctx), "an integer", name, "nodes", i, e))
            return -1;
        // circuit-tracer always writes these; Neuronpedia requires them. A missing clerp or
        // feature is harmless for drawing, so only their types are checked.
        if (feat && !json_is_integer(feat) && !json_is_null(feat))
            return err_set(e, "%s: nodes[%d]: \"feature\" is not an integer or null", name, i);
        if (clerp && !json_is_string(clerp)) return err_set(e, "%s: nodes[%d]: \"clerp\" is not a string", name, i);
        const char *ids = json_string_value(id);
        long long c = json_integer_value(ctx);
        if (c < 0 || c >= n_tokens)
            return err_set(e, "%s: nodes[%d] (%s): ctx_idx %lld is outside the %d prompt tokens", name, i, ids, c,
                           n_tokens);
        int kind = node_kind(json_string_value(type));
        int32_t *r = p->node_i32 + 6 * (size_t)i;
        long long l = -1;
        int numeric = json_int_like(layer, &l);
        if (kind == GH_EMBEDDING) {
            r[1] = 0;
        } else if (kind == GH_LOGIT) {
            r[1] = -1;  // placed above the highest layer below
        } else {
            if (!numeric || l < 0 || l > 1000000)
                return err_set(e, "%s: nodes[%d] (%s): layer %s is not a layer number", name, i, ids,
                               json_is_string(layer) ? json_string_value(layer) : "(integer)");
            r[1] = (int32_t)l + 1;
            if (r[1] > max_row) max_row = r[1];
        }
        r[0] = kind, r[2] = (int32_t)c, r[3] = kind == GH_FEATURE || kind == GH_ERROR ? (int32_t)l : -1, r[4] = -1;
        long long fz = json_is_integer(feat) ? json_integer_value(feat) : -1;
        if (kind == GH_FEATURE) {
            // node_id "{layer}_{index}_{pos}"; else the Cantor-paired "feature"
            long long a, b, q;
            char tail;
            int64_t ul, ui;
            if (sscanf(ids, "%lld_%lld_%lld%c", &a, &b, &q, &tail) == 3 && a == l && b >= 0 && b <= INT32_MAX)
                r[4] = (int32_t)b;
            else if (graph_html_uncantor(fz, &ul, &ui) && ul == l && ui <= INT32_MAX)
                r[4] = (int32_t)ui;
        } else if (kind == GH_EMBEDDING) {
            long long v, q;
            char tail;
            if (sscanf(ids, "E_%lld_%lld%c", &v, &q, &tail) == 2 && v >= 0 && v <= INT32_MAX) r[4] = (int32_t)v;
        } else if (kind == GH_LOGIT && fz >= 0 && fz <= INT32_MAX) {
            r[4] = (int32_t)fz;
        }
        if (json_is_true(json_object_get(n, "is_target_logit"))) r[5] |= GH_FLAG_TARGET_LOGIT;
        float *f = p->node_f32 + 3 * (size_t)i;
        f[0] = json_float_or_nan(json_object_get(n, "influence"));
        f[1] = json_float_or_nan(json_object_get(n, "activation"));
        f[2] = json_float_or_nan(json_object_get(n, "token_prob"));
        uint32_t prev;
        if (strmap_get(idmap, ids, strlen(ids), &prev)) {
            r[5] |= GH_FLAG_DUPLICATE_ID;  // circuit-tracer 0.5's "0_{layer}_{pos}" error ids collide
            (*n_dup)++;
        } else {
            strmap_put(idmap, ids, strlen(ids), (uint32_t)i);
        }
        json_array_append(p->ids, id);
        json_array_append_new(p->clerps, json_string(clerp ? json_string_value(clerp) : ""));
    }
    for (int i = 0; i < N; i++)
        if (p->node_i32[6 * (size_t)i + 1] < 0) p->node_i32[6 * (size_t)i + 1] = max_row + 1;
    return 0;
}

static int pack_links(json_t *links, const char *name, Packed *p, const StrMap *idmap, Error *e) {
    int M = p->n_links;
    LinkRec *rec = xmalloc(((size_t)M + 1) * sizeof *rec);
    for (int i = 0; i < M; i++) {
        json_t *l = json_array_get(links, (size_t)i);
        json_t *s = json_object_get(l, "source"), *t = json_object_get(l, "target"), *v = json_object_get(l, "weight");
        int bad = !json_is_object(l) ? err_set(e, "%s: links[%d] is not an object", name, i)
                  : require(l, "source", json_is_string(s), "a string", name, "links", i, e) ||
                          require(l, "target", json_is_string(t), "a string", name, "links", i, e) ||
                          require(l, "weight", json_is_number(v), "a number", name, "links", i, e);
        uint32_t a = 0, b = 0;
        if (!bad && !strmap_get(idmap, json_string_value(s), strlen(json_string_value(s)), &a))
            bad = err_set(e, "%s: links[%d]: source \"%s\" is not a node", name, i, json_string_value(s));
        if (!bad && !strmap_get(idmap, json_string_value(t), strlen(json_string_value(t)), &b))
            bad = err_set(e, "%s: links[%d]: target \"%s\" is not a node", name, i, json_string_value(t));
        if (!bad && !isfinite(json_number_value(v)))
            bad = err_set(e, "%s: links[%d]: weight is not finite", name, i);
        if (bad) {
            free(rec);
            return -1;
        }
        rec[i] = (LinkRec){(int32_t)a, (int32_t)b, i, (float)json_number_value(v)};
    }
    qsort(rec, (size_t)M, sizeof *rec, cmp_link);
    p->link_i32 = xmalloc(((size_t)M * 2 + 1) * sizeof(int32_t));
    p->link_f32 = xmalloc(((size_t)M + 1) * sizeof(float));
    for (int i = 0; i < M; i++) {
        p->link_i32[2 * i] = rec[i].src, p->link_i32[2 * i + 1] = rec[i].tgt;
        p->link_f32[i] = rec[i].w;
    }
    free(rec);
    return 0;
}

// Graph scores wherever a writer put them: metadata.{replacement_score, completeness_score}, or
// under metadata.info, metadata.scores, a top-level "scores" object, or the top level.
static json_t *find_scores(json_t *root, json_t *meta) {
    json_t *places[5] = {meta, json_object_get(meta, "info"), json_object_get(meta, "scores"),
                         json_object_get(root, "scores"), root};
    json_t *out = json_object();
    const char *keys[2][3] = {{"replacement_score", "replacement", "replacement"},
                              {"completeness_score", "completeness", "completeness"}};
    for (int k = 0; k < 2; k++)
        for (int p = 0; p < 5 && !json_object_get(out, keys[k][2]); p++) {
            if (!json_is_object(places[p])) continue;
            for (int a = 0; a < 2; a++) {
                json_t *v = json_object_get(places[p], keys[k][a]);
                if (json_is_number(v)) {
                    json_object_set(out, keys[k][2], v);
                    break;
                }
            }
        }
    return out;
}

// ---- feature files and explanations ----------------------------------------------------------

static const char *const FEATURE_KEYS[] = {
    "transcoder_id", "index",          "layer",           "feature",       "examples_quantiles", "top_logits",
    "bottom_logits", "top_logit_values", "bottom_logit_values", "act_min", "act_max",       "quantile_values",
    "histogram",     "activation_frequency", "density",   "max_activation", "mean_activation", "dead",
    "always_on",     "next_tokens"};

static int check_string_array(json_t *a) {
    if (!json_is_array(a)) return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_string(json_array_get(a, i))) return 0;
    return 1;
}
static int check_number_array(json_t *a) {
    if (!json_is_array(a)) return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_number(json_array_get(a, i))) return 0;
    return 1;
}

// feat-topk export writes next_tokens as [{"token", "count"}] (formats/features.md also allows
// [[token, count]]; plain strings too): the tokens, most frequent first, into *strs and their
// counts into *counts (NULL when the shape has none). -1: another shape.
static int next_tokens_split(json_t *a, json_t **strs, json_t **counts) {
    *strs = *counts = NULL;
    if (!json_is_array(a)) return -1;
    *strs = json_array();
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i), *t, *c = NULL;
        if (json_is_string(v)) t = v;
        else if (json_is_object(v)) t = json_object_get(v, "token"), c = json_object_get(v, "count");
        else t = json_array_get(v, 0), c = json_array_get(v, 1);
        if (!json_is_string(t) || (c && !json_is_number(c))) goto bad;
        json_array_append(*strs, t);
        if (c) {
            if (!*counts) *counts = json_array();
            json_array_append(*counts, c);
        }
    }
    if (*counts && json_array_size(*counts) != json_array_size(*strs)) goto bad;
    return 0;
bad:
    json_decref(*strs);
    json_decref(*counts);
    *strs = *counts = NULL;
    return -1;
}

// The fields the page shows, checked (a wrong type is an error naming the file and field), with
// at most max_examples examples per quantile group.
static json_t *feature_fields(json_t *f, const char *path, int max_examples, Error *e);

static json_t *read_feature_file(const char *path, int max_examples, Error *e) {
    json_error_t je;
    json_t *f = json_load_file(path, JSON_ALLOW_NUL, &je);
    if (!f) return err_set(e, "%s: not JSON: %s (line %d)", path, je.text, je.line), NULL;
    return feature_fields(f, path, max_examples, e);
}

// The fields of a feature JSON object f (consumed) the page shows, checked; path names it in errors.
static json_t *feature_fields(json_t *f, const char *path, int max_examples, Error *e) {
    if (!json_is_object(f)) return json_decref(f), err_set(e, "%s: not a JSON object", path), NULL;
    json_t *out = json_object();
    for (size_t k = 0; k < sizeof FEATURE_KEYS / sizeof *FEATURE_KEYS; k++) {
        json_t *v = json_object_get(f, FEATURE_KEYS[k]);
        if (v) json_object_set(out, FEATURE_KEYS[k], v);
    }
    const char *bad = NULL;
    json_t *nt = json_object_get(out, "next_tokens"), *strs, *counts;
    if (nt) {
        if (next_tokens_split(nt, &strs, &counts)) {
            bad = "next_tokens";
        } else {
            json_object_set_new(out, "next_tokens", strs);
            if (counts) json_object_set_new(out, "next_token_counts", counts);
        }
    }
    json_t *q = json_object_get(out, "examples_quantiles");
    if (q && !json_is_array(q)) bad = "examples_quantiles";
    for (size_t g = 0; !bad && q && g < json_array_size(q); g++) {
        json_t *grp = json_array_get(q, g), *ex = json_object_get(grp, "examples");
        if (!json_is_object(grp) || !json_is_array(ex)) {
            bad = "examples_quantiles[].examples";
            break;
        }
        if (json_object_get(grp, "quantile_name") && !json_is_string(json_object_get(grp, "quantile_name")))
            bad = "examples_quantiles[].quantile_name";
        for (size_t x = 0; !bad && x < json_array_size(ex); x++) {
            json_t *one = json_array_get(ex, x);
            json_t *toks = json_object_get(one, "tokens"), *acts = json_object_get(one, "tokens_acts_list");
            if (!check_string_array(toks)) bad = "examples[].tokens";
            else if (!check_number_array(acts) || json_array_size(acts) != json_array_size(toks))
                bad = "examples[].tokens_acts_list";
        }
        if (!bad && max_examples > 0)
            while (json_array_size(ex) > (size_t)max_examples) json_array_remove(ex, json_array_size(ex) - 1);
    }
    const char *str_arrays[] = {"top_logits", "bottom_logits", "next_tokens"};
    const char *num_arrays[] = {"top_logit_values", "bottom_logit_values", "quantile_values", "histogram"};
    for (int k = 0; !bad && k < 3; k++) {
        json_t *v = json_object_get(out, str_arrays[k]);
        if (v && !check_string_array(v)) bad = str_arrays[k];
    }
    for (int k = 0; !bad && k < 4; k++) {
        json_t *v = json_object_get(out, num_arrays[k]);
        if (v && !check_number_array(v)) bad = num_arrays[k];
    }
    json_decref(f);
    if (bad) return json_decref(out), err_set(e, "%s: \"%s\" has the wrong type", path, bad), NULL;
    return out;
}

// A feat-topk store given as --features (DIR/features.bin): records exported on the fly with the
// store's tokenizer (meta "tokenizer"; "<id>" tokens when it is gone).
typedef struct {
    FeatStore s;
    Tokenizer *tok;
    char clt[1024];  // transcoder_id, as feat-topk export writes it
    int open;
} StoreSource;

static int store_source_open(StoreSource *ss, const char *dir, Error *e) {
    memset(ss, 0, sizeof *ss);
    if (featstore_open(&ss->s, dir, e)) return -1;
    ss->open = 1;
    ss->tok = feat_store_tokenizer(&ss->s, NULL, NULL);  // NULL: tokens shown as "<id>"
    feat_store_transcoder_id(&ss->s, ss->clt, sizeof ss->clt);
    return 0;
}

static void store_source_close(StoreSource *ss) {
    if (ss->tok) tokenizer_free(ss->tok);
    if (ss->open) featstore_close(&ss->s);
}

static int add_features(const Packed *p, const GraphHtmlOptions *o, json_t *features, json_t *wanted,
                        GraphHtmlStats *st, Error *e) {
    StoreSource ss = {0};
    char probe[4200];
    if (o && o->features_dir) {
        snprintf(probe, sizeof probe, "%s/%s", o->features_dir, FEATSTORE_FILE);
        if (access(probe, F_OK) == 0 && store_source_open(&ss, o->features_dir, e)) return -1;
    }
    int rc = 0;
    for (int i = 0; i < p->n_nodes && !rc; i++) {
        const int32_t *r = p->node_i32 + 6 * (size_t)i;
        if (r[0] != GH_FEATURE || r[4] < 0) continue;
        char key[48];
        snprintf(key, sizeof key, "%d_%d", r[3], r[4]);
        if (json_object_get(wanted, key)) continue;
        json_object_set_new(wanted, key, json_true());
        st->n_features++;
        if (!o || !o->features_dir) continue;
        json_t *f = NULL;
        if (ss.open) {  // the store: the record of (model layer, index), when the store holds it
            if (featstore_layer_index(&ss.s, r[3]) < 0 || r[4] >= ss.s.n_features) continue;
            json_t *rec = feat_store_record(&ss.s, r[3], r[4], e);
            if (!rec) { rc = -1; break; }
            int dead = json_is_true(json_object_get(rec, "dead"));
            if (!dead) f = feature_fields(feat_export_json(rec, ss.tok, ss.clt), ss.s.path, o->max_examples, e);
            json_decref(rec);
            if (dead) continue;
            if (!f) { rc = -1; break; }
        } else {
            // feat-topk export's "{layer}_{index}.json", else circuit-tracer's frontend name "{cantor id}.json"
            char path[4200];
            snprintf(path, sizeof path, "%s/%s.json", o->features_dir, key);
            if (access(path, F_OK) != 0) {
                snprintf(path, sizeof path, "%s/%lld.json", o->features_dir, (long long)graph_html_cantor(r[3], r[4]));
                if (access(path, F_OK) != 0) continue;
            }
            if (!(f = read_feature_file(path, o->max_examples, e))) { rc = -1; break; }
        }
        json_object_set_new(features, key, f);
        st->n_feature_files++;
    }
    store_source_close(&ss);
    return rc;
}

static int read_explanations(const char *path, json_t *wanted, json_t *out, GraphHtmlStats *st, Error *e) {
    FILE *f = fopen(path, "r");
    if (!f) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;
    while (!rc && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        const char *s = line;
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
        if (!*s) continue;
        json_error_t je;
        json_t *j = json_loads(line, JSON_ALLOW_NUL, &je);
        long long l, i;
        if (!j) {
            rc = err_set(e, "%s:%d: not JSON: %s", path, lineno, je.text);
        } else if (!json_is_object(j) || !json_int_like(json_object_get(j, "layer"), &l) ||
                   !json_int_like(json_object_get(j, "feature"), &i)) {
            rc = err_set(e, "%s:%d: want an object with integer \"layer\" and \"feature\"", path, lineno);
        } else {
            json_t *o = json_object();
            const char *str_keys[] = {"label", "explanation", "explainer"};
            for (int k = 0; k < 3 && !rc; k++) {
                json_t *v = json_object_get(j, str_keys[k]);
                if (v && !json_is_string(v))
                    rc = err_set(e, "%s:%d: \"%s\" is not a string", path, lineno, str_keys[k]);
                else if (v) json_object_set(o, str_keys[k], v);
            }
            json_t *sc = json_object_get(j, "scores");
            if (!rc && sc && !json_is_object(sc)) rc = err_set(e, "%s:%d: \"scores\" is not an object", path, lineno);
            else if (sc) json_object_set(o, "scores", sc);
            char key[48];
            snprintf(key, sizeof key, "%lld_%lld", l, i);
            if (!rc && json_object_get(wanted, key)) {
                if (!json_object_get(out, key)) st->n_explanations++;
                json_object_set(out, key, o);
            }
            json_decref(o);
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    return rc;
}

// ---- the page --------------------------------------------------------------------------------

static void html_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
            case '<': fputs("&lt;", f); break;
            case '>': fputs("&gt;", f); break;
            case '&': fputs("&amp;", f); break;
            case '"': fputs("&quot;", f); break;
            case '\'': fputs("&#39;", f); break;
            default: fputc(*s, f);
        }
    }
}

// The template's {{TITLE}}, {{CSS}}, {{JS}}, {{DATA}}, {{NONCE}} filled in.
static void write_page(FILE *f, const char *title, const char *data, const char *nonce) {
    const char *t = VIEWER_HTML;
    while (*t) {
        const char *m = strstr(t, "{{");
        if (!m) {
            fputs(t, f);
            break;
        }
        fwrite(t, 1, (size_t)(m - t), f);
        const char *end = strstr(m, "}}");
        if (!end) {
            fputs(m, f);
            break;
        }
        size_t k = (size_t)(end - m - 2);
        if (k == 5 && !strncmp(m + 2, "TITLE", 5)) html_escape(f, title);
        else if (k == 3 && !strncmp(m + 2, "CSS", 3)) fputs(VIEWER_CSS, f);
        else if (k == 2 && !strncmp(m + 2, "JS", 2)) fputs(VIEWER_JS, f);
        else if (k == 4 && !strncmp(m + 2, "DATA", 4)) fputs(data, f);
        else if (k == 5 && !strncmp(m + 2, "NONCE", 5)) fputs(nonce, f);
        else fwrite(m, 1, k + 4, f);
        t = end + 2;
    }
}

static int build(json_t *root, const char *name, const GraphHtmlOptions *o, char **html, GraphHtmlStats *st,
                 Error *e) {
    if (!json_is_object(root)) return err_set(e, "%s: not a graph: the top level is not a JSON object", name);
    json_t *meta = json_object_get(root, "metadata"), *qp = json_object_get(root, "qParams");
    json_t *nodes = json_object_get(root, "nodes"), *links = json_object_get(root, "links");
    if (!json_is_object(meta)) return err_set(e, "%s: not a graph: no \"metadata\" object", name);
    if (!json_is_array(nodes)) return err_set(e, "%s: not a graph: no \"nodes\" array", name);
    if (!json_is_array(links)) return err_set(e, "%s: not a graph: no \"links\" array", name);
    if (qp && !json_is_object(qp)) return err_set(e, "%s: \"qParams\" is not an object", name);
    json_t *sv = json_object_get(meta, "schema_version");
    if (sv && !(json_is_integer(sv) && json_integer_value(sv) == 1)) {
        char buf[64] = "(not an integer)";
        if (json_is_integer(sv)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(sv));
        return err_set(e, "%s: metadata.schema_version %s is not supported (graph2html reads version 1)", name, buf);
    }
    const char *req[3] = {"slug", "scan", "prompt"};
    for (int k = 0; k < 3; k++)
        if (!json_is_string(json_object_get(meta, req[k])))
            return err_set(e, "%s: metadata.%s is missing or not a string", name, req[k]);
    json_t *toks = json_object_get(meta, "prompt_tokens");
    if (!check_string_array(toks)) return err_set(e, "%s: metadata.prompt_tokens is not an array of strings", name);
    if (json_array_size(toks) == 0) return err_set(e, "%s: metadata.prompt_tokens is empty", name);
    if (json_array_size(nodes) == 0) return err_set(e, "%s: the graph is empty (no nodes)", name);
    if (json_array_size(nodes) > INT32_MAX / 8 || json_array_size(links) > INT32_MAX / 4)
        return err_set(e, "%s: too many nodes or links", name);

    Packed p = {.n_nodes = (int)json_array_size(nodes), .n_links = (int)json_array_size(links),
                .n_tokens = (int)json_array_size(toks)};
    StrMap idmap;
    strmap_init(&idmap, (uint32_t)p.n_nodes);
    memset(st, 0, sizeof *st);
    int rc = pack_nodes(nodes, p.n_tokens, name, &p, &idmap, &st->n_duplicate_ids, e);
    if (!rc) rc = pack_links(links, name, &p, &idmap, e);
    strmap_free(&idmap);
    json_t *features = json_object(), *wanted = json_object(), *expl = json_object();
    if (!rc) rc = add_features(&p, o, features, wanted, st, e);
    if (!rc && o && o->explanations_path) rc = read_explanations(o->explanations_path, wanted, expl, st, e);
    json_decref(wanted);
    if (rc) {
        json_decref(features), json_decref(expl);
        packed_free(&p);
        return -1;
    }
    st->n_nodes = p.n_nodes, st->n_links = p.n_links, st->n_tokens = p.n_tokens;

    json_t *d = json_object();
    json_object_set_new(d, "version", json_integer(1));
    json_object_set_new(d, "source", json_string(name));
    json_object_set(d, "metadata", meta);
    json_object_set_new(d, "qParams", qp ? json_incref(qp) : json_object());
    json_object_set_new(d, "scores", find_scores(root, meta));
    json_object_set_new(d, "n_nodes", json_integer(p.n_nodes));
    json_object_set_new(d, "n_links", json_integer(p.n_links));
    json_object_set_new(d, "node_i32", packed_array(p.node_i32, (size_t)p.n_nodes * 6));
    json_object_set_new(d, "node_f32", packed_array(p.node_f32, (size_t)p.n_nodes * 3));
    json_object_set_new(d, "link_i32", packed_array(p.link_i32, (size_t)p.n_links * 2));
    json_object_set_new(d, "link_f32", packed_array(p.link_f32, (size_t)p.n_links));
    json_object_set(d, "node_id", p.ids);
    json_object_set(d, "clerp", p.clerps);
    json_object_set_new(d, "features", features);
    json_object_set_new(d, "explanations", expl);
    packed_free(&p);
    char *text = json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(7));
    json_decref(d);
    if (!text) return err_set(e, "%s: cannot serialise the packed graph (invalid UTF-8 in a string?)", name);
    char *data = graph_html_script_json(text);
    free(text);

    // A per-page nonce for the Content-Security-Policy: only the page's own <script> runs, never an
    // inline handler or element that escaped into the DOM. Derived from the data (reproducible).
    char nonce[40];
    snprintf(nonce, sizeof nonce, "g%016llx", (unsigned long long)hash_bytes(data, strlen(data)));
    const char *title = o && o->title ? o->title : json_string_value(json_object_get(meta, "slug"));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        free(data);
        return err_set(e, "%s: out of memory", name);
    }
    write_page(f, title, data, nonce);
    fclose(f);
    free(data);
    *html = buf;
    st->html_bytes = len;
    return 0;
}

int graph_html_build(const char *text, size_t len, const char *name, const GraphHtmlOptions *o, char **html,
                     GraphHtmlStats *stats, Error *e) {
    GraphHtmlStats local;
    if (!stats) stats = &local;
    *html = NULL;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    if (!root) {
        if (len == 0) return err_set(e, "%s: empty input (not a graph JSON)", name);
        return err_set(e, "%s: not JSON: %s (line %d, column %d)", name, je.text, je.line, je.column);
    }
    int rc = build(root, name, o, html, stats, e);
    json_decref(root);
    return rc;
}

static int read_all(const char *path, char **buf, size_t *len, Error *e) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = xmalloc(cap);
    size_t r;
    while ((r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) b = xrealloc(b, cap *= 2);
    }
    int bad = ferror(f);
    if (f != stdin) fclose(f);
    if (bad) {
        free(b);
        return err_set(e, "%s: read error", path);
    }
    *buf = b, *len = n;
    return 0;
}

int graph_html_convert(const char *in_path, const GraphHtmlOptions *o, const char *out_path, GraphHtmlStats *stats,
                       Error *e) {
    char *text = NULL, *html = NULL;
    size_t len = 0;
    if (read_all(in_path, &text, &len, e)) return -1;
    if (o && o->features_dir) {
        struct stat sb;
        if (stat(o->features_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            free(text);
            return err_set(e, "%s: not a directory (--features)", o->features_dir);
        }
    }
    GraphHtmlStats local;
    if (!stats) stats = &local;
    int rc = graph_html_build(text, len, strcmp(in_path, "-") ? in_path : "stdin", o, &html, stats, e);
    free(text);
    if (rc) return -1;
    if (!strcmp(out_path, "-")) {
        size_t w = fwrite(html, 1, stats->html_bytes, stdout);
        rc = w != stats->html_bytes || fflush(stdout) ? err_set(e, "stdout: write failed") : 0;
    } else {
        rc = write_file_atomic(out_path, html, stats->html_bytes, e);
    }
    free(html);
    return rc;
}
