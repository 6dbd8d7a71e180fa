// clt_cuda.cu — the CLT training step on the GPU (clt_cuda.h); the math is clt.c's, line for line
// where it matters (the comments name the clt.c expression each kernel mirrors).
//
// Layout on the device: params/grads/m/v are flat (n,) vectors in clt.h's layout; c->P and c->G
// are CltParams views of them (host structs whose per-layer pointers point into device memory).
// Dense work buffers are layer-major: x, y, ŷ, dŷ (L, B, d); h, dh (L, B, F); θ, norms (L, F).
// Kernels are launched per layer with plain pointers, so each one reads like clt.c's loop body.
#include <cub/cub.cuh>

#include "cuda_common.h"
#include "gpu_ctx.h"
#include "clt_cuda.h"
#include "convert_cuda.h"
extern "C" {
#include "safetensors.h"  // ST_BF16
}

static const int BLOCK = 256;      // threads per block (a multiple of 32) of every kernel here
static const int RED_GRID = 256;   // at most this many blocks (partials) per loss reduction

struct CltGpu {
    GpuCtx g;  // the caller's stream and cuBLAS handle (not owned)
    int L, d, F, B;
    size_t n;
    float *params, *grads, *m, *v;  // (n,)
    CltParams P, G;                 // views of params / grads: per-layer device pointers
    float *x, *y, *yhat, *dyhat;    // (L, B, d)
    float *mean;                    // (L, d) target means (batch_stats' variance)
    float *h, *dh;                  // (L, B, F) pre-activations (a = h where h > θ) and dL/dh
    float *theta, *norm, *gnorm;    // (L, F) exp(log θ), ‖W_dec,li‖, dL/d‖W_dec,li‖
    // active lists: CSR by token; offsets are positions in act_idx (all layers concatenated)
    int64_t *cnt, *off;             // (L·(B+1),) per-token counts (last of each layer 0), offsets
    int32_t *act_idx;               // (act_cap,) feature ids
    size_t act_cap;
    int64_t *act_lo;                // host (L+1,): layer l's entries are [act_lo[l], act_lo[l+1])
    // backward pairs (active or in the window): CSC by feature, all layers concatenated
    int64_t *pcnt, *poff;           // (L·F + 1,) per-feature counts (last 0), offsets
    int64_t *pair_lo;               // host (L+1,)
    int32_t *ptok, *pfeat;          // (pair_cap,) token, feature of each pair
    float *pa, *pgn, *pdlt;         // (pair_cap,) a (0 if not active), gnorm and dlog θ parts
    size_t pair_cap;
    int64_t *bounds;                // (L+1,) device: layer boundaries gathered for download
    void *scan_tmp;                 // CUB scan temporary storage
    size_t scan_tmp_bytes;
    double *part, *part_h;          // (3·L·RED_GRID,) loss partials, device and host
    uint8_t *fired;                 // (L, F)
    float *stage;                   // host (L·B·d): ŷ's all-reduce through a host-only Comm
    int bf16;                       // clt_gpu_set_bf16: the encoder GEMMs in bf16
    void *enc_bf, *x_bf, *dh_bf;    // bf16 copies of one layer's W_enc (F, d), x (B, d), dh (B, F)
    int have_forward, have_batch;
};

// ---- errors and memory -----------------------------------------------------------------------

#define CUDA_WHO "clt_gpu"  // the start of every error message (cuda_common.h)
#define LAUNCH_OK(what) \
    do {                \
        if (gpu_launch_status(e, (what))) return -1; \
    } while (0)

static int dalloc(void *p, size_t bytes, const char *what, Error *e) {
    return cuda_alloc_e(p, bytes, CUDA_WHO, what, e);
}

static cudaStream_t stream_of(const CltGpu *c) { return gpu_stream(&c->g); }

// Synchronous copies on the CltGpu's stream (the host buffers are pageable).
static int upload(CltGpu *c, void *dst, const void *src, size_t bytes, Error *e) {
    if (!bytes) return 0;
    CUDA_OK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_of(c)), "upload");
    CUDA_OK(cudaStreamSynchronize(stream_of(c)), "upload");
    return 0;
}
static int download(CltGpu *c, void *dst, const void *src, size_t bytes, Error *e) {
    if (!bytes) return 0;
    CUDA_OK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_of(c)), "download");
    CUDA_OK(cudaStreamSynchronize(stream_of(c)), "download");
    return 0;
}

// Reallocates a list of `elem`-byte entries with room for `need` (need <= max_n): 1.5x the old
// capacity at least, at most max_n. *cap is the new capacity, 0 on failure (the list is then NULL
// and the next call allocates it again).
static int grow_list(void *p, size_t *cap, size_t need, size_t max_n, size_t elem, const char *what, Error *e) {
    void **pp = (void **)p;
    size_t want = *cap + *cap / 2;
    if (want < need) want = need;
    if (want > max_n) want = max_n;
    cudaFree(*pp);  // synchronizes the device: nothing queued still reads the old list
    *pp = nullptr;
    *cap = 0;
    if (dalloc(p, want * elem, what, e)) return -1;
    *cap = want;
    return 0;
}

// ---- kernels: forward ------------------------------------------------------------------------

// The JumpReLU test, and the threshold's bandwidth window; one definition for every kernel, so
// the lists built from them always agree (clt.c: h > θ, fabsf(h − θ) < 0.5f·ε).
__device__ __forceinline__ int jump_active(float hv, float th) { return hv > th; }
__device__ __forceinline__ int in_window(float hv, float th, float half_eps) { return fabsf(hv - th) < half_eps; }

// One block per token t of layer l: h += b_enc, θ = exp(log θ), cnt[t] = #{i : h_ti > θ_i}.
// Block 0 also stores θ (float, as clt_encode).
__global__ void encode_epilogue_kernel(float *h, int64_t *cnt, float *theta, const float *b_enc,
                                       const float *log_theta, int F) {
    typedef cub::BlockReduce<int, BLOCK> Reduce;
    __shared__ typename Reduce::TempStorage tmp;
    int t = blockIdx.x;
    float *hr = h + (size_t)t * F;
    int n = 0;
    for (int i = threadIdx.x; i < F; i += BLOCK) {
        float th = expf(log_theta[i]);
        float hv = hr[i] + b_enc[i];
        hr[i] = hv;
        n += jump_active(hv, th);
        if (t == 0) theta[i] = th;
    }
    int total = Reduce(tmp).Sum(n);
    if (threadIdx.x == 0) cnt[t] = total;
}

