/* ONNX import, part 3: the constant-folding shape interpreter. Constant nodes
 * and the int64/float arithmetic torch emits for x.view(x.size(0), -1) and
 * F.pad (Shape, Gather, (Un)Squeeze, Concat, Cast, ConstantOfShape, Slice,
 * Transpose, Reshape/Add/Sub/Mul/Div of constants) are evaluated at import,
 * with the batch size kept symbolic (BATCH_DIM). See io/onnx_import_internal.h. */
#include "io/onnx_import_internal.h"
#include "core/error.h"
#include "core/mem.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of a Constant's value_float(s) (floats) or value_int(s) attribute a: one value (0-d)
 * or a list (1-D). Int values equal to BATCH_DIM move off it (it marks the batch size). */
static cn_status attribute_value(const importer *im, int idx, const Onnx__AttributeProto *a, bool floats, value *v) {
    bool one = !strcmp(a->name, floats ? "value_float" : "value_int");
    size_t count = one ? 1 : floats ? a->n_floats : a->n_ints;
    if (count > MAX_TENSOR_ELEMENTS) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "too many values");
    v->kind = floats ? V_FLOAT : V_INT; v->ndim = one ? 0 : 1; v->dims[0] = (int64_t)count; v->count = count; v->owned = true;
    if (floats) {
        v->f = cn_calloc(count ? count : 1, sizeof *v->f);
        if (!v->f) return CN_ERR_NOMEM;
        if (one) v->f[0] = a->f; else if (count) memcpy(v->f, a->floats, count * sizeof *v->f);
    } else {
        v->i = cn_calloc(count ? count : 1, sizeof *v->i);
        if (!v->i) return CN_ERR_NOMEM;
        if (one) v->i[0] = a->i; else if (count) memcpy(v->i, a->ints, count * sizeof *v->i);
        for (size_t k = 0; k < count; k++) if (v->i[k] == BATCH_DIM) v->i[k] = BATCH_DIM + 1;
    }
    return CN_OK;
}

static cn_status op_constant(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = cn_onnx_check_node(im, idx, 0, 0, "value,value_float,value_floats,value_int,value_ints");
    if (st) return st;
    if (n->n_attribute != 1) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "expected exactly one value attribute");
    const Onnx__AttributeProto *a = n->attribute[0];
    value v = {0};
    const char *name = a->name;
    if (!strcmp(name, "value")) {
        if (!a->t) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "attribute value holds no tensor");
        char what[200];
        snprintf(what, sizeof what, "node %d \"%s\" (Constant) value", idx, CLEAN(n->name));
        if ((st = cn_onnx_decode_tensor(im, a->t, what, &v))) return st;
    } else {
        bool floats = !strcmp(name, "value_float") || !strcmp(name, "value_floats");
        if ((st = attribute_value(im, idx, a, floats, &v))) return st;
    }
    return cn_onnx_set_constant(im, idx, v);
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
    cn_status st = cn_onnx_check_node(im, idx, 1, 1, "start,end");
    if (st) return st;
    int vi = cn_onnx_find_value(im, input_name(n, 0));
    if (vi < 0 || im->values[vi].kind != V_ACT) {
        if (vi >= 0 && (im->values[vi].kind == V_FLOAT || im->values[vi].kind == V_INT)) {
            const value *c = &im->values[vi];
            value v;
            if ((st = new_ints(&v, 1, (int64_t[]){c->ndim}, (size_t)c->ndim))) return st;
            for (int d = 0; d < c->ndim; d++) v.i[d] = c->dims[d];
            return cn_onnx_set_constant(im, idx, v);
        }
        return cn_onnx_wrong_value(im, idx, input_name(n, 0), vi, "a tensor");
    }
    const value *a = &im->values[vi];
    int64_t full[4] = {BATCH_DIM, a->act_shape.c, a->act_shape.h, a->act_shape.w};
    if (a->act_rank == 2) full[1] = a->act_shape.c;
    int rank = a->act_rank;
    int64_t start, end;
    if ((st = cn_onnx_attr_int(im, idx, "start", 0, &start))) return st;
    if ((st = cn_onnx_attr_int(im, idx, "end", rank, &end))) return st;
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    if (start < 0) start = 0;
    if (end > rank) end = rank;
    if (end < start) end = start;
    value v;
    if ((st = new_ints(&v, 1, (int64_t[]){end - start}, (size_t)(end - start)))) return st;
    for (int64_t d = start; d < end; d++) v.i[d - start] = full[d];
    return cn_onnx_set_constant(im, idx, v);
}

