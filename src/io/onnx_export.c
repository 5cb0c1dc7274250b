/* ONNX export: a sequential model -> opset 13 ModelProto (see io/onnx.h).
 *
 * The protobuf-c message tree is built from small heap objects recorded in a
 * pool and freed together; it is packed into one buffer and written to a
 * temporary file that is renamed over `path`. */
#include "io/onnx.h"
#include "data/norm_text.h"
#include "model.h"
#include "core/error.h"
#include "core/atomic_file.h"
#include "core/mem.h"
#include "onnx.pb-c.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT_OPSET 13
#define EXPORT_IR_VERSION 7   /* IR version of ONNX 1.8, the first with opset 13 */

/* Every allocation of the message tree, freed at the end. */
typedef struct {
    void **items;
    size_t count, capacity;
    bool failed;
} pool;

static void *pool_alloc(pool *p, size_t count, size_t size) {
    if (p->failed) return NULL;
    if (p->count == p->capacity) {
        size_t cap = p->capacity ? 2 * p->capacity : 256;
        void **items = cn_calloc(cap, sizeof *items);
        if (!items) { p->failed = true; return NULL; }
        if (p->count) memcpy(items, p->items, p->count * sizeof *items);
        free(p->items);
        p->items = items;
        p->capacity = cap;
    }
    void *mem = cn_calloc(count ? count : 1, size);
    if (!mem) { p->failed = true; return NULL; }
    p->items[p->count++] = mem;
    return mem;
}

static void pool_free(pool *p) {
    for (size_t i = 0; i < p->count; i++) free(p->items[i]);
    free(p->items);
}

