// graph_html: the Cantor pairing against its definition, the <script>-safe JSON escaping, and the
// page builder's validation of small graphs held in memory.
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "graph_html.h"

static void test_cantor_roundtrip(void) {
    // circuit-tracer's ids: small layers, feature indices up to millions (2.5M-feature CLTs)
    int64_t layers[] = {0, 1, 17, 25, 80}, idx[] = {0, 1, 7, 12345, 2500000, 16777215, 3000000000LL};
    for (size_t a = 0; a < sizeof layers / sizeof *layers; a++)
        for (size_t b = 0; b < sizeof idx / sizeof *idx; b++) {
            int64_t z = graph_html_cantor(layers[a], idx[b]), l = -1, i = -1;
            CHECK(z == (layers[a] + idx[b]) * (layers[a] + idx[b] + 1) / 2 + idx[b], "cantor(%lld, %lld)",
                  (long long)layers[a], (long long)idx[b]);
            CHECK(graph_html_uncantor(z, &l, &i) && l == layers[a] && i == idx[b], "uncantor(%lld) = (%lld, %lld)",
                  (long long)z, (long long)l, (long long)i);
        }
    int64_t l = 5, i = 5;
    CHECK(!graph_html_uncantor(-1, &l, &i) && l == 5 && i == 5, "negative id");
    CHECK(graph_html_cantor(1, 7) == 43, "the hostile test graph's feature id");
}

static void test_script_json(void) {
    const char *in = "{\"a\":\"</script><!-- & \xe2\x80\xa8 \xe2\x80\xa9 \xe2\x80\xa6\"}";
    char *out = graph_html_script_json(in);
    CHECK(!strcmp(out, "{\"a\":\"\\u003c/script\\u003e\\u003c!-- \\u0026 \\u2028 \\u2029 \xe2\x80\xa6\"}"), "%s", out);
    CHECK(!strchr(out, '<') && !strchr(out, '>') && !strchr(out, '&'), "%s", out);
    free(out);
}

static const char *GOOD =
    "{\"metadata\": {\"slug\": \"s\", \"scan\": \"x\", \"prompt\": \"p\", \"prompt_tokens\": [\"a\", \"b\"], \"schema_version\": 1},"
    " \"qParams\": {}, \"nodes\": ["
    "{\"node_id\": \"E_5_0\", \"feature\": 0, \"layer\": \"E\", \"ctx_idx\": 0, \"feature_type\": \"embedding\", \"jsNodeId\": \"E\", \"clerp\": \"\"},"
    "{\"node_id\": \"0_7_1\", \"feature\": 35, \"layer\": \"0\", \"ctx_idx\": 1, \"feature_type\": \"cross layer transcoder\","
    " \"jsNodeId\": \"0_7-0\", \"clerp\": \"\", \"influence\": 0.5, \"activation\": 2},"
    "{\"node_id\": \"2_9_1\", \"feature\": 9, \"layer\": \"2\", \"ctx_idx\": 1, \"feature_type\": \"logit\", \"jsNodeId\": \"L\","
    " \"clerp\": \"Output \\\"z\\\" (p=0.500)\", \"token_prob\": 0.5}],"
    " \"links\": [{\"source\": \"E_5_0\", \"target\": \"0_7_1\", \"weight\": 0.25}, {\"source\": \"0_7_1\", \"target\": \"2_9_1\", \"weight\": -1}]}";

static int build(const char *text, char *msg, size_t n, GraphHtmlStats *st) {
    char *html = NULL;
    Error e;
    int rc = graph_html_build(text, strlen(text), "g.json", NULL, &html, st, &e);
    if (rc) snprintf(msg, n, "%s", e.msg);
    else free(html);
    return rc;
}

static void test_build_good(void) {
    char msg[1024] = "";
    GraphHtmlStats st;
    CHECK(build(GOOD, msg, sizeof msg, &st) == 0, "%s", msg);
    CHECK(st.n_nodes == 3 && st.n_links == 2 && st.n_tokens == 2 && st.n_features == 1 && st.n_duplicate_ids == 0,
          "%d %d %d %d", st.n_nodes, st.n_links, st.n_tokens, st.n_features);
    char *html = NULL;
    Error e;
    CHECK(graph_html_build(GOOD, strlen(GOOD), "g.json", NULL, &html, &st, &e) == 0, "%s", e.msg);
    CHECK(
        html && strlen(html) == st.html_bytes && strstr(html, "<title>s</title>") && strstr(html, "id=\"graph-data\""),
        "page");
    free(html);
}

// Each edit of GOOD must fail with a message naming the file and the problem.
static void test_build_bad(void) {
    struct { const char *from, *to, *want;
    } cases[] = {
        {"\"schema_version\": 1", "\"schema_version\": 2", "g.json: metadata.schema_version 2 is not supported"},
        {"\"target\": \"2_9_1\"", "\"target\": \"2_9_2\"", "g.json: links[1]: target \"2_9_2\" is not a node"},
        {"\"ctx_idx\": 1, \"feature_type\": \"logit\"", "\"ctx_idx\": 2, \"feature_type\": \"logit\"",
         "ctx_idx 2 is outside"},
        {"\"weight\": -1", "\"weight\": null", "links[1]: \"weight\" is not a number"},
        {"\"prompt_tokens\": [\"a\", \"b\"]", "\"prompt_tokens\": []", "metadata.prompt_tokens is empty"},
        {"\"scan\": \"x\",", "", "metadata.scan is missing"},
        {"{\"metadata\"", "[{\"metadata\"", "not JSON"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const char *at = strstr(GOOD, cases[c].from);
        CHECK(at, "case %zu: bad test", c);
        if (!at) continue;
        size_t n = strlen(GOOD) + strlen(cases[c].to) + 2;
        char *text = malloc(n), msg[1024] = "";
        snprintf(text, n, "%.*s%s%s", (int)(at - GOOD), GOOD, cases[c].to, at + strlen(cases[c].from));
        GraphHtmlStats st;
        CHECK(build(text, msg, sizeof msg, &st) != 0 && strstr(msg, cases[c].want), "case %zu: '%s'", c, msg);
        free(text);
    }
    char msg[1024] = "";
    GraphHtmlStats st;
    CHECK(build("", msg, sizeof msg, &st) != 0 && strstr(msg, "empty input"), "%s", msg);
}

int main(void) {
    RUN_TEST(test_cantor_roundtrip);
    RUN_TEST(test_script_json);
    RUN_TEST(test_build_good);
    RUN_TEST(test_build_bad);
    return test_summary();
}
