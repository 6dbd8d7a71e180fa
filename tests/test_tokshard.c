// test_tokshard.c — CRC-32C vectors; token shard round trips (random documents, empty ones,
// documents spanning many tiny chunks, chunk reads in random order); atomic writes; and corrupt
// files, each of which must fail with an error that starts with the path and names the problem.
// Corrupt payloads come from a small independent writer below (build_shard), which doubles as a
// check that formats/tokens.md describes what the library reads.
#include <dirent.h>
#include <stdint.h>
#include <unistd.h>
#include <zstd.h>

#include "check.h"
#include "shard_check.h"
#include "crc32c.h"
#include "fnv.h"
#include "tokshard.h"



static uint32_t crc32c_bitwise(const uint8_t *p, size_t n) {  // the definition, one bit at a time
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

static void test_crc32c(void) {
    CHECK(crc32c("123456789", 9) == 0xE3069283u, "got 0x%08x", crc32c("123456789", 9));
    CHECK(crc32c("", 0) == 0, "empty: 0x%08x", crc32c("", 0));
    CHECK(crc32c_update(0x12345678u, "", 0) == 0x12345678u, "empty update changes the crc");
    // RFC 3720 (iSCSI) B.4 vectors.
    uint8_t buf[32];
    memset(buf, 0, 32);
    CHECK(crc32c(buf, 32) == 0x8A9136AAu, "32 zeros: 0x%08x", crc32c(buf, 32));
    memset(buf, 0xFF, 32);
    CHECK(crc32c(buf, 32) == 0x62A8AB43u, "32 0xFF: 0x%08x", crc32c(buf, 32));
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)i;
    CHECK(crc32c(buf, 32) == 0x46DD794Eu, "0..31: 0x%08x", crc32c(buf, 32));
    // Random buffers at every alignment and length: fast paths == bit-at-a-time definition,
    // and incremental updates over any split == one shot.
    uint64_t rs = 7;
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)rng_next(&rs);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof data; n += 1 + n / 8) {
            uint32_t want = crc32c_bitwise(data + off, n);
            CHECK(crc32c(data + off, n) == want, "off %zu len %zu", off, n);
            CHECK(crc32c_update_portable(0, data + off, n) == want, "portable off %zu len %zu", off, n);
            size_t cut = n ? rng_next(&rs) % (n + 1) : 0;
            uint32_t inc = crc32c_update(crc32c_update(0, data + off, cut), data + off + cut, n - cut);
            CHECK(inc == want, "split %zu+%zu", cut, n - cut);
            inc = crc32c_update_portable(crc32c_update_portable(0, data + off, cut), data + off + cut, n - cut);
            CHECK(inc == want, "portable split %zu+%zu", cut, n - cut);
        }
}

// ---- round trips -----------------------------------------------------------------------------

typedef struct {
    int n_docs;
    uint64_t *ids;      // doc ids
    size_t *len;        // tokens per doc
    uint32_t **tokens;  // (len[d],)
    uint64_t total;
} Corpus;

static Corpus make_corpus(int n_docs, uint32_t vocab, uint32_t long_len, uint64_t seed) {
    Corpus c = {n_docs, calloc(n_docs + 1, 8), calloc(n_docs + 1, sizeof(size_t)),
                calloc(n_docs + 1, sizeof(uint32_t *)), 0};
    uint64_t rs = seed;
    for (int d = 0; d < n_docs; d++) {
        uint64_t r = rng_next(&rs) % 100;
        size_t n = r < 20 ? 0
            : r < 80      ? 1 + rng_next(&rs) % 10
            : r < 95      ? rng_next(&rs) % 40
                          : long_len + rng_next(&rs) % long_len;
        c.ids[d] = d % 3 ? rng_next(&rs) : (uint64_t)d;  // arbitrary u64 ids
        c.len[d] = n;
        c.tokens[d] = malloc((n ? n : 1) * 4);
        for (size_t k = 0; k < n; k++) c.tokens[d][k] = (uint32_t)(rng_next(&rs) % vocab);
        c.total += n;
    }
    return c;
}

