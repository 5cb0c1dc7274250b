/* ONNX import: a ModelProto written by torch.onnx.export (or by cn_onnx_export)
 * for a sequential CNN -> our spec text + weights (see io/onnx.h).
 *
 * The graph is walked in node order (ONNX requires topological order) keeping
 * one "current activation". Every compute node must read exactly that tensor
 * as its data input and produces the next one; constants (initializers,
 * Constant nodes, Identity aliases) and shape arithmetic on int64 values are
 * evaluated on the way. A node reading an older activation means the graph
 * branches, which convnet's sequential models cannot express. */
#include "io/onnx.h"
#include "model.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/text.h"
#include "onnx.pb-c.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

static const char SUPPORTED_OPS[] =
    "Conv, BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, Gemm, "
    "MatMul, Add, Pad, Constant, LogSoftmax, Softmax, Dropout, Identity, Shape, Gather, Unsqueeze, "
    "Squeeze, Concat, Cast, ConstantOfShape, Slice, Transpose, Sub, Mul, Div (the last twelve on constants only)";

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
} value;

typedef struct {
    cn_layer_kind kind;
    int node;                 /* node index, for messages */
    char name[32];            /* state-dict prefix from the initializer name, or "" */
    int out, k, stride, pad;
    bool has_bias;
    float eps;
    float *w, *b, *mean, *var;   /* owned */
    size_t wcount, bcount;
} imp_layer;

typedef struct {
    const char *file;
    const Onnx__GraphProto *graph;
    int opset;
    value *values;
    size_t num_values, cap_values;
    int32_t *table;           /* open addressing: value index + 1, 0 = empty */
    size_t table_size;
    /* the chain */
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

/* Copies an untrusted string for a one-line message: control characters become '?', long ones are cut. */
static const char *clean(const char *s, char *buf, size_t size) {
    if (!s) s = "";
    size_t n = 0;
    for (; s[n] && n + 4 < size; n++) buf[n] = ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
    if (s[n]) { memcpy(buf + n, "...", 3); n += 3; }
    buf[n] = '\0';
    return buf;
}

#define CLEAN(s) clean((s), (char[96]){0}, 96)

static const Onnx__NodeProto *node_at(const importer *im, int idx) { return im->graph->node[idx]; }

static cn_status node_fail(const importer *im, int idx, cn_status st, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static cn_status node_fail(const importer *im, int idx, cn_status st, const char *fmt, ...) {
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const Onnx__NodeProto *n = node_at(im, idx);
    return cn_fail(st, "%s: node %d \"%s\" (%s): %s", im->file, idx, CLEAN(n->name), CLEAN(n->op_type), msg);
}

/* ---- value table --------------------------------------------------------- */

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int find_value(const importer *im, const char *name) {
    if (!name || !*name) return -1;
    size_t mask = im->table_size - 1;
    for (size_t pos = hash_name(name) & mask;; pos = (pos + 1) & mask) {
        int32_t slot = im->table[pos];
        if (!slot) return -1;
        if (!strcmp(im->values[slot - 1].name, name)) return slot - 1;
    }
}

/* Adds (or, for an existing name, reports) a value; *index gets its position. */
static cn_status add_value(importer *im, const char *name, const char *what, value v, int *index) {
    if (!name || !*name) return cn_fail(CN_ERR_FORMAT, "%s: %s has an empty name", im->file, what);
    if (find_value(im, name) >= 0)
        return cn_fail(CN_ERR_FORMAT, "%s: %s \"%s\": the name is defined twice (ONNX values are assigned once)",
                       im->file, what, CLEAN(name));
    if (im->num_values >= MAX_VALUES || im->num_values * 2 >= im->table_size)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: more than %zu named values", im->file, im->num_values);
    if (im->num_values == im->cap_values) {
        size_t cap = im->cap_values ? im->cap_values * 2 : 8;   /* small: growth is exercised by every import */
        value *nv = cn_calloc(cap, sizeof *nv);
        if (!nv) return CN_ERR_NOMEM;
        if (im->num_values) memcpy(nv, im->values, im->num_values * sizeof *nv);
        free(im->values);
        im->values = nv;
        im->cap_values = cap;
    }
    v.name = name;
    im->values[im->num_values] = v;
    size_t mask = im->table_size - 1, pos = hash_name(name) & mask;
    while (im->table[pos]) pos = (pos + 1) & mask;
    im->table[pos] = (int32_t)im->num_values + 1;
    if (index) *index = (int)im->num_values;
    im->num_values++;
    return CN_OK;
}

static void free_importer(importer *im) {
    for (size_t i = 0; i < im->num_values; i++)
        if (im->values[i].owned) { free(im->values[i].f); free(im->values[i].i); }
    free(im->values);
    free(im->table);
    for (int i = 0; i < im->num_layers; i++) {
        imp_layer *l = &im->layers[i];
        free(l->w); free(l->b); free(l->mean); free(l->var);
    }
}

/* ---- tensors ------------------------------------------------------------- */

static const char *dtype_name(int t) {
    static const char *names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64",
                                  "string", "bool", "float16", "double", "uint32", "uint64", "complex64",
                                  "complex128", "bfloat16"};
    return t >= 0 && t < (int)(sizeof names / sizeof names[0]) ? names[t] : "unknown";
}

static void dims_text(const int64_t *dims, int ndim, char *buf, size_t size) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
}

/* Decodes a TensorProto into a constant value (float, int or "other"), checking
 * every size. `what` describes it for messages ("initializer \"x\""). */
static cn_status decode_tensor(const importer *im, const Onnx__TensorProto *t, const char *what, value *v) {
    memset(v, 0, sizeof *v);
    v->origin_node = -1;
    char dt[160];
    if (t->n_dims > MAX_DIMS)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: %s has %zu dimensions; at most %d are supported", im->file, what, t->n_dims, MAX_DIMS);
    v->ndim = (int)t->n_dims;
    size_t count = 1;
    for (size_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] < 0) {
            dims_text(t->dims, (int)t->n_dims, dt, sizeof dt);
            return cn_fail(CN_ERR_FORMAT, "%s: %s has dims %s: dimensions must be non-negative", im->file, what, dt);
        }
        v->dims[d] = t->dims[d];
        if (!cn_mul_ok(count, (size_t)t->dims[d], &count) || count > MAX_TENSOR_ELEMENTS) {
            dims_text(t->dims, (int)t->n_dims, dt, sizeof dt);
            return cn_fail(CN_ERR_UNSUPPORTED, "%s: %s has dims %s: more than %zu elements", im->file, what, dt, MAX_TENSOR_ELEMENTS);
        }
    }
    v->count = count;
    dims_text(t->dims, (int)t->n_dims, dt, sizeof dt);
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: %s is stored in an external data file, which convnet does not read "
                       "(re-export with the weights inside the .onnx file)", im->file, what);
    if (t->segment)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: %s is a segment of a larger tensor, which is not supported", im->file, what);
    int type = t->has_data_type ? t->data_type : 0;
    v->dtype = type;
    size_t elem;
    size_t typed = 0;      /* elements in the typed repeated field */
    switch (type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: elem = 4; typed = t->n_float_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: elem = 8; typed = t->n_double_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: elem = 8; typed = t->n_int64_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
        elem = type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? 4 : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT16 ? 2 : 1;
        typed = t->n_int32_data;
        break;
    default:
        v->kind = V_OTHER;   /* an error only if something uses it */
        return CN_OK;
    }
    bool raw = t->has_raw_data && t->raw_data.len > 0;
    if (raw && typed)
        return cn_fail(CN_ERR_FORMAT, "%s: %s has both raw_data and typed data fields", im->file, what);
    if (raw) {
        size_t need;
        if (!cn_mul_ok(count, elem, &need) || need != t->raw_data.len)
            return cn_fail(CN_ERR_FORMAT, "%s: %s: dims %s of %s need %zu elements (%zu bytes) but raw_data has %zu bytes",
                           im->file, what, dt, dtype_name(type), count, count * elem, t->raw_data.len);
    } else if (typed != count) {
        return cn_fail(CN_ERR_FORMAT, "%s: %s: dims %s need %zu %s values but the tensor holds %zu",
                       im->file, what, dt, count, dtype_name(type), typed);
    }
    const uint8_t *bytes = raw ? t->raw_data.data : NULL;
    /* raw_data is little-endian, as is every host convnet targets (x86-64, arm64). */
    if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) {
        v->kind = V_FLOAT;
        v->f = cn_calloc(count ? count : 1, sizeof *v->f);
        if (!v->f) return CN_ERR_NOMEM;
        v->owned = true;
        for (size_t k = 0; k < count; k++) {
            if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
                if (raw) memcpy(&v->f[k], bytes + 4 * k, 4); else v->f[k] = t->float_data[k];
            } else {
                double d;
                if (raw) memcpy(&d, bytes + 8 * k, 8); else d = t->double_data[k];
                v->f[k] = (float)d;
            }
        }
        return CN_OK;
    }
    v->kind = V_INT;
    v->i = cn_calloc(count ? count : 1, sizeof *v->i);
    if (!v->i) return CN_ERR_NOMEM;
    v->owned = true;
    for (size_t k = 0; k < count; k++) {
        int64_t x;
        if (!raw) {
            x = type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? t->int64_data[k] : t->int32_data[k];
        } else if (elem == 8) {
            memcpy(&x, bytes + 8 * k, 8);
        } else if (elem == 4) {
            int32_t y; memcpy(&y, bytes + 4 * k, 4); x = y;
        } else if (elem == 2) {
            int16_t y; memcpy(&y, bytes + 2 * k, 2); x = y;
        } else {
            x = type == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ? (int64_t)(int8_t)bytes[k] : (int64_t)bytes[k];
        }
        if (x == BATCH_DIM) x = BATCH_DIM + 1;   /* keep the sentinel unambiguous */
        v->i[k] = x;
    }
    return CN_OK;
}

/* ---- attributes ---------------------------------------------------------- */

static const Onnx__AttributeProto *attr_find(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}

/* Rejects attributes outside the comma-separated list `allowed`. */
static cn_status check_attrs(const importer *im, int idx, const char *allowed) {
    const Onnx__NodeProto *n = node_at(im, idx);
    for (size_t i = 0; i < n->n_attribute; i++) {
        const char *name = n->attribute[i]->name ? n->attribute[i]->name : "";
        size_t len = strlen(name);
        bool ok = false;
        for (const char *p = allowed; len && (p = strstr(p, name)); p += len)
            if ((p == allowed || p[-1] == ',') && (p[len] == ',' || p[len] == '\0')) { ok = true; break; }
        if (!ok)
            return node_fail(im, idx, CN_ERR_UNSUPPORTED, "attribute \"%s\" is not supported (expected only %s)",
                             CLEAN(name), *allowed ? allowed : "none");
    }
    return CN_OK;
}

static cn_status attr_int(const importer *im, int idx, const char *name, int64_t dflt, int64_t *out) {
    const Onnx__AttributeProto *a = attr_find(node_at(im, idx), name);
    *out = dflt;
    if (!a) return CN_OK;
    if (!a->has_i && !(a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT))
        return node_fail(im, idx, CN_ERR_FORMAT, "attribute %s: expected an integer", name);
    *out = a->i;
    return CN_OK;
}

static cn_status attr_float(const importer *im, int idx, const char *name, float dflt, float *out) {
    const Onnx__AttributeProto *a = attr_find(node_at(im, idx), name);
    *out = dflt;
    if (!a) return CN_OK;
    if (!a->has_f && !(a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT))
        return node_fail(im, idx, CN_ERR_FORMAT, "attribute %s: expected a float", name);
    if (!isfinite(a->f)) return node_fail(im, idx, CN_ERR_NUMERIC, "attribute %s is %g; expected a finite number", name, (double)a->f);
    *out = a->f;
    return CN_OK;
}

