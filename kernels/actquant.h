// actquant.h — the numbers behind the activation shard encodings (formats/acts.md, "Encodings"):
// encoding a row of fp32 activations into stored bytes and scales (CPU, for writers), and
// decoding rows back to fp32 (CPU reference here, CUDA twin in actquant.cu, bit for bit equal).
//
// A row is one token's d values at one (hook, layer). Per encoding (enc is an ActDtype):
//   f32, bf16, f16  d words of 4 / 2 / 2 bytes, no scales
//   int8            d bytes q in [-qmax, qmax] (qmax = enc_param, 1..127), one scale:  x = q * s
//   fp8             d OCP E4M3FN codes c, one scale:                               x = e4m3(c) * s
//   int4            ceil(d/2) bytes of 4-bit q in [-7, 7] (value j in the low nibble of byte j/2
//                   when j is even, the high nibble when odd; a pad nibble of 0 ends an odd row),
//                   one scale per group of `group` (= enc_param) consecutive values: x = q * s
// Scales are bf16 words (2 bytes), s = absmax / qmax (qmax 127 or enc_param for int8, 448 for
// fp8, 7 for int4) rounded *up* to bf16, so |x / s| <= qmax and nothing is clamped. Decoding is
// exact: q * s has at most 15 significant bits (q: <= 7, s: 8) and no product leaves fp32's range
// (scales <= 2^96; none so small that the product drops below 2^-149), so CPU and GPU cannot differ.
//
// "Planes" (the shuffled layout): a block of M elements of w > 1 bytes stored as w byte planes of M
// bytes each (byte b of element k at b * M + k). Only multi-byte elements have planes: the bf16
// scales and the f32/bf16/f16 values.
#pragma once
#include <stddef.h>
#include <stdint.h>

// err.h inside extern "C": its functions are C, also when nvcc compiles this. gpu_ctx.h stays
// outside: under nvcc it pulls in the C++ CUDA headers.
#ifdef __cplusplus
extern "C" {
#endif
#include "err.h"
#ifdef __cplusplus
}
#endif
#include "convert.h"
#include "dtype.h"  // ActDtype
#include "gpu_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

// Quantised encodings reject |x| >= 2^96 at write time; so a scale never exceeds 2^96 (bf16 bits
// 0x6F80), every decoded product is finite, and a reader rejects any scale word above it (which
// also rejects negative, infinite and NaN scales).
#define ACTQ_MAX_ABS 0x1p96f
#define ACTQ_MAX_SCALE_BITS 0x6F80u
#define ACTQ_INT8_DEFAULT_QMAX 127u
#define ACTQ_INT4_DEFAULT_GROUP 32u
#define ACTQ_FP8_MAX 448.0f  // largest finite E4M3FN value

static inline int actq_is_quantized(int enc) { return enc == ACT_INT8 || enc == ACT_FP8 || enc == ACT_INT4; }
// Bytes of one stored element: 4, 2, 2 for f32/bf16/f16; 1 for int8/fp8 and int4 (a packed byte).
static inline size_t actq_elem_bytes(int enc) { return enc == ACT_F32 ? 4 : enc <= ACT_F16 ? 2 : 1; }
// Stored bytes of one row of d values.
static inline size_t actq_row_bytes(int enc, size_t d) {
    return enc == ACT_INT4 ? (d + 1) / 2 : d * actq_elem_bytes(enc);
}
// bf16 scales per row: 0 (f32/bf16/f16), 1 (int8, fp8), ceil(d / group) (int4).
static inline size_t actq_row_scales(int enc, uint32_t group, size_t d) {
    if (enc == ACT_INT4) return (d + group - 1) / group;
    return enc == ACT_INT8 || enc == ACT_FP8 ? 1 : 0;
}

// Rounds y to the nearest integer, ties to even, for |y| <= 2^22 (adding 1.5 * 2^23 pushes the
// fraction out of the significand under round-to-nearest-even; no libm call, vectorises).
static inline float actq_round_even(float y) { return (y + 0x1.8p23f) - 0x1.8p23f; }

// The smallest bf16 >= r for finite r >= 0 (0 stays 0).
static inline uint16_t actq_bf16_round_up(float r) {
    uint32_t x = f32_bits(r);
    return (uint16_t)((x >> 16) + ((x & 0xffffu) != 0));
}

