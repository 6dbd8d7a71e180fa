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
void cli_standard(int argc, char **argv, const char *tool, const char *usage);
void cli_version(const char *tool);
// Prints "<tool>: <msg> (see '<tool> --help')" on stderr, exits 2.
void cli_usage_error(const char *tool, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

long long cli_parse_int(const char *option, const char *value, long long min, long long max);
double cli_parse_double(const char *option, const char *value);
// "--shard i/N": 0 <= i < N.
void cli_parse_shard(const char *option, const char *value, int *index, int *count);
// "all" or a comma list of layers and ranges "0,2,5-7" below n_layers: fills layers (ascending,
// unique) and returns how many. A bad list is fatal and names the option.
int cli_parse_layers(const char *option, const char *spec, int n_layers, int *layers);

// Opens path for reading or writing; "-" is stdin/stdout. Failure is fatal and names the path.
FILE *cli_open_in(const char *path);
FILE *cli_open_out(const char *path);
