// fwd-acts — run a transformer over token shards and cache per-layer CLT inputs and targets
// (activation shards, formats/acts.md); or evaluate its loss; or greedy-generate to check it.
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "actshard.h"
#include "cli.h"
#include "contexts.h"
#include "err.h"
#include "generate.h"
#include "model.h"
#include "model_resolve.h"
#include "progress.h"
#include "engine.h"

static const char USAGE[] =
    "usage: fwd-acts -m MODEL -o OUT.acts [options] TOKENS.tok...\n"
    "       fwd-acts eval -m MODEL [options] TOKENS.tok...     (loss and perplexity as JSON)\n"
    "       fwd-acts generate -m MODEL [--max-new-tokens N] [--prompt-ids \"1 2\"]   (greedy ids)\n"
    "       fwd-acts info OUT.acts      (header and statistics as JSON; verifies every chunk)\n"
    "The old spellings of the modes, --eval, --generate N and --info FILE, do the same.\n"
    "\n"
    "Runs the model (Hugging Face config.json + safetensors: llama, gemma2, gpt2) over the documents\n"
    "of token shards, cut into contexts of --ctx tokens (BOS + ctx-1 document tokens), and writes\n"
    "for every token and chosen layer the CLT input (--in) and target (mlp_out) to an activation\n"
    "shard, with the token id, document id and position. BOS activations are excluded unless\n"
    "--keep-bos. Output is atomic; split big runs with --shard i/N (each job its own file).\n"
    "\n"
    "options:\n"
    "  -m, --model MODEL    model directory (config.json, model.safetensors[.index.json]), or a\n"
    "                       model's name in the cache (see generate --help: a name with no '/')\n"
    "  -o, --output FILE    activation shard to write\n"
    "  --layers SPEC        all (default), or e.g. 0,2,5-7\n"
    "  --in HOOK            mlp_in (default: the normalized MLP input) or resid_mid\n"
    "  --ctx N              context length incl. BOS (default 128; at most the model's\n"
    "                       max_position_embeddings). No full context in the input is an error\n"
    "  --batch N            contexts per forward pass (default 8)\n"
    "  --dtype T            f32 (default), bf16, f16, or quantised (no fp32 ever written): int8[:QMAX],\n"
    "                       fp8, int4[:GROUP] (see quant-acts --help, formats/acts.md)\n"
    "  --no-bos             do not prepend BOS (the shards' documents already start with it)\n"
    "  --bos ID             BOS id (default: config.json bos_token_id)\n"
    "  --keep-bos           also write the BOS positions' activations\n"
    "  --shard i/N          process contexts with index % N == i\n"
    "  --max-tokens N       read at most N tokens of the input (document tokens, BOS not counted);\n"
    "                       eval: the contexts that hold them\n"
    "  --chunk-tokens N     tokens per compressed chunk (default " SHARD_STR(ACTSHARD_CHUNK_TOKENS) ",\n"
    "                       fewer when a chunk of all layers would pass the reader's cap)\n"
    "  --zstd-level N       compression level (default " SHARD_STR(SHARD_ZSTD_LEVEL) "; negative: store)\n"
    "  --device D           cpu (default) or cuda (when built with CUDA): fp32 on the GPU\n"
    "  --max-new-tokens N   generate: ids to decode (default 50; fewer, with a warning, where the\n"
    "                       model's positions end)\n"
    "  --prompt-ids IDS     generate: the ids to continue (default: BOS)\n"
    "  --eval               = fwd-acts eval\n"
    "  --generate N         = fwd-acts generate --max-new-tokens N\n"
    "  --info FILE          = fwd-acts info FILE\n"
    "  -h, --help, --version\n";

typedef struct {
    const char *model_dir, *out_path, *layers_spec, *in_hook, *dtype;
    int ctx, batch, no_bos, keep_bos, shard_i, shard_n, eval, generate, max_new_tokens;
    int64_t bos, max_tokens;
    uint32_t chunk_tokens;
    int zstd_level;
    const char *prompt_ids;
    const char *device;
} Options;

static void print_id(void *ctx, uint32_t id) {
    (void)ctx;
    printf("%u\n", id);
    if (fflush(stdout) != 0) fatal("standard output: write error: %s", strerror(errno));
}

