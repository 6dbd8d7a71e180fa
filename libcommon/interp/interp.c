// interp.c — see interp.h.
#include "interp.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "unicode.h"

// ---- a growable string -------------------------------------------------------------------------

typedef struct {
    char *s;
    size_t n, cap;
} Str;

static void str_addn(Str *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 256;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void str_add(Str *b, const char *s) { str_addn(b, s, strlen(s)); }

static void str_addf(Str *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void str_addf(Str *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof tmp) n = (int)sizeof tmp - 1;
    str_addn(b, tmp, (size_t)n);
}

static char *str_take(Str *b) {
    if (!b->s) return xstrdup("");
    return b->s;
}

// ---- records -----------------------------------------------------------------------------------

static int parse_examples(json_t *arr, InterpExample **out, int *n_out, int with_acts, const char *what, Error *e) {
    *out = NULL;
    *n_out = 0;
    if (!arr) return 0;
    if (!json_is_array(arr)) return err_set(e, "record: '%s' is not an array", what);
    size_t n = json_array_size(arr);
    InterpExample *ex = xcalloc(n ? n : 1, sizeof *ex);
    *out = ex;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i), *toks = json_object_get(o, "tokens"), *acts = json_object_get(o, "acts");
        if (!json_is_array(toks)) return err_set(e, "record: %s[%zu] has no 'tokens' array", what, i);
        InterpExample *x = &ex[(*n_out)++];
        x->n = (int)json_array_size(toks);
        x->tokens = xcalloc((size_t)x->n + 1, sizeof *x->tokens);
        for (int j = 0; j < x->n; j++) {
            json_t *t = json_array_get(toks, (size_t)j);
            if (!json_is_integer(t) || json_integer_value(t) < 0)
                return err_set(e, "record: %s[%zu]: bad token", what, i);
            x->tokens[j] = (uint32_t)json_integer_value(t);
        }
        if (with_acts) {
            if (!json_is_array(acts) || (int)json_array_size(acts) != x->n)
                return err_set(e, "record: %s[%zu]: 'acts' missing or not one per token", what, i);
            x->acts = xcalloc((size_t)x->n + 1, sizeof *x->acts);
            for (int j = 0; j < x->n; j++) x->acts[j] = (float)json_number_value(json_array_get(acts, (size_t)j));
        }
        x->max_idx = (int)json_integer_value(json_object_get(o, "max_idx"));
        if (x->max_idx < 0 || x->max_idx >= x->n) x->max_idx = 0;
        x->bin = (int)json_integer_value(json_object_get(o, "bin"));
        x->act = (float)json_number_value(json_object_get(o, "act"));
        x->window = json_integer_value(json_object_get(o, "window"));
        const char *split = json_string_value(json_object_get(o, "split"));
        x->test = split && !strcmp(split, "test");
    }
    return 0;
}

static void parse_token_list(json_t *arr, uint32_t **out, int *n) {
    size_t m = json_is_array(arr) ? json_array_size(arr) : 0;
    *out = xcalloc(m + 1, sizeof **out);
    *n = 0;
    for (size_t i = 0; i < m; i++) {
        json_t *pair = json_array_get(arr, i), *t = json_is_array(pair) ? json_array_get(pair, 0) : pair;
        if (json_is_integer(t) && json_integer_value(t) >= 0) (*out)[(*n)++] = (uint32_t)json_integer_value(t);
    }
}

int feature_evidence_parse(FeatureEvidence *f, const char *json, size_t len, Error *e) {
    memset(f, 0, sizeof *f);
    json_error_t je;
    json_t *r = json_loadb(json, len, 0, &je);
    if (!r || !json_is_object(r)) {
        json_decref(r);
        return err_set(e, "record: not a JSON object (%s)", je.text);
    }
    f->layer = (int)json_integer_value(json_object_get(r, "layer"));
    f->feature = (int)json_integer_value(json_object_get(r, "feature"));
    f->dead = json_is_true(json_object_get(r, "dead"));
    f->density = json_number_value(json_object_get(r, "density"));
    f->max_act = json_number_value(json_object_get(r, "max_activation"));
    int rc = parse_examples(json_object_get(r, "top"), &f->top, &f->n_top, 1, "top", e);
    if (!rc) rc = parse_examples(json_object_get(r, "samples"), &f->samples, &f->n_samples, 1, "samples", e);
    if (!rc) rc = parse_examples(json_object_get(r, "random"), &f->random, &f->n_random, 0, "random", e);
    parse_token_list(json_object_get(r, "top_logits"), &f->top_logits, &f->n_top_logits);
    parse_token_list(json_object_get(r, "next_tokens"), &f->next_tokens, &f->n_next_tokens);
    json_decref(r);
    if (rc) feature_evidence_free(f);
    return rc;
}

static void free_examples(InterpExample *x, int n) {
    for (int i = 0; i < n; i++) free(x[i].tokens), free(x[i].acts);
    free(x);
}

void feature_evidence_free(FeatureEvidence *f) {
    free_examples(f->top, f->n_top);
    free_examples(f->samples, f->n_samples);
    free_examples(f->random, f->n_random);
    free(f->top_logits);
    free(f->next_tokens);
    memset(f, 0, sizeof *f);
}

// ---- token text --------------------------------------------------------------------------------

// A copy of s[0..len) as valid UTF-8 (each ill-formed subpart becomes U+FFFD): prompts, cache keys
// and JSON output need it, and a token can end in the middle of a character. malloc'd.
static char *utf8_clean(const char *s, size_t len) {
    char *out = xmalloc(3 * len + 1);
    size_t n = utf8_lossy((const unsigned char *)s, len, out);
    out[n] = 0;
    return out;
}

// Control characters (newlines included) become spaces: one window is one line, and nothing in
// the data can forge the prompt's structure or a terminal escape.
static void defuse_controls(char *s) {
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) *p = ' ';
}