/* INTS attribute: *count = -1 when absent. */
static cn_status attr_ints(const importer *im, int idx, const char *name, const int64_t **vals, int *count) {
    const Onnx__AttributeProto *a = attr_find(node_at(im, idx), name);
    *vals = NULL;
    *count = -1;
    if (!a) return CN_OK;
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return node_fail(im, idx, CN_ERR_FORMAT, "attribute %s: expected a list of integers", name);
    if (a->n_ints > 16) return node_fail(im, idx, CN_ERR_FORMAT, "attribute %s has %zu values", name, a->n_ints);
    *vals = a->ints;
    *count = (int)a->n_ints;
    return CN_OK;
}

static cn_status attr_string(const importer *im, int idx, const char *name, const char *dflt, char *out, size_t size) {
    const Onnx__AttributeProto *a = attr_find(node_at(im, idx), name);
    snprintf(out, size, "%s", dflt);
    if (!a) return CN_OK;
    if (!a->has_s && !(a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING))
        return node_fail(im, idx, CN_ERR_FORMAT, "attribute %s: expected a string", name);
    size_t n = a->s.len < size - 1 ? a->s.len : size - 1;
    if (n) memcpy(out, a->s.data, n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++) if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) out[i] = '?';   /* as clean() */
    return CN_OK;
}

/* ---- inputs ---------------------------------------------------------------- */

static const char *input_name(const Onnx__NodeProto *n, size_t i) { return i < n->n_input && n->input[i] ? n->input[i] : ""; }

static cn_status check_input_count(const importer *im, int idx, size_t lo, size_t hi) {
    const Onnx__NodeProto *n = node_at(im, idx);
    size_t count = n->n_input;
    while (count > lo && !*input_name(n, count - 1)) count--;   /* trailing optional inputs left empty */
    if (count < lo || count > hi) {
        if (lo == hi) return node_fail(im, idx, CN_ERR_FORMAT, "has %zu inputs; expected %zu", n->n_input, lo);
        return node_fail(im, idx, CN_ERR_FORMAT, "has %zu inputs; expected %zu to %zu", n->n_input, lo, hi);
    }
    for (size_t i = 0; i < lo; i++)
        if (!*input_name(n, i)) return node_fail(im, idx, CN_ERR_FORMAT, "required input %zu is empty", i);
    if (n->n_output < 1 || !n->output[0] || !*n->output[0])
        return node_fail(im, idx, CN_ERR_FORMAT, "has no output");
    return CN_OK;
}

/* Describes why value `vi` (input `name`) is not what a node needed. */
static cn_status wrong_value(const importer *im, int idx, const char *name, int vi, const char *expected) {
    if (vi < 0) {
        return node_fail(im, idx, CN_ERR_FORMAT, "input \"%s\" has no initializer and is not produced by an earlier node "
                         "(expected %s)", CLEAN(name), expected);
    }
    const value *v = &im->values[vi];
    switch (v->kind) {
    case V_ACT:
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "input \"%s\" is a computed activation; expected %s",
                         CLEAN(name), expected);
    case V_UNAVAILABLE:
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "input \"%s\" is a secondary output of node %d, which convnet "
                         "does not compute (expected %s)", CLEAN(name), v->origin_node, expected);
    case V_OTHER:
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "input \"%s\" has data type %s; expected %s",
                         CLEAN(name), dtype_name(v->dtype), expected);
    case V_INT:
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "input \"%s\" is an integer tensor; expected %s", CLEAN(name), expected);
    case V_FLOAT:
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "input \"%s\" is a float constant; expected %s", CLEAN(name), expected);
    }
    return CN_ERR_FORMAT;
}

/* The node's data input (input 0) must be the current activation. */
static cn_status data_input(const importer *im, int idx, size_t input) {
    const Onnx__NodeProto *n = node_at(im, idx);
    const char *name = input_name(n, input);
    int vi = find_value(im, name);
    if (vi == im->cur) return CN_OK;
    if (vi >= 0 && im->values[vi].kind == V_ACT)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "reads \"%s\", an earlier activation, while the chain is at \"%s\": "
                         "the graph branches, but convnet imports only sequential chains", CLEAN(name),
                         CLEAN(im->values[im->cur].name));
    return wrong_value(im, idx, name, vi, "the activation from the previous layer");
}

/* Input `input` as a float constant with `ndim` dims (ndim < 0: any); *v gets it. */
static cn_status const_float(const importer *im, int idx, size_t input, int ndim, const value **out) {
    const Onnx__NodeProto *n = node_at(im, idx);
    const char *name = input_name(n, input);
    int vi = find_value(im, name);
    if (vi < 0 || im->values[vi].kind != V_FLOAT) return wrong_value(im, idx, name, vi, "a float initializer");
    const value *v = &im->values[vi];
    if (ndim >= 0 && v->ndim != ndim) {
        char dt[160];
        dims_text(v->dims, v->ndim, dt, sizeof dt);
        return node_fail(im, idx, CN_ERR_SHAPE, "initializer \"%s\" has dims %s; expected %d dimensions", CLEAN(name), dt, ndim);
    }
    for (size_t k = 0; k < v->count; k++)
        if (!isfinite(v->f[k]))
            return node_fail(im, idx, CN_ERR_NUMERIC, "initializer \"%s\" element %zu is %g; weights must be finite",
                             CLEAN(name), k, (double)v->f[k]);
    *out = v;
    return CN_OK;
}

static cn_status const_int(const importer *im, int idx, size_t input, const value **out) {
    const Onnx__NodeProto *n = node_at(im, idx);
    const char *name = input_name(n, input);
    int vi = find_value(im, name);
    if (vi < 0 || im->values[vi].kind != V_INT) return wrong_value(im, idx, name, vi, "a constant integer tensor");
    *out = &im->values[vi];
    return CN_OK;
}

/* A float vector of `count` elements: dims [count] or [1, count] (1-element scalars broadcast if allow_scalar). */
static bool is_vector_of(const value *v, int count, bool allow_scalar) {
    if (allow_scalar && v->count == 1) return true;
    if ((int64_t)v->count != count) return false;
    for (int d = 0; d < v->ndim; d++) if (v->dims[d] != 1 && v->dims[d] != count) return false;
    return true;
}

static float *copy_floats(const float *src, size_t n) {
    float *d = cn_calloc(n ? n : 1, sizeof *d);
    if (d && n) memcpy(d, src, n * sizeof *d);
    return d;
}

/* ---- outputs ----------------------------------------------------------------- */

/* Registers output 0 as the new current activation and every other output as unavailable. */
static cn_status set_activation(importer *im, int idx, int rank, cn_shape shape) {
    const Onnx__NodeProto *n = node_at(im, idx);
    char what[200];
    snprintf(what, sizeof what, "output of node %d \"%s\"", idx, CLEAN(n->name));
    value v = {.kind = V_ACT, .act_rank = rank, .act_shape = shape, .origin_node = idx};
    int vi;
    cn_status st = add_value(im, n->output[0], what, v, &vi);
    if (st) return st;
    for (size_t o = 1; o < n->n_output; o++) {
        if (!n->output[o] || !*n->output[o]) continue;
        value u = {.kind = V_UNAVAILABLE, .origin_node = idx};
        st = add_value(im, n->output[o], what, u, NULL);
        if (st) return st;
    }
    im->cur = vi;
    im->rank = rank;
    im->shape = shape;
    return CN_OK;
}

/* Registers output 0 as a constant (takes ownership of v's arrays). */
static cn_status set_constant(importer *im, int idx, value v) {
    const Onnx__NodeProto *n = node_at(im, idx);
    char what[200];
    snprintf(what, sizeof what, "output of node %d \"%s\"", idx, CLEAN(n->name));
    v.origin_node = idx;
    cn_status st = add_value(im, n->output[0], what, v, NULL);
    if (st && v.owned) { free(v.f); free(v.i); }
    return st;
}

/* ---- layers ------------------------------------------------------------------- */

static imp_layer *new_layer(importer *im, int idx, cn_layer_kind kind) {
    if (im->num_layers >= MAX_LAYERS) {
        node_fail(im, idx, CN_ERR_UNSUPPORTED, "the model has more than %d layers", MAX_LAYERS);
        return NULL;
    }
    imp_layer *l = &im->layers[im->num_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->node = idx;
    return l;
}

/* Takes a layer name from an initializer name "<prefix>.weight" if the prefix is a usable spec name. */
static void name_from(imp_layer *l, const char *init_name, const char *suffix) {
    size_t n = strlen(init_name), s = strlen(suffix);
    if (n <= s || n - s >= sizeof l->name || strcmp(init_name + n - s, suffix)) return;
    for (size_t i = 0; i < n - s; i++) {
        char c = init_name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return;
    }
    memcpy(l->name, init_name, n - s);
    l->name[n - s] = '\0';
}

static cn_status need_rank(const importer *im, int idx, int rank) {
    if (im->rank == rank) return CN_OK;
    if (rank == 4)
        return node_fail(im, idx, CN_ERR_SHAPE, "needs an N x C x H x W input but gets N x %d (already flattened)", im->shape.c);
    return node_fail(im, idx, CN_ERR_SHAPE, "needs an N x F input but gets N x %d x %d x %d; expected a Flatten before it",
                     im->shape.c, im->shape.h, im->shape.w);
}

/* Validates square kernel_shape / strides / pads / dilations of a 2-D window operator.
 * weight_k > 0: the kernel size from the weight tensor (kernel_shape is then optional). */
static cn_status window_attrs(importer *im, int idx, int weight_k, int *k_out, int *stride_out, int *pad_out) {
    const int64_t *ks, *strides, *pads, *dil;
    int nk, ns, np, nd;
    char auto_pad[32];
    cn_status st = attr_ints(im, idx, "kernel_shape", &ks, &nk);
    if (!st) st = attr_ints(im, idx, "strides", &strides, &ns);
    if (!st) st = attr_ints(im, idx, "pads", &pads, &np);
    if (!st) st = attr_ints(im, idx, "dilations", &dil, &nd);
    if (!st) st = attr_string(im, idx, "auto_pad", "NOTSET", auto_pad, sizeof auto_pad);
    if (st) return st;
    int k = weight_k;
    if (nk >= 0) {
        if (nk != 2 || ks[0] != ks[1] || ks[0] < 1 || ks[0] > LIMIT_KERNEL)
            return node_fail(im, idx, CN_ERR_UNSUPPORTED, "kernel_shape must be two equal sizes in [1, %d] (square kernels only)", LIMIT_KERNEL);
        if (weight_k > 0 && ks[0] != weight_k)
            return node_fail(im, idx, CN_ERR_SHAPE, "kernel_shape [%lld, %lld] does not match the %dx%d weight",
                             (long long)ks[0], (long long)ks[1], weight_k, weight_k);
        k = (int)ks[0];
    } else if (weight_k <= 0) {
        return node_fail(im, idx, CN_ERR_FORMAT, "attribute kernel_shape is missing");
    }
    int stride = 1;
    if (ns >= 0) {
        if (ns != 2 || strides[0] != strides[1] || strides[0] < 1 || strides[0] > LIMIT_KERNEL)
            return node_fail(im, idx, CN_ERR_UNSUPPORTED, "strides must be two equal values in [1, %d]", LIMIT_KERNEL);
        stride = (int)strides[0];
    }
    if (nd >= 0)
        for (int d = 0; d < nd; d++)
            if (dil[d] != 1) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "dilations must be 1 (dilated windows are not supported)");
    int pad = 0;
    if (!strcmp(auto_pad, "NOTSET")) {
        if (np >= 0) {
            if (np != 4 || pads[0] != pads[1] || pads[0] != pads[2] || pads[0] != pads[3] || pads[0] < 0 || pads[0] > LIMIT_KERNEL)
                return node_fail(im, idx, CN_ERR_UNSUPPORTED, "pads must be 4 equal values in [0, %d] (symmetric padding only)", LIMIT_KERNEL);
            pad = (int)pads[0];
        }
    } else if (!strcmp(auto_pad, "VALID")) {
        pad = 0;
    } else if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
        if (stride != 1 || k % 2 == 0)
            return node_fail(im, idx, CN_ERR_UNSUPPORTED, "auto_pad=%s is supported only with stride 1 and an odd kernel", auto_pad);
        pad = (k - 1) / 2;
    } else {
        return node_fail(im, idx, CN_ERR_FORMAT, "auto_pad=\"%s\": expected NOTSET, VALID, SAME_UPPER or SAME_LOWER", auto_pad);
    }
    *k_out = k;
    *stride_out = stride;
    *pad_out = pad;
    return CN_OK;
}

