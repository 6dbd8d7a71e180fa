// test_smollm2.c — SmolLM2-135M-Instruct from its GGUF (Q4_1/Q8_0/F32) through the converter and
// the engine, against transformers loading the same GGUF (tests/golden/smollm2/, from
// tests/ref/make_gguf_goldens.py): logits of three prompts (last position in full, the top 20 of
// every position) within 1e-3 of the largest logit, hidden-state norms of every layer, greedy
// argmax; and the tokenizer's ids on tests/data/tok_corpus.jsonl, both the smollm pre-tokenizer
// (default) and transformers' own GGUF tokenizer (--hf-tokenizer), identical to HF's.
// The GGUF comes from $CLTKIT_SMOLLM2_GGUF or scripts/fetch_smollm2.sh (cached); when neither
// works the test prints SKIP with the reason.
#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "gguf.h"
#include "gguf_llama.h"
#include "gguf_tokenizer.h"
#include "model.h"
#include "safetensors.h"
#include "tokenizer.h"

#define REL_TOL 1e-3
#define N_PROMPTS 3
#define TOPK 20

static Gguf gg;
static char dir[64];
static Model model;
static int model_ok;
static SafeTensors golden;
static Error err;

// The GGUF's path, or NULL with *why set.
static const char *find_gguf(char *buf, size_t cap, char *why, size_t why_cap) {
    const char *env = getenv("CLTKIT_SMOLLM2_GGUF");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        if (access(buf, R_OK) == 0) return buf;
        snprintf(why, why_cap, "$CLTKIT_SMOLLM2_GGUF=%s is not readable", env);
        return NULL;
    }
    FILE *p = popen("bash scripts/fetch_smollm2.sh 2>&1", "r");
    if (!p) {
        snprintf(why, why_cap, "cannot run scripts/fetch_smollm2.sh");
        return NULL;
    }
    char line[2048] = "";
    buf[0] = 0;
    while (fgets(line, sizeof line, p)) snprintf(buf, cap, "%s", line);  // the last line: path or error
    int st = pclose(p);
    buf[strcspn(buf, "\n")] = 0;
    if (st != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        // (an explicit precision: the message may be cut to why_cap, which -O1's -Wformat-truncation wants said)
        snprintf(why, why_cap, "%.*s", (int)why_cap - 1, buf[0] ? buf : "scripts/fetch_smollm2.sh failed");
        return NULL;
    }
    return buf;
}

