/* ONNX import, part 1: protobuf and attribute decoding. The importer's value
 * table (names -> constants or activations), TensorProto decoding with every
 * size checked, node attributes and inputs, and the registration of a node's
 * outputs. See io/onnx_import_internal.h. */
#include "io/onnx_import_internal.h"
#include "core/error.h"
#include "core/mem.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cn_status cn_onnx_node_fail(const importer *im, int idx, cn_status st, const char *fmt, ...) {
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const Onnx__NodeProto *n = node_at(im, idx);
    return cn_fail(st, "%s: node %d \"%s\" (%s): %s", im->file, idx, CLEAN(n->name), CLEAN(n->op_type), msg);
}

/* ---- value table --------------------------------------------------------- */

static uint64_t hash_name(const importer *im, const char *s) {
    uint64_t h = 1469598103934665603ull ^ im->hash_seed;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h ^ (h >> 29);
}

int cn_onnx_find_value(const importer *im, const char *name) {
    if (!name || !*name) return -1;
    size_t mask = im->table_size - 1;
    for (size_t pos = hash_name(im, name) & mask;; pos = (pos + 1) & mask) {
        int32_t slot = im->table[pos];
        if (!slot) return -1;
        if (!strcmp(im->values[slot - 1].name, name)) return slot - 1;
    }
}

/* Adds (or, for an existing name, reports) a value; *index gets its position. */
cn_status cn_onnx_add_value(importer *im, const char *name, const char *what, value v, int *index) {
    if (!name || !*name) return cn_fail(CN_ERR_FORMAT, "%s: %s has an empty name", im->file, what);
    if (cn_onnx_find_value(im, name) >= 0)
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
    size_t mask = im->table_size - 1, pos = hash_name(im, name) & mask;
    while (im->table[pos]) pos = (pos + 1) & mask;
    im->table[pos] = (int32_t)im->num_values + 1;
    if (index) *index = (int)im->num_values;
    im->num_values++;
    return CN_OK;
}

/* ---- tensors ------------------------------------------------------------- */

const char *cn_onnx_dtype_name(int t) {
    static const char *names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64",
                                  "string", "bool", "float16", "double", "uint32", "uint64", "complex64",
                                  "complex128", "bfloat16"};
    return t >= 0 && t < (int)(sizeof names / sizeof names[0]) ? names[t] : "unknown";
}

void cn_onnx_dims_text(const int64_t *dims, int ndim, char *buf, size_t size) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
}

/* Decodes a TensorProto into a constant value (float, int or "other"), checking
 * every size. `what` describes it for messages ("initializer \"x\""). */
cn_status cn_onnx_decode_tensor(const importer *im, const Onnx__TensorProto *t, const char *what, value *v) {
    memset(v, 0, sizeof *v);
    v->origin_node = -1;
    char dt[160];
    if (t->n_dims > MAX_DIMS)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: %s has %zu dimensions; at most %d are supported", im->file, what, t->n_dims, MAX_DIMS);
    v->ndim = (int)t->n_dims;
    size_t count = 1;
    for (size_t d = 0; d < t->n_dims; d++) {
        if (t->dims[d] < 0) {
            cn_onnx_dims_text(t->dims, (int)t->n_dims, dt, sizeof dt);
            return cn_fail(CN_ERR_FORMAT, "%s: %s has dims %s: dimensions must be non-negative", im->file, what, dt);
        }
        v->dims[d] = t->dims[d];
        if (!cn_mul_ok(count, (size_t)t->dims[d], &count) || count > MAX_TENSOR_ELEMENTS) {
            cn_onnx_dims_text(t->dims, (int)t->n_dims, dt, sizeof dt);
            return cn_fail(CN_ERR_UNSUPPORTED, "%s: %s has dims %s: more than %zu elements", im->file, what, dt, MAX_TENSOR_ELEMENTS);
        }
    }
    v->count = count;
    cn_onnx_dims_text(t->dims, (int)t->n_dims, dt, sizeof dt);
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
                           im->file, what, dt, cn_onnx_dtype_name(type), count, count * elem, t->raw_data.len);
    } else if (typed != count) {
        return cn_fail(CN_ERR_FORMAT, "%s: %s: dims %s need %zu %s values but the tensor holds %zu",
                       im->file, what, dt, count, cn_onnx_dtype_name(type), typed);
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

/* Rejects attributes outside the comma-separated list `allowed` (at most 64
 * names) and an attribute given twice (onnx.checker refuses it; attr_find
 * would take the first). O(attributes x allowed): a name may occur once, so
 * a bit per allowed name finds repeats. */
cn_status cn_onnx_check_attrs(const importer *im, int idx, const char *allowed) {
    const Onnx__NodeProto *n = node_at(im, idx);
    uint64_t seen = 0;
    for (size_t i = 0; i < n->n_attribute; i++) {
        const char *name = n->attribute[i]->name ? n->attribute[i]->name : "";
        size_t len = strlen(name);
        int slot = -1, k = 0;
        for (const char *p = allowed; *p && slot < 0; k++) {
            size_t w = strcspn(p, ",");
            if (len && w == len && !memcmp(p, name, len)) slot = k;
            p += w + (p[w] == ',');
        }
        if (slot < 0)
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "attribute \"%s\" is not supported (expected only %s)",
                             CLEAN(name), *allowed ? allowed : "none");
        if (seen >> slot & 1)
            return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "attribute \"%s\" is given twice; expected each attribute once",
                             CLEAN(name));
        seen |= (uint64_t)1 << slot;
    }
    return CN_OK;
}

