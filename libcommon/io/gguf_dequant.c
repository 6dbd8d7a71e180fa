// gguf_dequant.c — ggml type table and scalar dequantization (block layouts in gguf_dequant.h).
// The arithmetic follows ggml's reference dequantizers operation by operation (same products in
// the same order, fp32), so the results are bit-identical to ggml's and to gguf-py's.
#include "gguf_dequant.h"

#include <string.h>

#include "convert.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf_dequant.c reads little-endian blocks in place; big-endian hosts need byte swapping"
#endif

static const GgmlTypeInfo TYPES[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {"f32", 1, 4, 1},         [GGML_TYPE_F16] = {"f16", 1, 2, 1},
    [GGML_TYPE_Q4_0] = {"q4_0", 32, 18, 1},     [GGML_TYPE_Q4_1] = {"q4_1", 32, 20, 1},
    [GGML_TYPE_Q5_0] = {"q5_0", 32, 22, 0},     [GGML_TYPE_Q5_1] = {"q5_1", 32, 24, 0},
    [GGML_TYPE_Q8_0] = {"q8_0", 32, 34, 1},     [GGML_TYPE_Q8_1] = {"q8_1", 32, 36, 0},
    [GGML_TYPE_Q2_K] = {"q2_K", 256, 84, 0},    [GGML_TYPE_Q3_K] = {"q3_K", 256, 110, 0},
    [GGML_TYPE_Q4_K] = {"q4_K", 256, 144, 1},   [GGML_TYPE_Q5_K] = {"q5_K", 256, 176, 0},
    [GGML_TYPE_Q6_K] = {"q6_K", 256, 210, 1},   [GGML_TYPE_Q8_K] = {"q8_K", 256, 292, 0},
    [GGML_TYPE_IQ2_XXS] = {"iq2_xxs", 256, 66, 0}, [GGML_TYPE_IQ2_XS] = {"iq2_xs", 256, 74, 0},
    [GGML_TYPE_IQ3_XXS] = {"iq3_xxs", 256, 98, 0}, [GGML_TYPE_IQ1_S] = {"iq1_s", 256, 50, 0},
    [GGML_TYPE_IQ4_NL] = {"iq4_nl", 32, 18, 0}, [GGML_TYPE_IQ3_S] = {"iq3_s", 256, 110, 0},
    [GGML_TYPE_IQ2_S] = {"iq2_s", 256, 82, 0},  [GGML_TYPE_IQ4_XS] = {"iq4_xs", 256, 136, 0},
    [GGML_TYPE_I8] = {"i8", 1, 1, 0},           [GGML_TYPE_I16] = {"i16", 1, 2, 0},
    [GGML_TYPE_I32] = {"i32", 1, 4, 0},         [GGML_TYPE_I64] = {"i64", 1, 8, 0},
    [GGML_TYPE_F64] = {"f64", 1, 8, 0},         [GGML_TYPE_IQ1_M] = {"iq1_m", 256, 56, 0},
    [GGML_TYPE_BF16] = {"bf16", 1, 2, 1},       [GGML_TYPE_TQ1_0] = {"tq1_0", 256, 54, 0},
    [GGML_TYPE_TQ2_0] = {"tq2_0", 256, 66, 0},  [GGML_TYPE_MXFP4] = {"mxfp4", 32, 17, 0},
};

const GgmlTypeInfo *ggml_type_info(uint32_t type) {
    if (type >= GGML_TYPE_COUNT || !TYPES[type].name) return NULL;
    return &TYPES[type];
}

// Blocks sit at any byte offset in an mmapped file, so multi-byte fields are read by memcpy.
static float rd_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return f16_to_f32(h);
}

void dequant_f32(const uint8_t *src, float *dst, uint64_t n) { memcpy(dst, src, n * sizeof(float)); }

void dequant_f16(const uint8_t *src, float *dst, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) dst[i] = rd_f16(src + 2 * i);
}

