// gguf_dequant.h — ggml tensor types: the table of block sizes every GGUF reader needs to size a
// tensor, and scalar dequantization to fp32 of the types cltkit reads (F32, F16, BF16, Q8_0,
// Q4_0, Q4_1, Q4_K, Q6_K). Dequantization happens once, at load/convert time, so plain scalar
// loops are enough; they are the reference a faster version would be checked against.
//
// Block layouts (little-endian; f16 = IEEE half; a block of `block_size` weights takes
// `type_size` bytes; weight i of a row sits in block i / block_size):
//   Q8_0 (32 weights, 34 B):  f16 d; int8 q[32].                  w[j] = d * q[j]
//   Q4_0 (32 weights, 18 B):  f16 d; uint8 qs[16].                w[j] = d * ((qs[j] & 15) - 8),
//                                                                 w[j+16] = d * ((qs[j] >> 4) - 8)
//   Q4_1 (32 weights, 20 B):  f16 d, m; uint8 qs[16].             w[j] = d * (qs[j] & 15) + m,
//                                                                 w[j+16] = d * (qs[j] >> 4) + m
//   Q4_K (256 weights, 144 B): f16 d, dmin; uint8 scales[12]; uint8 qs[128]. Eight sub-blocks of
//       32 with a 6-bit scale sc and 6-bit min mn each, packed in scales[]: for s < 4,
//       sc = scales[s] & 63, mn = scales[s+4] & 63; for s >= 4, sc = (scales[s+4] & 15) |
//       (scales[s-4] >> 6) << 4, mn = (scales[s+4] >> 4) | (scales[s] >> 6) << 4. Chunk c (0..3)
//       of 64 weights reads qs[32c .. 32c+31]: low nibbles are sub-block 2c, high nibbles 2c+1.
//       w = d * sc * q - dmin * mn.
//   Q6_K (256 weights, 210 B): uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d. Weight
//       i = 128h + 32g + l (h half, g 0..3, l 0..31): low 4 bits from ql[64h + l + 32(g & 1)]
//       (low nibble for g < 2, high for g >= 2), high 2 bits from (qh[32h + l] >> 2g) & 3;
//       q = that 6-bit value - 32; w = d * scales[i / 16] * q.
#pragma once
#include <stddef.h>
#include <stdint.h>

// ggml_type values as stored in GGUF tensor infos (gaps are types ggml removed).
typedef enum {
    GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1, GGML_TYPE_Q4_0 = 2, GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6, GGML_TYPE_Q5_1 = 7, GGML_TYPE_Q8_0 = 8, GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10, GGML_TYPE_Q3_K = 11, GGML_TYPE_Q4_K = 12, GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14, GGML_TYPE_Q8_K = 15, GGML_TYPE_IQ2_XXS = 16, GGML_TYPE_IQ2_XS = 17,
    GGML_TYPE_IQ3_XXS = 18, GGML_TYPE_IQ1_S = 19, GGML_TYPE_IQ4_NL = 20, GGML_TYPE_IQ3_S = 21,
    GGML_TYPE_IQ2_S = 22, GGML_TYPE_IQ4_XS = 23, GGML_TYPE_I8 = 24, GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26, GGML_TYPE_I64 = 27, GGML_TYPE_F64 = 28, GGML_TYPE_IQ1_M = 29,
    GGML_TYPE_BF16 = 30, GGML_TYPE_TQ1_0 = 34, GGML_TYPE_TQ2_0 = 35, GGML_TYPE_MXFP4 = 39,
    GGML_TYPE_COUNT = 40
} GgmlType;

typedef struct {
    const char *name;  // ggml's name, e.g. "q4_K"
    int block_size;    // weights per block
    int type_size;     // bytes per block
    int dequant;       // 1 if ggml_dequantize handles it
} GgmlTypeInfo;

// The type's sizes, or NULL for a value that is no ggml type.
const GgmlTypeInfo *ggml_type_info(uint32_t type);

// Dequantizes n weights (a multiple of the block size) from src (any alignment) to dst.
// The type must have info->dequant set; returns -1 otherwise (nothing written).
int ggml_dequantize(uint32_t type, const void *src, float *dst, uint64_t n);

// The per-type loops (n a multiple of the block size).
void dequant_f32(const uint8_t *src, float *dst, uint64_t n);
void dequant_f16(const uint8_t *src, float *dst, uint64_t n);
void dequant_bf16(const uint8_t *src, float *dst, uint64_t n);
void dequant_q8_0(const uint8_t *src, float *dst, uint64_t n);
void dequant_q4_0(const uint8_t *src, float *dst, uint64_t n);
void dequant_q4_1(const uint8_t *src, float *dst, uint64_t n);
void dequant_q4_k(const uint8_t *src, float *dst, uint64_t n);
void dequant_q6_k(const uint8_t *src, float *dst, uint64_t n);
