// feat-topk — every CLT feature's evidence in one streaming pass over a corpus: top-k contexts,
// samples across the activation range (explain / test splits), non-activating samples,
// statistics, decoder logits; stored as a feature store (formats/features.md). Subcommands merge
// shards, show one feature, export circuit-tracer's per-feature JSON.
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actshard.h"
#include "cli.h"
#include "clt.h"
#include "clt_io.h"
#include "contexts.h"
#include "engine.h"
#include "err.h"
#include "feat_collect.h"
#include "featstore.h"
#include "fileio.h"
#include "model.h"
#include "model_resolve.h"
#include "progress.h"
#include "tokenizer.h"

static const char USAGE[] =
    "usage: feat-topk -m MODEL_DIR --clt CLT_DIR -o FEATURES_DIR [options] TOKENS.tok...\n"
    "       feat-topk --acts --clt CLT_DIR -o FEATURES_DIR [-m MODEL_DIR] [options] SHARD.acts...\n"
    "       feat-topk merge -o FEATURES_DIR STORE...\n"
    "       feat-topk show STORE LAYER:FEATURE [--text | --json | --raw] [-t tokenizer.json]\n"
    "       feat-topk export STORE -o DIR [-t tokenizer.json] [--layers SPEC]\n"
    "\n"
    "Collects, for every feature of a cross-layer transcoder, in one pass over a corpus: the top-k\n"
    "windows by max activation (one per window of --window tokens, identical windows once, viewed\n"
    "with the max at --max-at), samples across the activation range (per split explain/test, fixed\n"
    "per window before sampling: a uniform sample cut into --bins equal-count bins), random\n"
    "non-activating windows, the firing count, density, max, mean, histogram and quantiles, the\n"
    "tokens after the max, and the top/bottom logits of the feature's decoder through the\n"
    "unembedding. The model runs with the CLT encoder on its --in hook (or --acts reads fwd-acts\n"
    "shards). Dead and always-on features are flagged. Output: a feature store (formats/features.md),\n"
    "written atomically. --shard i/N takes every N-th batch of contexts and computes every N-th\n"
    "block of 64 features' decoder logits; `merge` of all N shards is identical to one job (same\n"
    "--batch). Memory: per live feature (k + 2*bins*per-bin) examples of\n"
    "window+2*extra tokens (8 bytes a token) + 2*random windows + 1 KiB, whatever the corpus size.\n"
    "\n"
    "options:\n"
    "  -m, --model DIR      model directory (config.json, model.safetensors), or a name in the model\n"
    "                       cache (as generate -m); with --acts only for logits\n"
    "  --clt DIR            CLT checkpoint (formats/clt.md)\n"
    "  -o, --output DIR     feature store to write (merge, export: the output)\n"
    "  --acts               inputs are activation shards (fwd-acts) instead of token shards\n"
    "  --layers SPEC        CLT layers to collect: all (default), or e.g. 0,2,5-7\n"
    "  --in HOOK            CLT input hook: mlp_in or resid_mid (default: from the CLT's config.yaml)\n"
    "  --ctx N              context length incl. BOS (default 128)\n"
    "  --batch N            contexts per forward pass (default 8)\n"
    "  --no-bos             do not prepend BOS\n"
    "  --bos ID             BOS id (default: config.json bos_token_id)\n"
    "  --shard i/N          process the batches (of --batch contexts) with index % N == i\n"
    "  --max-tokens N       read at most N tokens of the input (as fwd-acts); with --shard the\n"
    "                       corpus' first N, shared by the jobs (merged = one job with the cap)\n"
    "  --threads N          threads for the bookkeeping (default: all cores)\n"
    "  --device D           cpu (default) or cuda: where the model's forward runs\n"
    "  --k N                top windows per feature (default 100)\n"
    "  --window N           tokens per window (default 32)\n"
    "  --max-at N           index of the max in a window's view (default 24)\n"
    "  --extra N            tokens stored beyond the window on each side, a longer view (default 0)\n"
    "  --bins N             equal-count bins of the range samples (default 10)\n"
    "  --per-bin N          samples per bin and split (default 5)\n"
    "  --random N           non-activating windows per split (default 10)\n"
    "  --logits N           top and bottom decoder logits (default 10; 0: none)\n"
    "  --seed N             seed of the splits and samples (default 0)\n"
    "  --always-on X        density from which a feature is flagged always-on (default 0.9)\n"
    "  -t, --tokenizer F    show/export: tokenizer.json (default: the model's, as found by the run)\n"
    "  --text               show: text with the max tokens highlighted (default on a terminal)\n"
    "  --json               show: the exported JSON (default elsewhere)\n"
    "  --raw                show: the stored record as is\n"
    "  -h, --help, --version\n";

typedef struct {
    const char *model_dir, *clt_dir, *out, *layers_spec, *in_hook, *device, *tokenizer;
    int acts, ctx, batch, no_bos, shard_i, shard_n, threads, text, json, raw;
    int64_t bos, max_tokens;
    FeatOptions fo;
} Options;

