/* maxpool2d, avgpool2d (count_include_pad, floor mode) and global average pooling. */
#include "layers/layers.h"
#include "kernels/kernels.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

static bool is_pool2x2(const cn_layer *l) {
    return l->kernel == 2 && l->stride == 2 && l->pad == 0 && l->out.h == l->in.h / 2 && l->out.w == l->in.w / 2 &&
           l->in.w <= CN_EPILOGUE_MAX_WIDTH;
}

/* 2x2 stride-2 windows (every preset): planes split over threads; eval mode keeps no argmax. */
static void maxpool2x2_forward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    int H = l->in.h, W = l->in.w, outs = l->out.h * l->out.w, planes = c->batch * l->in.c;
    int32_t *argmax = c->training ? (int32_t *)c->saved : NULL;
    #pragma omp parallel num_threads(c->threads)
    {
        int T = omp_get_num_threads(), t = omp_get_thread_num();
        int p0 = (int)((long)planes * t / T), p1 = (int)((long)planes * (t + 1) / T);
        cn_maxpool2x2_forward(c->in + (size_t)p0 * H * W, p1 - p0, H, W, c->out + (size_t)p0 * outs,
                              argmax ? argmax + (size_t)p0 * outs : NULL);
    }
}

// in (B,C,H,W) -> out (B,C,OH,OW); saved: argmax (int32 index into the input plane) per output
void cn_maxpool2d_forward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    if (is_pool2x2(l)) { maxpool2x2_forward(c); return; }
    int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, planes = c->batch * l->in.c;
    int32_t *argmax = (int32_t *)c->saved;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int pl = 0; pl < planes; pl++) {
        const float *x = c->in + (size_t)pl * H * W;
        float *y = c->out + (size_t)pl * OH * OW;
        int32_t *am = argmax + (size_t)pl * OH * OW;
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                float best = -INFINITY;
                int best_index = -1;
                for (int ky = 0; ky < l->kernel; ky++) {
                    int iy = oy * l->stride - l->pad + ky;
                    if (iy < 0 || iy >= H) continue;
                    for (int kx = 0; kx < l->kernel; kx++) {
                        int ix = ox * l->stride - l->pad + kx;
                        if (ix < 0 || ix >= W) continue;
                        float v = x[iy * W + ix];
                        /* first maximum wins; NaN propagates, as in PyTorch */
                        if (v > best || isnan(v) || best_index < 0) { best = v; best_index = iy * W + ix; if (isnan(v)) goto done; }
                    }
                }
            done:
                y[oy * OW + ox] = best;
                am[oy * OW + ox] = best_index;
            }
    }
}

void cn_maxpool2d_backward(const cn_layer_ctx *c) {
    if (!c->grad_in) return;
    const cn_layer *l = c->layer;
    int H = l->in.h, W = l->in.w, outs = l->out.h * l->out.w, planes = c->batch * l->in.c;
    const int32_t *argmax = (const int32_t *)c->saved;
    bool pool2x2 = is_pool2x2(l);
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int pl = 0; pl < planes; pl++) {
        float *dx = c->grad_in + (size_t)pl * H * W;
        const float *dy = c->grad_out + (size_t)pl * outs;
        const int32_t *am = argmax + (size_t)pl * outs;
        if (pool2x2) { cn_pool2x2_grad(dy, NULL, am, H, W, dx); continue; }   /* the same sums, without a scatter */
        memset(dx, 0, (size_t)H * W * sizeof *dx);
        for (int o = 0; o < outs; o++) dx[am[o]] += dy[o];
    }
}

/* Divisor of an average-pool window with count_include_pad: the window clipped
 * to the padded input. */
static int avg_divisor(const cn_layer *l, int oy, int ox) {
    int y0 = oy * l->stride - l->pad, x0 = ox * l->stride - l->pad;
    int y1 = y0 + l->kernel, x1 = x0 + l->kernel;
    if (y1 > l->in.h + l->pad) y1 = l->in.h + l->pad;
    if (x1 > l->in.w + l->pad) x1 = l->in.w + l->pad;
    return (y1 - y0) * (x1 - x0);
}

void cn_avgpool2d_forward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, planes = c->batch * l->in.c;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int pl = 0; pl < planes; pl++) {
        const float *x = c->in + (size_t)pl * H * W;
        float *y = c->out + (size_t)pl * OH * OW;
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                float sum = 0.0f;
                for (int ky = 0; ky < l->kernel; ky++) {
                    int iy = oy * l->stride - l->pad + ky;
                    if (iy < 0 || iy >= H) continue;
                    for (int kx = 0; kx < l->kernel; kx++) {
                        int ix = ox * l->stride - l->pad + kx;
                        if (ix >= 0 && ix < W) sum += x[iy * W + ix];
                    }
                }
                y[oy * OW + ox] = sum / (float)avg_divisor(l, oy, ox);
            }
    }
}

void cn_avgpool2d_backward(const cn_layer_ctx *c) {
    if (!c->grad_in) return;
    const cn_layer *l = c->layer;
    int H = l->in.h, W = l->in.w, OH = l->out.h, OW = l->out.w, planes = c->batch * l->in.c;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int pl = 0; pl < planes; pl++) {
        float *dx = c->grad_in + (size_t)pl * H * W;
        const float *dy = c->grad_out + (size_t)pl * OH * OW;
        memset(dx, 0, (size_t)H * W * sizeof *dx);
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                float g = dy[oy * OW + ox] / (float)avg_divisor(l, oy, ox);
                for (int ky = 0; ky < l->kernel; ky++) {
                    int iy = oy * l->stride - l->pad + ky;
                    if (iy < 0 || iy >= H) continue;
                    for (int kx = 0; kx < l->kernel; kx++) {
                        int ix = ox * l->stride - l->pad + kx;
                        if (ix >= 0 && ix < W) dx[iy * W + ix] += g;
                    }
                }
            }
    }
}

// in (B,C,H,W) -> out (B,C,1,1)
void cn_gap_forward(const cn_layer_ctx *c) {
    int plane = c->layer->in.h * c->layer->in.w, planes = c->batch * c->layer->in.c;
    #pragma omp parallel num_threads(c->threads)
    {
        int p0, p1;
        cn_thread_range(planes, omp_get_thread_num(), omp_get_num_threads(), &p0, &p1);
        cn_plane_means(c->in + (size_t)p0 * plane, p1 - p0, plane, c->out + p0);
    }
}

void cn_gap_backward(const cn_layer_ctx *c) {
    if (!c->grad_in) return;
    int plane = c->layer->in.h * c->layer->in.w, planes = c->batch * c->layer->in.c;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int pl = 0; pl < planes; pl++) {
        float g = c->grad_out[pl] / (float)plane;
        float *dx = c->grad_in + (size_t)pl * plane;
        for (int p = 0; p < plane; p++) dx[p] = g;
    }
}
