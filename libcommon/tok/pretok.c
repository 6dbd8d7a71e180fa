#include "pretok.h"

#include <string.h>

#include "unicode.h"

static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char LLAMA3_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_PATTERN[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

int pretok_regex_lookup(const char *pattern, PretokRegex *kind) {
    if (!strcmp(pattern, GPT2_PATTERN)) *kind = PRETOK_REGEX_GPT2;
    else if (!strcmp(pattern, LLAMA3_PATTERN)) *kind = PRETOK_REGEX_LLAMA3;
    else if (!strcmp(pattern, QWEN2_PATTERN)) *kind = PRETOK_REGEX_QWEN2;
    else return -1;
    return 0;
}

#define IS_L(f) ((f) & UF_LETTER)
#define IS_N(f) ((f) & UF_NUMBER)
#define IS_WS(f) ((f) & UF_WHITESPACE)
#define IS_OTHER(f) (!((f) & (UF_LETTER | UF_NUMBER | UF_WHITESPACE)))  // [^\s\p{L}\p{N}]
#define IS_CRLF(c) ((c) == '\r' || (c) == '\n')

// Folds a code point for the (?i:...) contractions: Oniguruma's case folding maps the ASCII
// capitals and U+017F LATIN SMALL LETTER LONG S (folds to 's') onto the letters used there.
static uint32_t fold_ascii(uint32_t c, int case_insensitive) {
    if (!case_insensitive) return c;
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c == 0x17F) return 's';
    return c;
}

// 's 't 're 've 'm 'll 'd at i; returns the match length or 0.
static size_t match_contraction(const uint32_t *cps, size_t n, size_t i, int ci) {
    if (cps[i] != '\'' || i + 1 >= n) return 0;
    uint32_t a = fold_ascii(cps[i + 1], ci);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= n) return 0;
    uint32_t b = fold_ascii(cps[i + 2], ci);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

// \s+(?!\S) then \s+ at a whitespace code point i.
static size_t match_whitespace_tail(const uint8_t *flags, size_t n, size_t i) {
    size_t j = i;
    while (j < n && IS_WS(flags[j])) j++;
    if (j == n) return j - i;      // \s+ to the end: nothing non-space follows
    if (j - 1 > i) return j - 1 - i;  // give back the last space so it can lead the next word
    return j - i;                  // single space before a word: the plain \s+ alternative
}

static size_t match_gpt2(const uint32_t *cps, const uint8_t *flags, size_t n, size_t i) {
    size_t m = match_contraction(cps, n, i, 0);
    if (m) return m;
    size_t j = i + (cps[i] == ' ' && i + 1 < n ? 1 : 0);
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: optional space then a run of one class.
    if (IS_L(flags[j])) { while (j < n && IS_L(flags[j])) j++; return j - i; }
    if (IS_N(flags[j])) { while (j < n && IS_N(flags[j])) j++; return j - i; }
    if (IS_OTHER(flags[j])) { while (j < n && IS_OTHER(flags[j])) j++; return j - i; }
    // Here cps[i] is whitespace (a lone space before whitespace lands here too).
    return match_whitespace_tail(flags, n, i);
}

static size_t match_llama3(const uint32_t *cps, const uint8_t *flags, size_t n, size_t i, size_t max_digits) {
    size_t m = match_contraction(cps, n, i, 1);
    if (m) return m;
    uint8_t f = flags[i];
    // [^\r\n\p{L}\p{N}]?\p{L}+
    size_t j = i;
    if (!IS_L(f) && !IS_N(f) && !IS_CRLF(cps[i]) && i + 1 < n && IS_L(flags[i + 1])) j = i + 1;
    if (IS_L(flags[j])) { while (j < n && IS_L(flags[j])) j++; return j - i; }
    // \p{N}{1,max}
    if (IS_N(f)) {
        j = i;
        while (j < n && j - i < max_digits && IS_N(flags[j])) j++;
        return j - i;
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    j = i + (cps[i] == ' ' && i + 1 < n && IS_OTHER(flags[i + 1]) ? 1 : 0);
    if (IS_OTHER(flags[j])) {
        while (j < n && IS_OTHER(flags[j])) j++;
        while (j < n && IS_CRLF(cps[j])) j++;
        return j - i;
    }
    // \s*[\r\n]+ : the whitespace run up to and including its last CR/LF.
    size_t end = i;
    while (end < n && IS_WS(flags[end])) end++;
    for (size_t k = end; k > i; k--)
        if (IS_CRLF(cps[k - 1])) return k - i;
    return match_whitespace_tail(flags, n, i);
}

size_t pretok_regex_split(PretokRegex kind, const uint32_t *cps, const uint8_t *flags, size_t n, size_t *ends) {
    size_t count = 0, i = 0;
    while (i < n) {
        size_t len = kind == PRETOK_REGEX_GPT2     ? match_gpt2(cps, flags, n, i)
                     : kind == PRETOK_REGEX_LLAMA3 ? match_llama3(cps, flags, n, i, 3)
                                                   : match_llama3(cps, flags, n, i, 1);
        if (!len) len = 1;  // unreachable: every code point belongs to some alternative
        i += len;
        ends[count++] = i;
    }
    return count;
}