/* Attribute `name` of node idx into *out, NULL when absent. A present one must be of `type`
 * (int, float or string), or carry that kind of value without a type (older exporters);
 * `expected` names the kind for the message. */
static cn_status typed_attr(const importer *im, int idx, const char *name, Onnx__AttributeProto__AttributeType type,
                            const char *expected, const Onnx__AttributeProto **out) {
    const Onnx__AttributeProto *a = attr_find(node_at(im, idx), name);
    *out = NULL;
    if (!a) return CN_OK;
    bool has_value = type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT ? a->has_i
                   : type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT ? a->has_f : a->has_s;
    if (!has_value && !(a->has_type && a->type == type))
        return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "attribute %s: expected %s", name, expected);
    *out = a;
    return CN_OK;
}

cn_status cn_onnx_attr_int(const importer *im, int idx, const char *name, int64_t dflt, int64_t *out) {
    const Onnx__AttributeProto *a;
    *out = dflt;
    cn_status st = typed_attr(im, idx, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, "an integer", &a);
    if (!st && a) *out = a->i;
    return st;
}

cn_status cn_onnx_attr_float(const importer *im, int idx, const char *name, float dflt, float *out) {
    const Onnx__AttributeProto *a;
    *out = dflt;
    cn_status st = typed_attr(im, idx, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, "a float", &a);
    if (st || !a) return st;
    if (!isfinite(a->f)) return cn_onnx_node_fail(im, idx, CN_ERR_NUMERIC, "attribute %s is %g; expected a finite number", name, (double)a->f);
    *out = a->f;
    return CN_OK;
}

/* INTS attribute: *count = -1 when absent. */
cn_status cn_onnx_attr_ints(const importer *im, int idx, const char *name, const int64_t **vals, int *count) {
    const Onnx__AttributeProto *a = attr_find(node_at(im, idx), name);
    *vals = NULL;
    *count = -1;
    if (!a) return CN_OK;
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "attribute %s: expected a list of integers", name);
    if (a->n_ints > 16) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "attribute %s has %zu values", name, a->n_ints);
    *vals = a->ints;
    *count = (int)a->n_ints;
    return CN_OK;
}

cn_status cn_onnx_attr_string(const importer *im, int idx, const char *name, const char *dflt, char *out, size_t size) {
    const Onnx__AttributeProto *a;
    snprintf(out, size, "%s", dflt);
    cn_status st = typed_attr(im, idx, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, "a string", &a);
    if (st || !a) return st;
    size_t n = a->s.len < size - 1 ? a->s.len : size - 1;
    if (n) memcpy(out, a->s.data, n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++) if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) out[i] = '?';   /* as clean() */
    return CN_OK;
}

/* ---- inputs ---------------------------------------------------------------- */


cn_status cn_onnx_check_input_count(const importer *im, int idx, size_t lo, size_t hi) {
    const Onnx__NodeProto *n = node_at(im, idx);
    size_t count = n->n_input;
    while (count > lo && !*input_name(n, count - 1)) count--;   /* trailing optional inputs left empty */
    if (count < lo || count > hi) {
        if (lo == hi) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "has %zu inputs; expected %zu", n->n_input, lo);
        return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "has %zu inputs; expected %zu to %zu", n->n_input, lo, hi);
    }
    for (size_t i = 0; i < lo; i++)
        if (!*input_name(n, i)) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "required input %zu is empty", i);
    if (n->n_output < 1 || !n->output[0] || !*n->output[0])
        return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "has no output");
    return CN_OK;
}

cn_status cn_onnx_check_node(const importer *im, int idx, size_t lo, size_t hi, const char *allowed) {
    cn_status st = cn_onnx_check_input_count(im, idx, lo, hi);
    return st ? st : cn_onnx_check_attrs(im, idx, allowed);
}

/* Describes why value `vi` (input `name`) is not what a node needed. */
cn_status cn_onnx_wrong_value(const importer *im, int idx, const char *name, int vi, const char *expected) {
    if (vi < 0) {
        return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "input \"%s\" has no initializer and is not produced by an earlier node "
                         "(expected %s)", CLEAN(name), expected);
    }
    const value *v = &im->values[vi];
    switch (v->kind) {
    case V_ACT:
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "input \"%s\" is a computed activation; expected %s",
                         CLEAN(name), expected);
    case V_UNAVAILABLE:
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "input \"%s\" is a secondary output of node %d, which convnet "
                         "does not compute (expected %s)", CLEAN(name), v->origin_node, expected);
    case V_OTHER:
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "input \"%s\" has data type %s; expected %s",
                         CLEAN(name), cn_onnx_dtype_name(v->dtype), expected);
    case V_INT:
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "input \"%s\" is an integer tensor; expected %s", CLEAN(name), expected);
    case V_FLOAT:
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "input \"%s\" is a float constant; expected %s", CLEAN(name), expected);
    }
    return CN_ERR_FORMAT;
}

