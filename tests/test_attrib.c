// The attribution engine (libcommon/attrib/attrib.h) on the tiny random Llama 3, Gemma 2 and GPT-2
// checkpoints of tests/golden/models with a random CLT made here (thresholds set from the
// prompt's pre-activations so about a third of the features fire):
//   - the replacement model (frozen attention and norm scales, MLPs = CLT reconstruction + error
//     nodes) run forward reproduces the model's captured hooks and logits;
//   - intervention: every source vector added alone in the frozen linear model moves every
//     target (feature pre-activations and demeaned logits) by exactly its adjacency entry A[t, s],
//     as circuit-tracer's own tests check;
//   - rows do not depend on the batch they are computed in;
//   - bad input: an empty prompt, one beyond the context, unknown ids, a CLT of the wrong shape, a
//     CLT directory missing a file or naming an unsupported hook.
#include <math.h>
#include <unistd.h>

#include "attrib.h"
#include "check.h"
#include "clt.h"
#include "clt_io.h"
#include "tmpdir.h"

enum { T_PROMPT = 12, F_FEAT = 24 };

typedef struct {
    Model m;
    TmpDir dir;
    AttribClt clt;
    AttribState s;
    uint32_t tokens[T_PROMPT];
    int ok;
} Fixture;

// A random CLT for model m reading `hook`, saved into f->dir and opened. Thresholds: feature i of
// layer l fires where its pre-activation exceeds the 65th percentile over the prompt's positions.
static void make_clt(Fixture *f, const char *hook, int d_override) {
    Error e;
    const ModelConfig *c = &f->m.cfg;
    int L = c->n_layers < 8 ? c->n_layers : 8, D = d_override ? d_override : c->d_model, T = T_PROMPT;
    CltParams p;
    clt_params_init(&p, L, D, F_FEAT, NULL);
    clt_params_init_random(&p, 1234, 0.1f);
    // decoders large enough that features matter next to the error nodes
    for (int l = 0; l < L; l++)
        for (size_t i = 0; i < (size_t)F_FEAT * (L - l) * D; i++) p.W_dec[l][i] *= 8.0f;
    for (int l = 0; l < L; l++)
        for (int i = 0; i < D; i++) p.b_dec[l][i] = 0.01f * (float)((i * 7 + l) % 5 - 2);
    if (!d_override) {
        float **x = calloc(8, sizeof(float *));  // L ≤ 8 in the tiny models
        for (int l = 0; l < L; l++) x[l] = malloc((size_t)T_PROMPT * (size_t)c->d_model * sizeof(float));
        ForwardOutputs out = {0};
        if (!strcmp(hook, "hook_resid_mid")) out.resid_mid = x;
        else out.mlp_in = x;
        ForwardState *fs = forward_state_new(&f->m, 1, T);
        CHECK(!model_forward(&f->m, fs, f->tokens, 1, T, &out, &e), "%s", e.msg);
        forward_state_free(fs);
        float *h = malloc((size_t)T * sizeof(float));
        for (int l = 0; l < L; l++)
            for (int i = 0; i < F_FEAT; i++) {
                for (int t = 0; t < T; t++) {
                    float acc = 0;
                    for (int k = 0; k < D; k++) acc += p.W_enc[l][(size_t)i * D + k] * x[l][(size_t)t * D + k];
                    h[t] = acc;
                }
                for (int a = 0; a < T; a++)  // insertion sort: T is tiny
                    for (int b = a; b > 0 && h[b] < h[b - 1]; b--) {
                        float tmp = h[b]; h[b] = h[b - 1]; h[b - 1] = tmp;
                    }
                float q = h[(int)(0.65 * T)];
                p.log_theta[l][i] = logf(q > 1e-3f ? q : 1e-3f);
            }
        free(h);
        for (int l = 0; l < L; l++) free(x[l]);
        free(x);
    }
    CltSaveInfo info = {.model_name = "tiny", .input_hook = hook, .output_hook = "hook_mlp_out"};
    CHECK(!clt_save(f->dir.dir, &p, NULL, NULL, &info, &e), "%s", e.msg);
    clt_params_free(&p);
}

