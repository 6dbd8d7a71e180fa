// attrib_cuda.h — `attrib --device cuda`: libcommon/attrib/attrib.c's attrib_rows on the GPU, over the
// CUDA twins of kernels/attrib_vjp.h and matmul.h's gemm_cuda, as an AttribBackend for attrib_run.
//
//   AttribGpu *ag = attrib_gpu_new(&m, &s, B, &e);   // uploads the model and the frozen state
//   AttribBackend be = attrib_gpu_backend(ag);      // AttribRunOptions.backend = &be
//
// Device memory: the model (ModelGpu, model_forward_cuda.h), the state attrib_capture made (queries,
// keys and statistics, norm scales, errors, token and decoder vectors: O(L·T·d) + the decoder
// vectors) and the work of a batch of B: 3·B·T·d + 2·B·T·head_dim + B × (sources) rows + one
// pattern tile (attrib_pattern_scratch_cuda). Rows come back to the host; fp32 throughout.
#pragma once

#include "attrib_vjp.h"  // first: its CUDA headers must stay outside extern "C"

#ifdef __cplusplus
extern "C" {
#endif

#include "attrib.h"  // C declarations without their own extern "C"
#include "err.h"

typedef struct AttribGpu AttribGpu;

// NULL with an Error (no device, out of memory). The state must outlive it.
AttribGpu *attrib_gpu_new(const Model *m, const AttribState *s, int B, Error *e);
void attrib_gpu_free(AttribGpu *ag);
AttribBackend attrib_gpu_backend(AttribGpu *ag);

#ifdef __cplusplus
}
#endif
