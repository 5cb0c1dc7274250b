/* Winograd F(2,3) along rows: the weight transform and packing, the output-gradient
 * transform (kernels.h). The input transform and the tiles are in the kernel sets that
 * have them. */
#include "kernels/kernels.h"

/* U (4) of kernel row ky of w'[oc][ic] (cn_conv_pack's reading of w, flipped when transposed). */
static void row_transform(const cn_conv_geom *g, const float *w, int transposed, int oc, int ic, int ky, float u[4]) {
    float r[3];
    for (int kx = 0; kx < 3; kx++)
        r[kx] = transposed ? w[(((size_t)ic * g->out_c + oc) * 3 + (2 - ky)) * 3 + (2 - kx)]
                           : w[(((size_t)oc * g->in_c + ic) * 3 + ky) * 3 + kx];
    u[0] = r[0];
    u[1] = (r[0] + r[1] + r[2]) * 0.5f;
    u[2] = (r[0] - r[1] + r[2]) * 0.5f;
    u[3] = r[2];
}

void cn_wino_pack(const cn_kernel_set *ks, const cn_conv_geom *g, const float *w, int transposed, float *u) {
    int blocks = (g->out_c + ks->wino_mr - 1) / ks->wino_mr;
    for (int b = 0; b < blocks; b++) {
        int oc0, mr;
        cn_conv_block(g->out_c, ks->wino_mr, b, &oc0, &mr);
        float *dst = u + (size_t)oc0 * g->in_c * 12;
        for (int ic = 0; ic < g->in_c; ic++)
            for (int ky = 0; ky < 3; ky++, dst += 4 * mr)
                for (int i = 0; i < mr; i++) {
                    float t4[4];
                    row_transform(g, w, transposed, oc0 + i, ic, ky, t4);
                    for (int t = 0; t < 4; t++) dst[t * mr + i] = t4[t];
                }
    }
}

void cn_wino_pack_channels(const cn_conv_geom *g, const float *w, int transposed, int ld, float *ut) {
    for (int ic = 0; ic < g->in_c; ic++)
        for (int ky = 0; ky < 3; ky++) {
            float *rows = ut + (size_t)(ic * 3 + ky) * 4 * ld;
            for (int oc = 0; oc < ld; oc++) {
                float t4[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
                if (oc < g->out_c) row_transform(g, w, transposed, oc, ic, ky, t4);
                for (int t = 0; t < 4; t++) rows[(size_t)t * ld + oc] = t4[t];
            }
        }
}

double cn_wino_pixel_lanes(const cn_conv_geom *g) {
    return (double)g->out_h * g->out_w / cn_wino_q_stride(g);
}

CN_MULTIVERSION
void cn_wino_grad_transform(const cn_conv_geom *g, const float *dyt, int ld, float *z) {
    int wv = cn_wino_pairs(g);
    for (int oy = 0; oy < g->out_h; oy++)
        for (int m = 0; m < wv; m++) {
            const float *d0 = dyt + (size_t)(oy * g->out_w + 2 * m) * ld, *d1 = d0 + ld;
            float *zp = z + (size_t)(oy * wv + m) * 4 * ld;
            if (2 * m + 1 < g->out_w)
                for (int i = 0; i < ld; i++) {
                    zp[i] = d0[i];
                    zp[ld + i] = d0[i] + d1[i];
                    zp[2 * ld + i] = d0[i] - d1[i];
                    zp[3 * ld + i] = -d1[i];
                }
            else
                for (int i = 0; i < ld; i++) {
                    zp[i] = zp[ld + i] = zp[2 * ld + i] = d0[i];
                    zp[3 * ld + i] = 0.0f;
                }
        }
}
