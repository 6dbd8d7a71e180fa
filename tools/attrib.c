// attrib — the attribution graph of a prompt through a CLT's replacement model (circuit-tracer's
// semantics), as Neuronpedia graph JSON; `attrib intervene` sets or scales features and prints the
// new top logits. A thin main over libcommon/attrib/attrib.h (engine) and attrib_graph.h (pruning, JSON,
// raw file).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attrib.h"
#include "attrib_graph.h"
#include "cli.h"
#include "err.h"
#include "fileio.h"
#include "model.h"
#include "model_resolve.h"
#include "progress.h"
#include "tokenizer.h"
#include "attrib_cuda.h"
#include "cuda_common.h"

static const char USAGE[] =
    "usage: attrib -m MODEL_DIR --clt CLT_DIR [options] [PROMPT_FILE | -]\n"
    "       attrib intervene -m MODEL_DIR --clt CLT_DIR --set L:F:P=V [options] [PROMPT_FILE | -]\n"
    "\n"
    "Computes the attribution graph of the prompt's next-token prediction through the replacement\n"
    "model (the model with its MLPs replaced by the CLT, attention patterns and norm scales frozen,\n"
    "error nodes for what the CLT misses), exactly as circuit-tracer 0.5.0 defines it, prunes it and\n"
    "writes Neuronpedia graph JSON (schema version 1, formats/graph.md) to stdout or -o. The prompt\n"
    "is read from the file or stdin (one trailing newline dropped) and tokenized with the model's\n"
    "tokenizer.json; BOS is prepended unless the text starts with it. Position 0 (BOS) has its\n"
    "features and errors zeroed, as circuit-tracer does. Progress on stderr (a terminal only).\n"
    "\n"
    "options:\n"
    "  -m, --model DIR          model directory (config.json, safetensors, tokenizer.json), or a name\n"
    "                           in the model cache (as generate -m); default\n"
    "                           $CLTKIT_MODEL, else $CLTKIT_CACHE/demo/model (left by make demo)\n"
    "  --clt DIR                CLT in circuit-tracer's layout (formats/clt.md; default $CLTKIT_CLT,\n"
    "                           else $CLTKIT_CACHE/demo/clt); its config.yaml's\n"
    "                           feature_input_hook picks the input: mlp.hook_in or ln2.hook_normalized\n"
    "                           (the normalized MLP input) or hook_resid_mid\n"
    "  --ids \"1 2 3\"            the prompt as token ids, used exactly as given (no BOS added)\n"
    "  --max-logits N           salient logit targets at most (default 10)\n"
    "  --logit-prob P           ... the fewest reaching cumulative probability P (default 0.95)\n"
    "  --target TOKEN           attribute to this token instead of the salient ones (repeatable); a\n"
    "                           string the tokenizer encodes as one token, or id:N\n"
    "  --max-feature-nodes N    feature rows to compute, chosen greedily by estimated influence on\n"
    "                           the logits (default: all active features)\n"
    "  --node-threshold X       pruning: cumulative node influence kept (default 0.8)\n"
    "  --edge-threshold X       pruning: cumulative edge score kept (default 0.98)\n"
    "  --batch B                targets per backward pass (default 256)\n"
    "  --update-interval N      greedy: batches between re-rankings (default 4)\n"
    "  --threads N              CPU threads (default: $CLTKIT_THREADS, else all cores)\n"
    "  --device D               cpu (default) or cuda: the backward passes (the rows) on the GPU\n"
    "                           (builds with CUDA; the forward, pruning and intervene stay on the CPU)\n"
    "  --slug NAME              the graph's slug (default \"graph\")\n"
    "  --scan NAME              the graph's scan (default: the CLT's scan, else its directory name)\n"
    "  -o, --output FILE        the graph JSON (default stdout); written atomically\n"
    "  --raw FILE               also write the unpruned rows, node tables and pruning result\n"
    "                           (safetensors, formats/graph.md)\n"
    "\n"
    "intervene: runs the prompt with features changed and prints the top logits before and after\n"
    "as JSON:\n"
    "  --set L:F:P=V            set feature F of layer L at position P to activation V (repeatable)\n"
    "  --scale L:F:P=X          multiply its activation by X (repeatable)\n"
    "  --recompute              attention, norms and MLPs recomputed (the real model with the\n"
    "                           decoder change added to the MLP outputs); default: everything frozen\n"
    "                           (direct effects, the graph's linear model)\n"
    "  --top N                  logits to print (default 10)\n"
    "  -h, --help, --version\n";