/* Output size of a window over `in` with padding; <= 0 when it does not fit. */
static int window_out(int in, int k, int stride, int pad) {
    if (in + 2 * pad < k) return 0;
    return (in + 2 * pad - k) / stride + 1;
}

/* Takes the pending Pad (if any) for a layer that accepts zero padding. */
static int take_pad(importer *im) {
    int p = im->pend_pad;
    im->pend_pad = 0;
    im->pad_node = -1;
    return p;
}

static cn_status no_pending_pad(const importer *im, int idx) {
    if (!im->pend_pad) return CN_OK;
    return node_fail(im, im->pad_node, CN_ERR_UNSUPPORTED, "zero padding is supported only directly before Conv, "
                     "AveragePool, or MaxPool after Relu, but node %d (%s) follows it", idx, CLEAN(node_at(im, idx)->op_type));
}

static cn_status op_conv(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    const value *w, *b = NULL;
    cn_status st = check_input_count(im, idx, 2, 3);
    if (!st) st = check_attrs(im, idx, "auto_pad,dilations,group,kernel_shape,pads,strides");
    if (!st) st = data_input(im, idx, 0);
    if (!st) st = need_rank(im, idx, 4);
    if (!st) st = const_float(im, idx, 1, 4, &w);
    if (!st && *input_name(n, 2)) st = const_float(im, idx, 2, -1, &b);
    if (st) return st;
    int64_t group;
    if ((st = attr_int(im, idx, "group", 1, &group))) return st;
    if (group != 1) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "group=%lld: grouped convolutions are not supported", (long long)group);
    char dt[160];
    dims_text(w->dims, w->ndim, dt, sizeof dt);
    if (w->dims[2] != w->dims[3] || w->dims[2] < 1 || w->dims[2] > LIMIT_KERNEL)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "weight \"%s\" has dims %s; expected a square kernel of size 1..%d",
                         CLEAN(w->name), dt, LIMIT_KERNEL);
    if (w->dims[1] != im->shape.c)
        return node_fail(im, idx, CN_ERR_SHAPE, "weight \"%s\" has dims %s: %lld input channels, but the input has %d",
                         CLEAN(w->name), dt, (long long)w->dims[1], im->shape.c);
    if (w->dims[0] < 1 || w->dims[0] > LIMIT_CHANNELS)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "weight \"%s\" has dims %s; expected 1..%d output channels",
                         CLEAN(w->name), dt, LIMIT_CHANNELS);
    int oc = (int)w->dims[0], k, stride, pad;
    if ((st = window_attrs(im, idx, (int)w->dims[2], &k, &stride, &pad))) return st;
    if (b && !(b->ndim == 1 && b->dims[0] == oc)) {
        dims_text(b->dims, b->ndim, dt, sizeof dt);
        return node_fail(im, idx, CN_ERR_SHAPE, "bias \"%s\" has dims %s; expected [%d]", CLEAN(b->name), dt, oc);
    }
    pad += take_pad(im);
    if (pad > LIMIT_KERNEL) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "padding %d exceeds %d", pad, LIMIT_KERNEL);
    cn_shape out = {oc, window_out(im->shape.h, k, stride, pad), window_out(im->shape.w, k, stride, pad)};
    if (out.h < 1 || out.w < 1)
        return node_fail(im, idx, CN_ERR_SHAPE, "a %dx%d kernel with padding %d does not fit the %dx%dx%d input",
                         k, k, pad, im->shape.c, im->shape.h, im->shape.w);
    imp_layer *l = new_layer(im, idx, CN_LAYER_CONV2D);
    if (!l) return CN_ERR_UNSUPPORTED;
    l->out = oc; l->k = k; l->stride = stride; l->pad = pad;
    l->wcount = w->count;
    l->w = copy_floats(w->f, w->count);
    l->has_bias = b != NULL;
    l->bcount = b ? (size_t)oc : 0;
    l->b = b ? copy_floats(b->f, (size_t)oc) : NULL;
    if (!l->w || (b && !l->b)) return CN_ERR_NOMEM;
    name_from(l, w->name, ".weight");
    if ((st = set_activation(im, idx, 4, out))) return st;
    im->fresh_weighted = true;
    return CN_OK;
}

static cn_status op_batchnorm(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_input_count(im, idx, 5, 5);
    if (!st) st = check_attrs(im, idx, "epsilon,momentum,spatial,training_mode,is_test,consumed_inputs");
    if (!st) st = data_input(im, idx, 0);
    if (!st) st = need_rank(im, idx, 4);
    if (st) return st;
    const value *t[4];
    static const char *role[4] = {"scale", "B", "mean", "var"};
    int C = im->shape.c;
    for (int i = 0; i < 4; i++) {
        if ((st = const_float(im, idx, (size_t)i + 1, -1, &t[i]))) return st;
        if (!(t[i]->ndim == 1 && t[i]->dims[0] == C)) {
            char dt[160];
            dims_text(t[i]->dims, t[i]->ndim, dt, sizeof dt);
            return node_fail(im, idx, CN_ERR_SHAPE, "%s \"%s\" has dims %s; expected [%d] (one per channel)",
                             role[i], CLEAN(t[i]->name), dt, C);
        }
    }
    for (int c = 0; c < C; c++)
        if (t[3]->f[c] < 0)
            return node_fail(im, idx, CN_ERR_NUMERIC, "var \"%s\"[%d] is %g; a variance cannot be negative",
                             CLEAN(t[3]->name), c, (double)t[3]->f[c]);
    float eps;
    int64_t spatial, training;
    if ((st = attr_float(im, idx, "epsilon", 1e-5f, &eps))) return st;
    if ((st = attr_int(im, idx, "spatial", 1, &spatial))) return st;
    if ((st = attr_int(im, idx, "training_mode", 0, &training))) return st;
    if (!(eps > 0.0f && eps <= 1.0f)) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "epsilon=%g: expected a value in (0, 1]", (double)eps);
    if (spatial != 1) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "spatial=%lld: only per-channel statistics (spatial=1) are supported", (long long)spatial);
    if (training) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "training_mode=1: only the inference form is supported");
    for (size_t o = 1; o < n->n_output; o++)
        if (n->output[o] && *n->output[o])
            return node_fail(im, idx, CN_ERR_UNSUPPORTED, "has the training outputs (running mean/var); expected the inference form with one output");
    if ((st = no_pending_pad(im, idx))) return st;
    imp_layer *l = new_layer(im, idx, CN_LAYER_BATCHNORM2D);
    if (!l) return CN_ERR_UNSUPPORTED;
    l->eps = eps;
    l->wcount = l->bcount = (size_t)C;
    l->w = copy_floats(t[0]->f, (size_t)C);
    l->b = copy_floats(t[1]->f, (size_t)C);
    l->mean = copy_floats(t[2]->f, (size_t)C);
    l->var = copy_floats(t[3]->f, (size_t)C);
    if (!l->w || !l->b || !l->mean || !l->var) return CN_ERR_NOMEM;
    name_from(l, t[0]->name, ".weight");
    st = set_activation(im, idx, 4, im->shape);
    im->fresh_weighted = false;
    return st;
}

static cn_status op_relu(importer *im, int idx) {
    cn_status st = check_input_count(im, idx, 1, 1);
    if (!st) st = check_attrs(im, idx, "");
    if (!st) st = data_input(im, idx, 0);
    if (!st) st = no_pending_pad(im, idx);
    if (st) return st;
    if (!new_layer(im, idx, CN_LAYER_RELU)) return CN_ERR_UNSUPPORTED;
    st = set_activation(im, idx, im->rank, im->shape);
    im->fresh_weighted = false;
    return st;
}

static cn_status op_pool(importer *im, int idx, bool avg) {
    cn_status st = check_input_count(im, idx, 1, 1);
    if (!st) st = check_attrs(im, idx, avg ? "auto_pad,ceil_mode,count_include_pad,kernel_shape,pads,strides"
                                           : "auto_pad,ceil_mode,dilations,kernel_shape,pads,storage_order,strides");
    if (!st) st = data_input(im, idx, 0);
    if (!st) st = need_rank(im, idx, 4);
    if (st) return st;
    int k, stride, pad;
    int64_t ceil_mode, include_pad, storage;
    if ((st = window_attrs(im, idx, 0, &k, &stride, &pad))) return st;
    if ((st = attr_int(im, idx, "ceil_mode", 0, &ceil_mode))) return st;
    if ((st = attr_int(im, idx, "count_include_pad", 0, &include_pad))) return st;
    if ((st = attr_int(im, idx, "storage_order", 0, &storage))) return st;
    (void)storage;   /* only affects the Indices output, which is not supported */
    const Onnx__NodeProto *n = node_at(im, idx);
    for (size_t o = 1; o < n->n_output; o++)
        if (n->output[o] && *n->output[o])
            return node_fail(im, idx, CN_ERR_UNSUPPORTED, "the Indices output is not supported");
    if (avg && pad > 0 && !include_pad)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "count_include_pad=0 with pads %d: convnet's avgpool2d counts the "
                         "padding in the divisor (PyTorch's default, count_include_pad=1)", pad);
    if (im->pend_pad) {
        /* Zero padding equals a max-pool's implicit -inf padding only on non-negative input (after a ReLU). */
        if (!avg && !(im->num_layers > 0 && im->layers[im->num_layers - 1].kind == CN_LAYER_RELU))
            return node_fail(im, im->pad_node, CN_ERR_UNSUPPORTED, "zero padding before MaxPool (node %d) equals the "
                             "pool's own padding only after a Relu", idx);
        pad += take_pad(im);
    }
    if (2 * pad > k)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "padding %d is more than half the %dx%d window", pad, k, k);
    int oh = window_out(im->shape.h, k, stride, pad), ow = window_out(im->shape.w, k, stride, pad);
    if (oh < 1 || ow < 1)
        return node_fail(im, idx, CN_ERR_SHAPE, "a %dx%d window with padding %d does not fit the %dx%dx%d input",
                         k, k, pad, im->shape.c, im->shape.h, im->shape.w);
    if (ceil_mode && ((im->shape.h + 2 * pad - k) % stride || (im->shape.w + 2 * pad - k) % stride))
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "ceil_mode=1 changes the output size here; only floor mode is supported");
    imp_layer *l = new_layer(im, idx, avg ? CN_LAYER_AVGPOOL2D : CN_LAYER_MAXPOOL2D);
    if (!l) return CN_ERR_UNSUPPORTED;
    l->k = k; l->stride = stride; l->pad = pad;
    st = set_activation(im, idx, 4, (cn_shape){im->shape.c, oh, ow});
    im->fresh_weighted = false;
    return st;
}