// One block per token: its active feature ids, ascending, at idx[off[t] ...] (a block-wide
// exclusive scan of the flags per chunk of BLOCK features keeps them in order).
__global__ void compact_active_kernel(int32_t *idx, const int64_t *off, const float *h, const float *theta, int F) {
    typedef cub::BlockScan<int, BLOCK> Scan;
    __shared__ typename Scan::TempStorage tmp;
    int t = blockIdx.x;
    const float *hr = h + (size_t)t * F;
    int64_t base = off[t];
    for (int i0 = 0; i0 < F; i0 += BLOCK) {  // every thread runs every chunk (the scan needs all)
        int i = i0 + threadIdx.x;
        int flag = i < F ? jump_active(hr[i], theta[i]) : 0;
        int pos, n;
        Scan(tmp).ExclusiveSum(flag, pos, n);
        if (flag) idx[base + pos] = i;
        base += n;
        __syncthreads();  // tmp is reused by the next chunk
    }
}

// bounds[l] = off[l·stride] for l < L, bounds[L] = the grand total (the last layer's end).
__global__ void gather_bounds_kernel(int64_t *bounds, const int64_t *off, int L, size_t stride, size_t last) {
    int l = blockIdx.x * blockDim.x + threadIdx.x;
    if (l < L) bounds[l] = off[(size_t)l * stride];
    if (l == L) bounds[L] = off[last];
}

// One warp per feature: norm[i] = ‖W_dec row i‖ over its (L − l)·d entries, summed in double
// (clt.c's decoder_norms). Lane partials then a fixed xor-shuffle tree: deterministic.
__global__ void decoder_norm_kernel(float *norm, const float *W_dec, int F, size_t row) {
    int lane = threadIdx.x % 32;
    size_t warp = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32, nwarps = gridDim.x * (size_t)blockDim.x / 32;
    for (size_t i = warp; i < (size_t)F; i += nwarps) {  // uniform across the warp
        const float *wr = W_dec + i * row;
        double s = 0;
        for (size_t j = lane; j < row; j += 32) s += (double)wr[j] * wr[j];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) norm[i] = (float)sqrt(s);
    }
}

// The sparse decode of source layer l, one block per token t: ŷ_k[t] += Σ_q a_ti W_dec[l][i, k−l]
// for every target k ≥ l, over t's active features i in ascending order. Launched for l = 0, 1,
// ... in turn, so each ŷ element sums l-major then q-major: clt.c's decode_tokens order.
__global__ void decode_layer_kernel(float *yhat, const int64_t *off, const int32_t *idx, const float *h,
                                    const float *W_dec, int l, int L, int B, int d, int F) {
    int t = blockIdx.x;
    int64_t q0 = off[t], q1 = off[t + 1];
    size_t row = (size_t)(L - l) * d;
    const float *hr = h + (size_t)t * F;
    for (int j = threadIdx.x; j < d; j += blockDim.x)
        for (int k = l; k < L; k++) {
            float *yo = yhat + ((size_t)k * B + t) * d + j;
            const float *wk = W_dec + (size_t)(k - l) * d + j;
            float acc = *yo;
            for (int64_t q = q0; q < q1; q++) {
                int i = idx[q];
                acc += hr[i] * wk[(size_t)i * row];  // a_ti = h_ti for an active feature
            }
            *yo = acc;
        }
}

// y (B·d) += bias (d) per row.
__global__ void add_bias_kernel(float *y, const float *bias, size_t n, int d) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] += bias[i % d];
}

// fired[i] = 1 for every active entry of one layer (all writers store the same value).
__global__ void mark_fired_kernel(uint8_t *fired, const int32_t *idx, size_t n) {
    for (size_t q = blockIdx.x * (size_t)blockDim.x + threadIdx.x; q < n; q += (size_t)gridDim.x * blockDim.x)
        fired[idx[q]] = 1;
}

// ---- kernels: loss reductions ----------------------------------------------------------------
// A fixed grid (red_grid(n)), per-thread double sums over a grid-stride loop, a CUB block sum
// (fixed order) into part[blockIdx]; the host adds the partials in order. Deterministic.

static unsigned int red_grid(size_t n) {
    size_t b = (n + BLOCK - 1) / BLOCK;
    return (unsigned int)(b < 1 ? 1 : b > (size_t)RED_GRID ? RED_GRID : b);
}

// Over one target layer's (B, d): Σ (ŷ − y)² and Σ (y − mean)² (clt_loss's mse, clt-fit's NMSE).
__global__ void sq_err_kernel(double *part_err, double *part_var, const float *yhat, const float *y,
                              const float *mean, size_t n, int d) {
    typedef cub::BlockReduce<double, BLOCK> Reduce;
    __shared__ typename Reduce::TempStorage tmp;
    double se = 0, sv = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        double ev = (double)yhat[i] - y[i], dv = (double)y[i] - mean[i % d];
        se += ev * ev;
        sv += dv * dv;
    }
    double a = Reduce(tmp).Sum(se);
    __syncthreads();  // tmp is reused
    double b = Reduce(tmp).Sum(sv);
    if (threadIdx.x == 0) part_err[blockIdx.x] = a, part_var[blockIdx.x] = b;
}

// Over one source layer's (B, F): Σ_active tanh(c·a·‖W_dec‖), Σ ReLU(θ − h)·‖W_dec‖ and the
// number of pairs inside the threshold's window (clt_loss).
__global__ void sparsity_preact_kernel(double *part_sp, double *part_pre, double *part_win, const float *h,
                                       const float *theta, const float *norm, size_t n, int F, float c,
                                       float half_eps) {
    typedef cub::BlockReduce<double, BLOCK> Reduce;
    __shared__ typename Reduce::TempStorage tmp;
    double sp = 0, pre = 0, win = 0;
    for (size_t at = blockIdx.x * (size_t)blockDim.x + threadIdx.x; at < n; at += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(at % F);
        float hv = h[at];
        if (jump_active(hv, theta[i])) sp += tanh((double)c * hv * norm[i]);
        float gap = theta[i] - hv;  // float, as clt_loss
        if (gap > 0) pre += (double)gap * norm[i];
        win += in_window(hv, theta[i], half_eps);
    }
    double a = Reduce(tmp).Sum(sp);
    __syncthreads();
    double b = Reduce(tmp).Sum(pre);
    __syncthreads();
    double w = Reduce(tmp).Sum(win);
    if (threadIdx.x == 0) part_sp[blockIdx.x] = a, part_pre[blockIdx.x] = b, part_win[blockIdx.x] = w;
}

