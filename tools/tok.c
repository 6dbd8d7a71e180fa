// tok — text/JSONL -> token shards with a Hugging Face tokenizer.json, and back.
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "err.h"
#include "fnv.h"
#include "jsonl.h"
#include "progress.h"
#include "spm.h"
#include "model_resolve.h"
#include "tokenizer.h"
#include "tokshard.h"
#include "unicode.h"

static const char USAGE[] =
    "usage: tok <command> [options]\n"
    "\n"
    "-t, --tokenizer FILE is the model's tokenizer.json, a directory holding one, or a model's name\n"
    "(as generate -m: smollm2 is the cached one, ./smollm2 a directory); -o, --output FILE the shard.\n"
    "\n"
    "commands:\n"
    "  encode -t tokenizer.json -o out.tok [options] INPUT...\n"
    "      Tokenize documents into a token shard (formats/tokens.md). INPUT is a text file (one\n"
    "      document per file, or per line with --lines) or JSONL (--jsonl or *.jsonl: one document\n"
    "      per line, text in --field). '-' reads stdin. Document ids are the global input index.\n"
    "        --field NAME        JSONL field holding the text (default: text)\n"
    "        --ids-field NAME    JSONL field holding token ids (already tokenized documents);\n"
    "                            without -t, --vocab-size N bounds the ids\n"
    "        --jsonl / --lines   input format (default: by extension, else one doc per file)\n"
    "        --special           match special tokens written in the text (e.g. <|endoftext|>)\n"
    "        --add-special       apply the tokenizer's post-processor (e.g. prepend <bos>)\n"
    "        --bos TOK, --eos TOK  prepend/append this token (string or id) to every document\n"
    "        --utf8-replace      replace invalid UTF-8 by U+FFFD (default: error)\n"
    "        --shard i/N         encode only documents with index % N == i\n"
    "        --threads N         worker threads (default: all cores)\n"
    "        --chunk-tokens N    tokens per compressed chunk (default " SHARD_STR(TOKSHARD_CHUNK_TOKENS) ")\n"
    "        --zstd-level N      compression level (default " SHARD_STR(SHARD_ZSTD_LEVEL) ", 1..22; token shards\n"
    "                            are always compressed)\n"
    "  decode -t tokenizer.json [--skip-special] [--jsonl] SHARD | --ids \"1 2 3\"\n"
    "      Decode a shard (each document, separated by --sep, default newline; or JSONL\n"
    "      {\"doc_id\":..,\"text\":..}) or a list of ids ('-' reads ids from stdin).\n"
    "  ids -t tokenizer.json [--special] [--add-special] [--tokens] TEXT\n"
    "      Print the ids of TEXT ('-' for stdin) as a JSON array ([[id, token], ...] with --tokens).\n"
    "  dump SHARD\n"
    "      Print every document's ids as JSONL {\"doc_id\":..,\"ids\":[..]} (no tokenizer needed).\n"
    "  info SHARD\n"
    "      Print a shard's header, counts and metadata as JSON.\n"
    "  convert-spm MODEL.model -o tokenizer.json\n"
    "      Convert a SentencePiece BPE model (e.g. llama2.c tok512.model) to tokenizer.json\n"
    "      the way transformers' LlamaConverter does (legacy: Prepend + Replace normalizer).\n"
    "\n"
    "common: -h/--help, --version; '-' for stdin/stdout.\n";

// ---------------------------------------------------------------------------------------------
// Reading documents

typedef enum { IN_FILE, IN_LINES, IN_JSONL } InputFormat;

typedef struct {
    char **paths;
    int n_paths, cur;
    FILE *f;
    InputFormat forced;  // IN_FILE = by extension
    int forced_set;
    InputFormat fmt;
    const char *field;
    const char *ids_field;  // JSONL field with token ids (already tokenized documents)
    uint64_t doc_index;  // global index of the next document
    uint64_t line_no;
    uint64_t bytes_read;
    char *line;
    size_t line_cap;
} DocReader;

typedef struct {
    char *text;
    size_t len;
    uint64_t doc_id;
    const char *path;
    uint64_t line_no;
    TokIds ids;
    uint32_t *given_ids;  // --ids-field: ids read from the input instead of text
    size_t n_given;
    char err[256];
} Doc;

