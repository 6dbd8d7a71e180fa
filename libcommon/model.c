// model.c — config.json parsing and weight loading for model.h.
#include "model.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

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
        if (json_is_true(json_object_get(root, "mlp_bias"))) return err_set(e, "%s: mlp_bias=true is not supported", path);
        const char *act = json_string_value(json_object_get(root, gemma ? "hidden_activation" : "hidden_act"));
        if (!act && gemma) act = json_string_value(json_object_get(root, "hidden_act"));
        if (act && strcmp(act, gemma ? "gelu_pytorch_tanh" : "silu"))
            return err_set(e, "%s: activation \"%s\" is not supported for %s", path, act, type);
        json_t *rs = json_object_get(root, "rope_scaling");
        if (json_is_object(rs)) {
            const char *rt = json_string_value(json_object_get(rs, "rope_type"));
            if (!rt) rt = json_string_value(json_object_get(rs, "type"));
            if (!rt || strcmp(rt, "llama3")) return err_set(e, "%s: rope_scaling type \"%s\" is not supported (only llama3)", path, rt ? rt : "?");
            c->rope_llama3 = 1;
            if (cfg_float(rs, "factor", 8.0f, &c->rope_factor, path, e) ||
                cfg_float(rs, "low_freq_factor", 1.0f, &c->rope_low_freq_factor, path, e) ||
                cfg_float(rs, "high_freq_factor", 4.0f, &c->rope_high_freq_factor, path, e) ||
                cfg_int(rs, "original_max_position_embeddings", 8192, &c->rope_original_max_pos, path, e))
                return -1;
        } else if (rs && !json_is_null(rs)) {
            return err_set(e, "%s: \"rope_scaling\" must be an object or null", path);
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
        c->tie_embeddings = 1;
        c->attn_bias = 1;
        const char *act = json_string_value(json_object_get(root, "activation_function"));
        if (act && strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh"))
            return err_set(e, "%s: activation_function \"%s\" is not supported for gpt2", path, act);
        if (json_is_false(json_object_get(root, "scale_attn_weights")))
            return err_set(e, "%s: scale_attn_weights=false is not supported", path);
    } else {
        return err_set(e, "%s: unknown model_type \"%s\" (supported: llama, gemma2, gpt2)", path, type);
    }
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
        return err_set(e, "%s: bos_token_id %d / eos_token_id %d outside the vocabulary (%d)", path, c->bos_id, c->eos_id,
                       c->vocab_size);
    if ((int64_t)c->n_heads * c->head_dim > MAX_WIDTH || (int64_t)c->n_kv_heads * c->head_dim > MAX_WIDTH)
        return err_set(e, "%s: attention heads × head_dim (%d × %d) is absurd (more than %d)", path, c->n_heads,
                       c->head_dim, MAX_WIDTH);
    if (c->n_heads % c->n_kv_heads)
        return err_set(e, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path, c->n_heads, c->n_kv_heads);
    if (!c->query_scale) c->query_scale = 1.0f / sqrtf((float)c->head_dim);

    c->layer_sliding = xcalloc((size_t)c->n_layers, 1);
    if (c->arch == ARCH_GEMMA2) {
        json_t *lt = json_object_get(root, "layer_types");
        if (json_is_array(lt)) {
            if ((int)json_array_size(lt) != c->n_layers)
                return err_set(e, "%s: \"layer_types\" has %zu entries for %d layers", path, json_array_size(lt), c->n_layers);
            for (int l = 0; l < c->n_layers; l++) {
                const char *s = json_string_value(json_array_get(lt, (size_t)l));
                if (!s) return err_set(e, "%s: layer_types[%d] is not a string", path, l);
                c->layer_sliding[l] = !strcmp(s, "sliding_attention");
            }
        } else {
            for (int l = 0; l < c->n_layers; l++) c->layer_sliding[l] = l % 2 == 0;  // Gemma 2's default
        }
    }
    return 0;
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
    int ok = cols ? (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols) : (t->ndim == 1 && t->shape[0] == rows);
    if (!ok) {
        char got[128] = "";
        size_t n = 0;
        for (int i = 0; i < t->ndim && n < sizeof got - 24; i++) n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (cols)
            return err_set(e, "%s: tensor \"%s\" has shape [%s], config implies [%lld, %lld]", file->path, name, got, (long long)rows, (long long)cols);
        return err_set(e, "%s: tensor \"%s\" has shape [%s], config implies [%lld]", file->path, name, got, (long long)rows);
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
    int D = c->d_model, F = c->d_ff, V = c->vocab_size, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
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
#undef G
    m->lm_head = m->embed;
    return 0;
}

static uint64_t fnv1a_update(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

int model_load(Model *m, const char *dir, Error *e) {
    memset(m, 0, sizeof *m);
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
    char *cfg_text = json_dumps(cfg, JSON_SORT_KEYS | JSON_COMPACT);
    m->weights_hash = fnv1a_update(1469598103934665603ULL, cfg_text, strlen(cfg_text));
    free(cfg_text);
    json_decref(cfg);
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
    sh.files = xcalloc((size_t)n_files, sizeof *sh.files);
    for (int i = 0; i < n_files && !rc; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        rc = safetensors_open(&sh.files[i], path, e);
        if (!rc) {
            sh.n_files = i + 1;
            // identify the weights by their headers (names, dtypes, shapes, offsets) and sizes
            m->weights_hash = fnv1a_update(m->weights_hash, sh.files[i].map, sh.files[i].map_size < 4096 ? sh.files[i].map_size : 4096);
            m->weights_hash = fnv1a_update(m->weights_hash, &sh.files[i].map_size, sizeof sh.files[i].map_size);
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

void model_free(Model *m) {
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->cfg.layer_sliding);
    free(m->dir);
    memset(m, 0, sizeof *m);
}
