/* Shared by the tests of the fast convolution paths (test_depthwise, test_grouped_dilated_conv):
 * random fills, the agreement bound, and one training step of a model on its fast path against
 * the im2col reference path (CN_SESSION_REFERENCE_CONV). */
#ifndef CONV_VS_REFERENCE_H
#define CONV_VS_REFERENCE_H

#include "harness.h"
#include "model.h"
#include "exec/session.h"
#include "core/rng.h"

static inline void fill(float *x, size_t n, cn_rng *rng) {
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * cn_rng_uniform(rng) - 1.0f;
}

/* |a - b| <= 1e-5 * (1 + |b|) everywhere: the fast kernels sum the taps in another order. */
static inline bool close_all(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-5f * (1.0f + fabsf(b[i])))) return false;
    return true;
}

/* One training step of m (inputs, output gradient and parameters drawn from `seed`), fast path
 * against reference, `threads` threads, batch `batch`: the output, the running statistics the
 * forward pass leaves (both from the same start), the input gradient and every parameter gradient
 * must agree. 1 when they do; otherwise says which part differs, naming `what`. */
static inline int fast_step_matches_reference(cn_model *m, int batch, int threads, uint64_t seed, const char *what) {
    cn_session *fast = NULL, *ref = NULL;
    int ok = cn_session_create(m, batch, threads, 0, &fast) == CN_OK &&
             cn_session_create(m, batch, threads, CN_SESSION_REFERENCE_CONV, &ref) == CN_OK;
    size_t in_n = (size_t)batch * cn_shape_size(m->input), out_n = (size_t)batch * cn_model_num_classes(m);
    size_t nb = m->num_buffers;
    float *x = malloc(in_n * sizeof *x), *dy = malloc(out_n * sizeof *dy), *y = malloc(out_n * sizeof *y);
    float *dx_f = malloc(in_n * sizeof *dx_f), *dx_r = malloc(in_n * sizeof *dx_r), *g = malloc(m->num_params * sizeof *g);
    float *buffers0 = malloc((nb + 1) * sizeof *buffers0), *buffers_ref = malloc((nb + 1) * sizeof *buffers_ref);
    cn_rng rng;
    cn_rng_seed(&rng, seed);
    fill(x, in_n, &rng);
    fill(dy, out_n, &rng);
    fill(m->params, m->num_params, &rng);
    memcpy(buffers0, m->buffers, nb * sizeof *buffers0);
    if (ok) {
        cn_session_set_training(fast, true);
        cn_session_set_training(ref, true);
        memcpy(y, cn_session_forward(ref, x, batch, NULL), out_n * sizeof *y);
        memcpy(buffers_ref, m->buffers, nb * sizeof *buffers_ref);
        memcpy(m->buffers, buffers0, nb * sizeof *buffers0);
        ok = close_all(cn_session_forward(fast, x, batch, NULL), y, out_n) && close_all(m->buffers, buffers_ref, nb);
        if (!ok) fprintf(stderr, "  %s: forward differs\n", what);
    }
    if (ok) {
        cn_session_backward_input(ref, dy, batch, dx_r);
        memcpy(g, cn_session_grads(ref), m->num_params * sizeof *g);
        cn_session_backward_input(fast, dy, batch, dx_f);
        ok = close_all(dx_f, dx_r, in_n) && close_all(cn_session_grads(fast), g, m->num_params);
        if (!ok) fprintf(stderr, "  %s: gradients differ\n", what);
    }
    free(x); free(dy); free(y); free(dx_f); free(dx_r); free(g); free(buffers0); free(buffers_ref);
    cn_session_free(fast);
    cn_session_free(ref);
    return ok;
}

#endif
