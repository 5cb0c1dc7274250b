/* Per-layer time of one training (or inference) step, to see where a model's time goes.
 *
 *   profile [--threads N] [--batch N] [--iters N] [--eval] [--bf16] [--kernels avx512|avx2|generic] MODEL
 *
 * Runs the model's layers one by one (cn_session_forward_layer/backward_layer),
 * on random MNIST-like data, and prints for each layer the minimum over the
 * iterations of its forward and backward time, with the GFLOP/s of convolution
 * and linear layers (2 x MACs forward, 4 x MACs backward). With one thread the
 * times are the thread's CPU time (robust on a busy machine), with more the wall
 * time. Layers fused into an earlier one (layers/fusion.h) show about 0. --bf16 trains in
 * mixed precision (CN_SESSION_BF16, `convnet train --precision bf16`; needs AVX512_BF16). */
#include "convnet.h"
#include "model.h"
#include "loss.h"
#include "exec/session.h"
#include "kernels/kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int use_wall_clock;

static double now(void) {
    struct timespec ts;
    clock_gettime(use_wall_clock ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double min_of(double a, double b) { return a < b ? a : b; }

int main(int argc, char **argv) {
    int threads = 1, batch = 128, iters = 30, eval = 0, bf16 = 0;
    const char *name = NULL, *kernels = NULL;
    for (int i = 1; i < argc; i++) {
        int more = i + 1 < argc;
        if (!strcmp(argv[i], "--threads") && more) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && more) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && more) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kernels") && more) kernels = argv[++i];
        else if (!strcmp(argv[i], "--eval")) eval = 1;
        else if (!strcmp(argv[i], "--bf16")) bf16 = 1;
        else if (argv[i][0] != '-' && !name) name = argv[i];
        else name = NULL, i = argc;
    }
    if (!name || threads < 1 || batch < 1 || iters < 1) {
        fprintf(stderr, "usage: profile [--threads N] [--batch N] [--iters N] [--eval] [--bf16] [--kernels SET] MODEL\n");
        return 2;
    }
    if (kernels && cn_kernels_select(kernels) != 0) {
        fprintf(stderr, "profile: kernel set '%s' is unknown or unsupported here\n", kernels);
        return 2;
    }
    cn_model *m;
    cn_session *s = NULL;
    if (cn_model_load_spec(name, 1, &m) != CN_OK || cn_session_create(m, batch, threads, bf16 ? CN_SESSION_BF16 : 0, &s) != CN_OK) {
        fprintf(stderr, "profile: %s: %s\n", name, cn_last_error());
        return 1;
    }
    use_wall_clock = threads > 1;
    cn_session_set_training(s, !eval);
    int L = m->num_layers, classes = cn_model_num_classes(m);
    size_t in_size = (size_t)batch * cn_shape_size(m->input);
    float *images = malloc(in_size * sizeof *images);
    int *labels = malloc((size_t)batch * sizeof *labels);
    double *fwd = malloc((size_t)L * sizeof *fwd), *bwd = malloc((size_t)L * sizeof *bwd);
    if (!images || !labels || !fwd || !bwd) return 1;
    cn_rng rng;
    cn_rng_seed(&rng, 42);
    for (size_t i = 0; i < in_size; i++)
        images[i] = cn_rng_uniform(&rng) < 0.8f ? -0.4242f : 2.8215f * cn_rng_uniform(&rng);
    for (int b = 0; b < batch; b++) labels[b] = (int)cn_rng_below(&rng, (uint64_t)classes);
    for (int i = 0; i < L; i++) fwd[i] = bwd[i] = 1e30;
    int log_probs = cn_model_outputs_log_probs(m);

    double best_step = 1e30;
    for (int it = 0; it < iters; it++) {
        double step = now();
        memcpy(cn_session_value(s, 0), images, in_size * sizeof *images);
        cn_session_set_dropout_seed(s, cn_rng_next(&rng));
        for (int i = 0; i < L; i++) {
            double t = now();
            cn_session_forward_layer(s, i, batch);
            fwd[i] = min_of(fwd[i], now() - t);
        }
        if (!eval) {
            cn_loss_batch(cn_session_value(s, L), labels, batch, classes, log_probs, 0.0f, cn_session_value_grad(s), NULL);
            for (int i = L - 1; i >= 0; i--) {
                double t = now();
                cn_session_backward_layer(s, i, batch);
                bwd[i] = min_of(bwd[i], now() - t);
            }
        }
        best_step = min_of(best_step, now() - step);
    }

    printf("%s: %s%s, kernels %s, batch %d, %d thread%s, min %s ms over %d iterations\n", name,
           eval ? "inference" : "training", bf16 ? " (bf16)" : "", cn_kernels()->name, batch, threads, threads > 1 ? "s" : "",
           use_wall_clock ? "wall" : "thread-CPU", iters);
    double sum_f = 0, sum_b = 0;
    for (int i = 0; i < L; i++) {
        const cn_layer *l = &m->layers[i];
        sum_f += fwd[i];
        printf("%3d %-12s %4dx%3dx%3d -> %4dx%3dx%3d  fwd %8.3f", i, cn_layer_kind_name(l->kind), l->in.c, l->in.h,
               l->in.w, l->out.c, l->out.h, l->out.w, fwd[i] * 1e3);
        if (!eval) { sum_b += bwd[i]; printf("  bwd %8.3f", bwd[i] * 1e3); }
        if (l->macs) {
            printf("   %6.1f", 2.0 * l->macs * batch / fwd[i] * 1e-9);
            if (!eval) printf(" / %6.1f", 4.0 * l->macs * batch / bwd[i] * 1e-9);
            printf(" GFLOP/s");
        }
        printf("\n");
    }
    double flops = (eval ? 2.0 : 6.0) * (double)cn_model_macs(m) * batch;
    printf("layers: fwd %.3f + bwd %.3f = %.3f ms; best whole step %.3f ms: %.0f img/s, %.1f GFLOP/s\n", sum_f * 1e3,
           sum_b * 1e3, (sum_f + sum_b) * 1e3, best_step * 1e3, batch / best_step, flops / best_step * 1e-9);
    free(images); free(labels); free(fwd); free(bwd);
    cn_session_free(s);
    cn_model_free(m);
    return 0;
}