// The text of each token as it reads in context (decoding is not per-token additive: spaces,
// byte fallback), from the decodes of growing prefixes. pieces[i] malloc'd.
static char **token_pieces(const Tokenizer *tok, const uint32_t *ids, int n) {
    char **pieces = xcalloc((size_t)n + 1, sizeof *pieces);
    char *prev = xstrdup("");
    for (int i = 0; i < n; i++) {
        char *cur = NULL;
        size_t len;
        Error e;
        if (!tok || tokenizer_decode(tok, ids, (size_t)i + 1, 0, &cur, &len, &e)) {
            char tmp[24];
            snprintf(tmp, sizeof tmp, "[%u]", ids[i]);
            size_t pl = strlen(prev);
            cur = xmalloc(pl + strlen(tmp) + 1);
            memcpy(cur, prev, pl);
            strcpy(cur + pl, tmp);
        }
        size_t k = 0;
        while (prev[k] && prev[k] == cur[k]) k++;
        // back up to a UTF-8 character boundary so a character split over tokens stays whole
        while (k > 0 && ((unsigned char)cur[k] & 0xC0) == 0x80) k--;
        pieces[i] = utf8_clean(cur + k, strlen(cur + k));
        defuse_controls(pieces[i]);
        free(prev);
        prev = cur;
    }
    free(prev);
    return pieces;
}

static void free_pieces(char **p, int n) {
    for (int i = 0; i < n; i++) free(p[i]);
    free(p);
}

static char *token_text(const Tokenizer *tok, uint32_t id) {
    char **p = token_pieces(tok, &id, 1);
    char *s = p[0];
    free(p);
    return s;
}

// The window's text with the runs of marked tokens wrapped as <<...>>. Tokens that read as
// nothing (a byte of a character completed later) neither open nor split a run.
static char *marked_text(char **pieces, const int *mark, int n) {
    Str b = {0};
    int open = 0;
    for (int i = 0; i < n; i++) {
        if (!pieces[i][0]) continue;
        int m = mark && mark[i];
        if (m && !open) str_add(&b, "<<"), open = 1;
        if (!m && open) str_add(&b, ">>"), open = 0;
        str_add(&b, pieces[i]);
    }
    if (open) str_add(&b, ">>");
    return str_take(&b);
}

// Marks the tokens above 0.3 of the window's max (Delphi's explainer and fuzzing threshold).
static int mark_active(const InterpExample *x, int *mark) {
    float mx = 0;
    for (int i = 0; i < x->n; i++) mx = x->acts[i] > mx ? x->acts[i] : mx;
    int k = 0;
    for (int i = 0; i < x->n; i++) k += mark[i] = mx > 0 && x->acts[i] > 0.3f * mx;
    return k;
}

// ---- templates ---------------------------------------------------------------------------------

static const char ANSWER_FORMAT[] =
    "End your answer with exactly these two lines:\n"
    "[LABEL]: <a label of 1 to 6 words>\n"
    "[EXPLANATION]: <one sentence>";

static const char DELPHI_SYSTEM[] =
    "You are a meticulous AI researcher conducting an important investigation into patterns found in language. "
    "Your task is to analyze text and provide an explanation that thoroughly encapsulates possible patterns found "
    "in it.\n"
    "Guidelines:\n"
    "You will be given a list of text examples on which special words are selected and between delimiters like "
    "<<this>>. If a sequence of consecutive tokens all are important, the entire sequence of tokens will be "
    "contained between delimiters <<just like this>>. How important each token is for the behavior is listed after "
    "each example in parentheses.\n"
    "- Try to produce a concise final description. Simply describe the text features that are common in the "
    "examples, and what patterns you found.\n"
    "- If the examples are uninformative, you don't need to mention them. Don't focus on giving examples of "
    "important tokens, but try to summarize the patterns found in the examples.\n"
    "- Do not mention the marker tokens (<< >>) in your explanation.\n"
    "- Do not make lists of possible explanations. Keep your explanations short and concise.\n"
    "For example, for words ending in a comparative suffix you would answer:\n"
    "[LABEL]: comparative suffix\n"
    "[EXPLANATION]: The suffix \"er\" of comparative adjectives such as \"bigger\" and \"smaller\".\n";

static const char NP_SYSTEM[] =
    "You are explaining the behavior of a neuron in a neural network. Your answer is a very concise label (1 to 6 "
    "words) of what the neuron detects or predicts, and one sentence explaining it. You are given four lists:\n"
    "MAX_ACTIVATING_TOKENS: the token on which the neuron fires most in each text.\n"
    "TOKENS_AFTER_MAX_ACTIVATING_TOKEN: the token that comes right after it.\n"
    "TOP_POSITIVE_LOGITS: the tokens the neuron makes more likely as the next token.\n"
    "TOP_ACTIVATING_TEXTS: texts on which the neuron fires, the firing tokens marked <<like this>>.\n"
    "Method 1: if the max activating tokens are mostly one token or one kind of token, the label is that token or "
    "kind.\n"
    "Method 2: if the tokens after the max share a pattern, or the top logits do, the label is \"say [the "
    "pattern]\".\n"
    "Method 3: otherwise the label is the theme shared by the texts.\n"
    "Do not write \"words related to\" or similar padding, and never mention \"tokens\" or \"patterns\". If you "
    "cannot find an explanation, use the most common max activating token.\n";

static const char NP_USER[] =
    "<MAX_ACTIVATING_TOKENS>\n{{max_tokens}}\n</MAX_ACTIVATING_TOKENS>\n\n"
    "<TOKENS_AFTER_MAX_ACTIVATING_TOKEN>\n{{next_tokens}}\n</TOKENS_AFTER_MAX_ACTIVATING_TOKEN>\n\n"
    "<TOP_POSITIVE_LOGITS>\n{{top_logits}}\n</TOP_POSITIVE_LOGITS>\n\n"
    "<TOP_ACTIVATING_TEXTS>\n{{texts}}\n</TOP_ACTIVATING_TEXTS>\n";

