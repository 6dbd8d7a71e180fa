// convert_cuda.h — CUDA twins of convert.h, callable from C. Pointers are device pointers;
// work is queued on the default stream (call cuda_sync() before reading results on the host).
// dtype arguments are StDtype values (dtype.h). Returns 0, or -1 with an Error for an
// unsupported dtype or a failed launch.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "err.h"  // inside extern "C": err_set is a C function, also when nvcc compiles this

// src_dtype: ST_F32 (a copy), ST_F16, ST_BF16, ST_F8_E4M3.
int convert_to_f32_cuda(int src_dtype, const void *d_in, float *d_out, size_t n, Error *e);
// dst_dtype: ST_F32 (a copy), ST_F16, ST_BF16 (round to nearest even, as convert.h).
int convert_from_f32_cuda(int dst_dtype, const float *d_in, void *d_out, size_t n, Error *e);

#ifdef __cplusplus
}
#endif
