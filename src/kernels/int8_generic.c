/* int8 convolution for any CPU (int8.h): plain loops over the int8 packed weights. */
#include "kernels/int8.h"

/* The epilogue of int8.h for one output: the sum acc (biased inputs) of channel oc. */
static void store_one(const cn_i8_conv_geom *g, const cn_i8_epilogue *ep, int32_t acc, int y, int x, int oc,
                      uint8_t *qout, float *fout) {
    int32_t s = (int32_t)((uint32_t)acc - (uint32_t)ep->comp[oc]);
    float v = (float)s * ep->mult[oc] + ep->bias[oc];
    if (ep->relu && v < 0.0f) v = 0.0f;
    if (!qout) {
        fout[y * g->f_row + x * g->f_pix + oc * g->f_chan] = v;
        return;
    }
    int32_t q = cn_i8_q8(v);
    if (ep->post_mult) {
        float v2 = (float)q * ep->post_mult[oc] + ep->post_shift[oc];
        if (ep->post_relu && v2 < 0.0f) v2 = 0.0f;
        q = cn_i8_q8(v2);
    }
    qout[y * g->q_row + x * g->q_pix + oc] = (uint8_t)(q + CN_I8_ZERO);
}

static void conv(const cn_i8_conv_geom *g, const void *packed, const cn_i8_epilogue *ep, const uint8_t *in,
                 uint8_t *qout, float *fout) {
    const int8_t *wp = packed;
    int taps = g->k * g->k, groups = g->in_cp / 4;
    for (int oc = 0; oc < g->out_c; oc++) {
        const int8_t *wb = wp + (size_t)(oc / CN_I8_BLOCK) * taps * groups * 4 * CN_I8_BLOCK + (oc % CN_I8_BLOCK) * 4;
        for (int y = 0; y < g->out_h; y++)
            for (int x = 0; x < g->out_w; x++) {
                uint32_t acc = 0;   /* wraps; exact at the end (int8.h) */
                for (int t = 0; t < taps; t++) {
                    const uint8_t *p = in + ((size_t)(y * g->stride + t / g->k) * g->in_w + x * g->stride + t % g->k) * g->in_cp;
                    const int8_t *w = wb + (size_t)t * groups * 4 * CN_I8_BLOCK;
                    for (int gi = 0; gi < groups; gi++)
                        for (int j = 0; j < 4; j++)
                            acc += (uint32_t)((int32_t)p[gi * 4 + j] * w[(size_t)gi * 4 * CN_I8_BLOCK + j]);
                }
                store_one(g, ep, (int32_t)acc, y, x, oc, qout, fout);
            }
    }
}

static void quantise(const float *x, size_t n, float mean, float std, float inv_scale, uint8_t *out) {
    for (size_t i = 0; i < n; i++) out[i] = (uint8_t)(cn_i8_q8((x[i] - mean) / std * inv_scale) + CN_I8_ZERO);
}

const cn_i8_kernel_set cn_i8_kernels_generic = {.name = "generic", .weight_bytes = 1, .conv = conv, .quantise = quantise};