// The small template: what a 135M instruct model can follow. Few words of instruction, the
// evidence as three short fields, and three worked examples in the same fields answered with one
// line. A 135M model copies rather than abstracts: each worked answer quotes the top words of its
// evidence (a word, a kind of word, a word in a context), so the answer to the real evidence
// names its top words too, and in a form the lexical scorer reads ("quoted" keys). Made-up
// evidence in the style of the TinyStories features.
static const char SMALL_SYSTEM[] =
    "You name what a neuron in a language model detects from its top words. Answer with one short label on one "
    "line.";

static const char SMALL_USER[] = "Top words: {{max_counts}}\nNext words: {{next_tokens}}\nExamples:\n{{snippets}}";

static const char *const SMALL_SHOTS[] = {
    "Top words: \"Lily\" (5), \"Tom\" (4), \"Ben\" (3)\nNext words: was, said, and\nExamples:\n"
    "- Once upon a time, <<Lily>> was\n- Then <<Tom>> said\n- One day, <<Ben>> and",
    "Label: names like \"Lily\" and \"Tom\"",
    "Top words: \"went\" (6), \"ran\" (4)\nNext words: to, home, away\nExamples:\n- Then they <<went>> to\n"
    "- the dog <<ran>> away\n- she <<went>> home",
    "Label: verbs like \"went\" and \"ran\"",
    "Top words: \"ball\" (9), \"balls\" (2)\nNext words: to, and, .\nExamples:\n- Tom kicked the <<ball>> to\n"
    "- she threw the red <<ball>> and\n- the dog ran after the <<balls>>.",
    "Label: the word \"ball\"",
};

int interp_template_builtin(InterpTemplate *t, const char *name, Error *e) {
    memset(t, 0, sizeof *t);
    Str sys = {0}, user = {0};
    if (!strcmp(name, "small")) {
        t->name = xstrdup(name);
        t->system = xstrdup(SMALL_SYSTEM);
        t->user = xstrdup(SMALL_USER);
        t->shots = SMALL_SHOTS;
        t->n_shots = (int)(sizeof SMALL_SHOTS / sizeof *SMALL_SHOTS / 2);
        t->one_line = 1;
        return 0;
    }
    if (!strcmp(name, "delphi")) {
        str_add(&sys, DELPHI_SYSTEM);
        str_add(&user, "{{examples}}\n\n");
    } else if (!strcmp(name, "np")) {
        str_add(&sys, NP_SYSTEM);
        str_add(&user, NP_USER);
        str_add(&user, "\n");
    } else {
        return err_set(e, "--template '%s': expected small, delphi, np or a template file", name);
    }
    str_add(&user, ANSWER_FORMAT);
    t->name = xstrdup(name);
    t->system = str_take(&sys);
    t->user = str_take(&user);
    return 0;
}

int interp_template_load(InterpTemplate *t, const char *path, Error *e) {
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(e, "%s: cannot open the template", path);
    Str b = {0};
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) str_addn(&b, buf, n);
    fclose(f);
    char *text = str_take(&b);
    if (!strstr(text, "{{")) {
        free(text);
        return err_set(e, "%s: the template has no {{placeholder}}: it would show the model no feature", path);
    }
    char *sep = NULL;
    if (!strncmp(text, "---\n", 4))
        sep = text;
    else if ((sep = strstr(text, "\n---\n")))
        sep++;
    t->name = xstrdup(path);
    if (sep) {
        *sep = 0;
        t->system = xstrdup(text);
        t->user = xstrdup(sep + 4);
    } else {
        t->system = xstrdup("");
        t->user = xstrdup(text);
    }
    free(text);
    return 0;
}

void interp_template_free(InterpTemplate *t) {
    free(t->name);
    free(t->system);
    free(t->user);
    memset(t, 0, sizeof *t);
}

// The explain windows shown to the explainer: the explain-split top windows, then explain
// samples in bin order (strongest first), each window once, at most max.
static int explain_windows(const FeatureEvidence *f, int max, const InterpExample **out) {
    int n = 0;
    for (int pass = 0; pass < 2; pass++) {
        const InterpExample *xs = pass ? f->samples : f->top;
        int m = pass ? f->n_samples : f->n_top;
        for (int i = 0; i < m && n < max; i++) {
            if (xs[i].test) continue;
            int dup = 0;
            for (int j = 0; j < n && !dup; j++) dup = out[j]->window == xs[i].window;
            if (!dup) out[n++] = &xs[i];
        }
    }
    return n;
}

// Distinct token texts (trimmed) of ids, most frequent first (ties: first seen), joined by sep.
typedef struct {
    char *text;
    int count, first;
} Tally;

static int tally_cmp(const void *a, const void *b) {
    const Tally *x = a, *y = b;
    if (x->count != y->count) return y->count - x->count;
    return x->first - y->first;
}

static int tally_tokens(const Tokenizer *tok, const uint32_t *ids, int n, Tally *t) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        char *s = token_text(tok, ids[i]);
        char *p = s;
        while (*p == ' ') p++;
        size_t len = strlen(p);
        while (len && p[len - 1] == ' ') p[--len] = 0;
        int j = 0;
        for (; j < k; j++)
            if (!strcmp(t[j].text, p)) break;
        if (j < k || !*p) {
            if (j < k) t[j].count++;
            free(s);
            continue;
        }
        t[k++] = (Tally){xstrdup(p), 1, i};
        free(s);
    }
    qsort(t, (size_t)k, sizeof *t, tally_cmp);
    return k;
}