// ---- kernels: backward -----------------------------------------------------------------------

// dŷ = 2(ŷ − y)/B over all layers (clt_backward: 2.0f * (yhat − y) * inv_b).
__global__ void dyhat_kernel(float *dy, const float *yhat, const float *y, size_t n, float inv_b) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dy[i] = 2.0f * (yhat[i] - y[i]) * inv_b;
}

// One thread per column j of one target layer: db_dec[j] = Σ_t dŷ[t, j], tokens in order.
__global__ void column_sum_kernel(float *out, const float *x, int B, int d) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    float s = 0;
    for (int t = 0; t < B; t++) s += x[(size_t)t * d + j];
    out[j] = s;
}

// One thread per feature of one layer: the number of its pairs (tokens active or in the window).
__global__ void pair_count_kernel(int64_t *pcnt, const float *h, const float *theta, int B, int F, float half_eps) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= F) return;
    float th = theta[i];
    int64_t n = 0;
    for (int t = 0; t < B; t++) {
        float hv = h[(size_t)t * F + i];
        n += jump_active(hv, th) || in_window(hv, th, half_eps);
    }
    pcnt[i] = n;
}

// One thread per feature: its pairs at poff[i] ..., tokens ascending (the CSC of the pairs).
__global__ void pair_fill_kernel(int32_t *ptok, int32_t *pfeat, float *pa, const int64_t *poff, const float *h,
                                 const float *theta, int B, int F, float half_eps) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= F) return;
    float th = theta[i];
    int64_t p = poff[i];
    for (int t = 0; t < B; t++) {
        float hv = h[(size_t)t * F + i];
        int act = jump_active(hv, th);
        if (act || in_window(hv, th, half_eps)) {
            ptok[p] = t;
            pfeat[p] = i;
            pa[p] = act ? hv : 0.0f;
            p++;
        }
    }
}

// One warp per pair (t, i) of layer l (pairs [p0, p0 + n)): dL/da = Σ_{k≥l} W_dec[l][i, k−l] · dŷ_k[t]
// (double, lane partials + xor tree) plus the tanh sparsity term; then lane 0 stores
//   dh[t, i] = da                                 if active (the other dh entries: feature_grad_kernel)
//   pgn[p]   = spars·c·a·(1 − tanh²)              if active, else 0    (→ dL/d‖W_dec,i‖)
//   pdlt[p]  = (da·(−θ/ε))·θ                      if in the window, else 0   (→ dL/dlog θ_i)
// exactly clt.c's backward_features expressions. dense_da: dh already holds the reconstruction
// part of dL/da for every pair (the GEMM of clt_gpu_backward past CLT_DENSE_DA_FRACTION); each
// pair reads its own entry before lane 0 overwrites it.
__global__ void pair_grad_kernel(float *dh, float *pgn, float *pdlt, const int32_t *ptok, const int32_t *pfeat,
                                 int64_t p0, int64_t n, const float *h, const float *theta, const float *norm,
                                 const float *W_dec, const float *dyhat, int l, int L, int B, int d, int F, float c,
                                 float spars, float eps, float half_eps, int dense_da) {
    int lane = threadIdx.x % 32;
    int64_t warp = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32, nwarps = gridDim.x * (int64_t)blockDim.x / 32;
    size_t row = (size_t)(L - l) * d;
    for (int64_t w = warp; w < n; w += nwarps) {  // uniform across the warp
        int64_t p = p0 + w;
        int t = ptok[p], i = pfeat[p];
        const float *wr = W_dec + (size_t)i * row;
        double s = 0;
        if (dense_da) {
            s = dh[(size_t)t * F + i];  // lane 0 uses it
        } else {
            for (int k = l; k < L; k++) {
                const float *wk = wr + (size_t)(k - l) * d, *dy = dyhat + ((size_t)k * B + t) * d;
                for (int j = lane; j < d; j += 32) s += (double)wk[j] * dy[j];
            }
            for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        }
        if (lane == 0) {
            float hv = h[(size_t)t * F + i], th = theta[i];
            int act = jump_active(hv, th), win = in_window(hv, th, half_eps);
            float av = act ? hv : 0.0f;
            double cn = (double)c * norm[i];
            double tq = tanh(cn * av);
            double da = s + spars * cn * (1.0 - tq * tq);
            if (act) dh[(size_t)t * F + i] = (float)da;
            pgn[p] = act ? (float)(spars * c * av * (1.0 - tq * tq)) : 0.0f;
            pdlt[p] = win ? (float)(da * (-th / eps)) * th : 0.0f;
        }
    }
}

// One thread per feature i of layer l, tokens in order (clt.c's per-feature accumulation order):
// dh of the tokens where i is not active (ReLU(θ − h)·‖W_dec‖'s −λ_P/B·‖W_dec‖ below θ, else 0),
// and the per-feature sums dlog θ_i, db_enc_i = Σ_t dh_ti and gnorm_i = dL/d‖W_dec,i‖ (the pairs'
// parts from pair_grad_kernel, met in token order, plus the pre-activation term).
__global__ void feature_grad_kernel(float *g_log_theta, float *g_b_enc, float *gnorm, float *dh, const float *h,
                                   const float *theta, const float *norm, const int64_t *poff, const float *pgn,
                                   const float *pdlt, int B, int F, float pre, float half_eps) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= F) return;
    float th = theta[i], pn = pre * norm[i];
    int64_t p = poff[i];
    float dlt = 0, gn = 0, dbe = 0;
    for (int t = 0; t < B; t++) {
        size_t at = (size_t)t * F + i;
        float hv = h[at], gap = hv - th;
        int act = jump_active(hv, th), win = in_window(hv, th, half_eps);
        if (act || win) {  // the next pair of feature i is token t
            if (act) gn += pgn[p];
            if (win) dlt += pdlt[p];
            p++;
        }
        float dhv;
        if (act) {
            dhv = dh[at];  // pair_grad_kernel's da
        } else {
            dhv = gap < 0 ? 0.0f - pn : 0.0f;
            dh[at] = dhv;
        }
        if (gap < 0) {
            dlt += pn * th;
            gn += pre * (-gap);
        }
        dbe += dhv;
    }
    g_log_theta[i] = dlt;
    g_b_enc[i] = dbe;
    gnorm[i] = gn;
}

