/* C-source export (see io/export_c.h), the model side: a plan of ops (BN folded,
 * ReLU fused) built from the model and, for int8, calibrated with a float
 * reference of that plan and quantised; export_c_gen.c writes the source. */
#include "io/export_c_plan.h"
#include "core/error.h"
#include "core/mem.h"
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CALIB_BINS 4096
#define MAX_INT8_FAN_IN 133000   /* 127 * 127 * fan_in must fit in int32 */

/* ---- plan ----------------------------------------------------------------------- */

static void free_plan(export_plan *p) {
    for (int i = 0; i < p->num_ops; i++) {
        export_op *o = &p->ops[i];
        free(o->w); free(o->b); free(o->wq); free(o->mult); free(o->qbias);
    }
    free(p->ops);
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

/* target: named in errors ("generic C" or "cortex-m4") */
static cn_status build_plan(const cn_model *m, const char *target, export_plan *p) {
    memset(p, 0, sizeof *p);
    p->m = m;
    p->ops = cn_calloc((size_t)m->num_layers, sizeof *p->ops);
    if (!p->ops) return CN_ERR_NOMEM;
    for (int i = 0; i < m->num_layers; i++) {
        const cn_layer *l = &m->layers[i];
        const float *w = m->params + l->weight_offset, *b = m->params + l->bias_offset;
        cn_status st = cn_model_check_layer_finite(m, l);
        if (st) return st;
        if (l->kind == CN_LAYER_DROPOUT || l->kind == CN_LAYER_FLATTEN) continue;   /* identities at inference */
        if (l->kind == CN_LAYER_RELU && p->num_ops > 0) {
            export_op *prev = &p->ops[p->num_ops - 1];
            bool between_ok = true;   /* only dropout/flatten between the previous op and this ReLU */
            for (int j = prev->last + 1; j < i; j++)
                if (m->layers[j].kind != CN_LAYER_DROPOUT && m->layers[j].kind != CN_LAYER_FLATTEN) between_ok = false;
            if (between_ok && !prev->relu && (prev->kind == OP_CONV || prev->kind == OP_LINEAR || prev->kind == OP_AFFINE)) {
                prev->relu = true;
                prev->last = i;
                continue;
            }
        }
        export_op *o = &p->ops[p->num_ops++];
        o->first = o->last = i;
        o->in = l->in;
        o->out = l->out;
        o->k = l->kernel;
        o->stride = l->stride;
        o->pad = l->pad;
        o->groups = l->kind == CN_LAYER_CONV2D && l->groups > 1 ? l->groups : 1;
        o->dilation = l->kind == CN_LAYER_CONV2D && l->dilation > 1 ? l->dilation : 1;
        switch (l->kind) {
        case CN_LAYER_CONV2D: case CN_LAYER_LINEAR: {
            o->kind = l->kind == CN_LAYER_CONV2D ? OP_CONV : OP_LINEAR;
            int oc = l->out_channels;
            o->channels = oc;
            o->fan_in = l->weight_count / (size_t)oc;
            o->w = dup_floats(w, l->weight_count);
            o->b = l->bias_count ? dup_floats(b, (size_t)oc) : NULL;
            if (!o->w || (l->bias_count && !o->b)) return CN_ERR_NOMEM;
            /* a batch norm right after (batchnorm2d after a conv, batchnorm1d after a linear) folds in */
            if (i + 1 < m->num_layers && m->layers[i + 1].kind == CN_LAYER_BATCHNORM2D && m->layers[i + 1].in.c == oc) {
                const cn_layer *bn = &m->layers[i + 1];
                if ((st = cn_model_check_layer_finite(m, bn))) return st;
                if (!o->b && !(o->b = cn_calloc((size_t)oc, sizeof *o->b))) return CN_ERR_NOMEM;
                for (int c = 0; c < oc; c++) {
                    float scale, shift;
                    bn_scale_shift(m, bn, c, &scale, &shift);
                    for (size_t j = 0; j < o->fan_in; j++) o->w[c * o->fan_in + j] *= scale;
                    o->b[c] = o->b[c] * scale + shift;
                }
                o->last = ++i;
                o->out = bn->out;
                o->bn_folded = true;
            }
            break;
        }
        case CN_LAYER_BATCHNORM2D: {
            o->kind = OP_AFFINE;
            o->channels = l->in.c;
            o->w = cn_calloc((size_t)l->in.c, sizeof *o->w);
            o->b = cn_calloc((size_t)l->in.c, sizeof *o->b);
            if (!o->w || !o->b) return CN_ERR_NOMEM;
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
        default:
            return cn_fail(CN_ERR_UNSUPPORTED, "%s: layer %s: %s has no C export (target %s)", m->source_name, l->name,
                           cn_layer_kind_name(l->kind), target);
        }
    }
    return CN_OK;
}

/* ---- int8 calibration: a float reference of the plan ---------------------------------
 * The same arithmetic as the generated float code, run on the calibration
 * images. It depends only on the plan, not on which intermediate activations
 * the engine keeps (its fused kernels skip some). */

/* Grouped and dilated too: output channel oc reads the CG input channels of group oc / (OC / groups). */
static void ref_conv(const export_op *o, const float *in, float *out) {
    int H = o->in.h, W = o->in.w, OC = o->out.c, OH = o->out.h, OW = o->out.w, k = o->k, s = o->stride, p = o->pad;
    int CG = o->in.c / o->groups, OG = OC / o->groups, d = o->dilation;
    for (int oc = 0; oc < OC; oc++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                float acc = 0.0f;
                const float *src = in + (size_t)(oc / OG) * CG * H * W;
                for (int i = 0; i < CG; i++)
                    for (int ky = 0; ky < k; ky++) {
                        int iy = y * s - p + ky * d;
                        if (iy < 0 || iy >= H) continue;
                        for (int kx = 0; kx < k; kx++) {
                            int ix = x * s - p + kx * d;
                            if (ix >= 0 && ix < W) acc += src[(i * H + iy) * W + ix] * o->w[((size_t)(oc * CG + i) * k + ky) * k + kx];
                        }
                    }
                if (o->b) acc += o->b[oc];
                out[(oc * OH + y) * OW + x] = (o->relu && acc < 0.0f) ? 0.0f : acc;
            }
}

static void ref_pool(const export_op *o, const float *in, float *out) {
    int C = o->in.c, H = o->in.h, W = o->in.w, OH = o->out.h, OW = o->out.w, k = o->k, s = o->stride, p = o->pad;
    bool avg = o->kind == OP_AVGPOOL;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                int y0 = y * s - p, x0 = x * s - p, y1 = y0 + k, x1 = x0 + k, seen = 0;
                float v = 0.0f;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int iy = y0 + ky, ix = x0 + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        float e = in[(c * H + iy) * W + ix];
                        if (avg) v += e;
                        else if (!seen || e > v) v = e;
                        seen = 1;
                    }
                if (avg) {
                    if (y1 > H + p) y1 = H + p;
                    if (x1 > W + p) x1 = W + p;
                    v /= (float)((y1 - y0) * (x1 - x0));
                }
                out[(c * OH + y) * OW + x] = v;
            }
}

