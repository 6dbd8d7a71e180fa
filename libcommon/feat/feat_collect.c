// feat_collect.c — see feat_collect.h and formats/features.md ("Record").
#include "feat_collect.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "matmul.h"
#include "threads.h"
#include "unicode.h"

__extension__ typedef __int128 i128;

void feat_options_default(FeatOptions *o) {
    *o = (FeatOptions){.k = 100, .window = 32, .max_at = 24, .extra = 0, .n_bins = 10, .per_bin = 5,
                       .n_random = 10, .n_logits = 10, .seed = 0, .always_on = 0.9};
}

// ---- hashes and histogram -------------------------------------------------------------------

static uint64_t mix64(uint64_t z) {  // splitmix64's finalizer
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// 53-bit values: exact as JSON numbers in every reader (doubles).
uint64_t feat_window_priority(uint64_t window, uint64_t seed) { return mix64(window ^ seed) >> 11; }
int feat_window_split(uint64_t window, uint64_t seed) { return (int)(mix64(window ^ seed ^ 0x5d1ce5a17ull) & 1); }
uint64_t feat_sample_priority(uint64_t wp, int li, int n_features, int feature) {
    return mix64(wp ^ ((uint64_t)li * (uint64_t)n_features + (uint64_t)feature + 1) * 0xd6e8feb86659fd93ull) >> 11;
}

int feat_hist_bucket(float a) {
    int e;
    float m = frexpf(a, &e);  // a = m · 2^e, m in [0.5, 1)
    int o = e - FEAT_HIST_EMIN;
    if (o < 0) return 0;
    if (o >= FEAT_HIST_OCTAVES) return FEAT_HIST_BUCKETS - 1;
    int s = (int)((m - 0.5f) * (2 * FEAT_HIST_SUB));
    return o * FEAT_HIST_SUB + (s < FEAT_HIST_SUB ? s : FEAT_HIST_SUB - 1);
}

double feat_hist_bucket_lo(int b) {
    return (1.0 + (double)(b % FEAT_HIST_SUB) / FEAT_HIST_SUB) * ldexp(1.0, b / FEAT_HIST_SUB + FEAT_HIST_EMIN - 1);
}

// ---- per-feature state ------------------------------------------------------------------------

typedef struct {
    float act;             // the window's max activation (0: a non-activating window)
    uint16_t n, max_idx;   // tokens stored; index of the max among them
    uint8_t split;         // 0 explain, 1 test
    uint64_t window, key;  // window id; key: content hash (top) or sampling priority (samples)
    uint64_t doc;          // document and position of the max token (non-activating: first token)
    uint32_t pos;
    uint32_t *tok;         // (cap_tokens,) owned
    float *acts;           // (cap_tokens,) owned; NULL in non-activating lists
} Example;

// A bounded list of the best examples seen. The slots never move; a binary heap of slot ids keeps
// the worst at its root, so a candidate is judged with one comparison and entered in O(log cap).
// Deduplicating lists (the top) also find an entry by its content key in a small hash table, so
// no candidate costs a scan of the list.
typedef struct {
    Example *ex;     // (cap,) slots 0..n-1 in use
    int32_t *heap;   // (cap,) slot ids, the worst at heap[0]
    int32_t *hpos;   // deduplicating lists: (cap,) each slot's position in heap
    int32_t *hash;   // deduplicating lists: (hmask + 1,) slot + 1 by key, linear probing; 0 = empty
    uint32_t hmask;
    int n;
} ExList;

typedef struct {
    uint64_t count;
    i128 sum;
    float max, min;
    uint32_t *hist;         // (FEAT_HIST_BUCKETS,) or NULL before the first firing
    ExList top, samp[2], rnd[2];
    uint32_t *logit_ids;    // (2·n_logits,) top then bottom, or NULL
    float *logit_vals;
} FeatState;

// Each feature's entry bars, copied out of its lists into one small contiguous record, so the
// collection rejects almost every (window, feature) with one comparison without touching the
// feature's state: a candidate whose activation is below top_act, or whose priority is above
// samp_key / rnd_key, cannot enter that list (equal values go on to the exact test).
typedef struct {
    float top_act;         // the top list's worst activation; -inf while it has room
    uint64_t samp_key[2];  // per split, the sample list's worst priority; UINT64_MAX while it has room
    uint64_t rnd_key[2];   // the same for the non-activating list
} Gate;

struct FeatCollector {
    FeatOptions o;
    int n_layers, F, T, wpc, view, threads;
    int *layers;
    FeatState *st;  // (n_layers · F,)
    Gate *gate;     // (n_layers · F,)
    uint64_t n_tokens, n_contexts;
};

FeatCollector *feat_collector_new(const FeatOptions *o, int n_layers, const int *layers, int n_features, int T,
                                  int threads) {
    FeatCollector *c = xcalloc(1, sizeof *c);
    c->o = *o;
    c->n_layers = n_layers;
    c->F = n_features;
    c->T = T;
    c->wpc = (T + o->window - 1) / o->window;
    c->view = o->window + 2 * o->extra;
    c->threads = threads;
    c->layers = xmalloc((size_t)n_layers * sizeof(int));
    memcpy(c->layers, layers, (size_t)n_layers * sizeof(int));
    c->st = xcalloc((size_t)n_layers * n_features, sizeof(FeatState));
    c->gate = xmalloc((size_t)n_layers * n_features * sizeof(Gate));
    Gate g0 = {-INFINITY, {UINT64_MAX, UINT64_MAX}, {o->n_random ? UINT64_MAX : 0, o->n_random ? UINT64_MAX : 0}};
    for (size_t i = 0; i < (size_t)n_layers * n_features; i++) c->gate[i] = g0;
    for (size_t i = 0; i < (size_t)n_layers * n_features; i++) c->st[i].min = INFINITY;
    return c;
}

static void list_free(ExList *l, int cap) {
    if (!l->ex) return;
    for (int i = 0; i < cap; i++) { free(l->ex[i].tok); free(l->ex[i].acts); }
    free(l->ex); free(l->heap); free(l->hpos); free(l->hash);
}

static int samp_cap(const FeatOptions *o) { return o->n_bins * o->per_bin; }

void feat_collector_free(FeatCollector *c) {
    if (!c) return;
    for (size_t i = 0; i < (size_t)c->n_layers * c->F; i++) {
        FeatState *s = &c->st[i];
        free(s->hist); free(s->logit_ids); free(s->logit_vals);
        list_free(&s->top, c->o.k);
        for (int h = 0; h < 2; h++) { list_free(&s->samp[h], samp_cap(&c->o)); list_free(&s->rnd[h], c->o.n_random); }
    }
    free(c->st); free(c->gate); free(c->layers); free(c);
}

// Order of the top list: higher activation first, then the lower window id.
static int top_better(const Example *a, const Example *b) {
    return a->act > b->act || (a->act == b->act && a->window < b->window);
}
// Order of the sample lists: lower priority first, then the lower window id.
static int samp_better(const Example *a, const Example *b) {
    return a->key < b->key || (a->key == b->key && a->window < b->window);
}

typedef int (*Better)(const Example *, const Example *);

static const Example *list_worst(const ExList *l) { return &l->ex[l->heap[0]]; }

// Whether a candidate (act, window, key) would enter list l of capacity cap: one comparison.
static int would_enter(const ExList *l, int cap, const Example *cand, Better better) {
    return l->n < cap || (cap > 0 && better(cand, list_worst(l)));
}

static void heap_set(ExList *l, int i, int32_t slot) {
    l->heap[i] = slot;
    if (l->hpos) l->hpos[slot] = i;
}

// The heap's order: a parent is never better than its children (the worst rises to the root).
static void sift_up(ExList *l, int i, Better better) {
    int32_t x = l->heap[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!better(&l->ex[l->heap[p]], &l->ex[x])) break;
        heap_set(l, i, l->heap[p]);
        i = p;
    }
    heap_set(l, i, x);
}