static cn_status op_gather(importer *im, int idx) {
    cn_status st = cn_onnx_check_node(im, idx, 2, 2, "axis");
    if (st) return st;
    const value *data, *ind;
    int64_t axis;
    if ((st = cn_onnx_const_int(im, idx, 0, &data))) return st;
    if ((st = cn_onnx_const_int(im, idx, 1, &ind))) return st;
    if ((st = cn_onnx_attr_int(im, idx, "axis", 0, &axis))) return st;
    if (data->ndim != 1 || (axis != 0 && axis != -1) || ind->ndim > 1)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "only gathering from a 1-D shape vector is supported");
    value v;
    if ((st = new_ints(&v, ind->ndim, ind->dims, ind->count))) return st;
    for (size_t k = 0; k < ind->count; k++) {
        int64_t j = ind->i[k];
        if (j < 0) j += (int64_t)data->count;
        if (j < 0 || j >= (int64_t)data->count) {
            free(v.i);
            return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "index %lld is out of range for %zu values", (long long)ind->i[k], data->count);
        }
        v.i[k] = data->i[j];
    }
    return cn_onnx_set_constant(im, idx, v);
}

/* Unsqueeze / Squeeze change only the dims of a small integer tensor. */
static cn_status op_squeeze(importer *im, int idx, bool unsqueeze) {
    const Onnx__NodeProto *n = node_at(im, idx);
    bool axes_input = im->opset >= 13;
    cn_status st = cn_onnx_check_node(im, idx, unsqueeze && axes_input ? 2 : 1, axes_input ? 2 : 1, axes_input ? "" : "axes");
    if (st) return st;
    const value *data;
    if ((st = cn_onnx_const_int(im, idx, 0, &data))) return st;
    const int64_t *axes = NULL;
    int naxes = -1;
    if (axes_input) {
        if (*input_name(n, 1)) {
            const value *av;
            if ((st = cn_onnx_const_int(im, idx, 1, &av))) return st;
            if (av->count > MAX_DIMS) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "too many axes");
            axes = av->i;
            naxes = (int)av->count;
        }
    } else if ((st = cn_onnx_attr_ints(im, idx, "axes", &axes, &naxes))) {
        return st;
    }
    int64_t dims[MAX_DIMS];
    int nd = 0;
    if (unsqueeze) {
        if (naxes < 0) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "axes are missing");
        int out_rank = data->ndim + naxes;
        if (out_rank > MAX_DIMS) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "result has more than %d dimensions", MAX_DIMS);
        bool inserted[MAX_DIMS] = {false};
        for (int k = 0; k < naxes; k++) {
            int64_t a = axes[k] < 0 ? axes[k] + out_rank : axes[k];
            if (a < 0 || a >= out_rank || inserted[a]) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "invalid axes");
            inserted[a] = true;
        }
        for (int d = 0, src = 0; d < out_rank; d++) dims[nd++] = inserted[d] ? 1 : data->dims[src++];
    } else {
        bool drop[MAX_DIMS] = {false};
        for (int k = 0; k < naxes; k++) {
            int64_t a = axes[k] < 0 ? axes[k] + data->ndim : axes[k];
            if (a < 0 || a >= data->ndim || data->dims[a] != 1) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "invalid axes");
            drop[a] = true;
        }
        for (int d = 0; d < data->ndim; d++)
            if (!(naxes < 0 ? data->dims[d] == 1 : drop[d])) dims[nd++] = data->dims[d];
    }
    value v;
    if ((st = new_ints(&v, nd, dims, data->count))) return st;
    if (data->count) memcpy(v.i, data->i, data->count * sizeof *v.i);
    return cn_onnx_set_constant(im, idx, v);
}