/* Runs op `o` on one sample: reads *cur, writes the other buffer or in place; *cur follows the output. */
static void ref_op(const export_op *o, float **cur, float **other) {
    float *in = *cur, *out = *other;
    int n = cn_shape_size(o->in);
    switch (o->kind) {
    case OP_CONV: ref_conv(o, in, out); break;
    case OP_LINEAR:
        for (int j = 0; j < o->channels; j++) {
            float acc = o->b ? o->b[j] : 0.0f;
            for (int i = 0; i < n; i++) acc += o->w[(size_t)j * n + i] * in[i];
            out[j] = (o->relu && acc < 0.0f) ? 0.0f : acc;
        }
        break;
    case OP_AFFINE: {
        int plane = o->in.h * o->in.w;
        for (int c = 0; c < o->channels; c++)
            for (int i = 0; i < plane; i++) {
                float v = in[c * plane + i] * o->w[c] + o->b[c];
                in[c * plane + i] = (o->relu && v < 0.0f) ? 0.0f : v;
            }
        return;
    }
    case OP_RELU:
        for (int i = 0; i < n; i++) if (in[i] < 0.0f) in[i] = 0.0f;
        return;
    case OP_RELU6:
        for (int i = 0; i < n; i++) in[i] = in[i] > 0.0f ? (in[i] < 6.0f ? in[i] : 6.0f) : 0.0f;
        return;
    case OP_LEAKY_RELU:
        for (int i = 0; i < n; i++) if (!(in[i] > 0.0f)) in[i] *= o->slope;
        return;
    case OP_MAXPOOL: case OP_AVGPOOL: ref_pool(o, in, out); break;
    case OP_GAP: {
        int plane = o->in.h * o->in.w;
        for (int c = 0; c < o->in.c; c++) {
            float sum = 0.0f;
            for (int i = 0; i < plane; i++) sum += in[c * plane + i];
            out[c] = sum / (float)plane;
        }
        break;
    }
    case OP_LOG_SOFTMAX: return;   /* never inside the int8 region */
    }
    *cur = out;
    *other = in;
}

