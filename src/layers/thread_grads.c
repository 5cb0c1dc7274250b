/* Per-thread partial weight gradients, reduced in a fixed order so results
 * are bit-identical run to run for a given thread count. */
#include "layers/layers.h"
#include <string.h>

void cn_thread_grads_zero(const cn_layer_ctx *c, size_t offset, size_t count) {
    for (int t = 0; t < c->threads; t++) memset(cn_thread_grads(c, t) + offset, 0, count * sizeof(float));
}

void cn_thread_grads_reduce(const cn_layer_ctx *c, size_t offset, size_t count) {
    float *dst = c->grads + offset;
    memcpy(dst, cn_thread_grads(c, 0) + offset, count * sizeof(float));
    for (int t = 1; t < c->threads; t++) {
        const float *src = cn_thread_grads(c, t) + offset;
        for (size_t i = 0; i < count; i++) dst[i] += src[i];
    }
}

void cn_per_sample_backward(const cn_layer_ctx *c, cn_sample_backward_fn fn, const void *arg) {
    cn_per_sample_backward_with(c, &(cn_sample_backward){ .sample = fn }, arg);
}

void cn_per_sample_backward_with(const cn_layer_ctx *c, const cn_sample_backward *pass, const void *arg) {
    const cn_layer *l = c->layer;
    cn_thread_grads_zero(c, l->weight_offset, l->weight_count);
    if (l->bias_count) cn_thread_grads_zero(c, l->bias_offset, l->bias_count);
    #pragma omp parallel num_threads(c->threads)
    {
        /* contiguous shares, as a session's team splits the batch: the same sums either way */
        int T = omp_get_num_threads(), t = omp_get_thread_num(), b0, b1;
        cn_thread_range(c->batch, t, T, &b0, &b1);
        float *partial = cn_thread_grads(c, c->threads > 1 ? t : 0), *scratch = cn_thread_scratch(c);
        if (pass->prepare) pass->prepare(c, scratch, arg);
        for (int b = b0; b < b1; b++) pass->sample(c, b, partial, scratch, arg);
        if (pass->finish) pass->finish(c, partial, scratch, arg);
    }
    cn_thread_grads_reduce(c, l->weight_offset, l->weight_count);
    if (l->bias_count) cn_thread_grads_reduce(c, l->bias_offset, l->bias_count);
}