// ---- shared pieces ----------------------------------------------------------------------------

// The tokenizer for show/export: -t, else the store's model directory's tokenizer.json, else NULL.
static Tokenizer *store_tokenizer(const char *path, const FeatStore *s) {
    Error e;
    Tokenizer *t = feat_store_tokenizer(s, path, &e);
    if (!t && e.msg[0]) fatal_err(&e);
    return t;
}

// ---- merge --------------------------------------------------------------------------------------

// Shard indices of a store's meta ("shard_index": i, or the list a partial merge wrote).
static int meta_shards(json_t *m, int n, char *seen, const char *path) {
    json_t *si = json_object_get(m, "shard_index"), *v;
    size_t i;
    if (json_is_integer(si)) si = json_pack("[O]", si);
    else json_incref(si);
    if (!json_is_array(si)) fatal("%s: meta has no shard_index", path);
    json_array_foreach(si, i, v) {
        json_int_t k = json_integer_value(v);
        if (k < 0 || k >= n) fatal("%s: shard_index %lld outside 0..%d", path, (long long)k, n - 1);
        if (seen[k]) fatal("%s: shard %lld/%d is merged twice", path, (long long)k, n);
        seen[k] = 1;
    }
    json_decref(si);
    return 0;
}

static int run_merge(const Options *o, char **inputs, int n_in) {
    if (!o->out) cli_usage_error("feat-topk", "merge: missing -o/--output");
    if (n_in < 1) cli_usage_error("feat-topk", "merge: no stores given");
    Error e;
    FeatCollector *c = NULL;
    json_t *meta0 = NULL;
    char *seen = NULL;
    int n_shards = 0;
    for (int i = 0; i < n_in; i++) {
        FeatStore s;
        if (featstore_open(&s, inputs[i], &e)) fatal_err(&e);
        json_t *m = json_loads(s.meta_json, 0, NULL);
        if (!json_is_object(m)) fatal("%s: meta is not a JSON object", s.path);
        if (!c) {
            if (!(c = feat_collector_from_store(&s, o->threads, &e))) fatal_err(&e);
            meta0 = json_deep_copy(m);
            n_shards = (int)json_integer_value(json_object_get(m, "shard_count"));
            if (n_shards < 1) fatal("%s: meta has no shard_count", s.path);
            seen = xcalloc((size_t)n_shards, 1);
        }
        // the same run but for the shard: same tool settings, inputs, model and CLT
        json_t *a = json_deep_copy(m), *b = json_deep_copy(meta0);
        const char *drop[] = {"shard_index", "n_tokens", "n_contexts"};
        for (int k = 0; k < 3; k++) { json_object_del(a, drop[k]); json_object_del(b, drop[k]); }
        if (!json_equal(a, b))
            fatal("%s: not a shard of the same run as %s (model, CLT, inputs or options differ)", s.path, inputs[0]);
        json_decref(a); json_decref(b);
        meta_shards(m, n_shards, seen, s.path);
        json_decref(m);
        if (feat_collector_merge_store(c, &s, &e)) fatal_err(&e);
        featstore_close(&s);
    }
    int complete = 1;
    json_t *idx = json_array();
    for (int k = 0; k < n_shards; k++) {
        complete &= seen[k];
        if (seen[k]) json_array_append_new(idx, json_integer(k));
    }
    json_object_del(meta0, "n_tokens");
    json_object_del(meta0, "n_contexts");
    if (complete) {  // the whole corpus: the meta of one job
        json_object_set_new(meta0, "shard_index", json_integer(0));
        json_object_set_new(meta0, "shard_count", json_integer(1));
        json_decref(idx);
    } else {
        json_object_set_new(meta0, "shard_index", idx);
        warn("merged %d of %d shards", (int)json_array_size(idx), n_shards);
    }
    if (feat_collector_write(c, o->out, meta0, &e)) fatal_err(&e);
    json_decref(meta0);
    free(seen);
    feat_collector_free(c);
    return 0;
}

// ---- show / export --------------------------------------------------------------------------------

