// test_generate.c — text generation: the KV-cache decoder against the full forward pass (every
// step's logits, tiny Llama 3 / Gemma 2 / GPT-2 checkpoints and the real stories260K), greedy
// continuations against transformers' generate() (tests/golden/generate/tiny.json), stop strings
// and streaming, the sampler's properties, and the ChatML template against apply_chat_template
// (tests/golden/generate/smollm2.json; both from tests/ref/make_generate_goldens.py).
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chat.h"
#include "check.h"
#include "tmpdir.h"
#include "generate.h"
#include "llama2c.h"
#include "matmul.h"
#include "sampler.h"
#include "spm.h"

static const char *TINY[] = {"llama3", "llama3_bf16", "gemma2", "gpt2", "gpt2_scaled", "gpt2_untied"};
#define N_TINY ((int)(sizeof TINY / sizeof *TINY))

// stories260K converted from llama2.c into a temporary directory (model + tokenizer.json).
static TmpDir st_tmp;
static const char *st_dir = st_tmp.dir;
static int stories_ready(void) {
    static int state = 0;  // 0 untried, 1 ready, -1 failed, 2 data missing (skip)
    if (state == 2) {
        SKIP_TEST("needs %s/models/stories260K (not found; `make test-data` fetches it)", test_shared_dir());
        return 0;
    }
    if (state) return state > 0;
    state = 2;
    char ckpt[512], spm[512], p[600];
    if (!test_need_shared(ckpt, sizeof ckpt, "models/stories260K/stories260K.bin") ||
        !test_need_shared(spm, sizeof spm, "models/stories260K/tok512.model"))
        return 0;
    state = -1;
    tmp_open(&st_tmp, "gen");
    Llama2cModel lm;
    Error e;
    if (llama2c_open(&lm, ckpt, &e)) { printf("  %s\n", e.msg); return 0; }
    int rc = llama2c_write_hf(&lm, st_dir, &e);
    llama2c_free(&lm);
    snprintf(p, sizeof p, "%s/tokenizer.json", st_dir);
    if (rc || spm_convert_file(spm, p, &e)) { printf("  %s\n", e.msg); return 0; }
    state = 1;
    return 1;
}

static void stories_cleanup(void) {
    if (st_dir[0]) tmp_close(&st_tmp);
}

// Greedy decoding with the cache; at every step the cached logits must equal the last row of
// model_forward over the whole sequence. The prompt goes in two chunks (split at `split`) so a
// multi-row step over a non-empty cache is covered too.
static void kv_vs_forward(const char *name, const char *dir, const uint32_t *prompt, int n_prompt, int split,
                          int steps) {
    Model m;
    Error e;
    if (model_load(&m, dir, &e)) { CHECK(0, "%s", e.msg); return; }
    int V = m.cfg.vocab_size, n = n_prompt;
    uint32_t *seq = malloc((size_t)(n_prompt + steps) * sizeof *seq);
    memcpy(seq, prompt, (size_t)n_prompt * sizeof *seq);
    float *kv_logits = malloc((size_t)V * sizeof(float));
    KVDecoder *d = kv_decoder_new(&m);
    if (split > 0 && split < n_prompt) {
        CHECK(!kv_decoder_forward(d, seq, split, NULL, &e), "%s", e.msg);
        CHECK(!kv_decoder_forward(d, seq + split, n_prompt - split, kv_logits, &e), "%s", e.msg);
    } else {
        CHECK(!kv_decoder_forward(d, seq, n_prompt, kv_logits, &e), "%s", e.msg);
    }
    double worst = 0;
    for (int step = 0; step < steps; step++) {
        ForwardState *st = forward_state_new(&m, 1, n);
        float *full = malloc((size_t)n * V * sizeof(float));
        ForwardOutputs out = {.logits = full};
        CHECK(!model_forward(&m, st, seq, 1, n, &out, &e), "%s", e.msg);
        double err = test_rel_err(kv_logits, full + (size_t)(n - 1) * V, (size_t)V);
        if (err > worst) worst = err;
        CHECK(err <= 1e-5, "%s: step %d (position %d): cached logits differ by %.3g (relative)", name, step, n - 1,
              err);
        free(full);
        forward_state_free(st);
        if (step + 1 == steps) break;
        seq[n] = sampler_argmax(kv_logits, V);
        CHECK(!kv_decoder_forward(d, &seq[n], 1, kv_logits, &e), "%s", e.msg);
        n++;
    }
    CHECK(kv_decoder_pos(d) == n, "%s: %d positions cached, expected %d", name, kv_decoder_pos(d), n);
    if (getenv("VERBOSE")) printf("  %s: worst relative logit error %.3g over %d steps\n", name, worst, steps);
    kv_decoder_free(d);
    free(kv_logits);
    free(seq);
    model_free(&m);
}

