/* The int8 model (int8_model.h), built: the C export's quantised plan
 * (cn_export_c_plan), turned into steps over int8 tensors (int8_steps.h) with weights
 * packed for the chosen kernel set. */
#include "int8/int8_steps.h"
#include "core/error.h"
#include "core/mem.h"
#include <stdlib.h>
#include <string.h>

void cn_int8_model_free(cn_int8_model *q) {
    if (!q) return;
    for (int i = 0; i < q->num_steps; i++) { free(q->steps[i].packed); free(q->steps[i].comp); }
    free(q->steps);
    free(q->tensors);
    cn_export_c_plan_free(&q->plan);
    free(q);
}

int cn_int8_model_num_classes(const cn_int8_model *q) { return q->classes; }
int cn_int8_model_log_probs(const cn_int8_model *q) { return q->log_probs; }
const char *cn_int8_model_kernels(const cn_int8_model *q) { return q->ks->name; }

/* A conv that the int8 kernels run (no groups, no dilation); the others run the export's
 * conv2d_gq (STEP_REF). */
static bool kernel_conv(const export_op *o) { return o->kind == OP_CONV && o->groups == 1 && o->dilation == 1; }

/* The border that the tensor written by op j needs: the padding of the kernel conv that
 * reads it (after any ops that work in place), 0 otherwise. */
static int consumer_pad(const export_plan *p, int j) {
    for (int k = j + 1; k <= p->last_weighted; k++) {
        export_op_kind kind = p->ops[k].kind;
        if (kind == OP_RELU || kind == OP_AFFINE || kind == OP_RELU6 || kind == OP_LEAKY_RELU) continue;
        return kernel_conv(&p->ops[k]) ? p->ops[k].pad : 0;
    }
    return 0;
}

static int add_tensor(cn_int8_model *q, cn_shape s, int pad) {
    i8_tensor *t = &q->tensors[q->num_tensors];
    t->c = s.c; t->h = s.h; t->w = s.w;
    t->cp = (s.c + 3) / 4 * 4;
    t->pad = pad;
    t->bytes = (size_t)(s.h + 2 * pad) * (size_t)(s.w + 2 * pad) * (size_t)t->cp;
    t->prefix = q->image_bytes;
    q->image_bytes += t->bytes;
    if (t->bytes > q->chw_size) q->chw_size = t->bytes;
    return q->num_tensors++;
}

/* The conv/linear op o as a STEP_CONV reading tensor `in`: weights reordered to
 * (out_c, taps, in_cp) in the tensor's layout, then packed. */
static cn_status pack_weights(cn_int8_model *q, const export_op *o, i8_step *st) {
    const i8_tensor *t = &q->tensors[st->in];
    int oc = o->channels, taps = st->linear ? 1 : o->k * o->k;
    size_t in_cp = st->linear ? t->bytes : (size_t)t->cp, plane = (size_t)t->h * t->w;
    if ((st->linear ? (size_t)t->c * plane : (size_t)t->c * taps) != o->fan_in || (st->linear && t->pad))
        return cn_fail(CN_ERR_SHAPE, "%s: layer %s: int8 inference got an input of %dx%dx%d for %zu inputs per output (internal error)",
                       q->plan.m->source_name, q->plan.m->layers[o->first].name, t->c, t->h, t->w, o->fan_in);
    if (in_cp > (size_t)1 << 30) return cn_fail(CN_ERR_NOMEM, "%s: int8 layer input too large", q->plan.m->source_name);
    int8_t *w = cn_calloc((size_t)oc * taps * in_cp, 1);
    st->packed = cn_calloc(cn_i8_packed_bytes(q->ks, oc, taps, (int)in_cp), 1);
    st->comp = cn_calloc((size_t)oc, sizeof *st->comp);
    if (!w || !st->packed || !st->comp) { free(w); return CN_ERR_NOMEM; }
    for (int c = 0; c < oc; c++) {
        const int8_t *src = o->wq + (size_t)c * o->fan_in;
        int8_t *dst = w + (size_t)c * taps * in_cp;
        if (st->linear) {   /* source (c, y, x) -> (y, x, c) */
            for (int ch = 0; ch < t->c; ch++)
                for (size_t i = 0; i < plane; i++) dst[i * t->cp + ch] = src[ch * plane + i];
        } else {            /* source (c, ky, kx) -> (ky*k + kx, c) */
            for (int ch = 0; ch < t->c; ch++)
                for (int tap = 0; tap < taps; tap++) dst[(size_t)tap * in_cp + ch] = src[ch * taps + tap];
        }
    }
    cn_i8_pack(q->ks, w, oc, taps, (int)in_cp, st->packed, st->comp);
    free(w);
    return CN_OK;
}

/* The step of conv/linear op i reading tensor `in`; a batch norm right after it (int8 on
 * both sides) is fused as the epilogue's post-affine. Returns the number of ops used. */