static InputFormat format_for(const DocReader *r, const char *path) {
    if (r->forced_set) return r->forced;
    size_t n = strlen(path);
    if (n >= 6 && !strcmp(path + n - 6, ".jsonl")) return IN_JSONL;
    return IN_FILE;
}

// Reads the next document into d (text malloc'd). Returns 0 at the end of all inputs.
static int reader_next(DocReader *r, Doc *d) {
    for (;;) {
        if (!r->f) {
            if (r->cur >= r->n_paths) return 0;
            const char *p = r->paths[r->cur];
            r->f = cli_open_in(p);
            r->fmt = format_for(r, p);
            r->line_no = 0;
        }
        const char *path = r->paths[r->cur];
        if (r->fmt == IN_FILE) {
            size_t cap = 1 << 16, n = 0, got;
            char *buf = xmalloc(cap);
            while ((got = fread(buf + n, 1, cap - n, r->f)) > 0) {
                n += got;
                if (n == cap) buf = xrealloc(buf, cap *= 2);
            }
            if (ferror(r->f)) fatal("%s: read error", path);
            if (r->f != stdin) fclose(r->f);
            r->f = NULL;
            r->cur++;
            r->bytes_read += n;
            *d = (Doc){.text = buf, .len = n, .doc_id = r->doc_index++, .path = path, .line_no = 0};
            return 1;
        }
        ssize_t n = getline(&r->line, &r->line_cap, r->f);
        if (n < 0) {
            if (ferror(r->f)) fatal("%s: read error", path);
            if (r->f != stdin) fclose(r->f);
            r->f = NULL;
            r->cur++;
            continue;
        }
        r->line_no++;
        r->bytes_read += (uint64_t)n;
        if (r->fmt == IN_LINES) {
            size_t len = (size_t)n;
            if (len && r->line[len - 1] == '\n') len--;
            char *t = xmalloc(len + 1);
            memcpy(t, r->line, len);
            *d = (Doc){.text = t, .len = len, .doc_id = r->doc_index++, .path = path, .line_no = r->line_no};
            return 1;
        }
        // JSONL: skip blank lines; the field must be a string (or the ids field an array of ids).
        JsonlDoc jd;
        Error e;
        const char *field = r->ids_field ? r->ids_field : r->field;
        int rc = jsonl_parse_line(r->line, (size_t)n, field, r->ids_field != NULL, &jd, &e);
        if (rc < 0) fatal("%s:%llu: %s", path, (unsigned long long)r->line_no, e.msg);
        if (rc == 0) continue;
        *d = (Doc){.text = jd.text, .len = jd.len, .doc_id = r->doc_index++, .path = path, .line_no = r->line_no,
                   .given_ids = jd.ids, .n_given = jd.n_ids};
        return 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Parallel encoding of a batch of documents

typedef struct {
    const Tokenizer *tok;  // NULL when packing given ids without a tokenizer
    uint32_t vocab_size;
    TokEncodeOptions opt;
    int utf8_replace;
    int64_t bos, eos;  // -1 = none
    Doc *docs;
    size_t n_docs;
    atomic_size_t next;
} EncodeJob;

static void encode_doc(EncodeJob *job, TokScratch *s, Doc *d) {
    Error e;
    d->ids.n = 0;
    d->err[0] = 0;
    if (d->given_ids) {  // already tokenized: validate against the tokenizer's vocabulary
        for (size_t i = 0; i < d->n_given; i++) {
            if (d->given_ids[i] >= job->vocab_size) {
                snprintf(d->err, sizeof d->err, "token id %u >= vocabulary size %u", d->given_ids[i], job->vocab_size);
                return;
            }
            tokids_push(&d->ids, d->given_ids[i]);
        }
        return;
    }
    const char *text = d->text;
    size_t len = d->len;
    char *fixed = NULL;
    if (job->utf8_replace && utf8_valid_prefix((const unsigned char *)text, len) != len) {
        fixed = xmalloc(3 * len + 1);
        len = utf8_lossy((const unsigned char *)text, len, fixed);
        text = fixed;
    }
    if (job->bos >= 0) tokids_push(&d->ids, (uint32_t)job->bos);
    if (tokenizer_encode(job->tok, s, text, len, &job->opt, &d->ids, &e)) {
        memcpy(d->err, e.msg, sizeof d->err - 1);  // messages are short; keep what fits
        d->err[sizeof d->err - 1] = 0;
    }
    if (job->eos >= 0) tokids_push(&d->ids, (uint32_t)job->eos);
    free(fixed);
}

static void *encode_worker(void *arg) {
    EncodeJob *job = arg;
    TokScratch *s = tokscratch_new();
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->n_docs) break;
        encode_doc(job, s, &job->docs[i]);
    }
    tokscratch_free(s);
    return NULL;
}

