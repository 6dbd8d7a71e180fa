#!/usr/bin/env bash
# feat-topk on REAL activations against a brute-force computation: stories260K's mlp_in rows from
# fwd-acts (f32), the committed clt-fit CLT tests/golden/attrib/stories/clt (5 layers x 64
# features), every activation of every layer materialized at once in numpy (float64, from the
# shard through python/cltkit_io.py and the CLT's safetensors), and every list and statistic of
# the store recomputed from them: top-k sets (deduplicated by content) and their activations,
# the samples' windows and their exact bin counts, the non-activating windows, count, max, min,
# exact sum, histogram, next tokens. Small lists (k 10, 4 bins x 3, 5 random) so most lists are
# full and their boundaries decide.
#
# Tolerance from the arithmetic: feat-topk computes h = W_enc x + b in float32, a sum of d = 64
# products, so |h32 - h| <= (d + 2)·2^-24·(|W_enc| |x| + |b|) (doubled for room) per entry; a
# JumpReLU threshold is stored as log θ and used as expf(log θ) (a few ulp). An entry whose h lies
# within that of θ is "uncertain": only such entries, windows whose max is within the tolerance of
# the top list's boundary, and identical windows (the corpus repeats a token run, and the top list
# keeps one window per content) whose maxima differ by rounding only may make a set or a count
# differ; the test prints how many of each it allowed.
source "$(dirname "$0")/lib.sh"
FT=$BIN/feat-topk
need_shared $STORIES_FILES
PY=$(numpy_python) || exit 0
CLT=$ROOT/tests/golden/attrib/stories/clt
stories_model
"$BIN/tok" encode -t "$TMP/st/tokenizer.json" -o "$TMP/c.tok" "$ROOT/tests/data/tok_corpus.jsonl" 2>/dev/null
"$BIN/fwd-acts" -m "$TMP/st" -o "$TMP/a.acts" --ctx 64 --dtype f32 --chunk-tokens 2048 "$TMP/c.tok" 2>/dev/null
OPTS="--k 10 --window 16 --max-at 10 --extra 2 --bins 4 --per-bin 3 --random 5 --logits 0 --seed 7"
# model mode (the tool's own forward): what the --acts store must equal, byte for byte
"$FT" -m "$TMP/st" --clt "$CLT" -o "$TMP/model" --ctx 64 $OPTS "$TMP/c.tok" 2>/dev/null
"$FT" --acts -m "$TMP/st" --clt "$CLT" -o "$TMP/store" $OPTS "$TMP/a.acts" 2>/dev/null \
  && ok feat_brute_run || fail feat_brute_run "feat-topk --acts failed"
for s in store model; do for l in 0 1 2 3 4; do for f in $(seq 0 63); do
  "$FT" show "$TMP/$s" "$l:$f" --raw | tr -d '\n'; echo
done; done >"$TMP/$s.jsonl"; done
cmp -s "$TMP/model.jsonl" "$TMP/store.jsonl" && ok feat_brute_model_equals_acts \
  || fail feat_brute_model_equals_acts "model-mode records differ from the --acts store's"

if "$PY" - "$ROOT/python" "$TMP/a.acts" "$CLT" "$TMP/store.jsonl" <<'PYEOF'
import json, math, struct, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import cltkit_io as ck

K, W, MAX_AT, EXTRA, BINS, PER_BIN, NRAND, SEED = 10, 16, 10, 2, 4, 3, 5, 7
M64 = (1 << 64) - 1

def mix64(z):  # splitmix64's finalizer (libcommon/feat/feat_collect.c)
    z = (z + 0x9e3779b97f4a7c15) & M64
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)

def window_priority(w): return mix64(w ^ SEED) >> 11
def window_split(w): return mix64(w ^ SEED ^ 0x5d1ce5a17) & 1
def sample_priority(wp, li, F, f): return mix64(wp ^ (((li * F + f + 1) * 0xd6e8feb86659fd93) & M64)) >> 11

def hist_buckets(a):  # feat_hist_bucket of each value: 8 per octave from 2^-16, the ends clamped
    m, e = np.frexp(a)
    o = e + 15
    b = o * 8 + np.minimum(((m - 0.5) * 16).astype(np.int64), 7)
    return np.where(o < 0, 0, np.where(o >= 32, 255, b))

def safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack_from("<Q", raw)[0]
    head = json.loads(raw[8:8 + n])
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32).reshape(v["shape"])
            for k, v in head.items() if k != "__metadata__"}

