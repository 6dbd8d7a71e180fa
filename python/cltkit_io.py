"""cltkit_io — read cltkit's binary files from Python (standard library + numpy, no build step).

    import sys; sys.path.insert(0, "python")      # or copy this one file anywhere
    import cltkit_io as ck

    tok = ck.TokShard("corpus.tok")               # formats/tokens.md
    for doc_id, ids in tok.docs(): ...            # ids: uint32 array per document
    ids = tok.tokens()                            # every token, in order

    acts = ck.ActShard("acts.acts")               # formats/acts.md, every encoding and compression
    x = acts.layer(3, "in")                       # (n_tokens, d) float32: CLT input at model layer 3
    y = acts.layer(3, "out")                      # its target (mlp_out)
    for c in acts.chunks(): c["in"], c["out"], c["token_ids"], ...   # (L, n, d) per chunk

Every CRC-32C the format defines is checked (header, footer, index, statistics and each chunk),
and the structural rules the C reader enforces on lengths and offsets, so a corrupt or truncated
file raises CltkitFormatError naming the file instead of returning garbage. zstd frames are
decompressed with the first of: the `zstandard` package, Python 3.14's `compression.zstd`, or
the `zstd` command (Debian package zstd). The CRC uses the `crc32c` package when installed, else a numpy
fold (tens of MB/s; verify=False skips the chunk CRCs).

Command line (what `tok dump` and `quant-acts npy` do in C):
    python3 python/cltkit_io.py tokens corpus.tok            # JSONL {"doc_id": .., "ids": [..]}
    python3 python/cltkit_io.py npy acts.acts LAYER in|out OUT.npy
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np

__all__ = ["CltkitFormatError", "TokShard", "ActShard", "crc32c"]


class CltkitFormatError(ValueError):
    """A file that is not a complete, valid cltkit file; the message starts with its path."""


# ---- CRC-32C (Castagnoli, reflected 0x82F63B78) ------------------------------------------------
def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def _crc32c_python(data):
    c, t = 0xFFFFFFFF, _CRC_TABLE
    for byte in bytes(data):
        c = t[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _crc32c_numpy(data):
    """CRC-32C with numpy, fast without a C extension. The CRC register is linear over GF(2):
    after a message M from state s it is R(s, M) = R(0, M) ^ Z(s, |M|), Z(s, k) = R(s, k zero
    bytes). So cut the data into nb blocks of m bytes, run all blocks from state 0 at once (m
    vectorised steps), then fold them in order with the linear map Z(., m) (4 tables of 256 entries:
    nb scalar steps), and finish the tail byte by byte: about 2·sqrt(n) Python-level steps."""
    a = np.frombuffer(bytes(data), np.uint8)
    n = len(a)
    if n < 1 << 14:
        return _crc32c_python(a)
    m = int(np.sqrt(n))
    nb = n // m
    table = np.array(_CRC_TABLE, np.uint32)
    cols = np.ascontiguousarray(a[:nb * m].reshape(nb, m).T)  # (m, nb): byte j of every block
    reg = np.zeros(nb, np.uint32)
    for j in range(m):
        reg = table[(reg ^ cols[j]) & 0xFF] ^ (reg >> 8)
    z = np.concatenate([np.arange(256, dtype=np.uint32) << (8 * k) for k in range(4)])
    for _ in range(m):
        z = table[z & 0xFF] ^ (z >> 8)
    z0, z1, z2, z3 = (z[256 * k:256 * (k + 1)].tolist() for k in range(4))
    c = 0xFFFFFFFF
    for r in reg.tolist():
        c = z0[c & 255] ^ z1[(c >> 8) & 255] ^ z2[(c >> 16) & 255] ^ z3[c >> 24] ^ r
    t = _CRC_TABLE
    for byte in a[nb * m:].tobytes():
        c = t[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


try:  # the C implementation, when the package is installed
    import crc32c as _crc32c_mod  # type: ignore

    def crc32c(data):
        return _crc32c_mod.crc32c(bytes(data)) & 0xFFFFFFFF
except ImportError:
    crc32c = _crc32c_numpy


# ---- zstd --------------------------------------------------------------------------------------
def _zstd_decompress(frame, raw_bytes, where):
    try:
        import zstandard  # type: ignore
        out = zstandard.ZstdDecompressor().decompress(frame, max_output_size=raw_bytes)
    except ImportError:
        try:
            from compression import zstd  # type: ignore  # Python >= 3.14
            out = zstd.decompress(frame)
        except ImportError:
            try:
                run = subprocess.run(["zstd", "-d", "-c", "-q"], input=frame, capture_output=True, check=False)
            except FileNotFoundError:
                raise CltkitFormatError(f"{where}: zstd frame, but neither the zstandard package nor the zstd "
                                        "command is available (apt-get install zstd)") from None
            if run.returncode != 0:
                raise CltkitFormatError(f"{where}: corrupt zstd frame ({run.stderr.decode(errors='replace').strip()})")
            out = run.stdout
    except Exception as ex:  # zstandard.ZstdError and friends
        raise CltkitFormatError(f"{where}: corrupt zstd frame ({ex})") from None
    if len(out) != raw_bytes:
        raise CltkitFormatError(f"{where}: decompressed {len(out)} bytes, index says {raw_bytes}")
    return out


# ---- shared container pieces ------------------------------------------------------------------
class _File:
    """The file's bytes (memory-mapped) and the checks common to both shard kinds."""

    def __init__(self, path, magic, end_magic, min_size):
        self.path = str(path)
        try:
            self.b = np.memmap(self.path, np.uint8, mode="r") if os.path.getsize(self.path) else np.zeros(0, np.uint8)
        except OSError as ex:
            raise CltkitFormatError(f"{self.path}: cannot open ({ex.strerror})") from None
        n = len(self.b)
        if n < 8 or bytes(self.b[:8]) != magic:
            self.fail("bad magic")
        if n < min_size:
            self.fail("truncated: header missing")
        if bytes(self.b[-8:]) != end_magic:
            self.fail("truncated: footer missing")
        foot = bytes(self.b[n - 56:n])
        if crc32c(foot[:44]) != struct.unpack_from("<I", foot, 44)[0]:
            self.fail("footer checksum mismatch")
        self.footer = foot

    def fail(self, msg):
        raise CltkitFormatError(f"{self.path}: {msg}")

    def bytes_at(self, off, n, what):
        if off < 0 or n < 0 or off + n > len(self.b):
            self.fail(f"{what} outside the file")
        return bytes(self.b[off:off + n])

    def check_crc(self, data, stored, what):
        got = crc32c(data)
        if got != stored:
            self.fail(f"{what}: checksum mismatch (stored 0x{stored:08x}, computed 0x{got:08x})")

    def index(self, dtype, index_offset, n_chunks, area_end, what_end):
        """The index entries, checked: placement, CRC, contiguity, running first_token."""
        if index_offset + 48 * n_chunks + 56 != len(self.b):
            self.fail("index does not end at the footer")
        raw = self.bytes_at(index_offset, 48 * n_chunks, "index")
        self.check_crc(raw, struct.unpack_from("<I", self.footer, 32)[0], "index")
        idx = np.frombuffer(raw, dtype, n_chunks)
        pos, first = self.header_end, 0
        for i, e in enumerate(idx):
            if int(e["offset"]) != pos or int(e["comp_bytes"]) < 1 or int(e["first_token"]) != first:
                self.fail(f"index entry {i}: chunks not contiguous")
            pos += int(e["comp_bytes"])
            first += int(e["n_tokens"])
        if pos != area_end:
            self.fail(f"chunks do not end at the {what_end}")
        return idx, first

    def chunk_payload(self, e, i, verify, compressed):
        stored = self.bytes_at(int(e["offset"]), int(e["comp_bytes"]), f"chunk {i}")
        if verify:
            self.check_crc(stored, int(e["crc"]), f"chunk {i}")
        if not compressed:
            return stored
        return _zstd_decompress(stored, int(e["raw_bytes"]), f"{self.path}: chunk {i}")


