# cltkit build. `make` builds every tool into bin/ (CPU backend always; the CUDA backend when
# nvcc is found). `make test` runs the CPU tests; `make test-gpu` the GPU-vs-CPU comparisons.
# Opt-outs: NO_CUDA=1, NO_MPI=1, NO_BLAS=1.  CUDA_ARCH=sm_90 picks the GPU architecture.

CC       ?= gcc
CFLAGS   ?= -O2 -g
# The library's layers, bottom up (ARCHITECTURE.md, "Layers"): a file may include headers of its own
# layer and the layers before it in this list, never after (tests/test_layers.sh asks `make print-layers`
# and checks every #include). Each folder is on the include path, so an include names the header alone
# ("err.h", "model.h"): header names are unique across the folders (the same test checks that too).
LAYER_DIRS := libcommon/base kernels $(addprefix libcommon/,io tok model clt feat interp attrib)
INCLUDES := $(addprefix -I,$(LAYER_DIRS))
# The flags the code needs (language, warnings, include paths, dependency files) live apart from
# CFLAGS, the user's optimisation/debug choice, and are appended with `override` so that
# `make CFLAGS=-O1` (or any CFLAGS on the command line) keeps them.
REQUIRED_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread $(INCLUDES) -MMD -MP
override CFLAGS += $(REQUIRED_CFLAGS)
LDLIBS   := -lzstd -ljansson -lm -pthread
NVCC     ?= nvcc
CUDA_ARCH ?= sm_90
NVCCFLAGS := -O2 -std=c++17 -MMD -MP -arch=$(CUDA_ARCH) $(INCLUDES) -Xcompiler -Wall,-Wextra,-Werror

BUILD := build
BIN   := bin

# ---- optional dependencies, each announced on one line -------------------------------------
NVCC_PATH := $(if $(NO_CUDA),,$(shell command -v $(NVCC) 2>/dev/null))
ifneq ($(NVCC_PATH),)
  CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC_PATH))
  USE_CUDA := 1
  $(info ✓ CUDA   $(NVCC_PATH) (arch $(CUDA_ARCH)))
  CUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -lcudart -lcublas
  ifneq ($(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h),)
    USE_NCCL := 1
    NVCCFLAGS += -DUSE_NCCL
    CUDA_LDLIBS += -lnccl
    $(info ✓ NCCL   found)
  else
    $(info ✗ NCCL   not found (multi-GPU disabled))
  endif
else
  $(info ✗ CUDA   nvcc not found$(if $(NO_CUDA), (NO_CUDA=1)) — CPU backend only)
  $(info ✗ NCCL   needs CUDA)
endif

MPICC_PATH := $(if $(NO_MPI),,$(shell command -v mpicc 2>/dev/null))
ifneq ($(MPICC_PATH),)
  USE_MPI := 1
  MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
  MPI_LDLIBS := $(shell mpicc --showme:link 2>/dev/null)
  $(info ✓ MPI    $(MPICC_PATH))
else
  $(info ✗ MPI    mpicc not found (CPU collectives disabled))
endif

BLAS_CFLAGS := $(if $(NO_BLAS),,$(shell pkg-config --cflags openblas 2>/dev/null))
BLAS_LDLIBS := $(if $(NO_BLAS),,$(shell pkg-config --libs openblas 2>/dev/null))
ifneq ($(BLAS_LDLIBS),)
  USE_BLAS := 1
  $(info ✓ OpenBLAS $(BLAS_LDLIBS))
else
  $(info ✗ OpenBLAS not found (plain C GEMM))
endif

ifneq ($(USE_BLAS),)
  override CFLAGS += -DUSE_BLAS $(BLAS_CFLAGS)
  # -u cpu_level: libcommon/base/cpu.o (its guard against an OPENBLAS_CORETYPE this CPU cannot run) in
  # every program, whether or not it calls cpu_level itself
  LDLIBS += $(BLAS_LDLIBS) -Wl,-u,cpu_level
endif