static cn_status op_gap(importer *im, int idx) {
    cn_status st = check_input_count(im, idx, 1, 1);
    if (!st) st = check_attrs(im, idx, "");
    if (!st) st = data_input(im, idx, 0);
    if (!st) st = need_rank(im, idx, 4);
    if (!st) st = no_pending_pad(im, idx);
    if (st) return st;
    if (!new_layer(im, idx, CN_LAYER_GAP)) return CN_ERR_UNSUPPORTED;
    st = set_activation(im, idx, 4, (cn_shape){im->shape.c, 1, 1});
    im->fresh_weighted = false;
    return st;
}

/* Flattens the current activation to N x F (a flatten layer when it is still N x C x H x W). */
static cn_status flatten_to_2d(importer *im, int idx) {
    cn_status st = no_pending_pad(im, idx);
    if (st) return st;
    cn_shape s = im->shape;
    if (im->rank == 4) {
        if (!new_layer(im, idx, CN_LAYER_FLATTEN)) return CN_ERR_UNSUPPORTED;
        s = (cn_shape){cn_shape_size(im->shape), 1, 1};
        im->fresh_weighted = false;
    }
    bool fresh = im->fresh_weighted;
    st = set_activation(im, idx, 2, s);
    im->fresh_weighted = fresh;
    return st;
}

static cn_status op_flatten(importer *im, int idx) {
    cn_status st = check_input_count(im, idx, 1, 1);
    if (!st) st = check_attrs(im, idx, "axis");
    if (!st) st = data_input(im, idx, 0);
    if (st) return st;
    int64_t axis;
    if ((st = attr_int(im, idx, "axis", 1, &axis))) return st;
    if (axis < 0) axis += im->rank;
    if (axis != 1)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "axis=%lld: only axis 1 (keep the batch dimension) is supported", (long long)axis);
    return flatten_to_2d(im, idx);
}

static cn_status reshape_constant(importer *im, int idx, const value *data, const value *shape, bool allowzero);

static cn_status op_reshape(importer *im, int idx) {
    cn_status st = check_input_count(im, idx, 2, 2);
    if (!st) st = check_attrs(im, idx, "allowzero");
    if (st) return st;
    const value *shape;
    int64_t allowzero;
    if ((st = const_int(im, idx, 1, &shape))) return st;
    if ((st = attr_int(im, idx, "allowzero", 0, &allowzero))) return st;
    int di = find_value(im, input_name(node_at(im, idx), 0));
    if (di >= 0 && (im->values[di].kind == V_INT || im->values[di].kind == V_FLOAT))
        return reshape_constant(im, idx, &im->values[di], shape, allowzero != 0);
    if ((st = data_input(im, idx, 0))) return st;
    int64_t F = cn_shape_size(im->shape);
    char text[160] = "[?]";
    if (shape->ndim == 1 && shape->count <= 8) {
        size_t n = (size_t)snprintf(text, sizeof text, "[");
        for (size_t i = 0; i < shape->count && n < sizeof text; i++) {
            if (shape->i[i] == BATCH_DIM) n += (size_t)snprintf(text + n, sizeof text - n, "%sN", i ? ", " : "");
            else n += (size_t)snprintf(text + n, sizeof text - n, "%s%lld", i ? ", " : "", (long long)shape->i[i]);
        }
        if (n < sizeof text) snprintf(text + n, sizeof text - n, "]");
    }
    bool ok = false;
    if (shape->ndim == 1 && shape->count == 2) {
        int64_t a = shape->i[0], b = shape->i[1];
        int64_t b_resolved = (b == 0 && !allowzero) ? (im->rank == 4 ? im->shape.c : F) : b;
        bool keeps_batch = a == BATCH_DIM || (a == 0 && !allowzero) || (a > 0 && a == im->input_batch);
        if (keeps_batch && (b_resolved == -1 || b_resolved == F)) ok = true;
        if (a == -1 && b_resolved == F) ok = true;
    }
    if (!ok)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "reshape to %s of a tensor with %lld features per sample: only a "
                         "flatten to [N, -1] or [-1, %lld] is supported", text, (long long)F, (long long)F);
    return flatten_to_2d(im, idx);
}

/* Linear layer from a [F, O] (transposed = true) or [O, F] weight, scaled by alpha.
 * The caller registers the output (linear_output) after any use of its value
 * pointers: registering a value may move the value table. */
static cn_status add_linear(importer *im, int idx, const value *w, bool transposed, float alpha) {
    int F = im->shape.c;
    int64_t wf = transposed ? w->dims[0] : w->dims[1], wo = transposed ? w->dims[1] : w->dims[0];
    char dt[160];
    dims_text(w->dims, w->ndim, dt, sizeof dt);
    if (wf != F)
        return node_fail(im, idx, CN_ERR_SHAPE, "weight \"%s\" has dims %s: %lld input features, but the input has %d",
                         CLEAN(w->name), dt, (long long)wf, F);
    if (wo < 1 || wo > LIMIT_CHANNELS)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "weight \"%s\" has dims %s: expected 1..%d outputs", CLEAN(w->name), dt, LIMIT_CHANNELS);
    int O = (int)wo;
    imp_layer *l = new_layer(im, idx, CN_LAYER_LINEAR);
    if (!l) return CN_ERR_UNSUPPORTED;
    l->out = O;
    l->wcount = (size_t)O * (size_t)F;
    l->w = cn_calloc(l->wcount, sizeof *l->w);
    if (!l->w) return CN_ERR_NOMEM;
    for (int o = 0; o < O; o++)
        for (int f = 0; f < F; f++)
            l->w[(size_t)o * F + f] = alpha * (transposed ? w->f[(size_t)f * O + o] : w->f[(size_t)o * F + f]);
    if (!transposed) name_from(l, w->name, ".weight");
    return CN_OK;
}

/* After a linear layer (and its bias): its output becomes the current activation. */
static cn_status linear_output(importer *im, int idx) {
    cn_status st = set_activation(im, idx, 2, (cn_shape){im->layers[im->num_layers - 1].out, 1, 1});
    im->fresh_weighted = true;
    return st;
}

/* Adds a bias vector (times beta) to the last layer, a conv or linear. */
static cn_status add_bias(importer *im, int idx, const value *b, float beta) {
    imp_layer *l = &im->layers[im->num_layers - 1];
    int C = l->out;
    bool fits = l->kind == CN_LAYER_LINEAR ? is_vector_of(b, C, true)
              : (b->count == 1 || (b->count == (size_t)C && b->ndim >= 3 && b->dims[b->ndim - 1] == 1 &&
                                   b->dims[b->ndim - 2] == 1 && b->dims[b->ndim - 3] == C));
    if (!fits) {
        char dt[160];
        dims_text(b->dims, b->ndim, dt, sizeof dt);
        return node_fail(im, idx, CN_ERR_SHAPE, "bias \"%s\" has dims %s; expected %s", CLEAN(b->name), dt,
                         l->kind == CN_LAYER_LINEAR ? "one value per output feature" : "[C, 1, 1] (one value per channel)");
    }
    if (!l->b) {
        l->b = cn_calloc((size_t)C, sizeof *l->b);
        if (!l->b) return CN_ERR_NOMEM;
        l->has_bias = true;
        l->bcount = (size_t)C;
    }
    for (int c = 0; c < C; c++) l->b[c] += beta * b->f[b->count == 1 ? 0 : c];
    return CN_OK;
}

static cn_status op_gemm(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_input_count(im, idx, 2, 3);
    if (!st) st = check_attrs(im, idx, "alpha,beta,transA,transB,broadcast");
    if (!st) st = data_input(im, idx, 0);
    if (!st) st = need_rank(im, idx, 2);
    if (!st) st = no_pending_pad(im, idx);
    if (st) return st;
    const value *w, *c = NULL;
    float alpha, beta;
    int64_t transA, transB;
    if ((st = const_float(im, idx, 1, 2, &w))) return st;
    if (*input_name(n, 2) && (st = const_float(im, idx, 2, -1, &c))) return st;
    if ((st = attr_float(im, idx, "alpha", 1.0f, &alpha))) return st;
    if ((st = attr_float(im, idx, "beta", 1.0f, &beta))) return st;
    if ((st = attr_int(im, idx, "transA", 0, &transA))) return st;
    if ((st = attr_int(im, idx, "transB", 0, &transB))) return st;
    if (transA) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "transA=1: the activation must be the untransposed first operand");
    if ((st = add_linear(im, idx, w, !transB, alpha))) return st;
    if (c && (st = add_bias(im, idx, c, beta))) return st;
    return linear_output(im, idx);
}

static cn_status op_matmul(importer *im, int idx) {
    cn_status st = check_input_count(im, idx, 2, 2);
    if (!st) st = check_attrs(im, idx, "");
    if (!st) st = data_input(im, idx, 0);
    if (!st) st = need_rank(im, idx, 2);
    if (!st) st = no_pending_pad(im, idx);
    if (st) return st;
    const value *w;
    if ((st = const_float(im, idx, 1, 2, &w))) return st;
    if ((st = add_linear(im, idx, w, true, 1.0f))) return st;
    return linear_output(im, idx);
}

static cn_status const_binary(importer *im, int idx, char op);
static bool is_constant_value(const importer *im, const char *name);

static cn_status op_add(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    if (is_constant_value(im, input_name(n, 0)) && is_constant_value(im, input_name(n, 1))) return const_binary(im, idx, '+');
    cn_status st = check_input_count(im, idx, 2, 2);
    if (!st) st = check_attrs(im, idx, "");
    if (st) return st;
    /* Either operand order: activation + constant. */
    size_t act = find_value(im, input_name(n, 0)) == im->cur ? 0 : 1;
    if ((st = data_input(im, idx, act))) return st;
    const value *b;
    if ((st = const_float(im, idx, 1 - act, -1, &b))) return st;
    if (!im->fresh_weighted || im->num_layers == 0)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "adding a constant is supported only as the bias right after "
                         "Conv, Gemm or MatMul");
    if ((st = no_pending_pad(im, idx))) return st;
    if ((st = add_bias(im, idx, b, 1.0f))) return st;
    st = set_activation(im, idx, im->rank, im->shape);
    im->fresh_weighted = true;
    return st;
}

