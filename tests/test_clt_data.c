// test_clt_data.c — the CLT trainer's data loader (libcommon/clt/clt_data.h), metrics
// (libcommon/clt/clt_metrics.h) and a rank's GPU (comm_local_rank), tested directly: a loader
// reopened at a saved cursor yields the very batches (bit for bit) an uninterrupted one does,
// every batch row is a token of the shards scaled by its layer's normalisation, a batch no pool
// can hold is an error; the metrics row's values; the local rank from the launcher.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actshard.h"
#include "check.h"
#include "clt_data.h"
#include "clt_metrics.h"
#include "tmpdir.h"

enum { L = 2, D = 4, N_TOK = 100, CT = 16, POOL = 2, B = 8, BATCHES = 40 };
static TmpDir td;
static char shard_path[600];

// One shard of N_TOK tokens (7 chunks of at most CT) whose values say where they come from:
// in = token + 0.01 * (layer * D + j), out = -(the same), stored as f32 so they come back exactly.
static void write_shard(void) {
    snprintf(shard_path, sizeof shard_path, "%s/a.acts", td.dir);
    int layers[L] = {3, 4};
    ActShardWriterOptions o = {.model_id = "test", .in_hook = "mlp_in", .out_hook = "mlp_out", .n_layers = L,
                               .layers = layers, .d_model = D, .dtype = ACT_F32, .threads = 1, .chunk_tokens = CT};
    Error e;
    ActShardWriter *w = actshard_writer_open(shard_path, &o, &e);
    CHECK(w != NULL, "%s", e.msg);
    if (!w) return;
    static float in[L * N_TOK * D], out[L * N_TOK * D];
    uint32_t tok[N_TOK], pos[N_TOK];
    uint64_t doc[N_TOK];
    for (int t = 0; t < N_TOK; t++) {
        tok[t] = (uint32_t)t, pos[t] = (uint32_t)t, doc[t] = 0;
        for (int l = 0; l < L; l++)
            for (int j = 0; j < D; j++) {
                in[((size_t)l * N_TOK + t) * D + j] = (float)t + 0.01f * (float)(l * D + j) + 1.0f;
                out[((size_t)l * N_TOK + t) * D + j] = -((float)t + 0.01f * (float)(l * D + j) + 1.0f);
            }
    }
    CHECK(!actshard_write(w, N_TOK, tok, doc, pos, in, out, &e), "%s", e.msg);
    CHECK(!actshard_writer_close(w, &e), "%s", e.msg);
}

static float **rows(void) {
    float **a = malloc(L * sizeof *a);
    for (int l = 0; l < L; l++) a[l] = malloc((size_t)B * D * sizeof(float));
    return a;
}
static void free_rows(float **a) {
    for (int l = 0; l < L; l++) free(a[l]);
    free(a);
}

