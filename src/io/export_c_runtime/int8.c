/* int8 helpers of the C export (src/io/export_c.c), in the portable C every target
 * runs; int8_dsp.c has faster conv2d_q and linear_q for cores with the Arm DSP
 * extension. Embedded and checked as float.c says: each helper runs from its
 * `@helper NAME` line to the next marker.
 * Values: real = q * scale, symmetric, zero point 0, q in [-127, 127]; conv and linear
 * sum int8 products in int32 and requantise with a float multiplier per channel. */
#include <stdint.h>

/* @helper q8 */
/* round half away from zero and saturate to [-127, 127] */
static int8_t q8(float v)
{
    v = v >= 0.0f ? v + 0.5f : v - 0.5f;
    if (v > 127.0f) v = 127.0f;
    if (v < -127.0f) v = -127.0f;
    return (int8_t)(int)v;
}

/* @helper requant */
/* acc * mult + bias (bias already in the output scale), ReLU, then to int8 at qout[idx]
 * or, with qout null, to float at fout[idx]. first == 0: a later position of a fused max
 * pool, which keeps the larger int8 value; mult > 0 makes this monotonic in acc, so the
 * result is the one of the unfused conv and max pool. */
static void requant(int32_t acc, float mult, float bias, int relu, int8_t *qout, float *fout, int idx, int first)
{
    float v = (float)acc * mult + bias;
    int8_t q;
    if (relu && v < 0.0f) v = 0.0f;
    if (!qout) {
        fout[idx] = v;
        return;
    }
    q = q8(v);
    if (first || q > qout[idx]) qout[idx] = q;
}

/* @helper conv2d_q */
/* int8 in (c,h,w) -> conv (oc, oh*pool, ow*pool) -> out (oc,oh,ow): int32 sums of int8
 * products, requantised to int8 (qout) or float (fout); weight (oc,c,k,k), zero padding p.
 * pool > 1 (qout only): a max pool of pool x pool with stride pool follows, fused; the
 * conv map is never stored. col: scratch of the DSP variant, unused here (may be null).
 * The kernel rows and columns inside the image are found once per position. */
static void conv2d_q(const int8_t *in, int8_t *qout, float *fout, const int8_t *weight, const float *mult,
                     const float *bias, int c, int h, int w, int oc, int k, int s, int p, int oh, int ow, int relu,
                     int pool, int16_t *col)
{
    int o, y, x, i, ky, kx, py, px;
    (void)col;
    for (o = 0; o < oc; o++)
        for (y = 0; y < oh; y++)
            for (x = 0; x < ow; x++) {
                int32_t best = 0;
                for (py = 0; py < pool; py++)
                    for (px = 0; px < pool; px++) {
                        int cy = (y * pool + py) * s - p, cx = (x * pool + px) * s - p;
                        int ky0 = cy < 0 ? -cy : 0, ky1 = cy + k > h ? h - cy : k;
                        int kx0 = cx < 0 ? -cx : 0, kx1 = cx + k > w ? w - cx : k;
                        int32_t acc = 0;
                        for (i = 0; i < c; i++) {
                            const int8_t *wt = weight + (o * c + i) * k * k;
                            int at = (i * h + cy) * w + cx;   /* may be negative; at + ky * w + kx is inside */
                            for (ky = ky0; ky < ky1; ky++)
                                for (kx = kx0; kx < kx1; kx++) acc += (int32_t)in[at + ky * w + kx] * (int32_t)wt[ky * k + kx];
                        }
                        if ((py == 0 && px == 0) || acc > best) best = acc;
                    }
                /* the max of the sums, requantised once: the same as the max of the requantised values */
                requant(best, mult[o], bias[o], relu, qout, fout, (o * oh + y) * ow + x, 1);
            }
}

/* @helper conv2d_gq */
/* conv2d_q for grouped, depthwise or dilated convolutions: weight (oc, c/groups, k, k);
 * output channel o reads the c/groups input channels of its group, o / (oc/groups)
 * (depthwise when groups == c); taps d apart (dilation d). Otherwise as conv2d_q: int32
 * sums requantised to qout or fout, a pool x pool max pool fused, col unused. The taps
 * inside the image are found once per position. */
