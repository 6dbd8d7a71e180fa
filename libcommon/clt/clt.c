// clt.c — see clt.h. Forward: encoder GEMM + JumpReLU, then the sparse decoder over active
// features only. Backward: the decoder and threshold terms visit active and in-window features;
// the pre-activation term makes dh dense, so the encoder gradient is one GEMM per layer.
#include "clt.h"

#include "cpu.h"

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
    w->L = L; w->d = d; w->F = F; w->B = w->n = B;
    w->h = xmalloc((size_t)L * sizeof(float *));
    w->a = xmalloc((size_t)L * sizeof(float *));
    w->yhat = xmalloc((size_t)L * sizeof(float *));
    w->dy = xmalloc((size_t)B * L * d * sizeof(float));
    w->dh = xmalloc((size_t)L * sizeof(float *));
    w->norm = xmalloc((size_t)L * sizeof(float *));
    w->theta = xmalloc((size_t)L * sizeof(float *));
    w->gnorm = xmalloc((size_t)L * sizeof(float *));
    w->act_off = xmalloc((size_t)L * sizeof(int32_t *));
    w->act_idx = xmalloc((size_t)L * sizeof(int32_t *));
    w->act_cap = xmalloc((size_t)L * sizeof(size_t));
    w->cut_stat = xcalloc((size_t)L, sizeof(double));
    w->sq_err = xcalloc((size_t)L, sizeof(double));
    for (int l = 0; l < L; l++) {
        w->h[l] = xmalloc((size_t)B * F * sizeof(float));
        w->a[l] = xmalloc((size_t)B * F * sizeof(float));
        w->yhat[l] = xmalloc((size_t)B * d * sizeof(float));
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
        free(w->h[l]); free(w->a[l]); free(w->yhat[l]); free(w->dh[l]);
        free(w->norm[l]); free(w->theta[l]); free(w->gnorm[l]); free(w->act_off[l]); free(w->act_idx[l]);
    }
    free(w->h); free(w->a); free(w->yhat); free(w->dy); free(w->dh); free(w->norm); free(w->theta); free(w->gnorm);
    free(w->act_off); free(w->act_idx); free(w->act_cap); free(w->cut_stat); free(w->sq_err);
    memset(w, 0, sizeof *w);
}

void clt_work_set_activation(CltWork *w, CltActivation act, int k) {
    w->act = act;
    w->k = k;
}

// The inner products of the sparse decoder and its backward: rows of (L−l)·d floats. Sixteen
// partial sums (vectorized at -O3, see the Makefile) in a fixed order, so results do not depend
// on the thread count. On x86-64 each is compiled for AVX-512, AVX2+FMA and the baseline (the rest
// of the build targets the baseline) and cpu_level() picks one: the best the CPU has, or the one
// $CLTKIT_CPU forces (the tests run all three). The variants sum in the same order, but FMA
// contraction rounds differently: results may differ across CPUs in the last bits, never across
// runs or thread counts on one machine.
#define CLT_ROW_KERNELS(SUFFIX, ATTR)                                                              \
    ATTR static float dot_f32_##SUFFIX(const float *restrict a, const float *restrict b, size_t n) { \
        float acc[16] = {0};                                                                       \
        size_t j = 0;                                                                              \
        for (; j + 16 <= n; j += 16)                                                               \
            for (int u = 0; u < 16; u++) acc[u] += a[j + u] * b[j + u];                            \
        float s = 0;                                                                               \
        for (; j < n; j++) s += a[j] * b[j];                                                       \
        for (int u = 0; u < 16; u++) s += acc[u];                                                  \
        return s;                                                                                  \
    }                                                                                              \
    /* y (n,) += alpha · x (n,) */                                                                 \
    ATTR static void axpy_f32_##SUFFIX(float *restrict y, float alpha, const float *restrict x, size_t n) { \
        for (size_t j = 0; j < n; j++) y[j] += alpha * x[j];                                       \
    }