static cn_status op_concat(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = cn_onnx_check_node(im, idx, 1, 16, "axis");
    if (st) return st;
    int64_t axis;
    if ((st = cn_onnx_attr_int(im, idx, "axis", 0, &axis))) return st;
    size_t total = 0;
    const value *parts[16];
    size_t count = n->n_input < 16 ? n->n_input : 16;
    for (size_t k = 0; k < count; k++) {
        if ((st = cn_onnx_const_int(im, idx, k, &parts[k]))) return st;
        if (parts[k]->ndim != 1 || (axis != 0 && axis != -1) || parts[k]->count > 64)
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "only concatenating 1-D shape vectors is supported");
        total += parts[k]->count;
    }
    value v;
    if ((st = new_ints(&v, 1, (int64_t[]){(int64_t)total}, total))) return st;
    size_t at = 0;
    for (size_t k = 0; k < count; k++)
        for (size_t j = 0; j < parts[k]->count; j++) v.i[at++] = parts[k]->i[j];
    return cn_onnx_set_constant(im, idx, v);
}

static cn_status op_cast(importer *im, int idx) {
    cn_status st = cn_onnx_check_node(im, idx, 1, 1, "to,saturate");
    if (st) return st;
    const value *data;
    int64_t to;
    if ((st = cn_onnx_const_int(im, idx, 0, &data))) return st;
    if ((st = cn_onnx_attr_int(im, idx, "to", 0, &to))) return st;
    if (to != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && to != ONNX__TENSOR_PROTO__DATA_TYPE__INT32)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "cast of a shape to %s: only int32/int64 are supported", cn_onnx_dtype_name((int)to));
    value v = *data;
    v.owned = false;
    return cn_onnx_set_constant(im, idx, v);
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

/* A new constant *v of dims (nd) whose element at (row-major) index is data's element
 * base + sum over d of index[d] * stride[d]: a strided view of data (Transpose, Slice). */
static cn_status strided_copy(const value *data, int nd, const int64_t *dims, int64_t base, const int64_t *stride, value *v) {
    cn_status st = new_like(v, data, nd, dims);
    if (st) return st;
    int64_t index[MAX_DIMS] = {0};
    for (size_t k = 0; k < v->count; k++) {
        int64_t off = base;
        for (int d = 0; d < nd; d++) off += index[d] * stride[d];
        copy_element(v, k, data, (size_t)off);
        for (int d = nd - 1; d >= 0 && ++index[d] == dims[d]; d--) index[d] = 0;
    }
    return CN_OK;
}

/* A constant input (int or float) of any shape. */
static cn_status const_any(const importer *im, int idx, size_t input, const value **out) {
    const Onnx__NodeProto *n = node_at(im, idx);
    const char *name = input_name(n, input);
    int vi = cn_onnx_find_value(im, name);
    if (vi < 0 || (im->values[vi].kind != V_INT && im->values[vi].kind != V_FLOAT))
        return cn_onnx_wrong_value(im, idx, name, vi, "a constant tensor");
    *out = &im->values[vi];
    return CN_OK;
}

/* ConstantOfShape: a filled constant (torch builds F.pad's pads with it). */
static cn_status op_constant_of_shape(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = cn_onnx_check_node(im, idx, 1, 1, "value");
    if (st) return st;
    const value *shape;
    if ((st = cn_onnx_const_int(im, idx, 0, &shape))) return st;
    /* A 0-d shape (torch computes it from scalars when it does not fold constants) counts as a 1-D list. */
    if (shape->ndim > 1 || shape->count > MAX_DIMS)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "the shape must be a 1-D list of at most %d sizes", MAX_DIMS);
    value fill = {.kind = V_FLOAT, .count = 1, .f = (float[]){0.0f}};
    const Onnx__AttributeProto *a = attr_find(n, "value");
    value decoded = {0};
    if (a) {
        if (!a->t) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "attribute value holds no tensor");
        if ((st = cn_onnx_decode_tensor(im, a->t, "ConstantOfShape value", &decoded))) return st;
        if ((decoded.kind != V_FLOAT && decoded.kind != V_INT) || decoded.count != 1) {
            if (decoded.owned) { free(decoded.f); free(decoded.i); }
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "value must be one int or float element");
        }
        fill = decoded;
    }
    for (size_t d = 0; d < shape->count; d++)
        if (shape->i[d] < 0) {
            if (decoded.owned) { free(decoded.f); free(decoded.i); }
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "the shape depends on the batch size or is negative");
        }
    value v;
    st = new_like(&v, &fill, (int)shape->count, shape->i);
    if (!st) for (size_t k = 0; k < v.count; k++) copy_element(&v, k, &fill, 0);
    if (decoded.owned) { free(decoded.f); free(decoded.i); }
    if (st) return cn_onnx_node_fail(im, idx, st, "the result is too large");
    return cn_onnx_set_constant(im, idx, v);
}