acts = ck.ActShard(sys.argv[2])
meta = acts.meta
assert meta["bos_prepended"] is not None and not meta.get("bos_activations_kept"), meta
Tc = meta["ctx"] - 1  # contexts of ctx tokens without their BOS row (feat-topk's acts_ctx_tokens)
tok = np.concatenate([c["token_ids"] for c in acts.chunks()]).astype(np.int64)
N = len(tok)
ctx_of = np.arange(N) // Tc
t_of = np.arange(N) % Tc
wpc = -(-Tc // W)
win_of = ctx_of * wpc + t_of // W
n_ctx = int(ctx_of[-1]) + 1
NW = n_ctx * wpc
wins = [int(w) for w in np.unique(win_of)]
w_start = np.searchsorted(win_of, np.arange(NW), "left")  # rows of window w: [w_start[w], w_end[w])
w_end = np.searchsorted(win_of, np.arange(NW), "right")
w_split = {w: window_split(w) for w in wins}
w_prio = {w: window_priority(w) for w in wins}
recs = {}
for line in open(sys.argv[4]):
    r = json.loads(line)
    recs[(r["layer"], r["feature"])] = r

allowed = dict(count=0, top_kth=0, top_twin=0, samples=0, random=0, hist=0)
checked = 0
def fail(msg):
    print("FAIL:", msg); sys.exit(1)

for l in range(5):
    enc = safetensors(f"{sys.argv[3]}/W_enc_{l}.safetensors")
    Wenc = enc[f"W_enc_{l}"].astype(np.float64)  # (F, d)
    b = enc[f"b_enc_{l}"].astype(np.float64)
    theta = enc[f"threshold_{l}"].astype(np.float64)
    F, d = Wenc.shape
    x = acts.layer(l, "in").astype(np.float64)  # (N, d): every activation of the layer at once
    h = x @ Wenc.T + b
    eps = 2 * (d + 2) * 2.0 ** -24 * (np.abs(x) @ np.abs(Wenc).T + np.abs(b))
    a = np.where(h > theta, h, 0.0)  # (N, F)
    unc = np.abs(h - theta) <= eps + theta * 2.0 ** -20  # firing or not undecidable in float32
    for f in range(F):
        r = recs[(l, f)]
        af, ef, uf = a[:, f], eps[:, f], unc[:, f]
        fire = af > 0
        n_unc = int(uf.sum())
        # statistics
        cnt = int(fire.sum())
        if r["n_tokens"] != N: fail(f"{l}:{f} n_tokens {r['n_tokens']} vs {N}")
        if abs(r["count"] - cnt) > n_unc: fail(f"{l}:{f} count {r['count']} vs {cnt} ({n_unc} uncertain)")
        allowed["count"] += r["count"] != cnt
        if r["dead"] != (r["count"] == 0): fail(f"{l}:{f} dead flag")
        if cnt:
            tol = ef.max() + (np.abs(af[uf]).max() if n_unc else 0)
            if abs(r["max_activation"] - af.max()) > tol: fail(f"{l}:{f} max {r['max_activation']} vs {af.max()}")
            if abs(r["min_activation"] - af[fire].min()) > tol: fail(f"{l}:{f} min")
            s = int(r["sum_fixed"]) / 2.0 ** 32
            stol = ef[fire].sum() + cnt * 2.0 ** -32 + np.abs(af[uf]).sum()
            if abs(s - af[fire].sum()) > stol: fail(f"{l}:{f} sum {s} vs {af[fire].sum()} (tol {stol})")
            v, e = af[fire], ef[fire]
            hist = np.bincount(hist_buckets(v), minlength=256)
            amb = int((uf[fire] | (hist_buckets(v - e) != hist_buckets(v + e))).sum())
            got = np.zeros(256, np.int64)
            for bk, n in r["hist_buckets"]: got[bk] = n
            diff = int(np.abs(got - hist).sum())
            if diff > 2 * amb: fail(f"{l}:{f} histogram differs in {diff} counts ({amb} ambiguous)")
            allowed["hist"] += diff > 0
        # windows: max (first token with it), view, split, priorities
        wmax = np.zeros(NW)
        np.maximum.at(wmax, win_of, af)
        # activating or not undecidable: an uncertain entry and no certainly firing one
        wunc = (np.bincount(win_of, weights=uf, minlength=NW) > 0) & \
               (np.bincount(win_of, weights=fire & ~uf, minlength=NW) == 0)
        top_c, samp_c, rnd_c = {}, [[], []], [[], []]
        for w in wins:
            split, wp = w_split[w], w_prio[w]
            if wmax[w] > 0:
                p = int(w_start[w] + np.argmax(af[w_start[w]:w_end[w]]))
                c0 = p - t_of[p]
                nv = min(Tc, N - c0)
                v0, v1 = max(p - MAX_AT - EXTRA, c0), min(p + W - MAX_AT + EXTRA, c0 + nv)
                key = (tuple(tok[v0:v1]), p - v0)
                cand = (-wmax[w], w, v0, v1, p)
                if key not in top_c or cand < top_c[key]: top_c[key] = cand
                samp_c[split].append((sample_priority(wp, l, F, f), w))
            else:
                rnd_c[split].append((wp, w))
        ex = sorted(top_c.values())[:K]
        kth = -ex[-1][0] if len(ex) == K else 0.0
        # top: the same windows (a difference only at the k-th value, within tolerance), each
        # example's tokens and activations
        want = {e[1]: e for e in ex}
        have = {e["window"]: e for e in r["top"]}
        def content(w):
            _, _, v0, v1, p = want[w] if w in want else (0, 0, 0, 0, 0)
            if w in want: return (tuple(int(t) for t in tok[v0:v1]), p - v0)
            return (tuple(have[w]["tokens"]), have[w]["max_idx"])
        have_by = {content(w): w for w in have}
        for w in set(want) ^ set(have):
            # near the k-th value, or an identical window elsewhere (deduplication) with a near-equal max
            twin = top_c[content(w)][1] if w in have and content(w) in top_c else have_by.get(content(w))
            if twin is not None and abs(wmax[w] - wmax[twin]) <= 2 * ef.max(): allowed["top_twin"] += 1
            elif abs(wmax[w] - kth) <= 2 * ef.max(): allowed["top_kth"] += 1
            else: fail(f"{l}:{f} top window {w} in one list only (act {wmax[w]}, k-th {kth})")
        for w in set(want) & set(have):
            _, _, v0, v1, p = want[w]
            e = have[w]
            if abs(e["act"] - wmax[w]) > ef[p]: fail(f"{l}:{f} top window {w}: max {e['act']} vs {wmax[w]}")
            if e["tokens"] != [int(t) for t in tok[v0:v1]] or e["max_idx"] != p - v0:
                fail(f"{l}:{f} top window {w}: tokens or max position differ")
            if np.any(np.abs(np.array(e["acts"]) - af[v0:v1]) > ef[v0:v1]): fail(f"{l}:{f} top window {w}: activations")
            if e["split"] != ("test" if window_split(w) else "explain"): fail(f"{l}:{f} split of {w}")
        tops = [e["act"] for e in r["top"]]
        if tops != sorted(tops, reverse=True): fail(f"{l}:{f} top not sorted")
        # samples: per split the lowest priorities among activating windows, bins of equal count
        for sp, name in ((0, "explain"), (1, "test")):
            want_w = [w for _, w in sorted(samp_c[sp])[:BINS * PER_BIN]]
            got = [e for e in r["samples"] if e["split"] == name]
            diff = set(want_w) ^ set(e["window"] for e in got)
            for w in diff:
                if not wunc[w]: fail(f"{l}:{f} sample window {w} ({name}) in one list only")
                allowed["samples"] += 1
            n = len(got)
            per_bin = np.bincount([e["bin"] for e in got], minlength=BINS)
            exact = np.bincount([i * BINS // n for i in range(n)], minlength=BINS) if n else np.zeros(BINS, int)
            if not np.array_equal(per_bin, exact): fail(f"{l}:{f} {name} bin counts {per_bin} vs {exact}")
            if len(want_w) == BINS * PER_BIN and n != BINS * PER_BIN: fail(f"{l}:{f} {name}: {n} samples")
            for e in got:  # bins by activation: stronger bins never below weaker ones (within tolerance)
                for e2 in got:
                    if e["bin"] < e2["bin"] and wmax[e["window"]] < wmax[e2["window"]] - 2 * ef.max():
                        fail(f"{l}:{f} {name}: bin order")
            rw = [w for _, w in sorted(rnd_c[sp])[:NRAND]]
            got_r = [e["window"] for e in r["random"] if e["split"] == name]
            for w in set(rw) ^ set(got_r):
                if not wunc[w]: fail(f"{l}:{f} random window {w} ({name}) in one list only")
                allowed["random"] += 1
        # next tokens: after the max in the top examples
        if set(want) == set(have):
            nt = {}
            for e in r["top"]:
                if e["max_idx"] + 1 < len(e["tokens"]):
                    t = e["tokens"][e["max_idx"] + 1]
                    nt[t] = nt.get(t, 0) + 1
            if {t: c for t, c in r["next_tokens"]} != nt: fail(f"{l}:{f} next_tokens")
        checked += 1

print(f"# {checked} features, {N} tokens checked; differences allowed by the tolerance: {allowed}")
assert checked == 5 * 64
PYEOF
then ok feat_brute_force_real_activations; else fail feat_brute_force_real_activations "see above"; fi