static void free_corpus(Corpus *c) {
    for (int d = 0; d < c->n_docs; d++) free(c->tokens[d]);
    free(c->ids);
    free(c->len);
    free(c->tokens);
}

static int write_corpus(const char *path, const Corpus *c, uint32_t vocab, uint32_t chunk_tokens, Error *e) {
    TokShardWriterOptions opt = {.vocab_size = vocab, .tokenizer_hash = fnv1a64("tok", 3), .chunk_tokens = chunk_tokens,
                                 .meta_json = "{\"source\": \"test\", \"n\": 1}"};
    TokShardWriter *w = tokshard_writer_open(path, &opt, e);
    if (!w) return -1;
    for (int d = 0; d < c->n_docs; d++)
        if (tokshard_write_doc(w, c->ids[d], c->tokens[d], c->len[d], e)) {
            tokshard_writer_abort(w);
            return -1;
        }
    return tokshard_writer_close(w, e);
}

// The slices the writer's rule produces (flush as soon as a chunk holds chunk_tokens tokens
// or chunk_tokens slices), computed independently of the library.
typedef struct {
    uint64_t chunk;
    TokChunkDoc d;
} ExpSlice;

static ExpSlice *expected_slices(const Corpus *c, uint32_t ct, size_t *n_out, uint64_t *n_chunks) {
    ExpSlice *v = malloc(sizeof(ExpSlice) * (c->total + c->n_docs + 1));
    size_t n = 0;
    uint64_t chunk = 0;
    uint32_t toks = 0, slices = 0;
    for (int d = 0; d < c->n_docs; d++) {
        size_t pos = 0;
        do {
            uint32_t take = (uint32_t)(c->len[d] - pos < ct - toks ? c->len[d] - pos : ct - toks);
            v[n++] = (ExpSlice){chunk, {c->ids[d], toks, take, (uint32_t)pos}};
            toks += take, slices++, pos += take;
            if (toks == ct || slices == ct) chunk++, toks = 0, slices = 0;
        } while (pos < c->len[d]);
    }
    *n_out = n;
    *n_chunks = chunk + (slices ? 1 : 0);
    return v;
}