static void print_text(json_t *x) {
    int tty = isatty(1);
    const char *hi = tty ? "\033[1;30;43m" : "<<", *lo = tty ? "\033[0m" : ">>";
    printf("layer %lld feature %lld   density %.3g   max %.4g   mean %.4g%s%s\n",
           (long long)json_integer_value(json_object_get(x, "layer")),
           (long long)json_integer_value(json_object_get(x, "feature")),
           json_number_value(json_object_get(x, "density")), json_number_value(json_object_get(x, "max_activation")),
           json_number_value(json_object_get(x, "mean_activation")),
           json_is_true(json_object_get(x, "dead")) ? "   DEAD" : "",
           json_is_true(json_object_get(x, "always_on")) ? "   ALWAYS-ON" : "");
    const char *lk[2] = {"top_logits", "bottom_logits"};
    for (int k = 0; k < 2; k++) {
        printf("%s:", lk[k]);
        json_t *p;
        size_t i;
        json_array_foreach(json_object_get(x, lk[k]), i, p) printf(" %s", json_string_value(p));
        printf("\n");
    }
    json_t *g, *ex;
    size_t gi, ei;
    json_array_foreach(json_object_get(x, "examples_quantiles"), gi, g) {
        printf("-- %s\n", json_string_value(json_object_get(g, "quantile_name")));
        json_array_foreach(json_object_get(g, "examples"), ei, ex) {
            json_t *t = json_object_get(ex, "tokens"), *a = json_object_get(ex, "tokens_acts_list");
            size_t m = (size_t)json_integer_value(json_object_get(ex, "train_token_ind"));
            printf("%8.4f [%s] ", json_number_value(json_array_get(a, m)),
                   json_string_value(json_object_get(ex, "split")));
            for (size_t i = 0; i < json_array_size(t); i++) {
                const char *s = json_string_value(json_array_get(t, i));
                int on = json_number_value(json_array_get(a, i)) > 0;
                if (on) printf("%s", i == m ? hi : (tty ? "\033[4m" : "["));
                for (; *s; s++) putchar(*s == '\n' ? ' ' : *s);
                if (on) printf("%s", i == m ? lo : (tty ? "\033[0m" : "]"));
            }
            printf("\n");
        }
    }
}

static int run_show(const Options *o, char **args, int n) {
    if (n != 2) cli_usage_error("feat-topk", "show: give STORE LAYER:FEATURE");
    int layer, feature, used = 0;
    if (sscanf(args[1], "%d:%d%n", &layer, &feature, &used) != 2 || args[1][used] || layer < 0 || feature < 0)
        cli_usage_error("feat-topk", "show: '%s' is not LAYER:FEATURE", args[1]);
    FeatStore s;
    Error e;
    if (featstore_open(&s, args[0], &e)) fatal_err(&e);
    if (feature >= s.n_features) fatal("%s: feature %d outside 0..%d", s.path, feature, s.n_features - 1);
    json_t *r = feat_store_record(&s, layer, feature, &e);
    if (!r) fatal_err(&e);
    if (o->raw) {
        json_dumpf(r, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(9));
        printf("\n");
    } else {
        Tokenizer *tok = store_tokenizer(o->tokenizer, &s);
        char tid[1024];
        json_t *x = feat_export_json(r, tok, feat_store_transcoder_id(&s, tid, sizeof tid));
        if (o->text || (!o->json && isatty(1))) print_text(x);
        else {
            json_dumpf(x, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(9));
            printf("\n");
        }
        json_decref(x);
        tokenizer_free(tok);
    }
    json_decref(r);
    featstore_close(&s);
    return 0;
}

static int run_export(const Options *o, char **args, int n) {
    if (n != 1) cli_usage_error("feat-topk", "export: give one STORE");
    if (!o->out) cli_usage_error("feat-topk", "export: missing -o/--output DIR");
    FeatStore s;
    Error e;
    if (featstore_open(&s, args[0], &e)) fatal_err(&e);
    Tokenizer *tok = store_tokenizer(o->tokenizer, &s);
    char tid[1024];
    feat_store_transcoder_id(&s, tid, sizeof tid);
    if (mkdir(o->out, 0755) && access(o->out, W_OK)) fatal("%s: cannot create the output directory", o->out);
    int max_layer = s.layers[s.n_layers - 1] + 1, *sel = xmalloc((size_t)max_layer * sizeof(int));
    int n_sel = cli_parse_layers("--layers", o->layers_spec, max_layer, sel);
    size_t written = 0;
    for (int i = 0; i < n_sel; i++) {
        if (featstore_layer_index(&s, sel[i]) < 0) {
            if (strcmp(o->layers_spec, "all")) fatal("--layers: the store has no layer %d", sel[i]);
            continue;
        }
        for (int f = 0; f < s.n_features; f++) {
            json_t *r = feat_store_record(&s, sel[i], f, &e);
            if (!r) fatal_err(&e);
            if (!json_is_true(json_object_get(r, "dead"))) {
                json_t *x = feat_export_json(r, tok, tid);
                char *txt = json_dumps(x, JSON_COMPACT | JSON_REAL_PRECISION(9)), name[64];
                snprintf(name, sizeof name, "%d_%d.json", sel[i], f);
                if (write_text_atomic(o->out, name, txt, &e)) fatal_err(&e);
                free(txt);
                json_decref(x);
                written++;
            }
            json_decref(r);
        }
    }
    fprintf(stderr, "feat-topk: %zu feature files in %s\n", written, o->out);
    free(sel);
    tokenizer_free(tok);
    featstore_close(&s);
    return 0;
}

// ---- the collection pass --------------------------------------------------------------------------

// One batch of contexts ready for the encoder: the selected layers' input rows (n_sel, B·T, d)
// and the context bookkeeping.
typedef struct {
    int Bmax, T, d, n_sel, B;
    float *x;
    uint32_t *tok, *pos;
    uint64_t *doc, *ctx;
    int *nv;
} Batch;

