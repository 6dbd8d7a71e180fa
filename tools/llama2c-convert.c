// llama2c-convert — a llama2.c checkpoint (+ its SentencePiece model) to a Hugging Face model
// directory: model.safetensors, config.json, generation_config.json, tokenizer.json.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "err.h"
#include "fileio.h"
#include "llama2c.h"
#include "spm.h"

static const char USAGE[] =
    "usage: llama2c-convert CHECKPOINT.bin [--tokenizer TOK.model] -o OUTDIR\n"
    "\n"
    "Converts a llama2.c checkpoint (legacy version 0 or version 1 \"ak42\", fp32) to a Hugging Face\n"
    "LlamaForCausalLM directory: OUTDIR/model.safetensors (F32; q/k rows permuted from llama2.c's\n"
    "interleaved RoPE to HF's rotate_half), config.json, generation_config.json and, with\n"
    "--tokenizer, tokenizer.json converted from the SentencePiece model (as `tok convert-spm`).\n"
    "OUTDIR is created if missing; the files are written into a staging directory and switched\n"
    "into OUTDIR as one set (a killed conversion leaves the old files or all the new ones), and\n"
    "nothing is written unless both inputs are valid.\n"
    "\n"
    "options:\n"
    "  -t, --tokenizer TOK.model  SentencePiece model (e.g. llama2.c tok512.model)\n"
    "  -o, --output OUTDIR        output directory (required)\n"
    "  -h, --help, --version\n";

// Parses the tokenizer once before anything is written, so a bad .model (or one whose vocab
// does not fit the checkpoint) leaves no half-converted directory.
static void check_tokenizer(const char *path, int vocab_size) {
    SpmModel sp;
    Error e;
    if (spm_load(&sp, path, &e)) fatal_err(&e);
    if (sp.n_pieces != vocab_size)
        fatal("%s: tokenizer has %d pieces but the checkpoint's vocab_size is %d", path, sp.n_pieces, vocab_size);
    spm_free(&sp);
}

int main(int argc, char **argv) {
    cli_standard(argc, argv, "llama2c-convert", USAGE);
    static const struct option opts[] = {
        {"tokenizer", required_argument, 0, 't'}, {"output", required_argument, 0, 'o'}, {0, 0, 0, 0}};
    const char *tok_path = NULL, *out_dir = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "t:o:", opts, NULL)) != -1) {
        switch (c) {
            case 't': tok_path = optarg; break;
            case 'o': out_dir = optarg; break;
            default: cli_usage_error("llama2c-convert", "bad option");
        }
    }
    if (optind != argc - 1) cli_usage_error("llama2c-convert", "give exactly one llama2.c checkpoint");
    if (!out_dir) cli_usage_error("llama2c-convert", "missing -o OUTDIR");
    const char *ckpt = argv[optind];

    static const char *const outputs[] = {"model.safetensors", "config.json", "generation_config.json",
                                          "tokenizer.json", NULL};
    const char *inputs[2] = {ckpt, tok_path};
    cli_check_dir_not_input(out_dir, outputs, inputs, 2);
    Llama2cModel m;
    Error e;
    if (llama2c_open(&m, ckpt, &e)) fatal_err(&e);
    if (tok_path) check_tokenizer(tok_path, m.cfg.vocab_size);

    // the files go into a staging directory switched into OUTDIR as one set (fileio.h DirTxn): a
    // kill never leaves a new tokenizer.json beside old weights
    DirTxn t;
    if (dir_txn_begin(&t, out_dir, &e)) fatal_err(&e);
    int rc = 0;
    if (tok_path) {
        char path[4400];
        snprintf(path, sizeof path, "%s/tokenizer.json", t.stage);
        rc = spm_convert_file(tok_path, path, &e);
    }
    if (!rc) rc = llama2c_write_hf(&m, t.stage, &e);
    if (rc) dir_txn_abort(&t);
    if (rc || dir_txn_commit(&t, &e)) fatal_err(&e);
    fprintf(stderr, "llama2c-convert: %s -> %s (%d tensors, %s embeddings)\n", ckpt, out_dir, m.n_tensors,
            m.cfg.shared_classifier ? "tied" : "untied");
    llama2c_free(&m);
    return 0;
}