static void check_shard(const TokShard *s, const Corpus *c, uint32_t vocab, uint32_t ct, uint64_t seed) {
    Error e = {{0}};
    CHECK(s->n_docs == (uint64_t)c->n_docs, "n_docs %llu", (unsigned long long)s->n_docs);
    CHECK(s->n_tokens == c->total, "n_tokens %llu vs %llu", (unsigned long long)s->n_tokens,
          (unsigned long long)c->total);
    CHECK(s->vocab_size == vocab && s->version == TOKSHARD_VERSION && s->chunk_tokens == ct, "header fields");
    CHECK(s->tokenizer_hash == fnv1a64("tok", 3), "tokenizer_hash");
    CHECK(strcmp(s->meta_json, "{\"source\": \"test\", \"n\": 1}") == 0, "meta %s", s->meta_json);

    // Documents, in order, joined across chunks.
    TokDocIter it;
    tokdoc_iter_init(&it, s);
    int d = 0, r;
    uint64_t id;
    const uint32_t *ids;
    size_t n;
    while ((r = tokdoc_iter_next(&it, &id, &ids, &n, &e)) == 1) {
        if (d >= c->n_docs) {
            CHECK(0, "more documents than written");
            break;
        }
        CHECK(id == c->ids[d] && n == c->len[d], "doc %d: id/len %llu/%zu vs %llu/%zu", d, (unsigned long long)id, n,
              (unsigned long long)c->ids[d], c->len[d]);
        if (n == c->len[d]) CHECK(n == 0 || memcmp(ids, c->tokens[d], n * 4) == 0, "doc %d tokens differ", d);
        d++;
    }
    CHECK(r == 0, "iterator: %s", e.msg);
    CHECK(d == c->n_docs, "read %d of %d docs", d, c->n_docs);
    tokdoc_iter_free(&it);

    // Chunks in random order, against the writer's rule.
    size_t n_exp;
    uint64_t n_chunks;
    ExpSlice *exp = expected_slices(c, ct, &n_exp, &n_chunks);
    CHECK(s->n_chunks == n_chunks, "n_chunks %llu vs %llu", (unsigned long long)s->n_chunks,
          (unsigned long long)n_chunks);
    uint32_t *all = malloc((c->total + 1) * 4);
    uint64_t off = 0;
    for (int k = 0; k < c->n_docs; k++) memcpy(all + off, c->tokens[k], c->len[k] * 4), off += c->len[k];
    uint64_t *order = malloc((n_chunks + 1) * 8);
    for (uint64_t i = 0; i < n_chunks; i++) order[i] = i;
    uint64_t rs = seed ^ 0x9E3779B97F4A7C15ull;
    for (uint64_t i = n_chunks; i > 1; i--) {
        uint64_t j = rng_next(&rs) % i, t = order[i - 1];
        order[i - 1] = order[j], order[j] = t;
    }
    TokChunk ch = {0};
    for (uint64_t q = 0; q < n_chunks && q < s->n_chunks; q++) {
        uint64_t i = order[q];
        if (tokshard_read_chunk(s, i, &ch, &e)) {
            CHECK(0, "chunk %llu: %s", (unsigned long long)i, e.msg);
            continue;
        }
        const TokShardIndexEntry *x = &s->index[i];
        CHECK(ch.n_tokens == x->n_tokens && ch.n_docs == x->n_docs, "chunk counts");
        CHECK(x->first_token + ch.n_tokens <= c->total && memcmp(ch.ids, all + x->first_token, ch.n_tokens * 4) == 0,
              "chunk %llu ids", (unsigned long long)i);
        uint32_t k = 0;
        for (size_t v = 0; v < n_exp; v++) {
            if (exp[v].chunk != i) continue;
            const TokChunkDoc *a = &ch.docs[k], *b = &exp[v].d;
            CHECK(k < ch.n_docs && a->doc_id == b->doc_id && a->start == b->start && a->n_tokens == b->n_tokens &&
                      a->pos_in_doc == b->pos_in_doc,
                  "chunk %llu slice %u", (unsigned long long)i, k);
            if (++k > ch.n_docs) break;
        }
        CHECK(k == ch.n_docs, "chunk %llu: %u slices, expected %u", (unsigned long long)i, ch.n_docs, k);
    }
    tokchunk_free(&ch);
    free(order);
    free(all);
    free(exp);
}

static void roundtrip(const char *name, int n_docs, uint32_t ct, uint32_t long_len, uint64_t seed) {
    const uint32_t vocab = 50257;
    Corpus c = make_corpus(n_docs, vocab, long_len, seed);
    char *path = tpath(name);
    Error e = {{0}};
    CHECK(write_corpus(path, &c, vocab, ct, &e) == 0, "write: %s", e.msg);
    TokShard s;
    if (tokshard_open(&s, path, &e) == 0) {
        check_shard(&s, &c, vocab, ct ? ct : TOKSHARD_DEFAULT_CHUNK_TOKENS, seed);
        tokshard_close(&s);
    } else {
        CHECK(0, "open: %s", e.msg);
    }
    // The in-memory reader sees the same shard.
    size_t len;
    char *bytes = test_read_file(path, &len);
    if (bytes && tokshard_open_mem(&s, bytes, len, path, &e) == 0) {
        check_shard(&s, &c, vocab, ct ? ct : TOKSHARD_DEFAULT_CHUNK_TOKENS, seed);
        tokshard_close(&s);
    } else {
        CHECK(0, "open_mem: %s", e.msg);
    }
    free(bytes);
    unlink(path);
    free(path);
    free_corpus(&c);
}

static void test_roundtrip_tiny_chunks(void) {
    roundtrip("rt7.tok", 400, 7, 20, 1);  // long docs span 3..6 chunks of 7
    roundtrip("rt1.tok", 60, 1, 3, 2);    // one token (or one slice) per chunk
    roundtrip("rt3.tok", 200, 3, 9, 3);
}

