// pretok.h — the pre-tokenizer regexes of GPT-2, Llama 3 and Qwen 2 as hand-written scanners
// over code points (no regex engine), matching Oniguruma's leftmost-first alternation exactly.
// Every code point is covered by some alternative, so the matches tile the input.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef enum {
    PRETOK_REGEX_GPT2,  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    PRETOK_REGEX_LLAMA3,
    PRETOK_REGEX_QWEN2,  // as LLAMA3 with \p{N} (one digit per match)
} PretokRegex;

// Recognises a Split pattern string; returns 0 and sets *kind, or -1 if unknown.
int pretok_regex_lookup(const char *pattern, PretokRegex *kind);
// cps: (n,) code points; flags: (n,) unicode_flags() of each. Writes the end (exclusive, in
// code points) of each successive match into ends (room for n) and returns the match count.
size_t pretok_regex_split(PretokRegex kind, const uint32_t *cps, const uint8_t *flags, size_t n, size_t *ends);
