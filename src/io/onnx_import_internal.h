/* The ONNX importer's inside, shared by its parts (see io/onnx.h for what is
 * imported and io/onnx_import.c for the walk over the graph):
 *   onnx_import_decode.c  protobuf and attribute decoding, the value table,
 *                         a node's inputs and outputs;
 *   onnx_import_layers.c  op-to-layer translation (CN_ONNX_LAYER_OPS);
 *   onnx_import_fold.c    the constant-folding shape interpreter (CN_ONNX_CONSTANT_OPS);
 *   onnx_import_build.c   the spec text and the model from the imported layers;
 *   onnx_import.c         the driver: opset, initializers, graph input, node walk.
 * Every function taking (im, idx) works on node `idx` of im->graph and reports
 * errors through cn_onnx_node_fail (file, node index, name and operator). */
#ifndef CN_IO_ONNX_IMPORT_INTERNAL_H
#define CN_IO_ONNX_IMPORT_INTERNAL_H
#include "io/onnx.h"
#include "layer.h"
#include "onnx.pb-c.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MAX_NODES 65536
#define MAX_VALUES 262144
#define MAX_LAYERS 256                      /* as the spec parser */
#define MAX_TENSOR_ELEMENTS ((size_t)1 << 28)
#define MAX_DIMS 8
#define LIMIT_CHANNELS 4096                  /* spec parser limits */
#define LIMIT_KERNEL 64
#define LIMIT_SPATIAL 4096
#define BATCH_DIM INT64_MIN                  /* the symbolic batch size in evaluated shapes */


typedef enum { V_UNAVAILABLE, V_ACT, V_FLOAT, V_INT, V_OTHER } value_kind;

typedef struct {
    const char *name;         /* borrowed from the message */
    value_kind kind;
    int ndim;                 /* constants */
    int64_t dims[MAX_DIMS];
    size_t count;
    float *f;                 /* V_FLOAT data */
    int64_t *i;               /* V_INT data (BATCH_DIM marks the batch size) */
    bool owned;               /* f / i freed with the value */
    int dtype;                /* ONNX data type (V_OTHER: for messages) */
    int act_rank;             /* V_ACT: 4 (N,C,H,W) or 2 (N,F) */
    cn_shape act_shape;
    int origin_node;          /* producing node, -1 for initializers and graph inputs */
    int layer;                /* V_ACT: the imported layer whose output it is, -1 for the graph input */
} value;

typedef struct {
    cn_layer_kind kind;
    int node;                 /* node index, for messages */
    char name[32];            /* state-dict prefix from the initializer name, or "" */
    int out, k, stride, pad, groups, dilation;
    bool has_bias;
    bool flat;                /* batch norm of a flat (N, C) input: batchnorm1d */
    float eps, slope;
    float *w, *b, *mean, *var;   /* owned */
    size_t wcount, bcount;
    int num_from;             /* the layers whose outputs it reads (-1: the graph input): */
    int from[CN_MAX_INPUTS];  /* the previous one in a chain; more for add and concat */
} imp_layer;

typedef struct {
    const char *file;
    const Onnx__GraphProto *graph;
    int opset;
    value *values;
    size_t num_values, cap_values;
    int32_t *table;           /* open addressing: value index + 1, 0 = empty */
    size_t table_size;
    uint64_t hash_seed;       /* random per import: names crafted to collide cannot cluster the table */
    /* the chain: the activation the next compute node reads. A node that reads another one
     * (a branch of the graph) makes that one current first (onnx_import.c), so that each layer
     * records the layer it reads (imp_layer.from) and the spec says from= where needed. */
    int cur;                  /* value index of the current activation */
    int rank;
    cn_shape shape;
    int64_t input_batch;      /* static batch size of the graph input, or -1 */
    int pend_pad, pad_node;   /* zero padding from a Pad node waiting for the next layer */
    bool fresh_weighted;      /* the current activation is the output of the last (conv/linear) layer */
    int terminal_node;        /* a Softmax that must stay last, or -1 */
    imp_layer layers[MAX_LAYERS];
    int num_layers;
    bool softmax;
} importer;

/* ---- messages ---------------------------------------------------------- */


/* One operator's handler; tables end with {NULL, NULL}. */
typedef struct { const char *op; cn_status (*fn)(importer *, int); } cn_onnx_op;
extern const cn_onnx_op CN_ONNX_LAYER_OPS[];      /* compute nodes: onnx_import_layers.c */
extern const cn_onnx_op CN_ONNX_CONSTANT_OPS[];   /* constants and shape arithmetic: onnx_import_fold.c */

/* ---- messages ---------------------------------------------------------- */

/* Copies an untrusted string for a one-line message: control characters become '?', long ones are cut. */
static inline const char *clean(const char *s, char *buf, size_t size) {
    if (!s) s = "";
    size_t n = 0;
    for (; s[n] && n + 4 < size; n++) buf[n] = ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
    if (s[n]) { memcpy(buf + n, "...", 3); n += 3; }
    buf[n] = '\0';
    return buf;
}
#define CLEAN(s) clean((s), (char[96]){0}, 96)

