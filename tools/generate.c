// generate — text generation with the model engine: the prompt (stdin or arguments) goes through
// the model's ChatML chat template unless --raw, and the answer is streamed to stdout. The
// offline explainer behind auto-interpretation (SmolLM2-135M-Instruct, converted by gguf-convert).
#include <float.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"
#include "cli.h"
#include "err.h"
#include "generate.h"
#include "model.h"
#include "model_resolve.h"
#include "progress.h"
#include "tokenizer.h"

static const char USAGE[] =
    "usage: generate -m MODEL [options] [PROMPT...]\n"
    "\n"
    "Generates text with a Hugging Face model directory (llama, gemma2, gpt2; config.json,\n"
    "safetensors, tokenizer.json) on the CPU with a KV cache. The prompt is the arguments joined by\n"
    "spaces, else stdin (one trailing newline dropped). If the model has a chat template\n"
    "(tokenizer_config.json or chat_template.jinja) it must be ChatML: the prompt becomes the user\n"
    "message, after the template's default system message or --system; --raw sends it as is.\n"
    "The answer is streamed to stdout; generation stops at an EOS id, a --stop string (not\n"
    "printed) or --max-new-tokens.\n"
    "\n"
    "options:\n"
    "  -m, --model DIR|NAME  a path (with a '/' or a leading '.') is a model directory; any other\n"
    "                        word a model's name, looked up in $CLTKIT_CACHE (default ~/.cache/cltkit):\n"
    "                        NAME/ or NAME/hf/ with config.json, or NAME/ with one GGUF, converted\n"
    "                        once into NAME/hf/ (e.g. smollm2 after scripts/fetch_smollm2.sh), and\n"
    "                        only then in the current directory; stderr says which was used\n"
    "  --chat                require a chat template (default: use one if the model has it)\n"
    "  --raw                 no chat template: the prompt text as is (tokenizer's BOS rules)\n"
    "  --system TEXT         the system message (chat)\n"
    "  --max-new-tokens N    new tokens at most (default 256)\n"
    "  --temperature T       0 = greedy (default); else sample\n"
    "  --top-k K             sample from the K most likely tokens (default 0 = all)\n"
    "  --top-p P             sample from the smallest set with probability >= P (default 1)\n"
    "  --seed S              random seed for sampling (default 0)\n"
    "  --stop STR            stop when the answer contains STR (repeatable; \\n \\t \\r \\\\ are escapes)\n"
    "  --ignore-eos          do not stop at EOS ids (benchmarks: always --max-new-tokens)\n"
    "  --samples N           N answers to the same prompt in one run (one model load), the k-th\n"
    "                        sampled with seed --seed + k; progress on stderr (default 1)\n"
    "  --jsonl               one JSON object per answer: {\"seed\", \"prompt\", \"answer\", \"text\"}\n"
    "                        (text = prompt + answer), instead of the streamed text\n"
    "  --ids                 print the generated ids, one a line (the stopping EOS included)\n"
    "  --prompt-only         print the prompt (its ids with --ids) and exit\n"
    "  --stats               print token counts and prefill/decode tokens/s as JSON on stderr\n"
    "  --max-tokens N        the old name of --max-new-tokens: an error that says so (--max-tokens\n"
    "                        is the input read in fwd-acts, feat-topk and quant-acts)\n"
    "  -h, --help, --version\n";

typedef struct {
    const char *model, *system;
    int chat, raw, ids, prompt_only, stats, ignore_eos, max_tokens, samples, jsonl;
    SamplerOptions so;
    const char **stop;
    int n_stop;
} Options;

// The escapes \n, \t, \r and \\ in a --stop string, in place (a shell passes "\n" as a backslash and
// an n; a stop string holding a real backslash is written \\).
static void unescape_stop(char *s) {
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '\\' && r[1]) {
            char c = r[1] == 'n' ? '\n' : r[1] == 't' ? '\t' : r[1] == 'r' ? '\r' : r[1] == '\\' ? '\\' : 0;
            if (c) { *w++ = c; r++; continue; }
        }
        *w++ = *r;
    }
    *w = 0;
}

static char *read_stdin(void) {
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (size_t got; (got = fread(buf + n, 1, cap - n - 1, stdin)) > 0;) {
        n += got;
        if (n + 1 == cap) buf = xrealloc(buf, cap *= 2);
    }
    if (ferror(stdin)) fatal("cannot read the prompt from stdin");
    if (n && buf[n - 1] == '\n') n--;  // echo's newline is not part of the question
    if (n && buf[n - 1] == '\r') n--;
    buf[n] = 0;
    return buf;
}

static void print_text(void *ctx, const char *text, size_t len) {
    size_t *printed = ctx;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    *printed += len;
}

static void print_id(void *ctx, uint32_t id) {
    (void)ctx;
    printf("%u\n", id);
    fflush(stdout);
}