CLT_ROW_KERNELS(generic, )
#if defined(__x86_64__) && defined(__GNUC__)
CLT_ROW_KERNELS(avx2, __attribute__((target("arch=x86-64-v3"))))
CLT_ROW_KERNELS(avx512, __attribute__((target("arch=x86-64-v4"))))
#define CLT_ROW_DISPATCH(fn, ...)                                          \
    (cpu_level() == CPU_AVX512 ? fn##_avx512(__VA_ARGS__)                  \
     : cpu_level() == CPU_AVX2 ? fn##_avx2(__VA_ARGS__) : fn##_generic(__VA_ARGS__))
#else
#define CLT_ROW_DISPATCH(fn, ...) fn##_generic(__VA_ARGS__)
#endif
static inline float dot_f32(const float *a, const float *b, size_t n) { return CLT_ROW_DISPATCH(dot_f32, a, b, n); }
static inline void axpy_f32(float *y, float alpha, const float *x, size_t n) {
    CLT_ROW_DISPATCH(axpy_f32, y, alpha, x, n);
}

typedef struct {
    const CltParams *p;
    float *const *norm;
} NormCtx;

// ‖W_dec,li‖ over the concatenated targets, for items [begin, end) of (layer, feature).
static void decoder_norms(void *arg, size_t begin, size_t end) {
    const NormCtx *c = arg;
    const CltParams *p = c->p;
    for (size_t it = begin; it < end; it++) {
        int l = (int)(it / (size_t)p->F), i = (int)(it % (size_t)p->F);
        size_t row = (size_t)(p->L - l) * p->d;
        const float *wr = p->W_dec[l] + (size_t)i * row;
        c->norm[l][i] = sqrtf(dot_f32(wr, wr, row));
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
                for (int k = l; k < L; k++) axpy_f32(w->yhat[k] + t * d, av, wr + (size_t)(k - l) * d, (size_t)d);
            }
        }
    }
}

typedef struct {
    CltWork *w;
    int l, fill;       // pass 0: a and the per-token counts; pass 1: the active ids
    const float *cut;  // TopK: (B,) per token; BatchTopK: (1,); JumpReLU: NULL (θ per feature)
} SelectCtx;

// The activation over tokens [begin, end) of layer l. Pass 0 writes a and counts each token's
// active features into act_off[t + 1]; after the prefix sum, pass 1 writes their ids (ascending).
static void select_tokens(void *arg, size_t begin, size_t end) {
    const SelectCtx *c = arg;
    CltWork *w = c->w;
    int F = w->F, l = c->l;
    const float *theta = w->theta[l];
    for (size_t t = begin; t < end; t++) {
        const float *h = w->h[l] + t * F;
        float *a = w->a[l] + t * F;
        if (c->fill) {
            int32_t *idx = w->act_idx[l] + w->act_off[l][t];
            for (int i = 0; i < F; i++)
                if (a[i] != 0.0f) *idx++ = i;
            continue;
        }
        int32_t n = 0;
        if (!c->cut) {
            for (int i = 0; i < F; i++) {
                a[i] = h[i] > theta[i] ? h[i] : 0.0f;
                n += h[i] > theta[i];
            }
        } else {
            float cut = c->cut[w->act == CLT_TOPK ? t : 0];
            for (int i = 0; i < F; i++) {
                int keep = h[i] > 0.0f && h[i] >= cut;
                a[i] = keep ? h[i] : 0.0f;
                n += keep;
            }
        }
        w->act_off[l][t + 1] = n;
    }
}