static inline const Onnx__NodeProto *node_at(const importer *im, int idx) { return im->graph->node[idx]; }
/* Input i's name, "" when absent or empty (an optional input left out). */
static inline const char *input_name(const Onnx__NodeProto *n, size_t i) { return i < n->n_input && n->input[i] ? n->input[i] : ""; }

/* Node n's first attribute called `name`, or NULL. */
static inline const Onnx__AttributeProto *attr_find(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}

/* "file: node IDX "NAME" (OP): message"; returns st. */
cn_status cn_onnx_node_fail(const importer *im, int idx, cn_status st, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- value table and tensors (onnx_import_decode.c) --------------------- */

/* The value named `name`, or -1. */
int cn_onnx_find_value(const importer *im, const char *name);
/* Adds a value (an existing name is an error); *index (if not NULL) gets its position. */
cn_status cn_onnx_add_value(importer *im, const char *name, const char *what, value v, int *index);
const char *cn_onnx_dtype_name(int onnx_type);
/* "[d0, d1, ...]" into buf. */
void cn_onnx_dims_text(const int64_t *dims, int ndim, char *buf, size_t size);
/* Decodes a TensorProto into a constant value (float, int or "other"), checking
 * every size. `what` describes it for messages ("initializer \"x\""). */
cn_status cn_onnx_decode_tensor(const importer *im, const Onnx__TensorProto *t, const char *what, value *v);

/* ---- attributes and inputs (onnx_import_decode.c) ----------------------- */

/* Rejects attributes outside the comma-separated list `allowed` and repeated ones. */
cn_status cn_onnx_check_attrs(const importer *im, int idx, const char *allowed);
/* Attribute `name` of node idx, or dflt when absent (ints: *count = -1 when absent). */
cn_status cn_onnx_attr_int(const importer *im, int idx, const char *name, int64_t dflt, int64_t *out);
cn_status cn_onnx_attr_float(const importer *im, int idx, const char *name, float dflt, float *out);
cn_status cn_onnx_attr_ints(const importer *im, int idx, const char *name, const int64_t **vals, int *count);
cn_status cn_onnx_attr_string(const importer *im, int idx, const char *name, const char *dflt, char *out, size_t size);
/* lo..hi non-empty inputs (trailing optional ones may be empty) and an output. */
cn_status cn_onnx_check_input_count(const importer *im, int idx, size_t lo, size_t hi);
/* The checks every node starts with: cn_onnx_check_input_count, then cn_onnx_check_attrs. */
cn_status cn_onnx_check_node(const importer *im, int idx, size_t lo, size_t hi, const char *allowed);
/* Why value vi (input `name`, -1: unknown) is not `expected`. */
cn_status cn_onnx_wrong_value(const importer *im, int idx, const char *name, int vi, const char *expected);
/* Input `input` must be the current activation. */
cn_status cn_onnx_data_input(const importer *im, int idx, size_t input);
/* Input `input` as a finite float constant with `ndim` dims (ndim < 0: any). */
cn_status cn_onnx_const_float(const importer *im, int idx, size_t input, int ndim, const value **out);
/* Input `input` as a constant integer tensor. */
cn_status cn_onnx_const_int(const importer *im, int idx, size_t input, const value **out);
/* A float vector of `count` elements: dims [count] or [1, count] (1-element scalars if allow_scalar). */
bool cn_onnx_is_vector_of(const value *v, int count, bool allow_scalar);
/* A new copy of n floats (NULL when out of memory). */
float *cn_onnx_copy_floats(const float *src, size_t n);

/* ---- outputs (onnx_import_decode.c) ------------------------------------- */

/* Output 0 becomes the current activation (rank 4 or 2, shape), other outputs unavailable; it is
 * the output of the layer node idx added, or else (a pass-through) of the current one's layer. */
cn_status cn_onnx_set_activation(importer *im, int idx, int rank, cn_shape shape);
/* Output 0 becomes constant v (its arrays are taken over, freed on error). */
cn_status cn_onnx_set_constant(importer *im, int idx, value v);

/* ---- constants (onnx_import_fold.c) ------------------------------------- */

/* Reshape of a constant `data` to the int64 list `shape` (0 copies a size unless allowzero). */
cn_status cn_onnx_reshape_constant(importer *im, int idx, const value *data, const value *shape, bool allowzero);
/* Add / Sub / Mul / Div ('+', '-', '*', '/') of node idx's two constant inputs. */
cn_status cn_onnx_const_binary(importer *im, int idx, char op);
/* Whether `name` is a float or int constant. */
bool cn_onnx_is_constant_value(const importer *im, const char *name);

/* ---- model (onnx_import_build.c) ---------------------------------------- */

/* Names the layers, writes their spec text and builds *out with their parameters. */
cn_status cn_onnx_build_model(importer *im, const cn_shape input, const char *producer, cn_model **out);

#endif
