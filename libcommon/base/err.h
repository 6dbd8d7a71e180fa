// err.h — error reporting. Library code reports failures through an Error (a message that
// names the file and what is wrong) and returns -1, so it can be fuzzed and reused; tools turn
// an Error into one line on stderr and a non-zero exit with fatal().
#pragma once
#include <stddef.h>
#include <stdio.h>

typedef struct {
    char msg[1024];
} Error;

// Formats the message into e (if e is non-NULL) and returns -1, so `return err_set(e, ...)`.
int err_set(Error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prefixes an existing message: "prefix: old message".
int err_prefix(Error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Prints "<program>: <message>" on stderr and exits with status 1.
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
// fatal() with the Error's message.
void fatal_err(const Error *e) __attribute__((noreturn));
// Prints "<program>: warning: <message>" on stderr.
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Allocation that never returns NULL (out of memory is fatal).
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

// Checked stdio: a failure is fatal and names the path.
FILE *fopenCheck(const char *path, const char *mode);
void freadCheck(void *dst, size_t size, size_t count, FILE *f, const char *path);
void fwriteCheck(const void *src, size_t size, size_t count, FILE *f, const char *path);
void fcloseCheck(FILE *f, const char *path);
