#!/bin/sh
# make check: installs convnet into a scratch prefix (make install PREFIX=...), builds each
# examples/*.c against it with `pkg-config --cflags --libs convnet` alone, and runs them:
# train_mnist (1 epoch on 2,000 MNIST images) -> evaluate and classify its checkpoint.
# Also checks what was installed and that libconvnet.so exports convnet.h's functions, no others.
# Prints "TESTS passed failed" as the C tests do (tests/run.sh adds them up).
BUILD=${BUILD:-build}
root=$(pwd)
tmp="$root/$BUILD/tmp/examples"
prefix="$tmp/prefix"
passed=0; failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "  FAIL examples.sh: $*"; failed=$((failed + 1)); }
finish() { echo "TESTS $passed $failed"; [ "$failed" -eq 0 ]; exit $?; }

if [ "${SANITIZE:-0}" = 1 ] || [ "$BUILD" = build-san ]; then
    echo "SKIP examples.sh: the examples link the installed shared library, not the sanitizer build"
    finish
fi
rm -rf "$tmp" && mkdir -p "$tmp"
if ! make -s --no-print-directory install BUILD="$BUILD" PREFIX="$prefix" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"; fail "make install PREFIX=$prefix"; finish
fi
for f in bin/convnet include/convnet.h lib/libconvnet.a lib/libconvnet.so lib/libconvnet.so.1 lib/pkgconfig/convnet.pc; do
    [ -e "$prefix/$f" ] && ok || fail "not installed: $f"
done
soname=$(objdump -p "$prefix/lib/libconvnet.so" 2>/dev/null | awk '/SONAME/ {print $2}')
[ "$soname" = libconvnet.so.1 ] && ok || fail "soname '$soname', expected libconvnet.so.1"
# exported functions = those declared in convnet.h
nm -D --defined-only "$prefix/lib/libconvnet.so" | awk '$2 == "T" {sub(/@.*/, "", $3); print $3}' | sort -u >"$tmp/exported"
sed -n 's/.*[^a-z_0-9]\(cn_[a-z0-9_]*\)(.*/\1/p' include/convnet.h | sort -u >"$tmp/declared"
extra=$(comm -23 "$tmp/exported" "$tmp/declared" | tr '\n' ' ')
[ -z "$extra" ] && ok || fail "libconvnet.so exports functions convnet.h does not declare: $extra"
missing=$(comm -13 "$tmp/exported" "$tmp/declared" | tr '\n' ' ')
[ -z "$missing" ] && ok || fail "convnet.h declares functions libconvnet.so does not export: $missing"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
for src in examples/*.c; do
    name=$(basename "$src" .c)
    # shellcheck disable=SC2046
    if cc -std=c11 -Wall -Wextra -Werror "$src" $(pkg-config --cflags --libs convnet) -o "$tmp/$name" 2>"$tmp/$name.log"; then ok
    else cat "$tmp/$name.log"; fail "$src does not build against the installed library"; fi
done
export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ldd "$tmp/classify" 2>/dev/null | grep -q "$prefix/lib/libconvnet.so.1" && ok || fail "classify is not linked to the installed libconvnet.so.1"

mnist="$root/../shared/data/mnist"
if [ ! -e "$mnist/train-images-idx3-ubyte.gz" ] && [ ! -e "$mnist/train-images-idx3-ubyte" ]; then
    echo "SKIP examples.sh: running the examples needs MNIST in $mnist"
    finish
fi
if "$tmp/train_mnist" "$mnist" "$tmp/run" 1 2000 >"$tmp/train.out" 2>&1 && [ -f "$tmp/run/best.safetensors" ]; then ok
else cat "$tmp/train.out"; fail "train_mnist"; fi
grep -q '^Test set: Average loss: .*, Accuracy: [0-9]*/1000 ' "$tmp/train.out" && ok || fail "train_mnist printed no 'Test set:' line"
if "$tmp/evaluate" "$tmp/run/best.safetensors" "$mnist" >"$tmp/eval.out" 2>&1; then ok
else cat "$tmp/eval.out"; fail "evaluate"; fi
# the example's accuracy is the CLI's (same library, same test set)
"$prefix/bin/convnet" eval --weights "$tmp/run/best.safetensors" --data "$mnist" --threads 2 >"$tmp/cli_eval.out" 2>&1
want=$(sed -n 's/^Test set: .*Accuracy: \([0-9]*\/[0-9]*\) .*/\1/p' "$tmp/cli_eval.out")
got=$(sed -n 's/.*: \([0-9]*\/[0-9]*\) correct.*/\1/p' "$tmp/eval.out")
[ -n "$want" ] && [ "$want" = "$got" ] && ok || fail "evaluate says '$got', convnet eval '$want'"
img="tests/fixtures/images/digit3_inverted_scaled.png"
if "$tmp/classify" "$tmp/run/best.safetensors" "$img" >"$tmp/classify.out" 2>&1 &&
   grep -q "^$img: [0-9] (p=0\.[0-9]*), then [0-9] (p=" "$tmp/classify.out"; then ok
else cat "$tmp/classify.out"; fail "classify"; fi
# classify's class is predict's
cli=$("$prefix/bin/convnet" predict --weights "$tmp/run/best.safetensors" "$img" | sed -n 's/^[^:]*: \([0-9]*\) .*/\1/p')
ex=$(sed -n 's/^[^:]*: \([0-9]*\) .*/\1/p' "$tmp/classify.out")
[ -n "$cli" ] && [ "$cli" = "$ex" ] && ok || fail "classify says '$ex', convnet predict '$cli'"
"$tmp/classify" "$tmp/run/best.safetensors" "$tmp/missing.png" >"$tmp/missing.out" 2>&1
[ $? -eq 1 ] && grep -q "^classify: $tmp/missing.png: " "$tmp/missing.out" && ok || fail "classify of a missing file: $(cat "$tmp/missing.out")"
finish