// The scale of values with absolute maximum m under a quantiser with largest level qmax: m / qmax
// (an fp32 division) rounded up to bf16, and never 0 unless m is (a tiny m / qmax that underflows
// fp32 still gets bf16's smallest step, 2^-133).
static inline uint16_t actq_scale_bf16(float m, float qmax) {
    uint16_t s = actq_bf16_round_up(m / qmax);
    return s == 0 && m > 0 ? 1 : s;
}

// fp32 -> OCP E4M3FN, round to nearest even, saturating: magnitudes >= 448 (and inf) give +-448,
// NaN gives 0x7F. The sign of zero is kept.
static inline uint8_t actq_f32_to_e4m3(float f) {
    uint32_t x = f32_bits(f), a = x & 0x7fffffffu;
    uint8_t sign = (uint8_t)((x >> 24) & 0x80);
    if (a > 0x7f800000u) return 0x7f;
    if (a >= 0x43e00000u) return sign | 0x7e;  // >= 448
    if (a >= 0x3c800000u) {                     // >= 2^-6: a normal E4M3 value
        a += 0x7ffffu + ((a >> 20) & 1);        // round to nearest even at bit 20 (3 mantissa bits)
        return sign | (uint8_t)((a >> 20) - (120u << 3));  // rebias 127 -> 7 (no overflow: a < 448)
    }
    // subnormal: a multiple of 2^-9; |f| * 2^9 < 8 is exact, its rounding gives the code (8 = 2^-6)
    return sign | (uint8_t)actq_round_even(f32_from_bits(a) * 512.0f);
}

// Encodes one row x (d,) of finite values with |x| < ACTQ_MAX_ABS into vals (actq_row_bytes) and
// scales (actq_row_scales bf16 words; untouched for f32/bf16/f16). `param`: qmax for int8, the
// group for int4, else unused. Plain layout (no planes). vals must be aligned for its words.
void actq_encode_row(int enc, uint32_t param, const float *x, size_t d, uint8_t *vals, uint16_t *scales);

// Where a block of rows lies: plain (planes 0) or as byte planes `planes` bytes apart.
typedef struct {
    int enc;              // ActDtype
    uint32_t param;       // int4 group (int8's qmax is not needed to decode)
    size_t d;             // values per row
    size_t val_planes;    // 0, or the distance between the value byte planes (f32/bf16/f16 only)
    size_t scale_planes;  // 0, or the distance between the two scale byte planes
} ActqLayout;

// Decodes `rows` rows into out (rows, d) fp32. vals points at the first row's values (plain:
// rows * row_bytes bytes; planes: into plane 0, element k of the rows at vals + b * val_planes + k
// for byte b), scales likewise (rows * row_scales bf16 words). Returns 0, or -1 with *bad_row set
// to the first row holding a scale word above ACTQ_MAX_SCALE_BITS or an fp8 NaN code (0x7F/0xFF);
// out is then partly written. Plain f32/bf16/f16 vals must be aligned for their words.
int actq_decode_rows(const ActqLayout *lay, const uint8_t *vals, const uint8_t *scales, size_t rows, float *out,
                     size_t *bad_row);
// The checks of actq_decode_rows without decoding (for callers that decode elsewhere, on a GPU).
int actq_validate_rows(const ActqLayout *lay, const uint8_t *vals, const uint8_t *scales, size_t rows,
                       size_t *bad_row);

// Writes count elements of width bytes from in (plain) to out as byte planes (out[b*count + k] =
// byte b of element k). in and out must not overlap.
void actq_to_planes(const uint8_t *in, uint8_t *out, size_t count, size_t width);

// CUDA twin of actq_decode_rows (actquant.cu): device pointers, queued on g's stream, no checks
// (validate on the host first: actshard_read_chunk does). 0, or -1 with an Error if the launch
// fails or the encoding is unknown.
int actq_decode_rows_cuda(const GpuCtx *g, const ActqLayout *lay, const uint8_t *d_vals, const uint8_t *d_scales,
                          size_t rows, float *d_out, Error *e);

#ifdef __cplusplus
}
#endif