static int fixture_open(Fixture *f, const char *model, const char *hook) {
    Error e;
    memset(f, 0, sizeof *f);
    char dir[256];
    snprintf(dir, sizeof dir, "tests/golden/models/%s", model);
    CHECK(!model_load(&f->m, dir, &e), "%s", e.msg);
    if (!f->m.layers) return 0;
    for (int t = 0; t < T_PROMPT; t++) f->tokens[t] = (uint32_t)((t * 37 + 11) % f->m.cfg.vocab_size);
    f->tokens[0] = f->m.cfg.bos_id >= 0 ? (uint32_t)f->m.cfg.bos_id : 0;
    tmp_open(&f->dir, "attrib");
    make_clt(f, hook, 0);
    CHECK(!attrib_clt_open(&f->clt, f->dir.dir, &e), "%s", e.msg);
    if (!f->clt.L) return 0;
    CHECK(!attrib_capture(&f->m, &f->clt, f->tokens, T_PROMPT, &f->s, &e), "%s", e.msg);
    if (!f->s.T) return 0;
    CHECK(!attrib_logit_targets(&f->s, &f->m, NULL, 0, 5, 0.95, &e), "%s", e.msg);
    int L = f->s.L;
    CHECK(f->s.n_active > L * T_PROMPT / 2 && f->s.n_active < L * T_PROMPT * F_FEAT / 2,
          "%s: %d active features, want a fraction of %d", model, f->s.n_active, L * T_PROMPT * F_FEAT);
    for (int a = 0; a < f->s.n_active; a++) CHECK(f->s.active[3 * a + 1] != 0, "a feature active at position 0");
    f->ok = 1;
    return 1;
}

static void fixture_close(Fixture *f) {
    attrib_state_free(&f->s);
    attrib_clt_close(&f->clt);
    if (f->dir.dir[0]) tmp_close(&f->dir);
    model_free(&f->m);
}

static float dot(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return (float)s;
}

// The replacement model reproduces the model: the frozen forward with MLPs = reconstruction +
// error (position 0: the true MLP output, a constant in circuit-tracer too) gives the captured
// CLT inputs and the logits.
static void check_replacement(Fixture *f, const char *name) {
    Error e;
    AttribState *s = &f->s;
    int L = s->L, T = s->T, D = s->D, V = s->V;
    size_t TD = (size_t)T * D;
    float **mlp = calloc((size_t)L, sizeof(float *)), **x_in = calloc((size_t)L, sizeof(float *));
    for (int l = 0; l < L; l++) {
        mlp[l] = malloc(TD * sizeof(float));
        x_in[l] = malloc(TD * sizeof(float));
        for (size_t i = 0; i < TD; i++)
            mlp[l][i] = i < (size_t)D ? s->mlp_out[l][i] : s->recon[l * TD + i] + s->error[l * TD + i];
    }
    float *final = malloc(TD * sizeof(float)), *logits = malloc((size_t)V * sizeof(float));
    CHECK(!attrib_frozen_forward(&f->m, s, mlp, NULL, 0, x_in, final, &e), "%s", e.msg);
    // float32 sums of D-term products through L layers: a few hundred ulps at most
    for (int l = 0; l < L; l++) {
        double err = test_rel_err(x_in[l], s->x_in[l], TD);
        CHECK(err < 1e-5, "%s: layer %d CLT input from the replacement model: rel err %.3g", name, l, err);
    }
    for (int v = 0; v < V; v++) logits[v] = dot(f->m.lm_head + (size_t)v * D, final + (size_t)(T - 1) * D, D);
    if (f->m.cfg.final_softcap > 0)
        for (int v = 0; v < V; v++) logits[v] = f->m.cfg.final_softcap * tanhf(logits[v] / f->m.cfg.final_softcap);
    double err = test_rel_err(logits, s->logits, (size_t)V);
    CHECK(err < 1e-5, "%s: logits of the replacement model: rel err %.3g", name, err);
    for (int l = 0; l < L; l++) {
        free(mlp[l]);
        free(x_in[l]);
    }
    free(mlp); free(x_in); free(final); free(logits);
}

