/* dropout (inverted), flatten and log_softmax. */
#include "layers/layers.h"
#include "kernels/kernels.h"
#include "kernels/log_softmax.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

uint64_t cn_dropout_stream(uint64_t batch_seed, int layer, int sample) {
    return batch_seed ^ ((uint64_t)(layer + 1) * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)(sample + 1) * 0xD1B54A32D192ED03ull);
}

cn_dropout_params cn_dropout_params_of(const cn_layer *l) {
    /* P(drop) = ceil(p * 2^32) / 2^32, within 2.4e-10 of p (p < 1). */
    return (cn_dropout_params){ .threshold = (uint32_t)ceil((double)l->dropout_p * 4294967296.0),
                                .keep_scale = 1.0f / (1.0f - l->dropout_p) };
}

/* (in eval mode the plan passes the input through without calling this; in training a
 * batch norm before it may apply it: exec/plan.h) */
void cn_dropout_forward(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    int size = cn_shape_size(l->in);
    if (l->dropout_p == 0.0f) {
        memcpy(c->out, c->in, (size_t)c->batch * size * sizeof(float));
        memset(c->mask, 1, (size_t)c->batch * size);
        return;
    }
    cn_dropout_params d = cn_dropout_params_of(l);
    int C = l->in.c, plane = size / C;
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int b = 0; b < c->batch; b++) {
        size_t o = (size_t)b * size;
        uint64_t stream = cn_dropout_stream(c->dropout_seed, c->index, c->first + b);   /* sample's index in the batch */
        if (!l->channel_dropout) {
            cn_dropout_forward_kernel(c->in + o, c->out + o, c->mask + o, size, stream, 0, d.threshold, d.keep_scale, NULL);
            continue;
        }
        /* dropout2d: channel ch's keep bit is the element mask's bit ch of the sample's stream */
        for (int ch = 0; ch < C; ch++) {
            float one = 1.0f, unused;
            uint8_t keep;
            cn_dropout_forward_kernel(&one, &unused, &keep, 1, stream, (uint32_t)ch, d.threshold, 1.0f, NULL);
            size_t p = o + (size_t)ch * plane;
            memset(c->mask + p, keep, (size_t)plane);
            for (int i = 0; i < plane; i++) c->out[p + i] = c->in[p + i] * ((float)keep * d.keep_scale);   /* x * noise */
        }
    }
}

// dx = dy * mask / (1 - p)
void cn_dropout_backward(const cn_layer_ctx *c) {
    if (!c->grad_in) return;
    int size = cn_shape_size(c->layer->in);
    cn_dropout_params d = cn_dropout_params_of(c->layer);
    #pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int b = 0; b < c->batch; b++) {
        size_t o = (size_t)b * size;
        cn_dropout_backward_kernel(c->grad_out + o, c->mask + o, c->grad_in + o, size, d.keep_scale);
    }
}

void cn_flatten_forward(const cn_layer_ctx *c) {
    memcpy(c->out, c->in, (size_t)c->batch * cn_shape_size(c->layer->in) * sizeof(float));
}

void cn_flatten_backward(const cn_layer_ctx *c) {
    if (c->grad_in) memcpy(c->grad_in, c->grad_out, (size_t)c->batch * cn_shape_size(c->layer->in) * sizeof(float));
}

// in (B,N) -> out (B,N): x - max - log(sum(exp(x - max)))
void cn_log_softmax_forward(const cn_layer_ctx *c) {
    int n = c->layer->in.c;
    for (int b = 0; b < c->batch; b++) cn_log_softmax_row(c->in + (size_t)b * n, c->out + (size_t)b * n, (size_t)n);
}

// dx = dy - softmax * sum(dy)
void cn_log_softmax_backward(const cn_layer_ctx *c) {
    if (!c->grad_in) return;
    int n = c->layer->in.c;
    for (int b = 0; b < c->batch; b++) {
        const float *y = c->out + (size_t)b * n, *dy = c->grad_out + (size_t)b * n;
        float *dx = c->grad_in + (size_t)b * n;
        double sum = 0.0;
        for (int i = 0; i < n; i++) sum += dy[i];
        for (int i = 0; i < n; i++) dx[i] = dy[i] - expf(y[i]) * (float)sum;
    }
}