static void test_roundtrip_default_chunks(void) {
    roundtrip("rtd.tok", 3000, 0, 60000, 4);  // a few documents longer than 65536 tokens
}

static void test_roundtrip_edge_shards(void) {
    roundtrip("rt0.tok", 0, 7, 1, 5);  // no documents: no chunks
    // Only empty documents, more of them than slices fit in one chunk.
    const uint32_t vocab = 10;
    Corpus c = {20, calloc(20, 8), calloc(20, sizeof(size_t)), calloc(20, sizeof(uint32_t *)), 0};
    for (int d = 0; d < 20; d++) c.ids[d] = 1000 + d, c.tokens[d] = malloc(4);
    char *path = tpath("empty.tok");
    Error e = {{0}};
    CHECK(write_corpus(path, &c, vocab, 7, &e) == 0, "%s", e.msg);
    TokShard s;
    if (tokshard_open(&s, path, &e) == 0) {
        CHECK(s.n_chunks == 3, "20 empty docs in chunks of 7 slices: %llu chunks", (unsigned long long)s.n_chunks);
        check_shard(&s, &c, vocab, 7, 6);
        tokshard_close(&s);
    } else {
        CHECK(0, "%s", e.msg);
    }
    unlink(path);
    free(path);
    free_corpus(&c);
}

// ---- atomic writes -----------------------------------------------------------------------------


