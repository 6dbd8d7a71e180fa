# Gemma-2-2B: the same pipeline as llama1b.mk (pipelines/common.mk: corpus -> token shards ->
# activation shards -> cross-layer transcoder -> every feature's evidence -> explanations ->
# attribution graphs of PROMPTS -> their pages), with Gemma 2's sizes and hooks.
#
#   make -f pipelines/gemma2b.mk MODEL_DIR=/models/gemma-2-2b CORPUS=/data/corpus.jsonl [-j8]
#   make -f pipelines/gemma2b.mk ... EXPLAINER_URL=https://api.openai.com/v1/chat/completions \
#        EXPLAINER_MODEL=gpt-4o-mini              # key in $OPENAI_API_KEY (EXPLAINER_KEY_ENV)
#   make -f pipelines/gemma2b.mk ... EXPLAINER=tokens   # offline, model-free labels
#
# MODEL_DIR is a Hugging Face download of google/gemma-2-2b (config.json, model-*.safetensors +
# index, tokenizer.json). The CLT reads resid_mid (IN; for Gemma 2 the residual stream after the
# post-attention norm, before the MLP's pre-norm) and writes mlp_out (after the post-feedforward
# norm), as circuit-tracer's Gemma-2-2B CLTs (mntss/clt-gemma-2-2b-426k; see
# ../shared/reference/clt-training.md); IN=mlp_in for the normalized MLP input instead.
# Size: 26 layers x 16384 features (that CLT's width, FEATURES) at d 2304: 1.0 G encoder and 13.2 G
# decoder parameters, 16 bytes each with gradients and two Adam moments: ~230 GB in all; split it
# over ranks with LAUNCH="mpirun -np 8" and CLT_FLAGS="--device cuda --bf16" (8 x 80 GB GPUs), or
# FEATURES=2304 (~33 GB) on one big CPU machine. CircuitLab documents no Gemma run of its own, so
# the optimizer settings are llama1b.mk's.

SHARDS    ?= 8
CTX       ?= 64
BATCH     ?= 16
DTYPE     ?= bf16
IN        ?= resid_mid
D_MODEL   ?= 2304
FEATURES  ?= 16384
# (training settings: common.mk's defaults)
OUT       ?= gemma2b-out
ATTRIB_FLAGS ?= --max-feature-nodes 7500

include $(dir $(lastword $(MAKEFILE_LIST)))common.mk
