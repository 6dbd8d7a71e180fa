#include "clt_io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

int clt_save(const char *dir, const CltParams *p, const float *s_in, const float *s_out, const CltSaveInfo *info, Error *e) {
    if (mkdir(dir, 0777) && errno != EEXIST) return err_set(e, "%s: cannot create directory: %s", dir, strerror(errno));
    int L = p->L, d = p->d, F = p->F;
    float *enc = xmalloc((size_t)F * d * sizeof(float)), *benc = xmalloc((size_t)F * sizeof(float));
    float *thr = xmalloc((size_t)F * sizeof(float)), *bdec = xmalloc((size_t)d * sizeof(float));
    float *dec = xmalloc((size_t)F * L * d * sizeof(float));
    char path[4096], name_enc[32], name_benc[32], name_bdec[32], name_thr[32], name_dec[32];
    int rc = 0;
    for (int l = 0; l < L && !rc; l++) {
        // h = W_enc (s_in x) + b: the scale moves into W_enc; thresholds and biases stay
        float si = s_in ? s_in[l] : 1.0f, so = s_out ? s_out[l] : 1.0f;
        for (size_t i = 0; i < (size_t)F * d; i++) enc[i] = p->W_enc[l][i] * si;
        memcpy(benc, p->b_enc[l], (size_t)F * sizeof(float));
        for (int i = 0; i < F; i++) thr[i] = expf(p->log_theta[l][i]);
        for (int j = 0; j < d; j++) bdec[j] = p->b_dec[l][j] / so;  // ŷ_raw = ŷ_norm / s_out
        size_t row = (size_t)(L - l) * d;
        for (int i = 0; i < F; i++)
            for (int k = l; k < L; k++) {
                float sk = s_out ? s_out[k] : 1.0f;
                const float *src = p->W_dec[l] + (size_t)i * row + (size_t)(k - l) * d;
                float *dst = dec + (size_t)i * row + (size_t)(k - l) * d;
                for (int j = 0; j < d; j++) dst[j] = src[j] / sk;
            }
        snprintf(name_enc, sizeof name_enc, "W_enc_%d", l);
        snprintf(name_benc, sizeof name_benc, "b_enc_%d", l);
        snprintf(name_bdec, sizeof name_bdec, "b_dec_%d", l);
        snprintf(name_thr, sizeof name_thr, "threshold_%d", l);
        snprintf(name_dec, sizeof name_dec, "W_dec_%d", l);
        StWriteTensor te[4] = {
            {name_enc, ST_F32, 2, {F, d}, enc}, {name_benc, ST_F32, 1, {F}, benc},
            {name_bdec, ST_F32, 1, {d}, bdec},  {name_thr, ST_F32, 1, {F}, thr}};
        snprintf(path, sizeof path, "%s/W_enc_%d.safetensors", dir, l);
        rc = safetensors_write(path, te, 4, NULL, e);
        if (rc) break;
        StWriteTensor td[1] = {{name_dec, ST_F32, 3, {F, L - l, d}, dec}};
        snprintf(path, sizeof path, "%s/W_dec_%d.safetensors", dir, l);
        rc = safetensors_write(path, td, 1, NULL, e);
    }
    free(enc); free(benc); free(thr); free(bdec); free(dec);
    if (rc) return -1;
    // config.yaml, atomically
    snprintf(path, sizeof path, "%s/config.yaml.tmp.%d", dir, (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f) return err_set(e, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "model_kind: cross_layer_transcoder\n");
    if (info && info->model_name) fprintf(f, "model_name: \"%s\"\n", info->model_name);
    fprintf(f, "feature_input_hook: \"%s\"\n", info && info->input_hook ? info->input_hook : "hook_resid_mid");
    fprintf(f, "feature_output_hook: \"%s\"\n", info && info->output_hook ? info->output_hook : "hook_mlp_out");
    if (info && info->trained_as)  // a comment: circuit-tracer's loader must not see an unknown key
        fprintf(f, "# trained as %s; saved as JumpReLU with thresholds from the batch cutoffs (formats/clt.md)\n", info->trained_as);
    fprintf(f, "activation: jumprelu\nn_layers: %d\nd_model: %d\nd_transcoder: %d\n", L, d, F);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    char final_path[4096];
    snprintf(final_path, sizeof final_path, "%s/config.yaml", dir);
    if (bad || rename(path, final_path)) {
        remove(path);
        return err_set(e, "%s: write failed", final_path);
    }
    return 0;
}

int clt_load(const char *dir, CltParams *p, Error *e) {
    char path[4096], name[64];
    int L = 0;
    for (;; L++) {
        snprintf(path, sizeof path, "%s/W_enc_%d.safetensors", dir, L);
        if (access(path, R_OK)) break;
    }
    if (!L) return err_set(e, "%s: no W_enc_0.safetensors (not a CLT checkpoint)", dir);
    // A gap is a missing layer, not a shorter CLT: name the missing file rather than misreport the
    // decoders' shapes for the shorter count.
    for (int l = L + 1; l < L + 64; l++) {
        snprintf(path, sizeof path, "%s/W_enc_%d.safetensors", dir, l);
        if (!access(path, F_OK)) return err_set(e, "%s/W_enc_%d.safetensors: missing (W_enc_%d is there)", dir, L, l);
    }
    snprintf(path, sizeof path, "%s/W_dec_%d.safetensors", dir, L);
    if (!access(path, F_OK)) return err_set(e, "%s/W_enc_%d.safetensors: missing (W_dec_%d is there)", dir, L, L);
    SafeTensors st;
    snprintf(path, sizeof path, "%s/W_enc_0.safetensors", dir);
    if (safetensors_open(&st, path, e)) return -1;
    const StTensor *t = safetensors_find(&st, "W_enc_0");
    if (!t || t->ndim != 2) {
        safetensors_close(&st);
        return err_set(e, "%s: missing or malformed W_enc_0", path);
    }
    if (t->shape[0] < 1 || t->shape[0] > (1 << 26) || t->shape[1] < 1 || t->shape[1] > (1 << 20)) {
        safetensors_close(&st);
        return err_set(e, "%s: W_enc_0 has an absurd shape [%lld, %lld]", path, (long long)t->shape[0],
                       (long long)t->shape[1]);
    }
    int F = (int)t->shape[0], d = (int)t->shape[1];
    safetensors_close(&st);
    clt_params_init(p, L, d, F, NULL);
    float *thr = xmalloc((size_t)F * sizeof(float));
    int rc = 0;
    for (int l = 0; l < L && !rc; l++) {
        snprintf(path, sizeof path, "%s/W_enc_%d.safetensors", dir, l);
        if ((rc = safetensors_open(&st, path, e))) break;
        int64_t s_fd[2] = {F, d}, s_f[1] = {F}, s_d[1] = {d};
        snprintf(name, sizeof name, "W_enc_%d", l);
        rc = safetensors_load_f32(&st, name, s_fd, 2, p->W_enc[l], e);
        snprintf(name, sizeof name, "b_enc_%d", l);
        if (!rc) rc = safetensors_load_f32(&st, name, s_f, 1, p->b_enc[l], e);
        snprintf(name, sizeof name, "b_dec_%d", l);
        if (!rc) rc = safetensors_load_f32(&st, name, s_d, 1, p->b_dec[l], e);
        snprintf(name, sizeof name, "threshold_%d", l);
        if (!rc) rc = safetensors_load_f32(&st, name, s_f, 1, thr, e);
        safetensors_close(&st);
        for (int i = 0; !rc && i < F; i++) {
            if (!(thr[i] > 0) || !isfinite(thr[i])) {
                rc = err_set(e, "%s: threshold_%d[%d] = %g is not positive and finite", path, l, i, thr[i]);
                break;
            }
            p->log_theta[l][i] = logf(thr[i]);
        }
        if (rc) break;
        snprintf(path, sizeof path, "%s/W_dec_%d.safetensors", dir, l);
        if ((rc = safetensors_open(&st, path, e))) break;
        int64_t s_dec[3] = {F, L - l, d};
        snprintf(name, sizeof name, "W_dec_%d", l);
        rc = safetensors_load_f32(&st, name, s_dec, 3, p->W_dec[l], e);
        safetensors_close(&st);
        // one NaN/inf parameter makes every reconstruction NaN: refuse it here, naming the layer
        const float *arrays[4] = {p->W_enc[l], p->b_enc[l], p->b_dec[l], p->W_dec[l]};
        const char *names[4] = {"W_enc", "b_enc", "b_dec", "W_dec"};
        size_t counts[4] = {(size_t)F * d, (size_t)F, (size_t)d, (size_t)F * (L - l) * d};
        for (int a = 0; a < 4 && !rc; a++)
            for (size_t i = 0; i < counts[a]; i++)
                if (!isfinite(arrays[a][i])) {
                    rc = err_set(e, "%s: %s_%d element %zu is %g (not finite)", dir, names[a], l, i, arrays[a][i]);
                    break;
                }
    }
    free(thr);
    if (rc) clt_params_free(p);
    return rc;
}
