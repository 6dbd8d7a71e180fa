# Llama-3.2-1B: corpus -> token shards -> activation shards -> cross-layer transcoder.
#
#   make -f pipelines/llama1b.mk MODEL_DIR=/models/Llama-3.2-1B CORPUS=/data/corpus.jsonl [-j4]
#
# MODEL_DIR is a Hugging Face download (config.json, model.safetensors, tokenizer.json).
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
# a node with 8 x 80 GB GPUs and CLT_FLAGS="--device cuda --bf16" (CircuitLab trains in bf16 too); EXPANSION=4 (~41 GB) fits one big
# CPU machine. CLT_FLAGS takes any other clt-fit option, e.g. "--activation batchtopk --k 32".

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
LAMBDA    ?= 12
THETA0    ?= 0.03
BANDWIDTH ?= 1.0
LAUNCH    ?=
CLT_FLAGS ?=
HELD_OUT  ?= 1
ROOT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
BIN       := $(ROOT)/bin

IDX  := $(shell seq 0 $$(($(SHARDS) - 1)))
TOKS := $(IDX:%=$(OUT)/tokens/part%.tok)
ACTS := $(IDX:%=$(OUT)/acts/part%.acts)
# the last HELD_OUT shards are not trained on: clt-eval measures the CLT on them
TRAIN_ACTS := $(wordlist 1,$(shell echo $$(($(SHARDS) - $(HELD_OUT)))),$(ACTS))
HELD_ACTS  := $(filter-out $(TRAIN_ACTS),$(ACTS))

.PHONY: all tokens acts eval clt clt-eval
all: clt-eval
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
$(OUT)/clt/done: $(TRAIN_ACTS)
	$(LAUNCH) $(BIN)/clt-fit -o $(OUT)/clt --features $$(($(EXPANSION) * $(D_MODEL))) --batch $(CLT_BATCH) \
	    --steps $(CLT_STEPS) --lr $(CLT_LR) --lambda $(LAMBDA) --theta0 $(THETA0) --bandwidth $(BANDWIDTH) \
	    --save-every 1000 $(CLT_FLAGS) $$([ -f $(OUT)/clt/train_state.safetensors ] && echo --resume) $(TRAIN_ACTS)
	$(BIN)/clt-fit report $(OUT)/clt/metrics.jsonl -o $(OUT)/clt/report.html
	touch $@

# held-out NMSE, L0 and dead features of the trained CLT
clt-eval: $(OUT)/clt/eval.json
$(OUT)/clt/eval.json: $(OUT)/clt/done $(HELD_ACTS)
	$(BIN)/clt-fit eval $(OUT)/clt $(HELD_ACTS) -o $@
	$(BIN)/clt-fit report $(OUT)/clt/metrics.jsonl -o $(OUT)/clt/report.html  # now with the held-out results

eval: $(OUT)/tokens/part0.tok
	$(BIN)/fwd-acts -m $(MODEL_DIR) --eval --ctx $(CTX) --batch $(BATCH) $<
