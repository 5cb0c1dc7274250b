/* ONNX import, part 2: op-to-layer translation. Each compute node (Conv,
 * BatchNormalization, Relu, pools, Flatten/Reshape, Gemm/MatMul + Add bias,
 * Pad, Softmax, Dropout, Identity) reads the current activation and appends
 * a layer or passes the activation on. See io/onnx_import_internal.h. */
#include "io/onnx_import_internal.h"
#include "core/error.h"
#include "core/mem.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static imp_layer *new_layer(importer *im, int idx, cn_layer_kind kind) {
    if (im->num_layers >= MAX_LAYERS) {
        cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "the model has more than %d layers", MAX_LAYERS);
        return NULL;
    }
    imp_layer *l = &im->layers[im->num_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->node = idx;
    l->num_from = 1;
    l->from[0] = im->values[im->cur].layer;
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

/* The checks of a node that reads the current activation: cn_onnx_check_node, then input 0
 * must be that activation. */
static cn_status check_data_node(const importer *im, int idx, size_t lo, size_t hi, const char *allowed) {
    cn_status st = cn_onnx_check_node(im, idx, lo, hi, allowed);
    return st ? st : cn_onnx_data_input(im, idx, 0);
}

/* The node's output becomes the current activation, the output of a layer without weights
 * (so a constant added next is no bias). */
static cn_status set_unweighted_activation(importer *im, int idx, int rank, cn_shape shape) {
    cn_status st = cn_onnx_set_activation(im, idx, rank, shape);
    im->fresh_weighted = false;
    return st;
}

static cn_status need_rank(const importer *im, int idx, int rank) {
    if (im->rank == rank) return CN_OK;
    if (rank == 4)
        return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "needs an N x C x H x W input but gets N x %d (already flattened)", im->shape.c);
    return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "needs an N x F input but gets N x %d x %d x %d; expected a Flatten before it",
                     im->shape.c, im->shape.h, im->shape.w);
}

/* Validates square kernel_shape / strides / pads / dilations of a 2-D window operator.
 * weight_k > 0: the kernel size from the weight tensor (kernel_shape is then optional).
 * dil_out NULL: dilations must be 1; else it gets the (equal) dilation. */
static cn_status window_attrs(importer *im, int idx, int weight_k, int *k_out, int *stride_out, int *pad_out, int *dil_out) {
    const int64_t *ks, *strides, *pads, *dil;
    int nk, ns, np, nd;
    char auto_pad[32];
    cn_status st = cn_onnx_attr_ints(im, idx, "kernel_shape", &ks, &nk);
    if (!st) st = cn_onnx_attr_ints(im, idx, "strides", &strides, &ns);
    if (!st) st = cn_onnx_attr_ints(im, idx, "pads", &pads, &np);
    if (!st) st = cn_onnx_attr_ints(im, idx, "dilations", &dil, &nd);
    if (!st) st = cn_onnx_attr_string(im, idx, "auto_pad", "NOTSET", auto_pad, sizeof auto_pad);
    if (st) return st;
    int k = weight_k;
    if (nk >= 0) {
        if (nk != 2 || ks[0] != ks[1] || ks[0] < 1 || ks[0] > LIMIT_KERNEL)
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "kernel_shape must be two equal sizes in [1, %d] (square kernels only)", LIMIT_KERNEL);
        if (weight_k > 0 && ks[0] != weight_k)
            return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "kernel_shape [%lld, %lld] does not match the %dx%d weight",
                             (long long)ks[0], (long long)ks[1], weight_k, weight_k);
        k = (int)ks[0];
    } else if (weight_k <= 0) {
        return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "attribute kernel_shape is missing");
    }
    int stride = 1;
    if (ns >= 0) {
        if (ns != 2 || strides[0] != strides[1] || strides[0] < 1 || strides[0] > LIMIT_KERNEL)
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "strides must be two equal values in [1, %d]", LIMIT_KERNEL);
        stride = (int)strides[0];
    }
    int dilation = 1;
    if (nd >= 0 && dil_out) {
        if (nd != 2 || dil[0] != dil[1] || dil[0] < 1 || dil[0] > LIMIT_KERNEL)
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "dilations must be two equal values in [1, %d]", LIMIT_KERNEL);
        dilation = (int)dil[0];
    } else if (nd >= 0) {
        for (int d = 0; d < nd; d++)
            if (dil[d] != 1) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "dilations must be 1 (dilated pooling windows are not supported)");
    }
    int pad = 0;
    if (!strcmp(auto_pad, "NOTSET")) {
        if (np >= 0) {
            if (np != 4 || pads[0] != pads[1] || pads[0] != pads[2] || pads[0] != pads[3] || pads[0] < 0 || pads[0] > LIMIT_KERNEL)
                return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "pads must be 4 equal values in [0, %d] (symmetric padding only)", LIMIT_KERNEL);
            pad = (int)pads[0];
        }
    } else if (!strcmp(auto_pad, "VALID")) {
        pad = 0;
    } else if (!strcmp(auto_pad, "SAME_UPPER") || !strcmp(auto_pad, "SAME_LOWER")) {
        if (stride != 1 || k % 2 == 0)
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "auto_pad=%s is supported only with stride 1 and an odd kernel", auto_pad);
        pad = (k - 1) / 2 * dilation;
    } else {
        return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "auto_pad=\"%s\": expected NOTSET, VALID, SAME_UPPER or SAME_LOWER", auto_pad);
    }
    *k_out = k;
    *stride_out = stride;
    *pad_out = pad;
    if (dil_out) *dil_out = dilation;
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
    return cn_onnx_node_fail(im, im->pad_node, CN_ERR_UNSUPPORTED, "zero padding is supported only directly before Conv, "
                     "AveragePool, or MaxPool after Relu, but node %d (%s) follows it", idx, CLEAN(node_at(im, idx)->op_type));
}

