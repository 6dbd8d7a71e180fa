// model.c — config.json parsing and weight loading for model.h.
#include "model.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "fnv.h"
#include "safetensors.h"

// ---------------------------------------------------------------------------------------------
// config.json keys: what each key transformers reads does here (tests/golden/models/hf_config_keys.json
// lists them per architecture, tests/test_model.c checks every one is in this table). A key that would
// change the computation is either implemented (USED) or CHECKED: only the values in `accept` (a JSON
// array; an absent key is HF's default, always accepted) run, others are refused with an error naming
// the key. NO_EFFECT keys cannot change an fp32 eval forward pass. `bad` is a value the test expects
// to be refused.

enum { A_LLAMA = 1 << ARCH_LLAMA, A_GEMMA2 = 1 << ARCH_GEMMA2, A_GPT2 = 1 << ARCH_GPT2 };
#define A_ALL (A_LLAMA | A_GEMMA2 | A_GPT2)
#define A_LG (A_LLAMA | A_GEMMA2)

typedef struct {
    const char *key;
    int archs;
    ModelKeyUse use;
    const char *accept, *bad;  // CHECKED only
} ConfigKey;

static const ConfigKey CONFIG_KEYS[] = {
    // the architecture: read by parse_config, verified by the transformers goldens
    {"model_type", A_ALL, KEY_USED, NULL, NULL},
    {"vocab_size", A_ALL, KEY_USED, NULL, NULL},
    {"hidden_size", A_ALL, KEY_USED, NULL, NULL},  // GPT-2: alias of n_embd
    {"num_hidden_layers", A_ALL, KEY_USED, NULL, NULL},  // GPT-2: alias of n_layer
    {"num_attention_heads", A_ALL, KEY_USED, NULL, NULL},  // GPT-2: alias of n_head
    {"max_position_embeddings", A_ALL, KEY_USED, NULL, NULL},  // GPT-2: alias of n_positions
    {"intermediate_size", A_LG, KEY_USED, NULL, NULL},
    {"num_key_value_heads", A_LG, KEY_USED, NULL, NULL},
    {"head_dim", A_LG, KEY_USED, NULL, NULL},
    {"rms_norm_eps", A_LG, KEY_USED, NULL, NULL},
    {"rope_theta", A_LG, KEY_USED, NULL, NULL},
    {"rope_scaling", A_LG, KEY_USED, NULL, NULL},  // rope types default and llama3; others refused
    {"attention_bias", A_LG, KEY_USED, NULL, NULL},
    {"tie_word_embeddings", A_ALL, KEY_USED, NULL, NULL},
    {"bos_token_id", A_ALL, KEY_USED, NULL, NULL},
    {"eos_token_id", A_ALL, KEY_USED, NULL, NULL},
    {"query_pre_attn_scalar", A_GEMMA2, KEY_USED, NULL, NULL},
    {"attn_logit_softcapping", A_GEMMA2, KEY_USED, NULL, NULL},
    {"final_logit_softcapping", A_GEMMA2, KEY_USED, NULL, NULL},
    {"sliding_window", A_GEMMA2, KEY_USED, NULL, NULL},
    {"layer_types", A_GEMMA2, KEY_USED, NULL, NULL},  // sliding_attention / full_attention
    {"n_embd", A_GPT2, KEY_USED, NULL, NULL},
    {"n_layer", A_GPT2, KEY_USED, NULL, NULL},
    {"n_head", A_GPT2, KEY_USED, NULL, NULL},
    {"n_positions", A_GPT2, KEY_USED, NULL, NULL},
    {"n_inner", A_GPT2, KEY_USED, NULL, NULL},
    {"layer_norm_epsilon", A_GPT2, KEY_USED, NULL, NULL},
    {"scale_attn_by_inverse_layer_idx", A_GPT2, KEY_USED, NULL, NULL},
    // implemented for one value (or a few) only
    {"hidden_act", A_LLAMA, KEY_CHECKED, "[\"silu\"]", "\"gelu\""},
    {"hidden_activation", A_GEMMA2, KEY_CHECKED, "[null, \"gelu_pytorch_tanh\"]", "\"gelu\""},
    {"activation_function", A_GPT2, KEY_CHECKED, "[\"gelu_new\", \"gelu_pytorch_tanh\"]", "\"relu\""},
    {"mlp_bias", A_LLAMA, KEY_CHECKED, "[null, false]", "true"},
    {"scale_attn_weights", A_GPT2, KEY_CHECKED, "[null, true]", "false"},
    {"add_cross_attention", A_GPT2, KEY_CHECKED, "[null, false]", "true"},
    {"partial_rotary_factor", A_LG, KEY_CHECKED, "[null, 1]", "0.5"},  // rope on part of each head
    {"attention_chunk_size", A_LLAMA | A_GPT2, KEY_CHECKED, "[null]", "16"},  // chunked attention masks
    {"sliding_window", A_LLAMA | A_GPT2, KEY_CHECKED, "[null]", "16"},  // makes HF's cache slide
    {"layer_types", A_LLAMA | A_GPT2, KEY_CHECKED, "[null]", "[\"sliding_attention\"]"},
    {"num_kv_shared_layers", A_ALL, KEY_CHECKED, "[null, 0]", "1"},  // layers reusing another's cache
    {"quantization_config", A_ALL, KEY_CHECKED, "[null]", "{\"quant_method\": \"bitsandbytes\"}"},
    {"pruned_heads", A_ALL, KEY_CHECKED, "[null, {}]", "{\"0\": [1]}"},
    {"is_encoder_decoder", A_ALL, KEY_CHECKED, "[null, false]", "true"},
    {"text_config", A_ALL, KEY_CHECKED, "[null]", "{}"},  // a composite (multimodal) model
    {"decoder", A_ALL, KEY_CHECKED, "[null]", "{}"},
    // no effect on an fp32 forward pass in eval mode
    {"attention_dropout", A_LG, KEY_NO_EFFECT, NULL, NULL},  // dropout: training only
    {"attn_pdrop", A_GPT2, KEY_NO_EFFECT, NULL, NULL},
    {"embd_pdrop", A_GPT2, KEY_NO_EFFECT, NULL, NULL},
    {"resid_pdrop", A_GPT2, KEY_NO_EFFECT, NULL, NULL},
    {"classifier_dropout", A_GPT2, KEY_NO_EFFECT, NULL, NULL},
    {"hidden_dropout", A_GPT2, KEY_NO_EFFECT, NULL, NULL},
    {"summary_activation", A_GPT2, KEY_NO_EFFECT, NULL, NULL},  // summary_*: GPT2DoubleHeadsModel's head
    {"summary_first_dropout", A_GPT2, KEY_NO_EFFECT, NULL, NULL},
    {"summary_last_dropout", A_GPT2, KEY_NO_EFFECT, NULL, NULL},
    {"summary_proj_to_labels", A_GPT2, KEY_NO_EFFECT, NULL, NULL},
    {"summary_type", A_GPT2, KEY_NO_EFFECT, NULL, NULL},
    {"summary_use_proj", A_GPT2, KEY_NO_EFFECT, NULL, NULL},
    {"num_labels", A_GPT2, KEY_NO_EFFECT, NULL, NULL},  // classification heads
    {"problem_type", A_GPT2, KEY_NO_EFFECT, NULL, NULL},
    {"reorder_and_upcast_attn", A_GPT2, KEY_NO_EFFECT, NULL, NULL},  // same math in fp32 (golden gpt2_scaled)
    {"pretraining_tp", A_LLAMA, KEY_NO_EFFECT, NULL, NULL},  // not read by transformers 4.57's Llama
    {"initializer_range", A_ALL, KEY_NO_EFFECT, NULL, NULL},  // init of new weights
    {"pad_token_id", A_ALL, KEY_NO_EFFECT, NULL, NULL},  // embedding padding_idx: gradients only
    {"use_cache", A_ALL, KEY_NO_EFFECT, NULL, NULL},  // output selection and bookkeeping
    {"output_attentions", A_ALL, KEY_NO_EFFECT, NULL, NULL},
    {"output_hidden_states", A_ALL, KEY_NO_EFFECT, NULL, NULL},
    {"return_dict", A_ALL, KEY_NO_EFFECT, NULL, NULL},
    {"use_return_dict", A_ALL, KEY_NO_EFFECT, NULL, NULL},
    {"torchscript", A_ALL, KEY_NO_EFFECT, NULL, NULL},
    {"gradient_checkpointing", A_ALL, KEY_NO_EFFECT, NULL, NULL},
    {"base_model_ep_plan", A_ALL, KEY_NO_EFFECT, NULL, NULL},  // parallelism plans
    {"base_model_pp_plan", A_ALL, KEY_NO_EFFECT, NULL, NULL},
    {"base_model_tp_plan", A_ALL, KEY_NO_EFFECT, NULL, NULL},
    {"name_or_path", A_ALL, KEY_NO_EFFECT, NULL, NULL},
    {"transformers_version", A_ALL, KEY_NO_EFFECT, NULL, NULL},
    {"generator", A_ALL, KEY_NO_EFFECT, NULL, NULL},  // a probe of generic code, not a config.json key
    {"sub_configs", A_ALL, KEY_NO_EFFECT, NULL, NULL},  // a class attribute (no sub-configs here)
};

