// Feature sharding (libcommon/clt/clt_shard.c, comm.c) without MPI: the sharded math simulated in one
// process (slices, partial reconstructions summed by hand, per-shard backward), the slice
// initialization against the full one, the single-process Comm. tests/test_clt_mpi.sh runs the
// real thing under mpirun.
#include "check.h"
#include "clt.h"
#include "clt_shard.h"
#include "comm.h"

// The slice [first, first + Fl) of every layer of full into local (both flat CltParams).
static void take_slice(const CltParams *full, CltParams *local, int first) {
    int L = full->L, d = full->d, Fl = local->F;
    for (int l = 0; l < L; l++) {
        size_t row = (size_t)(L - l) * d;
        memcpy(local->W_enc[l], full->W_enc[l] + (size_t)first * d, (size_t)Fl * d * sizeof(float));
        memcpy(local->b_enc[l], full->b_enc[l] + first, (size_t)Fl * sizeof(float));
        memcpy(local->log_theta[l], full->log_theta[l] + first, (size_t)Fl * sizeof(float));
        memcpy(local->W_dec[l], full->W_dec[l] + (size_t)first * row, (size_t)Fl * row * sizeof(float));
        memcpy(local->b_dec[l], full->b_dec[l], (size_t)d * sizeof(float));
    }
}

// Every rank's slice of the initialization is bit-identical to the full CLT's.
static void test_shard_init_random_is_a_slice(void) {
    int L = 3, d = 8, F = 12;
    CltParams full, want, got;
    clt_params_init(&full, L, d, F, NULL);
    clt_params_init_random(&full, 1234, 0.07f);
    for (int R = 1; R <= 4; R++) {
        if (F % R) continue;
        for (int r = 0; r < R; r++) {
            Comm c = {.rank = r, .size = R};
            CltShard sh;
            Error e;
            CHECK(!clt_shard_init(&sh, &c, L, d, F, &e), "%s", e.msg);
            clt_params_init(&want, L, d, sh.F_local, NULL);
            clt_params_init(&got, L, d, sh.F_local, NULL);
            take_slice(&full, &want, sh.first);
            clt_shard_init_random(&sh, &got, 1234, 0.07f);
            CHECK(!memcmp(want.data, got.data, want.n * sizeof(float)),
                  "rank %d of %d: slice differs from the full init", r, R);
            clt_params_free(&want);
            clt_params_free(&got);
            clt_shard_free(&sh);
        }
    }
    clt_params_free(&full);
}

static void test_shard_features_not_divisible(void) {
    Comm c = {.rank = 0, .size = 3};
    CltShard sh;
    Error e = {{0}};
    CHECK(clt_shard_init(&sh, &c, 2, 4, 10, &e) == -1, "F=10 over 3 ranks accepted");
    CHECK(strstr(e.msg, "not divisible by the 3 ranks") != NULL, "message: %s", e.msg);
}

