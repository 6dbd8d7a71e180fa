// sampler.h — picking the next token from logits: greedy (argmax), or sampling with temperature,
// top-k and top-p (nucleus) in Hugging Face's order (divide by temperature, keep the k most
// likely, keep the smallest most-likely set whose mass reaches p, renormalize, draw). The random
// generator lives in the Sampler, so runs with the same seed are identical and nothing is global.
#pragma once
#include <stdint.h>

typedef struct {
    float temperature;  // <= 0: greedy
    int top_k;          // <= 0 or >= vocab: off
    float top_p;        // >= 1: off
    uint64_t seed;
} SamplerOptions;

typedef struct {
    uint32_t id;
    float p;
} SamplerCand;

typedef struct {
    SamplerOptions o;
    int V;
    uint64_t rng;        // xorshift64* state
    float *probs;        // (V,)
    SamplerCand *cand;   // (V,) candidates being sorted / truncated
} Sampler;

void sampler_init(Sampler *s, const SamplerOptions *o, int V);
void sampler_free(Sampler *s);
// The next token for one row of V logits (not modified).
uint32_t sampler_sample(Sampler *s, const float *logits);
// Index of the largest logit; the first one on ties (like torch.argmax).
uint32_t sampler_argmax(const float *logits, int V);
// Uniform in [0, 1) from the sampler's generator (24 random bits).
float sampler_random(Sampler *s);
