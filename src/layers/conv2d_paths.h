/* The paths of conv2d besides the direct kernels of conv2d.c (which dispatches):
 * conv2d_im2col.c (any stride, groups, dilation: the reference), conv2d_depthwise.c,
 * conv2d_grouped.c, conv2d_dilated.c and conv2d_strided.c. */
#ifndef CN_LAYERS_CONV2D_PATHS_H
#define CN_LAYERS_CONV2D_PATHS_H
#include "layers/layers.h"

/* Floats of per-thread scratch of the im2col path. */
size_t cn_conv2d_im2col_scratch_floats(const cn_layer *l);
void cn_conv2d_forward_im2col(const cn_layer_ctx *c);
void cn_conv2d_backward_im2col(const cn_layer_ctx *c);

/* Mixed precision (conv2d_bf16.c): the training plan's convolutions under --precision bf16
 * (cn_step.bf16_conv), any stride, groups and dilation. Needs cn_bf16_available(). */
size_t cn_conv2d_bf16_scratch_floats(const cn_layer *l);
void cn_conv2d_forward_bf16(const cn_layer_ctx *c);
void cn_conv2d_backward_bf16(const cn_layer_ctx *c);

/* A depthwise 3x3 the depthwise kernels run: groups = in = out channels, stride 1 or 2, pad <= 2 * dilation. */
bool cn_conv2d_depthwise_fast(const cn_layer *l);
size_t cn_conv2d_depthwise_scratch_floats(const cn_layer *l);
void cn_conv2d_forward_depthwise(const cn_layer_ctx *c);
void cn_conv2d_backward_depthwise(const cn_layer_ctx *c);
/* Such a depthwise conv with an output plane of at most CN_DWC_MAX_PLANE pixels runs the
 * channel-vectorised kernels instead, in training and in eval (conv2d_depthwise.c, kernels.h:
 * cn_kernel_set.dwc_*). Measured with bench/profile at 1 thread (thread-CPU time, AVX-512, a
 * busy machine), against the plane kernels: cifar-s9's 8x8 outputs about 2-2.5x faster forward,
 * backward and in eval, ds8k's 7x7 about 2x, its 14x14 about the same (backward ~10% faster);
 * cifar-s9's 16x16 outputs (256 pixels) mixed: the stride-2 layer's forward ~20% faster and its
 * backward ~20% slower, the dilated layer's forward ~35% slower. */
#define CN_DWC_MAX_PLANE 196
bool cn_conv2d_depthwise_channels(const cn_layer *l);
size_t cn_conv2d_depthwise_channels_scratch_floats(const cn_layer *l);
void cn_conv2d_forward_depthwise_channels(const cn_layer_ctx *c);
void cn_conv2d_backward_depthwise_channels(const cn_layer_ctx *c);

/* A grouped conv the direct kernels run group by group: groups > 1, stride 1, no dilation, not a
 * fast depthwise 3x3. */
bool cn_conv2d_grouped_direct(const cn_layer *l);
size_t cn_conv2d_grouped_scratch_floats(const cn_layer *l);
void cn_conv2d_forward_grouped(const cn_layer_ctx *c);
void cn_conv2d_backward_grouped(const cn_layer_ctx *c);
/* Multiply-adds per image its kernels issue in pass 0 (forward), 1 (input gradient), 2 (weight
 * gradient), as cn_conv2d_issued_macs counts them (padding columns, q rows and ld lanes). */
double cn_conv2d_grouped_issued_macs(const cn_layer *l, int pass);

/* A dilated conv the direct kernels run phase by phase: dilation > 1, stride 1, not grouped. */
bool cn_conv2d_dilated_direct(const cn_layer *l);
size_t cn_conv2d_dilated_scratch_floats(const cn_layer *l);
void cn_conv2d_forward_dilated(const cn_layer_ctx *c);
void cn_conv2d_backward_dilated(const cn_layer_ctx *c);
/* As cn_conv2d_grouped_issued_macs, summed over the phases that have outputs. */
double cn_conv2d_dilated_issued_macs(const cn_layer *l, int pass);

/* A strided conv the direct kernels run by space-to-depth: stride > 1, not grouped or dilated. */
bool cn_conv2d_strided_direct(const cn_layer *l);
size_t cn_conv2d_strided_scratch_floats(const cn_layer *l);
void cn_conv2d_forward_strided(const cn_layer_ctx *c);
void cn_conv2d_backward_strided(const cn_layer_ctx *c);
/* As cn_conv2d_grouped_issued_macs, for the space-to-depth convolution. */
double cn_conv2d_strided_issued_macs(const cn_layer *l, int pass);

/* Lays n scratch pieces of sizes[i] floats out one after another from base, each starting on a
 * whole vector (CN_VEC_MAX floats): *pieces[i] = base + offset (NULL when base is NULL, to
 * measure). Returns the floats used. Shared by the grouped and dilated direct paths. */
static inline size_t cn_carve_scratch(float *base, const size_t *sizes, float **const *pieces, int n) {
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        *pieces[i] = base ? base + used : NULL;
        used += (sizes[i] + CN_VEC_MAX - 1) / CN_VEC_MAX * CN_VEC_MAX;
    }
    return used;
}

#endif