/* int8 ops whose output gets its own calibrated scale; the others (ReLU, ReLU6, leaky
 * ReLU, max pooling) keep their input's. Averages get their own: they span a much
 * narrower range than the activations they average. */
static bool calibrated_output(export_op_kind k) {
    return k == OP_CONV || k == OP_LINEAR || k == OP_AFFINE || k == OP_AVGPOOL || k == OP_GAP;
}

/* Calibrates the scales of the int8 region: the input and every calibrated op
 * output up to the last conv/linear. Pass 0 finds max |x| per tensor, pass 1
 * fills a histogram over [0, max] for the percentile. Threads work on separate
 * images with private buffers and counters, so the result does not depend on
 * scheduling. */
static cn_status calibrate(export_plan *p, const float *mean, const float *std, const float *images, int count) {
    const cn_model *m = p->m;
    int ntensors = 1, nops = p->last_weighted;   /* ops 0 .. last_weighted - 1 feed the int8 region */
    int *tensor_of_op = cn_calloc((size_t)p->num_ops + 1, sizeof *tensor_of_op);
    if (!tensor_of_op) return CN_ERR_NOMEM;
    for (int i = 0; i < nops; i++) tensor_of_op[i] = calibrated_output(p->ops[i].kind) ? ntensors++ : -1;
    size_t largest = (size_t)cn_shape_size(m->input);
    for (int i = 0; i < nops; i++) largest = largest > (size_t)cn_shape_size(p->ops[i].out) ? largest : (size_t)cn_shape_size(p->ops[i].out);
    int threads = omp_get_max_threads();
    if (threads > 16) threads = 16;
    if (threads > count) threads = count;
    if (threads < 1) threads = 1;
    float *bufs = cn_calloc((size_t)threads * 2 * largest, sizeof *bufs);
    double *tmax = cn_calloc((size_t)threads * ntensors, sizeof *tmax), *maxv = cn_calloc((size_t)ntensors, sizeof *maxv);
    uint64_t *hist = cn_calloc((size_t)threads * ntensors * CALIB_BINS, sizeof *hist);
    float *scales = cn_calloc((size_t)ntensors, sizeof *scales);
    cn_status st = CN_OK;
    if (!bufs || !tmax || !maxv || !hist || !scales) st = CN_ERR_NOMEM;
    int in_size = cn_shape_size(m->input), plane = m->input.h * m->input.w;
    for (int pass = 0; pass < 2 && !st; pass++) {
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int img = 0; img < count; img++) {
            int t = omp_get_thread_num();
            float *cur = bufs + (size_t)t * 2 * largest, *other = cur + largest;
            const float *src = images + (size_t)img * in_size;
            for (int i = 0; i < in_size; i++) cur[i] = (src[i] - mean[i / plane]) / std[i / plane];
            for (int i = -1; i < nops; i++) {
                if (i >= 0) ref_op(&p->ops[i], &cur, &other);
                int ti = i < 0 ? 0 : tensor_of_op[i];
                if (ti < 0) continue;
                size_t n = (size_t)cn_shape_size(i < 0 ? m->input : p->ops[i].out);
                if (pass == 0) {
                    double *mx = &tmax[(size_t)t * ntensors + ti];
                    for (size_t k = 0; k < n; k++) if (fabs((double)cur[k]) > *mx) *mx = fabs((double)cur[k]);
                } else if (maxv[ti] > 0) {
                    uint64_t *h = hist + ((size_t)t * ntensors + ti) * CALIB_BINS;
                    double to_bin = CALIB_BINS / maxv[ti];
                    for (size_t k = 0; k < n; k++) {
                        double b = fabs((double)cur[k]) * to_bin;
                        h[b >= CALIB_BINS - 1 ? CALIB_BINS - 1 : (int)b]++;
                    }
                }
            }
        }
        if (pass == 0)
            for (int ti = 0; ti < ntensors; ti++)
                for (int t = 0; t < threads; t++) if (tmax[(size_t)t * ntensors + ti] > maxv[ti]) maxv[ti] = tmax[(size_t)t * ntensors + ti];
    }
    for (int ti = 0; ti < ntensors && !st; ti++) {
        if (!isfinite(maxv[ti]))
            st = cn_fail(CN_ERR_NUMERIC, "%s: calibration produced non-finite activations", m->source_name);
        uint64_t total = 0, seen = 0;
        for (int t = 0; t < threads; t++)
            for (int b = 0; b < CALIB_BINS; b++) total += hist[((size_t)t * ntensors + ti) * CALIB_BINS + b];
        double threshold = maxv[ti], need = ceil(CALIB_PERCENTILE * (double)total);
        for (int b = 0; b < CALIB_BINS && total; b++) {
            for (int t = 0; t < threads; t++) seen += hist[((size_t)t * ntensors + ti) * CALIB_BINS + b];
            if ((double)seen >= need) { threshold = maxv[ti] * (b + 1) / CALIB_BINS; break; }
        }
        scales[ti] = threshold > 0 ? (float)(threshold / 127.0) : 1.0f;
    }
    if (!st) {
        /* Scales along the int8 region: calibrated after conv/linear/affine/averages, inherited otherwise. */
        float s = scales[0];
        p->s_input = s;
        for (int i = 0; i <= p->last_weighted; i++) {
            export_op *o = &p->ops[i];
            o->quant_in = true;
            o->s_in = s;
            if (i == p->last_weighted) break;
            o->quant_out = true;
            if (tensor_of_op[i] >= 0) s = scales[tensor_of_op[i]];
            o->s_out = s;
        }
    }
    free(tensor_of_op); free(bufs); free(tmax); free(maxv); free(hist); free(scales);
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
    if (cn_model_has_branches(m))
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: the model has branches (from=, add, concat); the C export runs plain "
                       "layer stacks only (export it to ONNX instead)", m->source_name);
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
        for (int i = 0; !st && i < p->last_weighted; i++)
            if (p->ops[i].kind == OP_LOG_SOFTMAX)
                st = cn_fail(CN_ERR_UNSUPPORTED, "%s: int8 quantisation needs log_softmax after the last conv/linear layer",
                             m->source_name);
        if (!st) st = calibrate(p, mean, std, calib_images, calib_count);
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
