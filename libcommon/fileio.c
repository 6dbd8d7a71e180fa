#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// The registry is process-wide state by necessity: a signal handler has no other way to find the
// files. Slots are filled under the lock and published by `used` last; the handler only reads
// used slots and calls unlink (async-signal-safe), never malloc or stdio.
#define MAX_TEMPS 64
static char temp_paths[MAX_TEMPS][4200];
static volatile sig_atomic_t temp_used[MAX_TEMPS];
static pthread_mutex_t temp_lock = PTHREAD_MUTEX_INITIALIZER;
static int temp_handlers_installed;

static void temp_unlink_all(void) {
    for (int i = 0; i < MAX_TEMPS; i++)
        if (temp_used[i]) unlink(temp_paths[i]);
}

static void temp_on_signal(int sig) {
    temp_unlink_all();
    signal(sig, SIG_DFL);  // then die of the signal as if there were no handler (exit status 128 + sig)
    raise(sig);
}

static void temp_install_handlers(void) {
    atexit(temp_unlink_all);
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction old, sa = {0};
        sa.sa_handler = temp_on_signal;
        sigemptyset(&sa.sa_mask);
        // a signal the caller ignores (nohup, a background job's SIGINT) stays ignored
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

int temp_output_begin(char *buf, size_t n, const char *path, Error *e) {
    int len = snprintf(buf, n, "%s.tmp.%ld", path, (long)getpid());
    if (len < 0 || (size_t)len >= n || (size_t)len >= sizeof temp_paths[0])
        return err_set(e, "%s: path too long for a temporary file name", path);
    pthread_mutex_lock(&temp_lock);
    if (!temp_handlers_installed) {
        temp_install_handlers();
        temp_handlers_installed = 1;
    }
    int slot = -1;
    for (int i = 0; i < MAX_TEMPS && slot < 0; i++)
        if (!temp_used[i]) slot = i;
    if (slot >= 0) {
        memcpy(temp_paths[slot], buf, (size_t)len + 1);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);  // the path is complete before the handler can see the slot
        temp_used[slot] = 1;
    }
    pthread_mutex_unlock(&temp_lock);
    return slot < 0 ? err_set(e, "%s: more than %d temporary outputs open at once", path, MAX_TEMPS) : 0;
}

void temp_output_end(const char *tmp) {
    if (!tmp) return;
    pthread_mutex_lock(&temp_lock);
    for (int i = 0; i < MAX_TEMPS; i++)
        if (temp_used[i] && !strcmp(temp_paths[i], tmp)) {
            temp_used[i] = 0;
            break;
        }
    pthread_mutex_unlock(&temp_lock);
}

int write_file_atomic(const char *path, const void *data, size_t len, Error *e) {
    char tmp[4200];
    if (temp_output_begin(tmp, sizeof tmp, path, e)) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        temp_output_end(tmp);
        return err_set(e, "%s: cannot create: %s", tmp, strerror(errno));
    }
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
    temp_output_end(tmp);
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