int main(int argc, char **argv) {
    cli_standard(argc, argv, "generate", USAGE);
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"chat", no_argument, 0, 'c'}, {"raw", no_argument, 0, 'r'},
        {"system", required_argument, 0, 's'}, {"max-new-tokens", required_argument, 0, 'n'},
        {"temperature", required_argument, 0, 't'}, {"top-k", required_argument, 0, 'k'},
        {"top-p", required_argument, 0, 'p'}, {"seed", required_argument, 0, 'S'},
        {"stop", required_argument, 0, 'x'}, {"ids", no_argument, 0, 'i'},
        {"prompt-only", no_argument, 0, 'P'}, {"stats", no_argument, 0, 'T'},
        {"ignore-eos", no_argument, 0, 'E'}, {"samples", required_argument, 0, 'N'},
        {"jsonl", no_argument, 0, 'J'}, {"max-tokens", required_argument, 0, 'O'}, {0, 0, 0, 0}};
    Options o = {.max_tokens = 256, .samples = 1, .so = {.temperature = 0, .top_k = 0, .top_p = 1, .seed = 0}};
    o.stop = xcalloc((size_t)argc, sizeof *o.stop);
    int c;
    while ((c = getopt_long(argc, argv, "m:", opts, NULL)) != -1) {
        switch (c) {
            case 'm': o.model = optarg; break;
            case 'c': o.chat = 1; break;
            case 'r': o.raw = 1; break;
            case 's': o.system = optarg; break;
            case 'n': o.max_tokens = (int)cli_parse_int("--max-new-tokens", optarg, 1, 1 << 24); break;
            case 'O': cli_max_tokens_renamed("generate");
            case 't': o.so.temperature = (float)cli_parse_double("--temperature", optarg, 0, FLT_MAX); break;
            case 'k': o.so.top_k = (int)cli_parse_int("--top-k", optarg, 0, 1 << 30); break;
            case 'p': o.so.top_p = (float)cli_parse_double("--top-p", optarg, 0, FLT_MAX); break;
            case 'S': o.so.seed = (uint64_t)cli_parse_int("--seed", optarg, 0, INT64_MAX); break;
            case 'x':
                unescape_stop(optarg);  // "\n\n" as typed in a shell means two newlines
                if (!*optarg) cli_usage_error("generate", "--stop: empty string");
                o.stop[o.n_stop++] = optarg;
                break;
            case 'i': o.ids = 1; break;
            case 'P': o.prompt_only = 1; break;
            case 'T': o.stats = 1; break;
            case 'E': o.ignore_eos = 1; break;
            case 'N': o.samples = (int)cli_parse_int("--samples", optarg, 1, 1 << 24); break;
            case 'J': o.jsonl = 1; break;
            default: cli_usage_error("generate", "bad option");
        }
    }
    if (!o.model) cli_usage_error("generate", "missing -m/--model");
    if (o.chat && o.raw) cli_usage_error("generate", "--chat and --raw exclude each other");
    if (o.raw && o.system) cli_usage_error("generate", "--system needs the chat template (not --raw)");
    if (o.so.temperature < 0) cli_usage_error("generate", "--temperature must be >= 0");
    if (!(o.so.top_p > 0 && o.so.top_p <= 1)) cli_usage_error("generate", "--top-p must be in (0, 1]");
    if (o.jsonl && o.ids) cli_usage_error("generate", "--jsonl and --ids exclude each other");
    if (o.samples > 1 && !o.jsonl && !o.ids) cli_usage_error("generate", "--samples N > 1 needs --jsonl or --ids");

    // the prompt: arguments, else stdin
    char *prompt;
    if (optind < argc) {
        size_t len = 0;
        for (int i = optind; i < argc; i++) len += strlen(argv[i]) + 1;
        prompt = xcalloc(len + 1, 1);
        for (int i = optind; i < argc; i++) {
            if (i > optind) strcat(prompt, " ");
            strcat(prompt, argv[i]);
        }
    } else {
        if (isatty(STDIN_FILENO))  // not silent while it waits
            fprintf(stderr, "generate: reading the prompt from the terminal (end it with Ctrl-D)\n");
        prompt = read_stdin();
    }
    if (!*prompt) fatal("empty prompt (give it as arguments or on stdin)");

    Error e;
    char *dir = model_resolve_cli("generate", o.model);
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    Tokenizer *tok = tokenizer_load(path, &e);
    if (!tok) fatal_err(&e);

    // chat template or raw text
    char *tmpl = NULL, *text;
    if (!o.raw && chat_template_read(dir, &tmpl, &e)) fatal_err(&e);
    if (o.chat && !tmpl)
        fatal("%s: the model has no chat template (tokenizer_config.json, chat_template.jinja); use --raw", dir);
    int chat = tmpl != NULL;
    if (o.system && !chat) fatal("%s: --system needs a chat template, and the model has none", dir);
    if (chat) {
        ChatTemplate ct;
        if (chat_template_parse(&ct, tmpl, &e)) fatal("%s: %s", dir, e.msg);
        ChatMessage msgs[2];
        int n = 0;
        if (o.system) msgs[n++] = (ChatMessage){"system", o.system};
        msgs[n++] = (ChatMessage){"user", prompt};
        text = chat_format(&ct, msgs, n, 1);
        chat_template_free(&ct);
    } else {
        text = xstrdup(prompt);
    }
    // apply_chat_template tokenizes without the post-processor; plain text gets it (e.g. BOS)
    TokScratch *ts = tokscratch_new();
    TokIds ids = {0};
    TokEncodeOptions eo = {.match_special = 1, .add_special = !chat};
    if (tokenizer_encode(tok, ts, text, strlen(text), &eo, &ids, &e)) fatal("%s: %s", path, e.msg);
    tokscratch_free(ts);
    if (!ids.n) fatal("the prompt encodes to no tokens");
    if (o.prompt_only) {
        if (o.ids) for (size_t i = 0; i < ids.n; i++) printf("%u\n", ids.ids[i]);
        else fputs(text, stdout);
        return 0;
    }

    Model m;
    if (model_load(&m, dir, &e)) fatal_err(&e);
    uint32_t eos[16];
    int n_eos = o.ignore_eos ? 0 : model_eos_ids(&m, tok, chat, eos);
    size_t printed = 0;
    int stream = o.samples == 1 && !o.jsonl;  // one answer streamed as it is generated
    GenerateOptions go = {.max_tokens = o.max_tokens, .sampling = o.so, .eos_ids = eos, .n_eos = n_eos,
                          .stop = o.stop, .n_stop = o.n_stop, .tok = tok,
                          .on_token = stream && o.ids ? print_id : NULL,
                          .on_text = stream && !o.ids ? print_text : NULL, .ctx = &printed};
    if (model_check_positions(&m.cfg, (int64_t)ids.n, "the prompt", &e)) fatal("%s", e.msg);
    KVDecoder *d = kv_decoder_new(&m);
    GenerateResult r = {0};
    Progress prog;
    if (!stream) progress_init(&prog, "generate", "answers", 1, (uint64_t)o.samples);
    for (int k = 0; k < o.samples; k++) {
        if (k) generate_result_free(&r);
        go.sampling.seed = o.so.seed + (uint64_t)k;
        if (generate(d, ids.ids, (int)ids.n, &go, &r, &e)) fatal_err(&e);
        if (r.stop == GEN_STOP_CONTEXT)
            fprintf(stderr, "generate: warning: stopped after %d new tokens at the model's %d positions\n", r.n,
                    m.cfg.max_pos);
        if (stream) {
            if (!o.ids && (printed == 0 || r.text[r.len - 1] != '\n')) putchar('\n');
        } else if (o.ids) {
            for (int i = 0; i < r.n; i++) printf(i ? " %u" : "%u", r.ids[i]);
            putchar('\n');
        } else {  // JSONL: the answer and, as text, prompt + answer (a corpus line)
            size_t plen = strlen(prompt);
            char *full = xmalloc(plen + r.len + 1);
            memcpy(full, prompt, plen);
            memcpy(full + plen, r.text, r.len);
            json_t *obj = json_pack("{s:I, s:s, s:s%, s:s%}", "seed", (json_int_t)go.sampling.seed, "prompt", prompt,
                                    "answer", r.text, r.len, "text", full, plen + r.len);
            char *line = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
            if (!line) fatal("answer %d: not valid UTF-8 text", k);
            puts(line);
            free(line); json_decref(obj); free(full);
        }
        if (!stream) progress_update(&prog, (uint64_t)k + 1);
    }
    if (!stream) progress_finish(&prog);
    fflush(stdout);
    if (o.stats) {  // of the last answer
        int decoded = r.n > 1 ? r.n - 1 : 0;  // the first new token comes from the prefill
        fprintf(stderr,
                "{\"prompt_tokens\": %d, \"new_tokens\": %d, \"stop\": \"%s\", \"prefill_s\": %.4f, "
                "\"prefill_tok_s\": %.1f, \"decode_s\": %.4f, \"decode_tok_s\": %.2f}\n",
                r.n_prompt, r.n, generate_stop_name(r.stop), r.prefill_s,
                r.prefill_s > 0 ? r.n_prompt / r.prefill_s : 0, r.decode_s,
                r.decode_s > 0 && decoded ? decoded / r.decode_s : 0);
    }
    generate_result_free(&r);
    kv_decoder_free(d);
    model_free(&m);
    tokids_free(&ids);
    tokenizer_free(tok);
    free(text); free(tmpl); free(prompt); free(dir); free(o.stop);
    return 0;
}