static int conv_step(cn_int8_model *q, int i, int in, i8_step *st, cn_status *status) {
    const export_plan *p = &q->plan;
    const export_op *o = &p->ops[i], *bn = NULL;
    if (i < p->last_weighted && p->ops[i + 1].kind == OP_AFFINE) bn = &p->ops[i + 1];
    st->kind = STEP_CONV;
    st->op = o;
    st->in = in;
    st->linear = o->kind == OP_LINEAR;
    st->out = i < p->last_weighted ? add_tensor(q, (bn ? bn : o)->out, consumer_pad(p, bn ? i + 1 : i)) : -1;
    st->ep = (cn_i8_epilogue){.mult = o->mult, .bias = o->qbias, .relu = o->relu};
    if (bn) { st->ep.post_mult = bn->mult; st->ep.post_shift = bn->qbias; st->ep.post_relu = bn->relu; }
    const i8_tensor *t = &q->tensors[in];
    if (!st->linear) {
        cn_i8_conv_geom g = {.in_h = t->h + 2 * t->pad, .in_w = t->w + 2 * t->pad, .in_cp = t->cp, .k = o->k,
                             .stride = o->stride, .out_h = o->out.h, .out_w = o->out.w, .out_c = o->out.c,
                             .f_row = (size_t)o->out.w, .f_pix = 1, .f_chan = (size_t)o->out.h * o->out.w};
        if (st->out >= 0) {
            const i8_tensor *u = &q->tensors[st->out];
            g.q_row = (size_t)(u->w + 2 * u->pad) * u->cp;
            g.q_pix = (size_t)u->cp;
        }
        st->g = g;
    }
    *status = pack_weights(q, o, st);
    st->ep.comp = st->comp;
    return bn ? 2 : 1;
}

/* Steps and tensors of the int8 region, sizes of the float tail. */
static cn_status build_steps(cn_int8_model *q) {
    const export_plan *p = &q->plan;
    q->steps = cn_calloc((size_t)p->num_ops, sizeof *q->steps);
    q->tensors = cn_calloc((size_t)p->num_ops + 1, sizeof *q->tensors);
    if (!q->steps || !q->tensors) return CN_ERR_NOMEM;
    int cur = add_tensor(q, q->input, consumer_pad(p, -1));
    cn_status status = CN_OK;
    for (int i = 0; i <= p->last_weighted && !status;) {
        const export_op *o = &p->ops[i];
        i8_step *st = &q->steps[q->num_steps++];
        if (kernel_conv(o) || o->kind == OP_LINEAR) {
            i += conv_step(q, i, cur, st, &status);
            cur = st->out;
            continue;
        }
        st->op = o;
        st->in = cur;
        switch (o->kind) {
        case OP_RELU: st->kind = STEP_RELU; st->out = cur; break;
        case OP_AFFINE: case OP_RELU6: case OP_LEAKY_RELU: st->kind = STEP_REF; st->out = cur; break;
        case OP_CONV:   /* grouped or dilated */
            st->kind = STEP_REF;
            st->out = i < p->last_weighted ? add_tensor(q, o->out, consumer_pad(p, i)) : -1;
            break;
        case OP_MAXPOOL: st->kind = STEP_MAXPOOL; st->out = add_tensor(q, o->out, consumer_pad(p, i)); break;
        case OP_GAP:
            st->kind = q->tensors[cur].cp <= 1024 && !q->tensors[cur].pad ? STEP_GAP : STEP_REF;
            st->out = add_tensor(q, o->out, consumer_pad(p, i));
            break;
        default: st->kind = STEP_REF; st->out = add_tensor(q, o->out, consumer_pad(p, i)); break;   /* avg pools */
        }
        cur = st->out;
        i++;
    }
    for (int i = p->last_weighted; i < p->num_ops; i++) {
        size_t n = (size_t)cn_shape_size(p->ops[i].out);
        if (n > q->float_size) q->float_size = n;
    }
    return status;
}

cn_status cn_int8_model_create(const cn_model *m, const float *mean, const float *std, const float *calib_images,
                               int calib_count, cn_int8_model **out) {
    *out = NULL;
    if (!m || !mean || !std) return cn_fail(CN_ERR_ARG, "int8 inference: no model or no normalisation given");
    if (cn_model_has_branches(m))
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: the model has branches (from=, add, concat); int8 inference runs plain "
                       "layer stacks only", m->source_name);
    if (m->input.c > CN_MAX_CHANNELS)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: %d input channels; int8 inference takes at most %d", m->source_name,
                       m->input.c, CN_MAX_CHANNELS);
    cn_int8_model *q = cn_calloc(1, sizeof *q);
    if (!q) return CN_ERR_NOMEM;
    cn_status st = cn_export_c_plan(m, mean, std, CN_EXPORT_C_INT8, calib_images, calib_count, m->source_name,
                                    "int8 CPU inference", &q->plan);
    if (st) { free(q); return st; }
    q->ks = cn_i8_kernels();
    q->input = m->input;
    q->classes = cn_model_num_classes(m);
    q->log_probs = m->layers[m->num_layers - 1].kind == CN_LAYER_LOG_SOFTMAX;
    for (int c = 0; c < m->input.c; c++) { q->mean[c] = mean[c]; q->std[c] = std[c]; }
    q->inv_scale = 1.0f / q->plan.s_input;
    st = build_steps(q);
    if (!st && q->float_size < (size_t)q->classes) st = cn_fail(CN_ERR_SHAPE, "%s: int8 inference: fewer outputs than classes", m->source_name);
    if (st) { cn_int8_model_free(q); return st; }
    q->plan.m = NULL;   /* the model may go; running needs only the plan's ops */
    *out = q;
    return CN_OK;
}