static void test_kv_logits_equal_forward_tiny(void) {
    for (int i = 0; i < N_TINY; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, "tests/golden/models/%s", TINY[i]);
        // bos + a few ids; 30 steps pass Gemma 2's window of 8 and reach position 34 (GPT-2: 64)
        uint32_t prompt[5] = {!strcmp(TINY[i], "gemma2") ? 2u : 1u, 17, 300, 45, 511};
        kv_vs_forward(TINY[i], dir, prompt, 5, 2, 30);
    }
}

static void test_kv_logits_equal_forward_stories260K(void) {
    if (!stories_ready()) {
        CHECK(test_state.skip_reason[0], "stories260K could not be converted from %s", test_shared_dir());
        return;
    }
    uint32_t bos = 1;
    kv_vs_forward("stories260K", st_dir, &bos, 1, 0, 60);
    uint32_t prompt[4] = {1, 403, 407, 261};
    kv_vs_forward("stories260K (chunked prompt)", st_dir, prompt, 4, 3, 20);
}

// Every architecture stops at its last position (GPT-2: the last learned one; RoPE models: the last
// of max_position_embeddings) instead of running past it, and refuses a longer prompt.
static void test_context_limit(void) {
    const char *names[] = {"gpt2", "llama3", "gemma2"};
    for (int i = 0; i < 3; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, "tests/golden/models/%s", names[i]);
        Model m;
        Error e;
        if (model_load(&m, dir, &e)) { CHECK(0, "%s", e.msg); return; }
        KVDecoder *d = kv_decoder_new(&m);
        uint32_t prompt[60];
        for (int k = 0; k < 60; k++) prompt[k] = (uint32_t)(k * 7 % 512);
        GenerateOptions go = {.max_tokens = 100};
        GenerateResult r;
        CHECK(!generate(d, prompt, 60, &go, &r, &e), "%s", e.msg);
        CHECK(r.stop == GEN_STOP_CONTEXT && r.n == 5, "%s: stop %s after %d tokens, expected context after 5", names[i],
              generate_stop_name(r.stop), r.n);
        generate_result_free(&r);
        uint32_t many[65] = {0};
        CHECK(generate(d, many, 65, &go, &r, &e) == -1 &&
                  strstr(e.msg, "65 tokens, more than the model's 64 positions"),
              "%s: 65-token prompt accepted", names[i]);
        kv_decoder_free(d);
        model_free(&m);
    }
}

// Greedy continuations equal transformers' generate() on the tiny checkpoints.
static void test_hf_greedy_tiny(void) {
    json_error_t je;
    json_t *root = json_load_file("tests/golden/generate/tiny.json", 0, &je);
    CHECK(root, "tests/golden/generate/tiny.json: %s", je.text);
    if (!root) return;
    json_t *cases = json_object_get(root, "cases"), *c;
    size_t i;
    int n_cases = 0;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "model"));
        char dir[256];
        snprintf(dir, sizeof dir, "tests/golden/models/%s", name);
        Model m;
        Error e;
        if (model_load(&m, dir, &e)) { CHECK(0, "%s", e.msg); continue; }
        json_t *jp = json_object_get(c, "prompt_ids"), *jg = json_object_get(c, "greedy_ids");
        int np = (int)json_array_size(jp), ng = (int)json_array_size(jg);
        uint32_t prompt[64];
        for (int k = 0; k < np; k++) prompt[k] = (uint32_t)json_integer_value(json_array_get(jp, k));
        KVDecoder *d = kv_decoder_new(&m);
        GenerateOptions go = {.max_tokens = ng};
        GenerateResult r;
        CHECK(!generate(d, prompt, np, &go, &r, &e), "%s", e.msg);
        int same = r.n == ng;
        for (int k = 0; same && k < ng; k++) same = r.ids[k] == (uint32_t)json_integer_value(json_array_get(jg, k));
        CHECK(same, "%s, prompt of %d: greedy ids differ from transformers' generate", name, np);
        generate_result_free(&r);
        // the same prompt after a decoy that shares all but its last id: generate keeps the shared
        // keys and values (cached_prefix) and must continue exactly as from scratch
        if (np >= 2) {
            uint32_t decoy[64];
            memcpy(decoy, prompt, (size_t)np * sizeof *decoy);
            decoy[np - 1] = (prompt[np - 1] + 1) % (uint32_t)m.cfg.vocab_size;
            GenerateOptions gd = {.max_tokens = 3};
            CHECK(!generate(d, decoy, np, &gd, &r, &e), "%s", e.msg);
            generate_result_free(&r);
            GenerateOptions gp = {.max_tokens = ng, .cached_prefix = np - 1};
            CHECK(!generate(d, prompt, np, &gp, &r, &e), "%s", e.msg);
            same = r.n == ng;
            for (int k = 0; same && k < ng; k++) same = r.ids[k] == (uint32_t)json_integer_value(json_array_get(jg, k));
            CHECK(same, "%s, prompt of %d after a decoy (cached prefix %d): greedy ids differ", name, np, np - 1);
            generate_result_free(&r);
            gp.cached_prefix = np + 5;  // more than the decoder holds: an error, not garbage
            kv_decoder_reset(d);
            CHECK(generate(d, prompt, np, &gp, &r, &e) == -1 && strstr(e.msg, "cached"),
                  "%s: cached_prefix past the cache", name);
        }
        kv_decoder_free(d);
        model_free(&m);
        n_cases++;
    }
    CHECK(n_cases >= 12, "only %d cases", n_cases);
    json_decref(root);
}

