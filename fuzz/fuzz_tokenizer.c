// libFuzzer target for the tokenizer: the first byte picks the mode.
//   even: the rest is a tokenizer.json; if it loads, encode and decode a few fixed strings.
//   odd:  the rest is text, encoded (all option combinations) and decoded with a small built-in
//         tokenizer that uses every supported feature (added tokens with lstrip/rstrip, Replace
//         and Prepend normalizers, Digits, Metaspace, ByteLevel + Llama 3 regex, byte_fallback,
//         unk with fuse_unk, templates).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "unicode.h"

static const char BUILTIN[] =
    "{\"added_tokens\": ["
    "{\"id\": 0, \"content\": \"<unk>\", \"special\": true, \"normalized\": false},"
    "{\"id\": 1, \"content\": \"<s>\", \"special\": true, \"normalized\": false, \"lstrip\": true},"
    "{\"id\": 2, \"content\": \"</s>\", \"special\": true, \"normalized\": false, \"rstrip\": true},"
    "{\"id\": 9, \"content\": \"ab\", \"special\": false, \"normalized\": true}],"
    "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"x\"},"
    "  {\"type\": \"Replace\", \"pattern\": {\"String\": \"  \"}, \"content\": \" \"}]},"
    "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": false},"
    "  {\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"MergedWithNext\"},"
    "  {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}, \"behavior\": \"Contiguous\"},"
    "  {\"type\": \"Metaspace\", \"replacement\": \"_\", \"prepend_scheme\": \"first\", \"split\": true}]},"
    "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}, {\"Sequence\": {\"id\": \"A\"}}, {\"SpecialToken\": {\"id\": \"</s>\"}}],"
    "  \"special_tokens\": {\"<s>\": {\"ids\": [1]}, \"</s>\": {\"ids\": [2]}}},"
    "\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"_\"}, \"content\": \" \"},"
    "  {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 1}, {\"type\": \"Metaspace\", \"replacement\": \"_\"}]},"
    "\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, \"byte_fallback\": true,"
    "  \"continuing_subword_prefix\": \"##\", \"end_of_word_suffix\": \"</w>\","
    "  \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, \"a\": 3, \"b\": 4, \"##b\": 5, \"a##b\": 6, \"<0x41>\": 7, \"<0xC3>\": 8, \"ab\": 9, \"_\": 10, \"b</w>\": 11, \"_a\": 12},"
    "  \"merges\": [\"a ##b\", [\"_\", \"a\"]]}}";

static void exercise(const Tokenizer *t, const char *text, size_t len) {
    TokScratch *s = tokscratch_new();
    for (int mode = 0; mode < 4; mode++) {
        TokEncodeOptions opt = {.match_special = mode & 1, .add_special = (mode >> 1) & 1};
        TokIds ids = {0};
        Error e;
        if (tokenizer_encode(t, s, text, len, &opt, &ids, &e) == 0) {
            for (size_t i = 0; i < ids.n; i++)
                if (ids.ids[i] >= tokenizer_vocab_size(t)) abort();
            char *out;
            size_t out_len;
            for (int skip = 0; skip < 2; skip++)
                if (tokenizer_decode(t, ids.ids, ids.n, skip, &out, &out_len, &e) == 0) {
                    // decoded text is always valid UTF-8
                    if (utf8_valid_prefix((const unsigned char *)out, out_len) != out_len) abort();
                    free(out);
                }
        }
        tokids_free(&ids);
    }
    tokscratch_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    Error e;
    if (data[0] % 2 == 0) {
        Tokenizer *t = tokenizer_load_json((const char *)data + 1, size - 1, "fuzz.json", &e);
        if (!t) {
            if (strncmp(e.msg, "fuzz.json", 9)) abort();  // every error names the file
            return 0;
        }
        static const char *texts[] = {"", " ", "Hello world", "a  b\n\n c", "'s 'LL 123456 \xC3\xA9\xE2\x96\x81"};
        for (int i = 0; i < 5; i++) exercise(t, texts[i], strlen(texts[i]));
        tokenizer_free(t);
    } else {
        Tokenizer *t = tokenizer_load_json(BUILTIN, sizeof BUILTIN - 1, "builtin", &e);
        if (!t) abort();
        exercise(t, (const char *)data + 1, size - 1);
        tokenizer_free(t);
    }
    return 0;
}
