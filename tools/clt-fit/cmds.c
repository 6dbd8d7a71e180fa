// tools/clt-fit/cmds.c — see cmds.h. JSON results go to stdout (or -o FILE), progress and
// summaries to stderr, errors are one line (fatal / cli_usage_error): CLI code, so it lives with
// its tool, not in libcommon.
#include "cmds.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "clt.h"
#include "clt_eval.h"
#include "clt_io.h"
#include "clt_report.h"
#include "clt_synth.h"
#include "err.h"
#include "fileio.h"

static const char SYNTH_USAGE[] =
    "usage: clt-fit synth -o OUT.acts --layers L --d D --features F --tokens N [options]\n"
    "\n"
    "Writes an activation shard sampled from a planted sparse CLT (synthetic ground truth, to check\n"
    "that clt-fit recovers known features). Per layer l: F features in superposition in D dims, each\n"
    "with a unit-norm input direction e_li and decoders into layers l..L-1 (concatenation unit-norm);\n"
    "feature i fires with probability proportional to (i+1)^-zipf (at most 0.9), scaled so that the\n"
    "expected number active per layer and token is --l0; magnitude 1 + |N(0,1)|. Then\n"
    "  x_l = sum_i a_li e_li + noise,   y_k = sum_{l<=k} sum_i a_li D_li,k + noise   (N(0, sigma^2))\n"
    "are stored as hooks resid_mid / mlp_out of layers 0..L-1.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE    activation shard to write\n"
    "  --layers L           layers\n"
    "  --d D                width\n"
    "  --features F         planted features per layer\n"
    "  --tokens N           tokens to sample\n"
    "  --l0 K               expected active features per layer and token (default 3)\n"
    "  --zipf S             firing-frequency exponent, 0 = uniform (default 0.5)\n"
    "  --noise SIGMA        Gaussian noise on every value (default 0.05)\n"
    "  --seed S             the planted model (default 0)\n"
    "  --data-seed S        the sampled tokens (default: --seed); another value gives held-out data\n"
    "  --save-truth DIR     write the planted model to DIR/truth.safetensors (for eval-synth)\n"
    "  --dtype T            shard encoding: f32 (default), bf16, f16\n"
    "  -h, --help\n";

static const char EVAL_USAGE[] =
    "usage: clt-fit eval CLT_DIR ACTS... [--batch B] [-o OUT.json]\n"
    "\n"
    "Runs a CLT checkpoint (circuit-tracer layout; normalization folded in, so raw activations) over\n"
    "held-out activation shards and prints JSON: per-layer NMSE = sum|yhat - y|^2 / sum|y - mean|^2\n"
    "(mean from the shards' statistics; the definition clt-fit logs), the fraction of variance\n"
    "explained (1 - NMSE), L0 per layer, dead features (never fired on these tokens), tokens.\n"
    "\n"
    "options:\n"
    "  --batch B            tokens per forward pass (default 1024)\n"
    "  -o, --output FILE    write the JSON here instead of stdout\n"
    "  -h, --help\n";

static const char EVAL_SYNTH_USAGE[] =
    "usage: clt-fit eval-synth CLT_DIR TRUTH_DIR [ACTS...] [-o OUT.json]\n"
    "\n"
    "Compares a CLT trained on `clt-fit synth` data with the planted model in TRUTH_DIR (from\n"
    "--save-truth). For every planted feature: the largest cosine similarity between its decoder,\n"
    "concatenated over target layers, and any learned feature's of the same source layer; prints\n"
    "their mean per layer and overall (MMCS) and the fraction above 0.9. With ACTS, also the CLT's\n"
    "L0 on them against the planted L0 (l0_ratio = learned / planted, both averaged over layers)\n"
    "and the eval metrics.\n"
    "\n"
    "options:\n"
    "  --batch B            tokens per forward pass (default 1024)\n"
    "  -o, --output FILE    write the JSON here instead of stdout\n"
    "  -h, --help\n";

static const char REPORT_USAGE[] =
    "usage: clt-fit report METRICS.jsonl... [-o REPORT.html] [--watch SEC]\n"
    "\n"
    "Writes one self-contained HTML file (inline SVG, no scripts, no network) with the training\n"
    "curves of clt-fit metrics logs: loss and its terms, NMSE and L0 per layer (a layer x step\n"
    "heatmap past 8 layers), dead features (silent over the last 1M tokens, or all seen so far),\n"
    "the lambda and learning-rate schedules, tokens/s; hovering a point shows its value and wall\n"
    "clock. Tables: the final values, the run's settings (run.json beside the log) and held-out\n"
    "results (eval.json beside it: `clt-fit eval DIR ACTS -o DIR/eval.json`). TopK runs draw only\n"
    "what they have. Several logs are overlaid, one line per run, their settings side by side.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE    the report (default: the first METRICS with .html for .jsonl)\n"
    "  --watch SEC          rewrite the report every SEC seconds while a run trains; the page\n"
    "                       reloads itself meanwhile\n"
    "  -h, --help\n";