static void batch_init(Batch *b, int Bmax, int T, int d, int n_sel) {
    size_t rows = (size_t)Bmax * T;
    *b = (Batch){.Bmax = Bmax, .T = T, .d = d, .n_sel = n_sel};
    b->x = xcalloc((size_t)n_sel * rows * d, sizeof(float));
    b->tok = xcalloc(rows, sizeof(uint32_t));
    b->pos = xcalloc(rows, sizeof(uint32_t));
    b->doc = xcalloc(rows, sizeof(uint64_t));
    b->ctx = xcalloc((size_t)Bmax, sizeof(uint64_t));
    b->nv = xcalloc((size_t)Bmax, sizeof(int));
}

static void batch_free(Batch *b) {
    free(b->x); free(b->tok); free(b->pos); free(b->doc); free(b->ctx); free(b->nv);
}

// Seconds spent in each part of the pass (the summary line and bench/RESULTS.md).
typedef struct {
    double forward, encode, collect;
} Timing;

// Encodes the batch's rows with every selected CLT layer and collects them.
static void batch_collect(Batch *b, FeatCollector *c, const CltParams *p, const int *sel, float *acts, Timing *tm) {
    if (!b->B) return;
    FeatBatch fb = {b->B, b->tok, b->doc, b->pos, b->ctx, b->nv};
    feat_count_batch(c, &fb);
    size_t rows = (size_t)b->Bmax * b->T;
    for (int li = 0; li < b->n_sel; li++) {
        double t0 = now_seconds();
        feat_clt_activations(p, sel[li], b->x + (size_t)li * rows * b->d, b->B * b->T, acts);
        double t1 = now_seconds();
        feat_collect(c, li, &fb, acts);
        tm->encode += t1 - t0;
        tm->collect += now_seconds() - t1;
    }
    b->B = 0;
}

// Peak resident memory in MiB (Linux VmHWM), or -1.
static double peak_rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atof(line + 6);
    if (f) fclose(f);
    return kb < 0 ? -1 : kb / 1024;
}

static json_t *run_meta(const Options *o, char **inputs, int n_in, const Model *m, const char *hook, int T) {
    json_t *meta = json_object(), *in = json_array();
    json_object_set_new(meta, "tool", json_string("feat-topk"));
    json_object_set_new(meta, "version", json_string(CLTKIT_VERSION));
    json_object_set_new(meta, "clt_dir", json_string(o->clt_dir));
    json_object_set_new(meta, "model_dir", o->model_dir ? json_string(o->model_dir) : json_null());
    char tp[4096], *abs_tp = NULL;  // the model's tokenizer, found again from any directory by show/export
    if (o->model_dir) {
        snprintf(tp, sizeof tp, "%s/tokenizer.json", o->model_dir);
        abs_tp = realpath(tp, NULL);
    }
    json_object_set_new(meta, "tokenizer", abs_tp ? json_string(abs_tp) : json_null());
    free(abs_tp);
    json_object_set_new(meta, "model_hash",
                        m ? json_sprintf("%016llx", (unsigned long long)m->weights_hash) : json_null());
    for (int i = 0; i < n_in; i++) json_array_append_new(in, json_string(inputs[i]));
    json_object_set_new(meta, o->acts ? "acts_shards" : "token_shards", in);
    json_object_set_new(meta, "in_hook", json_string(hook));
    json_object_set_new(meta, "ctx", json_integer(o->acts ? T : o->ctx));
    json_object_set_new(meta, "max_tokens", json_integer(o->max_tokens));
    json_object_set_new(meta, "shard_index", json_integer(o->shard_i));
    json_object_set_new(meta, "shard_count", json_integer(o->shard_n));
    return meta;
}