static void encode_batch(EncodeJob *job, int threads) {
    atomic_store(&job->next, 0);
    if (threads <= 1 || job->n_docs < 2) {
        encode_worker(job);
        return;
    }
    pthread_t tid[256];
    int n = threads < 256 ? threads : 256;
    for (int i = 0; i < n; i++)
        if (pthread_create(&tid[i], NULL, encode_worker, job)) fatal("cannot start thread");
    for (int i = 0; i < n; i++) pthread_join(tid[i], NULL);
}

static int64_t parse_token_arg(const Tokenizer *t, const char *opt, const char *v) {
    long long id;
    if (!parse_int_strict(v, LLONG_MIN, LLONG_MAX, &id)) {
        if (id < 0 || id >= tokenizer_vocab_size(t)) fatal("%s: id %lld is outside the vocabulary", opt, id);
        return id;
    }
    int64_t r = tokenizer_token_to_id(t, v, strlen(v));
    if (r < 0) fatal("%s: '%s' is not a token of the tokenizer", opt, v);
    return r;
}

static Tokenizer *load_tokenizer_or_die(const char *arg, uint64_t *hash) {
    if (!arg) fatal("missing -t/--tokenizer tokenizer.json");
    char *path = tokenizer_resolve_cli("tok", arg);  // a file, a directory's, or a cached model's
    Error e;
    Tokenizer *t = tokenizer_load(path, &e);
    if (!t) fatal_err(&e);
    if (hash) *hash = CLTKIT_HASH_OFFSET;
    if (hash && fnv1a64_file(path, hash, &e)) fatal_err(&e);
    free(path);
    return t;
}

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int cmd_encode(int argc, char **argv) {
    static const struct option opts[] = {
        {"tokenizer", required_argument, 0, 't'}, {"output", required_argument, 0, 'o'},
        {"field", required_argument, 0, 'f'},     {"jsonl", no_argument, 0, 'J'},
        {"ids-field", required_argument, 0, 'i'},
        {"lines", no_argument, 0, 'L'},           {"special", no_argument, 0, 'S'},
        {"add-special", no_argument, 0, 'A'},     {"bos", required_argument, 0, 'B'},
        {"eos", required_argument, 0, 'E'},       {"utf8-replace", no_argument, 0, 'U'},
        {"shard", required_argument, 0, 's'},     {"threads", required_argument, 0, 'j'},
        {"chunk-tokens", required_argument, 0, 'c'}, {"zstd-level", required_argument, 0, 'z'},
        {"vocab-size", required_argument, 0, 'V'}, {0, 0, 0, 0}};
    const char *tok_path = NULL, *out_path = NULL, *bos = NULL, *eos = NULL;
    uint32_t vocab_override = 0;
    DocReader r = {.field = "text"};
    EncodeJob job = {.bos = -1, .eos = -1};
    int shard_i = 0, shard_n = 1, threads = default_threads();
    TokShardWriterOptions wopt = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:o:j:", opts, NULL)) != -1) {
        switch (c) {
            case 't': tok_path = optarg; break;
            case 'o': out_path = optarg; break;
            case 'f': r.field = optarg; break;
            case 'i': r.ids_field = optarg; r.forced = IN_JSONL; r.forced_set = 1; break;
            case 'J': r.forced = IN_JSONL; r.forced_set = 1; break;
            case 'L': r.forced = IN_LINES; r.forced_set = 1; break;
            case 'S': job.opt.match_special = 1; break;
            case 'A': job.opt.add_special = 1; break;
            case 'B': bos = optarg; break;
            case 'E': eos = optarg; break;
            case 'U': job.utf8_replace = 1; break;
            case 's': cli_parse_shard("--shard", optarg, &shard_i, &shard_n); break;
            case 'j': threads = (int)cli_parse_int("--threads", optarg, 1, 256); break;
            case 'c': wopt.chunk_tokens = (uint32_t)cli_parse_int("--chunk-tokens", optarg, 1, 1 << 24); break;
            case 'z': wopt.zstd_level = (int)cli_parse_int("--zstd-level", optarg, 1, 22); break;
            case 'V': vocab_override = (uint32_t)cli_parse_int("--vocab-size", optarg, 1, 0xFFFFFFFFLL); break;
            default: cli_usage_error("tok encode", "bad option");
        }
    }
    if (!out_path) cli_usage_error("tok encode", "missing -o/--output");
    if (optind >= argc) cli_usage_error("tok encode", "no input files");
    r.paths = argv + optind;
    r.n_paths = argc - optind;
    cli_check_not_input(out_path, (const char *const *)r.paths, r.n_paths);
    cli_check_not_input(out_path, &tok_path, 1);

    uint64_t tok_hash = 0;
    Tokenizer *tok = NULL;
    if (tok_path || !r.ids_field) {
        tok = load_tokenizer_or_die(tok_path, &tok_hash);
        job.vocab_size = tokenizer_vocab_size(tok);
        if (bos) job.bos = parse_token_arg(tok, "--bos", bos);
        if (eos) job.eos = parse_token_arg(tok, "--eos", eos);
    } else if (!vocab_override) {
        cli_usage_error("tok encode", "--ids-field without -t needs --vocab-size");
    } else if (bos || eos) {
        cli_usage_error("tok encode", "--bos/--eos need a tokenizer (-t)");
    }
    if (vocab_override) job.vocab_size = vocab_override;
    job.tok = tok;

    json_t *meta = json_object();
    json_object_set_new(meta, "tool", json_string("tok encode"));
    json_object_set_new(meta, "version", json_string(CLTKIT_VERSION));
    json_object_set_new(meta, "tokenizer", tok_path ? json_string(tok_path) : json_null());
    json_t *inputs = json_array();
    for (int i = 0; i < r.n_paths; i++) json_array_append_new(inputs, json_string(r.paths[i]));
    json_object_set_new(meta, "inputs", inputs);
    json_object_set_new(meta, "field", json_string(r.field));
    json_object_set_new(meta, "shard_index", json_integer(shard_i));
    json_object_set_new(meta, "shard_count", json_integer(shard_n));
    json_object_set_new(meta, "match_special", json_boolean(job.opt.match_special));
    json_object_set_new(meta, "add_special", json_boolean(job.opt.add_special));
    json_object_set_new(meta, "bos_id", job.bos >= 0 ? json_integer(job.bos) : json_null());
    json_object_set_new(meta, "eos_id", job.eos >= 0 ? json_integer(job.eos) : json_null());
    json_object_set_new(meta, "utf8_replace", json_boolean(job.utf8_replace));
    char *meta_text = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(meta);
    wopt.vocab_size = job.vocab_size;
    wopt.tokenizer_hash = tok_hash;
    wopt.meta_json = meta_text;

    Error e;
    TokShardWriter *w = tokshard_writer_open(out_path, &wopt, &e);
    if (!w) fatal_err(&e);

    uint64_t total_bytes = 0;
    for (int i = 0; i < r.n_paths; i++) {
        struct stat st;
        if (strcmp(r.paths[i], "-") && stat(r.paths[i], &st) == 0) total_bytes += (uint64_t)st.st_size;
    }
    Progress prog;
    progress_init(&prog, "tok encode", "MB", 1e6, total_bytes);

    // Batches bound memory: at most ~16 MB of text (or 16384 documents) in flight.
    const size_t batch_bytes = 16u << 20, batch_docs = 16384;
    Doc *docs = xcalloc(batch_docs, sizeof *docs);
    uint64_t n_docs = 0, n_tokens = 0;
    double t0 = now_seconds();
    for (;;) {
        size_t nd = 0, bytes = 0;
        Doc d;
        while (nd < batch_docs && bytes < batch_bytes && reader_next(&r, &d)) {
            if (d.doc_id % (uint64_t)shard_n != (uint64_t)shard_i) { free(d.text); free(d.given_ids); continue; }
            TokIds keep = docs[nd].ids;
            docs[nd] = d;
            docs[nd].ids = keep;
            bytes += d.len;
            nd++;
        }
        if (!nd) break;
        job.docs = docs;
        job.n_docs = nd;
        encode_batch(&job, threads);
        for (size_t i = 0; i < nd; i++) {
            Doc *x = &docs[i];
            if (x->err[0]) {
                tokshard_writer_abort(w);
                if (x->line_no)
                    fatal("%s:%llu: %s%s", x->path, (unsigned long long)x->line_no, x->err,
                          x->given_ids ? "" : " (use --utf8-replace to substitute U+FFFD)");
                fatal("%s: %s%s", x->path, x->err, x->given_ids ? "" : " (use --utf8-replace to substitute U+FFFD)");
            }
            if (tokshard_write_doc(w, x->doc_id, x->ids.ids, x->ids.n, &e)) {
                tokshard_writer_abort(w);
                fatal_err(&e);
            }
            n_docs++;
            n_tokens += x->ids.n;
            free(x->text);
            free(x->given_ids);
            x->text = NULL;
            x->given_ids = NULL;
        }
        progress_update(&prog, r.bytes_read);
    }
    progress_finish(&prog);
    if (tokshard_writer_close(w, &e)) fatal_err(&e);
    double dt = now_seconds() - t0;
    fprintf(stderr, "tok encode: %llu documents, %llu tokens, %.1f MB in %.2f s (%.2f MB/s, %d threads)\n",
            (unsigned long long)n_docs, (unsigned long long)n_tokens, (double)r.bytes_read / 1e6, dt,
            dt > 0 ? (double)r.bytes_read / 1e6 / dt : 0, threads);
    for (size_t i = 0; i < batch_docs; i++) tokids_free(&docs[i].ids);
    free(docs);
    free(r.line);
    free(meta_text);
    tokenizer_free(tok);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// decode / ids / info

