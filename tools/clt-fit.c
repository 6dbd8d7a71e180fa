// clt-fit — train a JumpReLU cross-layer transcoder on activation shards (CPU backend).
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actshard.h"
#include "cli.h"
#include "clt.h"
#include "clt_data.h"
#include "clt-fit/cmds.h"
#include "clt_metrics.h"
#include "clt_io.h"
#include "clt_state.h"
#include "clt_report.h"
#include "clt_shard.h"
#include "comm.h"
#include "crc32c.h"
#include "err.h"
#include "fileio.h"
#include "progress.h"
#include "safetensors.h"
#include "threads.h"
#include "clt_cuda.h"     // the real GPU trainer, or the stub without CUDA (clt_cuda_stub.c)
#include "cuda_common.h"
#include "gpu_ctx.h"

static const char USAGE[] =
    "usage: clt-fit -o OUT_DIR [options] ACTS...\n"
    "       clt-fit synth -o OUT.acts --layers L --d D --features F --tokens N [options]\n"
    "       clt-fit eval CLT_DIR ACTS...\n"
    "       clt-fit eval-synth CLT_DIR TRUTH_DIR [ACTS...]\n"
    "       clt-fit report METRICS.jsonl [-o REPORT.html]\n"
    "\n"
    "Trains a JumpReLU cross-layer transcoder on activation shards written by fwd-acts (every\n"
    "shard must hold the same layers and width). Encoder of layer l reads the shards' input hook\n"
    "(mlp_in or resid_mid), decoders write every later layer's mlp_out. Inputs and targets are\n"
    "normalized per layer to mean norm sqrt(d) (from the shards' statistics); the scales are folded\n"
    "into the saved weights. Loss (per token, summed over d and layers, averaged over the batch):\n"
    "  sum_k |yhat_k - y_k|^2 + lambda sum tanh(c a |W_dec|) + lambda_p sum relu(theta - h) |W_dec|\n"
    "lambda ramps linearly from 0 over the whole run; the learning rate warms up over --warmup\n"
    "and decays linearly to 0 over the final 20%. Adam with fp32 weights and moments.\n"
    "Checkpoints in circuit-tracer's layout (formats/clt.md) plus train_state.safetensors and run.json\n"
    "(every setting, the input shards' identities), switched in as one set: every --save-interval\n"
    "seconds, every --save-every steps, at the end, and on SIGINT/SIGTERM (the step finishes, the\n"
    "checkpoint is saved, exit 130/143). `clt-fit --resume -o OUT_DIR` continues any of them with the\n"
    "saved settings and shards and ends bit-identical to an uninterrupted run.\n"
    "\n"
    "Sharded training: `mpirun -np R clt-fit ...` (a build with MPI) splits the features of every\n"
    "layer across R processes; --features must be divisible by R. Every rank reads the same batches;\n"
    "rank 0 writes the metrics and the checkpoints, the same files as a 1-process run, and --resume\n"
    "accepts a state written by any rank count (bit-identical continuation with the same count).\n"
    "R ranks match 1 rank up to float rounding of the summed reconstruction (formats/clt.md).\n"
    "\n"
    "options:\n"
    "  -o, --output DIR     checkpoint directory\n"
    "  --features F         features per layer (default: 8 x d_model)\n"
    "  --batch B            tokens per step (default 1024)\n"
    "  --steps N            optimizer steps (default 1000)\n"
    "  --lr X               peak learning rate (default 2e-4)\n"
    "  --lambda X           final sparsity coefficient (default 1.0)\n"
    "  --c X                tanh scale (default 4)\n"
    "  --lambda-p X         pre-activation coefficient (default 3e-6)\n"
    "  --bandwidth X        JumpReLU straight-through bandwidth epsilon (default 2.0)\n"
    "  --theta0 X           initial threshold (default 0.1)\n"
    "  --activation A       jumprelu (default), topk or batchtopk: keep each token's K largest\n"
    "                       positive pre-activations per layer (topk) or the batch's B*K largest\n"
    "                       (batchtopk, Bussmann et al.); the loss is then the reconstruction alone\n"
    "                       (--lambda, --lambda-p, --bandwidth unused) and the saved CLT is JumpReLU\n"
    "                       with one threshold per layer, the running mean of the batch cutoffs\n"
    "  --k K                features per token per layer for topk/batchtopk (default 32)\n"
    "  --warmup N           learning-rate warm-up steps (default 1% of --steps)\n"
    "  --pool-chunks K      activation chunks mixed per shuffle pool (default 8)\n"
    "  --seed S             initialization and data order (default 0)\n"
    "  --log-every N        metrics every N steps (default 50)\n"
    "  --metrics FILE       metrics as JSONL (default OUT_DIR/metrics.jsonl)\n"
    "  --save-every N       also checkpoint every N steps (default: time cadence only)\n"
    "  --save-interval SEC  checkpoint every SEC seconds of training (default 600; 0: off)\n"
    "  --resume             continue from OUT_DIR's checkpoint with its run.json's settings and shards\n"
    "                       (ACTS may be omitted); a setting given that differs is refused unless\n"
    "                       --override names it; metrics past the checkpoint's step are dropped\n"
    "  --override KEYS      with --resume: comma-separated settings allowed to change (option names\n"
    "                       without dashes, e.g. lr,steps; `shards` for other input shards)\n"
    "  --run-steps N        stop (with a checkpoint) after N steps of this invocation; resume later\n"
    "  --device D           cpu (default) or cuda: the whole step on the GPU (libcommon/clt/clt_cuda.h;\n"
    "                       jumprelu only); under mpirun each rank takes GPU (local rank mod count)\n"
    "                       and the ranks all-reduce the reconstruction with NCCL\n"
    "  --bf16               with --device cuda: the encoder GEMMs on bf16 copies of W_enc, x and dh\n"
    "                       (fp32 accumulation; weights, decoder and Adam moments stay fp32)\n"
    "  -h, --help, --version\n"
    "\n"
    "subcommands (each has --help):\n"
    "  synth       write activations of a planted sparse CLT (synthetic ground truth)\n"
    "  eval        NMSE, variance explained, L0 and dead features of a CLT on held-out shards (JSON)\n"
    "  eval-synth  recovery of the planted features (mean max cosine of decoders) and L0 (JSON)\n"
    "  report      self-contained HTML/SVG report of the training curves in a metrics log\n";

typedef struct {
    const char *out_dir, *metrics_path, *override;
    int features, batch, pool_chunks, log_every, resume, k, cuda, bf16;
    CltActivation act;
    int64_t steps, warmup, save_every, run_steps;
    float lr, lam, c, lam_p, eps, theta0;
    double save_interval;
    uint64_t seed;
} Options;

// The next batch is assembled on a thread of its own while the current step computes (on the GPU
// the step would otherwise wait for it). Only that thread touches the CltData while it runs; the
// batches come in the same order as without it, so results do not change.
typedef struct {
    CltData *D;
    int B;
    float **x, **y;  // [L] (B, d)
    CltCursor cur;   // in: where the batch starts; out: after it
    int rc;          // clt_data_next_batch's result, with e
    Error e;
} FetchJob;

static void *fetch_batch(void *arg) {
    FetchJob *j = arg;
    j->rc = clt_data_next_batch(j->D, &j->cur, j->B, j->x, j->y, &j->e);
    return NULL;
}

