/* C-source export (see io/export_c.h), the model side: a plan of ops (BN folded,
 * ReLU fused) built from the model and, for int8, calibrated with a float
 * reference of that plan (export_c_calib.c) and quantised; export_c_gen.c writes
 * the source. */
#include "io/export_c_plan.h"
#include "core/error.h"
#include "core/mem.h"
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_INT8_FAN_IN 133000   /* 127 * 127 * fan_in must fit in int32 */

/* ---- plan ----------------------------------------------------------------------- */

static void free_plan(export_plan *p) {
    for (int i = 0; i < p->num_ops; i++) {
        export_op *o = &p->ops[i];
        free(o->w); free(o->b); free(o->wq); free(o->mult); free(o->qbias);
    }
    free(p->ops);
    free(p->readers);   /* and last_reader, the same allocation */
}

static float *dup_floats(const float *src, size_t n) {
    float *d = cn_calloc(n ? n : 1, sizeof *d);
    if (d && n) memcpy(d, src, n * sizeof *d);
    return d;
}

/* BN eval as the engine computes it: y = x * scale + shift, per channel. */
static void bn_scale_shift(const cn_model *m, const cn_layer *bn, int c, float *scale, float *shift) {
    const float *gamma = m->params + bn->weight_offset, *beta = m->params + bn->bias_offset;
    const float *mean = m->buffers + bn->buffer_offset, *var = mean + bn->in.c;
    float invstd = 1.0f / sqrtf(var[c] + bn->bn_eps);
    *scale = gamma[c] * invstd;
    *shift = beta[c] - mean[c] * *scale;
}

/* Values while the plan is built: the value each model value stands for (dropout and
 * flatten pass theirs on: canon) and how many layers read each (the model's output counts
 * as one). */
typedef struct { int *canon, *readers; } value_map;

static cn_status map_values(const cn_model *m, value_map *vm) {
    int L = m->num_layers;
    vm->canon = cn_calloc(2 * ((size_t)L + 1), sizeof *vm->canon);
    if (!vm->canon) return CN_ERR_NOMEM;
    vm->readers = vm->canon + L + 1;
    for (int i = 0; i < L; i++) {
        const cn_layer *l = &m->layers[i];
        bool pass = l->kind == CN_LAYER_DROPOUT || l->kind == CN_LAYER_FLATTEN;
        vm->canon[i + 1] = pass ? vm->canon[l->inputs[0]] : i + 1;
        for (int k = 0; !pass && k < l->num_inputs; k++) vm->readers[vm->canon[l->inputs[k]]]++;
    }
    vm->readers[vm->canon[L]]++;
    return CN_OK;
}

/* Conv or linear layer i into op o; a batch norm right after it (batchnorm2d after a conv,
 * batchnorm1d after a linear) folds in when it reads the layer's output and nothing else
 * does (a branch that reads the conv's own output keeps it unfolded). */
static cn_status weighted_op(const cn_model *m, const value_map *vm, int i, export_op *o) {
    const cn_layer *l = &m->layers[i];
    int oc = l->out_channels;
    o->kind = l->kind == CN_LAYER_CONV2D ? OP_CONV : OP_LINEAR;
    o->channels = oc;
    o->fan_in = l->weight_count / (size_t)oc;
    o->w = dup_floats(m->params + l->weight_offset, l->weight_count);
    o->b = l->bias_count ? dup_floats(m->params + l->bias_offset, (size_t)oc) : NULL;
    if (!o->w || (l->bias_count && !o->b)) return CN_ERR_NOMEM;
    const cn_layer *bn = i + 1 < m->num_layers ? &m->layers[i + 1] : NULL;
    if (!bn || bn->kind != CN_LAYER_BATCHNORM2D || bn->in.c != oc || bn->inputs[0] != i + 1 || vm->readers[i + 1] != 1)
        return CN_OK;
    cn_status st = cn_model_check_layer_finite(m, bn);
    if (st) return st;
    if (!o->b && !(o->b = cn_calloc((size_t)oc, sizeof *o->b))) return CN_ERR_NOMEM;
    for (int c = 0; c < oc; c++) {
        float scale, shift;
        bn_scale_shift(m, bn, c, &scale, &shift);
        for (size_t j = 0; j < o->fan_in; j++) o->w[c * o->fan_in + j] *= scale;
        o->b[c] = o->b[c] * scale + shift;
    }
    o->last = i + 1;
    o->out_v = i + 2;
    o->out = bn->out;
    o->bn_folded = true;
    return CN_OK;
}

