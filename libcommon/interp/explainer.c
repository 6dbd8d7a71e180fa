// explainer.c — see explainer.h.
#include "explainer.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"
#include "fileio.h"
#include "generate.h"
#include "hashmap.h"
#include "model.h"
#include "model_resolve.h"
#include "progress.h"
#include "tokenizer.h"

#define MAX_ANSWER_BYTES (16u << 20)  // a reply larger than this is an error, not a memory hog

struct Explainer {
    ExplainerOptions o;
    ExplainerKind kind;
    char *arg;       // command, URL or model name
    char *id;        // explainer_id
    char *model_id;  // part of the cache key: the http model, the builtin model's weights hash
    // builtin
    Model m;
    int model_loaded;
    Tokenizer *tok;
    ChatTemplate ct;
    int chat;
    uint32_t eos[16];
    int n_eos;
    KVDecoder *dec;
    uint32_t *held;  // the prompt ids whose keys and values dec holds at positions 0..n_held
    int n_held;
    long prompt_tokens, new_tokens, reused_tokens;
    double prefill_s, decode_s;
};

ExplainerKind explainer_kind(const Explainer *x) { return x->kind; }
const char *explainer_id(const Explainer *x) { return x->id; }

void answer_free(Answer *a) {
    free(a->text);
    free(a->error);
    a->text = a->error = NULL;
}

void explainer_builtin_stats(const Explainer *x, long *prompt_tokens, double *prefill_s, long *new_tokens,
                             double *decode_s) {
    *prompt_tokens = x->prompt_tokens;
    *prefill_s = x->prefill_s;
    *new_tokens = x->new_tokens;
    *decode_s = x->decode_s;
}

long explainer_builtin_reused(const Explainer *x) { return x->reused_tokens; }

static char *fmt_alloc(const char *fmt, const char *a, const char *b) {
    size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
    char *s = xmalloc(n);
    snprintf(s, n, fmt, a, b ? b : "");
    return s;
}

// ---- builtin -----------------------------------------------------------------------------------

static int builtin_load(Explainer *x, Error *e) {
    char *dir, note[300];
    if (model_resolve_note(x->arg, &dir, note, sizeof note, e)) return err_prefix(e, "--explainer builtin");
    if (note[0]) fprintf(stderr, "interp-prompt: model '%s': %s (%s)\n", x->arg, dir, note);  // as every tool's -m
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    x->tok = tokenizer_load(path, e);
    if (!x->tok) {
        free(dir);
        return -1;
    }
    char *tmpl = NULL;
    if (chat_template_read(dir, &tmpl, e)) {
        free(dir);
        return -1;
    }
    if (tmpl) {
        if (chat_template_parse(&x->ct, tmpl, e)) {
            free(tmpl);
            free(dir);
            return err_prefix(e, "%s", path);
        }
        x->chat = 1;
        free(tmpl);
    }
    if (model_load(&x->m, dir, e)) {
        free(dir);
        return -1;
    }
    x->model_loaded = 1;
    x->n_eos = model_eos_ids(&x->m, x->tok, x->chat, x->eos);
    x->dec = kv_decoder_new(&x->m);
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)x->m.weights_hash);
    x->model_id = xstrdup(hash);
    free(dir);
    return 0;
}

// A copy of s in which "<|" becomes "< |": data can't open or close a ChatML turn.
static char *defuse_specials(const char *s) {
    size_t n = strlen(s), k = 0;
    char *out = xmalloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        out[k++] = s[i];
        if (s[i] == '<' && s[i + 1] == '|') out[k++] = ' ';
    }
    out[k] = 0;
    return out;
}

// The prompt prefix the decoder already holds: the common prefix of ids and the held ids, at
// most n - 1 (the last id is run again for its logits). The decoder is cut back to it.
static int builtin_reuse(Explainer *x, const uint32_t *ids, int n) {
    int keep = 0;
    while (keep < x->n_held && keep < n - 1 && x->held[keep] == ids[keep]) keep++;
    if (keep) kv_decoder_truncate(x->dec, keep);
    else kv_decoder_reset(x->dec);
    x->reused_tokens += keep;
    return keep;
}