void dequant_bf16(const uint8_t *src, float *dst, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        uint16_t b;
        memcpy(&b, src + 2 * i, 2);
        dst[i] = bf16_to_f32(b);
    }
}

void dequant_q8_0(const uint8_t *src, float *dst, uint64_t n) {
    for (uint64_t b = 0; b < n / 32; b++, src += 34, dst += 32) {
        float d = rd_f16(src);
        const int8_t *q = (const int8_t *)(src + 2);
        for (int j = 0; j < 32; j++) dst[j] = (float)q[j] * d;
    }
}

void dequant_q4_0(const uint8_t *src, float *dst, uint64_t n) {
    for (uint64_t b = 0; b < n / 32; b++, src += 18, dst += 32) {
        float d = rd_f16(src);
        const uint8_t *qs = src + 2;
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)((qs[j] & 15) - 8) * d;
            dst[j + 16] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

void dequant_q4_1(const uint8_t *src, float *dst, uint64_t n) {
    for (uint64_t b = 0; b < n / 32; b++, src += 20, dst += 32) {
        float d = rd_f16(src), m = rd_f16(src + 2);
        const uint8_t *qs = src + 4;
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)(qs[j] & 15) * d + m;
            dst[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

// The 6-bit scale and min of Q4_K sub-block s (0..7) from the 12 packed bytes.
static void q4k_scale_min(const uint8_t *sc, int s, int *scale, int *min) {
    if (s < 4) {
        *scale = sc[s] & 63;
        *min = sc[s + 4] & 63;
    } else {
        *scale = (sc[s + 4] & 15) | ((sc[s - 4] >> 6) << 4);
        *min = (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4);
    }
}

void dequant_q4_k(const uint8_t *src, float *dst, uint64_t n) {
    for (uint64_t b = 0; b < n / 256; b++, src += 144, dst += 256) {
        float d = rd_f16(src), dmin = rd_f16(src + 2);
        const uint8_t *scales = src + 4, *qs = src + 16;
        for (int c = 0; c < 4; c++) {  // 64 weights: two sub-blocks sharing 32 bytes
            int sc, mn;
            q4k_scale_min(scales, 2 * c, &sc, &mn);
            float d1 = d * (float)sc, m1 = dmin * (float)mn;
            q4k_scale_min(scales, 2 * c + 1, &sc, &mn);
            float d2 = d * (float)sc, m2 = dmin * (float)mn;
            const uint8_t *q = qs + 32 * c;
            float *y = dst + 64 * c;
            for (int l = 0; l < 32; l++) y[l] = d1 * (float)(q[l] & 15) - m1;
            for (int l = 0; l < 32; l++) y[32 + l] = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void dequant_q6_k(const uint8_t *src, float *dst, uint64_t n) {
    for (uint64_t b = 0; b < n / 256; b++, src += 210, dst += 256) {
        const uint8_t *ql = src, *qh = src + 128;
        const int8_t *sc = (const int8_t *)(src + 192);
        float d = rd_f16(src + 208);
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8) {  // two halves of 128
            float *y = dst + 128 * h;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = (int)((ql[l] & 15) | ((qh[l] & 3) << 4)) - 32;
                int q2 = (int)((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

int ggml_dequantize(uint32_t type, const void *src, float *dst, uint64_t n) {
    const uint8_t *s = src;
    switch (type) {
        case GGML_TYPE_F32: dequant_f32(s, dst, n); return 0;
        case GGML_TYPE_F16: dequant_f16(s, dst, n); return 0;
        case GGML_TYPE_BF16: dequant_bf16(s, dst, n); return 0;
        case GGML_TYPE_Q8_0: dequant_q8_0(s, dst, n); return 0;
        case GGML_TYPE_Q4_0: dequant_q4_0(s, dst, n); return 0;
        case GGML_TYPE_Q4_1: dequant_q4_1(s, dst, n); return 0;
        case GGML_TYPE_Q4_K: dequant_q4_k(s, dst, n); return 0;
        case GGML_TYPE_Q6_K: dequant_q6_k(s, dst, n); return 0;
        default: return -1;
    }
}
