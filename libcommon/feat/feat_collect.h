// feat_collect.h — streaming collection of every CLT feature's evidence over a corpus, in bounded
// memory, mergeable across shards (the merge of the shards' states equals one job's, exactly):
//   - top-k windows by max activation (one per window, identical windows deduplicated);
//   - samples across the activation range: per split (explain / test) a uniform sample of the
//     activating windows, cut at the end into equal-count bins (Delphi's quantiles);
//   - non-activating windows, a uniform sample per split;
//   - token statistics: firing count, max, min, exact sum (fixed point), a log histogram;
//   - the decoder's top/bottom logits (given by the caller: feat_set_logits).
// The corpus is a sequence of model contexts of T tokens (BOS excluded), numbered globally.
// Context c is cut into windows of W tokens, window id c·⌈T/W⌉ + w; every random choice is a
// hash of the window id and the seed, never of the order of arrival, so shards merge exactly:
//   split(window)      = bit 0 of mix(id ^ seed ^ salt)       (explain 0, test 1) — fixed before
//                        any sampling, so a window is on one side for every feature
//   priority(window)   = mix(id ^ seed) >> 11                  (non-activating samples: lowest first)
//   priority(window,f) = mix(priority(window) ^ (li·F + f + 1)·K) >> 11   (activating samples)
// A sample set is the lowest priorities; the top-k is the highest (activation, then lowest id).
// Records (formats/features.md, "Record") are JSON; they hold the whole state, so merging reads
// records back (feat_collector_merge_store).
//
// Memory bound: every feature 2·random windows of W tokens (4·W + 48 bytes each) and ~200 bytes;
// a feature that fires also (k + 2·bins·per_bin) examples of V = window + 2·extra tokens
// (8·V + 48 bytes each) and a 256-bucket histogram (1 KiB). Nothing grows with the corpus.
#pragma once
#include <jansson.h>
#include <stdint.h>

#include "clt.h"
#include "err.h"
#include "featstore.h"
#include "model.h"
#include "tokenizer.h"

typedef struct {
    int k;             // top examples per feature (100)
    int window;        // W, tokens per window (32)
    int max_at;        // index of the max inside a window's view (24; Delphi's centring)
    int extra;         // tokens stored beyond the window on each side (0): a longer view
    int n_bins;        // equal-count bins of the activating samples (10)
    int per_bin;       // samples per bin and split (5)
    int n_random;      // non-activating windows per split (10)
    int n_logits;      // top and bottom decoder logits kept (10)
    uint64_t seed;     // splits and sampling priorities (0)
    double always_on;  // density (firing tokens / tokens) from which a feature is flagged (0.9)
} FeatOptions;

void feat_options_default(FeatOptions *o);

// The histogram: 8 buckets per octave over [2^-16, 2^16) (12% wide at most), the first and last
// bucket also holding what falls below and above. bucket_lo(b) is the smallest value in b.
#define FEAT_HIST_SUB 8
#define FEAT_HIST_OCTAVES 32
#define FEAT_HIST_EMIN (-15)
#define FEAT_HIST_BUCKETS (FEAT_HIST_SUB * FEAT_HIST_OCTAVES)
int feat_hist_bucket(float a);
double feat_hist_bucket_lo(int b);
// The sampling hashes above (exposed for tests that recompute a collection by brute force).
uint64_t feat_window_priority(uint64_t window, uint64_t seed);
int feat_window_split(uint64_t window, uint64_t seed);
uint64_t feat_sample_priority(uint64_t window_priority, int li, int n_features, int feature);
// Activation sums are kept exactly as integers in units of 2^-32 (each value truncated first).
#define FEAT_SUM_SCALE 4294967296.0

typedef struct FeatCollector FeatCollector;

// n_layers stored layers (model layer numbers `layers`) of n_features features, contexts of T
// tokens (BOS excluded). threads: 0 = parallel_threads().
FeatCollector *feat_collector_new(const FeatOptions *o, int n_layers, const int *layers, int n_features, int T,
                                  int threads);
