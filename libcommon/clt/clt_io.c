#include "clt_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "fileio.h"
#include "safetensors.h"

void clt_yaml_value(const char *text, const char *key, char *out, size_t cap) {
    out[0] = 0;
    size_t kl = strlen(key);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, kl) || line[kl] != ':') continue;
        const char *v = line + kl + 1;
        while (*v == ' ' || *v == '\t') v++;
        size_t n = strcspn(v, "\r\n#");
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
        if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) v++, n -= 2;
        if (n >= cap) n = cap - 1;
        memcpy(out, v, n);
        out[n] = 0;
        return;
    }
}

int clt_config_value(const char *clt_dir, const char *key, char *out, size_t cap) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.yaml", clt_dir);
    void *map;
    size_t len;
    out[0] = 0;
    if (access(path, F_OK) || map_file(path, &map, &len, NULL)) return -1;
    char *text = xmalloc(len + 1);  // NUL-terminated copy for the line scan
    if (len) memcpy(text, map, len);
    text[len] = 0;
    if (map) munmap(map, len);
    clt_yaml_value(text, key, out, cap);
    free(text);
    return out[0] ? 0 : -1;
}

const char *clt_input_hook(const char *shard_hook) {
    return strcmp(shard_hook, "resid_mid") ? "mlp.hook_in" : "hook_resid_mid";
}

const char *clt_shard_hook(const char *input_hook) {
    if (!input_hook) return NULL;
    if (!strcmp(input_hook, "hook_resid_mid")) return "resid_mid";
    if (!strcmp(input_hook, "mlp.hook_in") || !strcmp(input_hook, "ln2.hook_normalized")) return "mlp_in";
    return NULL;
}

void clt_model_name(const char *model_id, char *buf, size_t n) {
    size_t len = strlen(model_id);
    while (len > 1 && model_id[len - 1] == '/') len--;  // "dir/" names dir
    size_t start = len;
    while (start && model_id[start - 1] != '/') start--;
    snprintf(buf, n, "%.*s", (int)(len - start), model_id + start);
}

// Appends `key: "v"` (a YAML double-quoted scalar: backslash and quote escaped, control characters
// dropped) to buf (cap bytes, n used); returns the new length (>= cap when it did not fit).
static int yaml_str(char *buf, size_t cap, int n, const char *key, const char *v) {
    if (n < (int)cap) n += snprintf(buf + n, cap - (size_t)n, "%s: \"", key);
    for (const char *p = v; *p && n < (int)cap - 3; p++) {
        if (*p == '"' || *p == '\\') buf[n++] = '\\';
        if ((unsigned char)*p >= 0x20) buf[n++] = *p;
    }
    if (n < (int)cap) n += snprintf(buf + n, cap - (size_t)n, "\"\n");
    return n;
}

// The first value of v (n,) that is not finite (or, thresholds, not in (0, inf)): its index, or -1.
static int64_t first_bad(const float *v, size_t n, int positive) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]) || (positive && !(v[i] > 0))) return (int64_t)i;
    return -1;
}

