// dtype.h — the element types the files name, for every layer that handles their numbers: the
// safetensors dtypes (StDtype; names and sizes in io/safetensors.h) and the activation shard
// encodings (ActDtype; names and parsing in io/actshard.h, the arithmetic in kernels/actquant.h).
// Here in base, not in the file readers, because the kernels that convert and decode those
// numbers (convert.cu, actquant.{h,c,cu}) sit below io and may not include it.
#pragma once

typedef enum {
    ST_F32, ST_F16, ST_BF16, ST_I32, ST_I64, ST_U8, ST_I8, ST_F8_E4M3, ST_BOOL, ST_F64, ST_DTYPE_COUNT
} StDtype;

// File encoding of the activation values (formats/acts.md, "Encodings"). The id is stored once
// per file (header) with a parameter (enc_param); quantised encodings keep bf16 scales in each
// chunk's scale block. The numbers (rounding, scales, exact decoding) are in kernels/actquant.h.
//   f32, bf16, f16  one word per value, no parameter, no scales
//   int8            int8 per value, one scale per (hook, layer, token); enc_param = qmax (1..127,
//                   default 127: fewer levels trade error for size under zstd)
//   fp8             OCP E4M3FN per value, one scale per (hook, layer, token); no parameter
//   int4            4 bits per value, one scale per group of enc_param values of a row (default 32)
typedef enum { ACT_F32 = 0, ACT_BF16 = 1, ACT_F16 = 2, ACT_INT8 = 3, ACT_FP8 = 4, ACT_INT4 = 5 } ActDtype;
#define ACT_N_DTYPES 6
