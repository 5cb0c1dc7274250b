/* ONNX import: a ModelProto written by torch.onnx.export (or by cn_onnx_export)
 * for a sequential CNN -> our spec text + weights (see io/onnx.h).
 *
 * The graph is walked in node order (ONNX requires topological order) keeping
 * one "current activation". A compute node reads that tensor as its data input
 * and produces the next one; constants (initializers, Constant nodes, Identity
 * aliases) and shape arithmetic on int64 values are evaluated on the way. A node
 * reading an older activation follows a branch of the graph (follow_branch): its
 * layer reads that activation's layer (the spec's from=), and Add/Sum of two or
 * more activations and Concat of them along channels become add and concat layers.
 *
 * The parts: io/onnx_import_internal.h lists them (decoding, layers, constant
 * folding, model building); this file is the driver. */
#include "io/onnx_import_internal.h"
#include "core/error.h"
#include "core/file_open.h"
#include "core/mem.h"
#include "data/norm_text.h"
#include "data/stats.h"
#include "io/protobuf_depth.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char SUPPORTED_OPS[] =
    "Conv, BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, Gemm, "
    "MatMul, Add, Sum, Concat, Pad, Constant, LogSoftmax, Softmax, Dropout, Identity, Shape, Gather, Unsqueeze, "
    "Squeeze, Cast, ConstantOfShape, Slice, Transpose, Sub, Mul, Div (the last ten on constants only), "
    "Clip (0, 6: relu6), LeakyRelu";

/* Frees the values and layers the import made (not im itself). */
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

/* The handler of operator `op`, or NULL. */
static const cn_onnx_op *find_op(const cn_onnx_op *table, const char *op) {
    for (; table->op; table++)
        if (!strcmp(op, table->op)) return table;
    return NULL;
}

/* Ops that only compute constants / aliases may follow a final Softmax. */
static bool is_constant_op(const char *op) {
    return find_op(CN_ONNX_CONSTANT_OPS, op) || !strcmp(op, "Identity");
}

/* Before a compute node: when its first activation input is not the current one (the graph
 * branches: a residual shortcut, a concat's second branch), that one becomes current, and the
 * layer the node adds reads it (new_layer records the layer whose output it is). */
static cn_status follow_branch(importer *im, int idx) {
    const Onnx__NodeProto *n = node_at(im, idx);
    for (size_t i = 0; i < n->n_input; i++) {
        int vi = cn_onnx_find_value(im, input_name(n, i));
        if (vi < 0 || im->values[vi].kind != V_ACT) continue;
        if (vi == im->cur) return CN_OK;
        if (im->pend_pad)
            return cn_onnx_node_fail(im, idx, CN_ERR_UNSUPPORTED, "reads \"%s\" while the zero padding of node %d waits for "
                                     "its Conv or pool: padding is supported only right before one", CLEAN(input_name(n, i)),
                                     im->pad_node);
        const value *v = &im->values[vi];
        im->cur = vi;
        im->rank = v->act_rank;
        im->shape = v->act_shape;
        im->fresh_weighted = false;
        return CN_OK;
    }
    return CN_OK;
}

/* Every imported layer but the last is read by a later one: an output nothing reads (a branch
 * that goes nowhere) is named by its node. */
static cn_status check_every_layer_read(const importer *im) {
    for (int i = 0; i + 1 < im->num_layers; i++) {
        bool read = false;
        for (int j = i + 1; j < im->num_layers && !read; j++)
            for (int k = 0; k < im->layers[j].num_from; k++) read |= im->layers[j].from[k] == i;
        if (!read)
            return cn_onnx_node_fail(im, im->layers[i].node, CN_ERR_UNSUPPORTED, "no later node reads its output, and it is not "
                                     "the graph's output (a branch that goes nowhere)");
    }
    return CN_OK;
}

static cn_status read_input(importer *im, const Onnx__GraphProto *g) {
    const Onnx__ValueInfoProto *in = NULL;
    int count = 0;
    char names[200] = "";
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *v = g->input[i];
        if (v->name && cn_onnx_find_value(im, v->name) >= 0) continue;   /* an initializer listed as input */
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
                       cn_onnx_dtype_name(tt->elem_type));
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
    value v = {.kind = V_ACT, .act_rank = 4, .act_shape = s, .origin_node = -1, .layer = -1};
    int vi;
    cn_status st = cn_onnx_add_value(im, in->name, "graph input", v, &vi);
    if (st) return st;
    im->cur = vi;
    im->rank = 4;
    im->shape = s;
    return CN_OK;
}
/* normalize_mean and normalize_std (as cn_onnx_export writes them): both or
 * neither, each once, finite, std > 0; a bad value is an error naming the key
 * (it used to fall back to the dataset's defaults silently). */