static const ConfigKey *config_key(ModelArch arch, const char *key) {
    for (size_t i = 0; i < sizeof CONFIG_KEYS / sizeof *CONFIG_KEYS; i++)
        if (CONFIG_KEYS[i].archs & (1 << arch) && !strcmp(CONFIG_KEYS[i].key, key)) return &CONFIG_KEYS[i];
    return NULL;
}

int model_config_key_use(ModelArch arch, const char *key, const char **bad) {
    const ConfigKey *k = config_key(arch, key);
    if (bad) *bad = k ? k->bad : NULL;
    return k ? (int)k->use : -1;
}

// Numbers compare by value (1 == 1.0), everything else structurally.
static int json_same(json_t *a, json_t *b) {
    if (json_is_number(a) && json_is_number(b)) return json_number_value(a) == json_number_value(b);
    return json_equal(a, b);
}

// Refuses a CHECKED key whose value is not one of the accepted ones.
static int check_keys(ModelArch arch, json_t *root, const char *path, Error *e) {
    for (size_t i = 0; i < sizeof CONFIG_KEYS / sizeof *CONFIG_KEYS; i++) {
        const ConfigKey *k = &CONFIG_KEYS[i];
        json_t *v = json_object_get(root, k->key);
        if (k->use != KEY_CHECKED || !(k->archs & (1 << arch)) || !v) continue;
        json_t *accept = json_loads(k->accept, JSON_DECODE_ANY, NULL);
        int ok = 0;
        for (size_t j = 0; j < json_array_size(accept); j++) ok |= json_same(v, json_array_get(accept, j));
        json_decref(accept);
        if (!ok) {
            char *txt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            err_set(e, "%s: \"%s\": %.80s is not supported (supported: %s)", path, k->key, txt ? txt : "?", k->accept);
            free(txt);
            return -1;
        }
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// config.json

#define MAX_CFG_INT (1 << 24)
#define MAX_WIDTH (1 << 24)  // the widest activation row (heads × head_dim) the int indexing allows

static int cfg_int(json_t *root, const char *key, int def, int *out, const char *path, Error *e) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (def == -999) return err_set(e, "%s: missing \"%s\"", path, key);
        *out = def;
        return 0;
    }
    // The cap keeps every product of two config values below 2^48 and 4·x below INT_MAX.
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > MAX_CFG_INT)
        return err_set(e, "%s: \"%s\" must be an integer in [0, %d]", path, key, MAX_CFG_INT);
    *out = (int)json_integer_value(v);
    return 0;
}

