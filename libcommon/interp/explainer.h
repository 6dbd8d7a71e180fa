// explainer.h — the language models behind interp-prompt, one interface over four backends that
// answer a batch of chat prompts (a system and a user message each) with text:
//   tokens          model-free: answers no prompts (interp.h builds its label from the record)
//   cmd:COMMAND     /bin/sh -c COMMAND per prompt, the prompt on stdin, the answer on stdout: the
//                   command is the user's, the data only ever travels through the pipe
//   http:URL        an OpenAI-compatible chat-completions endpoint (libcurl): concurrent requests,
//                   retries with exponential backoff on 429/5xx/transport errors/malformed JSON,
//                   a per-request timeout; the API key from an environment variable, never printed
//   builtin[:MODEL] our engine in-process (generate.h + chat.h), greedy; MODEL resolved as
//                   generate -m (model_resolve.h), default smollm2. It keeps the keys and values
//                   of its last prompt and prefills only what a new prompt does not share with it
//                   (the system text and worked examples of a scorer repeat in every prompt)
// Every answer can be cached on disk under a hash of (template, backend id, model, prompt): a
// rerun with the same inputs makes no call. A prompt that fails (after the retries) fails alone:
// its Answer says why and the others are kept.
#pragma once
#include <stddef.h>

#include "err.h"

typedef enum { EXPLAINER_TOKENS, EXPLAINER_CMD, EXPLAINER_HTTP, EXPLAINER_BUILTIN } ExplainerKind;

typedef struct {
    const char *spec;         // "tokens", "cmd:COMMAND", "http:URL", "builtin[:MODEL]"
    const char *model;        // http: the "model" field of the request (required there)
    const char *api_key_env;  // http: environment variable holding the key (NULL: OPENAI_API_KEY)
    const char *cache_dir;    // NULL: no cache
    int concurrency;          // prompts in flight at once (cmd, http; builtin runs one at a time)
    int retries;              // http: extra attempts after a retryable failure
    double timeout_s;         // cmd, http: per attempt
    double backoff_s;         // http: first retry delay, doubled each time (Retry-After honoured)
    int max_tokens;           // answer length bound (http max_tokens, builtin new tokens)
    double temperature;       // http; builtin is greedy
} ExplainerOptions;

typedef struct {
    const char *system;  // may be NULL or ""
    const char *user;
    int max_tokens;  // answer length bound for this prompt; 0: the explainer's
    int list_items;  // > 0: the reply is a list of this many 0/1 values (a scorer prompt); the
                     // builtin backend then decodes it constrained: "[", and per item the more
                     // likely of the tokens "1" and "0", then ","; others generate freely
    const char *const *shots;  // worked examples before the user message: n_shots (user, assistant)
    int n_shots;               // pairs, sent as chat turns (cmd: as text)
    const char *stop;          // the answer ends before this string (builtin, http "stop"); NULL: none
    int yes_no;  // 1: the reply is "yes" or "no"; the builtin backend answers from one forward, the
                 // likelier of the two words as the answer's first token, as "yes (+d)" or "no (-d)"
                 // with d the log-odds; others generate freely
} Prompt;

typedef struct {
    char *text;    // the answer (malloc'd), NULL when the prompt failed
    char *error;   // why it failed (malloc'd), NULL on success
    int cached;    // 1: read from the disk cache
    int attempts;  // calls made (0 when cached)
} Answer;

typedef struct Explainer Explainer;

// Parses the spec and prepares the backend (builtin loads the model, http initialises libcurl).
// Errors: an unknown spec, http without a model, a builtin model that cannot be found or loaded.
Explainer *explainer_new(const ExplainerOptions *o, Error *e);
void explainer_free(Explainer *x);
ExplainerKind explainer_kind(const Explainer *x);
// "tokens", "cmd:...", "http:URL model=NAME", "builtin:MODEL": what produced an answer (JSONL field).
const char *explainer_id(const Explainer *x);

// Answers prompts[0..n) into answers[0..n) (zeroed by the caller), `cache_tag` (e.g. the
// template name) joining the cache key. on_done (may be NULL) is called after each answer, from
// the worker threads but never concurrently. Returns -1 only for errors that stop the whole batch
// (the tokens backend asked to answer, an unusable cache directory); per-prompt failures are in
// the answers.
int explainer_answer(Explainer *x, const char *cache_tag, const Prompt *prompts, int n, Answer *answers,
                     void (*on_done)(void *ctx, int i, const Answer *a), void *ctx, Error *e);
void answer_free(Answer *a);

// The builtin backend's prefill and decode totals so far (tokens, seconds): for the benchmarks.
void explainer_builtin_stats(const Explainer *x, long *prompt_tokens, double *prefill_s, long *new_tokens,
                             double *decode_s);
// The prompt tokens the builtin backend did not prefill: held from the prompt before.
long explainer_builtin_reused(const Explainer *x);

// Runs `/bin/sh -c command` with input on its stdin and returns its stdout (malloc'd, *out_len
// bytes, NUL-terminated). The command is never built from the input. Killed after timeout_s
// (0: none). -1 (with the exit status or signal in e) unless it exits 0.
int run_command(const char *command, const char *input, size_t input_len, double timeout_s, char **out, size_t *out_len,
                Error *e);
