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
    free(q->tail_slot);
    cn_export_c_plan_free(&q->plan);
    free(q);
}

int cn_int8_model_num_classes(const cn_int8_model *q) { return q->classes; }
int cn_int8_model_log_probs(const cn_int8_model *q) { return q->log_probs; }
const char *cn_int8_model_kernels(const cn_int8_model *q) { return q->ks->name; }

/* A conv that the int8 kernels run (no groups, no dilation); the others run the export's
 * conv2d_gq (STEP_REF). */
static bool kernel_conv(const export_op *o) { return o->kind == OP_CONV && o->groups == 1 && o->dilation == 1; }

/* The border op o needs of the tensor it reads: a kernel conv's padding; 0 for the linear,
 * max pool and GAP kernels, which read the tensor as one block; -1 (any) for the others,
 * which address its interior. */
static int reader_pad(const export_op *o) {
    if (kernel_conv(o)) return o->pad;
    return o->kind == OP_LINEAR || o->kind == OP_MAXPOOL || o->kind == OP_GAP ? 0 : -1;
}

/* The border of the tensor that holds value v, written by op j (-1: the input): what its
 * first reader with a need asks for, looking through an in-place op that takes v over (the
 * same tensor then holds that op's output); 0 when none asks. */
static int value_pad(const export_plan *p, int v, int j) {
    for (int k = j + 1; k <= p->last_weighted; k++) {
        const export_op *o = &p->ops[k];
        bool reads = false;
        for (int i = 0; i < o->num_in; i++) reads |= o->in_v[i] == v;
        if (!reads) continue;
        if (export_op_in_place(o->kind) && export_sole_reader(p, v, k)) return value_pad(p, o->out_v, k);
        if (reader_pad(o) >= 0) return reader_pad(o);
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

/* While the steps are built: the tensor of each value, and the copies of values made for
 * readers that need another border. */
typedef struct {
    int *value_tensor;      /* per value */
    int (*copies)[3];       /* value, border, tensor */
    int num_copies;
} build_ctx;

static i8_step *new_step(cn_int8_model *q) { return memset(&q->steps[q->num_steps++], 0, sizeof(i8_step)); }

/* A STEP_COPY of tensor t into a new tensor with border pad; returns the new tensor. */
static int copy_tensor(cn_int8_model *q, int t, int pad) {
    const i8_tensor *x = &q->tensors[t];
    int u = add_tensor(q, (cn_shape){x->c, x->h, x->w}, pad);
    i8_step *st = new_step(q);
    st->kind = STEP_COPY;
    st->in = t;
    st->out = u;
    return u;
}

/* The tensor of value v with border pad (-1: any): its own, or a copy (made once). */
static int input_tensor(cn_int8_model *q, build_ctx *b, int v, int pad) {
    int t = b->value_tensor[v];
    if (pad < 0 || q->tensors[t].pad == pad) return t;
    for (int i = 0; i < b->num_copies; i++)
        if (b->copies[i][0] == v && b->copies[i][1] == pad) return b->copies[i][2];
    int u = copy_tensor(q, t, pad);
    b->copies[b->num_copies][0] = v;
    b->copies[b->num_copies][1] = pad;
    b->copies[b->num_copies++][2] = u;
    return u;
}

/* Whether the first conv reads the input as patches (int8_steps.h's patch_k); if so, sets
 * patch_k, patch_stride, patch_pad. */
static bool input_patches(cn_int8_model *q) {
    const export_plan *p = &q->plan;
    int j = p->last_reader[0];
    if (j < 0 || j > p->last_weighted || !export_sole_reader(p, 0, j)) return false;
    const export_op *o = &p->ops[j];
    int kk = o->k * o->k;
    if (!kernel_conv(o) || o->in_v[0] != 0 || q->input.c % 4 == 0 || kk == 1 || q->input.c * kk > 256) return false;
    q->patch_k = o->k;
    q->patch_stride = o->stride;
    q->patch_pad = o->pad;
    return true;
}

/* The conv/linear op o as a STEP_CONV reading tensor `in`: weights reordered to
 * (out_c, taps, in_cp) in the tensor's layout, then packed. */
static cn_status pack_weights(cn_int8_model *q, const export_op *o, i8_step *st) {
    const i8_tensor *t = &q->tensors[st->in];
    bool patches = st->in == 0 && q->patch_k;   /* a 1x1 conv over the patches, in the weights' own order */
    int oc = o->channels, taps = st->linear || patches ? 1 : o->k * o->k;
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

/* The step of conv/linear op i reading tensor `in`; a batch norm right after it that alone
 * reads its output (int8 on both sides) is fused as the epilogue's post-affine, and a 2x2
 * max pool after them that alone reads theirs into the kernel (cn_i8_conv_geom's pool).
 * Returns the number of ops used. */
static int conv_step(cn_int8_model *q, build_ctx *b, int i, int in, i8_step *st, cn_status *status) {
    const export_plan *p = &q->plan;
    const export_op *o = &p->ops[i], *bn = NULL;
    if (i < p->last_weighted && p->ops[i + 1].kind == OP_AFFINE && p->ops[i + 1].in_v[0] == o->out_v &&
        export_sole_reader(p, o->out_v, i + 1))
        bn = &p->ops[i + 1];
    const export_op *end = bn ? bn : o;
    int used = bn ? 2 : 1;
    /* a 2x2 max pool that alone reads the output: fused, on sets that can (int8.h) */
    const export_op *pool = i + used < p->last_weighted ? &p->ops[i + used] : NULL;
    if (!pool || !q->ks->pool || o->kind != OP_CONV || pool->kind != OP_MAXPOOL || pool->k != 2 || pool->stride != 2 ||
        pool->pad != 0 || pool->in_v[0] != end->out_v || !export_sole_reader(p, end->out_v, i + used) ||
        pool->out.h != end->out.h / 2 || pool->out.w != end->out.w / 2)
        pool = NULL;
    st->kind = STEP_CONV;
    st->op = o;
    st->in = in;
    st->linear = o->kind == OP_LINEAR;
    if (pool) {
        st->out = add_tensor(q, pool->out, value_pad(p, pool->out_v, i + used));
        b->value_tensor[pool->out_v] = st->out;
    } else {
        st->out = i < p->last_weighted ? add_tensor(q, end->out, value_pad(p, end->out_v, i + used - 1)) : -1;
        if (st->out >= 0) b->value_tensor[end->out_v] = st->out;
    }
    st->ep = (cn_i8_epilogue){.mult = o->mult, .bias = o->qbias, .relu = o->relu};
    if (bn) { st->ep.post_mult = bn->mult; st->ep.post_shift = bn->qbias; st->ep.post_relu = bn->relu; }
    const i8_tensor *t = &q->tensors[in];
    if (in == 0 && q->patch_k) {
        st->g = (cn_i8_conv_geom){.in_h = t->h, .in_w = t->w, .in_cp = t->cp, .k = 1, .stride = 1, .out_h = t->h,
                                  .out_w = t->w, .out_c = o->out.c, .f_row = (size_t)o->out.w, .f_pix = 1,
                                  .f_chan = (size_t)o->out.h * o->out.w};
    } else if (!st->linear) {
        cn_i8_conv_geom g = {.in_h = t->h + 2 * t->pad, .in_w = t->w + 2 * t->pad, .in_cp = t->cp, .k = o->k,
                             .stride = o->stride, .out_h = o->out.h, .out_w = o->out.w, .out_c = o->out.c,
                             .f_row = (size_t)o->out.w, .f_pix = 1, .f_chan = (size_t)o->out.h * o->out.w};
        st->g = g;
    }
    if (!st->linear && st->out >= 0) {
        const i8_tensor *u = &q->tensors[st->out];
        st->g.q_row = (size_t)(u->w + 2 * u->pad) * u->cp;
        st->g.q_pix = (size_t)u->cp;
    }
    st->g.pool = pool != NULL;
    *status = pack_weights(q, o, st);
    st->ep.comp = st->comp;
    return used + (pool != NULL);
}

/* The steps of op i (not a kernel conv or a linear). */
static void other_steps(cn_int8_model *q, build_ctx *b, int i) {
    const export_plan *p = &q->plan;
    const export_op *o = &p->ops[i];
    if (export_op_in_place(o->kind)) {   /* relu, batch norm, relu6, leaky_relu */
        int t = b->value_tensor[o->in_v[0]];
        if (!export_sole_reader(p, o->in_v[0], i)) t = copy_tensor(q, t, value_pad(p, o->out_v, i));
        i8_step *st = new_step(q);
        st->op = o;
        st->kind = o->kind == OP_RELU ? STEP_RELU : STEP_REF;
        st->in = st->out = b->value_tensor[o->out_v] = t;
        return;
    }
    int in = input_tensor(q, b, o->in_v[0], reader_pad(o));
    int ins[CN_MAX_INPUTS] = {0};
    for (int k = 0; k < o->num_in; k++) ins[k] = k ? input_tensor(q, b, o->in_v[k], -1) : in;
    i8_step *st = new_step(q);
    st->op = o;
    st->in = in;
    memcpy(st->ins, ins, sizeof ins);
    switch (o->kind) {
    case OP_MAXPOOL: st->kind = STEP_MAXPOOL; break;
    case OP_GAP: st->kind = q->tensors[in].cp <= 1024 ? STEP_GAP : STEP_REF; break;
    case OP_ADD: st->kind = STEP_ADD; break;
    case OP_CONCAT: st->kind = STEP_CONCAT; break;
    default: st->kind = STEP_REF; break;   /* grouped or dilated convs, average pools */
    }
    st->out = o->kind == OP_CONV && i == p->last_weighted ? -1 : add_tensor(q, o->out, value_pad(p, o->out_v, i));
    if (st->out >= 0) b->value_tensor[o->out_v] = st->out;
}

/* Steps and tensors of the int8 region; slots of the float tail. */
static cn_status build_steps(cn_int8_model *q) {
    const export_plan *p = &q->plan;
    /* at most one copy per op input, one per in-place op and one step or tensor per op */
    size_t most = (size_t)p->num_ops * (CN_MAX_INPUTS + 2) + 1;
    q->steps = cn_calloc(most, sizeof *q->steps);
    q->tensors = cn_calloc(most, sizeof *q->tensors);
    q->tail_slot = cn_calloc((size_t)p->num_values, sizeof *q->tail_slot);
    build_ctx b = {.value_tensor = cn_calloc((size_t)p->num_values, sizeof *b.value_tensor),
                   .copies = cn_calloc(most, sizeof *b.copies)};
    cn_status status = q->steps && q->tensors && q->tail_slot && b.value_tensor && b.copies ? CN_OK : CN_ERR_NOMEM;
    if (!status && input_patches(q)) {
        const export_op *o = &p->ops[p->last_reader[0]];
        b.value_tensor[0] = add_tensor(q, (cn_shape){q->input.c * o->k * o->k, o->out.h, o->out.w}, 0);
        /* the quantised input planes with the conv's padding, before the patches are gathered */
        size_t planes = (size_t)q->input.c * (q->input.h + 2 * o->pad) * (q->input.w + 2 * o->pad);
        if (planes > q->chw_size) q->chw_size = planes;
    } else if (!status) {
        b.value_tensor[0] = add_tensor(q, q->input, value_pad(p, 0, -1));
    }
    for (int i = 0; i <= p->last_weighted && !status;) {
        const export_op *o = &p->ops[i];
        if (kernel_conv(o) || o->kind == OP_LINEAR) {
            bool patches = q->patch_k && o->in_v[0] == 0;   /* its sole reader: tensor 0 as it is */
            int in = patches ? 0 : input_tensor(q, &b, o->in_v[0], reader_pad(o));
            i += conv_step(q, &b, i, in, new_step(q), &status);
            continue;
        }
        other_steps(q, &b, i++);
    }
    free(b.value_tensor);
    free(b.copies);
    if (status) return status;
    for (int v = 0; v < p->num_values; v++) q->tail_slot[v] = -1;
    for (int i = p->last_weighted; i < p->num_ops; i++) {
        size_t n = (size_t)cn_shape_size(p->ops[i].out);
        if (n > q->float_size) q->float_size = n;
        q->tail_slot[p->ops[i].out_v] = q->num_tail++;
    }
    return CN_OK;
}

cn_status cn_int8_model_create(const cn_model *m, const float *mean, const float *std, const float *calib_images,
                               int calib_count, cn_int8_model **out) {
    *out = NULL;
    if (!m || !mean || !std) return cn_fail(CN_ERR_ARG, "int8 inference: no model or no normalisation given");
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