static void tally_free(Tally *t, int k) {
    for (int i = 0; i < k; i++) free(t[i].text);
}

char *interp_render(const InterpTemplate *t, const FeatureEvidence *f, const InterpOptions *o, Error *e) {
    (void)e;
    int max = o->max_examples > 0 ? o->max_examples : 12;
    const InterpExample **ws = xcalloc((size_t)max, sizeof *ws);
    int nw = explain_windows(f, max, ws);
    Str examples = {0}, texts = {0}, maxtok = {0}, next = {0}, logits = {0}, counts = {0}, snippets = {0};
    uint32_t *max_ids = xcalloc((size_t)nw + 1, sizeof *max_ids), *next_ids = xcalloc((size_t)nw + 1, sizeof *next_ids);
    int n_next = 0;
    for (int w = 0; w < nw; w++) {
        const InterpExample *x = ws[w];
        char **pieces = token_pieces(o->tok, x->tokens, x->n);
        int *mark = xcalloc((size_t)x->n, sizeof *mark);
        mark_active(x, mark);
        char *m = marked_text(pieces, mark, x->n);
        if (w < 4) {  // a short view: 8 tokens before the max, 2 after
            int lo = x->max_idx > 8 ? x->max_idx - 8 : 0, hi = x->max_idx + 3 < x->n ? x->max_idx + 3 : x->n;
            char *v = marked_text(pieces + lo, mark + lo, hi - lo), *p = v;
            while (*p == ' ') p++;
            str_add(&snippets, w ? "\n- " : "- ");
            str_add(&snippets, p);
            free(v);
        }
        str_add(&examples, m);
        str_add(&texts, m);
        str_add(&texts, "\n");
        str_add(&examples, "\nActivations:");
        int shown = 0;
        for (int i = 0; i < x->n && shown < 11; i++) {
            if (!mark[i]) continue;
            int v = f->max_act > 0 ? (int)ceil(10.0 * x->acts[i] / f->max_act) : 0;
            v = v < 0 ? 0 : v > 10 ? 10 : v;
            str_addf(&examples, "%s (\"%s\" : %d)", shown ? "," : "", pieces[i], v);
            shown++;
        }
        str_add(&examples, "\n");
        max_ids[w] = x->tokens[x->max_idx];
        if (x->max_idx + 1 < x->n) next_ids[n_next++] = x->tokens[x->max_idx + 1];
        free(m);
        free(mark);
        free_pieces(pieces, x->n);
    }
    // max tokens: one per window in order (repetition is the signal); next tokens and logits tallied
    for (int w = 0; w < nw; w++) {
        char *s = token_text(o->tok, max_ids[w]);
        str_add(&maxtok, w ? ", " : "");
        str_add(&maxtok, s);
        free(s);
    }
    Tally *tl = xcalloc((size_t)(nw + n_next + f->n_top_logits + 1), sizeof *tl);
    int k = tally_tokens(o->tok, max_ids, nw, tl);
    for (int i = 0; i < k && i < 5; i++) str_addf(&counts, "%s\"%s\" (%d)", i ? ", " : "", tl[i].text, tl[i].count);
    tally_free(tl, k);
    k = tally_tokens(o->tok, next_ids, n_next, tl);
    for (int i = 0; i < k && i < 5; i++) str_add(&next, i ? ", " : ""), str_add(&next, tl[i].text);
    tally_free(tl, k);
    k = tally_tokens(o->tok, f->top_logits, f->n_top_logits, tl);
    for (int i = 0; i < k; i++) str_add(&logits, i ? ", " : ""), str_add(&logits, tl[i].text);
    tally_free(tl, k);
    free(tl);
    free(max_ids);
    free(next_ids);
    free(ws);

    char layer[16], feature[16];
    snprintf(layer, sizeof layer, "%d", f->layer);
    snprintf(feature, sizeof feature, "%d", f->feature);
    const char *names[] = {"examples",   "texts",      "max_tokens", "next_tokens", "top_logits",
                           "max_counts", "snippets", "layer",      "feature"};
    const char *values[] = {examples.s ? examples.s : "",
                            texts.s ? texts.s : "",
                            maxtok.s ? maxtok.s : "",
                            next.s ? next.s : "(none)",
                            logits.s ? logits.s : "(none)",
                            counts.s ? counts.s : "(none)",
                            snippets.s ? snippets.s : "(none)",
                            layer,
                            feature};
    Str out = {0};
    for (const char *p = t->user; *p;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            str_add(&out, p);
            break;
        }
        str_addn(&out, p, (size_t)(open - p));
        const char *close = strstr(open, "}}");
        int matched = 0;
        for (size_t i = 0; close && i < sizeof names / sizeof *names && !matched; i++) {
            size_t len = strlen(names[i]);
            if ((size_t)(close - open - 2) == len && !strncmp(open + 2, names[i], len)) {
                str_add(&out, values[i]);
                matched = 1;
            }
        }
        if (matched)
            p = close + 2;
        else
            str_addn(&out, open, 2), p = open + 2;  // not a placeholder: the text as is
    }
    free(examples.s), free(texts.s), free(maxtok.s), free(next.s), free(logits.s), free(counts.s), free(snippets.s);
    return str_take(&out);
}

// ---- the model-free explainer ------------------------------------------------------------------

