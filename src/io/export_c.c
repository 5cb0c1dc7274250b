/* C-source export (see io/export_c.h): a plan of ops (BN folded, ReLU fused)
 * built from the model, optional int8 calibration with a float reference of
 * that plan, then generated text for model.h and model.c. */
#include "io/export_c.h"
#include "model.h"
#include "core/atomic_file.h"
#include "io/export_check.h"
#include "core/error.h"
#include "core/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CALIB_PERCENTILE
#define CALIB_PERCENTILE 0.9999
#endif
#define CALIB_BINS 4096
#define MAX_INT8_FAN_IN 133000   /* 127 * 127 * fan_in must fit in int32 */

typedef enum { OP_CONV, OP_LINEAR, OP_AFFINE, OP_RELU, OP_MAXPOOL, OP_AVGPOOL, OP_GAP, OP_LOG_SOFTMAX } op_kind;

typedef struct {
    op_kind kind;
    int first, last;        /* model layers covered; the op's output is the engine's acts[last + 1] */
    cn_shape in, out;
    int k, stride, pad;
    bool relu;              /* fused ReLU */
    bool bn_folded;         /* conv: the following batch norm is folded in */
    int channels;           /* conv/linear: output channels; affine: channels */
    size_t fan_in;          /* conv/linear: inputs per output channel */
    float *w, *b;           /* conv/linear: weight (channels x fan_in), bias (channels) or NULL;
                               affine: scale, shift (channels) */
    /* int8 */
    bool quant_in, quant_out;
    float s_in, s_out;      /* activation scales (real = q * s) */
    int8_t *wq;             /* conv/linear: quantised weight */
    float *mult, *qbias;    /* per channel: requantisation multiplier and bias (in the output scale) */
} op;

typedef struct {
    const cn_model *m;
    op *ops;
    int num_ops;
    int last_weighted;      /* int8: index of the last conv/linear op */
    float s_input;          /* int8: scale of the normalised input */
} plan;

/* ---- text ---------------------------------------------------------------------- */

typedef struct { char *p; size_t len, cap; bool failed; } text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
    if (t->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { t->failed = true; return; }
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 65536;
        while (t->len + (size_t)n + 1 > cap) cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) { t->failed = true; return; }
        t->p = p;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* A C float literal that reads back as exactly `v` (v finite). */
static void float_literal(float v, char *buf, size_t size) {
    snprintf(buf, size, "%.9g", (double)v);
    if (!strpbrk(buf, ".e")) strncat(buf, ".0", size - strlen(buf) - 1);
    strncat(buf, "f", size - strlen(buf) - 1);
}

static size_t put_floats(text *t, const char *name, const float *v, size_t n) {
    char lit[48];
    put(t, "static const float %s[%zu] = {", name, n);
    for (size_t i = 0; i < n; i++) {
        float_literal(v[i], lit, sizeof lit);
        put(t, "%s%s%s", i % 8 ? " " : "\n    ", lit, i + 1 < n ? "," : "");
    }
    put(t, "\n};\n");
    return n * sizeof(float);
}

static size_t put_int8s(text *t, const char *name, const int8_t *v, size_t n) {
    put(t, "static const int8_t %s[%zu] = {", name, n);
    for (size_t i = 0; i < n; i++) put(t, "%s%d%s", i % 16 ? " " : "\n    ", v[i], i + 1 < n ? "," : "");
    put(t, "\n};\n");
    return n;
}

