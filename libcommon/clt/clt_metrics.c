// clt_metrics.c — see clt_metrics.h.
#include "clt_metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void clt_metrics_init(CltMetrics *M, int L, int F, int F_local, int B, int64_t step, const float *silent, double now) {
    memset(M, 0, sizeof *M);
    M->L = L, M->F = F, M->F_local = F_local, M->B = B;
    M->err = xcalloc((size_t)L, sizeof(double));
    M->var = xcalloc((size_t)L, sizeof(double));
    M->l0 = xcalloc((size_t)L, sizeof(double));
    // dead features: the last step each (local) feature fired, from the state's silent counts
    M->last_fired = xmalloc((size_t)L * F_local * sizeof(int64_t));
    for (size_t i = 0; i < (size_t)L * F_local; i++) M->last_fired[i] = step - (int64_t)(silent ? silent[i] : 0);
    M->t_log = now;
}

void clt_metrics_add(CltMetrics *M, int64_t step, const CltLossTerms *lt, const double *err, const double *var,
                     const int64_t *active, const uint8_t *fired) {
    M->acc.mse += lt->mse;
    M->acc.sparsity += lt->sparsity;
    M->acc.preact += lt->preact;
    M->acc.total += lt->total;
    M->acc.l0 += lt->l0;
    M->acc.window += lt->window;
    M->n++;
    int Fl = M->F_local;
    for (int k = 0; k < M->L; k++) {
        M->err[k] += err[k];
        M->var[k] += var[k];
        M->l0[k] += (double)active[k] / M->B;
        for (int i = 0; i < Fl; i++)
            if (fired[(size_t)k * Fl + i]) M->last_fired[(size_t)k * Fl + i] = step + 1;
    }
}

int clt_metrics_log(CltMetrics *M, const Comm *comm, FILE *f, const char *path, int64_t step, float lam, float lr,
                    double now, double time_s, Error *e) {
    int L = M->L, B = M->B, n = M->n;
    int64_t dead = 0;
    // dead: silent during the last ~1M tokens, or all the tokens so far when fewer (a short
    // run's collapsed features count)
    int64_t window = 1000000 / B + 1;
    if (window > step + 1) window = step + 1;
    for (size_t i = 0; i < (size_t)L * M->F_local; i++) dead += step + 1 - M->last_fired[i] >= window;
    double dead_all = (double)dead;  // per-feature counts: summed over the ranks' features
    if (comm_allreduce_sum_f64(comm, &dead_all, 1, e) || comm_allreduce_sum_f64(comm, M->l0, (size_t)L, e)) return -1;
    dead = (int64_t)dead_all;
    if (f) {  // rank 0
        const CltLossTerms *a = &M->acc;
        fprintf(f,
                "{\"step\": %lld, \"tokens\": %lld, \"loss\": %.6g, \"mse\": %.6g, \"sparsity\": %.6g, "
                "\"preact\": %.6g, "
                "\"lambda\": %.6g, \"lr\": %.6g, \"l0\": %.4g, \"window\": %.4g, \"dead\": %lld, "
                "\"dead_frac\": %.6g, "
                "\"dead_window_tokens\": %lld, \"tokens_per_s\": %.1f, \"time_s\": %.3f, \"nmse\": [",
                (long long)step + 1, (long long)(step + 1) * B, a->total / n, a->mse / n, a->sparsity / n,
                a->preact / n, lam, lr, a->l0 / n, a->window / n, (long long)dead, (double)dead / ((double)L * M->F),
                (long long)window * B, (double)n * B / (now - M->t_log > 0 ? now - M->t_log : 1e-9), time_s);
        for (int k = 0; k < L; k++) fprintf(f, "%s%.5g", k ? ", " : "", M->var[k] > 0 ? M->err[k] / M->var[k] : 0);
        fprintf(f, "], \"l0_per_layer\": [");
        for (int k = 0; k < L; k++) fprintf(f, "%s%.4g", k ? ", " : "", M->l0[k] / n);
        fprintf(f, "]}\n");
        if (fflush(f) || ferror(f)) return err_set(e, "%s: write error: %s", path, strerror(errno));
    }
    memset(&M->acc, 0, sizeof M->acc);
    M->n = 0;
    memset(M->err, 0, (size_t)L * sizeof(double));
    memset(M->var, 0, (size_t)L * sizeof(double));
    memset(M->l0, 0, (size_t)L * sizeof(double));
    M->t_log = now;
    return 0;
}

void clt_metrics_silent(const CltMetrics *M, int64_t step, float *silent, float cap) {
    for (size_t i = 0; i < (size_t)M->L * M->F_local; i++) silent[i] = fminf((float)(step - M->last_fired[i]), cap);
}

void clt_metrics_free(CltMetrics *M) {
    free(M->err);
    free(M->var);
    free(M->l0);
    free(M->last_fired);
    memset(M, 0, sizeof *M);
}
