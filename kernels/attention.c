#include "attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "threads.h"

typedef struct {
    float *out, *probs;
    const float *q, *k, *v;
    const AttnShape *s;
} AttnCtx;

// One (batch, head) pair per item: rows of that head are independent of every other head.
static void attention_heads(void *arg, size_t begin, size_t end) {
    const AttnCtx *c = arg;
    const AttnShape *s = c->s;
    int T = s->T, hd = s->hd, n_rep = s->H / s->KVH;
    float *scores = malloc((size_t)T * sizeof(float));
    for (size_t item = begin; item < end; item++) {
        int b = (int)(item / (size_t)s->H), h = (int)(item % (size_t)s->H), kvh = h / n_rep;
        for (int i = 0; i < T; i++) {
            const float *qi = c->q + (((size_t)b * T + i) * s->H + h) * hd;
            int j0 = s->window > 0 && i - s->window + 1 > 0 ? i - s->window + 1 : 0;
            float max = -INFINITY;
            for (int j = j0; j <= i; j++) {
                const float *kj = c->k + (((size_t)b * T + j) * s->KVH + kvh) * hd;
                float dot = 0;
                for (int d = 0; d < hd; d++) dot += qi[d] * kj[d];
                dot *= s->scale;
                if (s->softcap > 0) dot = s->softcap * tanhf(dot / s->softcap);
                scores[j] = dot;
                if (dot > max) max = dot;
            }
            float sum = 0;
            for (int j = j0; j <= i; j++) {
                scores[j] = expf(scores[j] - max);
                sum += scores[j];
            }
            float inv = 1.0f / sum;
            float *o = c->out + (((size_t)b * T + i) * s->H + h) * hd;
            memset(o, 0, (size_t)hd * sizeof(float));
            for (int j = j0; j <= i; j++) {
                float p = scores[j] * inv;
                const float *vj = c->v + (((size_t)b * T + j) * s->KVH + kvh) * hd;
                for (int d = 0; d < hd; d++) o[d] += p * vj[d];
                scores[j] = p;
            }
            if (c->probs) {
                float *row = c->probs + (((size_t)b * s->H + h) * T + i) * T;
                memset(row, 0, (size_t)T * sizeof(float));
                for (int j = j0; j <= i; j++) row[j] = scores[j];
            }
        }
    }
    free(scores);
}

void attention_cpu(float *out, float *probs, const float *q, const float *k, const float *v, const AttnShape *s) {
    AttnCtx c = {out, probs, q, k, v, s};
    parallel_for((size_t)s->B * s->H, 1, attention_heads, &c);
}