void clt_select(CltWork *w, int l, const float *cut) {
    int B = w->n;
    SelectCtx c = {w, l, 0, w->act == CLT_JUMPRELU ? NULL : cut};
    parallel_for((size_t)B, 16, select_tokens, &c);
    w->act_off[l][0] = 0;
    for (int t = 0; t < B; t++) w->act_off[l][t + 1] += w->act_off[l][t];
    if ((size_t)w->act_off[l][B] > w->act_cap[l]) {
        w->act_cap[l] = (size_t)w->act_off[l][B] + (size_t)w->act_off[l][B] / 2;
        w->act_idx[l] = xrealloc(w->act_idx[l], w->act_cap[l] * sizeof(int32_t));
    }
    c.fill = 1;
    parallel_for((size_t)B, 16, select_tokens, &c);
    double stat = 0;  // the threshold estimate of this batch (clt.h)
    if (w->act == CLT_BATCHTOPK) stat = cut[0];
    if (w->act == CLT_TOPK) {
        for (int t = 0; t < B; t++) stat += cut[t];
        stat /= B;
    }
    w->cut_stat[l] = stat;
}

// ---- TopK selection -------------------------------------------------------------------------

static void swap_f(float *a, float *b) {
    float t = *a;
    *a = *b;
    *b = t;
}

// Rearranges v (n,) so that v[0, k) holds its k largest values (k ≤ n), in O(n) expected:
// quickselect with a median-of-three pivot and a three-way partition (many equal values, e.g.
// the zero padding, cost one pass).
static void select_top(float *v, size_t n, size_t k) {
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        float x = v[lo], y = v[lo + (hi - lo) / 2], z = v[hi - 1];
        float pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t lt = lo, i = lo, gt = hi;  // [lo, lt) > pivot, [lt, gt) == pivot, [gt, hi) < pivot
        while (i < gt) {
            if (v[i] > pivot) swap_f(&v[lt++], &v[i++]);
            else if (v[i] < pivot) swap_f(&v[i], &v[--gt]);
            else i++;
        }
        if (k < lt) hi = lt;
        else if (k <= gt) return;
        else lo = gt;
    }
}

// The K largest positive values of src (n,) into dst (K,), zero-padded; scratch (n,).
static void top_positive(const float *src, size_t n, size_t K, float *scratch, float *dst) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (src[i] > 0.0f) scratch[m++] = src[i];
    if (m > K) select_top(scratch, m, K), m = K;
    memcpy(dst, scratch, m * sizeof(float));
    memset(dst + m, 0, (K - m) * sizeof(float));
}

size_t clt_topk_groups(const CltWork *w) { return w->act == CLT_TOPK ? (size_t)w->n : 1; }
size_t clt_topk_candidates_per_group(const CltWork *w) {
    return w->act == CLT_TOPK ? (size_t)w->k : (size_t)w->n * (size_t)w->k;
}

// BatchTopK's one group (the whole batch) is cut into this many token slices, each reduced to its
// own K candidates in parallel; the union's K largest are the batch's K largest whatever the split.
enum { TOPK_SLICES = 16 };

typedef struct {
    const CltWork *w;
    int l;
    size_t K;
    float *out;  // TopK: (B, K); BatchTopK: (TOPK_SLICES, K)
} CandCtx;

static void candidates_range(void *arg, size_t begin, size_t end) {
    const CandCtx *c = arg;
    const CltWork *w = c->w;
    size_t F = (size_t)w->F, B = (size_t)w->n;
    if (w->act == CLT_TOPK) {
        float *scratch = xmalloc(F * sizeof(float));
        for (size_t t = begin; t < end; t++) top_positive(w->h[c->l] + t * F, F, c->K, scratch, c->out + t * c->K);
        free(scratch);
        return;
    }
    for (size_t sl = begin; sl < end; sl++) {
        size_t t0 = B * sl / TOPK_SLICES, t1 = B * (sl + 1) / TOPK_SLICES, n = (t1 - t0) * F;
        float *scratch = xmalloc((n > c->K ? n : c->K) * sizeof(float) + sizeof(float));
        top_positive(w->h[c->l] + t0 * F, n, c->K < n ? c->K : n, scratch, c->out + sl * c->K);
        if (c->K > n) memset(c->out + sl * c->K + n, 0, (c->K - n) * sizeof(float));
        free(scratch);
    }
}

