// progress: the one progress style (libcommon/base/progress.h) rendered into a buffer: integer counts
// (issue 13: "58.0/2000.0 steps"), the total, percentage and ETA when the total is known, the key
// metric, and nothing drawn when stderr is not a terminal.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "progress.h"

static void test_integer_counts(void) {
    Progress p;
    progress_init(&p, "clt-fit", "steps", 1, 2000);
    p.done = 58;
    char buf[256];
    progress_format(&p, 2.0, buf, sizeof buf);
    CHECK(strstr(buf, " 58/2000 steps") != NULL, "'%s'", buf);
    CHECK(strstr(buf, ".0/") == NULL && strstr(buf, "58.0") == NULL, "a float count: '%s'", buf);
    CHECK(strstr(buf, "  2%") != NULL, "percentage: '%s'", buf);
    CHECK(strstr(buf, "29.0 steps/s") == NULL && strstr(buf, "29 steps/s") != NULL, "rate: '%s'", buf);
    // 58 steps in 2 s: 1942 left at 29/s = 66.97 s
    CHECK(strstr(buf, "ETA 1m07s") != NULL, "ETA: '%s'", buf);
}

static void test_resumed(void) {
    // resumed at step 1000 of 2000: 100 steps in 10 s is 10/s, 900 left: 90 s
    Progress p;
    progress_init(&p, "clt-fit", "steps", 1, 2000);
    p.first = 1000;
    p.done = 1100;
    char buf[256];
    progress_format(&p, 10.0, buf, sizeof buf);
    CHECK(strstr(buf, " 55%  1100/2000 steps  10 steps/s  ETA 1m30s") != NULL, "'%s'", buf);
}

static void test_metric_and_finish(void) {
    Progress p;
    progress_init(&p, "clt-fit", "steps", 1, 100);
    progress_metric(&p, "loss %.4f", 0.01234);
    p.done = 100;
    char buf[256];
    progress_format(&p, 10.0, buf, sizeof buf);
    CHECK(strstr(buf, "100%  100/100 steps") != NULL, "'%s'", buf);
    CHECK(strstr(buf, "ETA") == NULL, "no ETA when done: '%s'", buf);
    size_t n = strlen(buf);
    CHECK(n > 11 && !strcmp(buf + n - 11, "loss 0.0123"), "metric last: '%s'", buf);
    progress_metric(&p, "%s", "");
    progress_format(&p, 10.0, buf, sizeof buf);
    CHECK(buf[strlen(buf) - 1] != ' ', "trailing blanks without a metric: '%s'", buf);
}

static void test_unknown_total_and_scaled(void) {
    Progress p;
    progress_init(&p, "tok encode", "MB", 1e6, 0);
    p.done = 2500000;
    char buf[256];
    progress_format(&p, 0.5, buf, sizeof buf);
    CHECK(!strcmp(buf, "tok encode 2.5 MB  5 MB/s"), "'%s'", buf);
    progress_init(&p, "fwd-acts", "tok", 1, 0);
    p.done = 12345;
    progress_format(&p, 0, buf, sizeof buf);
    CHECK(!strcmp(buf, "fwd-acts 12345 tok  0 tok/s"), "'%s'", buf);
}

static void test_quiet_off_terminal(void) {
    // stderr to a file: nothing is written (logs and pipes stay clean)
    char path[] = "/tmp/test_progress_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    Progress p;
    progress_init(&p, "x", "tok", 1, 10);
    for (uint64_t i = 0; i <= 10; i++) progress_update(&p, i);
    progress_finish(&p);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    close(fd);
    unlink(path);
    CHECK(size == 0, "%lld bytes drawn to a file", (long long)size);
    CHECK(p.done == 10, "done %llu", (unsigned long long)p.done);
}

int main(void) {
    RUN_TEST(test_integer_counts);
    RUN_TEST(test_resumed);
    RUN_TEST(test_metric_and_finish);
    RUN_TEST(test_unknown_total_and_scaled);
    RUN_TEST(test_quiet_off_terminal);
    return test_summary();
}
