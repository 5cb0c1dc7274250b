# convnet — build with GNU make.  `make` builds build/convnet, build/libconvnet.a and
# build/libconvnet.so.$(VERSION); `make check` builds and runs every test (and the examples
# against an installed copy, and scripts/check-source-limits.sh: no file over 1,000 lines,
# no function over 150); `make check SANITIZE=1` does so under ASan+UBSan;
# `make install PREFIX=/usr/local DESTDIR=` installs the library, its header, convnet.pc
# and the binary.
CC      ?= gcc
BUILD   ?= build
SANITIZE ?= 0
WERROR  ?= 1

PKGS    := zlib libcurl libcrypto libcjson cairo libpng libprotobuf-c libjpeg libarchive ompi-c

# The packages' compiler and linker flags are read only after the packages are
# installed. $(PKG_MK) is an included makefile that make builds first: its recipe runs
# scripts/install-deps.sh (which installs, or prints the apt-get line and fails before
# anything is compiled), then writes pkg-config's flags; make then restarts and reads
# them. (Calling pkg-config while make parsed the Makefile ran it before the first
# install, and a bare machine compiled without cairo's include directory.)
.DEFAULT_GOAL := all
PKG_MK  := $(BUILD)/pkg.mk
NO_DEPS_GOALS := clean
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
include $(PKG_MK)
endif
$(PKG_MK): Makefile scripts/install-deps.sh
	@sh scripts/install-deps.sh build
	@mkdir -p $(dir $@)
	@cflags=$$(pkg-config --cflags $(PKGS)) && libs=$$(pkg-config --libs $(PKGS)) && \
	  printf 'PKG_CFLAGS := %s\nPKG_LIBS := %s\n' "$$cflags" "$$libs" > $@.tmp && mv $@.tmp $@

CFLAGS  ?= -O2 -g
# -fPIC: the same objects make libconvnet.a and libconvnet.so.
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp -fPIC -Iinclude -Isrc -I$(BUILD)/gen $(PKG_CFLAGS)
ifeq ($(WERROR),1)
CFLAGS  += -Werror
endif
ifeq ($(SANITIZE),1)
BUILD   := build-san
CFLAGS  := $(filter-out -O2 -O3,$(CFLAGS)) -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
LDLIBS  += $(PKG_LIBS) -lm -fopenmp

# Hot loops get -O3 (vectorisation); each kernel picks AVX-512/AVX2/generic at run time.
# (Not under SANITIZE=1: gcc takes many minutes to compile the unrolled AVX-512
# tiles at -O3 with ASan+UBSan instrumentation; -O1 checks the same code.)
KERNEL_CFLAGS := $(if $(filter 1,$(SANITIZE)),,-O3)

# Objects are rebuilt when the compiler flags change (e.g. -fPIC added): $(FLAGS_STAMP)
# holds them and is rewritten only when they differ.
FLAGS_STAMP := $(BUILD)/flags.stamp
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
$(shell mkdir -p $(BUILD) && echo '$(CC) $(CFLAGS) $(KERNEL_CFLAGS)' | cmp -s - $(FLAGS_STAMP) || echo '$(CC) $(CFLAGS) $(KERNEL_CFLAGS)' > $(FLAGS_STAMP))
endif

