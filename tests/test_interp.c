// test_interp.c — interp.h without a model or a store: answer parsing, scorer replies, the
// metrics against hand-computed confusions, the lexical scorer, templates, and the score sets
// and prompts of a hand-made feature record (no tokenizer: tokens show as [id]).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "interp.h"

#define CHK(cond) CHECK(cond, "%s", "")

static void test_parse_answer(void) {
    char *l, *x;
    ParseStatus st =
        interp_parse_answer("Thinking...\n[LABEL]: \"say the\".\n[EXPLANATION]: Predicts the word the. More.", &l, &x);
    CHK(st == PARSE_OK);
    CHK(!strcmp(l, "say the"));
    CHK(!strcmp(x, "Predicts the word the."));
    free(l), free(x);
    st = interp_parse_answer("[EXPLANATION]: Fires on prepositions before places and times.", &l, &x);
    CHK(st == PARSE_NO_LABEL);
    CHK(!strcmp(l, "Fires on prepositions before places and times"));  // 7 words, the period dropped
    free(l), free(x);
    st = interp_parse_answer("  just words\nand more", &l, &x);
    CHK(st == PARSE_FAILED);
    CHK(!strcmp(x, "just words"));
    free(l), free(x);
    // the label on the next line, control characters and markdown dropped
    st = interp_parse_answer("**Label:**\n  bold\x01thing\n**Explanation:** it\x1b[31m is red", &l, &x);
    CHK(st == PARSE_OK);
    CHK(!strcmp(l, "bold thing"));
    CHK(!strchr(x, 0x1b));
    free(l), free(x);
    // invalid UTF-8 (a token cut mid-character) comes out valid: U+FFFD in its place
    st = interp_parse_answer("[LABEL]: caf\xc3\n[EXPLANATION]: bad \xff byte.", &l, &x);
    CHK(st == PARSE_OK && !strcmp(l, "caf\xef\xbf\xbd") && !strcmp(x, "bad \xef\xbf\xbd byte."));
    free(l), free(x);
    st = interp_parse_answer("[LABEL]: <a label of 1 to 6 words>\n[EXPLANATION]: Fires on dogs.", &l, &x);
    CHK(st == PARSE_NO_LABEL && !strcmp(l, "Fires on dogs"));
    free(l), free(x);
    st = interp_parse_answer("", &l, &x);
    CHK(st == PARSE_FAILED);
    free(l), free(x);
}

static void test_score_reply(void) {
    int p[5];
    CHK(score_parse_reply("[1, 0, 1]", 3, p) == 0 && p[0] == 1 && p[1] == 0 && p[2] == 1);
    CHK(score_parse_reply("Sure: [0,0,1,1,0] done", 5, p) == 0 && p[2] == 1 && p[4] == 0);
    CHK(score_parse_reply("[LABEL] then [1, 1]", 2, p) == 0 && p[0] == 1);  // the first list that fits
    CHK(score_parse_reply("[1, 0]", 3, p) == -1);                           // too short
    CHK(score_parse_reply("[1, 2, 0]", 3, p) == -1);                        // not 0/1
    CHK(score_parse_reply("[10, 0]", 2, p) == -1);
    CHK(score_parse_reply("no list", 1, p) == -1);
    CHK(score_parse_reply("[1, 0, 1, 1]", 3, p) == -1);  // too long
}

static void test_metrics(void) {
    // tp 6, fn 4, tn 8, fp 2: TPR 0.6, TNR 0.8, precision 0.75, F1 2·0.75·0.6/1.35
    Confusion c = {.tp = 6, .fn = 4, .tn = 8, .fp = 2, .failed = 3};
    ScoreMetrics m = confusion_metrics(&c);
    CHECK_NEAR(m.balanced_accuracy, 0.7, 1e-12);
    CHECK_NEAR(m.precision, 0.75, 1e-12);
    CHECK_NEAR(m.recall, 0.6, 1e-12);
    CHECK_NEAR(m.f1, 0.9 / 1.35, 1e-12);
    CHK(m.n == 20 && m.failed == 3);
    Confusion none = {0};
    m = confusion_metrics(&none);
    CHK(m.n == 0 && m.f1 == 0 && m.precision == 0 && isnan(m.balanced_accuracy));
    Confusion neg_only = {.tn = 3};
    CHK(isnan(confusion_metrics(&neg_only).balanced_accuracy));
}