// Every target row: features then logits, in batches of B.
static float *all_rows(Fixture *f, int B, int64_t *ld_out) {
    Error e;
    AttribState *s = &f->s;
    int n_t = s->n_active + s->n_logits, D = s->D;
    int64_t ld = attrib_row_sources(s) + 3;  // a wider stride than needed: rows must honour ld
    float *rows = malloc((size_t)n_t * ld * sizeof(float));
    int *layer = malloc((size_t)n_t * sizeof(int)), *pos = malloc((size_t)n_t * sizeof(int));
    float *vecs = malloc((size_t)n_t * D * sizeof(float));
    for (int t = 0; t < n_t; t++) {
        if (t < s->n_active) {
            layer[t] = s->active[3 * t];
            pos[t] = s->active[3 * t + 1];
            memcpy(vecs + (size_t)t * D, attrib_enc_vec(s, t), (size_t)D * sizeof(float));
        } else {
            layer[t] = s->L;
            pos[t] = s->T - 1;
            memcpy(vecs + (size_t)t * D, s->logit_vec + (size_t)(t - s->n_active) * D, (size_t)D * sizeof(float));
        }
    }
    AttribWork *w = attrib_work_new(s, B);
    for (int t0 = 0; t0 < n_t; t0 += B) {
        int n = n_t - t0 < B ? n_t - t0 : B;
        CHECK(!attrib_rows(&f->m, s, w, n, layer + t0, pos + t0, vecs + (size_t)t0 * D, rows + (size_t)t0 * ld, ld, &e),
              "%s", e.msg);
    }
    attrib_work_free(w);
    free(layer); free(pos); free(vecs);
    *ld_out = ld;
    return rows;
}

// Add one source alone to the frozen linear model and read every target's change.
static void check_interventions(Fixture *f, const char *name) {
    Error e;
    AttribState *s = &f->s;
    int L = s->L, T = s->T, D = s->D, n_t = s->n_active + s->n_logits;
    size_t TD = (size_t)T * D;
    int64_t ld;
    float *rows = all_rows(f, 7, &ld);
    int64_t n_src = attrib_row_sources(s);
    float *rowmax = calloc((size_t)n_t, sizeof(float));
    for (int t = 0; t < n_t; t++)
        for (int64_t c = 0; c < n_src; c++) rowmax[t] = fmaxf(rowmax[t], fabsf(rows[(size_t)t * ld + c]));
    float **mlp = calloc((size_t)L, sizeof(float *)), **x_in = calloc((size_t)L, sizeof(float *));
    for (int l = 0; l < L; l++) {
        mlp[l] = malloc(TD * sizeof(float));
        x_in[l] = malloc(TD * sizeof(float));
    }
    float *add = malloc((size_t)(L + 1) * TD * sizeof(float)), *final = malloc(TD * sizeof(float));
    float emb_scale = f->m.cfg.arch == ARCH_GEMMA2 ? sqrtf((float)D) : 1.0f;
    double worst = 0;
    int checked = 0;
    // sources: every 3rd feature, every error node, every token
    for (int64_t src = 0; src < n_src; src += src < s->n_active ? 3 : 1) {
        for (int l = 0; l < L; l++) memset(mlp[l], 0, TD * sizeof(float));
        memset(add, 0, (size_t)(L + 1) * TD * sizeof(float));
        if (src < s->n_active) {  // a_s·W_dec[s, k − l_s] into every layer k ≥ l_s, from the CLT file
            int ls = s->active[3 * src], p = s->active[3 * src + 1];
            float *dec = malloc((size_t)(L - ls) * D * sizeof(float));
            CHECK(!attrib_clt_decoder_row(&f->clt, ls, s->active[3 * src + 2], dec, &e), "%s", e.msg);
            for (int k = ls; k < L; k++)
                for (int i = 0; i < D; i++)
                    mlp[k][(size_t)p * D + i] = dec[(size_t)(k - ls) * D + i] * s->activation[src];
            free(dec);
        } else if (src < s->n_active + (int64_t)L * T) {
            int64_t i = src - s->n_active;
            int k = (int)(i / T), p = (int)(i % T);
            memcpy(mlp[k] + (size_t)p * D, s->error + k * TD + (size_t)p * D, (size_t)D * sizeof(float));
        } else {
            int p = (int)(src - s->n_active - (int64_t)L * T);
            for (int i = 0; i < D; i++) add[(size_t)p * D + i] = f->m.embed[(size_t)s->tokens[p] * D + i] * emb_scale;
        }
        CHECK(!attrib_frozen_forward(&f->m, s, mlp, add, 1, x_in, final, &e), "%s", e.msg);
        for (int t = 0; t < n_t; t++) {
            float moved;
            if (t < s->n_active) {
                int l = s->active[3 * t], p = s->active[3 * t + 1];
                moved = dot(attrib_enc_vec(s, t), x_in[l] + (size_t)p * D, D);
            } else {
                moved = dot(s->logit_vec + (size_t)(t - s->n_active) * D, final + (size_t)(T - 1) * D, D);
            }
            float a = rows[(size_t)t * ld + src];
            double err = fabs((double)moved - a) / fmax(rowmax[t], 1e-20);
            worst = fmax(worst, err);
            checked++;
            // both sides are float32 sums of T·D-term products through L layers, in different
            // orders: ~(L·T·D)·2⁻²⁴ relative to the row's scale at worst, well under 1e-4 here
            CHECK(err < 1e-4, "%s: target %d source %lld moved by %g, A = %g (row max %g)", name, t, (long long)src,
                  moved, a, rowmax[t]);
            if (err >= 1e-4) goto done;
        }
    }
done:
    printf("# %s: %d active features, %d logits, %d (target, source) pairs, worst rel err %.2g\n", name,
           s->n_active, s->n_logits, checked, worst);
    // a feature at layer l gets nothing from sources at layers ≥ l or positions after it
    for (int t = 0; t < s->n_active; t++)
        for (int64_t c = 0; c < s->n_active; c++)
            if (s->active[3 * c] >= s->active[3 * t] || s->active[3 * c + 1] > s->active[3 * t + 1])
                CHECK(rows[(size_t)t * ld + c] == 0, "%s: A[%d, %lld] should be 0", name, t, (long long)c);
    // batch independence: rows computed one at a time agree with the batched ones
    int64_t ld1;
    float *rows1 = all_rows(f, 1, &ld1);
    double diff = 0;
    for (int t = 0; t < n_t; t++)
        for (int64_t c = 0; c < n_src; c++)
            diff = fmax(diff, fabs(rows1[(size_t)t * ld1 + c] - rows[(size_t)t * ld + c]) / fmax(rowmax[t], 1e-20));
    CHECK(diff < 1e-5, "%s: batch of 1 vs 7 differ by %.3g (relative)", name, diff);
    free(rows1);
    for (int l = 0; l < L; l++) {
        free(mlp[l]);
        free(x_in[l]);
    }
    free(mlp); free(x_in); free(add); free(final); free(rows); free(rowmax);
}