// -o FILE: written to FILE.tmp.<pid> and renamed into place when complete (a device in place) (a report reading
// DIR/eval.json meanwhile sees the old one or the new one, never half of it); else stdout.
static FILE *open_json_out(const char *path, char *tmp, size_t n) {
    tmp[0] = 0;
    if (!path || !strcmp(path, "-")) return stdout;
    if (is_special_file(path)) return fopenCheck(path, "wb");  // a device: in place
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    return fopenCheck(tmp, "wb");
}
static void close_json_out(FILE *f, const char *path, const char *tmp) {
    Error e;
    int rc = finish_output(&f, tmp[0] ? tmp : NULL, path ? path : "stdout", &e);
    if (!rc && f && f != stdout && fclose(f)) rc = err_set(&e, "%s: write error", path);
    if (rc) fatal_err(&e);
}

static void print_darray(FILE *f, const double *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, "%s%.6g", i ? ", " : "", v[i]);
    fputc(']', f);
}

static void print_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

// ---- synth -----------------------------------------------------------------------------------

static int cmd_synth(int argc, char **argv) {
    cli_standard(argc, argv, "clt-fit synth", SYNTH_USAGE);
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"layers", required_argument, 0, 'L'},
                                         {"d", required_argument, 0, 'd'},
                                         {"features", required_argument, 0, 'F'},
                                         {"tokens", required_argument, 0, 'n'},
                                         {"l0", required_argument, 0, 'k'},
                                         {"zipf", required_argument, 0, 'z'},
                                         {"noise", required_argument, 0, 's'},
                                         {"seed", required_argument, 0, 'S'},
                                         {"data-seed", required_argument, 0, 'D'},
                                         {"save-truth", required_argument, 0, 'T'},
                                         {"dtype", required_argument, 0, 't'},
                                         {0, 0, 0, 0}};
    SynthConfig c = {.l0 = 3, .zipf = 0.5, .noise = 0.05};
    const char *out = NULL, *truth = NULL;
    int data_seed_set = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (ch) {
            case 'o': out = optarg; break;
            case 'L': c.L = (int)cli_parse_int("--layers", optarg, 1, 4096); break;
            case 'd': c.d = (int)cli_parse_int("--d", optarg, 1, 65536); break;
            case 'F': c.F = (int)cli_parse_int("--features", optarg, 1, 1 << 24); break;
            case 'n': c.n_tokens = (uint64_t)cli_parse_int("--tokens", optarg, 1, INT64_MAX); break;
            case 'k': c.l0 = cli_parse_double("--l0", optarg, 0, 1e9); break;
            case 'z': c.zipf = cli_parse_double("--zipf", optarg, 0, 1e3); break;
            case 's': c.noise = cli_parse_double("--noise", optarg, 0, 1e30); break;
            case 'S': c.seed = (uint64_t)cli_parse_int("--seed", optarg, 0, INT64_MAX); break;
            case 'D':
                c.data_seed = (uint64_t)cli_parse_int("--data-seed", optarg, 0, INT64_MAX);
                data_seed_set = 1;
                break;
            case 'T': truth = optarg; break;
            case 't':
                if (act_dtype_parse(optarg, &c.dtype) || c.dtype > ACT_F16)
                    fatal("--dtype: '%s' is not f32, bf16 or f16", optarg);
                break;
            default: cli_usage_error("clt-fit synth", "bad option");
        }
    }
    if (!out) cli_usage_error("clt-fit synth", "missing -o/--output");
    if (!c.L || !c.d || !c.F || !c.n_tokens)
        cli_usage_error("clt-fit synth", "--layers, --d, --features and --tokens are required");
    if (optind < argc) cli_usage_error("clt-fit synth", "unexpected argument '%s'", argv[optind]);
    if (!data_seed_set) c.data_seed = c.seed;
    Error e;
    SynthModel m;
    if (synth_model_init(&m, &c, &e)) fatal_err(&e);
    if (synth_write_shard(&m, &c, out, &e)) fatal_err(&e);
    if (truth && synth_save_truth(truth, &m, &c, &e)) fatal_err(&e);
    double l0 = 0;
    for (int l = 0; l < m.L; l++) l0 += m.l0[l];
    printf("{\"output\": ");
    print_json_string(stdout, out);
    printf(
        ", \"tokens\": %llu, \"layers\": %d, \"d_model\": %d, \"features\": %d, \"planted_l0_mean\": %.6g, \"planted_l0_per_layer\": ",
        (unsigned long long)c.n_tokens, c.L, c.d, c.F, l0 / m.L);
    print_darray(stdout, m.l0, m.L);
    printf("}\n");
    synth_model_free(&m);
    return 0;
}

