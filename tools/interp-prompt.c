// interp-prompt — feature explanations from a feat-topk store: prompts built from a template, an
// explainer (model-free tokens, a command, an OpenAI-compatible endpoint, or our own engine)
// answers with a label and a sentence, and every explanation is scored on the store's held-out
// test windows (Delphi's detection and fuzzing) next to controls. Output: JSONL for graph2html.
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "explainer.h"
#include "featstore.h"
#include "fileio.h"
#include "interp.h"
#include "progress.h"
#include "tokenizer.h"

static const char USAGE[] =
    "usage: interp-prompt FEATURES_DIR -o explanations.jsonl [options]\n"
    "\n"
    "Explains the features of a feat-topk store (formats/features.md) with a language model and\n"
    "scores each explanation on the store's held-out test windows: detection (does a window have\n"
    "the feature?) and fuzzing (are its marked tokens the feature's?), as Delphi defines them, with\n"
    "balanced accuracy, precision, recall, F1 and the parse-failure rate. Every record also scores\n"
    "controls with the same scorer: a shuffled explanation (another feature's), the model-free\n"
    "tokens explanation (baseline), always-yes and always-no. Explainer answers never see test\n"
    "windows. Every model call is cached on disk (--cache): a rerun is free. Output: one JSON object\n"
    "a line (layer, feature, label, explanation, explainer, scores, controls), written atomically.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE       explanations JSONL ('-': stdout)\n"
    "  --features SPEC         features to explain: all (default), or LAYER:LIST items, e.g.\n"
    "                          0:1-5,7,2:all (a bare number continues the previous layer)\n"
    "  --explainer SPEC        builtin[:MODEL] (default builtin: smollm2 from the model cache, see\n"
    "                          scripts/fetch_smollm2.sh), tokens (model-free: top activating tokens\n"
    "                          and top logits), cmd:COMMAND (run by /bin/sh, the prompt on stdin,\n"
    "                          the answer on stdout; data never enters the command line), or\n"
    "                          http:URL (OpenAI-compatible chat completions, e.g.\n"
    "                          http:http://localhost:8000/v1/chat/completions)\n"
    "  --model NAME            the endpoint's model (http)\n"
    "  --api-key-env VAR       environment variable holding the API key (default OPENAI_API_KEY);\n"
    "                          sent as a Bearer token, never printed\n"
    "  --scorer SPEC           the scorer: a backend as --explainer, lexical (model-free: the\n"
    "                          explanation's words in the text), or none (default: the explainer's\n"
    "                          backend; lexical for tokens)\n"
    "  --score-style S         yesno (one window a prompt after worked examples, answered yes or\n"
    "                          no; builtin: the log-odds of the two words; default for a builtin\n"
    "                          scorer) or list (Delphi's: --score-batch windows a prompt answered\n"
    "                          with a 0/1 list; default for the others)\n"
    "  --template T            small (default for builtin: counted max tokens, next tokens, 4\n"
    "                          snippets, three worked examples in the chat, a one-line answer),\n"
    "                          np (default otherwise: Neuronpedia's max-activation + logits\n"
    "                          lists), delphi, or a file: system text, a line ---, user text with\n"
    "                          {{examples}}, {{texts}}, {{max_tokens}}, {{max_counts}},\n"
    "                          {{snippets}}, {{next_tokens}}, {{top_logits}}, {{layer}}, {{feature}}\n"
    "  -t, --tokenizer FILE    tokenizer.json (default: the one the store's meta names)\n"
    "  --cache DIR             answer cache (default: none)\n"
    "  --concurrency N         prompts in flight at once (cmd, http; default 4)\n"
    "  --max-examples N        explain windows shown to the explainer (default 12)\n"
    "  --score-examples N      test windows per class and task (default 10)\n"
    "  --score-batch N         windows per scorer prompt (default 5)\n"
    "  --max-new-tokens N      answer tokens at most (default 128, small template 16; scorer\n"
    "                          answers: 8 + 4 a window)\n"
    "  --max-tokens N          the old name of --max-new-tokens: an error that says so\n"
    "  --temperature T         http sampling temperature (default 0)\n"
    "  --timeout S             seconds per cmd/http attempt (default 120)\n"
    "  --retries N             http retries on 429, 5xx, transport errors, bad JSON (default 4)\n"
    "  --backoff S             first retry delay, doubled each retry (default 1)\n"
    "  --seed N                seed of the fuzzing marks and the shuffled control (default 0)\n"
    "  --dry-run               print the explainer prompts (tokens: the explanations) and exit\n"
    "  --report                print per-layer means of explainer, baseline and controls\n"
    "                          (stdout; stderr when -o is '-')\n"
    "  -h, --help, --version\n";