static void test_atomic_write(void) {
    char *path = tpath("atomic.tok");
    Error e = {{0}};
    TokShardWriterOptions opt = {.vocab_size = 100, .chunk_tokens = 4};
    uint32_t ids[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    TokShardWriter *w = tokshard_writer_open(path, &opt, &e);
    CHECK(w != NULL, "%s", e.msg);
    if (!w) return;
    for (int d = 0; d < 5; d++) CHECK(tokshard_write_doc(w, (uint64_t)d, ids, 10, &e) == 0, "%s", e.msg);
    CHECK(access(path, F_OK) != 0, "file visible before close");
    CHECK(tmp_files_left() == 1, "expected one temp file while writing");
    CHECK(tokshard_writer_close(w, &e) == 0, "%s", e.msg);
    CHECK(access(path, F_OK) == 0, "no file after close");
    CHECK(tmp_files_left() == 0, "temp file left after close");
    unlink(path);

    w = tokshard_writer_open(path, &opt, &e);
    CHECK(w != NULL, "%s", e.msg);
    if (!w) return;
    CHECK(tokshard_write_doc(w, 0, ids, 10, &e) == 0, "%s", e.msg);
    tokshard_writer_abort(w);
    CHECK(access(path, F_OK) != 0, "file exists after abort");
    CHECK(tmp_files_left() == 0, "temp file left after abort");

    // Writer-side validation: bad id, bad options; the error names the path.
    w = tokshard_writer_open(path, &opt, &e);
    uint32_t bad[3] = {1, 100, 2};
    CHECK(tokshard_write_doc(w, 42, bad, 3, &e) == -1, "id >= vocab accepted");
    CHECK(strncmp(e.msg, path, strlen(path)) == 0 && strstr(e.msg, "token id 100 >= vocab_size 100"), "msg: %s", e.msg);
    tokshard_writer_abort(w);
    TokShardWriterOptions bad_meta = {.vocab_size = 100, .meta_json = "[1, 2]"};
    CHECK(tokshard_writer_open(path, &bad_meta, &e) == NULL && strstr(e.msg, "not a JSON object"), "msg: %s", e.msg);
    TokShardWriterOptions no_vocab = {0};
    CHECK(tokshard_writer_open(path, &no_vocab, &e) == NULL && strstr(e.msg, "vocab_size"), "msg: %s", e.msg);
    CHECK(access(path, F_OK) != 0 && tmp_files_left() == 0, "failed writers left files");
    free(path);
}

// ---- corrupt files -----------------------------------------------------------------------------



// Recomputes the footer's header CRC and its own CRC, after a test edited the header.
static void fix_footer(uint8_t *b, size_t n) {
    uint8_t *f = b + n - 56;
    uint32_t meta_len = (uint32_t)b[28] | (uint32_t)b[29] << 8 | (uint32_t)b[30] << 16 | (uint32_t)b[31] << 24;
    put32(f + 36, crc32c(b, 32 + meta_len));
    put32(f + 44, crc32c(f, 44));
}

// Opens path, reads every chunk and every document; returns the first error (or "" if none).
static void read_all(const char *path, Error *e) {
    e->msg[0] = 0;
    TokShard s;
    if (tokshard_open(&s, path, e)) return;
    TokChunk c = {0};
    for (uint64_t i = 0; i < s.n_chunks; i++)
        if (tokshard_read_chunk(&s, i, &c, e)) goto done;
    TokDocIter it;
    tokdoc_iter_init(&it, &s);
    uint64_t id;
    const uint32_t *ids;
    size_t n;
    while (tokdoc_iter_next(&it, &id, &ids, &n, e) == 1) {}
    tokdoc_iter_free(&it);
done:
    tokchunk_free(&c);
    tokshard_close(&s);
}

// Writes bytes to path, reads it fully, and checks the error starts with the path and contains want.
static void expect_corrupt(const char *name, const uint8_t *b, size_t n, const char *want) {
    char *path = tpath(name);
    write_file(path, b, n);
    Error e;
    read_all(path, &e);
    CHECK(e.msg[0] && strncmp(e.msg, path, strlen(path)) == 0 && strstr(e.msg, want), "%s: want \"%s\", got \"%s\"",
          name, want, e.msg);
    unlink(path);
    free(path);
}

static void test_corrupt_shards(void) {
    // A valid shard of 40 docs x 10 tokens in chunks of 7, with id 70000 somewhere in chunk 2
    // (vocab 70001); the id test then lowers vocab_size in the header to 50257.
    Corpus c = make_corpus(40, 50257, 5, 9);
    c.total = 400;
    for (int d = 0; d < 40; d++) {
        c.len[d] = 10;
        c.tokens[d] = realloc(c.tokens[d], 40);
        for (int k = 0; k < 10; k++) c.tokens[d][k] = (uint32_t)(d * 10 + k);
    }
    c.tokens[1][8] = 70000;  // global token 18 = chunk 2 (tokens 14..20), token 4 of the chunk
    char *path = tpath("good.tok");
    Error e = {{0}};
    CHECK(write_corpus(path, &c, 70001, 7, &e) == 0, "%s", e.msg);
    free_corpus(&c);
    size_t n;
    uint8_t *good = (uint8_t *)test_read_file(path, &n);
    TokShard s;
    if (!good || tokshard_open(&s, path, &e)) {
        CHECK(0, "%s", e.msg);
        free(good);
        free(path);
        return;
    }
    read_all(path, &e);
    CHECK(e.msg[0] == 0, "good shard: %s", e.msg);
    uint64_t c3 = s.index[3].offset + s.index[3].comp_bytes / 2;
    uint64_t index_offset = get64(good + n - 56);
    tokshard_close(&s);
    uint8_t *b = malloc(n);

    memcpy(b, good, n), b[c3] ^= 0x40;
    expect_corrupt("flip.tok", b, n, "chunk 3: checksum mismatch (stored 0x");
    expect_corrupt("trunc.tok", good, n - 10, "truncated: footer missing");
    expect_corrupt("trunc_hdr.tok", good, 20, "truncated: header missing");
    expect_corrupt("empty_file.tok", good, 0, "truncated: header missing");
    memcpy(b, good, n), b[0] = 'X';
    expect_corrupt("magic.tok", b, n, "bad magic");
    memcpy(b, good, n), put32(b + 8, 2);
    expect_corrupt("version.tok", b, n, "unsupported version 2");
    memcpy(b, good, n), b[index_offset + 5] ^= 1;
    expect_corrupt("index_crc.tok", b, n, "index checksum mismatch");
    memcpy(b, good, n), b[n - 56 + 17] ^= 1;
    expect_corrupt("footer_crc.tok", b, n, "footer checksum mismatch");
    memcpy(b, good, n), b[34] ^= 1;
    expect_corrupt("header_crc.tok", b, n, "header checksum mismatch");
    memcpy(b, good, n), put32(b + 12, 50257), fix_footer(b, n);
    expect_corrupt("vocab.tok", b, n, "token id 70000 >= vocab_size 50257 in chunk 2");
    // Footer totals that do not match the index (CRCs made right so the check behind them runs).
    memcpy(b, good, n), put64(b + n - 56 + 8, 1ull << 61), fix_footer(b, n);
    expect_corrupt("n_chunks.tok", b, n, "does not end at the footer");
    memcpy(b, good, n), put64(b + n - 56 + 16, 401), fix_footer(b, n);
    expect_corrupt("n_tokens.tok", b, n, "footer says 401 tokens, index chunks hold 400");
    memcpy(b, good, n), put64(b + n - 56 + 24, 41), fix_footer(b, n);
    expect_corrupt("n_docs.tok", b, n, "footer says 41 documents, chunks hold 40");

    free(b);
    free(good);
    unlink(path);
    free(path);
}

// An independent writer for hand-made payloads: each chunk is a list of u32 words (u32
// n_tokens, u32 n_docs, 5 words per slice with the u64 doc id as two words, then the ids).
// index_nt < 0 takes the index's n_tokens from the payload; otherwise it overrides it.
typedef struct {
    const uint32_t *w;
    size_t n_words;
    int64_t index_nt;
} RawChunk;

static void build_shard(const char *path, uint32_t vocab, uint32_t ct, const RawChunk *ch, int n_chunks,
                        uint64_t n_docs) {
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = calloc(cap, 1), *index = calloc(n_chunks + 1, 48);
    memcpy(b, "CLTKTOKS", 8);
    put32(b + 8, 1), put32(b + 12, vocab), put64(b + 16, 0), put32(b + 24, ct), put32(b + 28, 2);
    memcpy(b + 32, "{}", 2);
    n = 34;
    uint64_t tokens = 0;
    for (int i = 0; i < n_chunks; i++) {
        uint8_t raw[4096];
        for (size_t k = 0; k < ch[i].n_words; k++) put32(raw + 4 * k, ch[i].w[k]);
        uint32_t nt = ch[i].index_nt >= 0 ? (uint32_t)ch[i].index_nt : ch[i].w[0], nd = ch[i].w[1];
        size_t cn = ZSTD_compress(b + n, cap - n - 4096, raw, ch[i].n_words * 4, 3);
        uint8_t *x = index + 48 * i;
        put64(x, n), put64(x + 8, cn), put64(x + 16, 8 + 20ull * nd + 4ull * nt), put64(x + 24, tokens);
        put32(x + 32, nt), put32(x + 36, nd), put32(x + 40, crc32c(b + n, cn)), put32(x + 44, 0);
        n += cn;
        tokens += nt;
    }
    uint64_t index_offset = n;
    memcpy(b + n, index, 48 * n_chunks);
    n += 48 * n_chunks;
    uint8_t *f = b + n;
    put64(f, index_offset), put64(f + 8, n_chunks), put64(f + 16, tokens), put64(f + 24, n_docs);
    put32(f + 32, crc32c(index, 48 * n_chunks)), put32(f + 36, crc32c(b, 34)), put32(f + 40, 0);
    put32(f + 44, crc32c(f, 44));
    memcpy(f + 48, "CLTKTEND", 8);
    n += 56;
    write_file(path, b, n);
    free(b);
    free(index);
}

static void expect_built(const char *name, const RawChunk *ch, int n_chunks, uint64_t n_docs, const char *want) {
    char *path = tpath(name);
    build_shard(path, 100, 8, ch, n_chunks, n_docs);
    Error e;
    read_all(path, &e);
    if (want)
        CHECK(e.msg[0] && strncmp(e.msg, path, strlen(path)) == 0 && strstr(e.msg, want),
              "%s: want \"%s\", got \"%s\"", name, want, e.msg);
    else
        CHECK(e.msg[0] == 0, "%s: %s", name, e.msg);
    unlink(path);
    free(path);
}

static void test_corrupt_payloads(void) {
    // Valid: doc 5 (3 tokens), empty doc 6, doc 7 (1 token) continued by chunk 1 with 2 more.
    const uint32_t a[] = {4, 3, 5, 0, 0, 3, 0, 6, 0, 3, 0, 0, 7, 0, 3, 1, 0, 10, 11, 12, 13};
    const uint32_t a2[] = {2, 1, 7, 0, 0, 2, 1, 14, 15};
    expect_built("ok.tok", (RawChunk[]){{a, 21, -1}, {a2, 9, -1}}, 2, 3, NULL);
    // The builder agrees with the library on what a good file is; now break one thing each.
    const uint32_t gap[] = {4, 2, 5, 0, 0, 2, 0, 6, 0, 3, 1, 0, 10, 11, 12, 13};
    expect_built("gap.tok", (RawChunk[]){{gap, 16, -1}}, 1, 2, "chunk 0: slice 1 starts at token 3, expected 2");
    const uint32_t shortc[] = {4, 1, 5, 0, 0, 3, 0, 10, 11, 12, 13};
    expect_built("short.tok", (RawChunk[]){{shortc, 11, -1}}, 1, 1, "slices cover 3 of 4 tokens");
    const uint32_t past[] = {4, 1, 5, 0, 0, 9, 0, 10, 11, 12, 13};
    expect_built("past.tok", (RawChunk[]){{past, 11, -1}}, 1, 1, "runs past the chunk's 4 tokens");
    const uint32_t cont0[] = {1, 1, 5, 0, 0, 1, 4, 10};
    expect_built("cont0.tok", (RawChunk[]){{cont0, 8, -1}}, 1, 1, "chunk 0: first slice continues document 5");
    const uint32_t mid[] = {2, 2, 5, 0, 0, 1, 0, 6, 0, 1, 1, 1, 10, 11};
    expect_built("mid.tok", (RawChunk[]){{mid, 14, -1}}, 1, 2, "only a chunk's first slice may");
    const uint32_t wrong_doc[] = {2, 1, 8, 0, 0, 2, 1, 14, 15};  // continues doc 8, but chunk 0 ended doc 7
    expect_built("wrongdoc.tok", (RawChunk[]){{a, 21, -1}, {wrong_doc, 9, -1}}, 2, 3,
                 "continues document 8 at token 1");
    const uint32_t wrong_pos[] = {2, 1, 7, 0, 0, 2, 5, 14, 15};
    expect_built("wrongpos.tok", (RawChunk[]){{a, 21, -1}, {wrong_pos, 9, -1}}, 2, 3, "ended document 7 at token 1");
    // Index says 3 tokens (raw 40 bytes), the frame holds 4 (raw 44 bytes).
    expect_built("rawsize.tok", (RawChunk[]){{a, 21, 3}}, 1, 3, "decompressed size mismatch");
    const uint32_t toolong[] = {9, 1, 5, 0, 0, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9};  // 9 tokens > chunk_tokens 8
    expect_built("toolong.tok", (RawChunk[]){{toolong, 16, -1}}, 1, 1, "exceed chunk_tokens 8");
    expect_built("docs_impossible.tok", (RawChunk[]){{a, 21, -1}}, 1, 9, "footer says 9 documents, impossible");
}

int main(void) {
    tmp_open(&shard_tmp, "tokshard");
    RUN_TEST(test_crc32c);
    RUN_TEST(test_roundtrip_tiny_chunks);
    RUN_TEST(test_roundtrip_default_chunks);
    RUN_TEST(test_roundtrip_edge_shards);
    RUN_TEST(test_atomic_write);
    RUN_TEST(test_corrupt_shards);
    RUN_TEST(test_corrupt_payloads);
    tmp_close(&shard_tmp);
    return test_summary();
}