typedef struct {
    char buf[4096];
    size_t len;
    int calls;
} Stream;

static void on_text(void *ctx, const char *text, size_t len) {
    Stream *s = ctx;
    if (s->len + len < sizeof s->buf) memcpy(s->buf + s->len, text, len);
    s->len += len;
    s->buf[s->len < sizeof s->buf ? s->len : sizeof s->buf - 1] = 0;
    s->calls++;
}

// Stop strings cut the answer before them (also across token boundaries); the streamed pieces add
// up to the final text; EOS ids stop and are kept in the ids but not in the text.
static void test_stop_strings_and_streaming(void) {
    if (!stories_ready()) { CHECK(test_state.skip_reason[0], "stories260K unavailable"); return; }
    Model m;
    Error e;
    char p[600];
    snprintf(p, sizeof p, "%s/tokenizer.json", st_dir);
    Tokenizer *tok = tokenizer_load(p, &e);
    if (!tok || model_load(&m, st_dir, &e)) { CHECK(0, "%s", e.msg); return; }
    KVDecoder *d = kv_decoder_new(&m);
    uint32_t bos = 1;
    GenerateResult full, r;
    GenerateOptions go = {.max_tokens = 40, .tok = tok};
    CHECK(!generate(d, &bos, 1, &go, &full, &e), "%s", e.msg);
    CHECK(full.text && !strncmp(full.text, "Once upon a time, there was a little girl named Lily", 52), "text '%s'",
          full.text ? full.text : "");

    const char *stops[][2] = {{"little", NULL}, {"e, th", "zzz"}, {"Lily", "girl"}, {"no such text", NULL}};
    const char *want[] = {"Once upon a time, there was a ", "Once upon a tim", "Once upon a time, there was a little ",
                          NULL};
    for (int i = 0; i < 4; i++) {
        Stream s = {0};
        go = (GenerateOptions){.max_tokens = 40, .tok = tok, .stop = stops[i], .n_stop = stops[i][1] ? 2 : 1,
                               .on_text = on_text, .ctx = &s};
        CHECK(!generate(d, &bos, 1, &go, &r, &e), "%s", e.msg);
        if (want[i]) {
            CHECK(r.stop == GEN_STOP_STRING && !strcmp(r.text, want[i]), "stop '%s': '%s' (%s)", stops[i][0], r.text,
                  generate_stop_name(r.stop));
        } else {
            CHECK(r.stop == GEN_STOP_LENGTH && r.n == 40 && !strcmp(r.text, full.text), "no stop: '%s'", r.text);
        }
        CHECK(s.len == r.len && !memcmp(s.buf, r.text, r.len), "streamed '%s' != final '%s'", s.buf, r.text);
        CHECK(s.calls > 1, "streamed in %d pieces", s.calls);
        generate_result_free(&r);
    }
    // EOS: pretend the 6th greedy token is an end of sequence
    uint32_t eos = full.ids[5];
    int first = 0;
    while (full.ids[first] != eos) first++;
    Stream s = {0};
    go = (GenerateOptions){.max_tokens = 40, .tok = tok, .eos_ids = &eos, .n_eos = 1, .on_text = on_text, .ctx = &s};
    CHECK(!generate(d, &bos, 1, &go, &r, &e), "%s", e.msg);
    CHECK(r.stop == GEN_STOP_EOS && r.n == first + 1 && r.ids[r.n - 1] == eos, "eos: %s after %d",
          generate_stop_name(r.stop), r.n);
    char *want_text;
    size_t want_len;
    tokenizer_decode(tok, full.ids, (size_t)first, 1, &want_text, &want_len, &e);
    CHECK(!strcmp(r.text, want_text) && s.len == r.len, "eos text '%s' vs '%s'", r.text, want_text);
    free(want_text);
    generate_result_free(&r);
    generate_result_free(&full);
    kv_decoder_free(d);
    model_free(&m);
    tokenizer_free(tok);
}