typedef struct {
    const char *store, *output, *features, *explainer, *model, *api_key_env, *scorer, *score_style, *template,
        *tokenizer, *cache;
    int concurrency, max_examples, score_examples, score_batch, max_tokens, retries, dry_run, report, yesno;
    double temperature, timeout, backoff;
    uint64_t seed;
} Options;

// ---- --features --------------------------------------------------------------------------------

typedef struct {
    int li, feature;
} FeatId;

static void add_range(FeatId **ids, int *n, int *cap, int li, long lo, long hi) {
    for (long f = lo; f <= hi; f++) {
        if (*n == *cap) *ids = xrealloc(*ids, (size_t)(*cap = *cap ? 2 * *cap : 64) * sizeof **ids);
        (*ids)[(*n)++] = (FeatId){li, (int)f};
    }
}

static int parse_features(const char *spec, const FeatStore *s, FeatId **ids) {
    int n = 0, cap = 0, li = -1;
    *ids = NULL;
    if (!spec || !strcmp(spec, "all")) {
        for (int l = 0; l < s->n_layers; l++) add_range(ids, &n, &cap, l, 0, s->n_features - 1);
        return n;
    }
    char *copy = xstrdup(spec);
    for (char *item = strtok(copy, ","); item; item = strtok(NULL, ",")) {
        char *colon = strchr(item, ':'), *list = item;
        if (colon) {
            *colon = 0;
            long long layer;
            if (parse_int_strict(item, 0, INT_MAX, &layer))
                cli_usage_error("interp-prompt", "--features: bad layer '%s'", item);
            li = featstore_layer_index(s, (int)layer);
            if (li < 0) fatal("%s: --features: layer %lld is not in the store", s->path, layer);
            list = colon + 1;
        }
        if (li < 0) cli_usage_error("interp-prompt", "--features: '%s' needs a LAYER: first", item);
        if (!strcmp(list, "all")) {
            add_range(ids, &n, &cap, li, 0, s->n_features - 1);
            continue;
        }
        long long lo, hi;
        char *dash = strchr(list + 1, '-');  // (list + 1: a leading '-' is a sign, refused below)
        if (dash) *dash = 0;
        if (parse_int_strict(list, 0, INT_MAX, &lo) || parse_int_strict(dash ? dash + 1 : list, 0, INT_MAX, &hi) ||
            hi < lo)
            cli_usage_error("interp-prompt", "--features: bad feature list '%s%s%s'", list, dash ? "-" : "",
                            dash ? dash + 1 : "");
        if (hi >= s->n_features)
            fatal("%s: --features: feature %lld is past the store's %d per layer", s->path, hi, s->n_features);
        add_range(ids, &n, &cap, li, lo, hi);
    }
    free(copy);
    return n;
}

// ---- progress over a batch of prompts ----------------------------------------------------------

typedef struct {
    Progress p;
    int done, cached, failed;
} BatchProgress;

static void on_done(void *ctx, int i, const Answer *a) {
    (void)i;
    BatchProgress *b = ctx;
    b->done++;
    b->cached += a->cached;
    b->failed += a->text == NULL;
    progress_update(&b->p, (uint64_t)b->done);
}

static Answer *answer_all(Explainer *x, const char *tag, const Prompt *prompts, int n, const char *what) {
    Answer *answers = xcalloc((size_t)n + 1, sizeof *answers);
    BatchProgress b = {0};
    progress_init(&b.p, what, "prompts", 1, (uint64_t)n);
    Error e;
    if (explainer_answer(x, tag, prompts, n, answers, on_done, &b, &e)) fatal_err(&e);
    progress_finish(&b.p);
    fprintf(stderr, "interp-prompt: %s: %d prompts to %s, %d from the cache, %d failed\n", what, n, explainer_id(x),
            b.cached, b.failed);
    for (int i = 0; i < n; i++)
        if (answers[i].error) {
            fprintf(stderr, "interp-prompt: %s: first failure: %s\n", what, answers[i].error);
            break;
        }
    return answers;
}

// ---- scoring -----------------------------------------------------------------------------------

enum { V_MAIN, V_SHUFFLED, V_BASELINE, N_VARIANTS };

