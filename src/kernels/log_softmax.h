/* log_softmax of one row of scores, shared by the log_softmax layer (layers/simple.c) and the
 * web runtime's forward pass (io/web_model.c, also built for wasm32: plain C, <math.h> only). */
#ifndef CN_KERNELS_LOG_SOFTMAX_H
#define CN_KERNELS_LOG_SOFTMAX_H
#include <math.h>
#include <stddef.h>

// x (n) -> y (n), n >= 1 (y may be x): y = x - max - log(sum(exp(x - max))), the sum in
// double as PyTorch's CPU kernel accumulates it
static inline void cn_log_softmax_row(const float *x, float *y, size_t n) {
    float mx = x[0];
    for (size_t i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += exp((double)(x[i] - mx));
    float lse = mx + (float)log(sum);
    for (size_t i = 0; i < n; i++) y[i] = x[i] - lse;
}

#endif
