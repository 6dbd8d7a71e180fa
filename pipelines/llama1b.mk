# Llama-3.2-1B: corpus -> token shards -> activation shards -> cross-layer transcoder.
#
#   make -f pipelines/llama1b.mk MODEL_DIR=/models/Llama-3.2-1B CORPUS=/data/corpus.jsonl [-j4]
#
# MODEL_DIR is a Hugging Face download (config.json, model.safetensors, tokenizer.json).
# Work is split into SHARDS independent jobs; each output is written atomically, so an
# interrupted run resumes by running make again (finished shards are kept).
# Settings follow CircuitLab's Llama-1B CLT run where it documents them: context 64, expansion
# 32 (features per layer = 32 x 2048), lambda warmed up from 0, lr 2e-4; adjust freely.

MODEL_DIR ?= $(error set MODEL_DIR=/path/to/Llama-3.2-1B)
CORPUS    ?= $(error set CORPUS=/path/to/corpus.jsonl (JSONL, one {"text": ...} per line))
OUT       ?= llama1b-out
SHARDS    ?= 8
CTX       ?= 64
BATCH     ?= 32
DTYPE     ?= bf16
LAYERS    ?= all
FIELD     ?= text
D_MODEL   ?= 2048
EXPANSION ?= 32
CLT_BATCH ?= 4096
CLT_STEPS ?= 50000
CLT_LR    ?= 2e-4
LAMBDA    ?= 1.0
ROOT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
BIN       := $(ROOT)/bin

IDX  := $(shell seq 0 $$(($(SHARDS) - 1)))
TOKS := $(IDX:%=$(OUT)/tokens/part%.tok)
ACTS := $(IDX:%=$(OUT)/acts/part%.acts)

.PHONY: all tokens acts eval clt
all: clt
tokens: $(TOKS)
acts: $(ACTS)

$(OUT)/tokens/part%.tok: $(CORPUS)
	@mkdir -p $(dir $@)
	$(BIN)/tok encode -t $(MODEL_DIR)/tokenizer.json --field $(FIELD) --shard $*/$(SHARDS) -o $@ $<

$(OUT)/acts/part%.acts: $(OUT)/tokens/part%.tok
	@mkdir -p $(dir $@)
	$(BIN)/fwd-acts -m $(MODEL_DIR) -o $@ --ctx $(CTX) --batch $(BATCH) --dtype $(DTYPE) --layers $(LAYERS) $<

# Resumable: an interrupted run continues from its last checkpoint (make clt again).
# (config.yaml appears at the first checkpoint, so completion is marked by a separate file.)
clt: $(OUT)/clt/done
$(OUT)/clt/done: $(ACTS)
	$(BIN)/clt-fit -o $(OUT)/clt --features $$(($(EXPANSION) * $(D_MODEL))) --batch $(CLT_BATCH) \
	    --steps $(CLT_STEPS) --lr $(CLT_LR) --lambda $(LAMBDA) --save-every 1000 \
	    $$([ -f $(OUT)/clt/train_state.safetensors ] && echo --resume) $(ACTS)
	touch $@

eval: $(OUT)/tokens/part0.tok
	$(BIN)/fwd-acts -m $(MODEL_DIR) --eval --ctx $(CTX) --batch $(BATCH) $<
