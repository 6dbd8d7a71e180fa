// clt.c — see clt.h. Forward: encoder GEMM + JumpReLU, then the sparse decoder over active
// features only. Backward: the decoder and threshold terms visit active and in-window features;
// the pre-activation term makes dh dense, so the encoder gradient is one GEMM per layer.
#include "clt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "threads.h"

size_t clt_param_count(int L, int d, int F) {
    size_t n = 0;
    for (int l = 0; l < L; l++) n += (size_t)F * d + 2 * (size_t)F + (size_t)F * (L - l) * d + (size_t)d;
    return n;
}

void clt_params_init(CltParams *p, int L, int d, int F, float *data) {
    memset(p, 0, sizeof *p);
    p->L = L;
    p->d = d;
    p->F = F;
    p->n = clt_param_count(L, d, F);
    p->owns_data = data == NULL;
    p->data = data ? data : xcalloc(p->n, sizeof(float));
    p->W_enc = xmalloc((size_t)L * sizeof(float *));
    p->b_enc = xmalloc((size_t)L * sizeof(float *));
    p->log_theta = xmalloc((size_t)L * sizeof(float *));
    p->W_dec = xmalloc((size_t)L * sizeof(float *));
    p->b_dec = xmalloc((size_t)L * sizeof(float *));
    float *q = p->data;
    for (int l = 0; l < L; l++) {  // layer-major: everything of layer l together (sharding-friendly)
        p->W_enc[l] = q; q += (size_t)F * d;
        p->b_enc[l] = q; q += F;
        p->log_theta[l] = q; q += F;
        p->W_dec[l] = q; q += (size_t)F * (L - l) * d;
        p->b_dec[l] = q; q += d;
    }
}

void clt_params_free(CltParams *p) {
    if (p->owns_data) free(p->data);
    free(p->W_enc); free(p->b_enc); free(p->log_theta); free(p->W_dec); free(p->b_dec);
    memset(p, 0, sizeof *p);
}

uint64_t clt_splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
float clt_uniform_pm(uint64_t *s, float bound) {
    return (float)(((double)(clt_splitmix64(s) >> 11) / 9007199254740992.0) * 2.0 - 1.0) * bound;
}

void clt_params_init_random(CltParams *p, uint64_t seed, float theta0) {
    uint64_t s = seed;
    float enc_bound = 1.0f / sqrtf((float)p->F), dec_bound = 1.0f / sqrtf((float)p->L * p->d);
    for (int l = 0; l < p->L; l++) {
        for (size_t i = 0; i < (size_t)p->F * p->d; i++) p->W_enc[l][i] = clt_uniform_pm(&s, enc_bound);
        for (size_t i = 0; i < (size_t)p->F * (p->L - l) * p->d; i++) p->W_dec[l][i] = clt_uniform_pm(&s, dec_bound);
        for (int i = 0; i < p->F; i++) {
            p->b_enc[l][i] = 0;
            p->log_theta[l][i] = logf(theta0);
        }
        memset(p->b_dec[l], 0, (size_t)p->d * sizeof(float));
    }
}