static void rm_dir(const char *d) {
    DIR *dd = opendir(d);
    struct dirent *ent;
    char p[512];
    while (dd && (ent = readdir(dd))) {
        if (ent->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", d, ent->d_name);
        unlink(p);
    }
    if (dd) closedir(dd);
    rmdir(d);
}

static float *golden_f32(const char *name, size_t *n) {
    const StTensor *t = safetensors_find(&golden, name);
    if (!t) return NULL;
    float *v = malloc(t->numel * sizeof(float));
    if (safetensors_to_f32(&golden, t, v, 0, &err)) { free(v); return NULL; }
    *n = t->numel;
    return v;
}

static void test_convert_and_load(void) {
    snprintf(dir, sizeof dir, "/tmp/cltkit_smollm2_XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    CHECK(gguf_llama_write_hf(&gg, dir, 0, &err) == 0, "%s", err.msg);
    model_ok = model_load(&model, dir, &err) == 0;
    CHECK(model_ok, "model_load: %s", err.msg);
    if (!model_ok) return;
    const ModelConfig *c = &model.cfg;
    CHECK(c->n_layers == 30 && c->d_model == 576 && c->n_heads == 9 && c->n_kv_heads == 3 && c->head_dim == 64 &&
              c->d_ff == 1536 && c->vocab_size == 49152 && c->tie_embeddings && c->rope_theta == 100000.0f &&
              c->bos_id == 1 && c->eos_id == 2,
          "config");
}

static void test_logits_match_hf(void) {
    if (!model_ok) { CHECK(0, "no model"); return; }
    const int L = model.cfg.n_layers, D = model.cfg.d_model, V = model.cfg.vocab_size;
    double worst_last = 0, worst_top = 0, worst_norm = 0;
    for (int p = 0; p < N_PROMPTS; p++) {
        char name[64];
        size_t T, n;
        snprintf(name, sizeof name, "ids.%d", p);
        float *idf = golden_f32(name, &T);
        CHECK(idf != NULL, "golden %s", name);
        if (!idf) continue;
        uint32_t *ids = malloc(T * sizeof *ids);
        for (size_t t = 0; t < T; t++) ids[t] = (uint32_t)idf[t];
        float *logits = malloc(T * (size_t)V * sizeof(float)), *final_hidden = malloc(T * (size_t)D * sizeof(float));
        float **resid = calloc((size_t)L, sizeof *resid);
        for (int l = 0; l < L; l++) resid[l] = malloc(T * (size_t)D * sizeof(float));
        ForwardOutputs out = {.resid_pre = resid, .final_hidden = final_hidden, .logits = logits};
        ForwardState *st = forward_state_new(&model, 1, (int)T);
        CHECK(model_forward(&model, st, ids, 1, (int)T, &out, &err) == 0, "%s", err.msg);

        // last position, every logit: |ours - HF| <= 1e-3 * max |HF|
        snprintf(name, sizeof name, "logits_last.%d", p);
        float *last = golden_f32(name, &n);
        CHECK(last && n == (size_t)V, "golden %s", name);
        if (last) {
            double mx = 0, md = 0;
            const float *ours = logits + (T - 1) * (size_t)V;
            size_t am = 0, am_g = 0;
            for (int v = 0; v < V; v++) {
                mx = fmax(mx, fabs(last[v]));
                md = fmax(md, fabs((double)ours[v] - last[v]));
                if (ours[v] > ours[am]) am = (size_t)v;
                if (last[v] > last[am_g]) am_g = (size_t)v;
            }
            CHECK(md <= REL_TOL * mx, "prompt %d last logits: max diff %g, max |logit| %g", p, md, mx);
            CHECK(am == am_g, "prompt %d argmax %zu vs HF %zu", p, am, am_g);
            worst_last = fmax(worst_last, md / mx);
        }
        free(last);
        // every position: the logits of HF's top 20 ids
        float *tid, *tlog;
        size_t n1, n2;
        snprintf(name, sizeof name, "top_ids.%d", p);
        tid = golden_f32(name, &n1);
        snprintf(name, sizeof name, "top_logits.%d", p);
        tlog = golden_f32(name, &n2);
        CHECK(tid && tlog && n1 == T * TOPK && n2 == n1, "golden top-%d of prompt %d", TOPK, p);
        for (size_t t = 0; tid && tlog && t < T; t++) {
            double mx = fabs(tlog[t * TOPK]), md = 0;
            for (int k = 0; k < TOPK; k++) {
                mx = fmax(mx, fabs(tlog[t * TOPK + k]));
                md = fmax(md, fabs((double)logits[t * (size_t)V + (size_t)tid[t * TOPK + k]] - tlog[t * TOPK + k]));
            }
            CHECK(md <= REL_TOL * mx, "prompt %d position %zu top-%d logits: max diff %g (max %g)", p, t, TOPK, md, mx);
            worst_top = fmax(worst_top, md / mx);
        }
        free(tid);
        free(tlog);
        // hidden-state norms: hidden_states[l] = resid_pre[l], [L] = after the final norm
        snprintf(name, sizeof name, "hidden_norm.%d", p);
        float *hn = golden_f32(name, &n);
        CHECK(hn && n == (size_t)(L + 1) * T, "golden %s", name);
        for (int l = 0; hn && l <= L; l++)
            for (size_t t = 0; t < T; t++) {
                const float *x = l < L ? resid[l] + t * (size_t)D : final_hidden + t * (size_t)D;
                double s = 0;
                for (int d = 0; d < D; d++) s += (double)x[d] * x[d];
                double want = hn[(size_t)l * T + t], rel = fabs(sqrt(s) - want) / want;
                CHECK(rel <= REL_TOL, "prompt %d layer %d position %zu: norm %g vs HF %g", p, l, t, sqrt(s), want);
                worst_norm = fmax(worst_norm, rel);
            }
        free(hn);
        forward_state_free(st);
        for (int l = 0; l < L; l++) free(resid[l]);
        free(resid);
        free(logits);
        free(final_hidden);
        free(ids);
        free(idf);
    }
    printf("  smollm2: max |logit - HF| / max |logit|: last position %.2e, top-%d of all positions %.2e; "
           "hidden norms rel %.2e\n", worst_last, TOPK, worst_top, worst_norm);
}

// ids lists from the golden line, key or (when absent) fallback
static json_t *ids_of(json_t *rec, const char *key, const char *fallback) {
    json_t *v = json_object_get(rec, key);
    return v ? v : json_object_get(rec, fallback);
}

static void check_corpus(const Tokenizer *t, const char *key, int match_special, const char *label) {
    FILE *fc = fopen("tests/data/tok_corpus.jsonl", "r"), *fg = fopen("tests/golden/smollm2/tok.jsonl", "r");
    CHECK(fc && fg, "corpus or goldens missing");
    if (!fc || !fg) { if (fc) fclose(fc); if (fg) fclose(fg); return; }
    char *lc = NULL, *lg = NULL;
    size_t cc = 0, cg = 0;
    int docs = 0, bad = 0;
    TokScratch *s = tokscratch_new();
    while (getline(&lc, &cc, fc) > 0 && getline(&lg, &cg, fg) > 0) {
        json_t *doc = json_loads(lc, JSON_ALLOW_NUL, NULL), *rec = json_loads(lg, 0, NULL);
        const char *text = json_string_value(json_object_get(doc, "text"));
        size_t len = json_string_length(json_object_get(doc, "text"));
        json_t *want = ids_of(rec, key, "ids");
        TokIds ids = {0};
        TokEncodeOptions o = {match_special, 0};
        int ok = text && tokenizer_encode(t, s, text, len, &o, &ids, &err) == 0 && ids.n == json_array_size(want);
        for (size_t i = 0; ok && i < ids.n; i++)
            ok = ids.ids[i] == (uint32_t)json_integer_value(json_array_get(want, i));
        if (!ok && bad++ < 3) CHECK(0, "%s: document %d differs from HF", label, docs);
        tokids_free(&ids);
        json_decref(doc);
        json_decref(rec);
        docs++;
    }
    tokscratch_free(s);
    free(lc);
    free(lg);
    fclose(fc);
    fclose(fg);
    CHECK(docs == 243 && bad == 0, "%s: %d of %d documents differ", label, bad, docs);
}

static void test_tokenizer_matches_hf(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    Tokenizer *t = tokenizer_load(path, &err);
    CHECK(t != NULL, "%s", err.msg);
    if (!t) return;
    check_corpus(t, "ids", 0, "smollm pre-tokenizer");
    check_corpus(t, "ids_special", 1, "smollm pre-tokenizer, special tokens matched");
    tokenizer_free(t);
    char *json = NULL;
    CHECK(gguf_tokenizer_json(&gg, 1, &json, &err) == 0, "%s", err.msg);
    t = json ? tokenizer_load_json(json, strlen(json), "hf-tokenizer", &err) : NULL;
    free(json);
    CHECK(t != NULL, "%s", err.msg);
    if (!t) return;
    check_corpus(t, "ids_hf", 0, "transformers' GGUF tokenizer (--hf-tokenizer)");
    tokenizer_free(t);
}

int main(void) {
    char path[4096], why[2048];
    if (!find_gguf(path, sizeof path, why, sizeof why)) {
        printf("SKIP smollm2 (GGUF unavailable): %s\n", why);
        return 0;
    }
    if (gguf_open(&gg, path, &err)) {
        printf("FAIL test_smollm2_open: %s\n", err.msg);
        return 1;
    }
    if (safetensors_open(&golden, "tests/golden/smollm2/logits.safetensors", &err)) {
        printf("FAIL test_smollm2_goldens: %s\n", err.msg);
        return 1;
    }
    RUN_TEST(test_convert_and_load);
    RUN_TEST(test_logits_match_hf);
    RUN_TEST(test_tokenizer_matches_hf);
    if (model_ok) model_free(&model);
    rm_dir(dir);
    safetensors_close(&golden);
    gguf_close(&gg);
    return test_summary();
}