static int cfg_float(json_t *root, const char *key, float def, float *out, const char *path, Error *e) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_number(v) || !isfinite((float)json_number_value(v)))
        return err_set(e, "%s: \"%s\" must be a finite number", path, key);
    *out = (float)json_number_value(v);
    return 0;
}

#define REQUIRED (-999)

// GPT2Config's attribute_map: "hidden_size" etc. set n_embd etc. (the alias wins in transformers, as
// kwargs are applied after the named parameters); both present and different is an error.
static int gpt2_aliases(json_t *root, const char *path, Error *e) {
    static const char *map[][2] = {{"hidden_size", "n_embd"}, {"num_hidden_layers", "n_layer"},
                                   {"num_attention_heads", "n_head"}, {"max_position_embeddings", "n_positions"}};
    for (int i = 0; i < 4; i++) {
        json_t *a = json_object_get(root, map[i][0]), *n = json_object_get(root, map[i][1]);
        if (!a) continue;
        if (n && !json_equal(a, n))
            return err_set(e, "%s: \"%s\" and \"%s\" disagree", path, map[i][0], map[i][1]);
        json_object_set(root, map[i][1], a);
    }
    return 0;
}

static int parse_config(ModelConfig *c, json_t *root, const char *path, Error *e) {
    const char *type = json_string_value(json_object_get(root, "model_type"));
    if (!type) return err_set(e, "%s: missing \"model_type\"", path);
    snprintf(c->model_type, sizeof c->model_type, "%s", type);
    c->bos_id = c->eos_id = -1;
    json_t *jb = json_object_get(root, "bos_token_id"), *je = json_object_get(root, "eos_token_id");
    if (json_is_array(je)) je = json_array_get(je, 0);  // (NULL for an empty list)
    json_t *ids[2] = {jb, je};
    const char *id_keys[2] = {"bos_token_id", "eos_token_id"};
    int *id_out[2] = {&c->bos_id, &c->eos_id};
    for (int i = 0; i < 2; i++) {  // checked against vocab_size below
        if (!ids[i] || json_is_null(ids[i])) continue;
        if (!json_is_integer(ids[i]) || json_integer_value(ids[i]) < 0 || json_integer_value(ids[i]) > INT_MAX)
            return err_set(e, "%s: \"%s\" is not a token id", path, id_keys[i]);
        *id_out[i] = (int)json_integer_value(ids[i]);
    }

    if (!strcmp(type, "llama") || !strcmp(type, "gemma2")) {
        int gemma = !strcmp(type, "gemma2");
        c->arch = gemma ? ARCH_GEMMA2 : ARCH_LLAMA;
        if (cfg_int(root, "hidden_size", REQUIRED, &c->d_model, path, e) ||
            cfg_int(root, "intermediate_size", REQUIRED, &c->d_ff, path, e) ||
            cfg_int(root, "num_hidden_layers", REQUIRED, &c->n_layers, path, e) ||
            cfg_int(root, "num_attention_heads", REQUIRED, &c->n_heads, path, e) ||
            cfg_int(root, "vocab_size", REQUIRED, &c->vocab_size, path, e) ||
            cfg_int(root, "num_key_value_heads", 0, &c->n_kv_heads, path, e) ||
            cfg_int(root, "head_dim", gemma ? 256 : 0, &c->head_dim, path, e) ||
            cfg_int(root, "max_position_embeddings", 2048, &c->max_pos, path, e) ||
            cfg_float(root, "rms_norm_eps", 1e-6f, &c->norm_eps, path, e) ||
            cfg_float(root, "rope_theta", 10000.0f, &c->rope_theta, path, e))
            return -1;
        if (!c->n_kv_heads) c->n_kv_heads = c->n_heads;
        if (!c->head_dim && c->n_heads) c->head_dim = c->d_model / c->n_heads;
        json_t *tie = json_object_get(root, "tie_word_embeddings");
        c->tie_embeddings = tie ? json_is_true(tie) : gemma;
        c->attn_bias = json_is_true(json_object_get(root, "attention_bias"));
        // activations, mlp_bias: check_keys
        json_t *rs = json_object_get(root, "rope_scaling");
        const char *rt = NULL;
        if (rs && !json_is_null(rs) && !json_is_object(rs))
            return err_set(e, "%s: \"rope_scaling\" must be an object or null", path);
        if (json_is_object(rs)) {
            rt = json_string_value(json_object_get(rs, "rope_type"));
            if (!rt) rt = json_string_value(json_object_get(rs, "type"));
            // "default" is plain RoPE in transformers (its other fields are not read)
            if (!rt || (strcmp(rt, "llama3") && strcmp(rt, "default")))
                return err_set(e, "%s: rope_scaling type \"%s\" is not supported (only default and llama3)", path,
                               rt ? rt : "?");
        }
        if (rt && !strcmp(rt, "llama3")) {
            c->rope_llama3 = 1;
            if (cfg_float(rs, "factor", 8.0f, &c->rope_factor, path, e) ||
                cfg_float(rs, "low_freq_factor", 1.0f, &c->rope_low_freq_factor, path, e) ||
                cfg_float(rs, "high_freq_factor", 4.0f, &c->rope_high_freq_factor, path, e) ||
                cfg_int(rs, "original_max_position_embeddings", 8192, &c->rope_original_max_pos, path, e))
                return -1;
        }
        c->query_scale = 0;  // set below
        if (gemma) {
            float qpas = 256.0f;
            if (cfg_float(root, "query_pre_attn_scalar", 256.0f, &qpas, path, e) ||
                cfg_float(root, "attn_logit_softcapping", 0.0f, &c->attn_softcap, path, e) ||
                cfg_float(root, "final_logit_softcapping", 0.0f, &c->final_softcap, path, e) ||
                cfg_int(root, "sliding_window", 4096, &c->sliding_window, path, e))
                return -1;
            if (!(qpas > 0)) return err_set(e, "%s: \"query_pre_attn_scalar\" %g must be > 0", path, qpas);
            c->query_scale = 1.0f / sqrtf(qpas);
        }
    } else if (!strcmp(type, "gpt2")) {
        c->arch = ARCH_GPT2;
        if (gpt2_aliases(root, path, e)) return -1;
        if (cfg_int(root, "n_embd", REQUIRED, &c->d_model, path, e) ||
            cfg_int(root, "n_layer", REQUIRED, &c->n_layers, path, e) ||
            cfg_int(root, "n_head", REQUIRED, &c->n_heads, path, e) ||
            cfg_int(root, "vocab_size", REQUIRED, &c->vocab_size, path, e) ||
            cfg_int(root, "n_positions", 1024, &c->max_pos, path, e) ||
            cfg_int(root, "n_inner", 0, &c->d_ff, path, e) ||
            cfg_float(root, "layer_norm_epsilon", 1e-5f, &c->norm_eps, path, e))
            return -1;
        if (!c->d_ff) c->d_ff = 4 * c->d_model;
        c->n_kv_heads = c->n_heads;
        c->head_dim = c->n_heads ? c->d_model / c->n_heads : 0;
        json_t *tie = json_object_get(root, "tie_word_embeddings");
        c->tie_embeddings = tie && !json_is_null(tie) ? json_is_true(tie) : 1;  // HF's default: tied
        c->attn_bias = 1;
        c->attn_scale_by_layer = json_is_true(json_object_get(root, "scale_attn_by_inverse_layer_idx"));
    } else {
        return err_set(e, "%s: unknown model_type \"%s\" (supported: llama, gemma2, gpt2)", path, type);
    }
    if (check_keys(c->arch, root, path, e)) return -1;
    if (c->n_layers < 1 || c->d_model < 1 || c->n_heads < 1 || c->vocab_size < 1 || c->head_dim < 2 || c->head_dim % 2)
        return err_set(e, "%s: invalid dimensions (layers %d, hidden %d, heads %d, head_dim %d, vocab %d)", path,
                       c->n_layers, c->d_model, c->n_heads, c->head_dim, c->vocab_size);
    // values that turn every activation into NaN/inf (a negative epsilon under the square root, a
    // zero RoPE base or scaling factor, an empty llama3 smoothing band)
    if (c->norm_eps < 0) return err_set(e, "%s: the norm epsilon %g must be >= 0", path, c->norm_eps);
    if (c->arch != ARCH_GPT2 && !(c->rope_theta > 0))
        return err_set(e, "%s: \"rope_theta\" %g must be > 0", path, c->rope_theta);
    if (c->rope_llama3 && !(c->rope_factor > 0 && c->rope_low_freq_factor > 0 &&
                            c->rope_high_freq_factor > c->rope_low_freq_factor && c->rope_original_max_pos > 0))
        return err_set(e, "%s: rope_scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
                       "original_max_position_embeddings > 0 (got %g, %g, %g, %d)", path, c->rope_factor,
                       c->rope_low_freq_factor, c->rope_high_freq_factor, c->rope_original_max_pos);
    if (c->attn_softcap < 0 || c->final_softcap < 0)
        return err_set(e, "%s: logit softcapping must be >= 0 (got %g, %g)", path, c->attn_softcap, c->final_softcap);
    if (c->bos_id >= c->vocab_size || c->eos_id >= c->vocab_size)
        return err_set(e, "%s: bos_token_id %d / eos_token_id %d outside the vocabulary (%d)", path, c->bos_id,
                       c->eos_id, c->vocab_size);
    if ((int64_t)c->n_heads * c->head_dim > MAX_WIDTH || (int64_t)c->n_kv_heads * c->head_dim > MAX_WIDTH)
        return err_set(e, "%s: attention heads × head_dim (%d × %d) is absurd (more than %d)", path, c->n_heads,
                       c->head_dim, MAX_WIDTH);
    if (c->n_heads % c->n_kv_heads)
        return err_set(e, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path, c->n_heads,
                       c->n_kv_heads);
    if (!c->query_scale) c->query_scale = 1.0f / sqrtf((float)c->head_dim);

    c->layer_sliding = xcalloc((size_t)c->n_layers, 1);
    if (c->arch == ARCH_GEMMA2) {
        json_t *lt = json_object_get(root, "layer_types");
        if (json_is_array(lt)) {
            if ((int)json_array_size(lt) != c->n_layers)
                return err_set(e, "%s: \"layer_types\" has %zu entries for %d layers", path, json_array_size(lt),
                               c->n_layers);
            for (int l = 0; l < c->n_layers; l++) {
                const char *s = json_string_value(json_array_get(lt, (size_t)l));
                if (!s || (strcmp(s, "sliding_attention") && strcmp(s, "full_attention")))
                    return err_set(e, "%s: layer_types[%d] is not \"sliding_attention\" or \"full_attention\"",
                                   path, l);
                c->layer_sliding[l] = !strcmp(s, "sliding_attention");
            }
        } else {
            for (int l = 0; l < c->n_layers; l++) c->layer_sliding[l] = l % 2 == 0;  // Gemma 2's default
        }
    }
    model_describe(c);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// the block description (model.h): what each architecture computes, settled once

void model_describe(ModelConfig *c) {
    BlockSpec *b = &c->block;
    free(b->layer);
    memset(b, 0, sizeof *b);
    b->norm = (NormSpec){NORM_RMS, c->norm_eps, 0.0f};
    b->rope = 1;
    b->rope_params = (RopeParams){c->rope_theta, c->rope_llama3, c->rope_factor, c->rope_low_freq_factor,
                                  c->rope_high_freq_factor, c->rope_original_max_pos};
    b->embed_scale = 1.0f;
    b->mlp = MLP_GATED;
    b->act = ACT_SILU;
    switch (c->arch) {
        case ARCH_LLAMA:
            break;
        case ARCH_GEMMA2:
            b->norm.weight_offset = 1.0f;
            b->embed_scale = sqrtf((float)c->d_model);
            b->attn_softcap = c->attn_softcap;
            b->act = ACT_GELU_TANH;
            b->post_attn_norm = b->post_mlp_norm = 1;
            b->final_softcap = c->final_softcap;
            break;
        case ARCH_GPT2:
            b->norm.kind = NORM_LAYER;
            b->rope = 0;
            b->mlp = MLP_PLAIN;
            b->act = ACT_GELU_TANH;  // gelu_new
            break;
    }
    b->layer = xcalloc((size_t)c->n_layers, sizeof *b->layer);
    for (int l = 0; l < c->n_layers; l++) {
        b->layer[l].attn_scale = c->attn_scale_by_layer ? c->query_scale / (float)(l + 1) : c->query_scale;
        b->layer[l].window = c->layer_sliding && c->layer_sliding[l] ? c->sliding_window : 0;
    }
}

// ---------------------------------------------------------------------------------------------
// weights

typedef struct {
    SafeTensors *files;
    int n_files;
} Shards;

static const StTensor *shards_find(const Shards *sh, const char *name, const SafeTensors **file) {
    for (int i = 0; i < sh->n_files; i++) {
        const StTensor *t = safetensors_find(&sh->files[i], name);
        if (t) {
            *file = &sh->files[i];
            return t;
        }
    }
    return NULL;
}

static float *model_alloc(Model *m, size_t n) {
    if (m->n_owned == m->cap_owned) {
        m->cap_owned = m->cap_owned ? 2 * m->cap_owned : 64;
        m->owned = xrealloc(m->owned, (size_t)m->cap_owned * sizeof *m->owned);
    }
    return m->owned[m->n_owned++] = xmalloc(n * sizeof(float));
}

// Loads a tensor of the given shape (rows, cols; cols = 0 for a vector) as fp32.
// optional: a missing tensor returns NULL without error.
static int load_tensor(Model *m, const Shards *sh, const char *name, int64_t rows, int64_t cols, int optional,
                       float **out, Error *e) {
    const SafeTensors *file;
    const StTensor *t = shards_find(sh, name, &file);
    *out = NULL;
    if (!t) return optional ? 0 : err_set(e, "%s: missing tensor \"%s\"", m->dir, name);
    int ok =
        cols ? (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols) : (t->ndim == 1 && t->shape[0] == rows);
    if (!ok) {
        char got[128] = "";
        size_t n = 0;
        for (int i = 0; i < t->ndim && n < sizeof got - 24; i++)
            n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (cols)
            return err_set(e, "%s: tensor \"%s\" has shape [%s], config implies [%lld, %lld]", file->path, name, got,
                           (long long)rows, (long long)cols);
        return err_set(e, "%s: tensor \"%s\" has shape [%s], config implies [%lld]", file->path, name, got,
                       (long long)rows);
    }
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64 && t->dtype != ST_F8_E4M3)
        return err_set(e, "%s: tensor \"%s\" has dtype %s: weights must be floating point", file->path, name,
                       st_dtype_name(t->dtype));
    float *buf = model_alloc(m, (size_t)t->numel);
    if (safetensors_to_f32(file, t, buf, t->numel, e)) return -1;
    for (uint64_t i = 0; i < t->numel; i++)  // one NaN/inf weight makes every later activation NaN
        if (!isfinite(buf[i]))
            return err_set(e, "%s: tensor \"%s\" element %llu is %g: weights must be finite", file->path, name,
                           (unsigned long long)i, buf[i]);
    *out = buf;
    return 0;
}

