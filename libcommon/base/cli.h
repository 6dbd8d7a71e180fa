// cli.h — the command-line conventions every tool shares: `--help` prints usage to stdout and
// exits 0, `--version` prints "<tool> <version>", long options through getopt_long, `-` means
// stdin/stdout, numbers are parsed strictly (a bad value is a one-line error naming the option).
#pragma once
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#define CLTKIT_VERSION "0.1.0"

// Handles --help/-h and --version if argv holds them before any subcommand argument; call first.
// usage is the full help text.
// Also makes a failed write to stdout (a full disk, /dev/full, a closed pipe's EIO) an error at exit:
// "<tool>: standard output: write error: ..." and status 1, whatever main returned.
void cli_standard(int argc, char **argv, const char *tool, const char *usage);
void cli_version(const char *tool);
// Modes are subcommands in every tool (`fwd-acts info`, `quant-acts report`): when argv[1] is one of
// the NULL-terminated names, removes it from argv (argv[0], the tool's name, stays first, so getopt
// still names the tool) and returns it; else NULL and argv untouched. A tool's old flag spellings
// of its modes (`--info`) stay accepted as aliases.
const char *cli_subcommand(int *argc, char ***argv, const char *const *names);
// Prints "<tool>: <msg> (see '<tool> --help')" on stderr, exits 2.
void cli_usage_error(const char *tool, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
// The options every tool names the same way: --max-tokens N is the tokens of input read (fwd-acts,
// feat-topk, quant-acts report); --max-new-tokens N the tokens generated (generate, interp-prompt,
// fwd-acts generate), as Hugging Face names them. A generating tool given --max-tokens calls this:
// a usage error naming the new option (an alias would silently keep two meanings).
void cli_max_tokens_renamed(const char *tool) __attribute__((noreturn));

// The one strict number parser every tool, reader and environment variable goes through: the whole
// string is one decimal number (no junk after it, no overflow), within [min, max]. Returns 0 or -1.
int parse_int_strict(const char *s, long long min, long long max, long long *out);
// A finite decimal or exponent number (no nan/inf, no hex floats, no junk). Returns 0 or -1.
int parse_double_strict(const char *s, double *out);

// The same for options: a bad value is fatal and names the option ("--lr: 'x' is not a number").
long long cli_parse_int(const char *option, const char *value, long long min, long long max);
double cli_parse_double(const char *option, const char *value, double min, double max);
// "--shard i/N": 0 <= i < N < 2^31.
void cli_parse_shard(const char *option, const char *value, int *index, int *count);
// A list of integers in [min, max] separated by spaces, tabs, newlines or commas, optionally in [ ]
// ("1 2 3", "[1, 2, 3]"); anything else is fatal and names the option and the bad item. Returns the
// count; *out is malloc'd (NULL for an empty list).
size_t cli_parse_int_list(const char *option, const char *value, long long min, long long max, long long **out);
// An environment variable as an integer in [min, max]; def when unset or empty; anything else is fatal.
long long cli_env_int(const char *name, long long def, long long min, long long max);

// Exits non-zero if an input and the output are the same file (same device and inode): writing would
// destroy the input. "-" and paths that do not exist yet are fine.
void cli_check_not_input(const char *out_path, const char *const *inputs, int n_inputs);
// The same for each dir/name of the NULL-terminated names a converter writes into dir.
void cli_check_dir_not_input(const char *dir, const char *const *names, const char *const *inputs, int n_inputs);
// "all" or a comma list of layers and ranges "0,2,5-7" below n_layers: fills layers (ascending,
// unique) and returns how many. A bad list is fatal and names the option.
int cli_parse_layers(const char *option, const char *spec, int n_layers, int *layers);

// Opens path for reading or writing; "-" is stdin/stdout. Failure is fatal and names the path.
FILE *cli_open_in(const char *path);
FILE *cli_open_out(const char *path);

// The path a tool uses for an option the user did not give: $env_name when set and non-empty, else
// <cache>/<rel> when it exists (cache: $CLTKIT_CACHE, default ~/.cache/cltkit; `make demo` links its
// outputs at <cache>/demo). NULL when neither. malloc'd; the caller says on stderr which it used.
char *cli_default_path(const char *env_name, const char *rel);
