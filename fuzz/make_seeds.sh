#!/bin/sh
# Regenerates the committed seed corpora fuzz/corpus/<target>/ (run from the
# repository root after `make`; needs python3, the MNIST files in
# ../shared/data/mnist and the fixtures). Seeds are a few small valid files per
# parser (plus a few near-misses), under 50 KB per target.
set -eu
C=fuzz/corpus
DATA=${DATA:-../shared/data/mnist}
rm -rf "$C"
mkdir -p $C/idx $C/gzip $C/spec $C/safetensors $C/checkpoint $C/onnx $C/image $C/cli_args $C/csv $C/cifar

python3 - "$C" "$DATA" <<'PY'
import gzip, json, struct, sys
C, DATA = sys.argv[1], sys.argv[2]
imgs = gzip.open(DATA + "/t10k-images-idx3-ubyte.gz").read()
labs = gzip.open(DATA + "/t10k-labels-idx1-ubyte.gz").read()
def idx_images(n, rows=28, cols=28, data=None):
    body = data if data is not None else imgs[16:16 + n * rows * cols]
    return struct.pack(">IIII", 0x803, n, rows, cols) + body
def idx_labels(n, data=None):
    return struct.pack(">II", 0x801, n) + (data if data is not None else labs[8:8 + n])
files = {
    "images3.idx": idx_images(3),
    "images_4x5.idx": idx_images(2, 4, 5, bytes(range(40))),
    "images_empty.idx": idx_images(0, 28, 28, b""),
    "labels8.idx": idx_labels(8),
    "labels_empty.idx": idx_labels(0, b""),
}
for name, data in files.items():
    open(f"{C}/idx/{name}", "wb").write(data)
for name in ["images3.idx", "images_4x5.idx", "labels8.idx"]:
    open(f"{C}/gzip/{name}.gz", "wb").write(gzip.compress(files[name], mtime=0))
# Two gzip members back to back (what `cat a.gz b.gz` makes) and a stored (level 0) stream.
lab = files["labels8.idx"]
open(f"{C}/gzip/labels8_two_members.gz", "wb").write(gzip.compress(lab[:5], mtime=0) + gzip.compress(lab[5:], mtime=0))
open(f"{C}/gzip/images_4x5_stored.gz", "wb").write(gzip.compress(files["images_4x5.idx"], compresslevel=0, mtime=0))
# A raw (uncompressed) input: the fuzz target gzips those itself.
open(f"{C}/gzip/labels8.idx", "wb").write(lab)

def st(tensors, meta=None, pad=True):
    header, blobs, off = {}, b"", 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs += data; off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blobs
f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
seeds = {
    "f32_2x3.safetensors": st([("w", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6))]),
    "mixed_dtypes.safetensors": st([
        ("a.f64", "F64", [2], struct.pack("<2d", 1.5, -2.0)),
        ("b.f16", "F16", [3], struct.pack("<3H", 0x3c00, 0x7c00, 0x0001)),
        ("c.bf16", "BF16", [1, 2], struct.pack("<2H", 0x3f80, 0xff80)),
        ("d.i64", "I64", [], struct.pack("<q", -7)),
        ("e.i32", "I32", [1], struct.pack("<i", 123456)),
        ("f.i16", "I16", [2], struct.pack("<2h", -1, 2)),
        ("g.i8", "I8", [2], struct.pack("<2b", -128, 127)),
        ("h.u8", "U8", [3], bytes([0, 128, 255])),
        ("i.bool", "BOOL", [2], bytes([0, 1])),
    ], meta={"format": "pt", "note": "x"}),
    "empty_tensor.safetensors": st([("z", "F32", [0, 4], b""), ("s", "F32", [], f32(3.25))]),
    "no_tensors.safetensors": st([], meta={"k": "v"}),
    "unpadded.safetensors": st([("x", "U8", [1], b"\x05")], pad=False),
}
for name, data in seeds.items():
    open(f"{C}/safetensors/{name}", "wb").write(data)

for i, s in enumerate(["10", "0", "-1", "100000", "65536", "2147483647", "9223372036854775808",
                       " 7", "7 ", "+3", "0x1f", "010", "1e-3", "0.5", "1e12", "1e309", "-0",
                       "inf", "nan", "1e-13", ".", "", "3abc"]):
    open(f"{C}/cli_args/value{i:02d}", "w").write(s)
PY

