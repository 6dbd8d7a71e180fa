// test_feat_collect: the streaming collection against a brute-force computation over all
// activations materialized at once — identical top-k sets and activations, exact bin counts and
// samples, identical statistics — and sharded collection + merge equal to one job, byte for byte.
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "feat_collect.h"
#include "featstore.h"
#include "tmpdir.h"

__extension__ typedef __int128 i128;

enum { NL = 2, F = 12, T = 40, NCTX = 61, VOCAB = 5, SHORT_LAST = 25 };
static const int LAYERS[NL] = {3, 5};
static FeatOptions opt;
static uint32_t tokens[NCTX * T];
static uint64_t docs[NCTX * T];
static uint32_t pos[NCTX * T];
static int nvalid[NCTX];
static float acts[NL][NCTX * T * F];  // (layer, context·T + t, feature)
static TmpDir td;

static uint64_t rng = 12345;
static uint32_t rnd(void) { return rng_u32(&rng); }

// Feature 0 is dead, 1 fires everywhere, the rest with densities from 2% to 40%; values on a
// coarse grid (ties), a few below and above the histogram's range. Tokens from a tiny vocabulary
// with a repeated stretch, so identical windows occur (deduplication).
static void make_data(void) {
    for (int c = 0; c < NCTX; c++) {
        nvalid[c] = c == NCTX - 1 ? SHORT_LAST : T;
        for (int t = 0; t < T; t++) {
            int r = c * T + t;
            tokens[r] = c % 7 == 3 ? (uint32_t)(t % 4) : rnd() % VOCAB;
            docs[r] = (uint64_t)(c / 3);
            pos[r] = (uint32_t)((c % 3) * T + t);
        }
    }
    for (int l = 0; l < NL; l++)
        for (int r = 0; r < NCTX * T; r++)
            for (int f = 0; f < F; f++) {
                float a = 0;
                int dens = f == 1 ? 100 : 2 + 4 * f;
                if (f != 0 && (int)(rnd() % 100) < dens) {
                    a = (float)(1 + rnd() % 12) * 0.25f * (float)(l + 1);
                    if (rnd() % 50 == 0) a = 1e-6f;
                    if (rnd() % 80 == 0) a = 1e5f;
                }
                if (f == 7)
                    a = tokens[r] == 2 && r % T > 8 && (r / T) % 7 == 3 ? 2.0f
                                                                        : 0.0f;  // token-driven, ties: duplicates
                acts[l][(size_t)r * F + f] = a;
            }
}

// Collects contexts with index % n == i, in batches of 7, into store dir.
static int collect(const char *dir, int i, int n) {
    FeatCollector *c = feat_collector_new(&opt, NL, LAYERS, F, T, 2);
    uint64_t ci[7];
    int nv[7], B = 0;
    uint32_t tk[7 * T], ps[7 * T];
    uint64_t dc[7 * T];
    float *a = xmalloc((size_t)7 * T * F * sizeof(float));
    for (int ctx = 0; ctx <= NCTX; ctx++) {
        if (ctx < NCTX && ctx % n == i) {
            ci[B] = (uint64_t)ctx;
            nv[B] = nvalid[ctx];
            memcpy(tk + B * T, tokens + ctx * T, T * sizeof(uint32_t));
            memcpy(ps + B * T, pos + ctx * T, T * sizeof(uint32_t));
            memcpy(dc + B * T, docs + ctx * T, T * sizeof(uint64_t));
            B++;
        }
        if (B == 7 || (ctx == NCTX && B)) {
            FeatBatch b = {B, tk, dc, ps, ci, nv};
            feat_count_batch(c, &b);
            for (int l = 0; l < NL; l++) {
                for (int bi = 0; bi < B; bi++)
                    memcpy(a + (size_t)bi * T * F, acts[l] + (size_t)ci[bi] * T * F, (size_t)T * F * sizeof(float));
                feat_collect(c, l, &b, a);
            }
            B = 0;
        }
    }
    for (int l = 0; l < NL; l++)  // logits: any fixed values
        for (int f = 0; f < F; f++) {
            uint32_t ids[2] = {(uint32_t)f, (uint32_t)(f + 1)}, bids[2] = {7, 8};
            float v[2] = {(float)f + 0.5f, (float)f}, bv[2] = {-1.25f, -1.0f};
            feat_set_logits(c, l, f, ids, v, bids, bv);
        }
    free(a);
    Error e;
    int rc = feat_collector_write(c, dir, NULL, &e);
    if (rc) printf("  write: %s\n", e.msg);
    feat_collector_free(c);
    return rc;
}

