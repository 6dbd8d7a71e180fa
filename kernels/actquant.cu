// actquant.cu — CUDA twin of actq_decode_rows (kernels/actquant.c): one thread per output value,
// grid-stride. fp8 codes go through CUDA's own E4M3 conversion (as convert.cu does) rather than
// the CPU table, so gpu_test_dequant comparing the two bit for bit checks both. Every decoded
// value is an exact product (actquant.h), so the comparison is exact equality.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "actquant.h"
#include "cuda_common.h"

static const unsigned int BLOCK = 256;

__device__ static inline float bits_to_f32(uint32_t u) { return __uint_as_float(u); }

// The k-th w-byte element of a block: plain little-endian words, or byte planes P bytes apart.
__device__ static inline uint32_t load_elem(const uint8_t *p, size_t P, size_t k, int w) {
    uint32_t v = 0;
    for (int b = 0; b < w; b++) v |= (uint32_t)(P ? p[b * P + k] : p[k * w + b]) << (8 * b);
    return v;
}

__global__ void actq_decode_kernel(int enc, size_t d, size_t group, size_t ns, size_t val_planes, size_t scale_planes,
                                   const uint8_t *vals, const uint8_t *scales, size_t n, float *out) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / d, j = i - r * d;
        float v;
        if (enc == ACT_F32) {
            v = bits_to_f32(load_elem(vals, val_planes, i, 4));
        } else if (enc == ACT_BF16) {
            v = bits_to_f32(load_elem(vals, val_planes, i, 2) << 16);
        } else if (enc == ACT_F16) {
            v = __half2float(__ushort_as_half((unsigned short)load_elem(vals, val_planes, i, 2)));
        } else {
            size_t si = enc == ACT_INT4 ? r * ns + j / group : r;
            float s = bits_to_f32(load_elem(scales, scale_planes, si, 2) << 16);
            float q;
            if (enc == ACT_INT8) {
                q = (float)(int8_t)vals[i];
            } else if (enc == ACT_FP8) {
                __half h = __half(__nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)vals[i], __NV_E4M3));
                q = __half2float(h);  // every E4M3 value is exact in f16
            } else {
                uint8_t byte = vals[r * ((d + 1) / 2) + j / 2];
                int nib = (j & 1) ? byte >> 4 : byte & 15;
                q = (float)((nib ^ 8) - 8);
            }
            v = __fmul_rn(q, s);  // exact anyway; _rn keeps the compiler from fusing it
        }
        out[i] = v;
    }
}

extern "C" int actq_decode_rows_cuda(const GpuCtx *g, const ActqLayout *lay, const uint8_t *d_vals,
                                     const uint8_t *d_scales, size_t rows, float *d_out, Error *e) {
    size_t n = rows * lay->d;
    if (lay->enc < ACT_F32 || lay->enc > ACT_INT4)
        return err_set(e, "actquant.cu: unknown encoding %d", lay->enc);
    if (n == 0) return 0;
    size_t group = lay->enc == ACT_INT4 ? lay->param : lay->d;
    if (group == 0) return err_set(e, "actquant.cu: int4 group size 0");
    size_t ns = actq_row_scales(lay->enc, lay->param, lay->d);
    actq_decode_kernel<<<cuda_grid_for(n, BLOCK), BLOCK, 0, gpu_stream(g)>>>(
        lay->enc, lay->d, group, ns, lay->val_planes, lay->scale_planes, d_vals, d_scales, n, d_out);
    return gpu_launch_status(e, "actq_decode_rows_cuda");
}
