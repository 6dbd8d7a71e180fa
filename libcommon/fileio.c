#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int write_file_atomic(const char *path, const void *data, size_t len, Error *e) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return err_set(e, "%s: cannot create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t done = 0;
    int bad = 0;
    while (done < len && !bad) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) bad = err_set(e, "%s: write error: %s", tmp, strerror(errno));
        else done += (size_t)w;
    }
    if (!bad && fsync(fd) != 0) bad = err_set(e, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && !bad) bad = err_set(e, "%s: close failed: %s", tmp, strerror(errno));
    if (!bad && rename(tmp, path) != 0) bad = err_set(e, "%s: cannot rename %s: %s", path, tmp, strerror(errno));
    if (bad) unlink(tmp);
    return bad ? -1 : 0;
}

int write_text_atomic(const char *dir, const char *file, const char *text, Error *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return write_file_atomic(path, text, strlen(text), e);
}

int map_file(const char *path, void **map, size_t *size, Error *e) {
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return err_set(e, "%s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return err_set(e, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    if (n) {
        void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int err = errno;
            close(fd);
            return err_set(e, "%s: cannot map: %s", path, strerror(err));
        }
        *map = m;
        *size = n;
    }
    close(fd);
    return 0;
}

int pread_full(int fd, void *dst, size_t len, uint64_t off, const char *path, Error *e) {
    size_t done = 0;
    while (done < len) {
        ssize_t got = pread(fd, (uint8_t *)dst + done, len - done, (off_t)(off + done));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return err_set(e, "%s: read error: %s", path, strerror(errno));
        if (got == 0)
            return err_set(e, "%s: truncated: %zu bytes missing at offset %llu (file shrank while open?)", path, len - done,
                           (unsigned long long)(off + done));
        done += (size_t)got;
    }
    return 0;
}

int finish_output(FILE **f, const char *tmp_path, const char *path, Error *e) {
    int rc = 0;
    if (fflush(*f) != 0) rc = err_set(e, "%s: write error: %s", path, strerror(errno));
    if (!rc && tmp_path) {
        if (fsync(fileno(*f)) != 0) rc = err_set(e, "%s: fsync: %s", path, strerror(errno));
        int close_rc = fclose(*f);
        *f = NULL;
        if (!rc && close_rc != 0) rc = err_set(e, "%s: close error: %s", path, strerror(errno));
        if (!rc && rename(tmp_path, path) != 0)
            rc = err_set(e, "%s: cannot rename %s into place: %s", path, tmp_path, strerror(errno));
    }
    if (rc && tmp_path) {
        if (*f) fclose(*f);
        *f = NULL;
        unlink(tmp_path);
    }
    return rc;
}

int check_crc(const char *path, const char *what, uint32_t stored, uint32_t computed, Error *e) {
    if (stored == computed) return 0;
    return err_set(e, "%s: %s checksum mismatch (stored 0x%08x, computed 0x%08x)", path, what, stored, computed);
}
