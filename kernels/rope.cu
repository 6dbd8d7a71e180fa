// rope.cu — CUDA twin of rope_apply_cpu: one thread per rotated pair (row, head, i < hd/2),
// grid-stride. Pair (i, i + hd/2) of head h in row r uses position r % T.
#include "cuda_common.h"
#include "rope.h"

static const unsigned int ROPE_BLOCK = 256;

__global__ void rope_kernel(float *x, const float *cos_t, const float *sin_t, int T, int n_heads, int hd,
                            size_t n_pairs) {
    const int half = hd / 2;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n_pairs;
         idx += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(idx % half);
        size_t rh = idx / half;            // row * n_heads + head
        size_t r = rh / n_heads;           // the token row, 0 .. B*T-1
        size_t pos = r % T;
        float *v = x + rh * hd;            // == x + (r * n_heads + h) * hd
        float c = cos_t[pos * half + i], s = sin_t[pos * half + i];
        float a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
    }
}

extern "C" int rope_apply_cuda(const GpuCtx *g, float *x, const float *cos_t, const float *sin_t, int B, int T,
                               int n_heads, int hd, Error *e) {
    size_t n_pairs = (size_t)B * T * n_heads * (hd / 2);
    if (n_pairs == 0) return 0;
    rope_kernel<<<cuda_grid_for(n_pairs, ROPE_BLOCK), ROPE_BLOCK, 0, gpu_stream(g)>>>(x, cos_t, sin_t, T, n_heads, hd,
                                                                                      n_pairs);
    return gpu_launch_status(e, "rope_apply_cuda");
}
