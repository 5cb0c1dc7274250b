#!/bin/sh
# Installs the Debian packages convnet needs to build, test and benchmark.
# As root it runs apt-get; otherwise it prints the exact command to run (one line)
# and fails. Modes: build (compile and train; clang, lld and wasi-libc build the
# WebAssembly runtime that `convnet export --format web` embeds), test (make check, make fuzz),
# bench|all (make bench, bench/accuracy.sh, scripts/gen-fixtures.sh: PyTorch too).
set -e
BUILD_PKGS="gcc make pkg-config zlib1g-dev libcurl4-openssl-dev libssl-dev libcjson-dev \
libcairo2-dev libpng-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev libjpeg62-turbo-dev libarchive-dev libopenmpi-dev openmpi-bin \
clang lld wasi-libc libclang-rt-dev-wasm32"
TEST_PKGS="libclang-rt-14-dev python3 python3-numpy python3-onnx dataset-fashion-mnist tmux \
gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm nodejs npm chromium"
BENCH_PKGS="python3-torch python3-torchvision time"
case "${1:-test}" in
    build) PKGS="$BUILD_PKGS" ;;
    test)  PKGS="$BUILD_PKGS $TEST_PKGS" ;;
    all|bench) PKGS="$BUILD_PKGS $TEST_PKGS $BENCH_PKGS" ;;
    *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac
missing=""
# A package counts as present when installed or provided by an installed one
# (e.g. npm by a nodejs package that bundles it).
provided=$(dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null | sed -n 's/^install ok installed|//p' | tr ',' '\n' |
           sed 's/^ *//; s/ .*//' | sort -u)
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        printf '%s\n' "$provided" | grep -qx "$p" || missing="$missing $p"
done
if [ -z "$missing" ]; then echo "install-deps: all packages present"; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages; as root, run: apt-get update && apt-get install -y$missing" >&2
    exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing
