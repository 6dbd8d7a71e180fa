// fileio.h — small file helpers shared by the converters and writers.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

// Temporary outputs. Every "<path>.tmp.<pid>" a writer creates is registered while it exists, so
// that no exit leaves it behind: exit() on any error path (fatal) and SIGINT/SIGTERM/SIGHUP (a
// handler that only unlinks, then dies of the signal) remove the registered files. The first call
// installs the atexit and signal handlers. temp_output_begin formats the name into buf (n bytes)
// and registers it; returns -1 (naming path) if the name does not fit or too many are open.
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