static void conv2d_gq(const int8_t *in, int8_t *qout, float *fout, const int8_t *weight, const float *mult,
                      const float *bias, int c, int h, int w, int oc, int k, int s, int p, int oh, int ow, int relu,
                      int pool, int groups, int d, int16_t *col)
{
    int cg = c / groups, og = oc / groups, o, y, x, i, ky, kx, py, px;
    (void)col;
    for (o = 0; o < oc; o++) {
        const int8_t *src = in + (o / og) * cg * h * w;
        for (y = 0; y < oh; y++)
            for (x = 0; x < ow; x++) {
                int32_t best = 0;
                for (py = 0; py < pool; py++)
                    for (px = 0; px < pool; px++) {
                        int cy = (y * pool + py) * s - p, cx = (x * pool + px) * s - p;
                        /* taps ky in [ky0, ky1) have 0 <= cy + ky * d < h; likewise kx */
                        int ky0 = cy < 0 ? (-cy + d - 1) / d : 0, ky1 = cy + (k - 1) * d >= h ? (h - cy + d - 1) / d : k;
                        int kx0 = cx < 0 ? (-cx + d - 1) / d : 0, kx1 = cx + (k - 1) * d >= w ? (w - cx + d - 1) / d : k;
                        int32_t acc = 0;
                        for (i = 0; i < cg; i++) {
                            const int8_t *wt = weight + (o * cg + i) * k * k, *plane = src + i * h * w;
                            for (ky = ky0; ky < ky1; ky++)
                                for (kx = kx0; kx < kx1; kx++)
                                    acc += (int32_t)plane[(cy + ky * d) * w + cx + kx * d] * (int32_t)wt[ky * k + kx];
                        }
                        if ((py == 0 && px == 0) || acc > best) best = acc;
                    }
                requant(best, mult[o], bias[o], relu, qout, fout, (o * oh + y) * ow + x, 1);
            }
    }
}

/* @helper linear_q */
/* int8 in (n) -> out (m): int32 dot products with weight (m,n), requantised as in
 * conv2d_q. col: scratch of the DSP variant, unused here (may be null). */
static void linear_q(const int8_t *in, int8_t *qout, float *fout, const int8_t *weight, const float *mult,
                     const float *bias, int n, int m, int relu, int16_t *col)
{
    int o, i;
    (void)col;
    for (o = 0; o < m; o++) {
        int32_t acc = 0;
        for (i = 0; i < n; i++) acc += (int32_t)weight[o * n + i] * (int32_t)in[i];
        requant(acc, mult[o], bias[o], relu, qout, fout, o, 1);
    }
}

/* @helper affine_q */
/* batch norm at inference on int8, in place: q = q * mult[c] + shift[c] in the output scale */
static void affine_q(int8_t *x, const float *mult, const float *shift, int c, int plane, int relu)
{
    int i, j;
    for (i = 0; i < c; i++)
        for (j = 0; j < plane; j++) {
            float v = (float)x[i * plane + j] * mult[i] + shift[i];
            x[i * plane + j] = q8((relu && v < 0.0f) ? 0.0f : v);
        }
}

/* @helper relu_q */
static void relu_q(int8_t *x, int n)
{
    int i;
    for (i = 0; i < n; i++) if (x[i] < 0) x[i] = 0;
}

/* @helper relu6_q */
/* relu6 in place, same scale in and out: q clamped to [0, top], top = q8(6 / scale) */
static void relu6_q(int8_t *x, int n, int top)
{
    int i;
    for (i = 0; i < n; i++) {
        if (x[i] < 0) x[i] = 0;
        if (x[i] > top) x[i] = (int8_t)top;
    }
}

/* @helper leaky_relu_q */
/* leaky_relu in place, same scale in and out: a negative q becomes q8(q * slope) */
static void leaky_relu_q(int8_t *x, int n, float slope)
{
    int i;
    for (i = 0; i < n; i++) if (x[i] < 0) x[i] = q8((float)x[i] * slope);
}

/* @helper maxpool_q */
/* int8 max pooling (same scale in and out) */
static void maxpool_q(const int8_t *in, int8_t *out, int c, int h, int w, int k, int s, int p, int oh, int ow)
{
    int i, y, x, ky, kx;
    for (i = 0; i < c; i++)
        for (y = 0; y < oh; y++)
            for (x = 0; x < ow; x++) {
                int best = -128;
                for (ky = 0; ky < k; ky++)
                    for (kx = 0; kx < k; kx++) {
                        int iy = y * s - p + ky, ix = x * s - p + kx;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                        if (in[(i * h + iy) * w + ix] > best) best = in[(i * h + iy) * w + ix];
                    }
                out[(i * oh + y) * ow + x] = (int8_t)best;
            }
}

/* @helper avgpool_q */
/* int8 average pooling (padding counts in the divisor); rescale = input scale / output scale */
static void avgpool_q(const int8_t *in, int8_t *out, int c, int h, int w, int k, int s, int p, int oh, int ow,
                      float rescale)
{
    int i, y, x, ky, kx;
    for (i = 0; i < c; i++)
        for (y = 0; y < oh; y++)
            for (x = 0; x < ow; x++) {
                int y0 = y * s - p, x0 = x * s - p, y1 = y0 + k, x1 = x0 + k;
                int32_t sum = 0;
                for (ky = 0; ky < k; ky++)
                    for (kx = 0; kx < k; kx++) {
                        int iy = y0 + ky, ix = x0 + kx;
                        if (iy >= 0 && iy < h && ix >= 0 && ix < w) sum += in[(i * h + iy) * w + ix];
                    }
                if (y1 > h + p) y1 = h + p;
                if (x1 > w + p) x1 = w + p;
                out[(i * oh + y) * ow + x] = q8((float)sum * rescale / (float)((y1 - y0) * (x1 - x0)));
            }
}

/* @helper gap_q */
/* int8 global average pooling; rescale = input scale / output scale */
static void gap_q(const int8_t *in, int8_t *out, int c, int plane, float rescale)
{
    int i, j;
    for (i = 0; i < c; i++) {
        int32_t sum = 0;
        for (j = 0; j < plane; j++) sum += in[i * plane + j];
        out[i] = q8((float)sum * rescale / (float)plane);
    }
}

/* @helper copy_q */
/* out (n) = in (n): a value that an in-place helper is about to change while a later layer
 * still reads it (a branch) */
static void copy_q(const int8_t *in, int8_t *out, int n)
{
    int i;
    for (i = 0; i < n; i++) out[i] = in[i];
}

/* @helper add_q */
/* int8 sum of k >= 2 inputs of n values, each in its own scale: out = q8(v) with
 * v = in[0] * rescale[0] + in[1] * rescale[1] + ..., summed in float in that order
 * (rescale[j] = input j's scale / the output scale), ReLU'd first when relu. */
static void add_q(const int8_t *const *in, const float *rescale, int k, int8_t *out, int n, int relu)
{
    int i, j;
    for (i = 0; i < n; i++) {
        float v = (float)in[0][i] * rescale[0];
        for (j = 1; j < k; j++) v += (float)in[j][i] * rescale[j];
        out[i] = q8((relu && v < 0.0f) ? 0.0f : v);
    }
}

/* @helper concat_q */
/* int8 concatenation along channels: out = in[0] (size[0] values), then in[1], ..., each value
 * requantised to the output scale, q8(q * rescale[j]) (rescale[j] = input j's scale / the
 * output scale; 1 leaves it as it is) */
static void concat_q(const int8_t *const *in, const int *size, const float *rescale, int k, int8_t *out)
{
    int i, j;
    for (j = 0; j < k; j++) {
        for (i = 0; i < size[j]; i++) out[i] = q8((float)in[j][i] * rescale[j]);
        out += size[j];
    }
}

/* @end */
/* Not copied: references every helper (see float.c). */
void (*const export_c_runtime_int8[])(void) = {
    (void (*)(void))conv2d_q, (void (*)(void))conv2d_gq, (void (*)(void))linear_q, (void (*)(void))affine_q,
    (void (*)(void))relu_q, (void (*)(void))relu6_q, (void (*)(void))leaky_relu_q, (void (*)(void))maxpool_q, (void (*)(void))avgpool_q, (void (*)(void))gap_q,
    (void (*)(void))copy_q, (void (*)(void))add_q, (void (*)(void))concat_q,
};
