/* Kernels for any CPU: GCC vector extensions of 4 floats (SSE2 on x86-64),
 * multiply and add without fusing. */
#include "kernels/kernels.h"
#include <string.h>

#define WG(name) name
typedef float vf __attribute__((vector_size(16)));
#define VL 4
static inline vf generic_load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
#define VLOAD(p) generic_load(p)
#define VSTORE(p, v) do { vf v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)
#define VBCAST(x) ((vf){0, 0, 0, 0} + (x))
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VZERO() ((vf){0, 0, 0, 0})
#define ACC_MAX 12
#define MR_MAX 6
#include "kernels/conv_fwd_impl.h"
#include "kernels/conv_chan_impl.h"
#include "kernels/conv_dw_impl.h"

static int wgrad_ld(int out_c) { return cn_round_up(out_c, VL); }

const cn_kernel_set cn_kernels_generic = {
    .name = "generic", .vec = VL, .mr_max = MR_MAX,
    .conv = conv_forward, .wgrad_ld = wgrad_ld, .weight_grad = conv_weight_grad, .conv_channels = conv_channels,
    .epilogue = cn_epilogue_plane_portable,
    .dw3x3 = dw3x3, .dw3x3_wgrad = dw3x3_wgrad, .dw3x3_dgrad_s2 = dw3x3_dgrad_s2,
};
