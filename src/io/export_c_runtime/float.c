/* Float helpers of the C export (src/io/export_c.c): the generated model.c copies the
 * ones its model calls, in the order given here. Each helper runs from its
 * `@helper NAME` line to the next marker; scripts/embed-c-runtime.sh turns them into
 * string literals at build time, and the Makefile compiles this file with
 * -std=c99 -Wall -Wextra -Werror -pedantic first. Text outside the markers (these
 * includes, the table at the end) is not copied.
 * Shapes: activations are (channel, row, column) in one flat array. */
#include <math.h>

/* @helper conv2d */
/* in (c,h,w) -> out (oc,oh,ow); weight (oc,c,k,k); zero padding p; bias may be null */
static void conv2d(const float *in, float *out, const float *weight, const float *bias, int c, int h, int w,
                   int oc, int k, int s, int p, int oh, int ow, int relu)
{
    int o, y, x, i, ky, kx;
    for (o = 0; o < oc; o++)
        for (y = 0; y < oh; y++)
            for (x = 0; x < ow; x++) {
                float acc = 0.0f;
                for (i = 0; i < c; i++)
                    for (ky = 0; ky < k; ky++) {
                        int iy = y * s - p + ky;
                        if (iy < 0 || iy >= h) continue;
                        for (kx = 0; kx < k; kx++) {
                            int ix = x * s - p + kx;
                            if (ix < 0 || ix >= w) continue;
                            acc += in[(i * h + iy) * w + ix] * weight[((o * c + i) * k + ky) * k + kx];
                        }
                    }
                if (bias) acc += bias[o];
                if (relu && acc < 0.0f) acc = 0.0f;
                out[(o * oh + y) * ow + x] = acc;
            }
}

/* @helper conv2d_grouped */
/* in (c,h,w) -> out (oc,oh,ow); weight (oc, c/groups, k, k): output channel o reads the
 * c/groups input channels of its group, o / (oc/groups) (depthwise when groups == c);
 * taps d apart (dilation d); zero padding p; bias may be null */
static void conv2d_grouped(const float *in, float *out, const float *weight, const float *bias, int c, int h, int w,
                           int oc, int k, int s, int p, int oh, int ow, int relu, int groups, int d)
{
    int cg = c / groups, og = oc / groups, o, y, x, i, ky, kx;
    for (o = 0; o < oc; o++) {
        const float *src = in + (o / og) * cg * h * w;
        for (y = 0; y < oh; y++)
            for (x = 0; x < ow; x++) {
                float acc = 0.0f;
                for (i = 0; i < cg; i++)
                    for (ky = 0; ky < k; ky++) {
                        int iy = y * s - p + ky * d;
                        if (iy < 0 || iy >= h) continue;
                        for (kx = 0; kx < k; kx++) {
                            int ix = x * s - p + kx * d;
                            if (ix < 0 || ix >= w) continue;
                            acc += src[(i * h + iy) * w + ix] * weight[((o * cg + i) * k + ky) * k + kx];
                        }
                    }
                if (bias) acc += bias[o];
                if (relu && acc < 0.0f) acc = 0.0f;
                out[(o * oh + y) * ow + x] = acc;
            }
    }
}

/* @helper linear */
/* in (n) -> out (m) = weight (m,n) @ in + bias; bias may be null */
static void linear(const float *in, float *out, const float *weight, const float *bias, int n, int m, int relu)
{
    int o, i;
    for (o = 0; o < m; o++) {
        float acc = bias ? bias[o] : 0.0f;
        for (i = 0; i < n; i++) acc += weight[o * n + i] * in[i];
        if (relu && acc < 0.0f) acc = 0.0f;
        out[o] = acc;
    }
}

/* @helper affine */
/* batch norm at inference, in place: x = x * scale[c] + shift[c] */
static void affine(float *x, const float *scale, const float *shift, int c, int plane, int relu)
{
    int i, j;
    for (i = 0; i < c; i++)
        for (j = 0; j < plane; j++) {
            float v = x[i * plane + j] * scale[i] + shift[i];
            x[i * plane + j] = (relu && v < 0.0f) ? 0.0f : v;
        }
}

/* @helper relu */
static void relu(float *x, int n)
{
    int i;
    for (i = 0; i < n; i++) if (x[i] < 0.0f) x[i] = 0.0f;
}

/* @helper relu6 */
/* in place: min(max(x, 0), 6) */
static void relu6(float *x, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        float v = x[i] > 0.0f ? x[i] : 0.0f;
        x[i] = v < 6.0f ? v : 6.0f;
    }
}

/* @helper leaky_relu */
/* in place: x > 0 ? x : x * slope */
static void leaky_relu(float *x, int n, float slope)
{
    int i;
    for (i = 0; i < n; i++) if (!(x[i] > 0.0f)) x[i] = x[i] * slope;
}