void clt_topk_candidates(const CltWork *w, int l, float *cand) {
    size_t K = clt_topk_candidates_per_group(w);
    if (w->act == CLT_TOPK) {
        CandCtx c = {w, l, K, cand};
        parallel_for((size_t)w->n, 8, candidates_range, &c);
        return;
    }
    float *slices = xmalloc((size_t)TOPK_SLICES * K * sizeof(float));
    CandCtx c = {w, l, K, slices};
    parallel_for(TOPK_SLICES, 1, candidates_range, &c);
    float *scratch = xmalloc((size_t)TOPK_SLICES * K * sizeof(float));
    top_positive(slices, (size_t)TOPK_SLICES * K, K, scratch, cand);
    free(scratch);
    free(slices);
}

void clt_topk_cutoffs(const CltWork *w, const float *cand, int n_sets, float *cut) {
    size_t G = clt_topk_groups(w), K = clt_topk_candidates_per_group(w), n = (size_t)n_sets * K;
    float *v = xmalloc(n * sizeof(float));
    for (size_t g = 0; g < G; g++) {
        for (int r = 0; r < n_sets; r++) memcpy(v + (size_t)r * K, cand + ((size_t)r * G + g) * K, K * sizeof(float));
        select_top(v, n, K);
        float m = v[0];
        for (size_t i = 1; i < K; i++) m = v[i] < m ? v[i] : m;
        cut[g] = m > 0.0f ? m : 0.0f;
    }
    free(v);
}

void clt_encode(const CltParams *p, float *const *x, int B, CltWork *w) {
    int L = p->L, F = p->F;
    w->n = B;
    for (int l = 0; l < L; l++) {
        matmul_cpu(w->h[l], x[l], p->W_enc[l], p->b_enc[l], B, p->d, F);  // (B, F)
        for (int i = 0; i < F; i++) w->theta[l][i] = expf(p->log_theta[l][i]);
    }
    NormCtx nc = {p, w->norm};
    parallel_for((size_t)L * F, 64, decoder_norms, &nc);
}

void clt_decode(const CltParams *p, CltWork *w) {
    DecodeCtx c = {p, w};
    parallel_for((size_t)w->n, 16, decode_tokens, &c);
}

void clt_forward(const CltParams *p, float *const *x, int B, CltWork *w) {
    clt_encode(p, x, B, w);
    float *cand = NULL, *cut = NULL;
    if (w->act != CLT_JUMPRELU) {
        cand = xmalloc(clt_topk_groups(w) * clt_topk_candidates_per_group(w) * sizeof(float));
        cut = xmalloc(clt_topk_groups(w) * sizeof(float));
    }
    for (int l = 0; l < p->L; l++) {
        if (cand) {
            clt_topk_candidates(w, l, cand);
            clt_topk_cutoffs(w, cand, 1, cut);
        }
        clt_select(w, l, cut);
    }
    free(cand);
    free(cut);
    clt_decode(p, w);
}

typedef struct {
    const CltParams *p;
    float *const *y;
    const CltLossParams *lp;
    const CltWork *w;
    CltLossTerms *per_layer;  // (L,) unscaled sums of layer l's terms
} LossCtx;