typedef struct {
    const char *model, *clt, *ids, *slug, *scan, *out, *raw, *device, *prompt_path;
    int max_logits, max_feature_nodes, batch, update_interval, threads, top, recompute;
    double logit_prob, node_threshold, edge_threshold;
    const char **targets;
    int n_targets;
    const char **sets;  // "L:F:P=V", prefixed by 's' (set) or 'x' (scale)
    int n_sets;
} Options;

static char *read_all(FILE *f, const char *path) {
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (size_t got; (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) buf = xrealloc(buf, cap *= 2);
    }
    if (ferror(f)) fatal("%s: read failed", path);
    if (n && buf[n - 1] == '\n') n--;
    if (n && buf[n - 1] == '\r') n--;
    buf[n] = 0;
    return buf;
}

static void parse_ids(const char *s, TokIds *out) {
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || v > 0xffffffffLL || (*end && !strchr(" ,\t\n", *end)))
            fatal("--ids: \"%s\" is not a list of non-negative token ids", s);
        tokids_push(out, (uint32_t)v);
        p = end;
    }
}

static Tokenizer *load_tokenizer(const char *dir, int required) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    Error e;
    Tokenizer *t = tokenizer_load(path, &e);
    if (!t && required) fatal_err(&e);
    return t;
}

// The prompt's ids: --ids as given, else the text tokenized without special tokens and BOS
// prepended unless it is already first (circuit-tracer's ensure_tokenized).
static void prompt_ids(const Options *o, const Model *m, const Tokenizer *tok, TokIds *ids, char **text) {
    if (o->ids) {
        parse_ids(o->ids, ids);
        *text = xstrdup(o->ids);
        return;
    }
    const char *path = o->prompt_path ? o->prompt_path : "-";
    FILE *f = cli_open_in(path);
    char *raw = read_all(f, path);
    if (f != stdin) fclose(f);
    Error e;
    TokScratch *sc = tokscratch_new();
    TokIds body = {0};
    TokEncodeOptions eo = {1, 0};
    if (tokenizer_encode(tok, sc, raw, strlen(raw), &eo, &body, &e)) fatal("%s: %s", path, e.msg);
    tokscratch_free(sc);
    int64_t bos = m->cfg.bos_id;
    if (bos < 0) {
        size_t n;
        const uint32_t *pre = tokenizer_post_prefix(tok, &n);
        bos = n ? (int64_t)pre[0] : -1;
    }
    if (bos >= 0 && (!body.n || body.ids[0] != (uint32_t)bos)) tokids_push(ids, (uint32_t)bos);
    for (size_t i = 0; i < body.n; i++) tokids_push(ids, body.ids[i]);
    tokids_free(&body);
    if (!body.n && !ids->n) fatal("%s: the prompt is empty", path);
    *text = raw;
}

static char *decode_one(const Tokenizer *tok, uint32_t id) {
    char *s = NULL;
    size_t len;
    Error e;
    if (tok && !tokenizer_decode(tok, &id, 1, 0, &s, &len, &e)) return s;
    char buf[32];
    snprintf(buf, sizeof buf, "<%u>", id);
    return xstrdup(buf);
}

static int32_t target_id(const char *s, const Tokenizer *tok, int V) {
    if (!strncmp(s, "id:", 3)) return (int32_t)cli_parse_int("--target", s + 3, 0, V - 1);
    if (!tok) fatal("--target \"%s\": no tokenizer.json to encode it (use id:N)", s);
    TokScratch *sc = tokscratch_new();
    TokIds ids = {0};
    TokEncodeOptions eo = {1, 0};
    Error e;
    if (tokenizer_encode(tok, sc, s, strlen(s), &eo, &ids, &e)) fatal("--target \"%s\": %s", s, e.msg);
    tokscratch_free(sc);
    if (ids.n != 1) fatal("--target \"%s\" encodes to %zu tokens, not one (use id:N)", s, ids.n);
    int32_t id = (int32_t)ids.ids[0];
    tokids_free(&ids);
    return id;
}

typedef struct {
    Progress bar;
    const char *phase;
} ProgressState;

