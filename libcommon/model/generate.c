// generate.c — the generation loop of generate.h. Text is handled by decoding every generated id
// again after each step (a few hundred ids at most: cheap next to a forward step), because only
// the full decode is exact: byte-level tokens can split a UTF-8 character, and a stop string can
// span tokens.
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "progress.h"

const char *generate_stop_name(GenerateStop s) {
    switch (s) {
        case GEN_STOP_LENGTH: return "length";
        case GEN_STOP_EOS: return "eos";
        case GEN_STOP_STRING: return "stop_string";
        case GEN_STOP_CONTEXT: return "context";
    }
    return "?";
}

void generate_result_free(GenerateResult *r) {
    free(r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}

// Bytes of text that are final: everything before a trailing U+FFFD run (an unfinished UTF-8
// character decodes as U+FFFD until its last byte arrives) and before the longest tail that is
// the start of a stop string.
static size_t stable_prefix(const char *text, size_t len, const GenerateOptions *o) {
    size_t end = len;
    while (end >= 3 && !memcmp(text + end - 3, "\xef\xbf\xbd", 3)) end -= 3;
    size_t hold = 0;
    for (int i = 0; i < o->n_stop; i++) {
        size_t sl = strlen(o->stop[i]);
        for (size_t k = sl > 0 ? sl - 1 : 0; k > hold; k--)
            if (k <= end && !memcmp(text + end - k, o->stop[i], k)) { hold = k; break; }
    }
    return end - hold;
}

// The first position of any stop string in text[from..len), or len if none.
static size_t find_stop(const char *text, size_t len, size_t from, const GenerateOptions *o) {
    size_t best = len;
    for (int i = 0; i < o->n_stop; i++) {
        size_t sl = strlen(o->stop[i]);
        if (!sl || sl > len) continue;
        for (size_t p = from; p + sl <= len && p < best; p++)
            if (!memcmp(text + p, o->stop[i], sl)) { best = p; break; }
    }
    return best;
}

static int is_eos(const GenerateOptions *o, uint32_t id) {
    for (int i = 0; i < o->n_eos; i++)
        if (o->eos_ids[i] == id) return 1;
    return 0;
}

int generate(KVDecoder *d, const uint32_t *prompt, int n_prompt, const GenerateOptions *o, GenerateResult *r,
             Error *e) {
    memset(r, 0, sizeof *r);
    r->n_prompt = n_prompt;
    if (n_prompt < 1) return err_set(e, "generate: empty prompt");
    if (model_check_positions(&kv_decoder_model(d)->cfg, n_prompt, "generate: the prompt", e)) return -1;
    if (o->n_stop && !o->tok) return err_set(e, "generate: stop strings need a tokenizer");
    const ModelConfig *c = &kv_decoder_model(d)->cfg;
    int V = c->vocab_size;
    int keep = o->cached_prefix < n_prompt ? o->cached_prefix : n_prompt - 1;  // the last id gives the logits
    if (keep > kv_decoder_pos(d)) return err_set(e, "generate: %d cached prompt ids, the decoder holds %d", keep,
                                                 kv_decoder_pos(d));
    if (keep > 0) kv_decoder_truncate(d, keep);
    else kv_decoder_reset(d);
    float *logits = xmalloc((size_t)V * sizeof(float));
    Sampler sampler;
    sampler_init(&sampler, &o->sampling, V);
    r->ids = xmalloc((size_t)(o->max_tokens > 0 ? o->max_tokens : 1) * sizeof *r->ids);
    size_t emitted = 0, searched = 0;  // answer bytes passed to on_text / scanned for stop strings
    int rc = 0;
    double t0 = now_seconds();
    if (kv_decoder_forward(d, prompt + keep, n_prompt - keep, logits, e)) { rc = -1; goto done; }
    r->prefill_s = now_seconds() - t0;
    t0 = now_seconds();
    r->stop = GEN_STOP_LENGTH;
    while (r->n < o->max_tokens) {
        uint32_t id = sampler_sample(&sampler, logits);
        r->ids[r->n++] = id;
        if (o->on_token) o->on_token(o->ctx, id);
        int eos = is_eos(o, id);
        if (o->tok && (o->n_stop || o->on_text)) {
            free(r->text);
            r->text = NULL;
            if (tokenizer_decode(o->tok, r->ids, (size_t)(r->n - eos), 1, &r->text, &r->len, e)) { rc = -1; goto done; }
            size_t cut = find_stop(r->text, r->len, searched, o);
            if (cut < r->len) {
                r->len = cut;
                r->text[cut] = 0;
                r->stop = GEN_STOP_STRING;
            }
            size_t stable = r->stop == GEN_STOP_STRING || eos ? r->len : stable_prefix(r->text, r->len, o);
            // text before `stable` holds no stop string, not even the start of one
            searched = stable;
            if (o->on_text && stable > emitted) {
                o->on_text(o->ctx, r->text + emitted, stable - emitted);
                emitted = stable;
            }
            if (r->stop == GEN_STOP_STRING) break;
        }
        if (eos) { r->stop = GEN_STOP_EOS; break; }
        if (r->n == o->max_tokens) break;  // no forward for a token nobody will read
        if (kv_decoder_pos(d) >= c->max_pos) { r->stop = GEN_STOP_CONTEXT; break; }
        if (kv_decoder_forward(d, &id, 1, logits, e)) { rc = -1; goto done; }
    }
    r->decode_s = now_seconds() - t0;
    if (o->tok) {
        // the final text: everything (nothing is held back once generation has ended)
        if (r->stop != GEN_STOP_STRING) {
            free(r->text);
            r->text = NULL;
            int n = r->n - (r->stop == GEN_STOP_EOS);
            if (tokenizer_decode(o->tok, r->ids, (size_t)n, 1, &r->text, &r->len, e)) { rc = -1; goto done; }
        }
        if (o->on_text && r->len > emitted) o->on_text(o->ctx, r->text + emitted, r->len - emitted);
    }
done:
    free(logits);
    sampler_free(&sampler);
    if (rc) generate_result_free(r);
    return rc;
}
