// gguf.h — reader for GGUF files (ggml/llama.cpp's model container, versions 2 and 3), mapped
// read-only. formats/gguf.md describes the layout; in short:
//
//   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x   (string key | u32 value_type | value)
//   n_tensors x (string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset)
//   padding to `general.alignment` (default 32) | tensor data
//
// A string is u64 length + bytes (no NUL). An array value is u32 element type + u64 count +
// elements (arrays of arrays and of strings allowed). ne[0] is the fastest-varying dimension (a
// row), so the HF/PyTorch shape is ne reversed. A tensor's offset is relative to the data start.
//
// Everything is checked before use: counts against the bytes left, string and array lengths,
// value and tensor types, dimensions (overflow), ne[0] against the block size, alignment,
// tensor spans inside the data section and not overlapping, duplicate keys and tensor names,
// and nesting depth. Every failure is an Error naming the file and the problem.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gguf_dequant.h"

typedef enum {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5, GGUF_F32 = 6,
    GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10, GGUF_I64 = 11, GGUF_F64 = 12,
    GGUF_VALUE_TYPE_COUNT
} GgufValueType;

#define GGUF_MAX_DIMS 4
#define GGUF_MAX_DEPTH 8           // nesting limit for arrays of arrays
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct {
    const char *ptr;  // into the mapping; NOT NUL-terminated
    uint64_t len;
} GgufStr;

typedef struct GgufValue GgufValue;
struct GgufValue {
    GgufValueType type;
    union {
        uint64_t u;   // U8, U16, U32, U64, BOOL (0/1)
        int64_t i;    // I8, I16, I32, I64
        double f;     // F32, F64
        GgufStr s;    // STRING
        struct {
            GgufValueType type;   // element type
            uint64_t n;           // element count
            const uint8_t *data;  // scalar elements, packed little-endian (any alignment)
            GgufValue *items;     // STRING / ARRAY elements, parsed (n of them); else NULL
        } arr;
    };
};

typedef struct {
    char *key;  // NUL-terminated copy
    GgufValue value;
} GgufKV;

typedef struct {
    char *name;       // NUL-terminated copy
    int n_dims;
    uint64_t ne[GGUF_MAX_DIMS];  // ne[0] = row length; unused dims are 1
    uint32_t type;    // GgmlType
    uint64_t offset;  // from the data start
    uint64_t numel, nbytes;
    const uint8_t *data;  // into the mapping
} GgufTensor;

typedef struct {
    char *path;
    void *map;         // gguf_open's mapping (NULL after gguf_parse)
    size_t map_size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;  // where tensor data starts in the file
    uint64_t n_kv;
    GgufKV *kv;            // file order
    uint64_t n_tensors;
    GgufTensor *tensors;   // file order
} Gguf;

// Maps path and parses it.
int gguf_open(Gguf *g, const char *path, Error *e);
// Parses an in-memory file (the fuzzer's entry); buf must outlive g. name is used in messages.
int gguf_parse(Gguf *g, const void *buf, size_t len, const char *name, Error *e);
void gguf_close(Gguf *g);

const char *gguf_value_type_name(uint32_t t);

const GgufKV *gguf_find_kv(const Gguf *g, const char *key);
const GgufTensor *gguf_find_tensor(const Gguf *g, const char *name);

// Typed metadata getters: 0 and *out set if present with a fitting type, 1 if the key is
// absent (*out untouched), -1 with an Error naming the file and key if the type does not fit.
// get_int accepts every integer type (and checks the value fits int64); get_float also F32/F64
// and integers; get_str returns the string (not NUL-terminated); get_bool only BOOL.
int gguf_get_int(const Gguf *g, const char *key, int64_t *out, Error *e);
int gguf_get_float(const Gguf *g, const char *key, double *out, Error *e);
int gguf_get_str(const Gguf *g, const char *key, GgufStr *out, Error *e);
int gguf_get_bool(const Gguf *g, const char *key, int *out, Error *e);
// An array key whose elements have type elem (GGUF_STRING, GGUF_I32, ...): same return codes.
int gguf_get_array(const Gguf *g, const char *key, GgufValueType elem, const GgufValue **out, Error *e);

// Element i of a scalar array as int64/double (i < arr.n; integer, bool or float elements;
// floats truncate toward zero and saturate in gguf_array_int).
int64_t gguf_array_int(const GgufValue *v, uint64_t i);
double gguf_array_float(const GgufValue *v, uint64_t i);

// Dequantizes a tensor to fp32 (out holds numel floats). Errors name the file, the tensor and
// the type when the type cannot be dequantized.
int gguf_tensor_to_f32(const Gguf *g, const GgufTensor *t, float *out, Error *e);