/* Metadata "classes" (as cn_onnx_export_labeled writes it): comma-separated names,
 * each 1 to CN_CLASS_NAME_MAX - 1 bytes, at most CN_MAX_CLASSES of them. */
static cn_status read_class_names(const char *file, const char *text, cn_onnx_info *info) {
    for (const char *p = text;; p++) {
        size_t n = strcspn(p, ",");
        if (info->num_class_names == CN_MAX_CLASSES)
            return cn_fail(CN_ERR_FORMAT, "%s: metadata classes has more than %d names", file, CN_MAX_CLASSES);
        if (n == 0 || n >= CN_CLASS_NAME_MAX)
            return cn_fail(CN_ERR_FORMAT, "%s: metadata classes: name %d is %zu bytes; expected 1 to %d", file,
                           info->num_class_names + 1, n, CN_CLASS_NAME_MAX - 1);
        memcpy(info->class_names[info->num_class_names], p, n);
        info->class_names[info->num_class_names++][n] = '\0';
        p += n;
        if (!*p) return CN_OK;
    }
}

/* normalize_mean/normalize_std (below), and "dataset" and "classes" when present. */
static cn_status read_metadata(const Onnx__ModelProto *mp, const char *file, cn_onnx_info *info) {
    static const char *const keys[4] = {"normalize_mean", "normalize_std", "dataset", "classes"};
    const char *text[4] = {NULL, NULL, NULL, NULL};
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = mp->metadata_props[i];
        for (int k = 0; k < 4; k++) {
            if (!e->key || strcmp(e->key, keys[k])) continue;
            if (text[k]) return cn_fail(CN_ERR_FORMAT, "%s: metadata %s is given twice", file, keys[k]);
            text[k] = e->value ? e->value : "";
        }
    }
    if (text[2] && snprintf(info->dataset, sizeof info->dataset, "%s", text[2]) >= (int)sizeof info->dataset)
        return cn_fail(CN_ERR_FORMAT, "%s: metadata dataset is longer than %zu bytes", file, sizeof info->dataset - 1);
    if (text[3]) {
        cn_status st = read_class_names(file, text[3], info);
        if (st) return st;
    }
    if (!text[0] && !text[1]) return CN_OK;
    if (!text[0] || !text[1])
        return cn_fail(CN_ERR_FORMAT, "%s: metadata has %s but no %s; expected both or neither", file,
                       keys[text[0] ? 0 : 1], keys[text[0] ? 1 : 0]);
    float m[4], sd[4];
    int nm, ns;
    cn_status st = cn_normalization_parse(file, keys[0], text[0], 0, m, 4, &nm);
    if (!st) st = cn_normalization_parse(file, keys[1], text[1], 1, sd, 4, &ns);
    if (st) return st;
    if (nm != ns)
        return cn_fail(CN_ERR_FORMAT, "%s: metadata normalize_mean has %d values but normalize_std has %d; "
                       "expected as many", file, nm, ns);
    info->has_normalization = 1;
    for (int c = 0; c < 4; c++) {
        info->mean[c] = m[c < nm ? c : 0];
        info->std[c] = sd[c < nm ? c : 0];
    }
    return CN_OK;
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
    /* A label only: a longer producer string is cut at the field's size. */
    if (snprintf(info->producer, sizeof info->producer, "%s%s%s", CLEAN(mp->producer_name),
                 mp->producer_version && *mp->producer_version ? " " : "", CLEAN(mp->producer_version))
        >= (int)sizeof info->producer)
        info->producer[sizeof info->producer - 1] = '\0';
    info->opset = im->opset;
    if ((st = read_metadata(mp, file, info))) goto done;
    if (g->n_node > MAX_NODES || g->n_initializer > MAX_VALUES / 2) {
        st = cn_fail(CN_ERR_UNSUPPORTED, "%s: %zu nodes and %zu initializers; at most %d and %d are supported",
                     file, g->n_node, g->n_initializer, MAX_NODES, MAX_VALUES / 2);
        goto done;
    }
    if (g->n_sparse_initializer) { st = cn_fail(CN_ERR_UNSUPPORTED, "%s: sparse initializers are not supported", file); goto done; }
    size_t expected = g->n_initializer + g->n_input + 3 * g->n_node + 16;
    if (getrandom(&im->hash_seed, sizeof im->hash_seed, GRND_NONBLOCK) != (ssize_t)sizeof im->hash_seed)
        im->hash_seed = (uint64_t)(uintptr_t)im * 0x9E3779B97F4A7C15ull;   /* ASLR still varies it */
    im->table_size = 1024;
    while (im->table_size < 2 * expected && im->table_size < ((size_t)1 << 22)) im->table_size *= 2;
    im->table = cn_calloc(im->table_size, sizeof *im->table);
    if (!im->table) { st = CN_ERR_NOMEM; goto done; }
    for (size_t i = 0; i < g->n_initializer && !st; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        char what[200];
        snprintf(what, sizeof what, "initializer \"%s\"", CLEAN(t->name));
        value v;
        st = cn_onnx_decode_tensor(im, t, what, &v);
        if (!st) {
            st = cn_onnx_add_value(im, t->name, what, v, NULL);
            if (st && v.owned) { free(v.f); free(v.i); }
        }
    }
    if (!st) st = read_input(im, g);
    cn_shape input = im->shape;
    for (size_t idx = 0; idx < g->n_node && !st; idx++) {
        const Onnx__NodeProto *n = g->node[idx];
        const char *op = n->op_type ? n->op_type : "";
        if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) {
            st = cn_onnx_node_fail(im, (int)idx, CN_ERR_UNSUPPORTED, "operator domain \"%s\" is not supported (only the default ONNX domain)",
                           CLEAN(n->domain));
            break;
        }
        if (im->terminal_node >= 0 && !is_constant_op(op)) {
            st = cn_onnx_node_fail(im, (int)idx, CN_ERR_UNSUPPORTED, "follows the Softmax of node %d, which must be the last "
                           "operator (it is imported as log_softmax)", im->terminal_node);
            break;
        }
        const cn_onnx_op *e = find_op(CN_ONNX_LAYER_OPS, op);
        if (!e) e = find_op(CN_ONNX_CONSTANT_OPS, op);
        if (!e) {
            st = cn_fail(CN_ERR_UNSUPPORTED, "%s: node %zu \"%s\": operator %s is not supported (supported: %s)", file, idx,
                         CLEAN(n->name), CLEAN(op), SUPPORTED_OPS);
            break;
        }
        if (find_op(CN_ONNX_LAYER_OPS, op)) st = follow_branch(im, (int)idx);
        if (!st) st = e->fn(im, (int)idx);
    }
    if (!st) st = check_every_layer_read(im);
    if (st) goto done;
    if (im->pend_pad) { st = cn_onnx_node_fail(im, im->pad_node, CN_ERR_UNSUPPORTED, "zero padding at the end of the graph is not supported"); goto done; }
    if (g->n_output != 1) {
        st = cn_fail(CN_ERR_UNSUPPORTED, "%s: the graph has %zu outputs; expected one (class scores)", file, g->n_output);
        goto done;
    }
    int oi = cn_onnx_find_value(im, g->output[0]->name);
    if (oi != im->cur) {
        st = cn_fail(CN_ERR_UNSUPPORTED, "%s: graph output \"%s\" is %s; expected the end of the layer chain \"%s\"", file,
                     CLEAN(g->output[0]->name), oi < 0 ? "not produced by any node" :
                     im->values[oi].kind == V_ACT ? "an earlier activation (the graph branches)" : "a constant",
                     CLEAN(im->values[im->cur].name));
        goto done;
    }
    if (im->num_layers == 0) { st = cn_fail(CN_ERR_UNSUPPORTED, "%s: the graph has no layers", file); goto done; }
    info->softmax_as_log_softmax = im->softmax;
    st = cn_onnx_build_model(im, input, info->producer, out);
    if (!st && info->num_class_names && info->num_class_names != cn_model_num_classes(*out)) {
        st = cn_fail(CN_ERR_FORMAT, "%s: metadata classes has %d names but the model outputs %d classes", file,
                     info->num_class_names, cn_model_num_classes(*out));
        cn_model_free(*out);
        *out = NULL;
    }
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
    cn_status st = cn_protobuf_check_depth(&onnx__model_proto__descriptor, data, size, CN_ONNX_MAX_NESTING, name);
    if (st) return st;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, size, data);
    if (!mp) return cn_fail(CN_ERR_FORMAT, "%s: not a valid ONNX protobuf (ModelProto could not be decoded)", name);
    st = import_model(mp, name, info, out);
    onnx__model_proto__free_unpacked(mp, NULL);
    return st;
}

cn_status cn_onnx_import_ex(const char *path, cn_onnx_info *info, cn_model **out) {
    if (out) *out = NULL;
    if (!path || !out) return cn_fail(CN_ERR_ARG, "onnx import: no path or output pointer");
    FILE *f;
    cn_status st = cn_fopen_regular(path, "an ONNX model file", &f);   /* a FIFO must not block */
    if (st) return st;
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