// Records that the decoder holds ids[0..n) (n = 0 after a failure: nothing is trusted).
static void builtin_hold(Explainer *x, const uint32_t *ids, int n) {
    x->held = xrealloc(x->held, ((size_t)n + 1) * sizeof *x->held);
    memcpy(x->held, ids, (size_t)n * sizeof *ids);
    x->n_held = n;
}

// The first ids of the spellings of a word ("yes", " yes", "Yes", " Yes"), distinct: with a large
// vocabulary each is the whole word; with a small one (stories260K: "▁y" "es") the first piece
// stands for it. How many (at most 4).
static int word_ids(const Tokenizer *tok, const char *word, uint32_t *out) {
    char forms[4][32];
    snprintf(forms[0], 32, "%s", word);
    snprintf(forms[1], 32, " %s", word);
    snprintf(forms[2], 32, "%c%s", word[0] - 'a' + 'A', word + 1);
    snprintf(forms[3], 32, " %c%s", word[0] - 'a' + 'A', word + 1);
    int k = 0;
    TokScratch *ts = tokscratch_new();
    for (int i = 0; i < 4; i++) {
        TokIds ids = {0};
        TokEncodeOptions eo = {0};
        Error e;
        if (!tokenizer_encode(tok, ts, forms[i], strlen(forms[i]), &eo, &ids, &e) && ids.n >= 1) {
            int dup = 0;
            for (int j = 0; j < k; j++) dup |= out[j] == ids.ids[0];
            if (!dup) out[k++] = ids.ids[0];
        }
        tokids_free(&ids);
    }
    tokscratch_free(ts);
    return k;
}

// Drops the ids both lists hold (a bare "▁" that starts " yes" and " no" alike says neither).
static void drop_common(uint32_t *a, int *na, uint32_t *b, int *nb) {
    int ka = 0, kb = 0;
    for (int i = 0; i < *na; i++) {
        int in_b = 0;
        for (int j = 0; j < *nb; j++) in_b |= a[i] == b[j];
        if (!in_b) a[ka++] = a[i];
        else for (int j = 0; j < *nb; j++) if (b[j] == a[i]) b[j] = UINT32_MAX;
    }
    for (int j = 0; j < *nb; j++)
        if (b[j] != UINT32_MAX) b[kb++] = b[j];
    *na = ka, *nb = kb;
}

static double logsumexp_ids(const float *logits, const uint32_t *ids, int n) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) mx = logits[ids[i]] > mx ? logits[ids[i]] : mx;
    for (int i = 0; i < n; i++) sum += exp(logits[ids[i]] - mx);
    return mx + log(sum);
}

// The reply to a yes/no prompt from one forward: the log-odds of the answer's first token being
// a spelling of "yes" rather than of "no" (Delphi's probability scoring, for a model that would
// not reliably write either word). "yes (+d)" or "no (-d)".
static int builtin_yes_no(Explainer *x, const uint32_t *ids, int n_ids, char **text, Error *e) {
    uint32_t yes[4], no[4];
    int ny = word_ids(x->tok, "yes", yes), nn = word_ids(x->tok, "no", no);
    drop_common(yes, &ny, no, &nn);
    if (!ny || !nn) return err_set(e, "builtin: \"yes\" and \"no\" start with the same tokens");
    float *logits = xmalloc((size_t)x->m.cfg.vocab_size * sizeof *logits);
    int keep = builtin_reuse(x, ids, n_ids);
    double t0 = now_seconds();
    int rc = kv_decoder_forward(x->dec, ids + keep, n_ids - keep, logits, e);
    x->prefill_s += now_seconds() - t0;
    x->prompt_tokens += n_ids - keep;
    builtin_hold(x, ids, rc ? 0 : n_ids);
    if (!rc) {
        double d = logsumexp_ids(logits, yes, ny) - logsumexp_ids(logits, no, nn);
        char buf[64];
        snprintf(buf, sizeof buf, "%s (%+.3f)", d > 0 ? "yes" : "no", d);
        *text = xstrdup(buf);
    }
    free(logits);
    return rc;
}