static cn_status op_pad(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_input_count(im, idx, 1, im->opset >= 11 ? 3 : 1);
    if (!st) st = check_attrs(im, idx, im->opset >= 11 ? "mode" : "mode,pads,value");
    if (!st) st = data_input(im, idx, 0);
    if (!st) st = need_rank(im, idx, 4);
    if (st) return st;
    char mode[32];
    if ((st = attr_string(im, idx, "mode", "constant", mode, sizeof mode))) return st;
    if (strcmp(mode, "constant"))
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "mode=\"%s\": only constant (zero) padding is supported", mode);
    const int64_t *pads;
    int np;
    float fill = 0.0f;
    if (im->opset >= 11) {
        const value *pv;
        if ((st = const_int(im, idx, 1, &pv))) return st;
        if (pv->ndim != 1 || pv->count > 16)
            return node_fail(im, idx, CN_ERR_FORMAT, "pads \"%s\" must be a 1-D list", CLEAN(pv->name));
        pads = pv->i;
        np = (int)pv->count;
        if (*input_name(n, 2)) {
            const value *cv;
            if ((st = const_float(im, idx, 2, -1, &cv))) return st;
            if (cv->count != 1) return node_fail(im, idx, CN_ERR_FORMAT, "constant_value must be a scalar");
            fill = cv->f[0];
        }
    } else {
        if ((st = attr_ints(im, idx, "pads", &pads, &np))) return st;
        if (np < 0) return node_fail(im, idx, CN_ERR_FORMAT, "attribute pads is missing");
        if ((st = attr_float(im, idx, "value", 0.0f, &fill))) return st;
    }
    if (fill != 0.0f) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "constant_value %g: only zero padding is supported", (double)fill);
    /* [N_begin, C_begin, H_begin, W_begin, N_end, C_end, H_end, W_end] */
    if (np != 8) return node_fail(im, idx, CN_ERR_FORMAT, "has %d pads; expected 8 for an N x C x H x W tensor", np);
    int64_t p = pads[2];
    bool all_zero = true;
    for (int i = 0; i < 8; i++) if (pads[i]) all_zero = false;
    if (!all_zero && (pads[0] || pads[1] || pads[4] || pads[5] || pads[3] != p || pads[6] != p || pads[7] != p ||
                      p < 0 || p > LIMIT_KERNEL))
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "pads [%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld]: only the same "
                         "non-negative padding on all four spatial sides is supported", (long long)pads[0], (long long)pads[1],
                         (long long)pads[2], (long long)pads[3], (long long)pads[4], (long long)pads[5], (long long)pads[6],
                         (long long)pads[7]);
    if (!all_zero) {
        if (!im->pend_pad) im->pad_node = idx;
        im->pend_pad += (int)p;
        if (im->pend_pad > LIMIT_KERNEL) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "padding exceeds %d", LIMIT_KERNEL);
    }
    /* The chain continues on the padded tensor; shapes keep the unpadded size until a layer takes the padding. */
    cn_shape s = im->shape;
    int pending = im->pend_pad, pnode = im->pad_node;
    bool fresh = im->fresh_weighted && all_zero;
    st = set_activation(im, idx, 4, s);
    im->pend_pad = pending;
    im->pad_node = pnode;
    im->values[im->cur].act_shape = (cn_shape){s.c, s.h + 2 * pending, s.w + 2 * pending};
    im->fresh_weighted = fresh;
    return st;
}

static cn_status op_softmax(importer *im, int idx, bool log) {
    cn_status st = check_input_count(im, idx, 1, 1);
    if (!st) st = check_attrs(im, idx, "axis");
    if (!st) st = data_input(im, idx, 0);
    if (!st) st = no_pending_pad(im, idx);
    if (st) return st;
    int64_t axis;
    if ((st = attr_int(im, idx, "axis", im->opset >= 13 ? -1 : 1, &axis))) return st;
    int64_t a = axis < 0 ? axis + im->rank : axis;
    /* opset < 13 coerces the input to 2-D at `axis`, so axis 1 is over C*H*W = C when H = W = 1. */
    bool ok = im->shape.h == 1 && im->shape.w == 1 && a == 1;
    if (!ok)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "axis=%lld on a %s tensor: only the class axis (1) of N x C scores is supported",
                         (long long)axis, im->rank == 4 ? "N x C x H x W" : "N x F");
    if (!new_layer(im, idx, CN_LAYER_LOG_SOFTMAX)) return CN_ERR_UNSUPPORTED;
    if (!log) {
        im->softmax = true;
        im->terminal_node = idx;
    }
    st = set_activation(im, idx, im->rank, im->shape);
    im->fresh_weighted = false;
    return st;
}

/* Output 0 becomes an alias of the current activation (Identity, Dropout at inference). */
static cn_status pass_through(importer *im, int idx) {
    bool fresh = im->fresh_weighted;
    int pending = im->pend_pad, pnode = im->pad_node;
    cn_shape padded = im->values[im->cur].act_shape;
    cn_status st = set_activation(im, idx, im->rank, im->shape);
    im->fresh_weighted = fresh;
    im->pend_pad = pending;
    im->pad_node = pnode;
    if (!st) im->values[im->cur].act_shape = padded;
    return st;
}

static cn_status op_dropout(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_input_count(im, idx, 1, 3);
    if (!st) st = check_attrs(im, idx, "ratio,seed,is_test");
    if (!st) st = data_input(im, idx, 0);
    if (st) return st;
    if (*input_name(n, 2)) {
        const value *mode;
        if ((st = const_int(im, idx, 2, &mode))) return st;
        if (mode->count != 1 || mode->i[0] != 0)
            return node_fail(im, idx, CN_ERR_UNSUPPORTED, "training_mode is true; expected an inference graph");
    }
    return pass_through(im, idx);
}

/* Identity: an alias of a constant or of the current activation. */
static cn_status op_identity(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_input_count(im, idx, 1, 1);
    if (!st) st = check_attrs(im, idx, "");
    if (st) return st;
    int vi = find_value(im, input_name(n, 0));
    if (vi >= 0 && (im->values[vi].kind == V_FLOAT || im->values[vi].kind == V_INT || im->values[vi].kind == V_OTHER)) {
        value v = im->values[vi];
        v.owned = false;
        return set_constant(im, idx, v);
    }
    if ((st = data_input(im, idx, 0))) return st;
    return pass_through(im, idx);
}

/* ---- constants and shape arithmetic ------------------------------------------- */

static cn_status op_constant(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_input_count(im, idx, 0, 0);
    if (!st) st = check_attrs(im, idx, "value,value_float,value_floats,value_int,value_ints");
    if (st) return st;
    if (n->n_attribute != 1) return node_fail(im, idx, CN_ERR_FORMAT, "expected exactly one value attribute");
    const Onnx__AttributeProto *a = n->attribute[0];
    value v = {0};
    const char *name = a->name;
    if (!strcmp(name, "value")) {
        if (!a->t) return node_fail(im, idx, CN_ERR_FORMAT, "attribute value holds no tensor");
        char what[200];
        snprintf(what, sizeof what, "node %d \"%s\" (Constant) value", idx, CLEAN(n->name));
        if ((st = decode_tensor(im, a->t, what, &v))) return st;
    } else if (!strcmp(name, "value_float") || !strcmp(name, "value_floats")) {
        bool one = !strcmp(name, "value_float");
        size_t count = one ? 1 : a->n_floats;
        if (count > MAX_TENSOR_ELEMENTS) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "too many values");
        v.kind = V_FLOAT; v.ndim = one ? 0 : 1; v.dims[0] = (int64_t)count; v.count = count; v.owned = true;
        v.f = cn_calloc(count ? count : 1, sizeof *v.f);
        if (!v.f) return CN_ERR_NOMEM;
        if (one) v.f[0] = a->f; else if (count) memcpy(v.f, a->floats, count * sizeof *v.f);
    } else {
        bool one = !strcmp(name, "value_int");
        size_t count = one ? 1 : a->n_ints;
        if (count > MAX_TENSOR_ELEMENTS) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "too many values");
        v.kind = V_INT; v.ndim = one ? 0 : 1; v.dims[0] = (int64_t)count; v.count = count; v.owned = true;
        v.i = cn_calloc(count ? count : 1, sizeof *v.i);
        if (!v.i) return CN_ERR_NOMEM;
        if (one) v.i[0] = a->i; else if (count) memcpy(v.i, a->ints, count * sizeof *v.i);
        for (size_t k = 0; k < count; k++) if (v.i[k] == BATCH_DIM) v.i[k] = BATCH_DIM + 1;
    }
    return set_constant(im, idx, v);
}

static cn_status new_ints(value *v, int ndim, const int64_t *dims, size_t count) {
    memset(v, 0, sizeof *v);
    v->kind = V_INT;
    v->ndim = ndim;
    for (int d = 0; d < ndim; d++) v->dims[d] = dims[d];
    v->count = count;
    v->owned = true;
    v->i = cn_calloc(count ? count : 1, sizeof *v->i);
    return v->i ? CN_OK : CN_ERR_NOMEM;
}

static cn_status op_shape(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_input_count(im, idx, 1, 1);
    if (!st) st = check_attrs(im, idx, "start,end");
    if (st) return st;
    int vi = find_value(im, input_name(n, 0));
    if (vi < 0 || im->values[vi].kind != V_ACT) {
        if (vi >= 0 && (im->values[vi].kind == V_FLOAT || im->values[vi].kind == V_INT)) {
            const value *c = &im->values[vi];
            value v;
            if ((st = new_ints(&v, 1, (int64_t[]){c->ndim}, (size_t)c->ndim))) return st;
            for (int d = 0; d < c->ndim; d++) v.i[d] = c->dims[d];
            return set_constant(im, idx, v);
        }
        return wrong_value(im, idx, input_name(n, 0), vi, "a tensor");
    }
    const value *a = &im->values[vi];
    int64_t full[4] = {BATCH_DIM, a->act_shape.c, a->act_shape.h, a->act_shape.w};
    if (a->act_rank == 2) full[1] = a->act_shape.c;
    int rank = a->act_rank;
    int64_t start, end;
    if ((st = attr_int(im, idx, "start", 0, &start))) return st;
    if ((st = attr_int(im, idx, "end", rank, &end))) return st;
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    if (start < 0) start = 0;
    if (end > rank) end = rank;
    if (end < start) end = start;
    value v;
    if ((st = new_ints(&v, 1, (int64_t[]){end - start}, (size_t)(end - start)))) return st;
    for (int64_t d = start; d < end; d++) v.i[d - start] = full[d];
    return set_constant(im, idx, v);
}

static cn_status op_gather(importer *im, int idx) {
    cn_status st = check_input_count(im, idx, 2, 2);
    if (!st) st = check_attrs(im, idx, "axis");
    if (st) return st;
    const value *data, *ind;
    int64_t axis;
    if ((st = const_int(im, idx, 0, &data))) return st;
    if ((st = const_int(im, idx, 1, &ind))) return st;
    if ((st = attr_int(im, idx, "axis", 0, &axis))) return st;
    if (data->ndim != 1 || (axis != 0 && axis != -1) || ind->ndim > 1)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "only gathering from a 1-D shape vector is supported");
    value v;
    if ((st = new_ints(&v, ind->ndim, ind->dims, ind->count))) return st;
    for (size_t k = 0; k < ind->count; k++) {
        int64_t j = ind->i[k];
        if (j < 0) j += (int64_t)data->count;
        if (j < 0 || j >= (int64_t)data->count) {
            free(v.i);
            return node_fail(im, idx, CN_ERR_FORMAT, "index %lld is out of range for %zu values", (long long)ind->i[k], data->count);
        }
        v.i[k] = data->i[j];
    }
    return set_constant(im, idx, v);
}

/* Unsqueeze / Squeeze change only the dims of a small integer tensor. */
static cn_status op_squeeze(importer *im, int idx, bool unsqueeze) {
    const Onnx__NodeProto *n = node_at(im, idx);
    bool axes_input = im->opset >= 13;
    cn_status st = check_input_count(im, idx, unsqueeze && axes_input ? 2 : 1, axes_input ? 2 : 1);
    if (!st) st = check_attrs(im, idx, axes_input ? "" : "axes");
    if (st) return st;
    const value *data;
    if ((st = const_int(im, idx, 0, &data))) return st;
    const int64_t *axes = NULL;
    int naxes = -1;
    if (axes_input) {
        if (*input_name(n, 1)) {
            const value *av;
            if ((st = const_int(im, idx, 1, &av))) return st;
            if (av->count > MAX_DIMS) return node_fail(im, idx, CN_ERR_FORMAT, "too many axes");
            axes = av->i;
            naxes = (int)av->count;
        }
    } else if ((st = attr_ints(im, idx, "axes", &axes, &naxes))) {
        return st;
    }
    int64_t dims[MAX_DIMS];
    int nd = 0;
    if (unsqueeze) {
        if (naxes < 0) return node_fail(im, idx, CN_ERR_FORMAT, "axes are missing");
        int out_rank = data->ndim + naxes;
        if (out_rank > MAX_DIMS) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "result has more than %d dimensions", MAX_DIMS);
        bool inserted[MAX_DIMS] = {false};
        for (int k = 0; k < naxes; k++) {
            int64_t a = axes[k] < 0 ? axes[k] + out_rank : axes[k];
            if (a < 0 || a >= out_rank || inserted[a]) return node_fail(im, idx, CN_ERR_FORMAT, "invalid axes");
            inserted[a] = true;
        }
        for (int d = 0, src = 0; d < out_rank; d++) dims[nd++] = inserted[d] ? 1 : data->dims[src++];
    } else {
        bool drop[MAX_DIMS] = {false};
        for (int k = 0; k < naxes; k++) {
            int64_t a = axes[k] < 0 ? axes[k] + data->ndim : axes[k];
            if (a < 0 || a >= data->ndim || data->dims[a] != 1) return node_fail(im, idx, CN_ERR_FORMAT, "invalid axes");
            drop[a] = true;
        }
        for (int d = 0; d < data->ndim; d++)
            if (!(naxes < 0 ? data->dims[d] == 1 : drop[d])) dims[nd++] = data->dims[d];
    }
    value v;
    if ((st = new_ints(&v, nd, dims, data->count))) return st;
    if (data->count) memcpy(v.i, data->i, data->count * sizeof *v.i);
    return set_constant(im, idx, v);
}

