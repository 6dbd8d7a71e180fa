// cpu.c — the instruction-set level of the per-ISA CPU kernels (cpu.h).
#include "cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