// ---- eval ------------------------------------------------------------------------------------

// Options shared by eval and eval-synth; positional arguments are left in argv[optind..].
static void parse_eval_opts(int argc, char **argv, const char *tool, int *batch, const char **out) {
    static const struct option opts[] = {
        {"batch", required_argument, 0, 'b'}, {"output", required_argument, 0, 'o'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (ch) {
            case 'b': *batch = (int)cli_parse_int("--batch", optarg, 1, 1 << 20); break;
            case 'o': *out = optarg; break;
            default: cli_usage_error(tool, "bad option");
        }
    }
}

static int cmd_eval(int argc, char **argv) {
    cli_standard(argc, argv, "clt-fit eval", EVAL_USAGE);
    int batch = 1024;
    const char *out = NULL;
    parse_eval_opts(argc, argv, "clt-fit eval", &batch, &out);
    if (argc - optind < 2) cli_usage_error("clt-fit eval", "expected CLT_DIR and at least one activation shard");
    const char *dir = argv[optind];
    Error e;
    CltParams p;
    if (clt_load(dir, &p, &e)) fatal_err(&e);
    char hook[256];
    int have_hook = !clt_config_value(dir, "feature_input_hook", hook, sizeof hook);
    CltEvalResult r;
    if (clt_eval_shards(&p, have_hook ? hook : NULL, argv + optind + 1, argc - optind - 1, batch, &r, &e))
        fatal_err(&e);
    char tmp[4200];
    FILE *f = open_json_out(out, tmp, sizeof tmp);
    fprintf(f, "{\n  \"clt\": ");
    print_json_string(f, dir);
    fprintf(f, ",\n  \"layers\": %d,\n  \"d_model\": %d,\n  \"features\": %d,\n  \"shards\": [", p.L, p.d, p.F);
    for (int i = optind + 1; i < argc; i++) {
        if (i > optind + 1) fputs(", ", f);
        print_json_string(f, argv[i]);
    }
    fprintf(f, "],\n");
    clt_eval_print_members(f, &r, 2);
    fprintf(f, "\n}\n");
    close_json_out(f, out, tmp);
    clt_eval_result_free(&r);
    clt_params_free(&p);
    return 0;
}

static int cmd_eval_synth(int argc, char **argv) {
    cli_standard(argc, argv, "clt-fit eval-synth", EVAL_SYNTH_USAGE);
    int batch = 1024;
    const char *out = NULL;
    parse_eval_opts(argc, argv, "clt-fit eval-synth", &batch, &out);
    if (argc - optind < 2) cli_usage_error("clt-fit eval-synth", "expected CLT_DIR and TRUTH_DIR");
    const char *dir = argv[optind], *tdir = argv[optind + 1];
    int n_acts = argc - optind - 2;
    Error e;
    CltParams p;
    SynthModel m;
    SynthRecovery rec;
    if (clt_load(dir, &p, &e)) fatal_err(&e);
    if (synth_load_truth(tdir, &m, &e)) fatal_err(&e);
    if (synth_recovery(&m, &p, &rec, &e)) fatal("%s vs %s: %s", dir, tdir, e.msg);
    CltEvalResult r = {0};
    if (n_acts) {
        char hook[256];
        int have_hook = !clt_config_value(dir, "feature_input_hook", hook, sizeof hook);
        if (clt_eval_shards(&p, have_hook ? hook : NULL, argv + optind + 2, n_acts, batch, &r, &e)) fatal_err(&e);
    }
    double planted = 0, learned = 0;
    for (int l = 0; l < m.L; l++) planted += m.l0[l] / m.L;
    for (int l = 0; n_acts && l < m.L; l++) learned += r.l0[l] / m.L;
    char tmp[4200];
    FILE *f = open_json_out(out, tmp, sizeof tmp);
    fprintf(f, "{\n  \"clt\": ");
    print_json_string(f, dir);
    fprintf(f, ",\n  \"truth\": ");
    print_json_string(f, tdir);
    fprintf(f, ",\n  \"layers\": %d,\n  \"planted_features\": %d,\n  \"learned_features\": %d,\n", m.L, m.F, p.F);
    fprintf(f, "  \"mmcs\": %.6g,\n  \"mmcs_per_layer\": ", rec.mmcs_all);
    print_darray(f, rec.mmcs, m.L);
    fprintf(f, ",\n  \"frac_cos_above_0.9\": ");
    print_darray(f, rec.frac_09, m.L);
    fprintf(f, ",\n  \"planted_l0_mean\": %.6g,\n  \"planted_l0_per_layer\": ", planted);
    print_darray(f, m.l0, m.L);
    if (n_acts) {
        fprintf(f, ",\n  \"learned_l0_mean\": %.6g,\n  \"learned_l0_per_layer\": ", learned);
        print_darray(f, r.l0, m.L);
        fprintf(f, ",\n  \"l0_ratio\": %.6g,\n  \"eval\": {\n", planted > 0 ? learned / planted : 0);
        clt_eval_print_members(f, &r, 4);
        fprintf(f, "\n  }");
    }
    fprintf(f, "\n}\n");
    close_json_out(f, out, tmp);
    if (n_acts) clt_eval_result_free(&r);
    synth_recovery_free(&rec);
    synth_model_free(&m);
    clt_params_free(&p);
    return 0;
}

// ---- report ----------------------------------------------------------------------------------

static int cmd_report(int argc, char **argv) {
    cli_standard(argc, argv, "clt-fit report", REPORT_USAGE);
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"watch", required_argument, 0, 'w'}, {0, 0, 0, 0}};
    const char *out = NULL;
    int ch, watch = 0;
    while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (ch == 'o') out = optarg;
        else if (ch == 'w') watch = (int)cli_parse_int("--watch", optarg, 1, 86400);
        else cli_usage_error("clt-fit report", "bad option");
    }
    if (argc - optind < 1) cli_usage_error("clt-fit report", "expected at least one METRICS.jsonl");
    const char *in = argv[optind];
    char def[4096];
    if (!out) {
        size_t n = strlen(in);
        int jsonl = n > 6 && !strcmp(in + n - 6, ".jsonl");
        snprintf(def, sizeof def, "%.*s.html", (int)(jsonl ? n - 6 : n), in);
        out = def;
    }
    if (watch && !strcmp(out, "-")) cli_usage_error("clt-fit report", "--watch writes a file, not stdout");
    cli_check_not_input(out, &in, 1);
    Error e;
    for (int running = 1; running;) {
        if (clt_report_write((const char *const *)argv + optind, argc - optind, out, watch, &running, &e))
            fatal_err(&e);
        if (!watch) break;
        if (running) sleep((unsigned)watch);
    }
    if (strcmp(out, "-")) fprintf(stderr, "clt-fit report: wrote %s\n", out);
    return 0;
}