static cn_status op_concat(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_input_count(im, idx, 1, 16);
    if (!st) st = check_attrs(im, idx, "axis");
    if (st) return st;
    int64_t axis;
    if ((st = attr_int(im, idx, "axis", 0, &axis))) return st;
    size_t total = 0;
    const value *parts[16];
    size_t count = n->n_input < 16 ? n->n_input : 16;
    for (size_t k = 0; k < count; k++) {
        if ((st = const_int(im, idx, k, &parts[k]))) return st;
        if (parts[k]->ndim != 1 || (axis != 0 && axis != -1) || parts[k]->count > 64)
            return node_fail(im, idx, CN_ERR_UNSUPPORTED, "only concatenating 1-D shape vectors is supported");
        total += parts[k]->count;
    }
    value v;
    if ((st = new_ints(&v, 1, (int64_t[]){(int64_t)total}, total))) return st;
    size_t at = 0;
    for (size_t k = 0; k < count; k++)
        for (size_t j = 0; j < parts[k]->count; j++) v.i[at++] = parts[k]->i[j];
    return set_constant(im, idx, v);
}

static cn_status op_cast(importer *im, int idx) {
    cn_status st = check_input_count(im, idx, 1, 1);
    if (!st) st = check_attrs(im, idx, "to,saturate");
    if (st) return st;
    const value *data;
    int64_t to;
    if ((st = const_int(im, idx, 0, &data))) return st;
    if ((st = attr_int(im, idx, "to", 0, &to))) return st;
    if (to != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && to != ONNX__TENSOR_PROTO__DATA_TYPE__INT32)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "cast of a shape to %s: only int32/int64 are supported", dtype_name((int)to));
    value v = *data;
    v.owned = false;
    return set_constant(im, idx, v);
}


/* A new constant of the same kind (int or float) as `like`, with the given dims. */
static cn_status new_like(value *v, const value *like, int ndim, const int64_t *dims) {
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (dims[d] < 0 || !cn_mul_ok(count, (size_t)dims[d], &count) || count > MAX_TENSOR_ELEMENTS) return CN_ERR_UNSUPPORTED;
    }
    memset(v, 0, sizeof *v);
    v->kind = like->kind;
    v->dtype = like->dtype;
    v->ndim = ndim;
    for (int d = 0; d < ndim; d++) v->dims[d] = dims[d];
    v->count = count;
    v->owned = true;
    if (like->kind == V_FLOAT) v->f = cn_calloc(count ? count : 1, sizeof *v->f);
    else v->i = cn_calloc(count ? count : 1, sizeof *v->i);
    return (v->f || v->i) ? CN_OK : CN_ERR_NOMEM;
}

static void copy_element(value *dst, size_t di, const value *src, size_t si) {
    if (src->kind == V_FLOAT) dst->f[di] = src->f[si]; else dst->i[di] = src->i[si];
}

static void row_major_strides(const value *v, int64_t *strides) {
    int64_t s = 1;
    for (int d = v->ndim - 1; d >= 0; d--) { strides[d] = s; s *= v->dims[d]; }
}

/* A constant input (int or float) of any shape. */
static cn_status const_any(const importer *im, int idx, size_t input, const value **out) {
    const Onnx__NodeProto *n = node_at(im, idx);
    const char *name = input_name(n, input);
    int vi = find_value(im, name);
    if (vi < 0 || (im->values[vi].kind != V_INT && im->values[vi].kind != V_FLOAT))
        return wrong_value(im, idx, name, vi, "a constant tensor");
    *out = &im->values[vi];
    return CN_OK;
}

/* ConstantOfShape: a filled constant (torch builds F.pad's pads with it). */
static cn_status op_constant_of_shape(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_input_count(im, idx, 1, 1);
    if (!st) st = check_attrs(im, idx, "value");
    if (st) return st;
    const value *shape;
    if ((st = const_int(im, idx, 0, &shape))) return st;
    /* A 0-d shape (torch computes it from scalars when it does not fold constants) counts as a 1-D list. */
    if (shape->ndim > 1 || shape->count > MAX_DIMS)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "the shape must be a 1-D list of at most %d sizes", MAX_DIMS);
    value fill = {.kind = V_FLOAT, .count = 1, .f = (float[]){0.0f}};
    const Onnx__AttributeProto *a = attr_find(n, "value");
    value decoded = {0};
    if (a) {
        if (!a->t) return node_fail(im, idx, CN_ERR_FORMAT, "attribute value holds no tensor");
        if ((st = decode_tensor(im, a->t, "ConstantOfShape value", &decoded))) return st;
        if ((decoded.kind != V_FLOAT && decoded.kind != V_INT) || decoded.count != 1) {
            if (decoded.owned) { free(decoded.f); free(decoded.i); }
            return node_fail(im, idx, CN_ERR_UNSUPPORTED, "value must be one int or float element");
        }
        fill = decoded;
    }
    for (size_t d = 0; d < shape->count; d++)
        if (shape->i[d] < 0) {
            if (decoded.owned) { free(decoded.f); free(decoded.i); }
            return node_fail(im, idx, CN_ERR_UNSUPPORTED, "the shape depends on the batch size or is negative");
        }
    value v;
    st = new_like(&v, &fill, (int)shape->count, shape->i);
    if (!st) for (size_t k = 0; k < v.count; k++) copy_element(&v, k, &fill, 0);
    if (decoded.owned) { free(decoded.f); free(decoded.i); }
    if (st) return node_fail(im, idx, st, "the result is too large");
    return set_constant(im, idx, v);
}

static cn_status op_transpose(importer *im, int idx) {
    cn_status st = check_input_count(im, idx, 1, 1);
    if (!st) st = check_attrs(im, idx, "perm");
    if (st) return st;
    const value *data;
    if ((st = const_any(im, idx, 0, &data))) return st;
    const int64_t *perm;
    int np;
    if ((st = attr_ints(im, idx, "perm", &perm, &np))) return st;
    int nd = data->ndim;
    int64_t p[MAX_DIMS], dims[MAX_DIMS], in_strides[MAX_DIMS];
    bool seen[MAX_DIMS] = {false};
    if (np >= 0 && np != nd) return node_fail(im, idx, CN_ERR_FORMAT, "perm has %d entries for a %d-D tensor", np, nd);
    for (int d = 0; d < nd; d++) {
        p[d] = np >= 0 ? perm[d] : nd - 1 - d;
        if (p[d] < 0 || p[d] >= nd || seen[p[d]]) return node_fail(im, idx, CN_ERR_FORMAT, "perm is not a permutation");
        seen[p[d]] = true;
        dims[d] = data->dims[p[d]];
    }
    row_major_strides(data, in_strides);
    value v;
    if ((st = new_like(&v, data, nd, dims))) return st;
    int64_t index[MAX_DIMS] = {0};
    for (size_t k = 0; k < v.count; k++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++) off += index[d] * in_strides[p[d]];
        copy_element(&v, k, data, (size_t)off);
        for (int d = nd - 1; d >= 0 && ++index[d] == dims[d]; d--) index[d] = 0;
    }
    return set_constant(im, idx, v);
}

static cn_status op_slice(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    bool inputs = im->opset >= 10;
    cn_status st = check_input_count(im, idx, inputs ? 3 : 1, inputs ? 5 : 1);
    if (!st) st = check_attrs(im, idx, inputs ? "" : "starts,ends,axes");
    if (st) return st;
    const value *data;
    if ((st = const_any(im, idx, 0, &data))) return st;
    const int64_t *starts, *ends, *axes = NULL, *steps = NULL;
    int ns, ne, na = -1, nst = -1;
    if (inputs) {
        const value *v[4] = {NULL, NULL, NULL, NULL};
        for (size_t k = 1; k <= 4; k++)
            if (*input_name(n, k) && (st = const_int(im, idx, k, &v[k - 1]))) return st;
        starts = v[0]->i; ns = (int)v[0]->count;
        ends = v[1]->i; ne = (int)v[1]->count;
        if (v[2]) { axes = v[2]->i; na = (int)v[2]->count; }
        if (v[3]) { steps = v[3]->i; nst = (int)v[3]->count; }
    } else {
        if ((st = attr_ints(im, idx, "starts", &starts, &ns))) return st;
        if ((st = attr_ints(im, idx, "ends", &ends, &ne))) return st;
        if ((st = attr_ints(im, idx, "axes", &axes, &na))) return st;
    }
    int nd = data->ndim;
    if (ns < 0 || ns != ne || ns > nd || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return node_fail(im, idx, CN_ERR_FORMAT, "starts, ends, axes and steps must have one entry per sliced axis");
    int64_t begin[MAX_DIMS], step[MAX_DIMS], dims[MAX_DIMS], in_strides[MAX_DIMS];
    bool used[MAX_DIMS] = {false};
    for (int d = 0; d < nd; d++) { begin[d] = 0; step[d] = 1; dims[d] = data->dims[d]; }
    for (int k = 0; k < ns; k++) {
        int64_t a = axes ? axes[k] : k;
        if (a < 0) a += nd;
        if (a < 0 || a >= nd || used[a]) return node_fail(im, idx, CN_ERR_FORMAT, "invalid axes");
        used[a] = true;
        int64_t dim = data->dims[a], s = steps ? steps[k] : 1, b = starts[k], e = ends[k];
        if (s == 0) return node_fail(im, idx, CN_ERR_FORMAT, "step 0");
        if (s > dim + 1) s = dim + 1;      /* a longer step selects at most one element anyway */
        if (s < -dim - 1) s = -dim - 1;
        if (b < 0) b = b < -dim ? 0 - (s < 0) : b + dim;
        if (e < 0) e = e < -dim ? -1 : e + dim;
        if (s > 0) { b = b < 0 ? 0 : b > dim ? dim : b; e = e < 0 ? 0 : e > dim ? dim : e; }
        else { b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b; e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e; }
        int64_t len = s > 0 ? (e - b + s - 1) / s : (b - e + (-s) - 1) / (-s);
        begin[a] = b;
        step[a] = s;
        dims[a] = len > 0 ? len : 0;
    }
    row_major_strides(data, in_strides);
    value v;
    if ((st = new_like(&v, data, nd, dims))) return st;
    int64_t index[MAX_DIMS] = {0};
    for (size_t k = 0; k < v.count; k++) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++) off += (begin[d] + index[d] * step[d]) * in_strides[d];
        copy_element(&v, k, data, (size_t)off);
        for (int d = nd - 1; d >= 0 && ++index[d] == dims[d]; d--) index[d] = 0;
    }
    return set_constant(im, idx, v);
}