void interp_tokens_explain(const FeatureEvidence *f, const InterpOptions *o, char **label, char **explanation) {
    int max = o->max_examples > 0 ? o->max_examples : 12;
    const InterpExample **ws = xcalloc((size_t)max, sizeof *ws);
    int nw = explain_windows(f, max, ws);
    uint32_t *ids = xcalloc((size_t)nw + 1, sizeof *ids);
    for (int w = 0; w < nw; w++) ids[w] = ws[w]->tokens[ws[w]->max_idx];
    Tally *t = xcalloc((size_t)(nw + f->n_top_logits + 1), sizeof *t);
    int k = tally_tokens(o->tok, ids, nw, t);
    Str lab = {0}, ex = {0};
    str_add(&ex, k ? "Fires on " : "Fires on no explain window");
    for (int i = 0; i < k && i < 3; i++) {
        str_add(&lab, i ? "/" : "");
        str_add(&lab, t[i].text);
        str_add(&ex, i ? ", \"" : "\"");
        str_add(&ex, t[i].text);
        str_add(&ex, "\"");
    }
    tally_free(t, k);
    k = tally_tokens(o->tok, f->top_logits, f->n_top_logits, t);
    if (k) {
        str_add(&lab, lab.n ? " → " : "→ ");
        str_add(&ex, "; promotes ");
    }
    for (int i = 0; i < k && i < 3; i++) {
        str_add(&lab, i ? "/" : "");
        str_add(&lab, t[i].text);
        str_add(&ex, i ? ", " : "");
        str_add(&ex, t[i].text);
    }
    str_add(&ex, ".");
    tally_free(t, k);
    free(t);
    free(ids);
    free(ws);
    *label = lab.s ? str_take(&lab) : xstrdup("(no examples)");
    *explanation = str_take(&ex);
}

// ---- answers -----------------------------------------------------------------------------------

const char *parse_status_name(ParseStatus s) {
    return s == PARSE_OK ? "ok" : s == PARSE_NO_LABEL ? "no_label" : "failed";
}

// Case-insensitive strstr.
static const char *find_ci(const char *h, const char *needle) {
    size_t n = strlen(needle);
    for (; *h; h++)
        if (!strncasecmp(h, needle, n)) return h;
    return NULL;
}

// The value after the last occurrence of one of the markers: the rest of its line, or the next
// non-empty line. malloc'd, trimmed of spaces, quotes and markdown emphasis; NULL if none.
static char *field_after(const char *answer, const char *const *markers, int n_markers) {
    const char *best = NULL;
    size_t best_len = 0;
    for (int m = 0; m < n_markers; m++)
        for (const char *p = answer; (p = find_ci(p, markers[m])); p++)
            if (!best || p > best) best = p, best_len = strlen(markers[m]);
    if (!best) return NULL;
    const char *v = best + best_len;
    for (int line = 0; line < 2; line++) {
        while (*v == ' ' || *v == '\t' || *v == '*' || *v == '"') v++;
        const char *end = strchr(v, '\n');
        size_t len = end ? (size_t)(end - v) : strlen(v);
        while (len && strchr(" \t\r*\"'", v[len - 1])) len--;
        if (len) {
            char *s = xmalloc(len + 1);
            memcpy(s, v, len);
            s[len] = 0;
            defuse_controls(s);
            return s;
        }
        if (!end) break;
        v = end + 1;
    }
    return NULL;
}

// At most max_words words of s (malloc'd), a trailing period dropped.
static char *first_words(const char *s, int max_words) {
    Str b = {0};
    int words = 0;
    const char *p = s;
    while (*p && words < max_words) {
        while (*p == ' ') p++;
        const char *q = p;
        while (*q && *q != ' ') q++;
        if (q == p) break;
        if (words++) str_add(&b, " ");
        str_addn(&b, p, (size_t)(q - p));
        p = q;
    }
    char *r = str_take(&b);
    size_t n = strlen(r);
    while (n && strchr(".,\"'*", r[n - 1])) r[--n] = 0;
    return r;
}

