// model_forward_cuda.h — the GPU forward pass: libcommon/model/model_forward.c on the device, over the CUDA
// kernel twins (cuBLAS sgemm, norm.cu, rope.cu, attention.cu, act.cu), fp32 throughout.
//
//   ModelGpu mg;  model_gpu_upload(&mg, &model, &e);          // fp32 weights -> device
//   GpuCtx g;     gpu_ctx_init(&g, &e);                        // stream + cuBLAS handle
//   ForwardStateGpu *s = forward_state_gpu_new(&mg, B, T, &e); // activations, rope tables
//   forward_cuda(&g, &mg, s, tokens, B, T, &out, &e);          // as model_forward
//
// ForwardOutputs has model_forward's semantics exactly (same hooks, same n_run_layers rule, same
// errors). Every output pointer may be host memory or device memory (cudaMalloc'd): results are
// computed in device scratch and copied out with cudaMemcpyDefault (unified addressing tells the
// two apart), so fwd-acts can pass its host hook buffers, and a device consumer its own. When
// forward_cuda returns 0 the stream has been synchronized: host outputs are ready.
// Scratch for attention probs (B*H*T*T floats) and logits (B*T*V) is allocated on first use.
//
// Nothing here touches global state: a ModelGpu is read-only after upload and can be shared by
// several states/contexts on the same device; a state belongs to one forward at a time.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "err.h"
#include "gpu_ctx.h"
#include "model.h"

typedef struct {
    ModelConfig cfg;         // a copy; cfg.layer_sliding points to this struct's own host array
    float *embed;            // (V, D) device
    float *pos_embed;        // (max_pos, D) device, GPT-2, else NULL
    LayerWeights *layers;    // host array (n_layers) holding device pointers (NULL where Model's is)
    float *final_norm_w, *final_norm_b;
    float *lm_head;          // == embed when tied
    size_t bytes;            // device bytes held
    void **owned;            // every device allocation
    int n_owned, cap_owned;
} ModelGpu;

// Copies m's fp32 weights to the current device. 0, or -1 with an Error (out of memory...);
// on failure everything is freed.
int model_gpu_upload(ModelGpu *mg, const Model *m, Error *e);
void model_gpu_free(ModelGpu *mg);

typedef struct ForwardStateGpu ForwardStateGpu;

// Device activations for up to B sequences of exactly T tokens. NULL with an Error on failure.
ForwardStateGpu *forward_state_gpu_new(const ModelGpu *mg, int B, int T, Error *e);
void forward_state_gpu_free(ForwardStateGpu *s);

// tokens: host (B, T). Queues everything on g's stream and waits for it. 0, or -1 with an Error.
int forward_cuda(const GpuCtx *g, const ModelGpu *mg, ForwardStateGpu *s, const uint32_t *tokens, int B, int T,
                 ForwardOutputs *out, Error *e);

#ifdef __cplusplus
}
#endif
