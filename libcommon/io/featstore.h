// featstore.h — the feature store that feat-topk writes (spec: formats/features.md): one
// zstd-compressed JSON record per CLT feature (layer, feature), read by random access without
// touching the other records. The store is a directory DIR holding one file, features.bin:
//   header (magic, version, layers, features per layer, meta JSON), the records, a fixed-size
//   index (one 24-byte entry per (layer, feature), each with its own CRC-32C), a footer.
// Every record carries a CRC-32C; the header's is in the footer. The writer builds the store in
// "DIR.tmp.<pid>" and renames it to DIR at close, so a killed run leaves no store under DIR.
// What a record holds is feat_collect.h's business; this file only moves bytes.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FEATSTORE_VERSION 1
#define FEATSTORE_FILE "features.bin"
#define FEATSTORE_MAX_LAYERS 4096
#define FEATSTORE_MAX_FEATURES (1 << 26)
#define FEATSTORE_MAX_META (16u << 20)
#define FEATSTORE_MAX_RECORD (1u << 30)  // decompressed bytes of one record

typedef struct FeatStoreWriter FeatStoreWriter;

// Starts a store of n_layers layers (model layer numbers `layers`, strictly ascending) of
// n_features features each. meta_json: a JSON object (NULL: "{}"). zstd_level 0 = default 3.
FeatStoreWriter *featstore_writer_open(const char *dir, int n_layers, const int *layers, int n_features,
                                       const char *meta_json, int zstd_level, Error *e);
// Appends the record of (stored layer li, feature); each at most once, in any order.
int featstore_put(FeatStoreWriter *w, int li, int feature, const void *data, size_t len, Error *e);
// Writes index and footer, fsyncs and renames the directory into place (an existing store at dir
// is replaced). Frees w; on failure nothing appears at dir.
int featstore_writer_close(FeatStoreWriter *w, Error *e);
// Discards the half-written store. Frees w.
void featstore_writer_abort(FeatStoreWriter *w);

typedef struct {
    char *path;  // DIR/features.bin
    int fd;
    uint64_t file_size, index_offset;
    int n_layers, n_features;
    int *layers;      // (n_layers,) model layer numbers
    char *meta_json;  // NUL-terminated
} FeatStore;

// Opens a store directory (or its features.bin): header, footer and bounds are checked.
int featstore_open(FeatStore *s, const char *dir, Error *e);
void featstore_close(FeatStore *s);
// Position of model layer `layer` in s->layers, or -1.
int featstore_layer_index(const FeatStore *s, int layer);
// The record of (stored layer li, feature) as a malloc'd NUL-terminated buffer (*len bytes
// before the NUL): 1; 0 when the store holds none; -1 on error (checksum, zstd, bounds). Reads
// one index entry and one record (pread: threads may share s).
int featstore_get(const FeatStore *s, int li, int feature, char **data, size_t *len, Error *e);