# ---- sources ---------------------------------------------------------------------------------
# comm_mpi.c needs mpicc's flags and libmpi: it stays out of libcommon.a (see MPI_TOOLS below).
# Each NAME_stub.c stands in for NAME.cu's entry points in a build without CUDA (so the tools need
# no #ifdef USE_CUDA): it is in libcommon.a only then; where nvcc exists libkernels_cuda.a has the
# real ones. The CUDA twins live beside their CPU code, in kernels/ and in the layer folders.
CUDA_STUBS := $(if $(USE_CUDA),%_stub.c)
COMMON_SRC := $(filter-out libcommon/clt/comm_mpi.c $(CUDA_STUBS),$(wildcard libcommon/*/*.c))
KERNEL_SRC := $(filter-out $(CUDA_STUBS),$(wildcard kernels/*.c))
CUDA_SRC   := $(wildcard kernels/*.cu libcommon/*/*.cu)
TOOL_SRC   := $(wildcard tools/*.c)
TEST_SRC   := $(wildcard tests/test_*.c)
GPU_TEST_SRC := $(wildcard tests/gpu_test_*.c)

COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o) $(KERNEL_SRC:%.c=$(BUILD)/%.o)
# graph2html's viewer (libcommon/attrib/graph_html/viewer.{html,css,js}) compiled in as C arrays
VIEWER_SRC := $(addprefix libcommon/attrib/graph_html/viewer.,html css js)
COMMON_OBJ += $(BUILD)/gen/graph_html_assets.o
CUDA_OBJ   := $(CUDA_SRC:%.cu=$(BUILD)/%.cu.o)
TOOLS      := $(TOOL_SRC:tools/%.c=$(BIN)/%)
TESTS      := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
GPU_TESTS  := $(GPU_TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIBCOMMON  := $(BUILD)/libcommon.a
LIBCUDA    := $(BUILD)/libkernels_cuda.a

.SECONDARY:
.PHONY: all tools tests test check test-gpu test-data fuzz fuzz-smoke sanitize bench bench-bins clean deps demo \
    install print-layers
all: tools tests $(if $(USE_CUDA),$(LIBCUDA) $(GPU_TESTS))
tools: $(TOOLS)
tests: $(TESTS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The activation (de)quantisers are the inner loop of every shard reader: -O3 vectorises them
# (int8/int4 -> fp32 conversions, byte-plane gathers), which -O2's cheap cost model skips.
$(BUILD)/kernels/actquant.o: override CFLAGS += -O3
# The same for the CLT trainer's sparse decoder rows (dot products and axpys of (L−l)·d floats).
$(BUILD)/libcommon/clt/clt.o: override CFLAGS += -O3

$(BUILD)/gen/graph_html_assets.c: $(VIEWER_SRC) scripts/embed.sh
	@mkdir -p $(dir $@)
	bash scripts/embed.sh $@ $(VIEWER_SRC)
$(BUILD)/gen/graph_html_assets.o: $(BUILD)/gen/graph_html_assets.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(LIBCOMMON): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(LIBCUDA): $(CUDA_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

# (the archive last: a tool's own parts, added as prerequisites below, come after it in $^)
$(BIN)/%: $(BUILD)/tools/%.o $(LIBCOMMON)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(filter %.o,$^) $(LIBCOMMON) -o $@ $(LDLIBS)

# A tool's own CLI files beside its main (tools/NAME/*.c: code that parses options or exits, which
# does not belong in libcommon) are linked into bin/NAME alone.
TOOL_PARTS_clt-fit := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/clt-fit/*.c))
$(BIN)/clt-fit: $(TOOL_PARTS_clt-fit)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(LIBCOMMON)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# GPU comparison tests link the CUDA twins; they build wherever nvcc exists and run on a GPU.
$(BUILD)/tests/gpu_test_%: $(BUILD)/tests/gpu_test_%.o $(LIBCUDA) $(LIBCOMMON)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) $(CUDA_LDLIBS) -lstdc++

test: all
	@bash tests/run.sh $(TESTS)

# The test data that is not in the repository (stories260K, the Llama 3 / Gemma 3 / GPT-2
# tokenizers), from their public homes into $(or $(CLTKIT_SHARED),~/.cache/cltkit/shared), for a
# clone without ../shared; the tests that need it print SKIP until then.
test-data: tools
	bash scripts/fetch_test_data.sh

test-gpu: all
	@if [ -z "$(USE_CUDA)" ]; then echo "test-gpu: nvcc not found, nothing to run"; exit 1; fi
	@CLTKIT_GPU_ONLY=1 bash tests/run.sh $(GPU_TESTS)

# libFuzzer targets (clang): `make fuzz` builds build/fuzz/*; see fuzz/README.md. Every UBSan
# finding aborts (-fno-sanitize-recover), so it counts as a crash like an ASan report.
# The library is compiled once (instrumented, fuzzer-no-link) and linked into every target.
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_OBJ := $(COMMON_SRC:%.c=$(BUILD)/fuzzobj/%.o) $(KERNEL_SRC:%.c=$(BUILD)/fuzzobj/%.o) \
    $(BUILD)/fuzzobj/gen/graph_html_assets.o
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-sanitize-recover=all $(INCLUDES) -MMD -MP
fuzz: $(FUZZ_BIN)
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@
$(BUILD)/fuzzobj/gen/graph_html_assets.o: $(BUILD)/gen/graph_html_assets.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@
# (every library object is linked, so libcurl too; $^ also holds the headers -MMD listed)
$(BUILD)/fuzz/%: fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined $(filter %.c %.o,$^) -o $@ $(LDLIBS) -lcurl
# Each target for FUZZ_SECONDS (default 20) from its seeds: what CI can afford on every change.
fuzz-smoke: fuzz
	bash fuzz/smoke.sh $(or $(FUZZ_SECONDS),20) $(BUILD)/fuzz

# The whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer into build-san/
# and bin-san/: the first report stops the process (halt_on_error, -fno-sanitize-recover) and
# fails the run. Reports go to build-san/logs (not stderr, which the CLI tests check line by line);
# leaks are listed but do not fail: error exits (fatal) free nothing by design.
# clang where there is one: its UBSan also checks pointer arithmetic (overflow, NULL + 0), which gcc's
# does not.
SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_CC := $(if $(shell command -v clang 2>/dev/null),clang,$(CC))
sanitize:
	$(MAKE) NO_CUDA=1 NO_MPI=1 BUILD=build-san BIN=bin-san CC=$(SAN_CC) CFLAGS="$(SAN_FLAGS)" tools tests
	bash tests/sanitize.sh build-san bin-san

deps:
	bash scripts/setup.sh

# What CI runs (README): install the Debian packages, build everything, run the CPU tests.
check: deps
	@bash scripts/fetch_smollm2.sh >/dev/null || echo "SmolLM2 could not be fetched: its tests will print SKIP"
	@$(MAKE) --no-print-directory test

# The main job on the embedded default model (pipelines/demo.mk).
demo: deps
	$(MAKE) tools
	$(MAKE) -f pipelines/demo.mk

# Benchmark programs: bench/*.c -> build/bench/* (run by the bench scripts).
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
bench-bins: $(BENCH_BIN)
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIBCOMMON)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# bench_forward also times the GPU forward, bench_clt_gpu the GPU CLT training step, where nvcc
# exists: compiled with -DUSE_CUDA, linked against the CUDA kernels (bench/gpu_bench.sh runs them
# on the GPU machine).
CUDA_BENCH := bench_forward bench_clt_gpu
ifneq ($(USE_CUDA),)
$(CUDA_BENCH:%=$(BUILD)/bench/%.o): override CFLAGS += -DUSE_CUDA
$(CUDA_BENCH:%=$(BUILD)/bench/%): $(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIBCUDA) $(LIBCOMMON)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) $(CUDA_LDLIBS) -lstdc++
endif

# Tools with a CUDA path (CUDA_TOOLS: --device cuda) are linked with the CUDA kernels where nvcc
# exists, else with libcommon.a's stubs (*_stub.o); tools that shard across processes
# (MPI_TOOLS) are compiled with -DUSE_MPI and the MPI backend of libcommon/clt/comm.h where mpicc
# exists. Elsewhere they build without.
CUDA_TOOLS := fwd-acts clt-fit feat-topk attrib
MPI_TOOLS  := clt-fit
CUDA_ON := $(if $(USE_CUDA),$(CUDA_TOOLS))
MPI_ON  := $(if $(USE_MPI),$(MPI_TOOLS))
$(MPI_ON:%=$(BUILD)/tools/%.o): override CFLAGS += -DUSE_MPI
$(BUILD)/libcommon/clt/comm_mpi.o: override CFLAGS += $(MPI_CFLAGS)
ifneq ($(CUDA_ON)$(MPI_ON),)
$(patsubst %,$(BIN)/%,$(sort $(CUDA_ON) $(MPI_ON))): $(BIN)/%: $(BUILD)/tools/%.o \
    $(if $(MPI_ON),$(BUILD)/libcommon/clt/comm_mpi.o) $(if $(CUDA_ON),$(LIBCUDA)) $(LIBCOMMON)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $< $(filter $(BUILD)/tools/$*/%,$^) $(if $(filter $*,$(MPI_ON)),$(BUILD)/libcommon/clt/comm_mpi.o) \
	    $(if $(filter $*,$(CUDA_ON)),$(LIBCUDA)) $(LIBCOMMON) -o $@ $(LDLIBS) \
	    $(if $(filter $*,$(MPI_ON)),$(MPI_LDLIBS)) $(if $(filter $*,$(CUDA_ON)),$(CUDA_LDLIBS) -lstdc++)
endif

# interp-prompt's http: explainer (libcommon/interp/explainer.c) is the only user of libcurl.
$(BIN)/interp-prompt: LDLIBS += -lcurl

bench: tools bench-bins
	bash bench/bench_tok.sh
	bash bench/bench_fwd.sh

# make install PREFIX=DIR (default /usr/local; DESTDIR for packaging): the tools into DIR/bin, the
# Python reader into DIR/share/cltkit/python (on PYTHONPATH: `import cltkit_io`). tests/test_install.sh
PREFIX ?= /usr/local
install: tools
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/cltkit/python
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 python/cltkit_io.py $(DESTDIR)$(PREFIX)/share/cltkit/python/

clean:
	rm -rf $(BUILD) $(BIN)

print-layers:
	@echo "layers: $(LAYER_DIRS)"

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
