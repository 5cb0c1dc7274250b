/* ONNX export and import for sequential models (protobuf-c bindings generated
 * at build time from Debian's onnx.proto: build/gen/onnx.pb-c.h).
 *
 * Export writes opset 13: input "input" float [batch, C, H, W] with a symbolic
 * batch dimension named "batch", output "output" [batch, classes]. Layers map
 * to Conv, BatchNormalization (eval form) or BN folded into the preceding conv,
 * Relu, MaxPool, AveragePool (count_include_pad=1, as PyTorch), GlobalAveragePool,
 * Flatten (axis 1), Gemm (transB=1) and LogSoftmax (axis 1); Dropout is left
 * out (inference graph). Initializers carry our state-dict names ("0.weight",
 * "1.running_mean", ...). The model expects normalised input, as in PyTorch;
 * the normalisation is stored in metadata_props "normalize_mean" and
 * "normalize_std" ((pixel in [0,1] - mean) / std), and, when the export is
 * labeled, "dataset" and "classes" (the class names in output order).
 *
 * Import reads what torch.onnx.export writes for such models (opsets 7-17;
 * fixtures from PyTorch 1.13 at opsets 9, 11 and 13, also checked by hand at
 * 10 and 17) and maps the graph to our spec
 * text plus weights. Supported operators: Conv, BatchNormalization, Relu,
 * MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape (to [N, -1] or
 * [-1, F] only), Gemm, MatMul (+ Add bias), Add (bias after Conv/Gemm/MatMul),
 * Pad (zero padding folded into the following Conv/AveragePool, or MaxPool after
 * Relu), Constant, LogSoftmax, Softmax, Dropout, Identity, and the constant
 * arithmetic torch emits for x.view(x.size(0), -1) and F.pad (evaluated at
 * import): Shape, Gather, Unsqueeze, Squeeze, Concat, Cast, ConstantOfShape,
 * Slice, Transpose, Reshape/Add/Sub/Mul/Div of constants.
 *
 * torch.onnx.export quirks handled:
 *  - eval export fuses Conv+BatchNorm into a Conv with bias and renames the
 *    initializers ("onnx::Conv_39"): imported as conv with bias;
 *  - identical initializers (fresh BN weights, zero biases) are deduplicated
 *    and re-created with Identity nodes at the top of the graph: aliases;
 *  - AvgPool2d is exported as Constant pads + Pad + AveragePool(pads 0), even
 *    for zero padding: the padding folds into the pool's own pad;
 *  - x.view(-1, F) gives Reshape with a Constant [-1, F]; x.view(x.size(0), -1)
 *    gives Shape -> Gather -> Unsqueeze -> Concat -> Reshape (evaluated here,
 *    with the batch size kept symbolic);
 *  - F.pad computes its pads with ConstantOfShape/Concat/Reshape/Slice/
 *    Transpose/Cast (and Mul/Sub without constant folding): evaluated, then the
 *    zero padding folds into the following conv;
 *  - x @ W.t() + b gives MatMul with a pre-transposed [in, out] initializer and
 *    a separate Add;
 *  - opset 11 vs 13: Unsqueeze/Squeeze axes as attribute or input, Pad pads as
 *    attribute (opset < 11) or input, Softmax/LogSoftmax axis coercion;
 *  - initializers also listed as graph inputs (keep_initializers_as_inputs).
 *
 * Softmax: a graph ending in Softmax is imported with a final log_softmax layer,
 * so the imported model outputs log-probabilities (exp() of its outputs equals
 * the ONNX outputs). Predictions (argmax) are identical and the NLL that eval
 * computes from log-probabilities is the right loss for those probabilities;
 * cn_onnx_info.softmax_as_log_softmax says when this happened. Dropout is
 * absent from eval exports, so an imported model has none (for fine-tuning).
 *
 * Everything in the file is validated: tensor dims against raw_data/float_data
 * sizes (overflow-checked), data types, missing initializers, kernel attributes,
 * non-finite weights, shapes through the chain. Anything that is not a single
 * sequential chain (a node reading an earlier activation, two graph outputs, an
 * unknown operator) is an error naming the file, node index, node name and
 * operator. */
#ifndef CN_IO_ONNX_H
#define CN_IO_ONNX_H
#include "convnet.h"
#include "data/dataset.h"
#include <stddef.h>

/* Largest ONNX file read (bytes). */
#define CN_ONNX_MAX_FILE ((size_t)1 << 30)
/* Protobuf messages nest at most this deep (a torch export reaches 7: model >
 * graph > value_info > type > tensor_type > shape > dim; each If/Loop subgraph
 * adds 3); deeper files are refused before decoding, whose recursion they
 * would overflow. */
#define CN_ONNX_MAX_NESTING 64

typedef struct {
    int opset;                   /* default-domain opset the file imports */
    int has_normalization;       /* metadata normalize_mean/normalize_std were present and valid */
    float mean[4], std[4];       /* per input channel (one value in the file: every channel); valid when has_normalization */
    int softmax_as_log_softmax;  /* the graph ended in Softmax; the model outputs log-probabilities */
    char producer[64];           /* producer_name and producer_version, e.g. "pytorch 1.13.0" */
    char dataset[32];            /* metadata "dataset" ("" when absent) */
    int num_class_names;         /* metadata "classes": one name per model output, or 0 when absent */
    char class_names[CN_MAX_CLASSES][CN_CLASS_NAME_MAX];
} cn_onnx_info;

/* Writes `m` to `path` as an ONNX model (see above). fold_bn != 0 folds every
 * batchnorm2d that directly follows a conv2d into that conv's weight and bias
 * (other BNs stay BatchNormalization). mean/std: the input normalisation the
 * model was trained with, one per input channel (std > 0), stored as metadata
 * (comma-separated when there are several channels). The file is written
 * atomically (temporary file + rename). The model's parameters must be finite. */
cn_status cn_onnx_export(const cn_model *m, const char *path, int fold_bn, const float *mean, const float *std);
/* Same, and records the dataset's name (metadata "dataset", when not NULL/empty)
 * and the class names in output order (metadata "classes", comma-separated as in
 * checkpoints; written when num_names equals the model's output count). */
cn_status cn_onnx_export_labeled(const cn_model *m, const char *path, int fold_bn, const float *mean, const float *std,
                                 const char *dataset, int num_names, const char (*class_names)[CN_CLASS_NAME_MAX]);

/* Reads the ONNX model at `path` into a new model (in eval mode; its spec text
 * records the imported layers; layer names come from the initializer names
 * when they are usable, else the layer index). Errors name the file, the node
 * (index, name, operator) or tensor, what was found and what was expected. */
cn_status cn_onnx_import(const char *path, cn_model **out);
/* Same, and fills *info (if not NULL). */
cn_status cn_onnx_import_ex(const char *path, cn_onnx_info *info, cn_model **out);
/* From a buffer (not retained); `name_for_errors` stands in for the file name. */
cn_status cn_onnx_import_memory(const void *data, size_t size, const char *name_for_errors,
                                cn_onnx_info *info, cn_model **out);

#endif
