// fileio.h — small file helpers shared by the converters and writers.
#pragma once
#include <stddef.h>

#include "err.h"

// Writes data to "<path>.tmp.<pid>", fsyncs and renames it to path, so readers see either the
// old file or the whole new one. Errors name the file.
int write_file_atomic(const char *path, const void *data, size_t len, Error *e);
// write_file_atomic of a NUL-terminated text into dir/file.
int write_text_atomic(const char *dir, const char *file, const char *text, Error *e);

// Maps a regular file read-only. An empty file gives *map = NULL, *size = 0 (mmap refuses empty
// files); callers check the size against their format's minimum. munmap(*map, *size) frees it.
int map_file(const char *path, void **map, size_t *size, Error *e);