// The circuit-tracer files of p, normalization folded in, into dir.
static int write_clt_files(const char *dir, const CltParams *p, const float *s_in, const float *s_out,
                           const CltSaveInfo *info, Error *e) {
    int L = p->L, d = p->d, F = p->F;
    float *enc = xmalloc((size_t)F * d * sizeof(float)), *benc = xmalloc((size_t)F * sizeof(float));
    float *thr = xmalloc((size_t)F * sizeof(float)), *bdec = xmalloc((size_t)d * sizeof(float));
    float *dec = xmalloc((size_t)F * L * d * sizeof(float));
    char path[4400], name_enc[32], name_benc[32], name_bdec[32], name_thr[32], name_dec[32];
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
        // a diverged run must not leave a checkpoint that looks good (an exp(log θ) overflow is a
        // threshold of inf or 0 although log θ itself is finite)
        const char *names[5] = {name_enc, name_benc, name_bdec, name_thr, name_dec};
        const float *vals[5] = {enc, benc, bdec, thr, dec};
        size_t lens[5] = {(size_t)F * d, (size_t)F, (size_t)d, (size_t)F, (size_t)F * row};
        for (int t = 0; t < 5 && !rc; t++) {
            int64_t bad = first_bad(vals[t], lens[t], vals[t] == thr);
            if (bad >= 0)
                rc = err_set(e, "%s: not saving a CLT with %s[%lld] = %g", dir, names[t], (long long)bad,
                             (double)vals[t][bad]);
        }
        if (rc) break;
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
    char cfg[4096], hash[17] = "", scan[512];
    int n = snprintf(cfg, sizeof cfg, "model_kind: cross_layer_transcoder\n");
    if (info && info->model_hash) snprintf(hash, sizeof hash, "%016llx", (unsigned long long)info->model_hash);
    if (info && info->model_name && *info->model_name) n = yaml_str(cfg, sizeof cfg, n, "model_name", info->model_name);
    if (*hash) n = yaml_str(cfg, sizeof cfg, n, "model_hash", hash);
    // scan names the feature set (circuit-tracer's graph files need one): model, width, model hash
    const char *name = info && info->model_name && *info->model_name ? info->model_name : "model";
    snprintf(scan, sizeof scan, "%.400s-clt-%d%s%.8s", name, F, *hash ? "-" : "", hash);
    n = yaml_str(cfg, sizeof cfg, n, "scan", info && info->scan ? info->scan : scan);
    n = yaml_str(cfg, sizeof cfg, n, "feature_input_hook",
                 info && info->input_hook ? info->input_hook : "hook_resid_mid");
    n = yaml_str(cfg, sizeof cfg, n, "feature_output_hook",
                 info && info->output_hook ? info->output_hook : "hook_mlp_out");
    if (info && info->trained_as)  // a comment: circuit-tracer's loader must not see an unknown key
        n += snprintf(cfg + n, sizeof cfg - (size_t)n,
                      "# trained as %s; saved as JumpReLU with thresholds from the batch cutoffs (formats/clt.md)\n",
                      info->trained_as);
    n += snprintf(cfg + n, sizeof cfg - (size_t)n,
                  "activation: jumprelu\nn_layers: %d\nd_model: %d\nd_transcoder: %d\n", L, d, F);
    if (n >= (int)sizeof cfg - 1) return err_set(e, "%s/config.yaml: model name too long", dir);
    return write_text_atomic(dir, "config.yaml", cfg, e);
}

// CRC-32C and size of a file, read in blocks.
static int file_crc(const char *path, uint32_t *crc, uint64_t *bytes, Error *e) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 20;
    uint8_t *buf = xmalloc(cap);
    uint32_t c = 0;
    uint64_t n = 0;
    int rc = 0;
    for (;;) {
        ssize_t got = read(fd, buf, cap);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) rc = err_set(e, "%s: read error: %s", path, strerror(errno));
        if (got <= 0) break;
        c = crc32c_update(c, buf, (size_t)got);
        n += (uint64_t)got;
    }
    free(buf);
    close(fd);
    *crc = c;
    *bytes = n;
    return rc;
}

#define MANIFEST "checkpoint.json"

// checkpoint.json in dir: the step and the size and CRC of every other file there.
static int write_manifest(const char *dir, int64_t step, Error *e) {
    json_t *root = json_object(), *files = json_object();
    json_object_set_new(root, "format", json_string("cltkit-checkpoint"));
    if (step >= 0) json_object_set_new(root, "step", json_integer(step));
    json_object_set_new(root, "files", files);
    DIR *d = opendir(dir);
    int rc = d ? 0 : err_set(e, "%s: cannot open directory: %s", dir, strerror(errno));
    struct dirent *de;
    char path[4400];
    if (strlen(dir) > 4000) rc = err_set(e, "%s: path too long", dir);
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.' || !strcmp(de->d_name, MANIFEST)) continue;
        snprintf(path, sizeof path, "%.4000s/%.255s", dir, de->d_name);
        uint32_t crc;
        uint64_t bytes;
        if ((rc = file_crc(path, &crc, &bytes, e))) break;
        char hex[16];
        snprintf(hex, sizeof hex, "%08x", crc);
        json_object_set_new(files, de->d_name, json_pack("{s:I,s:s}", "bytes", (json_int_t)bytes, "crc32c", hex));
    }
    if (d) closedir(d);
    char *text = rc ? NULL : json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (!rc) {
        size_t n = strlen(text);
        text = xrealloc(text, n + 2);
        memcpy(text + n, "\n", 2);
        rc = write_text_atomic(dir, MANIFEST, text, e);
    }
    free(text);
    json_decref(root);
    return rc;
}

