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

int cli_parse_layers(const char *option, const char *spec, int n_layers, int *layers) {
    if (!strcmp(spec, "all")) {
        for (int l = 0; l < n_layers; l++) layers[l] = l;
        return n_layers;
    }
    char *sel = xcalloc((size_t)n_layers, 1);
    const char *p = spec;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p) fatal("%s: '%s' is not a layer list like 0,2,5-7", option, spec);
        if (*end == '-') {
            const char *q = end + 1;
            b = strtol(q, &end, 10);
            if (end == q) fatal("%s: '%s' is not a layer list like 0,2,5-7", option, spec);
        }
        if (a < 0 || b >= n_layers || a > b) fatal("%s: %ld-%ld is outside the model's layers 0-%d", option, a, b, n_layers - 1);
        for (long l = a; l <= b; l++) sel[l] = 1;
        p = end;
        if (*p == ',') p++;
        else if (*p) fatal("%s: '%s' is not a layer list like 0,2,5-7", option, spec);
    }
    int n = 0;
    for (int l = 0; l < n_layers; l++)
        if (sel[l]) layers[n++] = l;
    free(sel);
    return n;
}

FILE *cli_open_in(const char *path) { return strcmp(path, "-") ? fopenCheck(path, "rb") : stdin; }
FILE *cli_open_out(const char *path) { return strcmp(path, "-") ? fopenCheck(path, "wb") : stdout; }