// The reply "[d,d,...,d]" of a scorer prompt, each d the more likely of "1" and "0" after what
// came before: a 135M model rarely writes a well-formed list on its own, but its preference
// between the two digits still carries the judgement, and every window gets an answer.
static int builtin_list(Explainer *x, const uint32_t *ids, int n_ids, int items, char **text, Error *e) {
    int64_t one = tokenizer_token_to_id(x->tok, "1", 1), zero = tokenizer_token_to_id(x->tok, "0", 1),
            comma = tokenizer_token_to_id(x->tok, ",", 1);
    if (one < 0 || zero < 0 || comma < 0)
        return err_set(e, "builtin: the tokenizer has no \"1\", \"0\" or \",\" token");
    float *logits = xmalloc((size_t)x->m.cfg.vocab_size * sizeof *logits);
    char *out = xmalloc((size_t)items * 2 + 2);
    int k = 0;
    out[k++] = '[';
    int keep = builtin_reuse(x, ids, n_ids);
    double t0 = now_seconds();
    int rc = kv_decoder_forward(x->dec, ids + keep, n_ids - keep, logits, e);
    x->prefill_s += now_seconds() - t0;
    x->prompt_tokens += n_ids - keep;
    builtin_hold(x, ids, rc ? 0 : n_ids);
    t0 = now_seconds();
    for (int i = 0; i < items && !rc; i++) {
        int yes = logits[one] > logits[zero];
        out[k++] = yes ? '1' : '0';
        out[k++] = i + 1 < items ? ',' : ']';
        if (i + 1 < items) {
            uint32_t next[2] = {(uint32_t)(yes ? one : zero), (uint32_t)comma};
            rc = kv_decoder_forward(x->dec, next, 2, logits, e);
            x->new_tokens += 2;
        }
    }
    x->decode_s += now_seconds() - t0;
    out[k] = 0;
    free(logits);
    if (rc) {
        free(out);
        return -1;
    }
    *text = out;
    return 0;
}