cp src/presets/*.spec $C/spec/
cat > $C/spec/all_layers.spec <<'SPEC'
name everything
alias all
description every layer kind and key # a hash in a description stays
input 1x28x28
train optimizer=adamw lr=0.001 weight_decay=0.01 epochs=3 batch=32 scheduler=onecycle max_lr=0.01 pct_start=0.3 div_factor=25 final_div_factor=1e4 label_smoothing=0.1 augment=rotate=10,translate=0.1
conv2d out=4 k=3 stride=1 pad=1 bias=true in=1 name=stem
batchnorm2d eps=1e-5 momentum=0.1
relu
maxpool2d k=2 stride=2 pad=0
conv2d out=6 k=3 stride=2 pad=1 bias=false
avgpool2d k=3 stride=1 pad=1
dropout p=0.25
flatten
linear out=12 in=294
relu
linear out=10 bias=false name=head
log_softmax
SPEC
cat > $C/spec/branches.spec <<'SPEC'
input 1x12x12
conv2d out=4 k=3 pad=1 bias=false name=stem
batchnorm2d name=stem_bn
relu name=s
conv2d out=4 k=3 pad=1 name=a
add from=a,s name=sum
conv2d out=2 k=1 from=input name=b
concat from=sum,b,input name=cat
conv2d out=6 k=3 stride=2 pad=1
gap name=g
flatten name=f
linear out=6 name=l
add from=l,g
linear out=3
SPEC
printf 'input 3x8x8\ntrain optimizer=sgd momentum=0.9 nesterov=true scheduler=plateau patience=2 factor=0.5\nconv 3 k=3\n' > $C/spec/error_missing_eq.spec
printf 'input 2x5x7\nconv2d out=3 k=2 stride=3 pad=2\nbn\ngap\nlogsoftmax\n' > $C/spec/odd_shapes.spec
printf 'input 1x1x1\nflatten\nlinear out=2\n' > $C/spec/one_pixel.spec

# Checkpoints and ONNX exports of tiny models, written by the library itself.
gcc -std=c11 -D_GNU_SOURCE -O1 -Iinclude -Isrc -Ibuild/gen fuzz/make_seeds.c -o build/make_seeds \
    build/libconvnet.a $(pkg-config --libs zlib libcurl libcrypto libcjson cairo libpng libprotobuf-c libjpeg libarchive) -lm -fopenmp
build/make_seeds $C
cp tests/fixtures/onnx/quirks11.onnx tests/fixtures/onnx/quirks13.onnx $C/onnx/
# Protobuf nesting 4,000 deep (attribute subgraphs; TypeProto sequences): refused before unpacking.
cp tests/bad/onnx_deep_nesting.onnx $C/onnx/deep_nesting.onnx
cp tests/bad/onnx_deep_type_nesting.onnx $C/onnx/deep_type_nesting.onnx

cp tests/fixtures/images/pattern_*.png tests/fixtures/images/digit0_original.pgm \
   tests/fixtures/images/digit5_shifted_ascii.pgm tests/fixtures/images/digit7_inverted_scaled.png $C/image/
printf 'P2\n# tiny\n3 2\n65535\n0 65535 100\n# mid\n7 8 9\n' > $C/image/p2_16bit.pgm
printf 'P5 2 2 65535\n\001\002\003\004\005\006\007\010' > $C/image/p5_16bit.pgm
printf 'P5\n#c\n2 1\n255\n\377\000' > $C/image/p5_comment.pgm
# CSV (first byte: shape and label choice, see fuzz_csv.c), CIFAR-10 records, and
# colour PNG/JPEG (Debian's python3-pil, as /usr/bin/python3 has it) for fuzz_cifar.c.
/usr/bin/python3 - "$C" <<'PY'
import io, random, sys
from PIL import Image
C = sys.argv[1]
random.seed(1)
head = "label," + ",".join(f"pixel{i}" for i in range(4)) + "\n"
open(f"{C}/csv/labelled_1x2x2.csv", "wb").write(bytes([4]) + (head + "3,0,255,12,7\n1,1,2,3,4\r\n\n").encode())
open(f"{C}/csv/unlabelled_1x2x2.csv", "wb").write(bytes([0]) + b"pixel0,pixel1,pixel2,pixel3\n0,0,0,0\n255,255,255,255\n")
open(f"{C}/csv/no_header_3x4x4.csv", "wb").write(bytes([2]) + (",".join(["2"] + [str(random.randrange(256)) for _ in range(48)]) + "\n").encode())
rec = bytes([7]) + bytes(random.randrange(256) for _ in range(3072))
open(f"{C}/cifar/two_records.bin", "wb").write(rec + bytes([2]) + rec[1:])
im = Image.new("RGB", (6, 5))
for y in range(5):
    for x in range(6): im.putpixel((x, y), (x * 40, y * 50, (x * y * 20) % 256))
for name, img, fmt in (("rgb_6x5.jpg", im, "JPEG"), ("gray_6x5.jpg", im.convert("L"), "JPEG"), ("rgb_6x5.png", im, "PNG")):
    b = io.BytesIO(); img.save(b, fmt, **({"quality": 90} if fmt == "JPEG" else {})); open(f"{C}/cifar/{name}", "wb").write(b.getvalue())
PY
du -sh $C/*
