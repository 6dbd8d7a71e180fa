# pipelines/common.mk — the steps every model pipeline shares, from a corpus to circuit pages.
# Included by llama1b.mk, gemma2b.mk and smollm2.mk after they set their defaults: every variable
# here is `?=`, so the including file and the command line win.
#
#   CORPUS --tok encode--> tokens/part{i}.tok --fwd-acts--> acts/part{i}.acts      (i < SHARDS)
#   acts (all but the last HELD_OUT) --clt-fit--> clt/ (+ report.html) ; held out --> clt/eval.json
#   tokens --feat-topk --shard j/FEAT_SHARDS--> feat-parts/part{j}/ --merge--> features/  (j < FEAT_SHARDS)
#   PROMPTS/NAME.txt --attrib--> graphs/NAME.json ; their features --> graphs/features.txt
#   features --feat-topk export--> features-json/ ; --interp-prompt--> explanations.jsonl
#   graph + feature files + explanations --graph2html--> graphs/NAME.html
#
# Every step writes one file (or a directory with a marker written last) atomically, so an
# interrupted run resumes where it stopped: run make again. Independent jobs (token and activation
# shards, feature-collection shards, prompts) run in parallel under `make -j`.
#
# Targets: all (default: clt-eval + graphs), prepare (the model directory and the corpus: what
# must exist before parallel jobs start), tokens, acts, clt, clt-eval, features, export, interp,
# graphs, eval (the model's loss on part0), and per shard (Slurm arrays, pipelines/slurm/):
# acts-part-I, feat-part-J. Device: ACTS_FLAGS/FEAT_FLAGS="--device cuda" run the forward passes
# on a GPU, CLT_FLAGS="--device cuda" the training (clt-fit --help).

PIPELINES := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
ROOT      := $(abspath $(PIPELINES)/..)
BIN       := $(ROOT)/bin

MODEL_DIR ?= $(error set MODEL_DIR=/path/to/the/model (config.json, safetensors, tokenizer.json))
CORPUS    ?= $(error set CORPUS=/path/to/corpus.jsonl (JSONL, one {"text": ...} per line))
OUT       ?= out
# corpus -> activations
SHARDS    ?= 8
CTX       ?= 64
BATCH     ?= 32
DTYPE     ?= bf16
LAYERS    ?= all
FIELD     ?= text
IN        ?= mlp_in
ACTS_FLAGS ?=
# CLT (features per layer = EXPANSION x D_MODEL unless FEATURES is set)
D_MODEL   ?= 2048
EXPANSION ?= 32
FEATURES  ?= $(shell echo $$(($(EXPANSION) * $(D_MODEL))))
CLT_BATCH ?= 4096
CLT_STEPS ?= 50000
CLT_LR    ?= 2e-4
LAMBDA    ?= 12
THETA0    ?= 0.03
BANDWIDTH ?= 1.0
SAVE_EVERY ?= 1000
LAUNCH    ?=
CLT_FLAGS ?=
HELD_OUT  ?= 1
# feature evidence (feat-topk over all token shards, FEAT_SHARDS jobs then one merge)
FEAT_SHARDS ?= $(SHARDS)
FEAT_CTX    ?= $(CTX)
FEAT_BATCH  ?= 8
FEAT_K      ?= 100
FEAT_FLAGS  ?=
# EXPORT=graphs: feature files for the features in the prompts' graphs only (a page needs no
# more; all features of a big CLT are ~0.5 MB each); EXPORT=all: `feat-topk export` of every one.
EXPORT      ?= graphs
# explanations: EXPLAINER=http (OpenAI-compatible chat completions at EXPLAINER_URL, model
# EXPLAINER_MODEL, key in the environment variable EXPLAINER_KEY_ENV), builtin (SmolLM2, offline),
# tokens (model-free, offline, instant) or any interp-prompt --explainer SPEC (cmd:..., builtin:M).
EXPLAINER         ?= http
EXPLAINER_URL     ?= http://localhost:8000/v1/chat/completions
EXPLAINER_MODEL   ?=
EXPLAINER_KEY_ENV ?= OPENAI_API_KEY
# INTERP_FEATURES=graphs: the features in the prompts' graphs; or all, or an interp-prompt SPEC
INTERP_FEATURES   ?= graphs
INTERP_FLAGS      ?=
# attribution graphs: one per PROMPTS/*.txt
PROMPTS      ?= $(PIPELINES)/prompts/circuits
ATTRIB_FLAGS ?=

