// Compares tok's tokenizer with goldens from Hugging Face `tokenizers` (tests/ref/
// make_tok_goldens.py) on the committed corpus: ids with special tokens as text, with special
// tokens matched, with the post-processor, and decode with and without special tokens.
#include <jansson.h>

#include "check.h"
#include "spm.h"
#include "tokenizer.h"
#include "unicode.h"

typedef struct {
    int docs, bad_ids, bad_special, bad_post, bad_decoded, bad_decoded_skip;
} GoldenStats;

static int ids_equal(const TokIds *got, json_t *want) {
    if (got->n != json_array_size(want)) return 0;
    for (size_t i = 0; i < got->n; i++)
        if ((json_int_t)got->ids[i] != json_integer_value(json_array_get(want, i))) return 0;
    return 1;
}

static void print_ids_diff(const char *what, size_t doc, const TokIds *got, json_t *want) {
    printf("  doc %zu %s: got %zu ids, want %zu; first difference at ", doc, what, got->n, json_array_size(want));
    size_t i = 0;
    while (i < got->n && i < json_array_size(want) &&
           (json_int_t)got->ids[i] == json_integer_value(json_array_get(want, i)))
        i++;
    printf("%zu (got %lld, want %lld)\n", i, i < got->n ? (long long)got->ids[i] : -1LL,
           i < json_array_size(want) ? (long long)json_integer_value(json_array_get(want, i)) : -1LL);
}

static GoldenStats compare_golden(const Tokenizer *tok, const char *golden_path) {
    GoldenStats st = {0};
    FILE *corpus = fopen("tests/data/tok_corpus.jsonl", "rb");
    FILE *gold = fopen(golden_path, "rb");
    CHECK(corpus && gold, "cannot open corpus or %s", golden_path);
    if (!corpus || !gold) return st;
    TokScratch *s = tokscratch_new();
    char *cl = NULL, *gl = NULL;
    size_t ccap = 0, gcap = 0;
    ssize_t cn, gn;
    while ((cn = getline(&cl, &ccap, corpus)) > 0 && (gn = getline(&gl, &gcap, gold)) > 0) {
        json_error_t je;
        json_t *doc = json_loadb(cl, (size_t)cn, JSON_ALLOW_NUL, &je);
        json_t *g = json_loadb(gl, (size_t)gn, JSON_ALLOW_NUL, &je);
        json_t *text = json_object_get(doc, "text");
        const char *t = json_string_value(text);
        size_t len = json_string_length(text);
        size_t d = (size_t)st.docs++;
        TokIds ids = {0};
        Error e;
        TokEncodeOptions plain = {0}, special = {.match_special = 1}, post = {.add_special = 1};
        CHECK(!tokenizer_encode(tok, s, t, len, &plain, &ids, &e), "doc %zu: %s", d, e.msg);
        if (!ids_equal(&ids, json_object_get(g, "ids"))) {
            if (st.bad_ids++ < 3) print_ids_diff("ids", d, &ids, json_object_get(g, "ids"));
        }
        ids.n = 0;
        tokenizer_encode(tok, s, t, len, &special, &ids, &e);
        if (!ids_equal(&ids, json_object_get(g, "ids_special"))) {
            if (st.bad_special++ < 3) print_ids_diff("ids_special", d, &ids, json_object_get(g, "ids_special"));
        }
        ids.n = 0;
        tokenizer_encode(tok, s, t, len, &post, &ids, &e);
        if (!ids_equal(&ids, json_object_get(g, "ids_post"))) {
            if (st.bad_post++ < 3) print_ids_diff("ids_post", d, &ids, json_object_get(g, "ids_post"));
        }
        // decode the golden ids (so decode is tested independently of encode)
        json_t *gs = json_object_get(g, "ids_special");
        ids.n = 0;
        for (size_t i = 0; i < json_array_size(gs); i++)
            tokids_push(&ids, (uint32_t)json_integer_value(json_array_get(gs, i)));
        for (int skip = 0; skip < 2; skip++) {
            char *out;
            size_t out_len;
            CHECK(!tokenizer_decode(tok, ids.ids, ids.n, skip, &out, &out_len, &e), "decode doc %zu: %s", d, e.msg);
            json_t *want = json_object_get(g, skip ? "decoded_skip" : "decoded");
            if (out_len != json_string_length(want) || memcmp(out, json_string_value(want), out_len)) {
                int *bad = skip ? &st.bad_decoded_skip : &st.bad_decoded;
                if ((*bad)++ < 3)
                    printf("  doc %zu decode(skip=%d): got \"%.60s\" want \"%.60s\"\n", d, skip, out,
                           json_string_value(want));
            }
            free(out);
        }
        tokids_free(&ids);
        json_decref(doc);
        json_decref(g);
    }
    free(cl);
    free(gl);
    fclose(corpus);
    fclose(gold);
    tokscratch_free(s);
    return st;
}