// Two shards in one process: Σ partial ŷ + b_dec = the full ŷ (up to summation order), the
// sharded loss terms add up, and with the full ŷ each shard's gradients are its slice of the
// full gradients (b_dec's on both shards).
static void test_two_shards_match_full(void) {
    int L = 3, d = 16, F = 24, B = 20, R = 2, Fl = F / R;
    CltParams full, gfull, loc[2], gloc[2];
    clt_params_init(&full, L, d, F, NULL);
    clt_params_init(&gfull, L, d, F, NULL);
    clt_params_init_random(&full, 5, 0.05f);
    uint64_t s = 11;
    for (int l = 0; l < L; l++) {
        for (int i = 0; i < F; i++) full.b_enc[l][i] = 0.1f * rng_unif(&s, 1.0f);
        for (int j = 0; j < d; j++) full.b_dec[l][j] = 0.2f * rng_unif(&s, 1.0f);
    }
    float *x[3], *y[3], *zeros = calloc((size_t)d, sizeof(float)), *zb[3] = {zeros, zeros, zeros};
    for (int l = 0; l < L; l++) {
        x[l] = malloc((size_t)B * d * sizeof(float));
        y[l] = malloc((size_t)B * d * sizeof(float));
        for (int i = 0; i < B * d; i++) { x[l][i] = 3.0f * rng_unif(&s, 1.0f); y[l][i] = rng_unif(&s, 1.0f); }
    }
    CltLossParams lp = {.lam = 0.3f, .c = 4.0f, .lam_p = 0.05f, .eps = 0.5f};
    CltWork wf, w[2];
    clt_work_init(&wf, L, d, F, B);
    clt_forward(&full, x, B, &wf);
    CltLossTerms tf = clt_loss(&full, y, &lp, &wf);
    clt_backward(&full, x, y, &lp, &wf, &gfull);
    CHECK(tf.l0 > 0.5 && tf.l0 < L * F - 0.5, "degenerate test: l0 = %g", tf.l0);

    double sp = 0, pre = 0, l0 = 0;
    for (int r = 0; r < R; r++) {
        clt_params_init(&loc[r], L, d, Fl, NULL);
        clt_params_init(&gloc[r], L, d, Fl, NULL);
        take_slice(&full, &loc[r], r * Fl);
        clt_work_init(&w[r], L, d, Fl, B);
        CltParams q = loc[r];  // what clt_shard_forward does before its all-reduce
        q.b_dec = zb;
        clt_forward(&q, x, B, &w[r]);
    }
    double max_err = 0, max_y = 0;
    for (int k = 0; k < L; k++)
        for (int t = 0; t < B; t++)
            for (int j = 0; j < d; j++) {
                size_t i = (size_t)t * d + j;
                float sum = (w[0].yhat[k][i] + w[1].yhat[k][i]) + full.b_dec[k][j];
                max_err = fmax(max_err, fabs((double)sum - wf.yhat[k][i]));
                max_y = fmax(max_y, fabs((double)wf.yhat[k][i]));
            }
    CHECK(max_err <= 1e-6 * max_y, "summed partial reconstruction off by %.3g (scale %.3g)", max_err, max_y);
    for (int r = 0; r < R; r++) {  // the all-reduced ŷ: take the full one, as every rank would have it
        for (int k = 0; k < L; k++) memcpy(w[r].yhat[k], wf.yhat[k], (size_t)B * d * sizeof(float));
        CltLossTerms t = clt_loss(&loc[r], y, &lp, &w[r]);
        CHECK(t.mse == tf.mse, "rank %d: mse %.17g vs %.17g", r, t.mse, tf.mse);
        sp += t.sparsity, pre += t.preact, l0 += t.l0;
        clt_backward(&loc[r], x, y, &lp, &w[r], &gloc[r]);
    }
    // The shards' pre-activations h come from encoder GEMMs of another shape, which BLAS may sum in
    // another order (it does under OPENBLAS_CORETYPE=Haswell): each h_ti differs from the full
    // run's by at most 2γ·(Σ_j |x_tj W_enc,ij| + |b_enc,i|), γ = (d+1)·2⁻²⁴. The loss terms move by
    // at most their derivatives' bounds times that: tanh' ≤ 1 for the sparsity term (active
    // pairs), ReLU' ≤ 1 for the pre-activation term (all pairs); the decoder norms are the same
    // rows through the same code on both sides. No pair may lie within its bound of θ, or the
    // active sets (and l0) could differ: the test checks that its inputs keep clear of that.
    double gamma = (d + 1) * 0x1p-24, sp_bound = 0, pre_bound = 0;
    int near_threshold = 0;
    for (int l = 0; l < L; l++)
        for (int t = 0; t < B; t++)
            for (int i = 0; i < F; i++) {
                double mag = fabs(full.b_enc[l][i]);
                for (int j = 0; j < d; j++)
                    mag += fabs((double)x[l][(size_t)t * d + j] * full.W_enc[l][(size_t)i * d + j]);
                double dh = 2 * gamma * mag, h = wf.h[l][(size_t)t * F + i], theta = wf.theta[l][i];
                near_threshold += fabs(h - theta) <= dh;
                pre_bound += wf.norm[l][i] * dh;
                if (h > theta) sp_bound += lp.c * wf.norm[l][i] * dh;
            }
    CHECK(near_threshold == 0, "degenerate test: %d pre-activations within rounding of θ", near_threshold);
    sp_bound *= (double)lp.lam / B;
    pre_bound *= (double)lp.lam_p / B;
    CHECK(fabs(sp - tf.sparsity) <= sp_bound + 1e-12 * fabs(tf.sparsity), "sparsity %.17g vs %.17g (bound %.3g)", sp,
          tf.sparsity, sp_bound);
    CHECK(fabs(pre - tf.preact) <= pre_bound + 1e-12 * fabs(tf.preact), "preact %.17g vs %.17g (bound %.3g)", pre,
          tf.preact, pre_bound);
    CHECK(l0 == tf.l0, "l0 %.17g vs %.17g", l0, tf.l0);
    // gradients: slice r of the full gradient (W_enc through a GEMM of another shape: near, not bitwise)
    CltParams want;
    clt_params_init(&want, L, d, Fl, NULL);
    for (int r = 0; r < R; r++) {
        take_slice(&gfull, &want, r * Fl);
        double scale = 0, err = 0;
        for (size_t i = 0; i < want.n; i++) {
            scale = fmax(scale, fabs((double)want.data[i]));
            err = fmax(err, fabs((double)want.data[i] - gloc[r].data[i]));
        }
        CHECK(err <= 1e-6 * scale, "rank %d: gradient off by %.3g (scale %.3g)", r, err, scale);
        for (int l = 0; l < L; l++)
            CHECK(!memcmp(want.b_dec[l], gloc[r].b_dec[l], (size_t)d * sizeof(float)),
                  "rank %d: b_dec gradient of layer %d not bitwise", r, l);
    }
    clt_params_free(&want);
    for (int r = 0; r < R; r++) {
        clt_params_free(&loc[r]);
        clt_params_free(&gloc[r]);
        clt_work_free(&w[r]);
    }
    for (int l = 0; l < L; l++) { free(x[l]); free(y[l]); }
    free(zeros);
    clt_work_free(&wf);
    clt_params_free(&full);
    clt_params_free(&gfull);
}