static float **alloc_rows(int L, size_t n) {
    float **a = xmalloc((size_t)L * sizeof(float *));
    for (int l = 0; l < L; l++) a[l] = xmalloc(n * sizeof(float));
    return a;
}
static void free_rows(float **a, int L) {
    for (int l = 0; l < L; l++) free(a[l]);
    free(a);
}

// ---------------------------------------------------------------------------------------------
// The run's settings (run.json, saved with every checkpoint): every option that shapes the
// training (`fixed`: a resume may change it only with --override) or how it runs, the input
// shards' identities, the version. A resume starts from them; options given again must agree.

typedef enum { K_INT, K_I64, K_U64, K_F32, K_F64, K_ACT, K_DEVICE, K_BOOL, K_STR } KeyType;
typedef struct {
    const char *name;  // the long option
    KeyType type;
    size_t off;
    int fixed;
} RunKey;

static const RunKey RUN_KEYS[] = {
    {"features", K_INT, offsetof(Options, features), 1},
    {"batch", K_INT, offsetof(Options, batch), 1},
    {"steps", K_I64, offsetof(Options, steps), 1},
    {"lr", K_F32, offsetof(Options, lr), 1},
    {"lambda", K_F32, offsetof(Options, lam), 1},
    {"c", K_F32, offsetof(Options, c), 1},
    {"lambda-p", K_F32, offsetof(Options, lam_p), 1},
    {"bandwidth", K_F32, offsetof(Options, eps), 1},
    {"theta0", K_F32, offsetof(Options, theta0), 1},
    {"activation", K_ACT, offsetof(Options, act), 1},
    {"k", K_INT, offsetof(Options, k), 1},
    {"warmup", K_I64, offsetof(Options, warmup), 1},
    {"pool-chunks", K_INT, offsetof(Options, pool_chunks), 1},
    {"seed", K_U64, offsetof(Options, seed), 1},
    {"log-every", K_INT, offsetof(Options, log_every), 0},
    {"metrics", K_STR, offsetof(Options, metrics_path), 0},
    {"save-every", K_I64, offsetof(Options, save_every), 0},
    {"save-interval", K_F64, offsetof(Options, save_interval), 0},
    {"device", K_DEVICE, offsetof(Options, cuda), 0},
    {"bf16", K_BOOL, offsetof(Options, bf16), 0},
};
enum { N_RUN_KEYS = sizeof RUN_KEYS / sizeof *RUN_KEYS };

static const char *act_name(int a) { return a == CLT_TOPK ? "topk" : a == CLT_BATCHTOPK ? "batchtopk" : "jumprelu"; }

static json_t *key_to_json(const RunKey *k, const Options *o) {
    const char *base = (const char *)o + k->off;
    switch (k->type) {
        case K_INT: return json_integer(*(const int *)base);
        case K_I64: return json_integer(*(const int64_t *)base);
        case K_U64: return json_integer((json_int_t) * (const uint64_t *)base);  // seeds are < 2^63 (--seed's range)
        case K_F32: return json_real((double)*(const float *)base);              // exact: a float is a double
        case K_F64: return json_real(*(const double *)base);
        case K_ACT: return json_string(act_name(*(const CltActivation *)base));
        case K_DEVICE: return json_string(*(const int *)base ? "cuda" : "cpu");
        case K_BOOL: return json_boolean(*(const int *)base);
        case K_STR: return *(const char *const *)base ? json_string(*(const char *const *)base) : json_null();
    }
    return json_null();
}

// Sets k of o from run.json's value v; -1 when v has the wrong type.
static int key_from_json(const RunKey *k, Options *o, json_t *v) {
    char *base = (char *)o + k->off;
    switch (k->type) {
        case K_INT:
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) return -1;
            *(int *)base = (int)json_integer_value(v);
            return 0;
        case K_I64:
        case K_U64:
            if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
            if (k->type == K_I64) *(int64_t *)base = json_integer_value(v);
            else *(uint64_t *)base = (uint64_t)json_integer_value(v);
            return 0;
        case K_F32:
        case K_F64:
            if (!json_is_number(v) || !isfinite(json_number_value(v))) return -1;
            if (k->type == K_F32) *(float *)base = (float)json_number_value(v);
            else *(double *)base = json_number_value(v);
            return 0;
        case K_ACT: {
            const char *sv = json_string_value(v);
            if (!sv) return -1;
            if (!strcmp(sv, "jumprelu")) *(CltActivation *)base = CLT_JUMPRELU;
            else if (!strcmp(sv, "topk")) *(CltActivation *)base = CLT_TOPK;
            else if (!strcmp(sv, "batchtopk")) *(CltActivation *)base = CLT_BATCHTOPK;
            else return -1;
            return 0;
        }
        case K_DEVICE:
            if (!json_is_string(v) || (strcmp(json_string_value(v), "cpu") && strcmp(json_string_value(v), "cuda")))
                return -1;
            *(int *)base = !strcmp(json_string_value(v), "cuda");
            return 0;
        case K_BOOL:
            if (!json_is_boolean(v)) return -1;
            *(int *)base = json_is_true(v);
            return 0;
        case K_STR:
            if (json_is_null(v)) *(const char **)base = NULL;
            else if (json_is_string(v)) *(const char **)base = json_string_value(v);  // run.json outlives the options
            else return -1;
            return 0;
    }
    return -1;
}

static int key_index(const char *name) {
    for (int i = 0; i < N_RUN_KEYS; i++)
        if (!strcmp(RUN_KEYS[i].name, name)) return i;
    return -1;
}

// Whether the comma-separated list names key.
static int list_has(const char *list, const char *key) {
    size_t n = strlen(key);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, key, n)) return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

// A shard's identity without reading its data: size, tokens, and the CRC-32C of its chunks'
// stored CRCs and sizes (every chunk's bytes are covered by its CRC).
static json_t *shard_identity(const ActShard *s) {
    uint32_t crc = 0;
    for (uint64_t i = 0; i < s->n_chunks; i++) {
        uint8_t b[16];
        memcpy(b, &s->index[i].crc, 4);
        memcpy(b + 4, &s->index[i].n_tokens, 4);
        memcpy(b + 8, &s->index[i].comp_bytes, 8);
        crc = crc32c_update(crc, b, sizeof b);
    }
    char hex[16];
    snprintf(hex, sizeof hex, "%08x", crc);
    return json_pack("{s:s,s:I,s:I,s:s}", "path", s->path, "bytes", (json_int_t)s->file_size, "tokens",
                     (json_int_t)s->n_tokens, "chunks_crc32c", hex);
}

// run.json's text for this run (resolved settings: F and warm-up are numbers, not defaults).
static char *run_config_text(const Options *o, const CltData *D, int F) {
    Options r = *o;
    r.features = F;
    json_t *settings = json_object(), *shards = json_array();
    for (int i = 0; i < N_RUN_KEYS; i++) json_object_set_new(settings, RUN_KEYS[i].name, key_to_json(&RUN_KEYS[i], &r));
    for (int i = 0; i < D->n_shards; i++) json_array_append_new(shards, shard_identity(&D->shards[i]));
    json_t *root = json_pack("{s:s,s:s,s:o,s:o,s:i,s:i}", "tool", "clt-fit", "version", CLTKIT_VERSION, "settings",
                             settings, "shards", shards, "layers", D->L, "d_model", D->d);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    size_t n = strlen(text);
    text = xrealloc(text, n + 2);
    memcpy(text + n, "\n", 2);
    return text;
}