// Model mode: contexts from token shards through the model; the CLT reads the hook rows.
static uint64_t pass_model(const Options *o, char **inputs, int n_in, const Model *m, const CltParams *p,
                           const int *sel, int n_sel, const char *hook, FeatCollector *c, int64_t bos, Progress *prog,
                           Timing *tm) {
    const ModelConfig *cfg = &m->cfg;
    int T = o->ctx, Tc = T - (bos >= 0), D = cfg->d_model, L = cfg->n_layers, Bmax = o->batch;
    Error e;
    ContextReader cr;
    if (context_reader_open(&cr, inputs, n_in, T, bos, (uint32_t)cfg->vocab_size, &e)) fatal_err(&e);
    size_t NT = (size_t)Bmax * T;
    uint32_t *tokens = xmalloc(NT * sizeof(uint32_t)), *positions = xmalloc(NT * sizeof(uint32_t));
    uint64_t *docs = xmalloc(NT * sizeof(uint64_t)), *ctx_of = xmalloc((size_t)Bmax * sizeof(uint64_t));
    float **hooks = xcalloc((size_t)L, sizeof(float *));
    for (int i = 0; i < n_sel; i++) hooks[sel[i]] = xmalloc(NT * D * sizeof(float));
    ForwardOutputs fo = {.n_run_layers = sel[n_sel - 1] + 1};
    if (!strcmp(hook, "mlp_in")) fo.mlp_in = hooks;
    else fo.resid_mid = hooks;
    Engine en;
    engine_init(&en, m, o->device, Bmax, T);
    Batch b;
    batch_init(&b, Bmax, Tc, D, n_sel);
    float *acts = xmalloc((size_t)Bmax * Tc * p->F * sizeof(float));
    uint64_t ctx_index = 0, done_tokens = 0, corpus_tokens = 0;
    int done = 0;
    for (uint64_t batch_index = 0; !done; batch_index++) {
        int B = 0;
        while (B < Bmax) {
            int rc =
                context_reader_next(&cr, tokens + (size_t)B * T, docs + (size_t)B * T, positions + (size_t)B * T, &e);
            if (rc < 0) fatal_err(&e);
            if (rc == 0) { done = 1; break; }
            ctx_of[B++] = ctx_index++;
        }
        // shards take whole batches: a context is computed in the same batch by every job, so
        // its activations (GEMM blocking depends on the batch) and the merge are exact
        if (!B) break;
        // --max-tokens caps the corpus (every job's batches), not this job's share, so the shards
        // of a capped run merge into the store of one job with the same cap: the batch's first
        // Bk rows count, the last of them with nv_last tokens
        int Bk = B, nv_last = Tc;
        if (o->max_tokens > 0 && corpus_tokens + (uint64_t)B * Tc >= (uint64_t)o->max_tokens) {
            uint64_t left = (uint64_t)o->max_tokens - corpus_tokens;
            Bk = (int)((left + (uint64_t)Tc - 1) / (uint64_t)Tc);
            nv_last = (int)(left - (uint64_t)(Bk - 1) * Tc);
            done = 1;
        }
        corpus_tokens += (uint64_t)(Bk - 1) * Tc + (uint64_t)nv_last;
        if (batch_index % (uint64_t)o->shard_n != (uint64_t)o->shard_i) continue;
        double t0 = now_seconds();
        if (engine_forward(&en, tokens, B, T, &fo, &e)) fatal_err(&e);
        tm->forward += now_seconds() - t0;
        B = Bk;
        for (int bi = 0; bi < B; bi++) {  // the non-BOS rows
            size_t src = (size_t)bi * T + (size_t)(T - Tc), dst = (size_t)bi * Tc;
            memcpy(b.tok + dst, tokens + src, (size_t)Tc * sizeof(uint32_t));
            memcpy(b.pos + dst, positions + src, (size_t)Tc * sizeof(uint32_t));
            memcpy(b.doc + dst, docs + src, (size_t)Tc * sizeof(uint64_t));
            b.ctx[bi] = ctx_of[bi];
            b.nv[bi] = bi == B - 1 ? nv_last : Tc;
        }
        for (int li = 0; li < n_sel; li++)
            for (int bi = 0; bi < B; bi++)
                memcpy(b.x + ((size_t)li * Bmax * Tc + (size_t)bi * Tc) * D,
                       hooks[sel[li]] + ((size_t)bi * T + (T - Tc)) * D, (size_t)Tc * D * sizeof(float));
        b.B = B;
        for (int bi = 0; bi < B; bi++) done_tokens += (uint64_t)b.nv[bi];
        batch_collect(&b, c, p, sel, acts, tm);
        progress_update(prog, done_tokens);
    }
    context_reader_close(&cr);
    engine_free(&en);
    batch_free(&b);
    for (int l = 0; l < L; l++) free(hooks[l]);
    free(hooks); free(tokens); free(positions); free(docs); free(ctx_of); free(acts);
    return done_tokens;
}

// Acts mode: contexts are runs of ctx tokens (fwd-acts' contexts without their BOS rows).
static int acts_ctx_tokens(const ActShard *s) {
    json_t *m = json_loads(s->meta_json, 0, NULL);
    json_int_t ctx = json_integer_value(json_object_get(m, "ctx"));
    int bos = json_is_integer(json_object_get(m, "bos_prepended")) &&
        !json_is_true(json_object_get(m, "bos_activations_kept"));
    json_decref(m);
    if (ctx < 2 || ctx > (1 << 20)) fatal("%s: meta has no context length \"ctx\" (not written by fwd-acts?)", s->path);
    return (int)ctx - bos;
}