/* The node's data input (input 0) must be the current activation. */
cn_status cn_onnx_data_input(const importer *im, int idx, size_t input) {
    const Onnx__NodeProto *n = node_at(im, idx);
    const char *name = input_name(n, input);
    int vi = cn_onnx_find_value(im, name);
    if (vi == im->cur) return CN_OK;
    if (vi >= 0 && im->values[vi].kind == V_ACT)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "reads \"%s\", an earlier activation, while the chain is at \"%s\": "
                         "the graph branches, but convnet imports only sequential chains", CLEAN(name),
                         CLEAN(im->values[im->cur].name));
    return cn_onnx_wrong_value(im, idx, name, vi, "the activation from the previous layer");
}

/* Input `input` as a float constant with `ndim` dims (ndim < 0: any); *v gets it. */
cn_status cn_onnx_const_float(const importer *im, int idx, size_t input, int ndim, const value **out) {
    const Onnx__NodeProto *n = node_at(im, idx);
    const char *name = input_name(n, input);
    int vi = cn_onnx_find_value(im, name);
    if (vi < 0 || im->values[vi].kind != V_FLOAT) return cn_onnx_wrong_value(im, idx, name, vi, "a float initializer");
    const value *v = &im->values[vi];
    if (ndim >= 0 && v->ndim != ndim) {
        char dt[160];
        cn_onnx_dims_text(v->dims, v->ndim, dt, sizeof dt);
        return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "initializer \"%s\" has dims %s; expected %d dimensions", CLEAN(name), dt, ndim);
    }
    for (size_t k = 0; k < v->count; k++)
        if (!isfinite(v->f[k]))
            return cn_onnx_node_fail(im, idx, CN_ERR_NUMERIC, "initializer \"%s\" element %zu is %g; weights must be finite",
                             CLEAN(name), k, (double)v->f[k]);
    *out = v;
    return CN_OK;
}

cn_status cn_onnx_const_int(const importer *im, int idx, size_t input, const value **out) {
    const Onnx__NodeProto *n = node_at(im, idx);
    const char *name = input_name(n, input);
    int vi = cn_onnx_find_value(im, name);
    if (vi < 0 || im->values[vi].kind != V_INT) return cn_onnx_wrong_value(im, idx, name, vi, "a constant integer tensor");
    *out = &im->values[vi];
    return CN_OK;
}

/* A float vector of `count` elements: dims [count] or [1, count] (1-element scalars broadcast if allow_scalar). */
bool cn_onnx_is_vector_of(const value *v, int count, bool allow_scalar) {
    if (allow_scalar && v->count == 1) return true;
    if ((int64_t)v->count != count) return false;
    for (int d = 0; d < v->ndim; d++) if (v->dims[d] != 1 && v->dims[d] != count) return false;
    return true;
}

float *cn_onnx_copy_floats(const float *src, size_t n) {
    float *d = cn_calloc(n ? n : 1, sizeof *d);
    if (d && n) memcpy(d, src, n * sizeof *d);
    return d;
}

/* ---- outputs ----------------------------------------------------------------- */

/* Registers output 0 as the new current activation and every other output as unavailable. */
cn_status cn_onnx_set_activation(importer *im, int idx, int rank, cn_shape shape) {
    const Onnx__NodeProto *n = node_at(im, idx);
    char what[200];
    snprintf(what, sizeof what, "output of node %d \"%s\"", idx, CLEAN(n->name));
    bool added = im->num_layers > 0 && im->layers[im->num_layers - 1].node == idx;
    value v = {.kind = V_ACT, .act_rank = rank, .act_shape = shape, .origin_node = idx,
               .layer = added ? im->num_layers - 1 : im->values[im->cur].layer};
    int vi;
    cn_status st = cn_onnx_add_value(im, n->output[0], what, v, &vi);
    if (st) return st;
    for (size_t o = 1; o < n->n_output; o++) {
        if (!n->output[o] || !*n->output[o]) continue;
        value u = {.kind = V_UNAVAILABLE, .origin_node = idx};
        st = cn_onnx_add_value(im, n->output[o], what, u, NULL);
        if (st) return st;
    }
    im->cur = vi;
    im->rank = rank;
    im->shape = shape;
    return CN_OK;
}

/* Registers output 0 as a constant (takes ownership of v's arrays). */
cn_status cn_onnx_set_constant(importer *im, int idx, value v) {
    const Onnx__NodeProto *n = node_at(im, idx);
    char what[200];
    snprintf(what, sizeof what, "output of node %d \"%s\"", idx, CLEAN(n->name));
    v.origin_node = idx;
    cn_status st = cn_onnx_add_value(im, n->output[0], what, v, NULL);
    if (st && v.owned) { free(v.f); free(v.i); }
    return st;
}

/* ---- layers ------------------------------------------------------------------- */
