// fnv.c — see fnv.h.
#include "fnv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int fnv1a64_file(const char *path, uint64_t *h, Error *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(e, "%s: cannot read: %s", path, strerror(errno));
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) *h = fnv1a64_update(*h, buf, n);
    int bad = ferror(f);
    fclose(f);
    return bad ? err_set(e, "%s: read error", path) : 0;
}
