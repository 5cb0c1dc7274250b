#!/bin/sh
# Builds examples/*.c against the convnet installed in $CHECK_PREFIX with
# `pkg-config --cflags --libs convnet` alone, runs them, and ends with the
# harness line "TESTS passed failed" (tests/run.sh). `make check` installs
# there first. Data: $EXAMPLES_DATA (an MNIST directory; the train example
# runs one epoch on 2,000 images of it).
: "${CHECK_PREFIX:?set CHECK_PREFIX to an install prefix (make check does)}"
CC=${CC:-cc}
out=${BUILD:-build}/examples
rm -rf "$out" && mkdir -p "$out"
export PKG_CONFIG_PATH="$CHECK_PREFIX/lib/pkgconfig"
export LD_LIBRARY_PATH="$CHECK_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
passed=0 failed=0

# check NAME COMMAND...: runs COMMAND, which must succeed; its output goes to $out/NAME.log.
check() {
    name=$1; shift
    if "$@" > "$out/$name.log" 2>&1; then passed=$((passed + 1))
    else failed=$((failed + 1)); echo "FAIL examples: $name: $*"; sed 's/^/    /' "$out/$name.log" | tail -20; fi
}
# expect NAME TEXT: the log of NAME contains TEXT.
expect() {
    if grep -q -- "$2" "$out/$1.log"; then passed=$((passed + 1))
    else failed=$((failed + 1)); echo "FAIL examples: $1: output lacks '$2'"; sed 's/^/    /' "$out/$1.log" | tail -20; fi
}

flags=$(pkg-config --cflags --libs convnet) || { echo "FAIL examples: pkg-config knows no convnet in $PKG_CONFIG_PATH"; echo "TESTS 0 1"; exit 1; }
for src in examples/*.c; do
    name=$(basename "$src" .c)
    check "build-$name" $CC -std=c11 -Wall -Wextra -Werror $EXAMPLES_CFLAGS "$src" -o "$out/$name" $flags
done
check linked-shared sh -c "ldd '$out/classify' | grep -q 'libconvnet.so.0 => $CHECK_PREFIX/lib/'"
# The shared library exports the header's functions and nothing else.
public=$(sed -n 's/^[a-zA-Z].*[ *]\(cn_[a-z0-9_]*\)(.*/\1/p' "$CHECK_PREFIX/include/convnet.h" | sort)
exported=$(nm -D --defined-only "$CHECK_PREFIX/lib/libconvnet.so" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort)
check exports test "$public" = "$exported"

if [ -z "$EXAMPLES_DATA" ] || [ ! -d "$EXAMPLES_DATA" ]; then
    echo "FAIL examples: no MNIST directory: set EXAMPLES_DATA=DIR (make check EXAMPLES_DATA=...)"
    failed=$((failed + 1))
else
    check train "$out/train_mnist" "$EXAMPLES_DATA" "$out/run" 1 2000
    expect train "epoch 1/1: train loss"
    expect train "saved $out/run/model.safetensors (mnist, 10 classes)"
    check classify "$out/classify" "$out/run/model.safetensors" tests/fixtures/images/digit7_inverted_scaled.png \
        tests/fixtures/images/digit0_original.pgm
    expect classify "digit7_inverted_scaled.png: "
    check evaluate "$out/evaluate" "$out/run/model.safetensors" "$EXAMPLES_DATA" "$out/model.onnx"
    expect evaluate "accuracy [0-9]*/10000"
    check onnx-back "$CHECK_PREFIX/bin/convnet" eval --weights "$out/model.onnx" --data "$EXAMPLES_DATA" --no-download
fi
echo "TESTS $passed $failed"
[ "$failed" -eq 0 ]
