/* The kernel set of an instruction set without Winograd kernels (conv_generic.c, conv_avx2.c):
 * the forward, channel and depthwise (per plane, per channel) tiles instantiated once over the
 * vector vocabulary the including file defines (see conv_fwd_impl.h: vf, VL, VLOAD ... VZERO,
 * ACC_MAX, MR_MAX, WG), and the cn_kernel_set SET_VAR, named SET_NAME, that hands them out. Included once, last. */
#include "kernels/conv_fwd_impl.h"
#include "kernels/conv_chan_impl.h"
#include "kernels/conv_dw_impl.h"
#define DWC_PX 2     /* 16 registers: 9 weights, 2 accumulators and the loads */
#include "kernels/conv_dwc_impl.h"

static int wgrad_ld(int out_c) { return cn_round_up(out_c, VL); }

const cn_kernel_set SET_VAR = {
    .name = SET_NAME, .vec = VL, .mr_max = MR_MAX,
    .conv = conv_forward, .wgrad_ld = wgrad_ld, .weight_grad = conv_weight_grad, .conv_channels = conv_channels,
    .epilogue = cn_epilogue_plane_portable,
    .dw3x3 = dw3x3, .dw3x3_wgrad = dw3x3_wgrad, .dw3x3_dgrad_s2 = dw3x3_dgrad_s2,
    .dwc_forward = dwc_forward, .dwc_weight_grad = dwc_weight_grad, .dwc_input_grad = dwc_input_grad,
};