// ---- sampler ------------------------------------------------------------------------------

static void random_logits(float *l, int V, uint64_t seed) {
    Sampler s;
    SamplerOptions o = {.seed = seed};
    sampler_init(&s, &o, 1);
    for (int i = 0; i < V; i++) l[i] = 6 * sampler_random(&s) - 3;
    sampler_free(&s);
}

static void test_sampler_greedy_equivalents(void) {
    enum { V = 1000 };
    float l[V];
    SamplerOptions opts[] = {{.temperature = 0, .top_p = 1}, {.temperature = 1, .top_k = 1, .top_p = 1},
                             {.temperature = 1.5f, .top_p = 1e-6f}, {.temperature = 0.7f, .top_k = 5, .top_p = 1e-6f}};
    for (int trial = 0; trial < 50; trial++) {
        random_logits(l, V, 100 + trial);
        if (trial % 5 == 0) l[trial] = l[trial + 400] = 10;  // a tie at the top: the first id wins
        uint32_t want = sampler_argmax(l, V);
        for (size_t k = 0; k < sizeof opts / sizeof *opts; k++) {
            opts[k].seed = (uint64_t)trial;
            Sampler s;
            sampler_init(&s, &opts[k], V);
            for (int rep = 0; rep < 5; rep++) {
                uint32_t got = sampler_sample(&s, l);
                CHECK(got == want, "options %zu trial %d: %u, argmax %u", k, trial, got, want);
            }
            sampler_free(&s);
        }
    }
}

static void test_sampler_seeded(void) {
    enum { V = 50 };
    float l[V];
    random_logits(l, V, 9);
    SamplerOptions o = {.temperature = 1, .top_k = 20, .top_p = 0.9f, .seed = 1234};
    Sampler a, b, c;
    sampler_init(&a, &o, V);
    sampler_init(&b, &o, V);
    o.seed = 1235;
    sampler_init(&c, &o, V);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 500; i++) {
        uint32_t x = sampler_sample(&a, l), y = sampler_sample(&b, l), z = sampler_sample(&c, l);
        same_ab &= x == y;
        same_ac &= x == z;
    }
    CHECK(same_ab, "same seed, different draws");
    CHECK(!same_ac, "different seeds, identical 500 draws");
    sampler_free(&a); sampler_free(&b); sampler_free(&c);
}

// Frequencies of 200k draws against the distribution the options define.
static void check_distribution(const char *what, const float *logits, int V, SamplerOptions o, const double *want) {
    enum { DRAWS = 200000 };
    int counts[16] = {0};
    Sampler s;
    sampler_init(&s, &o, V);
    for (int i = 0; i < DRAWS; i++) counts[sampler_sample(&s, logits)]++;
    sampler_free(&s);
    for (int i = 0; i < V; i++) {
        double f = (double)counts[i] / DRAWS;
        // 5 standard deviations of a binomial frequency, and exact zeros where excluded
        double tol = want[i] > 0 ? 5 * sqrt(want[i] * (1 - want[i]) / DRAWS) : 0;
        CHECK(fabs(f - want[i]) <= tol, "%s: token %d drawn %.4f, expected %.4f", what, i, f, want[i]);
    }
}

