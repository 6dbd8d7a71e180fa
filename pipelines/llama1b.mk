# Llama-3.2-1B: corpus -> token shards -> activation shards -> cross-layer transcoder -> every
# feature's evidence -> explanations -> attribution graphs of PROMPTS -> their pages.
#
#   make -f pipelines/llama1b.mk MODEL_DIR=/models/Llama-3.2-1B CORPUS=/data/corpus.jsonl [-j8]
#   make -f pipelines/llama1b.mk ... EXPLAINER_URL=https://api.openai.com/v1/chat/completions \
#        EXPLAINER_MODEL=gpt-4o-mini              # key in $OPENAI_API_KEY (EXPLAINER_KEY_ENV)
#   make -f pipelines/llama1b.mk ... EXPLAINER=tokens   # offline, model-free labels
#
# MODEL_DIR is a Hugging Face download (config.json, model.safetensors, tokenizer.json). The steps,
# targets and every other variable are in pipelines/common.mk; a Slurm recipe in pipelines/slurm/.
# Work is split into SHARDS independent jobs; each output is written atomically, so an
# interrupted run resumes by running make again (finished shards are kept).
# Settings follow CircuitLab's Llama-1B CLT run where it documents them (runners/training/llama1b/
# config.py, see ../shared/reference/clt-training.md): context 64, expansion 32 (features per layer
# = 32 x 2048), lr 2e-4, sparsity coefficient 12 warmed up from 0 (ours ramps linearly over the
# run, theirs on a cosine over 90% of it), initial threshold 0.03, bandwidth 1.0; adjust freely.
#
# Size: at expansion 32 the CLT has 65536 features x 16 layers: 2.1 G encoder and 18.3 G decoder
# parameters, 4 bytes each for the weights, gradients and two Adam moments: ~330 GB in all. Split
# it over ranks with LAUNCH (features are sharded, formats/clt.md), e.g. LAUNCH="mpirun -np 8" on
# a node with 8 x 80 GB GPUs and CLT_FLAGS="--device cuda --bf16" (CircuitLab trains in bf16 too);
# EXPANSION=4 (~41 GB) fits one big CPU machine. CLT_FLAGS takes any other clt-fit option, e.g.
# "--activation batchtopk --k 32". After the CLT: FEAT_SHARDS feat-topk jobs (FEAT_FLAGS="--device
# cuda" puts their forward on a GPU), graphs of pipelines/prompts/circuits/*.txt (PROMPTS=DIR for
# yours), explanations of the features in them (INTERP_FEATURES=all for every feature).

SHARDS    ?= 8
CTX       ?= 64
BATCH     ?= 32
DTYPE     ?= bf16
# (CLT sizes and training settings: common.mk's defaults, CircuitLab's Llama-1B run)
OUT       ?= llama1b-out
ATTRIB_FLAGS ?= --max-feature-nodes 7500

include $(dir $(lastword $(MAKEFILE_LIST)))common.mk