// One block per feature i of layer l: its W_dec gradient row ((L − l)·d), Σ over its active
// tokens in order of a_ti · dŷ_k[t], plus the norm term gnorm_i/‖w_i‖ · w_i (clt.c: skipped when
// either is 0).
__global__ void wdec_grad_kernel(float *gW, const float *W, const int64_t *poff, const int32_t *ptok, const float *pa,
                                 const float *dyhat, const float *norm, const float *gnorm, int l, int L, int B,
                                 int d) {
    int i = blockIdx.x;
    size_t row = (size_t)(L - l) * d;
    int64_t p0 = poff[i], p1 = poff[i + 1];
    float nrm = norm[i], gn = gnorm[i];
    int use_norm = gn != 0.0f && nrm != 0.0f;
    float s = use_norm ? gn / nrm : 0.0f;
    for (size_t r = threadIdx.x; r < row; r += blockDim.x) {
        int k = l + (int)(r / d), j = (int)(r % d);
        const float *dyk = dyhat + (size_t)k * B * d + j;
        float acc = 0;
        for (int64_t p = p0; p < p1; p++) {
            float av = pa[p];
            if (av != 0.0f) acc += av * dyk[(size_t)ptok[p] * d];
        }
        if (use_norm) acc += s * W[(size_t)i * row + r];
        gW[(size_t)i * row + r] = acc;
    }
}

// adam_step, element by element with round-to-nearest intrinsics: no FMA contraction, so given the
// same gradient the result is bit-identical to the CPU's.
__global__ void adam_kernel(float *param, const float *grad, float *m, float *v, size_t n, float beta1, float beta2,
                            float omb1, float omb2, float step, float inv_sqrt_bc2, float eps) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = grad[i];
        float mi = __fadd_rn(__fmul_rn(beta1, m[i]), __fmul_rn(omb1, g));
        float vi = __fadd_rn(__fmul_rn(beta2, v[i]), __fmul_rn(__fmul_rn(omb2, g), g));
        m[i] = mi;
        v[i] = vi;
        float den = __fadd_rn(__fmul_rn(__fsqrt_rn(vi), inv_sqrt_bc2), eps);
        param[i] = __fadd_rn(param[i], -__fdiv_rn(__fmul_rn(step, mi), den));
    }
}

// ---- init / free / state ---------------------------------------------------------------------

extern "C" void clt_gpu_free(CltGpu *c) {
    if (!c) return;
    void *dev[] = {c->params, c->grads, c->m, c->v, c->x, c->y, c->yhat, c->dyhat, c->mean, c->h, c->dh,
                   c->theta, c->norm, c->gnorm, c->cnt, c->off, c->act_idx, c->pcnt, c->poff,
                   c->ptok, c->pfeat, c->pa, c->pgn, c->pdlt, c->bounds, c->scan_tmp, c->part, c->fired,
                   c->enc_bf, c->x_bf, c->dh_bf};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) cudaFree(dev[i]);
    if (c->P.W_enc) clt_params_free(&c->P);  // views: frees the pointer arrays only
    if (c->G.W_enc) clt_params_free(&c->G);
    free(c->act_lo);
    free(c->pair_lo);
    free(c->part_h);
    free(c->stage);
    free(c);
}