static cn_status op_conv(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    const value *w, *b = NULL;
    cn_status st = check_data_node(im, idx, 2, 3, "auto_pad,dilations,group,kernel_shape,pads,strides");
    if (!st) st = need_rank(im, idx, 4);
    if (!st) st = cn_onnx_const_float(im, idx, 1, 4, &w);
    if (!st && *input_name(n, 2)) st = cn_onnx_const_float(im, idx, 2, -1, &b);
    if (st) return st;
    int64_t group;
    if ((st = cn_onnx_attr_int(im, idx, "group", 1, &group))) return st;
    if (group < 1 || group > LIMIT_CHANNELS || im->shape.c % group || w->dims[0] % group)
        return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "group=%lld must divide the %d input channels and the %lld output channels",
                         (long long)group, im->shape.c, (long long)w->dims[0]);
    char dt[160];
    cn_onnx_dims_text(w->dims, w->ndim, dt, sizeof dt);
    if (w->dims[2] != w->dims[3] || w->dims[2] < 1 || w->dims[2] > LIMIT_KERNEL)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "weight \"%s\" has dims %s; expected a square kernel of size 1..%d",
                         CLEAN(w->name), dt, LIMIT_KERNEL);
    if (w->dims[1] != im->shape.c / group)
        return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "weight \"%s\" has dims %s: %lld input channels per group, but the input has %d in %lld groups",
                         CLEAN(w->name), dt, (long long)w->dims[1], im->shape.c, (long long)group);
    if (w->dims[0] < 1 || w->dims[0] > LIMIT_CHANNELS)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "weight \"%s\" has dims %s; expected 1..%d output channels",
                         CLEAN(w->name), dt, LIMIT_CHANNELS);
    int oc = (int)w->dims[0], k, stride, pad, dilation;
    if ((st = window_attrs(im, idx, (int)w->dims[2], &k, &stride, &pad, &dilation))) return st;
    int span = (k - 1) * dilation + 1;
    if (b && !(b->ndim == 1 && b->dims[0] == oc)) {
        cn_onnx_dims_text(b->dims, b->ndim, dt, sizeof dt);
        return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "bias \"%s\" has dims %s; expected [%d]", CLEAN(b->name), dt, oc);
    }
    pad += take_pad(im);
    if (pad > LIMIT_KERNEL) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "padding %d exceeds %d", pad, LIMIT_KERNEL);
    cn_shape out = {oc, window_out(im->shape.h, span, stride, pad), window_out(im->shape.w, span, stride, pad)};
    if (out.h < 1 || out.w < 1)
        return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "a %dx%d kernel (dilation %d) with padding %d does not fit the %dx%dx%d input",
                         k, k, dilation, pad, im->shape.c, im->shape.h, im->shape.w);
    imp_layer *l = new_layer(im, idx, CN_LAYER_CONV2D);
    if (!l) return CN_ERR_UNSUPPORTED;
    l->out = oc; l->k = k; l->stride = stride; l->pad = pad; l->groups = (int)group; l->dilation = dilation;
    l->wcount = w->count;
    l->w = cn_onnx_copy_floats(w->f, w->count);
    l->has_bias = b != NULL;
    l->bcount = b ? (size_t)oc : 0;
    l->b = b ? cn_onnx_copy_floats(b->f, (size_t)oc) : NULL;
    if (!l->w || (b && !l->b)) return CN_ERR_NOMEM;
    name_from(l, w->name, ".weight");
    if ((st = cn_onnx_set_activation(im, idx, 4, out))) return st;
    im->fresh_weighted = true;
    return CN_OK;
}