/* A ReLU at layer i whose input is the output of the last op, which nothing else reads:
 * fused into that op when it is a conv, linear, batch norm or add. */
static bool fuse_relu(export_plan *p, const value_map *vm, int i) {
    const cn_layer *l = &p->m->layers[i];
    if (l->kind != CN_LAYER_RELU || p->num_ops == 0) return false;
    export_op *prev = &p->ops[p->num_ops - 1];
    int v = vm->canon[l->inputs[0]];
    if (v != prev->out_v || vm->readers[v] != 1 || prev->relu ||
        (prev->kind != OP_CONV && prev->kind != OP_LINEAR && prev->kind != OP_AFFINE && prev->kind != OP_ADD))
        return false;
    prev->relu = true;
    prev->last = i;
    prev->out_v = i + 1;
    return true;
}

/* Readers of each value among the ops (p->readers, p->last_reader). */
static cn_status count_readers(export_plan *p, int out_value) {
    p->num_values = p->m->num_layers + 1;
    p->out_value = out_value;
    p->readers = cn_calloc(2 * (size_t)p->num_values, sizeof *p->readers);
    if (!p->readers) return CN_ERR_NOMEM;
    p->last_reader = p->readers + p->num_values;
    for (int v = 0; v < p->num_values; v++) p->last_reader[v] = -1;
    for (int j = 0; j < p->num_ops; j++)
        for (int k = 0; k < p->ops[j].num_in; k++) {
            p->readers[p->ops[j].in_v[k]]++;
            p->last_reader[p->ops[j].in_v[k]] = j;
        }
    p->readers[out_value]++;
    p->last_reader[out_value] = p->num_ops;
    return CN_OK;
}

/* target: named in errors ("generic C" or "cortex-m4") */
static cn_status build_plan(const cn_model *m, const char *target, export_plan *p) {
    memset(p, 0, sizeof *p);
    p->m = m;
    value_map vm;
    if (map_values(m, &vm)) return CN_ERR_NOMEM;
    p->ops = cn_calloc((size_t)m->num_layers, sizeof *p->ops);
    cn_status st = p->ops ? CN_OK : CN_ERR_NOMEM;
    for (int i = 0; i < m->num_layers && !st; i++) {
        const cn_layer *l = &m->layers[i];
        if ((st = cn_model_check_layer_finite(m, l))) break;
        if (l->kind == CN_LAYER_DROPOUT || l->kind == CN_LAYER_FLATTEN) continue;   /* identities at inference */
        if (fuse_relu(p, &vm, i)) continue;
        export_op *o = &p->ops[p->num_ops++];
        o->first = o->last = i;
        o->out_v = i + 1;
        o->num_in = l->num_inputs;
        for (int k = 0; k < l->num_inputs; k++) {
            o->in_v[k] = vm.canon[l->inputs[k]];
            o->in_n[k] = cn_shape_size(cn_model_value_shape(m, l->inputs[k]));
        }
        o->in = l->in;
        o->out = l->out;
        o->k = l->kernel;
        o->stride = l->stride;
        o->pad = l->pad;
        o->groups = l->kind == CN_LAYER_CONV2D && l->groups > 1 ? l->groups : 1;
        o->dilation = l->kind == CN_LAYER_CONV2D && l->dilation > 1 ? l->dilation : 1;
        switch (l->kind) {
        case CN_LAYER_CONV2D: case CN_LAYER_LINEAR:
            st = weighted_op(m, &vm, i, o);
            i = o->last;
            break;
        case CN_LAYER_BATCHNORM2D: {
            o->kind = OP_AFFINE;
            o->channels = l->in.c;
            o->w = cn_calloc((size_t)l->in.c, sizeof *o->w);
            o->b = cn_calloc((size_t)l->in.c, sizeof *o->b);
            if (!o->w || !o->b) { st = CN_ERR_NOMEM; break; }
            for (int c = 0; c < l->in.c; c++) bn_scale_shift(m, l, c, &o->w[c], &o->b[c]);
            break;
        }
        case CN_LAYER_RELU: o->kind = OP_RELU; break;
        case CN_LAYER_RELU6: o->kind = OP_RELU6; break;
        case CN_LAYER_LEAKY_RELU: o->kind = OP_LEAKY_RELU; o->slope = l->slope; break;
        case CN_LAYER_MAXPOOL2D: o->kind = OP_MAXPOOL; break;
        case CN_LAYER_AVGPOOL2D: o->kind = OP_AVGPOOL; break;
        case CN_LAYER_GAP: o->kind = OP_GAP; break;
        case CN_LAYER_LOG_SOFTMAX: o->kind = OP_LOG_SOFTMAX; break;
        case CN_LAYER_ADD: o->kind = OP_ADD; break;
        case CN_LAYER_CONCAT: o->kind = OP_CONCAT; break;
        default:
            st = cn_fail(CN_ERR_UNSUPPORTED, "%s: layer %s: %s has no C export (target %s)", m->source_name, l->name,
                         cn_layer_kind_name(l->kind), target);
        }
    }
    if (!st) st = count_readers(p, vm.canon[m->num_layers]);
    free(vm.canon);
    return st;
}

