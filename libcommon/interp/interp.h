// interp.h — auto-interpretation of CLT features from a feat-topk store (formats/features.md):
// the evidence of one feature (its record), prompts built from templates with the examples
// rendered through the model's tokenizer, the explainer's answer parsed into a short label and a
// one-sentence explanation, and scores of an explanation on the store's held-out `test` windows.
//
// Scoring follows Delphi's classifier scorers (reference notes §1.6): the scorer sees an
// explanation and a batch of test windows and answers a list of 0/1, one per window:
//   detection  plain window text; positives are activating test windows (the bin-stratified
//              `samples`), negatives non-activating ones (`random`)
//   fuzzing    windows with tokens marked <<like this>>: positives mark the tokens above 0.3 of
//              the window's max, negatives mark ceil(mean marked per positive) random tokens of a
//              non-activating window; "yes" means every marked token fits the explanation
// Metrics: balanced accuracy (TPR + TNR) / 2 (NaN unless both classes were answered), precision,
// recall, F1; windows whose answer could not be parsed are left out and counted. The lexical scorer needs no model: it
// says yes when a
// key of the explanation (its "quoted" strings if it has any, else its words of 3+ letters that
// are not stop words) occurs, case-insensitively, in the text (detection) or in every marked span
// (fuzzing) — cheap, deterministic, and the scorer of the model-free `tokens` explainer.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tokenizer.h"

typedef struct {
    uint32_t *tokens;
    float *acts;  // (n,) NULL for a non-activating window
    int n, max_idx, bin, test;
    float act;
    int64_t window;
} InterpExample;

typedef struct {
    int layer, feature, dead;
    double density, max_act;
    InterpExample *top, *samples, *random;
    int n_top, n_samples, n_random;
    uint32_t *top_logits, *next_tokens;
    int n_top_logits, n_next_tokens;
} FeatureEvidence;

// Parses one store record (JSON). Errors name what is missing.
int feature_evidence_parse(FeatureEvidence *f, const char *json, size_t len, Error *e);
void feature_evidence_free(FeatureEvidence *f);

// ---- templates and prompts ---------------------------------------------------------------------

// A template: system text and user text with placeholders, replaced per feature:
//   {{examples}}     Delphi style: one explain window a line, activating tokens <<marked>> (above
//                    0.3 of the window's max), each followed by `Activations: ("tok" : n), ...`
//                    with n = ceil(10 act / the feature's max)
//   {{texts}}        the same windows marked, without the activation lines
//   {{max_tokens}}   the max-activating token of each window, comma-separated
//   {{next_tokens}}  the tokens right after the max, most frequent first
//   {{top_logits}}   the tokens the feature's decoder promotes most
//   {{max_counts}}   the distinct max-activating tokens with their counts, most frequent first:
//                    `"with" (9), "to" (2)` — compact where a small model would copy a long list
//   {{snippets}}     up to 4 short views of the explain windows, `- ` a line: the 8 tokens before
//                    the max, the max and 2 after, firing tokens <<marked>>
//   {{layer}}, {{feature}}
// Built in: "delphi" (Delphi's explainer prompt, answer with a label line added), "np"
// (Neuronpedia's max-activation + logits lists, a 1-6 word label) and "small" (for a ~100M
// instruct model: the max tokens with counts, the tokens after them and 4 snippets; three worked
// examples in the chat history answered `Label: ...`; the answer is one line, parsed leniently by
// interp_parse_label_line). A template file holds the system text, a line `---`, and the user
// text (no `---`: all of it is the user text).
typedef struct {
    char *name;  // "delphi", "np", "small" or the file's path: part of the cache key
    char *system;
    char *user;
    const char *const *shots;  // worked examples for the chat history: user, assistant, user, ... (static)
    int n_shots;               // pairs
    int one_line;              // the answer is a single line (stop at a newline, interp_parse_label_line)
} InterpTemplate;

int interp_template_builtin(InterpTemplate *t, const char *name, Error *e);
int interp_template_load(InterpTemplate *t, const char *path, Error *e);
void interp_template_free(InterpTemplate *t);

typedef struct {
    const Tokenizer *tok;
    int max_examples;    // explain windows shown (default 12)
    int score_examples;  // test windows per class per task (default 10)
    int score_batch;     // windows per scorer prompt (default 5)
    uint64_t seed;       // fuzzing's random marks, the shuffled control
} InterpOptions;

