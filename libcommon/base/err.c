#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

int err_set(Error *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int err_prefix(Error *e, const char *fmt, ...) {
    if (!e) return -1;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t pl = strlen(prefix), cap = sizeof e->msg;
    if (pl + 2 >= cap) pl = cap - 3;
    memmove(e->msg + pl + 2, e->msg, cap - pl - 2);  // old message shifted right, truncated
    e->msg[cap - 1] = 0;
    memcpy(e->msg, prefix, pl);
    e->msg[pl] = ':';
    e->msg[pl + 1] = ' ';
    return -1;
}

void fatal(const char *fmt, ...) {
    // What stdout still holds goes out before the message; if it cannot (a full disk), this message
    // is the one the user sees: drop the rest so the exit-time check (cli.h) does not add a second.
    if (fflush(stdout) != 0 || ferror(stdout)) {
        __fpurge(stdout);
        clearerr(stdout);
    }
    fprintf(stderr, "%s: ", program_invocation_short_name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

void fatal_err(const Error *e) { fatal("%s", e->msg); }

void warn(const char *fmt, ...) {
    fprintf(stderr, "%s: warning: ", program_invocation_short_name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) fatal("out of memory allocating %zu bytes", n);
    return p;
}

void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) fatal("out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) fatal("out of memory reallocating %zu bytes", n);
    return q;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

FILE *fopenCheck(const char *path, const char *mode) {
    FILE *f = fopen(path, mode);
    if (!f) fatal("%s: cannot open: %s", path, strerror(errno));
    return f;
}

void freadCheck(void *dst, size_t size, size_t count, FILE *f, const char *path) {
    size_t got = fread(dst, size, count, f);
    if (got != count) {
        if (feof(f)) fatal("%s: truncated: expected %zu more bytes", path, (count - got) * size);
        fatal("%s: read error: %s", path, strerror(errno));
    }
}

void fwriteCheck(const void *src, size_t size, size_t count, FILE *f, const char *path) {
    if (fwrite(src, size, count, f) != count) fatal("%s: write error: %s", path, strerror(errno));
}

void fcloseCheck(FILE *f, const char *path) {
    if (fclose(f) != 0) fatal("%s: close error: %s", path, strerror(errno));
}