/* @helper maxpool */
/* in (c,h,w) -> out (c,oh,ow); padding never wins */
static void maxpool(const float *in, float *out, int c, int h, int w, int k, int s, int p, int oh, int ow)
{
    int i, y, x, ky, kx;
    for (i = 0; i < c; i++)
        for (y = 0; y < oh; y++)
            for (x = 0; x < ow; x++) {
                float best = 0.0f;
                int seen = 0;
                for (ky = 0; ky < k; ky++)
                    for (kx = 0; kx < k; kx++) {
                        int iy = y * s - p + ky, ix = x * s - p + kx;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                        if (!seen || in[(i * h + iy) * w + ix] > best) best = in[(i * h + iy) * w + ix];
                        seen = 1;
                    }
                out[(i * oh + y) * ow + x] = best;
            }
}

/* @helper avgpool */
/* in (c,h,w) -> out (c,oh,ow); zero padding counts in the divisor (PyTorch's count_include_pad) */
static void avgpool(const float *in, float *out, int c, int h, int w, int k, int s, int p, int oh, int ow)
{
    int i, y, x, ky, kx;
    for (i = 0; i < c; i++)
        for (y = 0; y < oh; y++)
            for (x = 0; x < ow; x++) {
                int y0 = y * s - p, x0 = x * s - p, y1 = y0 + k, x1 = x0 + k;
                float sum = 0.0f;
                for (ky = 0; ky < k; ky++)
                    for (kx = 0; kx < k; kx++) {
                        int iy = y0 + ky, ix = x0 + kx;
                        if (iy >= 0 && iy < h && ix >= 0 && ix < w) sum += in[(i * h + iy) * w + ix];
                    }
                if (y1 > h + p) y1 = h + p;
                if (x1 > w + p) x1 = w + p;
                out[(i * oh + y) * ow + x] = sum / (float)((y1 - y0) * (x1 - x0));
            }
}

/* @helper gap */
/* in (c,plane) -> out (c): global average pooling */
static void gap(const float *in, float *out, int c, int plane)
{
    int i, j;
    for (i = 0; i < c; i++) {
        float sum = 0.0f;
        for (j = 0; j < plane; j++) sum += in[i * plane + j];
        out[i] = sum / (float)plane;
    }
}

/* @helper log_softmax */
/* in place: x - max - log(sum(exp(x - max))) */
static void log_softmax(float *x, int n)
{
    int i;
    float mx = x[0], lse;
    double sum = 0.0;
    for (i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    for (i = 0; i < n; i++) sum += exp((double)(x[i] - mx));
    lse = mx + (float)log(sum);
    for (i = 0; i < n; i++) x[i] = x[i] - lse;
}

/* @helper copy */
/* out (n) = in (n): a value that an in-place helper is about to change while a later layer
 * still reads it (a branch) */
static void copy(const float *in, float *out, int n)
{
    int i;
    for (i = 0; i < n; i++) out[i] = in[i];
}

/* @helper add */
/* k >= 2 inputs of n values -> out (n) = ((in[0] + in[1]) + in[2]) + ..., in that order
 * (PyTorch's a + b + c); then ReLU when relu. out may be one of the inputs. */
static void add(const float *const *in, int k, float *out, int n, int relu)
{
    int i, j;
    for (i = 0; i < n; i++) {
        float v = in[0][i] + in[1][i];
        for (j = 2; j < k; j++) v += in[j][i];
        out[i] = (relu && v < 0.0f) ? 0.0f : v;
    }
}

/* @helper concat */
/* k inputs (c_j,h,w) of size[j] = c_j*h*w values -> out (sum c_j, h, w): in[0], then in[1], ...
 * (a concatenation along channels) */
static void concat(const float *const *in, const int *size, int k, float *out)
{
    int i, j;
    for (j = 0; j < k; j++) {
        for (i = 0; i < size[j]; i++) out[i] = in[j][i];
        out += size[j];
    }
}

/* @end */
/* Not copied: references every helper, so that this file compiles on its own with
 * -Wunused-function on (tests/test_export_c_runtime.c includes it too). */
void (*const export_c_runtime_float[])(void) = {
    (void (*)(void))conv2d, (void (*)(void))conv2d_grouped, (void (*)(void))linear, (void (*)(void))affine,
    (void (*)(void))relu, (void (*)(void))relu6, (void (*)(void))leaky_relu, (void (*)(void))maxpool, (void (*)(void))avgpool, (void (*)(void))gap, (void (*)(void))log_softmax,
    (void (*)(void))copy, (void (*)(void))add, (void (*)(void))concat,
};
