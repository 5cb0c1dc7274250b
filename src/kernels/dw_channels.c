/* Depthwise 3x3 convolution vectorised over channels (kernels.h: cn_dwc_*), for small maps,
 * where the plane-at-a-time kernels spend more on each plane's set-up than on its taps. An
 * image is (rows, cols, ld): a pixel's channels are contiguous, ld a multiple of 16, so
 * every loop below runs over 16 consecutive channels of one pixel, one vector (two on
 * AVX2), and CN_MULTIVERSION builds it for each instruction set. Multiply-adds are fused
 * where the instruction set has FMA (ISO C mode turns contraction off by default). */
#pragma GCC optimize("fp-contract=fast")
#include "kernels/kernels.h"

enum { LANES = 16 };

CN_MULTIVERSION
void cn_dwc_forward(const cn_dwc_geom *g, const float *restrict x_t, const float *restrict w_t, float *restrict out_t) {
    size_t ld = (size_t)g->ld, row = (size_t)g->wp * ld;
    for (size_t c0 = 0; c0 < ld; c0 += LANES)
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++) {
                const float *base = x_t + (size_t)oy * g->stride * row + (size_t)ox * g->stride * ld + c0;
                float acc[LANES] = { 0 };
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        const float *xp = base + (size_t)ky * g->dil * row + (size_t)kx * g->dil * ld;
                        const float *wp = w_t + (size_t)(ky * 3 + kx) * ld + c0;
                        for (int l = 0; l < LANES; l++) acc[l] += wp[l] * xp[l];
                    }
                float *o = out_t + ((size_t)oy * g->out_w + ox) * ld + c0;
                for (int l = 0; l < LANES; l++) o[l] = acc[l];
            }
}

CN_MULTIVERSION
void cn_dwc_weight_grad(const cn_dwc_geom *g, const float *restrict x_t, const float *restrict dy_t, float *restrict dw_t) {
    size_t ld = (size_t)g->ld, row = (size_t)g->wp * ld;
    for (size_t c0 = 0; c0 < ld; c0 += LANES) {
        float acc[9][LANES] = { { 0 } };
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++) {
                const float *base = x_t + (size_t)oy * g->stride * row + (size_t)ox * g->stride * ld + c0;
                const float *d = dy_t + ((size_t)oy * g->out_w + ox) * ld + c0;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        const float *xp = base + (size_t)ky * g->dil * row + (size_t)kx * g->dil * ld;
                        for (int l = 0; l < LANES; l++) acc[ky * 3 + kx][l] += d[l] * xp[l];
                    }
            }
        for (int t = 0; t < 9; t++)
            for (int l = 0; l < LANES; l++) dw_t[(size_t)t * ld + c0 + l] += acc[t][l];
    }
}

CN_MULTIVERSION
void cn_dwc_input_grad(const cn_dwc_geom *g, const float *restrict dy_t, const float *restrict w_t, float *restrict dx_t) {
    size_t ld = (size_t)g->ld, row = (size_t)g->wp * ld;
    for (size_t c0 = 0; c0 < ld; c0 += LANES)
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++) {
                float *base = dx_t + (size_t)oy * g->stride * row + (size_t)ox * g->stride * ld + c0;
                const float *d = dy_t + ((size_t)oy * g->out_w + ox) * ld + c0;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        float *xp = base + (size_t)ky * g->dil * row + (size_t)kx * g->dil * ld;
                        const float *wp = w_t + (size_t)(ky * 3 + kx) * ld + c0;
                        for (int l = 0; l < LANES; l++) xp[l] += wp[l] * d[l];
                    }
            }
}
