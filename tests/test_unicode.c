// Checks libcommon/base/unicode.c and the generated flag table (libcommon/base/unicode_data.c):
//  - unicode_flags() against tests/golden/unicode_classes.txt, which records how HF tokenizers'
//    own regex engine (Oniguruma) classifies every scalar value under \p{L}, \p{N} and \s
//    (tests/ref/make_unicode_golden.py);
//  - utf8_decode/utf8_encode round trips and rejection of ill-formed sequences;
//  - utf8_lossy against CPython's decoder (bytes.decode('utf-8', errors='replace')).
// Run from the repository root.
#include <stdint.h>

#include "check.h"
#include "unicode.h"

#define GOLDEN_PATH "tests/golden/unicode_classes.txt"

static char golden_class(uint8_t f) {
    // Only the three classes the golden records; a code point with two of them is an error.
    int l = !!(f & UF_LETTER), n = !!(f & UF_NUMBER), s = !!(f & UF_WHITESPACE);
    if (l + n + s > 1) return '?';
    return l ? 'L' : n ? 'N' : s ? 'S' : 'O';
}

static void test_flags_match_hf_golden(void) {
    FILE *f = fopen(GOLDEN_PATH, "r");
    CHECK(f != NULL, "cannot open %s (run from the repo root)", GOLDEN_PATH);
    if (!f) return;
    static char cls[0x110000];  // 0 = not covered by the golden
    memset(cls, 0, sizeof cls);
    char line[256];
    int lineno = 0, bad_lines = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') continue;
        unsigned lo, hi;
        char c;
        if (sscanf(line, "%x %x %c", &lo, &hi, &c) != 3 || lo > hi || hi > 0x10FFFF ||
            !strchr("LNSO", c)) {
            if (bad_lines++ < 3) CHECK(0, "bad golden line %d: %s", lineno, line);
            continue;
        }
        for (unsigned cp = lo; cp <= hi; cp++)
            if (cp < 0xD800 || cp > 0xDFFF) cls[cp] = c;
    }
    fclose(f);
    int uncovered = 0, mismatches = 0;
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        if (!cls[cp]) {
            if (uncovered++ < 3) CHECK(0, "U+%04X missing from the golden", (unsigned)cp);
            continue;
        }
        uint8_t fl = unicode_flags(cp);
        char ours = golden_class(fl);
        if (ours != cls[cp]) {
            if (mismatches < 8)
                printf("  mismatch U+%04X: unicode_flags=0x%02X (class %c), HF Oniguruma says %c\n",
                       (unsigned)cp, fl, ours, cls[cp]);
            mismatches++;
        }
    }
    CHECK(uncovered == 0, "%d scalar values missing from the golden", uncovered);
    CHECK(mismatches == 0, "%d code points disagree with HF's regex engine", mismatches);
    CHECK(unicode_flags(0x110000) == 0 && unicode_flags(0xFFFFFFFFu) == 0, "out-of-range flags");
}

static void test_utf8_roundtrip_all_scalars(void) {
    int failures = 0;
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        char buf[4];
        int n = utf8_encode(cp, buf);
        int want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        uint32_t back = 0xFFFFFFFFu;
        int m = utf8_decode((const unsigned char *)buf, (size_t)n, &back);
        size_t vp = utf8_valid_prefix((const unsigned char *)buf, (size_t)n);
        // a truncated copy must not decode
        uint32_t dummy;
        int trunc = n > 1 ? utf8_decode((const unsigned char *)buf, (size_t)n - 1, &dummy) : 0;
        if (n != want || m != n || back != cp || vp != (size_t)n || trunc != 0) {
            if (failures++ < 5)
                CHECK(0, "U+%04X: encode len %d (want %d), decode len %d -> U+%04X, prefix %zu, trunc %d",
                      (unsigned)cp, n, want, m, (unsigned)back, vp, trunc);
        }
    }
    CHECK(failures == 0, "%d scalar values failed the round trip", failures);
}

typedef struct {
    const char *name;
    const char *bytes;
    size_t len;
} Bad;

#define BAD(name, lit) {name, lit, sizeof(lit) - 1}

static const Bad ill_formed[] = {
    BAD("overlong 2-byte NUL", "\xC0\x80"),
    BAD("overlong C1", "\xC1\xBF"),
    BAD("overlong 3-byte", "\xE0\x80\x80"),
    BAD("overlong 3-byte max", "\xE0\x9F\xBF"),
    BAD("overlong 4-byte", "\xF0\x80\x80\x80"),
    BAD("overlong 4-byte max", "\xF0\x8F\xBF\xBF"),
    BAD("surrogate D800", "\xED\xA0\x80"),
    BAD("surrogate DFFF", "\xED\xBF\xBF"),
    BAD("above U+10FFFF", "\xF4\x90\x80\x80"),
    BAD("F5 lead", "\xF5\x80\x80\x80"),
    BAD("FF byte", "\xFF"),
    BAD("truncated 2-byte", "\xC2"),
    BAD("truncated 3-byte", "\xE2\x82"),
    BAD("truncated 4-byte", "\xF0\x9F\x98"),
    BAD("bad continuation", "\xE1\x80\x41"),
    BAD("lone continuation 80", "\x80"),
    BAD("lone continuation BF", "\xBF"),
};