static char *pool_printf(pool *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *pool_printf(pool *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { p->failed = true; return NULL; }
    char *s = pool_alloc(p, (size_t)n + 1, 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* The graph under construction: growable node and initializer lists. */
typedef struct {
    pool *p;
    Onnx__NodeProto **nodes;
    size_t num_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t num_inits, cap_inits;
} graph_builder;

static bool grow(pool *p, void ***items, size_t *count, size_t *cap, void *item) {
    if (!item) return false;
    if (*count == *cap) {
        size_t ncap = *cap ? 2 * *cap : 32;
        void **n = pool_alloc(p, ncap, sizeof *n);
        if (!n) return false;
        if (*count) memcpy(n, *items, *count * sizeof *n);
        *items = n;
        *cap = ncap;
    }
    (*items)[(*count)++] = item;
    return true;
}

/* Adds a float initializer `name` with `ndim` dims, copying `data` as raw little-endian bytes. */
static const char *add_init(graph_builder *g, const char *name, int ndim, const int64_t *dims, const float *data) {
    pool *p = g->p;
    Onnx__TensorProto *t = pool_alloc(p, 1, sizeof *t);
    if (!t) return NULL;
    onnx__tensor_proto__init(t);
    size_t count = 1;
    t->n_dims = (size_t)ndim;
    t->dims = pool_alloc(p, (size_t)(ndim ? ndim : 1), sizeof *t->dims);   /* ndim 0: a scalar */
    if (!t->dims) return NULL;
    for (int i = 0; i < ndim; i++) { t->dims[i] = dims[i]; count *= (size_t)dims[i]; }
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->name = pool_printf(p, "%s", name);
    /* raw_data is little-endian; convnet targets little-endian hosts (x86-64, arm64). */
    t->has_raw_data = 1;
    t->raw_data.len = count * sizeof(float);
    t->raw_data.data = pool_alloc(p, count, sizeof(float));
    if (!t->name || !t->raw_data.data) return NULL;
    memcpy(t->raw_data.data, data, count * sizeof(float));
    if (!grow(p, (void ***)&g->inits, &g->num_inits, &g->cap_inits, t)) return NULL;
    return t->name;
}

static Onnx__AttributeProto *attr_new(pool *p, const char *name, Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = pool_alloc(p, 1, sizeof *a);
    if (!a) return NULL;
    onnx__attribute_proto__init(a);
    a->name = pool_printf(p, "%s", name);
    a->has_type = 1;
    a->type = type;
    return a->name ? a : NULL;
}

static Onnx__AttributeProto *attr_int(pool *p, const char *name, int64_t v) {
    Onnx__AttributeProto *a = attr_new(p, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) { a->has_i = 1; a->i = v; }
    return a;
}

static Onnx__AttributeProto *attr_float(pool *p, const char *name, float v) {
    Onnx__AttributeProto *a = attr_new(p, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) { a->has_f = 1; a->f = v; }
    return a;
}

/* INTS attribute with n copies of v. */
static Onnx__AttributeProto *attr_ints(pool *p, const char *name, int n, int64_t v) {
    Onnx__AttributeProto *a = attr_new(p, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    if (!a) return NULL;
    a->ints = pool_alloc(p, (size_t)n, sizeof *a->ints);
    if (!a->ints) return NULL;
    a->n_ints = (size_t)n;
    for (int i = 0; i < n; i++) a->ints[i] = v;
    return a;
}

/* Adds a node; `inputs` is NULL-terminated, attributes NULL-terminated. Returns its output name. */
static const char *add_node(graph_builder *g, const char *op, const char *layer_name, const char *output,
                            const char *const *inputs, Onnx__AttributeProto *const *attrs) {
    pool *p = g->p;
    Onnx__NodeProto *n = pool_alloc(p, 1, sizeof *n);
    if (!n) return NULL;
    onnx__node_proto__init(n);
    n->op_type = pool_printf(p, "%s", op);
    n->name = pool_printf(p, "/%s/%s", layer_name, op);
    size_t ni = 0, na = 0;
    while (inputs[ni]) ni++;
    while (attrs && attrs[na]) na++;
    n->input = pool_alloc(p, ni, sizeof *n->input);
    n->output = pool_alloc(p, 1, sizeof *n->output);
    n->attribute = pool_alloc(p, na, sizeof *n->attribute);
    if (!n->op_type || !n->name || !n->input || !n->output || !n->attribute) return NULL;
    for (size_t i = 0; i < ni; i++) {
        n->input[i] = pool_printf(p, "%s", inputs[i]);
        if (!n->input[i]) return NULL;
    }
    n->n_input = ni;
    for (size_t i = 0; i < na; i++) if (!attrs[i]) return NULL;
    if (na) memcpy(n->attribute, attrs, na * sizeof *attrs);
    n->n_attribute = na;
    n->output[0] = output ? pool_printf(p, "%s", output) : pool_printf(p, "/%s/%s_output_0", layer_name, op);
    if (!n->output[0]) return NULL;
    n->n_output = 1;
    if (!grow(p, (void ***)&g->nodes, &g->num_nodes, &g->cap_nodes, n)) return NULL;
    return n->output[0];
}

/* A float tensor value_info with dims; dim 0 is the symbolic "batch". */
static Onnx__ValueInfoProto *value_info(pool *p, const char *name, int ndim, const int64_t *dims) {
    Onnx__ValueInfoProto *v = pool_alloc(p, 1, sizeof *v);
    Onnx__TypeProto *type = pool_alloc(p, 1, sizeof *type);
    Onnx__TypeProto__Tensor *tt = pool_alloc(p, 1, sizeof *tt);
    Onnx__TensorShapeProto *shape = pool_alloc(p, 1, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **d = pool_alloc(p, (size_t)ndim, sizeof *d);
    if (!v || !type || !tt || !shape || !d) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(type);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(shape);
    for (int i = 0; i < ndim; i++) {
        d[i] = pool_alloc(p, 1, sizeof *d[i]);
        if (!d[i]) return NULL;
        onnx__tensor_shape_proto__dimension__init(d[i]);
        if (i == 0) {
            d[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d[i]->dim_param = pool_printf(p, "batch");
            if (!d[i]->dim_param) return NULL;
        } else {
            d[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d[i]->dim_value = dims[i];
        }
    }
    shape->n_dim = (size_t)ndim;
    shape->dim = d;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = shape;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tt;
    v->name = pool_printf(p, "%s", name);
    v->type = type;
    return v->name ? v : NULL;
}

static Onnx__StringStringEntryProto *meta(pool *p, const char *key, const char *value) {
    Onnx__StringStringEntryProto *e = pool_alloc(p, 1, sizeof *e);
    if (!e) return NULL;
    onnx__string_string_entry_proto__init(e);
    e->key = pool_printf(p, "%s", key);
    e->value = pool_printf(p, "%s", value);
    return e->key && e->value ? e : NULL;
}

/* The node of activation layer l (relu, relu6 as Clip(x, 0, 6), leaky_relu) on cur; NULL when out of memory. */
static const char *add_activation(graph_builder *g, const cn_layer *l, const char *cur) {
    if (l->kind == CN_LAYER_RELU) return add_node(g, "Relu", l->name, NULL, (const char *[]){cur, NULL}, NULL);
    if (l->kind == CN_LAYER_LEAKY_RELU) {
        Onnx__AttributeProto *attrs[] = {attr_float(g->p, "alpha", l->slope), NULL};
        return add_node(g, "LeakyRelu", l->name, NULL, (const char *[]){cur, NULL}, attrs);
    }
    /* Clip: min and max are scalar inputs from opset 11 */
    const float bounds[2] = {0.0f, 6.0f};
    char lo[96], hi[96];
    snprintf(lo, sizeof lo, "%s.min", l->name);
    snprintf(hi, sizeof hi, "%s.max", l->name);
    const char *lo_name = add_init(g, lo, 0, NULL, &bounds[0]), *hi_name = add_init(g, hi, 0, NULL, &bounds[1]);
    if (!lo_name || !hi_name) return NULL;
    return add_node(g, "Clip", l->name, NULL, (const char *[]){cur, lo_name, hi_name, NULL}, NULL);
}

/* Layers that read value v (layer.h). */
static int readers_of(const cn_model *m, int v) {
    int n = 0;
    for (int i = 0; i < m->num_layers; i++)
        for (int k = 0; k < m->layers[i].num_inputs; k++) n += m->layers[i].inputs[k] == v;
    return n;
}

/* add (Add of two tensors, Sum of more) or concat (Concat on axis 1) of layer l's inputs, the tensors names[] of ranks ranks[]; flat inputs of rank 4
 * (N x C x 1 x 1) are flattened first when another input is rank 2. *rank gets the result's. */
static const char *add_join(graph_builder *g, const cn_layer *l, const char **names, const int *ranks, int *rank) {
    const char *in[CN_MAX_INPUTS + 1];
    *rank = 4;
    for (int k = 0; k < l->num_inputs; k++) if (ranks[k] == 2) *rank = 2;
    for (int k = 0; k < l->num_inputs; k++) {
        in[k] = names[k];
        if (ranks[k] == 4 && *rank == 2) {
            char fl[64];
            snprintf(fl, sizeof fl, "%s_flatten%d", l->name, k);
            Onnx__AttributeProto *attrs[] = {attr_int(g->p, "axis", 1), NULL};
            in[k] = add_node(g, "Flatten", fl, NULL, (const char *[]){names[k], NULL}, attrs);
            if (!in[k]) return NULL;
        }
    }
    in[l->num_inputs] = NULL;
    if (l->kind == CN_LAYER_CONCAT) {
        Onnx__AttributeProto *attrs[] = {attr_int(g->p, "axis", 1), NULL};
        return add_node(g, "Concat", l->name, NULL, in, attrs);
    }
    return add_node(g, l->num_inputs == 2 ? "Add" : "Sum", l->name, NULL, in, NULL);
}

/* Emits the graph nodes and initializers for every layer of `m`. Value v (layer.h) is the
 * tensor value_name[v] of rank value_rank[v]; each layer reads its inputs' tensors. */
/* The weights and bias of conv l with batch norm bn (which alone reads l's output) folded in,
 * into *scratch_w (l->weight_count floats) and *scratch_b (out_channels), which it (re)allocates:
 * BN(conv(x)) = conv(x) * g/sqrt(var+eps) + (beta - mean * g/sqrt(var+eps)), per channel. */
static cn_status fold_bn_into_conv(const cn_model *m, const cn_layer *l, const cn_layer *bn, float **scratch_w,
                                   float **scratch_b) {
    int oc = l->out_channels;
    const float *w = m->params + l->weight_offset, *b = m->params + l->bias_offset;
    const float *gamma = m->params + bn->weight_offset, *beta = m->params + bn->bias_offset;
    const float *mean = m->buffers + bn->buffer_offset, *var = mean + oc;
    cn_status st = cn_model_check_layer_finite(m, bn);
    if (st) return st;
    size_t per = l->weight_count / (size_t)oc;
    free(*scratch_w);
    free(*scratch_b);
    float *fw = *scratch_w = cn_calloc(l->weight_count, sizeof *fw);
    float *fb = *scratch_b = cn_calloc((size_t)oc, sizeof *fb);
    if (!fw || !fb) return CN_ERR_NOMEM;
    for (int c = 0; c < oc; c++) {
        double scale = (double)gamma[c] / sqrt((double)var[c] + (double)bn->bn_eps);
        for (size_t j = 0; j < per; j++) fw[c * per + j] = (float)(w[c * per + j] * scale);
        double bias = l->bias_count ? b[c] : 0.0;
        fb[c] = (float)((bias - mean[c]) * scale + beta[c]);
    }
    return CN_OK;
}

/* Linear layer l (weights w, bias b) as a Gemm node reading `in`; its output's name, or NULL when
 * out of memory. */
static const char *add_gemm(graph_builder *g, const cn_layer *l, const float *w, const float *b, const char *in) {
    pool *p = g->p;
    char name[96];
    int64_t wdims[2] = {l->out_channels, l->in.c}, bdims[1] = {l->out_channels};
    snprintf(name, sizeof name, "%s.weight", l->name);
    const char *wname = add_init(g, name, 2, wdims, w), *bname = NULL;
    if (l->bias_count) {
        snprintf(name, sizeof name, "%s.bias", l->name);
        bname = add_init(g, name, 1, bdims, b);
    }
    Onnx__AttributeProto *attrs[] = {attr_float(p, "alpha", 1.0f), attr_float(p, "beta", 1.0f),
                                     attr_int(p, "transB", 1), NULL};
    if (!wname || (l->bias_count && !bname)) return NULL;
    return add_node(g, "Gemm", l->name, NULL, (const char *[]){in, wname, bname, NULL}, attrs);
}

static cn_status build_graph(const cn_model *m, graph_builder *g, int fold_bn, const char **final_output) {
    pool *p = g->p;
    int L = m->num_layers;
    const char **value_name = pool_alloc(p, (size_t)L + 1, sizeof *value_name);
    int *value_rank = pool_alloc(p, (size_t)L + 1, sizeof *value_rank);
    if (!value_name || !value_rank) return CN_ERR_NOMEM;
    value_name[0] = "input";
    value_rank[0] = 4;
    const char *cur = "input";
    int rank = 4;           /* rank of the tensor `cur` (4: NCHW, 2: N x features) */
    float *scratch_w = NULL, *scratch_b = NULL;
    cn_status st = CN_OK;
    for (int i = 0; i < L && st == CN_OK; i++) {
        const cn_layer *l = &m->layers[i];
        const float *w = m->params + l->weight_offset, *b = m->params + l->bias_offset;
        char name[96];
        st = cn_model_check_layer_finite(m, l);
        if (st) break;
        cur = value_name[l->inputs[0]];
        rank = value_rank[l->inputs[0]];
        /* Gemm and LogSoftmax take 2-D input: flatten an N x C x 1 x 1 tensor first. */
        if ((l->kind == CN_LAYER_LINEAR || l->kind == CN_LAYER_LOG_SOFTMAX) && rank == 4) {
            char fl[48];
            snprintf(fl, sizeof fl, "%s_flatten", l->name);
            Onnx__AttributeProto *attrs[] = {attr_int(p, "axis", 1), NULL};
            cur = add_node(g, "Flatten", fl, NULL, (const char *[]){cur, NULL}, attrs);
            rank = 2;
        }
        switch (l->kind) {
        case CN_LAYER_CONV2D: {
            int oc = l->out_channels, k = l->kernel;
            int64_t wdims[4] = {oc, l->in.c / l->groups, k, k}, bdims[1] = {oc};
            /* folded: a BN that alone reads the conv's output */
            const cn_layer *bn = (fold_bn && i + 1 < L && m->layers[i + 1].kind == CN_LAYER_BATCHNORM2D &&
                                  m->layers[i + 1].inputs[0] == i + 1 && readers_of(m, i + 1) == 1)
                                 ? &m->layers[i + 1] : NULL;
            const float *wout = w, *bout = l->bias_count ? b : NULL;
            if (bn) {
                st = fold_bn_into_conv(m, l, bn, &scratch_w, &scratch_b);
                if (st) break;
                wout = scratch_w;
                bout = scratch_b;
            }
            snprintf(name, sizeof name, "%s.weight", l->name);
            const char *wname = add_init(g, name, 4, wdims, wout);
            const char *bname = NULL;
            if (bout) {
                snprintf(name, sizeof name, "%s.bias", l->name);
                bname = add_init(g, name, 1, bdims, bout);
            }
            Onnx__AttributeProto *attrs[] = {
                attr_ints(p, "dilations", 2, l->dilation), attr_int(p, "group", l->groups), attr_ints(p, "kernel_shape", 2, k),
                attr_ints(p, "pads", 4, l->pad), attr_ints(p, "strides", 2, l->stride), NULL};
            if (!wname || (bout && !bname)) { st = CN_ERR_NOMEM; break; }
            cur = add_node(g, "Conv", l->name, NULL, (const char *[]){cur, wname, bname, NULL}, attrs);
            if (bn) {   /* the BN is consumed: its output is the conv's */
                value_name[i + 1] = cur;
                value_rank[i + 1] = rank;
                i++;
            }
            break;
        }
        case CN_LAYER_ADD: case CN_LAYER_CONCAT: {
            const char *names[CN_MAX_INPUTS];
            int ranks[CN_MAX_INPUTS];
            for (int k = 0; k < l->num_inputs; k++) { names[k] = value_name[l->inputs[k]]; ranks[k] = value_rank[l->inputs[k]]; }
            cur = add_join(g, l, names, ranks, &rank);
            break;
        }
        case CN_LAYER_BATCHNORM2D: {
            int64_t dims[1] = {l->in.c};
            const float *stats = m->buffers + l->buffer_offset;
            const char *names[4];
            const char *suffix[4] = {"weight", "bias", "running_mean", "running_var"};
            const float *data[4] = {w, b, stats, stats + l->in.c};
            for (int t = 0; t < 4; t++) {
                snprintf(name, sizeof name, "%s.%s", l->name, suffix[t]);
                names[t] = add_init(g, name, 1, dims, data[t]);
            }
            Onnx__AttributeProto *attrs[] = {attr_float(p, "epsilon", l->bn_eps),
                                             attr_float(p, "momentum", 1.0f - l->bn_momentum), NULL};
            if (!names[0] || !names[1] || !names[2] || !names[3]) { st = CN_ERR_NOMEM; break; }
            cur = add_node(g, "BatchNormalization", l->name, NULL,
                           (const char *[]){cur, names[0], names[1], names[2], names[3], NULL}, attrs);
            break;
        }
        case CN_LAYER_RELU: case CN_LAYER_RELU6: case CN_LAYER_LEAKY_RELU:
            cur = add_activation(g, l, cur);
            break;
        case CN_LAYER_MAXPOOL2D: case CN_LAYER_AVGPOOL2D: {
            bool avg = l->kind == CN_LAYER_AVGPOOL2D;
            Onnx__AttributeProto *attrs[] = {
                attr_int(p, "ceil_mode", 0), attr_ints(p, "kernel_shape", 2, l->kernel),
                attr_ints(p, "pads", 4, l->pad), attr_ints(p, "strides", 2, l->stride),
                avg ? attr_int(p, "count_include_pad", 1) : NULL, NULL};
            cur = add_node(g, avg ? "AveragePool" : "MaxPool", l->name, NULL, (const char *[]){cur, NULL}, attrs);
            break;
        }
        case CN_LAYER_GAP:
            cur = add_node(g, "GlobalAveragePool", l->name, NULL, (const char *[]){cur, NULL}, NULL);
            break;
        case CN_LAYER_DROPOUT:
            break;   /* identity at inference */
        case CN_LAYER_FLATTEN:
            if (rank == 4) {
                Onnx__AttributeProto *attrs[] = {attr_int(p, "axis", 1), NULL};
                cur = add_node(g, "Flatten", l->name, NULL, (const char *[]){cur, NULL}, attrs);
                rank = 2;
            }
            break;
        case CN_LAYER_LINEAR:
            cur = add_gemm(g, l, w, b, cur);   /* NULL: out of memory, reported below */
            break;
        case CN_LAYER_LOG_SOFTMAX: {
            Onnx__AttributeProto *attrs[] = {attr_int(p, "axis", 1), NULL};
            cur = add_node(g, "LogSoftmax", l->name, NULL, (const char *[]){cur, NULL}, attrs);
            break;
        }
        default:
            st = cn_fail(CN_ERR_UNSUPPORTED, "%s: layer %s: kind %s has no ONNX mapping", m->source_name, l->name,
                         cn_layer_kind_name(l->kind));
        }
        if (st == CN_OK && (!cur || p->failed)) st = CN_ERR_NOMEM;
        value_name[i + 1] = cur;
        value_rank[i + 1] = rank;
    }
    free(scratch_w);
    free(scratch_b);
    if (st) return st;
    /* The graph output is [batch, classes]. */
    if (rank == 4) {
        Onnx__AttributeProto *attrs[] = {attr_int(p, "axis", 1), NULL};
        cur = add_node(g, "Flatten", "output_flatten", NULL, (const char *[]){cur, NULL}, attrs);
    }
    if (!strcmp(cur ? cur : "input", "input"))   /* no node at all: keep input and output distinct */
        cur = add_node(g, "Identity", "output_identity", NULL, (const char *[]){"input", NULL}, NULL);
    if (!cur || p->failed) return CN_ERR_NOMEM;
    /* Rename the last node's output to "output". */
    Onnx__NodeProto *last = g->nodes[g->num_nodes - 1];
    last->output[0] = pool_printf(p, "output");
    if (!last->output[0]) return CN_ERR_NOMEM;
    *final_output = last->output[0];
    return CN_OK;
}

/* "name,name,...": the class names as the checkpoint's "classes" metadata holds them. */
static char *join_names(pool *p, int count, const char (*names)[CN_CLASS_NAME_MAX]) {
    size_t size = (size_t)count * CN_CLASS_NAME_MAX + 1, len = 0;
    char *text = pool_alloc(p, size, 1);
    for (int k = 0; text && k < count; k++) len += (size_t)snprintf(text + len, size - len, "%s%s", k ? "," : "", names[k]);
    return text;
}

cn_status cn_onnx_export(const cn_model *m, const char *path, int fold_bn, const float *mean, const float *std) {
    return cn_onnx_export_labeled(m, path, fold_bn, mean, std, NULL, 0, NULL);
}

cn_status cn_onnx_export_labeled(const cn_model *m, const char *path, int fold_bn, const float *mean, const float *std,
                                 const char *dataset, int num_names, const char (*class_names)[CN_CLASS_NAME_MAX]) {
    if (!m || !path || !*path) return cn_fail(CN_ERR_ARG, "onnx export: no model or no output path given");
    int channels = m->input.c >= 1 && m->input.c <= 4 ? m->input.c : 1;
    for (int c = 0; c < channels; c++)
        if (!isfinite(mean[c]) || !isfinite(std[c]) || std[c] <= 0.0f)
            return cn_fail(CN_ERR_ARG, "%s: normalisation mean %g / std %g of channel %d: expected finite values with std > 0",
                           path, (double)mean[c], (double)std[c], c);
    pool p = {0};
    graph_builder g = {.p = &p};
    const char *output_name = NULL;
    cn_status st = build_graph(m, &g, fold_bn, &output_name);
    if (st) {
        pool_free(&p);
        if (st == CN_ERR_NOMEM) return cn_fail(CN_ERR_NOMEM, "%s: out of memory building the ONNX graph", path);
        cn_error_prefix("%s", path);
        return st;
    }
    int classes = cn_model_num_classes(m);
    int64_t in_dims[4] = {-1, m->input.c, m->input.h, m->input.w}, out_dims[2] = {-1, classes};

    Onnx__GraphProto *graph = pool_alloc(&p, 1, sizeof *graph);
    Onnx__ModelProto *model = pool_alloc(&p, 1, sizeof *model);
    Onnx__OperatorSetIdProto *opset = pool_alloc(&p, 1, sizeof *opset);
    Onnx__OperatorSetIdProto **opsets = pool_alloc(&p, 1, sizeof *opsets);
    Onnx__ValueInfoProto **inputs = pool_alloc(&p, 1, sizeof *inputs);
    Onnx__ValueInfoProto **outputs = pool_alloc(&p, 1, sizeof *outputs);
    Onnx__StringStringEntryProto **props = pool_alloc(&p, 5, sizeof *props);
    if (!graph || !model || !opset || !opsets || !inputs || !outputs || !props) { pool_free(&p); return CN_ERR_NOMEM; }
    onnx__graph_proto__init(graph);
    onnx__model_proto__init(model);
    onnx__operator_set_id_proto__init(opset);
    inputs[0] = value_info(&p, "input", 4, in_dims);
    outputs[0] = value_info(&p, output_name, 2, out_dims);
    char mean_text[80], std_text[80];
    cn_format_floats(mean_text, sizeof mean_text, mean, channels);
    cn_format_floats(std_text, sizeof std_text, std, channels);
    props[0] = meta(&p, "normalize_mean", mean_text);
    props[1] = meta(&p, "normalize_std", std_text);
    props[2] = meta(&p, "preprocessing", "input = (pixel intensity in [0, 1] - normalize_mean) / normalize_std, per channel");
    size_t num_props = 3;
    /* The class names, when there is one per output (the order of the model's outputs). */
    if (class_names && num_names == classes) {
        const char *names = join_names(&p, num_names, class_names);
        if (!(props[num_props++] = names ? meta(&p, "classes", names) : NULL)) p.failed = 1;
    }
    if (dataset && *dataset && !(props[num_props++] = meta(&p, "dataset", dataset))) p.failed = 1;

    graph->name = pool_printf(&p, "%s", m->source_name ? m->source_name : "convnet");
    graph->n_node = g.num_nodes;
    graph->node = g.nodes;
    graph->n_initializer = g.num_inits;
    graph->initializer = g.inits;
    graph->n_input = 1;
    graph->input = inputs;
    graph->n_output = 1;
    graph->output = outputs;
    opset->domain = pool_printf(&p, "%s", "");
    opset->has_version = 1;
    opset->version = EXPORT_OPSET;
    opsets[0] = opset;
    model->has_ir_version = 1;
    model->ir_version = EXPORT_IR_VERSION;
    model->n_opset_import = 1;
    model->opset_import = opsets;
    model->producer_name = pool_printf(&p, "convnet");
    model->producer_version = pool_printf(&p, "1");
    model->doc_string = pool_printf(&p, "%s: expects normalised input, see metadata normalize_mean/normalize_std",
                                    m->source_name ? m->source_name : "convnet");
    model->graph = graph;
    model->n_metadata_props = num_props;
    model->metadata_props = props;
    if (p.failed || !inputs[0] || !outputs[0] || !props[0] || !props[1] || !props[2]) {
        pool_free(&p);
        return cn_fail(CN_ERR_NOMEM, "%s: out of memory building the ONNX graph", path);
    }
    size_t size = onnx__model_proto__get_packed_size(model);
    uint8_t *buf = cn_calloc(size ? size : 1, 1);
    if (!buf) { pool_free(&p); return CN_ERR_NOMEM; }
    size_t packed = onnx__model_proto__pack(model, buf);
    pool_free(&p);
    if (packed != size) { free(buf); return cn_fail(CN_ERR_IO, "%s: protobuf packing wrote %zu of %zu bytes", path, packed, size); }
    st = cn_write_file_atomic(path, buf, size);
    free(buf);
    return st;
}
