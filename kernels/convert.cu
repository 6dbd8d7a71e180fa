// convert.cu — CUDA twins of kernels/convert.c. They use CUDA's own conversion intrinsics rather
// than sharing the CPU code, so gpu_test_convert comparing the two bit for bit checks both.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "convert_cuda.h"
#include "gpu_ctx.h"
#include "cuda_common.h"
#include "dtype.h"  // StDtype

static const unsigned int BLOCK = 256;

__global__ void f16_to_f32_kernel(const __half *in, float *out, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __half2float(in[i]);
}

__global__ void bf16_to_f32_kernel(const __nv_bfloat16 *in, float *out, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __bfloat162float(in[i]);
}

__global__ void f8e4m3_to_f32_kernel(const __nv_fp8_storage_t *in, float *out, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        // every E4M3 value is exact in f16, so going through half loses nothing
        __half h = __half(__nv_cvt_fp8_to_halfraw(in[i], __NV_E4M3));
        out[i] = __half2float(h);
    }
}

__global__ void f32_to_bf16_kernel(const float *in, __nv_bfloat16 *out, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void f32_to_f16_kernel(const float *in, __half *out, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2half_rn(in[i]);
}

extern "C" int convert_to_f32_cuda(int src_dtype, const void *d_in, float *d_out, size_t n, Error *e) {
    if (n == 0) return 0;
    unsigned int grid = cuda_grid_for(n, BLOCK);
    switch (src_dtype) {
    case ST_F32: {
        cudaError_t err = cudaMemcpyAsync(d_out, d_in, n * sizeof(float), cudaMemcpyDeviceToDevice);
        return cuda_status(err, "convert.cu", "F32 copy failed", e);
    }
    case ST_F16:
        f16_to_f32_kernel<<<grid, BLOCK>>>(static_cast<const __half *>(d_in), d_out, n);
        return gpu_launch_status(e, "convert.cu: F16 -> F32");
    case ST_BF16:
        bf16_to_f32_kernel<<<grid, BLOCK>>>(static_cast<const __nv_bfloat16 *>(d_in), d_out, n);
        return gpu_launch_status(e, "convert.cu: BF16 -> F32");
    case ST_F8_E4M3:
        f8e4m3_to_f32_kernel<<<grid, BLOCK>>>(static_cast<const __nv_fp8_storage_t *>(d_in), d_out, n);
        return gpu_launch_status(e, "convert.cu: F8_E4M3 -> F32");
    default:
        return err_set(e, "convert.cu: no CUDA conversion from dtype %d to F32", src_dtype);
    }
}

extern "C" int convert_from_f32_cuda(int dst_dtype, const float *d_in, void *d_out, size_t n, Error *e) {
    if (n == 0) return 0;
    unsigned int grid = cuda_grid_for(n, BLOCK);
    switch (dst_dtype) {
    case ST_F32: {
        cudaError_t err = cudaMemcpyAsync(d_out, d_in, n * sizeof(float), cudaMemcpyDeviceToDevice);
        return cuda_status(err, "convert.cu", "F32 copy failed", e);
    }
    case ST_F16:
        f32_to_f16_kernel<<<grid, BLOCK>>>(d_in, static_cast<__half *>(d_out), n);
        return gpu_launch_status(e, "convert.cu: F32 -> F16");
    case ST_BF16:
        f32_to_bf16_kernel<<<grid, BLOCK>>>(d_in, static_cast<__nv_bfloat16 *>(d_out), n);
        return gpu_launch_status(e, "convert.cu: F32 -> BF16");
    default:
        return err_set(e, "convert.cu: no CUDA conversion from F32 to dtype %d", dst_dtype);
    }
}
