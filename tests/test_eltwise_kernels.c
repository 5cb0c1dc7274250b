/* Element-wise kernels (kernels/eltwise.c) against plain scalar loops, bit for bit.
 *
 * cn_pool2x2_grad, the 2x2 max-pool's input gradient written row by row,
 * against the zero-and-scatter sums it replaces: the max-pool backward (dx = 0, dx[argmax] +=
 * g) and, with a relu before the pool, cn_chain_grad. Bit for bit, over even and odd plane
 * sizes (rows of windows shorter than, equal to and longer than one vector step, with and
 * without a partial last step), winners anywhere in their windows, and gradients and outputs
 * with zeros, negative zeros and NaNs. The destination starts as garbage: every input pixel
 * must be written. */
#include "harness.h"
#include "kernels/kernels.h"
#include "core/rng.h"
#include <stdbool.h>
#include <stdint.h>

enum { MAX_SIDE = 41 };

static void fill_values(float *x, int n, cn_rng *rng) {
    for (int i = 0; i < n; i++) {
        float u = cn_rng_uniform(rng);
        x[i] = u < 0.1f ? 0.0f : u < 0.2f ? -0.0f : u < 0.23f ? NAN : 4.0f * cn_rng_uniform(rng) - 2.0f;
    }
}

/* One case; returns 1 when the kernel matches the scatter bit for bit. */
static int check_case(int h, int w, int relu, cn_rng *rng) {
    static float g[MAX_SIDE * MAX_SIDE], y[MAX_SIDE * MAX_SIDE], dx[MAX_SIDE * MAX_SIDE], ref[MAX_SIDE * MAX_SIDE];
    static int32_t argmax[MAX_SIDE * MAX_SIDE];
    int oh = h / 2, ow = w / 2, outs = oh * ow;
    fill_values(g, outs, rng);
    fill_values(y, outs, rng);
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            int k = (int)(cn_rng_uniform(rng) * 4.0f) & 3;
            argmax[oy * ow + ox] = (2 * oy + k / 2) * w + 2 * ox + k % 2;
        }
    if (relu) {
        cn_chain_grad(g, y, argmax, outs, h * w, ref);
    } else {
        memset(ref, 0, (size_t)h * w * sizeof *ref);
        for (int o = 0; o < outs; o++) ref[argmax[o]] += g[o];
    }
    memset(dx, 0xA5, sizeof dx);
    cn_pool2x2_grad(g, relu ? y : NULL, argmax, h, w, dx);
    if (memcmp(dx, ref, (size_t)h * w * sizeof *dx) == 0) return 1;
    fprintf(stderr, "  %dx%d relu %d differs\n", h, w, relu);
    return 0;
}

TEST(pool2x2_grad_matches_scatter) {
    static const int sides[] = { 2, 3, 4, 5, 14, 15, 16, 17, 26, 28, 31, 32, 33, 41 };
    int n = (int)(sizeof sides / sizeof sides[0]), bad = 0, cases = 0;
    cn_rng rng;
    cn_rng_seed(&rng, 3);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            for (int relu = 0; relu < 2; relu++, cases++) bad += !check_case(sides[i], sides[j], relu, &rng);
    CHECK_MSG(bad == 0, "%d of %d cases differ", bad, cases);
}

/* relu6 and leaky_relu (forward and backward) against their formulas (kernels.h), on lengths
 * around the vector widths (tails) and in place, with the edge values: +-0, 6, just under and
 * over 6, negatives, NaN, infinities and a denormal. */
TEST(activations_match_formulas) {
    enum { N = 70 };
    static const float edges[] = { 0.0f, -0.0f, 6.0f, 5.9999995f, 6.0000005f, -1.5f, 3.25f, NAN, INFINITY, -INFINITY,
                                   1e-40f, -1e-40f, 100.0f };
    float x[N], dy[N], y[N], ref[N], in_place[N];
    cn_rng rng;
    cn_rng_seed(&rng, 5);
    for (int i = 0; i < N; i++) {
        x[i] = i < (int)(sizeof edges / sizeof edges[0]) ? edges[i] : 16.0f * cn_rng_uniform(&rng) - 8.0f;
        dy[i] = 2.0f * cn_rng_uniform(&rng) - 1.0f;
    }
    const float slope = 0.1f;
    int bad = 0;
    for (int n = 1; n <= N; n++)
        for (int kind = 0; kind < 4; kind++) {
            for (int i = 0; i < n; i++) {
                float v = x[i] > 0.0f ? x[i] : 0.0f;
                ref[i] = kind == 0 ? (v < 6.0f ? v : 6.0f)
                       : kind == 1 ? (x[i] > 0.0f && x[i] < 6.0f ? dy[i] : 0.0f)
                       : kind == 2 ? (x[i] > 0.0f ? x[i] : x[i] * slope)
                                   : (x[i] > 0.0f ? dy[i] : dy[i] * slope);
            }
            memcpy(in_place, kind % 2 ? dy : x, sizeof in_place);
            switch (kind) {
            case 0:
                cn_relu6_forward_kernel(x, y, (size_t)n);
                cn_relu6_forward_kernel(in_place, in_place, (size_t)n);
                break;
            case 1:
                cn_relu6_backward_kernel(x, dy, y, (size_t)n);
                cn_relu6_backward_kernel(x, in_place, in_place, (size_t)n);
                break;
            case 2:
                cn_leaky_relu_forward_kernel(x, y, (size_t)n, slope);
                cn_leaky_relu_forward_kernel(in_place, in_place, (size_t)n, slope);
                break;
            default:
                cn_leaky_relu_backward_kernel(x, dy, y, (size_t)n, slope);
                cn_leaky_relu_backward_kernel(x, in_place, in_place, (size_t)n, slope);
            }
            bool same = memcmp(y, ref, (size_t)n * sizeof *y) == 0 && memcmp(in_place, ref, (size_t)n * sizeof *y) == 0;
            if (!same) fprintf(stderr, "  kind %d, n %d differs\n", kind, n);
            bad += !same;
        }
    CHECK_MSG(bad == 0, "%d cases differ", bad);
}

int main(void) {
    RUN(pool2x2_grad_matches_scatter);
    RUN(activations_match_formulas);
    return test_summary();
}
