// engine.h — the model's forward pass on the device a tool's --device names (cpu, or cuda);
// outputs are host buffers either way. The CUDA side is libcommon/model/model_forward_cuda.h,
// linked from libkernels_cuda.a where nvcc exists and from its stubs (model_forward_cuda_stub.c,
// kernels/cuda_stub.c, whose cuda_devices says "built without CUDA") elsewhere, so this header has
// no #ifdef. fwd-acts and feat-topk include it.
#pragma once
#include <string.h>

#include "cuda_common.h"
#include "err.h"
#include "model_forward_cuda.h"
#include "model.h"

// The forward pass on the chosen device; outputs are host buffers either way.
typedef struct {
    const Model *m;
    ForwardState *cpu;
    GpuCtx g;
    ModelGpu mg;
    ForwardStateGpu *gpu;
} Engine;

static inline void engine_init(Engine *en, const Model *m, const char *device, int B, int T) {
    memset(en, 0, sizeof *en);
    en->m = m;
    if (!strcmp(device, "cpu")) {
        en->cpu = forward_state_new(m, B, T);
        return;
    }
    if (strcmp(device, "cuda")) fatal("--device must be cpu or cuda, not '%s'", device);
    Error e;
    if (cuda_devices(&e) < 0) fatal("--device cuda: %s", e.msg);
    if (gpu_ctx_init(&en->g, &e) || model_gpu_upload(&en->mg, m, &e)) fatal_err(&e);
    en->gpu = forward_state_gpu_new(&en->mg, B, T, &e);
    if (!en->gpu) fatal_err(&e);
}

static inline int engine_forward(Engine *en, const uint32_t *tokens, int B, int T, ForwardOutputs *out, Error *e) {
    if (en->gpu) return forward_cuda(&en->g, &en->mg, en->gpu, tokens, B, T, out, e);
    return model_forward(en->m, en->cpu, tokens, B, T, out, e);
}

static inline void engine_free(Engine *en) {
    forward_state_free(en->cpu);
    if (en->gpu) {
        forward_state_gpu_free(en->gpu);
        model_gpu_free(&en->mg);
        gpu_ctx_free(&en->g);
    }
}