static cn_status op_batchnorm(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_data_node(im, idx, 5, 5, "epsilon,momentum,spatial,training_mode,is_test,consumed_inputs");
    if (!st && im->rank != 2) st = need_rank(im, idx, 4);
    if (st) return st;
    const value *t[4];
    static const char *role[4] = {"scale", "B", "mean", "var"};
    int C = im->shape.c;
    for (int i = 0; i < 4; i++) {
        if ((st = cn_onnx_const_float(im, idx, (size_t)i + 1, -1, &t[i]))) return st;
        if (!(t[i]->ndim == 1 && t[i]->dims[0] == C)) {
            char dt[160];
            cn_onnx_dims_text(t[i]->dims, t[i]->ndim, dt, sizeof dt);
            return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "%s \"%s\" has dims %s; expected [%d] (one per channel)",
                             role[i], CLEAN(t[i]->name), dt, C);
        }
    }
    for (int c = 0; c < C; c++)
        if (t[3]->f[c] < 0)
            return cn_onnx_node_fail(im, idx, CN_ERR_NUMERIC, "var \"%s\"[%d] is %g; a variance cannot be negative",
                             CLEAN(t[3]->name), c, (double)t[3]->f[c]);
    float eps;
    int64_t spatial, training;
    if ((st = cn_onnx_attr_float(im, idx, "epsilon", 1e-5f, &eps))) return st;
    if ((st = cn_onnx_attr_int(im, idx, "spatial", 1, &spatial))) return st;
    if ((st = cn_onnx_attr_int(im, idx, "training_mode", 0, &training))) return st;
    if (!(eps > 0.0f && eps <= 1.0f)) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "epsilon=%g: expected a value in (0, 1]", (double)eps);
    if (spatial != 1) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "spatial=%lld: only per-channel statistics (spatial=1) are supported", (long long)spatial);
    if (training) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "training_mode=1: only the inference form is supported");
    for (size_t o = 1; o < n->n_output; o++)
        if (n->output[o] && *n->output[o])
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "has the training outputs (running mean/var); expected the inference form with one output");
    if ((st = no_pending_pad(im, idx))) return st;
    imp_layer *l = new_layer(im, idx, CN_LAYER_BATCHNORM2D);
    if (!l) return CN_ERR_UNSUPPORTED;
    l->eps = eps;
    l->flat = im->rank == 2;
    l->wcount = l->bcount = (size_t)C;
    l->w = cn_onnx_copy_floats(t[0]->f, (size_t)C);
    l->b = cn_onnx_copy_floats(t[1]->f, (size_t)C);
    l->mean = cn_onnx_copy_floats(t[2]->f, (size_t)C);
    l->var = cn_onnx_copy_floats(t[3]->f, (size_t)C);
    if (!l->w || !l->b || !l->mean || !l->var) return CN_ERR_NOMEM;
    name_from(l, t[0]->name, ".weight");
    return set_unweighted_activation(im, idx, im->rank, im->shape);
}

static cn_status op_relu(importer *im, int idx) {
    cn_status st = check_data_node(im, idx, 1, 1, "");
    if (!st) st = no_pending_pad(im, idx);
    if (st) return st;
    if (!new_layer(im, idx, CN_LAYER_RELU)) return CN_ERR_UNSUPPORTED;
    return set_unweighted_activation(im, idx, im->rank, im->shape);
}

/* Clip(x, 0, 6) is relu6 (torch's nn.ReLU6); bounds are attributes before opset 11, scalar
 * constant inputs from it. */
