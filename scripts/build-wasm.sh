#!/bin/sh
# Builds the WebAssembly runtime of `convnet export --format web` (OUT) from the
# C sources given, with clang --target=wasm32-wasi, lld's wasm-ld and Debian's
# wasi-libc. Without that toolchain it writes an empty OUT and says so, and the
# build goes on: `convnet export --format web` then prints the apt-get line.
# With the toolchain, a compile error fails the build.
# Usage: build-wasm.sh OUT SOURCE... (WASM_CC, default clang; CFLAGS for wasm in WASM_CFLAGS)
set -e
out=$1; shift
cc=${WASM_CC:-clang}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/probe.c" <<'PROBE'
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
__attribute__((export_name("probe"))) int probe(double x) {
    char buf[32];
    void *p = malloc(8);
    free(p);
    return snprintf(buf, sizeof buf, "%g", exp(x));
}
PROBE
if ! "$cc" --target=wasm32-wasi -O2 -nostartfiles -Wl,--no-entry -o "$tmp/probe.wasm" "$tmp/probe.c" 2> "$tmp/err"; then
    echo "build-wasm: no WebAssembly toolchain ($(head -1 "$tmp/err")); 'convnet export --format web' is" \
         "disabled. To build it: apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32" >&2
    : > "$out"
    exit 0
fi
"$cc" --target=wasm32-wasi -O2 -std=c11 -Wall -Wextra -Werror -Iinclude -Isrc $WASM_CFLAGS \
    -nostartfiles -Wl,--no-entry -Wl,--strip-all -o "$tmp/out.wasm" "$@"
mv "$tmp/out.wasm" "$out"
