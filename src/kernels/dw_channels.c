/* Batch-norm statistics of a channel-vectorised depthwise output (kernels.h:
 * cn_dwc_plane_stats): the loops run along the channels of a pixel, so they vectorise over
 * channels while each channel's sum keeps pixel order (the same on every instruction set);
 * CN_MULTIVERSION builds them for each. */
#include "kernels/kernels.h"

CN_MULTIVERSION
void cn_dwc_plane_stats(const float *out_t, int pixels, int C, int ld, double *sum, double *st) {
    for (int ch = 0; ch < C; ch++) sum[ch] = 0.0;
    for (int p = 0; p < pixels; p++) {
        const float *o = out_t + (size_t)p * ld;
        for (int ch = 0; ch < C; ch++) sum[ch] += o[ch];
    }
    for (int ch = 0; ch < C; ch++) st[2 * ch] = sum[ch];
    for (int ch = 0; ch < C; ch++) sum[ch] /= pixels;   /* now the means */
    double *sq = sum + ld;
    for (int ch = 0; ch < C; ch++) sq[ch] = 0.0;
    for (int p = 0; p < pixels; p++) {
        const float *o = out_t + (size_t)p * ld;
        for (int ch = 0; ch < C; ch++) {
            double d = o[ch] - sum[ch];
            sq[ch] += d * d;
        }
    }
    for (int ch = 0; ch < C; ch++) st[2 * ch + 1] = sq[ch];
}