static cn_status op_clip(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    float bound[2] = {-INFINITY, INFINITY};
    cn_status st = check_data_node(im, idx, 1, 3, im->opset < 11 ? "min,max" : "");
    if (!st) st = no_pending_pad(im, idx);
    if (!st && im->opset < 11) {
        st = cn_onnx_attr_float(im, idx, "min", -INFINITY, &bound[0]);
        if (!st) st = cn_onnx_attr_float(im, idx, "max", INFINITY, &bound[1]);
    }
    for (size_t i = 1; !st && im->opset >= 11 && i < 3; i++) {
        const value *v;
        if (!*input_name(n, i)) continue;
        if ((st = cn_onnx_const_float(im, idx, i, -1, &v))) break;
        if (v->count != 1) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "%s must be a scalar", i == 1 ? "min" : "max");
        bound[i - 1] = v->f[0];
    }
    if (st) return st;
    if (bound[0] != 0.0f || bound[1] != 6.0f)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "Clip to [%g, %g]: only Clip(0, 6) (relu6) is supported",
                         (double)bound[0], (double)bound[1]);
    if (!new_layer(im, idx, CN_LAYER_RELU6)) return CN_ERR_UNSUPPORTED;
    return set_unweighted_activation(im, idx, im->rank, im->shape);
}

static cn_status op_leaky_relu(importer *im, int idx) {
    float alpha;
    cn_status st = check_data_node(im, idx, 1, 1, "alpha");
    if (!st) st = no_pending_pad(im, idx);
    if (!st) st = cn_onnx_attr_float(im, idx, "alpha", 0.01f, &alpha);
    if (st) return st;
    if (!(fabsf(alpha) <= 1e6f)) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "alpha=%g: expected a number in [-1e6, 1e6]", (double)alpha);
    imp_layer *l = new_layer(im, idx, CN_LAYER_LEAKY_RELU);
    if (!l) return CN_ERR_UNSUPPORTED;
    l->slope = alpha;
    return set_unweighted_activation(im, idx, im->rank, im->shape);
}

static cn_status op_pool(importer *im, int idx, bool avg) {
    cn_status st = check_data_node(im, idx, 1, 1, avg ? "auto_pad,ceil_mode,count_include_pad,kernel_shape,pads,strides"
                                                      : "auto_pad,ceil_mode,dilations,kernel_shape,pads,storage_order,strides");
    if (!st) st = need_rank(im, idx, 4);
    if (st) return st;
    int k, stride, pad;
    int64_t ceil_mode, include_pad, storage;
    if ((st = window_attrs(im, idx, 0, &k, &stride, &pad, NULL))) return st;
    if ((st = cn_onnx_attr_int(im, idx, "ceil_mode", 0, &ceil_mode))) return st;
    if ((st = cn_onnx_attr_int(im, idx, "count_include_pad", 0, &include_pad))) return st;
    if ((st = cn_onnx_attr_int(im, idx, "storage_order", 0, &storage))) return st;
    (void)storage;   /* only affects the Indices output, which is not supported */
    const Onnx__NodeProto *n = node_at(im, idx);
    for (size_t o = 1; o < n->n_output; o++)
        if (n->output[o] && *n->output[o])
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "the Indices output is not supported");
    if (avg && pad > 0 && !include_pad)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "count_include_pad=0 with pads %d: convnet's avgpool2d counts the "
                         "padding in the divisor (PyTorch's default, count_include_pad=1)", pad);
    if (im->pend_pad) {
        /* Zero padding equals a max-pool's implicit -inf padding only on non-negative input (after a ReLU). */
        if (!avg && !(im->num_layers > 0 && im->layers[im->num_layers - 1].kind == CN_LAYER_RELU))
            return cn_onnx_node_fail(im, im->pad_node, CN_ERR_UNSUPPORTED, "zero padding before MaxPool (node %d) equals the "
                             "pool's own padding only after a Relu", idx);
        pad += take_pad(im);
    }
    if (2 * pad > k)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "padding %d is more than half the %dx%d window", pad, k, k);
    int oh = window_out(im->shape.h, k, stride, pad), ow = window_out(im->shape.w, k, stride, pad);
    if (oh < 1 || ow < 1)
        return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "a %dx%d window with padding %d does not fit the %dx%dx%d input",
                         k, k, pad, im->shape.c, im->shape.h, im->shape.w);
    if (ceil_mode && ((im->shape.h + 2 * pad - k) % stride || (im->shape.w + 2 * pad - k) % stride))
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "ceil_mode=1 changes the output size here; only floor mode is supported");
    imp_layer *l = new_layer(im, idx, avg ? CN_LAYER_AVGPOOL2D : CN_LAYER_MAXPOOL2D);
    if (!l) return CN_ERR_UNSUPPORTED;
    l->k = k; l->stride = stride; l->pad = pad;
    return set_unweighted_activation(im, idx, 4, (cn_shape){im->shape.c, oh, ow});
}