static cn_status op_transpose(importer *im, int idx) {
    cn_status st = cn_onnx_check_node(im, idx, 1, 1, "perm");
    if (st) return st;
    const value *data;
    if ((st = const_any(im, idx, 0, &data))) return st;
    const int64_t *perm;
    int np;
    if ((st = cn_onnx_attr_ints(im, idx, "perm", &perm, &np))) return st;
    int nd = data->ndim;
    int64_t p[MAX_DIMS], dims[MAX_DIMS], in_strides[MAX_DIMS];
    bool seen[MAX_DIMS] = {false};
    if (np >= 0 && np != nd) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "perm has %d entries for a %d-D tensor", np, nd);
    for (int d = 0; d < nd; d++) {
        p[d] = np >= 0 ? perm[d] : nd - 1 - d;
        if (p[d] < 0 || p[d] >= nd || seen[p[d]]) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "perm is not a permutation");
        seen[p[d]] = true;
        dims[d] = data->dims[p[d]];
    }
    row_major_strides(data, in_strides);
    int64_t stride[MAX_DIMS];   /* output axis d walks input axis p[d] */
    for (int d = 0; d < nd; d++) stride[d] = in_strides[p[d]];
    value v;
    if ((st = strided_copy(data, nd, dims, 0, stride, &v))) return st;
    return cn_onnx_set_constant(im, idx, v);
}

static cn_status op_slice(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    bool inputs = im->opset >= 10;
    cn_status st = cn_onnx_check_node(im, idx, inputs ? 3 : 1, inputs ? 5 : 1, inputs ? "" : "starts,ends,axes");
    if (st) return st;
    const value *data;
    if ((st = const_any(im, idx, 0, &data))) return st;
    const int64_t *starts, *ends, *axes = NULL, *steps = NULL;
    int ns, ne, na = -1, nst = -1;
    if (inputs) {
        const value *v[4] = {NULL, NULL, NULL, NULL};
        for (size_t k = 1; k <= 4; k++)
            if (*input_name(n, k) && (st = cn_onnx_const_int(im, idx, k, &v[k - 1]))) return st;
        starts = v[0]->i; ns = (int)v[0]->count;
        ends = v[1]->i; ne = (int)v[1]->count;
        if (v[2]) { axes = v[2]->i; na = (int)v[2]->count; }
        if (v[3]) { steps = v[3]->i; nst = (int)v[3]->count; }
    } else {
        if ((st = cn_onnx_attr_ints(im, idx, "starts", &starts, &ns))) return st;
        if ((st = cn_onnx_attr_ints(im, idx, "ends", &ends, &ne))) return st;
        if ((st = cn_onnx_attr_ints(im, idx, "axes", &axes, &na))) return st;
    }
    int nd = data->ndim;
    if (ns < 0 || ns != ne || ns > nd || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "starts, ends, axes and steps must have one entry per sliced axis");
    int64_t begin[MAX_DIMS], step[MAX_DIMS], dims[MAX_DIMS], in_strides[MAX_DIMS];
    bool used[MAX_DIMS] = {false};
    for (int d = 0; d < nd; d++) { begin[d] = 0; step[d] = 1; dims[d] = data->dims[d]; }
    for (int k = 0; k < ns; k++) {
        int64_t a = axes ? axes[k] : k;
        if (a < 0) a += nd;
        if (a < 0 || a >= nd || used[a]) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "invalid axes");
        used[a] = true;
        int64_t dim = data->dims[a], s = steps ? steps[k] : 1, b = starts[k], e = ends[k];
        if (s == 0) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "step 0");
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
    int64_t base = 0, stride[MAX_DIMS];   /* element index[d] of axis d is begin[d] + index[d] * step[d] */
    for (int d = 0; d < nd; d++) {
        base += begin[d] * in_strides[d];
        stride[d] = step[d] * in_strides[d];
    }
    value v;
    if ((st = strided_copy(data, nd, dims, base, stride, &v))) return st;
    return cn_onnx_set_constant(im, idx, v);
}

