/* im2col / col2im for square kernels with zero padding, stride and dilation. */
#include "kernels/kernels.h"
#include <string.h>

// in (C,H,W) -> col (C*k*k, OH*OW)
void cn_im2col(const float *in, int C, int H, int W, int k, int stride, int pad, int dil, int OH, int OW, float *col) {
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(c * k + ky) * k + kx) * OH * OW;
                const float *plane = in + (size_t)c * H * W;
                for (int oy = 0; oy < OH; oy++) {
                    int iy = oy * stride - pad + ky * dil;
                    float *dst = row + oy * OW;
                    if (iy < 0 || iy >= H) { memset(dst, 0, OW * sizeof *dst); continue; }
                    const float *src = plane + iy * W;
                    for (int ox = 0; ox < OW; ox++) {
                        int ix = ox * stride - pad + kx * dil;
                        dst[ox] = (ix >= 0 && ix < W) ? src[ix] : 0.0f;
                    }
                }
            }
}

// col (C*k*k, OH*OW) -> in (C,H,W), overlaps summed
void cn_col2im(const float *col, int C, int H, int W, int k, int stride, int pad, int dil, int OH, int OW, float *in) {
    memset(in, 0, (size_t)C * H * W * sizeof *in);
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const float *row = col + ((size_t)(c * k + ky) * k + kx) * OH * OW;
                float *plane = in + (size_t)c * H * W;
                for (int oy = 0; oy < OH; oy++) {
                    int iy = oy * stride - pad + ky * dil;
                    if (iy < 0 || iy >= H) continue;
                    const float *src = row + oy * OW;
                    float *dst = plane + iy * W;
                    for (int ox = 0; ox < OW; ox++) {
                        int ix = ox * stride - pad + kx * dil;
                        if (ix >= 0 && ix < W) dst[ix] += src[ox];
                    }
                }
            }
}
