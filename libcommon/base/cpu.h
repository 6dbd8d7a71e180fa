// cpu.h — which x86-64 instruction-set level the CPU kernels with per-ISA variants run at.
// The level is the best the CPU supports, lowered (never raised) by $CLTKIT_CPU = avx512 | avx2 |
// generic, so the tests can run every variant on one machine and a user can rule one out. A
// value the CPU cannot run is clamped to what it can, with one warning on stderr. cpu.c also drops
// an $OPENBLAS_CORETYPE the CPU cannot run before main (else OpenBLAS dies of SIGILL in a GEMM).
#pragma once

typedef enum { CPU_GENERIC = 0, CPU_AVX2 = 1, CPU_AVX512 = 2 } CpuLevel;

// Resolved once per process (thread-safe); later changes to the environment are not seen.
CpuLevel cpu_level(void);
// "generic", "avx2" or "avx512".
const char *cpu_level_name(CpuLevel level);