static void print_json_string(FILE *out, const char *s, size_t len) {
    json_t *j = json_stringn(s, len);
    if (!j) {  // not valid UTF-8 (cannot happen after lossy decoding); print as escaped bytes
        fputs("\"\"", out);
        return;
    }
    char *d = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    fputs(d, out);
    free(d);
    json_decref(j);
}

// Parses whitespace/comma separated ids, optionally wrapped in [ ].
static void parse_id_list(const char *text, TokIds *ids) {
    long long *v;
    size_t n = cli_parse_int_list("--ids", text, 0, 0xFFFFFFFFLL, &v);
    for (size_t i = 0; i < n; i++) tokids_push(ids, (uint32_t)v[i]);
    free(v);
}

static char *read_all(FILE *f, const char *path, size_t *len) {
    size_t cap = 1 << 16, n = 0, got;
    char *buf = xmalloc(cap + 1);
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = xrealloc(buf, (cap *= 2) + 1);
    }
    if (ferror(f)) fatal("%s: read error", path);
    buf[n] = 0;
    *len = n;
    return buf;
}

// Calls fn for every document of the shard, in order; a read error is fatal (names the file).
typedef void (*DocFn)(void *ctx, uint64_t doc_id, const uint32_t *ids, size_t n);
static void for_each_doc(TokShard *sh, DocFn fn, void *ctx) {
    TokDocIter it;
    tokdoc_iter_init(&it, sh);
    uint64_t doc_id;
    const uint32_t *ids;
    size_t n;
    int rc;
    Error e;
    while ((rc = tokdoc_iter_next(&it, &doc_id, &ids, &n, &e)) == 1) fn(ctx, doc_id, ids, n);
    if (rc < 0) fatal_err(&e);  // (the message names the shard)
    tokdoc_iter_free(&it);
}