// The loss sums of layers [begin, end): target layer k's squared error, source layer l's tanh and
// pre-activation sums, its active and in-window pairs. Summed over layers in order afterwards.
static void loss_layers(void *arg, size_t begin, size_t end) {
    const LossCtx *c = arg;
    const CltWork *w = c->w;
    int d = w->d, F = w->F, B = w->B;
    for (size_t l = begin; l < end; l++) {
        CltLossTerms t = {0};
        for (size_t i = 0; i < (size_t)B * d; i++) {
            double e = (double)w->yhat[l][i] - c->y[l][i];
            t.mse += e * e;
        }
        t.l0 = w->act_off[l][B];
        c->per_layer[l] = t;
        if (w->act != CLT_JUMPRELU) continue;  // TopK modes: the reconstruction is the whole loss
        for (int tk = 0; tk < B; tk++)
            for (int32_t q = w->act_off[l][tk]; q < w->act_off[l][tk + 1]; q++) {
                int i = w->act_idx[l][q];
                t.sparsity += tanh((double)c->lp->c * w->a[l][(size_t)tk * F + i] * w->norm[l][i]);
            }
        double *below = xcalloc((size_t)F, sizeof(double));  // Σ_t ReLU(θ_i − h_ti), token-major
        const float *theta = w->theta[l];
        float half_eps = 0.5f * c->lp->eps;
        for (int tk = 0; tk < B; tk++) {
            const float *h = w->h[l] + (size_t)tk * F;
            for (int i = 0; i < F; i++) {
                float gap = theta[i] - h[i];
                if (gap > 0) below[i] += gap;
                t.window += fabsf(gap) < half_eps;
            }
        }
        for (int i = 0; i < F; i++) t.preact += below[i] * w->norm[l][i];
        free(below);
        c->per_layer[l] = t;
    }
}

CltLossTerms clt_loss(const CltParams *p, float *const *y, const CltLossParams *lp, CltWork *w) {
    int L = p->L, B = w->B;
    CltLossTerms t = {0}, *per_layer = xmalloc((size_t)L * sizeof(CltLossTerms));
    LossCtx c = {p, y, lp, w, per_layer};
    parallel_for((size_t)L, 1, loss_layers, &c);
    for (int l = 0; l < L; l++) {
        w->sq_err[l] = per_layer[l].mse;  // (the trainer's per-layer NMSE reads it)
        t.mse += per_layer[l].mse;
        t.sparsity += per_layer[l].sparsity;
        t.preact += per_layer[l].preact;
        t.window += per_layer[l].window;
        t.l0 += per_layer[l].l0;
    }
    free(per_layer);
    t.mse /= B;
    t.window /= B;
    t.l0 /= B;
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
    int dense_da;  // 1: dh[l] already holds the reconstruction part of dL/da for every pair
} BackCtx;