static uint64_t pass_acts(const Options *o, char **inputs, int n_in, const Model *m, const CltParams *p, const int *sel,
                          int n_sel, const char *hook, FeatCollector *c, int Tc, Progress *prog, Timing *tm) {
    Error e;
    int d = p->d;
    Batch b;
    batch_init(&b, o->batch, Tc, d, n_sel);
    float *acts = xmalloc((size_t)o->batch * Tc * p->F * sizeof(float));
    uint64_t ctx_base = 0, done_tokens = 0, corpus_tokens = 0, cur = UINT64_MAX;
    ActChunk ch = {0};
    for (int fi = 0; fi < n_in; fi++) {
        ActShard s;
        if (actshard_open(&s, inputs[fi], &e)) fatal_err(&e);
        if (s.d_model != d) fatal("%s: d_model %d does not match the CLT's %d", s.path, s.d_model, d);
        if (strcmp(s.in_hook, hook)) fatal("%s: input hook %s, the CLT reads %s", s.path, s.in_hook, hook);
        if (m && s.model_hash && s.model_hash != m->weights_hash)
            fatal("%s: written by another model than %s", s.path, o->model_dir);
        if (acts_ctx_tokens(&s) != Tc) fatal("%s: context length differs from %s's", s.path, inputs[0]);
        int *li_of = xmalloc((size_t)n_sel * sizeof(int));
        for (int i = 0; i < n_sel; i++)
            if ((li_of[i] = actshard_layer_index(&s, sel[i])) < 0) fatal("%s: has no layer %d", s.path, sel[i]);
        // --max-tokens caps the corpus, every job's tokens (as pass_model)
        for (uint64_t k = 0; k < s.n_chunks && !(o->max_tokens > 0 && corpus_tokens >= (uint64_t)o->max_tokens); k++) {
            if (actshard_read_chunk(&s, k, &ch, &e)) fatal_err(&e);
            for (uint32_t j = 0; j < ch.n; j++) {
                uint64_t g = ch.first_token + j, ci = ctx_base + g / (uint64_t)Tc, group = ci / (uint64_t)b.Bmax;
                int t = (int)(g % (uint64_t)Tc);
                if (o->max_tokens > 0 && corpus_tokens >= (uint64_t)o->max_tokens) break;
                corpus_tokens++;
                if (group % (uint64_t)o->shard_n != (uint64_t)o->shard_i) continue;  // whole batches, as pass_model
                if (ci != cur) {  // a new context: the batch's next row block, or a new batch
                    if (cur != UINT64_MAX) b.B++;
                    if (cur != UINT64_MAX && cur / (uint64_t)b.Bmax != group) batch_collect(&b, c, p, sel, acts, tm);
                    cur = ci;
                    b.ctx[b.B] = ci;
                    b.nv[b.B] = 0;
                }
                size_t r = (size_t)b.B * Tc + t;
                b.tok[r] = ch.token_ids[j];
                b.doc[r] = ch.doc_ids[j];
                b.pos[r] = ch.positions[j];
                if (m && ch.token_ids[j] >= (uint32_t)m->cfg.vocab_size)
                    fatal("%s: token id %u is outside the model's vocabulary (%d)", s.path, ch.token_ids[j],
                          m->cfg.vocab_size);
                for (int i = 0; i < n_sel; i++)
                    memcpy(b.x + ((size_t)i * b.Bmax * Tc + r) * d, ch.in + ((size_t)li_of[i] * ch.n + j) * d,
                           (size_t)d * sizeof(float));
                if (t + 1 > b.nv[b.B]) b.nv[b.B] = t + 1;
                done_tokens++;
            }
            progress_update(prog, done_tokens);
        }
        ctx_base += (s.n_tokens + (uint64_t)Tc - 1) / (uint64_t)Tc;
        free(li_of);
        actshard_close(&s);
    }
    if (cur != UINT64_MAX) b.B++;
    batch_collect(&b, c, p, sel, acts, tm);
    actchunk_free(&ch);
    batch_free(&b);
    free(acts);
    return done_tokens;
}