static cn_status op_gap(importer *im, int idx) {
    cn_status st = check_data_node(im, idx, 1, 1, "");
    if (!st) st = need_rank(im, idx, 4);
    if (!st) st = no_pending_pad(im, idx);
    if (st) return st;
    if (!new_layer(im, idx, CN_LAYER_GAP)) return CN_ERR_UNSUPPORTED;
    return set_unweighted_activation(im, idx, 4, (cn_shape){im->shape.c, 1, 1});
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
    st = cn_onnx_set_activation(im, idx, 2, s);
    im->fresh_weighted = fresh;
    return st;
}

static cn_status op_flatten(importer *im, int idx) {
    cn_status st = check_data_node(im, idx, 1, 1, "axis");
    if (st) return st;
    int64_t axis;
    if ((st = cn_onnx_attr_int(im, idx, "axis", 1, &axis))) return st;
    if (axis < 0) axis += im->rank;
    if (axis != 1)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "axis=%lld: only axis 1 (keep the batch dimension) is supported", (long long)axis);
    return flatten_to_2d(im, idx);
}


static cn_status op_reshape(importer *im, int idx) {
    cn_status st = cn_onnx_check_node(im, idx, 2, 2, "allowzero");
    if (st) return st;
    const value *shape;
    int64_t allowzero;
    if ((st = cn_onnx_const_int(im, idx, 1, &shape))) return st;
    if ((st = cn_onnx_attr_int(im, idx, "allowzero", 0, &allowzero))) return st;
    int di = cn_onnx_find_value(im, input_name(node_at(im, idx), 0));
    if (di >= 0 && (im->values[di].kind == V_INT || im->values[di].kind == V_FLOAT))
        return cn_onnx_reshape_constant(im, idx, &im->values[di], shape, allowzero != 0);
    if ((st = cn_onnx_data_input(im, idx, 0))) return st;
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
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "reshape to %s of a tensor with %lld features per sample: only a "
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
    cn_onnx_dims_text(w->dims, w->ndim, dt, sizeof dt);
    if (wf != F)
        return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "weight \"%s\" has dims %s: %lld input features, but the input has %d",
                         CLEAN(w->name), dt, (long long)wf, F);
    if (wo < 1 || wo > LIMIT_CHANNELS)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "weight \"%s\" has dims %s: expected 1..%d outputs", CLEAN(w->name), dt, LIMIT_CHANNELS);
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
    cn_status st = cn_onnx_set_activation(im, idx, 2, (cn_shape){im->layers[im->num_layers - 1].out, 1, 1});
    im->fresh_weighted = true;
    return st;
}

/* Adds a bias vector (times beta) to the last layer, a conv or linear. */
static cn_status add_bias(importer *im, int idx, const value *b, float beta) {
    imp_layer *l = &im->layers[im->num_layers - 1];
    int C = l->out;
    bool fits = l->kind == CN_LAYER_LINEAR ? cn_onnx_is_vector_of(b, C, true)
              : (b->count == 1 || (b->count == (size_t)C && b->ndim >= 3 && b->dims[b->ndim - 1] == 1 &&
                                   b->dims[b->ndim - 2] == 1 && b->dims[b->ndim - 3] == C));
    if (!fits) {
        char dt[160];
        cn_onnx_dims_text(b->dims, b->ndim, dt, sizeof dt);
        return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "bias \"%s\" has dims %s; expected %s", CLEAN(b->name), dt,
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
    cn_status st = check_data_node(im, idx, 2, 3, "alpha,beta,transA,transB,broadcast");
    if (!st) st = need_rank(im, idx, 2);
    if (!st) st = no_pending_pad(im, idx);
    if (st) return st;
    const value *w, *c = NULL;
    float alpha, beta;
    int64_t transA, transB;
    if ((st = cn_onnx_const_float(im, idx, 1, 2, &w))) return st;
    if (*input_name(n, 2) && (st = cn_onnx_const_float(im, idx, 2, -1, &c))) return st;
    if ((st = cn_onnx_attr_float(im, idx, "alpha", 1.0f, &alpha))) return st;
    if ((st = cn_onnx_attr_float(im, idx, "beta", 1.0f, &beta))) return st;
    if ((st = cn_onnx_attr_int(im, idx, "transA", 0, &transA))) return st;
    if ((st = cn_onnx_attr_int(im, idx, "transB", 0, &transB))) return st;
    if (transA) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "transA=1: the activation must be the untransposed first operand");
    if ((st = add_linear(im, idx, w, !transB, alpha))) return st;
    if (c && (st = add_bias(im, idx, c, beta))) return st;
    return linear_output(im, idx);
}