void feat_collector_free(FeatCollector *c);

// A batch of B contexts.
typedef struct {
    int B;
    const uint32_t *tokens;     // (B, T) token ids
    const uint64_t *doc_ids;    // (B, T) document of each token
    const uint32_t *positions;  // (B, T) position of each token in its document
    const uint64_t *ctx_index;  // (B,) the context's number in the corpus
    const int *n_valid;         // (B,) tokens of each context (a short last one), or NULL: all T
} FeatBatch;

// Counts the batch's tokens and contexts; once per batch, whatever the layers.
void feat_count_batch(FeatCollector *c, const FeatBatch *b);
// Adds stored layer li's activations over the batch: acts (B·T, F), row b·T + t (rows past
// n_valid are ignored). Features are split over threads.
void feat_collect(FeatCollector *c, int li, const FeatBatch *b, const float *acts);
// The decoder logits of feature f of stored layer li: n_logits ids and values, highest first, and
// the n_logits lowest, lowest first.
void feat_set_logits(FeatCollector *c, int li, int f, const uint32_t *top_ids, const float *top_vals,
                     const uint32_t *bot_ids, const float *bot_vals);

// Writes the store: meta = `meta` (a JSON object of the caller's fields, may be NULL) plus
// "options", "layout" {n_layers, layers, n_features, ctx_tokens}, "n_tokens", "n_contexts".
int feat_collector_write(FeatCollector *c, const char *dir, json_t *meta, Error *e);
// Adds every record of store s (same options and layout as c, else an error) into c.
int feat_collector_merge_store(FeatCollector *c, const FeatStore *s, Error *e);
// A collector with the options and layout of store s's meta (empty: merge stores into it).
FeatCollector *feat_collector_from_store(const FeatStore *s, int threads, Error *e);

// A record as circuit-tracer's feature-detail JSON plus our fields (viewer_contract.md): tokens
// decoded with tok (NULL: "<id>"), transcoder_id as given. New reference.
json_t *feat_export_json(const json_t *record, const Tokenizer *tok, const char *transcoder_id);
// Reads and parses the record of (model layer, feature): a new reference, or NULL with e.
json_t *feat_store_record(const FeatStore *s, int layer, int feature, Error *e);
// The store's CLT as its meta names it ("clt_dir"; "" if none): the export's transcoder_id.
const char *feat_store_transcoder_id(const FeatStore *s, char *buf, size_t n);
// The tokenizer at path, else the one the store's meta names ("tokenizer") when it still exists;
// NULL (tokens print as "<id>") when path is NULL and there is none; NULL with e when path fails to load.
Tokenizer *feat_store_tokenizer(const FeatStore *s, const char *path, Error *e);

// ---- the CLT side ---------------------------------------------------------------------------------

// The JumpReLU activations of CLT layer l over N input rows x (N, d): a (N, F) = h·[h > θ],
// h = x W_encᵀ + b_enc.
void feat_clt_activations(const CltParams *p, int l, const float *x, int N, float *a);
// Each feature's decoder through the unembedding, as circuit-tracer's feature pages: the sum of
// CLT layer l's decoders over its target layers, times the final norm's weight (Gemma: 1 + w),
// through lm_head (V, d); the n_logits highest and lowest logits of every feature of layer l go to
// stored layer li of c. Cost: F·V·d multiply-adds per layer (GEMMs of 64 features at a time).
// Job shard_i of shard_n computes only its share of the blocks of 64 features (block b of stored
// layer li, numbered li·⌈F/64⌉ + b, goes to shard number % shard_n): the shards of one run compute
// every logit once, and their merge is the one job's store (a block is the same GEMM in any job).
#define FEAT_LOGIT_BLOCK 64
void feat_collect_logits(FeatCollector *c, int li, const CltParams *p, int l, const Model *m, int shard_i, int shard_n);
