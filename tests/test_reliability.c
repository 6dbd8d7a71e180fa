// test_reliability.c — the library side of issue 11 / issue 10's reliability fixes: the one strict
// number parser (cli.h), the temp-output registry (fileio.h: files removed on exit and on a
// signal), and tokenizer inputs that used to reach undefined behaviour (NULL + 0, memcpy from
// NULL: silent in a normal build, a failure under `make sanitize`).
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "check.h"
#include "cli.h"
#include "fileio.h"
#include "tmpdir.h"
#include "tokenizer.h"

static void test_parse_int_strict(void) {
    long long v = 0;
    CHECK(!parse_int_strict("12", 0, 100, &v) && v == 12, "12");
    CHECK(!parse_int_strict("-5", -10, 10, &v) && v == -5, "-5");
    const char *bad[] = {"", " 12", "12 ", "1x", "abc", "0x10", "1e3", "99999999999999999999", "--1", "+", NULL};
    for (int i = 0; bad[i]; i++) CHECK(parse_int_strict(bad[i], LLONG_MIN, LLONG_MAX, &v), "'%s' accepted", bad[i]);
    CHECK(parse_int_strict("101", 0, 100, &v), "101 above the range accepted");
    CHECK(parse_int_strict("4294967297", 0, 0xFFFFFFFFLL, &v), "2^32 + 1 accepted as a uint32");
    CHECK(parse_int_strict(NULL, 0, 1, &v), "NULL accepted");
}

static void test_parse_double_strict(void) {
    double v = 0;
    CHECK(!parse_double_strict("1e-3", &v) && v == 1e-3, "1e-3");
    CHECK(!parse_double_strict("-0.5", &v) && v == -0.5, "-0.5");
    CHECK(!parse_double_strict("1e-400", &v) && v == 0, "underflow to 0 is a number");
    const char *bad[] = {"", "nan", "NaN", "inf", "-inf", "infinity", "0x1p3", "1e400", "1.5x", " 1", "1 ", NULL};
    for (int i = 0; bad[i]; i++) CHECK(parse_double_strict(bad[i], &v), "'%s' accepted", bad[i]);
}

// A child registers a temp output, creates it, then dies by `how`; the file must be gone after.
static void temp_child(const char *dir, const char *name, int how, int *status, int *existed) {
    char path[512], tmp[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp.", path);
    int pipefd[2];
    if (pipe(pipefd)) { *status = -1; return; }
    pid_t pid = fork();
    if (pid == 0) {
        Error e;
        char t[600];
        if (temp_output_begin(t, sizeof t, path, &e)) _exit(3);
        FILE *f = fopen(t, "wb");
        if (!f) _exit(4);
        fputs("partial", f);
        fclose(f);
        if (write(pipefd[1], t, strlen(t) + 1) < 0) _exit(5);
        if (how == 0) exit(1);  // an error path: fatal() ends in exit(1)
        raise(how);
        _exit(6);
    }
    close(pipefd[1]);
    char got[600] = "";
    ssize_t n = read(pipefd[0], got, sizeof got - 1);
    close(pipefd[0]);
    waitpid(pid, status, 0);
    *existed = n > 0 && !strncmp(got, tmp, strlen(tmp));
    struct stat st;
    if (*existed && stat(got, &st) == 0) *existed = 2;  // still there: a failure
}

static void test_temp_outputs_removed(void) {
    TmpDir d;
    tmp_open(&d, "reltmp");
    int status, existed;
    temp_child(d.dir, "exit.out", 0, &status, &existed);
    CHECK(existed == 1, "exit(1): temp file %s", existed == 2 ? "left behind" : "never made");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        signal(sigs[i], SIG_DFL);  // (the child inherits it; an ignored signal would stay ignored)
        temp_child(d.dir, "sig.out", sigs[i], &status, &existed);
        CHECK(existed == 1, "signal %d: temp file %s", sigs[i], existed == 2 ? "left behind" : "never made");
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == sigs[i], "signal %d: status %d (must die of the signal)",
              sigs[i], status);
    }
    // a finished output is forgotten: exit leaves the renamed file alone
    char path[512], t[600];
    snprintf(path, sizeof path, "%s/kept.out", d.dir);
    Error e;
    CHECK(!write_file_atomic(path, "x", 1, &e), "%s", e.msg);
    CHECK(!temp_output_begin(t, sizeof t, path, &e), "%s", e.msg);
    temp_output_end(t);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 1, "write_file_atomic's output missing");
    tmp_close(&d);
}

// Byte-level BPE whose vocab lacks the text's characters: a word encodes to 0 ids (the cache
// copied them from a NULL array), and tokens that decode to nothing (NULL + 0 in the decoder).
static void test_tokenizer_empty_words_and_tokens(void) {
    static const char J[] =
        "{\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true},"
        "\"decoder\": {\"type\": \"ByteLevel\"},"
        "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": []}}";
    Error e;
    Tokenizer *t = tokenizer_load_json(J, strlen(J), "tiny.json", &e);
    CHECK(t, "%s", e.msg);
    if (!t) return;
    TokScratch *s = tokscratch_new();
    TokIds ids = {0};
    TokEncodeOptions opt = {0};
    CHECK(!tokenizer_encode(t, s, "zz zz", 5, &opt, &ids, &e), "%s", e.msg);
    CHECK(ids.n == 0, "%zu ids for characters outside the vocab", ids.n);
    CHECK(!tokenizer_encode(t, s, "zz zz", 5, &opt, &ids, &e), "%s", e.msg);  // the cached words
    char *text;
    size_t len;
    CHECK(!tokenizer_decode(t, NULL, 0, 0, &text, &len, &e) && len == 0, "%s", e.msg);
    free(text);
    tokids_free(&ids);
    tokscratch_free(s);
    tokenizer_free(t);
    static const char K[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\": 0, \"a\": 1}, \"merges\": []}}";
    t = tokenizer_load_json(K, strlen(K), "empty.json", &e);
    if (t) {  // tokens whose text is empty, without a decoder: joined by a space
        uint32_t zero[2] = {0, 0};
        int rc = tokenizer_decode(t, zero, 2, 0, &text, &len, &e);
        CHECK(!rc && len == 1 && text[0] == ' ', "%s", rc ? e.msg : "not one space");
        if (!rc) free(text);
        tokenizer_free(t);
    }
}

int main(void) {
    RUN_TEST(test_parse_int_strict);
    RUN_TEST(test_parse_double_strict);
    RUN_TEST(test_temp_outputs_removed);
    RUN_TEST(test_tokenizer_empty_words_and_tokens);
    return test_summary();
}
