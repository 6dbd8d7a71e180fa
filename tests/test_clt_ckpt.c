// Checkpoint sets (libcommon/clt/clt_io.h, fileio.h DirTxn): a CLT with a non-finite value or a
// threshold of 0/inf is refused and leaves the directory as it was; the manifest catches files
// from another checkpoint; a staged set is invisible until committed; an interrupted switch is
// refused by readers and finished by dir_txn_recover, which also removes orphans.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "clt_io.h"
#include "fileio.h"
#include "tmpdir.h"

static void run(const char *fmt, const char *a, const char *b) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    if (system(cmd) != 0) fprintf(stderr, "command failed: %s\n", cmd);
}

static int exists(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void test_nonfinite_refused_dir_untouched(void) {
    TmpDir td;
    tmp_open(&td, "ckpt");  // holds directories: removed with rm -rf below
    char dir[128];
    snprintf(dir, sizeof dir, "%s/clt", td.dir);
    CltParams p;
    clt_params_init(&p, 2, 3, 4, NULL);
    clt_params_init_random(&p, 5, 0.1f);
    Error e;
    CHECK(!clt_save(dir, &p, NULL, NULL, NULL, &e), "%s", e.msg);
    CHECK(clt_checkpoint_verify(dir, NULL, &e) == 0, "%s", e.msg);
    run("cp -r %s %s.before", dir, dir);
    // exp(log θ) overflows to inf although log θ is finite; then a NaN weight
    p.log_theta[1][2] = 100.0f;
    CHECK(clt_save(dir, &p, NULL, NULL, NULL, &e) == -1 && strstr(e.msg, "threshold_1[2] = inf"), "%s", e.msg);
    p.log_theta[1][2] = -200.0f;
    CHECK(clt_save(dir, &p, NULL, NULL, NULL, &e) == -1 && strstr(e.msg, "threshold_1[2] = 0"), "%s", e.msg);
    p.log_theta[1][2] = logf(0.1f);
    p.W_dec[0][5] = NAN;
    CHECK(clt_save(dir, &p, NULL, NULL, NULL, &e) == -1 && strstr(e.msg, "W_dec_0[5] = nan"), "%s", e.msg);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "diff -r %s %s.before >/dev/null", dir, dir);
    CHECK(system(cmd) == 0, "a refused save changed %s", dir);
    CHECK(!exists(dir, ".cltkit-commit"), "switch left behind");
    CltParams q;
    CHECK(!clt_load(dir, &q, &e), "%s", e.msg);
    if (q.data) clt_params_free(&q);
    // a file from another checkpoint (the set at step 0 of another seed) is a mixture
    p.W_dec[0][5] = 0.5f;
    char other[160];
    snprintf(other, sizeof other, "%s.other", dir);
    clt_params_init_random(&p, 6, 0.1f);
    CHECK(!clt_save(other, &p, NULL, NULL, NULL, &e), "%s", e.msg);
    run("cp %s/W_enc_1.safetensors %s/", other, dir);
    CHECK(clt_load(dir, &q, &e) == -1 && strstr(e.msg, "W_enc_1.safetensors: does not match checkpoint.json"), "%s",
          e.msg);
    run("rm -rf %s%s", td.dir, "");
    clt_params_free(&p);
}

static void test_dir_txn(void) {
    TmpDir td;
    tmp_open(&td, "txn");
    char dir[128], path[300];
    snprintf(dir, sizeof dir, "%s/out", td.dir);
    Error e;
    DirTxn t;
    CHECK(!dir_txn_begin(&t, dir, &e), "%s", e.msg);
    CHECK(!write_text_atomic(t.stage, "a.txt", "new a\n", &e), "%s", e.msg);
    CHECK(!exists(dir, "a.txt"), "staged file visible before the commit");
    dir_txn_abort(&t);
    CHECK(!exists(dir, "a.txt") && access(t.stage, F_OK) != 0, "abort left files");
    CHECK(!dir_txn_begin(&t, dir, &e), "%s", e.msg);
    CHECK(!write_text_atomic(t.stage, "a.txt", "A1\n", &e) && !write_text_atomic(t.stage, "b.txt", "B1\n", &e), "%s",
          e.msg);
    CHECK(!dir_txn_commit(&t, &e), "%s", e.msg);
    CHECK(exists(dir, "a.txt") && exists(dir, "b.txt") && access(t.stage, F_OK) != 0 && !dir_txn_pending(dir),
          "commit");
    // a kill between the moves: the committed set half moved, orphans of dead writers beside it
    snprintf(path, sizeof path, "%s/.cltkit-commit", dir);
    mkdir(path, 0777);
    CHECK(!write_text_atomic(path, "a.txt", "A2\n", &e) && !write_text_atomic(path, "b.txt", "B2\n", &e), "%s", e.msg);
    run("mv %s/.cltkit-commit/a.txt %s/", dir, dir);
    run("touch %s/b.txt.tmp.4194302 %s/keep.tmp.notapid", dir, dir);
    CHECK(dir_txn_pending(dir) == 1, "pending not seen");
    int removed = -1;
    CHECK(!dir_txn_recover(dir, &removed, &e), "%s", e.msg);
    CHECK(!dir_txn_pending(dir) && removed == 1 && exists(dir, "keep.tmp.notapid") && !exists(dir, "b.txt.tmp.4194302"),
          "recover: removed %d", removed);
    snprintf(path, sizeof path, "%s/b.txt", dir);
    FILE *f = fopen(path, "r");
    char buf[16] = "";
    if (f) {
        CHECK(fgets(buf, sizeof buf, f) != NULL, "read");
        fclose(f);
    }
    CHECK(!strcmp(buf, "B2\n"), "b.txt is '%s' after the recovery, not the committed set's", buf);
    run("rm -rf %s%s", td.dir, "");
}

int main(void) {
    RUN_TEST(test_nonfinite_refused_dir_untouched);
    RUN_TEST(test_dir_txn);
    return test_summary();
}