static void test_lexical(void) {
    CHK(lexical_predict("Fires on \"in\", \"at\"; promotes R.", "play outside in the sun", TASK_DETECTION) == 1);
    CHK(lexical_predict("Fires on \"in\", \"at\"; promotes R.", "the dog runs", TASK_DETECTION) == 0);
    // without quotes: words of 3+ letters that are not stop words
    CHK(lexical_predict("Mentions of the sun.", "the SUN is hot", TASK_DETECTION) == 1);
    CHK(lexical_predict("Mentions of the sun.", "the moon", TASK_DETECTION) == 0);
    // fuzzing: every marked span must hold a key
    CHK(lexical_predict("\"in\"", "out<< in>> the <<inn>>", TASK_FUZZING) == 1);
    CHK(lexical_predict("\"in\"", "out<< in>> the <<sun>>", TASK_FUZZING) == 0);
    CHK(lexical_predict("\"in\"", "nothing marked in here", TASK_FUZZING) == 0);
    CHK(lexical_predict("the a of", "the a of", TASK_DETECTION) == 0);  // no keys: always no
}

static void test_templates(void) {
    InterpTemplate t;
    Error e;
    CHK(interp_template_builtin(&t, "delphi", &e) == 0 && strstr(t.user, "{{examples}}") && strstr(t.user, "[LABEL]:"));
    interp_template_free(&t);
    CHK(interp_template_builtin(&t, "np", &e) == 0 && strstr(t.user, "{{top_logits}}"));
    interp_template_free(&t);
    CHK(interp_template_builtin(&t, "gpt", &e) == -1 && strstr(e.msg, "gpt"));
    // small: one-line answers after worked examples whose answers parse, quote a top word of their
    // evidence, and that word is a lexical key found in their snippets — the form the model copies
    CHK(interp_template_builtin(&t, "small", &e) == 0 && t.one_line && t.n_shots == 3);
    CHK(strstr(t.user, "{{max_counts}}") && strstr(t.user, "{{snippets}}") && strstr(t.user, "{{next_tokens}}"));
    for (int i = 0; i < t.n_shots; i++) {
        const char *user = t.shots[2 * i], *answer = t.shots[2 * i + 1];
        CHK(strstr(user, "Top words: ") == user && strstr(user, "<<"));
        char *l, *x;
        CHECK(interp_parse_label_line(answer, &l, &x) == PARSE_OK, "shot %d: %s", i, answer);
        const char *q1 = strchr(l, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
        char top[64] = "";
        if (q2 && q2 - q1 + 1 < 64) memcpy(top, q1, (size_t)(q2 - q1 + 1)), top[q2 - q1 + 1] = 0;
        CHECK(*top && strstr(user, top) && strstr(user, top) < strchr(user, '\n'), "shot %d: %s", i, l);
        const char *snippets = strstr(user, "Examples:");
        CHECK(lexical_predict(x, snippets, TASK_DETECTION) == 1, "shot %d: %s", i, x);
        CHECK(lexical_predict(x, "xyz qqq", TASK_DETECTION) == 0, "shot %d: %s", i, x);
        free(l), free(x);
    }
    interp_template_free(&t);
}

static void test_label_line(void) {
    char *l, *x;
    CHK(interp_parse_label_line("Label: the word \"ball\"\nLabel: more", &l, &x) == PARSE_OK);
    CHK(!strcmp(l, "the word \"ball\"") && !strcmp(x, "Fires on the word \"ball\"."));
    free(l), free(x);
    CHK(interp_parse_label_line("\n  **Label:** \"dogs\".  ", &l, &x) == PARSE_OK && !strcmp(l, "dogs"));
    free(l), free(x);
    CHK(interp_parse_label_line("- [LABEL]: names like \"Lily\" and \"Tom\"", &l, &x) == PARSE_OK);
    CHK(!strcmp(l, "names like \"Lily\" and \"Tom\""));
    free(l), free(x);
    // eight words at most; a final quote that first_words would drop is kept
    CHK(interp_parse_label_line("one two three four five six seven \"eight\" nine", &l, &x) == PARSE_OK);
    CHK(!strcmp(l, "one two three four five six seven \"eight\""));
    free(l), free(x);
    // echoes of the prompt, loops and empty answers fail, kept as they came
    CHK(interp_parse_label_line("Top words: \"with\" (12)", &l, &x) == PARSE_FAILED && strstr(l, "Top"));
    free(l), free(x);
    CHK(interp_parse_label_line("Label: <<with>> a", &l, &x) == PARSE_FAILED);
    free(l), free(x);
    CHK(interp_parse_label_line("happy, happy, happy, happy", &l, &x) == PARSE_FAILED);
    free(l), free(x);
    CHK(interp_parse_label_line("the word \"in\" and the examples of the word", &l, &x) == PARSE_OK);
    free(l), free(x);
    CHK(interp_parse_label_line("   \n\n", &l, &x) == PARSE_FAILED);
    free(l), free(x);
    CHK(interp_parse_label_line("Label: a\x01b\x1b[31m", &l, &x) == PARSE_OK && !strchr(l, 0x1b) && !strchr(l, 1));
    free(l), free(x);
}

static void test_yesno(void) {
    CHK(score_parse_yesno("yes (+1.250)") == 1 && score_parse_yesno(" No.") == 0 && score_parse_yesno("**Yes**") == 1);
    CHK(score_parse_yesno("nope") == -1 && score_parse_yesno("maybe") == -1 && score_parse_yesno("") == -1);
    CHECK_NEAR(score_yesno_margin("no (-1.250)"), -1.25, 1e-12);
    CHK(isnan(score_yesno_margin("yes")) && isnan(score_yesno_margin("maybe (+1)")));
    // AUROC: positives 3, 1 (score) against negatives 2, 0, 1: wins 3 + (1 + 0.5) = 4.5 of 6 pairs
    double sc[] = {3, 2, 1, 0, 1, NAN};
    int tr[] = {1, 0, 1, 0, 0, 1};
    CHECK_NEAR(roc_auc(sc, tr, 6), 4.5 / 6, 1e-12);
    CHK(isnan(roc_auc(sc, tr, 1)));  // one class only
    for (int t = 0; t < 2; t++) {
        const char *const *shots;
        int n;
        const char *sys = score_yesno_system((ScoreTask)t, &shots, &n);
        CHK(sys && n == 4);
        int yes = 0;
        for (int i = 0; i < n; i++) yes += score_parse_yesno(shots[2 * i + 1]) == 1;
        CHK(yes == 2);  // balanced: the examples favour neither answer
    }
    char *texts[] = {"  the <<dog>> ran"};
    int truth[] = {1};
    ScoreSet s = {texts, truth, 1};
    char *u = score_yesno_prompt(&s, 0, TASK_FUZZING, "the word \"dog\"");
    CHK(!strcmp(u, "Text: the <<dog>> ran\nDescription: the word \"dog\"\nDo the marked words match?"));
    free(u);
}

// A feature with 3 test samples (one with two marked tokens), 2 test random windows, and explain
// windows: the sets, their interleaving and the prompts are checked without a tokenizer.
static const char RECORD[] =
    "{\"layer\": 2, \"feature\": 7, \"dead\": false, \"density\": 0.1, \"max_activation\": 4.0,"
    " \"top\": [{\"act\": 4.0, \"window\": 1, \"split\": \"explain\", \"max_idx\": 1, \"tokens\": [10, 11, 12],"
    "   \"acts\": [0, 4.0, 0]}, {\"act\": 3.0, \"window\": 2, \"split\": \"test\", \"max_idx\": 0,"
    "   \"tokens\": [11, 13], \"acts\": [3.0, 0]}],"
    " \"samples\": [{\"act\": 3.0, \"window\": 2, \"split\": \"test\", \"bin\": 0, \"max_idx\": 0, \"tokens\": [11, "
    "13],"
    "   \"acts\": [3.0, 0]}, {\"act\": 2.0, \"window\": 3, \"split\": \"test\", \"bin\": 1, \"max_idx\": 2,"
    "   \"tokens\": [14, 15, 11], \"acts\": [1.0, 0.1, 2.0]}, {\"act\": 1.0, \"window\": 4, \"split\": \"test\","
    "   \"bin\": 2, \"max_idx\": 0, \"tokens\": [11], \"acts\": [1.0]}, {\"act\": 1.5, \"window\": 5,"
    "   \"split\": \"explain\", \"bin\": 1, \"max_idx\": 0, \"tokens\": [11, 16], \"acts\": [1.5, 0]}],"
    " \"random\": [{\"window\": 8, \"split\": \"test\", \"tokens\": [20, 21, 22, 23]},"
    "   {\"window\": 9, \"split\": \"test\", \"tokens\": [24, 25]}, {\"window\": 10, \"split\": \"explain\", "
    "\"tokens\": [1]}],"
    " \"top_logits\": [[30, 1.5], [31, 1.0]], \"next_tokens\": [[12, 1]]}";

static void test_sets(void) {
    FeatureEvidence f;
    Error e;
    CHK(feature_evidence_parse(&f, RECORD, strlen(RECORD), &e) == 0);
    CHK(f.layer == 2 && f.feature == 7 && f.n_top == 2 && f.n_samples == 4 && f.n_random == 3);
    InterpOptions o = {.tok = NULL, .max_examples = 12, .score_examples = 10, .score_batch = 5, .seed = 1};
    ScoreSet d, z;
    CHK(score_set_build(&d, &f, TASK_DETECTION, &o, &e) == 0 && d.n == 5);
    CHK(score_set_build(&z, &f, TASK_FUZZING, &o, &e) == 0 && z.n == 5);
    int pos = 0, marked_neg = 0;
    for (int i = 0; i < d.n; i++) {
        pos += d.truth[i];
        CHK(!strstr(d.texts[i], "<<"));  // detection: plain text
        CHK(d.truth[i] == z.truth[i]);   // the same windows in the same order
        if (!z.truth[i]) marked_neg += strstr(z.texts[i], "<<") != NULL;
    }
    CHK(pos == 3);
    CHK(marked_neg == 2);  // negatives carry random marks too
    // window 3: acts 1.0, 0.1, 2.0 → the first and last above 0.3·2.0 are marked, the middle not
    int found = 0;
    for (int i = 0; i < z.n; i++) found += !strcmp(z.texts[i], "<<[14]>>[15]<<[11]>>");
    CHK(found == 1);
    char *sys, *user;
    score_prompt(&z, 0, 3, TASK_FUZZING, "an \"x\" explanation", &sys, &user);
    CHK(strstr(sys, "<< and >>") && strstr(user, "Example 2: ") && !strstr(user, "Example 3: "));
    CHK(strstr(user, "an \"x\" explanation"));
    free(sys), free(user);
    // the model-free explanation: the max token of the explain windows, and the logits
    char *label, *expl;
    interp_tokens_explain(&f, &o, &label, &expl);
    CHK(!strcmp(label, "[11] → [30]/[31]"));
    CHK(strstr(expl, "\"[11]\"") != NULL);
    free(label), free(expl);
    // rendering: only explain windows reach the prompt (windows 1 and 5; never test windows 2-4)
    InterpTemplate t = {.name = "t", .system = "", .user = "{{max_tokens}}|{{texts}}|{{layer}}:{{feature}}|{{nope}}"};
    char *r = interp_render(&t, &f, &o, &e);
    CHK(r && !strcmp(r, "[11], [11]|[10]<<[11]>>[12]\n<<[11]>>[16]\n|2:7|{{nope}}"));
    free(r);
    InterpTemplate ts = {.name = "t", .system = "", .user = "{{max_counts}}|{{next_tokens}}|{{snippets}}"};
    r = interp_render(&ts, &f, &o, &e);
    CHECK(r && !strcmp(r, "\"[11]\" (2)|[12], [16]|- [10]<<[11]>>[12]\n- <<[11]>>[16]"), "%s", r);
    free(r);
    score_set_free(&d);
    score_set_free(&z);
    feature_evidence_free(&f);
    CHK(feature_evidence_parse(&f, "[1]", 3, &e) == -1);
    const char *bad = "{\"top\": [{\"tokens\": [1], \"acts\": []}]}";
    CHK(feature_evidence_parse(&f, bad, strlen(bad), &e) == -1 && strstr(e.msg, "acts"));
}

int main(void) {
    RUN_TEST(test_parse_answer);
    RUN_TEST(test_score_reply);
    RUN_TEST(test_metrics);
    RUN_TEST(test_lexical);
    RUN_TEST(test_templates);
    RUN_TEST(test_label_line);
    RUN_TEST(test_yesno);
    RUN_TEST(test_sets);
    return test_summary();
}