static void on_progress(void *ctx, const char *phase, int64_t done, int64_t total) {
    ProgressState *p = ctx;
    if (!p->phase || strcmp(p->phase, phase)) {
        if (p->phase) progress_finish(&p->bar);
        p->phase = phase;
        progress_init(&p->bar, phase, "rows", 1, (uint64_t)total);
    }
    progress_update(&p->bar, (uint64_t)done);
}

static void parse_args(int argc, char **argv, Options *o, int intervene) {
    enum { O_CLT = 1000, O_IDS, O_MAXL, O_LPROB, O_TARGET, O_MFN, O_NTH, O_ETH, O_BATCH, O_UPD, O_THREADS, O_DEVICE,
           O_SLUG, O_SCAN, O_RAW, O_SET, O_SCALE, O_RECOMP, O_TOP };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"clt", required_argument, 0, O_CLT},
        {"ids", required_argument, 0, O_IDS}, {"max-logits", required_argument, 0, O_MAXL},
        {"logit-prob", required_argument, 0, O_LPROB}, {"target", required_argument, 0, O_TARGET},
        {"max-feature-nodes", required_argument, 0, O_MFN}, {"node-threshold", required_argument, 0, O_NTH},
        {"edge-threshold", required_argument, 0, O_ETH}, {"batch", required_argument, 0, O_BATCH},
        {"update-interval", required_argument, 0, O_UPD}, {"threads", required_argument, 0, O_THREADS},
        {"device", required_argument, 0, O_DEVICE}, {"slug", required_argument, 0, O_SLUG},
        {"scan", required_argument, 0, O_SCAN}, {"output", required_argument, 0, 'o'},
        {"raw", required_argument, 0, O_RAW}, {"set", required_argument, 0, O_SET},
        {"scale", required_argument, 0, O_SCALE}, {"recompute", no_argument, 0, O_RECOMP},
        {"top", required_argument, 0, O_TOP}, {0, 0, 0, 0}};
    *o = (Options){.max_logits = 10, .logit_prob = 0.95, .node_threshold = 0.8, .edge_threshold = 0.98, .batch = 256,
                   .update_interval = 4, .device = "cpu", .slug = "graph", .top = 10};
    o->targets = xcalloc((size_t)argc, sizeof(char *));
    o->sets = xcalloc((size_t)argc, sizeof(char *));
    int c;
    while ((c = getopt_long(argc, argv, "m:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case O_CLT: o->clt = optarg; break;
        case O_IDS: o->ids = optarg; break;
        case O_MAXL: o->max_logits = (int)cli_parse_int("--max-logits", optarg, 1, 1 << 20); break;
        case O_LPROB: o->logit_prob = cli_parse_double("--logit-prob", optarg, 0, 1); break;
        case O_TARGET: o->targets[o->n_targets++] = optarg; break;
        case O_MFN: o->max_feature_nodes = (int)cli_parse_int("--max-feature-nodes", optarg, 1, 1 << 30); break;
        case O_NTH: o->node_threshold = cli_parse_double("--node-threshold", optarg, 0, 1); break;
        case O_ETH: o->edge_threshold = cli_parse_double("--edge-threshold", optarg, 0, 1); break;
        case O_BATCH: o->batch = (int)cli_parse_int("--batch", optarg, 1, 1 << 16); break;
        case O_UPD: o->update_interval = (int)cli_parse_int("--update-interval", optarg, 1, 1 << 16); break;
        case O_THREADS: o->threads = (int)cli_parse_int("--threads", optarg, 1, 4096); break;
        case O_DEVICE: o->device = optarg; break;
        case O_SLUG: o->slug = optarg; break;
        case O_SCAN: o->scan = optarg; break;
        case 'o': o->out = optarg; break;
        case O_RAW: o->raw = optarg; break;
        case O_SET: case O_SCALE: {
            char *s = xmalloc(strlen(optarg) + 2);
            s[0] = c == O_SET ? 's' : 'x';
            strcpy(s + 1, optarg);
            o->sets[o->n_sets++] = s;
            break;
        }
        case O_RECOMP: o->recompute = 1; break;
        case O_TOP: o->top = (int)cli_parse_int("--top", optarg, 1, 1 << 20); break;
        default: cli_usage_error("attrib", "unknown option");
        }
    }
    if (optind < argc) o->prompt_path = argv[optind++];
    if (optind < argc) cli_usage_error("attrib", "one prompt file at most (got \"%s\" too)", argv[optind]);
    // defaults: $CLTKIT_MODEL / $CLTKIT_CLT, else the demo's model and CLT (make demo links them)
    if (!o->model && (o->model = cli_default_path("CLTKIT_MODEL", "demo/model")))
        fprintf(stderr, "attrib: model %s (the default: $CLTKIT_MODEL, else $CLTKIT_CACHE/demo/model)\n", o->model);
    if (!o->clt && (o->clt = cli_default_path("CLTKIT_CLT", "demo/clt")))
        fprintf(stderr, "attrib: CLT %s (the default: $CLTKIT_CLT, else $CLTKIT_CACHE/demo/clt)\n", o->clt);
    if (!o->model) cli_usage_error("attrib", "-m MODEL_DIR is required (no $CLTKIT_MODEL, no demo model: make demo)");
    if (!o->clt) cli_usage_error("attrib", "--clt CLT_DIR is required (no $CLTKIT_CLT, no demo CLT: make demo)");
    if (o->ids && o->prompt_path) cli_usage_error("attrib", "give the prompt as --ids or as a file, not both");
    if (!(o->logit_prob > 0 && o->logit_prob <= 1)) cli_usage_error("attrib", "--logit-prob must be in (0, 1]");
    if (!(o->node_threshold >= 0 && o->node_threshold <= 1))
        cli_usage_error("attrib", "--node-threshold must be in [0, 1]");
    if (!(o->edge_threshold >= 0 && o->edge_threshold <= 1))
        cli_usage_error("attrib", "--edge-threshold must be in [0, 1]");
    if (strcmp(o->device, "cpu") && strcmp(o->device, "cuda"))
        cli_usage_error("attrib", "--device must be cpu or cuda (got \"%s\")", o->device);
    if (!strcmp(o->device, "cuda")) {
        Error e;
        if (cuda_devices(&e) < 1) fatal("--device cuda: %s", e.msg);
    }
    if (intervene && !o->n_sets) cli_usage_error("attrib", "intervene needs at least one --set or --scale");
    if (!intervene && o->n_sets) cli_usage_error("attrib", "--set/--scale belong to `attrib intervene`");
    if (o->threads) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", o->threads);
        setenv("CLTKIT_THREADS", buf, 1);
    }
}