typedef struct {
    const Tokenizer *tok;
    int skip, jsonl;
    const char *sep;
    FILE *out;
    const char *path;
} DecodeCtx;

static void decode_doc(void *ctx, uint64_t doc_id, const uint32_t *ids, size_t n) {
    DecodeCtx *c = ctx;
    char *text;
    size_t len;
    Error e;
    if (tokenizer_decode(c->tok, ids, n, c->skip, &text, &len, &e))
        fatal("%s: document %llu: %s", c->path, (unsigned long long)doc_id, e.msg);
    if (c->jsonl) {
        fprintf(c->out, "{\"doc_id\":%llu,\"text\":", (unsigned long long)doc_id);
        print_json_string(c->out, text, len);
        fputs("}\n", c->out);
    } else {
        fwrite(text, 1, len, c->out);
        fputs(c->sep, c->out);
    }
    free(text);
}

static int cmd_decode(int argc, char **argv) {
    static const struct option opts[] = {
        {"tokenizer", required_argument, 0, 't'}, {"skip-special", no_argument, 0, 'k'},
        {"jsonl", no_argument, 0, 'J'},           {"ids", required_argument, 0, 'i'},
        {"sep", required_argument, 0, 'p'},       {"output", required_argument, 0, 'o'},
        {0, 0, 0, 0}};
    const char *tok_path = NULL, *ids_arg = NULL, *sep = "\n", *out_path = "-";
    int skip = 0, jsonl = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:o:", opts, NULL)) != -1) {
        switch (c) {
            case 't': tok_path = optarg; break;
            case 'k': skip = 1; break;
            case 'J': jsonl = 1; break;
            case 'i': ids_arg = optarg; break;
            case 'p': sep = optarg; break;
            case 'o': out_path = optarg; break;
            default: cli_usage_error("tok decode", "bad option");
        }
    }
    Tokenizer *tok = load_tokenizer_or_die(tok_path, NULL);
    const char *inputs[2] = {tok_path, optind < argc ? argv[optind] : NULL};
    cli_check_not_input(out_path, inputs, 2);
    FILE *out = cli_open_out(out_path);
    Error e;
    char *text;
    size_t len;
    if (ids_arg) {
        TokIds ids = {0};
        if (!strcmp(ids_arg, "-")) {
            char *all = read_all(stdin, "stdin", &len);
            parse_id_list(all, &ids);
            free(all);
        } else {
            parse_id_list(ids_arg, &ids);
        }
        if (tokenizer_decode(tok, ids.ids, ids.n, skip, &text, &len, &e)) fatal("--ids: %s", e.msg);
        fwrite(text, 1, len, out);
        fputc('\n', out);
        free(text);
        tokids_free(&ids);
    } else {
        if (optind != argc - 1) cli_usage_error("tok decode", "give one shard or --ids");
        const char *path = argv[optind];
        TokShard sh;
        if (tokshard_open(&sh, path, &e)) fatal_err(&e);
        if (sh.vocab_size > tokenizer_vocab_size(tok))
            fatal("%s: shard vocab size %u exceeds the tokenizer's %u (wrong tokenizer?)", path, sh.vocab_size,
                  tokenizer_vocab_size(tok));
        DecodeCtx dc = {tok, skip, jsonl, sep, out, path};
        for_each_doc(&sh, decode_doc, &dc);
        tokshard_close(&sh);
    }
    if (ferror(out)) fatal("%s: write error", out_path);
    if (out != stdout) fcloseCheck(out, out_path);
    tokenizer_free(tok);
    return 0;
}

