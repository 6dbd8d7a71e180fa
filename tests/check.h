// check.h — the unit-test harness. A test binary defines test functions, runs them with
// RUN_TEST, and ends with `return test_summary();`. Each test prints one line, "ok <name>" or
// "FAIL <name>: <file:line> <what>", which tests/run.sh counts into "N passed, N failed".
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int passed, failed;
    int current_failures;  // failed checks inside the running test
    char skip_reason[1200];   // set by SKIP_TEST: the running test did not run, and why
} TestState;

static TestState test_state;

#define CHECK(cond, ...)                                                           \
    do {                                                                           \
        if (!(cond)) {                                                             \
            if (test_state.current_failures++ < 5) {                               \
                fprintf(stdout, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
                fprintf(stdout, __VA_ARGS__);                                      \
                fputc('\n', stdout);                                               \
            }                                                                      \
        }                                                                          \
    } while (0)

#define CHECK_NEAR(a, b, rel_tol)                                                          \
    CHECK(fabs((double)(a) - (double)(b)) <= (rel_tol) * fmax(1e-30, fmax(fabs((double)(a)), fabs((double)(b)))), \
          "%.9g vs %.9g", (double)(a), (double)(b))

#define RUN_TEST(fn)                                              \
    do {                                                          \
        test_state.current_failures = 0;                          \
        test_state.skip_reason[0] = 0;                            \
        fn();                                                     \
        if (test_state.current_failures) {                        \
            printf("FAIL %s (%d failed checks)\n", #fn, test_state.current_failures); \
            test_state.failed++;                                  \
        } else if (test_state.skip_reason[0]) {                   \
            printf("SKIP %s: %s\n", #fn, test_state.skip_reason); \
        } else {                                                  \
            printf("ok %s\n", #fn);                               \
            test_state.passed++;                                  \
        }                                                         \
        fflush(stdout);                                           \
    } while (0)

// Marks the running test as skipped (call, then return): RUN_TEST prints "SKIP <name>: <why>".
#define SKIP_TEST(...) snprintf(test_state.skip_reason, sizeof test_state.skip_reason, __VA_ARGS__)

// The tests' one seeded generator: xorshift64* (Vigna) on a uint64_t state, which must start
// nonzero. Every test draws its random data from these, so a seed names the same data everywhere.
static inline uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}
static inline uint32_t rng_u32(uint64_t *s) { return (uint32_t)(rng_next(s) >> 32); }
static inline double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }
// uniform in [-amp, amp)
static inline float rng_unif(uint64_t *s, float amp) {
    return amp * ((float)(rng_u32(s) >> 8) / 8388608.0f - 1.0f);
}
static inline double rng_normal(uint64_t *s) {  // Box-Muller
    double u = rng_unit(s), v = rng_unit(s);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static inline int test_summary(void) { return test_state.failed ? 1 : 0; }

// Where the test data outside the repository lives: $CLTKIT_SHARED; else ../shared from the
// project root if it exists; else where `make test-data` puts it, $CLTKIT_CACHE/shared
// (default ~/.cache/cltkit/shared). tests/lib.sh decides the same way.
static inline const char *test_shared_dir(void) {
    static char cache[1024];  // the cache path, built once per test binary
    const char *env = getenv("CLTKIT_SHARED");
    if (env && *env) return env;
    if (access("../shared", F_OK) == 0) return "../shared";
    const char *cache_env = getenv("CLTKIT_CACHE"), *home = getenv("HOME");
    if (cache_env && *cache_env) snprintf(cache, sizeof cache, "%s/shared", cache_env);
    else snprintf(cache, sizeof cache, "%s/.cache/cltkit/shared", home ? home : ".");
    return cache;
}

// Where the tools are: $CLTKIT_BIN (make sanitize: bin-san), else bin/ (tests run from the root).
static inline const char *bin_dir(void) {
    const char *env = getenv("CLTKIT_BIN");
    return env && *env ? env : "bin";
}

// Test data outside the repository (../shared, or what `make test-data` fetches): fills path with
// <shared>/<rel> and returns 1 if it exists; otherwise marks the running test skipped, naming the
// missing file and how to get it, and returns 0 (the caller returns).
static inline int test_need_shared(char *path, size_t size, const char *rel) {
    int n = snprintf(path, size, "%s/%s", test_shared_dir(), rel);
    FILE *f = n > 0 && (size_t)n < size ? fopen(path, "rb") : NULL;
    if (f) { fclose(f); return 1; }
    SKIP_TEST("needs %s (not found; `make test-data` fetches it)", path);
    return 0;
}

static inline char *test_read_file(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(buf); return NULL; }
    buf[n] = 0;
    fclose(f);
    if (len_out) *len_out = (size_t)n;
    return buf;
}

// max |a − b| / max |b| (1 if b is all zero; inf on NaN): a tensor's error relative to its
// scale, meaningful also for entries near zero.
static inline double test_rel_err(const float *a, const float *b, size_t n) {
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > max_diff || d != d) max_diff = d != d ? INFINITY : d;
        if (fabs(b[i]) > max_ref) max_ref = fabs(b[i]);
    }
    return max_diff / (max_ref > 0 ? max_ref : 1);
}
