#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void cli_version(const char *tool) { printf("%s (cltkit) %s\n", tool, CLTKIT_VERSION); }

void cli_standard(int argc, char **argv, const char *tool, const char *usage) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(argv[i], "--version")) {
            cli_version(tool);
            exit(0);
        }
    }
}

void cli_usage_error(const char *tool, const char *fmt, ...) {
    fprintf(stderr, "%s: ", tool);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see '%s --help')\n", tool);
    exit(2);
}

long long cli_parse_int(const char *option, const char *value, long long min, long long max) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end) fatal("%s: '%s' is not an integer", option, value);
    if (v < min || v > max) fatal("%s: %lld is out of range [%lld, %lld]", option, v, min, max);
    return v;
}

double cli_parse_double(const char *option, const char *value) {
    char *end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end) fatal("%s: '%s' is not a number", option, value);
    return v;
}

void cli_parse_shard(const char *option, const char *value, int *index, int *count) {
    int i = 0, n = 0, used = 0;
    if (sscanf(value, "%d/%d%n", &i, &n, &used) != 2 || value[used] || n < 1 || i < 0 || i >= n)
        fatal("%s: '%s' is not a shard 'i/N' with 0 <= i < N", option, value);
    *index = i;
    *count = n;
}

FILE *cli_open_in(const char *path) { return strcmp(path, "-") ? fopenCheck(path, "rb") : stdin; }
FILE *cli_open_out(const char *path) { return strcmp(path, "-") ? fopenCheck(path, "wb") : stdout; }
