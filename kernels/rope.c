#include "rope.h"

#include <math.h>
#include <stddef.h>

// Mirrors transformers' _compute_llama3_parameters: long wavelengths are divided by factor,
// short ones kept, and the band between is interpolated.
static double llama3_scale(double inv_freq, const RopeParams *p) {
    const double two_pi = 6.283185307179586;
    double old_len = p->original_max_pos;
    double low_wavelen = old_len / p->low_freq_factor, high_wavelen = old_len / p->high_freq_factor;
    double wavelen = two_pi / inv_freq;
    double scaled = wavelen > low_wavelen ? inv_freq / p->factor : inv_freq;
    if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
        double smooth = (old_len / wavelen - p->low_freq_factor) / (p->high_freq_factor - p->low_freq_factor);
        scaled = (1 - smooth) * scaled / p->factor + smooth * scaled;
    }
    return scaled;
}

void rope_table(float *cos_t, float *sin_t, int T, int hd, const RopeParams *p) {
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        // fp32 like the reference: inv_freq = 1 / theta^(2i/hd), angle = pos * inv_freq
        float inv_freq = (float)(1.0 / pow((double)p->theta, (double)(2 * i) / hd));
        if (p->llama3) inv_freq = (float)llama3_scale(inv_freq, p);
        for (int t = 0; t < T; t++) {
            float angle = (float)t * inv_freq;
            cos_t[(size_t)t * half + i] = cosf(angle);
            sin_t[(size_t)t * half + i] = sinf(angle);
        }
    }
}

void rope_apply_cpu(float *x, const float *cos_t, const float *sin_t, int B, int T, int n_heads, int hd) {
    int half = hd / 2;
    for (int r = 0; r < B * T; r++) {
        const float *c = cos_t + (size_t)(r % T) * half, *s = sin_t + (size_t)(r % T) * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)r * n_heads + h) * hd;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}