static int run_generate(const Model *m, const Options *o) {
    Error e;
    uint32_t *seq = NULL;
    int n = 0;
    if (o->prompt_ids) {
        long long *v;
        size_t nv = cli_parse_int_list("--prompt-ids", o->prompt_ids, 0, m->cfg.vocab_size - 1, &v);
        seq = xmalloc((nv ? nv : 1) * sizeof *seq);
        for (size_t i = 0; i < nv; i++) seq[n++] = (uint32_t)v[i];
        free(v);
    } else {
        if (m->cfg.bos_id < 0) fatal("%s: no bos_token_id in config.json; give --prompt-ids", m->dir);
        seq = xmalloc(sizeof *seq);
        seq[n++] = (uint32_t)m->cfg.bos_id;
    }
    if (!n) fatal("--prompt-ids: no ids");
    if (model_check_positions(&m->cfg, n, "--prompt-ids", &e)) fatal("%s: %s", m->dir, e.msg);

    // greedy with the KV cache; no EOS stop: exactly N ids (fewer only at the model's last position)
    GenerateOptions go = {.max_tokens = o->max_new_tokens, .on_token = print_id};
    KVDecoder *d = kv_decoder_new(m);
    GenerateResult r;
    if (generate(d, seq, n, &go, &r, &e)) fatal_err(&e);
    if (r.stop == GEN_STOP_CONTEXT)
        fprintf(stderr, "fwd-acts: warning: stopped after %d of %d ids at the model's %d positions\n", r.n,
                o->max_new_tokens, m->cfg.max_pos);
    generate_result_free(&r);
    kv_decoder_free(d);
    free(seq);
    return 0;
}

// One batch of kept tokens ready for the shard writer: ids, document ids, positions and the
// selected layers' rows, layer-major (n_sel, kept, D). Two of these alternate so the writer
// (conversion, statistics, zstd) runs on a background thread while the next batch is computed.
typedef struct {
    float *in, *out;
    uint32_t *tok, *pos;
    uint64_t *doc;
    size_t kept;
    ActShardWriter *w;
    Error err;
    int failed;
    pthread_t tid;
    int running;
} Stage;

static void *stage_write(void *arg) {
    Stage *st = arg;
    st->failed = actshard_write(st->w, st->kept, st->tok, st->doc, st->pos, st->in, st->out, &st->err) != 0;
    return NULL;
}

// Waits for a background write; a failure aborts the shard and exits.
static void stage_join(Stage *st) {
    if (!st->running) return;
    pthread_join(st->tid, NULL);
    st->running = 0;
    if (st->failed) {
        Error err = st->err;
        actshard_writer_abort(st->w);  // the other stage's write, if any, was joined before this one started
        fatal_err(&err);
    }
}

// Stops the background writes, then discards the half-written shard (before a fatal error).
static void abort_output(Stage *stages, ActShardWriter *w) {
    for (int i = 0; i < 2; i++)
        if (stages[i].running) {
            pthread_join(stages[i].tid, NULL);
            stages[i].running = 0;
        }
    if (w) actshard_writer_abort(w);
}

// --info: prints a shard's header and statistics, then reads every chunk (checksums, decoding).
static int print_info(const char *path) {
    ActShard s;
    Error e;
    if (actshard_open(&s, path, &e)) fatal_err(&e);
    if (actshard_print_info(&s, stdout, 0, &e)) fatal_err(&e);
    ActChunk c = {0};
    for (uint64_t i = 0; i < s.n_chunks; i++)
        if (actshard_read_chunk(&s, i, &c, &e)) fatal_err(&e);
    actchunk_free(&c);
    actshard_close(&s);
    return 0;
}