// ---- intervene ------------------------------------------------------------------------------

typedef struct {
    float p;
    int32_t id;
} TopEntry;

static int top_cmp(const void *a, const void *b) {
    const TopEntry *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static void print_top(FILE *f, const char *key, const float *logits, int V, int top, const Tokenizer *tok) {
    TopEntry *t = xmalloc((size_t)V * sizeof *t);
    float mx = logits[0];
    for (int v = 1; v < V; v++) mx = logits[v] > mx ? logits[v] : mx;
    double z = 0;
    for (int v = 0; v < V; v++) z += exp((double)logits[v] - mx);
    for (int v = 0; v < V; v++) t[v] = (TopEntry){(float)(exp((double)logits[v] - mx) / z), v};
    qsort(t, (size_t)V, sizeof *t, top_cmp);
    fprintf(f, "  \"%s\": [", key);
    for (int k = 0; k < top && k < V; k++) {
        char *s = decode_one(tok, (uint32_t)t[k].id);
        fprintf(f, "%s\n    {\"id\": %d, \"token\": \"", k ? "," : "", t[k].id);
        for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
            if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
            else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
            else fputc(*c, f);
        }
        fprintf(f, "\", \"prob\": %.6g, \"logit\": %.6g}", t[k].p, logits[t[k].id]);
        free(s);
    }
    fprintf(f, "\n  ]");
    free(t);
}

static void last_logits(const Model *m, const float *final_row, float *logits) {
    int D = m->cfg.d_model, V = m->cfg.vocab_size;
    for (int v = 0; v < V; v++) {
        const float *w = m->lm_head + (size_t)v * D;
        float s = 0;
        for (int i = 0; i < D; i++) s += w[i] * final_row[i];
        float cap = m->cfg.block.final_softcap;
        logits[v] = cap > 0 ? cap * tanhf(s / cap) : s;
    }
}