int clt_save_checkpoint(const char *dir, const CltParams *p, const float *s_in, const float *s_out,
                        const CltSaveInfo *info, int64_t step, CltExtraWriter extra, void *ctx, Error *e) {
    DirTxn t;
    if (dir_txn_begin(&t, dir, e)) return -1;
    int rc = write_clt_files(t.stage, p, s_in, s_out, info, e);
    if (!rc && extra) rc = extra(t.stage, ctx, e);
    if (!rc) rc = write_manifest(t.stage, step, e);
    if (rc) {
        dir_txn_abort(&t);
        return -1;
    }
    return dir_txn_commit(&t, e);
}

int clt_save(const char *dir, const CltParams *p, const float *s_in, const float *s_out, const CltSaveInfo *info,
             Error *e) {
    return clt_save_checkpoint(dir, p, s_in, s_out, info, -1, NULL, NULL, e);
}

// Files a checkpoint consists of (those an unlisted one would mix into it).
static int checkpoint_file(const char *name) {
    int n = 0;
    if (sscanf(name, "W_enc_%*d.safetensors%n", &n) >= 0 && n && !name[n]) return 1;
    n = 0;
    if (sscanf(name, "W_dec_%*d.safetensors%n", &n) >= 0 && n && !name[n]) return 1;
    return !strcmp(name, "config.yaml") || !strcmp(name, "train_state.safetensors") || !strcmp(name, "run.json");
}

int clt_checkpoint_verify(const char *dir, int64_t *step, Error *e) {
    if (step) *step = -1;
    if (dir_txn_pending(dir))
        return err_set(
            e,
            "%s: a checkpoint switch was interrupted (the files are a mixture; %s/.cltkit-commit holds the new set): "
            "`clt-fit --resume -o %s` finishes it",
            dir, dir, dir);
    char path[4400];
    snprintf(path, sizeof path, "%s/" MANIFEST, dir);
    if (access(path, F_OK)) return 1;
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    json_t *files = json_object_get(root, "files"), *js = json_object_get(root, "step");
    int rc = 0;
    if (!root || !json_is_object(files) || (js && !json_is_integer(js)))
        rc = err_set(e, "%s: not a checkpoint manifest%s%s", path, root ? "" : ": ", root ? "" : je.text);
    const char *name;
    json_t *ent;
    json_object_foreach(files, name, ent) {
        if (rc) break;
        json_t *jb = json_object_get(ent, "bytes"), *jc = json_object_get(ent, "crc32c");
        if (!json_is_integer(jb) || !json_is_string(jc) || strchr(name, '/')) {
            rc = err_set(e, "%s: malformed entry \"%s\"", path, name);
            break;
        }
        char fpath[4400];
        snprintf(fpath, sizeof fpath, "%s/%s", dir, name);
        uint32_t crc;
        uint64_t bytes;
        if (file_crc(fpath, &crc, &bytes, e)) {
            rc = err_set(e, "%s: listed in %s but %s", fpath, MANIFEST, access(fpath, F_OK) ? "missing" : "unreadable");
            break;
        }
        char hex[16];
        snprintf(hex, sizeof hex, "%08x", crc);
        if (bytes != (uint64_t)json_integer_value(jb) || strcmp(hex, json_string_value(jc)))
            rc = err_set(e,
                         "%s: does not match %s (%llu bytes, CRC %s; listed: %lld bytes, CRC %s): the checkpoint's "
                         "files are a mixture",
                         fpath, MANIFEST, (unsigned long long)bytes, hex, (long long)json_integer_value(jb),
                         json_string_value(jc));
    }
    DIR *d = rc ? NULL : opendir(dir);
    struct dirent *de;
    while (d && !rc && (de = readdir(d)))
        if (checkpoint_file(de->d_name) && !json_object_get(files, de->d_name))
            rc = err_set(e, "%s/%s: not part of the checkpoint (%s does not list it)", dir, de->d_name, MANIFEST);
    if (d) closedir(d);
    if (!rc && step && js) *step = (int64_t)json_integer_value(js);
    json_decref(root);
    return rc ? -1 : 0;
}

int clt_load(const char *dir, CltParams *p, Error *e) {
    if (clt_checkpoint_verify(dir, NULL, e) < 0) return -1;
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