static void check_golden(const char *name, const Tokenizer *tok, const char *golden) {
    GoldenStats st = compare_golden(tok, golden);
    CHECK(st.docs >= 200, "%s: only %d documents compared", name, st.docs);
    CHECK(st.bad_ids == 0, "%s: %d/%d documents differ (ids)", name, st.bad_ids, st.docs);
    CHECK(st.bad_special == 0, "%s: %d/%d documents differ (ids_special)", name, st.bad_special, st.docs);
    CHECK(st.bad_post == 0, "%s: %d/%d documents differ (ids_post)", name, st.bad_post, st.docs);
    CHECK(st.bad_decoded == 0, "%s: %d/%d decodes differ", name, st.bad_decoded, st.docs);
    CHECK(st.bad_decoded_skip == 0, "%s: %d/%d decodes (skip special) differ", name, st.bad_decoded_skip, st.docs);
}

static void check_shared_tokenizer(const char *name) {
    char path[1024], golden[256];
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizers/%s/tokenizer.json", name);
    if (!test_need_shared(path, sizeof path, rel)) return;
    snprintf(golden, sizeof golden, "tests/golden/tok/%s.jsonl", name);
    Error e;
    Tokenizer *tok = tokenizer_load(path, &e);
    CHECK(tok != NULL, "%s", e.msg);
    if (!tok) return;
    check_golden(name, tok, golden);
    tokenizer_free(tok);
}

static void test_gpt2_matches_hf(void) { check_shared_tokenizer("gpt2"); }
static void test_llama3_matches_hf(void) { check_shared_tokenizer("llama3"); }
static void test_gemma3_matches_hf(void) { check_shared_tokenizer("gemma3"); }

static void test_tok512_hf_conversion_matches_hf(void) {
    Error e;
    Tokenizer *tok = tokenizer_load("tests/golden/tok/tok512.hf-tokenizer.json", &e);
    CHECK(tok != NULL, "%s", e.msg);
    if (!tok) return;
    check_golden("tok512 (HF-converted)", tok, "tests/golden/tok/tok512.jsonl");
    tokenizer_free(tok);
}