typedef struct {
    float act;
    uint64_t window, key;
    int split, n, max_idx;
    uint32_t tok[64];
    float a[64];
} Win;

static int top_cmp(const void *x, const void *y) {
    const Win *a = x, *b = y;
    if (a->act != b->act) return a->act > b->act ? -1 : 1;
    return a->window < b->window ? -1 : a->window > b->window;
}
static int key_cmp(const void *x, const void *y) {
    const Win *a = x, *b = y;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return a->window < b->window ? -1 : a->window > b->window;
}

static void check_example(json_t *j, const Win *w, int with_acts, const char *what, int f) {
    json_t *t = json_object_get(j, "tokens"), *a = json_object_get(j, "acts");
    CHECK(json_is_object(j), "%s f%d: missing", what, f);
    if (!json_is_object(j)) return;
    CHECK((float)json_number_value(json_object_get(j, "act")) == w->act, "%s f%d: act %g vs %g", what, f,
          json_number_value(json_object_get(j, "act")), w->act);
    CHECK((uint64_t)json_integer_value(json_object_get(j, "window")) == w->window, "%s f%d: window", what, f);
    CHECK(!strcmp(json_string_value(json_object_get(j, "split")), w->split ? "test" : "explain"), "%s f%d split", what,
          f);
    CHECK((int)json_array_size(t) == w->n, "%s f%d: %zu tokens vs %d", what, f, json_array_size(t), w->n);
    CHECK(json_integer_value(json_object_get(j, "max_idx")) == (with_acts ? w->max_idx : 0), "%s f%d: max_idx", what,
          f);
    for (int i = 0; i < w->n && i < (int)json_array_size(t); i++) {
        CHECK((uint32_t)json_integer_value(json_array_get(t, (size_t)i)) == w->tok[i], "%s f%d: token %d", what, f, i);
        if (with_acts)
            CHECK((float)json_number_value(json_array_get(a, (size_t)i)) == w->a[i], "%s f%d: act %d", what, f, i);
    }
}