/* Reshape of a constant (torch's F.pad lowering reshapes its pads list). */
static cn_status reshape_constant(importer *im, int idx, const value *data, const value *shape, bool allowzero) {
    if (shape->ndim != 1 || shape->count > MAX_DIMS)
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "the target shape must be a 1-D list of at most %d sizes", MAX_DIMS);
    int64_t dims[MAX_DIMS];
    int infer = -1;
    size_t known = 1;
    for (size_t d = 0; d < shape->count; d++) {
        int64_t x = shape->i[d];
        if (x == 0 && !allowzero) x = (int)d < data->ndim ? data->dims[d] : -2;
        if (x == -1 && infer < 0) { infer = (int)d; dims[d] = 1; continue; }
        if (x < 0) return node_fail(im, idx, CN_ERR_FORMAT, "invalid target size %lld", (long long)shape->i[d]);
        dims[d] = x;
        if (!cn_mul_ok(known, (size_t)x, &known)) return node_fail(im, idx, CN_ERR_FORMAT, "target shape overflows");
    }
    if (infer >= 0) {
        if (known == 0 || data->count % known) return node_fail(im, idx, CN_ERR_SHAPE, "cannot infer the -1 size");
        dims[infer] = (int64_t)(data->count / known);
        known = data->count;
    }
    if (known != data->count)
        return node_fail(im, idx, CN_ERR_SHAPE, "reshape of %zu elements to a shape with %zu", data->count, known);
    value v;
    cn_status st = new_like(&v, data, (int)shape->count, dims);
    if (st) return st;
    for (size_t k = 0; k < v.count; k++) copy_element(&v, k, data, k);
    return set_constant(im, idx, v);
}


/* Add / Sub / Mul / Div of two constants (torch's shape arithmetic without
 * constant folding): same shapes, or one side a single element. */
static cn_status const_binary(importer *im, int idx, char op) {
    const value *a, *b;
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_input_count(im, idx, 2, 2);
    if (!st) st = check_attrs(im, idx, "");
    for (size_t k = 0; !st && k < 2; k++) {
        int vi = find_value(im, input_name(n, k));
        if (vi >= 0 && im->values[vi].kind == V_ACT)
            return node_fail(im, idx, CN_ERR_UNSUPPORTED, "operator %s on the activation \"%s\" is not supported "
                             "(only on constants, or Add as a bias after Conv/Gemm/MatMul)", CLEAN(n->op_type), CLEAN(input_name(n, k)));
    }
    if (!st) st = const_any(im, idx, 0, &a);
    if (!st) st = const_any(im, idx, 1, &b);
    if (st) return st;
    if (a->kind != b->kind) return node_fail(im, idx, CN_ERR_UNSUPPORTED, "operands of different types (int and float)");
    const value *big = a->count >= b->count ? a : b;
    if (!(a->count == b->count || a->count == 1 || b->count == 1))
        return node_fail(im, idx, CN_ERR_UNSUPPORTED, "only same-shape or single-element operands are supported");
    value v;
    if ((st = new_like(&v, big, big->ndim, big->dims))) return node_fail(im, idx, st, "the result is too large");
    for (size_t k = 0; k < v.count; k++) {
        size_t ia = a->count == 1 ? 0 : k, ib = b->count == 1 ? 0 : k;
        if (v.kind == V_FLOAT) {
            float x = a->f[ia], y = b->f[ib];
            v.f[k] = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y;
            continue;
        }
        int64_t x = a->i[ia], y = b->i[ib], r = 0;
        bool bad = x == BATCH_DIM || y == BATCH_DIM || (op == '/' && y == 0);
        if (!bad) {
            if (op == '+') bad = __builtin_add_overflow(x, y, &r);
            else if (op == '-') bad = __builtin_sub_overflow(x, y, &r);
            else if (op == '*') bad = __builtin_mul_overflow(x, y, &r);
            else { bad = x == INT64_MIN && y == -1; if (!bad) { r = x / y; if ((x % y != 0) && ((x < 0) != (y < 0))) r--; } }
        }
        if (bad || r == BATCH_DIM) {
            free(v.i);
            return node_fail(im, idx, CN_ERR_UNSUPPORTED, "integer arithmetic on the batch size, division by zero or overflow");
        }
        v.i[k] = r;
    }
    return set_constant(im, idx, v);
}

static bool is_constant_value(const importer *im, const char *name) {
    int vi = find_value(im, name);
    return vi >= 0 && (im->values[vi].kind == V_INT || im->values[vi].kind == V_FLOAT);
}

static cn_status op_sub(importer *im, int idx) { return const_binary(im, idx, '-'); }
static cn_status op_mul(importer *im, int idx) { return const_binary(im, idx, '*'); }
static cn_status op_div(importer *im, int idx) { return const_binary(im, idx, '/'); }

/* ---- driver ------------------------------------------------------------------- */

typedef struct { const char *op; cn_status (*fn)(importer *, int); } op_entry;

static cn_status op_maxpool(importer *im, int idx) { return op_pool(im, idx, false); }
static cn_status op_avgpool(importer *im, int idx) { return op_pool(im, idx, true); }
static cn_status op_logsoftmax(importer *im, int idx) { return op_softmax(im, idx, true); }
static cn_status op_plain_softmax(importer *im, int idx) { return op_softmax(im, idx, false); }
static cn_status op_unsqueeze(importer *im, int idx) { return op_squeeze(im, idx, true); }
static cn_status op_squeeze_only(importer *im, int idx) { return op_squeeze(im, idx, false); }

static const op_entry OPS[] = {
    {"Conv", op_conv}, {"BatchNormalization", op_batchnorm}, {"Relu", op_relu}, {"MaxPool", op_maxpool},
    {"AveragePool", op_avgpool}, {"GlobalAveragePool", op_gap}, {"Flatten", op_flatten}, {"Reshape", op_reshape},
    {"Gemm", op_gemm}, {"MatMul", op_matmul}, {"Add", op_add}, {"Pad", op_pad}, {"Constant", op_constant},
    {"LogSoftmax", op_logsoftmax}, {"Softmax", op_plain_softmax}, {"Dropout", op_dropout}, {"Identity", op_identity},
    {"Shape", op_shape}, {"Gather", op_gather}, {"Unsqueeze", op_unsqueeze}, {"Squeeze", op_squeeze_only},
    {"Concat", op_concat}, {"Cast", op_cast}, {"ConstantOfShape", op_constant_of_shape}, {"Slice", op_slice},
    {"Transpose", op_transpose}, {"Sub", op_sub}, {"Mul", op_mul}, {"Div", op_div},
};

/* Ops that only compute constants / aliases may follow a final Softmax. */
static bool is_constant_op(const char *op) {
    return !strcmp(op, "Constant") || !strcmp(op, "Shape") || !strcmp(op, "Gather") || !strcmp(op, "Unsqueeze") ||
           !strcmp(op, "Squeeze") || !strcmp(op, "Concat") || !strcmp(op, "Cast") || !strcmp(op, "Identity") ||
           !strcmp(op, "ConstantOfShape") || !strcmp(op, "Slice") || !strcmp(op, "Transpose") || !strcmp(op, "Sub") ||
           !strcmp(op, "Mul") || !strcmp(op, "Div");
}

static cn_status read_input(importer *im, const Onnx__GraphProto *g) {
    const Onnx__ValueInfoProto *in = NULL;
    int count = 0;
    char names[200] = "";
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *v = g->input[i];
        if (v->name && find_value(im, v->name) >= 0) continue;   /* an initializer listed as input */
        if (count < 3) {
            size_t n = strlen(names);
            snprintf(names + n, sizeof names - n, "%s\"%s\"", count ? ", " : "", CLEAN(v->name));
        }
        count++;
        in = v;
    }
    if (count != 1)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: the graph has %d data inputs (%s); expected one image input [N, C, H, W]",
                       im->file, count, names);
    const char *name = CLEAN(in->name);
    const Onnx__TypeProto *type = in->type;
    if (!type || type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !type->tensor_type)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: graph input \"%s\" is not a tensor", im->file, name);
    const Onnx__TypeProto__Tensor *tt = type->tensor_type;
    if (tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: graph input \"%s\" has element type %s; expected float", im->file, name,
                       dtype_name(tt->elem_type));
    if (!tt->shape || tt->shape->n_dim != 4)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: graph input \"%s\" has %s; expected 4 dimensions [N, C, H, W]", im->file, name,
                       tt->shape ? "a different rank" : "no shape");
    int64_t d[4];
    for (int i = 0; i < 4; i++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[i];
        d[i] = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ? dim->dim_value : -1;
    }
    if (d[1] < 1 || d[1] > LIMIT_CHANNELS || d[2] < 1 || d[2] > LIMIT_SPATIAL || d[3] < 1 || d[3] > LIMIT_SPATIAL)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: graph input \"%s\" has shape [%lld, %lld, %lld, %lld]; expected fixed C, H, W "
                       "(C <= %d, H, W <= %d)", im->file, name, (long long)d[0], (long long)d[1], (long long)d[2],
                       (long long)d[3], LIMIT_CHANNELS, LIMIT_SPATIAL);
    im->input_batch = d[0] > 0 ? d[0] : -1;
    cn_shape s = {(int)d[1], (int)d[2], (int)d[3]};
    value v = {.kind = V_ACT, .act_rank = 4, .act_shape = s, .origin_node = -1};
    int vi;
    cn_status st = add_value(im, in->name, "graph input", v, &vi);
    if (st) return st;
    im->cur = vi;
    im->rank = 4;
    im->shape = s;
    return CN_OK;
}

static bool name_taken(const importer *im, const char *name, int except) {
    for (int j = 0; j < im->num_layers; j++)
        if (j != except && !strcmp(im->layers[j].name, name)) return true;
    return false;
}

/* Module path of a torch node name: "/features/0/Conv" -> "features.0"; "" when there is none. */
static void module_path(const char *node_name, char *out, size_t size) {
    out[0] = '\0';
    if (!node_name || node_name[0] != '/') return;
    const char *last = strrchr(node_name, '/');
    size_t n = (size_t)(last - node_name);
    if (n <= 1 || n >= size) return;
    for (size_t i = 1; i < n; i++) {
        char c = node_name[i];
        if (c == '/') c = '.';
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            { out[0] = '\0'; return; }
        out[i - 1] = c;
    }
    out[n - 1] = '\0';
}

static bool is_weighted(cn_layer_kind kind) {
    return kind == CN_LAYER_CONV2D || kind == CN_LAYER_LINEAR || kind == CN_LAYER_BATCHNORM2D;
}

/* Layer names (state-dict prefixes). Weighted layers take the prefix of their
 * initializer ("conv1.weight" -> "conv1") or else the module path of their node
 * ("/0/Conv" -> "0", as for a conv that torch fused with its BN); if any weighted
 * layer has none or two share one, every layer keeps its default name (its index).
 * Other layers then take their module path, their index, or kind + index,
 * whichever is free. */
static void assign_names(importer *im) {
    char path[32];
    bool use = true;
    for (int i = 0; i < im->num_layers; i++) {
        imp_layer *l = &im->layers[i];
        if (!is_weighted(l->kind)) { l->name[0] = '\0'; continue; }
        if (!l->name[0]) {
            module_path(node_at(im, l->node)->name, path, sizeof path);
            snprintf(l->name, sizeof l->name, "%s", path);
        }
        if (!l->name[0]) use = false;
    }
    for (int i = 0; i < im->num_layers && use; i++)
        if (im->layers[i].name[0] && name_taken(im, im->layers[i].name, i)) use = false;
    if (!use) {
        for (int i = 0; i < im->num_layers; i++) im->layers[i].name[0] = '\0';
        return;
    }
    for (int i = 0; i < im->num_layers; i++) {
        imp_layer *l = &im->layers[i];
        if (l->name[0]) continue;
        char cand[32];
        module_path(node_at(im, l->node)->name, cand, sizeof cand);
        if (!cand[0] || name_taken(im, cand, i)) snprintf(cand, sizeof cand, "%d", i);
        for (int attempt = 0; name_taken(im, cand, i); attempt++)
            snprintf(cand, sizeof cand, "%s%d%s%.0d", cn_layer_kind_name(l->kind), i, attempt ? "_" : "", attempt);
        snprintf(l->name, sizeof l->name, "%s", cand);
    }
}