extern "C" int clt_gpu_init(CltGpu **out, const GpuCtx *g, int L, int d, int F, int B, Error *e) {
    *out = nullptr;
    if (!g || !g->cublas) return err_set(e, "clt_gpu_init: no cuBLAS handle (gpu_ctx_init)");
    if (L < 1 || d < 1 || F < 1 || B < 1) return err_set(e, "clt_gpu_init: bad shape L %d d %d F %d B %d", L, d, F, B);
    if ((int64_t)B * F > INT32_MAX || (int64_t)L * (B + 1) > INT32_MAX || (int64_t)L * F + 1 > INT32_MAX)
        return err_set(e, "clt_gpu_init: B·F = %lld is too large (32-bit indices within a layer)", (long long)B * F);
    CltGpu *c = (CltGpu *)calloc(1, sizeof *c);
    if (!c) return err_set(e, "clt_gpu_init: out of memory");
    c->g = *g;
    c->L = L, c->d = d, c->F = F, c->B = B;
    c->n = clt_param_count(L, d, F);
    size_t LBd = (size_t)L * B * d, LBF = (size_t)L * B * F, LF = (size_t)L * F;
    size_t ncnt = (size_t)L * (B + 1), npc = LF + 1;
    c->act_cap = (size_t)L * B * 64 < LBF ? (size_t)L * B * 64 : LBF;
    c->pair_cap = c->act_cap;
    c->act_lo = (int64_t *)calloc((size_t)L + 1, sizeof(int64_t));
    c->pair_lo = (int64_t *)calloc((size_t)L + 1, sizeof(int64_t));
    c->part_h = (double *)calloc((size_t)3 * L * RED_GRID, sizeof(double));
    int rc = !c->act_lo || !c->pair_lo || !c->part_h ? err_set(e, "clt_gpu_init: out of memory") : 0;
    size_t nb = c->n * sizeof(float);
    rc = rc || dalloc(&c->params, nb, "params", e) || dalloc(&c->grads, nb, "grads", e) ||
        dalloc(&c->m, nb, "adam m", e) || dalloc(&c->v, nb, "adam v", e) || dalloc(&c->x, LBd * 4, "x", e) ||
        dalloc(&c->y, LBd * 4, "y", e) || dalloc(&c->yhat, LBd * 4, "yhat", e) ||
        dalloc(&c->dyhat, LBd * 4, "dyhat", e) || dalloc(&c->mean, (size_t)L * d * 4, "mean", e) ||
        dalloc(&c->h, LBF * 4, "h", e) || dalloc(&c->dh, LBF * 4, "dh", e) || dalloc(&c->theta, LF * 4, "theta", e) ||
        dalloc(&c->norm, LF * 4, "norm", e) || dalloc(&c->gnorm, LF * 4, "gnorm", e) ||
        dalloc(&c->cnt, ncnt * 8, "counts", e) || dalloc(&c->off, ncnt * 8, "offsets", e) ||
        dalloc(&c->act_idx, c->act_cap * 4, "active list", e) || dalloc(&c->pcnt, npc * 8, "pair counts", e) ||
        dalloc(&c->poff, npc * 8, "pair offsets", e) || dalloc(&c->ptok, c->pair_cap * 4, "pairs", e) ||
        dalloc(&c->pfeat, c->pair_cap * 4, "pairs", e) || dalloc(&c->pa, c->pair_cap * 4, "pairs", e) ||
        dalloc(&c->pgn, c->pair_cap * 4, "pairs", e) || dalloc(&c->pdlt, c->pair_cap * 4, "pairs", e) ||
        dalloc(&c->bounds, ((size_t)L + 1) * 8, "bounds", e) ||
        dalloc(&c->part, (size_t)3 * L * RED_GRID * 8, "partials", e) || dalloc(&c->fired, LF, "fired", e);
    if (!rc) {  // CUB's scratch for the larger of the two scans (its size depends on the count only)
        size_t b1 = 0, b2 = 0;
        cudaError_t err = cub::DeviceScan::ExclusiveSum(nullptr, b1, c->cnt, c->off, (int)ncnt, stream_of(c));
        if (err == cudaSuccess)
            err = cub::DeviceScan::ExclusiveSum(nullptr, b2, c->pcnt, c->poff, (int)npc, stream_of(c));
        rc = cuda_status(err, CUDA_WHO, "cub::DeviceScan (scratch size)", e);
        c->scan_tmp_bytes = b1 > b2 ? b1 : b2;
        rc = rc || dalloc(&c->scan_tmp, c->scan_tmp_bytes, "scan scratch", e);
    }
    if (!rc) {
        // zeros: Adam moments, gradients (every group is rewritten by each backward), the means
        cudaError_t err = cudaMemsetAsync(c->params, 0, nb, stream_of(c));
        if (err == cudaSuccess) err = cudaMemsetAsync(c->grads, 0, nb, stream_of(c));
        if (err == cudaSuccess) err = cudaMemsetAsync(c->m, 0, nb, stream_of(c));
        if (err == cudaSuccess) err = cudaMemsetAsync(c->v, 0, nb, stream_of(c));
        if (err == cudaSuccess) err = cudaMemsetAsync(c->mean, 0, (size_t)L * d * 4, stream_of(c));
        if (err == cudaSuccess) err = cudaStreamSynchronize(stream_of(c));
        rc = cuda_status(err, CUDA_WHO, "init", e);
    }
    if (rc) {
        clt_gpu_free(c);
        return -1;
    }
    clt_params_init(&c->P, L, d, F, c->params);  // views into device memory
    clt_params_init(&c->G, L, d, F, c->grads);
    *out = c;
    return 0;
}

extern "C" int clt_gpu_set_bf16(CltGpu *c, int on, Error *e) {
    c->bf16 = 0;
    if (!on) return 0;
    size_t half = 2;  // bytes of a bf16
    if (!(c->enc_bf && c->x_bf && c->dh_bf)) {  // (again after a failed attempt)
        cudaFree(c->enc_bf), cudaFree(c->x_bf), cudaFree(c->dh_bf);
        c->enc_bf = c->x_bf = c->dh_bf = nullptr;
        if (dalloc(&c->enc_bf, (size_t)c->F * c->d * half, "bf16 W_enc", e) ||
            dalloc(&c->x_bf, (size_t)c->B * c->d * half, "bf16 x", e) ||
            dalloc(&c->dh_bf, (size_t)c->B * c->F * half, "bf16 dh", e))
            return -1;
    }
    c->bf16 = 1;
    return 0;
}

extern "C" int clt_gpu_set_state(CltGpu *c, const float *params, const float *m, const float *v, Error *e) {
    size_t nb = c->n * sizeof(float);
    if (upload(c, c->params, params, nb, e)) return -1;
    if (m ? upload(c, c->m, m, nb, e)
          : cuda_status(cudaMemsetAsync(c->m, 0, nb, stream_of(c)), CUDA_WHO, "set_state", e))
        return -1;
    if (v ? upload(c, c->v, v, nb, e)
          : cuda_status(cudaMemsetAsync(c->v, 0, nb, stream_of(c)), CUDA_WHO, "set_state", e))
        return -1;
    c->have_forward = 0;
    return cuda_status(cudaStreamSynchronize(stream_of(c)), CUDA_WHO, "set_state", e);
}

extern "C" int clt_gpu_get_state(CltGpu *c, float *params, float *m, float *v, Error *e) {
    size_t nb = c->n * sizeof(float);
    if (params && download(c, params, c->params, nb, e)) return -1;
    if (m && download(c, m, c->m, nb, e)) return -1;
    if (v && download(c, v, c->v, nb, e)) return -1;
    return 0;
}

extern "C" int clt_gpu_set_batch(CltGpu *c, float *const *x, float *const *y, Error *e) {
    size_t Bd = (size_t)c->B * c->d;
    for (int l = 0; l < c->L; l++)
        if (upload(c, c->x + l * Bd, x[l], Bd * 4, e) || upload(c, c->y + l * Bd, y[l], Bd * 4, e)) return -1;
    c->have_batch = 1;
    c->have_forward = 0;
    return 0;
}

extern "C" int clt_gpu_set_target_mean(CltGpu *c, const float *mean_out, Error *e) {
    return upload(c, c->mean, mean_out, (size_t)c->L * c->d * 4, e);
}

extern "C" int clt_gpu_get_yhat(CltGpu *c, float *const *yhat, Error *e) {
    size_t Bd = (size_t)c->B * c->d;
    for (int l = 0; l < c->L; l++)
        if (download(c, yhat[l], c->yhat + l * Bd, Bd * 4, e)) return -1;
    return 0;
}

extern "C" int clt_gpu_get_grads(CltGpu *c, float *grads, Error *e) {
    return download(c, grads, c->grads, c->n * sizeof(float), e);
}

// ---- forward ---------------------------------------------------------------------------------