// Every record of the store against the brute force.
static void check_store(const char *dir) {
    FeatStore s;
    Error e;
    CHECK(featstore_open(&s, dir, &e) == 0, "%s", e.msg);
    int W = opt.window, wpc = (T + W - 1) / W, V = W + 2 * opt.extra, R = opt.n_bins * opt.per_bin;
    Win *all = xmalloc((size_t)NCTX * wpc * sizeof(Win));
    for (int l = 0; l < NL; l++)
        for (int f = 0; f < F; f++) {
            json_t *r = feat_store_record(&s, LAYERS[l], f, &e);
            CHECK(r != NULL, "%s", e.msg);
            if (!r) continue;
            // token statistics
            uint64_t count = 0, ntok = 0;
            i128 sum = 0;
            float mx = 0, mn = INFINITY;
            uint32_t hist[FEAT_HIST_BUCKETS] = {0};
            for (int c = 0; c < NCTX; c++)
                for (int t = 0; t < nvalid[c]; t++) {
                    ntok++;
                    float a = acts[l][((size_t)c * T + t) * F + f];
                    if (a <= 0) continue;
                    count++;
                    sum += (i128)((double)a * FEAT_SUM_SCALE);
                    mx = fmaxf(mx, a);
                    mn = fminf(mn, a);
                    hist[feat_hist_bucket(a)]++;
                }
            CHECK((uint64_t)json_integer_value(json_object_get(r, "count")) == count, "f%d count", f);
            CHECK((uint64_t)json_integer_value(json_object_get(r, "n_tokens")) == ntok, "f%d n_tokens", f);
            char buf[48];
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)sum);  // sums here fit 64 bits
            CHECK(!strcmp(json_string_value(json_object_get(r, "sum_fixed")), buf), "f%d sum %s vs %s", f,
                  json_string_value(json_object_get(r, "sum_fixed")), buf);
            CHECK(json_is_true(json_object_get(r, "dead")) == (count == 0), "f%d dead", f);
            CHECK(json_is_true(json_object_get(r, "always_on")) == (f == 1), "f%d always_on", f);
            if (count) {
                CHECK((float)json_number_value(json_object_get(r, "max_activation")) == mx, "f%d max", f);
                CHECK((float)json_number_value(json_object_get(r, "min_activation")) == mn, "f%d min", f);
                CHECK_NEAR(json_number_value(json_object_get(r, "mean_activation")),
                           (double)sum / FEAT_SUM_SCALE / count, 1e-8);
                json_t *qv = json_object_get(r, "quantile_values");
                CHECK(json_array_size(qv) == 101, "f%d quantiles", f);
                for (size_t q = 1; q < json_array_size(qv); q++)
                    CHECK(json_number_value(json_array_get(qv, q)) >= json_number_value(json_array_get(qv, q - 1)),
                          "f%d monotone", f);
                CHECK((float)json_number_value(json_array_get(qv, 0)) == mn &&
                          (float)json_number_value(json_array_get(qv, 100)) == mx,
                      "f%d quantile ends", f);
            }
            json_t *hb = json_object_get(r, "hist_buckets"), *p;
            size_t i, nb = 0;
            json_array_foreach(hb, i, p) {
                int b = (int)json_integer_value(json_array_get(p, 0));
                CHECK(hist[b] == (uint32_t)json_integer_value(json_array_get(p, 1)), "f%d bucket %d", f, b);
            }
            for (int b = 0; b < FEAT_HIST_BUCKETS; b++) nb += hist[b] != 0;
            CHECK(nb == json_array_size(hb), "f%d buckets", f);
            // windows: max (first occurrence), view, split, priorities
            int n_all = 0;
            for (int c = 0; c < NCTX; c++)
                for (int w = 0; w * W < nvalid[c]; w++) {
                    Win *x = &all[n_all++];
                    memset(x, 0, sizeof *x);
                    int r0 = w * W, r1 = r0 + W < nvalid[c] ? r0 + W : nvalid[c], p2 = -1;
                    x->window = (uint64_t)c * wpc + w;
                    x->split = feat_window_split(x->window, opt.seed);
                    uint64_t wp = feat_window_priority(x->window, opt.seed);
                    for (int t = r0; t < r1; t++) {
                        float a = acts[l][((size_t)c * T + t) * F + f];
                        if (a > x->act) { x->act = a; p2 = t; }
                    }
                    if (p2 < 0) {  // non-activating: its own tokens
                        x->key = wp;
                        x->n = r1 - r0;
                        memcpy(x->tok, tokens + c * T + r0, (size_t)x->n * sizeof(uint32_t));
                        continue;
                    }
                    x->key = feat_sample_priority(wp, l, F, f);
                    int v0 = p2 - opt.max_at - opt.extra, v1 = p2 + (W - opt.max_at) + opt.extra;
                    v0 = v0 < 0 ? 0 : v0;
                    v1 = v1 > nvalid[c] ? nvalid[c] : v1;
                    x->n = v1 - v0;
                    x->max_idx = p2 - v0;
                    for (int t = v0; t < v1; t++) {
                        x->tok[t - v0] = tokens[c * T + t];
                        x->a[t - v0] = acts[l][((size_t)c * T + t) * F + f];
                    }
                }
            (void)V;
            // top: the best window per distinct content, best first, k of them
            Win *act = xmalloc((size_t)n_all * sizeof(Win));
            int n_act = 0;
            for (int q = 0; q < n_all; q++)
                if (all[q].act > 0) act[n_act++] = all[q];
            qsort(act, (size_t)n_act, sizeof(Win), top_cmp);
            Win *top = xmalloc((size_t)(n_all + 1) * sizeof(Win));
            int n_top = 0, n_dup = 0;
            for (int q = 0; q < n_act && n_top < opt.k; q++) {
                int dup = 0;
                for (int u = 0; u < n_top && !dup; u++)
                    dup = top[u].n == act[q].n && top[u].max_idx == act[q].max_idx &&
                          !memcmp(top[u].tok, act[q].tok, (size_t)act[q].n * sizeof(uint32_t));
                if (!dup) top[n_top++] = act[q];
                n_dup += dup;
            }
            json_t *jt = json_object_get(r, "top");
            CHECK((int)json_array_size(jt) == n_top, "f%d: %zu top vs %d", f, json_array_size(jt), n_top);
            for (int q = 0; q < n_top; q++) check_example(json_array_get(jt, (size_t)q), &top[q], 1, "top", f);
            if (f == 7) CHECK(n_dup > 0, "f7: no duplicates exercised");
            // samples per split: the R lowest priorities, then by activation into equal-count bins
            json_t *js = json_object_get(r, "samples"), *jr = json_object_get(r, "random");
            size_t at = 0, at_r = 0;
            for (int h = 0; h < 2; h++) {
                int n_h = 0;
                for (int q = 0; q < n_act; q++)
                    if (act[q].split == h) top[n_h++] = act[q];
                qsort(top, (size_t)n_h, sizeof(Win), key_cmp);
                if (n_h > R) n_h = R;
                qsort(top, (size_t)n_h, sizeof(Win), top_cmp);
                int bin_count[64] = {0};
                for (int q = 0; q < n_h; q++, at++) {
                    json_t *x = json_array_get(js, at);
                    check_example(x, &top[q], 1, "sample", f);
                    int bin = (int)json_integer_value(json_object_get(x, "bin"));
                    CHECK(bin == q * opt.n_bins / n_h, "f%d bin %d of sample %d/%d", f, bin, q, n_h);
                    bin_count[bin]++;
                }
                if (n_h == R)
                    for (int b = 0; b < opt.n_bins; b++)
                        CHECK(bin_count[b] == opt.per_bin, "f%d bin %d: %d", f, b, bin_count[b]);
                int n_r = 0;
                for (int q = 0; q < n_all; q++)
                    if (all[q].act == 0 && all[q].split == h) top[n_r++] = all[q];
                qsort(top, (size_t)n_r, sizeof(Win), key_cmp);
                for (int q = 0; q < n_r && q < opt.n_random; q++, at_r++)
                    check_example(json_array_get(jr, at_r), &top[q], 0, "random", f);
            }
            CHECK(at == json_array_size(js) && at_r == json_array_size(jr), "f%d: %zu samples, %zu random", f,
                  json_array_size(js), json_array_size(jr));
            CHECK(json_array_size(json_object_get(r, "top_logits")) == 2 &&
                      json_number_value(json_array_get(json_array_get(json_object_get(r, "bottom_logits"), 0), 1)) ==
                          -1.25,
                  "f%d logits", f);
            // the exported form: circuit-tracer's fields, the top group first, then the bins
            json_t *x = feat_export_json(r, NULL, "test-clt");
            json_t *g = json_object_get(x, "examples_quantiles");
            CHECK(json_is_array(g) && json_array_size(g) >= 1, "f%d groups", f);
            CHECK(!strcmp(json_string_value(json_object_get(json_array_get(g, 0), "quantile_name")), "Top activations"),
                  "f%d", f);
            if (count && R <= n_act / 2)
                CHECK((int)json_array_size(g) == 1 + opt.n_bins, "f%d: %zu groups", f, json_array_size(g));
            CHECK(json_object_get(x, "act_max") && json_object_get(x, "activation_frequency") &&
                      json_array_size(json_object_get(x, "top_logits")) == 2,
                  "f%d export fields", f);
            json_decref(x);
            free(act); free(top);
            json_decref(r);
        }
    free(all);
    featstore_close(&s);
}