// GPT-2's Conv1D stores (in, out); transposes into a new (out, in) buffer.
static float *transposed(Model *m, const float *w, int in, int out) {
    float *t = model_alloc(m, (size_t)in * out);
    for (int i = 0; i < in; i++)
        for (int o = 0; o < out; o++) t[(size_t)o * in + i] = w[(size_t)i * out + o];
    return t;
}

static int load_llama_like(Model *m, const Shards *sh, Error *e) {
    const ModelConfig *c = &m->cfg;
    int D = c->d_model, F = c->d_ff, V = c->vocab_size, qd = c->n_heads * c->head_dim,
        kvd = c->n_kv_heads * c->head_dim;
    int gemma = c->arch == ARCH_GEMMA2;
    char n[256];
    if (load_tensor(m, sh, "model.embed_tokens.weight", V, D, 0, &m->embed, e)) return -1;
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *L = &m->layers[l];
#define P(suffix) (snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix), n)
        if (load_tensor(m, sh, P("input_layernorm.weight"), D, 0, 0, &L->attn_norm_w, e) ||
            load_tensor(m, sh, P("self_attn.q_proj.weight"), qd, D, 0, &L->wq, e) ||
            load_tensor(m, sh, P("self_attn.k_proj.weight"), kvd, D, 0, &L->wk, e) ||
            load_tensor(m, sh, P("self_attn.v_proj.weight"), kvd, D, 0, &L->wv, e) ||
            load_tensor(m, sh, P("self_attn.o_proj.weight"), D, qd, 0, &L->wo, e) ||
            load_tensor(m, sh, P("mlp.gate_proj.weight"), F, D, 0, &L->w_gate, e) ||
            load_tensor(m, sh, P("mlp.up_proj.weight"), F, D, 0, &L->w_up, e) ||
            load_tensor(m, sh, P("mlp.down_proj.weight"), D, F, 0, &L->w_down, e))
            return -1;
        if (c->attn_bias &&
            (load_tensor(m, sh, P("self_attn.q_proj.bias"), qd, 0, 0, &L->bq, e) ||
             load_tensor(m, sh, P("self_attn.k_proj.bias"), kvd, 0, 0, &L->bk, e) ||
             load_tensor(m, sh, P("self_attn.v_proj.bias"), kvd, 0, 0, &L->bv, e) ||
             load_tensor(m, sh, P("self_attn.o_proj.bias"), D, 0, 0, &L->bo, e)))
            return -1;
        if (gemma) {
            if (load_tensor(m, sh, P("post_attention_layernorm.weight"), D, 0, 0, &L->post_attn_norm_w, e) ||
                load_tensor(m, sh, P("pre_feedforward_layernorm.weight"), D, 0, 0, &L->mlp_norm_w, e) ||
                load_tensor(m, sh, P("post_feedforward_layernorm.weight"), D, 0, 0, &L->post_mlp_norm_w, e))
                return -1;
        } else if (load_tensor(m, sh, P("post_attention_layernorm.weight"), D, 0, 0, &L->mlp_norm_w, e)) {
            return -1;
        }
#undef P
    }
    if (load_tensor(m, sh, "model.norm.weight", D, 0, 0, &m->final_norm_w, e)) return -1;
    if (c->tie_embeddings) {
        m->lm_head = m->embed;
    } else if (load_tensor(m, sh, "lm_head.weight", V, D, 0, &m->lm_head, e)) {
        return -1;
    }
    return 0;
}

