// gpu_check.h — what the GPU comparison tests (tests/gpu_test_*.c) share on top of check.h (whose
// generator they draw from): the NMSE metric (ggml's test-backend-ops: Σ(gpu − cpu)² / Σcpu²), groups of
// comparisons that report their worst NMSE, and the start-up that SKIPs without a GPU.
#pragma once
#include <stdint.h>

#include "check.h"
#include "cuda_common.h"
#include "gpu_ctx.h"

static inline double nmse(const float *got, const float *want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    if (num != num) return INFINITY;  // a NaN anywhere
    return den > 0 ? num / den : num;
}

// Worst NMSE of a group of comparisons, and one line per failing one.
typedef struct {
    const char *name;
    double limit, worst;
    int cases;
} Group;

static inline void group_check(Group *gr, const char *what, const float *got, const float *want, size_t n) {
    double err = nmse(got, want, n);
    gr->cases++;
    if (err > gr->worst || err != err) gr->worst = err;
    CHECK(err <= gr->limit, "%s %s: nmse %.3g > %.0e", gr->name, what, err, gr->limit);
}
static inline void group_report(const Group *gr) {
    printf("  %s: %d comparisons, worst nmse %.2e (limit %.0e)\n", gr->name, gr->cases, gr->worst, gr->limit);
}

// 1: go on; 0: no GPU here (a SKIP line is printed: exit 0). g (or NULL) is initialized; a
// context that fails on a present GPU prints a FAIL line and exits 1.
static inline int gpu_test_start(const char *test, GpuCtx *g) {
    if (cuda_device_count() == 0) {
        printf("SKIP %s: no CUDA device\n", test);
        return 0;
    }
    Error e = {{0}};
    if (g && gpu_ctx_init(g, &e)) {
        printf("FAIL gpu_ctx_init: %s\n", e.msg);
        exit(1);
    }
    return 1;
}
