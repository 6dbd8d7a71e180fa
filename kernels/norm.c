#include "norm.h"

#include <math.h>
#include <stddef.h>

void rmsnorm_cpu(float *out, const float *x, const float *weight, float weight_offset, int N, int D, float eps,
                 float *rstd) {
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        float *o = out + (size_t)n * D;
        double ss = 0;  // accumulate in double: the reference computes mean(x²) in fp32 with pairwise sums
        for (int i = 0; i < D; i++) ss += (double)xr[i] * xr[i];
        float r = 1.0f / sqrtf((float)(ss / D) + eps);
        for (int i = 0; i < D; i++) o[i] = xr[i] * r * (weight_offset + weight[i]);
        if (rstd) rstd[n] = r;
    }
}

void layernorm_cpu(float *out, const float *x, const float *weight, const float *bias, int N, int D, float eps,
                   float *rstd) {
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        float *o = out + (size_t)n * D;
        double sum = 0;
        for (int i = 0; i < D; i++) sum += xr[i];
        float mean = (float)(sum / D);
        double var = 0;
        for (int i = 0; i < D; i++) var += (double)(xr[i] - mean) * (xr[i] - mean);
        float r = 1.0f / sqrtf((float)(var / D) + eps);
        for (int i = 0; i < D; i++) o[i] = (xr[i] - mean) * r * weight[i] + bias[i];
        if (rstd) rstd[n] = r;
    }
}