static int load_gpt2(Model *m, const Shards *sh, Error *e) {
    const ModelConfig *c = &m->cfg;
    int D = c->d_model, F = c->d_ff, V = c->vocab_size;
    // GPT2LMHeadModel saves "transformer."-prefixed names, GPT2Model bare ones.
    const SafeTensors *f;
    const char *pre = shards_find(sh, "transformer.wte.weight", &f) ? "transformer." : "";
    char n[256];
#define G(fmt, ...) (snprintf(n, sizeof n, "%s" fmt, pre, __VA_ARGS__), n)
    if (load_tensor(m, sh, G("%s", "wte.weight"), V, D, 0, &m->embed, e) ||
        load_tensor(m, sh, G("%s", "wpe.weight"), c->max_pos, D, 0, &m->pos_embed, e))
        return -1;
    for (int l = 0; l < c->n_layers; l++) {
        LayerWeights *L = &m->layers[l];
        float *c_attn, *c_attn_b, *proj, *fc, *fc_proj;
        if (load_tensor(m, sh, G("h.%d.ln_1.weight", l), D, 0, 0, &L->attn_norm_w, e) ||
            load_tensor(m, sh, G("h.%d.ln_1.bias", l), D, 0, 0, &L->attn_norm_b, e) ||
            load_tensor(m, sh, G("h.%d.attn.c_attn.weight", l), D, 3 * D, 0, &c_attn, e) ||
            load_tensor(m, sh, G("h.%d.attn.c_attn.bias", l), 3 * D, 0, 0, &c_attn_b, e) ||
            load_tensor(m, sh, G("h.%d.attn.c_proj.weight", l), D, D, 0, &proj, e) ||
            load_tensor(m, sh, G("h.%d.attn.c_proj.bias", l), D, 0, 0, &L->bo, e) ||
            load_tensor(m, sh, G("h.%d.ln_2.weight", l), D, 0, 0, &L->mlp_norm_w, e) ||
            load_tensor(m, sh, G("h.%d.ln_2.bias", l), D, 0, 0, &L->mlp_norm_b, e) ||
            load_tensor(m, sh, G("h.%d.mlp.c_fc.weight", l), D, F, 0, &fc, e) ||
            load_tensor(m, sh, G("h.%d.mlp.c_fc.bias", l), F, 0, 0, &L->b_up, e) ||
            load_tensor(m, sh, G("h.%d.mlp.c_proj.weight", l), F, D, 0, &fc_proj, e) ||
            load_tensor(m, sh, G("h.%d.mlp.c_proj.bias", l), D, 0, 0, &L->b_down, e))
            return -1;
        // c_attn (D, 3D) holds q | k | v side by side: transpose to (3D, D), rows q then k then v.
        float *qkv = transposed(m, c_attn, D, 3 * D);
        L->wq = qkv;
        L->wk = qkv + (size_t)D * D;
        L->wv = qkv + (size_t)2 * D * D;
        L->bq = c_attn_b;
        L->bk = c_attn_b + D;
        L->bv = c_attn_b + 2 * D;
        L->wo = transposed(m, proj, D, D);
        L->w_up = transposed(m, fc, D, F);
        L->w_down = transposed(m, fc_proj, F, D);
    }
    if (load_tensor(m, sh, G("%s", "ln_f.weight"), D, 0, 0, &m->final_norm_w, e) ||
        load_tensor(m, sh, G("%s", "ln_f.bias"), D, 0, 0, &m->final_norm_b, e))
        return -1;
    // GPT2LMHeadModel stores an untied head as "lm_head.weight" (outside "transformer.")
    if (c->tie_embeddings) m->lm_head = m->embed;
    else if (load_tensor(m, sh, "lm_head.weight", V, D, 0, &m->lm_head, e)) return -1;
#undef G
    return 0;
}

