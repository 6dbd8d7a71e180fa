// safetensors.h — reader (mmap) and writer for Hugging Face safetensors files.
// Reader checks what the reference implementation checks: header length <= 100,000,000,
// header within the file, valid UTF-8 JSON object, known dtype, data_offsets contiguous from 0
// without holes or overlaps, byte span == numel x dtype size, buffer ends exactly at EOF, no
// duplicate names. Every failure is an Error naming the file and the problem.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "err.h"

// StDtype (ST_F32 …) is in base/dtype.h.

const char *st_dtype_name(StDtype t);
size_t st_dtype_size(StDtype t);
int st_dtype_parse(const char *name, StDtype *out);  // 0 ok, -1 unknown

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t numel;
    uint64_t nbytes;
    const void *data;  // points into the mapping
} StTensor;

typedef struct {
    char *path;
    void *map;
    size_t map_size;
    int n_tensors;
    StTensor *tensors;  // sorted by name
    char *metadata_json;  // "__metadata__" object as JSON text, or NULL
} SafeTensors;

int safetensors_open(SafeTensors *st, const char *path, Error *e);
// Same checks on an in-memory buffer (used by the fuzzer); the buffer must outlive st.
int safetensors_parse(SafeTensors *st, const void *buf, size_t len, const char *name, Error *e);
void safetensors_close(SafeTensors *st);
const StTensor *safetensors_find(const SafeTensors *st, const char *name);
// Copies a tensor to fp32 (F32/F16/BF16/F8_E4M3 and integer types), checking numel == expected
// (0 = don't check). Error names file, tensor and problem.
int safetensors_to_f32(const SafeTensors *st, const StTensor *t, float *out, uint64_t expected_numel, Error *e);
// The tensor `name` of exactly this shape (ndim dims), converted to f32 into dst; a missing tensor
// or another shape is an error naming the file and the tensor.
int safetensors_load_f32(const SafeTensors *st, const char *name, const int64_t *shape, int ndim, float *dst, Error *e);

// Writer: add tensors, then write. Layout like the reference writer (sorted by descending
// alignment then name, header padded with spaces to a multiple of 8). Atomic (temp + rename).
typedef struct {
    const char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
} StWriteTensor;
int safetensors_write(const char *path, const StWriteTensor *tensors, int n, const char *metadata_json, Error *e);