IDX  := $(shell seq 0 $$(($(SHARDS) - 1)))
TOKS := $(IDX:%=$(OUT)/tokens/part%.tok)
ACTS := $(IDX:%=$(OUT)/acts/part%.acts)
# the last HELD_OUT shards are not trained on: clt-eval measures the CLT on them
TRAIN_ACTS := $(wordlist 1,$(shell echo $$(($(SHARDS) - $(HELD_OUT)))),$(ACTS))
HELD_ACTS  := $(filter-out $(TRAIN_ACTS),$(ACTS))
FEAT_IDX   := $(shell seq 0 $$(($(FEAT_SHARDS) - 1)))
FEAT_PARTS := $(FEAT_IDX:%=$(OUT)/feat-parts/part%/features.bin)
PROMPT_TXT := $(sort $(wildcard $(PROMPTS)/*.txt))
GRAPH_JSON := $(PROMPT_TXT:$(PROMPTS)/%.txt=$(OUT)/graphs/%.json)
GRAPH_HTML := $(GRAPH_JSON:.json=.html)

ifeq ($(EXPLAINER),http)
EXPLAINER_ARGS := --explainer http:$(EXPLAINER_URL) $(if $(EXPLAINER_MODEL),--model $(EXPLAINER_MODEL)) \
                  --api-key-env $(EXPLAINER_KEY_ENV)
else
EXPLAINER_ARGS := --explainer $(EXPLAINER)
endif
# the interp-prompt feature SPEC, as shell text
ifeq ($(INTERP_FEATURES),graphs)
INTERP_DEPS := $(OUT)/graphs/features.txt
INTERP_SPEC := $$(paste -sd, $(OUT)/graphs/features.txt)
else
INTERP_DEPS :=
INTERP_SPEC := $(INTERP_FEATURES)
endif

.PHONY: all prepare tokens acts clt clt-eval features export interp graphs eval
.DELETE_ON_ERROR:
all: clt-eval graphs
prepare: $(MODEL_DIR)/config.json $(CORPUS)
tokens: $(TOKS)
acts: $(ACTS)
clt: $(OUT)/clt/done
clt-eval: $(OUT)/clt/eval.json
features: $(OUT)/features/features.bin
export: $(OUT)/features-json/.done
interp: $(OUT)/explanations.jsonl
graphs: $(GRAPH_HTML)
acts-part-%: $(OUT)/acts/part%.acts ;
feat-part-%: $(OUT)/feat-parts/part%/features.bin ;

$(OUT)/tokens/part%.tok: $(CORPUS) $(MODEL_DIR)/config.json
	@mkdir -p $(dir $@)
	$(BIN)/tok encode -t $(MODEL_DIR)/tokenizer.json --field $(FIELD) --shard $*/$(SHARDS) -o $@ $<

$(OUT)/acts/part%.acts: $(OUT)/tokens/part%.tok
	@mkdir -p $(dir $@)
	$(BIN)/fwd-acts -m $(MODEL_DIR) -o $@ --ctx $(CTX) --batch $(BATCH) --dtype $(DTYPE) --layers $(LAYERS) \
	    --in $(IN) $(ACTS_FLAGS) $<

# Resumable: an interrupted run continues from its last checkpoint (make clt again).
# (config.yaml appears at the first checkpoint, so completion is marked by a separate file.)
$(OUT)/clt/done: $(TRAIN_ACTS)
	$(LAUNCH) $(BIN)/clt-fit -o $(OUT)/clt --features $(FEATURES) --batch $(CLT_BATCH) \
	    --steps $(CLT_STEPS) --lr $(CLT_LR) --lambda $(LAMBDA) --theta0 $(THETA0) --bandwidth $(BANDWIDTH) \
	    --save-every $(SAVE_EVERY) $(CLT_FLAGS) $$([ -f $(OUT)/clt/train_state.safetensors ] && echo --resume) \
	    $(TRAIN_ACTS)
	$(BIN)/clt-fit report $(OUT)/clt/metrics.jsonl -o $(OUT)/clt/report.html
	touch $@

# held-out NMSE, L0 and dead features of the trained CLT
$(OUT)/clt/eval.json: $(OUT)/clt/done $(HELD_ACTS)
	$(BIN)/clt-fit eval $(OUT)/clt $(HELD_ACTS) -o $@
	$(BIN)/clt-fit report $(OUT)/clt/metrics.jsonl -o $(OUT)/clt/report.html  # now with the held-out results

# The evidence for every feature: FEAT_SHARDS jobs over every FEAT_SHARDS-th batch of contexts of
# all token shards, merged into the store one job would write (byte for byte).
$(OUT)/feat-parts/part%/features.bin: $(OUT)/clt/done $(TOKS)
	@mkdir -p $(OUT)/feat-parts
	rm -rf $(dir $@)
	$(BIN)/feat-topk -m $(MODEL_DIR) --clt $(OUT)/clt -o $(OUT)/feat-parts/part$* --shard $*/$(FEAT_SHARDS) \
	    --ctx $(FEAT_CTX) --batch $(FEAT_BATCH) --k $(FEAT_K) $(FEAT_FLAGS) $(TOKS)
$(OUT)/features/features.bin: $(FEAT_PARTS)
	rm -rf $(dir $@)
	$(BIN)/feat-topk merge -o $(OUT)/features $(dir $^)

# The circuit behind each prompt's next token.
$(OUT)/graphs/%.json: $(PROMPTS)/%.txt $(OUT)/clt/done
	@mkdir -p $(dir $@)
	$(BIN)/attrib -m $(MODEL_DIR) --clt $(OUT)/clt --slug $* $(ATTRIB_FLAGS) -o $@ $<
# ... and its features, one LAYER:INDEX a line (what the pages show, what gets explained)
$(OUT)/graphs/features.txt: $(GRAPH_JSON)
	python3 $(PIPELINES)/graph_features.py $^ > $@.tmp && mv $@.tmp $@

# Feature files for graph2html's panel (circuit-tracer's feature JSON plus feat-topk's fields).
ifeq ($(EXPORT),all)
$(OUT)/features-json/.done: $(OUT)/features/features.bin
	rm -rf $(dir $@)
	$(BIN)/feat-topk export $(OUT)/features -o $(OUT)/features-json
	touch $@
else
$(OUT)/features-json/.done: $(OUT)/features/features.bin $(OUT)/graphs/features.txt
	rm -rf $(dir $@) && mkdir -p $(dir $@)
	while IFS=: read -r l f; do \
	  $(BIN)/feat-topk show $(OUT)/features $$l:$$f --json > $(dir $@)$${l}_$$f.json || exit 1; \
	done < $(OUT)/graphs/features.txt
	touch $@
endif

# A label per feature, scored on the store's held-out windows; every model answer cached.
$(OUT)/explanations.jsonl: $(OUT)/features/features.bin $(INTERP_DEPS)
	spec="$(INTERP_SPEC)"; if [ -z "$$spec" ]; then : > $@; else \
	  $(BIN)/interp-prompt $(OUT)/features -o $@ --features "$$spec" $(EXPLAINER_ARGS) \
	      --cache $(OUT)/interp-cache $(INTERP_FLAGS); fi

$(OUT)/graphs/%.html: $(OUT)/graphs/%.json $(OUT)/features-json/.done $(OUT)/explanations.jsonl
	$(BIN)/graph2html $< --features $(OUT)/features-json --explanations $(OUT)/explanations.jsonl -o $@

eval: $(OUT)/tokens/part0.tok
	$(BIN)/fwd-acts eval -m $(MODEL_DIR) --ctx $(CTX) --batch $(BATCH) $<