static int8_t quantise(float v) {
    float r = v >= 0 ? v + 0.5f : v - 0.5f;
    if (r > 127.0f) r = 127.0f;
    if (r < -127.0f) r = -127.0f;
    return (int8_t)(int)r;
}

/* Per-output-channel symmetric weights; multipliers and biases in the output scale. */
static cn_status quantise_weights(export_plan *p) {
    for (int i = 0; i <= p->last_weighted; i++) {
        export_op *o = &p->ops[i];
        if (o->kind == OP_RELU6) o->relu6_top = quantise(6.0f / o->s_in);
        if (o->kind != OP_CONV && o->kind != OP_LINEAR && o->kind != OP_AFFINE) continue;
        int C = o->channels;
        o->mult = cn_calloc((size_t)C, sizeof *o->mult);
        o->qbias = cn_calloc((size_t)C, sizeof *o->qbias);
        if (!o->mult || !o->qbias) return CN_ERR_NOMEM;
        float out_div = o->quant_out ? o->s_out : 1.0f;
        if (o->kind == OP_AFFINE) {
            for (int c = 0; c < C; c++) {
                o->mult[c] = o->w[c] * o->s_in / out_div;
                o->qbias[c] = o->b[c] / out_div;
            }
            continue;
        }
        if (o->fan_in > MAX_INT8_FAN_IN)
            return cn_fail(CN_ERR_UNSUPPORTED, "%s: layer %s has %zu inputs per output; int8 accumulation supports at most %d",
                           p->m->source_name, p->m->layers[o->first].name, o->fan_in, MAX_INT8_FAN_IN);
        o->wq = cn_calloc((size_t)C * o->fan_in, 1);
        if (!o->wq) return CN_ERR_NOMEM;
        for (int c = 0; c < C; c++) {
            const float *w = o->w + (size_t)c * o->fan_in;
            float amax = 0;
            for (size_t j = 0; j < o->fan_in; j++) if (fabsf(w[j]) > amax) amax = fabsf(w[j]);
            float sw = amax > 0 ? amax / 127.0f : 1.0f;
            for (size_t j = 0; j < o->fan_in; j++) o->wq[(size_t)c * o->fan_in + j] = quantise(w[j] / sw);
            o->mult[c] = o->s_in * sw / out_div;
            o->qbias[c] = (o->b ? o->b[c] : 0.0f) / out_div;
        }
    }
    return CN_OK;
}

void cn_export_c_plan_free(export_plan *p) {
    free_plan(p);
    memset(p, 0, sizeof *p);
}

cn_status cn_export_c_check(const cn_model *m) {
    for (int i = 0; i < m->num_layers; i++)
        if (m->layers[i].kind >= CN_LAYER_KIND_COUNT)
            return cn_fail(CN_ERR_UNSUPPORTED, "%s: layer %s has no C export", m->source_name, m->layers[i].name);
    return CN_OK;
}

/* The int8 region (ops up to the last conv/linear) and the float tail after it: log_softmax
 * only in the tail, and no tail op reads an int8 value from before the last conv/linear. */