static int cmd_ids(int argc, char **argv) {
    static const struct option opts[] = {
        {"tokenizer", required_argument, 0, 't'}, {"special", no_argument, 0, 'S'},
        {"add-special", no_argument, 0, 'A'},     {"tokens", no_argument, 0, 'T'},
        {0, 0, 0, 0}};
    const char *tok_path = NULL;
    TokEncodeOptions opt = {0};
    int with_tokens = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
        switch (c) {
            case 't': tok_path = optarg; break;
            case 'S': opt.match_special = 1; break;
            case 'A': opt.add_special = 1; break;
            case 'T': with_tokens = 1; break;
            default: cli_usage_error("tok ids", "bad option");
        }
    }
    if (optind != argc - 1) cli_usage_error("tok ids", "give exactly one TEXT argument ('-' for stdin)");
    Tokenizer *tok = load_tokenizer_or_die(tok_path, NULL);
    size_t len;
    char *text;
    if (!strcmp(argv[optind], "-")) text = read_all(stdin, "stdin", &len);
    else { text = xstrdup(argv[optind]); len = strlen(text); }
    TokScratch *s = tokscratch_new();
    TokIds ids = {0};
    Error e;
    if (tokenizer_encode(tok, s, text, len, &opt, &ids, &e))
        fatal("%s: %s", strcmp(argv[optind], "-") ? "TEXT" : "stdin", e.msg);
    fputc('[', stdout);
    for (size_t i = 0; i < ids.n; i++) {
        if (i) fputs(", ", stdout);
        if (with_tokens) {
            size_t tl;
            const char *tk = tokenizer_id_to_token(tok, ids.ids[i], &tl);
            printf("[%u, ", ids.ids[i]);
            print_json_string(stdout, tk, tl);
            fputc(']', stdout);
        } else {
            printf("%u", ids.ids[i]);
        }
    }
    fputs("]\n", stdout);
    tokids_free(&ids);
    tokscratch_free(s);
    free(text);
    tokenizer_free(tok);
    return 0;
}

