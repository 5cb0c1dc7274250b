/* Winograd F(m,3) along rows, m = 2 or 4: the weight transform and packing, the
 * output-gradient transform (kernels.h). The input transform and the tiles are in the
 * kernel sets that have them. */
#include "kernels/kernels.h"

#define ALPHA_MAX 6

/* U (a values, kernels.h) of kernel row ky of w'[oc][ic] (cn_conv_pack's reading of w, flipped
 * when transposed); computed in double, rounded once. */
static void row_transform(const cn_conv_geom *g, const float *w, int transposed, int oc, int ic, int ky,
                          float u[ALPHA_MAX]) {
    double r[3];
    for (int kx = 0; kx < 3; kx++)
        r[kx] = transposed ? w[(((size_t)ic * g->out_c + oc) * 3 + (2 - ky)) * 3 + (2 - kx)]
                           : w[(((size_t)oc * g->in_c + ic) * 3 + ky) * 3 + kx];
    if (g->wino_m == 2) {
        u[0] = (float)r[0];
        u[1] = (float)((r[0] + r[1] + r[2]) * 0.5);
        u[2] = (float)((r[0] - r[1] + r[2]) * 0.5);
        u[3] = (float)r[2];
    } else {
        u[0] = (float)(r[0] / 4);
        u[1] = (float)(-(r[0] + r[1] + r[2]) / 6);
        u[2] = (float)(-(r[0] - r[1] + r[2]) / 6);
        u[3] = (float)((r[0] + 2 * r[1] + 4 * r[2]) / 24);
        u[4] = (float)((r[0] - 2 * r[1] + 4 * r[2]) / 24);
        u[5] = (float)r[2];
    }
}

void cn_wino_pack(const cn_kernel_set *ks, const cn_conv_geom *g, const float *w, int transposed, float *u) {
    int a = cn_wino_alpha(g), mr_max = cn_wino_mr(ks, g), blocks = (g->out_c + mr_max - 1) / mr_max;
    for (int b = 0; b < blocks; b++) {
        int oc0, mr;
        cn_conv_block(g->out_c, mr_max, b, &oc0, &mr);
        float *dst = u + (size_t)oc0 * g->in_c * 3 * a;
        for (int ic = 0; ic < g->in_c; ic++)
            for (int ky = 0; ky < 3; ky++, dst += a * mr)
                for (int i = 0; i < mr; i++) {
                    float ut[ALPHA_MAX];
                    row_transform(g, w, transposed, oc0 + i, ic, ky, ut);
                    for (int t = 0; t < a; t++) dst[t * mr + i] = ut[t];
                }
    }
}

void cn_wino_pack_channels(const cn_conv_geom *g, const float *w, int transposed, int ld, float *ut) {
    int a = cn_wino_alpha(g);
    for (int ic = 0; ic < g->in_c; ic++)
        for (int ky = 0; ky < 3; ky++) {
            float *rows = ut + (size_t)(ic * 3 + ky) * a * ld;
            for (int oc = 0; oc < ld; oc++) {
                float u[ALPHA_MAX] = { 0.0f };
                if (oc < g->out_c) row_transform(g, w, transposed, oc, ic, ky, u);
                for (int t = 0; t < a; t++) rows[(size_t)t * ld + oc] = u[t];
            }
        }
}

double cn_wino_pixel_lanes(const cn_conv_geom *g) {
    return (double)g->out_h * g->out_w / cn_wino_q_stride(g);
}

/* Z (kernels.h) of one tile's output gradients d0 .. d3 (d2, d3 unused for m = 2), at zp[t * ld]. */
static inline void tile_z(int m, float d0, float d1, float d2, float d3, float *zp, int ld) {
    if (m == 2) {
        zp[0] = d0; zp[ld] = d0 + d1; zp[2 * ld] = d0 - d1; zp[3 * ld] = -d1;
        return;
    }
    float even = d0 + d2, odd = d1 + d3, even4 = d0 + 4.0f * d2, odd2 = 2.0f * d1 + 8.0f * d3;
    zp[0] = d0; zp[ld] = even + odd; zp[2 * ld] = even - odd;
    zp[3 * ld] = even4 + odd2; zp[4 * ld] = even4 - odd2; zp[5 * ld] = d3;
}

CN_MULTIVERSION
void cn_wino_grad_transform(const cn_conv_geom *g, const float *dyt, int ld, float *z) {
    int m = g->wino_m, wv = cn_wino_tiles(g), a = m + 2;
    for (int oy = 0; oy < g->out_h; oy++)
        for (int tile = 0; tile < wv; tile++) {
            int ox = m * tile, n = g->out_w - ox < m ? g->out_w - ox : m;   /* outputs inside the row */
            const float *d = dyt + (size_t)(oy * g->out_w + ox) * ld;
            float *zp = z + (size_t)(oy * wv + tile) * a * ld;
            if (m == 2 && n == 2)
                for (int i = 0; i < ld; i++) tile_z(2, d[i], d[ld + i], 0.0f, 0.0f, zp + i, ld);
            else if (n == 4)
                for (int i = 0; i < ld; i++) tile_z(4, d[i], d[ld + i], d[2 * ld + i], d[3 * ld + i], zp + i, ld);
            else    /* the row's last tile, cut short: outputs past the row's end count as 0 */
                for (int i = 0; i < ld; i++) {
                    float v[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
                    for (int k = 0; k < n; k++) v[k] = d[(size_t)k * ld + i];
                    tile_z(m, v[0], v[1], v[2], v[3], zp + i, ld);
                }
        }
}