static void sift_down(ExList *l, int i, Better better) {
    int32_t x = l->heap[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= l->n) break;
        if (c + 1 < l->n && better(&l->ex[l->heap[c]], &l->ex[l->heap[c + 1]])) c++;  // the worse child
        if (!better(&l->ex[x], &l->ex[l->heap[c]])) break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, x);
}

// The slot holding key, or -1. Keys are hashes already: their low bits index the table.
static int hash_find(const ExList *l, uint64_t key) {
    for (uint32_t i = (uint32_t)key & l->hmask; l->hash[i]; i = (i + 1) & l->hmask)
        if (l->ex[l->hash[i] - 1].key == key) return l->hash[i] - 1;
    return -1;
}

static void hash_put(ExList *l, uint64_t key, int32_t slot) {
    uint32_t i = (uint32_t)key & l->hmask;
    while (l->hash[i]) i = (i + 1) & l->hmask;
    l->hash[i] = slot + 1;
}

// Removes key (present; its slot still holds it), shifting the entries after it back so every
// probe sequence stays unbroken (no tombstones).
static void hash_del(ExList *l, uint64_t key) {
    uint32_t m = l->hmask, i = (uint32_t)key & m;
    while (l->ex[l->hash[i] - 1].key != key) i = (i + 1) & m;
    for (uint32_t j = i;;) {
        j = (j + 1) & m;
        if (!l->hash[j]) break;
        uint32_t home = (uint32_t)l->ex[l->hash[j] - 1].key & m;
        // entry j may move to i unless its home lies cyclically in (i, j]
        if (((j - home) & m) >= ((j - i) & m)) {
            l->hash[i] = l->hash[j];
            i = j;
        }
    }
    l->hash[i] = 0;
}

static void copy_example(Example *dst, const Example *src, int with_acts) {
    uint32_t *tok = dst->tok;
    float *acts = dst->acts;
    *dst = *src;
    dst->tok = tok;
    dst->acts = with_acts ? acts : NULL;
    memcpy(tok, src->tok, src->n * sizeof(uint32_t));
    if (with_acts) memcpy(acts, src->acts, src->n * sizeof(float));
}

static void list_alloc(ExList *l, int cap, int dedup) {
    l->ex = xcalloc((size_t)cap, sizeof(Example));  // token buffers come with each slot's first use
    l->heap = xmalloc((size_t)cap * sizeof(int32_t));
    if (!dedup) return;
    l->hpos = xmalloc((size_t)cap * sizeof(int32_t));
    uint32_t n = 4;
    while (n < 2 * (uint32_t)cap) n *= 2;  // at most half full
    l->hash = xcalloc(n, sizeof(int32_t));
    l->hmask = n - 1;
}

// Inserts cand into l (capacity cap, examples of up to cap_tokens tokens). dedup: an entry with
// the same key (content hash) is one example, the better of the two kept — the result is the top
// of the per-content best, whatever the order of arrival.
static void list_insert(ExList *l, int cap, int cap_tokens, const Example *cand, Better better, int with_acts,
                        int dedup) {
    if (cap < 1) return;  // --random 0
    if (!l->ex) list_alloc(l, cap, dedup);
    if (dedup) {
        int slot = hash_find(l, cand->key);
        if (slot >= 0) {
            if (!better(cand, &l->ex[slot])) return;
            copy_example(&l->ex[slot], cand, with_acts);
            sift_down(l, l->hpos[slot], better);  // it got better: away from the root
            return;
        }
    }
    if (l->n < cap) {
        int32_t slot = l->n++;
        Example *x = &l->ex[slot];
        x->tok = xmalloc((size_t)cap_tokens * sizeof(uint32_t));
        if (with_acts) x->acts = xmalloc((size_t)cap_tokens * sizeof(float));
        copy_example(x, cand, with_acts);
        if (dedup) hash_put(l, cand->key, slot);
        heap_set(l, l->n - 1, slot);
        sift_up(l, l->n - 1, better);
        return;
    }
    int32_t slot = l->heap[0];
    if (!better(cand, &l->ex[slot])) return;
    if (dedup) {
        hash_del(l, l->ex[slot].key);
        hash_put(l, cand->key, slot);
    }
    copy_example(&l->ex[slot], cand, with_acts);
    sift_down(l, 0, better);
}

// Refreshes feature i's gate from its lists (after any of them changed).
static void gate_update(FeatCollector *c, size_t i) {
    const FeatState *s = &c->st[i];
    const FeatOptions *o = &c->o;
    Gate *g = &c->gate[i];
    g->top_act = s->top.n < o->k ? -INFINITY : list_worst(&s->top)->act;
    for (int h = 0; h < 2; h++) {
        g->samp_key[h] = s->samp[h].n < samp_cap(o) ? UINT64_MAX : list_worst(&s->samp[h])->key;
        g->rnd_key[h] = s->rnd[h].n < o->n_random ? UINT64_MAX : o->n_random ? list_worst(&s->rnd[h])->key : 0;
    }
}

static uint64_t content_hash(const uint32_t *tok, int n, int max_idx) {
    uint64_t h = mix64((uint64_t)n << 32 | (uint32_t)max_idx);
    for (int i = 0; i < n; i++) h = mix64(h ^ tok[i]);
    return h >> 11;
}

// ---- collection -------------------------------------------------------------------------------

void feat_count_batch(FeatCollector *c, const FeatBatch *b) {
    for (int i = 0; i < b->B; i++) c->n_tokens += (uint64_t)(b->n_valid ? b->n_valid[i] : c->T);
    c->n_contexts += (uint64_t)b->B;
}

typedef struct {
    FeatCollector *c;
    int li;
    const FeatBatch *b;
    const float *acts;
    const uint64_t *wprio;  // (B·wpc,) window priorities
} CollectCtx;

