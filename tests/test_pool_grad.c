/* cn_pool2x2_grad (kernels/eltwise.c), the 2x2 max-pool's input gradient written row by row,
 * against the zero-and-scatter sums it replaces: the max-pool backward (dx = 0, dx[argmax] +=
 * g) and, with a relu before the pool, cn_chain_grad. Bit for bit, over even and odd plane
 * sizes (rows of windows shorter than, equal to and longer than one vector step, with and
 * without a partial last step), winners anywhere in their windows, and gradients and outputs
 * with zeros, negative zeros and NaNs. The destination starts as garbage: every input pixel
 * must be written. */
#include "harness.h"
#include "kernels/kernels.h"
#include "core/rng.h"
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

int main(void) {
    RUN(pool2x2_grad_matches_scatter);
    return test_summary();
}
