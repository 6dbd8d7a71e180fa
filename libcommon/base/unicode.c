#include "unicode.h"

// Valid range of the second byte for each lead byte (Unicode Table 3-7, well-formed UTF-8);
// later continuation bytes are always 0x80..0xBF.
static int utf8_lead_info(unsigned char b, int *need, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (b < 0x80) { *need = 0; return 1; }
    if (b >= 0xC2 && b <= 0xDF) { *need = 1; return 1; }
    if (b == 0xE0) { *need = 2; *lo = 0xA0; return 1; }
    if (b == 0xED) { *need = 2; *hi = 0x9F; return 1; }
    if (b >= 0xE1 && b <= 0xEF) { *need = 2; return 1; }
    if (b == 0xF0) { *need = 3; *lo = 0x90; return 1; }
    if (b == 0xF4) { *need = 3; *hi = 0x8F; return 1; }
    if (b >= 0xF1 && b <= 0xF3) { *need = 3; return 1; }
    return 0;
}

// Returns the length of the maximal well-formed prefix of a sequence starting at s (0 if the
// lead byte is invalid); *complete tells whether it is a whole code point.
static int utf8_subpart(const unsigned char *s, size_t len, int *complete) {
    int need;
    unsigned char lo, hi;
    *complete = 0;
    if (!len || !utf8_lead_info(s[0], &need, &lo, &hi)) return 0;
    int k = 1;
    for (; k <= need; k++) {
        if ((size_t)k >= len) return k;
        unsigned char c = s[k];
        if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return k;
    }
    *complete = 1;
    return k;
}

int utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
    int complete;
    int n = utf8_subpart(s, len, &complete);
    if (!complete) return 0;
    switch (n) {
        case 1: *cp = s[0]; break;
        case 2: *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F); break;
        case 3: *cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F); break;
        default:
            *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                  ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
    return n;
}

int utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = 0xC0 | (cp >> 6); o[1] = 0x80 | (cp & 0x3F); return 2; }
    if (cp < 0x10000) {
        o[0] = 0xE0 | (cp >> 12); o[1] = 0x80 | ((cp >> 6) & 0x3F); o[2] = 0x80 | (cp & 0x3F);
        return 3;
    }
    o[0] = 0xF0 | (cp >> 18); o[1] = 0x80 | ((cp >> 12) & 0x3F);
    o[2] = 0x80 | ((cp >> 6) & 0x3F); o[3] = 0x80 | (cp & 0x3F);
    return 4;
}

size_t utf8_valid_prefix(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) { i++; continue; }
        int complete;
        int n = utf8_subpart(s + i, len - i, &complete);
        if (!complete) return i;
        i += (size_t)n;
    }
    return i;
}

size_t utf8_lossy(const unsigned char *s, size_t len, char *out) {
    size_t i = 0, o = 0;
    while (i < len) {
        int complete;
        int n = utf8_subpart(s + i, len - i, &complete);
        if (complete) {
            for (int k = 0; k < n; k++) out[o++] = (char)s[i + k];
            i += (size_t)n;
        } else {
            o += (size_t)utf8_encode(0xFFFD, out + o);
            i += n ? (size_t)n : 1;
        }
    }
    return o;
}
