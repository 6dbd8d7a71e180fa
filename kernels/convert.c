// convert.c — CPU reference for the number-format conversions (scalar code in convert.h).
#include "convert.h"

void convert_f16_to_f32(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = f16_to_f32(in[i]);
}

void convert_bf16_to_f32(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(in[i]);
}

void convert_f8e4m3_to_f32(const uint8_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = f8e4m3_to_f32(in[i]);
}

void convert_f32_to_bf16(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = f32_to_bf16(in[i]);
}

void convert_f32_to_f16(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = f32_to_f16(in[i]);
}