static void test_sampler_distribution(void) {
    // probabilities 0.5 0.3 0.1 0.06 0.04 at temperature 1
    const double p[5] = {0.5, 0.3, 0.1, 0.06, 0.04};
    float l[5];
    for (int i = 0; i < 5; i++) l[i] = logf((float)p[i]) + 1.25f;
    check_distribution("temperature 1", l, 5, (SamplerOptions){.temperature = 1, .top_p = 1, .seed = 1}, p);
    double t2[5], z = 0;
    for (int i = 0; i < 5; i++) z += t2[i] = sqrt(p[i]);
    for (int i = 0; i < 5; i++) t2[i] /= z;
    check_distribution("temperature 2", l, 5, (SamplerOptions){.temperature = 2, .top_p = 1, .seed = 2}, t2);
    const double k2[5] = {0.625, 0.375, 0, 0, 0};
    check_distribution("top-k 2", l, 5, (SamplerOptions){.temperature = 1, .top_k = 2, .top_p = 1, .seed = 3}, k2);
    check_distribution("top-p 0.7", l, 5, (SamplerOptions){.temperature = 1, .top_p = 0.7f, .seed = 4}, k2);
    const double p9[5] = {0.5 / 0.9, 0.3 / 0.9, 0.1 / 0.9, 0, 0};
    check_distribution("top-p 0.85", l, 5, (SamplerOptions){.temperature = 1, .top_p = 0.85f, .seed = 5}, p9);
    // top-k first, then top-p over the renormalized top-k: 0.5/0.9 = 0.56 < 0.6 needs the second
    const double kp[5] = {0.625, 0.375, 0, 0, 0};
    check_distribution("top-k 3 + top-p 0.6", l, 5,
                       (SamplerOptions){.temperature = 1, .top_k = 3, .top_p = 0.6f, .seed = 6}, kp);
}

// ---- decoding kernel ----------------------------------------------------------------------

// matvec_multi_cpu (the fused q/k/v and gate/up products of a decoding step) against a plain
// loop in double: several products of one row, with and without bias, sizes that split the
// numbered rows across threads in the middle of a product.
static void test_matvec_multi(void) {
    int IN = 300, outs[3] = {700, 5, 1111};
    Sampler s;
    SamplerOptions so = {.seed = 77};
    sampler_init(&s, &so, 1);
    float *in = malloc((size_t)IN * sizeof(float)), *w[3], *b[3], *out[3];
    MatvecJob jobs[3];
    for (int i = 0; i < IN; i++) in[i] = sampler_random(&s) - 0.5f;
    for (int k = 0; k < 3; k++) {
        w[k] = malloc((size_t)outs[k] * IN * sizeof(float));
        b[k] = k == 1 ? NULL : malloc((size_t)outs[k] * sizeof(float));
        out[k] = malloc((size_t)outs[k] * sizeof(float));
        for (size_t i = 0; i < (size_t)outs[k] * IN; i++) w[k][i] = sampler_random(&s) - 0.5f;
        for (int i = 0; b[k] && i < outs[k]; i++) b[k][i] = sampler_random(&s);
        jobs[k] = (MatvecJob){out[k], w[k], b[k], outs[k]};
    }
    matvec_multi_cpu(in, IN, jobs, 3);
    for (int k = 0; k < 3; k++)
        for (int o = 0; o < outs[k]; o++) {
            double want = b[k] ? b[k][o] : 0;
            for (int i = 0; i < IN; i++) want += (double)w[k][(size_t)o * IN + i] * in[i];
            CHECK(fabs(out[k][o] - want) <= 1e-5 * (1 + fabs(want)), "job %d row %d: %g vs %g", k, o, out[k][o], want);
        }
    // matmul_cpu with one row takes the same path (the sgemv blocking may differ: not bitwise)
    float *one = malloc((size_t)outs[2] * sizeof(float));
    matmul_cpu(one, in, w[2], b[2], 1, IN, outs[2]);
    CHECK(test_rel_err(one, out[2], (size_t)outs[2]) <= 1e-6, "matmul_cpu N=1 differs from matvec_multi_cpu");
    free(one);
    for (int k = 0; k < 3; k++) { free(w[k]); free(b[k]); free(out[k]); }
    free(in);
    sampler_free(&s);
}

// ---- chat template ------------------------------------------------------------------------