int main(int argc, char **argv) {
    cli_standard(argc, argv, "feat-topk", USAGE);
    enum {
        O_CLT = 256,
        O_ACTS,
        O_LAYERS,
        O_IN,
        O_CTX,
        O_BATCH,
        O_NOBOS,
        O_BOS,
        O_SHARD,
        O_MAXTOK,
        O_THREADS,
        O_DEVICE,
        O_K,
        O_WINDOW,
        O_MAXAT,
        O_EXTRA,
        O_BINS,
        O_PERBIN,
        O_RANDOM,
        O_LOGITS,
        O_SEED,
        O_ALWAYS,
        O_TEXT,
        O_JSON,
        O_RAW
    };
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"clt", required_argument, 0, O_CLT},
                                         {"output", required_argument, 0, 'o'},
                                         {"acts", no_argument, 0, O_ACTS},
                                         {"layers", required_argument, 0, O_LAYERS},
                                         {"in", required_argument, 0, O_IN},
                                         {"ctx", required_argument, 0, O_CTX},
                                         {"batch", required_argument, 0, O_BATCH},
                                         {"no-bos", no_argument, 0, O_NOBOS},
                                         {"bos", required_argument, 0, O_BOS},
                                         {"shard", required_argument, 0, O_SHARD},
                                         {"max-tokens", required_argument, 0, O_MAXTOK},
                                         {"threads", required_argument, 0, O_THREADS},
                                         {"device", required_argument, 0, O_DEVICE},
                                         {"k", required_argument, 0, O_K},
                                         {"window", required_argument, 0, O_WINDOW},
                                         {"max-at", required_argument, 0, O_MAXAT},
                                         {"extra", required_argument, 0, O_EXTRA},
                                         {"bins", required_argument, 0, O_BINS},
                                         {"per-bin", required_argument, 0, O_PERBIN},
                                         {"random", required_argument, 0, O_RANDOM},
                                         {"logits", required_argument, 0, O_LOGITS},
                                         {"seed", required_argument, 0, O_SEED},
                                         {"always-on", required_argument, 0, O_ALWAYS},
                                         {"tokenizer", required_argument, 0, 't'},
                                         {"text", no_argument, 0, O_TEXT},
                                         {"json", no_argument, 0, O_JSON},
                                         {"raw", no_argument, 0, O_RAW},
                                         {0, 0, 0, 0}};
    Options o = {
        .layers_spec = "all", .device = "cpu", .ctx = 128, .batch = 8, .shard_n = 1, .bos = -2, .max_tokens = -1};
    feat_options_default(&o.fo);
    const char *cmd = argc > 1 && (!strcmp(argv[1], "merge") || !strcmp(argv[1], "show") || !strcmp(argv[1], "export"))
        ? argv[1]
        : NULL;
    if (cmd) { argv++; argc--; }
    int c;
    while ((c = getopt_long(argc, argv, "m:o:t:", opts, NULL)) != -1) {
        switch (c) {
            case 'm': o.model_dir = optarg; break;
            case O_CLT: o.clt_dir = optarg; break;
            case 'o': o.out = optarg; break;
            case O_ACTS: o.acts = 1; break;
            case O_LAYERS: o.layers_spec = optarg; break;
            case O_IN: o.in_hook = optarg; break;
            case O_CTX: o.ctx = (int)cli_parse_int("--ctx", optarg, 2, 1 << 20); break;
            case O_BATCH: o.batch = (int)cli_parse_int("--batch", optarg, 1, 1 << 16); break;
            case O_NOBOS: o.no_bos = 1; break;
            case O_BOS: o.bos = cli_parse_int("--bos", optarg, 0, 1LL << 31); break;
            case O_SHARD: cli_parse_shard("--shard", optarg, &o.shard_i, &o.shard_n); break;
            case O_MAXTOK: o.max_tokens = cli_parse_int("--max-tokens", optarg, 1, INT64_MAX); break;
            case O_THREADS: o.threads = (int)cli_parse_int("--threads", optarg, 1, 4096); break;
            case O_DEVICE: o.device = optarg; break;
            case O_K: o.fo.k = (int)cli_parse_int("--k", optarg, 1, 65535); break;
            case O_WINDOW: o.fo.window = (int)cli_parse_int("--window", optarg, 1, 4096); break;
            case O_MAXAT: o.fo.max_at = (int)cli_parse_int("--max-at", optarg, 0, 4095); break;
            case O_EXTRA: o.fo.extra = (int)cli_parse_int("--extra", optarg, 0, 4096); break;
            case O_BINS: o.fo.n_bins = (int)cli_parse_int("--bins", optarg, 1, 1000); break;
            case O_PERBIN: o.fo.per_bin = (int)cli_parse_int("--per-bin", optarg, 1, 1000); break;
            case O_RANDOM: o.fo.n_random = (int)cli_parse_int("--random", optarg, 0, 65535); break;
            case O_LOGITS: o.fo.n_logits = (int)cli_parse_int("--logits", optarg, 0, 1000); break;
            case O_SEED: o.fo.seed = (uint64_t)cli_parse_int("--seed", optarg, 0, (1LL << 53)); break;
            case O_ALWAYS: o.fo.always_on = cli_parse_double("--always-on", optarg, 0, 1); break;
            case 't': o.tokenizer = optarg; break;
            case O_TEXT: o.text = 1; break;
            case O_JSON: o.json = 1; break;
            case O_RAW: o.raw = 1; break;
            default: cli_usage_error("feat-topk", "bad option");
        }
    }
    if (cmd && !strcmp(cmd, "merge")) return run_merge(&o, argv + optind, argc - optind);
    if (cmd && !strcmp(cmd, "show")) return run_show(&o, argv + optind, argc - optind);
    if (cmd && !strcmp(cmd, "export")) return run_export(&o, argv + optind, argc - optind);

    if (!o.clt_dir) cli_usage_error("feat-topk", "missing --clt");
    if (!o.out) cli_usage_error("feat-topk", "missing -o/--output");
    if (!o.acts && !o.model_dir) cli_usage_error("feat-topk", "missing -m/--model (or --acts)");
    if (o.model_dir) o.model_dir = model_resolve_cli("feat-topk", o.model_dir);  // a path, or a name in the cache
    if (optind >= argc) cli_usage_error("feat-topk", o.acts ? "no activation shards given" : "no token shards given");
    if (o.fo.max_at >= o.fo.window) cli_usage_error("feat-topk", "--max-at must be below --window");
    if (o.fo.window + 2 * o.fo.extra > 65535) cli_usage_error("feat-topk", "--window + 2*--extra is too large");
    char cfg_hook[128];  // the CLT's feature_input_hook (formats/clt.md) as a shard hook, default mlp_in
    const char *hook = o.in_hook;
    if (!hook && !clt_config_value(o.clt_dir, "feature_input_hook", cfg_hook, sizeof cfg_hook) &&
        !(hook = clt_shard_hook(cfg_hook)))
        fatal("%s/config.yaml: feature_input_hook \"%s\" is not supported (mlp.hook_in, hook_resid_mid); give --in",
              o.clt_dir, cfg_hook);
    if (!hook) hook = "mlp_in";
    if (strcmp(hook, "mlp_in") && strcmp(hook, "resid_mid"))
        cli_usage_error("feat-topk", "--in must be mlp_in or resid_mid");

    Error e;
    CltParams p;
    if (clt_load(o.clt_dir, &p, &e)) fatal_err(&e);
    Model m, *mp = NULL;
    if (o.model_dir) {
        if (model_load(&m, o.model_dir, &e)) fatal_err(&e);
        mp = &m;
        if (m.cfg.d_model != p.d)
            fatal("%s: the CLT's width %d does not match the model's d_model %d (%s)", o.clt_dir, p.d, m.cfg.d_model,
                  o.model_dir);
        if (m.cfg.n_layers != p.L)
            fatal("%s: the CLT has %d layers, the model %d (%s)", o.clt_dir, p.L, m.cfg.n_layers, o.model_dir);
    }
    int *sel = xmalloc((size_t)p.L * sizeof(int));
    int n_sel = cli_parse_layers("--layers", o.layers_spec, p.L, sel);
    int64_t bos = -1;
    int Tc;
    if (o.acts) {
        ActShard s;
        if (actshard_open(&s, argv[optind], &e)) fatal_err(&e);
        Tc = acts_ctx_tokens(&s);
        actshard_close(&s);
    } else {
        bos = o.no_bos ? -1 : o.bos >= 0 ? o.bos : m.cfg.bos_id;
        if (!o.no_bos && bos < 0) fatal("%s: config.json has no bos_token_id; pass --bos ID or --no-bos", o.model_dir);
        if (bos >= m.cfg.vocab_size)
            fatal("--bos %lld is outside the vocabulary (%d)", (long long)bos, m.cfg.vocab_size);
        // learned absolute positions (no rope) end at max_pos; rotary ones do not
        if (!m.cfg.block.rope && o.ctx > m.cfg.max_pos)
            fatal("--ctx %d exceeds the model's %d positions", o.ctx, m.cfg.max_pos);
        Tc = o.ctx - (bos >= 0);
    }
    FeatCollector *fc = feat_collector_new(&o.fo, n_sel, sel, p.F, Tc, o.threads);
    // the bar's total: from the token shards' footers, the contexts of this job's batches (as pass_model
    // deals them) under the --max-tokens cap on the corpus; from activation shards only --max-tokens
    uint64_t total = 0;
    if (!o.acts) {
        uint64_t n_ctx, bm = (uint64_t)o.batch;
        if (context_count(argv + optind, argc - optind, o.ctx, bos, &n_ctx, &e)) fatal_err(&e);
        uint64_t cap = o.max_tokens > 0 ? (uint64_t)o.max_tokens : UINT64_MAX;
        for (uint64_t k = (uint64_t)o.shard_i; k * bm < n_ctx; k += (uint64_t)o.shard_n) {
            uint64_t first = k * bm * (uint64_t)Tc, n = (n_ctx - k * bm < bm ? n_ctx - k * bm : bm) * (uint64_t)Tc;
            if (first < cap) total += cap - first < n ? cap - first : n;  // this batch's tokens under the cap
        }
    } else if (o.max_tokens > 0 && o.shard_n == 1) total = (uint64_t)o.max_tokens;  // a shard's share: unknown
    Progress prog;
    progress_init(&prog, "feat-topk", "tok", 1, total);
    double t0 = now_seconds();
    Timing tm = {0};
    uint64_t n = o.acts ? pass_acts(&o, argv + optind, argc - optind, mp, &p, sel, n_sel, hook, fc, Tc, &prog, &tm)
                        : pass_model(&o, argv + optind, argc - optind, mp, &p, sel, n_sel, hook, fc, bos, &prog, &tm);
    progress_finish(&prog);
    double dt = now_seconds() - t0;
    if (mp && o.fo.n_logits > 0)
        for (int li = 0; li < n_sel; li++) feat_collect_logits(fc, li, &p, sel[li], mp, o.shard_i, o.shard_n);
    json_t *meta = run_meta(&o, argv + optind, argc - optind, mp, hook, Tc);
    if (feat_collector_write(fc, o.out, meta, &e)) fatal_err(&e);
    fprintf(stderr,
            "feat-topk: %llu tokens, %d layers x %d features in %.2f s: %.0f tokens/s (forward %.2f s, encoder "
            "%.2f s, collection %.2f s; logits and store %.2f s; peak RSS %.0f MiB)\n",
            (unsigned long long)n, n_sel, p.F, dt, dt > 0 ? (double)n / dt : 0, tm.forward, tm.encode, tm.collect,
            now_seconds() - t0 - dt, peak_rss_mib());
    json_decref(meta);
    feat_collector_free(fc);
    free(sel);
    if (mp) model_free(&m);
    clt_params_free(&p);
    return 0;
}