void clt_work_init(CltWork *w, int L, int d, int F, int B) {
    memset(w, 0, sizeof *w);
    w->L = L; w->d = d; w->F = F; w->B = B;
    w->h = xmalloc((size_t)L * sizeof(float *));
    w->a = xmalloc((size_t)L * sizeof(float *));
    w->yhat = xmalloc((size_t)L * sizeof(float *));
    w->dyhat = xmalloc((size_t)L * sizeof(float *));
    w->dh = xmalloc((size_t)L * sizeof(float *));
    w->norm = xmalloc((size_t)L * sizeof(float *));
    w->theta = xmalloc((size_t)L * sizeof(float *));
    w->gnorm = xmalloc((size_t)L * sizeof(float *));
    w->act_off = xmalloc((size_t)L * sizeof(int32_t *));
    w->act_idx = xmalloc((size_t)L * sizeof(int32_t *));
    w->act_cap = xmalloc((size_t)L * sizeof(size_t));
    for (int l = 0; l < L; l++) {
        w->h[l] = xmalloc((size_t)B * F * sizeof(float));
        w->a[l] = xmalloc((size_t)B * F * sizeof(float));
        w->yhat[l] = xmalloc((size_t)B * d * sizeof(float));
        w->dyhat[l] = xmalloc((size_t)B * d * sizeof(float));
        w->dh[l] = xmalloc((size_t)B * F * sizeof(float));
        w->norm[l] = xmalloc((size_t)F * sizeof(float));
        w->theta[l] = xmalloc((size_t)F * sizeof(float));
        w->gnorm[l] = xmalloc((size_t)F * sizeof(float));
        w->act_off[l] = xmalloc((size_t)(B + 1) * sizeof(int32_t));
        w->act_cap[l] = (size_t)B * 64;
        w->act_idx[l] = xmalloc(w->act_cap[l] * sizeof(int32_t));
    }
}

void clt_work_free(CltWork *w) {
    for (int l = 0; l < w->L; l++) {
        free(w->h[l]); free(w->a[l]); free(w->yhat[l]); free(w->dyhat[l]); free(w->dh[l]);
        free(w->norm[l]); free(w->theta[l]); free(w->gnorm[l]); free(w->act_off[l]); free(w->act_idx[l]);
    }
    free(w->h); free(w->a); free(w->yhat); free(w->dyhat); free(w->dh); free(w->norm); free(w->theta); free(w->gnorm);
    free(w->act_off); free(w->act_idx); free(w->act_cap);
    memset(w, 0, sizeof *w);
}

// ‖W_dec,li‖ over the concatenated targets, in double.
static void decoder_norms(const CltParams *p, int l, float *norm) {
    size_t row = (size_t)(p->L - l) * p->d;
    for (int i = 0; i < p->F; i++) {
        const float *wr = p->W_dec[l] + (size_t)i * row;
        double s = 0;
        for (size_t j = 0; j < row; j++) s += (double)wr[j] * wr[j];
        norm[i] = (float)sqrt(s);
    }
}

typedef struct {
    const CltParams *p;
    CltWork *w;
} DecodeCtx;

// Sparse decode of tokens [begin, end): ŷ_k = b_dec[k] + Σ_{l≤k} Σ_{i active} a_li W_dec[l][i, k−l].
// Each token's rows belong to one thread, summed in a fixed order (thread-count independent).
static void decode_tokens(void *arg, size_t begin, size_t end) {
    const DecodeCtx *c = arg;
    const CltParams *p = c->p;
    CltWork *w = c->w;
    int L = p->L, d = p->d, F = p->F;
    for (size_t t = begin; t < end; t++) {
        for (int k = 0; k < L; k++) memcpy(w->yhat[k] + t * d, p->b_dec[k], (size_t)d * sizeof(float));
        for (int l = 0; l < L; l++) {
            size_t row = (size_t)(L - l) * d;
            for (int32_t q = w->act_off[l][t]; q < w->act_off[l][t + 1]; q++) {
                int i = w->act_idx[l][q];
                float av = w->a[l][t * F + i];
                const float *wr = p->W_dec[l] + (size_t)i * row;
                for (int k = l; k < L; k++) {
                    float *yo = w->yhat[k] + t * d;
                    const float *wk = wr + (size_t)(k - l) * d;
                    for (int j = 0; j < d; j++) yo[j] += av * wk[j];
                }
            }
        }
    }
}

