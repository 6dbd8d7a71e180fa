// actquant.c — CPU reference for the activation encodings (actquant.h): row encoders for writers,
// row decoders for readers (the CUDA twin in actquant.cu is compared against these bit for bit).
#include "actquant.h"

#include <string.h>

// ---- encoding --------------------------------------------------------------------------------

// The bf16 scale of n values for a quantiser with largest level qmax (actq_scale_bf16).
// Four running maxima (of the magnitudes' bits: for non-negative floats, integer order is float
// order) so the loop vectorises instead of waiting on one dependency chain.
static uint16_t scale_of(const float *x, size_t n, float qmax) {
    uint32_t m[4] = {0, 0, 0, 0};
    size_t j = 0;
    for (; j + 4 <= n; j += 4)
        for (int k = 0; k < 4; k++) {
            uint32_t a = f32_bits(x[j + k]) & 0x7fffffffu;
            m[k] = a > m[k] ? a : m[k];
        }
    for (; j < n; j++) {
        uint32_t a = f32_bits(x[j]) & 0x7fffffffu;
        m[0] = a > m[0] ? a : m[0];
    }
    uint32_t a = m[0] > m[1] ? m[0] : m[1], b = m[2] > m[3] ? m[2] : m[3];
    return actq_scale_bf16(f32_from_bits(a > b ? a : b), qmax);
}

// q = round_even(x / s) clamped to [-qmax, qmax]; 0 for the whole group when s = 0 (all zeros).
// The clamp never fires (s >= absmax / qmax) but keeps a rounding surprise from wrapping.
static inline int quantize(float x, float s, float qmax) {
    if (s == 0) return 0;
    float q = actq_round_even(x / s);
    q = q > qmax ? qmax : q < -qmax ? -qmax : q;
    return (int)q;
}

void actq_encode_row(int enc, uint32_t param, const float *x, size_t d, uint8_t *vals, uint16_t *scales) {
    switch (enc) {
    case ACT_F32:
        memcpy(vals, x, d * sizeof(float));
        return;
    case ACT_BF16:
        convert_f32_to_bf16(x, (uint16_t *)(void *)vals, d);
        return;
    case ACT_F16:
        convert_f32_to_f16(x, (uint16_t *)(void *)vals, d);
        return;
    case ACT_INT8: {
        float qmax = (float)param;
        scales[0] = scale_of(x, d, qmax);
        float s = bf16_to_f32(scales[0]);
        for (size_t j = 0; j < d; j++) vals[j] = (uint8_t)(int8_t)quantize(x[j], s, qmax);
        return;
    }
    case ACT_FP8: {
        scales[0] = scale_of(x, d, ACTQ_FP8_MAX);
        float s = bf16_to_f32(scales[0]);
        // s = 0 only for an all-zero row: keep each zero's sign
        for (size_t j = 0; j < d; j++) vals[j] = actq_f32_to_e4m3(s == 0 ? x[j] : x[j] / s);
        return;
    }
    case ACT_INT4: {
        size_t g = param;
        for (size_t j0 = 0, gi = 0; j0 < d; j0 += g, gi++) {
            size_t j1 = j0 + g < d ? j0 + g : d;
            scales[gi] = scale_of(x + j0, j1 - j0, 7.0f);
            float s = bf16_to_f32(scales[gi]);
            for (size_t j = j0; j < j1; j++) {
                uint8_t nib = (uint8_t)(quantize(x[j], s, 7.0f) & 15);  // two's complement nibble
                if (j & 1) vals[j >> 1] |= (uint8_t)(nib << 4);
                else vals[j >> 1] = nib;  // also clears the high nibble (the pad of an odd row)
            }
        }
        return;
    }
    default:
        return;
    }
}

// ---- decoding --------------------------------------------------------------------------------

static inline uint16_t scale_word(const uint8_t *scales, size_t planes, size_t i) {
    return planes ? (uint16_t)(scales[i] | scales[planes + i] << 8)
                  : (uint16_t)(scales[2 * i] | scales[2 * i + 1] << 8);
}

// Checks the scales of rows [0, rows) (ns per row); returns the first bad row or rows.
static size_t first_bad_scale(const uint8_t *scales, size_t planes, size_t rows, size_t ns) {
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < ns; k++)
            if (scale_word(scales, planes, r * ns + k) > ACTQ_MAX_SCALE_BITS) return r;
    return rows;
}

static size_t first_nan_code(const uint8_t *vals, size_t rows, size_t d) {
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < d; j++)
            if ((vals[r * d + j] & 0x7f) == 0x7f) return r;
    return rows;
}