// The first sentence of s, at most 300 bytes (cut at a UTF-8 boundary). malloc'd.
static char *first_sentence(const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i + 1 < n; i++)
        if ((s[i] == '.' || s[i] == '!' || s[i] == '?') && s[i + 1] == ' ' && i > 10) {
            n = i + 1;
            break;
        }
    if (n > 300) {
        n = 300;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    char *r = xmalloc(n + 1);
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

ParseStatus interp_parse_answer(const char *raw, char **label, char **explanation) {
    static const char *const LABEL[] = {"[LABEL]:", "[DESCRIPTION]:", "LABEL:"};
    static const char *const EXPL[] = {"[EXPLANATION]:", "EXPLANATION:"};
    char *answer = utf8_clean(raw, strlen(raw));
    char *l = field_after(answer, LABEL, 3), *x = field_after(answer, EXPL, 2);
    // a small model may echo the format's placeholders: that is no answer
    if (l && !strcmp(l, "<a label of 1 to 6 words>")) free(l), l = NULL;
    if (x && !strcmp(x, "<one sentence>")) free(x), x = NULL;
    ParseStatus st = PARSE_OK;
    if (!x && !l) {
        st = PARSE_FAILED;
        const char *p = answer;
        while (*p && isspace((unsigned char)*p)) p++;
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        x = xmalloc(len + 1);
        memcpy(x, p, len);
        x[len] = 0;
        defuse_controls(x);
    } else if (!l) {
        st = PARSE_NO_LABEL;
    } else if (!x) {
        x = xstrdup(l);  // a label alone explains as much as it says
    }
    char *sentence = first_sentence(x);
    free(x);
    if (!l) l = xstrdup(sentence);
    char *short_label = first_words(l, 8);
    free(l);
    free(answer);
    *label = short_label;
    *explanation = sentence;
    return st;
}

// Prompt field names a small model echoes instead of answering.
static const char *const ECHOES[] = {"top words", "next words", "examples", "max_activating", "top_activating",
                                     "tokens_after", "top_positive"};

// A word of 4+ letters said three times or more: a small model looping ("happy, happy, happy,
// ..."); short words ("the", "and") recur in plain sentences.
static int word_loops(const char *s) {
    char words[16][32];
    int n = 0;
    for (const char *p = s; *p && n < 16;) {
        while (*p && !isalnum((unsigned char)*p)) p++;
        int k = 0;
        while (*p && isalnum((unsigned char)*p)) {
            if (k < 31) words[n][k++] = (char)tolower((unsigned char)*p);
            p++;
        }
        if (k >= 4) words[n][k] = 0, n++;
    }
    for (int i = 0; i < n; i++) {
        int same = 0;
        for (int j = 0; j < n; j++) same += !strcmp(words[i], words[j]);
        if (same >= 3) return 1;
    }
    return 0;
}

ParseStatus interp_parse_label_line(const char *raw, char **label, char **explanation) {
    char *answer = utf8_clean(raw, strlen(raw));
    const char *p = answer;
    while (*p && isspace((unsigned char)*p)) p++;
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char *line = xmalloc(len + 1);
    memcpy(line, p, len);
    line[len] = 0;
    defuse_controls(line);
    free(answer);
    char *v = line;
    static const char *const PREFIX[] = {"[LABEL]:", "[DESCRIPTION]:", "LABEL:", "ANSWER:"};
    for (;;) {  // prefixes, in any order: "**Label:** ", "- ", "[LABEL]: "
        while (*v == ' ' || *v == '*' || *v == '-' || *v == '#') v++;
        size_t i = 0;
        while (i < sizeof PREFIX / sizeof *PREFIX && strncasecmp(v, PREFIX[i], strlen(PREFIX[i]))) i++;
        if (i == sizeof PREFIX / sizeof *PREFIX) break;
        v += strlen(PREFIX[i]);
    }
    size_t n = strlen(v);
    while (n && strchr(" \t\r*.", v[n - 1])) v[--n] = 0;
    // enclosing quotes only: `the word "ball"` keeps its quotes (the lexical scorer's keys)
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0] && !memchr(v + 1, v[0], n - 2))
        v[--n] = 0, v++, n--;
    int echo = 0;
    for (size_t i = 0; i < sizeof ECHOES / sizeof *ECHOES; i++) echo |= !strncasecmp(v, ECHOES[i], strlen(ECHOES[i]));
    echo |= !strncmp(v, "<<", 2);  // a snippet copied
    echo |= word_loops(v);
    ParseStatus st = PARSE_OK;
    if (!*v || echo) {
        st = PARSE_FAILED;
        *label = first_words(line, 8);
        *explanation = first_sentence(line);
    } else {
        *label = first_words(v, 8);
        int quotes = 0;  // first_words drops a final quote: `the word "ball"` keeps it
        for (const char *q = *label; *q; q++) quotes += *q == '"';
        if (quotes % 2) {
            size_t l = strlen(*label);
            *label = xrealloc(*label, l + 2);
            strcpy(*label + l, "\"");
        }
        Str b = {0};
        str_add(&b, "Fires on ");
        str_add(&b, *label);
        str_add(&b, ".");
        *explanation = str_take(&b);
    }
    free(line);
    return st;
}

// ---- scoring -----------------------------------------------------------------------------------

ScoreMetrics confusion_metrics(const Confusion *c) {
    ScoreMetrics m = {0};
    int pos = c->tp + c->fn, neg = c->tn + c->fp;
    double tpr = pos ? (double)c->tp / pos : 0, tnr = neg ? (double)c->tn / neg : 0;
    m.balanced_accuracy = (pos && neg) ? (tpr + tnr) / 2 : NAN;  // one class alone says nothing of the other
    m.precision = c->tp + c->fp ? (double)c->tp / (c->tp + c->fp) : 0;
    m.recall = tpr;
    m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0;
    m.n = pos + neg;
    m.failed = c->failed;
    return m;
}

static uint64_t mix(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t v[3] = {a, b, c};
    return hash_bytes(v, sizeof v);
}

typedef struct {
    char *text;
    int truth;
    uint64_t key;
} Scored;

