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
