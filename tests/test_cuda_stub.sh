#!/usr/bin/env bash
# A build without CUDA (NO_CUDA=1, or no nvcc) links kernels/cuda_stub.c and the other *_stub.c in
# place of the CUDA code: --device cuda is then one error line, "--device cuda: built without CUDA
# (make without NO_CUDA=1)", from every tool that has a CUDA path, before any work. A CUDA build
# skips this.
source "$(dirname "$0")/lib.sh"
MSG="built without CUDA (make without NO_CUDA=1)"
if ! grep -qaF "$MSG" "$BIN/fwd-acts"; then echo "SKIP cuda_stub: this build has CUDA"; exit 0; fi
"$BIN/clt-fit" synth -o "$TMP/a.acts" --layers 2 --d 8 --features 16 --tokens 256 >/dev/null 2>&1
PAT="^[a-z-]+: --device cuda: built without CUDA \(make without NO_CUDA=1\)$"
expect_error cuda_stub_clt_fit "$PAT" "$BIN/clt-fit" -o "$TMP/clt" --steps 2 --device cuda "$TMP/a.acts"
[ ! -e "$TMP/clt" ] && ok cuda_stub_clt_fit_no_output || fail cuda_stub_clt_fit_no_output "wrote $TMP/clt"
# the forward pass (fwd-acts, feat-topk: tools/engine.h) on a token shard of stories260K
stories_model
"$BIN/tok" encode -t "$TMP/st/tokenizer.json" -o "$TMP/c.tok" "$ROOT/tests/data/tok_corpus.jsonl" 2>/dev/null
expect_error cuda_stub_fwd_acts "$PAT" "$BIN/fwd-acts" -m "$TMP/st" -o "$TMP/b.acts" --ctx 64 --device cuda "$TMP/c.tok"
expect_error cuda_stub_fwd_acts_eval "$PAT" "$BIN/fwd-acts" -m "$TMP/st" --eval --ctx 64 --device cuda "$TMP/c.tok"
[ ! -e "$TMP/b.acts" ] && ok cuda_stub_fwd_acts_no_output || fail cuda_stub_fwd_acts_no_output "wrote $TMP/b.acts"
