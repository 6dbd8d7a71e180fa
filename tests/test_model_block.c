// The block description (model.h's BlockSpec) that model_describe settles from config.json, for
// the tiny Hugging Face checkpoints of tests/golden/models: each expected value is what
// transformers 4.57's modeling code does with that config (modeling_llama.py, modeling_gemma2.py,
// modeling_gpt2.py), written here from the config's numbers, not from model.c's table. That every
// forward path computes with it is test_model's (HF goldens), test_generate's (KV cache = batched)
// and gpu_test_forward's (CUDA = CPU) business.
#include <math.h>

#include "check.h"
#include "model.h"

static int load(Model *m, const char *name) {
    char dir[256];
    Error e;
    snprintf(dir, sizeof dir, "tests/golden/models/%s", name);
    CHECK(!model_load(m, dir, &e), "%s", e.msg);
    return m->layers != NULL;
}

// LlamaRMSNorm (weight · x̂, eps rms_norm_eps), rotary q/k with the llama3 frequency scaling,
// SwiGLU, unscaled embeddings, scores / sqrt(head_dim), full causal attention.
static void test_llama3_description(void) {
    Model m;
    if (!load(&m, "llama3")) return;
    const BlockSpec *b = &m.cfg.block;
    CHECK(b->norm.kind == NORM_RMS && b->norm.weight_offset == 0.0f && b->norm.eps == m.cfg.norm_eps, "norm");
    CHECK(b->rope && b->rope_params.llama3 && b->rope_params.theta == 500000.0f && b->rope_params.factor == 8.0f &&
              b->rope_params.low_freq_factor == 1.0f && b->rope_params.high_freq_factor == 4.0f &&
              b->rope_params.original_max_pos == 16,
          "rope: llama3 scaling of the config");
    CHECK(b->mlp == MLP_GATED && b->act == ACT_SILU, "SwiGLU");
    CHECK(b->embed_scale == 1.0f && b->attn_softcap == 0 && b->final_softcap == 0, "no embedding scale, no caps");
    CHECK(!b->post_attn_norm && !b->post_mlp_norm, "no post norms");
    for (int l = 0; l < m.cfg.n_layers; l++)
        CHECK(b->layer[l].attn_scale == 1.0f / sqrtf((float)m.cfg.head_dim) && b->layer[l].window == 0,
              "layer %d: scale %g, window %d", l, b->layer[l].attn_scale, b->layer[l].window);
    model_free(&m);
}

// Gemma2RMSNorm ((1 + weight) · x̂), embeddings · sqrt(hidden_size) = 8, GeGLU (gelu_pytorch_tanh),
// the four norms per layer, scores · query_pre_attn_scalar^-0.5 capped at 5, logits capped at 3,
// and layer_types: sliding (window 8) on the even layers.
static void test_gemma2_description(void) {
    Model m;
    if (!load(&m, "gemma2")) return;
    const BlockSpec *b = &m.cfg.block;
    CHECK(b->norm.kind == NORM_RMS && b->norm.weight_offset == 1.0f && b->norm.eps == 1e-6f, "norm");
    CHECK(b->rope && !b->rope_params.llama3 && b->rope_params.theta == 10000.0f, "rope");
    CHECK(b->embed_scale == 8.0f, "embedding scale %g", b->embed_scale);
    CHECK(b->mlp == MLP_GATED && b->act == ACT_GELU_TANH, "GeGLU");
    CHECK(b->post_attn_norm && b->post_mlp_norm, "post norms");
    CHECK(b->attn_softcap == 5.0f && b->final_softcap == 3.0f, "caps %g %g", b->attn_softcap, b->final_softcap);
    CHECK(m.cfg.n_layers == 4, "layers");
    for (int l = 0; l < m.cfg.n_layers && l < 4; l++)
        CHECK(b->layer[l].attn_scale == 1.0f / sqrtf(24.0f) && b->layer[l].window == (l % 2 == 0 ? 8 : 0),
              "layer %d: scale %g, window %d", l, b->layer[l].attn_scale, b->layer[l].window);
    model_free(&m);
}

// GPT-2: LayerNorm (eps layer_norm_epsilon), learned positions, c_fc → gelu_new → c_proj with
// biases, scores / sqrt(head_dim) / (layer + 1) under scale_attn_by_inverse_layer_idx.
static void test_gpt2_description(void) {
    Model m;
    if (!load(&m, "gpt2_scaled")) return;
    const BlockSpec *b = &m.cfg.block;
    CHECK(b->norm.kind == NORM_LAYER && b->norm.eps == 1e-5f, "norm");
    CHECK(!b->rope && m.pos_embed, "learned positions, no rope");
    CHECK(b->mlp == MLP_PLAIN && b->act == ACT_GELU_TANH, "plain GELU MLP");
    CHECK(b->embed_scale == 1.0f && b->attn_softcap == 0 && b->final_softcap == 0, "no embedding scale, no caps");
    CHECK(!b->post_attn_norm && !b->post_mlp_norm, "no post norms");
    float base = 1.0f / sqrtf((float)m.cfg.head_dim);
    for (int l = 0; l < m.cfg.n_layers; l++)
        CHECK(b->layer[l].attn_scale == base / (float)(l + 1) && b->layer[l].window == 0, "layer %d: scale %g", l,
              b->layer[l].attn_scale);
    model_free(&m);
}

// A config built by hand (bench/bench_forward.c) gets its description from model_describe too,
// and describing again replaces the old one (no leak, no stale layer array).
static void test_describe_by_hand(void) {
    ModelConfig c = {0};
    c.arch = ARCH_LLAMA;
    c.n_layers = 3, c.head_dim = 64, c.d_model = 128, c.norm_eps = 1e-5f, c.rope_theta = 10000.0f;
    c.query_scale = 0.125f;
    model_describe(&c);
    CHECK(c.block.layer && c.block.layer[2].attn_scale == 0.125f && c.block.norm.eps == 1e-5f, "llama by hand");
    c.arch = ARCH_GPT2;
    c.attn_scale_by_layer = 1;
    model_describe(&c);
    CHECK(c.block.norm.kind == NORM_LAYER && !c.block.rope && c.block.layer[2].attn_scale == 0.125f / 3.0f,
          "described again as GPT-2");
    free(c.block.layer);
}

int main(void) {
    RUN_TEST(test_llama3_description);
    RUN_TEST(test_gemma2_description);
    RUN_TEST(test_gpt2_description);
    RUN_TEST(test_describe_by_hand);
    return test_summary();
}
