// shard_io.c — see shard_io.h.
#include "shard_io.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

void *shard_grow(void *p, size_t *cap, size_t n) {
    if (p && n <= *cap) return p;
    size_t c = *cap ? *cap : 256;
    while (c < n) c = c > SIZE_MAX / 2 ? n : c * 2;
    *cap = c;
    return xrealloc(p, c);
}

int shard_meta_is_object(const char *text, size_t len, char *why, size_t why_len) {
    if (memchr(text, 0, len)) {
        snprintf(why, why_len, "contains a NUL byte");
        return 0;
    }
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    if (!j) {
        snprintf(why, why_len, "invalid JSON: %s", jerr.text);
        return 0;
    }
    int ok = json_is_object(j);
    json_decref(j);
    if (!ok) snprintf(why, why_len, "not a JSON object");
    return ok;
}

int shard_open_file(const char *path, int *fd, uint64_t *size, Error *e) {
    *fd = -1;
    if (!strcmp(path, "-"))  // not a file named "-": stdin, which a shard reader cannot seek in
        return err_set(e, "-: a shard cannot be read from stdin (it is read by random access, from its end); "
                       "give a file");
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return err_set(e, "%s: not a regular file (a shard is read by random access, from its end)", path);
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

int shard_read_at(int fd, const uint8_t *mem, const char *path, void *dst, size_t len, uint64_t off, Error *e) {
    if (mem) {
        memcpy(dst, mem + off, len);
        return 0;
    }
    return pread_full(fd, dst, len, off, path, e);
}

int shard_write(FILE *f, const char *path, const void *p, size_t n, uint64_t *offset, int *failed, Error *e) {
    if (n && fwrite(p, 1, n, f) != n) {
        *failed = 1;
        return err_set(e, "%s: write error: %s", path, strerror(errno));
    }
    *offset += n;
    return 0;
}
