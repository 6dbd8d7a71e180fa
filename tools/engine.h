// engine.h — the model's forward pass on the device a tool's --device names (cpu, or cuda when
// the tool is built with -DUSE_CUDA, Makefile CUDA_TOOLS); outputs are host buffers either way.
// A header of static functions because the CUDA path depends on the tool's own build flags
// (libcommon is compiled without CUDA); fwd-acts and feat-topk include it.
#pragma once
#include <string.h>

#include "err.h"
#include "model.h"
#ifdef USE_CUDA
#include "cuda_common.h"
#include "forward_cuda.h"
#endif

// The forward pass on the chosen device; outputs are host buffers either way.
typedef struct {
    const Model *m;
    ForwardState *cpu;
#ifdef USE_CUDA
    GpuCtx g;
    ModelGpu mg;
    ForwardStateGpu *gpu;
#endif
} Engine;

static inline void engine_init(Engine *en, const Model *m, const char *device, int B, int T) {
    memset(en, 0, sizeof *en);
    en->m = m;
    if (!strcmp(device, "cpu")) {
        en->cpu = forward_state_new(m, B, T);
        return;
    }
    if (strcmp(device, "cuda")) fatal("--device must be cpu or cuda, not '%s'", device);
#ifdef USE_CUDA
    Error e;
    if (cuda_device_count() < 1) fatal("--device cuda: no CUDA device is visible");
    if (gpu_ctx_init(&en->g, &e) || model_gpu_upload(&en->mg, m, &e)) fatal_err(&e);
    en->gpu = forward_state_gpu_new(&en->mg, B, T, &e);
    if (!en->gpu) fatal_err(&e);
#else
    fatal("--device cuda: this build has no CUDA backend (nvcc was not found at build time)");
#endif
}

static inline int engine_forward(Engine *en, const uint32_t *tokens, int B, int T, ForwardOutputs *out, Error *e) {
#ifdef USE_CUDA
    if (en->gpu) return forward_cuda(&en->g, &en->mg, en->gpu, tokens, B, T, out, e);
#endif
    return model_forward(en->m, en->cpu, tokens, B, T, out, e);
}

static inline void engine_free(Engine *en) {
    forward_state_free(en->cpu);
#ifdef USE_CUDA
    if (en->gpu) {
        forward_state_gpu_free(en->gpu);
        model_gpu_free(&en->mg);
        gpu_ctx_free(&en->g);
    }
#endif
}