static int run_intervene(const Options *o, const Model *m, const AttribClt *clt, const AttribState *s,
                         const Tokenizer *tok) {
    int L = s->L, T = s->T, D = s->D, V = s->V;
    size_t TD = (size_t)T * D;
    float **delta = xcalloc((size_t)L, sizeof(float *));
    for (int l = 0; l < L; l++) delta[l] = xcalloc(TD, sizeof(float));
    float *row = xmalloc((size_t)L * D * sizeof(float));
    Error e;
    for (int k = 0; k < o->n_sets; k++) {
        const char *spec = o->sets[k] + 1;
        int l, fi, p;
        double v;
        char tail;
        if (sscanf(spec, "%d:%d:%d=%lf%c", &l, &fi, &p, &v, &tail) != 4)
            fatal("--%s \"%s\": expected LAYER:FEATURE:POS=VALUE", o->sets[k][0] == 's' ? "set" : "scale", spec);
        if (l < 0 || l >= L || fi < 0 || fi >= clt->F || p < 0 || p >= T)
            fatal("--%s \"%s\": layer, feature or position out of range (%d layers, %d features, %d positions)",
                  o->sets[k][0] == 's' ? "set" : "scale", spec, L, clt->F, T);
        float cur = 0;  // the current activation (0 if not active)
        for (int a = 0; a < s->n_active; a++)
            if (s->active[3 * a] == l && s->active[3 * a + 1] == p && s->active[3 * a + 2] == fi)
                cur = s->activation[a];
        float d = o->sets[k][0] == 's' ? (float)v - cur : (float)(v - 1) * cur;
        if (attrib_clt_decoder_row(clt, l, fi, row, &e)) fatal_err(&e);
        for (int t = l; t < L; t++)
            for (int i = 0; i < D; i++) delta[t][(size_t)p * D + i] += d * row[(size_t)(t - l) * D + i];
    }
    free(row);
    float *before = xmalloc((size_t)V * sizeof(float)), *after = xmalloc((size_t)V * sizeof(float));
    memcpy(before, s->logits, (size_t)V * sizeof(float));
    float *final = xmalloc(TD * sizeof(float));
    if (o->recompute) {
        ForwardOutputs out = {.final_hidden = final, .mlp_add = delta};
        ForwardState *fs = forward_state_new(m, 1, T);
        if (model_forward(m, fs, s->tokens, 1, T, &out, &e)) fatal_err(&e);
        forward_state_free(fs);
    } else {
        float **mlp = xcalloc((size_t)L, sizeof(float *));
        for (int l = 0; l < L; l++) {
            mlp[l] = xmalloc(TD * sizeof(float));
            for (size_t i = 0; i < TD; i++) mlp[l][i] = s->mlp_out[l][i] + delta[l][i];
        }
        if (attrib_frozen_forward(m, s, mlp, NULL, 0, NULL, final, &e)) fatal_err(&e);
        for (int l = 0; l < L; l++) free(mlp[l]);
        free(mlp);
    }
    last_logits(m, final + (size_t)(T - 1) * D, after);
    FILE *f = o->out ? NULL : stdout;
    char tmp[4200];
    if (o->out) {
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", o->out, (int)getpid());
        f = fopenCheck(tmp, "w");
    }
    fprintf(f, "{\n  \"mode\": \"%s\",\n", o->recompute ? "recompute" : "frozen");
    print_top(f, "before", before, V, o->top, tok);
    fputs(",\n", f);
    print_top(f, "after", after, V, o->top, tok);
    fputs("\n}\n", f);
    if (finish_output(&f, o->out ? tmp : NULL, o->out, &e)) fatal_err(&e);
    for (int l = 0; l < L; l++) free(delta[l]);
    free(delta); free(before); free(after); free(final);
    return 0;
}

// ---- main -----------------------------------------------------------------------------------

static const char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    return b && b[1] ? b + 1 : path;
}