typedef struct {
    FeatureEvidence ev;
    char *label, *explanation, *error, *base_label, *base_explanation;
    const char *shuffled;  // another feature's explanation (borrowed), NULL if none
    ParseStatus parse;
    ScoreSet sets[2];
    double *margin[N_VARIANTS][2];  // per window the builtin yes/no log-odds (NAN: none); NULL: not asked
    Confusion conf[N_VARIANTS][2];
    int scored[N_VARIANTS];
} Item;

typedef struct {
    int item, variant, task, begin, end;
} ScoreJob;

static const char *variant_text(const Item *it, int v) {
    return v == V_MAIN ? it->explanation : v == V_SHUFFLED ? it->shuffled : it->base_explanation;
}

static void score_all(Item *items, int n, const char *scorer, Explainer *sx, const Options *o, int baseline_differs) {
    int batch = o->yesno && strcmp(scorer, "lexical") ? 1 : o->score_batch;
    ScoreJob *jobs = NULL;
    int nj = 0, cap = 0;
    // window-major: the variants of one window in a row, so a builtin scorer keeps the window's
    // keys and values (the yes/no prompt shows the window before the explanation)
    for (int i = 0; i < n; i++) {
        Item *it = &items[i];
        if (!it->explanation) continue;
        for (int v = 0; v < N_VARIANTS; v++)
            it->scored[v] = variant_text(it, v) && (v != V_BASELINE || baseline_differs);
        for (int t = 0; t < 2; t++) {
            const ScoreSet *s = &it->sets[t];
            for (int b = 0; b < s->n; b += batch) {
                for (int v = 0; v < N_VARIANTS; v++) {
                    if (!it->scored[v]) continue;
                    if (nj == cap) jobs = xrealloc(jobs, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *jobs);
                    jobs[nj++] = (ScoreJob){i, v, t, b, b + batch < s->n ? b + batch : s->n};
                }
            }
        }
    }
    if (!strcmp(scorer, "lexical")) {
        for (int j = 0; j < nj; j++) {
            ScoreJob *jb = &jobs[j];
            Item *it = &items[jb->item];
            int pred[64];
            for (int k = jb->begin; k < jb->end; k++)
                pred[k - jb->begin] =
                    lexical_predict(variant_text(it, jb->variant), it->sets[jb->task].texts[k], jb->task);
            confusion_add(&it->conf[jb->variant][jb->task], &it->sets[jb->task], jb->begin, pred, jb->end - jb->begin);
        }
    } else {
        Prompt *prompts = xcalloc((size_t)nj + 1, sizeof *prompts);
        for (int j = 0; j < nj; j++) {
            ScoreJob *jb = &jobs[j];
            Item *it = &items[jb->item];
            if (o->yesno) {
                Prompt *p = &prompts[j];
                p->system = xstrdup(score_yesno_system(jb->task, &p->shots, &p->n_shots));
                p->user = score_yesno_prompt(&it->sets[jb->task], jb->begin, jb->task, variant_text(it, jb->variant));
                p->max_tokens = 4, p->stop = "\n", p->yes_no = 1;
                continue;
            }
            char *sys, *user;
            score_prompt(&it->sets[jb->task], jb->begin, jb->end, jb->task, variant_text(it, jb->variant), &sys, &user);
            prompts[j] = (Prompt){.system = sys,
                                  .user = user,
                                  .max_tokens = 8 + 4 * (jb->end - jb->begin),
                                  .list_items = jb->end - jb->begin};
        }
        Answer *answers = answer_all(sx, "score", prompts, nj, "score");
        for (int j = 0; j < nj; j++) {
            ScoreJob *jb = &jobs[j];
            Item *it = &items[jb->item];
            int pred[64], len = jb->end - jb->begin;
            int ok = answers[j].text && (o->yesno ? (pred[0] = score_parse_yesno(answers[j].text)) >= 0
                                                  : !score_parse_reply(answers[j].text, len, pred));
            double **mg = &it->margin[jb->variant][jb->task];
            if (o->yesno && !*mg) {
                *mg = xmalloc(((size_t)it->sets[jb->task].n + 1) * sizeof **mg);
                for (int k = 0; k < it->sets[jb->task].n; k++) (*mg)[k] = NAN;
            }
            if (o->yesno && answers[j].text) (*mg)[jb->begin] = score_yesno_margin(answers[j].text);
            confusion_add(&it->conf[jb->variant][jb->task], &it->sets[jb->task], jb->begin, ok ? pred : NULL, len);
            free((char *)prompts[j].system);
            free((char *)prompts[j].user);
            answer_free(&answers[j]);
        }
        free(answers);
        free(prompts);
    }
    free(jobs);
}