static void rm_store(const char *dir) {
    char p[400];
    snprintf(p, sizeof p, "%s/" FEATSTORE_FILE, dir);
    unlink(p);
    rmdir(dir);
}

static char one[256], sh0[256], sh1[256], merged[256];

static void test_brute_force(void) {
    CHECK(collect(one, 0, 1) == 0, "collect");
    check_store(one);
}

static int files_equal(const char *a, const char *b) {
    char pa[400], pb[400];
    snprintf(pa, sizeof pa, "%s/" FEATSTORE_FILE, a);
    snprintf(pb, sizeof pb, "%s/" FEATSTORE_FILE, b);
    FILE *fa = fopen(pa, "rb"), *fb = fopen(pb, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void test_shard_merge(void) {
    CHECK(collect(sh0, 0, 3) == 0 && collect(sh1, 1, 3) == 0, "collect shards");
    char sh2[300];
    snprintf(sh2, sizeof sh2, "%s/sh2", td.dir);
    CHECK(collect(sh2, 2, 3) == 0, "collect shard 2");
    FeatStore s[3];
    Error e;
    const char *dirs[3] = {sh1, sh2, sh0};  // any order
    for (int i = 0; i < 3; i++) CHECK(featstore_open(&s[i], dirs[i], &e) == 0, "%s", e.msg);
    FeatCollector *c = feat_collector_from_store(&s[0], 2, &e);
    CHECK(c != NULL, "%s", e.msg);
    for (int i = 0; i < 3; i++) CHECK(feat_collector_merge_store(c, &s[i], &e) == 0, "%s", e.msg);
    CHECK(feat_collector_write(c, merged, NULL, &e) == 0, "%s", e.msg);
    feat_collector_free(c);
    for (int i = 0; i < 3; i++) featstore_close(&s[i]);
    CHECK(files_equal(one, merged), "merged store differs from the one-job store");
    // a store with other options does not merge
    FeatOptions keep = opt;
    opt.k = 4;
    CHECK(collect(sh2, 0, 1) == 0, "collect k=4");
    opt = keep;
    CHECK(featstore_open(&s[0], one, &e) == 0 && featstore_open(&s[1], sh2, &e) == 0, "%s", e.msg);
    c = feat_collector_from_store(&s[0], 1, &e);
    CHECK(feat_collector_merge_store(c, &s[1], &e) < 0 && strstr(e.msg, "other options"), "%s", e.msg);
    feat_collector_free(c);
    featstore_close(&s[0]);
    featstore_close(&s[1]);
    rm_store(sh2);
}

int main(void) {
    tmp_open(&td, "featcollect");
    snprintf(one, sizeof one, "%s/one", td.dir);
    snprintf(sh0, sizeof sh0, "%s/sh0", td.dir);
    snprintf(sh1, sizeof sh1, "%s/sh1", td.dir);
    snprintf(merged, sizeof merged, "%s/merged", td.dir);
    feat_options_default(&opt);
    opt = (FeatOptions){.k = 6, .window = 16, .max_at = 10, .extra = 3, .n_bins = 3, .per_bin = 2, .n_random = 3,
                        .n_logits = 2, .seed = 99, .always_on = 0.9};
    make_data();
    RUN_TEST(test_brute_force);
    RUN_TEST(test_shard_merge);
    rm_store(one); rm_store(sh0); rm_store(sh1); rm_store(merged);
    tmp_close(&td);
    return test_summary();
}