int actq_validate_rows(const ActqLayout *lay, const uint8_t *vals, const uint8_t *scales, size_t rows,
                       size_t *bad_row) {
    size_t ns = actq_row_scales(lay->enc, lay->param, lay->d);
    size_t bad = ns ? first_bad_scale(scales, lay->scale_planes, rows, ns) : rows;
    if (lay->enc == ACT_FP8) {
        size_t b2 = first_nan_code(vals, bad, lay->d);
        bad = b2 < bad ? b2 : bad;
    }
    if (bad == rows) return 0;
    *bad_row = bad;
    return -1;
}

// Multi-byte values stored as byte planes, P bytes apart.
static void decode_planes(int enc, const uint8_t *v, size_t P, size_t n, float *out) {
    if (enc == ACT_F32) {
        for (size_t k = 0; k < n; k++)
            out[k] = f32_from_bits((uint32_t)v[k] | (uint32_t)v[P + k] << 8 | (uint32_t)v[2 * P + k] << 16 |
                                   (uint32_t)v[3 * P + k] << 24);
    } else if (enc == ACT_BF16) {
        for (size_t k = 0; k < n; k++) out[k] = f32_from_bits(((uint32_t)v[k] | (uint32_t)v[P + k] << 8) << 16);
    } else {
        for (size_t k = 0; k < n; k++) out[k] = f16_to_f32((uint16_t)(v[k] | v[P + k] << 8));
    }
}

int actq_decode_rows(const ActqLayout *lay, const uint8_t *vals, const uint8_t *scales, size_t rows, float *out,
                     size_t *bad_row) {
    size_t d = lay->d, n = rows * d, sp = lay->scale_planes;
    switch (lay->enc) {
    case ACT_F32:
    case ACT_BF16:
    case ACT_F16:
        if (lay->val_planes) decode_planes(lay->enc, vals, lay->val_planes, n, out);
        else if (lay->enc == ACT_F32) memcpy(out, vals, n * sizeof(float));
        else if (lay->enc == ACT_BF16) convert_bf16_to_f32((const uint16_t *)(const void *)vals, out, n);
        else convert_f16_to_f32((const uint16_t *)(const void *)vals, out, n);
        return 0;
    case ACT_INT8:
        for (size_t r = 0; r < rows; r++) {
            uint16_t w = scale_word(scales, sp, r);
            if (w > ACTQ_MAX_SCALE_BITS) return *bad_row = r, -1;
            float s = bf16_to_f32(w);
            const int8_t *q = (const int8_t *)vals + r * d;
            float *o = out + r * d;
            for (size_t j = 0; j < d; j++) o[j] = (float)q[j] * s;
        }
        return 0;
    case ACT_FP8: {
        float lut[256];  // every code's value (0x7F, 0xFF: NaN, rejected below)
        for (int c = 0; c < 256; c++) lut[c] = f8e4m3_to_f32((uint8_t)c);
        for (size_t r = 0; r < rows; r++) {
            uint16_t w = scale_word(scales, sp, r);
            if (w > ACTQ_MAX_SCALE_BITS) return *bad_row = r, -1;
            float s = bf16_to_f32(w);
            const uint8_t *c = vals + r * d;
            float *o = out + r * d;
            int nan = 0;
            for (size_t j = 0; j < d; j++) {
                nan |= (c[j] & 0x7f) == 0x7f;
                o[j] = lut[c[j]] * s;
            }
            if (nan) return *bad_row = r, -1;
        }
        return 0;
    }
    case ACT_INT4: {
        size_t g = lay->param, ns = actq_row_scales(ACT_INT4, lay->param, d), rb = (d + 1) / 2;
        for (size_t r = 0; r < rows; r++) {
            const uint8_t *v = vals + r * rb;
            float *o = out + r * d;
            for (size_t j0 = 0, gi = 0; j0 < d; j0 += g, gi++) {
                uint16_t w = scale_word(scales, sp, r * ns + gi);
                if (w > ACTQ_MAX_SCALE_BITS) return *bad_row = r, -1;
                float s = bf16_to_f32(w);
                size_t j1 = j0 + g < d ? j0 + g : d;
                for (size_t j = j0; j < j1; j++) {
                    int nib = (v[j >> 1] >> (4 * (j & 1))) & 15;
                    o[j] = (float)((nib ^ 8) - 8) * s;  // sign-extend the nibble
                }
            }
        }
        return 0;
    }
    default:
        *bad_row = 0;
        return -1;
    }
}

void actq_to_planes(const uint8_t *in, uint8_t *out, size_t count, size_t width) {
    for (size_t b = 0; b < width; b++)
        for (size_t k = 0; k < count; k++) out[b * count + k] = in[k * width + b];
}
