#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

void cli_version(const char *tool) { printf("%s (cltkit) %s\n", tool, CLTKIT_VERSION); }

// At exit: flush stdout and report what went wrong with it (gnulib's close_stdout). An EPIPE is
// a reader that left early (`| head`), not a failure.
static void close_stdout(void) {
    int bad = fflush(stdout) != 0 || ferror(stdout);
    int err = errno;
    if (fclose(stdout) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    if (bad && err != EPIPE) {
        fprintf(stderr, "%s: standard output: write error: %s\n", program_invocation_short_name,
                err ? strerror(err) : "unknown error");
        _exit(1);
    }
}

void cli_standard(int argc, char **argv, const char *tool, const char *usage) {
    atexit(close_stdout);
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

void cli_max_tokens_renamed(const char *tool) {
    cli_usage_error(tool, "--max-tokens is now --max-new-tokens (the tokens generated; --max-tokens is the tokens "
                          "of input read, in fwd-acts, feat-topk and quant-acts)");
}

const char *cli_subcommand(int *argc, char ***argv, const char *const *names) {
    if (*argc < 2) return NULL;
    for (const char *const *n = names; *n; n++)
        if (!strcmp((*argv)[1], *n)) {
            (*argv)[1] = (*argv)[0];
            (*argv)++;
            (*argc)--;
            return *n;
        }
    return NULL;
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

int parse_int_strict(const char *s, long long min, long long max, long long *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return -1;  // strtoll would skip leading blanks
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int parse_double_strict(const char *s, double *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    for (const char *p = s; *p; p++)  // decimal only: strtod would also take "nan", "inf" and "0x1p3"
        if (!strchr("0123456789+-.eE", *p)) return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    // (an underflow to 0 is a number; an overflow is not)
    if (end == s || *end || !isfinite(v) || (errno == ERANGE && fabs(v) > 1)) return -1;
    *out = v;
    return 0;
}

long long cli_parse_int(const char *option, const char *value, long long min, long long max) {
    long long v;
    if (parse_int_strict(value, LLONG_MIN, LLONG_MAX, &v)) fatal("%s: '%s' is not an integer", option, value);
    if (v < min || v > max) fatal("%s: %lld is out of range [%lld, %lld]", option, v, min, max);
    return v;
}

double cli_parse_double(const char *option, const char *value, double min, double max) {
    double v;
    if (parse_double_strict(value, &v)) fatal("%s: '%s' is not a finite number", option, value);
    if (v < min || v > max) fatal("%s: %g is out of range [%g, %g]", option, v, min, max);
    return v;
}

void cli_parse_shard(const char *option, const char *value, int *index, int *count) {
    const char *slash = strchr(value, '/');
    long long i = -1, n = 0;
    char head[32];
    size_t hl = slash ? (size_t)(slash - value) : 0;
    int bad = !slash || hl >= sizeof head;
    if (!bad) {
        memcpy(head, value, hl);
        head[hl] = 0;
        bad = parse_int_strict(head, 0, INT_MAX, &i) || parse_int_strict(slash + 1, 1, INT_MAX, &n) || i >= n;
    }
    if (bad)
        fatal("%s: '%s' is not a shard 'i/N' with 0 <= i < N <= %d", option, value, INT_MAX);
    *index = (int)i;
    *count = (int)n;
}

size_t cli_parse_int_list(const char *option, const char *value, long long min, long long max, long long **out) {
    static const char SEP[] = " \t\r\n,[]";
    size_t n = 0, cap = 0;
    long long *v = NULL;
    const char *p = value;
    for (;;) {
        p += strspn(p, SEP);
        if (!*p) break;
        size_t len = strcspn(p, SEP);
        char item[32];
        long long x;
        int bad = len >= sizeof item;
        if (!bad) {
            memcpy(item, p, len);
            item[len] = 0;
            bad = parse_int_strict(item, LLONG_MIN, LLONG_MAX, &x);
        }
        if (bad) fatal("%s: '%.*s' is not an integer", option, (int)(len < 40 ? len : 40), p);
        if (x < min || x > max) fatal("%s: %lld is out of range [%lld, %lld]", option, x, min, max);
        if (n == cap) v = xrealloc(v, (cap = cap ? 2 * cap : 64) * sizeof *v);
        v[n++] = x;
        p += len;
    }
    *out = v;
    return n;
}

long long cli_env_int(const char *name, long long def, long long min, long long max) {
    const char *s = getenv(name);
    if (!s || !*s) return def;
    long long v;
    if (parse_int_strict(s, min, max, &v))
        fatal("environment %s='%s' is not an integer in [%lld, %lld]", name, s, min, max);
    return v;
}

void cli_check_not_input(const char *out_path, const char *const *inputs, int n_inputs) {
    struct stat so, si;
    if (!out_path || !strcmp(out_path, "-") || stat(out_path, &so) != 0) return;
    for (int i = 0; i < n_inputs; i++) {
        if (!inputs[i] || !strcmp(inputs[i], "-") || stat(inputs[i], &si) != 0) continue;
        if (so.st_dev == si.st_dev && so.st_ino == si.st_ino)
            fatal("%s: the output is the input %s: refusing to overwrite it", out_path, inputs[i]);
    }
}

void cli_check_dir_not_input(const char *dir, const char *const *names, const char *const *inputs, int n_inputs) {
    char path[4096];
    for (; *names; names++) {
        snprintf(path, sizeof path, "%s/%s", dir, *names);
        cli_check_not_input(path, inputs, n_inputs);
    }
}

int cli_parse_layers(const char *option, const char *spec, int n_layers, int *layers) {
    if (!strcmp(spec, "all")) {
        for (int l = 0; l < n_layers; l++) layers[l] = l;
        return n_layers;
    }
    char *sel = xcalloc((size_t)n_layers, 1);
    const char *p = spec;
    while (*p) {
        char item[64], *dash;
        size_t len = strcspn(p, ",");
        if (len >= sizeof item) fatal("%s: '%s' is not a layer list like 0,2,5-7", option, spec);
        memcpy(item, p, len);
        item[len] = 0;
        long long a, b;
        if ((dash = strchr(item + 1, '-'))) *dash = 0;  // (item + 1: a leading '-' is a sign, refused below)
        if (parse_int_strict(item, 0, INT_MAX, &a) || parse_int_strict(dash ? dash + 1 : item, 0, INT_MAX, &b))
            fatal("%s: '%s' is not a layer list like 0,2,5-7", option, spec);
        if (b >= n_layers || a > b)
            fatal("%s: %lld-%lld is outside the model's layers 0-%d", option, a, b, n_layers - 1);
        for (long long l = a; l <= b; l++) sel[l] = 1;
        p += len;
        if (*p == ',' && !*++p) fatal("%s: '%s' ends with a comma", option, spec);
    }
    int n = 0;
    for (int l = 0; l < n_layers; l++)
        if (sel[l]) layers[n++] = l;
    free(sel);
    if (!n) fatal("%s: '%s' selects no layer", option, spec);
    return n;
}

FILE *cli_open_in(const char *path) { return strcmp(path, "-") ? fopenCheck(path, "rb") : stdin; }
FILE *cli_open_out(const char *path) { return strcmp(path, "-") ? fopenCheck(path, "wb") : stdout; }

char *cli_default_path(const char *env_name, const char *rel) {
    const char *v = getenv(env_name);
    if (v && *v) return xstrdup(v);
    const char *cache = getenv("CLTKIT_CACHE"), *home = getenv("HOME");
    char path[4096];
    if (cache && *cache) snprintf(path, sizeof path, "%s/%s", cache, rel);
    else if (home && *home) snprintf(path, sizeof path, "%s/.cache/cltkit/%s", home, rel);
    else return NULL;
    return access(path, F_OK) == 0 ? xstrdup(path) : NULL;
}