GEN_SRCS := $(BUILD)/gen/onnx.pb-c.c
WEB_WASM_ONLY := src/io/web_wasm.c
LIB_SRCS := $(filter-out $(WEB_WASM_ONLY),$(shell find src -name '*.c' -not -path 'src/io/export_c_runtime/*' | sort))
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(BUILD)/obj/gen/onnx.pb-c.o
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
PRESETS  := $(sort $(wildcard src/presets/*.spec))

.PHONY: all check clean bench fuzz deps train install
all: $(BUILD)/convnet $(BUILD)/$(SHARED_LIB)

# The library's version: the shared library's soname is libconvnet.so.$(SOVERSION).
VERSION   := 1.0.0
SOVERSION := 1
SHARED_LIB := libconvnet.so.$(VERSION)
PREFIX  ?= /usr/local
DESTDIR ?=

# Installs missing Debian packages (as root) or prints the apt-get command.
deps:
	@sh scripts/install-deps.sh test

# The main job: train the default model (seed001) on MNIST. DATA defaults to the
# shared copy beside the repository when present; otherwise convnet downloads.
# EPOCHS=N shortens the run (the fresh-machine check uses EPOCHS=1).
DATA ?= $(firstword $(wildcard ../shared/data/mnist))
EPOCHS ?=
train: $(BUILD)/convnet
	$(BUILD)/convnet train --model seed001 $(if $(DATA),--data $(DATA)) $(if $(EPOCHS),--epochs $(EPOCHS)) --out runs/seed001

$(BUILD)/libconvnet.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The shared library exports only the functions of convnet.h (a version script made from it).
$(BUILD)/libconvnet.map: include/convnet.h scripts/export-map.sh
	@mkdir -p $(dir $@)
	sh scripts/export-map.sh include/convnet.h > $@.tmp && mv $@.tmp $@
$(BUILD)/$(SHARED_LIB): $(LIB_OBJS) $(BUILD)/libconvnet.map
	$(CC) -shared -Wl,-soname,libconvnet.so.$(SOVERSION) -Wl,--version-script=$(BUILD)/libconvnet.map \
	  -o $@ $(LIB_OBJS) $(LDFLAGS) $(LDLIBS)

# pkg-config's description of the installed library (Libs.private: for static linking).
$(BUILD)/convnet.pc: scripts/convnet.pc.in Makefile $(PKG_MK)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|$(PKG_LIBS) -lm -fopenmp|' $< > $@.tmp && mv $@.tmp $@

install: $(BUILD)/convnet $(BUILD)/libconvnet.a $(BUILD)/$(SHARED_LIB) $(BUILD)/convnet.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/convnet $(DESTDIR)$(PREFIX)/bin/convnet
	install -m 644 include/convnet.h $(DESTDIR)$(PREFIX)/include/convnet.h
	install -m 644 $(BUILD)/libconvnet.a $(DESTDIR)$(PREFIX)/lib/libconvnet.a
	install -m 755 $(BUILD)/$(SHARED_LIB) $(DESTDIR)$(PREFIX)/lib/$(SHARED_LIB)
	ln -sf $(SHARED_LIB) $(DESTDIR)$(PREFIX)/lib/libconvnet.so.$(SOVERSION)
	ln -sf libconvnet.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libconvnet.so
	install -m 644 $(BUILD)/convnet.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/convnet.pc

$(BUILD)/obj/src/kernels/%.o: src/kernels/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(KERNEL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP) | $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# ONNX protobuf bindings, generated at build time from Debian's libonnx-dev onnx.proto.
ONNX_PROTO ?= $(firstword $(wildcard /usr/include/onnx/onnx.proto /usr/include/onnx/onnx-ml.proto))
$(BUILD)/gen/onnx.pb-c.h $(BUILD)/gen/onnx.pb-c.c: $(ONNX_PROTO)
	@mkdir -p $(BUILD)/gen
	@test -n "$(ONNX_PROTO)" || { echo "error: onnx.proto not found; run: bash scripts/install-deps.sh" >&2; exit 1; }
	cp $(ONNX_PROTO) $(BUILD)/gen/onnx.proto
	cd $(BUILD)/gen && protoc-c --c_out=. onnx.proto
$(BUILD)/obj/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Werror -Wextra,$(CFLAGS)) -w -c $< -o $@

# Presets are embedded as C strings generated from src/presets/*.spec.
$(BUILD)/gen/presets_data.h: $(PRESETS) scripts/embed-presets.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-presets.sh $(PRESETS) > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/src/presets/presets.o: $(BUILD)/gen/presets_data.h

# The C export's helpers (src/io/export_c_runtime/*.c) are compiled on their own with
# strict C99 warnings, then embedded as C strings (scripts/embed-c-runtime.sh).
C_RUNTIME := $(sort $(wildcard src/io/export_c_runtime/*.c))
C_RUNTIME_CFLAGS := -std=c99 -O2 -Wall -Wextra -Werror -pedantic
$(BUILD)/gen/export_c_runtime.h: $(C_RUNTIME) scripts/embed-c-runtime.sh
	@mkdir -p $(dir $@)
	for f in $(C_RUNTIME); do $(CC) $(C_RUNTIME_CFLAGS) -c $$f -o $@.o || exit 1; done; rm -f $@.o
	sh scripts/embed-c-runtime.sh $(C_RUNTIME) > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/src/io/export_c_gen.o: $(BUILD)/gen/export_c_runtime.h

# The WebAssembly runtime of `convnet export --format web` (clang --target=wasm32-wasi,
# lld, wasi-libc), embedded with the page template in libconvnet. Without that
# toolchain the runtime is empty and the export says what to install.
WEB_WASM_SRCS := $(WEB_WASM_ONLY) src/io/web_model.c src/io/preprocess.c src/core/error.c src/core/mem.c
# (The toolchain's files are prerequisites too: a runtime built empty before they were
# installed is built again once they are.)
WASM_TOOLCHAIN := $(wildcard /usr/bin/clang /usr/bin/wasm-ld /usr/share/wasi-sysroot)
$(BUILD)/gen/web_runtime.wasm: $(WEB_WASM_SRCS) $(wildcard src/io/*.h src/core/*.h) src/kernels/log_softmax.h include/convnet.h scripts/build-wasm.sh $(WASM_TOOLCHAIN)
	@mkdir -p $(dir $@)
	sh scripts/build-wasm.sh $@ $(WEB_WASM_SRCS)
$(BUILD)/gen/web_assets.h: $(BUILD)/gen/web_runtime.wasm src/io/web_page.html scripts/embed-bytes.sh
	{ sh scripts/embed-bytes.sh cn_web_runtime_wasm $<; sh scripts/embed-bytes.sh cn_web_page_html src/io/web_page.html; } > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/src/io/export_web.o: $(BUILD)/gen/web_assets.h

# The CLI is a client of the public API: include/convnet.h and its own tools/*.h only
# (no -Isrc: an internal header there does not compile).
TOOL_SRCS := $(sort $(wildcard tools/*.c))
TOOL_CFLAGS := $(filter-out -Isrc -I$(BUILD)/gen -fPIC,$(CFLAGS))
$(BUILD)/convnet: $(TOOL_SRCS) $(wildcard tools/*.h) include/convnet.h $(BUILD)/libconvnet.a
	$(CC) $(TOOL_CFLAGS) -Itools $(TOOL_SRCS) -o $@ $(BUILD)/libconvnet.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/harness.h $(BUILD)/libconvnet.a
	@mkdir -p $(dir $@) $(BUILD)/tmp
	$(CC) $(CFLAGS) -DTEST_TMP='"$(CURDIR)/$(BUILD)/tmp"' $< -o $@ $(BUILD)/libconvnet.a $(LDFLAGS) $(LDLIBS)

# test_api is a client of the public header alone, as the CLI is.
$(BUILD)/tests/test_api: tests/test_api.c tests/harness.h include/convnet.h $(BUILD)/libconvnet.a
	@mkdir -p $(dir $@) $(BUILD)/tmp
	$(CC) $(TOOL_CFLAGS) -DTEST_TMP='"$(CURDIR)/$(BUILD)/tmp"' $< -o $@ $(BUILD)/libconvnet.a $(LDFLAGS) $(LDLIBS)

check: deps
	@$(MAKE) --no-print-directory $(BUILD)/convnet $(TEST_BINS)
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0" sh tests/run.sh $(TEST_BINS) tests/examples.sh scripts/check-source-limits.sh

bench: $(BUILD)/convnet
	@sh scripts/install-deps.sh bench
	sh bench/run.sh throughput
	sh bench/run.sh epoch
	sh bench/run.sh int8
	sh bench/run.sh bf16

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- Fuzzing (fuzz/, see fuzz/run.sh) ---------------------------------------
# `make fuzz FUZZ_SECONDS=N` builds every fuzz/fuzz_*.c as a libFuzzer target
# with clang, ASan and UBSan (the library too, into build-fuzz/) and runs each
# for N seconds on its seed corpus fuzz/corpus/<target>/. Findings are saved
# as build-fuzz/crash-* and make the run fail; FUZZ_TARGETS=a,b limits the run.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build-fuzz
FUZZ_CFLAGS  := -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra $(if $(filter 1,$(WERROR)),-Werror) -fopenmp \
                -Iinclude -Isrc -Itools -I$(BUILD)/gen $(PKG_CFLAGS) -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRCS)) $(FUZZ_BUILD)/obj/gen/onnx.pb-c.o
FUZZ_BINS    := $(patsubst fuzz/%.c,$(FUZZ_BUILD)/%,$(sort $(wildcard fuzz/fuzz_*.c)))

$(FUZZ_BUILD)/obj/%.o: %.c | $(BUILD)/gen/onnx.pb-c.h $(BUILD)/gen/presets_data.h $(BUILD)/gen/export_c_runtime.h $(BUILD)/gen/web_assets.h deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
# The kernels select GCC-only code (target pragmas, __builtin_shuffle) and are no
# parser: they are built with gcc, without sanitizers; layers calling them are checked.
$(FUZZ_BUILD)/obj/src/kernels/%.o: src/kernels/%.c | deps
	@mkdir -p $(dir $@)
	gcc $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(FUZZ_CFLAGS)) $(KERNEL_CFLAGS) -MMD -MP -c $< -o $@
$(FUZZ_BUILD)/obj/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(filter-out -Werror -Wextra,$(FUZZ_CFLAGS)) -w -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_BUILD)/libconvnet.a: $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_BUILD)/libconvnet.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< -o $@ $(FUZZ_BUILD)/libconvnet.a $(PKG_LIBS) -lm -fopenmp

fuzz: $(FUZZ_BINS)
	@sh fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