// Exclusive scan of n int64 counts (the last one 0, so out[n − 1] is the total).
static int scan_counts(CltGpu *c, const int64_t *in, int64_t *out, size_t n, Error *e) {
    size_t bytes = c->scan_tmp_bytes;
    CUDA_OK(cub::DeviceScan::ExclusiveSum(c->scan_tmp, bytes, in, out, (int)n, stream_of(c)), "cub::DeviceScan");
    return 0;
}

// Downloads the L + 1 layer boundaries of a scanned list (offsets at l·stride, the total at last).
static int layer_bounds(CltGpu *c, int64_t *host, const int64_t *off, size_t stride, size_t last, Error *e) {
    gather_bounds_kernel<<<(c->L + 1 + BLOCK - 1) / BLOCK, BLOCK, 0, stream_of(c)>>>(c->bounds, off, c->L, stride,
                                                                                     last);
    LAUNCH_OK("gather_bounds_kernel");
    return download(c, host, c->bounds, ((size_t)c->L + 1) * sizeof(int64_t), e);
}

// ŷ's sum over ranks: in place on the device where the backend takes device buffers (NCCL),
// else through a host copy.
static int allreduce_yhat(CltGpu *c, const Comm *comm, Error *e) {
    size_t n = (size_t)c->L * c->B * c->d;
    CUDA_OK(cudaStreamSynchronize(stream_of(c)), "forward");  // the comm runs on its own stream
    if (comm->ops && comm->ops->device_buffers) return comm_allreduce_sum_f32(comm, c->yhat, n, e);
    if (!c->stage && !(c->stage = (float *)malloc(n * sizeof(float)))) return err_set(e, "clt_gpu: out of memory");
    if (download(c, c->stage, c->yhat, n * 4, e) || comm_allreduce_sum_f32(comm, c->stage, n, e)) return -1;
    return upload(c, c->yhat, c->stage, n * 4, e);
}

