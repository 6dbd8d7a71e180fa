#!/usr/bin/env bash
# Activation encodings on real activations: bytes per token, ratio to raw f32 / bf16, relative
# MSE, NMSE, max error / guaranteed bound, encode and decode throughput on one core (quant-acts
# report, in memory, decoding timed best of 3 per chunk); zstd levels; byte planes on and off
# for every encoding; whole-shard reads (build/bench/bench_actread): verify only, one thread,
# blocks on all threads, one reader per core.
#
#   bash bench/bench_quant.sh            # markdown tables on stdout, raw JSON in $W
#
# Activations: stories260K (converted from ../shared/models/stories260K) over the bench corpus
# (/tmp/cltkit-bench/corpus.jsonl from bench/make_bench_corpus.py if present, else
# tests/data/tok_corpus.jsonl), contexts of 256, every layer, mlp_in + mlp_out, the first
# $TOKENS tokens; and, if /tmp/cltkit-bench/llama-mid exists (bench/make_bench_model.py), the
# mid-size random Llama over random ids.
source "$(dirname "$0")/lib.sh"
SHARED=${CLTKIT_SHARED:-$ROOT/../shared}
W=/tmp/cltkit-bench/quant
TOKENS=${TOKENS:-262144}
MID_TOKENS=${MID_TOKENS:-8192}
PY=$(command -v python3)
mkdir -p "$W"
make -s tools build/bench/bench_actread >/dev/null

ST=$W/stories260K
[ -f "$ST/config.json" ] || bin/llama2c-convert "$SHARED/models/stories260K/stories260K.bin" \
  --tokenizer "$SHARED/models/stories260K/tok512.model" -o "$ST" 2>/dev/null
CORPUS=/tmp/cltkit-bench/corpus.jsonl
[ -f "$CORPUS" ] || CORPUS=$ROOT/tests/data/tok_corpus.jsonl
bin/tok encode -t "$ST/tokenizer.json" -o "$W/corpus.tok" "$CORPUS" 2>/dev/null
# stored f32 source: reading it back costs a copy and a CRC, not a decompression
bin/fwd-acts -m "$ST" -o "$W/st.f32.acts" --ctx 256 --batch 16 --max-tokens "$TOKENS" --zstd-level -1 "$W/corpus.tok" 2>/dev/null

ALL=f32,bf16,f16,int8,int8:63,int8:31,fp8,int4,int4:16
report() {  # source name extra-args... -> $W/name.json
  local src=$1 name=$2; shift 2
  bin/quant-acts report "$src" --json --repeat 3 "$@" > "$W/$name.json" 2>/dev/null
}
report "$W/st.f32.acts" st_l1 --dtype "$ALL"
report "$W/st.f32.acts" st_l3 --dtype "$ALL" --zstd-level 3
report "$W/st.f32.acts" st_l19 --dtype int8:31,fp8,int4 --zstd-level 19 --max-tokens 65536
report "$W/st.f32.acts" st_planes_on --dtype "$ALL" --shuffle --max-tokens 65536
report "$W/st.f32.acts" st_planes_off --dtype "$ALL" --no-shuffle --max-tokens 65536

# whole-shard reads, from the page cache
: > "$W/read.jsonl"
for e in int8:31 int4 bf16; do
  bin/quant-acts "$W/st.f32.acts" -o "$W/st.$e.acts" --dtype "$e" 2>/dev/null
  build/bench/bench_actread "$W/st.$e.acts" -n 3 | sed "s/\"encoding\": \"[a-z0-9]*\"/\"encoding\": \"$e\"/" >> "$W/read.jsonl"
done

MID=/tmp/cltkit-bench/llama-mid
if [ -f "$MID/config.json" ]; then
  "$PY" -c "
import json, random
r = random.Random(0)
with open('$W/ids.jsonl', 'w') as f:
    for d in range(40): f.write(json.dumps({'ids': [r.randrange(3, 32000) for _ in range(1020)]}) + '\n')"
  bin/tok encode --ids-field ids --vocab-size 32000 -o "$W/ids.tok" "$W/ids.jsonl" 2>/dev/null
  bin/fwd-acts -m "$MID" -o "$W/mid.f32.acts" --ctx 256 --batch 4 --max-tokens "$MID_TOKENS" --zstd-level -1 "$W/ids.tok" 2>/dev/null
  report "$W/mid.f32.acts" mid_l1 --dtype "$ALL"
fi

"$PY" - "$W" <<'EOF'
import json, os, sys
W = sys.argv[1]
def load(n):
    p = f"{W}/{n}.json"
    return json.load(open(p)) if os.path.exists(p) else None
def table(d, title):
    print(f"\n{title}: {d['tokens']:,} tokens, {d['n_layers']} layers, d_model {d['d_model']}, zstd level {d['zstd_level']}\n")
    print("| encoding | byte planes | bytes/token | × f32 | × bf16 | rel. MSE | NMSE | max abs err | err / bound | encode MB/s | decode GB/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for e in d["encodings"]:
        print(f"| `{e['encoding']}` | {'yes' if e['byte_planes'] else 'no'} | {e['bytes_per_token']:.1f} | {e['ratio_vs_f32']:.2f} | "
              f"{e['ratio_vs_bf16']:.2f} | {e['rel_mse']:.2e} | {e['nmse']:.2e} | {e['max_abs_err']:.3g} | {e['max_err_over_bound']:.3f} | "
              f"{e['encode_mb_s']:.0f} | {e['decode_mb_s'] / 1000:.2f} |")
for name, title in [("st_l1", "stories260K"), ("st_l3", "stories260K"), ("st_l19", "stories260K"), ("mid_l1", "llama-mid (random weights, random ids)")]:
    d = load(name)
    if d: table(d, title)
on, off = load("st_planes_on"), load("st_planes_off")
print(f"\nByte planes (stories260K, {on['tokens']:,} tokens, zstd level {on['zstd_level']}): bytes/token\n")
print("| encoding | plain | byte planes | change |")
print("|---|---:|---:|---:|")
for a, b in zip(off["encodings"], on["encodings"]):
    print(f"| `{a['encoding']}` | {a['bytes_per_token']:.1f} | {b['bytes_per_token']:.1f} | {100 * (b['bytes_per_token'] / a['bytes_per_token'] - 1):+.1f}% |")
rows = [json.loads(l) for l in open(f"{W}/read.jsonl")]
print(f"\nWhole-shard reads (bench_actread, stories260K, {rows[0]['tokens']:,} tokens = {rows[0]['gb_fp32']:.2f} GB of fp32, "
      "page cache, best of 3): GB/s of decoded fp32\n")
jobs = ["verify", "one_thread", "blocks", "chunks"]
print("| encoding | " + " | ".join(jobs) + " |")
print("|---|" + "---:|" * len(jobs))
for enc in dict.fromkeys(r["encoding"] for r in rows):
    by = {r["job"]: r for r in rows if r["encoding"] == enc}
    print(f"| `{enc}` | " + " | ".join(f"{by[j]['gb_per_s']:.2f}" for j in jobs) + " |")
EOF