/* Reshape of a constant (torch's F.pad lowering reshapes its pads list). */
cn_status cn_onnx_reshape_constant(importer *im, int idx, const value *data, const value *shape, bool allowzero) {
    if (shape->ndim != 1 || shape->count > MAX_DIMS)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "the target shape must be a 1-D list of at most %d sizes", MAX_DIMS);
    int64_t dims[MAX_DIMS];
    int infer = -1;
    size_t known = 1;
    for (size_t d = 0; d < shape->count; d++) {
        int64_t x = shape->i[d];
        if (x == 0 && !allowzero) x = (int)d < data->ndim ? data->dims[d] : -2;
        if (x == -1 && infer < 0) { infer = (int)d; dims[d] = 1; continue; }
        if (x < 0) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "invalid target size %lld", (long long)shape->i[d]);
        dims[d] = x;
        if (!cn_mul_ok(known, (size_t)x, &known)) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "target shape overflows");
    }
    if (infer >= 0) {
        if (known == 0 || data->count % known) return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "cannot infer the -1 size");
        dims[infer] = (int64_t)(data->count / known);
        known = data->count;
    }
    if (known != data->count)
        return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "reshape of %zu elements to a shape with %zu", data->count, known);
    value v;
    cn_status st = new_like(&v, data, (int)shape->count, dims);
    if (st) return st;
    for (size_t k = 0; k < v.count; k++) copy_element(&v, k, data, k);
    return cn_onnx_set_constant(im, idx, v);
}


/* Add / Sub / Mul / Div of two constants (torch's shape arithmetic without
 * constant folding): same shapes, or one side a single element. */
cn_status cn_onnx_const_binary(importer *im, int idx, char op) {
    const value *a, *b;
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = cn_onnx_check_node(im, idx, 2, 2, "");
    for (size_t k = 0; !st && k < 2; k++) {
        int vi = cn_onnx_find_value(im, input_name(n, k));
        if (vi >= 0 && im->values[vi].kind == V_ACT)
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "operator %s on the activation \"%s\" is not supported "
                             "(only on constants, or Add as a bias after Conv/Gemm/MatMul)", CLEAN(n->op_type), CLEAN(input_name(n, k)));
    }
    if (!st) st = const_any(im, idx, 0, &a);
    if (!st) st = const_any(im, idx, 1, &b);
    if (st) return st;
    if (a->kind != b->kind) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "operands of different types (int and float)");
    const value *big = a->count >= b->count ? a : b;
    if (!(a->count == b->count || a->count == 1 || b->count == 1))
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "only same-shape or single-element operands are supported");
    value v;
    if ((st = new_like(&v, big, big->ndim, big->dims))) return cn_onnx_node_fail(im, idx, st, "the result is too large");
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
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "integer arithmetic on the batch size, division by zero or overflow");
        }
        v.i[k] = r;
    }
    return cn_onnx_set_constant(im, idx, v);
}

bool cn_onnx_is_constant_value(const importer *im, const char *name) {
    int vi = cn_onnx_find_value(im, name);
    return vi >= 0 && (im->values[vi].kind == V_INT || im->values[vi].kind == V_FLOAT);
}

static cn_status op_sub(importer *im, int idx) { return cn_onnx_const_binary(im, idx, '-'); }
static cn_status op_mul(importer *im, int idx) { return cn_onnx_const_binary(im, idx, '*'); }
static cn_status op_div(importer *im, int idx) { return cn_onnx_const_binary(im, idx, '/'); }

static cn_status op_unsqueeze(importer *im, int idx) { return op_squeeze(im, idx, true); }
static cn_status op_squeeze_only(importer *im, int idx) { return op_squeeze(im, idx, false); }

const cn_onnx_op CN_ONNX_CONSTANT_OPS[] = {
    {"Constant", op_constant}, {"Shape", op_shape}, {"Gather", op_gather}, {"Unsqueeze", op_unsqueeze},
    {"Squeeze", op_squeeze_only}, {"Concat", op_concat}, {"Cast", op_cast}, {"ConstantOfShape", op_constant_of_shape},
    {"Slice", op_slice}, {"Transpose", op_transpose}, {"Sub", op_sub}, {"Mul", op_mul}, {"Div", op_div}, {NULL, NULL},
};