// --resume: o takes run.json's settings except those given on the command line (given[i] for
// RUN_KEYS[i]); a given fixed setting that differs must be named by --override. Returns run.json
// (its strings back o's; the caller frees it after the run), or NULL when the directory has
// none (a state from an older clt-fit: the command line is all there is).
static json_t *run_config_apply(Options *o, const int *given, Error *e) {
    char path[4200];
    snprintf(path, sizeof path, "%s/run.json", o->out_dir);
    if (access(path, F_OK)) return NULL;
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je), *settings = json_object_get(root, "settings");
    if (!json_is_object(settings) || !json_is_array(json_object_get(root, "shards"))) {
        err_set(e, "%s: not a clt-fit run config%s%s", path, root ? "" : ": ", root ? "" : je.text);
        json_decref(root);
        return NULL;
    }
    Options saved = *o;
    for (int i = 0; i < N_RUN_KEYS; i++) {
        const RunKey *k = &RUN_KEYS[i];
        json_t *v = json_object_get(settings, k->name);
        if (!v || key_from_json(k, &saved, v)) {
            err_set(e, "%s: setting \"%s\" is %s", path, k->name, v ? "malformed" : "missing");
            json_decref(root);
            return NULL;
        }
        if (!given[i]) {
            key_from_json(k, o, v);
            continue;
        }
        json_t *mine = key_to_json(k, o);
        int same = json_equal(mine, v);
        if (!same && k->fixed && !list_has(o->override, k->name)) {
            char *a = json_dumps(mine, JSON_ENCODE_ANY), *b = json_dumps(v, JSON_ENCODE_ANY);
            if (k->type == K_F32) {  // as the user would type them, not the double expansion of a float
                free(a), free(b);
                a = xmalloc(32), b = xmalloc(32);
                snprintf(a, 32, "%.9g", json_real_value(mine));
                snprintf(b, 32, "%.9g", (double)(float)json_number_value(v));
            }
            err_set(e, "--%s %s differs from the run's %s (%s); resume with the run's settings or pass --override %s",
                    k->name, a, b, path, k->name);
            free(a);
            free(b);
            json_decref(mine);
            json_decref(root);
            return NULL;
        }
        json_decref(mine);
    }
    return root;
}

