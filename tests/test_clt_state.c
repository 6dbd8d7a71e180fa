// clt_state: train_state metadata parsed strictly (issue 11: "epoch": "-1" crashed a resume,
// "abc" restarted from step 0 with trained weights, "15x" read as 15, a huge step was accepted).
#include <string.h>

#include "check.h"
#include "clt_state.h"

#define GOOD                                                                                                           \
    "\"step\": \"20\", \"epoch\": \"1\", \"pool\": \"2\", \"batch\": \"3\", \"L\": \"5\", \"d\": \"64\", \"F\": \"256\""

static void test_valid(void) {
    CltStateMeta m;
    Error e;
    CHECK(clt_state_meta_parse("s.st", "{" GOOD ", \"time_s\": \"12.5\"}", &m, &e) == 0, "%s", e.msg);
    CHECK(m.step == 20 && m.epoch == 1 && m.pool == 2 && m.batch == 3 && m.L == 5 && m.d == 64 && m.F == 256,
          "values %lld %lld %d", (long long)m.step, (long long)m.epoch, m.F);
    CHECK(m.time_s == 12.5, "time_s %g", m.time_s);
    CHECK(clt_state_meta_parse("s.st", "{" GOOD "}", &m, &e) == 0 && m.time_s == 0, "time_s absent: %s", e.msg);
}

static void expect_error(const char *meta, const char *pattern) {
    CltStateMeta m;
    Error e = {{0}};
    int rc = clt_state_meta_parse("s.st", meta, &m, &e);
    CHECK(rc == -1, "accepted: %s", meta ? meta : "(null)");
    CHECK(rc == -1 && !strncmp(e.msg, "s.st: ", 6) && strstr(e.msg, pattern), "'%s' lacks '%s'", e.msg, pattern);
}

static void test_refused(void) {
    char buf[512];
    const char *cases[][3] = {{"epoch", "-1", "\"epoch\" = \"-1\""}, {"step", "abc", "\"step\" = \"abc\""},
                              {"step", "15x", "\"15x\""},           {"step", "99999999999999999999", "not an integer"},
                              {"pool", "", "\"pool\" = \"\""},      {"F", "0", "\"F\" = \"0\""},
                              {"time_s", "nan", "time_s"},          {"time_s", "-1", "time_s"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        // GOOD with one key replaced (or added, for time_s)
        if (!strcmp(cases[i][0], "time_s")) {
            snprintf(buf, sizeof buf, "{" GOOD ", \"time_s\": \"%s\"}", cases[i][1]);
        } else {
            char key[32];
            snprintf(key, sizeof key, "\"%s\": \"", cases[i][0]);
            const char *at = strstr("{" GOOD "}", key);
            const char *src = "{" GOOD "}";
            size_t pre = (size_t)(at - src) + strlen(key);
            const char *rest = strchr(src + pre, '"');
            snprintf(buf, sizeof buf, "%.*s%s%s", (int)pre, src, cases[i][1], rest);
        }
        expect_error(buf, cases[i][2]);
    }
    expect_error(NULL, "no training metadata");
    expect_error("[1]", "no training metadata");
    expect_error("{\"step\": 20}", "lacks \"step\"");  // a number, not the documented string
}

int main(void) {
    RUN_TEST(test_valid);
    RUN_TEST(test_refused);
    return test_summary();
}