static cn_status op_matmul(importer *im, int idx) {
    cn_status st = check_data_node(im, idx, 2, 2, "");
    if (!st) st = need_rank(im, idx, 2);
    if (!st) st = no_pending_pad(im, idx);
    if (st) return st;
    const value *w;
    if ((st = cn_onnx_const_float(im, idx, 1, 2, &w))) return st;
    if ((st = add_linear(im, idx, w, true, 1.0f))) return st;
    return linear_output(im, idx);
}


/* Whether input i of node idx is a computed activation. */
static bool is_activation(const importer *im, int idx, size_t i) {
    int vi = cn_onnx_find_value(im, input_name(node_at(im, idx), i));
    return vi >= 0 && im->values[vi].kind == V_ACT;
}

/* Add/Sum (CN_LAYER_ADD: equal shapes) or Concat on axis 1 (CN_LAYER_CONCAT: equal ranks, heights
 * and widths) of the node's inputs, every one a computed activation (the driver made input 0
 * current): a join layer reading their layers. */
static cn_status join_layer(importer *im, int idx, cn_layer_kind kind) {
    const Onnx__NodeProto *n = node_at(im, idx);
    const char *what = kind == CN_LAYER_ADD ? "adds" : "concatenates";
    if (n->n_input < 2 || n->n_input > CN_MAX_INPUTS)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "%s %zu tensors; expected 2 to %d", what, n->n_input, CN_MAX_INPUTS);
    cn_status st = no_pending_pad(im, idx);
    if (st) return st;
    const value *first = &im->values[im->cur];
    cn_shape out = first->act_shape;
    int from[CN_MAX_INPUTS];
    for (size_t i = 0; i < n->n_input; i++) {
        int vi = cn_onnx_find_value(im, input_name(n, i));
        if (vi < 0 || im->values[vi].kind != V_ACT)
            return cn_onnx_wrong_value(im, idx, input_name(n, i), vi, kind == CN_LAYER_ADD
                                       ? "a computed activation (with one constant, Add is a bias after Conv, Gemm or MatMul)"
                                       : "a computed activation (or all inputs constant)");
        const value *v = &im->values[vi];
        if (im->values[vi].origin_node >= 0 && !strcmp(node_at(im, v->origin_node)->op_type, "Pad"))
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "reads \"%s\", the output of a Pad: padding is supported "
                                     "only right before a Conv or pool", CLEAN(input_name(n, i)));
        cn_shape s = v->act_shape;
        bool fits = v->act_rank == first->act_rank && s.h == out.h && s.w == out.w &&
                    (kind == CN_LAYER_CONCAT || s.c == first->act_shape.c);
        if (!fits)
            return cn_onnx_node_fail(im, idx, CN_ERR_SHAPE, "\"%s\" is %s%d x %d x %d but \"%s\" is %s%d x %d x %d; %s", CLEAN(input_name(n, i)),
                                     v->act_rank == 2 ? "(flat) " : "", s.c, s.h, s.w, CLEAN(input_name(n, 0)),
                                     first->act_rank == 2 ? "(flat) " : "", first->act_shape.c, first->act_shape.h,
                                     first->act_shape.w, kind == CN_LAYER_ADD ? "Add needs equal shapes (no broadcasting)"
                                                                              : "Concat needs equal ranks, heights and widths");
        for (size_t j = 0; j < i; j++)
            if (from[j] == v->layer)
                return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "%s the output of one layer with itself", what);
        from[i] = v->layer;
        if (kind == CN_LAYER_CONCAT && i > 0) out.c += s.c;
    }
    if (kind == CN_LAYER_CONCAT) {
        int64_t axis;
        if ((st = cn_onnx_check_attrs(im, idx, "axis")) || (st = cn_onnx_attr_int(im, idx, "axis", 1, &axis))) return st;
        if (axis < 0) axis += first->act_rank;
        if (axis != 1)
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "axis=%lld: only channels (axis 1) are concatenated", (long long)axis);
    } else if ((st = cn_onnx_check_attrs(im, idx, ""))) {
        return st;
    }
    if (out.c > LIMIT_CHANNELS && first->act_rank == 4)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "%d channels; at most %d are supported", out.c, LIMIT_CHANNELS);
    imp_layer *l = new_layer(im, idx, kind);
    if (!l) return CN_ERR_UNSUPPORTED;
    l->num_from = (int)n->n_input;
    memcpy(l->from, from, sizeof from);
    return set_unweighted_activation(im, idx, first->act_rank, out);
}

static cn_status op_sum(importer *im, int idx) { return join_layer(im, idx, CN_LAYER_ADD); }