int main(int argc, char **argv) {
    cli_standard(argc, argv, "attrib", USAGE);
    int intervene = argc > 1 && !strcmp(argv[1], "intervene");
    if (intervene) argc--, argv++;
    Options o;
    parse_args(argc, argv, &o, intervene);
    Error e;
    Model m;
    o.model = model_resolve_cli("attrib", o.model);  // a path, or a name in the cache
    if (model_load(&m, o.model, &e)) fatal_err(&e);
    AttribClt clt;
    if (attrib_clt_open(&clt, o.clt, &e)) fatal_err(&e);
    if (attrib_clt_check(&clt, &m, &e)) fatal_err(&e);
    Tokenizer *tok = load_tokenizer(o.model, !o.ids);
    TokIds ids = {0};
    char *prompt_text;
    prompt_ids(&o, &m, tok, &ids, &prompt_text);
    if (!ids.n) fatal("attrib: the prompt is empty (no tokens)");
    if (ids.n > (size_t)m.cfg.max_pos)
        fatal("attrib: the prompt has %zu tokens, more than the model's context of %d (%s)", ids.n, m.cfg.max_pos,
              o.model);

    ProgressState ps = {0};
    progress_init(&ps.bar, "forward", "steps", 1, 1);
    AttribState s;
    if (attrib_capture(&m, &clt, ids.ids, (int)ids.n, &s, &e)) fatal_err(&e);
    progress_update(&ps.bar, 1);
    progress_finish(&ps.bar);
    if (intervene) {
        run_intervene(&o, &m, &clt, &s, tok);
        attrib_state_free(&s);
        attrib_clt_close(&clt);
        model_free(&m);
        if (tok) tokenizer_free(tok);
        tokids_free(&ids);
        free(prompt_text);
        return 0;
    }

    int32_t *targets = xmalloc(((size_t)o.n_targets + 1) * sizeof(int32_t));
    for (int k = 0; k < o.n_targets; k++) targets[k] = target_id(o.targets[k], tok, m.cfg.vocab_size);
    if (attrib_logit_targets(&s, &m, targets, o.n_targets, o.max_logits, o.logit_prob, &e)) fatal_err(&e);

    AttribRunOptions ro = {o.batch, o.max_feature_nodes, o.update_interval, on_progress, &ps, NULL};
    AttribGpu *ag = NULL;
    AttribBackend be;
    if (!strcmp(o.device, "cuda")) {
        if (!(ag = attrib_gpu_new(&m, &s, o.batch, &e))) fatal_err(&e);
        be = attrib_gpu_backend(ag);
        ro.backend = &be;
    }
    ps.phase = NULL;
    AttribGraph g;
    if (attrib_run(&m, &s, &ro, &g, &e)) fatal_err(&e);
    attrib_gpu_free(ag);
    if (ps.phase) progress_finish(&ps.bar);

    progress_init(&ps.bar, "pruning", "steps", 1, 1);
    AttribPruned pr;
    if (attrib_prune(&g, o.node_threshold, o.edge_threshold, &pr, &e)) fatal_err(&e);
    progress_update(&ps.bar, 1);
    progress_finish(&ps.bar);

    if (o.raw && attrib_write_raw(o.raw, &g, &pr, &e)) fatal_err(&e);

    // token strings as the tokenizer decodes single ids (circuit-tracer's prompt_tokens)
    char **tok_str = xmalloc((size_t)g.n_pos * sizeof(char *));
    char **logit_str = xmalloc((size_t)g.n_logits * sizeof(char *));
    for (int p = 0; p < g.n_pos; p++) tok_str[p] = decode_one(tok, (uint32_t)g.tokens[p]);
    for (int k = 0; k < g.n_logits; k++) logit_str[k] = decode_one(tok, (uint32_t)g.logit_token[k]);
    char *full_prompt = NULL;
    size_t fl;
    if (!tok || tokenizer_decode(tok, ids.ids, ids.n, 0, &full_prompt, &fl, &e)) full_prompt = xstrdup(prompt_text);
    AttribMeta meta = {o.slug, o.scan ? o.scan : clt.name, full_prompt, tok_str, logit_str, base_name(o.model),
                       clt.name, o.max_logits, o.logit_prob, o.batch, o.max_feature_nodes, o.node_threshold,
                       o.edge_threshold};
    const char *out_name = o.out ? o.out : "stdout";
    FILE *f = stdout;
    char tmp[4200];
    if (o.out) {
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", o.out, (int)getpid());
        f = fopenCheck(tmp, "w");
    }
    if (attrib_write_json(f, out_name, &g, &pr, &meta, &e)) {
        if (o.out) remove(tmp);
        fatal_err(&e);
    }
    if (finish_output(&f, o.out ? tmp : NULL, o.out, &e)) fatal_err(&e);

    for (int p = 0; p < g.n_pos; p++) free(tok_str[p]);
    for (int k = 0; k < g.n_logits; k++) free(logit_str[k]);
    free(tok_str); free(logit_str); free(full_prompt); free(targets);
    attrib_pruned_free(&pr);
    attrib_graph_free(&g);
    attrib_state_free(&s);
    attrib_clt_close(&clt);
    if (tok) tokenizer_free(tok);
    tokids_free(&ids);
    free(prompt_text);
    model_free(&m);
    return 0;
}