// The feature-local part of the backward pass for features [begin, end) of layer l: dL/da of
// active and in-window features, dh, the threshold's pseudo-gradient, the pre-activation term,
// the decoder gradients, db_enc. Features are independent, so threads split them without races.
// Blocks of 16 features (one cache line of h) walk the tokens: a feature's decoder row and its
// gradient row stay in cache across the tokens instead of streaming by once per token.
enum { FEATURE_BLOCK = 16 };
static void backward_features(void *arg, size_t f_begin, size_t f_end) {
    const BackCtx *bc = arg;
    const CltParams *p = bc->p;
    const CltLossParams *lp = bc->lp;
    CltWork *w = bc->w;
    CltParams *g = bc->g;
    int l = bc->l, L = p->L, d = p->d, F = p->F, B = w->B;
    float inv_b = 1.0f / (float)B;
    size_t row = (size_t)(L - l) * d;
    float *dh = w->dh[l], *gn = w->gnorm[l], *dlt = g->log_theta[l], *dbe = g->b_enc[l];
    const float *norm = w->norm[l], *thetas = w->theta[l];
    // TopK modes: no sparsity or pre-activation term, no threshold window; the active set is a ≠ 0
    int topk = w->act != CLT_JUMPRELU;
    float spars = topk ? 0.0f : lp->lam * inv_b, pre = topk ? 0.0f : lp->lam_p * inv_b;
    float half_eps = topk ? 0.0f : 0.5f * lp->eps;
    for (int i = (int)f_begin; i < (int)f_end; i++) {
        gn[i] = dlt[i] = dbe[i] = 0;
        memset(g->W_dec[l] + (size_t)i * row, 0, row * sizeof(float));
    }
    for (int i0 = (int)f_begin; i0 < (int)f_end; i0 += FEATURE_BLOCK) {
        int i1 = i0 + FEATURE_BLOCK < (int)f_end ? i0 + FEATURE_BLOCK : (int)f_end;
        for (int t = 0; t < B; t++) {
            // a = h where h > θ (θ > 0), so h alone says which features are active. The rows of h
            // and dh are F floats apart: too far for the hardware prefetcher, hence a hint.
            const float *h = w->h[l] + (size_t)t * F;
            if (t + 4 < B) {
                __builtin_prefetch(h + 4 * (size_t)F + i0, 0);
                __builtin_prefetch(dh + (size_t)(t + 4) * F + i0, 1);
            }
            const float *dy = w->dy + ((size_t)t * L + l) * d;  // (L−l, d): the targets of layer l's features
            const float *a = w->a[l] + (size_t)t * F;
            for (int i = i0; i < i1; i++) {
                float theta = thetas[i], gap = h[i] - theta, dhv = 0;
                int active = topk ? a[i] != 0.0f : gap > 0, in_window = fabsf(gap) < half_eps;
                float av = active ? h[i] : 0.0f;
                if (active || in_window) {
                    // dL/da: the decoder's reconstruction gradient plus the tanh sparsity term
                    double da = bc->dense_da ? dh[(size_t)t * F + i] : dot_f32(p->W_dec[l] + (size_t)i * row, dy, row);
                    double cn = (double)lp->c * norm[i];
                    double th = tanh(cn * av);
                    da += spars * cn * (1.0 - th * th);
                    if (active) {
                        dhv = (float)da;
                        // ∂/∂W_dec of the reconstruction: a_li · dŷ_k; ∂/∂‖W_dec‖ of the sparsity term
                        axpy_f32(g->W_dec[l] + (size_t)i * row, av, dy, row);
                        gn[i] += (float)(spars * lp->c * av * (1.0 - th * th));
                    }
                    if (in_window) dlt[i] += (float)(da * (-theta / lp->eps)) * theta;  // through θ = exp(log θ)
                }
                if (gap < 0 && !topk) {  // pre-activation term ReLU(θ − h)·‖W_dec‖
                    dhv -= pre * norm[i];
                    dlt[i] += pre * norm[i] * theta;
                    gn[i] += pre * (-gap);
                }
                dh[(size_t)t * F + i] = dhv;
                dbe[i] += dhv;
            }
        }
    }
    // the norm terms into W_dec: ∂‖w‖/∂w = w / ‖w‖
    for (int i = (int)f_begin; i < (int)f_end; i++) {
        if (gn[i] == 0.0f || norm[i] == 0.0f) continue;
        axpy_f32(g->W_dec[l] + (size_t)i * row, gn[i] / norm[i], p->W_dec[l] + (size_t)i * row, row);
    }
}

// CLT_DENSE_DA_FRACTION (clt.h): measured backward seconds at d 512, 8 layers, 8192 features, 1024
// tokens, 2 threads (bench/bench_clt_step.c --window): per pair 1.0 at 2%, 3.7 at 10%, 9.5 at 50%;
// the GEMM 1.4-1.5 at 5-10%, 4.3 at 50%. Early in training most pairs sit in the window (clt-fit's
// metrics log it).

typedef struct {
    const CltWork *w;
    int l;
    float half_eps;
    int64_t *count;  // (B,) pairs per token
} WindowCtx;

static void window_tokens(void *arg, size_t begin, size_t end) {
    const WindowCtx *c = arg;
    int F = c->w->F;
    const float *theta = c->w->theta[c->l];
    for (size_t t = begin; t < end; t++) {
        const float *h = c->w->h[c->l] + t * F;
        int64_t n = 0;
        for (int i = 0; i < F; i++) n += h[i] > theta[i] || fabsf(h[i] - theta[i]) < c->half_eps;
        c->count[t] = n;
    }
}