int main(int argc, char **argv) {
    cli_standard(argc, argv, "fwd-acts", USAGE);
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"output", required_argument, 0, 'o'},
        {"layers", required_argument, 0, 'L'}, {"in", required_argument, 0, 'I'},
        {"ctx", required_argument, 0, 'c'}, {"batch", required_argument, 0, 'b'},
        {"dtype", required_argument, 0, 'd'}, {"no-bos", no_argument, 0, 'N'},
        {"bos", required_argument, 0, 'B'}, {"keep-bos", no_argument, 0, 'K'},
        {"shard", required_argument, 0, 's'}, {"max-tokens", required_argument, 0, 'x'},
        {"chunk-tokens", required_argument, 0, 'C'}, {"zstd-level", required_argument, 0, 'z'},
        {"eval", no_argument, 0, 'E'}, {"generate", required_argument, 0, 'g'},
        {"prompt-ids", required_argument, 0, 'p'}, {"info", required_argument, 0, 'i'},
        {"device", required_argument, 0, 'D'}, {"max-new-tokens", required_argument, 0, 'n'}, {0, 0, 0, 0}};
    static const char *const modes[] = {"info", "eval", "generate", NULL};
    const char *mode = cli_subcommand(&argc, &argv, modes);
    Options o = {.layers_spec = "all", .in_hook = "mlp_in", .dtype = "f32", .ctx = 128, .batch = 8,
                 .shard_n = 1, .bos = -2, .max_tokens = -1, .device = "cpu", .max_new_tokens = 50};
    const char *info_path = NULL;
    if (mode && !strcmp(mode, "eval")) o.eval = 1;
    if (mode && !strcmp(mode, "generate")) o.generate = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:o:", opts, NULL)) != -1) {
        switch (c) {
            case 'm': o.model_dir = optarg; break;
            case 'o': o.out_path = optarg; break;
            case 'L': o.layers_spec = optarg; break;
            case 'I': o.in_hook = optarg; break;
            case 'c': o.ctx = (int)cli_parse_int("--ctx", optarg, 2, 1 << 20); break;
            case 'b': o.batch = (int)cli_parse_int("--batch", optarg, 1, 1 << 16); break;
            case 'd': o.dtype = optarg; break;
            case 'N': o.no_bos = 1; break;
            case 'B': o.bos = cli_parse_int("--bos", optarg, 0, 1LL << 31); break;
            case 'K': o.keep_bos = 1; break;
            case 's': cli_parse_shard("--shard", optarg, &o.shard_i, &o.shard_n); break;
            case 'x': o.max_tokens = cli_parse_int("--max-tokens", optarg, 1, INT64_MAX); break;
            case 'C': o.chunk_tokens = (uint32_t)cli_parse_int("--chunk-tokens", optarg, 1, 1 << 24); break;
            case 'z': o.zstd_level = (int)cli_parse_int("--zstd-level", optarg, -1, 22); break;
            case 'E': o.eval = 1; break;
            case 'g':
                o.generate = 1;
                o.max_new_tokens = (int)cli_parse_int("--generate", optarg, 1, 1 << 20);
                break;
            case 'n': o.max_new_tokens = (int)cli_parse_int("--max-new-tokens", optarg, 1, 1 << 20); break;
            case 'p': o.prompt_ids = optarg; break;
            case 'i': info_path = optarg; break;
            case 'D': o.device = optarg; break;
            default: cli_usage_error("fwd-acts", "bad option");
        }
    }
    if (info_path || (mode && !strcmp(mode, "info"))) {
        if (info_path && optind < argc) cli_usage_error("fwd-acts", "info takes one shard");
        if (!info_path && optind != argc - 1)
            cli_usage_error("fwd-acts", "info takes one shard, got %d", argc - optind);
        return print_info(info_path ? info_path : argv[optind]);
    }
    if (o.eval + o.generate > 1) cli_usage_error("fwd-acts", "eval and generate are two modes; give one");
    if (o.generate && optind < argc) cli_usage_error("fwd-acts", "generate reads no token shards ('%s')", argv[optind]);
    if (!o.model_dir) cli_usage_error("fwd-acts", "missing -m/--model");
    if (strcmp(o.in_hook, "mlp_in") && strcmp(o.in_hook, "resid_mid"))
        cli_usage_error("fwd-acts", "--in must be mlp_in or resid_mid, not '%s'", o.in_hook);
    ActDtype dtype;
    uint32_t enc_param;
    Error pe;
    if (act_encoding_parse(o.dtype, &dtype, &enc_param, &pe))
        cli_usage_error("fwd-acts", "--dtype: %s", pe.msg);
    if (!o.generate && !o.eval && !o.out_path)
        cli_usage_error("fwd-acts", "missing -o/--output (or fwd-acts eval / generate)");
    if (!o.generate && optind >= argc) cli_usage_error("fwd-acts", "no token shards given");
    if (o.out_path) cli_check_not_input(o.out_path, (const char *const *)argv + optind, argc - optind);

    o.model_dir = model_resolve_cli("fwd-acts", o.model_dir);  // a path, or a name in the cache
    Model m;
    Error e;
    if (model_load(&m, o.model_dir, &e)) fatal_err(&e);
    const ModelConfig *cfg = &m.cfg;
    if (o.generate) return run_generate(&m, &o);

    int64_t bos = o.no_bos ? -1 : o.bos >= 0 ? o.bos : cfg->bos_id;
    if (!o.no_bos && bos < 0) fatal("%s: config.json has no bos_token_id; pass --bos ID or --no-bos", o.model_dir);
    if (bos >= cfg->vocab_size) fatal("--bos %lld is outside the vocabulary (%d)", (long long)bos, cfg->vocab_size);
    if (model_check_positions(cfg, o.ctx, "--ctx", &e)) fatal("%s: %s", o.model_dir, e.msg);
    if ((int64_t)o.batch * o.ctx > INT32_MAX / 4)
        fatal("--batch %d x --ctx %d: too many tokens per forward pass", o.batch, o.ctx);

    int *layers = xmalloc((size_t)cfg->n_layers * sizeof *layers);
    int n_sel = cli_parse_layers("--layers", o.layers_spec, cfg->n_layers, layers);
    int D = cfg->d_model, T = o.ctx, Bmax = o.batch, L = cfg->n_layers;
    size_t NT = (size_t)Bmax * T;

    ContextReader cr;
    if (context_reader_open(&cr, argv + optind, argc - optind, T, bos, (uint32_t)cfg->vocab_size, &e)) fatal_err(&e);
    uint32_t *tokens = xmalloc(NT * sizeof *tokens), *positions = xmalloc(NT * sizeof *positions);
    uint64_t *doc_ids = xmalloc(NT * sizeof *doc_ids);

    // hooks: the selected layers' input and target, (B*T, D) each
    float **in_hooks = xcalloc((size_t)L, sizeof(float *)), **out_hooks = xcalloc((size_t)L, sizeof(float *));
    for (int i = 0; i < n_sel && !o.eval; i++) {
        in_hooks[layers[i]] = xmalloc(NT * D * sizeof(float));
        out_hooks[layers[i]] = xmalloc(NT * D * sizeof(float));
    }
    ForwardOutputs fo = {0};
    float *logits = NULL;
    if (o.eval) {
        logits = xmalloc(NT * cfg->vocab_size * sizeof(float));
        fo.logits = logits;
    } else {
        if (!strcmp(o.in_hook, "mlp_in")) fo.mlp_in = in_hooks;
        else fo.resid_mid = in_hooks;
        fo.mlp_out = out_hooks;
        fo.n_run_layers = layers[n_sel - 1] + 1;  // later layers are not needed
    }
    Engine engine;
    engine_init(&engine, &m, o.device, Bmax, T);

    ActShardWriter *w = NULL;
    char *meta_text = NULL;
    if (!o.eval) {
        json_t *meta = json_object();
        json_object_set_new(meta, "tool", json_string("fwd-acts"));
        json_object_set_new(meta, "version", json_string(CLTKIT_VERSION));
        json_object_set_new(meta, "model_dir", json_string(o.model_dir));
        json_object_set_new(meta, "model_type", json_string(cfg->model_type));
        json_t *inputs = json_array();
        for (int i = optind; i < argc; i++) json_array_append_new(inputs, json_string(argv[i]));
        json_object_set_new(meta, "token_shards", inputs);
        json_object_set_new(meta, "ctx", json_integer(T));
        json_object_set_new(meta, "bos_prepended", bos >= 0 ? json_integer(bos) : json_null());
        json_object_set_new(meta, "bos_activations_kept", json_boolean(o.keep_bos));
        json_object_set_new(meta, "shard_index", json_integer(o.shard_i));
        json_object_set_new(meta, "shard_count", json_integer(o.shard_n));
        json_object_set_new(meta, "compute", json_string(!strcmp(o.device, "cpu") ? "cpu fp32" : "cuda fp32"));
        meta_text = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(meta);
        ActShardWriterOptions wo = {.model_id = o.model_dir,
                                    .model_hash = m.weights_hash,
                                    .in_hook = o.in_hook,
                                    .out_hook = "mlp_out",
                                    .n_layers = n_sel,
                                    .layers = layers,
                                    .d_model = D,
                                    .dtype = dtype,
                                    .enc_param = enc_param,
                                    .chunk_tokens = o.chunk_tokens,
                                    .zstd_level = o.zstd_level,
                                    .meta_json = meta_text};
        w = actshard_writer_open(o.out_path, &wo, &e);
        if (!w) fatal_err(&e);
    }

    // double-buffered staging for the background writer
    Stage stages[2];
    memset(stages, 0, sizeof stages);
    for (int i = 0; i < 2 && !o.eval; i++) {
        stages[i].in = xmalloc((size_t)n_sel * NT * D * sizeof(float));
        stages[i].out = xmalloc((size_t)n_sel * NT * D * sizeof(float));
        stages[i].tok = xmalloc(NT * sizeof(uint32_t));
        stages[i].pos = xmalloc(NT * sizeof(uint32_t));
        stages[i].doc = xmalloc(NT * sizeof(uint64_t));
        stages[i].w = w;
    }
    int cur_stage = 0;
    size_t *kept_row = xmalloc(NT * sizeof *kept_row);

    // The bar counts what the summary line reports: tokens written (eval: document tokens read),
    // out of the total the shards' footers give
    uint64_t n_ctx, per_ctx = (uint64_t)T - (bos >= 0 && (o.eval || !o.keep_bos));
    if (context_count(argv + optind, argc - optind, T, bos, &n_ctx, &e)) fatal_err(&e);
    uint64_t mine = n_ctx / (uint64_t)o.shard_n + ((uint64_t)o.shard_i < n_ctx % (uint64_t)o.shard_n);
    uint64_t total = mine * per_ctx;
    if (o.max_tokens > 0 && (uint64_t)o.max_tokens < total)
        total = o.eval ? ((uint64_t)o.max_tokens + per_ctx - 1) / per_ctx * per_ctx : (uint64_t)o.max_tokens;
    Progress prog;
    progress_init(&prog, o.eval ? "fwd-acts eval" : "fwd-acts", "tok", 1, total);
    double t0 = now_seconds(), loss_sum = 0;
    uint64_t written = 0, loss_count = 0, ctx_index = 0, processed = 0, eval_read = 0;
    int done = 0;
    while (!done) {
        int B = 0;
        while (B < Bmax) {
            if (o.eval && o.max_tokens > 0 && eval_read >= (uint64_t)o.max_tokens) { done = 1; break; }
            int rc = context_reader_next(&cr, tokens + (size_t)B * T, doc_ids + (size_t)B * T,
                                         positions + (size_t)B * T, &e);
            if (rc < 0) {
                abort_output(stages, w);
                fatal_err(&e);
            }
            if (rc == 0) { done = 1; break; }
            if (ctx_index++ % (uint64_t)o.shard_n != (uint64_t)o.shard_i) continue;
            B++;
            eval_read += (uint64_t)T - (bos >= 0);  // the context's document tokens
        }
        if (!B) break;
        if (engine_forward(&engine, tokens, B, T, &fo, &e)) {
            abort_output(stages, w);
            fatal_err(&e);
        }
        processed += (uint64_t)B * T;
        if (o.eval) {
            // mean next-token loss over every prediction inside the contexts
            double *loss = xmalloc((size_t)B * sizeof *loss);
            model_loss(logits, tokens, B, T, cfg->vocab_size, loss);
            for (int b = 0; b < B; b++) loss_sum += loss[b] * (T - 1);
            loss_count += (uint64_t)B * (T - 1);
            free(loss);
            progress_update(&prog, eval_read);
            continue;
        }
        // select kept tokens (drop BOS positions unless --keep-bos; respect --max-tokens)
        Stage *sg = &stages[cur_stage];
        stage_join(sg);  // its previous write (two batches ago) must be done before reuse
        uint32_t *kept_tok = sg->tok, *kept_pos = sg->pos;
        uint64_t *kept_doc = sg->doc;
        float *stage_in = sg->in, *stage_out = sg->out;
        size_t kept = 0;
        for (size_t r = 0; r < (size_t)B * T; r++) {
            if (positions[r] == CONTEXT_POS_BOS && !o.keep_bos) continue;
            if (o.max_tokens > 0 && written + kept >= (uint64_t)o.max_tokens) { done = 1; break; }
            kept_row[kept] = r;
            kept_tok[kept] = tokens[r];
            kept_doc[kept] = doc_ids[r];
            kept_pos[kept] = positions[r];
            kept++;
        }
        for (int li = 0; li < n_sel; li++) {
            const float *src_in = in_hooks[layers[li]], *src_out = out_hooks[layers[li]];
            float *dst_in = stage_in + (size_t)li * kept * D, *dst_out = stage_out + (size_t)li * kept * D;
            for (size_t k = 0; k < kept; k++) {
                memcpy(dst_in + k * D, src_in + kept_row[k] * D, (size_t)D * sizeof(float));
                memcpy(dst_out + k * D, src_out + kept_row[k] * D, (size_t)D * sizeof(float));
            }
        }
        if (kept) {  // writes run one at a time, in order: join the other stage's write first
            stage_join(&stages[1 - cur_stage]);
            sg->kept = kept;
            if (pthread_create(&sg->tid, NULL, stage_write, sg)) fatal("cannot start the writer thread");
            sg->running = 1;
            cur_stage = 1 - cur_stage;
        }
        written += kept;
        progress_update(&prog, written);
    }
    progress_finish(&prog);
    if (!ctx_index || (o.eval && !loss_count)) {  // a loss of 0 or an empty shard would look like a result
        abort_output(stages, w);
        if (!ctx_index)
            fatal("no context of --ctx %d tokens in the token shards (they hold %llu tokens); lower --ctx", T,
                  (unsigned long long)cr.tail_tokens);
        fatal("--shard %d/%d: none of the %llu contexts is this shard's", o.shard_i, o.shard_n,
              (unsigned long long)ctx_index);
    }
    double dt = now_seconds() - t0;
    if (o.eval) {
        double loss = loss_count ? loss_sum / (double)loss_count : 0;
        if (!isfinite(loss))  // JSON has no NaN; and a NaN loss is never an answer
            fatal("%s: the loss is %g: the model computes non-finite logits", o.model_dir, loss);
        printf(
            "{\"model\": \"%s\", \"contexts\": %llu, \"predicted_tokens\": %llu, \"loss\": %.6f, \"perplexity\": %.4f, \"tokens_per_s\": %.1f}\n",
            o.model_dir, (unsigned long long)(processed / (uint64_t)T), (unsigned long long)loss_count, loss, exp(loss),
            dt > 0 ? (double)processed / dt : 0);
    } else {
        stage_join(&stages[0]);
        stage_join(&stages[1]);
        if (actshard_writer_close(w, &e)) fatal_err(&e);
        fprintf(stderr,
                "fwd-acts: %llu tokens (%d layers, d %d) in %.2f s: %.0f tokens/s forward; %llu tail tokens dropped\n",
                (unsigned long long)written, n_sel, D, dt, dt > 0 ? (double)processed / dt : 0,
                (unsigned long long)cr.tail_tokens);
    }
    context_reader_close(&cr);
    engine_free(&engine);
    for (int l = 0; l < L; l++) { free(in_hooks[l]); free(out_hooks[l]); }
    for (int i = 0; i < 2; i++) {
        free(stages[i].in); free(stages[i].out); free(stages[i].tok); free(stages[i].pos); free(stages[i].doc);
    }
    free(in_hooks); free(out_hooks); free(logits); free(kept_row);
    free(tokens); free(positions); free(doc_ids); free(layers); free(meta_text);
    model_free(&m);
    return 0;
}