extern "C" int clt_gpu_forward(CltGpu *c, const Comm *comm, Error *e) {
    int L = c->L, d = c->d, F = c->F, B = c->B;
    size_t BF = (size_t)B * F, Bd = (size_t)B * d, stride = (size_t)B + 1;
    cudaStream_t s = stream_of(c);
    if (!c->have_batch) return err_set(e, "clt_gpu_forward: no batch (clt_gpu_set_batch)");
    c->have_forward = 0;
    // encoder: h_l = x_l W_enc[l]ᵀ (matmul.cu's row-major trick), then + b_enc, θ, counts
    CUDA_OK(cudaMemsetAsync(c->cnt, 0, (size_t)L * stride * sizeof(int64_t), s), "forward");
    const float one = 1.0f, zero = 0.0f;
    for (int l = 0; l < L; l++) {
        float *h = c->h + l * BF;
        if (c->bf16) {  // the same product on bf16 copies, fp32 accumulation (convert_cuda.h: the default
                        // stream, ordered with g's blocking stream)
            if (convert_from_f32_cuda(ST_BF16, c->P.W_enc[l], c->enc_bf, (size_t)F * d, e) ||
                convert_from_f32_cuda(ST_BF16, c->x + l * Bd, c->x_bf, Bd, e) ||
                cublas_status(cublasGemmEx((cublasHandle_t)c->g.cublas, CUBLAS_OP_T, CUBLAS_OP_N, F, B, d, &one,
                                           c->enc_bf, CUDA_R_16BF, d, c->x_bf, CUDA_R_16BF, d, &zero, h, CUDA_R_32F, F,
                                           CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                              CUDA_WHO, "encoder cublasGemmEx (bf16)", e))
                return -1;
        } else if (cublas_status(cublasSgemm((cublasHandle_t)c->g.cublas, CUBLAS_OP_T, CUBLAS_OP_N, F, B, d, &one,
                                             c->P.W_enc[l], d, c->x + l * Bd, d, &zero, h, F),
                                 CUDA_WHO, "encoder cublasSgemm", e)) {
            return -1;
        }
        encode_epilogue_kernel<<<B, BLOCK, 0, s>>>(h, c->cnt + l * stride, c->theta + (size_t)l * F, c->P.b_enc[l],
                                                   c->P.log_theta[l], F);
        LAUNCH_OK("encode_epilogue_kernel");
    }
    // active lists: one scan of all layers' counts gives every (layer, token)'s place in act_idx
    if (scan_counts(c, c->cnt, c->off, (size_t)L * stride, e)) return -1;
    if (layer_bounds(c, c->act_lo, c->off, stride, (size_t)L * stride - 1, e)) return -1;
    size_t total = (size_t)c->act_lo[L];
    if (total > c->act_cap && grow_list(&c->act_idx, &c->act_cap, total, (size_t)L * BF, 4, "active list", e))
        return -1;
    for (int l = 0; l < L; l++) {
        compact_active_kernel<<<B, BLOCK, 0, s>>>(c->act_idx, c->off + l * stride, c->h + l * BF,
                                                  c->theta + (size_t)l * F, F);
        LAUNCH_OK("compact_active_kernel");
        size_t row = (size_t)(L - l) * d;
        decoder_norm_kernel<<<cuda_grid_for((size_t)F * 32, BLOCK), BLOCK, 0, s>>>(c->norm + (size_t)l * F,
                                                                                   c->P.W_dec[l], F, row);
        LAUNCH_OK("decoder_norm_kernel");
    }
    // the partial ŷ (no b_dec), source layers in order
    CUDA_OK(cudaMemsetAsync(c->yhat, 0, (size_t)L * Bd * sizeof(float), s), "forward");
    for (int l = 0; l < L; l++) {
        decode_layer_kernel<<<B, BLOCK, 0, s>>>(c->yhat, c->off + l * stride, c->act_idx, c->h + l * BF, c->P.W_dec[l],
                                                l, L, B, d, F);
        LAUNCH_OK("decode_layer_kernel");
    }
    if (comm && comm->size > 1 && allreduce_yhat(c, comm, e)) return err_prefix(e, "forward");
    for (int k = 0; k < L; k++) {
        add_bias_kernel<<<cuda_grid_for(Bd, BLOCK), BLOCK, 0, s>>>(c->yhat + k * Bd, c->P.b_dec[k], Bd, d);
        LAUNCH_OK("add_bias_kernel");
    }
    c->have_forward = 1;
    return 0;
}

// ---- loss and statistics ---------------------------------------------------------------------

// err[k] = Σ‖ŷ_k − y_k‖², var[k] = Σ‖y_k − mean_k‖², partials summed on the host in order.
static int squared_errors(CltGpu *c, double *err, double *var, Error *e) {
    size_t Bd = (size_t)c->B * c->d;
    unsigned int grid = red_grid(Bd);
    for (int k = 0; k < c->L; k++) {
        double *pe = c->part + (size_t)k * RED_GRID, *pv = c->part + ((size_t)c->L + k) * RED_GRID;
        sq_err_kernel<<<grid, BLOCK, 0, stream_of(c)>>>(pe, pv, c->yhat + k * Bd, c->y + k * Bd,
                                                        c->mean + (size_t)k * c->d, Bd, c->d);
        LAUNCH_OK("sq_err_kernel");
    }
    if (download(c, c->part_h, c->part, (size_t)2 * c->L * RED_GRID * sizeof(double), e)) return -1;
    for (int k = 0; k < c->L; k++) {
        double se = 0, sv = 0;
        for (unsigned int b = 0; b < grid; b++) {
            se += c->part_h[(size_t)k * RED_GRID + b];
            sv += c->part_h[((size_t)c->L + k) * RED_GRID + b];
        }
        if (err) err[k] = se;
        if (var) var[k] = sv;
    }
    return 0;
}

extern "C" int clt_gpu_loss(CltGpu *c, const Comm *comm, const CltLossParams *lp, CltLossTerms *out, Error *e) {
    if (!c->have_forward) return err_set(e, "clt_gpu_loss: no forward pass");
    int L = c->L, B = c->B, F = c->F;
    size_t BF = (size_t)B * F;
    CltLossTerms t = {};
    double *err = (double *)malloc((size_t)L * sizeof(double));
    if (!err) return err_set(e, "clt_gpu_loss: out of memory");
    int rc = squared_errors(c, err, NULL, e);
    for (int k = 0; k < L && !rc; k++) t.mse += err[k];
    free(err);
    if (rc) return -1;
    unsigned int grid = red_grid(BF);
    for (int l = 0; l < L; l++) {
        size_t fl = (size_t)l * F;
        sparsity_preact_kernel<<<grid, BLOCK, 0, stream_of(c)>>>(
            c->part + (size_t)l * RED_GRID, c->part + ((size_t)L + l) * RED_GRID,
            c->part + ((size_t)2 * L + l) * RED_GRID, c->h + l * BF, c->theta + fl, c->norm + fl, BF, F, lp->c,
            0.5f * lp->eps);
        LAUNCH_OK("sparsity_preact_kernel");
    }
    if (download(c, c->part_h, c->part, (size_t)3 * L * RED_GRID * sizeof(double), e)) return -1;
    for (int l = 0; l < L; l++) {
        for (unsigned int b = 0; b < grid; b++) {
            t.sparsity += c->part_h[(size_t)l * RED_GRID + b];
            t.preact += c->part_h[((size_t)L + l) * RED_GRID + b];
            t.window += c->part_h[((size_t)2 * L + l) * RED_GRID + b];
        }
    }
    t.l0 = (double)(c->act_lo[L] - c->act_lo[0]) / B;  // as clt_loss: the count over layers, then / B
    t.mse /= B;
    t.window /= B;
    t.sparsity *= (double)lp->lam / B;
    t.preact *= (double)lp->lam_p / B;
    if (comm && comm->size > 1) {  // the per-feature terms over all ranks (clt_shard_loss)
        double v[4] = {t.sparsity, t.preact, t.l0, t.window};
        if (comm_allreduce_sum_f64(comm, v, 4, e)) return err_prefix(e, "loss");
        t.sparsity = v[0], t.preact = v[1], t.l0 = v[2], t.window = v[3];
    }
    t.total = t.mse + t.sparsity + t.preact;
    *out = t;
    return 0;
}

extern "C" int clt_gpu_batch_stats(CltGpu *c, double *err, double *var, int64_t *active, uint8_t *fired, Error *e) {
    if (!c->have_forward) return err_set(e, "clt_gpu_batch_stats: no forward pass");
    if ((err || var) && squared_errors(c, err, var, e)) return -1;
    for (int k = 0; active && k < c->L; k++) active[k] = c->act_lo[k + 1] - c->act_lo[k];
    if (fired) {
        size_t LF = (size_t)c->L * c->F;
        CUDA_OK(cudaMemsetAsync(c->fired, 0, LF, stream_of(c)), "batch_stats");
        for (int l = 0; l < c->L; l++) {
            size_t n = (size_t)(c->act_lo[l + 1] - c->act_lo[l]);
            if (!n) continue;
            mark_fired_kernel<<<cuda_grid_for(n, BLOCK), BLOCK, 0, stream_of(c)>>>(c->fired + (size_t)l * c->F,
                                                                                    c->act_idx + c->act_lo[l], n);
            LAUNCH_OK("mark_fired_kernel");
        }
        if (download(c, fired, c->fired, LF, e)) return -1;
    }
    return 0;
}

// ---- backward --------------------------------------------------------------------------------

// Room for `need` pairs in the five pair lists (all with the same capacity; 0 after a failure,
// so the next backward reallocates every one).
static int grow_pairs(CltGpu *c, size_t need, Error *e) {
    size_t max_n = (size_t)c->L * c->B * c->F, cap = 0;
    void *lists[] = {&c->ptok, &c->pfeat, &c->pa, &c->pgn, &c->pdlt};
    for (size_t k = 0; k < sizeof lists / sizeof *lists; k++) {
        cap = c->pair_cap;
        if (grow_list(lists[k], &cap, need, max_n, 4, "pair list", e)) {
            c->pair_cap = 0;
            return -1;
        }
    }
    c->pair_cap = cap;
    return 0;
}

extern "C" int clt_gpu_backward(CltGpu *c, const CltLossParams *lp, Error *e) {
    if (!c->have_forward) return err_set(e, "clt_gpu_backward: no forward pass");
    int L = c->L, d = c->d, F = c->F, B = c->B;
    size_t BF = (size_t)B * F, Bd = (size_t)B * d, LBd = (size_t)L * Bd;
    cudaStream_t s = stream_of(c);
    float inv_b = 1.0f / (float)B;
    float spars = lp->lam * inv_b, pre = lp->lam_p * inv_b, half_eps = 0.5f * lp->eps;
    unsigned int fgrid = (unsigned int)((F + BLOCK - 1) / BLOCK);
    // dŷ and db_dec
    dyhat_kernel<<<cuda_grid_for(LBd, BLOCK), BLOCK, 0, s>>>(c->dyhat, c->yhat, c->y, LBd, inv_b);
    LAUNCH_OK("dyhat_kernel");
    for (int k = 0; k < L; k++) {
        column_sum_kernel<<<(d + BLOCK - 1) / BLOCK, BLOCK, 0, s>>>(c->G.b_dec[k], c->dyhat + k * Bd, B, d);
        LAUNCH_OK("column_sum_kernel");
    }
    // the pairs (active or in the window), listed per feature: count, scan, fill
    CUDA_OK(cudaMemsetAsync(c->pcnt, 0, ((size_t)L * F + 1) * sizeof(int64_t), s), "backward");
    for (int l = 0; l < L; l++) {
        pair_count_kernel<<<fgrid, BLOCK, 0, s>>>(c->pcnt + (size_t)l * F, c->h + l * BF, c->theta + (size_t)l * F, B,
                                                  F, half_eps);
        LAUNCH_OK("pair_count_kernel");
    }
    if (scan_counts(c, c->pcnt, c->poff, (size_t)L * F + 1, e)) return -1;
    if (layer_bounds(c, c->pair_lo, c->poff, (size_t)F, (size_t)L * F, e)) return -1;
    size_t total = (size_t)c->pair_lo[L];
    if (total > c->pair_cap && grow_pairs(c, total, e)) return -1;
    for (int l = 0; l < L; l++) {
        size_t fl = (size_t)l * F;
        const float *h = c->h + l * BF, *theta = c->theta + fl, *norm = c->norm + fl;
        const int64_t *poff = c->poff + fl;
        int64_t p0 = c->pair_lo[l], np = c->pair_lo[l + 1] - p0;
        pair_fill_kernel<<<fgrid, BLOCK, 0, s>>>(c->ptok, c->pfeat, c->pa, poff, h, theta, B, F, half_eps);
        LAUNCH_OK("pair_fill_kernel");
        int dense_da = (double)np > CLT_DENSE_DA_FRACTION * (double)BF;
        if (dense_da) {
            // dA (B, F) = Σ_{k≥l} dŷ_k (B, d) · W_dec[l][:, k−l, :]ᵀ into dh, one GEMM per target: column-major
            // (F × B) = Aᵀ B with A the decoder slot (d × F, lda (L−l)·d) and B = dŷ_k (d × B, ldb d)
            int ld = (L - l) * d;
            for (int k = l; k < L; k++) {
                const float one = 1.0f, beta = k == l ? 0.0f : 1.0f;
                if (cublas_status(cublasSgemm((cublasHandle_t)c->g.cublas, CUBLAS_OP_T, CUBLAS_OP_N, F, B, d, &one,
                                              c->P.W_dec[l] + (size_t)(k - l) * d, ld, c->dyhat + k * Bd, d, &beta,
                                              c->dh + l * BF, F), CUDA_WHO,
                                  "dL/da cublasSgemm", e))
                    return -1;
            }
        }
        if (np > 0) {
            pair_grad_kernel<<<cuda_grid_for((size_t)np * 32, BLOCK), BLOCK, 0, s>>>(
                c->dh + l * BF, c->pgn, c->pdlt, c->ptok, c->pfeat, p0, np, h, theta, norm, c->P.W_dec[l], c->dyhat, l,
                L, B, d, F, lp->c, spars, lp->eps, half_eps, dense_da);
            LAUNCH_OK("pair_grad_kernel");
        }
        feature_grad_kernel<<<fgrid, BLOCK, 0, s>>>(c->G.log_theta[l], c->G.b_enc[l], c->gnorm + fl, c->dh + l * BF, h,
                                                    theta, norm, poff, c->pgn, c->pdlt, B, F, pre, half_eps);
        LAUNCH_OK("feature_grad_kernel");
        wdec_grad_kernel<<<F, BLOCK, 0, s>>>(c->G.W_dec[l], c->P.W_dec[l], poff, c->ptok, c->pa, c->dyhat, norm,
                                             c->gnorm + fl, l, L, B, d);
        LAUNCH_OK("wdec_grad_kernel");
        // encoder: dW_enc (F, d) = dhᵀ x, i.e. column-major (d × F) = x (d × B) · dh (F × B)ᵀ
        const float one = 1.0f, zero = 0.0f;
        if (c->bf16) {
            if (convert_from_f32_cuda(ST_BF16, c->dh + l * BF, c->dh_bf, BF, e) ||
                convert_from_f32_cuda(ST_BF16, c->x + l * Bd, c->x_bf, Bd, e) ||
                cublas_status(cublasGemmEx((cublasHandle_t)c->g.cublas, CUBLAS_OP_N, CUBLAS_OP_T, d, F, B, &one,
                                           c->x_bf, CUDA_R_16BF, d, c->dh_bf, CUDA_R_16BF, F, &zero, c->G.W_enc[l],
                                           CUDA_R_32F, d, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                              CUDA_WHO, "encoder gradient cublasGemmEx (bf16)", e))
                return -1;
        } else if (cublas_status(cublasSgemm((cublasHandle_t)c->g.cublas, CUBLAS_OP_N, CUBLAS_OP_T, d, F, B, &one,
                                             c->x + l * Bd, d, c->dh + l * BF, F, &zero, c->G.W_enc[l], d),
                                 CUDA_WHO, "encoder gradient cublasSgemm", e)) {
            return -1;
        }
    }
    return 0;
}

// ---- Adam ------------------------------------------------------------------------------------

extern "C" int clt_gpu_adam(CltGpu *c, float lr, float beta1, float beta2, float eps, int64_t t, Error *e) {
    // adam_step's constants, in double on the host exactly as clt.c computes them
    double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    float step = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    float omb1 = 1 - beta1, omb2 = 1 - beta2;
    adam_kernel<<<cuda_grid_for(c->n, BLOCK), BLOCK, 0, stream_of(c)>>>(c->params, c->grads, c->m, c->v, c->n, beta1,
                                                                        beta2, omb1, omb2, step, inv_sqrt_bc2, eps);
    LAUNCH_OK("adam_kernel");
    c->have_forward = 0;  // the parameters changed
    return 0;
}