# ---- token shards (formats/tokens.md) ---------------------------------------------------------
_TOK_INDEX = np.dtype([("offset", "<u8"), ("comp_bytes", "<u8"), ("raw_bytes", "<u8"), ("first_token", "<u8"),
                       ("n_tokens", "<u4"), ("n_docs", "<u4"), ("crc", "<u4"), ("reserved", "<u4")])
_SLICE = np.dtype([("doc_id", "<u8"), ("start", "<u4"), ("n_tokens", "<u4"), ("pos_in_doc", "<u4")])


class TokShard:
    """A token shard: .vocab_size, .tokenizer_hash, .meta, .n_tokens, .n_docs; docs(), tokens()."""

    def __init__(self, path, verify=True):
        f = self.f = _File(path, b"CLTKTOKS", b"CLTKTEND", 88)
        self.verify = verify
        version, self.vocab_size, self.tokenizer_hash, self.chunk_tokens, meta_len = struct.unpack_from(
            "<IIQII", f.bytes_at(8, 24, "header"))
        if version != 1:
            f.fail(f"unsupported version {version}")
        f.header_end = 32 + meta_len
        if meta_len > 1 << 24 or f.header_end > len(f.b) - 56:
            f.fail("header runs into the footer")
        index_offset, n_chunks, self.n_tokens, self.n_docs, _, header_crc = struct.unpack_from("<QQQQII", f.footer)
        head = f.bytes_at(0, f.header_end, "header")
        f.check_crc(head, header_crc, "header")
        self.meta = json.loads(head[32:].decode("utf-8"))
        if n_chunks > len(f.b) // 48:
            f.fail("index larger than the file")
        self.index, total = f.index(_TOK_INDEX, index_offset, n_chunks, index_offset, "index")
        if total != self.n_tokens:
            f.fail(f"footer says {self.n_tokens} tokens, chunks hold {total}")

    def _chunk(self, i):
        e = self.index[i]
        raw = self.f.chunk_payload(e, i, self.verify, True)
        n_tok, n_docs = struct.unpack_from("<II", raw)
        if n_tok != e["n_tokens"] or n_docs != e["n_docs"] or len(raw) != 8 + 20 * n_docs + 4 * n_tok:
            self.f.fail(f"chunk {i}: payload counts differ from the index")
        slices = np.frombuffer(raw, _SLICE, n_docs, 8)
        ids = np.frombuffer(raw, "<u4", n_tok, 8 + 20 * n_docs)
        if n_tok and int(ids.max()) >= self.vocab_size:
            self.f.fail(f"token id {int(ids.max())} >= vocab_size {self.vocab_size} in chunk {i}")
        return slices, ids

    def docs(self):
        """Yields (doc_id, uint32 array) for every document, in order (continuations joined)."""
        cur_id, parts = None, []
        for i in range(len(self.index)):
            slices, ids = self._chunk(i)
            for s in slices:
                piece = ids[s["start"]:s["start"] + s["n_tokens"]]
                if s["pos_in_doc"] > 0:  # continues the previous chunk's last document
                    if cur_id != int(s["doc_id"]):
                        self.f.fail(f"chunk {i}: continuation of a document that did not end the previous chunk")
                    parts.append(piece)
                    continue
                if cur_id is not None:
                    yield cur_id, np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
                cur_id, parts = int(s["doc_id"]), [piece]
        if cur_id is not None:
            yield cur_id, np.concatenate(parts) if len(parts) > 1 else parts[0].copy()

    def tokens(self):
        """Every token id of the shard, in order (uint32)."""
        out = [self._chunk(i)[1] for i in range(len(self.index))]
        return np.concatenate(out) if out else np.zeros(0, np.uint32)


