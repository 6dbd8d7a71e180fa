# The demo pipeline on the embedded default model, stories260K (llama2.c, MIT).
#
#   make -f pipelines/demo.mk            # uses ../shared/models/stories260K, else downloads it
#   make -f pipelines/demo.mk STORIES_DIR=/path/to/stories260K
#
# Steps: llama2.c checkpoint -> HF model directory (safetensors + config.json + tokenizer.json)
#        -> token shard -> activation shard (every layer's MLP input and output) + loss + a story.
# (clt-fit, feat-topk, attrib and graph2html join this pipeline as they land.)

ROOT        := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
OUT         ?= $(ROOT)/demo-out
STORIES_DIR ?= $(firstword $(wildcard $(ROOT)/../shared/models/stories260K) $(HOME)/.cache/cltkit/stories260K)
STORIES_URL ?= https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K
BIN         := $(ROOT)/bin
TEXT        ?= $(ROOT)/tests/data/demo_stories.jsonl
CTX         ?= 32

STORIES_SHA256 := b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696
TOK512_SHA256  := fec6aa960a1fb3ebf71d26f9b0e486afcbd76c34cf0fbfb93e21126ca9f778d3
CACHE          := $(HOME)/.cache/cltkit/stories260K

.PHONY: demo build clean
demo: $(OUT)/stories.acts
	@echo "== model";        cat $(OUT)/model/config.json | tr -d '\n' | cut -c1-200; echo
	@echo "== ids of 'Once upon a time'"; $(BIN)/tok ids -t $(OUT)/model/tokenizer.json --add-special --tokens "Once upon a time"
	@echo "== loss on the demo text"; $(BIN)/fwd-acts -m $(OUT)/model --eval --ctx $(CTX) $(OUT)/stories.tok
	@echo "== activation shard"; $(BIN)/fwd-acts --info $(OUT)/stories.acts | head -22
	@echo "== a greedy story"; $(BIN)/tok decode -t $(OUT)/model/tokenizer.json --skip-special \
	    --ids "1 $$($(BIN)/fwd-acts -m $(OUT)/model --generate 60 | tr '\n' ' ')"

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
	$(BIN)/llama2c-convert $< --tokenizer $(STORIES_DIR)/tok512.model -o $(OUT)/model

$(OUT)/stories.tok: $(OUT)/model/config.json $(TEXT)
	$(BIN)/tok encode -t $(OUT)/model/tokenizer.json -o $@ $(TEXT)

$(OUT)/stories.acts: $(OUT)/stories.tok
	$(BIN)/fwd-acts -m $(OUT)/model -o $@ --ctx $(CTX) --dtype bf16 $<

clean:
	rm -rf $(OUT)