// The user message for feature f (malloc'd).
char *interp_render(const InterpTemplate *t, const FeatureEvidence *f, const InterpOptions *o, Error *e);

// The model-free explanation: the most frequent max-activating tokens of the explain windows
// ("quoted", the lexical scorer's keys) and the top logits. malloc'd label and explanation.
void interp_tokens_explain(const FeatureEvidence *f, const InterpOptions *o, char **label, char **explanation);

typedef enum { PARSE_OK, PARSE_NO_LABEL, PARSE_FAILED } ParseStatus;
// Reads `[LABEL]: ...` (or [DESCRIPTION]:, Label:) and `[EXPLANATION]: ...` (or Explanation:) from
// an answer. A missing label is taken from the explanation's first words (PARSE_NO_LABEL); with
// neither, the first line of the answer stands in (PARSE_FAILED). Control characters are dropped.
ParseStatus interp_parse_answer(const char *answer, char **label, char **explanation);
const char *parse_status_name(ParseStatus s);  // "ok", "no_label", "failed"
// The one-line answer of a `one_line` template: its first non-empty line, a `Label:` (or
// [LABEL]:, -, *) prefix and enclosing quotes or a final period stripped, at most 8 words; the
// explanation is the label as a sentence. PARSE_FAILED when nothing is left, or when the line
// echoes the prompt (it starts with one of the prompt's field names) — then label and
// explanation are the line as it came, for the record.
ParseStatus interp_parse_label_line(const char *answer, char **label, char **explanation);

// ---- scoring -----------------------------------------------------------------------------------

typedef enum { TASK_DETECTION, TASK_FUZZING } ScoreTask;

typedef struct {
    int tp, fp, tn, fn, failed;  // failed: windows without a parsed answer
} Confusion;

typedef struct {
    double balanced_accuracy, precision, recall, f1;
    int n, failed;
} ScoreMetrics;

ScoreMetrics confusion_metrics(const Confusion *c);

// The scoring windows of one feature for a task: texts (malloc'd, marked for fuzzing) with
// their truth, interleaved deterministically. 0 windows when the store holds no test windows.
typedef struct {
    char **texts;
    int *truth;  // 1: activating
    int n;
} ScoreSet;

int score_set_build(ScoreSet *s, const FeatureEvidence *f, ScoreTask task, const InterpOptions *o, Error *e);
void score_set_free(ScoreSet *s);

// The scorer prompt for windows [begin, end) of s (Delphi's detection / fuzzing prompts).
void score_prompt(const ScoreSet *s, int begin, int end, ScoreTask task, const char *explanation, char **system,
                  char **user);
// The yes/no scorer: one window a prompt, a system text and worked examples (static, in the chat
// history: user, assistant, ...; n_shots pairs) that are the same for every window, so a model
// run can keep their keys and values from one prompt to the next; the user message (malloc'd)
// names the explanation, then the window. A 135M model follows this where it cannot write a list.
const char *score_yesno_system(ScoreTask task, const char *const **shots, int *n_shots);
char *score_yesno_prompt(const ScoreSet *s, int i, ScoreTask task, const char *explanation);
// 1 for a reply starting (after spaces, quotes, markdown) with yes, 0 with no, -1 otherwise.
int score_parse_yesno(const char *reply);
// The log-odds d of the builtin backend's "yes (+d)" / "no (-d)" reply; NAN for other replies.
double score_yesno_margin(const char *reply);
// The area under the ROC curve of scores against truth (1: positive): the chance that a random
// positive scores above a random negative, ties counting half. NAN scores are left out; NAN
// unless both classes remain. Threshold-free: it reads a scorer biased to one answer.
double roc_auc(const double *score, const int *truth, int n);
// Parses the reply to a score_prompt of n windows: the first [...] list holding exactly n 0/1
// values. 0 with pred filled, -1 when there is none.
int score_parse_reply(const char *reply, int n, int *pred);
// Adds predictions for windows [begin, end) of s (pred NULL: their answer failed).
void confusion_add(Confusion *c, const ScoreSet *s, int begin, const int *pred, int n);
// The lexical scorer's prediction for one window text.
int lexical_predict(const char *explanation, const char *text, ScoreTask task);