static void test_resume_yields_the_same_batches(void) {
    char *paths[1] = {shard_path};
    Error e;
    CltData ref;
    if (clt_data_open(&ref, paths, 1, POOL, 42, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    CHECK(ref.L == L && ref.d == D && ref.n_chunks == (N_TOK + CT - 1) / CT, "L %d d %d chunks %llu", ref.L, ref.d,
          (unsigned long long)ref.n_chunks);
    // the uninterrupted run: every batch and the cursor before it
    static float want_x[BATCHES][L][B * D], want_y[BATCHES][L][B * D];
    CltCursor at[BATCHES], cur = {0, 0, 0};
    float **x = rows(), **y = rows();
    int distinct_epochs = 0;
    for (int b = 0; b < BATCHES; b++) {
        at[b] = cur;
        CHECK(!clt_data_next_batch(&ref, &cur, B, x, y, &e), "batch %d: %s", b, e.msg);
        distinct_epochs += b && at[b].epoch != at[b - 1].epoch;
        for (int l = 0; l < L; l++) {
            memcpy(want_x[b][l], x[l], sizeof want_x[b][l]);
            memcpy(want_y[b][l], y[l], sizeof want_y[b][l]);
            // every row is one token's, scaled: x = s_in * (t + 1 + 0.01 (l D + j)), y = -s_out/s_in * x
            for (int r = 0; r < B; r++) {
                float t = x[l][r * D] / ref.s_in[l] - 1.0f - 0.01f * (float)(l * D);
                float tr = (float)(int)(t + 0.5f);
                // values <= 101 through a scale and its inverse: two roundings, < 101 * 2^-22 = 2.4e-5
                CHECK(fabsf(t - tr) < 1e-4f, "batch %d layer %d row %d: %g is not a token", b, l, r, (double)t);
                CHECK(tr >= 0 && tr < N_TOK, "batch %d layer %d row %d: token %g", b, l, r, (double)t);
                CHECK_NEAR(y[l][r * D + 1] / ref.s_out[l], -(x[l][r * D + 1] / ref.s_in[l]), 1e-5);
            }
        }
    }
    CHECK(distinct_epochs >= 2, "only %d epoch changes in %d batches", distinct_epochs, BATCHES);
    // a fresh loader from each saved cursor continues identically
    int resumes[] = {0, 1, 5, 6, 13, 27, BATCHES - 1};
    for (size_t k = 0; k < sizeof resumes / sizeof *resumes; k++) {
        CltData D2;
        if (clt_data_open(&D2, paths, 1, POOL, 42, &e)) {
            CHECK(0, "%s", e.msg);
            break;
        }
        CltCursor c2 = at[resumes[k]];
        for (int b = resumes[k]; b < BATCHES; b++) {
            CHECK(!clt_data_next_batch(&D2, &c2, B, x, y, &e), "%s", e.msg);
            int same = 1;
            for (int l = 0; l < L; l++)
                same &= !memcmp(x[l], want_x[b][l], sizeof want_x[b][l]) &&
                        !memcmp(y[l], want_y[b][l], sizeof want_y[b][l]);
            CHECK(same, "resumed at batch %d: batch %d differs", resumes[k], b);
            if (!same) break;
        }
        clt_data_close(&D2);
    }
    // another seed: another order
    CltData D3;
    CltCursor c3 = {0, 0, 0};
    CHECK(!clt_data_open(&D3, paths, 1, POOL, 43, &e), "%s", e.msg);
    CHECK(!clt_data_next_batch(&D3, &c3, B, x, y, &e), "%s", e.msg);
    CHECK(memcmp(x[0], want_x[0][0], sizeof want_x[0][0]) != 0, "seed 43 gives seed 42's first batch");
    clt_data_close(&D3);
    free_rows(x);
    free_rows(y);
    clt_data_close(&ref);
}

static void test_errors(void) {
    Error e;
    CltData Dd;
    char *paths[1] = {shard_path};
    CHECK(!clt_data_open(&Dd, paths, 1, POOL, 1, &e), "%s", e.msg);
    CHECK(clt_data_max_pool_tokens(&Dd) == 2 * CT, "max pool %llu", (unsigned long long)clt_data_max_pool_tokens(&Dd));
    float *big[L];
    for (int l = 0; l < L; l++) big[l] = malloc((size_t)(2 * CT + 1) * D * sizeof(float));
    CltCursor c = {0, 0, 0};
    CHECK(clt_data_next_batch(&Dd, &c, 2 * CT + 1, big, big, &e) == -1 && strstr(e.msg, "no shuffle pool holds"),
          "a batch larger than any pool: %s", e.msg);
    for (int l = 0; l < L; l++) free(big[l]);
    clt_data_close(&Dd);
    char missing[700];
    snprintf(missing, sizeof missing, "%s/none.acts", td.dir);
    char *two[2] = {shard_path, missing};
    CHECK(clt_data_open(&Dd, two, 2, POOL, 1, &e) == -1 && strstr(e.msg, "none.acts"), "missing shard: %s", e.msg);
}

static void test_metrics_row(void) {
    Comm comm;
    comm_init_single(&comm);
    enum { ML = 2, MF = 3, MB = 4 };
    float silent[ML * MF] = {0, 0, 0, 0, 0, 5};  // feature (1, 2) silent for 5 steps before step 10
    CltMetrics M;
    clt_metrics_init(&M, ML, MF, MF, MB, 10, silent, 100.0);
    CltLossTerms lt1 = {.mse = 1, .sparsity = 2, .preact = 3, .total = 6, .l0 = 4, .window = 0.5};
    CltLossTerms lt2 = {.mse = 3, .sparsity = 2, .preact = 1, .total = 6, .l0 = 2, .window = 1.5};
    double err[ML] = {1, 2}, var[ML] = {4, 4};
    int64_t active[ML] = {4, 8};
    uint8_t fired1[ML * MF] = {1, 0, 0, 0, 1, 0}, fired2[ML * MF] = {1, 0, 0, 0, 0, 0};
    clt_metrics_add(&M, 10, &lt1, err, var, active, fired1);
    clt_metrics_add(&M, 11, &lt2, err, var, active, fired2);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    Error e;
    CHECK(!clt_metrics_log(&M, &comm, f, "m.jsonl", 11, 0.5f, 1e-3f, 102.0, 7.0, &e), "%s", e.msg);
    fclose(f);
    // 2 steps: mse (1+3)/2, loss 6, l0 3; nmse (2/8, 4/8); l0 per layer (4/4+4/4)/2, (8/4+8/4)/2;
    // 4 tokens a step over 2 s; dead: silent for the whole window min(1e6/4 + 1, 12) = 12 steps.
    CHECK(strstr(buf, "\"step\": 12, \"tokens\": 48, \"loss\": 6, \"mse\": 2, \"sparsity\": 2, \"preact\": 2") != NULL,
          "%s", buf);
    CHECK(strstr(buf, "\"l0\": 3, \"window\": 1,") && strstr(buf, "\"nmse\": [0.25, 0.5]") &&
              strstr(buf, "\"l0_per_layer\": [1, 2]") && strstr(buf, "\"tokens_per_s\": 4.0, \"time_s\": 7.000"),
          "%s", buf);
    CHECK(strstr(buf, "\"dead\": 0,") != NULL, "%s", buf);  // silent at most 12 - 5 = 7 < 12 steps
    CHECK(M.n == 0 && M.err[0] == 0 && M.t_log == 102.0, "the row restarts the sums");
    float s_out[ML * MF];
    clt_metrics_silent(&M, 12, s_out, 1e9f);
    CHECK(s_out[0] == 0 && s_out[4] == 1 && s_out[1] == 2 && s_out[5] == 7, "silent %g %g %g %g", (double)s_out[0],
          (double)s_out[4], (double)s_out[1], (double)s_out[5]);
    free(buf);
    clt_metrics_free(&M);
    comm_free(&comm);
}

// The GPU a rank takes: its node-local rank from the launcher, else its rank.
static void test_local_rank(void) {
    Comm c = {.rank = 5, .size = 8};
    Error e;
    int r = -1;
    unsetenv("OMPI_COMM_WORLD_LOCAL_RANK"), unsetenv("MPI_LOCALRANKID"), unsetenv("SLURM_LOCALID");
    CHECK(!comm_local_rank(&c, &r, &e) && r == 5, "no launcher: %d", r);
    setenv("SLURM_LOCALID", "2", 1);
    CHECK(!comm_local_rank(&c, &r, &e) && r == 2, "Slurm: %d", r);
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3", 1);  // Open MPI's wins
    CHECK(!comm_local_rank(&c, &r, &e) && r == 3, "Open MPI: %d", r);
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "x1", 1);
    CHECK(comm_local_rank(&c, &r, &e) == -1 && strstr(e.msg, "'x1' is not a number"), "bad: %s", e.msg);
    unsetenv("OMPI_COMM_WORLD_LOCAL_RANK"), unsetenv("SLURM_LOCALID");
}

int main(void) {
    tmp_open(&td, "clt_data");
    write_shard();
    RUN_TEST(test_resume_yields_the_same_batches);
    RUN_TEST(test_errors);
    RUN_TEST(test_metrics_row);
    RUN_TEST(test_local_rank);
    tmp_close(&td);
    return test_summary();
}
