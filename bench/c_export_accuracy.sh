#!/bin/sh
# Test-set accuracy of a checkpoint, of its float32 C export and of its int8 C export.
# usage: bench/c_export_accuracy.sh CHECKPOINT [MNIST_DIR]   (from the repository root)
set -eu
ckpt=$1
data=${2:-../shared/data/mnist}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make -s build/convnet
gzip -dc "$data/t10k-images-idx3-ubyte.gz" > "$work/images"
gzip -dc "$data/t10k-labels-idx1-ubyte.gz" > "$work/labels"
echo "engine:  $(build/convnet eval --weights "$ckpt" --data "$data" | head -1)"
for kind in float32 int8; do
    flag=""; [ "$kind" = int8 ] && flag="--int8"
    build/convnet export --weights "$ckpt" --format c -o "$work/$kind" --data "$data" $flag | sed "s/^/$kind export: /"
    cc -std=c99 -O2 -Wall -Wextra -Werror -pedantic -I"$work/$kind" "$work/$kind/model.c" bench/c_export_driver.c -lm -o "$work/$kind/run"
    echo "$kind C:  $("$work/$kind/run" "$work/images" "$work/labels")"
done
