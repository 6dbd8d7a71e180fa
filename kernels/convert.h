// convert.h — number-format conversions on the CPU: f16, bf16 and fp8 (OCP E4M3FN) to fp32, and
// fp32 to bf16/f16 with round-to-nearest-even. These are the reference the CUDA twins in
// convert.cu are compared against bit for bit (tests/gpu_test_convert.c).
//
// Pointers must be aligned for their type; callers holding unaligned bytes (an mmapped
// safetensors file) copy into an aligned buffer first. Little-endian host assumed.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

void convert_f16_to_f32(const uint16_t *in, float *out, size_t n);
void convert_bf16_to_f32(const uint16_t *in, float *out, size_t n);
// OCP E4M3FN: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities, S.1111.111 is NaN,
// largest finite 448, smallest subnormal 2^-9.
void convert_f8e4m3_to_f32(const uint8_t *in, float *out, size_t n);
// Round to nearest even; a NaN stays a NaN (sign and top payload bits kept, quiet bit set).
void convert_f32_to_bf16(const float *in, uint16_t *out, size_t n);
// Round to nearest even; magnitudes that round past 65504 become inf; results below 2^-14 become
// subnormals (or zero); NaN stays NaN.
void convert_f32_to_f16(const float *in, uint16_t *out, size_t n);

// ---- scalar versions (the loops above call these) --------------------------------------------
static inline float f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));  // inf / NaN
    if (exp == 0) {
        if (mant == 0) return f32_from_bits(sign);  // +-0
        // subnormal: value = mant * 2^-24; shift the leading 1 up to the implicit-bit position
        uint32_t e = 113;  // 127 - 14: the exponent if bit 10 were already set
        while (!(mant & 0x400)) { mant <<= 1; e--; }
        return f32_from_bits(sign | (e << 23) | ((mant & 0x3ff) << 13));
    }
    return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));  // rebias 15 -> 127
}

static inline float bf16_to_f32(uint16_t b) { return f32_from_bits((uint32_t)b << 16); }

static inline float f8e4m3_to_f32(uint8_t v) {
    uint32_t sign = (uint32_t)(v & 0x80) << 24;
    uint32_t exp = (v >> 3) & 0xf, mant = v & 0x7;
    if (exp == 0xf && mant == 0x7) return f32_from_bits(sign | 0x7fc00000u);  // the only NaN
    if (exp == 0) {
        // subnormal: mant * 2^-9 (exact in fp32); the sign survives for -0
        float mag = (float)mant * (1.0f / 512.0f);
        return f32_from_bits(sign | f32_bits(mag));
    }
    return f32_from_bits(sign | ((exp + 120) << 23) | (mant << 20));  // rebias 7 -> 127
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    // NaN: truncating could drop every payload bit and make an inf, so force the quiet bit
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x0040);
    // round to nearest even at bit 16; a carry out of the mantissa bumps the exponent (to inf)
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

static inline uint16_t f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00 | (uint16_t)((a >> 13) & 0x3ff);  // NaN, quiet
    if (a >= 0x477ff000u) return sign | 0x7c00;  // >= 65520 (halfway past 65504) rounds to inf
    if (a >= 0x38800000u) {                        // normal in f16 (>= 2^-14)
        a += 0xfffu + ((a >> 13) & 1);             // round to nearest even at bit 13
        return sign | (uint16_t)((a - 0x38000000u) >> 13);  // rebias 127 -> 15
    }
    if (a <= 0x33000000u) return sign;  // <= 2^-25: rounds to zero (2^-25 itself ties to even 0)
    // subnormal result: value / 2^-24 = m * 2^(e - 126) with m the 24-bit significand
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // 14..24
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;  // q may reach 0x400, the smallest normal
    return sign | (uint16_t)q;
}

#ifdef __cplusplus
}
#endif
