#!/usr/bin/env python3
"""Writes the malformed inputs in tests/bad/ (committed; rerun to regenerate):
    python3 tests/bad/make_bad.py
Pure standard library. Each file is listed in tests/bad/EXPECTED with the
parser that loads it and a fragment of the expected error message; the files
in tests/bad/fuzz/ are inputs found by the fuzzers (fuzz/), kept as they were
found, not generated here."""
import gzip, json, os, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
out = {}  # name -> bytes

def put(name, data):
    out[name] = data if isinstance(data, bytes) else data.encode()

# ---------------------------------------------------------------- IDX ----
def idx_images(n, rows, cols, body=None):
    return struct.pack(">IIII", 0x803, n, rows, cols) + (body if body is not None else bytes(n * rows * cols))
def idx_labels(n, body=None):
    return struct.pack(">II", 0x801, n) + (body if body is not None else bytes(n))

good_images = idx_images(3, 4, 4, bytes(range(48)))
put("idx_empty.idx", b"")
put("idx_truncated_header.idx", good_images[:10])
put("idx_wrong_magic.idx", struct.pack(">IIII", 0x804, 1, 2, 2) + bytes(4))
put("idx_label_file_as_images.idx", idx_labels(20))
put("idx_truncated_data.idx", good_images[:16 + 20])
put("idx_trailing_data.idx", good_images + b"extra")
put("idx_huge_count.idx", struct.pack(">IIII", 0x803, 0xFFFFFFFF, 28, 28))
put("idx_zero_rows.idx", struct.pack(">IIII", 0x803, 1, 0, 28))
put("idx_negative_cols.idx", struct.pack(">IIII", 0x803, 1, 28, 0xFFFFFFFF))  # -1 as int32
put("idx_declares_4gib.idx", struct.pack(">IIII", 0x803, 4096, 1024, 1024) + bytes(8))
put("idx_declares_2gib_short.idx", struct.pack(">IIII", 0x803, 2048, 1024, 1024) + bytes(3))
gz = gzip.compress(good_images, mtime=0)
put("idx_truncated.gz", gz[:len(gz) // 2])
bad_crc = bytearray(gz); bad_crc[-6] ^= 0xFF  # CRC32 in the trailer
put("idx_bad_crc.gz", bytes(bad_crc))
put("idx_garbage_after_gzip_magic.gz", b"\x1f\x8b\x08\x00" + b"\xde\xad\xbe\xef" * 8)
put("idx_trailing_inside_gzip.gz", gzip.compress(good_images + b"\0" * 7, mtime=0))
put("idx_labels_truncated.idx", idx_labels(10, bytes(range(10)))[:12])
put("idx_images_as_labels.idx", good_images)
put("labels_out_of_range.idx", idx_labels(5, bytes([1, 2, 3, 12, 4])))
put("labels_255.idx", idx_labels(3, bytes([0, 255, 9])))

# --------------------------------------------------------------- spec ----
put("spec_unknown_layer.spec", "input 1x28x28\nconv3d out=8 k=3\nflatten\nlinear out=10\n")
put("spec_unknown_key.spec", "input 1x28x28\nconv2d out=8 kernel=3\nflatten\nlinear out=10\n")
put("spec_linear_in_mismatch.spec", "input 1x28x28\nconv2d out=4 k=3\nflatten\nlinear in=100 out=10\n")
put("spec_conv_in_mismatch.spec", "input 1x28x28\nconv2d in=3 out=4 k=3\ngap\n")
put("spec_linear_needs_flatten.spec", "input 1x28x28\nconv2d out=4 k=3\nlinear out=10\n")
put("spec_kernel_too_big.spec", "input 1x28x28\nconv2d out=4 k=30\ngap\nlinear out=10\n")
put("spec_negative_out.spec", "input 1x28x28\nconv2d out=-8 k=3\ngap\n")
put("spec_overflowing_int.spec", "input 1x28x28\nconv2d out=99999999999999999999 k=3\ngap\n")
put("spec_negative_input.spec", "input 1x-28x28\nflatten\nlinear out=10\n")
put("spec_no_layers.spec", "# only a comment\nname empty\ninput 1x28x28\n")
put("spec_not_class_scores.spec", "input 1x28x28\nconv2d out=10 k=3\n")
put("spec_one_class.spec", "input 1x28x28\nflatten\nlinear out=1\n")
put("spec_groups_not_dividing.spec", "input 6x8x8\nconv2d out=4 k=3 groups=3\ngap\nflatten\nlinear out=10\n")
put("spec_dilated_too_big.spec", "input 1x9x9\nconv2d out=4 k=3 dilation=5\ngap\nflatten\nlinear out=10\n")
put("spec_duplicate_name.spec", "input 1x28x28\nconv2d out=4 k=3 name=a\nrelu name=a\ngap\n")
put("spec_bad_train_value.spec", "input 1x28x28\ntrain lr=abc\nflatten\nlinear out=10\n")
put("spec_unknown_train_key.spec", "input 1x28x28\ntrain warmup=5\nflatten\nlinear out=10\n")
put("spec_too_many_params.spec", "input 64x28x28\nconv2d out=4096 k=64 pad=20\ngap\n")
put("spec_huge_activation.spec", "input 4096x4096x4096\nflatten\nlinear out=10\n")
put("spec_long_line.spec", "input 1x28x28\n# " + "x" * 2000 + "\nflatten\nlinear out=10\n")
put("spec_control_char.spec", "input 1x28x28\nflatten\x01\nlinear out=10\n")
put("spec_nul_byte.spec", "input 1x28x28\nflatten\0\nlinear out=10\n")
put("spec_input_after_layer.spec", "flatten\ninput 1x28x28\nlinear out=10\n")
put("spec_pool_pad_too_big.spec", "input 1x28x28\nmaxpool2d k=2 pad=2\ngap\nflatten\nlinear out=10\n")
put("spec_dropout_p1.spec", "input 1x28x28\ndropout p=1\nflatten\nlinear out=10\n")

# -------------------------------------------------------- safetensors ----
def st(tensors, meta=None, pad=True, raw_header=None, extra=b""):
    """tensors: (name, dtype, shape, bytes[, offsets]) in order."""
    header, blobs, off = {}, b"", 0
    if meta is not None:
        header["__metadata__"] = meta
    for t in tensors:
        name, dtype, shape, data = t[:4]
        offs = t[4] if len(t) > 4 else [off, off + len(data)]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": offs}
        blobs += data; off += len(data)
    h = raw_header.encode() if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blobs + extra
f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)

put("st_empty.safetensors", b"")
put("st_header_length_huge.safetensors", struct.pack("<Q", 1 << 63) + b"{}")
put("st_header_past_eof.safetensors", struct.pack("<Q", 4096) + b'{"a":1}')
put("st_bad_json.safetensors", st([], raw_header='{"w":{"dtype":"F32",'))
put("st_not_object.safetensors", st([], raw_header='[1,2,3]'))
put("st_overlapping_offsets.safetensors",
    st([("a", "F32", [2], f32(1, 2), [0, 8]), ("b", "F32", [2], f32(3, 4), [4, 12])]))
put("st_offsets_out_of_range.safetensors", st([("a", "F32", [4], f32(1, 2), [0, 16])]))
put("st_offsets_hole.safetensors", st([("a", "F32", [1], f32(1, 2), [4, 8])]))
put("st_offsets_begin_after_end.safetensors", st([("a", "F32", [0], f32(1), [4, 0])]))
put("st_offsets_wrong_span.safetensors", st([("a", "F32", [3], f32(1, 2))]))
put("st_negative_dim.safetensors", st([("a", "F32", [-1, 2], b"")]))
put("st_shape_overflow.safetensors", st([("a", "F32", [4294967296, 4294967296, 16], b"")]))
put("st_unknown_dtype.safetensors", st([("a", "F128", [1], bytes(16))]))
put("st_duplicate_name.safetensors",
    st([], raw_header='{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                      '"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', extra=b"\1\2"))
put("st_metadata_not_string.safetensors", st([("a", "U8", [1], b"\0")], meta={"epoch": 3}))
# 80,000 metadata keys took 6 s (a pairwise duplicate check); at most 4,096 are read now.
put("st_metadata_too_many_keys.safetensors", st([("a", "U8", [1], b"\0")], meta={"k%d" % i: "" for i in range(5000)}))
put("st_metadata_duplicate_key.safetensors",
    st([], raw_header='{"__metadata__":{"b":"1","a":"2","c":"3","a":"4"},"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
       extra=b"\1"))
put("st_trailing_bytes.safetensors", st([("a", "U8", [2], b"\1\2")], extra=b"\0\0\0\0"))
put("st_control_char_name.safetensors", st([("a\nb", "U8", [1], b"\0")]))
put("st_unknown_field.safetensors",
    st([], raw_header='{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"scale":2}}', extra=b"\1"))
put("st_garbage_after_json.safetensors", st([], raw_header='{}xyz'))

# --------------------------------------------------------- checkpoints ----
# The tiny model of fuzz/make_seeds.c: state-dict names are layer indices.
TINY_SPEC = ("input 1x28x28\nconv2d out=2 k=3 stride=2\nbatchnorm2d\nrelu\n"
             "maxpool2d k=2\nflatten\nlinear out=10\n")
def tiny_tensors(**changes):
    t = {
        "0.weight": ("F32", [2, 1, 3, 3], f32(*[0.1] * 18)),
        "0.bias": ("F32", [2], f32(0, 0)),
        "1.weight": ("F32", [2], f32(1, 1)),
        "1.bias": ("F32", [2], f32(0, 0)),
        "1.running_mean": ("F32", [2], f32(0, 0)),
        "1.running_var": ("F32", [2], f32(1, 1)),
        "1.num_batches_tracked": ("I64", [], struct.pack("<q", 3)),
        "5.weight": ("F32", [10, 72], f32(*[0.01] * 720)),
        "5.bias": ("F32", [10], f32(*[0] * 10)),
    }
    for k, v in changes.items():
        k = k.replace("__", ".")
        if v is None: del t[k]
        else: t[k] = v
    return [(k,) + v for k, v in t.items()]
def ckpt(meta_changes=None, **changes):
    meta = {"format": "convnet-checkpoint", "format_version": "1", "spec": TINY_SPEC, "model": "tiny",
            "epoch": "1", "dataset": "mnist", "mean": "0.1307", "std": "0.3081", "classes": "0,1,2,3,4,5,6,7,8,9"}
    for k, v in (meta_changes or {}).items():
        if v is None: meta.pop(k, None)
        else: meta[k] = v
    return st(tiny_tensors(**changes), meta=meta)

put("ckpt_wrong_shape.safetensors", ckpt(**{"0__weight": ("F32", [2, 1, 5, 5], f32(*[0.1] * 50))}))
put("ckpt_nan_weight.safetensors", ckpt(**{"5__bias": ("F32", [10], f32(*[0] * 9, float("nan")))}))
put("ckpt_inf_weight.safetensors", ckpt(**{"1__running_var": ("F32", [2], f32(1, float("inf")))}))
put("ckpt_missing_tensor.safetensors", ckpt(**{"1__running_mean": None}))
put("ckpt_wrong_dtype.safetensors", ckpt(**{"0__bias": ("I32", [2], struct.pack("<2i", 0, 0))}))
put("ckpt_negative_batches_tracked.safetensors", ckpt(**{"1__num_batches_tracked": ("I64", [], struct.pack("<q", -5))}))
put("ckpt_no_spec.safetensors", ckpt({"spec": None}))
put("ckpt_bad_stored_spec.safetensors", ckpt({"spec": "input 1x28x28\nconv2d out=2 k=3 strides=2\n"}))
put("ckpt_spec_model_mismatch.safetensors", ckpt({"spec": TINY_SPEC.replace("out=10", "out=12")}))
put("ckpt_future_version.safetensors", ckpt({"format_version": "9"}))
put("ckpt_zero_std.safetensors", ckpt({"std": "0"}))
put("ckpt_nan_mean.safetensors", ckpt({"mean": "nan"}))
put("ckpt_mean_not_a_number.safetensors", ckpt({"mean": "0.13x"}))
put("ckpt_negative_epoch.safetensors", ckpt({"epoch": "-3"}))
put("ckpt_epoch_not_a_number.safetensors", ckpt({"epoch": "99999999999999999999"}))
put("ckpt_no_train_state.safetensors", ckpt())  # fine for eval, not for resuming
put("ckpt_malformed_train_state.safetensors", ckpt({"train_state": "opt_kind=0 opt_steps=banana"}))
# Resuming reads the run's settings from train_config (tools: convnet train --resume; parser cli-resume).
CONFIG = ("optimizer=sgd lr=0.01 momentum=0.9 nesterov=0 weight_decay=0 label_smoothing=0 epochs=3 batch=32 "
          "scheduler=none step_size=10 gamma=0.1 patience=10 factor=0.1 max_lr=0.01 pct_start=0.3 div_factor=25 "
          "final_div_factor=10000 augment=none seed=1 val_split=0 train_limit=0 test_limit=0 batch_index=0 "
          "partial_loss=0 partial_correct=0 partial_seen=0")
put("resume_negative_batch_index.safetensors", ckpt({"train_config": CONFIG.replace("batch_index=0", "batch_index=-100000")}))
put("resume_control_char_config.safetensors", ckpt({"train_config": CONFIG.replace("epochs=3", "epochs=3\x01")}))
put("resume_unknown_setting.safetensors", ckpt({"train_config": CONFIG + " warp=9"}))
put("ckpt_not_safetensors.safetensors", b"PK\x03\x04 this is a zip (a torch .pt file?)")

# ---------------------------------------------------------------- ONNX ----
# A hand-rolled protobuf writer: enough of onnx.proto for small graphs.
def varint(v):
    b = b""
    while True:
        c = v & 0x7F; v >>= 7
        if v: b += bytes([c | 0x80])
        else: return b + bytes([c])
def fld(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0: return key + varint(payload)
    return key + varint(len(payload)) + payload  # wire 2
def s(num, text): return fld(num, 2, text.encode() if isinstance(text, str) else text)
def tensor(name, dims, values=None, raw=None, dtype=1):
    m = b"".join(fld(1, 0, d) for d in dims) + fld(2, 0, dtype)
    if raw is None: raw = struct.pack(f"<{len(values)}f", *values)
    return m + s(8, name) + s(9, raw)
def attr_ints(name, ints): return s(1, name) + b"".join(fld(8, 0, i) for i in ints) + fld(20, 0, 7)
def attr_int(name, i): return s(1, name) + fld(3, 0, i) + fld(20, 0, 2)
def node(op, inputs, outputs, name="", attrs=()):
    return (b"".join(s(1, i) for i in inputs) + b"".join(s(2, o) for o in outputs) + s(3, name) + s(4, op)
            + b"".join(s(5, a) for a in attrs))
def value_info(name, dims):
    shape = b"".join(s(1, (s(2, d) if isinstance(d, str) else fld(1, 0, d))) for d in dims)
    return s(1, name) + s(2, s(1, fld(1, 0, 1) + s(2, shape)))
def model(nodes, inits, out_dims=("batch", 10), opset=13, meta=()):
    graph = (b"".join(s(1, n) for n in nodes) + s(2, "g") + b"".join(s(5, t) for t in inits)
             + s(11, value_info("input", ["batch", 1, 28, 28])) + s(12, value_info("output", list(out_dims))))
    return (fld(1, 0, 8) + s(2, "make_bad.py") + s(7, graph) + s(8, s(1, "") + fld(2, 0, opset))
            + b"".join(s(14, s(1, k) + s(2, v)) for k, v in meta))
conv = node("Conv", ["input", "W", "B"], ["c"], "conv0", [attr_ints("kernel_shape", [3, 3]), attr_ints("strides", [2, 2])])
flat = node("Flatten", ["c"], ["f"], "flat", [attr_int("axis", 1)])
gemm = node("Gemm", ["f", "W2", "B2"], ["output"], "fc", [attr_int("transB", 1)])
W = tensor("W", [2, 1, 3, 3], [0.1] * 18); B = tensor("B", [2], [0, 0])
W2 = tensor("W2", [10, 338], [0.01] * 3380); B2 = tensor("B2", [10], [0] * 10)
put("onnx_valid_reference.onnx", model([conv, flat, gemm], [W, B, W2, B2]))  # not in EXPECTED: checks the writer
put("onnx_empty.onnx", b"")
put("onnx_garbage.onnx", b"\xff\xff\xff\xff not a protobuf at all \x00\x01")
put("onnx_truncated.onnx", model([conv, flat, gemm], [W, B, W2, B2])[:700])
put("onnx_missing_initializer.onnx", model([conv, flat, gemm], [W, B, B2]))
put("onnx_unknown_op.onnx", model([conv, node("LSTM", ["c"], ["l"], "lstm0"), flat, gemm], [W, B, W2, B2]))
put("onnx_raw_data_size_mismatch.onnx", model([conv, flat, gemm], [tensor("W", [2, 1, 3, 3], [0.1] * 17), B, W2, B2]))
put("onnx_nan_weight.onnx", model([conv, flat, gemm], [W, tensor("B", [2], [0, float("nan")]), W2, B2]))
put("onnx_wrong_weight_shape.onnx", model([conv, flat, gemm], [W, B, tensor("W2", [10, 100], [0.01] * 1000), B2]))
put("onnx_branching_graph.onnx",
    model([conv, node("Relu", ["input"], ["r"], "relu_of_input"), flat, gemm], [W, B, W2, B2]))
# An attribute given twice was accepted (the first won); onnx.checker refuses it.
put("onnx_duplicate_attribute.onnx", model([node("Conv", ["input", "W", "B"], ["c"], "conv0",
    [attr_ints("kernel_shape", [3, 3]), attr_ints("strides", [2, 2]), attr_ints("strides", [1, 1])]), flat, gemm],
    [W, B, W2, B2]))
# Bad normalisation metadata fell back to the dataset's defaults silently.
put("onnx_normalize_std_zero.onnx", model([conv, flat, gemm], [W, B, W2, B2],
    meta=[("normalize_mean", "0.1307"), ("normalize_std", "0")]))
put("onnx_normalize_mean_nan.onnx", model([conv, flat, gemm], [W, B, W2, B2],
    meta=[("normalize_mean", "nan"), ("normalize_std", "0.3081")]))
put("onnx_normalize_std_missing.onnx", model([conv, flat, gemm], [W, B, W2, B2], meta=[("normalize_mean", "0.5")]))
# Nesting 4,000 deep overflowed protobuf-c's recursive unpack (SIGSEGV): a Relu
# whose attribute holds a graph whose node holds such an attribute, and so on.
deep = node("Relu", ["x"], ["y"], "leaf")
for _ in range(1334):
    deep = node("If", ["x"], ["y"], "", [s(1, "then_branch") + s(6, s(1, deep)) + fld(20, 0, 5)])
put("onnx_deep_nesting.onnx", model([conv, deep, flat, gemm], [W, B, W2, B2]))
# The same through the input's type: a sequence of a sequence of ... (TypeProto.sequence_type).
deep_type = s(1, fld(1, 0, 1))
for _ in range(3000):
    deep_type = s(4, s(1, deep_type))
put("onnx_deep_type_nesting.onnx", fld(1, 0, 8) + s(7, s(11, s(1, "input") + s(2, deep_type)))
    + s(8, s(1, "") + fld(2, 0, 13)))

# --------------------------------------------------------------- images ----
def chunk(kind, data): return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
SIG = b"\x89PNG\r\n\x1a\n"
def png(w, h, pixels=None, color=0, depth=8):
    raw = b"".join(b"\0" + (pixels or bytes(w * h))[y * w:(y + 1) * w] for y in range(h))
    return SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
good_png = png(4, 3, bytes(range(0, 240, 20)))
put("img_empty.png", b"")
put("img_truncated.png", good_png[:len(good_png) - 20])
bad = bytearray(good_png); bad[30] ^= 0x55  # inside IHDR: its CRC no longer matches
put("img_bad_ihdr_crc.png", bytes(bad))
put("img_huge_dimensions.png", SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
put("img_zero_width.png", SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 0, 0, 0, 0)) + chunk(b"IEND", b""))
put("img_bad_zlib.png", SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)) + chunk(b"IDAT", b"\x78\x9c garbage") + chunk(b"IEND", b""))
put("img_only_signature.png", SIG)
put("img_pgm_zero_width.pgm", b"P5 0 28 255\n")
put("img_pgm_truncated.pgm", b"P5\n28 28\n255\n" + bytes(100))
put("img_pgm_maxval_zero.pgm", b"P2\n2 1\n0\n0 0\n")
put("img_pgm_sample_above_maxval.pgm", b"P2\n2 1\n10\n3 11\n")
put("img_pgm_bad_number.pgm", b"P2\nabc 1\n255\n0\n")
put("img_pgm_huge_number.pgm", b"P5 99999999999 1 255\n")
put("img_pgm_huge_dimensions.pgm", b"P5 16384 16384 255\n")
put("img_pgm_header_only.pgm", b"P5 2 2 255")
put("img_jpeg.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
put("img_ppm_colour.ppm", b"P6 1 1 255\n\xff\x00\x00")
put("img_text.png", b"hello, I am not an image\n")

# ---------------------------------------------------------------- CSV ----
# Read as 1x2x2 images with a label column and 10 classes (tests/test_bad_inputs.c).
HEAD = "label,pixel0,pixel1,pixel2,pixel3\n"
put("csv_wrong_columns.csv", HEAD + "1,0,0,0,0\n2,0,0,0\n")
put("csv_value_300.csv", HEAD + "1,0,300,0,0\n")
put("csv_negative_value.csv", HEAD + "1,0,0,-1,0\n")
put("csv_not_a_number.csv", HEAD + "1,0,0,0,abc\n")
put("csv_label_out_of_range.csv", HEAD + "3,0,0,0,0\n12,0,0,0,0\n")
put("csv_header_784_columns.csv", "label," + ",".join(f"pixel{i}" for i in range(784)) + "\n")
put("csv_empty.csv", b"")
put("csv_header_only.csv", HEAD)
put("csv_no_label_column.csv", "pixel0,pixel1,pixel2,pixel3\n0,0,0,0\n")
put("csv_huge_number.csv", HEAD + "1,0,0,0,99999999999999999999\n")

# ---------------------------------------------------------- CIFAR-10 ----
record = bytes([3]) + bytes(3072)
put("cifar_cut_off.bin", record + record[:1000])
put("cifar_label_10.bin", record + bytes([10]) + bytes(3072))
put("cifar_empty.bin", b"")

# ------------------------------------------- images in colour (folders) ----
put("img_truncated_jfif.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")

for name, data in out.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
print(f"wrote {len(out)} files to {HERE}")