void clt_forward(const CltParams *p, float *const *x, int B, CltWork *w) {
    int L = p->L, d = p->d, F = p->F;
    for (int l = 0; l < L; l++) {
        matmul_cpu(w->h[l], x[l], p->W_enc[l], p->b_enc[l], B, d, F);  // (B, F)
        for (int i = 0; i < F; i++) w->theta[l][i] = expf(p->log_theta[l][i]);
        // JumpReLU and the active lists
        size_t n_act = 0;
        w->act_off[l][0] = 0;
        for (int t = 0; t < B; t++) {
            const float *h = w->h[l] + (size_t)t * F;
            float *a = w->a[l] + (size_t)t * F;
            for (int i = 0; i < F; i++) {
                if (h[i] > w->theta[l][i]) {
                    a[i] = h[i];
                    if (n_act == w->act_cap[l]) {
                        w->act_cap[l] *= 2;
                        w->act_idx[l] = xrealloc(w->act_idx[l], w->act_cap[l] * sizeof(int32_t));
                    }
                    w->act_idx[l][n_act++] = i;
                } else {
                    a[i] = 0;
                }
            }
            w->act_off[l][t + 1] = (int32_t)n_act;
        }
        decoder_norms(p, l, w->norm[l]);
    }
    DecodeCtx c = {p, w};
    parallel_for((size_t)B, 16, decode_tokens, &c);
}

CltLossTerms clt_loss(const CltParams *p, float *const *y, const CltLossParams *lp, CltWork *w) {
    CltLossTerms t = {0};
    int L = p->L, d = p->d, F = p->F, B = w->B;
    for (int k = 0; k < L; k++)
        for (size_t i = 0; i < (size_t)B * d; i++) {
            double e = (double)w->yhat[k][i] - y[k][i];
            t.mse += e * e;
        }
    for (int l = 0; l < L; l++) {
        for (int tk = 0; tk < B; tk++)
            for (int32_t q = w->act_off[l][tk]; q < w->act_off[l][tk + 1]; q++) {
                int i = w->act_idx[l][q];
                t.sparsity += tanh((double)lp->c * w->a[l][(size_t)tk * F + i] * w->norm[l][i]);
            }
        for (int i = 0; i < F; i++) {
            double theta = exp((double)p->log_theta[l][i]);
            for (int tk = 0; tk < B; tk++) {
                double gap = theta - w->h[l][(size_t)tk * F + i];
                if (gap > 0) t.preact += gap * w->norm[l][i];
            }
        }
        t.l0 += (double)w->act_off[l][B] / B;
    }
    t.mse /= B;
    t.sparsity *= (double)lp->lam / B;
    t.preact *= (double)lp->lam_p / B;
    t.total = t.mse + t.sparsity + t.preact;
    return t;
}

typedef struct {
    const CltParams *p;
    const CltLossParams *lp;
    CltWork *w;
    CltParams *g;
    int l;
} BackCtx;