// The shards given on a resume must be the run's (by identity; paths may differ) unless
// --override shards.
static int check_run_shards(const json_t *run, const CltData *D, const Options *o, const char *path, Error *e) {
    if (list_has(o->override, "shards")) return 0;
    json_t *saved = json_object_get(run, "shards");
    if (json_array_size(saved) != (size_t)D->n_shards)
        return err_set(e, "%s: the run trained on %zu shard(s), %d given; pass --override shards to change them", path,
                       json_array_size(saved), D->n_shards);
    for (int i = 0; i < D->n_shards; i++) {
        json_t *mine = shard_identity(&D->shards[i]), *theirs = json_array_get(saved, (size_t)i);
        const char *keys[3] = {"bytes", "tokens", "chunks_crc32c"};
        int same = 1;
        for (int k = 0; k < 3; k++)
            same &= json_equal(json_object_get(mine, keys[k]), json_object_get(theirs, keys[k]));
        json_decref(mine);
        if (!same)
            return err_set(e, "%s: not the run's shard %d (%s, per %s); pass --override shards to train on other data",
                           D->shards[i].path, i, json_string_value(json_object_get(theirs, "path")), path);
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Schedules and train state

static float lr_at(const Options *o, int64_t step) {  // step is 0-based
    float lr = o->lr;
    if (o->warmup > 0 && step < o->warmup) lr *= (float)(step + 1) / (float)o->warmup;
    int64_t decay_start = o->steps - o->steps / 5;
    if (step >= decay_start && o->steps > decay_start)
        lr *= (float)(o->steps - step) / (float)(o->steps - decay_start);
    return lr;
}
static float lambda_at(const Options *o, int64_t step) { return o->lam * (float)(step + 1) / (float)o->steps; }

// Where a run is, beside its parameters and Adam moments (train_state.safetensors).
typedef struct {
    int64_t step;
    CltCursor cur;
    double time_s;  // training wall-clock so far, summed over the invocations
    float *silent;  // (L, F) steps since each feature last fired (capped at 2^24: exact in F32), or NULL
} RunState;

#define SILENT_CAP 16777216.0f

// The first non-finite value of the (n,) vectors, named; -1 if none.
static int64_t first_nonfinite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return (int64_t)i;
    return -1;
}

static int save_state(const char *dir, const CltParams *p, const float *m, const float *v, const RunState *rs,
                      Error *e) {
    char path[4400], meta[512];
    snprintf(path, sizeof path, "%s/train_state.safetensors", dir);
    const char *names[3] = {"params", "adam_m", "adam_v"};
    const float *vecs[3] = {p->data, m, v};
    for (int i = 0; i < 3; i++) {
        int64_t bad = first_nonfinite(vecs[i], p->n);
        if (bad >= 0)
            return err_set(e, "%s: not saving %s[%lld] = %g", path, names[i], (long long)bad, (double)vecs[i][bad]);
    }
    snprintf(meta, sizeof meta,
             "{\"step\": \"%lld\", \"epoch\": \"%lld\", \"pool\": \"%lld\", \"batch\": \"%lld\", \"L\": \"%d\", \"d\": "
             "\"%d\", \"F\": \"%d\", "
             "\"time_s\": \"%.3f\"}",
             (long long)rs->step, (long long)rs->cur.epoch, (long long)rs->cur.pool, (long long)rs->cur.batch, p->L,
             p->d, p->F, rs->time_s);
    StWriteTensor t[4] = {{"params", ST_F32, 1, {(int64_t)p->n}, p->data},
                          {"adam_m", ST_F32, 1, {(int64_t)p->n}, m},
                          {"adam_v", ST_F32, 1, {(int64_t)p->n}, v},
                          {"silent_steps", ST_F32, 2, {p->L, p->F}, rs->silent}};
    return safetensors_write(path, t, rs->silent ? 4 : 3, meta, e);
}

// Reads dir's state into p, m, v and rs (rs->silent, if not NULL, (L, F): 0 where the state has
// none). The metadata must be exact integers in range; L, d, F those of p.
static int load_state(const char *dir, CltParams *p, float *m, float *v, RunState *rs, Error *e) {
    char path[4400];
    snprintf(path, sizeof path, "%s/train_state.safetensors", dir);
    SafeTensors st;
    if (safetensors_open(&st, path, e)) return -1;
    CltStateMeta sm;
    int rc = clt_state_meta_parse(path, st.metadata_json, &sm, e);
    if (!rc && (sm.L != p->L || sm.d != p->d || sm.F != p->F))
        rc = err_set(e, "%s: state is for L=%d d=%d F=%d, this run is L=%d d=%d F=%d", path, sm.L, sm.d, sm.F, p->L,
                     p->d, p->F);
    if (!rc) rs->time_s = sm.time_s;
    const char *names[3] = {"params", "adam_m", "adam_v"};
    float *dst[3] = {p->data, m, v};
    for (int i = 0; i < 3 && !rc; i++) {
        const StTensor *t = safetensors_find(&st, names[i]);
        if (!t) rc = err_set(e, "%s: missing \"%s\"", path, names[i]);
        else rc = safetensors_to_f32(&st, t, dst[i], p->n, e);
    }
    if (!rc && rs->silent) {
        const StTensor *t = safetensors_find(&st, "silent_steps");
        if (t) rc = safetensors_to_f32(&st, t, rs->silent, (uint64_t)p->L * p->F, e);
        else memset(rs->silent, 0, (size_t)p->L * p->F * sizeof(float));
    }
    safetensors_close(&st);
    if (rc) return -1;
    rs->step = sm.step;
    rs->cur = (CltCursor){sm.epoch, sm.pool, sm.batch};
    return 0;
}

// TopK modes: θ of layer l (all its features; log θ gets no gradient, so Adam leaves it alone) is
// the running mean of the batches' cutoffs, w->cut_stat (clt.h): the plain mean over the first 50
// steps, then an exponential average over about the last 50, so the saved thresholds describe the
// encoder at the end of the run. Every rank sees the same cutoffs, so the replicas agree.
static void update_topk_thresholds(CltParams *p, const CltWork *w, int64_t step) {
    double rate = step < 50 ? 1.0 / (double)(step + 1) : 0.02;
    for (int l = 0; l < p->L; l++) {
        double prev = step == 0 ? w->cut_stat[l] : exp((double)p->log_theta[l][0]);
        double theta = prev + rate * (w->cut_stat[l] - prev);
        float lt = logf((float)(theta > 1e-6 ? theta : 1e-6));
        for (int i = 0; i < p->F; i++) p->log_theta[l][i] = lt;
    }
}

// One training step's results for the metrics: the loss terms and, per target/source layer, the
// squared error and variance sums (NMSE), the active pairs, and which features fired ((L, F) bytes).
typedef struct {
    CltLossTerms lt;
    double *err, *var;  // (L,)
    int64_t *active;    // (L,)
    uint8_t *fired;     // (L, F_local)
} StepStats;

typedef struct {
    const Options *o;
    const CltData *D;
    const CltShard *sh;
    CltParams *p, *g;
    float *m, *v;
    CltWork *w;
    CltGpu *gpu;        // --device cuda: the state lives on the GPU (p, m, v are synced at checkpoints)
    const Comm *gcomm;  // the GPU step's communicator (NCCL across ranks, else the CPU one)
} Trainer;

typedef struct {
    const CltData *D;
    float *const *y;
    int B;
    double *var;
} VarCtx;

// Σ‖y_k − ȳ_k‖² of target layers [begin, end) (the NMSE's denominator), a layer per thread.
static void target_variance(void *arg, size_t begin, size_t end) {
    const VarCtx *c = arg;
    int d = c->D->d;
    for (size_t k = begin; k < end; k++) {
        const float *mean = c->D->mean_out + k * d, *y = c->y[k];
        double v = 0;
        for (int t = 0; t < c->B; t++)
            for (int j = 0; j < d; j++) {
                double dv = (double)y[(size_t)t * d + j] - mean[j];
                v += dv * dv;
            }
        c->var[k] = v;
    }
}

// The step on the CPU (libcommon/clt/clt.c, sharded by clt_shard.c).
static int step_cpu(Trainer *T, float **x, float **y, const CltLossParams *lp, int64_t step, StepStats *st, Error *e) {
    const CltShard *sh = T->sh;
    CltWork *w = T->w;
    int L = sh->L, B = w->B, Fl = sh->F_local;
    if (clt_shard_forward(sh, T->p, x, B, w, e) || clt_shard_loss(sh, T->p, y, lp, w, &st->lt, e)) return -1;
    if (!isfinite(st->lt.total)) return 0;  // the caller reports it
    clt_backward(T->p, x, y, lp, w, T->g);
    adam_step(T->p->data, T->g->data, T->m, T->v, T->p->n, lr_at(T->o, step), 0.9f, 0.999f, 1e-8f, step + 1);
    if (T->o->act != CLT_JUMPRELU) update_topk_thresholds(T->p, w, step);
    VarCtx vc = {T->D, y, B, st->var};
    parallel_for((size_t)L, 1, target_variance, &vc);
    memset(st->fired, 0, (size_t)L * Fl);
    for (int k = 0; k < L; k++) {
        st->err[k] = w->sq_err[k];  // clt_loss's squared error (from the full ŷ, also when sharded)
        st->active[k] = w->act_off[k][B];
        for (int32_t q = 0; q < w->act_off[k][B]; q++) st->fired[(size_t)k * Fl + w->act_idx[k][q]] = 1;
    }
    return 0;
}

// The same step on the GPU (libcommon/clt/clt_cuda.h): only the batch goes up and the statistics come down.
static int step_gpu(Trainer *T, float **x, float **y, const CltLossParams *lp, int64_t step, StepStats *st, Error *e) {
    if (clt_gpu_set_batch(T->gpu, x, y, e) || clt_gpu_forward(T->gpu, T->gcomm, e) ||
        clt_gpu_loss(T->gpu, T->gcomm, lp, &st->lt, e))
        return -1;
    if (!isfinite(st->lt.total)) return 0;
    if (clt_gpu_batch_stats(T->gpu, st->err, st->var, st->active, st->fired, e) || clt_gpu_backward(T->gpu, lp, e) ||
        clt_gpu_adam(T->gpu, lr_at(T->o, step), 0.9f, 0.999f, 1e-8f, step + 1, e))
        return -1;
    return 0;
}

// Brings the GPU's parameters and moments to the host vectors a checkpoint writes.
static void trainer_sync_host(Trainer *T) {
    Error e;
    if (T->gpu && clt_gpu_get_state(T->gpu, T->p->data, T->m, T->v, &e)) fatal_err(&e);
}

// Ends the job over an error every rank has (or rank 0 has and the others were told of): rank 0
// prints it, the others leave quietly, so a sharded run fails with one message as a single one does.
static void fatal_ranks(const Comm *c, const Error *e) {
    if (c->rank == 0) fatal_err(e);
    exit(1);
}

// The (L, F_local) silent-step counts of every rank into rank 0's (L, F) (full: ignored elsewhere).
static int gather_silent(const CltShard *sh, const float *local, float *full, Error *e) {
    const Comm *c = sh->comm;
    size_t n = (size_t)sh->L * sh->F_local;
    float *all = c->rank == 0 ? xmalloc((size_t)sh->L * sh->F * sizeof(float)) : NULL;
    int rc = comm_gatherv_f32(c, local, n, all, 0, e);
    for (int r = 0; !rc && c->rank == 0 && r < c->size; r++)  // rank-major (r, l, i) to (l, r·F_local + i)
        for (int l = 0; l < sh->L; l++)
            memcpy(full + (size_t)l * sh->F + (size_t)r * sh->F_local, all + (size_t)r * n + (size_t)l * sh->F_local,
                   (size_t)sh->F_local * sizeof(float));
    free(all);
    return rc;
}

static int scatter_silent(const CltShard *sh, const float *full, float *local, Error *e) {
    const Comm *c = sh->comm;
    size_t n = (size_t)sh->L * sh->F_local;
    float *all = c->rank == 0 ? xmalloc((size_t)sh->L * sh->F * sizeof(float)) : NULL;
    for (int r = 0; c->rank == 0 && r < c->size; r++)
        for (int l = 0; l < sh->L; l++)
            memcpy(all + (size_t)r * n + (size_t)l * sh->F_local, full + (size_t)l * sh->F + (size_t)r * sh->F_local,
                   (size_t)sh->F_local * sizeof(float));
    int rc = comm_scatterv_f32(c, all, local, n, 0, e);
    free(all);
    return rc;
}

typedef struct {
    const CltParams *p;
    const float *m, *v;
    const RunState *rs;
    const char *run_json;
} StateFiles;

static int write_state_files(const char *stage, void *ctx, Error *e) {
    const StateFiles *sf = ctx;
    if (save_state(stage, sf->p, sf->m, sf->v, sf->rs, e)) return -1;
    return write_text_atomic(stage, "run.json", sf->run_json, e);
}

// The parameters as the checkpoint would hold them are finite, thresholds in (0, inf): otherwise
// an error naming the first bad value (a diverging run must not replace the last good checkpoint).
static int check_params(const CltParams *p, const float *m, const float *v, Error *e) {
    for (int l = 0; l < p->L; l++) {
        const char *names[4] = {"W_enc", "b_enc", "W_dec", "b_dec"};
        const float *vals[4] = {p->W_enc[l], p->b_enc[l], p->W_dec[l], p->b_dec[l]};
        size_t lens[4] = {(size_t)p->F * p->d, (size_t)p->F, (size_t)p->F * (p->L - l) * p->d, (size_t)p->d};
        for (int t = 0; t < 4; t++) {
            int64_t bad = first_nonfinite(vals[t], lens[t]);
            if (bad >= 0) return err_set(e, "%s_%d[%lld] = %g", names[t], l, (long long)bad, (double)vals[t][bad]);
        }
        for (int i = 0; i < p->F; i++) {
            float th = expf(p->log_theta[l][i]);
            if (!isfinite(th) || !(th > 0)) return err_set(e, "threshold_%d[%d] = %g", l, i, (double)th);
        }
    }
    int64_t bad = first_nonfinite(m, p->n);
    if (bad >= 0) return err_set(e, "adam_m[%lld] = %g", (long long)bad, (double)m[bad]);
    bad = first_nonfinite(v, p->n);
    if (bad >= 0) return err_set(e, "adam_v[%lld] = %g", (long long)bad, (double)v[bad]);
    return 0;
}

// How a stop explains the checkpoint left behind.
static void kept_note(char *buf, size_t n, const Options *o, int64_t ckpt_step) {
    if (ckpt_step >= 0)
        snprintf(buf, n, "the last good checkpoint in %s (step %lld) is kept", o->out_dir, (long long)ckpt_step);
    else snprintf(buf, n, "no checkpoint was written");
}

// Collective: the shards (parameters, Adam moments, silent counts) are gathered to rank 0, which
// checks them and writes the full CLT, train state and run config as one set (clt_save_checkpoint),
// so the files do not depend on the rank count. Rank 0 holds 3 full vectors meanwhile. *ckpt_step
// becomes rs->step on success; a non-finite parameter ends the run.
static void save_checkpoint(const Options *o, const CltData *D, const CltShard *sh, const CltParams *p, const float *m,
                            const float *v, const RunState *rs, const char *run_json, int64_t *ckpt_step) {
    Error e;
    const Comm *c = sh->comm;
    CltParams full;
    float *fm = NULL, *fv = NULL, *fsil = NULL;
    RunState frs = *rs;
    if (c->size > 1) {
        if (c->rank == 0) {
            clt_params_init(&full, sh->L, sh->d, sh->F, NULL);
            fm = xmalloc(full.n * sizeof(float));
            fv = xmalloc(full.n * sizeof(float));
            fsil = xmalloc((size_t)sh->L * sh->F * sizeof(float));
        }
        if (clt_shard_gather(sh, p->data, c->rank == 0 ? full.data : NULL, &e) || clt_shard_gather(sh, m, fm, &e) ||
            clt_shard_gather(sh, v, fv, &e) || gather_silent(sh, rs->silent, fsil, &e))
            fatal_err(&e);
        if (c->rank == 0) p = &full, m = fm, v = fv, frs.silent = fsil;
    }
    int rc = 0;
    if (c->rank == 0) {
        char note[4400];
        kept_note(note, sizeof note, o, *ckpt_step);
        if (check_params(p, m, v, &e)) {
            rc = err_prefix(&e, "step %lld: the parameters are not finite after the update", (long long)rs->step);
            size_t n = strlen(e.msg);
            if (n < sizeof e.msg) snprintf(e.msg + n, sizeof e.msg - n, "; %.600s", note);
        } else {
            char trained_as[64], model_name[256];
            snprintf(trained_as, sizeof trained_as, "%s k=%d", act_name(o->act), o->k);
            clt_model_name(D->shards[0].model_id, model_name, sizeof model_name);  // a name, not a local path
            CltSaveInfo info = {.model_name = model_name, .input_hook = clt_input_hook(D->shards[0].in_hook),
                                .output_hook = "hook_mlp_out", .trained_as = o->act == CLT_JUMPRELU ? NULL : trained_as,
                                .model_hash = D->shards[0].model_hash};
            StateFiles sf = {p, m, v, &frs, run_json};
            rc = clt_save_checkpoint(o->out_dir, p, D->s_in, D->s_out, &info, rs->step, write_state_files, &sf, &e);
        }
    }
    if (c->size > 1) {
        if (c->rank == 0) clt_params_free(&full);
        free(fm);
        free(fv);
        free(fsil);
        if (comm_bcast(c, &rc, sizeof rc, 0, &e)) fatal_err(&e);  // rank 0's verdict, to every rank
        if (rc && c->rank) err_set(&e, "rank 0 could not write the checkpoint");
    }
    if (rc) fatal_ranks(c, &e);
    *ckpt_step = rs->step;
}

// --resume: rank 0 reads the full state and scatters the slices. The state is the full CLT, so any
// rank count dividing F can resume it (bit-identical continuation only with the same count: the
// summation order of the reconstruction depends on it). rs->silent is this rank's (L, F_local).
static int load_state_sharded(const Options *o, const CltShard *sh, CltParams *p, float *m, float *v, RunState *rs,
                              Error *e) {
    const Comm *c = sh->comm;
    if (c->size == 1) return load_state(o->out_dir, p, m, v, rs, e);
    CltParams full;
    float *fm = NULL, *fv = NULL, *fsil = NULL, *local_sil = rs->silent;
    double hdr[6] = {0};  // rc, step, epoch, pool, batch, time_s (integers below 2^53: exact)
    if (c->rank == 0) {
        clt_params_init(&full, sh->L, sh->d, sh->F, NULL);
        fm = xmalloc(full.n * sizeof(float));
        fv = xmalloc(full.n * sizeof(float));
        fsil = xmalloc((size_t)sh->L * sh->F * sizeof(float));
        rs->silent = fsil;
        hdr[0] = load_state(o->out_dir, &full, fm, fv, rs, e);
        rs->silent = local_sil;
        hdr[1] = (double)rs->step, hdr[2] = (double)rs->cur.epoch, hdr[3] = (double)rs->cur.pool,
        hdr[4] = (double)rs->cur.batch;
        hdr[5] = rs->time_s;
    }
    int rc = comm_bcast(c, hdr, sizeof hdr, 0, e);
    if (!rc && hdr[0]) rc = c->rank == 0 ? -1 : err_set(e, "rank 0 could not read the train state");
    if (!rc) {
        rs->step = (int64_t)hdr[1];
        rs->cur = (CltCursor){(int64_t)hdr[2], (int64_t)hdr[3], (int64_t)hdr[4]};
        rs->time_s = hdr[5];
        rc = clt_shard_scatter(sh, c->rank == 0 ? full.data : NULL, p->data, e);
        if (!rc) rc = clt_shard_scatter(sh, fm, m, e);
        if (!rc) rc = clt_shard_scatter(sh, fv, v, e);
        if (!rc) rc = scatter_silent(sh, fsil, local_sil, e);
    }
    if (c->rank == 0) clt_params_free(&full);
    free(fm);
    free(fv);
    free(fsil);
    return rc;
}

// SIGINT/SIGTERM: the signal's number; the loop finishes its step, saves and exits 128 + it. The
// handler resets itself, so a second Ctrl-C ends the process at once.
static volatile sig_atomic_t stop_signal;
static void on_stop_signal(int sig) { stop_signal = sig; }

// ---------------------------------------------------------------------------------------------

int main(int argc, char **argv) {
    int sub = clt_cmds_dispatch(argc, argv);  // synth, eval, eval-synth, report (tools/clt-fit/cmds.c)
    if (sub >= 0) return sub;
    cli_standard(argc, argv, "clt-fit", USAGE);
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"features", required_argument, 0, 'F'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"steps", required_argument, 0, 'n'},
                                         {"lr", required_argument, 0, 'l'},
                                         {"lambda", required_argument, 0, 'L'},
                                         {"c", required_argument, 0, 'c'},
                                         {"lambda-p", required_argument, 0, 'P'},
                                         {"bandwidth", required_argument, 0, 'w'},
                                         {"theta0", required_argument, 0, 't'},
                                         {"warmup", required_argument, 0, 'W'},
                                         {"pool-chunks", required_argument, 0, 'k'},
                                         {"seed", required_argument, 0, 's'},
                                         {"log-every", required_argument, 0, 'g'},
                                         {"metrics", required_argument, 0, 'm'},
                                         {"save-every", required_argument, 0, 'S'},
                                         {"save-interval", required_argument, 0, 'I'},
                                         {"override", required_argument, 0, 'O'},
                                         {"resume", no_argument, 0, 'R'},
                                         {"run-steps", required_argument, 0, 'r'},
                                         {"activation", required_argument, 0, 'A'},
                                         {"k", required_argument, 0, 'K'},
                                         {"device", required_argument, 0, 'D'},
                                         {"bf16", no_argument, 0, 'H'},
                                         {0, 0, 0, 0}};
    Options o = {.batch = 1024,
                 .steps = 1000,
                 .lr = 2e-4f,
                 .lam = 1.0f,
                 .c = 4.0f,
                 .lam_p = 3e-6f,
                 .eps = 2.0f,
                 .theta0 = 0.1f,
                 .warmup = -1,
                 .pool_chunks = 8,
                 .log_every = 50,
                 .k = 32,
                 .save_interval = 600};
    int given[N_RUN_KEYS] = {0};  // which run settings the command line sets
    int c, li = -1;
    while ((c = getopt_long(argc, argv, "o:", opts, &li)) != -1) {
        switch (c) {
            case 'o': o.out_dir = optarg; break;
            case 'F': o.features = (int)cli_parse_int("--features", optarg, 1, 1 << 26); break;
            case 'b': o.batch = (int)cli_parse_int("--batch", optarg, 1, 1 << 24); break;
            case 'n': o.steps = cli_parse_int("--steps", optarg, 1, INT64_MAX / 4); break;
            case 'l': o.lr = (float)cli_parse_double("--lr", optarg, 0, FLT_MAX); break;
            case 'L': o.lam = (float)cli_parse_double("--lambda", optarg, 0, FLT_MAX); break;
            case 'c': o.c = (float)cli_parse_double("--c", optarg, 0, FLT_MAX); break;
            case 'P': o.lam_p = (float)cli_parse_double("--lambda-p", optarg, 0, FLT_MAX); break;
            case 'w': o.eps = (float)cli_parse_double("--bandwidth", optarg, 0, FLT_MAX); break;
            case 't': o.theta0 = (float)cli_parse_double("--theta0", optarg, 0, FLT_MAX); break;
            case 'W': o.warmup = cli_parse_int("--warmup", optarg, 0, INT64_MAX / 4); break;
            case 'k': o.pool_chunks = (int)cli_parse_int("--pool-chunks", optarg, 1, 1 << 20); break;
            case 's': o.seed = (uint64_t)cli_parse_int("--seed", optarg, 0, INT64_MAX); break;
            case 'g': o.log_every = (int)cli_parse_int("--log-every", optarg, 1, 1 << 30); break;
            case 'm': o.metrics_path = optarg; break;
            case 'S': o.save_every = cli_parse_int("--save-every", optarg, 1, INT64_MAX / 4); break;
            case 'I':
                o.save_interval = cli_parse_double("--save-interval", optarg, 0, 1e9);
                if (!(o.save_interval >= 0) || !isfinite(o.save_interval))
                    cli_usage_error("clt-fit", "--save-interval must be >= 0 seconds");
                break;
            case 'O': o.override = optarg; break;
            case 'R': o.resume = 1; break;
            case 'r': o.run_steps = cli_parse_int("--run-steps", optarg, 1, INT64_MAX / 4); break;
            case 'A':
                if (!strcmp(optarg, "jumprelu")) o.act = CLT_JUMPRELU;
                else if (!strcmp(optarg, "topk")) o.act = CLT_TOPK;
                else if (!strcmp(optarg, "batchtopk")) o.act = CLT_BATCHTOPK;
                else cli_usage_error("clt-fit", "--activation must be jumprelu, topk or batchtopk");
                break;
            case 'K': o.k = (int)cli_parse_int("--k", optarg, 1, 1 << 24); break;
            case 'H': o.bf16 = 1; break;
            case 'D':
                if (!strcmp(optarg, "cuda")) o.cuda = 1;
                else if (strcmp(optarg, "cpu")) cli_usage_error("clt-fit", "--device must be cpu or cuda");
                break;
            default: cli_usage_error("clt-fit", "bad option");
        }
        if (li >= 0 && key_index(opts[li].name) >= 0) given[key_index(opts[li].name)] = 1;
        li = -1;
    }
    if (!o.out_dir) cli_usage_error("clt-fit", "missing -o/--output");
    if (o.override && !o.resume) cli_usage_error("clt-fit", "--override goes with --resume");
    for (const char *q = o.override; q && *q;) {  // every name in --override is a setting
        const char *end = strchr(q, ',');
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(end ? end - q : (long)strlen(q)), q);
        if (strcmp(key, "shards") && (key_index(key) < 0 || !RUN_KEYS[key_index(key)].fixed))
            cli_usage_error(
                "clt-fit",
                "--override: '%s' is not a training setting (features, batch, steps, lr, lambda, ...; shards)", key);
        q = end ? end + 1 : NULL;
    }

    // --resume: finish an interrupted checkpoint switch, drop orphaned temporary files, check the
    // checkpoint's files against its manifest, and take the run's settings from run.json
    Error e = {{0}};
    json_t *run = NULL;
    int64_t ckpt_step = -1;  // the step of the checkpoint on disk (-1: none), for messages
    int n_shards = argc - optind;
    char **shard_paths = argv + optind;
    if (o.resume) {
        int removed = 0;
        if (access(o.out_dir, F_OK))
            fatal("%s/train_state.safetensors: cannot open (no checkpoint to resume)", o.out_dir);
        if (dir_txn_recover(o.out_dir, &removed, &e) || clt_checkpoint_verify(o.out_dir, &ckpt_step, &e) < 0)
            fatal_err(&e);
        if (removed) fprintf(stderr, "clt-fit: removed %d orphaned temporary file(s) from %s\n", removed, o.out_dir);
        run = run_config_apply(&o, given, &e);
        if (!run && e.msg[0]) fatal_err(&e);
        if (run && !n_shards) {  // the run's own shards
            json_t *list = json_object_get(run, "shards");
            n_shards = (int)json_array_size(list);
            shard_paths = xcalloc((size_t)n_shards + 1, sizeof(char *));
            for (int i = 0; i < n_shards; i++) {
                const char *sp = json_string_value(json_object_get(json_array_get(list, (size_t)i), "path"));
                if (!sp) fatal("%s/run.json: shard %d has no path", o.out_dir, i);
                shard_paths[i] = (char *)sp;
            }
        }
    }
    if (!o.resume) {  // a new run over an old one's checkpoint: say so (it is replaced at the first save)
        char sp[4200];
        snprintf(sp, sizeof sp, "%s/train_state.safetensors", o.out_dir);
        if (!access(sp, F_OK))
            warn("%s holds a checkpoint; this new run replaces it (--resume continues it instead)", o.out_dir);
    }
    if (!n_shards) cli_usage_error("clt-fit", "no activation shards given");
    if (!(o.theta0 > 0) || !(o.eps > 0) || !(o.lr > 0))
        cli_usage_error("clt-fit", "--theta0, --bandwidth and --lr must be positive");
    if (o.warmup < 0) o.warmup = o.steps / 100;
    // (usage errors first: they hold whether or not this build has CUDA)
    if (o.bf16 && !o.cuda)
        cli_usage_error("clt-fit", "--bf16 goes with --device cuda (the CPU trainer computes in fp32)");
    if (o.cuda && o.act != CLT_JUMPRELU)
        cli_usage_error("clt-fit", "--device cuda trains --activation jumprelu only; topk/batchtopk run on the CPU");
    int n_dev = o.cuda ? cuda_devices(&e) : 0;  // per node: every rank says it (not only rank 0)
    if (n_dev < 0) fatal("--device cuda: %s", e.msg);

    // ranks: MPI only when a launcher started us (a plain run never initializes MPI)
    Comm comm;
    comm_init_single(&comm);