static void run_model(const char *model, const char *hook) {
    Fixture f;
    char name[96];
    snprintf(name, sizeof name, "%s/%s", model, hook);
    if (fixture_open(&f, model, hook)) {
        check_replacement(&f, name);
        check_interventions(&f, name);
    }
    fixture_close(&f);
}

static void test_llama_mlp_in(void) { run_model("llama3", "mlp.hook_in"); }
static void test_llama_resid_mid(void) { run_model("llama3", "hook_resid_mid"); }
static void test_gemma2_mlp_in(void) { run_model("gemma2", "ln2.hook_normalized"); }
static void test_gemma2_resid_mid(void) { run_model("gemma2", "hook_resid_mid"); }
static void test_gpt2_mlp_in(void) { run_model("gpt2", "mlp.hook_in"); }
static void test_gpt2_resid_mid(void) { run_model("gpt2", "hook_resid_mid"); }

static void test_logit_targets(void) {
    Fixture f;
    Error e;
    if (fixture_open(&f, "llama3", "mlp.hook_in")) {
        AttribState *s = &f.s;
        // salient: sorted by probability, the cumulative sum first reaches 0.95 at the last one
        double cum = 0;
        for (int k = 0; k < s->n_logits; k++) {
            if (k) CHECK(s->logit_prob[k] <= s->logit_prob[k - 1], "probabilities not descending");
            if (k + 1 < s->n_logits) CHECK((float)(cum + s->logit_prob[k]) < 0.95f, "cut too late");
            cum += s->logit_prob[k];
        }
        CHECK(s->n_logits == 5 || (float)cum >= 0.95f, "cut too early: %d logits, p %.3f", s->n_logits, cum);
        int32_t want[2] = {3, 7};
        CHECK(!attrib_logit_targets(s, &f.m, want, 2, 10, 0.95, &e), "%s", e.msg);
        CHECK(s->n_logits == 2 && s->logit_token[0] == 3 && s->logit_token[1] == 7, "explicit targets");
        // demeaned: the directions sum to zero over the vocabulary, so Σ_v (W_U[v] − mean) = 0
        double sum = 0;
        for (int i = 0; i < s->D; i++) sum += s->logit_vec[i];
        CHECK(isfinite(sum), "logit vector");
        int32_t bad = s->V;
        CHECK(attrib_logit_targets(s, &f.m, &bad, 1, 10, 0.95, &e) == -1 && strstr(e.msg, "vocabulary"),
              "bad target accepted: %s", e.msg);
    }
    fixture_close(&f);
}

