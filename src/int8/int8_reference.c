/* The C export's helpers in the library (int8_reference.h). The files' tables of
 * helpers (which make them compile on their own without unused-function warnings) get
 * names of their own here, so that a test that includes a file too still links. */
#include "int8/int8_reference.h"

#define export_c_runtime_int8 cn_i8_ref_int8_helpers
#define export_c_runtime_float cn_i8_ref_float_helpers
#include "io/export_c_runtime/int8.c"
#include "io/export_c_runtime/float.c"

int8_t cn_i8_ref_q8(float v) { return q8(v); }

void cn_i8_ref_conv2d_q(const int8_t *in, int8_t *qout, float *fout, const int8_t *weight, const float *mult,
                        const float *bias, int c, int h, int w, int oc, int k, int s, int p, int oh, int ow, int relu) {
    conv2d_q(in, qout, fout, weight, mult, bias, c, h, w, oc, k, s, p, oh, ow, relu, 1, (int16_t *)0);
}

void cn_i8_ref_linear_q(const int8_t *in, int8_t *qout, float *fout, const int8_t *weight, const float *mult,
                        const float *bias, int n, int m, int relu) {
    linear_q(in, qout, fout, weight, mult, bias, n, m, relu, (int16_t *)0);
}

void cn_i8_ref_maxpool_q(const int8_t *in, int8_t *out, int c, int h, int w, int k, int s, int p, int oh, int ow) {
    maxpool_q(in, out, c, h, w, k, s, p, oh, ow);
}

void cn_i8_ref_int8_op(const export_op *o, int8_t *in, int8_t *out) {
    int C = o->in.c, H = o->in.h, W = o->in.w;
    /* the rescale the generated code passes: s_in / s_out in float, printed exactly */
    float rescale = o->s_in / o->s_out;
    switch (o->kind) {
    case OP_AFFINE: affine_q(in, o->mult, o->qbias, C, H * W, o->relu); break;
    case OP_AVGPOOL: avgpool_q(in, out, C, H, W, o->k, o->stride, o->pad, o->out.h, o->out.w, rescale); break;
    case OP_GAP: gap_q(in, out, C, H * W, rescale); break;
    case OP_RELU6: relu6_q(in, C * H * W, o->relu6_top); break;
    case OP_LEAKY_RELU: leaky_relu_q(in, C * H * W, o->slope); break;
    default: break;   /* the others have kernels (int8.h) */
    }
}

void cn_i8_ref_conv_op(const export_op *o, const int8_t *in, int8_t *qout, float *fout) {
    conv2d_gq(in, qout, fout, o->wq, o->mult, o->qbias, o->in.c, o->in.h, o->in.w, o->out.c, o->k, o->stride, o->pad,
              o->out.h, o->out.w, o->relu, 1, o->groups, o->dilation, (int16_t *)0);
}

void cn_i8_ref_join_q(const export_op *o, const int8_t *const *in, int8_t *out) {
    if (o->kind == OP_ADD) add_q(in, o->rescale, o->num_in, out, cn_shape_size(o->out), o->relu);
    else if (o->kind == OP_CONCAT) concat_q(in, o->in_n, o->rescale, o->num_in, out);
}

void cn_i8_ref_float_op(const export_op *o, const float *const *ins, float *out) {
    int C = o->in.c, H = o->in.h, W = o->in.w, n = C * H * W;
    if (export_op_in_place(o->kind)) copy(ins[0], out, n);   /* as the export does when a branch still reads it */
    switch (o->kind) {
    case OP_AFFINE: affine(out, o->w, o->b, C, H * W, o->relu); break;
    case OP_RELU: relu(out, n); break;
    case OP_RELU6: relu6(out, n); break;
    case OP_LEAKY_RELU: leaky_relu(out, n, o->slope); break;
    case OP_LOG_SOFTMAX: log_softmax(out, C); break;   /* as the generated call */
    case OP_MAXPOOL: maxpool(ins[0], out, C, H, W, o->k, o->stride, o->pad, o->out.h, o->out.w); break;
    case OP_AVGPOOL: avgpool(ins[0], out, C, H, W, o->k, o->stride, o->pad, o->out.h, o->out.w); break;
    case OP_GAP: gap(ins[0], out, C, H * W); break;
    case OP_ADD: add(ins, o->num_in, out, cn_shape_size(o->out), o->relu); break;
    case OP_CONCAT: concat(ins, o->in_n, o->num_in, out); break;
    case OP_CONV: case OP_LINEAR: break;   /* never after the last conv/linear */
    }
}
