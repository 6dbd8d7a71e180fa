// sampler.c — see sampler.h. Probabilities are computed once per step in fp32 from max-shifted
// logits (double sums); only the candidates that can matter are sorted.
#include "sampler.h"

#include <math.h>
#include <stdlib.h>

#include "err.h"

// splitmix64 spreads any seed (0 included) over the state; xorshift64* must not start at 0.
static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void sampler_init(Sampler *s, const SamplerOptions *o, int V) {
    s->o = *o;
    s->V = V;
    s->rng = splitmix64(o->seed);
    if (!s->rng) s->rng = 1;
    s->probs = xmalloc((size_t)V * sizeof(float));
    s->cand = xmalloc((size_t)V * sizeof(SamplerCand));
}

void sampler_free(Sampler *s) {
    free(s->probs);
    free(s->cand);
    s->probs = NULL;
    s->cand = NULL;
}

float sampler_random(Sampler *s) {
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (float)((s->rng * 0x2545f4914f6cdd1dull) >> 40) / 16777216.0f;
}

uint32_t sampler_argmax(const float *logits, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    return (uint32_t)best;
}

// Descending probability, then ascending id: the order that makes top-k 1 equal to argmax.
static int cand_before(const SamplerCand *a, const SamplerCand *b) {
    return a->p > b->p || (a->p == b->p && a->id < b->id);
}

static int cand_cmp(const void *pa, const void *pb) {
    const SamplerCand *a = pa, *b = pb;
    return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

// A heap whose root is the worst candidate kept: a parent is never before its children.
static void sift_down(SamplerCand *h, int size, int j) {
    for (;;) {
        int l = 2 * j + 1, r = l + 1, w = j;
        if (l < size && cand_before(&h[w], &h[l])) w = l;
        if (r < size && cand_before(&h[w], &h[r])) w = r;
        if (w == j) return;
        SamplerCand t = h[j];
        h[j] = h[w];
        h[w] = t;
        j = w;
    }
}

// Moves the k best of c[0..n) to c[0..k), unsorted; O(n log k).
static int select_top_k(SamplerCand *c, int n, int k) {
    if (n <= k) return n;
    for (int j = k / 2 - 1; j >= 0; j--) sift_down(c, k, j);
    for (int i = k; i < n; i++)
        if (cand_before(&c[i], &c[0])) {
            c[0] = c[i];
            sift_down(c, k, 0);
        }
    return k;
}

uint32_t sampler_sample(Sampler *s, const float *logits) {
    const SamplerOptions *o = &s->o;
    int V = s->V;
    if (o->temperature <= 0) return sampler_argmax(logits, V);
    float max = logits[sampler_argmax(logits, V)];
    double z = 0;
    for (int i = 0; i < V; i++) {
        s->probs[i] = expf((logits[i] - max) / o->temperature);
        z += s->probs[i];
    }
    float inv = (float)(1.0 / z);
    for (int i = 0; i < V; i++) s->probs[i] *= inv;

    int use_k = o->top_k > 0 && o->top_k < V, use_p = o->top_p < 1.0f;
    if (!use_k && !use_p) {  // plain sampling over the whole vocabulary
        float r = sampler_random(s), acc = 0;
        for (int i = 0; i < V; i++) {
            acc += s->probs[i];
            if (r < acc) return (uint32_t)i;
        }
        return (uint32_t)(V - 1);  // rounding left r just above the total
    }
    int n = 0;
    if (use_k) {
        for (int i = 0; i < V; i++) s->cand[i] = (SamplerCand){(uint32_t)i, s->probs[i]};
        n = select_top_k(s->cand, V, o->top_k);
    } else {
        // A token below (1 - p) / (V - 1) can never be in the nucleus: even all V - 1 others that
        // small add up to less than 1 - p, so the larger ones reach p first (llama2.c's trick).
        float cutoff = (1.0f - o->top_p) / (float)(V - 1);
        for (int i = 0; i < V; i++)
            if (s->probs[i] >= cutoff) s->cand[n++] = (SamplerCand){(uint32_t)i, s->probs[i]};
    }
    qsort(s->cand, (size_t)n, sizeof *s->cand, cand_cmp);
    double mass = 0;
    for (int i = 0; i < n; i++) mass += s->cand[i].p;
    if (use_p) {  // smallest prefix whose (renormalized) mass reaches p; at least one token
        double acc = 0, target = o->top_p * mass;
        int keep = n;
        for (int i = 0; i < n; i++) {
            acc += s->cand[i].p;
            if (acc >= target) { keep = i + 1; break; }
        }
        n = keep;
        mass = 0;
        for (int i = 0; i < n; i++) mass += s->cand[i].p;
    }
    double r = sampler_random(s) * mass, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->cand[i].p;
        if (r < acc) return s->cand[i].id;
    }
    return s->cand[n - 1].id;
}