static void collect_range(void *arg, size_t f0, size_t f1) {
    const CollectCtx *x = arg;
    FeatCollector *c = x->c;
    const FeatBatch *b = x->b;
    const FeatOptions *o = &c->o;
    int F = c->F, T = c->T, W = o->window, nf = (int)(f1 - f0), V = c->view;
    float *wmax = xmalloc((size_t)nf * sizeof(float));
    int *warg = xmalloc((size_t)nf * sizeof(int));
    uint32_t *tok = xmalloc((size_t)V * sizeof(uint32_t));
    float *va = xmalloc((size_t)V * sizeof(float));
    FeatState *st = c->st + (size_t)x->li * F;
    int before = o->max_at + o->extra, after = (W - o->max_at) + o->extra;  // rows [p − before, p + after)
    for (int bi = 0; bi < b->B; bi++) {
        int nv = b->n_valid ? b->n_valid[bi] : T;
        const uint32_t *ctok = b->tokens + (size_t)bi * T;
        for (int w = 0; w * W < nv; w++) {
            int r0 = w * W, r1 = r0 + W < nv ? r0 + W : nv;
            uint64_t wid = b->ctx_index[bi] * (uint64_t)c->wpc + (uint64_t)w;
            uint64_t wp = x->wprio[(size_t)bi * c->wpc + w];
            int split = feat_window_split(wid, o->seed);
            for (int j = 0; j < nf; j++) { wmax[j] = 0; warg[j] = -1; }
            for (int r = r0; r < r1; r++) {
                const float *row = x->acts + ((size_t)bi * T + r) * F + f0;
                for (int j = 0; j < nf; j++) {
                    float a = row[j];
                    if (!(a > 0)) continue;
                    FeatState *s = &st[f0 + j];
                    s->count++;
                    s->sum += (i128)((double)a * FEAT_SUM_SCALE);
                    if (a > s->max) s->max = a;
                    if (a < s->min) s->min = a;
                    if (!s->hist) s->hist = xcalloc(FEAT_HIST_BUCKETS, sizeof(uint32_t));
                    uint32_t *hb = &s->hist[feat_hist_bucket(a)];
                    if (*hb != UINT32_MAX) (*hb)++;
                    if (a > wmax[j]) { wmax[j] = a; warg[j] = r; }
                }
            }
            const Gate *gate = c->gate + (size_t)x->li * F;
            for (int j = 0; j < nf; j++) {
                int f = (int)f0 + j;
                const Gate *g = &gate[f];
                uint64_t sp = 0;
                if (warg[j] < 0
                        ? wp > g->rnd_key[split]
                        : wmax[j] < g->top_act && (sp = feat_sample_priority(wp, x->li, F, f)) > g->samp_key[split])
                    continue;  // enters no list: one or two comparisons, the feature's state untouched
                FeatState *s = &st[f];
                Example cand = {.act = wmax[j], .window = wid, .split = (uint8_t)split, .tok = tok, .acts = va};
                if (warg[j] < 0) {  // a non-activating window: its own tokens
                    cand.key = wp;
                    if (!would_enter(&s->rnd[split], o->n_random, &cand, samp_better)) continue;
                    cand.n = (uint16_t)(r1 - r0);
                    cand.doc = b->doc_ids[(size_t)bi * T + r0];
                    cand.pos = b->positions[(size_t)bi * T + r0];
                    memcpy(tok, ctok + r0, cand.n * sizeof(uint32_t));
                    list_insert(&s->rnd[split], o->n_random, W, &cand, samp_better, 0, 0);
                    gate_update(c, (size_t)x->li * F + f);
                    continue;
                }
                int p = warg[j];
                if (!sp) sp = feat_sample_priority(wp, x->li, F, f);
                cand.key = sp;
                int to_samp = would_enter(&s->samp[split], samp_cap(o), &cand, samp_better);
                int to_top = would_enter(&s->top, o->k, &cand, top_better);
                if (!to_samp && !to_top) continue;
                int v0 = p - before > 0 ? p - before : 0, v1 = p + after < nv ? p + after : nv;
                cand.n = (uint16_t)(v1 - v0);
                cand.max_idx = (uint16_t)(p - v0);
                cand.doc = b->doc_ids[(size_t)bi * T + p];
                cand.pos = b->positions[(size_t)bi * T + p];
                memcpy(tok, ctok + v0, cand.n * sizeof(uint32_t));
                for (int r = v0; r < v1; r++) va[r - v0] = x->acts[((size_t)bi * T + r) * F + f];
                if (to_samp) list_insert(&s->samp[split], samp_cap(o), V, &cand, samp_better, 1, 0);
                if (to_top) {
                    cand.key = content_hash(tok, cand.n, cand.max_idx);
                    list_insert(&s->top, o->k, V, &cand, top_better, 1, 1);
                }
                gate_update(c, (size_t)x->li * F + f);
            }
        }
    }
    free(wmax); free(warg); free(tok); free(va);
}

void feat_collect(FeatCollector *c, int li, const FeatBatch *b, const float *acts) {
    uint64_t *wprio = xmalloc((size_t)b->B * c->wpc * sizeof(uint64_t));
    for (int bi = 0; bi < b->B; bi++)
        for (int w = 0; w < c->wpc; w++)
            wprio[(size_t)bi * c->wpc + w] =
                feat_window_priority(b->ctx_index[bi] * (uint64_t)c->wpc + (uint64_t)w, c->o.seed);
    CollectCtx x = {c, li, b, acts, wprio};
    parallel_for_n((size_t)c->F, 64, c->threads, collect_range, &x);
    free(wprio);
}

void feat_set_logits(FeatCollector *c, int li, int f, const uint32_t *top_ids, const float *top_vals,
                     const uint32_t *bot_ids, const float *bot_vals) {
    FeatState *s = &c->st[(size_t)li * c->F + f];
    int n = c->o.n_logits;
    if (!s->logit_ids) {
        s->logit_ids = xmalloc(2 * (size_t)n * sizeof(uint32_t));
        s->logit_vals = xmalloc(2 * (size_t)n * sizeof(float));
    }
    memcpy(s->logit_ids, top_ids, n * sizeof(uint32_t));
    memcpy(s->logit_ids + n, bot_ids, n * sizeof(uint32_t));
    memcpy(s->logit_vals, top_vals, n * sizeof(float));
    memcpy(s->logit_vals + n, bot_vals, n * sizeof(float));
}

// ---- records ----------------------------------------------------------------------------------


static void i128_str(i128 v, char *buf) {  // decimal; sums are never negative
    char tmp[48];
    int n = 0;
    unsigned __int128 u = (unsigned __int128)v;
    do { tmp[n++] = (char)('0' + (int)(u % 10)); u /= 10; } while (u);
    for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    buf[n] = 0;
}

static int i128_parse(const char *s, i128 *out) {
    unsigned __int128 u = 0;
    if (!s || !*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        u = u * 10 + (unsigned)(*s - '0');
        if (u >> 126) return -1;
    }
    *out = (i128)u;
    return 0;
}