// Whether layer l's pairs needing dL/da exceed CLT_DENSE_DA_FRACTION (JumpReLU only).
static int wide_window(const CltWork *w, const CltLossParams *lp, int l) {
    int64_t *count = xmalloc((size_t)w->B * sizeof(int64_t)), total = 0;
    WindowCtx c = {w, l, 0.5f * lp->eps, count};
    parallel_for((size_t)w->B, 16, window_tokens, &c);
    for (int t = 0; t < w->B; t++) total += count[t];
    free(count);
    return (double)total > CLT_DENSE_DA_FRACTION * (double)w->B * (double)w->F;
}

void clt_backward(const CltParams *p, float *const *x, float *const *y, const CltLossParams *lp, CltWork *w,
                  CltParams *g) {
    int L = p->L, d = p->d, F = p->F, B = w->B;
    float inv_b = 1.0f / (float)B;
    // dŷ and db_dec (the feature-local gradients are written, not accumulated, below)
    for (int k = 0; k < L; k++) {
        memset(g->b_dec[k], 0, (size_t)d * sizeof(float));
        for (int t = 0; t < B; t++) {
            float *dy = w->dy + ((size_t)t * L + k) * d;
            const float *yh = w->yhat[k] + (size_t)t * d, *yt = y[k] + (size_t)t * d;
            for (int j = 0; j < d; j++) {
                dy[j] = 2.0f * (yh[j] - yt[j]) * inv_b;
                g->b_dec[k][j] += dy[j];
            }
        }
    }
    for (int l = 0; l < L; l++) {
        BackCtx bc = {p, lp, w, g, l, 0};
        if (w->act == CLT_JUMPRELU && wide_window(w, lp, l)) {
            // Most pairs need dL/da (early in training the window holds most of them): one GEMM,
            // dA (B, F) = dŷ[:, l:, :] (B, (L−l)·d) · W_dec[l]ᵀ, beats a dot product per pair. dh
            // holds it until backward_features overwrites each entry with dL/dh.
            size_t row = (size_t)(L - l) * d;
            float *dyl = xmalloc((size_t)B * row * sizeof(float));
            for (int t = 0; t < B; t++)
                memcpy(dyl + (size_t)t * row, w->dy + ((size_t)t * L + l) * d, row * sizeof(float));
            matmul_cpu(w->dh[l], dyl, p->W_dec[l], NULL, B, (int)row, F);
            free(dyl);
            bc.dense_da = 1;
        }
        parallel_for((size_t)F, FEATURE_BLOCK, backward_features, &bc);
        // encoder: dW_enc = dhᵀ x (F, d)
        matmul_tn_cpu(g->W_enc[l], w->dh[l], x[l], F, B, d, 0.0f);
    }
}

typedef struct {
    float *param, *m, *v;
    const float *grad;
    float step, beta1, beta2, inv_sqrt_bc2, eps;
} AdamCtx;

static void adam_range(void *arg, size_t begin, size_t end) {
    const AdamCtx *c = arg;
    float *param = c->param, *m = c->m, *v = c->v;
    const float *grad = c->grad;
    for (size_t i = begin; i < end; i++) {
        m[i] = c->beta1 * m[i] + (1 - c->beta1) * grad[i];
        v[i] = c->beta2 * v[i] + (1 - c->beta2) * grad[i] * grad[i];
        param[i] -= c->step * m[i] / (sqrtf(v[i]) * c->inv_sqrt_bc2 + c->eps);
    }
}

void adam_step(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1, float beta2,
               float eps, int64_t t) {
    double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    AdamCtx c = {param, m, v, grad, (float)(lr / bc1), beta1, beta2, (float)(1.0 / sqrt(bc2)), eps};
    parallel_for(n, 1 << 16, adam_range, &c);  // element-wise: the thread count cannot change a result
}
