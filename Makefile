# convnet — build with GNU make.  `make` builds build/convnet and build/libconvnet.a;
# `make check` builds and runs every test; `make check SANITIZE=1` does so under ASan+UBSan.
CC      ?= gcc
BUILD   ?= build
SANITIZE ?= 0
WERROR  ?= 1

PKGS    := zlib libcurl libcrypto libcjson cairo libpng libprotobuf-c

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
# -fPIC: the same objects make libconvnet.a and libconvnet.so; -fno-semantic-interposition
# keeps gcc inlining and calling the library's own functions directly, as without -fPIC.
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp -fPIC -fno-semantic-interposition -Iinclude -Isrc -I$(BUILD)/gen $(PKG_CFLAGS)
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

GEN_SRCS := $(BUILD)/gen/onnx.pb-c.c
LIB_SRCS := $(shell find src -name '*.c' | sort)
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(BUILD)/obj/gen/onnx.pb-c.o
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
PRESETS  := $(sort $(wildcard src/presets/*.spec))

.PHONY: all check clean bench fuzz deps train install install-check
all: $(BUILD)/convnet $(BUILD)/$(SO_REAL)

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

# The shared library: soname libconvnet.so.MAJOR, real name with the full version
# (CONVNET_VERSION in include/convnet.h).
VERSION  := $(shell sed -n 's/^\#define CONVNET_VERSION "\(.*\)"/\1/p' include/convnet.h)
SO_MAJOR := $(firstword $(subst ., ,$(VERSION)))
SO_NAME  := libconvnet.so.$(SO_MAJOR)
SO_REAL  := libconvnet.so.$(VERSION)
# It exports the functions of include/convnet.h only (a version script made from it).
$(BUILD)/libconvnet.map: include/convnet.h
	@mkdir -p $(BUILD)
	{ echo 'CONVNET_$(SO_MAJOR) {'; echo '  global:'; \
	  sed -n 's/^[a-zA-Z].*[ *]\(cn_[a-z0-9_]*\)(.*/    \1;/p' $<; echo '  local: *;'; echo '};'; } > $@
$(BUILD)/$(SO_REAL): $(LIB_OBJS) $(BUILD)/libconvnet.map
	$(CC) -shared -Wl,-soname,$(SO_NAME) -Wl,--version-script,$(BUILD)/libconvnet.map -o $@ $(LIB_OBJS) $(LDFLAGS) $(LDLIBS)
	ln -sf $(SO_REAL) $(BUILD)/$(SO_NAME) && ln -sf $(SO_NAME) $(BUILD)/libconvnet.so

# `make install PREFIX=/usr/local DESTDIR=`: the header, both libraries, convnet.pc
# for pkg-config and the convnet binary.
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
install: $(BUILD)/convnet $(BUILD)/libconvnet.a $(BUILD)/$(SO_REAL)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 755 $(BUILD)/convnet $(DESTDIR)$(BINDIR)/convnet
	install -m 644 include/convnet.h $(DESTDIR)$(INCLUDEDIR)/convnet.h
	install -m 644 $(BUILD)/libconvnet.a $(DESTDIR)$(LIBDIR)/libconvnet.a
	install -m 755 $(BUILD)/$(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SO_REAL)
	ln -sf $(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SO_NAME)
	ln -sf $(SO_NAME) $(DESTDIR)$(LIBDIR)/libconvnet.so
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' \
	    -e 's|@REQUIRES@|$(PKGS)|; s|@LIBS@|-lm -fopenmp|' scripts/convnet.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/convnet.pc

# Objects are rebuilt when the compiler flags change (e.g. -fPIC was added).
FLAGS_STAMP := $(BUILD)/.cflags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(CFLAGS) $(KERNEL_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(KERNEL_CFLAGS)' > $@
.PHONY: FORCE
FORCE:

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

# The CLI is a client of the public API: it sees include/ and tools/, not src/.
TOOL_SRCS := $(sort $(wildcard tools/*.c))
$(BUILD)/convnet: $(TOOL_SRCS) $(wildcard tools/*.h) $(BUILD)/libconvnet.a
	$(CC) $(filter-out -Isrc -I$(BUILD)/gen,$(CFLAGS)) -Itools $(TOOL_SRCS) -o $@ $(BUILD)/libconvnet.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/harness.h $(BUILD)/libconvnet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libconvnet.a $(LDFLAGS) $(LDLIBS)

# The examples build against an install in $(BUILD)/check-prefix through pkg-config alone
# (tests/examples.sh); EXAMPLES_DATA is the MNIST directory the train example uses.
EXAMPLES_DATA ?= $(firstword $(wildcard ../shared/data/mnist /work/shared/data/mnist))
CHECK_PREFIX := $(CURDIR)/$(BUILD)/check-prefix
check: deps
	@$(MAKE) --no-print-directory $(BUILD)/convnet $(TEST_BINS)
	@rm -rf $(CHECK_PREFIX) && $(MAKE) --no-print-directory -s install PREFIX=$(CHECK_PREFIX) DESTDIR= > /dev/null
	@BUILD=$(BUILD) CHECK_PREFIX=$(CHECK_PREFIX) EXAMPLES_DATA=$(EXAMPLES_DATA) CC=$(CC) \
	  EXAMPLES_CFLAGS="$(if $(filter 1,$(SANITIZE)),-fsanitize=address -fsanitize=undefined)" \
	  LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0" sh tests/run.sh $(TEST_BINS) tests/examples.sh

bench: $(BUILD)/convnet
	@sh scripts/install-deps.sh bench
	sh bench/run.sh throughput
	sh bench/run.sh epoch

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

$(FUZZ_BUILD)/obj/%.o: %.c | $(BUILD)/gen/onnx.pb-c.h $(BUILD)/gen/presets_data.h deps
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
