// clt_synth.c — see clt_synth.h. Sampling is per batch of tokens with its own seed
// (data_seed, batch), and each feature's firings are drawn by geometric skipping (the gap to the
// next firing), so the cost is proportional to the firings, not to tokens × features.
#include "cli.h"
#include "clt.h"
#include "clt_synth.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "actshard.h"
#include "matmul.h"
#include "safetensors.h"

#define SYNTH_BATCH 4096  // tokens sampled (and written) at a time
#define SYNTH_P_MAX 0.9   // cap on a feature's firing probability
#define SYNTH_DOC_TOKENS 128

// ---- small deterministic generators (no global state) ---------------------------------------

static double uniform01(uint64_t *s) { return (double)((clt_splitmix64(s) >> 11) + 1) / 9007199254740992.0; }  // (0, 1]
static double gaussian(uint64_t *s) {  // Box–Muller; one of the pair is enough here
    double u = uniform01(s), v = uniform01(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}
static void random_unit(uint64_t *s, float *v, size_t n) {
    double ss = 0;
    for (size_t j = 0; j < n; j++) {
        double g = gaussian(s);
        v[j] = (float)g;
        ss += g * g;
    }
    float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    for (size_t j = 0; j < n; j++) v[j] *= inv;
}

// ---- model -----------------------------------------------------------------------------------

static void model_alloc(SynthModel *m, int L, int d, int F) {
    m->L = L; m->d = d; m->F = F;
    m->enc = xcalloc((size_t)L, sizeof(float *));
    m->dec = xcalloc((size_t)L, sizeof(float *));
    m->p_fire = xcalloc((size_t)L, sizeof(float *));
    m->l0 = xcalloc((size_t)L, sizeof(double));
    for (int l = 0; l < L; l++) {
        m->enc[l] = xmalloc((size_t)F * d * sizeof(float));
        m->dec[l] = xmalloc((size_t)F * (L - l) * d * sizeof(float));
        m->p_fire[l] = xmalloc((size_t)F * sizeof(float));
    }
}

void synth_model_free(SynthModel *m) {
    for (int l = 0; l < m->L; l++) { free(m->enc[l]); free(m->dec[l]); free(m->p_fire[l]); }
    free(m->enc); free(m->dec); free(m->p_fire); free(m->l0);
    memset(m, 0, sizeof *m);
}

// p_i = min(P_MAX, C (i+1)^−s) with C found by bisection so that Σ p_i = l0.
static void zipf_probs(float *p, int F, double s, double l0) {
    double lo = 0, hi = SYNTH_P_MAX * pow((double)F, s);  // hi caps every feature: Σ = P_MAX·F ≥ l0
    for (int it = 0; it < 200; it++) {
        double C = 0.5 * (lo + hi), sum = 0;
        for (int i = 0; i < F; i++) sum += fmin(SYNTH_P_MAX, C * pow(i + 1.0, -s));
        if (sum < l0) lo = C; else hi = C;
    }
    for (int i = 0; i < F; i++) p[i] = (float)fmin(SYNTH_P_MAX, hi * pow(i + 1.0, -s));
}

int synth_model_init(SynthModel *m, const SynthConfig *c, Error *e) {
    memset(m, 0, sizeof *m);
    if (c->L < 1 || c->L > ACTSHARD_MAX_LAYERS)
        return err_set(e, "synth: layers must be in [1, %d]", ACTSHARD_MAX_LAYERS);
    if (c->d < 1 || c->d > 65536) return err_set(e, "synth: width must be in [1, 65536]");
    if (c->F < 1 || c->F > (1 << 24)) return err_set(e, "synth: features must be in [1, 2^24]");
    if (!(c->l0 > 0) || c->l0 > SYNTH_P_MAX * c->F)
        return err_set(e, "synth: l0 %g must be positive and at most %g (0.9 x features)", c->l0, SYNTH_P_MAX * c->F);
    if (!(c->zipf >= 0) || c->zipf > 10) return err_set(e, "synth: zipf exponent %g must be in [0, 10]", c->zipf);
    if (!(c->noise >= 0) || !isfinite(c->noise)) return err_set(e, "synth: noise %g must be >= 0", c->noise);
    model_alloc(m, c->L, c->d, c->F);
    uint64_t s = c->seed ^ 0x5EED5EED5EEDULL;
    for (int l = 0; l < c->L; l++) {
        size_t row = (size_t)(c->L - l) * c->d;
        for (int i = 0; i < c->F; i++) {
            random_unit(&s, m->enc[l] + (size_t)i * c->d, (size_t)c->d);
            random_unit(&s, m->dec[l] + (size_t)i * row, row);
        }
        zipf_probs(m->p_fire[l], c->F, c->zipf, c->l0);
        for (int i = 0; i < c->F; i++) m->l0[l] += m->p_fire[l][i];
    }
    return 0;
}

// ---- sampling --------------------------------------------------------------------------------

// Gap (tokens skipped) to the next firing of a feature with probability p: Geometric(p) − 1.
static uint64_t next_gap(uint64_t *s, double log1mp) {
    if (log1mp == -INFINITY) return 0;  // p = 1
    double g = floor(log(uniform01(s)) / log1mp);
    return g > 1e18 ? (uint64_t)1e18 : (uint64_t)g;
}

int synth_write_shard(SynthModel *m, const SynthConfig *c, const char *path, Error *e) {
    int L = m->L, d = m->d, F = m->F;
    int *layers = xmalloc((size_t)L * sizeof(int));
    for (int l = 0; l < L; l++) layers[l] = l;
    char meta[512];
    snprintf(meta, sizeof meta,
             "{\"synthetic\": {\"layers\": %d, \"d\": %d, \"features\": %d, \"l0\": %g, \"zipf\": %g, \"noise\": %g, "
             "\"seed\": %llu, \"data_seed\": %llu}}",
             L, d, F, c->l0, c->zipf, c->noise, (unsigned long long)c->seed, (unsigned long long)c->data_seed);
    ActShardWriterOptions wo = {.model_id = "synthetic", .in_hook = "resid_mid", .out_hook = "mlp_out", .n_layers = L,
                                .layers = layers, .d_model = d, .dtype = c->dtype, .meta_json = meta};
    ActShardWriter *w = actshard_writer_open(path, &wo, e);
    free(layers);
    if (!w) return -1;

    size_t T = SYNTH_BATCH, LTd = (size_t)L * T * d;
    float *in = xmalloc(LTd * sizeof(float)), *out = xmalloc(LTd * sizeof(float));
    uint32_t *tok = xmalloc(T * sizeof(uint32_t)), *pos = xmalloc(T * sizeof(uint32_t));
    uint64_t *doc = xmalloc(T * sizeof(uint64_t));
    int32_t *first0 = xmalloc(T * sizeof(int32_t));
    double *log1mp = xmalloc((size_t)L * F * sizeof(double));
    uint64_t *fires = xcalloc((size_t)L, sizeof(uint64_t));
    for (int l = 0; l < L; l++)
        for (int i = 0; i < F; i++) log1mp[(size_t)l * F + i] = log1p(-(double)m->p_fire[l][i]);
    int rc = 0;
    for (uint64_t t0 = 0, b = 0; t0 < c->n_tokens && !rc; t0 += T, b++) {
        size_t n = c->n_tokens - t0 < T ? (size_t)(c->n_tokens - t0) : T;
        uint64_t s = c->data_seed * 0x9E3779B97F4A7C15ULL ^ (b + 1) * 0xD6E8FEB86659FD93ULL;
        // noise first, then the features add on top
        for (int l = 0; l < L; l++) {
            float *xl = in + (size_t)l * n * d, *yl = out + (size_t)l * n * d;
            if (c->noise > 0) {
                for (size_t j = 0; j < n * d; j++) xl[j] = (float)(c->noise * gaussian(&s));
                for (size_t j = 0; j < n * d; j++) yl[j] = (float)(c->noise * gaussian(&s));
            } else {
                memset(xl, 0, n * d * sizeof(float));
                memset(yl, 0, n * d * sizeof(float));
            }
        }
        for (size_t t = 0; t < n; t++) first0[t] = F;
        for (int l = 0; l < L; l++) {
            size_t row = (size_t)(L - l) * d;
            for (int i = 0; i < F; i++) {
                double lq = log1mp[(size_t)l * F + i];
                const float *ei = m->enc[l] + (size_t)i * d, *di = m->dec[l] + (size_t)i * row;
                for (uint64_t t = next_gap(&s, lq); t < n; t += 1 + next_gap(&s, lq)) {
                    float a = (float)(1.0 + fabs(gaussian(&s)));
                    float *x = in + ((size_t)l * n + t) * d;
                    for (int j = 0; j < d; j++) x[j] += a * ei[j];
                    for (int k = l; k < L; k++) {
                        float *y = out + ((size_t)k * n + t) * d;
                        const float *dk = di + (size_t)(k - l) * d;
                        for (int j = 0; j < d; j++) y[j] += a * dk[j];
                    }
                    fires[l]++;
                    if (l == 0 && i < first0[t]) first0[t] = i;
                }
            }
        }
        // token id: 1 + the most frequent active layer-0 feature (0 if none), so contexts mean something
        for (size_t t = 0; t < n; t++) {
            uint64_t g = t0 + t;
            tok[t] = first0[t] < F ? (uint32_t)first0[t] + 1 : 0;
            doc[t] = g / SYNTH_DOC_TOKENS;
            pos[t] = (uint32_t)(g % SYNTH_DOC_TOKENS);
        }
        rc = actshard_write(w, n, tok, doc, pos, in, out, e);
    }
    if (rc) actshard_writer_abort(w);
    else rc = actshard_writer_close(w, e);
    for (int l = 0; l < L && !rc; l++) m->l0[l] = (double)fires[l] / (double)c->n_tokens;
    free(in); free(out); free(tok); free(pos); free(doc); free(first0); free(log1mp); free(fires);
    return rc;
}

// ---- truth files -----------------------------------------------------------------------------

int synth_save_truth(const char *dir, const SynthModel *m, const SynthConfig *c, Error *e) {
    if (mkdir(dir, 0777) && errno != EEXIST) return err_set(e, "%s: cannot create directory: %s", dir, strerror(errno));
    int L = m->L, d = m->d, F = m->F;
    StWriteTensor *t = xcalloc((size_t)3 * L + 1, sizeof *t);
    char (*names)[32] = xmalloc((size_t)3 * L * sizeof *names);
    float *l0 = xmalloc((size_t)L * sizeof(float));
    for (int l = 0; l < L; l++) {
        snprintf(names[3 * l], 32, "enc_%d", l);
        snprintf(names[3 * l + 1], 32, "W_dec_%d", l);
        snprintf(names[3 * l + 2], 32, "p_fire_%d", l);
        t[3 * l] = (StWriteTensor){names[3 * l], ST_F32, 2, {F, d}, m->enc[l]};
        t[3 * l + 1] = (StWriteTensor){names[3 * l + 1], ST_F32, 3, {F, L - l, d}, m->dec[l]};
        t[3 * l + 2] = (StWriteTensor){names[3 * l + 2], ST_F32, 1, {F}, m->p_fire[l]};
        l0[l] = (float)m->l0[l];
    }
    t[3 * L] = (StWriteTensor){"planted_l0", ST_F32, 1, {L}, l0};
    char meta[512], path[4096];
    snprintf(meta, sizeof meta,
             "{\"L\": \"%d\", \"d\": \"%d\", \"F\": \"%d\", \"tokens\": \"%llu\", \"l0\": \"%g\", \"zipf\": \"%g\", "
             "\"noise\": \"%g\", \"seed\": \"%llu\", \"data_seed\": \"%llu\"}",
             L, d, F, (unsigned long long)c->n_tokens, c->l0, c->zipf, c->noise, (unsigned long long)c->seed,
             (unsigned long long)c->data_seed);
    snprintf(path, sizeof path, "%s/truth.safetensors", dir);
    int rc = safetensors_write(path, t, 3 * L + 1, meta, e);
    free(t); free(names); free(l0);
    return rc;
}

static int meta_int(json_t *meta, const char *key, const char *path, int *out, Error *e) {
    const char *v = json_string_value(json_object_get(meta, key));
    long long x;
    if (parse_int_strict(v, 1, 1 << 24, &x)) return err_set(e, "%s: metadata \"%s\" is missing or bad", path, key);
    *out = (int)x;
    return 0;
}

int synth_load_truth(const char *dir, SynthModel *m, Error *e) {
    memset(m, 0, sizeof *m);
    char path[4096], name[32];
    snprintf(path, sizeof path, "%s/truth.safetensors", dir);
    SafeTensors st;
    if (safetensors_open(&st, path, e)) return -1;
    json_error_t je;
    json_t *meta = st.metadata_json ? json_loads(st.metadata_json, 0, &je) : NULL;
    int L = 0, d = 0, F = 0;
    int rc = meta ? 0 : err_set(e, "%s: no metadata (not a clt-fit synth truth file)", path);
    if (!rc) rc = meta_int(meta, "L", path, &L, e);
    if (!rc) rc = meta_int(meta, "d", path, &d, e);
    if (!rc) rc = meta_int(meta, "F", path, &F, e);
    json_decref(meta);
    if (!rc && L > ACTSHARD_MAX_LAYERS) rc = err_set(e, "%s: %d layers", path, L);
    if (rc) {
        safetensors_close(&st);
        return -1;
    }
    model_alloc(m, L, d, F);
    float *l0 = xmalloc((size_t)L * sizeof(float));
    for (int l = 0; l < L && !rc; l++) {
        int64_t s_enc[2] = {F, d}, s_dec[3] = {F, L - l, d}, s_p[1] = {F};
        snprintf(name, sizeof name, "enc_%d", l);
        rc = safetensors_load_f32(&st, name, s_enc, 2, m->enc[l], e);
        snprintf(name, sizeof name, "W_dec_%d", l);
        if (!rc) rc = safetensors_load_f32(&st, name, s_dec, 3, m->dec[l], e);
        snprintf(name, sizeof name, "p_fire_%d", l);
        if (!rc) rc = safetensors_load_f32(&st, name, s_p, 1, m->p_fire[l], e);
    }
    int64_t s_l[1] = {L};
    if (!rc) rc = safetensors_load_f32(&st, "planted_l0", s_l, 1, l0, e);
    for (int l = 0; l < L && !rc; l++) m->l0[l] = l0[l];
    free(l0);
    safetensors_close(&st);
    if (rc) synth_model_free(m);
    return rc;
}

// ---- recovery --------------------------------------------------------------------------------

// Rows of a (n, row) matrix scaled to unit norm (zero rows stay zero: cosine 0 with anything).
static float *unit_rows(const float *a, int n, size_t row) {
    float *u = xmalloc((size_t)n * row * sizeof(float));
    for (int i = 0; i < n; i++) {
        const float *r = a + (size_t)i * row;
        double ss = 0;
        for (size_t j = 0; j < row; j++) ss += (double)r[j] * r[j];
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (size_t j = 0; j < row; j++) u[(size_t)i * row + j] = r[j] * inv;
    }
    return u;
}

int synth_recovery(const SynthModel *m, const CltParams *p, SynthRecovery *r, Error *e) {
    memset(r, 0, sizeof *r);
    if (p->L != m->L || p->d != m->d)
        return err_set(e, "the CLT has %d layers of width %d, the planted model %d layers of width %d", p->L, p->d,
                       m->L, m->d);
    int L = m->L, Fp = m->F, Fl = p->F;
    r->mmcs = xcalloc((size_t)L, sizeof(double));
    r->frac_09 = xcalloc((size_t)L, sizeof(double));
    r->max_cos = xmalloc((size_t)L * Fp * sizeof(double));
    const int blk = 256;  // planted rows per GEMM, bounding the (blk, Fl) cosine block
    float *cos = xmalloc((size_t)blk * Fl * sizeof(float));
    double all = 0;
    for (int l = 0; l < L; l++) {
        size_t row = (size_t)(L - l) * m->d;
        float *up = unit_rows(m->dec[l], Fp, row), *ul = unit_rows(p->W_dec[l], Fl, row);
        for (int i0 = 0; i0 < Fp; i0 += blk) {
            int nb = Fp - i0 < blk ? Fp - i0 : blk;
            matmul_cpu(cos, up + (size_t)i0 * row, ul, NULL, nb, (int)row, Fl);  // (nb, Fl) cosines
            for (int i = 0; i < nb; i++) {
                float best = -1.0f;
                for (int j = 0; j < Fl; j++) best = fmaxf(best, cos[(size_t)i * Fl + j]);
                r->max_cos[(size_t)l * Fp + i0 + i] = best;
                r->mmcs[l] += best;
                r->frac_09[l] += best > 0.9f;
            }
        }
        all += r->mmcs[l];
        r->mmcs[l] /= Fp;
        r->frac_09[l] /= Fp;
        free(up);
        free(ul);
    }
    r->mmcs_all = all / ((double)L * Fp);
    free(cos);
    return 0;
}

void synth_recovery_free(SynthRecovery *r) {
    free(r->mmcs); free(r->frac_09); free(r->max_cos);
    memset(r, 0, sizeof *r);
}