// With one process the sharded entry points are the plain ones: same bits.
static void test_one_rank_is_unsharded(void) {
    int L = 2, d = 8, F = 10, B = 6;
    Comm c;
    comm_init_single(&c);
    CltShard sh;
    Error e;
    CHECK(!clt_shard_init(&sh, &c, L, d, F, &e), "%s", e.msg);
    CltParams p, full;
    clt_params_init(&p, L, d, F, NULL);
    clt_params_init(&full, L, d, F, NULL);
    clt_shard_init_random(&sh, &p, 9, 0.1f);
    float *x[2], *y[2];
    uint64_t s = 3;
    for (int l = 0; l < L; l++) {
        x[l] = malloc((size_t)B * d * sizeof(float));
        y[l] = malloc((size_t)B * d * sizeof(float));
        for (int i = 0; i < B * d; i++) { x[l][i] = 4.0f * rng_unif(&s, 1.0f); y[l][i] = rng_unif(&s, 1.0f); }
    }
    CltLossParams lp = {.lam = 0.3f, .c = 4.0f, .lam_p = 0.05f, .eps = 2.0f};
    CltWork w1, w2;
    clt_work_init(&w1, L, d, F, B);
    clt_work_init(&w2, L, d, F, B);
    clt_forward(&p, x, B, &w1);
    CltLossTerms t1 = clt_loss(&p, y, &lp, &w1), t2;
    CHECK(!clt_shard_forward(&sh, &p, x, B, &w2, &e), "%s", e.msg);
    CHECK(!clt_shard_loss(&sh, &p, y, &lp, &w2, &t2, &e), "%s", e.msg);
    for (int k = 0; k < L; k++)
        CHECK(!memcmp(w1.yhat[k], w2.yhat[k], (size_t)B * d * sizeof(float)), "yhat[%d] differs", k);
    CHECK(!memcmp(&t1, &t2, sizeof t1), "loss terms differ");
    // gather/scatter are copies
    CHECK(!clt_shard_gather(&sh, p.data, full.data, &e), "%s", e.msg);
    CHECK(!memcmp(p.data, full.data, p.n * sizeof(float)), "gather is not a copy");
    memset(p.data, 0, p.n * sizeof(float));
    CHECK(!clt_shard_scatter(&sh, full.data, p.data, &e), "%s", e.msg);
    CHECK(!memcmp(p.data, full.data, p.n * sizeof(float)), "scatter is not a copy");
    for (int l = 0; l < L; l++) { free(x[l]); free(y[l]); }
    clt_work_free(&w1);
    clt_work_free(&w2);
    clt_params_free(&p);
    clt_params_free(&full);
    clt_shard_free(&sh);
    comm_free(&c);
}

static void test_comm_single(void) {
    Comm c;
    Error e = {{0}};
    comm_init_single(&c);
    CHECK(c.rank == 0 && c.size == 1, "rank %d size %d", c.rank, c.size);
    float f[3] = {1, 2, 3}, g[3] = {0};
    double dd[2] = {4, 5};
    CHECK(!comm_allreduce_sum_f32(&c, f, 3, &e) && f[0] == 1 && f[2] == 3, "allreduce f32");
    CHECK(!comm_allreduce_sum_f64(&c, dd, 2, &e) && dd[1] == 5, "allreduce f64");
    CHECK(!comm_bcast(&c, f, sizeof f, 0, &e) && !comm_barrier(&c, &e), "bcast/barrier");
    CHECK(comm_bcast(&c, f, sizeof f, 1, &e) == -1, "root 1 of 1 accepted");
    CHECK(!comm_gatherv_f32(&c, f, 3, g, 0, &e) && !memcmp(f, g, sizeof f), "gatherv");
    memset(g, 0, sizeof g);
    CHECK(!comm_scatterv_f32(&c, f, g, 3, 0, &e) && !memcmp(f, g, sizeof f), "scatterv");
    // the launcher's environment
    unsetenv("OMPI_COMM_WORLD_SIZE"), unsetenv("PMIX_SIZE"), unsetenv("PMI_SIZE"), unsetenv("MPI_LOCALNRANKS");
    CHECK(comm_launcher_size() == 0, "no launcher: %d", comm_launcher_size());
    setenv("PMI_SIZE", "4", 1);
    CHECK(comm_launcher_size() == 4, "PMI_SIZE=4: %d", comm_launcher_size());
    unsetenv("PMI_SIZE");
    comm_free(&c);
}

int main(void) {
    RUN_TEST(test_shard_init_random_is_a_slice);
    RUN_TEST(test_shard_features_not_divisible);
    RUN_TEST(test_two_shards_match_full);
    RUN_TEST(test_one_rank_is_unsharded);
    RUN_TEST(test_comm_single);
    return test_summary();
}
