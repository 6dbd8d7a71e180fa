// fileio.h — small file helpers shared by the converters and writers.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

// Temporary outputs. Every "<path>.tmp.<pid>" a writer creates is registered while it exists, so
// that no exit leaves it behind: exit() on any error path (fatal) and SIGINT/SIGTERM/SIGHUP (a
// handler that only unlinks, then dies of the signal) remove the registered files. The first call
// installs the atexit and signal handlers; a handler the program set before (clt-fit's graceful
// stop) is called instead, and the program's normal exit then removes what is left.
// temp_output_begin formats the name into buf (n bytes) and registers it; returns -1 (naming path)
// if the name does not fit or too many are open.
int temp_output_begin(char *buf, size_t n, const char *path, Error *e);
// Forgets a registered temp path (after its rename or unlink); unknown paths are ignored.
void temp_output_end(const char *tmp);

// Writes data to "<path>.tmp.<pid>", fsyncs and renames it to path, so readers see either the
// old file or the whole new one. Errors name the file.
int write_file_atomic(const char *path, const void *data, size_t len, Error *e);
// write_file_atomic of a NUL-terminated text into dir/file.
int write_text_atomic(const char *dir, const char *file, const char *text, Error *e);

// Maps a regular file read-only. An empty file gives *map = NULL, *size = 0 (mmap refuses empty
// files); callers check the size against their format's minimum. munmap(*map, *size) frees it.
int map_file(const char *path, void **map, size_t *size, Error *e);

// Reads exactly len bytes at offset off (pread: no file position, so threads may share fd).
// A short file is an error naming path and the missing bytes.
int pread_full(int fd, void *dst, size_t len, uint64_t off, const char *path, Error *e);
// Finishes a streamed output: flush f; if tmp_path is set (a file, not stdout), fsync, close and
// rename tmp_path to path — a crash can't leave a complete-looking name over lost data — and on
// any failure close f and remove tmp_path. Sets *f to NULL when it closed it.
int finish_output(FILE **f, const char *tmp_path, const char *path, Error *e);
// "<path>: <what> checksum mismatch (stored 0x..., computed 0x...)" unless they are equal.
int check_crc(const char *path, const char *what, uint32_t stored, uint32_t computed, Error *e);

// A multi-file output (a CLT checkpoint, a converted model) switched into a directory as one set.
// The files are written into a fresh staging directory, dir/.cltkit-staging.<pid>; dir_txn_commit
// fsyncs it and renames it to dir/.cltkit-commit (the one rename that commits the set), then moves
// its files into dir and removes it. Killed before that rename: dir is untouched. Killed after it:
// dir/.cltkit-commit holds the complete new set, readers refuse dir (dir_txn_pending) and
// dir_txn_recover finishes the switch.
typedef struct {
    char dir[4096], stage[4200];
} DirTxn;
// Creates dir if missing, recovers it (dir_txn_recover), then makes a fresh staging directory.
int dir_txn_begin(DirTxn *t, const char *dir, Error *e);
int dir_txn_commit(DirTxn *t, Error *e);
// Removes the staging directory and what was written into it.
void dir_txn_abort(DirTxn *t);
// Finishes an interrupted switch, then removes the orphans of killed writers: files named
// "*.tmp.<pid>" and staging directories of processes that no longer run. *removed (may be NULL)
// counts the orphans.
int dir_txn_recover(const char *dir, int *removed, Error *e);
// 1 when dir holds a set whose switch was interrupted (its files are a mixture), else 0.
int dir_txn_pending(const char *dir);
// 1 when path exists and is not a regular file (a device such as /dev/stdout or /dev/full, a
// FIFO): an output there is written in place, never through a temporary file renamed over it.
int is_special_file(const char *path);