static int builtin_answer(Explainer *x, const Prompt *p, char **text, Error *e) {
    char *sys = p->system && *p->system ? defuse_specials(p->system) : NULL, *user = defuse_specials(p->user);
    char *full;
    char **shots = xcalloc((size_t)2 * p->n_shots + 1, sizeof *shots);
    for (int i = 0; i < 2 * p->n_shots; i++) shots[i] = defuse_specials(p->shots[i]);
    if (x->chat) {
        ChatMessage *msgs = xcalloc((size_t)2 * p->n_shots + 2, sizeof *msgs);
        int n = 0;
        if (sys) msgs[n++] = (ChatMessage){"system", sys};
        for (int i = 0; i < 2 * p->n_shots; i++) msgs[n++] = (ChatMessage){i % 2 ? "assistant" : "user", shots[i]};
        msgs[n++] = (ChatMessage){"user", user};
        full = chat_format(&x->ct, msgs, n, 1);
        free(msgs);
    } else {
        char *h = fmt_alloc("%s\n\n%s", sys ? sys : "", NULL);
        for (int i = 0; i < 2 * p->n_shots; i++) {
            char *next = fmt_alloc(i % 2 ? "%s%s\n\n" : "%s%s\n", h, shots[i]);
            free(h);
            h = next;
        }
        full = fmt_alloc("%s%s\n", h, user);
        free(h);
    }
    for (int i = 0; i < 2 * p->n_shots; i++) free(shots[i]);
    free(shots);
    if (p->list_items > 0) {  // the answer is opened for the model
        char *opened = fmt_alloc("%s%s[", full, NULL);
        free(full);
        full = opened;
    }
    free(sys);
    free(user);
    TokScratch *ts = tokscratch_new();
    TokIds ids = {0};
    TokEncodeOptions eo = {.match_special = 1, .add_special = !x->chat};
    int rc = tokenizer_encode(x->tok, ts, full, strlen(full), &eo, &ids, e);
    tokscratch_free(ts);
    free(full);
    if (rc) return -1;
    int max_new = p->max_tokens > 0 ? p->max_tokens : x->o.max_tokens;
    if (x->m.cfg.max_pos > 0 && (int)ids.n + max_new > x->m.cfg.max_pos) {
        size_t n = ids.n;
        tokids_free(&ids);
        return err_set(e, "builtin: the prompt (%zu tokens) and %d answer tokens do not fit the model's context (%d)",
                       n, max_new, x->m.cfg.max_pos);
    }
    if (p->list_items > 0 || p->yes_no) {
        rc = p->yes_no ? builtin_yes_no(x, ids.ids, (int)ids.n, text, e)
                       : builtin_list(x, ids.ids, (int)ids.n, p->list_items, text, e);
        tokids_free(&ids);
        return rc;
    }
    const char *stop[1] = {p->stop};
    GenerateOptions go = {.max_tokens = max_new,
                          .sampling = {.temperature = 0, .top_p = 1},
                          .eos_ids = x->eos,
                          .n_eos = x->n_eos,
                          .stop = stop,
                          .n_stop = p->stop && *p->stop,
                          .tok = x->tok,
                          .cached_prefix = builtin_reuse(x, ids.ids, (int)ids.n)};
    GenerateResult r;
    rc = generate(x->dec, ids.ids, (int)ids.n, &go, &r, e);
    // the decoder holds the prompt (and answer ids after it, which the next prompt cuts off)
    builtin_hold(x, ids.ids, rc ? 0 : (int)ids.n);
    tokids_free(&ids);
    if (rc) return -1;
    x->prompt_tokens += r.n_prompt;
    x->new_tokens += r.n;
    x->prefill_s += r.prefill_s;
    x->decode_s += r.decode_s;
    *text = r.text;
    r.text = NULL;
    generate_result_free(&r);
    return 0;
}

// ---- cmd ---------------------------------------------------------------------------------------

int run_command(const char *command, const char *input, size_t input_len, double timeout_s, char **out, size_t *out_len,
                Error *e) {
    *out = NULL;
    *out_len = 0;
    int in[2], op[2];
    // O_CLOEXEC: a child started by another thread must not inherit these ends, or this child
    // would never see EOF on its stdin.
    if (pipe2(in, O_CLOEXEC)) return err_set(e, "cmd: pipe: %s", strerror(errno));
    if (pipe2(op, O_CLOEXEC)) {
        close(in[0]);
        close(in[1]);
        return err_set(e, "cmd: pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]), close(in[1]), close(op[0]), close(op[1]);
        return err_set(e, "cmd: fork: %s", strerror(errno));
    }
    if (pid == 0) {  // child: only async-signal-safe calls
        setpgid(0, 0);
        dup2(in[0], 0);
        dup2(op[1], 1);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(op[1]);
    int wfd = in[1], rfd = op[0];
    fcntl(wfd, F_SETFL, O_NONBLOCK);
    size_t written = 0, cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    double deadline = timeout_s > 0 ? now_seconds() + timeout_s : 0;
    int failed = 0;
    if (input_len == 0) close(wfd), wfd = -1;
    while (rfd >= 0) {
        struct pollfd pf[2] = {{.fd = rfd, .events = POLLIN}, {.fd = wfd, .events = POLLOUT}};
        int wait_ms = -1;
        if (deadline) {
            double left = deadline - now_seconds();
            if (left <= 0) {
                failed = 1;
                err_set(e, "cmd: timed out after %.1f s", timeout_s);
                break;
            }
            wait_ms = (int)(left * 1000) + 1;
        }
        int pr = poll(pf, wfd >= 0 ? 2 : 1, wait_ms);
        if (pr < 0 && errno != EINTR) {
            failed = 1;
            err_set(e, "cmd: poll: %s", strerror(errno));
            break;
        }
        if (pr <= 0) continue;
        if (wfd >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(wfd, input + written, input_len - written);
            if (w > 0) written += (size_t)w;
            // EPIPE: the command does not read its input; that is its business, not an error
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input_len) close(wfd), wfd = -1;
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (n + 4096 + 1 > cap) buf = xrealloc(buf, cap *= 2);
            ssize_t r = read(rfd, buf + n, cap - n - 1);
            if (r > 0) {
                n += (size_t)r;
                if (n > MAX_ANSWER_BYTES) {
                    failed = 1;
                    err_set(e, "cmd: more than %u bytes on stdout", MAX_ANSWER_BYTES);
                    break;
                }
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(rfd), rfd = -1;
            }
        }
    }
    if (wfd >= 0) close(wfd);
    if (rfd >= 0) close(rfd);
    if (failed) kill(-pid, SIGKILL), kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!failed && WIFSIGNALED(status)) failed = 1, err_set(e, "cmd: killed by signal %d", WTERMSIG(status));
    if (!failed && WIFEXITED(status) && WEXITSTATUS(status) != 0)
        failed = 1, err_set(e, "cmd: exit status %d", WEXITSTATUS(status));
    if (failed) {
        free(buf);
        return -1;
    }
    buf[n] = 0;
    *out = buf;
    *out_len = n;
    return 0;
}