static void test_bad_input(void) {
    Fixture f;
    Error e;
    if (!fixture_open(&f, "llama3", "mlp.hook_in")) {
        fixture_close(&f);
        return;
    }
    AttribState s2;
    uint32_t toks[70] = {1, 2, 3};
    CHECK(attrib_capture(&f.m, &f.clt, toks, 0, &s2, &e) == -1 && strstr(e.msg, "empty"), "empty: %s", e.msg);
    CHECK(attrib_capture(&f.m, &f.clt, toks, 70, &s2, &e) == -1 && strstr(e.msg, "context"), "too long: %s", e.msg);
    toks[1] = (uint32_t)f.m.cfg.vocab_size;
    CHECK(attrib_capture(&f.m, &f.clt, toks, 3, &s2, &e) == -1 && strstr(e.msg, "vocabulary"), "bad id: %s", e.msg);
    // a CLT of another width
    Fixture g = {0};
    g.m = f.m;
    tmp_open(&g.dir, "attrib_bad");
    make_clt(&g, "mlp.hook_in", 32);
    AttribClt c;
    CHECK(!attrib_clt_open(&c, g.dir.dir, &e), "%s", e.msg);
    toks[1] = 2;
    CHECK(attrib_capture(&f.m, &c, toks, 3, &s2, &e) == -1 && strstr(e.msg, "width"), "width mismatch: %s", e.msg);
    attrib_clt_close(&c);
    // an unsupported hook, then a missing decoder file
    char path[600];
    snprintf(path, sizeof path, "%s/config.yaml", g.dir.dir);
    FILE *cf = fopen(path, "w");
    fprintf(cf, "model_kind: cross_layer_transcoder\nfeature_input_hook: hook_resid_pre\n"
                "feature_output_hook: hook_mlp_out\n");
    fclose(cf);
    CHECK(attrib_clt_open(&c, g.dir.dir, &e) == -1 && strstr(e.msg, "hook_resid_pre"), "bad hook: %s", e.msg);
    cf = fopen(path, "w");
    fprintf(cf, "feature_input_hook: \"hook_resid_mid\"\nfeature_output_hook: \"hook_mlp_out\"\n");
    fclose(cf);
    CHECK(!attrib_clt_open(&c, g.dir.dir, &e), "%s", e.msg);
    CHECK(c.input == ATTRIB_IN_RESID_MID, "quoted hook");
    attrib_clt_close(&c);
    snprintf(path, sizeof path, "%s/W_dec_1.safetensors", g.dir.dir);
    unlink(path);
    CHECK(attrib_clt_open(&c, g.dir.dir, &e) == -1 && strstr(e.msg, "W_dec_1"), "missing file: %s", e.msg);
    snprintf(path, sizeof path, "%s/config.yaml", g.dir.dir);
    unlink(path);
    CHECK(attrib_clt_open(&c, g.dir.dir, &e) == -1 && strstr(e.msg, "config.yaml"), "missing config: %s", e.msg);
    tmp_close(&g.dir);
    CHECK(attrib_clt_open(&c, "/nonexistent/clt", &e) == -1 && strstr(e.msg, "W_enc_0"), "no dir: %s", e.msg);
    fixture_close(&f);
}

int main(void) {
    RUN_TEST(test_llama_mlp_in);
    RUN_TEST(test_llama_resid_mid);
    RUN_TEST(test_gemma2_mlp_in);
    RUN_TEST(test_gemma2_resid_mid);
    RUN_TEST(test_gpt2_mlp_in);
    RUN_TEST(test_gpt2_resid_mid);
    RUN_TEST(test_logit_targets);
    RUN_TEST(test_bad_input);
    return test_summary();
}
