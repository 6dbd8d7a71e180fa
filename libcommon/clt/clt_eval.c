// clt_eval.c — see clt_eval.h. One pass over the shards' chunks, each cut into batches for
// clt_forward; errors and variances accumulate in double per target layer.
#include "clt_eval.h"

#include <stdlib.h>
#include <string.h>

#include "actshard.h"
#include "clt_io.h"

static int check_shard(const ActShard *s, const CltParams *p, const char *input_hook, Error *e) {
    if (s->n_layers != p->L || s->d_model != p->d)
        return err_set(e, "%s: %d layers of width %d, but the CLT has %d layers of width %d", s->path, s->n_layers,
                       s->d_model, p->L, p->d);
    if (strcmp(s->out_hook, "mlp_out"))
        return err_set(e, "%s: output hook %s, the CLT reconstructs mlp_out", s->path, s->out_hook);
    const char *want = clt_shard_hook(input_hook);
    if (want && strcmp(s->in_hook, want))
        return err_set(e, "%s: input hook %s, but the CLT reads %s (%s)", s->path, s->in_hook, input_hook, want);
    for (int l = 1; l < s->n_layers; l++)
        if (s->layers[l] != s->layers[l - 1] + 1)
            return err_set(e, "%s: the CLT needs consecutive layers (got layer %d after %d)", s->path, s->layers[l],
                           s->layers[l - 1]);
    return 0;
}

int clt_eval_shards(const CltParams *p, const char *input_hook, char *const *paths, int n_paths, int batch,
                    CltEvalResult *r, Error *e) {
    memset(r, 0, sizeof *r);
    if (n_paths < 1) return err_set(e, "no activation shards given");
    if (batch < 1) batch = 1024;
    int L = p->L, d = p->d, F = p->F;
    ActShard *sh = xcalloc((size_t)n_paths, sizeof *sh);
    int opened = 0, rc = 0;
    for (; opened < n_paths && !rc; opened++) {
        if (actshard_open(&sh[opened], paths[opened], e)) break;
        rc = check_shard(&sh[opened], p, input_hook, e);
    }
    if (opened < n_paths || rc) {
        for (int i = 0; i < opened; i++) actshard_close(&sh[i]);
        free(sh);
        return -1;
    }
    // ȳ_k: the token-weighted mean of the shards' per-dimension means
    double *mean = xcalloc((size_t)L * d, sizeof(double)), tokens = 0;
    for (int i = 0; i < n_paths; i++) {
        tokens += (double)sh[i].n_tokens;
        for (int k = 0; k < L; k++)
            for (int j = 0; j < d; j++) mean[(size_t)k * d + j] += sh[i].stats[k].out.mean[j] * (double)sh[i].n_tokens;
    }
    for (size_t q = 0; q < (size_t)L * d; q++) mean[q] = tokens > 0 ? mean[q] / tokens : 0;

    r->L = L;
    r->F = F;
    r->nmse = xcalloc((size_t)L, sizeof(double));
    r->fve = xcalloc((size_t)L, sizeof(double));
    r->l0 = xcalloc((size_t)L, sizeof(double));
    r->dead = xcalloc((size_t)L, sizeof(int64_t));
    r->fire_count = xcalloc((size_t)L * F, sizeof(uint64_t));
    double *err = xcalloc((size_t)L, sizeof(double)), *var = xcalloc((size_t)L, sizeof(double));
    float **x = xmalloc((size_t)L * sizeof(float *));
    CltWork w;
    clt_work_init(&w, L, d, F, batch);
    ActChunk ch = {0};
    for (int i = 0; i < n_paths && !rc; i++)
        for (uint64_t c = 0; c < sh[i].n_chunks && !rc; c++) {
            if ((rc = actshard_read_chunk(&sh[i], c, &ch, e))) break;
            size_t n = ch.n;
            for (size_t t0 = 0; t0 < n; t0 += (size_t)batch) {
                int nb = n - t0 < (size_t)batch ? (int)(n - t0) : batch;
                for (int l = 0; l < L; l++) x[l] = ch.in + ((size_t)l * n + t0) * d;
                clt_forward(p, x, nb, &w);
                for (int k = 0; k < L; k++) {
                    const float *y = ch.out + ((size_t)k * n + t0) * d, *yh = w.yhat[k];
                    const double *mk = mean + (size_t)k * d;
                    double ek = 0, vk = 0;
                    for (int t = 0; t < nb; t++)
                        for (int j = 0; j < d; j++) {
                            double ev = (double)yh[(size_t)t * d + j] - y[(size_t)t * d + j];
                            double dv = (double)y[(size_t)t * d + j] - mk[j];
                            ek += ev * ev;
                            vk += dv * dv;
                        }
                    err[k] += ek;
                    var[k] += vk;
                    for (int32_t q = 0; q < w.act_off[k][nb]; q++) r->fire_count[(size_t)k * F + w.act_idx[k][q]]++;
                }
            }
            r->tokens += n;
        }
    if (!rc && !r->tokens) rc = err_set(e, "%s: no tokens", paths[0]);
    if (!rc) {
        double total_err = 0;
        for (int k = 0; k < L; k++) {
            r->nmse[k] = var[k] > 0 ? err[k] / var[k] : 0;
            r->fve[k] = 1 - r->nmse[k];
            total_err += err[k];
            uint64_t fired = 0;
            for (int i = 0; i < F; i++) {
                fired += r->fire_count[(size_t)k * F + i];
                r->dead[k] += r->fire_count[(size_t)k * F + i] == 0;
            }
            r->l0[k] = (double)fired / (double)r->tokens;
        }
        r->mse = total_err / (double)r->tokens;
    }
    actchunk_free(&ch);
    clt_work_free(&w);
    free(x); free(err); free(var); free(mean);
    for (int i = 0; i < n_paths; i++) actshard_close(&sh[i]);
    free(sh);
    if (rc) clt_eval_result_free(r);
    return rc;
}