static int cmd_answer(Explainer *x, const Prompt *p, char **text, Error *e) {
    char *input = p->system && *p->system ? fmt_alloc("%s\n\n", p->system, NULL) : xstrdup("");
    for (int i = 0; i < 2 * p->n_shots; i++) {  // worked examples: the user's text, then the answer
        char *next = fmt_alloc(i % 2 ? "%s%s\n\n" : "%s%s\n", input, p->shots[i]);
        free(input);
        input = next;
    }
    char *full = fmt_alloc("%s%s", input, p->user);
    free(input);
    input = full;
    size_t len;
    int rc = run_command(x->arg, input, strlen(input), x->o.timeout_s, text, &len, e);
    free(input);
    return rc;
}

// ---- http --------------------------------------------------------------------------------------

typedef struct {
    char *buf;
    size_t n, cap;
    int too_big;
} Buf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx) {
    Buf *b = ctx;
    size_t len = size * nmemb;
    if (b->n + len + 1 > MAX_ANSWER_BYTES) {
        b->too_big = 1;
        return 0;
    }
    if (b->n + len + 1 > b->cap) {
        while (b->n + len + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 4096;
        b->buf = xrealloc(b->buf, b->cap);
    }
    memcpy(b->buf + b->n, data, len);
    b->n += len;
    b->buf[b->n] = 0;
    return len;
}

static char *chat_request_body(const Explainer *x, const Prompt *p) {
    json_t *msgs = json_array();
    if (p->system && *p->system)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", p->system));
    for (int i = 0; i < 2 * p->n_shots; i++)
        json_array_append_new(msgs,
                              json_pack("{s:s, s:s}", "role", i % 2 ? "assistant" : "user", "content", p->shots[i]));
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", p->user));
    json_t *req = json_pack("{s:s, s:o, s:i, s:f}", "model", x->o.model, "messages", msgs, "max_tokens",
                            p->max_tokens > 0 ? p->max_tokens : x->o.max_tokens, "temperature", x->o.temperature);
    if (req && p->stop && *p->stop) json_object_set_new(req, "stop", json_string(p->stop));
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;  // NULL: the prompt is not UTF-8
    json_decref(req);
    return body;
}

// choices[0].message.content of a chat-completions reply, malloc'd; NULL (reason in e) if absent.
static char *chat_reply_content(const char *body, size_t len, Error *e) {
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root) {
        err_set(e, "malformed JSON in the reply (%s)", je.text);
        return NULL;
    }
    json_t *content =
        json_object_get(json_object_get(json_array_get(json_object_get(root, "choices"), 0), "message"), "content");
    char *s = json_is_string(content) ? xstrdup(json_string_value(content)) : NULL;
    if (!s) err_set(e, "the reply has no choices[0].message.content string");
    json_decref(root);
    return s;
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

static int http_answer(Explainer *x, const Prompt *p, char **text, int *attempts, Error *e) {
    CURL *c = curl_easy_init();
    if (!c) return err_set(e, "http: curl_easy_init failed");
    char *body = chat_request_body(x, p);
    if (!body) {
        curl_easy_cleanup(c);
        return err_set(e, "http: the prompt is not valid UTF-8");
    }
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    const char *key_env = x->o.api_key_env ? x->o.api_key_env : "OPENAI_API_KEY";
    const char *key = getenv(key_env);
    char *auth = NULL;
    if (key && *key) {
        auth = fmt_alloc("Authorization: Bearer %s%s", key, NULL);
        hdr = curl_slist_append(hdr, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, x->arg);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM-based DNS timeouts
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(x->o.timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(x->o.timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    int rc = -1;
    double delay = x->o.backoff_s;
    for (int attempt = 0; attempt <= x->o.retries; attempt++) {
        Buf b = {0};
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        *attempts = attempt + 1;
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_off_t retry_after = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &retry_after);
        int retryable;
        if (b.too_big) {
            err_set(e, "http: reply larger than %u bytes", MAX_ANSWER_BYTES);
            retryable = 0;
        } else if (cc != CURLE_OK) {
            err_set(e, "http: %s: %s", x->arg, curl_easy_strerror(cc));
            retryable = 1;
        } else if (status == 429 || status >= 500) {
            err_set(e, "http: %s: status %ld", x->arg, status);
            retryable = 1;
        } else if (status != 200) {
            err_set(e, "http: %s: status %ld", x->arg, status);  // 4xx: the request is wrong, retrying won't help
            retryable = 0;
        } else {
            *text = chat_reply_content(b.buf ? b.buf : "", b.n, e);
            if (*text)
                rc = 0;
            else
                err_prefix(e, "http: %s", x->arg);
            retryable = 1;  // a truncated or garbled reply may be transient
        }
        free(b.buf);
        if (rc == 0 || !retryable || attempt == x->o.retries) break;
        double wait = delay;
        if (retry_after > 0 && retry_after <= 60) wait = (double)retry_after;
        sleep_s(wait);
        delay *= 2;
    }
    curl_slist_free_all(hdr);
    if (auth) {
        memset(auth, 0, strlen(auth));  // the key does not linger in freed memory
        free(auth);
    }
    free(body);
    curl_easy_cleanup(c);
    return rc;
}

// ---- cache -------------------------------------------------------------------------------------

// The cache file of a prompt: DIR/<hash>.json holding the key fields and the answer. The full
// key is stored and compared on reading, so a hash collision is a miss, never a wrong answer.
static json_t *cache_key(const Explainer *x, const char *tag, const Prompt *p) {
    json_t *k = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "template", tag ? tag : "", "backend", x->id, "model",
                          x->model_id ? x->model_id : "", "system", p->system ? p->system : "", "user", p->user,
                          "max_tokens", p->max_tokens > 0 ? p->max_tokens : x->o.max_tokens, "list_items",
                          x->kind == EXPLAINER_BUILTIN ? p->list_items : 0);
    if (!k) return NULL;
    // added only when set, so the keys (and cached answers) of prompts without them stay valid
    if (p->n_shots) {
        json_t *shots = json_array();
        for (int i = 0; i < 2 * p->n_shots; i++) json_array_append_new(shots, json_string(p->shots[i]));
        json_object_set_new(k, "shots", shots);
    }
    if (p->stop && *p->stop) json_object_set_new(k, "stop", json_string(p->stop));
    if (p->yes_no && x->kind == EXPLAINER_BUILTIN) json_object_set_new(k, "yes_no", json_integer(1));
    return k;
}

static void cache_path(const Explainer *x, json_t *key, char *path, size_t cap) {
    char *s = json_dumps(key, JSON_COMPACT | JSON_SORT_KEYS);
    uint64_t h1 = hash_bytes(s, strlen(s));
    size_t n = strlen(s);
    // a second hash over the reversed halves: 128 bits in the name
    uint64_t h2 = hash_bytes(s + n / 2, n - n / 2) ^ (hash_bytes(s, n / 2) * 0x9E3779B97F4A7C15ull);
    free(s);
    snprintf(path, cap, "%s/%016llx%016llx.json", x->o.cache_dir, (unsigned long long)h1, (unsigned long long)h2);
}

static char *cache_get(const Explainer *x, json_t *key, const char *path) {
    json_t *root = json_load_file(path, 0, NULL);
    if (!root) return NULL;
    char *answer = NULL;
    json_t *k = json_object_get(root, "key"), *a = json_object_get(root, "answer");
    if (k && json_equal(k, key) && json_is_string(a)) answer = xstrdup(json_string_value(a));
    json_decref(root);
    (void)x;
    return answer;
}

static void cache_put(json_t *key, const char *path, const char *answer) {
    json_t *root = json_pack("{s:O, s:s}", "key", key, "answer", answer);
    if (!root) return;  // an answer that is not UTF-8 is simply not cached
    char *s = json_dumps(root, JSON_INDENT(1));
    json_decref(root);
    Error e;
    if (s && write_file_atomic(path, s, strlen(s), &e)) warn("cache: %s", e.msg);
    free(s);
}

// ---- the batch ---------------------------------------------------------------------------------

typedef struct {
    Explainer *x;
    const char *tag;
    const Prompt *prompts;
    Answer *answers;
    int n, next;
    pthread_mutex_t lock, done_lock, builtin_lock;
    void (*on_done)(void *, int, const Answer *);
    void *ctx;
} Batch;

static void answer_one(Batch *b, int i) {
    Explainer *x = b->x;
    const Prompt *p = &b->prompts[i];
    Answer *a = &b->answers[i];
    json_t *key = NULL;
    char path[4400];
    if (x->o.cache_dir && (key = cache_key(x, b->tag, p))) {  // a key that is not UTF-8 is not cached
        cache_path(x, key, path, sizeof path);
        a->text = cache_get(x, key, path);
        if (a->text) a->cached = 1;
    }
    if (!a->text) {
        Error e = {{0}};
        int rc = -1;
        switch (x->kind) {
            case EXPLAINER_CMD: a->attempts = 1, rc = cmd_answer(x, p, &a->text, &e); break;
            case EXPLAINER_HTTP: rc = http_answer(x, p, &a->text, &a->attempts, &e); break;
            case EXPLAINER_BUILTIN:
                pthread_mutex_lock(&b->builtin_lock);
                a->attempts = 1, rc = builtin_answer(x, p, &a->text, &e);
                pthread_mutex_unlock(&b->builtin_lock);
                break;
            case EXPLAINER_TOKENS: err_set(&e, "tokens answers no prompts"); break;
        }
        if (rc) {
            free(a->text);
            a->text = NULL;
            a->error = xstrdup(e.msg);
        } else if (key) {
            cache_put(key, path, a->text);
        }
    }
    json_decref(key);
    if (b->on_done) {
        pthread_mutex_lock(&b->done_lock);
        b->on_done(b->ctx, i, a);
        pthread_mutex_unlock(&b->done_lock);
    }
}

static void *worker(void *arg) {
    Batch *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        int i = b->next < b->n ? b->next++ : -1;
        pthread_mutex_unlock(&b->lock);
        if (i < 0) return NULL;
        answer_one(b, i);
    }
}

int explainer_answer(Explainer *x, const char *cache_tag, const Prompt *prompts, int n, Answer *answers,
                     void (*on_done)(void *ctx, int i, const Answer *a), void *ctx, Error *e) {
    if (x->kind == EXPLAINER_TOKENS) return err_set(e, "the tokens explainer answers no prompts");
    if (x->o.cache_dir && mkdir(x->o.cache_dir, 0755) && errno != EEXIST)
        return err_set(e, "%s: cannot create the cache directory: %s", x->o.cache_dir, strerror(errno));
    Batch b = {
        .x = x, .tag = cache_tag, .prompts = prompts, .answers = answers, .n = n, .on_done = on_done, .ctx = ctx};
    pthread_mutex_init(&b.lock, NULL);
    pthread_mutex_init(&b.done_lock, NULL);
    pthread_mutex_init(&b.builtin_lock, NULL);
    // builtin: one model, one decoder, the cores busy inside the forward; cached answers still
    // come back in parallel, which is all a rerun needs
    int threads = x->o.concurrency > 0 ? x->o.concurrency : 1;
    if (threads > n) threads = n;
    pthread_t *t = xcalloc((size_t)(threads > 0 ? threads : 1), sizeof *t);
    int started = 0;
    for (; started < threads; started++)
        if (pthread_create(&t[started], NULL, worker, &b)) break;
    if (started == 0) worker(&b);
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    free(t);
    pthread_mutex_destroy(&b.lock);
    pthread_mutex_destroy(&b.done_lock);
    pthread_mutex_destroy(&b.builtin_lock);
    return 0;
}

// ---- setup -------------------------------------------------------------------------------------

static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

Explainer *explainer_new(const ExplainerOptions *o, Error *e) {
    Explainer *x = xcalloc(1, sizeof *x);
    x->o = *o;
    if (x->o.concurrency <= 0) x->o.concurrency = 1;
    if (x->o.max_tokens <= 0) x->o.max_tokens = 128;
    const char *s = o->spec ? o->spec : "builtin";
    if (!strcmp(s, "tokens")) {
        x->kind = EXPLAINER_TOKENS;
        x->id = xstrdup("tokens");
    } else if (!strncmp(s, "cmd:", 4)) {
        x->kind = EXPLAINER_CMD;
        if (!s[4]) goto bad;
        x->arg = xstrdup(s + 4);
        x->id = xstrdup(s);
    } else if (!strncmp(s, "http:", 5)) {
        x->kind = EXPLAINER_HTTP;
        x->arg = xstrdup(s + 5);
        if (!*x->arg) goto bad;
        if (strncmp(x->arg, "http://", 7) && strncmp(x->arg, "https://", 8)) {
            err_set(e, "--explainer %s: the URL must start with http:// or https://", s);
            goto fail;
        }
        if (!o->model || !*o->model) {
            err_set(e, "--explainer %s needs --model NAME (the endpoint's model)", s);
            goto fail;
        }
        x->model_id = xstrdup(o->model);
        x->id = fmt_alloc("http:%s model=%s", x->arg, o->model);
        static pthread_once_t once = PTHREAD_ONCE_INIT;  // curl_global_init is not thread-safe
        pthread_once(&once, curl_init_once);
    } else if (!strcmp(s, "builtin") || !strncmp(s, "builtin:", 8)) {
        x->kind = EXPLAINER_BUILTIN;
        x->arg = xstrdup(s[7] == ':' && s[8] ? s + 8 : "smollm2");
        x->id = fmt_alloc("builtin:%s%s", x->arg, NULL);
        if (builtin_load(x, e)) goto fail;
    } else {
        goto bad;
    }
    return x;
bad:
    err_set(e, "--explainer '%s': expected tokens, cmd:COMMAND, http:URL or builtin[:MODEL]", s);
fail:
    explainer_free(x);
    return NULL;
}

void explainer_free(Explainer *x) {
    if (!x) return;
    if (x->dec) kv_decoder_free(x->dec);
    if (x->model_loaded) model_free(&x->m);
    if (x->chat) chat_template_free(&x->ct);
    if (x->tok) tokenizer_free(x->tok);
    free(x->arg);
    free(x->id);
    free(x->model_id);
    free(x->held);
    free(x);
}