// ---- output ------------------------------------------------------------------------------------

static json_t *real4(double x) { return isnan(x) ? json_null() : json_real(round(x * 1e4) / 1e4); }

// n = 0 (every answer failed, or no test windows): the numbers are null, not zeros.
static json_t *metrics_json(const Confusion *c) {
    ScoreMetrics m = confusion_metrics(c);
    if (m.n == 0)
        return json_pack("{s:n, s:n, s:n, s:n, s:i, s:i}", "balanced_accuracy", "precision", "recall", "f1", "n", 0,
                         "failed", m.failed);
    return json_pack("{s:o, s:o, s:o, s:o, s:i, s:i}", "balanced_accuracy", real4(m.balanced_accuracy), "precision",
                     real4(m.precision), "recall", real4(m.recall), "f1", real4(m.f1), "n", m.n, "failed", m.failed);
}

// Always-yes / always-no on a set: their confusion follows from the truth alone.
static Confusion constant_confusion(const ScoreSet *s, int yes) {
    Confusion c = {0};
    for (int i = 0; i < s->n; i++) {
        if (s->truth[i])
            yes ? c.tp++ : c.fn++;
        else
            yes ? c.fp++ : c.tn++;
    }
    return c;
}

// The AUROC of the yes/no log-odds of variant v on task t; NAN without them.
static double item_auroc(const Item *it, int v, int t) {
    return it->margin[v][t] ? roc_auc(it->margin[v][t], it->sets[t].truth, it->sets[t].n) : NAN;
}

static json_t *scores_json(const Item *it, int v) {
    if (!it->scored[v]) return json_null();
    json_t *r = json_pack("{s:o, s:o}", "detection", metrics_json(&it->conf[v][TASK_DETECTION]), "fuzzing",
                          metrics_json(&it->conf[v][TASK_FUZZING]));
    for (int t = 0; t < 2; t++)
        if (!isnan(item_auroc(it, v, t)))
            json_object_set_new(json_object_get(r, t ? "fuzzing" : "detection"), "auroc", real4(item_auroc(it, v, t)));
    return r;
}

static json_t *constant_json(const Item *it, int yes) {
    Confusion d = constant_confusion(&it->sets[TASK_DETECTION], yes),
              f = constant_confusion(&it->sets[TASK_FUZZING], yes);
    return json_pack("{s:o, s:o}", "detection", metrics_json(&d), "fuzzing", metrics_json(&f));
}

// ---- the per-layer report ----------------------------------------------------------------------

typedef struct {
    double sum[5][2];
    int n[5][2], features, parse_fail;
} LayerSums;

static void report_add(LayerSums *r, const Item *it) {
    r->features++;
    r->parse_fail += it->parse != PARSE_OK;
    for (int t = 0; t < 2; t++) {
        if (!it->sets[t].n) continue;
        for (int v = 0; v < N_VARIANTS; v++) {
            if (!it->scored[v] || isnan(confusion_metrics(&it->conf[v][t]).balanced_accuracy)) continue;
            r->sum[v][t] += confusion_metrics(&it->conf[v][t]).balanced_accuracy;
            r->n[v][t]++;
        }
        for (int yes = 0; yes < 2; yes++) {
            Confusion c = constant_confusion(&it->sets[t], yes);
            if (isnan(confusion_metrics(&c).balanced_accuracy)) continue;  // one class only (an always-on feature)
            r->sum[3 + !yes][t] += confusion_metrics(&c).balanced_accuracy;
            r->n[3 + !yes][t]++;
        }
    }
}

static void report_row(FILE *f, const char *name, const LayerSums *r) {
    fprintf(f, "%-6s %8d %9.1f%%", name, r->features, r->features ? 100.0 * r->parse_fail / r->features : 0.0);
    for (int t = 0; t < 2; t++) {
        fprintf(f, " |");
        for (int v = 0; v < 5; v++) {
            if (r->n[v][t])
                fprintf(f, " %9.3f", r->sum[v][t] / r->n[v][t]);
            else
                fprintf(f, " %9s", "-");
        }
    }
    fprintf(f, "\n");
}