static cn_status build_model(importer *im, const cn_shape input, const char *producer, cn_model **out) {
    assign_names(im);
    cn_text t = {0};
    cn_text_printf(&t, "# imported from ONNX (%s, opset %d)\n", producer[0] ? producer : "unknown producer", im->opset);
    if (im->softmax) cn_text_printf(&t, "# the graph ended in Softmax: imported as log_softmax (outputs are log-probabilities)\n");
    cn_text_printf(&t, "name onnx-import\ninput %dx%dx%d\n", input.c, input.h, input.w);
    for (int i = 0; i < im->num_layers; i++) {
        const imp_layer *l = &im->layers[i];
        const char *kind = cn_layer_kind_name(l->kind);
        switch (l->kind) {
        case CN_LAYER_CONV2D:
            cn_text_printf(&t, "%s out=%d k=%d stride=%d pad=%d bias=%s", kind, l->out, l->k, l->stride, l->pad, l->has_bias ? "true" : "false");
            break;
        case CN_LAYER_LINEAR:
            cn_text_printf(&t, "%s out=%d bias=%s", kind, l->out, l->has_bias ? "true" : "false");
            break;
        case CN_LAYER_MAXPOOL2D: case CN_LAYER_AVGPOOL2D:
            cn_text_printf(&t, "%s k=%d stride=%d pad=%d", kind, l->k, l->stride, l->pad);
            break;
        case CN_LAYER_BATCHNORM2D:
            cn_text_printf(&t, "%s eps=%.9g", kind, (double)l->eps);
            break;
        default:
            cn_text_printf(&t, "%s", kind);
        }
        if (l->name[0]) cn_text_printf(&t, " name=%s", l->name);
        cn_text_printf(&t, "   # node %d\n", l->node);
    }
    if (t.failed) { free(t.p); return cn_fail(CN_ERR_NOMEM, "%s: out of memory writing the spec", im->file); }
    cn_model *m = NULL;
    cn_status st = cn_model_from_spec(t.p, im->file, 0, &m);
    free(t.p);
    if (st) {
        cn_error_prefix("%s: the imported layers do not form a valid model", im->file);
        return st;
    }
    for (int i = 0; i < im->num_layers; i++) {
        const imp_layer *l = &im->layers[i];
        cn_layer *ml = &m->layers[i];
        if (ml->weight_count != l->wcount || ml->bias_count != l->bcount) {
            cn_model_free(m);
            return cn_fail(CN_ERR_SHAPE, "%s: node %d: layer %d has %zu+%zu parameters, the model expects %zu+%zu",
                           im->file, l->node, i, l->wcount, l->bcount, ml->weight_count, ml->bias_count);
        }
        if (l->wcount) memcpy(m->params + ml->weight_offset, l->w, l->wcount * sizeof(float));
        if (l->bcount) memcpy(m->params + ml->bias_offset, l->b, l->bcount * sizeof(float));
        if (l->kind == CN_LAYER_BATCHNORM2D) {
            float *stats = m->buffers + ml->buffer_offset;
            memcpy(stats, l->mean, l->wcount * sizeof(float));
            memcpy(stats + l->wcount, l->var, l->wcount * sizeof(float));
        }
    }
    cn_model_set_training(m, false);
    *out = m;
    return CN_OK;
}

static void read_metadata(const Onnx__ModelProto *mp, cn_onnx_info *info) {
    const char *mean = NULL, *std = NULL;
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = mp->metadata_props[i];
        if (!e->key || !e->value) continue;
        if (!strcmp(e->key, "normalize_mean")) mean = e->value;
        if (!strcmp(e->key, "normalize_std")) std = e->value;
    }
    if (!mean || !std) return;
    char *end1, *end2;
    errno = 0;
    double m = strtod(mean, &end1), s = strtod(std, &end2);
    if (errno || end1 == mean || *end1 || end2 == std || *end2 || !isfinite(m) || !isfinite(s) || !(s > 0)) return;
    info->has_normalization = 1;
    info->mean = (float)m;
    info->std = (float)s;
}

static cn_status import_model(const Onnx__ModelProto *mp, const char *file, cn_onnx_info *info, cn_model **out) {
    importer *im = cn_calloc(1, sizeof *im);
    if (!im) return CN_ERR_NOMEM;
    im->file = file;
    im->terminal_node = -1;
    im->pad_node = -1;
    cn_status st = CN_OK;
    /* Opset of the default domain; other domains are errors if a node uses them. */
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if ((!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) && o->has_version) im->opset = (int)o->version;
    }
    const Onnx__GraphProto *g = mp->graph;
    if (!g) { st = cn_fail(CN_ERR_FORMAT, "%s: the model has no graph", file); goto done; }
    if (im->opset < 7 || im->opset > 17) {
        st = cn_fail(CN_ERR_UNSUPPORTED, "%s: %s opset %d; supported are opsets 7 to 17", file,
                     im->opset ? "default-domain" : "no default-domain opset, found", im->opset);
        goto done;
    }
    im->graph = g;
    snprintf(info->producer, sizeof info->producer, "%s%s%s", CLEAN(mp->producer_name),
             mp->producer_version && *mp->producer_version ? " " : "", CLEAN(mp->producer_version));
    info->opset = im->opset;
    read_metadata(mp, info);
    if (g->n_node > MAX_NODES || g->n_initializer > MAX_VALUES / 2) {
        st = cn_fail(CN_ERR_UNSUPPORTED, "%s: %zu nodes and %zu initializers; at most %d and %d are supported",
                     file, g->n_node, g->n_initializer, MAX_NODES, MAX_VALUES / 2);
        goto done;
    }
    if (g->n_sparse_initializer) { st = cn_fail(CN_ERR_UNSUPPORTED, "%s: sparse initializers are not supported", file); goto done; }
    size_t expected = g->n_initializer + g->n_input + 3 * g->n_node + 16;
    im->table_size = 1024;
    while (im->table_size < 2 * expected && im->table_size < ((size_t)1 << 22)) im->table_size *= 2;
    im->table = cn_calloc(im->table_size, sizeof *im->table);
    if (!im->table) { st = CN_ERR_NOMEM; goto done; }
    for (size_t i = 0; i < g->n_initializer && !st; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        char what[200];
        snprintf(what, sizeof what, "initializer \"%s\"", CLEAN(t->name));
        value v;
        st = decode_tensor(im, t, what, &v);
        if (!st) {
            st = add_value(im, t->name, what, v, NULL);
            if (st && v.owned) { free(v.f); free(v.i); }
        }
    }
    if (!st) st = read_input(im, g);
    cn_shape input = im->shape;
    for (size_t idx = 0; idx < g->n_node && !st; idx++) {
        const Onnx__NodeProto *n = g->node[idx];
        const char *op = n->op_type ? n->op_type : "";
        if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) {
            st = node_fail(im, (int)idx, CN_ERR_UNSUPPORTED, "operator domain \"%s\" is not supported (only the default ONNX domain)",
                           CLEAN(n->domain));
            break;
        }
        if (im->terminal_node >= 0 && !is_constant_op(op)) {
            st = node_fail(im, (int)idx, CN_ERR_UNSUPPORTED, "follows the Softmax of node %d, which must be the last "
                           "operator (it is imported as log_softmax)", im->terminal_node);
            break;
        }
        const op_entry *e = NULL;
        for (size_t k = 0; k < sizeof OPS / sizeof OPS[0]; k++)
            if (!strcmp(op, OPS[k].op)) { e = &OPS[k]; break; }
        if (!e) {
            st = cn_fail(CN_ERR_UNSUPPORTED, "%s: node %zu \"%s\": operator %s is not supported (supported: %s)", file, idx,
                         CLEAN(n->name), CLEAN(op), SUPPORTED_OPS);
            break;
        }
        st = e->fn(im, (int)idx);
    }
    if (st) goto done;
    if (im->pend_pad) { st = node_fail(im, im->pad_node, CN_ERR_UNSUPPORTED, "zero padding at the end of the graph is not supported"); goto done; }
    if (g->n_output != 1) {
        st = cn_fail(CN_ERR_UNSUPPORTED, "%s: the graph has %zu outputs; expected one (class scores)", file, g->n_output);
        goto done;
    }
    int oi = find_value(im, g->output[0]->name);
    if (oi != im->cur) {
        st = cn_fail(CN_ERR_UNSUPPORTED, "%s: graph output \"%s\" is %s; expected the end of the layer chain \"%s\"", file,
                     CLEAN(g->output[0]->name), oi < 0 ? "not produced by any node" :
                     im->values[oi].kind == V_ACT ? "an earlier activation (the graph branches)" : "a constant",
                     CLEAN(im->values[im->cur].name));
        goto done;
    }
    if (im->num_layers == 0) { st = cn_fail(CN_ERR_UNSUPPORTED, "%s: the graph has no layers", file); goto done; }
    info->softmax_as_log_softmax = im->softmax;
    st = build_model(im, input, info->producer, out);
done:
    free_importer(im);
    free(im);
    return st;
}

cn_status cn_onnx_import_memory(const void *data, size_t size, const char *name, cn_onnx_info *info, cn_model **out) {
    cn_onnx_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    if (!out) return cn_fail(CN_ERR_ARG, "onnx import: no output pointer");
    *out = NULL;
    if (!name) name = "onnx";
    if (!data && size) return cn_fail(CN_ERR_ARG, "%s: no data", name);
    if (size == 0) return cn_fail(CN_ERR_FORMAT, "%s: empty file; expected an ONNX model", name);
    if (size > CN_ONNX_MAX_FILE) return cn_fail(CN_ERR_UNSUPPORTED, "%s: %zu bytes; at most %zu are read", name, size, CN_ONNX_MAX_FILE);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, size, data);
    if (!mp) return cn_fail(CN_ERR_FORMAT, "%s: not a valid ONNX protobuf (ModelProto could not be decoded)", name);
    cn_status st = import_model(mp, name, info, out);
    onnx__model_proto__free_unpacked(mp, NULL);
    return st;
}

cn_status cn_onnx_import_ex(const char *path, cn_onnx_info *info, cn_model **out) {
    if (out) *out = NULL;
    if (!path || !out) return cn_fail(CN_ERR_ARG, "onnx import: no path or output pointer");
    FILE *f = fopen(path, "rb");
    if (!f) return cn_fail(CN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    cn_status st = CN_OK;
    uint8_t *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) st = cn_fail(CN_ERR_IO, "%s: cannot determine the file size", path);
    else if ((unsigned long)size > CN_ONNX_MAX_FILE) st = cn_fail(CN_ERR_UNSUPPORTED, "%s: %ld bytes; at most %zu are read", path, size, CN_ONNX_MAX_FILE);
    else if (!(buf = cn_calloc((size_t)size + 1, 1))) st = CN_ERR_NOMEM;
    else if (fread(buf, 1, (size_t)size, f) != (size_t)size) st = cn_fail(CN_ERR_IO, "%s: read failed", path);
    fclose(f);
    if (!st) st = cn_onnx_import_memory(buf, (size_t)size, path, info, out);
    free(buf);
    return st;
}

cn_status cn_onnx_import(const char *path, cn_model **out) { return cn_onnx_import_ex(path, NULL, out); }
