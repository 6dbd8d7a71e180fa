// gguf-convert — a Llama GGUF (llama.cpp) to a Hugging Face model directory: model.safetensors
// (fp32), config.json, generation_config.json, tokenizer.json, tokenizer_config.json. `info`
// prints the file's header, metadata and tensor table instead (--info: the old spelling).
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "err.h"
#include "fileio.h"
#include "gguf.h"
#include "gguf_llama.h"

static const char USAGE[] =
    "usage: gguf-convert MODEL.gguf -o OUTDIR [--hf-tokenizer]\n"
    "       gguf-convert info MODEL.gguf     (header, metadata, tensors as JSON; --info: the same)\n"
    "\n"
    "Converts a Llama-architecture GGUF file (llama.cpp's format, versions 2 and 3) to a Hugging\n"
    "Face LlamaForCausalLM directory: OUTDIR/model.safetensors (every tensor dequantized to F32 —\n"
    "f32, f16, bf16, q8_0, q4_0, q4_1, q4_K, q6_K — with HF names and the q/k rows un-permuted from\n"
    "llama.cpp's RoPE order), config.json and generation_config.json from the llama.* metadata,\n"
    "tokenizer.json from the tokenizer.ggml.* metadata (byte-level BPE; pre-tokenizers smollm,\n"
    "gpt2, llama-bpe, qwen2) and tokenizer_config.json (special tokens, chat template).\n"
    "OUTDIR is created if missing; the files are written into a staging directory and switched\n"
    "into OUTDIR as one set (a killed conversion leaves the old files or all the new ones), and\n"
    "nothing is written unless the whole input checks out. fwd-acts and tok take OUTDIR as any model.\n"
    "\n"
    "options:\n"
    "  -o, --output OUTDIR   output directory (required unless info)\n"
    "  --hf-tokenizer        write the tokenizer transformers builds from a GGUF instead: the plain\n"
    "                        GPT-2 split, ignoring tokenizer.ggml.pre (for SmolLM2 it loses the\n"
    "                        digit split, so ids differ on some texts)\n"
    "  --info                = gguf-convert info: print header, metadata (arrays abbreviated) and\n"
    "                        tensors as JSON\n"
    "  -h, --help, --version\n";

// A metadata value as JSON; arrays longer than 8 show their first 8 elements and the count.
static json_t *value_json(const GgufValue *v) {
    switch (v->type) {
        case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64: return json_integer((json_int_t)v->u);
        case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64: return json_integer(v->i);
        case GGUF_BOOL: return json_boolean(v->u);
        case GGUF_F32: case GGUF_F64: return json_real(v->f);
        case GGUF_STRING: {
            size_t n = v->s.len > 200 ? 200 : (size_t)v->s.len;
            json_t *s = json_stringn(v->s.ptr, n);
            return s ? s : json_string("<not UTF-8>");
        }
        case GGUF_ARRAY: {
            json_t *items = json_array();
            uint64_t shown = v->arr.n < 8 ? v->arr.n : 8;
            for (uint64_t i = 0; i < shown; i++) {
                if (v->arr.items) json_array_append_new(items, value_json(&v->arr.items[i]));
                else if (v->arr.type == GGUF_F32 || v->arr.type == GGUF_F64)
                    json_array_append_new(items, json_real(gguf_array_float(v, i)));
                else json_array_append_new(items, json_integer(gguf_array_int(v, i)));
            }
            return json_pack("{s:s, s:I, s:o}", "array_of", gguf_value_type_name(v->arr.type), "n",
                             (json_int_t)v->arr.n, "first", items);
        }
        default: return json_null();
    }
}

static void print_info(const Gguf *g) {
    json_t *kv = json_object(), *tensors = json_array();
    for (uint64_t i = 0; i < g->n_kv; i++) json_object_set_new(kv, g->kv[i].key, value_json(&g->kv[i].value));
    json_t *counts = json_object();
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const GgufTensor *t = &g->tensors[i];
        const char *type = ggml_type_info(t->type)->name;
        json_t *ne = json_array();
        for (int d = 0; d < t->n_dims; d++) json_array_append_new(ne, json_integer((json_int_t)t->ne[d]));
        json_array_append_new(tensors, json_pack("{s:s, s:s, s:o, s:I, s:I}", "name", t->name, "type", type, "ne", ne,
                                                 "offset", (json_int_t)t->offset, "nbytes", (json_int_t)t->nbytes));
        json_object_set_new(counts, type, json_integer(json_integer_value(json_object_get(counts, type)) + 1));
    }
    json_t *root = json_pack("{s:s, s:i, s:i, s:I, s:I, s:I, s:o, s:o, s:o}", "file", g->path, "version", g->version,
                             "alignment", g->alignment, "data_offset", (json_int_t)g->data_offset, "n_kv",
                             (json_int_t)g->n_kv, "n_tensors", (json_int_t)g->n_tensors, "tensor_types", counts,
                             "metadata", kv, "tensors", tensors);
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s) fatal("could not serialize the info JSON");
    puts(s);
    free(s);
}

int main(int argc, char **argv) {
    cli_standard(argc, argv, "gguf-convert", USAGE);
    enum { OPT_HF_TOK = 256, OPT_INFO };
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"hf-tokenizer", no_argument, 0, OPT_HF_TOK},
                                         {"info", no_argument, 0, OPT_INFO},
                                         {0, 0, 0, 0}};
    const char *out_dir = NULL;
    static const char *const modes[] = {"info", NULL};
    int hf_tok = 0, info = cli_subcommand(&argc, &argv, modes) != NULL, c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
            case 'o': out_dir = optarg; break;
            case OPT_HF_TOK: hf_tok = 1; break;
            case OPT_INFO: info = 1; break;
            default: cli_usage_error("gguf-convert", "bad option");
        }
    }
    if (optind != argc - 1) cli_usage_error("gguf-convert", "give exactly one GGUF file");
    if (!info && !out_dir) cli_usage_error("gguf-convert", "missing -o OUTDIR");
    if (info && out_dir) cli_usage_error("gguf-convert", "info writes nothing; drop -o");
    const char *path = argv[optind];
    static const char *const outputs[] = {"model.safetensors", "config.json",           "generation_config.json",
                                          "tokenizer.json",    "tokenizer_config.json", NULL};
    if (out_dir) cli_check_dir_not_input(out_dir, outputs, &path, 1);

    Gguf g;
    Error e;
    if (gguf_open(&g, path, &e)) fatal_err(&e);
    if (info) {
        print_info(&g);
        gguf_close(&g);
        return 0;
    }
    GgufLlamaConfig cfg;
    if (gguf_llama_config(&g, &cfg, &e)) fatal_err(&e);  // checked before the directory is made
    // the files go into a staging directory switched into OUTDIR as one set (fileio.h DirTxn)
    DirTxn t;
    if (dir_txn_begin(&t, out_dir, &e)) fatal_err(&e);
    if (gguf_llama_write_hf(&g, t.stage, hf_tok, &e)) {
        dir_txn_abort(&t);
        fatal_err(&e);
    }
    if (dir_txn_commit(&t, &e)) fatal_err(&e);
    fprintf(stderr, "gguf-convert: %s -> %s (%llu tensors, %d layers, d %d, vocab %d, %s embeddings)\n", path, out_dir,
            (unsigned long long)g.n_tensors, cfg.n_layers, cfg.d_model, cfg.vocab_size, cfg.tied ? "tied" : "untied");
    gguf_close(&g);
    return 0;
}