static int scored_cmp(const void *a, const void *b) {
    const Scored *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

int score_set_build(ScoreSet *s, const FeatureEvidence *f, ScoreTask task, const InterpOptions *o, Error *e) {
    (void)e;
    memset(s, 0, sizeof *s);
    int k = o->score_examples > 0 ? o->score_examples : 10;
    const InterpExample **pos = xcalloc((size_t)f->n_samples + 1, sizeof *pos), **neg;
    int np = 0, nn = 0;
    for (int i = 0; i < f->n_samples; i++)
        if (f->samples[i].test) pos[np++] = &f->samples[i];
    neg = xcalloc((size_t)f->n_random + 1, sizeof *neg);
    for (int i = 0; i < f->n_random; i++)
        if (f->random[i].test) neg[nn++] = &f->random[i];
    // positives: evenly over the bins (samples are stored strongest bin first)
    int use_p = np < k ? np : k, use_n = nn < k ? nn : k;
    Scored *all = xcalloc((size_t)(use_p + use_n) + 1, sizeof *all);
    int n = 0, marked_total = 0;
    for (int j = 0; j < use_p; j++) {
        const InterpExample *x = pos[(int)((long)j * np / use_p)];
        char **pieces = token_pieces(o->tok, x->tokens, x->n);
        int *mark = xcalloc((size_t)x->n, sizeof *mark);
        marked_total += mark_active(x, mark);
        all[n++] = (Scored){marked_text(pieces, task == TASK_FUZZING ? mark : NULL, x->n), 1,
                            mix(o->seed, (uint64_t)x->window, (uint64_t)f->feature)};
        free(mark);
        free_pieces(pieces, x->n);
    }
    // Delphi's fuzzing negatives: as many random marks as a positive has on average
    int n_marks = use_p ? (marked_total + use_p - 1) / use_p : 1;
    for (int j = 0; j < use_n; j++) {
        const InterpExample *x = neg[j];
        char **pieces = token_pieces(o->tok, x->tokens, x->n);
        int *mark = xcalloc((size_t)x->n + 1, sizeof *mark);
        for (int m = 0, tries = 0; m < n_marks && m < x->n && tries < 1000; tries++) {
            int at = (int)(mix(o->seed ^ 0x5eed, (uint64_t)x->window, (uint64_t)tries) % (uint64_t)x->n);
            if (!mark[at]) mark[at] = 1, m++;
        }
        all[n++] = (Scored){marked_text(pieces, task == TASK_FUZZING ? mark : NULL, x->n), 0,
                            mix(o->seed, (uint64_t)x->window ^ (1ull << 62), (uint64_t)f->feature)};
        free(mark);
        free_pieces(pieces, x->n);
    }
    qsort(all, (size_t)n, sizeof *all, scored_cmp);
    s->texts = xcalloc((size_t)n + 1, sizeof *s->texts);
    s->truth = xcalloc((size_t)n + 1, sizeof *s->truth);
    for (int i = 0; i < n; i++) s->texts[i] = all[i].text, s->truth[i] = all[i].truth;
    s->n = n;
    free(all);
    free(pos);
    free(neg);
    return 0;
}

void score_set_free(ScoreSet *s) {
    for (int i = 0; i < s->n; i++) free(s->texts[i]);
    free(s->texts);
    free(s->truth);
    memset(s, 0, sizeof *s);
}

static const char DETECTION_SYSTEM[] =
    "You are an intelligent and meticulous linguistics researcher.\n"
    "You will be given a certain feature of text, such as \"male pronouns\" or \"text with negative sentiment\".\n"
    "You will then be given several text examples. Your task is to determine which examples possess the feature.\n"
    "For each example in turn, return 1 if the sentence possesses the feature or 0 if it does not. You must return "
    "your response in a valid Python list. Do not return anything else besides a Python list.\n"
    "For example, for 3 examples of which only the second has the feature: [0, 1, 0]";

static const char FUZZING_SYSTEM[] =
    "You are an intelligent and meticulous linguistics researcher.\n"
    "You will be given a certain feature of text, such as \"male pronouns\" or \"text with negative sentiment\".\n"
    "You will be given a few examples of text that contain this feature. Portions of the sentence which strongly "
    "represent this feature are between tokens << and >>.\n"
    "Some examples might be mislabeled. Your task is to determine if every single token within << and >> is "
    "correctly labeled. Consider that all provided examples could be correct, none of the examples could be "
    "correct, or a mix. An example is only correct if every marked token is representative of the feature.\n"
    "For each example in turn, return 1 if the sentence is correctly labeled or 0 if the tokens are mislabeled. "
    "You must return your response in a valid Python list. Do not return anything else besides a Python list.\n"
    "For example, for 3 examples of which only the second is correctly labeled: [0, 1, 0]";

void score_prompt(const ScoreSet *s, int begin, int end, ScoreTask task, const char *explanation, char **system,
                  char **user) {
    *system = xstrdup(task == TASK_DETECTION ? DETECTION_SYSTEM : FUZZING_SYSTEM);
    Str b = {0};
    str_add(&b, "Feature explanation: ");
    str_add(&b, explanation);
    str_add(&b, "\n\nText examples:\n\n");
    for (int i = begin; i < end; i++) {
        str_addf(&b, "Example %d: ", i - begin);
        str_add(&b, s->texts[i]);
        str_add(&b, "\n");
    }
    str_addf(&b, "\nReturn a Python list of %d values, 0 or 1.", end - begin);
    *user = str_take(&b);
}

// Worked examples of the yes/no scorer: both answers for each description, yes and no in mixed
// order, so neither the last answer nor the majority gives the next one away.
static const char YESNO_DETECTION_SYSTEM[] =
    "You check whether a text matches a description of a feature. Answer yes or no.";
static const char *const YESNO_DETECTION_SHOTS[] = {
    "Text: Tom threw the ball to his dog and laughed.\nDescription: the word \"ball\"\nDoes the text match?",
    "yes",
    "Text: She ate a red apple under the big tree.\nDescription: the word \"ball\"\nDoes the text match?",
    "no",
    "Text: The cat sat on the warm mat all day long.\nDescription: names of children\nDoes the text match?",
    "no",
    "Text: One day, Lily went to the park with her mom.\nDescription: names of children\nDoes the text match?",
    "yes",
};
static const char YESNO_FUZZING_SYSTEM[] =
    "You check whether the words marked << >> in a text match a description of a feature. Answer yes or no.";
static const char *const YESNO_FUZZING_SHOTS[] = {
    "Text: Tom threw the <<ball>> to his dog.\nDescription: the word \"ball\"\nDo the marked words match?",
    "yes",
    "Text: Tom <<threw>> the ball to <<his>> dog.\nDescription: the word \"ball\"\nDo the marked words match?",
    "no",
    "Text: The <<cat>> sat on the warm mat.\nDescription: names of children\nDo the marked words match?",
    "no",
    "Text: One day, <<Lily>> went to the park.\nDescription: names of children\nDo the marked words match?",
    "yes",
};

const char *score_yesno_system(ScoreTask task, const char *const **shots, int *n_shots) {
    *shots = task == TASK_DETECTION ? YESNO_DETECTION_SHOTS : YESNO_FUZZING_SHOTS;
    *n_shots = (int)(sizeof YESNO_DETECTION_SHOTS / sizeof *YESNO_DETECTION_SHOTS / 2);
    return task == TASK_DETECTION ? YESNO_DETECTION_SYSTEM : YESNO_FUZZING_SYSTEM;
}

char *score_yesno_prompt(const ScoreSet *s, int i, ScoreTask task, const char *explanation) {
    Str b = {0};
    str_add(&b, "Text: ");
    const char *t = s->texts[i];
    while (*t == ' ') t++;
    str_add(&b, t);
    str_add(&b, "\nDescription: ");
    str_add(&b, explanation);
    str_add(&b, task == TASK_DETECTION ? "\nDoes the text match?" : "\nDo the marked words match?");
    return str_take(&b);
}

int score_parse_yesno(const char *reply) {
    const char *p = reply;
    while (*p && (isspace((unsigned char)*p) || *p == '"' || *p == '\'' || *p == '*' || *p == '[')) p++;
    if (!strncasecmp(p, "yes", 3) && !isalpha((unsigned char)p[3])) return 1;
    if (!strncasecmp(p, "no", 2) && !isalpha((unsigned char)p[2])) return 0;
    return -1;
}

double score_yesno_margin(const char *reply) {
    const char *p = strchr(reply, '(');
    if (score_parse_yesno(reply) < 0 || !p) return NAN;
    char *end;
    double d = strtod(p + 1, &end);
    return end > p + 1 && *end == ')' ? d : NAN;
}

double roc_auc(const double *score, const int *truth, int n) {
    double wins = 0;
    long pos = 0, neg = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(score[i])) continue;
        truth[i] ? pos++ : neg++;
        if (!truth[i]) continue;
        for (int j = 0; j < n; j++)  // n is tens of windows: the quadratic count is the clear one
            if (!truth[j] && !isnan(score[j])) wins += score[i] > score[j] ? 1 : score[i] == score[j] ? 0.5 : 0;
    }
    return pos && neg ? wins / ((double)pos * neg) : NAN;
}