static void print_report(FILE *f, const Item *items, int n, const FeatStore *s, const char *explainer,
                         const char *scorer) {
    fprintf(f, "interp-prompt report: explainer %s, scorer %s; mean balanced accuracy per layer (chance 0.5)\n",
            explainer, scorer);
    fprintf(f, "%-6s %8s %10s |%50s |%50s\n", "", "", "", "detection", "fuzzing");
    fprintf(f, "%-6s %8s %10s", "layer", "features", "parse_fail");
    for (int t = 0; t < 2; t++)
        fprintf(f, " | %9s %9s %9s %9s %9s", "explainer", "shuffled", "baseline", "always_yes", "always_no");
    fprintf(f, "\n");
    LayerSums all = {0};
    for (int li = 0; li < s->n_layers; li++) {
        LayerSums r = {0};
        for (int i = 0; i < n; i++)
            if (items[i].explanation && items[i].ev.layer == s->layers[li])
                report_add(&r, &items[i]), report_add(&all, &items[i]);
        if (!r.features) continue;
        char name[16];
        snprintf(name, sizeof name, "%d", s->layers[li]);
        report_row(f, name, &r);
    }
    report_row(f, "all", &all);
    // the builtin yes/no scorer's log-odds, threshold-free: a scorer that always answers one way
    // has balanced accuracy 0.5 whatever it reads, but may still rank the windows
    double sum[N_VARIANTS][2] = {{0}};
    int cnt[N_VARIANTS][2] = {{0}};
    for (int i = 0; i < n; i++)
        for (int v = 0; v < N_VARIANTS; v++)
            for (int t = 0; t < 2; t++)
                if (!isnan(item_auroc(&items[i], v, t))) sum[v][t] += item_auroc(&items[i], v, t), cnt[v][t]++;
    if (cnt[V_MAIN][0] || cnt[V_MAIN][1]) {
        fprintf(f, "mean AUROC of the yes/no log-odds (chance 0.5):");
        for (int t = 0; t < 2; t++) {
            fprintf(f, " %s", t ? "| fuzzing" : "detection");
            for (int v = 0; v < N_VARIANTS; v++)
                if (cnt[v][t])
                    fprintf(f, " %s %.3f (%d)", v == V_MAIN ? "explainer" : v == V_SHUFFLED ? "shuffled" : "baseline",
                            sum[v][t] / cnt[v][t], cnt[v][t]);
        }
        fprintf(f, "\n");
    }
}

// ---- main --------------------------------------------------------------------------------------