// Our SentencePiece converter must produce a tokenizer.json equivalent to transformers'.
static void test_tok512_our_conversion_matches_hf(void) {
    char path[1024];
    if (!test_need_shared(path, sizeof path, "models/stories260K/tok512.model")) return;
    size_t len;
    char *buf = test_read_file(path, &len);
    CHECK(buf != NULL, "cannot read %s", path);
    if (!buf) return;
    SpmModel m;
    Error e;
    CHECK(!spm_parse(&m, buf, len, path, &e), "%s", e.msg);
    char *json = NULL;
    CHECK(!spm_to_tokenizer_json(&m, path, &json, &e), "%s", e.msg);
    spm_free(&m);
    free(buf);
    if (!json) return;
    json_error_t je;
    json_t *ours = json_loads(json, 0, &je);
    json_t *hf = json_load_file("tests/golden/tok/tok512.hf-tokenizer.json", 0, &je);
    CHECK(ours && hf, "cannot parse the tokenizer.json files");
    const char *keys[] = {"normalizer", "pre_tokenizer", "post_processor", "decoder"};
    for (int i = 0; i < 4; i++)
        CHECK(json_equal(json_object_get(ours, keys[i]), json_object_get(hf, keys[i])), "%s differs from transformers'",
              keys[i]);
    json_t *om = json_object_get(ours, "model"), *hm = json_object_get(hf, "model");
    CHECK(json_equal(json_object_get(om, "vocab"), json_object_get(hm, "vocab")), "vocab differs");
    json_t *omerges = json_object_get(om, "merges"), *hmerges = json_object_get(hm, "merges");
    CHECK(json_array_size(omerges) == json_array_size(hmerges), "%zu merges vs %zu", json_array_size(omerges),
          json_array_size(hmerges));
    for (size_t i = 0; i < json_array_size(omerges) && i < json_array_size(hmerges); i++) {
        json_t *a = json_array_get(omerges, i), *b = json_array_get(hmerges, i);
        // HF writes ["a","b"] pairs (tokenizers >= 0.20) or "a b" strings; compare as strings.
        char sa[256], sb[256];
        snprintf(sa, sizeof sa, "%s %s", json_string_value(json_array_get(a, 0)),
                 json_string_value(json_array_get(a, 1)));
        if (json_is_string(b)) snprintf(sb, sizeof sb, "%s", json_string_value(b));
        else
            snprintf(sb, sizeof sb, "%s %s", json_string_value(json_array_get(b, 0)),
                     json_string_value(json_array_get(b, 1)));
        CHECK(!strcmp(sa, sb), "merge %zu: ours '%s', transformers '%s'", i, sa, sb);
    }
    const char *flags[] = {"unk_token", "fuse_unk", "byte_fallback"};
    for (int i = 0; i < 3; i++)
        CHECK(json_equal(json_object_get(om, flags[i]), json_object_get(hm, flags[i])), "model.%s differs", flags[i]);
    // and it encodes the corpus exactly like HF
    Tokenizer *tok = tokenizer_load_json(json, strlen(json), "tok512 (converted by tok)", &e);
    CHECK(tok != NULL, "%s", e.msg);
    if (tok) check_golden("tok512 (ours)", tok, "tests/golden/tok/tok512.jsonl");
    tokenizer_free(tok);
    json_decref(ours);
    json_decref(hf);
    free(json);
}

// llama2.c's own encoder output for 10 prompts (../shared golden), with BOS.
static void test_tok512_matches_llama2c(void) {
    char path[1024];
    if (!test_need_shared(path, sizeof path, "models/stories260K/golden/tok512_encode_llama2c.tsv")) return;
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    Error e;
    Tokenizer *tok = tokenizer_load("tests/golden/tok/tok512.hf-tokenizer.json", &e);
    CHECK(tok != NULL, "%s", e.msg);
    TokScratch *s = tokscratch_new();
    char line[4096];
    int n = 0;
    while (tok && fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab2) continue;
        // unescape the prompt (\n \t \\ \" and \xHH / \uHHHH code points)
        char text[2048];
        size_t tl = 0;
        for (char *p = tab1 + 1; p < tab2; p++) {
            if (*p != '\\') { text[tl++] = *p; continue; }
            p++;
            if (*p == 'n') text[tl++] = '\n';
            else if (*p == 't') text[tl++] = '\t';
            else if (*p == 'x' || *p == 'u') {  // \xHH and \uHHHH are code points
                int digits = *p == 'x' ? 2 : 4;
                char hex[5] = {0};
                memcpy(hex, p + 1, (size_t)digits);
                tl += (size_t)utf8_encode((uint32_t)strtoul(hex, NULL, 16), text + tl);
                p += digits;
            } else text[tl++] = *p;
        }
        TokIds ids = {0};
        TokEncodeOptions opt = {.add_special = 1};
        CHECK(!tokenizer_encode(tok, s, text, tl, &opt, &ids, &e), "%s", e.msg);
        char got[4096] = "";
        size_t gl = 0;
        for (size_t i = 0; i < ids.n; i++)
            gl += (size_t)snprintf(got + gl, sizeof got - gl, "%s%u", i ? " " : "", ids.ids[i]);
        char *want = tab2 + 1;
        want[strcspn(want, "\r\n")] = 0;
        CHECK(!strcmp(got, want), "prompt %d: got '%s' want '%s'", n, got, want);
        tokids_free(&ids);
        n++;
    }
    CHECK(n == 10, "read %d prompts", n);
    tokscratch_free(s);
    tokenizer_free(tok);
    fclose(f);
}