# ---- activation shards (formats/acts.md) ------------------------------------------------------
_ACT_INDEX = np.dtype([("offset", "<u8"), ("comp_bytes", "<u8"), ("raw_bytes", "<u8"), ("first_token", "<u8"),
                       ("n_tokens", "<u4"), ("compression", "<u4"), ("crc", "<u4"), ("reserved", "<u4")])
ENCODINGS = ["f32", "bf16", "f16", "int8", "fp8", "int4"]


def _bf16(words):
    return (np.asarray(words, "<u2").astype("<u4") << 16).view("<f4")


def _e4m3_values():  # the value of every E4M3FN code; 0x7F and 0xFF are NaN
    c = np.arange(256)
    e, f = (c >> 3) & 15, c & 7
    v = np.where(e == 0, f * 2.0 ** -9, (1 + f / 8) * 2.0 ** (e - 7.0))
    v = np.where(c & 0x80, -v, v).astype("<f4")
    v[[0x7F, 0xFF]] = np.nan
    return v


def _unplane(block, w):  # one block's byte planes -> little-endian words
    return np.ascontiguousarray(block.reshape(w, -1).T).reshape(-1)


class ActShard:
    """An activation shard: .encoding, .d_model, .layers, .in_hook, .out_hook, .model_id, .meta,
    .n_tokens, .stats; chunks(), layer(model_layer, "in"|"out"), token_ids()."""

    def __init__(self, path, verify=True):
        f = self.f = _File(path, b"CLTKACTS", b"CLTKAEND", 136)
        self.verify = verify
        version, enc, param, d, L, self.chunk_tokens, self.model_hash = struct.unpack_from(
            "<6IQ", f.bytes_at(8, 32, "header"))
        if version != 1:
            f.fail(f"unsupported version {version}")
        if enc >= len(ENCODINGS):
            f.fail(f"unsupported encoding {enc}")
        if not 1 <= L <= 4096 or not 1 <= d <= 1 << 20:
            f.fail(f"bad shape: {L} layers of d_model {d}")
        mid_len, meta_len = struct.unpack_from("<II", f.bytes_at(72, 8, "header"))
        h = 80 + 4 * L
        f.header_end = h + mid_len + meta_len
        if mid_len > 1 << 16 or meta_len > 1 << 24 or f.header_end > len(f.b) - 56:
            f.fail("header runs into the footer")
        (index_offset, n_chunks, self.n_tokens, stats_offset, _, header_crc, stats_crc) = struct.unpack_from(
            "<QQQQIII", f.footer)
        head = f.bytes_at(0, f.header_end, "header")
        f.check_crc(head, header_crc, "header")
        self.enc, self.enc_param, self.d_model, self.n_layers = enc, param, d, L
        self.encoding = ENCODINGS[enc] + (f":{param}" if enc in (3, 5) else "")
        self.layers = np.frombuffer(head, "<u4", L, 80).tolist()
        self.in_hook = head[40:56].rstrip(b"\0").decode()
        self.out_hook = head[56:72].rstrip(b"\0").decode()
        self.model_id = head[h:h + mid_len].decode("utf-8")
        self.meta = json.loads(head[h + mid_len:].decode("utf-8"))
        stat_bytes = L * (40 + 32 * d)
        if stats_offset < f.header_end or stats_offset + stat_bytes != index_offset:
            f.fail("statistics do not fill the space before the index")
        if n_chunks > len(f.b) // 48:
            f.fail("index larger than the file")
        raw_stats = f.bytes_at(stats_offset, stat_bytes, "statistics")
        f.check_crc(raw_stats, stats_crc, "statistics")
        hook = [("mean_norm", "<f8"), ("mean_sq_norm", "<f8"), ("mean", "<f8", (d,)), ("var", "<f8", (d,))]
        self.stats = np.frombuffer(raw_stats, [("count", "<u8"), ("in", hook), ("out", hook)], L)
        self.index, total = f.index(_ACT_INDEX, index_offset, n_chunks, stats_offset, "statistics")
        if total != self.n_tokens:
            f.fail(f"footer says {self.n_tokens} tokens, chunks hold {total}")
        self.G = [0, 0, 0, 1, 1, -(-d // max(param, 1))][enc]            # bf16 scales per row
        self.row_bytes = [4 * d, 2 * d, 2 * d, d, d, (d + 1) // 2][enc]  # stored bytes per row
        self.width = [4, 2, 2, 1, 1, 1][enc]                             # bytes per value element

    def _decode(self, i):
        e, L, d, enc, G = self.index[i], self.n_layers, self.d_model, self.enc, self.G
        if e["compression"] > 2:
            self.f.fail(f"chunk {i}: unknown compression {int(e['compression'])}")
        raw = self.f.chunk_payload(e, i, self.verify, e["compression"] != 0)
        n, S = struct.unpack_from("<II", raw)
        if n != e["n_tokens"] or len(raw) != 8 + 16 * n + S + 2 * L * n * self.row_bytes or S < 2 * L * n * G * 2:
            self.f.fail(f"chunk {i}: payload sizes differ from the index")
        sc = np.frombuffer(raw, np.uint8, 2 * L * n * G * 2, 8 + 16 * n).reshape(2 * L, -1)
        va = np.frombuffer(raw, np.uint8, 2 * L * n * self.row_bytes, 8 + 16 * n + S).reshape(2 * L, -1)
        if e["compression"] == 2:  # byte planes, block by block
            sc = np.stack([_unplane(x, 2) for x in sc]) if G else sc
            va = np.stack([_unplane(x, self.width) for x in va]) if self.width > 1 else va
        va = np.ascontiguousarray(va)
        if enc == 0:
            a = va.view("<f4")
        elif enc == 1:
            a = _bf16(va.view("<u2"))
        elif enc == 2:
            a = va.view("<f2").astype("<f4")
        elif enc == 3:
            a = va.view(np.int8).astype("<f4")
        elif enc == 4:
            a = _e4m3_values()[va]
            if np.isnan(a).any():
                self.f.fail(f"chunk {i}: fp8 NaN code")
        else:  # int4: value j in the low nibble of byte j/2 when j is even, the high nibble when odd
            nib = np.stack([va & 15, va >> 4], -1).reshape(2 * L, n, -1)[:, :, :d]
            a = ((nib ^ 8).astype(np.int8) - 8).astype("<f4")
        a = a.reshape(2, L, n, d)
        if G:  # x = q · s: s per row (int8, fp8) or per group of enc_param values (int4)
            words = np.ascontiguousarray(sc).view("<u2")
            if int(words.max(initial=0)) > 0x6F80:
                self.f.fail(f"chunk {i}: scale out of range")
            s = _bf16(words).reshape(2, L, n, G)
            a = a * (s if enc != 5 else np.repeat(s, self.enc_param, axis=-1)[..., :d])
        return dict(first_token=int(e["first_token"]), doc_ids=np.frombuffer(raw, "<u8", n, 8),
                    token_ids=np.frombuffer(raw, "<u4", n, 8 + 8 * n),
                    positions=np.frombuffer(raw, "<u4", n, 8 + 12 * n), **{"in": a[0], "out": a[1]})

    def chunks(self):
        """Yields each chunk as a dict: first_token, doc_ids, token_ids, positions, in, out ((L, n, d))."""
        for i in range(len(self.index)):
            yield self._decode(i)

    def layer(self, model_layer, hook="in"):
        """(n_tokens, d) float32 of one stored model layer and hook ("in" or "out")."""
        if model_layer not in self.layers:
            self.f.fail(f"layer {model_layer} not stored (layers {self.layers})")
        if hook not in ("in", "out"):
            raise ValueError(f"hook must be 'in' or 'out', not {hook!r}")
        li = self.layers.index(model_layer)
        out = np.empty((self.n_tokens, self.d_model), np.float32)
        for c in self.chunks():
            out[c["first_token"]:c["first_token"] + len(c["token_ids"])] = c[hook][li]
        return out

    def token_ids(self):
        parts = [c["token_ids"] for c in self.chunks()]
        return np.concatenate(parts) if parts else np.zeros(0, np.uint32)


def _main(argv):
    usage = ("usage: cltkit_io.py tokens SHARD.tok            (JSONL: doc_id, ids)\n"
             "       cltkit_io.py npy SHARD.acts LAYER in|out OUT.npy")
    try:
        if len(argv) == 2 and argv[0] == "tokens":
            for doc_id, ids in TokShard(argv[1]).docs():
                sys.stdout.write(json.dumps({"doc_id": doc_id, "ids": ids.tolist()}, separators=(",", ":")) + "\n")
        elif len(argv) == 5 and argv[0] == "npy":
            np.save(argv[4], ActShard(argv[1]).layer(int(argv[2]), argv[3]))
        else:
            print(usage, file=sys.stderr)
            return 2
    except CltkitFormatError as ex:
        print(f"cltkit_io: {ex}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