/* Concat: of activations along channels; of constants (shape arithmetic), onnx_import_fold.c. */
static cn_status op_concat_layer(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    for (size_t i = 0; i < n->n_input; i++)
        if (is_activation(im, idx, i)) return join_layer(im, idx, CN_LAYER_CONCAT);
    for (const cn_onnx_op *e = CN_ONNX_CONSTANT_OPS; e->op; e++)
        if (!strcmp(e->op, "Concat")) return e->fn(im, idx);
    return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "no Concat of constants");
}

static cn_status op_add(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    if (cn_onnx_is_constant_value(im, input_name(n, 0)) && cn_onnx_is_constant_value(im, input_name(n, 1))) return cn_onnx_const_binary(im, idx, '+');
    if (n->n_input == 2 && is_activation(im, idx, 0) && is_activation(im, idx, 1)) return join_layer(im, idx, CN_LAYER_ADD);
    cn_status st = cn_onnx_check_node(im, idx, 2, 2, "");
    if (st) return st;
    /* Either operand order: activation + constant. */
    size_t act = cn_onnx_find_value(im, input_name(n, 0)) == im->cur ? 0 : 1;
    if ((st = cn_onnx_data_input(im, idx, act))) return st;
    const value *b;
    if ((st = cn_onnx_const_float(im, idx, 1 - act, -1, &b))) return st;
    if (!im->fresh_weighted || im->num_layers == 0)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "adding a constant is supported only as the bias right after "
                         "Conv, Gemm or MatMul");
    if ((st = no_pending_pad(im, idx))) return st;
    if ((st = add_bias(im, idx, b, 1.0f))) return st;
    st = cn_onnx_set_activation(im, idx, im->rank, im->shape);
    im->fresh_weighted = true;
    return st;
}

static cn_status op_pad(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_data_node(im, idx, 1, im->opset >= 11 ? 3 : 1, im->opset >= 11 ? "mode" : "mode,pads,value");
    if (!st) st = need_rank(im, idx, 4);
    if (st) return st;
    char mode[32];
    if ((st = cn_onnx_attr_string(im, idx, "mode", "constant", mode, sizeof mode))) return st;
    if (strcmp(mode, "constant"))
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "mode=\"%s\": only constant (zero) padding is supported", mode);
    const int64_t *pads;
    int np;
    float fill = 0.0f;
    if (im->opset >= 11) {
        const value *pv;
        if ((st = cn_onnx_const_int(im, idx, 1, &pv))) return st;
        if (pv->ndim != 1 || pv->count > 16)
            return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "pads \"%s\" must be a 1-D list", CLEAN(pv->name));
        pads = pv->i;
        np = (int)pv->count;
        if (*input_name(n, 2)) {
            const value *cv;
            if ((st = cn_onnx_const_float(im, idx, 2, -1, &cv))) return st;
            if (cv->count != 1) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "constant_value must be a scalar");
            fill = cv->f[0];
        }
    } else {
        if ((st = cn_onnx_attr_ints(im, idx, "pads", &pads, &np))) return st;
        if (np < 0) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "attribute pads is missing");
        if ((st = cn_onnx_attr_float(im, idx, "value", 0.0f, &fill))) return st;
    }
    if (fill != 0.0f) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "constant_value %g: only zero padding is supported", (double)fill);
    /* [N_begin, C_begin, H_begin, W_begin, N_end, C_end, H_end, W_end] */
    if (np != 8) return cn_onnx_node_fail(im, idx, CN_ERR_FORMAT, "has %d pads; expected 8 for an N x C x H x W tensor", np);
    int64_t p = pads[2];
    bool all_zero = true;
    for (int i = 0; i < 8; i++) if (pads[i]) all_zero = false;
    if (!all_zero && (pads[0] || pads[1] || pads[4] || pads[5] || pads[3] != p || pads[6] != p || pads[7] != p ||
                      p < 0 || p > LIMIT_KERNEL))
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "pads [%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld]: only the same "
                         "non-negative padding on all four spatial sides is supported", (long long)pads[0], (long long)pads[1],
                         (long long)pads[2], (long long)pads[3], (long long)pads[4], (long long)pads[5], (long long)pads[6],
                         (long long)pads[7]);
    if (!all_zero) {
        if (!im->pend_pad) im->pad_node = idx;
        im->pend_pad += (int)p;
        if (im->pend_pad > LIMIT_KERNEL) return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "padding exceeds %d", LIMIT_KERNEL);
    }
    /* The chain continues on the padded tensor; shapes keep the unpadded size until a layer takes the padding. */
    cn_shape s = im->shape;
    int pending = im->pend_pad, pnode = im->pad_node;
    bool fresh = im->fresh_weighted && all_zero;
    st = cn_onnx_set_activation(im, idx, 4, s);
    im->pend_pad = pending;
    im->pad_node = pnode;
    im->values[im->cur].act_shape = (cn_shape){s.c, s.h + 2 * pending, s.w + 2 * pending};
    im->fresh_weighted = fresh;
    return st;
}