// The feature-local part of the backward pass for features [begin, end) of layer l: dL/da of
// active and in-window features, dh, the threshold's pseudo-gradient, the pre-activation term,
// the decoder gradients. Features are independent, so threads split them without races.
static void backward_features(void *arg, size_t f_begin, size_t f_end) {
    const BackCtx *bc = arg;
    const CltParams *p = bc->p;
    const CltLossParams *lp = bc->lp;
    CltWork *w = bc->w;
    CltParams *g = bc->g;
    int l = bc->l, L = p->L, d = p->d, F = p->F, B = w->B;
    float inv_b = 1.0f / (float)B;
    size_t row = (size_t)(L - l) * d;
    float *dh = w->dh[l], *gn = w->gnorm[l], *dlt = g->log_theta[l];
    memset(gn + f_begin, 0, (f_end - f_begin) * sizeof(float));
    float spars = lp->lam * inv_b, pre = lp->lam_p * inv_b;
    for (int t = 0; t < B; t++) {
        const float *h = w->h[l] + (size_t)t * F, *a = w->a[l] + (size_t)t * F;
        for (int i = (int)f_begin; i < (int)f_end; i++) {
            float theta = w->theta[l][i];
            float gap = h[i] - theta;
            int active = a[i] != 0.0f;
            int in_window = fabsf(gap) < 0.5f * lp->eps;
            if (active || in_window) {
                // dL/da: the decoder's reconstruction gradient plus the tanh sparsity term
                const float *wr = p->W_dec[l] + (size_t)i * row;
                double da = 0;
                for (int k = l; k < L; k++) {
                    const float *wk = wr + (size_t)(k - l) * d, *dy = w->dyhat[k] + (size_t)t * d;
                    for (int j = 0; j < d; j++) da += (double)wk[j] * dy[j];
                }
                double cn = (double)lp->c * w->norm[l][i];
                double th = tanh(cn * a[i]);
                da += spars * cn * (1.0 - th * th);
                if (active) {
                    dh[(size_t)t * F + i] += (float)da;
                    // ∂/∂W_dec of the reconstruction: a_li · dŷ_k; ∂/∂‖W_dec‖ of the sparsity term
                    float *gw = g->W_dec[l] + (size_t)i * row;
                    for (int k = l; k < L; k++) {
                        float *gk = gw + (size_t)(k - l) * d;
                        const float *dy = w->dyhat[k] + (size_t)t * d;
                        for (int j = 0; j < d; j++) gk[j] += a[i] * dy[j];
                    }
                    gn[i] += (float)(spars * lp->c * a[i] * (1.0 - th * th));
                }
                if (in_window) dlt[i] += (float)(da * (-theta / lp->eps)) * theta;  // through θ = exp(log θ)
            }
            if (gap < 0) {  // pre-activation term ReLU(θ − h)·‖W_dec‖
                dh[(size_t)t * F + i] -= pre * w->norm[l][i];
                dlt[i] += pre * w->norm[l][i] * theta;
                gn[i] += pre * (-gap);
            }
        }
    }
    // the norm terms into W_dec: ∂‖w‖/∂w = w / ‖w‖
    for (int i = (int)f_begin; i < (int)f_end; i++) {
        if (gn[i] == 0.0f || w->norm[l][i] == 0.0f) continue;
        float s = gn[i] / w->norm[l][i];
        const float *wr = p->W_dec[l] + (size_t)i * row;
        float *gw = g->W_dec[l] + (size_t)i * row;
        for (size_t j = 0; j < row; j++) gw[j] += s * wr[j];
    }
}

void clt_backward(const CltParams *p, float *const *x, float *const *y, const CltLossParams *lp, CltWork *w, CltParams *g) {
    int L = p->L, d = p->d, F = p->F, B = w->B;
    memset(g->data, 0, g->n * sizeof(float));
    float inv_b = 1.0f / (float)B;
    // dŷ and db_dec
    for (int k = 0; k < L; k++) {
        for (size_t i = 0; i < (size_t)B * d; i++) w->dyhat[k][i] = 2.0f * (w->yhat[k][i] - y[k][i]) * inv_b;
        for (int t = 0; t < B; t++)
            for (int j = 0; j < d; j++) g->b_dec[k][j] += w->dyhat[k][(size_t)t * d + j];
    }
    for (int l = 0; l < L; l++) {
        float *dh = w->dh[l];
        memset(w->dh[l], 0, (size_t)B * F * sizeof(float));
        BackCtx bc = {p, lp, w, g, l};
        parallel_for((size_t)F, 8, backward_features, &bc);
        // encoder: dW_enc = dhᵀ x (F, d), db_enc = Σ_t dh
        matmul_tn_cpu(g->W_enc[l], dh, x[l], F, B, d, 0.0f);
        for (int t = 0; t < B; t++)
            for (int i = 0; i < F; i++) g->b_enc[l][i] += dh[(size_t)t * F + i];
    }
}

void adam_step(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1, float beta2,
               float eps, int64_t t) {
    double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    float step = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    for (size_t i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1 - beta1) * grad[i];
        v[i] = beta2 * v[i] + (1 - beta2) * grad[i] * grad[i];
        param[i] -= step * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
    }
}
