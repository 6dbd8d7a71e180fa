// test_featstore: the feature store's bytes — random access by (layer, feature), absent records,
// checksums catching corruption, atomic replacement, an aborted writer leaving nothing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "featstore.h"
#include "tmpdir.h"

static TmpDir td;
static char store[256], file[300];

static void rm_store(const char *dir) {
    char p[400];
    snprintf(p, sizeof p, "%s/" FEATSTORE_FILE, dir);
    unlink(p);
    rmdir(dir);
}

static void rec_text(char *buf, size_t n, int l, int f) {
    snprintf(buf, n, "{\"layer\": %d, \"feature\": %d, \"pad\": \"%0*d\"}", l, f, 10 + f * 7, f);
}

static int write_store(int skip_odd) {
    int layers[3] = {1, 4, 7};
    Error e;
    FeatStoreWriter *w = featstore_writer_open(store, 3, layers, 50, "{\"tool\": \"test\"}", 0, &e);
    if (!w) return -1;
    char buf[512];
    for (int f = 49; f >= 0; f--)  // any order
        for (int li = 0; li < 3; li++) {
            if (skip_odd && f % 2) continue;
            rec_text(buf, sizeof buf, layers[li], f);
            if (featstore_put(w, li, f, buf, strlen(buf), &e)) return -1;
        }
    return featstore_writer_close(w, &e);
}

static void test_roundtrip(void) {
    CHECK(write_store(1) == 0, "write");
    FeatStore s;
    Error e;
    CHECK(featstore_open(&s, store, &e) == 0, "%s", e.msg);
    CHECK(s.n_layers == 3 && s.n_features == 50 && s.layers[2] == 7, "header");
    CHECK(strstr(s.meta_json, "\"test\"") != NULL, "meta %s", s.meta_json);
    CHECK(featstore_layer_index(&s, 4) == 1 && featstore_layer_index(&s, 5) == -1, "layer index");
    char want[512];
    for (int li = 0; li < 3; li++)
        for (int f = 0; f < 50; f++) {
            char *d;
            size_t n;
            int rc = featstore_get(&s, li, f, &d, &n, &e);
            if (f % 2) {
                CHECK(rc == 0 && !d, "absent (%d,%d) rc %d", li, f, rc);
                continue;
            }
            rec_text(want, sizeof want, s.layers[li], f);
            CHECK(rc == 1 && n == strlen(want) && !strcmp(d, want), "(%d,%d) rc %d", li, f, rc);
            free(d);
        }
    char *d;
    size_t n;
    CHECK(featstore_get(&s, 3, 0, &d, &n, &e) < 0 && strstr(e.msg, "outside"), "%s", e.msg);
    featstore_close(&s);
}

// Flips one byte at offset `at` (from the end when negative) and returns the error text.
static int corrupt_and_get(long at, Error *e) {
    write_store(0);
    FILE *f = fopen(file, "r+b");
    fseek(f, at, at < 0 ? SEEK_END : SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, at < 0 ? SEEK_END : SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    FeatStore s;
    if (featstore_open(&s, store, e)) return -1;
    int bad = 0;
    for (int li = 0; li < 3 && !bad; li++)
        for (int f2 = 0; f2 < 50 && !bad; f2++) {
            char *d;
            size_t n;
            if (featstore_get(&s, li, f2, &d, &n, e) < 0) bad = 1;
            free(d);
        }
    featstore_close(&s);
    return bad ? -1 : 0;
}

static void test_corruption(void) {
    Error e;
    CHECK(corrupt_and_get(30, &e) < 0 && strstr(e.msg, "header checksum"), "header: %s", e.msg);
    CHECK(corrupt_and_get(200, &e) < 0 && strstr(e.msg, "checksum"), "record: %s", e.msg);
    CHECK(corrupt_and_get(-40, &e) < 0 && strstr(e.msg, "index entry"), "index: %s", e.msg);
    CHECK(corrupt_and_get(-3, &e) < 0 && strstr(e.msg, "footer"), "footer: %s", e.msg);
    FILE *f = fopen(file, "wb");
    fputs("hello", f);
    fclose(f);
    FeatStore s;
    CHECK(featstore_open(&s, store, &e) < 0 && strstr(e.msg, "too short"), "%s", e.msg);
    rm_store(store);
    CHECK(featstore_open(&s, store, &e) < 0 && strstr(e.msg, "cannot open"), "%s", e.msg);
}

static void test_atomic(void) {
    Error e;
    rm_store(store);
    int layers[1] = {0};
    FeatStoreWriter *w = featstore_writer_open(store, 1, layers, 4, NULL, 0, &e);
    CHECK(w != NULL, "%s", e.msg);
    CHECK(featstore_put(w, 0, 1, "{}", 2, &e) == 0, "%s", e.msg);
    CHECK(featstore_put(w, 0, 1, "{}", 2, &e) < 0 && strstr(e.msg, "twice"), "%s", e.msg);
    CHECK(access(store, F_OK) != 0, "store visible before close");
    featstore_writer_abort(w);
    CHECK(access(store, F_OK) != 0, "aborted store exists");
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", store, (long)getpid());
    CHECK(access(tmp, F_OK) != 0, "temporary left behind");
    // a store replaces a store, never another directory
    CHECK(write_store(0) == 0 && write_store(1) == 0, "replace");
    FeatStore s;
    char *d;
    size_t n;
    CHECK(featstore_open(&s, store, &e) == 0 && featstore_get(&s, 0, 1, &d, &n, &e) == 0, "replaced store");
    featstore_close(&s);
    rm_store(store);
    mkdir(store, 0755);
    char other[400];
    snprintf(other, sizeof other, "%s/keep.txt", store);
    fclose(fopen(other, "w"));
    w = featstore_writer_open(store, 1, layers, 4, NULL, 0, &e);
    CHECK(featstore_writer_close(w, &e) < 0 && strstr(e.msg, "not a feature store"), "%s", e.msg);
    CHECK(access(other, F_OK) == 0, "other directory touched");
    unlink(other);
    rmdir(store);
}

int main(void) {
    tmp_open(&td, "featstore");
    snprintf(store, sizeof store, "%s/feat", td.dir);
    snprintf(file, sizeof file, "%s/" FEATSTORE_FILE, store);
    RUN_TEST(test_roundtrip);
    RUN_TEST(test_corruption);
    RUN_TEST(test_atomic);
    rm_store(store);
    tmp_close(&td);
    return test_summary();
}
