#!/bin/sh
# Decoding 70,000 MNIST PNGs (60,000 train + 10,000 test, ImageFolder layout):
# convnet's image-folder loader (bench/load_folder.c; parallel libpng decode;
# cold = no cache, warm = its decoded-image cache) against torchvision's
# ImageFolder + PIL (bench/decode_bench.py; in-process, and a DataLoader with
# THREADS worker processes), in the same run. Run from the repository root:
#
#     sh bench/run.sh decode          (or: sh bench/decode_bench.sh)
#
# Environment: DATA (../shared/data/mnist, the IDX files), PNG_DIR (where the
# PNG folder is written once; default /tmp/convnet-mnist-png), THREADS (2),
# RUNS (3; the median is reported).
set -e
DATA=${DATA:-../shared/data/mnist}
PNG_DIR=${PNG_DIR:-/tmp/convnet-mnist-png}
THREADS=${THREADS:-2}
RUNS=${RUNS:-3}
BUILD=${BUILD:-build}
PY=bench/torch_python.sh   # /usr/bin/python3 with glibc keeping freed memory

if [ ! -f "$PNG_DIR/.complete" ]; then
    echo "writing 70,000 PNGs to $PNG_DIR (once) ..." >&2
    "$PY" - "$DATA" "$PNG_DIR" <<'PY'
import gzip, os, sys
from PIL import Image
data, out = sys.argv[1], sys.argv[2]
def read(name, header):
    p = os.path.join(data, name)
    raw = open(p, "rb").read() if os.path.exists(p) else gzip.open(p + ".gz").read()
    return raw[header:]
for split, prefix in (("train", "train"), ("test", "t10k")):
    images, labels = read(f"{prefix}-images-idx3-ubyte", 16), read(f"{prefix}-labels-idx1-ubyte", 8)
    for k in range(10): os.makedirs(f"{out}/{split}/{k}", exist_ok=True)
    for i, label in enumerate(labels):
        Image.frombytes("L", (28, 28), images[i * 784:(i + 1) * 784]).save(f"{out}/{split}/{label}/{i:05d}.png")
open(f"{out}/.complete", "w").write("ok\n")
PY
fi

make --no-print-directory "$BUILD/libconvnet.a" >&2
mkdir -p "$BUILD/bench"
${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -fopenmp -Iinclude -Isrc bench/load_folder.c \
    -o "$BUILD/bench/load_folder" "$BUILD/libconvnet.a" \
    $(pkg-config --libs zlib libcurl libcrypto libcjson cairo libpng libprotobuf-c libjpeg libarchive) -lm

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for r in $(seq "$RUNS"); do
    echo "run $r/$RUNS ..." >&2
    "$BUILD/bench/load_folder" "$PNG_DIR" "$THREADS" cold >> "$TMP/cold"
    "$BUILD/bench/load_folder" "$PNG_DIR" "$THREADS" >> "$TMP/warm"
    "$PY" bench/decode_bench.py "$PNG_DIR" 0 >> "$TMP/tv0"
    "$PY" bench/decode_bench.py "$PNG_DIR" "$THREADS" >> "$TMP/tvN"
done
median() { cut -f4 "$1" | sort -n | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'; }
cold=$(median "$TMP/cold"); warm=$(median "$TMP/warm"); tv0=$(median "$TMP/tv0"); tvn=$(median "$TMP/tvN")
echo "| run | images | seconds (median of $RUNS) |"
echo "|---|---:|---:|"
echo "| convnet folder loader, $THREADS threads, no cache (decode every PNG) | 70000 | $cold |"
echo "| convnet folder loader, warm cache | 70000 | $warm |"
echo "| torchvision ImageFolder + PIL, in-process | 70000 | $tv0 |"
echo "| torchvision ImageFolder + PIL, DataLoader with $THREADS workers | 70000 | $tvn |"
echo "$cold $tv0 $tvn" | awk '{ b = $2 < $3 ? $2 : $3; printf "convnet decodes %.1fx faster than the faster torchvision variant\n", b / $1 }'