int main(int argc, char **argv) {
    cli_standard(argc, argv, "interp-prompt", USAGE);
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"features", required_argument, 0, 'F'},
                                         {"explainer", required_argument, 0, 'x'},
                                         {"model", required_argument, 0, 'm'},
                                         {"api-key-env", required_argument, 0, 'K'},
                                         {"scorer", required_argument, 0, 's'},
                                         {"score-style", required_argument, 0, 'Y'},
                                         {"template", required_argument, 0, 'T'},
                                         {"tokenizer", required_argument, 0, 't'},
                                         {"cache", required_argument, 0, 'C'},
                                         {"concurrency", required_argument, 0, 'j'},
                                         {"max-examples", required_argument, 0, 'E'},
                                         {"score-examples", required_argument, 0, 'S'},
                                         {"score-batch", required_argument, 0, 'B'},
                                         {"max-new-tokens", required_argument, 0, 'n'},
                                         {"max-tokens", required_argument, 0, 'O'},
                                         {"temperature", required_argument, 0, 'p'},
                                         {"timeout", required_argument, 0, 'w'},
                                         {"retries", required_argument, 0, 'r'},
                                         {"backoff", required_argument, 0, 'b'},
                                         {"seed", required_argument, 0, 'd'},
                                         {"dry-run", no_argument, 0, 'D'},
                                         {"report", no_argument, 0, 'R'},
                                         {0, 0, 0, 0}};
    Options o = {.explainer = "builtin",
                 .concurrency = 4,
                 .max_examples = 12,
                 .score_examples = 10,
                 .score_batch = 5,
                 .retries = 4,
                 .timeout = 120,
                 .backoff = 1};
    int c;
    while ((c = getopt_long(argc, argv, "o:t:", opts, NULL)) != -1) {
        switch (c) {
            case 'o': o.output = optarg; break;
            case 'F': o.features = optarg; break;
            case 'x': o.explainer = optarg; break;
            case 'm': o.model = optarg; break;
            case 'K': o.api_key_env = optarg; break;
            case 's': o.scorer = optarg; break;
            case 'Y': o.score_style = optarg; break;
            case 'T': o.template = optarg; break;
            case 't': o.tokenizer = optarg; break;
            case 'C': o.cache = optarg; break;
            case 'j': o.concurrency = (int)cli_parse_int("--concurrency", optarg, 1, 1024); break;
            case 'E': o.max_examples = (int)cli_parse_int("--max-examples", optarg, 1, 1000); break;
            case 'S': o.score_examples = (int)cli_parse_int("--score-examples", optarg, 1, 1000); break;
            case 'B': o.score_batch = (int)cli_parse_int("--score-batch", optarg, 1, 50); break;
            case 'n': o.max_tokens = (int)cli_parse_int("--max-new-tokens", optarg, 1, 1 << 20); break;
            case 'O': cli_max_tokens_renamed("interp-prompt");
            case 'p': o.temperature = cli_parse_double("--temperature", optarg, 0, 100); break;
            case 'w': o.timeout = cli_parse_double("--timeout", optarg, 0.001, 1e6); break;
            case 'r': o.retries = (int)cli_parse_int("--retries", optarg, 0, 100); break;
            case 'b': o.backoff = cli_parse_double("--backoff", optarg, 0, 1e4); break;
            case 'd': o.seed = (uint64_t)cli_parse_int("--seed", optarg, 0, INT64_MAX); break;
            case 'D': o.dry_run = 1; break;
            case 'R': o.report = 1; break;
            default: cli_usage_error("interp-prompt", "bad option");
        }
    }
    if (optind != argc - 1) cli_usage_error("interp-prompt", "expected one FEATURES_DIR");
    o.store = argv[optind];
    if (!o.output && !o.dry_run) cli_usage_error("interp-prompt", "missing -o/--output");
    if (!(o.timeout > 0)) cli_usage_error("interp-prompt", "--timeout must be > 0");
    if (o.backoff < 0 || o.temperature < 0)
        cli_usage_error("interp-prompt", "--backoff and --temperature must be >= 0");
    int tokens_explainer = !strcmp(o.explainer, "tokens");
    if (!o.scorer) o.scorer = tokens_explainer ? "lexical" : o.explainer;
    if (!strcmp(o.scorer, "tokens"))
        cli_usage_error("interp-prompt", "--scorer tokens: the tokens backend scores nothing; use lexical");
    // a small local model follows one-line answers and yes/no questions; a large one the lists
    int builtin_explainer = !strncmp(o.explainer, "builtin", 7);
    if (!o.template) o.template = builtin_explainer ? "small" : "np";
    if (!o.score_style) o.score_style = !strncmp(o.scorer, "builtin", 7) ? "yesno" : "list";
    if (strcmp(o.score_style, "yesno") && strcmp(o.score_style, "list"))
        cli_usage_error("interp-prompt", "--score-style '%s': expected yesno or list", o.score_style);
    o.yesno = !strcmp(o.score_style, "yesno");
    signal(SIGPIPE, SIG_IGN);  // a cmd: explainer that exits without reading its input

    Error e;
    FeatStore s;
    if (featstore_open(&s, o.store, &e)) fatal_err(&e);
    const char *tok_path = o.tokenizer;
    json_t *meta = json_loads(s.meta_json, 0, NULL);
    if (!tok_path) tok_path = json_string_value(json_object_get(meta, "tokenizer"));
    if (!tok_path) fatal("%s: the store's meta names no tokenizer; pass -t tokenizer.json", s.path);
    Tokenizer *tok = tokenizer_load(tok_path, &e);
    if (!tok) fatal_err(&e);
    InterpTemplate tmpl;
    if (!strcmp(o.template, "delphi") || !strcmp(o.template, "np") || !strcmp(o.template, "small")) {
        if (interp_template_builtin(&tmpl, o.template, &e)) fatal_err(&e);
    } else if (interp_template_load(&tmpl, o.template, &e)) {
        fatal_err(&e);
    }
    if (!o.max_tokens) o.max_tokens = tmpl.one_line ? 16 : 128;
    ExplainerOptions xo = {.spec = o.explainer,
                           .model = o.model,
                           .api_key_env = o.api_key_env,
                           .cache_dir = o.cache,
                           .concurrency = o.concurrency,
                           .retries = o.retries,
                           .timeout_s = o.timeout,
                           .backoff_s = o.backoff,
                           .max_tokens = o.max_tokens,
                           .temperature = o.temperature};
    Explainer *x = NULL;  // made before any work, so a bad spec fails at once
    if (!tokens_explainer && !o.dry_run && !(x = explainer_new(&xo, &e))) fatal_err(&e);
    InterpOptions io = {.tok = tok,
                        .max_examples = o.max_examples,
                        .score_examples = o.score_examples,
                        .score_batch = o.score_batch,
                        .seed = o.seed};

    // the evidence: live features only (a dead one has nothing to explain)
    FeatId *ids;
    int n_ids = parse_features(o.features, &s, &ids), n = 0, dead = 0;
    Item *items = xcalloc((size_t)n_ids + 1, sizeof *items);
    for (int i = 0; i < n_ids; i++) {
        char *rec;
        size_t len;
        int got = featstore_get(&s, ids[i].li, ids[i].feature, &rec, &len, &e);
        if (got < 0) fatal_err(&e);
        if (got == 0) continue;
        Item *it = &items[n];
        if (feature_evidence_parse(&it->ev, rec, len, &e))
            fatal("%s: layer %d feature %d: %s", s.path, s.layers[ids[i].li], ids[i].feature, e.msg);
        free(rec);
        if (it->ev.dead) {
            feature_evidence_free(&it->ev);
            dead++;
            continue;
        }
        interp_tokens_explain(&it->ev, &io, &it->base_label, &it->base_explanation);
        n++;
    }
    free(ids);
    fprintf(stderr, "interp-prompt: %d live features selected (%d dead skipped)\n", n, dead);

    // explanations
    if (tokens_explainer) {
        for (int i = 0; i < n; i++) {
            items[i].label = xstrdup(items[i].base_label);
            items[i].explanation = xstrdup(items[i].base_explanation);
        }
        if (o.dry_run) {
            for (int i = 0; i < n; i++)
                printf("== layer %d feature %d\n[LABEL]: %s\n[EXPLANATION]: %s\n", items[i].ev.layer,
                       items[i].ev.feature, items[i].label, items[i].explanation);
            goto done;
        }
    } else {
        Prompt *prompts = xcalloc((size_t)n + 1, sizeof *prompts);
        for (int i = 0; i < n; i++) {
            char *user = interp_render(&tmpl, &items[i].ev, &io, &e);
            if (!user) fatal_err(&e);
            prompts[i] = (Prompt){.system = tmpl.system,
                                  .user = user,
                                  .shots = tmpl.shots,
                                  .n_shots = tmpl.n_shots,
                                  .stop = tmpl.one_line ? "\n" : NULL};
        }
        if (o.dry_run) {
            for (int i = 0; i < n; i++) {
                printf("== layer %d feature %d\n-- system\n%s\n", items[i].ev.layer, items[i].ev.feature,
                       prompts[i].system);
                for (int k = 0; k < 2 * tmpl.n_shots; k++)
                    printf("-- %s\n%s\n", k % 2 ? "assistant" : "user", tmpl.shots[k]);
                printf("-- user\n%s\n", prompts[i].user);
            }
            for (int i = 0; i < n; i++) free((char *)prompts[i].user);
            free(prompts);
            goto done;
        }
        Answer *answers = answer_all(x, tmpl.name, prompts, n, "explain");
        for (int i = 0; i < n; i++) {
            if (answers[i].text)
                items[i].parse = tmpl.one_line
                                     ? interp_parse_label_line(answers[i].text, &items[i].label, &items[i].explanation)
                                     : interp_parse_answer(answers[i].text, &items[i].label, &items[i].explanation);
            else
                items[i].error = xstrdup(answers[i].error);
            answer_free(&answers[i]);
            free((char *)prompts[i].user);
        }
        free(answers);
        free(prompts);
    }
    const char *explainer_name = x ? explainer_id(x) : "tokens";

    // scoring: the shuffled control takes the explanation of the feature `shift` places on
    int n_expl = 0;
    for (int i = 0; i < n; i++) n_expl += items[i].explanation != NULL;
    if (strcmp(o.scorer, "none")) {
        int *order = xcalloc((size_t)n_expl + 1, sizeof *order), k = 0;
        for (int i = 0; i < n; i++)
            if (items[i].explanation) order[k++] = i;
        if (n_expl >= 2) {
            int shift = 1 + (int)(o.seed % (uint64_t)(n_expl - 1));
            for (int j = 0; j < n_expl; j++) items[order[j]].shuffled = items[order[(j + shift) % n_expl]].explanation;
        }
        free(order);
        for (int i = 0; i < n; i++)
            for (int t = 0; t < 2; t++)
                if (score_set_build(&items[i].sets[t], &items[i].ev, (ScoreTask)t, &io, &e)) fatal_err(&e);
        Explainer *sx = NULL;
        if (strcmp(o.scorer, "lexical")) {
            if (x && !strcmp(o.scorer, o.explainer)) {
                sx = x;
            } else {
                ExplainerOptions so = xo;
                so.spec = o.scorer;
                sx = explainer_new(&so, &e);
                if (!sx) fatal_err(&e);
            }
        }
        score_all(items, n, o.scorer, sx, &o, !tokens_explainer);
        if (sx && sx != x) explainer_free(sx);
    }
    const char *scorer_name = o.scorer;

    // output
    size_t cap = 1 << 16, len = 0;
    char *out = xmalloc(cap);
    int parse_fail = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        Item *it = &items[i];
        parse_fail += it->explanation && it->parse != PARSE_OK;
        failed += it->error != NULL;
        json_t *r =
            json_pack("{s:i, s:i, s:s, s:s, s:s, s:s, s:s}", "layer", it->ev.layer, "feature", it->ev.feature, "label",
                      it->label ? it->label : "", "explanation", it->explanation ? it->explanation : "", "explainer",
                      explainer_name, "template", tokens_explainer ? "tokens" : tmpl.name, "parse",
                      it->error ? "error" : parse_status_name(it->parse));
        if (!r) fatal("layer %d feature %d: the answer is not valid UTF-8", it->ev.layer, it->ev.feature);
        if (it->error) json_object_set_new(r, "error", json_string(it->error));
        if (strcmp(o.scorer, "none") && it->explanation) {
            json_object_set_new(r, "scorer", json_string(scorer_name));
            json_object_set_new(r, "scores", scores_json(it, V_MAIN));
            json_object_set_new(r, "controls",
                                json_pack("{s:o, s:o, s:o, s:o}", "shuffled", scores_json(it, V_SHUFFLED), "baseline",
                                          tokens_explainer ? scores_json(it, V_MAIN) : scores_json(it, V_BASELINE),
                                          "always_yes", constant_json(it, 1), "always_no", constant_json(it, 0)));
        }
        json_object_set_new(r, "baseline_label", json_string(it->base_label));
        char *line = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(6));
        json_decref(r);
        size_t l = strlen(line);
        while (len + l + 2 > cap) out = xrealloc(out, cap *= 2);
        memcpy(out + len, line, l);
        len += l;
        out[len++] = '\n';
        free(line);
    }
    if (!strcmp(o.output, "-")) {
        fwrite(out, 1, len, stdout);
        fflush(stdout);
    } else if (write_file_atomic(o.output, out, len, &e)) {
        fatal_err(&e);
    }
    free(out);
    fprintf(stderr, "interp-prompt: wrote %d explanations (%d parse failures, %d failed) to %s\n", n - failed,
            parse_fail, failed, o.output);
    if (x && explainer_kind(x) == EXPLAINER_BUILTIN) {
        long pt, nt;
        double ps, ds;
        explainer_builtin_stats(x, &pt, &ps, &nt, &ds);
        fprintf(stderr,
                "interp-prompt: builtin: %ld prompt tokens prefilled in %.1f s (%.0f tok/s; %ld more held from the "
                "prompt before), %ld new in %.1f s\n",
                pt, ps, ps > 0 ? pt / ps : 0, explainer_builtin_reused(x), nt, ds);
    }
    if (o.report) {
        if (!strcmp(o.scorer, "none"))
            fprintf(stderr, "interp-prompt: --report: nothing scored (--scorer none)\n");
        else
            print_report(strcmp(o.output, "-") ? stdout : stderr, items, n, &s, explainer_name, scorer_name);
    }

done:
    for (int i = 0; i < n; i++) {
        Item *it = &items[i];
        feature_evidence_free(&it->ev);
        free(it->label), free(it->explanation), free(it->error), free(it->base_label), free(it->base_explanation);
        score_set_free(&it->sets[0]);
        score_set_free(&it->sets[1]);
        for (int v = 0; v < N_VARIANTS; v++) free(it->margin[v][0]), free(it->margin[v][1]);
    }
    free(items);
    explainer_free(x);
    interp_template_free(&tmpl);
    tokenizer_free(tok);
    json_decref(meta);
    featstore_close(&s);
    return 0;
}