static void test_utf8_rejects_ill_formed(void) {
    for (size_t i = 0; i < sizeof ill_formed / sizeof *ill_formed; i++) {
        const Bad *b = &ill_formed[i];
        uint32_t cp = 0;
        int n = utf8_decode((const unsigned char *)b->bytes, b->len, &cp);
        CHECK(n == 0, "%s: utf8_decode accepted it (len %d, U+%04X)", b->name, n, (unsigned)cp);
        CHECK(utf8_valid_prefix((const unsigned char *)b->bytes, b->len) == 0,
              "%s: valid prefix not 0", b->name);
    }
    // boundary values that are well-formed
    uint32_t cp;
    CHECK(utf8_decode((const unsigned char *)"\xF4\x8F\xBF\xBF", 4, &cp) == 4 && cp == 0x10FFFF, "U+10FFFF");
    CHECK(utf8_decode((const unsigned char *)"\xED\x9F\xBF", 3, &cp) == 3 && cp == 0xD7FF, "U+D7FF");
    CHECK(utf8_decode((const unsigned char *)"\xEE\x80\x80", 3, &cp) == 3 && cp == 0xE000, "U+E000");
    CHECK(utf8_decode((const unsigned char *)"\xC2\x80", 2, &cp) == 2 && cp == 0x80, "U+0080");
    CHECK(utf8_decode((const unsigned char *)"\x00", 1, &cp) == 1 && cp == 0, "U+0000");
    CHECK(utf8_valid_prefix((const unsigned char *)"ab\xE2\x82\xAC\x80", 6) == 5, "prefix before 80");
}

// Expected outputs were computed with CPython 3.11's decoder (the oracle):
//     bytes_in.decode('utf-8', errors='replace').encode('utf-8')
// It replaces each maximal ill-formed subpart with one U+FFFD (EF BF BD), as utf8_lossy must.
#define R "\xEF\xBF\xBD"
#define LOSSY(in, out) {in, sizeof(in) - 1, out}
static const struct {
    const char *in;
    size_t in_len;
    const char *out;
} lossy_cases[] = {
    LOSSY("\xC0\x80", R R),
    LOSSY("\xE0\x80\x80", R R R),
    LOSSY("\xF0\x80\x80\x80", R R R R),
    LOSSY("\xED\xA0\x80", R R R),
    LOSSY("\xF4\x90\x80\x80", R R R R),
    LOSSY("\xE2\x82", R),
    LOSSY("\xF0\x9F\x98", R),
    LOSSY("\x80", R),
    LOSSY("\xBF\xBF", R R),
    LOSSY("a\xC3", "a" R),
    LOSSY("\xF5\x80", R R),
    LOSSY("\xFF", R),
    LOSSY("\xC2", R),
    LOSSY("\xE1\x80" "A", R "A"),
    LOSSY("A\xE2\x82\xAC" "B\x80" "C\xF0\x9F\x98\x80\xF0\x9F\x98" "D", "A\xE2\x82\xAC" "B" R "C\xF0\x9F\x98\x80" R "D"),
};
#undef R

static void test_utf8_lossy_matches_cpython(void) {
    for (size_t i = 0; i < sizeof lossy_cases / sizeof *lossy_cases; i++) {
        char out[64];
        size_t n = utf8_lossy((const unsigned char *)lossy_cases[i].in, lossy_cases[i].in_len, out);
        size_t want = strlen(lossy_cases[i].out);
        CHECK(n == want && memcmp(out, lossy_cases[i].out, n) == 0,
              "case %zu: got %zu bytes, want %zu", i, n, want);
    }
    // valid input passes through unchanged
    const char *ok = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80";
    char out[64];
    size_t n = utf8_lossy((const unsigned char *)ok, strlen(ok), out);
    CHECK(n == strlen(ok) && memcmp(out, ok, n) == 0, "valid input changed");
}

int main(void) {
    RUN_TEST(test_flags_match_hf_golden);
    RUN_TEST(test_utf8_roundtrip_all_scalars);
    RUN_TEST(test_utf8_rejects_ill_formed);
    RUN_TEST(test_utf8_lossy_matches_cpython);
    return test_summary();
}
