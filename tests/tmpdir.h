// tmpdir.h — a temporary directory for the tests that write files: created under /tmp, removed
// with whatever the test left in it.
#pragma once
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char dir[64];
} TmpDir;

// Creates /tmp/cltkit_<tag>_XXXXXX; a test cannot go on without it, so a failure exits.
static inline void tmp_open(TmpDir *t, const char *tag) {
    snprintf(t->dir, sizeof t->dir, "/tmp/cltkit_%s_XXXXXX", tag);
    if (!mkdtemp(t->dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

// Removes the files in the directory (no subdirectories are made) and the directory.
static inline void tmp_close(TmpDir *t) {
    DIR *d = opendir(t->dir);
    struct dirent *ent;
    char p[512];
    while (d && (ent = readdir(d))) {
        if (ent->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", t->dir, ent->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(t->dir);
}