static void dump_doc(void *ctx, uint64_t doc_id, const uint32_t *ids, size_t n) {
    (void)ctx;
    printf("{\"doc_id\":%llu,\"ids\":[", (unsigned long long)doc_id);
    for (size_t i = 0; i < n; i++) printf(i ? ",%u" : "%u", ids[i]);
    fputs("]}\n", stdout);
}

static int cmd_dump(int argc, char **argv) {
    if (argc != 2) cli_usage_error("tok dump", "give one shard");
    TokShard sh;
    Error e;
    if (tokshard_open(&sh, argv[1], &e)) fatal_err(&e);
    for_each_doc(&sh, dump_doc, NULL);
    tokshard_close(&sh);
    if (fflush(stdout) || ferror(stdout)) fatal("stdout: write failed");
    return 0;
}

static int cmd_info(int argc, char **argv) {
    if (argc != 2) cli_usage_error("tok info", "give one shard");
    TokShard sh;
    Error e;
    if (tokshard_open(&sh, argv[1], &e)) fatal_err(&e);
    printf("{\"path\": ");
    print_json_string(stdout, argv[1], strlen(argv[1]));
    printf(", \"version\": %u, \"vocab_size\": %u, \"tokenizer_hash\": \"%016llx\", \"n_docs\": %llu, "
           "\"n_tokens\": %llu, \"n_chunks\": %llu, \"file_bytes\": %llu, \"meta\": %s}\n",
           sh.version, sh.vocab_size, (unsigned long long)sh.tokenizer_hash, (unsigned long long)sh.n_docs,
           (unsigned long long)sh.n_tokens, (unsigned long long)sh.n_chunks, (unsigned long long)sh.file_size,
           sh.meta_json && *sh.meta_json ? sh.meta_json : "{}");
    tokshard_close(&sh);
    return 0;
}

static int cmd_convert_spm(int argc, char **argv) {
    static const struct option opts[] = {{"output", required_argument, 0, 'o'}, {0, 0, 0, 0}};
    const char *out_path = "-";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (c == 'o') out_path = optarg;
        else cli_usage_error("tok convert-spm", "bad option");
    }
    if (optind != argc - 1) cli_usage_error("tok convert-spm", "give one SentencePiece .model file");
    cli_check_not_input(out_path, (const char *const *)argv + optind, 1);
    Error e;
    if (spm_convert_file(argv[optind], out_path, &e)) fatal_err(&e);
    return 0;
}

int main(int argc, char **argv) {
    cli_standard(argc, argv, "tok", USAGE);
    if (argc < 2) cli_usage_error("tok", "missing command");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help")) { fputs(USAGE, stdout); return 0; }
    if (!strcmp(cmd, "encode")) return cmd_encode(argc - 1, argv + 1);
    if (!strcmp(cmd, "decode")) return cmd_decode(argc - 1, argv + 1);
    if (!strcmp(cmd, "ids")) return cmd_ids(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "dump")) return cmd_dump(argc - 1, argv + 1);
    if (!strcmp(cmd, "convert-spm")) return cmd_convert_spm(argc - 1, argv + 1);
    cli_usage_error("tok", "unknown command '%s'", cmd);
}
