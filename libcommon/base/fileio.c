#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

// The handlers that were in place when the registry's were installed: a program's own handler
// (clt-fit's "finish the step, save, exit") must keep working after its first atomic write.
static const int temp_sigs[] = {SIGINT, SIGTERM, SIGHUP};
#define N_TEMP_SIGS (sizeof temp_sigs / sizeof *temp_sigs)
static struct sigaction temp_prev[N_TEMP_SIGS];

static void temp_on_signal(int sig) {
    for (size_t i = 0; i < N_TEMP_SIGS; i++) {
        void (*prev)(int) = temp_prev[i].sa_handler;
        // a program handler decides itself (a graceful stop ends its writes and exits normally,
        // and the atexit hook removes what is still registered); else remove the temporaries and
        // die of the signal as if there were no handler (exit status 128 + sig)
        if (temp_sigs[i] == sig && prev != SIG_DFL && prev != SIG_IGN && !(temp_prev[i].sa_flags & SA_SIGINFO)) {
            prev(sig);
            return;
        }
    }
    temp_unlink_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void temp_install_handlers(void) {
    atexit(temp_unlink_all);
    for (size_t i = 0; i < N_TEMP_SIGS; i++) {
        struct sigaction sa = {0};
        sa.sa_handler = temp_on_signal;
        sigemptyset(&sa.sa_mask);
        // a signal the caller ignores (nohup, a background job's SIGINT) stays ignored
        if (sigaction(temp_sigs[i], NULL, &temp_prev[i]) == 0 && temp_prev[i].sa_handler == SIG_IGN) continue;
        sigaction(temp_sigs[i], &sa, NULL);
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
            return err_set(e, "%s: truncated: %zu bytes missing at offset %llu (file shrank while open?)", path,
                           len - done, (unsigned long long)(off + done));
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

// ---- multi-file outputs ------------------------------------------------------------------------

#define TXN_COMMIT ".cltkit-commit"
#define TXN_STAGE ".cltkit-staging."

static int fsync_dir(const char *dir, Error *e) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return err_set(e, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = fsync(fd) && errno != EINVAL ? err_set(e, "%s: fsync failed: %s", dir, strerror(errno)) : 0;
    close(fd);
    return rc;
}

// Removes a flat directory (our staging directories hold files only).
static void remove_flat_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char path[4500];
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

// Moves every file of src into dir (replacing), then removes src.
static int move_all(const char *src, const char *dir, Error *e) {
    DIR *d = opendir(src);
    if (!d) return err_set(e, "%s: cannot open directory: %s", src, strerror(errno));
    struct dirent *de;
    char from[4500], to[4500];
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(from, sizeof from, "%s/%s", src, de->d_name);
        snprintf(to, sizeof to, "%s/%s", dir, de->d_name);
        if (rename(from, to)) rc = err_set(e, "%s: cannot move %s into place: %s", to, from, strerror(errno));
    }
    closedir(d);
    if (!rc && rmdir(src)) rc = err_set(e, "%s: cannot remove: %s", src, strerror(errno));
    if (!rc) rc = fsync_dir(dir, e);
    return rc;
}

// The pid in a name ending in ".<digits>" after prefix-free text, or -1.
static long trailing_pid(const char *name, const char *marker) {
    const char *m = strstr(name, marker);
    if (!m) return -1;
    const char *p = m + strlen(marker);
    while (strstr(p, marker)) p = strstr(p, marker) + strlen(marker);  // the last occurrence
    if (!*p) return -1;
    char *end;
    long pid = strtol(p, &end, 10);
    return *end || pid <= 0 ? -1 : pid;
}

static int pid_gone(long pid) { return pid == (long)getpid() || (kill((pid_t)pid, 0) && errno == ESRCH); }

int dir_txn_pending(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/" TXN_COMMIT, dir);
    struct stat sb;
    return stat(path, &sb) == 0;
}

int dir_txn_recover(const char *dir, int *removed, Error *e) {
    if (removed) *removed = 0;
    char path[4500];
    if (dir_txn_pending(dir)) {
        snprintf(path, sizeof path, "%s/" TXN_COMMIT, dir);
        if (move_all(path, dir, e)) return -1;
    }
    DIR *d = opendir(dir);
    if (!d) return err_set(e, "%s: cannot open directory: %s", dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        long stage_pid = strncmp(de->d_name, TXN_STAGE, strlen(TXN_STAGE)) ? -1 : trailing_pid(de->d_name, TXN_STAGE);
        long tmp_pid = stage_pid > 0 ? -1 : trailing_pid(de->d_name, ".tmp.");
        if ((stage_pid < 0 && tmp_pid < 0) || !pid_gone(stage_pid > 0 ? stage_pid : tmp_pid)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stage_pid > 0) remove_flat_dir(path);
        else unlink(path);
        if (removed) (*removed)++;
    }
    closedir(d);
    return 0;
}

int dir_txn_begin(DirTxn *t, const char *dir, Error *e) {
    if ((size_t)snprintf(t->dir, sizeof t->dir, "%s", dir) >= sizeof t->dir)
        return err_set(e, "%s: path too long", dir);
    if (mkdir(dir, 0777) && errno != EEXIST) return err_set(e, "%s: cannot create directory: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) return err_set(e, "%s: not a directory", dir);
    if (dir_txn_recover(dir, NULL, e)) return -1;  // an interrupted switch, orphans of killed writers
    snprintf(t->stage, sizeof t->stage, "%s/" TXN_STAGE "%ld", dir, (long)getpid());
    remove_flat_dir(t->stage);  // a leftover of an earlier process with our pid
    if (mkdir(t->stage, 0777)) return err_set(e, "%s: cannot create directory: %s", t->stage, strerror(errno));
    return 0;
}

int dir_txn_commit(DirTxn *t, Error *e) {
    char commit[4200];
    snprintf(commit, sizeof commit, "%s/" TXN_COMMIT, t->dir);
    if (fsync_dir(t->stage, e)) {
        dir_txn_abort(t);
        return -1;
    }
    if (rename(t->stage, commit)) {
        int rc = err_set(e, "%s: cannot rename %s: %s", commit, t->stage, strerror(errno));
        dir_txn_abort(t);
        return rc;
    }
    if (fsync_dir(t->dir, e)) return -1;
    return move_all(commit, t->dir, e);
}

void dir_txn_abort(DirTxn *t) { remove_flat_dir(t->stage); }

int is_special_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && !S_ISREG(sb.st_mode);
}
