// unicode.h — UTF-8 decoding/encoding and the code-point category flags the tokenizer's
// pre-tokenizer regexes need (\p{L}, \p{N}, \s as the Oniguruma engine of HF tokenizers defines
// them). The flag table is generated: scripts/gen_unicode.py.
#pragma once
#include <stddef.h>
#include <stdint.h>

enum {
    UF_LETTER = 1,      // \p{L}
    UF_NUMBER = 2,      // \p{N}
    UF_WHITESPACE = 4,  // \s
    UF_MARK = 8,        // \p{M}
    UF_PUNCT = 16,      // \p{P}
    UF_SYMBOL = 32,     // \p{S}
};

uint8_t unicode_flags(uint32_t cp);

// Decodes one UTF-8 sequence at s[0..len). Returns its length (1..4) and sets *cp, or returns 0
// if the bytes are not well-formed UTF-8 (overlong, surrogate, > U+10FFFF, truncated).
int utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);
// Encodes cp (<= U+10FFFF) into out (4 bytes room); returns the length.
int utf8_encode(uint32_t cp, char *out);
// Length of the well-formed prefix of s (== len when s is valid UTF-8).
size_t utf8_valid_prefix(const unsigned char *s, size_t len);
// Lossy conversion like Rust's String::from_utf8_lossy and Python's errors='replace': each
// maximal ill-formed subpart becomes U+FFFD. out needs room for 3*len bytes; returns out length.
size_t utf8_lossy(const unsigned char *s, size_t len, char *out);
