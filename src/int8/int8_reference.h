/* The C export's own helpers (src/io/export_c_runtime/int8.c and float.c), compiled into
 * the library: the int8 CPU inference runs them for the steps it has no kernel for (the
 * float layers after the last conv/linear, int8 average pooling, a batch norm not fused
 * into a conv, grouped or dilated convs, relu6 and leaky_relu, joins of flattened inputs)
 * and quantises its input with their q8, and the tests use them as the
 * reference of the int8 kernels. Shapes: (channel, row, column) in one flat array, as
 * those files say. */
#ifndef CN_INT8_REFERENCE_H
#define CN_INT8_REFERENCE_H
#include "io/export_c_plan.h"
#include <stdint.h>

/* round half away from zero, saturated to [-127, 127] */
int8_t cn_i8_ref_q8(float v);
/* conv2d_q without pooling: in (c,h,w) -> qout (oc,oh,ow) or, qout NULL, fout */
void cn_i8_ref_conv2d_q(const int8_t *in, int8_t *qout, float *fout, const int8_t *weight, const float *mult,
                        const float *bias, int c, int h, int w, int oc, int k, int s, int p, int oh, int ow, int relu);
/* linear_q: in (n) -> qout (m) or, qout NULL, fout (m) */
void cn_i8_ref_linear_q(const int8_t *in, int8_t *qout, float *fout, const int8_t *weight, const float *mult,
                        const float *bias, int n, int m, int relu);
void cn_i8_ref_maxpool_q(const int8_t *in, int8_t *out, int c, int h, int w, int k, int s, int p, int oh, int ow);

/* The int8 op o of a quantised plan (OP_AFFINE, OP_AVGPOOL, OP_GAP, OP_RELU6 or
 * OP_LEAKY_RELU) on one image: in (o->in) -> out (o->out); OP_AFFINE, OP_RELU6 and
 * OP_LEAKY_RELU work in place (out is in). */
void cn_i8_ref_int8_op(const export_op *o, int8_t *in, int8_t *out);
/* The int8 conv op o (any groups and dilation; the export's conv2d_gq without a fused
 * pool) on one image: in (o->in) -> qout (o->out) or, qout NULL, fout (o->out, float). */
void cn_i8_ref_conv_op(const export_op *o, const int8_t *in, int8_t *qout, float *fout);
/* The int8 join o (OP_ADD: add_q, OP_CONCAT: concat_q) on one image: in[k] (c,h,w) the
 * op's inputs (o->in_n[k] values each) -> out (o->out). */
void cn_i8_ref_join_q(const export_op *o, const int8_t *const *in, int8_t *out);
/* The float op o (not OP_CONV or OP_LINEAR) on one image: ins[k] its inputs -> out (a
 * buffer of its own; the in-place helpers work on a copy of ins[0] there). */
void cn_i8_ref_float_op(const export_op *o, const float *const *ins, float *out);

#endif