static void test_bad_tokenizer_json(void) {
    struct { const char *json, *expect;
    } cases[] = {
        {"{", "invalid JSON"},
        {"[]", "not a JSON object"},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "model type 'Unigram' is not supported"},
        {"{\"model\": {\"type\": \"BPE\", \"merges\": []}}", "missing \"vocab\""},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "missing \"merges\""},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}", "merges[0]"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"ab\"]}}", "merges[0]"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", "invalid id"},
        {"{\"normalizer\": {\"type\": \"NFKC\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
         "normalizer type 'NFKC'"},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}, \"behavior\": \"Isolated\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
         "regex is not one of the supported"},
        {"{\"added_tokens\": [{\"id\": 0}], \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
         "added_tokens[0]"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"unk_token\": \"<unk>\"}}",
         "unk_token"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Error e = {{0}};
        Tokenizer *t = tokenizer_load_json(cases[i].json, strlen(cases[i].json), "bad.json", &e);
        CHECK(t == NULL, "case %zu loaded", i);
        tokenizer_free(t);
        CHECK(strstr(e.msg, "bad.json") && strstr(e.msg, cases[i].expect), "case %zu: message '%s' lacks '%s'", i,
              e.msg, cases[i].expect);
    }
    Error e;
    CHECK(tokenizer_load("/nonexistent/tokenizer.json", &e) == NULL && strstr(e.msg, "/nonexistent/tokenizer.json"),
          "%s", e.msg);
}

static void test_invalid_utf8_is_an_error(void) {
    char path[1024];
    if (!test_need_shared(path, sizeof path, "tokenizers/gpt2/tokenizer.json")) return;
    Error e;
    Tokenizer *tok = tokenizer_load(path, &e);
    CHECK(tok != NULL, "%s", e.msg);
    if (!tok) return;
    TokScratch *s = tokscratch_new();
    TokIds ids = {0};
    TokEncodeOptions opt = {0};
    const char bad[] = "ok \xC3\x28 x";
    CHECK(tokenizer_encode(tok, s, bad, sizeof bad - 1, &opt, &ids, &e) == -1, "accepted invalid UTF-8");
    CHECK(strstr(e.msg, "invalid UTF-8 at byte 3") != NULL, "message: %s", e.msg);
    const uint32_t out_of_vocab = 999999;
    char *text;
    size_t len;
    CHECK(tokenizer_decode(tok, &out_of_vocab, 1, 0, &text, &len, &e) == -1, "decoded an id outside the vocab");
    tokids_free(&ids);
    tokscratch_free(s);
    tokenizer_free(tok);
}

int main(void) {
    RUN_TEST(test_gpt2_matches_hf);
    RUN_TEST(test_llama3_matches_hf);
    RUN_TEST(test_gemma3_matches_hf);
    RUN_TEST(test_tok512_hf_conversion_matches_hf);
    RUN_TEST(test_tok512_our_conversion_matches_hf);
    RUN_TEST(test_tok512_matches_llama2c);
    RUN_TEST(test_bad_tokenizer_json);
    RUN_TEST(test_invalid_utf8_is_an_error);
    return test_summary();
}