// ---------------------------------------------------------------------------------------------

int clt_cmds_dispatch(int argc, char **argv) {
    if (argc < 2) return -1;
    const char *c = argv[1];
    if (!strcmp(c, "synth")) return cmd_synth(argc - 1, argv + 1);
    if (!strcmp(c, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(c, "eval-synth")) return cmd_eval_synth(argc - 1, argv + 1);
    if (!strcmp(c, "report")) return cmd_report(argc - 1, argv + 1);
    // a word that is neither a subcommand nor an existing file is a mistyped subcommand (`clt-fit
    // reprot ...` used to say "missing -o/--output"), not a training shard
    if (c[0] != '-' && access(c, F_OK) != 0 && strspn(c, "abcdefghijklmnopqrstuvwxyz-") == strlen(c)) {
        static const char *const cmds[] = {"synth", "eval", "eval-synth", "report"};
        const char *near = NULL;
        for (int i = 0; i < 4 && !near; i++)  // same letters in another order, or one letter off
            if (strlen(cmds[i]) == strlen(c)) {
                int diff = 0, sum_c = 0, sum_k = 0;
                for (size_t j = 0; c[j]; j++) diff += c[j] != cmds[i][j], sum_c += c[j], sum_k += cmds[i][j];
                if (diff <= 1 || sum_c == sum_k) near = cmds[i];
            }
        if (near) cli_usage_error("clt-fit", "unknown command '%s' (did you mean '%s'?)", c, near);
        cli_usage_error("clt-fit", "unknown command '%s' (commands: synth, eval, eval-synth, report; or give shards)",
                        c);
    }
    return -1;
}