#ifdef USE_MPI
    if (comm_launcher_size() > 0 && comm_init_mpi(&comm, &e)) fatal_err(&e);
#else
    if (comm_launcher_size() > 1)
        fatal("built without MPI (mpicc not found at build time): cannot run as %d ranks", comm_launcher_size());
#endif
    CltData D;  // every rank reads the same batches
    if (clt_data_open(&D, shard_paths, n_shards, o.pool_chunks, o.seed, &e)) fatal_err(&e);
    char run_path[4200];
    snprintf(run_path, sizeof run_path, "%s/run.json", o.out_dir);
    if (run && argc - optind > 0 && check_run_shards(run, &D, &o, run_path, &e)) fatal_err(&e);
    int L = D.L, d = D.d, F = o.features ? o.features : 8 * d, B = o.batch;
    char *run_json = run_config_text(&o, &D, F);
    uint64_t max_pool = clt_data_max_pool_tokens(&D);
    if ((uint64_t)B > max_pool)
        fatal("--batch %d is more than the %llu tokens a pool of --pool-chunks %d chunks holds at most: lower --batch "
              "or raise --pool-chunks", B, (unsigned long long)max_pool, o.pool_chunks);
    CltShard sh;
    if (clt_shard_init(&sh, &comm, L, d, F, &e)) fatal_ranks(&comm, &e);
    int Fl = sh.F_local;  // this rank's features per layer (F with one rank)
    if (o.act != CLT_JUMPRELU && o.k > F) {
        err_set(&e, "--k %d exceeds the %d features per layer", o.k, F);
        fatal_ranks(&comm, &e);
    }
    if (comm.rank == 0 && mkdir(o.out_dir, 0777) && access(o.out_dir, W_OK))
        fatal("%s: cannot create the output directory", o.out_dir);
    if (comm.size > 1 && comm.rank == 0)
        fprintf(stderr, "clt-fit: %d ranks x %d features of every layer\n", comm.size, Fl);

    CltParams p, g = {0};
    clt_params_init(&p, L, d, Fl, NULL);
    if (!o.cuda) clt_params_init(&g, L, d, Fl, NULL);  // the GPU keeps its gradients (and work buffers) itself
    float *m = xcalloc(p.n, sizeof(float)), *v = xcalloc(p.n, sizeof(float));
    RunState rs = {.silent = xcalloc((size_t)L * Fl, sizeof(float))};
    if (o.resume) {
        if (load_state_sharded(&o, &sh, &p, m, v, &rs, &e)) fatal_ranks(&comm, &e);
        ckpt_step = rs.step;
        if (comm.rank == 0) fprintf(stderr, "clt-fit: resuming at step %lld\n", (long long)rs.step);
    } else {
        clt_shard_init_random(&sh, &p, o.seed, o.theta0);  // the full CLT's slice: rank-count independent
    }
    int64_t step = rs.step;
    CltCursor cur = rs.cur;
    char metrics_default[4200];
    snprintf(metrics_default, sizeof metrics_default, "%s/metrics.jsonl", o.out_dir);
    const char *metrics_path = o.metrics_path ? o.metrics_path : metrics_default;
    cli_check_not_input(metrics_path, (const char *const *)argv + optind, argc - optind);  // "w" would truncate it
    FILE *mf = NULL;  // rank 0 logs; a resume first drops the rows logged after the checkpoint
    if (comm.rank == 0 && o.resume && clt_metrics_truncate(metrics_path, step, &e)) fatal_err(&e);
    if (comm.rank == 0 && !(mf = fopen(metrics_path, o.resume ? "a" : "w")))
        fatal("%s: cannot open the metrics file", metrics_path);

    FetchJob fetch[2];  // double buffer: the step's batch and the next one
    for (int i = 0; i < 2; i++)
        fetch[i] = (FetchJob){&D, B, alloc_rows(L, (size_t)B * d), alloc_rows(L, (size_t)B * d), cur, 0, {{0}}};
    CltWork w = {0};
    if (!o.cuda) {
        clt_work_init(&w, L, d, Fl, B);
        clt_work_set_activation(&w, o.act, o.k);
    }
    StepStats st = {.err = xmalloc((size_t)L * sizeof(double)), .var = xmalloc((size_t)L * sizeof(double)),
                    .active = xmalloc((size_t)L * sizeof(int64_t)), .fired = xmalloc((size_t)L * Fl)};
    Trainer T = {.o = &o, .D = &D, .sh = &sh, .p = &p, .g = &g, .m = m, .v = v, .w = &w};
    int (*train_step)(Trainer *, float **, float **, const CltLossParams *, int64_t, StepStats *, Error *) = step_cpu;
    GpuCtx gctx;
    Comm nccl;
    int have_nccl = 0;
    if (o.cuda) {
        T.gcomm = &comm;
        if (comm.size > 1) {  // NCCL between the ranks' GPUs, bootstrapped through the MPI Comm
            int local_rank;
            if (comm_local_rank(&comm, &local_rank, &e)) fatal_err(&e);
            int device = local_rank % n_dev;
            if (comm_init_nccl(&nccl, &comm, device, &e)) fatal_ranks(&comm, &e);
            have_nccl = 1;
            T.gcomm = &nccl;
        }
        // local failures (e.g. out of GPU memory on one rank): that rank prints its own error
        if (gpu_ctx_init(&gctx, &e) || clt_gpu_init(&T.gpu, &gctx, L, d, Fl, B, &e) ||
            clt_gpu_set_state(T.gpu, p.data, m, v, &e) || clt_gpu_set_target_mean(T.gpu, D.mean_out, &e) ||
            clt_gpu_set_bf16(T.gpu, o.bf16, &e))
            fatal_err(&e);
        train_step = step_gpu;
    }
    // Ctrl-C / SIGTERM: finish the step, checkpoint, exit (on_stop_signal)
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = (int)SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    Progress prog;
    if (comm.rank == 0) {
        progress_init(&prog, "clt-fit", "steps", 1, (uint64_t)o.steps);
        prog.first = (uint64_t)step;  // a resumed run's rate and ETA count from here
    }
    double t0 = now_seconds(), t_saved = t0, time_base = rs.time_s;
    CltMetrics met;
    clt_metrics_init(&met, L, F, Fl, B, step, rs.silent, t0);
    int64_t stop = o.run_steps && step + o.run_steps < o.steps ? step + o.run_steps : o.steps;
    int now_buf = 0, stopped_by = 0;
    if (step < stop && (fetch_batch(&fetch[0]), fetch[0].rc)) fatal_err(&fetch[0].e);
    for (; step < stop; step++) {
        FetchJob *job = &fetch[now_buf], *next = &fetch[now_buf ^ 1];
        pthread_t fetcher;
        int prefetch = step + 1 < stop;
        next->cur = job->cur;
        if (prefetch && pthread_create(&fetcher, NULL, fetch_batch, next)) fatal("cannot start the data thread");
        float **x = job->x, **y = job->y;
        cur = job->cur;  // after this step's batch: what a checkpoint at step + 1 records
        CltLossParams lp = {o.act == CLT_JUMPRELU ? lambda_at(&o, step) : 0.0f, o.c, o.lam_p, o.eps};
        if (train_step(&T, x, y, &lp, step, &st, &e)) fatal_err(&e);
        CltLossTerms lt = st.lt;
        if (comm.rank == 0) progress_metric(&prog, "loss %.4g  L0 %.1f", lt.total, lt.l0);
        if (!isfinite(lt.total) && comm.rank) exit(1);  // every rank has the same total; rank 0 reports
        if (!isfinite(lt.total)) {
            char note[4400];
            kept_note(note, sizeof note, &o, ckpt_step);
            fatal("step %lld: loss is %g (mse %g, sparsity %g, preact %g); %s", (long long)step, lt.total, lt.mse,
                  lt.sparsity, lt.preact, note);
        }
        clt_metrics_add(&met, step, &lt, st.err, st.var, st.active, st.fired);
        if ((step + 1) % o.log_every == 0 || step + 1 == o.steps) {
            double now = now_seconds();
            if (clt_metrics_log(&met, &comm, mf, metrics_path, step, lp.lam, lr_at(&o, step), now, time_base + now - t0,
                                &e))
                fatal_err(&e);
        }
        // checkpoints: every --save-every steps, every --save-interval seconds, and on a signal
        // (then the loop ends and the final save below writes it); the ranks agree on the time
        // and the signal through rank 0's clock and any rank's signal
        double flags[2] = {comm.rank == 0 && o.save_interval > 0 && now_seconds() - t_saved >= o.save_interval,
                           stop_signal};
        if (comm.size > 1 && comm_allreduce_sum_f64(&comm, flags, 2, &e)) fatal_err(&e);
        int by_steps = o.save_every && (step + 1) % o.save_every == 0;
        if ((by_steps || flags[0] > 0) && !(flags[1] > 0) && step + 1 < stop) {
            trainer_sync_host(&T);
            clt_metrics_silent(&met, step + 1, rs.silent, SILENT_CAP);
            rs.step = step + 1, rs.cur = cur, rs.time_s = time_base + now_seconds() - t0;
            save_checkpoint(&o, &D, &sh, &p, m, v, &rs, run_json, &ckpt_step);
            t_saved = now_seconds();
        }
        if (comm.rank == 0) progress_update(&prog, (uint64_t)step + 1);
        if (prefetch && (pthread_join(fetcher, NULL), next->rc)) fatal_err(&next->e);
        now_buf ^= 1;
        if (flags[1] > 0 && step + 1 < stop) {  // (on the last step the run simply ends)
            stopped_by = stop_signal ? (int)stop_signal : SIGTERM;
            step++;
            break;
        }
    }
    if (comm.rank == 0) progress_finish(&prog);
    trainer_sync_host(&T);
    clt_metrics_silent(&met, step, rs.silent, SILENT_CAP);
    rs.step = step, rs.cur = cur, rs.time_s = time_base + now_seconds() - t0;
    save_checkpoint(&o, &D, &sh, &p, m, v, &rs, run_json, &ckpt_step);
    if (comm.rank == 0)
        fprintf(stderr, "clt-fit: step %lld of %lld (%d tokens each), %d layers x %d features, %.1f s\n",
                (long long)step, (long long)o.steps, B, L, F, now_seconds() - t0);
    if (comm.rank == 0 && stopped_by)
        fprintf(stderr,
                "clt-fit: stopped by %s; checkpoint at step %lld in %s; continue with `clt-fit --resume -o %s`\n",
                stopped_by == SIGINT ? "SIGINT" : "SIGTERM", (long long)step, o.out_dir, o.out_dir);
    if (mf && fclose(mf)) fatal("%s: write error: %s", metrics_path, strerror(errno));
    for (int i = 0; i < 2; i++) free_rows(fetch[i].x, L), free_rows(fetch[i].y, L);
    free(m);
    free(v);
    clt_metrics_free(&met);
    free(rs.silent);
    free(run_json);
    free(st.err); free(st.var); free(st.active); free(st.fired);
    if (shard_paths != argv + optind) free(shard_paths);
    json_decref(run);
    if (T.gpu) {
        clt_gpu_free(T.gpu);
        gpu_ctx_free(&gctx);
    }
    if (have_nccl) comm_free(&nccl);
    clt_work_free(&w);
    clt_params_free(&p);
    clt_params_free(&g);
    clt_data_close(&D);
    clt_shard_free(&sh);
    comm_free(&comm);
    return stopped_by ? 128 + stopped_by : 0;
}
