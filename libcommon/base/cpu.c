// cpu.c — the instruction-set level of the per-ISA CPU kernels (cpu.h).
#include "cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *cpu_level_name(CpuLevel level) {
    return level == CPU_AVX512 ? "avx512" : level == CPU_AVX2 ? "avx2" : "generic";
}

// What the hardware runs: x86-64-v4 (AVX-512 F/BW/DQ/VL) and x86-64-v3 (AVX2, FMA, BMI), the
// levels the kernels are compiled for.
static CpuLevel hardware_level(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return CPU_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
        return CPU_AVX2;
#endif
    return CPU_GENERIC;
}

static pthread_once_t level_once = PTHREAD_ONCE_INIT;
static CpuLevel resolved_level;  // written once under level_once, read-only afterwards

static void resolve_level(void) {
    CpuLevel hw = hardware_level(), want = hw;
    const char *env = getenv("CLTKIT_CPU");
    if (env && *env) {
        if (!strcmp(env, "generic")) want = CPU_GENERIC;
        else if (!strcmp(env, "avx2")) want = CPU_AVX2;
        else if (!strcmp(env, "avx512")) want = CPU_AVX512;
        else fprintf(stderr, "warning: CLTKIT_CPU=%s is not one of generic, avx2, avx512; using %s\n", env,
                     cpu_level_name(hw));
        if (want > hw) {
            fprintf(stderr, "warning: CLTKIT_CPU=%s but this CPU supports up to %s; using %s\n", env,
                    cpu_level_name(hw), cpu_level_name(hw));
            want = hw;
        }
    }
    resolved_level = want;
}

CpuLevel cpu_level(void) {
    pthread_once(&level_once, resolve_level);
    return resolved_level;
}

// OpenBLAS chooses its kernels when it loads and honours $OPENBLAS_CORETYPE even when this CPU
// cannot run them: SkylakeX on a CPU without AVX-512 dies of SIGILL at the first GEMM. So before
// main (an ELF constructor, which glibc hands argv), a core type whose instructions the CPU lacks
// is dropped and the program re-executed once, letting OpenBLAS choose for the real CPU. Linked
// into every program that uses BLAS (the Makefile names cpu_level as undefined). A note goes to
// stderr only on a terminal, so scripts and tests see the same output as without the setting.
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
static int coretype_runs_here(const char *ct) {
    __builtin_cpu_init();
    int avx = __builtin_cpu_supports("avx"), avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    static const struct { const char *name; int level; } types[] = {
        // level: 1 AVX, 2 AVX2 + FMA, 3 AVX-512 F/BW/DQ/VL, 4 that and AVX-512 BF16
        {"sandybridge", 1}, {"bulldozer", 1}, {"piledriver", 1}, {"steamroller", 1}, {"excavator", 2},
        {"haswell", 2},     {"zen", 2},       {"skylakex", 3},   {"cooperlake", 4},  {"sapphirerapids", 4}};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        if (strcasecmp(ct, types[i].name)) continue;
        int l = types[i].level;
        return l == 1 ? avx : l == 2 ? avx2 : l == 3 ? avx512 : avx512 && __builtin_cpu_supports("avx512bf16");
    }
    return 1;  // older types (Prescott, Nehalem, ...) or names OpenBLAS itself rejects
}

__attribute__((constructor)) static void openblas_coretype_guard(int argc, char **argv, char **envp) {
    (void)argc;
    (void)envp;
    const char *ct = getenv("OPENBLAS_CORETYPE");
    if (!ct || !*ct || coretype_runs_here(ct)) return;
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "note: OPENBLAS_CORETYPE=%s needs instructions this CPU lacks; letting OpenBLAS choose\n", ct);
    unsetenv("OPENBLAS_CORETYPE");
    execv("/proc/self/exe", argv);  // returns only on failure: go on (the GEMMs would fail as before)
}
#endif
