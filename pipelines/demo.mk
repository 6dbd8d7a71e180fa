# The demo pipeline on the embedded default model, stories260K (llama2.c, MIT).
#
#   make -f pipelines/demo.mk            # uses ../shared/models/stories260K, else downloads it
#   make -f pipelines/demo.mk STORIES_DIR=/path/to/stories260K
#
# Steps: llama2.c checkpoint -> HF model directory (safetensors + config.json + tokenizer.json)
#        -> a corpus the model writes itself (sampled stories, one process) -> token shard ->
#        activation shards (every layer's MLP input and output; training and held-out contexts)
#        -> a cross-layer transcoder -> its held-out evaluation and training report (HTML)
#        -> every feature's evidence (feat-topk) -> a label per feature (interp-prompt; the
#        model-free explainer by default, EXPLAINER=builtin for SmolLM2) -> the attribution graph
#        of each prompt in pipelines/prompts/demo/ (attrib) -> one HTML page per graph (graph2html).
# Each step's output is a file, so an interrupted run resumes where it stopped. Afterwards the
# model and CLT are the tools' defaults (~/.cache/cltkit/demo -> $(OUT)), so
#   attrib prompt.txt | graph2html > g.html
# works as written.

ROOT        := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
OUT         ?= $(ROOT)/demo-out
STORIES_DIR ?= $(firstword $(wildcard $(ROOT)/../shared/models/stories260K) $(HOME)/.cache/cltkit/stories260K)
STORIES_URL ?= https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K
BIN         := $(ROOT)/bin
CTX         ?= 64
STORIES     ?= 400
CLT_STEPS   ?= 300
EXPLAINER   ?= tokens
PROMPTS     := $(wildcard $(ROOT)/pipelines/prompts/demo/*.txt)
GRAPHS      := $(PROMPTS:$(ROOT)/pipelines/prompts/demo/%.txt=$(OUT)/graphs/%.html)
DEFAULTS    := $(or $(CLTKIT_CACHE),$(HOME)/.cache/cltkit)/demo

STORIES_SHA256 := b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696
TOK512_SHA256  := fec6aa960a1fb3ebf71d26f9b0e486afcbd76c34cf0fbfb93e21126ca9f778d3
CACHE          := $(HOME)/.cache/cltkit/stories260K

.PHONY: demo build clean
.SECONDARY:  # keep the graph JSON files (intermediate to the pages) for attrib users
demo: $(OUT)/clt/eval.json $(OUT)/report.html $(GRAPHS) $(DEFAULTS)
	@echo "== model";        cat $(OUT)/model/config.json | tr -d '\n' | cut -c1-200; echo
	@echo "== ids of 'Once upon a time'"; $(BIN)/tok ids -t $(OUT)/model/tokenizer.json --add-special --tokens "Once upon a time"
	@echo "== loss on the stories"; $(BIN)/fwd-acts eval -m $(OUT)/model --ctx $(CTX) $(OUT)/stories.tok
	@echo "== activation shard"; $(BIN)/fwd-acts info $(OUT)/train.0.acts | head -22
	@echo "== CLT on held-out activations"; cat $(OUT)/clt/eval.json
	@echo "== training report: $(OUT)/report.html"
	@echo "== features: $(OUT)/features (feat-topk show $(OUT)/features 0:0); labels: $(OUT)/explanations.jsonl"
	@echo "== circuits:"; for g in $(GRAPHS); do echo "   $$g"; done
	@echo "== a greedy story"; $(BIN)/tok decode -t $(OUT)/model/tokenizer.json --skip-special \
	    --ids "1 $$($(BIN)/fwd-acts generate -m $(OUT)/model --max-new-tokens 60 | tr '\n' ' ')"

build:
	$(MAKE) -C $(ROOT) -s tools

# The model's public home, when no local copy exists (sha256 checked).
$(CACHE)/stories260K.bin:
	mkdir -p $(dir $@)
	curl -fL --retry 3 -o $@.part $(STORIES_URL)/stories260K.bin
	echo "$(STORIES_SHA256)  $@.part" | sha256sum -c --quiet
	mv $@.part $@
$(CACHE)/tok512.model:
	mkdir -p $(dir $@)
	curl -fL --retry 3 -o $@.part $(STORIES_URL)/tok512.model
	echo "$(TOK512_SHA256)  $@.part" | sha256sum -c --quiet
	mv $@.part $@

$(OUT)/model/config.json: $(STORIES_DIR)/stories260K.bin $(STORIES_DIR)/tok512.model | build
	mkdir -p $(OUT)
	$(BIN)/llama2c-convert $< --tokenizer $(STORIES_DIR)/tok512.model -o $(OUT)/model

# The model writes its own corpus: sampled stories (temperature 0.8, seeds 1..STORIES), one process.
$(OUT)/stories.jsonl: $(OUT)/model/config.json
	$(BIN)/generate -m $(OUT)/model --raw --temperature 0.8 --seed 1 --samples $(STORIES) --max-new-tokens 200 \
	    --jsonl "Once upon a time" > $@.tmp && mv $@.tmp $@

$(OUT)/stories.tok: $(OUT)/stories.jsonl
	$(BIN)/tok encode -t $(OUT)/model/tokenizer.json -o $@ $<

# 9 of every 10 contexts train the CLT, the 10th is held out.
$(OUT)/train.done: $(OUT)/stories.tok
	for i in 0 1 2 3 4 5 6 7 8; do $(BIN)/fwd-acts -m $(OUT)/model -o $(OUT)/train.$$i.acts --ctx $(CTX) --shard $$i/10 --dtype int8 $< || exit 1; done
	touch $@
$(OUT)/heldout.acts: $(OUT)/stories.tok
	$(BIN)/fwd-acts -m $(OUT)/model -o $@ --ctx $(CTX) --shard 9/10 $<

$(OUT)/clt/config.yaml: $(OUT)/train.done
	$(BIN)/clt-fit -o $(OUT)/clt --features 256 --batch 512 --steps $(CLT_STEPS) --lr 2e-3 --lambda 0.5 --log-every 25 \
	    $(OUT)/train.[0-8].acts
$(OUT)/clt/eval.json: $(OUT)/clt/config.yaml $(OUT)/heldout.acts
	$(BIN)/clt-fit eval $(OUT)/clt $(OUT)/heldout.acts -o $@
$(OUT)/report.html: $(OUT)/clt/config.yaml $(OUT)/clt/eval.json  # the report shows eval.json beside the log
	$(BIN)/clt-fit report $(OUT)/clt/metrics.jsonl -o $@

# Every feature's evidence over the stories, exported for the viewer.
$(OUT)/features/features.bin: $(OUT)/clt/config.yaml $(OUT)/stories.tok
	$(BIN)/feat-topk -m $(OUT)/model --clt $(OUT)/clt -o $(OUT)/features --ctx $(CTX) --k 30 $(OUT)/stories.tok
$(OUT)/features-json/.done: $(OUT)/features/features.bin
	$(BIN)/feat-topk export $(OUT)/features -o $(OUT)/features-json && touch $@

# A label per feature, scored on the held-out windows.
$(OUT)/explanations.jsonl: $(OUT)/features/features.bin
	$(BIN)/interp-prompt $(OUT)/features --explainer $(EXPLAINER) -o $@

# The circuit behind each prompt's next token, and its page.
$(OUT)/graphs/%.json: $(ROOT)/pipelines/prompts/demo/%.txt $(OUT)/clt/config.yaml
	@mkdir -p $(dir $@)
	$(BIN)/attrib -m $(OUT)/model --clt $(OUT)/clt --slug $* -o $@ $<
$(OUT)/graphs/%.html: $(OUT)/graphs/%.json $(OUT)/features-json/.done $(OUT)/explanations.jsonl
	$(BIN)/graph2html $< --features $(OUT)/features-json --explanations $(OUT)/explanations.jsonl -o $@

# The tools' defaults (attrib, graph2html without -m/--clt/--features): this demo's outputs.
$(DEFAULTS): $(OUT)/clt/config.yaml
	mkdir -p $(dir $@) && ln -sfn $(OUT) $@

clean:
	rm -rf $(OUT)
