/* int8 calibration of the C export's plan (export_c_plan.h): a float reference of the
 * plan, run on the calibration images, gives the range of every activation that gets a
 * scale of its own. The same arithmetic as the generated float code; it depends only on
 * the plan, not on which intermediate activations the engine keeps (its fused kernels
 * skip some). Each value has its own buffer here, so that branches read what they need. */
#include "io/export_c_plan.h"
#include "core/error.h"
#include "core/mem.h"
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CALIB_BINS 4096

/* ---- the float reference ----------------------------------------------------------- */

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

/* Runs op `o` on one sample: ins[k] its input values, out its output (a buffer of its own). */
static void ref_op(const export_op *o, const float *const *ins, float *out) {
    const float *in = ins[0];
    int n = cn_shape_size(o->in), plane = o->in.h * o->in.w;
    switch (o->kind) {
    case OP_CONV: ref_conv(o, in, out); break;
    case OP_LINEAR:
        for (int j = 0; j < o->channels; j++) {
            float acc = o->b ? o->b[j] : 0.0f;
            for (int i = 0; i < n; i++) acc += o->w[(size_t)j * n + i] * in[i];
            out[j] = (o->relu && acc < 0.0f) ? 0.0f : acc;
        }
        break;
    case OP_AFFINE:
        for (int c = 0; c < o->channels; c++)
            for (int i = 0; i < plane; i++) {
                float v = in[c * plane + i] * o->w[c] + o->b[c];
                out[c * plane + i] = (o->relu && v < 0.0f) ? 0.0f : v;
            }
        break;
    case OP_RELU:
        for (int i = 0; i < n; i++) out[i] = in[i] < 0.0f ? 0.0f : in[i];
        break;
    case OP_RELU6:
        for (int i = 0; i < n; i++) out[i] = in[i] > 0.0f ? (in[i] < 6.0f ? in[i] : 6.0f) : 0.0f;
        break;
    case OP_LEAKY_RELU:
        for (int i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : in[i] * o->slope;
        break;
    case OP_MAXPOOL: case OP_AVGPOOL: ref_pool(o, in, out); break;
    case OP_GAP:
        for (int c = 0; c < o->in.c; c++) {
            float sum = 0.0f;
            for (int i = 0; i < plane; i++) sum += in[c * plane + i];
            out[c] = sum / (float)plane;
        }
        break;
    case OP_ADD:
        for (int i = 0; i < n; i++) {
            float v = ins[0][i] + ins[1][i];
            for (int k = 2; k < o->num_in; k++) v += ins[k][i];
            out[i] = (o->relu && v < 0.0f) ? 0.0f : v;
        }
        break;
    case OP_CONCAT:
        for (int k = 0; k < o->num_in; k++) {
            memcpy(out, ins[k], (size_t)o->in_n[k] * sizeof *out);
            out += o->in_n[k];
        }
        break;
    case OP_LOG_SOFTMAX: break;   /* never inside the int8 region */
    }
}

/* ---- calibration ---------------------------------------------------------------------- */

/* int8 ops whose output gets its own calibrated scale; the others (ReLU, ReLU6, leaky
 * ReLU, max pooling) keep their input's. Averages get their own: they span a much
 * narrower range than the activations they average. So do the joins: a sum spans more
 * than its inputs, and a concat takes in values of several scales. */
static bool calibrated_output(export_op_kind k) {
    return k == OP_CONV || k == OP_LINEAR || k == OP_AFFINE || k == OP_AVGPOOL || k == OP_GAP || k == OP_ADD ||
           k == OP_CONCAT;
}

/* What the calibration passes share: which values are measured (tensor_of_value, -1: not),
 * where each value sits in a thread's buffer (value_at) and the per-thread counters. */
typedef struct {
    int ntensors, threads;
    int *tensor_of_value;
    size_t *value_at, per_image;
    double *tmax, *maxv;      /* threads x ntensors: max |x| per thread; ntensors: over all */
    uint64_t *hist;           /* threads x ntensors x CALIB_BINS */
} calib_state;

/* Pass 0: max |x| of tensor ti; pass 1: its histogram over [0, max]. */
static void measure(calib_state *cs, int pass, int t, int ti, const float *x, size_t n) {
    if (pass == 0) {
        double *mx = &cs->tmax[(size_t)t * cs->ntensors + ti];
        for (size_t k = 0; k < n; k++) if (fabs((double)x[k]) > *mx) *mx = fabs((double)x[k]);
    } else if (cs->maxv[ti] > 0) {
        uint64_t *h = cs->hist + ((size_t)t * cs->ntensors + ti) * CALIB_BINS;
        double to_bin = CALIB_BINS / cs->maxv[ti];
        for (size_t k = 0; k < n; k++) {
            double b = fabs((double)x[k]) * to_bin;
            h[b >= CALIB_BINS - 1 ? CALIB_BINS - 1 : (int)b]++;
        }
    }
}

/* The scale of tensor ti: the CALIB_PERCENTILE of |x| over all threads' histograms, / 127. */
static float percentile_scale(const calib_state *cs, int ti) {
    uint64_t total = 0, seen = 0;
    for (int t = 0; t < cs->threads; t++)
        for (int b = 0; b < CALIB_BINS; b++) total += cs->hist[((size_t)t * cs->ntensors + ti) * CALIB_BINS + b];
    double threshold = cs->maxv[ti], need = ceil(CALIB_PERCENTILE * (double)total);
    for (int b = 0; b < CALIB_BINS && total; b++) {
        for (int t = 0; t < cs->threads; t++) seen += cs->hist[((size_t)t * cs->ntensors + ti) * CALIB_BINS + b];
        if ((double)seen >= need) { threshold = cs->maxv[ti] * (b + 1) / CALIB_BINS; break; }
    }
    return threshold > 0 ? (float)(threshold / 127.0) : 1.0f;
}

/* Both passes over the images: the reference forward of ops 0 .. last_weighted - 1, measuring
 * the input and every calibrated output. Threads work on separate images with private
 * buffers and counters, so the result does not depend on scheduling. */
static void run_passes(const export_plan *p, calib_state *cs, float *bufs, const float *mean, const float *std,
                       const float *images, int count) {
    const cn_model *m = p->m;
    int in_size = cn_shape_size(m->input), plane = m->input.h * m->input.w;
    for (int pass = 0; pass < 2; pass++) {
        #pragma omp parallel for schedule(static) num_threads(cs->threads)
        for (int img = 0; img < count; img++) {
            int t = omp_get_thread_num();
            float *vals = bufs + (size_t)t * cs->per_image;
            const float *src = images + (size_t)img * in_size;
            for (int i = 0; i < in_size; i++) vals[i] = (src[i] - mean[i / plane]) / std[i / plane];
            measure(cs, pass, t, 0, vals, (size_t)in_size);
            for (int i = 0; i < p->last_weighted; i++) {
                const export_op *o = &p->ops[i];
                const float *ins[CN_MAX_INPUTS];
                for (int k = 0; k < o->num_in; k++) ins[k] = vals + cs->value_at[o->in_v[k]];
                float *out = vals + cs->value_at[o->out_v];
                ref_op(o, ins, out);
                int ti = cs->tensor_of_value[o->out_v];
                if (ti >= 0) measure(cs, pass, t, ti, out, (size_t)cn_shape_size(o->out));
            }
        }
        if (pass == 0)
            for (int ti = 0; ti < cs->ntensors; ti++)
                for (int t = 0; t < cs->threads; t++)
                    if (cs->tmax[(size_t)t * cs->ntensors + ti] > cs->maxv[ti]) cs->maxv[ti] = cs->tmax[(size_t)t * cs->ntensors + ti];
    }
}

/* Scales along the int8 region: calibrated after conv/linear/affine/averages/joins, the
 * input's otherwise; each op's inputs take the scales of the values they read. */
static void assign_scales(export_plan *p, const calib_state *cs, const float *scales, float *vscale) {
    for (int v = 0; v < p->num_values; v++) vscale[v] = 1.0f;
    vscale[0] = p->s_input = scales[0];
    for (int i = 0; i <= p->last_weighted; i++) {
        export_op *o = &p->ops[i];
        o->quant_in = true;
        o->s_in = vscale[o->in_v[0]];
        if (i == p->last_weighted) break;
        o->quant_out = true;
        int ti = cs->tensor_of_value[o->out_v];
        o->s_out = vscale[o->out_v] = ti >= 0 ? scales[ti] : o->s_in;
        if (o->kind == OP_ADD || o->kind == OP_CONCAT)
            for (int k = 0; k < o->num_in; k++) o->rescale[k] = vscale[o->in_v[k]] / o->s_out;
    }
}

cn_status cn_export_c_calibrate(export_plan *p, const float *mean, const float *std, const float *images, int count) {
    const cn_model *m = p->m;
    calib_state cs = {.ntensors = 1};
    cs.tensor_of_value = cn_calloc((size_t)p->num_values, sizeof *cs.tensor_of_value);
    cs.value_at = cn_calloc((size_t)p->num_values, sizeof *cs.value_at);
    if (!cs.tensor_of_value || !cs.value_at) { free(cs.tensor_of_value); free(cs.value_at); return CN_ERR_NOMEM; }
    for (int v = 1; v < p->num_values; v++) cs.tensor_of_value[v] = -1;
    cs.per_image = (size_t)cn_shape_size(m->input);
    for (int i = 0; i < p->last_weighted; i++) {   /* ops 0 .. last_weighted - 1 feed the int8 region */
        const export_op *o = &p->ops[i];
        if (calibrated_output(o->kind)) cs.tensor_of_value[o->out_v] = cs.ntensors++;
        cs.value_at[o->out_v] = cs.per_image;
        cs.per_image += (size_t)cn_shape_size(o->out);
    }
    cs.threads = omp_get_max_threads();
    if (cs.threads > 16) cs.threads = 16;
    if (cs.threads > count) cs.threads = count;
    if (cs.threads < 1) cs.threads = 1;
    size_t nt = (size_t)cs.ntensors, vals = (size_t)p->num_values;
    float *bufs = cn_calloc((size_t)cs.threads * cs.per_image, sizeof *bufs);
    cs.tmax = cn_calloc((size_t)cs.threads * nt, sizeof *cs.tmax);
    cs.maxv = cn_calloc(nt, sizeof *cs.maxv);
    cs.hist = cn_calloc((size_t)cs.threads * nt * CALIB_BINS, sizeof *cs.hist);
    float *scales = cn_calloc(nt, sizeof *scales), *vscale = cn_calloc(vals, sizeof *vscale);
    cn_status st = bufs && cs.tmax && cs.maxv && cs.hist && scales && vscale ? CN_OK : CN_ERR_NOMEM;
    if (!st) run_passes(p, &cs, bufs, mean, std, images, count);
    for (int ti = 0; ti < cs.ntensors && !st; ti++) {
        if (!isfinite(cs.maxv[ti])) st = cn_fail(CN_ERR_NUMERIC, "%s: calibration produced non-finite activations", m->source_name);
        scales[ti] = percentile_scale(&cs, ti);
    }
    if (!st) assign_scales(p, &cs, scales, vscale);
    free(cs.tensor_of_value); free(cs.value_at); free(bufs); free(cs.tmax); free(cs.maxv); free(cs.hist); free(scales);
    free(vscale);
    return st;
}