void clt_eval_result_free(CltEvalResult *r) {
    free(r->nmse); free(r->fve); free(r->l0); free(r->dead); free(r->fire_count);
    memset(r, 0, sizeof *r);
}

static void print_array(FILE *f, const double *v, int n, const char *fmt) {
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        fprintf(f, fmt, v[i]);
    }
    fputc(']', f);
}

void clt_eval_print_members(FILE *f, const CltEvalResult *r, int indent) {
    int L = r->L;
    double nmse_mean = 0, l0 = 0, *dead = xmalloc((size_t)L * sizeof(double));
    int64_t dead_total = 0;
    for (int k = 0; k < L; k++) {
        nmse_mean += r->nmse[k] / L;
        l0 += r->l0[k];
        dead[k] = (double)r->dead[k];
        dead_total += r->dead[k];
    }
    const char *pad = "                ";
    int ind = indent < 16 ? indent : 16;
    fprintf(f, "%.*s\"tokens\": %llu,\n", ind, pad, (unsigned long long)r->tokens);
    fprintf(f, "%.*s\"nmse\": ", ind, pad);
    print_array(f, r->nmse, L, "%.6g");
    fprintf(f, ",\n%.*s\"fve\": ", ind, pad);
    print_array(f, r->fve, L, "%.6g");
    fprintf(f, ",\n%.*s\"nmse_mean\": %.6g,\n", ind, pad, nmse_mean);
    fprintf(f, "%.*s\"mse\": %.6g,\n", ind, pad, r->mse);
    fprintf(f, "%.*s\"l0\": %.6g,\n", ind, pad, l0);
    fprintf(f, "%.*s\"l0_per_layer\": ", ind, pad);
    print_array(f, r->l0, L, "%.6g");
    fprintf(f, ",\n%.*s\"dead\": %lld,\n", ind, pad, (long long)dead_total);
    fprintf(f, "%.*s\"dead_per_layer\": ", ind, pad);
    print_array(f, dead, L, "%.0f");
    fprintf(f, ",\n%.*s\"dead_frac\": %.6g", ind, pad, (double)dead_total / ((double)L * r->F));
    free(dead);
}