static void test_chatml_matches_hf(void) {
    json_error_t je;
    json_t *root = json_load_file("tests/golden/generate/smollm2.json", 0, &je);
    CHECK(root, "tests/golden/generate/smollm2.json: %s", je.text);
    if (!root) return;
    ChatTemplate ct;
    Error e;
    CHECK(!chat_template_parse(&ct, json_string_value(json_object_get(root, "chat_template")), &e), "%s", e.msg);
    CHECK(ct.default_system &&
              !strcmp(ct.default_system, "You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
          "default system '%s'", ct.default_system ? ct.default_system : "(none)");
    json_t *cases = json_object_get(root, "cases"), *c;
    size_t i;
    json_array_foreach(cases, i, c) {
        json_t *jm = json_object_get(c, "messages");
        ChatMessage msgs[8];
        int n = (int)json_array_size(jm);
        for (int k = 0; k < n && k < 8; k++)
            msgs[k] = (ChatMessage){json_string_value(json_object_get(json_array_get(jm, k), "role")),
                                    json_string_value(json_object_get(json_array_get(jm, k), "content"))};
        char *text = chat_format(&ct, msgs, n, 1);
        const char *want = json_string_value(json_object_get(c, "template_text"));
        CHECK(!strcmp(text, want), "%s:\n%s\n--- expected ---\n%s", json_string_value(json_object_get(c, "name")), text,
              want);
        free(text);
    }
    chat_template_free(&ct);
    json_decref(root);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_chat_template_sources(void) {
    ChatTemplate ct;
    Error e;
    // escaped newlines inside the Jinja literal, double quotes, no default system
    const char *esc =
        "{% if messages[0][\"role\"] != \"system\" %}{{ '<|im_start|>system\\nBe brief.<|im_end|>\\n' }}{% endif %}"
        "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    CHECK(!chat_template_parse(&ct, esc, &e) && ct.default_system && !strcmp(ct.default_system, "Be brief."),
          "escaped: %s", e.msg);
    ChatMessage um = {"user", "hi"};
    char *t = chat_format(&ct, &um, 1, 0);
    CHECK(!strcmp(t, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"), "'%s'", t);
    free(t);
    chat_template_free(&ct);
    const char *plain =
        "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    CHECK(!chat_template_parse(&ct, plain, &e) && !ct.default_system, "plain ChatML: %s", e.msg);
    chat_template_free(&ct);
    CHECK(chat_template_parse(
              &ct, "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}", &e) == -1 &&
              strstr(e.msg, "not ChatML") && strstr(e.msg, "--raw"),
          "Llama 2 template accepted: %s", e.msg);
    const char *computed =
        "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n' + default_msg + '<|im_end|>\\n' }}{% endif %}"
        "{{ '<|im_start|>assistant\\n' }}";
    CHECK(chat_template_parse(&ct, computed, &e) == -1 && strstr(e.msg, "not a constant"), "computed system accepted");

    // where the template is read from
    char dir[] = "/tmp/cltkit_chat_XXXXXX", p[128];
    if (!mkdtemp(dir)) { CHECK(0, "mkdtemp"); return; }
    char *tmpl;
    CHECK(!chat_template_read(dir, &tmpl, &e) && !tmpl, "empty dir gives a template");
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    write_file(p, "JINJA");
    CHECK(!chat_template_read(dir, &tmpl, &e) && tmpl && !strcmp(tmpl, "JINJA"), "chat_template.jinja");
    free(tmpl);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    write_file(p, "{\"model_max_length\": 1000000000000000019884624838656, \"chat_template\": \"STR\"}");
    CHECK(!chat_template_read(dir, &tmpl, &e) && tmpl && !strcmp(tmpl, "STR"), "string template: %s", e.msg);
    free(tmpl);
    write_file(
        p,
        "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"default\", \"template\": \"D\"}]}");
    CHECK(!chat_template_read(dir, &tmpl, &e) && tmpl && !strcmp(tmpl, "D"), "named templates");
    free(tmpl);
    write_file(p, "{\"chat_template\": 5}");
    CHECK(chat_template_read(dir, &tmpl, &e) == -1 && strstr(e.msg, "tokenizer_config.json"),
          "bad template type accepted");
    write_file(p, "{\"chat_template\": ");
    CHECK(chat_template_read(dir, &tmpl, &e) == -1 && strstr(e.msg, "tokenizer_config.json"), "broken JSON accepted");
    unlink(p);
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    unlink(p);
    rmdir(dir);
}

int main(void) {
    RUN_TEST(test_kv_logits_equal_forward_tiny);
    RUN_TEST(test_kv_logits_equal_forward_stories260K);
    RUN_TEST(test_context_limit);
    RUN_TEST(test_hf_greedy_tiny);
    RUN_TEST(test_stop_strings_and_streaming);
    RUN_TEST(test_sampler_greedy_equivalents);
    RUN_TEST(test_sampler_seeded);
    RUN_TEST(test_sampler_distribution);
    RUN_TEST(test_matvec_multi);
    RUN_TEST(test_chatml_matches_hf);
    RUN_TEST(test_chat_template_sources);
    stories_cleanup();
    return test_summary();
}