static cn_status check_int8_region(const export_plan *p, const char *target) {
    const cn_model *m = p->m;
    for (int i = 0; i < p->last_weighted; i++)
        if (p->ops[i].kind == OP_LOG_SOFTMAX)
            return cn_fail(CN_ERR_UNSUPPORTED, "%s: int8 quantisation needs log_softmax after the last conv/linear layer",
                           m->source_name);
    for (int j = p->last_weighted + 1; j < p->num_ops; j++)
        for (int k = 0; k < p->ops[j].num_in; k++) {
            int v = p->ops[j].in_v[k], producer = -1;
            for (int i = 0; i < p->num_ops; i++)
                if (p->ops[i].out_v == v) producer = i;
            if (producer < p->last_weighted)
                return cn_fail(CN_ERR_UNSUPPORTED, "%s: layer %s (%s) reads '%s', an int8 activation from before the last "
                               "conv/linear layer '%s'; int8 runs the layers after that one in float only on its output "
                               "(target %s)", m->source_name, m->layers[p->ops[j].first].name,
                               cn_layer_word(&m->layers[p->ops[j].first]), v ? m->layers[v - 1].name : "input",
                               m->layers[p->ops[p->last_weighted].first].name, target);
        }
    return CN_OK;
}

cn_status cn_export_c_plan(const cn_model *m, const float *mean, const float *std, int flags, const float *calib_images,
                           int calib_count, const char *what, const char *target, export_plan *p) {
    memset(p, 0, sizeof *p);
    int int8 = flags & CN_EXPORT_C_INT8;
    cn_status st0 = cn_export_c_check(m);
    if (st0) return st0;
    bool per_channel = false;
    for (int c = 0; c < m->input.c; c++) {
        if (!isfinite(mean[c]) || !isfinite(std[c]) || std[c] <= 0.0f)
            return cn_fail(CN_ERR_ARG, "%s: normalisation mean %g / std %g of channel %d: expected finite values with std > 0",
                           what, (double)mean[c], (double)std[c], c);
        per_channel |= mean[c] != mean[0] || std[c] != std[0];
    }
    if (int8 && (!calib_images || calib_count < 1))
        return cn_fail(CN_ERR_ARG, "%s: int8 quantisation needs calibration images (got %d)", what, calib_count);
    if (int8) {
        size_t n = (size_t)calib_count * cn_shape_size(m->input);
        for (size_t i = 0; i < n; i++)
            if (!isfinite(calib_images[i]))
                return cn_fail(CN_ERR_NUMERIC, "%s: calibration image %zu has a non-finite pixel (index %zu)", what,
                               i / cn_shape_size(m->input), i % cn_shape_size(m->input));
    }
    cn_status st = build_plan(m, target, p);
    p->norm_per_channel = per_channel;
    if (!st && int8) {
        p->last_weighted = -1;
        for (int i = 0; i < p->num_ops; i++)
            if (p->ops[i].kind == OP_CONV || p->ops[i].kind == OP_LINEAR) p->last_weighted = i;
        if (p->last_weighted < 0)
            st = cn_fail(CN_ERR_UNSUPPORTED, "%s: the model has no conv2d or linear layer to quantise", m->source_name);
        if (!st) st = check_int8_region(p, target);
        if (!st) st = cn_export_c_calibrate(p, mean, std, calib_images, calib_count);
        if (!st) st = quantise_weights(p);
    }
    if (st) cn_export_c_plan_free(p);
    return st;
}

cn_status cn_export_c(const cn_model *m, const char *dir, const float *mean, const float *std, int flags,
                      const float *calib_images, int calib_count, cn_export_c_stats *stats) {
    if (!m || !dir || !*dir) return cn_fail(CN_ERR_ARG, "C export: no model or no output directory given");
    if (flags & ~(CN_EXPORT_C_INT8 | CN_EXPORT_C_CORTEX_M4))
        return cn_fail(CN_ERR_ARG, "%s: unknown C export flags 0x%x", dir, (unsigned)flags);
    export_plan p;
    cn_status st = cn_export_c_plan(m, mean, std, flags, calib_images, calib_count, dir,
                                    flags & CN_EXPORT_C_CORTEX_M4 ? "cortex-m4" : "generic C", &p);
    if (st) return st;
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            st = cn_fail(CN_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        st = cn_fail(CN_ERR_IO, "%s: exists and is not a directory", dir);
    }
    if (!st) st = cn_export_c_generate(&p, dir, mean, std, flags, calib_count, stats);
    cn_export_c_plan_free(&p);
    return st;
}