static cn_status op_softmax(importer *im, int idx, bool log) {
    cn_status st = check_data_node(im, idx, 1, 1, "axis");
    if (!st) st = no_pending_pad(im, idx);
    if (st) return st;
    int64_t axis;
    if ((st = cn_onnx_attr_int(im, idx, "axis", im->opset >= 13 ? -1 : 1, &axis))) return st;
    int64_t a = axis < 0 ? axis + im->rank : axis;
    /* opset < 13 coerces the input to 2-D at `axis`, so axis 1 is over C*H*W = C when H = W = 1. */
    bool ok = im->shape.h == 1 && im->shape.w == 1 && a == 1;
    if (!ok)
        return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "axis=%lld on a %s tensor: only the class axis (1) of N x C scores is supported",
                         (long long)axis, im->rank == 4 ? "N x C x H x W" : "N x F");
    if (!new_layer(im, idx, CN_LAYER_LOG_SOFTMAX)) return CN_ERR_UNSUPPORTED;
    if (!log) {
        im->softmax = true;
        im->terminal_node = idx;
    }
    return set_unweighted_activation(im, idx, im->rank, im->shape);
}

/* Output 0 becomes an alias of the current activation (Identity, Dropout at inference). */
static cn_status pass_through(importer *im, int idx) {
    bool fresh = im->fresh_weighted;
    int pending = im->pend_pad, pnode = im->pad_node;
    cn_shape padded = im->values[im->cur].act_shape;
    cn_status st = cn_onnx_set_activation(im, idx, im->rank, im->shape);
    im->fresh_weighted = fresh;
    im->pend_pad = pending;
    im->pad_node = pnode;
    if (!st) im->values[im->cur].act_shape = padded;
    return st;
}

static cn_status op_dropout(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = check_data_node(im, idx, 1, 3, "ratio,seed,is_test");
    if (st) return st;
    if (*input_name(n, 2)) {
        const value *mode;
        if ((st = cn_onnx_const_int(im, idx, 2, &mode))) return st;
        if (mode->count != 1 || mode->i[0] != 0)
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "training_mode is true; expected an inference graph");
    }
    return pass_through(im, idx);
}

/* Identity: an alias of a constant or of the current activation. */
static cn_status op_identity(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    cn_status st = cn_onnx_check_node(im, idx, 1, 1, "");
    if (st) return st;
    int vi = cn_onnx_find_value(im, input_name(n, 0));
    if (vi >= 0 && (im->values[vi].kind == V_FLOAT || im->values[vi].kind == V_INT || im->values[vi].kind == V_OTHER)) {
        value v = im->values[vi];
        v.owned = false;
        return cn_onnx_set_constant(im, idx, v);
    }
    if ((st = cn_onnx_data_input(im, idx, 0))) return st;
    return pass_through(im, idx);
}

static cn_status op_maxpool(importer *im, int idx) { return op_pool(im, idx, false); }
static cn_status op_avgpool(importer *im, int idx) { return op_pool(im, idx, true); }
static cn_status op_logsoftmax(importer *im, int idx) { return op_softmax(im, idx, true); }
static cn_status op_plain_softmax(importer *im, int idx) { return op_softmax(im, idx, false); }

const cn_onnx_op CN_ONNX_LAYER_OPS[] = {
    {"Conv", op_conv}, {"BatchNormalization", op_batchnorm}, {"Relu", op_relu}, {"MaxPool", op_maxpool},
    {"AveragePool", op_avgpool}, {"GlobalAveragePool", op_gap}, {"Flatten", op_flatten}, {"Reshape", op_reshape},
    {"Gemm", op_gemm}, {"MatMul", op_matmul}, {"Add", op_add}, {"Pad", op_pad},
    {"LogSoftmax", op_logsoftmax}, {"Softmax", op_plain_softmax}, {"Dropout", op_dropout}, {"Identity", op_identity},
    {"Clip", op_clip}, {"LeakyRelu", op_leaky_relu}, {"Sum", op_sum}, {"Concat", op_concat_layer}, {NULL, NULL},
};