/* Thousands separators for comments. */
static const char *grouped(size_t v, char *buf) {
    char raw[32];
    int n = snprintf(raw, sizeof raw, "%zu", v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
    return buf;
}

/* ---- plan ----------------------------------------------------------------------- */

static void free_plan(plan *p) {
    for (int i = 0; i < p->num_ops; i++) {
        op *o = &p->ops[i];
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

static cn_status build_plan(const cn_model *m, plan *p) {
    memset(p, 0, sizeof *p);
    p->m = m;
    p->ops = cn_calloc((size_t)m->num_layers, sizeof *p->ops);
    if (!p->ops) return CN_ERR_NOMEM;
    for (int i = 0; i < m->num_layers; i++) {
        const cn_layer *l = &m->layers[i];
        const float *w = m->params + l->weight_offset, *b = m->params + l->bias_offset;
        cn_status st = cn_export_check_finite(m, l, "weight", w, l->weight_count);
        if (!st) st = cn_export_check_finite(m, l, "bias", b, l->bias_count);
        if (!st && l->kind == CN_LAYER_BATCHNORM2D)
            st = cn_export_check_finite(m, l, "running statistics", m->buffers + l->buffer_offset, 2 * (size_t)l->in.c);
        if (st) return st;
        if (l->kind == CN_LAYER_DROPOUT || l->kind == CN_LAYER_FLATTEN) continue;   /* identities at inference */
        if (l->kind == CN_LAYER_RELU && p->num_ops > 0) {
            op *prev = &p->ops[p->num_ops - 1];
            bool between_ok = true;   /* only dropout/flatten between the previous op and this ReLU */
            for (int j = prev->last + 1; j < i; j++)
                if (m->layers[j].kind != CN_LAYER_DROPOUT && m->layers[j].kind != CN_LAYER_FLATTEN) between_ok = false;
            if (between_ok && !prev->relu && (prev->kind == OP_CONV || prev->kind == OP_LINEAR || prev->kind == OP_AFFINE)) {
                prev->relu = true;
                prev->last = i;
                continue;
            }
        }
        op *o = &p->ops[p->num_ops++];
        o->first = o->last = i;
        o->in = l->in;
        o->out = l->out;
        o->k = l->kernel;
        o->stride = l->stride;
        o->pad = l->pad;
        switch (l->kind) {
        case CN_LAYER_CONV2D: case CN_LAYER_LINEAR: {
            o->kind = l->kind == CN_LAYER_CONV2D ? OP_CONV : OP_LINEAR;
            int oc = l->out_channels;
            o->channels = oc;
            o->fan_in = l->weight_count / (size_t)oc;
            o->w = dup_floats(w, l->weight_count);
            o->b = l->bias_count ? dup_floats(b, (size_t)oc) : NULL;
            if (!o->w || (l->bias_count && !o->b)) return CN_ERR_NOMEM;
            if (l->kind == CN_LAYER_CONV2D && i + 1 < m->num_layers && m->layers[i + 1].kind == CN_LAYER_BATCHNORM2D) {
                const cn_layer *bn = &m->layers[i + 1];
                st = cn_export_check_finite(m, bn, "weight", m->params + bn->weight_offset, bn->weight_count);
                if (!st) st = cn_export_check_finite(m, bn, "bias", m->params + bn->bias_offset, bn->bias_count);
                if (!st) st = cn_export_check_finite(m, bn, "running statistics", m->buffers + bn->buffer_offset, 2 * (size_t)oc);
                if (st) return st;
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
        case CN_LAYER_MAXPOOL2D: o->kind = OP_MAXPOOL; break;
        case CN_LAYER_AVGPOOL2D: o->kind = OP_AVGPOOL; break;
        case CN_LAYER_GAP: o->kind = OP_GAP; break;
        case CN_LAYER_LOG_SOFTMAX: o->kind = OP_LOG_SOFTMAX; break;
        default:
            return cn_fail(CN_ERR_UNSUPPORTED, "%s: layer %s: %s has no C export", m->source_name, l->name, cn_layer_kind_name(l->kind));
        }
    }
    return CN_OK;
}

/* ---- int8 calibration: a float reference of the plan ---------------------------------
 * The same arithmetic as the generated float code, run on the calibration
 * images. It depends only on the plan, not on which intermediate activations
 * the engine keeps (its fused kernels skip some). */

static void ref_conv(const op *o, const float *in, float *out) {
    int C = o->in.c, H = o->in.h, W = o->in.w, OC = o->out.c, OH = o->out.h, OW = o->out.w, k = o->k, s = o->stride, p = o->pad;
    for (int oc = 0; oc < OC; oc++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                float acc = 0.0f;
                for (int i = 0; i < C; i++)
                    for (int ky = 0; ky < k; ky++) {
                        int iy = y * s - p + ky;
                        if (iy < 0 || iy >= H) continue;
                        for (int kx = 0; kx < k; kx++) {
                            int ix = x * s - p + kx;
                            if (ix >= 0 && ix < W) acc += in[(i * H + iy) * W + ix] * o->w[((size_t)(oc * C + i) * k + ky) * k + kx];
                        }
                    }
                if (o->b) acc += o->b[oc];
                out[(oc * OH + y) * OW + x] = (o->relu && acc < 0.0f) ? 0.0f : acc;
            }
}

static void ref_pool(const op *o, const float *in, float *out) {
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
static void ref_op(const op *o, float **cur, float **other) {
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

/* int8 ops whose output gets its own calibrated scale; the others (ReLU, max
 * pooling) keep their input's. Averages get their own: they span a much
 * narrower range than the activations they average. */
static bool calibrated_output(op_kind k) {
    return k == OP_CONV || k == OP_LINEAR || k == OP_AFFINE || k == OP_AVGPOOL || k == OP_GAP;
}

/* Calibrates the scales of the int8 region: the input and every calibrated op
 * output up to the last conv/linear. Pass 0 finds max |x| per tensor, pass 1
 * fills a histogram over [0, max] for the percentile. Threads work on separate
 * images with private buffers and counters, so the result does not depend on
 * scheduling. */
static cn_status calibrate(plan *p, float mean, float std, const float *images, int count) {
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
    int in_size = cn_shape_size(m->input);
    for (int pass = 0; pass < 2 && !st; pass++) {
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int img = 0; img < count; img++) {
            int t = omp_get_thread_num();
            float *cur = bufs + (size_t)t * 2 * largest, *other = cur + largest;
            const float *src = images + (size_t)img * in_size;
            for (int i = 0; i < in_size; i++) cur[i] = (src[i] - mean) / std;
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
            op *o = &p->ops[i];
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
static cn_status quantise_weights(plan *p) {
    for (int i = 0; i <= p->last_weighted; i++) {
        op *o = &p->ops[i];
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

/* ---- generated helpers ------------------------------------------------------------ */

enum { H_CONV, H_LINEAR, H_AFFINE, H_RELU, H_MAXPOOL, H_AVGPOOL, H_GAP, H_LOG_SOFTMAX,
       H_Q8, H_CONV_Q, H_LINEAR_Q, H_AFFINE_Q, H_RELU_Q, H_MAXPOOL_Q, H_AVGPOOL_Q, H_GAP_Q, H_COUNT };

static const char *const HELPERS[H_COUNT] = {
    [H_CONV] =
    "/* in (c,h,w) -> out (oc,oh,ow); weight (oc,c,k,k); zero padding p; bias may be null */\n"
    "static void conv2d(const float *in, float *out, const float *weight, const float *bias, int c, int h, int w,\n"
    "                   int oc, int k, int s, int p, int oh, int ow, int relu)\n"
    "{\n"
    "    int o, y, x, i, ky, kx;\n"
    "    for (o = 0; o < oc; o++)\n"
    "        for (y = 0; y < oh; y++)\n"
    "            for (x = 0; x < ow; x++) {\n"
    "                float acc = 0.0f;\n"
    "                for (i = 0; i < c; i++)\n"
    "                    for (ky = 0; ky < k; ky++) {\n"
    "                        int iy = y * s - p + ky;\n"
    "                        if (iy < 0 || iy >= h) continue;\n"
    "                        for (kx = 0; kx < k; kx++) {\n"
    "                            int ix = x * s - p + kx;\n"
    "                            if (ix < 0 || ix >= w) continue;\n"
    "                            acc += in[(i * h + iy) * w + ix] * weight[((o * c + i) * k + ky) * k + kx];\n"
    "                        }\n"
    "                    }\n"
    "                if (bias) acc += bias[o];\n"
    "                if (relu && acc < 0.0f) acc = 0.0f;\n"
    "                out[(o * oh + y) * ow + x] = acc;\n"
    "            }\n"
    "}\n",
    [H_LINEAR] =
    "/* in (n) -> out (m) = weight (m,n) @ in + bias; bias may be null */\n"
    "static void linear(const float *in, float *out, const float *weight, const float *bias, int n, int m, int relu)\n"
    "{\n"
    "    int o, i;\n"
    "    for (o = 0; o < m; o++) {\n"
    "        float acc = bias ? bias[o] : 0.0f;\n"
    "        for (i = 0; i < n; i++) acc += weight[o * n + i] * in[i];\n"
    "        if (relu && acc < 0.0f) acc = 0.0f;\n"
    "        out[o] = acc;\n"
    "    }\n"
    "}\n",
    [H_AFFINE] =
    "/* batch norm at inference, in place: x = x * scale[c] + shift[c] */\n"
    "static void affine(float *x, const float *scale, const float *shift, int c, int plane, int relu)\n"
    "{\n"
    "    int i, j;\n"
    "    for (i = 0; i < c; i++)\n"
    "        for (j = 0; j < plane; j++) {\n"
    "            float v = x[i * plane + j] * scale[i] + shift[i];\n"
    "            x[i * plane + j] = (relu && v < 0.0f) ? 0.0f : v;\n"
    "        }\n"
    "}\n",
    [H_RELU] =
    "static void relu(float *x, int n)\n"
    "{\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++) if (x[i] < 0.0f) x[i] = 0.0f;\n"
    "}\n",
    [H_MAXPOOL] =
    "/* in (c,h,w) -> out (c,oh,ow); padding never wins */\n"
    "static void maxpool(const float *in, float *out, int c, int h, int w, int k, int s, int p, int oh, int ow)\n"
    "{\n"
    "    int i, y, x, ky, kx;\n"
    "    for (i = 0; i < c; i++)\n"
    "        for (y = 0; y < oh; y++)\n"
    "            for (x = 0; x < ow; x++) {\n"
    "                float best = 0.0f;\n"
    "                int seen = 0;\n"
    "                for (ky = 0; ky < k; ky++)\n"
    "                    for (kx = 0; kx < k; kx++) {\n"
    "                        int iy = y * s - p + ky, ix = x * s - p + kx;\n"
    "                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;\n"
    "                        if (!seen || in[(i * h + iy) * w + ix] > best) best = in[(i * h + iy) * w + ix];\n"
    "                        seen = 1;\n"
    "                    }\n"
    "                out[(i * oh + y) * ow + x] = best;\n"
    "            }\n"
    "}\n",
    [H_AVGPOOL] =
    "/* in (c,h,w) -> out (c,oh,ow); zero padding counts in the divisor (PyTorch's count_include_pad) */\n"
    "static void avgpool(const float *in, float *out, int c, int h, int w, int k, int s, int p, int oh, int ow)\n"
    "{\n"
    "    int i, y, x, ky, kx;\n"
    "    for (i = 0; i < c; i++)\n"
    "        for (y = 0; y < oh; y++)\n"
    "            for (x = 0; x < ow; x++) {\n"
    "                int y0 = y * s - p, x0 = x * s - p, y1 = y0 + k, x1 = x0 + k;\n"
    "                float sum = 0.0f;\n"
    "                for (ky = 0; ky < k; ky++)\n"
    "                    for (kx = 0; kx < k; kx++) {\n"
    "                        int iy = y0 + ky, ix = x0 + kx;\n"
    "                        if (iy >= 0 && iy < h && ix >= 0 && ix < w) sum += in[(i * h + iy) * w + ix];\n"
    "                    }\n"
    "                if (y1 > h + p) y1 = h + p;\n"
    "                if (x1 > w + p) x1 = w + p;\n"
    "                out[(i * oh + y) * ow + x] = sum / (float)((y1 - y0) * (x1 - x0));\n"
    "            }\n"
    "}\n",
    [H_GAP] =
    "/* in (c,plane) -> out (c): global average pooling */\n"
    "static void gap(const float *in, float *out, int c, int plane)\n"
    "{\n"
    "    int i, j;\n"
    "    for (i = 0; i < c; i++) {\n"
    "        float sum = 0.0f;\n"
    "        for (j = 0; j < plane; j++) sum += in[i * plane + j];\n"
    "        out[i] = sum / (float)plane;\n"
    "    }\n"
    "}\n",
    [H_LOG_SOFTMAX] =
    "/* in place: x - max - log(sum(exp(x - max))) */\n"
    "static void log_softmax(float *x, int n)\n"
    "{\n"
    "    int i;\n"
    "    float mx = x[0], lse;\n"
    "    double sum = 0.0;\n"
    "    for (i = 1; i < n; i++) if (x[i] > mx) mx = x[i];\n"
    "    for (i = 0; i < n; i++) sum += exp((double)(x[i] - mx));\n"
    "    lse = mx + (float)log(sum);\n"
    "    for (i = 0; i < n; i++) x[i] = x[i] - lse;\n"
    "}\n",
    [H_Q8] =
    "/* round half away from zero and saturate to [-127, 127] */\n"
    "static int8_t q8(float v)\n"
    "{\n"
    "    v = v >= 0.0f ? v + 0.5f : v - 0.5f;\n"
    "    if (v > 127.0f) v = 127.0f;\n"
    "    if (v < -127.0f) v = -127.0f;\n"
    "    return (int8_t)(int)v;\n"
    "}\n",
    [H_CONV_Q] =
    "/* int8 in (c,h,w) -> out (oc,oh,ow): int32 sums of int8 products, then\n"
    " * acc * mult[o] + bias[o] (already in the output scale) to int8 (qout) or float (fout) */\n"
    "static void conv2d_q(const int8_t *in, int8_t *qout, float *fout, const int8_t *weight, const float *mult,\n"
    "                     const float *bias, int c, int h, int w, int oc, int k, int s, int p, int oh, int ow, int relu)\n"
    "{\n"
    "    int o, y, x, i, ky, kx;\n"
    "    for (o = 0; o < oc; o++)\n"
    "        for (y = 0; y < oh; y++)\n"
    "            for (x = 0; x < ow; x++) {\n"
    "                int32_t acc = 0;\n"
    "                float v;\n"
    "                for (i = 0; i < c; i++)\n"
    "                    for (ky = 0; ky < k; ky++) {\n"
    "                        int iy = y * s - p + ky;\n"
    "                        if (iy < 0 || iy >= h) continue;\n"
    "                        for (kx = 0; kx < k; kx++) {\n"
    "                            int ix = x * s - p + kx;\n"
    "                            if (ix < 0 || ix >= w) continue;\n"
    "                            acc += (int32_t)in[(i * h + iy) * w + ix] * (int32_t)weight[((o * c + i) * k + ky) * k + kx];\n"
    "                        }\n"
    "                    }\n"
    "                v = (float)acc * mult[o] + bias[o];\n"
    "                if (relu && v < 0.0f) v = 0.0f;\n"
    "                if (qout) qout[(o * oh + y) * ow + x] = q8(v);\n"
    "                else fout[(o * oh + y) * ow + x] = v;\n"
    "            }\n"
    "}\n",
    [H_LINEAR_Q] =
    "/* int8 in (n) -> out (m): int32 dot products, requantised as in conv2d_q */\n"
    "static void linear_q(const int8_t *in, int8_t *qout, float *fout, const int8_t *weight, const float *mult,\n"
    "                     const float *bias, int n, int m, int relu)\n"
    "{\n"
    "    int o, i;\n"
    "    for (o = 0; o < m; o++) {\n"
    "        int32_t acc = 0;\n"
    "        float v;\n"
    "        for (i = 0; i < n; i++) acc += (int32_t)weight[o * n + i] * (int32_t)in[i];\n"
    "        v = (float)acc * mult[o] + bias[o];\n"
    "        if (relu && v < 0.0f) v = 0.0f;\n"
    "        if (qout) qout[o] = q8(v);\n"
    "        else fout[o] = v;\n"
    "    }\n"
    "}\n",
    [H_AFFINE_Q] =
    "/* batch norm at inference on int8, in place: q = q * mult[c] + shift[c] in the output scale */\n"
    "static void affine_q(int8_t *x, const float *mult, const float *shift, int c, int plane, int relu)\n"
    "{\n"
    "    int i, j;\n"
    "    for (i = 0; i < c; i++)\n"
    "        for (j = 0; j < plane; j++) {\n"
    "            float v = (float)x[i * plane + j] * mult[i] + shift[i];\n"
    "            x[i * plane + j] = q8((relu && v < 0.0f) ? 0.0f : v);\n"
    "        }\n"
    "}\n",
    [H_RELU_Q] =
    "static void relu_q(int8_t *x, int n)\n"
    "{\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++) if (x[i] < 0) x[i] = 0;\n"
    "}\n",
    [H_MAXPOOL_Q] =
    "/* int8 max pooling (same scale in and out) */\n"
    "static void maxpool_q(const int8_t *in, int8_t *out, int c, int h, int w, int k, int s, int p, int oh, int ow)\n"
    "{\n"
    "    int i, y, x, ky, kx;\n"
    "    for (i = 0; i < c; i++)\n"
    "        for (y = 0; y < oh; y++)\n"
    "            for (x = 0; x < ow; x++) {\n"
    "                int best = -128;\n"
    "                for (ky = 0; ky < k; ky++)\n"
    "                    for (kx = 0; kx < k; kx++) {\n"
    "                        int iy = y * s - p + ky, ix = x * s - p + kx;\n"
    "                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;\n"
    "                        if (in[(i * h + iy) * w + ix] > best) best = in[(i * h + iy) * w + ix];\n"
    "                    }\n"
    "                out[(i * oh + y) * ow + x] = (int8_t)best;\n"
    "            }\n"
    "}\n",
    [H_AVGPOOL_Q] =
    "/* int8 average pooling (padding counts in the divisor); rescale = input scale / output scale */\n"
    "static void avgpool_q(const int8_t *in, int8_t *out, int c, int h, int w, int k, int s, int p, int oh, int ow,\n"
    "                      float rescale)\n"
    "{\n"
    "    int i, y, x, ky, kx;\n"
    "    for (i = 0; i < c; i++)\n"
    "        for (y = 0; y < oh; y++)\n"
    "            for (x = 0; x < ow; x++) {\n"
    "                int y0 = y * s - p, x0 = x * s - p, y1 = y0 + k, x1 = x0 + k;\n"
    "                int32_t sum = 0;\n"
    "                for (ky = 0; ky < k; ky++)\n"
    "                    for (kx = 0; kx < k; kx++) {\n"
    "                        int iy = y0 + ky, ix = x0 + kx;\n"
    "                        if (iy >= 0 && iy < h && ix >= 0 && ix < w) sum += in[(i * h + iy) * w + ix];\n"
    "                    }\n"
    "                if (y1 > h + p) y1 = h + p;\n"
    "                if (x1 > w + p) x1 = w + p;\n"
    "                out[(i * oh + y) * ow + x] = q8((float)sum * rescale / (float)((y1 - y0) * (x1 - x0)));\n"
    "            }\n"
    "}\n",
    [H_GAP_Q] =
    "/* int8 global average pooling; rescale = input scale / output scale */\n"
    "static void gap_q(const int8_t *in, int8_t *out, int c, int plane, float rescale)\n"
    "{\n"
    "    int i, j;\n"
    "    for (i = 0; i < c; i++) {\n"
    "        int32_t sum = 0;\n"
    "        for (j = 0; j < plane; j++) sum += in[i * plane + j];\n"
    "        out[i] = q8((float)sum * rescale / (float)plane);\n"
    "    }\n"
    "}\n",
};

/* ---- generation ---------------------------------------------------------------------- */

static const char *op_name(op_kind k) {
    static const char *names[] = {"conv2d", "linear", "batchnorm2d", "relu", "maxpool2d", "avgpool2d", "gap", "log_softmax"};
    return names[k];
}

/* Weights of every op as static const arrays; returns the flash bytes. */
static size_t put_weights(text *t, const plan *p, bool int8) {
    size_t bytes = 0;
    char name[64];
    for (int i = 0; i < p->num_ops; i++) {
        const op *o = &p->ops[i];
        const char *lname = p->m->layers[o->first].name;
        if (o->kind != OP_CONV && o->kind != OP_LINEAR && o->kind != OP_AFFINE) continue;
        bool q = int8 && o->quant_in;
        put(t, "\n/* layer %s (%s%s) */\n", lname, op_name(o->kind), o->last > o->first ? ", folded/fused" : "");
        if (o->kind == OP_AFFINE) {
            snprintf(name, sizeof name, "op%d_%s", i, q ? "mult" : "scale");
            bytes += put_floats(t, name, q ? o->mult : o->w, (size_t)o->channels);
            snprintf(name, sizeof name, "op%d_shift", i);
            bytes += put_floats(t, name, q ? o->qbias : o->b, (size_t)o->channels);
            continue;
        }
        size_t wc = (size_t)o->channels * o->fan_in;
        if (q) {
            snprintf(name, sizeof name, "op%d_weight", i);
            bytes += put_int8s(t, name, o->wq, wc);
            snprintf(name, sizeof name, "op%d_mult", i);
            bytes += put_floats(t, name, o->mult, (size_t)o->channels);
            snprintf(name, sizeof name, "op%d_bias", i);
            bytes += put_floats(t, name, o->qbias, (size_t)o->channels);
        } else {
            snprintf(name, sizeof name, "op%d_weight", i);
            bytes += put_floats(t, name, o->w, wc);
            if (o->b) {
                snprintf(name, sizeof name, "op%d_bias", i);
                bytes += put_floats(t, name, o->b, (size_t)o->channels);
            }
        }
    }
    return bytes;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Marks the helpers the plan calls. */
static void used_helpers(const plan *p, bool int8, bool *used) {
    for (int i = 0; i < p->num_ops; i++) {
        const op *o = &p->ops[i];
        bool q = int8 && o->quant_in;
        switch (o->kind) {
        case OP_CONV: used[q ? H_CONV_Q : H_CONV] = true; break;
        case OP_LINEAR: used[q ? H_LINEAR_Q : H_LINEAR] = true; break;
        case OP_AFFINE: used[q ? H_AFFINE_Q : H_AFFINE] = true; break;
        case OP_RELU: used[q ? H_RELU_Q : H_RELU] = true; break;
        case OP_MAXPOOL: used[q ? H_MAXPOOL_Q : H_MAXPOOL] = true; break;
        case OP_AVGPOOL: used[q ? H_AVGPOOL_Q : H_AVGPOOL] = true; break;
        case OP_GAP: used[q ? H_GAP_Q : H_GAP] = true; break;
        case OP_LOG_SOFTMAX: used[H_LOG_SOFTMAX] = true; break;
        }
    }
    if (int8) used[H_Q8] = true;
}

/* The body of model_predict: one call per op over ping-pong buffers. used[0..3]
 * tells which of buf0, buf1, q0, q1 it touches. */
static void put_calls(text *t, const plan *p, bool int8, bool used[4]) {
    /* Current buffer of each region: 0 -> buf0/q0, 1 -> buf1/q1. */
    int fcur = 0, qcur = 0;
    if (int8) put(t, "    for (i = 0; i < MODEL_INPUT_SIZE; i++) q0[i] = q8((in[i] - MODEL_NORM_MEAN) / MODEL_NORM_STD * INPUT_INV_SCALE);\n");
    else put(t, "    for (i = 0; i < MODEL_INPUT_SIZE; i++) buf0[i] = (in[i] - MODEL_NORM_MEAN) / MODEL_NORM_STD;\n");
    used[int8 ? 2 : 0] = true;
    for (int i = 0; i < p->num_ops; i++) {
        const op *o = &p->ops[i];
        const cn_layer *first = &p->m->layers[o->first], *last = &p->m->layers[o->last];
        bool q = int8 && o->quant_in, qo = int8 && o->quant_out;
        int C = o->in.c, H = o->in.h, W = o->in.w, OC = o->out.c, OH = o->out.h, OW = o->out.w;
        put(t, "    /* layer%s %s%s%s: %s %dx%dx%d -> %dx%dx%d%s%s%s */\n", o->last > o->first ? "s" : "", first->name,
            o->last > o->first ? "-" : "", o->last > o->first ? last->name : "", op_name(o->kind), C, H, W, OC, OH, OW,
            o->bn_folded ? ", batch norm folded" : "", o->relu ? ", ReLU" : "", q ? (qo ? ", int8" : ", int8 -> float") : "");
        const char *fin = fcur ? "buf1" : "buf0", *fout = fcur ? "buf0" : "buf1";
        const char *qin = qcur ? "q1" : "q0", *qout = qcur ? "q0" : "q1";
        char rescale[48];
        float_literal(q && qo ? o->s_in / o->s_out : 1.0f, rescale, sizeof rescale);
        /* Which buffers this call writes (reads are of buffers written before). */
        bool writes_other = o->kind == OP_CONV || o->kind == OP_LINEAR || o->kind == OP_MAXPOOL ||
                            o->kind == OP_AVGPOOL || o->kind == OP_GAP;
        if (q && (qo || !writes_other)) used[2 + (writes_other ? !qcur : qcur)] = true;
        else if (q) used[0] = true;   /* int8 -> float: writes buf0 */
        else used[writes_other ? !fcur : fcur] = true;
        switch (o->kind) {
        case OP_CONV: case OP_LINEAR: {
            bool conv = o->kind == OP_CONV;
            if (q) {
                put(t, "    %s(%s, %s, %s, op%d_weight, op%d_mult, op%d_bias, ", conv ? "conv2d_q" : "linear_q", qin,
                    qo ? qout : "(int8_t *)0", qo ? "(float *)0" : "buf0", i, i, i);
                if (qo) qcur ^= 1; else fcur = 0;
            } else {
                put(t, "    %s(%s, %s, op%d_weight, ", conv ? "conv2d" : "linear", fin, fout, i);
                if (o->b) put(t, "op%d_bias, ", i); else put(t, "(const float *)0, ");
                fcur ^= 1;
            }
            if (conv) put(t, "%d, %d, %d, %d, %d, %d, %d, %d, %d, %d);\n", C, H, W, OC, o->k, o->stride, o->pad, OH, OW, o->relu);
            else put(t, "%d, %d, %d);\n", cn_shape_size(o->in), OC, o->relu);
            break;
        }
        case OP_AFFINE:
            if (q) put(t, "    affine_q(%s, op%d_mult, op%d_shift, %d, %d, %d);\n", qin, i, i, C, H * W, o->relu);
            else put(t, "    affine(%s, op%d_scale, op%d_shift, %d, %d, %d);\n", fin, i, i, C, H * W, o->relu);
            break;
        case OP_RELU:
            put(t, "    %s(%s, %d);\n", q ? "relu_q" : "relu", q ? qin : fin, cn_shape_size(o->in));
            break;
        case OP_MAXPOOL: case OP_AVGPOOL: {
            bool avg = o->kind == OP_AVGPOOL;
            put(t, "    %s%s(%s, %s, %d, %d, %d, %d, %d, %d, %d, %d", avg ? "avgpool" : "maxpool",
                q ? "_q" : "", q ? qin : fin, q ? qout : fout, C, H, W, o->k, o->stride, o->pad, OH, OW);
            if (q && avg) put(t, ", %s", rescale);
            put(t, ");\n");
            if (q) qcur ^= 1; else fcur ^= 1;
            break;
        }
        case OP_GAP:
            put(t, "    %s(%s, %s, %d, %d", q ? "gap_q" : "gap", q ? qin : fin, q ? qout : fout, C, H * W);
            if (q) put(t, ", %s", rescale);
            put(t, ");\n");
            if (q) qcur ^= 1; else fcur ^= 1;
            break;
        case OP_LOG_SOFTMAX:
            put(t, "    log_softmax(%s, %d);\n", fin, C);
            break;
        }
    }
    put(t, "    for (i = 0; i < MODEL_NUM_CLASSES; i++) out[i] = %s[i];\n", fcur ? "buf1" : "buf0");
}

static cn_status generate(const plan *p, const char *dir, float mean, float std, bool int8, int calib_count,
                          cn_export_c_stats *stats) {
    const cn_model *m = p->m;
    char g1[32], g2[32], g3[32], lit_mean[48], lit_std[48], lit_inv[48];
    /* Buffer sizes: the float region holds the input (float mode) and every float op output;
     * the int8 region the input and every int8 op output. */
    size_t fmax = int8 ? 0 : (size_t)cn_shape_size(m->input), qmax = int8 ? (size_t)cn_shape_size(m->input) : 0;
    for (int i = 0; i < p->num_ops; i++) {
        const op *o = &p->ops[i];
        size_t n = (size_t)cn_shape_size(o->out);
        if (int8 && o->quant_out) qmax = max_size(qmax, n); else fmax = max_size(fmax, n);
    }
    text body = {0};
    bool bufs[4] = {false};
    put_calls(&body, p, int8, bufs);
    size_t ram = (bufs[0] + bufs[1]) * fmax * sizeof(float) + (bufs[2] + bufs[3]) * qmax;
    size_t weight_count = 0;
    for (int i = 0; i < p->num_ops; i++) {
        const op *o = &p->ops[i];
        if (o->kind == OP_CONV || o->kind == OP_LINEAR)
            weight_count += (size_t)o->channels * o->fan_in + (o->b ? (size_t)o->channels : 0);
        if (o->kind == OP_AFFINE) weight_count += 2 * (size_t)o->channels;
    }
    text weights = {0}, c = {0}, h = {0};
    size_t flash = put_weights(&weights, p, int8);
    int classes = cn_model_num_classes(m);
    float_literal(mean, lit_mean, sizeof lit_mean);
    float_literal(std, lit_std, sizeof lit_std);
    float_literal(int8 ? 1.0f / p->s_input : 1.0f, lit_inv, sizeof lit_inv);
    bool log_probs = m->layers[m->num_layers - 1].kind == CN_LAYER_LOG_SOFTMAX;

    /* model.h */
    put(&h, "/* model.h - generated by convnet from %s (%s).\n", m->source_name, int8 ? "int8" : "float32");
    put(&h, " * %s parameters after folding batch norm; flash %s bytes, RAM %s bytes (see model.c). */\n",
        grouped(weight_count, g1), grouped(flash, g2), grouped(ram, g3));
    put(&h, "#ifndef MODEL_H\n#define MODEL_H\n\n");
    put(&h, "#define MODEL_INPUT_C %d\n#define MODEL_INPUT_H %d\n#define MODEL_INPUT_W %d\n", m->input.c, m->input.h, m->input.w);
    put(&h, "#define MODEL_INPUT_SIZE (MODEL_INPUT_C * MODEL_INPUT_H * MODEL_INPUT_W)\n");
    put(&h, "#define MODEL_NUM_CLASSES %d\n", classes);
    put(&h, "/* input normalisation applied inside model_predict: (pixel - mean) / std */\n");
    put(&h, "#define MODEL_NORM_MEAN %s\n#define MODEL_NORM_STD %s\n", lit_mean, lit_std);
    put(&h, "#define MODEL_FLASH_BYTES %zu\n#define MODEL_RAM_BYTES %zu\n\n", flash, ram);
    put(&h, "/* in: raw pixel intensities in [0, 1], %d x %d x %d (channel, row, column).\n", m->input.c, m->input.h, m->input.w);
    put(&h, " * out: the %d class scores (%s).\n", classes, log_probs ? "log-probabilities" : "logits");
    put(&h, " * Returns the index of the largest score (the first one on ties). */\n");
    put(&h, "int model_predict(const float in[MODEL_INPUT_SIZE], float out[MODEL_NUM_CLASSES]);\n\n#endif\n");

    /* model.c */
    put(&c, "/* model.c - generated by convnet from %s (%s). Do not edit.\n *\n", m->source_name, int8 ? "int8" : "float32");
    put(&c, " * Flash: %s bytes of static const weights, biases and scales.\n", grouped(flash, g1));
    if (int8)
        put(&c, " * RAM: %s bytes of activations, the locals of model_predict: %d int8 buffer(s)\n"
                " * of %zu bytes and %d float buffer(s) of %zu floats (ping-pong, each sized to the largest\n"
                " * activation of its region), plus a few scalars of stack.\n", grouped(ram, g2), bufs[2] + bufs[3],
            qmax, bufs[0] + bufs[1], fmax);
    else
        put(&c, " * RAM: %s bytes of activations, the locals of model_predict: two float buffers\n"
                " * of %zu floats (ping-pong, each sized to the largest activation), plus a few scalars of stack.\n",
            grouped(ram, g2), fmax);
    if (int8)
        put(&c, " *\n * int8: per-output-channel symmetric weights; activations symmetric per tensor, scales\n"
                " * calibrated on %d images (%.2fth percentile of |x|); int32 accumulation, requantised with a\n"
                " * float multiplier per channel. Layers after the last conv/linear run in float.\n",
            calib_count, CALIB_PERCENTILE * 100.0);
    put(&c, " * Batch norm that follows a conv is folded into it; ReLU is fused where it follows\n"
            " * conv/linear/batch norm; dropout and flatten are identities at inference.\n */\n");
    put(&c, "#include \"model.h\"\n#include <math.h>\n%s\n", int8 ? "#include <stdint.h>\n" : "");
    if (int8) put(&c, "/* 1 / scale of the normalised input */\n#define INPUT_INV_SCALE %s\n", lit_inv);
    if (weights.failed) c.failed = true; else put(&c, "%s", weights.p ? weights.p : "");
    bool used[H_COUNT] = {false};
    used_helpers(p, int8, used);
    for (int k = 0; k < H_COUNT; k++) if (used[k]) put(&c, "\n%s", HELPERS[k]);
    put(&c, "\nint model_predict(const float in[MODEL_INPUT_SIZE], float out[MODEL_NUM_CLASSES])\n{\n");
    static const char *const buf_names[4] = {"buf0", "buf1", "q0", "q1"};
    for (int k = 0; k < 4; k++)
        if (bufs[k]) put(&c, "    %s %s[%zu];   /* %zu bytes */\n", k < 2 ? "float" : "int8_t", buf_names[k],
                         k < 2 ? fmax : qmax, k < 2 ? fmax * sizeof(float) : qmax);
    put(&c, "    int i, best = 0;\n");
    if (body.failed) c.failed = true; else put(&c, "%s", body.p);
    put(&c, "    for (i = 1; i < MODEL_NUM_CLASSES; i++) if (out[i] > out[best]) best = i;\n    return best;\n}\n");

    cn_status st = CN_OK;
    if (c.failed || h.failed) st = cn_fail(CN_ERR_NOMEM, "%s: out of memory generating C source", dir);
    char path[4096];
    if (!st && snprintf(path, sizeof path, "%s/model.h", dir) >= (int)sizeof path) st = cn_fail(CN_ERR_ARG, "%s: path too long", dir);
    if (!st) st = cn_write_file_atomic(path, h.p, h.len);
    if (!st) { snprintf(path, sizeof path, "%s/model.c", dir); st = cn_write_file_atomic(path, c.p, c.len); }
    free(weights.p); free(c.p); free(h.p); free(body.p);
    if (!st && stats) {
        stats->flash_bytes = flash;
        stats->ram_bytes = ram;
        stats->weight_count = weight_count;
        stats->int8 = int8;
    }
    return st;
}

cn_status cn_export_c(const cn_model *m, const char *dir, float mean, float std, int int8,
                      const float *calib_images, int calib_count, cn_export_c_stats *stats) {
    if (!m || !dir || !*dir) return cn_fail(CN_ERR_ARG, "C export: no model or no output directory given");
    if (!isfinite(mean) || !isfinite(std) || std <= 0.0f)
        return cn_fail(CN_ERR_ARG, "%s: normalisation mean %g / std %g: expected finite values with std > 0", dir,
                       (double)mean, (double)std);
    if (int8 && (!calib_images || calib_count < 1))
        return cn_fail(CN_ERR_ARG, "%s: int8 export needs calibration images (got %d)", dir, calib_count);
    if (int8) {
        size_t n = (size_t)calib_count * cn_shape_size(m->input);
        for (size_t i = 0; i < n; i++)
            if (!isfinite(calib_images[i]))
                return cn_fail(CN_ERR_NUMERIC, "%s: calibration image %zu has a non-finite pixel (index %zu)", dir,
                               i / cn_shape_size(m->input), i % cn_shape_size(m->input));
    }
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return cn_fail(CN_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        return cn_fail(CN_ERR_IO, "%s: exists and is not a directory", dir);
    }
    plan p;
    cn_status st = build_plan(m, &p);
    if (!st && int8) {
        p.last_weighted = -1;
        for (int i = 0; i < p.num_ops; i++)
            if (p.ops[i].kind == OP_CONV || p.ops[i].kind == OP_LINEAR) p.last_weighted = i;
        if (p.last_weighted < 0)
            st = cn_fail(CN_ERR_UNSUPPORTED, "%s: the model has no conv2d or linear layer to quantise", m->source_name);
        for (int i = 0; !st && i < p.last_weighted; i++)
            if (p.ops[i].kind == OP_LOG_SOFTMAX)
                st = cn_fail(CN_ERR_UNSUPPORTED, "%s: int8 export needs log_softmax after the last conv/linear layer",
                             m->source_name);
        if (!st) st = calibrate(&p, mean, std, calib_images, calib_count);
        if (!st) st = quantise_weights(&p);
    }
    if (!st) st = generate(&p, dir, mean, std, int8 != 0, calib_count, stats);
    free_plan(&p);
    return st;
}