int score_parse_reply(const char *reply, int n, int *pred) {
    for (const char *p = strchr(reply, '['); p; p = strchr(p + 1, '[')) {
        const char *q = p + 1;
        int k = 0, ok = 1;
        while (ok) {
            while (*q == ' ' || *q == ',' || *q == '\n' || *q == '\t' || *q == '\r') q++;
            if (*q == ']') break;
            if ((*q == '0' || *q == '1') && !isdigit((unsigned char)q[1]) && k < n)
                pred[k++] = *q++ - '0';
            else
                ok = 0;
        }
        if (ok && k == n) return 0;
    }
    return -1;
}

void confusion_add(Confusion *c, const ScoreSet *s, int begin, const int *pred, int n) {
    for (int i = 0; i < n; i++) {
        int t = s->truth[begin + i];
        if (!pred)
            c->failed++;
        else if (t && pred[i])
            c->tp++;
        else if (t)
            c->fn++;
        else if (pred[i])
            c->fp++;
        else
            c->tn++;
    }
}

// ---- the lexical scorer ------------------------------------------------------------------------

static const char *const STOP_WORDS[] = {
    "the",       "and",       "for",      "with",    "that",     "this",     "are",       "was",        "were",
    "words",     "word",      "token",    "tokens",  "text",     "texts",    "related",   "feature",    "neuron",
    "latent",    "activates", "fires",    "about",   "from",     "such",     "like",      "its",        "which",
    "when",      "into",      "also",     "other",   "often",    "usually",  "mostly",    "especially", "phrases",
    "phrase",    "pattern",   "patterns", "concept", "concepts", "context",  "contexts",  "mentions",   "references",
    "reference", "use",       "uses",     "usage",   "promotes", "sentence", "sentences", "examples",   "example"};

static int is_stop(const char *w) {
    for (size_t i = 0; i < sizeof STOP_WORDS / sizeof *STOP_WORDS; i++)
        if (!strcmp(w, STOP_WORDS[i])) return 1;
    return 0;
}

// The keys of an explanation, lowercased: its "quoted" strings, else its non-stop words of 3+
// letters. Returns how many (at most max), each malloc'd.
static int lexical_keys(const char *expl, char **keys, int max) {
    int k = 0;
    for (const char *p = strchr(expl, '"'); p && k < max;) {
        const char *q = strchr(p + 1, '"');
        if (!q) break;
        if (q > p + 1) {
            char *s = xmalloc((size_t)(q - p));
            memcpy(s, p + 1, (size_t)(q - p - 1));
            s[q - p - 1] = 0;
            for (char *c = s; *c; c++) *c = (char)tolower((unsigned char)*c);
            keys[k++] = s;
        }
        p = strchr(q + 1, '"');
    }
    if (k) return k;
    for (const char *p = expl; *p && k < max;) {
        while (*p && !isalnum((unsigned char)*p)) p++;
        const char *q = p;
        while (*q && (isalnum((unsigned char)*q) || *q == '\'')) q++;
        if (q - p >= 3) {
            char *s = xmalloc((size_t)(q - p) + 1);
            for (long i = 0; i < q - p; i++) s[i] = (char)tolower((unsigned char)p[i]);
            s[q - p] = 0;
            if (is_stop(s))
                free(s);
            else
                keys[k++] = s;
        }
        p = q;
    }
    return k;
}

static int contains_key(const char *text, size_t len, char **keys, int k) {
    char *low = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++) low[i] = (char)tolower((unsigned char)text[i]);
    low[len] = 0;
    int hit = 0;
    for (int i = 0; i < k && !hit; i++) hit = strstr(low, keys[i]) != NULL;
    free(low);
    return hit;
}

int lexical_predict(const char *explanation, const char *text, ScoreTask task) {
    char *keys[64];
    int k = lexical_keys(explanation, keys, 64), yes = 0;
    if (k && task == TASK_DETECTION) {
        yes = contains_key(text, strlen(text), keys, k);
    } else if (k) {
        yes = 1;
        int spans = 0;
        for (const char *p = strstr(text, "<<"); p && yes; p = strstr(p, "<<")) {
            const char *q = strstr(p + 2, ">>");
            if (!q) break;
            spans++;
            yes = contains_key(p + 2, (size_t)(q - p - 2), keys, k);
            p = q + 2;
        }
        yes = yes && spans > 0;
    }
    for (int i = 0; i < k; i++) free(keys[i]);
    return yes;
}