// The model hash's part for one safetensors file (formats/acts.md, "model_hash"): its size, its
// header, and of every tensor (by name) all bytes up to HASH_WINDOWS * HASH_WINDOW, else
// HASH_WINDOWS windows of HASH_WINDOW bytes spread evenly from its first byte to its last. Cheap
// (about 1 KiB read per tensor) and changes with any edit that touches every window's worth of
// weights, as any fine-tune or re-quantisation does; see formats/acts.md for what it misses.
enum { HASH_WINDOWS = 16, HASH_WINDOW = 64 };

static uint64_t hash_safetensors(uint64_t h, const SafeTensors *st) {
    const unsigned char *base = st->map;
    unsigned char size_le[8];
    uint64_t header_len = 0;
    for (int i = 0; i < 8; i++) {
        size_le[i] = (unsigned char)((uint64_t)st->map_size >> (8 * i));
        header_len |= (uint64_t)base[i] << (8 * i);
    }
    h = fnv1a64_update(h, size_le, 8);
    h = fnv1a64_update(h, base, (size_t)(8 + header_len));  // safetensors_open checked it lies in the file
    for (int t = 0; t < st->n_tensors; t++) {
        const unsigned char *d = st->tensors[t].data;
        uint64_t n = st->tensors[t].nbytes;
        if (n <= (uint64_t)HASH_WINDOWS * HASH_WINDOW) {
            h = fnv1a64_update(h, d, (size_t)n);
            continue;
        }
        for (int k = 0; k < HASH_WINDOWS; k++)
            h = fnv1a64_update(h, d + (n - HASH_WINDOW) * k / (HASH_WINDOWS - 1), HASH_WINDOW);
    }
    return h;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int model_load(Model *m, const char *dir, Error *e) {
    memset(m, 0, sizeof *m);
    if (dir_txn_pending(dir))  // a converter was killed while switching its files in: a mixture
        return err_set(
            e,
            "%s: an interrupted conversion left a mixture of old and new files (the new set is in %s/.cltkit-commit); "
            "run the converter again",
            dir, dir);
    m->dir = xstrdup(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t jerr;
    json_t *cfg = json_load_file(path, 0, &jerr);
    if (!cfg) {
        err_set(e, "%s: %s", path, jerr.text);
        model_free(m);
        return -1;
    }
    int rc = parse_config(&m->cfg, cfg, path, e);
    json_decref(cfg);
    m->weights_hash = CLTKIT_HASH_OFFSET;  // config.json's bytes: the start of the model hash
    if (!rc) rc = fnv1a64_file(path, &m->weights_hash, e);
    if (rc) {
        model_free(m);
        return -1;
    }

    // Shards: model.safetensors.index.json's weight_map, else model.safetensors.
    Shards sh = {0};
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    json_t *index = json_load_file(path, 0, &jerr);
    char **files = NULL;
    int n_files = 0;
    if (!index && access(path, F_OK) == 0) {  // an index that is there but unreadable is an error, not absent
        err_set(e, "%s: %s", path, jerr.text);
        model_free(m);
        return -1;
    }
    if (index) {
        json_t *wm = json_object_get(index, "weight_map");
        if (!json_is_object(wm)) {
            json_decref(index);
            model_free(m);
            return err_set(e, "%s: missing \"weight_map\" object", path);
        }
        const char *key;
        json_t *val;
        json_object_foreach(wm, key, val) {
            const char *fname = json_string_value(val);
            if (!fname || strchr(fname, '/')) {
                err_set(e, "%s: weight_map[\"%s\"] is not a file name", path, key);  // before key is freed
                json_decref(index);
                for (int i = 0; i < n_files; i++) free(files[i]);
                free(files);
                model_free(m);
                return -1;
            }
            int seen = 0;
            for (int i = 0; i < n_files; i++) seen |= !strcmp(files[i], fname);
            if (!seen) {
                files = xrealloc(files, (size_t)(n_files + 1) * sizeof *files);
                files[n_files++] = xstrdup(fname);
            }
        }
        json_decref(index);
    } else {
        files = xmalloc(sizeof *files);
        files[n_files++] = xstrdup("model.safetensors");
    }
    qsort(files, (size_t)n_files, sizeof *files, cmp_str);  // the hash takes the files in name order
    sh.files = xcalloc((size_t)n_files, sizeof *sh.files);
    for (int i = 0; i < n_files && !rc; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        rc = safetensors_open(&sh.files[i], path, e);
        if (!rc) {
            sh.n_files = i + 1;
            m->weights_hash = hash_safetensors(m->weights_hash, &sh.files[i]);
        }
    }
    if (!rc) {  // each layer has several tensors: a layer count beyond the tensor count is a broken config
        int64_t n_tensors = 0;
        for (int i = 0; i < sh.n_files; i++) n_tensors += sh.files[i].n_tensors;
        if (m->cfg.n_layers > n_tensors)
            rc = err_set(e, "%s/config.json: the layer count %d is absurd: the weights hold %lld tensors", dir,
                         m->cfg.n_layers, (long long)n_tensors);
    }
    if (!rc) {
        m->layers = xcalloc((size_t)m->cfg.n_layers, sizeof *m->layers);
        rc = m->cfg.arch == ARCH_GPT2 ? load_gpt2(m, &sh, e) : load_llama_like(m, &sh, e);
    }
    for (int i = 0; i < sh.n_files; i++) safetensors_close(&sh.files[i]);
    free(sh.files);
    for (int i = 0; i < n_files; i++) free(files[i]);
    free(files);
    if (rc) model_free(m);
    return rc;
}

int model_check_positions(const ModelConfig *c, int64_t n, const char *what, Error *e) {
    if (n > c->max_pos)
        return err_set(e, "%s: %lld tokens, more than the model's %d positions (max_position_embeddings in "
                       "config.json)", what, (long long)n, c->max_pos);
    return 0;
}

void model_free(Model *m) {
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->cfg.layer_sliding);
    free(m->cfg.block.layer);
    free(m->dir);
    memset(m, 0, sizeof *m);
}
