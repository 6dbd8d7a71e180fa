#include "act.h"

#include <math.h>

static inline float silu(float x) { return x / (1.0f + expf(-x)); }
static inline float gelu_tanh(float x) {
    const float k = 0.7978845608028654f;  // sqrt(2/pi)
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

void gated_act_cpu(float *out, const float *gate, const float *up, size_t n, ActKind kind) {
    if (kind == ACT_SILU)
        for (size_t i = 0; i < n; i++) out[i] = silu(gate[i]) * up[i];
    else
        for (size_t i = 0; i < n; i++) out[i] = gelu_tanh(gate[i]) * up[i];
}

void gelu_tanh_cpu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = gelu_tanh(x[i]);
}

void softcap_cpu(float *x, size_t n, float cap) {
    for (size_t i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
}
