# The demo pipeline on the embedded default model, stories260K (llama2.c, MIT).
#
#   make -f pipelines/demo.mk            # uses ../shared/models/stories260K, else downloads it
#   make -f pipelines/demo.mk STORIES_DIR=/path/to/stories260K
#
# Steps so far: SentencePiece tok512.model -> tokenizer.json -> token shard -> decoded text.
# (fwd-acts, clt-fit, attrib and graph2html join this pipeline as they land.)

ROOT        := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
OUT         ?= $(ROOT)/demo-out
STORIES_DIR ?= $(firstword $(wildcard $(ROOT)/../shared/models/stories260K) $(HOME)/.cache/cltkit/stories260K)
STORIES_URL ?= https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K
TOK         := $(ROOT)/bin/tok
TEXT        ?= $(ROOT)/tests/data/demo_stories.jsonl

TOK512_SHA256 := fec6aa960a1fb3ebf71d26f9b0e486afcbd76c34cf0fbfb93e21126ca9f778d3

.PHONY: demo build fetch clean
demo: $(OUT)/stories.tok
	@echo "== token shard"; $(TOK) info $(OUT)/stories.tok
	@echo "== ids of 'Once upon a time'"; $(TOK) ids -t $(OUT)/tokenizer.json --add-special --tokens "Once upon a time"
	@echo "== first document decoded back"; $(TOK) decode -t $(OUT)/tokenizer.json --skip-special --jsonl $(OUT)/stories.tok | head -1

build:
	$(MAKE) -C $(ROOT) -s tools

# Downloads tok512.model from the model's public home when no local copy exists (sha256 checked).
fetch: $(STORIES_DIR)/tok512.model
$(HOME)/.cache/cltkit/stories260K/tok512.model:
	mkdir -p $(dir $@)
	curl -fL --retry 3 -o $@.part $(STORIES_URL)/tok512.model
	echo "$(TOK512_SHA256)  $@.part" | sha256sum -c --quiet
	mv $@.part $@

$(OUT)/tokenizer.json: $(STORIES_DIR)/tok512.model | build
	mkdir -p $(OUT)
	$(TOK) convert-spm $< -o $@

$(OUT)/stories.tok: $(OUT)/tokenizer.json $(TEXT) | build
	$(TOK) encode -t $(OUT)/tokenizer.json --add-special -o $@ $(TEXT)

clean:
	rm -rf $(OUT)