// Records are written as JSON text directly (not through jansson's objects): building a store is
// mostly this, so the text goes into one growing buffer with the numbers formatted in place.
typedef struct {
    char *p;
    size_t n, cap;
} Text;

static char *text_room(Text *t, size_t need) {
    if (t->n + need + 1 > t->cap) {
        t->cap = (t->n + need + 1) * 2;
        t->p = xrealloc(t->p, t->cap);
    }
    return t->p + t->n;
}
static void text_raw(Text *t, const char *s) {
    size_t n = strlen(s);
    memcpy(text_room(t, n), s, n);
    t->n += n;
}
static void text_u64(Text *t, uint64_t v) {
    char buf[24];
    int n = 0;
    do { buf[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    char *o = text_room(t, (size_t)n);
    for (int i = 0; i < n; i++) o[i] = buf[n - 1 - i];
    t->n += (size_t)n;
}
// %.9g: every float32 comes back exactly; doubles (derived values) to 9 digits. Non-finite
// values cannot occur (activations are finite) and would be written as 0.
static void text_num(Text *t, double v) {
    if (v == 0 || !isfinite(v)) { text_raw(t, "0"); return; }
    t->n += (size_t)snprintf(text_room(t, 24), 24, "%.9g", v);
}
static void text_key(Text *t, const char *k) {  // ,"k": (keys are plain ASCII)
    char *o = text_room(t, strlen(k) + 4);
    size_t n = (size_t)sprintf(o, "%s\"%s\":", t->n && t->p[t->n - 1] != '{' ? "," : "", k);
    t->n += n;
}
static void text_item(Text *t) {  // a comma before every array item but the first
    if (t->p[t->n - 1] != '[') text_raw(t, ",");
}

static void example_text(Text *t, const Example *x, int bin) {
    text_item(t);
    text_raw(t, "{");
    text_key(t, "act"); text_num(t, x->act);
    text_key(t, "window"); text_u64(t, x->window);
    text_key(t, "key"); text_u64(t, x->key);
    text_key(t, "split"); text_raw(t, x->split ? "\"test\"" : "\"explain\"");
    if (bin >= 0) { text_key(t, "bin"); text_u64(t, (uint64_t)bin); }
    text_key(t, "doc"); text_u64(t, x->doc);
    text_key(t, "pos"); text_u64(t, x->pos);
    text_key(t, "max_idx"); text_u64(t, x->max_idx);
    text_key(t, "tokens");
    text_raw(t, "[");
    for (int i = 0; i < x->n; i++) { text_item(t); text_u64(t, x->tok[i]); }
    text_raw(t, "]");
    if (x->acts) {
        text_key(t, "acts");
        text_raw(t, "[");
        for (int i = 0; i < x->n; i++) { text_item(t); text_num(t, x->acts[i]); }
        text_raw(t, "]");
    }
    text_raw(t, "}");
}

// The list's examples sorted by `better` (a copy of pointers).
static const Example **sorted(const ExList *l, Better better) {
    const Example **v = xmalloc((size_t)(l->n ? l->n : 1) * sizeof *v);
    for (int i = 0; i < l->n; i++) v[i] = &l->ex[i];
    for (int i = 1; i < l->n; i++)  // insertion sort: lists are small (≤ k)
        for (int j = i; j > 0 && better(v[j], v[j - 1]); j--) {
            const Example *t = v[j]; v[j] = v[j - 1]; v[j - 1] = t;
        }
    return v;
}

// The q-quantile (0..1) of the firing activations from the histogram: the bucket holding rank
// q·(count−1), interpolated geometrically inside it, clamped to [min, max].
static double hist_quantile(const FeatState *s, double q) {
    if (!s->count) return 0;
    if (q <= 0) return s->min;
    if (q >= 1) return s->max;
    double rank = q * (double)(s->count - 1), cum = 0;
    for (int bkt = 0; bkt < FEAT_HIST_BUCKETS; bkt++) {
        double n = s->hist[bkt];
        if (!n || cum + n <= rank) { cum += n; continue; }
        double lo = fmax(feat_hist_bucket_lo(bkt), s->min), hi = fmin(feat_hist_bucket_lo(bkt + 1), s->max);
        if (hi <= lo) return lo;
        return lo * pow(hi / lo, (rank - cum + 0.5) / n);
    }
    return s->max;
}

// The record of feature f of stored layer li (formats/features.md, "Record") into t.
static void record_text(const FeatCollector *c, int li, int f, Text *t) {
    const FeatState *s = &c->st[(size_t)li * c->F + f];
    const FeatOptions *o = &c->o;
    double density = c->n_tokens ? (double)s->count / (double)c->n_tokens : 0;
    t->n = 0;
    text_raw(t, "{");
    text_key(t, "layer"); text_u64(t, (uint64_t)c->layers[li]);
    text_key(t, "feature"); text_u64(t, (uint64_t)f);
    text_key(t, "dead"); text_raw(t, s->count == 0 ? "true" : "false");
    text_key(t, "always_on"); text_raw(t, s->count && density >= o->always_on ? "true" : "false");
    text_key(t, "count"); text_u64(t, s->count);
    text_key(t, "n_tokens"); text_u64(t, c->n_tokens);
    text_key(t, "density"); text_num(t, density);
    text_key(t, "max_activation"); text_num(t, s->count ? s->max : 0);
    text_key(t, "min_activation"); text_num(t, s->count ? s->min : 0);
    text_key(t, "mean_activation"); text_num(t, s->count ? (double)s->sum / FEAT_SUM_SCALE / (double)s->count : 0);
    char sum[48];
    i128_str(s->sum, sum);
    text_key(t, "sum_fixed"); text_raw(t, "\""); text_raw(t, sum); text_raw(t, "\"");
    // histogram: sparse buckets (the state) and the dense range with edges (for viewers)
    int b0 = -1, b1 = -1;
    text_key(t, "hist_buckets");
    text_raw(t, "[");
    for (int bkt = 0; s->hist && bkt < FEAT_HIST_BUCKETS; bkt++)
        if (s->hist[bkt]) {
            text_item(t);
            text_raw(t, "[");
            text_u64(t, (uint64_t)bkt);
            text_raw(t, ",");
            text_u64(t, s->hist[bkt]);
            text_raw(t, "]");
            if (b0 < 0) b0 = bkt;
            b1 = bkt;
        }
    text_raw(t, "]");
    text_key(t, "histogram");
    text_raw(t, "[");
    for (int bkt = b0; b0 >= 0 && bkt <= b1; bkt++) { text_item(t); text_u64(t, s->hist[bkt]); }
    text_raw(t, "]");
    text_key(t, "histogram_edges");
    text_raw(t, "[");
    for (int bkt = b0; b0 >= 0 && bkt <= b1 + 1; bkt++) { text_item(t); text_num(t, feat_hist_bucket_lo(bkt)); }
    text_raw(t, "]");
    text_key(t, "quantile_values");
    text_raw(t, "[");
    for (int q = 0; q <= 100 && s->count; q++) { text_item(t); text_num(t, hist_quantile(s, q / 100.0)); }
    text_raw(t, "]");
    // top examples, best first; next tokens after their max
    const Example **v = sorted(&s->top, top_better);
    uint32_t *nt = xmalloc((size_t)(s->top.n ? s->top.n : 1) * sizeof(uint32_t));
    int *ntc = xcalloc((size_t)(s->top.n ? s->top.n : 1), sizeof(int)), n_nt = 0;
    text_key(t, "top");
    text_raw(t, "[");
    for (int i = 0; i < s->top.n; i++) {
        example_text(t, v[i], -1);
        if (v[i]->max_idx + 1 >= v[i]->n) continue;
        uint32_t tk = v[i]->tok[v[i]->max_idx + 1];
        int j = 0;
        while (j < n_nt && nt[j] != tk) j++;
        if (j == n_nt) nt[n_nt++] = tk;
        ntc[j]++;
    }
    text_raw(t, "]");
    free(v);
    for (int i = 1; i < n_nt; i++)  // by count, then first seen (= by the best example)
        for (int j = i; j > 0 && ntc[j] > ntc[j - 1]; j--) {
            uint32_t tk = nt[j]; nt[j] = nt[j - 1]; nt[j - 1] = tk;
            int cc = ntc[j]; ntc[j] = ntc[j - 1]; ntc[j - 1] = cc;
        }
    text_key(t, "next_tokens");
    text_raw(t, "[");
    for (int i = 0; i < n_nt; i++) {
        text_item(t);
        text_raw(t, "[");
        text_u64(t, nt[i]);
        text_raw(t, ",");
        text_u64(t, (uint64_t)ntc[i]);
        text_raw(t, "]");
    }
    text_raw(t, "]");
    free(nt); free(ntc);
    // samples: per split, sorted by activation and cut into equal-count bins (bin 0 = strongest)
    text_key(t, "samples");
    text_raw(t, "[");
    for (int h = 0; h < 2; h++) {
        v = sorted(&s->samp[h], top_better);
        int n = s->samp[h].n;
        for (int i = 0; i < n; i++) example_text(t, v[i], (int)((int64_t)i * o->n_bins / n));
        free(v);
    }
    text_raw(t, "]");
    text_key(t, "random");
    text_raw(t, "[");
    for (int h = 0; h < 2; h++) {
        v = sorted(&s->rnd[h], samp_better);
        for (int i = 0; i < s->rnd[h].n; i++) example_text(t, v[i], -1);
        free(v);
    }
    text_raw(t, "]");
    const char *lk[2] = {"top_logits", "bottom_logits"};
    for (int k = 0; k < 2; k++) {
        text_key(t, lk[k]);
        text_raw(t, "[");
        for (int i = 0; s->logit_ids && i < o->n_logits; i++) {
            text_item(t);
            text_raw(t, "[");
            text_u64(t, s->logit_ids[k * o->n_logits + i]);
            text_raw(t, ",");
            text_num(t, s->logit_vals[k * o->n_logits + i]);
            text_raw(t, "]");
        }
        text_raw(t, "]");
    }
    text_raw(t, "}");
    t->p[t->n] = 0;
}

static json_t *options_json(const FeatOptions *o) {
    json_t *j = json_object();
    json_object_set_new(j, "k", json_integer(o->k));
    json_object_set_new(j, "window", json_integer(o->window));
    json_object_set_new(j, "max_at", json_integer(o->max_at));
    json_object_set_new(j, "extra", json_integer(o->extra));
    json_object_set_new(j, "bins", json_integer(o->n_bins));
    json_object_set_new(j, "per_bin", json_integer(o->per_bin));
    json_object_set_new(j, "random", json_integer(o->n_random));
    json_object_set_new(j, "logits", json_integer(o->n_logits));
    json_object_set_new(j, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(j, "always_on", json_real(o->always_on));
    return j;
}

typedef struct {
    const FeatCollector *c;
    size_t first;  // record index (li·F + f) of txt[0]
    char **txt;
} RecordCtx;

static void records_range(void *arg, size_t i0, size_t i1) {
    const RecordCtx *x = arg;
    for (size_t i = i0; i < i1; i++) {
        size_t k = x->first + i;
        Text t = {0};
        record_text(x->c, (int)(k / x->c->F), (int)(k % x->c->F), &t);
        x->txt[i] = t.p;
    }
}

int feat_collector_write(FeatCollector *c, const char *dir, json_t *meta, Error *e) {
    json_t *m = meta ? json_deep_copy(meta) : json_object();
    json_object_set_new(m, "options", options_json(&c->o));
    json_t *layout = json_object(), *ls = json_array();
    for (int i = 0; i < c->n_layers; i++) json_array_append_new(ls, json_integer(c->layers[i]));
    json_object_set_new(layout, "layers", ls);
    json_object_set_new(layout, "n_features", json_integer(c->F));
    json_object_set_new(layout, "ctx_tokens", json_integer(c->T));
    json_object_set_new(m, "layout", layout);
    json_object_set_new(m, "n_tokens", json_integer((json_int_t)c->n_tokens));
    json_object_set_new(m, "n_contexts", json_integer((json_int_t)c->n_contexts));
    char *mt = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(m);
    FeatStoreWriter *w = featstore_writer_open(dir, c->n_layers, c->layers, c->F, mt, 0, e);
    free(mt);
    if (!w) return -1;
    // records are built on all threads a block at a time (JSON text is most of the cost), then
    // appended in order
    size_t n = (size_t)c->n_layers * c->F, blk = 1024;
    char **txt = xcalloc(blk, sizeof(char *));
    for (size_t at = 0; at < n; at += blk) {
        size_t nb = n - at < blk ? n - at : blk;
        RecordCtx x = {c, at, txt};
        parallel_for_n(nb, 8, c->threads, records_range, &x);
        for (size_t i = 0; i < nb; i++) {
            int rc = featstore_put(w, (int)((at + i) / c->F), (int)((at + i) % c->F), txt[i], strlen(txt[i]), e);
            free(txt[i]);
            txt[i] = NULL;
            if (rc) {
                for (size_t j = i + 1; j < nb; j++) free(txt[j]);
                free(txt);
                featstore_writer_abort(w);
                return -1;
            }
        }
    }
    free(txt);
    return featstore_writer_close(w, e);
}

// ---- reading records back -----------------------------------------------------------------------

json_t *feat_store_record(const FeatStore *s, int layer, int feature, Error *e) {
    int li = featstore_layer_index(s, layer);
    if (li < 0) {
        err_set(e, "%s: no layer %d in the store", s->path, layer);
        return NULL;
    }
    char *data;
    size_t len;
    int rc = featstore_get(s, li, feature, &data, &len, e);
    if (rc <= 0) {
        if (rc == 0) err_set(e, "%s: no record for feature %d:%d", s->path, layer, feature);
        return NULL;
    }
    json_error_t je;
    json_t *r = json_loadb(data, len, 0, &je);
    free(data);
    if (!json_is_object(r)) {
        json_decref(r);
        err_set(e, "%s: record %d:%d is not a JSON object: %s", s->path, layer, feature, je.text);
        return NULL;
    }
    return r;
}

static int get_u64(json_t *o, const char *k, uint64_t *v) {
    json_t *x = json_object_get(o, k);
    if (!json_is_integer(x) || json_integer_value(x) < 0) return -1;
    *v = (uint64_t)json_integer_value(x);
    return 0;
}

// An example from its JSON into cand (buffers tok/acts of cap tokens).
static int example_parse(json_t *j, Example *x, int cap, int with_acts) {
    uint64_t v;
    json_t *t = json_object_get(j, "tokens"), *a = json_object_get(j, "acts"), *sp = json_object_get(j, "split");
    if (!json_is_object(j) || !json_is_array(t) || json_array_size(t) > (size_t)cap || !json_is_string(sp)) return -1;
    if (with_acts && (!json_is_array(a) || json_array_size(a) != json_array_size(t))) return -1;
    x->n = (uint16_t)json_array_size(t);
    x->act = (float)json_number_value(json_object_get(j, "act"));
    if (get_u64(j, "window", &x->window) || get_u64(j, "key", &x->key) || get_u64(j, "doc", &x->doc)) return -1;
    if (get_u64(j, "pos", &v) || v > UINT32_MAX) return -1;
    x->pos = (uint32_t)v;
    if (get_u64(j, "max_idx", &v) || (x->n && v >= x->n)) return -1;
    x->max_idx = (uint16_t)v;
    const char *ss = json_string_value(sp);
    x->split = !strcmp(ss, "test");
    if (!x->split && strcmp(ss, "explain")) return -1;
    for (int i = 0; i < x->n; i++) {
        json_t *ti = json_array_get(t, (size_t)i);
        if (!json_is_integer(ti) || json_integer_value(ti) < 0 || json_integer_value(ti) > UINT32_MAX) return -1;
        x->tok[i] = (uint32_t)json_integer_value(ti);
        if (with_acts) x->acts[i] = (float)json_number_value(json_array_get(a, (size_t)i));
    }
    return 0;
}

// Merges record r into state (li, f).
static int merge_record(FeatCollector *c, int li, int f, json_t *r) {
    FeatState *s = &c->st[(size_t)li * c->F + f];
    const FeatOptions *o = &c->o;
    uint64_t count;
    i128 sum;
    if (get_u64(r, "count", &count) || i128_parse(json_string_value(json_object_get(r, "sum_fixed")), &sum)) return -1;
    if (count) {
        float mx = (float)json_number_value(json_object_get(r, "max_activation"));
        float mn = (float)json_number_value(json_object_get(r, "min_activation"));
        if (mx > s->max) s->max = mx;
        if (mn < s->min) s->min = mn;
    }
    s->count += count;
    s->sum += sum;
    json_t *hs = json_object_get(r, "hist_buckets"), *p;
    size_t i;
    if (!json_is_array(hs)) return -1;
    json_array_foreach(hs, i, p) {
        json_int_t bkt = json_integer_value(json_array_get(p, 0)), n = json_integer_value(json_array_get(p, 1));
        if (bkt < 0 || bkt >= FEAT_HIST_BUCKETS || n <= 0) return -1;
        if (!s->hist) s->hist = xcalloc(FEAT_HIST_BUCKETS, sizeof(uint32_t));
        uint64_t sumc = (uint64_t)s->hist[bkt] + (uint64_t)n;
        s->hist[bkt] = sumc > UINT32_MAX ? UINT32_MAX : (uint32_t)sumc;
    }
    int V = c->view, rc = 0;
    Example x = {.tok = xmalloc((size_t)V * sizeof(uint32_t)), .acts = xmalloc((size_t)V * sizeof(float))};
    const char *lists[3] = {"top", "samples", "random"};
    for (int li2 = 0; li2 < 3 && !rc; li2++) {
        json_t *arr = json_object_get(r, lists[li2]);
        if (!json_is_array(arr)) { rc = -1; break; }
        json_array_foreach(arr, i, p) {
            if (example_parse(p, &x, li2 == 2 ? o->window : V, li2 != 2)) { rc = -1; break; }
            if (li2 == 0) list_insert(&s->top, o->k, V, &x, top_better, 1, 1);
            else if (li2 == 1) list_insert(&s->samp[x.split], samp_cap(o), V, &x, samp_better, 1, 0);
            else list_insert(&s->rnd[x.split], o->n_random, o->window, &x, samp_better, 0, 0);
        }
    }
    free(x.tok); free(x.acts);
    json_t *tl = json_object_get(r, "top_logits"), *bl = json_object_get(r, "bottom_logits");
    if (!rc && json_array_size(tl) == (size_t)o->n_logits && json_array_size(bl) == (size_t)o->n_logits &&
        !s->logit_ids) {
        uint32_t *ids = xmalloc(2 * (size_t)o->n_logits * sizeof(uint32_t));
        float *vals = xmalloc(2 * (size_t)o->n_logits * sizeof(float));
        for (int k = 0; k < 2 * o->n_logits; k++) {
            json_t *q = json_array_get(k < o->n_logits ? tl : bl, (size_t)(k % o->n_logits));
            ids[k] = (uint32_t)json_integer_value(json_array_get(q, 0));
            vals[k] = (float)json_number_value(json_array_get(q, 1));
        }
        feat_set_logits(c, li, f, ids, vals, ids + o->n_logits, vals + o->n_logits);
        free(ids); free(vals);
    }
    gate_update(c, (size_t)li * c->F + f);
    return rc;
}

static int options_parse(json_t *j, FeatOptions *o) {
    feat_options_default(o);
    if (!json_is_object(j)) return -1;
    struct { const char *k; int *v; int min; } ints[] = {
        {"k", &o->k, 1}, {"window", &o->window, 1}, {"max_at", &o->max_at, 0}, {"extra", &o->extra, 0},
        {"bins", &o->n_bins, 1}, {"per_bin", &o->per_bin, 1}, {"random", &o->n_random, 0}, {"logits", &o->n_logits, 0}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *x = json_object_get(j, ints[i].k);
        if (!json_is_integer(x) || json_integer_value(x) < ints[i].min || json_integer_value(x) > 65535) return -1;
        *ints[i].v = (int)json_integer_value(x);
    }
    if (o->max_at >= o->window) return -1;
    uint64_t seed;
    if (get_u64(j, "seed", &seed)) return -1;
    o->seed = seed;
    o->always_on = json_number_value(json_object_get(j, "always_on"));
    return 0;
}

FeatCollector *feat_collector_from_store(const FeatStore *s, int threads, Error *e) {
    json_error_t je;
    json_t *m = json_loads(s->meta_json, 0, &je);
    FeatOptions o;
    json_t *layout = json_object_get(m, "layout");
    json_int_t T = json_integer_value(json_object_get(layout, "ctx_tokens"));
    if (!json_is_object(m) || options_parse(json_object_get(m, "options"), &o) || T < 1 || T > (1 << 24) ||
        json_integer_value(json_object_get(layout, "n_features")) != s->n_features) {
        json_decref(m);
        err_set(e, "%s: meta has no valid \"options\"/\"layout\" (not written by feat-topk?)", s->path);
        return NULL;
    }
    json_decref(m);
    return feat_collector_new(&o, s->n_layers, s->layers, s->n_features, (int)T, threads);
}

typedef struct {
    FeatCollector *c;
    const FeatStore *s;
    int failed;
    Error err;  // the first failure
    pthread_mutex_t lock;
} MergeCtx;

// Records [k0, k1) of the store into c: each feature's state belongs to one thread.
static void merge_range(void *arg, size_t k0, size_t k1) {
    MergeCtx *x = arg;
    FeatCollector *c = x->c;
    for (size_t k = k0; k < k1; k++) {
        int li = (int)(k / c->F), f = (int)(k % c->F), rc = 0;
        Error e;
        json_t *r = feat_store_record(x->s, c->layers[li], f, &e);
        if (r && (rc = merge_record(c, li, f, r)))
            err_set(&e, "%s: record %d:%d is malformed", x->s->path, c->layers[li], f);
        if (!r || rc) {
            pthread_mutex_lock(&x->lock);
            if (!x->failed) x->err = e;
            x->failed = 1;
            pthread_mutex_unlock(&x->lock);
        }
        json_decref(r);
        if (!r) return;
    }
}

int feat_collector_merge_store(FeatCollector *c, const FeatStore *s, Error *e) {
    FeatCollector *ref = feat_collector_from_store(s, 1, e);
    if (!ref) return -1;
    json_t *a = options_json(&ref->o), *b = options_json(&c->o);
    int same = json_equal(a, b) && ref->T == c->T && ref->n_layers == c->n_layers && ref->F == c->F &&
               !memcmp(ref->layers, c->layers, (size_t)c->n_layers * sizeof(int));
    json_decref(a); json_decref(b);
    feat_collector_free(ref);
    if (!same)
        return err_set(e, "%s: collected with other options or layers than the first store; cannot merge", s->path);
    json_t *m = json_loads(s->meta_json, 0, NULL);
    uint64_t nt = 0, nc = 0;
    get_u64(m, "n_tokens", &nt);
    get_u64(m, "n_contexts", &nc);
    json_decref(m);
    c->n_tokens += nt;
    c->n_contexts += nc;
    MergeCtx x = {.c = c, .s = s};
    pthread_mutex_init(&x.lock, NULL);
    parallel_for_n((size_t)c->n_layers * c->F, 8, c->threads, merge_range, &x);
    pthread_mutex_destroy(&x.lock);
    if (x.failed) *e = x.err;
    return x.failed ? -1 : 0;
}

// ---- export (circuit-tracer's feature-detail format) ----------------------------------------------

static json_t *token_str(const Tokenizer *tok, uint32_t id) {
    char *s = NULL;
    size_t n, pn = 0;
    Error e;
    if (tok && id < tokenizer_vocab_size(tok) && tokenizer_decode(tok, &id, 1, 0, &s, &n, &e) == 0) {
        // SentencePiece-style decoders strip the leading space of a sequence's first token; a
        // token shown alone keeps it ("▁the" is " the")
        const char *piece = tokenizer_id_to_token(tok, id, &pn);
        if (piece && pn >= 3 && !memcmp(piece, "\xe2\x96\x81", 3) && (n == 0 || s[0] != ' ')) {
            char *t = xmalloc(n + 2);
            t[0] = ' ';
            memcpy(t + 1, s, n + 1);
            free(s);
            s = t;
            n++;
        }
        // a single byte-level token can be part of a UTF-8 sequence: shown with U+FFFD, as HF does
        char *fixed = xmalloc(3 * n + 1);
        size_t m = utf8_lossy((const unsigned char *)s, n, fixed);
        json_t *j = json_stringn(fixed, m);
        free(s);
        free(fixed);
        if (j) return j;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "<%u>", id);
    return json_string(buf);
}

static json_t *export_example(json_t *x, const Tokenizer *tok, int with_acts) {
    json_t *j = json_object(), *t = json_array(), *a = json_array(), *p;
    size_t i;
    json_array_foreach(json_object_get(x, "tokens"), i, p) {
        json_array_append_new(t, token_str(tok, (uint32_t)json_integer_value(p)));
        if (!with_acts) json_array_append_new(a, json_real(0));
    }
    if (with_acts) json_array_extend(a, json_object_get(x, "acts"));
    json_object_set_new(j, "tokens", t);
    json_object_set_new(j, "tokens_acts_list", a);
    json_object_set(j, "train_token_ind", json_object_get(x, "max_idx"));
    json_object_set_new(j, "is_repeated_datapoint", json_false());
    json_object_set(j, "split", json_object_get(x, "split"));
    json_object_set(j, "doc", json_object_get(x, "doc"));
    json_object_set(j, "pos", json_object_get(x, "pos"));
    return j;
}

static void export_logits(json_t *out, json_t *rec, const char *key, const char *vkey, const Tokenizer *tok) {
    json_t *names = json_array(), *vals = json_array(), *p;
    size_t i;
    json_array_foreach(json_object_get(rec, key), i, p) {
        json_array_append_new(names, token_str(tok, (uint32_t)json_integer_value(json_array_get(p, 0))));
        json_array_append(vals, json_array_get(p, 1));
    }
    json_object_set_new(out, key, names);
    json_object_set_new(out, vkey, vals);
}

json_t *feat_export_json(const json_t *record, const Tokenizer *tok, const char *transcoder_id) {
    json_t *rec = (json_t *)record, *o = json_object(), *groups = json_array(), *p;
    size_t i;
    json_object_set_new(o, "transcoder_id", json_string(transcoder_id ? transcoder_id : ""));
    json_object_set(o, "index", json_object_get(rec, "feature"));
    json_object_set(o, "layer", json_object_get(rec, "layer"));
    json_object_set(o, "feature", json_object_get(rec, "feature"));
    json_t *g = json_object(), *ex = json_array();
    json_object_set_new(g, "quantile_name", json_string("Top activations"));
    json_array_foreach(json_object_get(rec, "top"), i, p) json_array_append_new(ex, export_example(p, tok, 1));
    json_object_set_new(g, "examples", ex);
    json_array_append_new(groups, g);
    int max_bin = -1;
    json_array_foreach(json_object_get(rec, "samples"), i, p) {
        int b = (int)json_integer_value(json_object_get(p, "bin"));
        if (b > max_bin) max_bin = b;
    }
    for (int b = 0; b <= max_bin; b++) {  // bin 0 holds the strongest samples
        g = json_object();
        ex = json_array();
        char name[48];
        snprintf(name, sizeof name, "Quantile %d", b + 1);
        json_object_set_new(g, "quantile_name", json_string(name));
        json_array_foreach(json_object_get(rec, "samples"), i,
                           p) if (json_integer_value(json_object_get(p, "bin")) == b)
            json_array_append_new(ex, export_example(p, tok, 1));
        json_object_set_new(g, "examples", ex);
        json_array_append_new(groups, g);
    }
    json_object_set_new(o, "examples_quantiles", groups);
    ex = json_array();
    json_array_foreach(json_object_get(rec, "random"), i, p) json_array_append_new(ex, export_example(p, tok, 0));
    json_object_set_new(o, "non_activating_examples", ex);
    export_logits(o, rec, "top_logits", "top_logit_values", tok);
    export_logits(o, rec, "bottom_logits", "bottom_logit_values", tok);
    json_object_set(o, "act_min", json_object_get(rec, "min_activation"));
    json_object_set(o, "act_max", json_object_get(rec, "max_activation"));
    json_object_set(o, "quantile_values", json_object_get(rec, "quantile_values"));
    json_object_set(o, "histogram", json_object_get(rec, "histogram"));
    json_object_set(o, "histogram_edges", json_object_get(rec, "histogram_edges"));
    json_object_set(o, "activation_frequency", json_object_get(rec, "density"));
    json_object_set(o, "density", json_object_get(rec, "density"));
    json_object_set(o, "max_activation", json_object_get(rec, "max_activation"));
    json_object_set(o, "mean_activation", json_object_get(rec, "mean_activation"));
    json_object_set(o, "dead", json_object_get(rec, "dead"));
    json_object_set(o, "always_on", json_object_get(rec, "always_on"));
    json_t *nt = json_array();
    json_array_foreach(json_object_get(rec, "next_tokens"), i, p) {
        json_t *q = json_object();
        json_object_set_new(q, "token", token_str(tok, (uint32_t)json_integer_value(json_array_get(p, 0))));
        json_object_set(q, "count", json_array_get(p, 1));
        json_array_append_new(nt, q);
    }
    json_object_set_new(o, "next_tokens", nt);
    return o;
}

// ---- the CLT side -------------------------------------------------------------------------------

void feat_clt_activations(const CltParams *p, int l, const float *x, int N, float *a) {
    int F = p->F;
    matmul_cpu(a, x, p->W_enc[l], p->b_enc[l], N, p->d, F);  // (N, F)
    float *theta = xmalloc((size_t)F * sizeof(float));
    for (int i = 0; i < F; i++) theta[i] = expf(p->log_theta[l][i]);
    for (size_t r = 0; r < (size_t)N; r++) {
        float *row = a + r * F;
        for (int i = 0; i < F; i++) row[i] = row[i] > theta[i] ? row[i] : 0.0f;
    }
    free(theta);
}

typedef struct {
    FeatCollector *c;
    int li, n, V;
    const float *logits;  // (rows, V)
    int f0;
} LogitSelect;

// The n highest (sign 1) or lowest (sign -1) of row v (V,), best first; ties to the lower id.
static void select_extreme(const float *v, int V, int n, float sign, uint32_t *ids, float *vals) {
    int k = 0;
    for (int t = 0; t < V; t++) {
        float s = sign * v[t];
        if (k == n && !(s > sign * vals[k - 1])) continue;
        int j = k < n ? k++ : n - 1;
        while (j > 0 && s > sign * vals[j - 1]) {
            ids[j] = ids[j - 1];
            vals[j] = vals[j - 1];
            j--;
        }
        ids[j] = (uint32_t)t;
        vals[j] = v[t];
    }
}

static void select_rows(void *arg, size_t r0, size_t r1) {
    const LogitSelect *x = arg;
    int n = x->n;
    uint32_t *ids = xmalloc(2 * (size_t)n * sizeof(uint32_t));
    float *vals = xmalloc(2 * (size_t)n * sizeof(float));
    for (size_t r = r0; r < r1; r++) {
        const float *v = x->logits + r * x->V;
        select_extreme(v, x->V, n, 1.0f, ids, vals);
        select_extreme(v, x->V, n, -1.0f, ids + n, vals + n);
        feat_set_logits(x->c, x->li, x->f0 + (int)r, ids, vals, ids + n, vals + n);
    }
    free(ids); free(vals);
}

void feat_collect_logits(FeatCollector *c, int li, const CltParams *p, int l, const Model *m, int shard_i,
                         int shard_n) {
    int d = p->d, F = p->F, V = m->cfg.vocab_size, L = p->L, n = c->o.n_logits;
    if (n < 1 || n > V) return;
    enum { BLK = FEAT_LOGIT_BLOCK };
    uint64_t n_blk = (uint64_t)(F + BLK - 1) / BLK;
    float *g = xmalloc((size_t)d * sizeof(float)), *dec = xmalloc((size_t)BLK * d * sizeof(float));
    float *logits = xmalloc((size_t)BLK * V * sizeof(float));
    for (int j = 0; j < d; j++) g[j] = m->final_norm_w[j] + m->cfg.block.norm.weight_offset;
    for (int f0 = 0; f0 < F; f0 += BLK) {
        if (((uint64_t)li * n_blk + (uint64_t)(f0 / BLK)) % (uint64_t)shard_n != (uint64_t)shard_i) continue;
        int nb = F - f0 < BLK ? F - f0 : BLK;
        for (int i = 0; i < nb; i++) {
            const float *w = p->W_dec[l] + (size_t)(f0 + i) * (L - l) * d;  // (L−l, d)
            float *o = dec + (size_t)i * d;
            for (int j = 0; j < d; j++) o[j] = 0;
            for (int k = 0; k < L - l; k++)
                for (int j = 0; j < d; j++) o[j] += w[(size_t)k * d + j];
            for (int j = 0; j < d; j++) o[j] *= g[j];
        }
        matmul_cpu(logits, dec, m->lm_head, NULL, nb, d, V);  // (nb, V)
        LogitSelect x = {c, li, n, V, logits, f0};
        parallel_for_n((size_t)nb, 1, c->threads, select_rows, &x);
    }
    free(g); free(dec); free(logits);
}

const char *feat_store_transcoder_id(const FeatStore *s, char *buf, size_t n) {
    json_t *m = json_loads(s->meta_json, 0, NULL);
    const char *c = json_string_value(json_object_get(m, "clt_dir"));
    snprintf(buf, n, "%s", c ? c : "");
    json_decref(m);
    return buf;
}

Tokenizer *feat_store_tokenizer(const FeatStore *s, const char *path, Error *e) {
    char buf[4096];
    if (e) e->msg[0] = 0;
    if (!path) {
        json_t *m = json_loads(s->meta_json, 0, NULL);
        const char *tp = json_string_value(json_object_get(m, "tokenizer"));
        if (tp) snprintf(buf, sizeof buf, "%s", tp);
        json_decref(m);
        if (!tp || access(buf, R_OK)) return NULL;
        path = buf;
    }
    return tokenizer_load(path, e);
}
