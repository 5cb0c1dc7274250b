/* batchnorm2d with PyTorch semantics: training normalises with the batch's
 * biased variance and updates running_mean/running_var (unbiased variance)
 * with momentum; eval uses the running statistics. A following relu (and 2x2
 * max-pool) is fused in (see fusion.h).
 *
 * Samples are split over threads, or each team worker (exec/session.c) runs its own
 * share. Sums are taken in double per (sample, channel) plane (c->plane_stats): in
 * training the forward's {sum, sum of squared deviations from the plane's mean}
 * (or from the conv pass, fusion.h), combined in sample order (Chan et al.) into
 * the batch mean and variance; the backward's {sum dy, sum dy * xhat}, added in
 * sample order. The threads meet once per pass, when every plane's sums are in;
 * the results do not depend on the number of threads. Data-parallel training over
 * several processes (c->exchange, exec/exchange.h) gathers the other ranks' per-plane
 * sums right there, before they are combined (batch_statistics, backward_coefficients),
 * and gets the same results (SyncBatchNorm). The statistics combine the samples
 * stats_first .. stats_first+stats_batch-1 of the batch: all of it, or (--local-bn)
 * this process's own.
 * saved: mean, invstd, then the backward coefficients k, mean_dy, mean_dy_xhat (C each). */
#include "layers/layers.h"
#include "kernels/kernels.h"
#include <math.h>
#include <string.h>

/* Output of a BN-led chain: the chain's last layer's output and, with a pool, its argmax. */
typedef struct {
    cn_chain chain;
    float *out;             /* (B, C, out_plane) */
    int32_t *argmax;        /* (B, C, out_plane) when pooling in training, else NULL */
    float *x_win;           /* with argmax: the BN input at each winner, kept in BN's unused output slot */
    float *factor;          /* chain.dropout: the dropout's keep * scale at each winner, in the same slot
                               after x_win and the handoff's gradient copy (B, C, out_plane); else NULL */
    int out_plane;
} bn_target;

static bn_target bn_target_of(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    bn_target t = { .chain = c->step->chain, .out = c->out, .argmax = c->argmax };
    t.out_plane = t.chain.pool ? (l->in.h / 2) * (l->in.w / 2) : l->in.h * l->in.w;
    t.x_win = c->own_out;     /* = cn_bn_handoff_of(c).x_win */
    /* the slot holds B * C * plane >= 4 * B * C * out_plane floats */
    t.factor = t.chain.dropout ? t.x_win + 2 * (size_t)c->batch * l->in.c * t.out_plane : NULL;
    return t;
}

cn_bn_handoff cn_bn_handoff_of(const cn_layer_ctx *b) {
    const cn_layer *l = b->layer;
    cn_bn_handoff h;
    h.channels = l->in.c;
    h.plane = l->in.h * l->in.w;
    h.pooled = (l->in.h / 2) * (l->in.w / 2);
    size_t pooled_all = (size_t)b->batch * h.channels * h.pooled;
    h.x = b->in;
    h.x_win = b->own_out;
    h.grad = h.x_win + pooled_all;
    h.pooled_out = b->out;
    h.argmax = b->argmax;
    h.mean = b->saved;                  /* saved state: see the top of this file */
    h.invstd = h.mean + h.channels;
    h.k = h.invstd + h.channels;
    h.mean_dy = h.k + h.channels;
    h.mean_dy_xhat = h.mean_dy + h.channels;
    return h;
}

/* ---- the team of threads ----
 * body(c, b0, b1) runs on each thread's samples [b0, b1): a worker or a 1-thread call runs
 * all of c->batch, otherwise the layer's own threads split them. team_barrier() waits for
 * the team: the session's workers (exec/session.c), or the layer's own threads. */
static void run_split(const cn_layer_ctx *c, void (*body)(const cn_layer_ctx *, int, int)) {
    if (c->threads == 1) { body(c, 0, c->batch); return; }
    #pragma omp parallel num_threads(c->threads)
    {
        int b0, b1;
        cn_thread_range(c->batch, omp_get_thread_num(), omp_get_num_threads(), &b0, &b1);
        body(c, b0, b1);
    }
}

static void team_barrier(void) {
    #pragma omp barrier
}


/* The per-channel state (saved): a worker has its own copy and writes it; the threads of
 * a layer's own team share the session's, which thread 0 writes while the others wait. */
static bool writes_state(const cn_layer_ctx *c) { return c->in_team || omp_get_thread_num() == 0; }
static void state_written(const cn_layer_ctx *c) {
    if (!c->in_team) team_barrier();
}

/* Thread 0 of the team: updates what is shared (running statistics, gradients). */
static bool team_leader(void) { return omp_get_thread_num() == 0; }

/* Gradients of gamma and beta: the whole batch's sums are written once, by thread 0 of
 * the team and, when the sums are gathered from several processes, of rank 0 only (the
 * ranks' gradients are summed). */
static bool writes_shared_grads(const cn_layer_ctx *c) {
    return team_leader() && (!c->exchange || c->exchange->rank == 0);
}

/* Once every plane's sums of this process are in (after a team barrier): thread 0 gathers
 * the other processes' rows (one per sample: C pairs) while the team waits. */
static void gather_plane_sums(const cn_layer_ctx *c) {
    if (!c->exchange) return;
    if (team_leader()) c->exchange->gather_rows(c->exchange, c->plane_stats, c->team_batch, 2 * (size_t)c->layer->in.c);
    team_barrier();
}

/* ---- forward ---- */

/* Batch mean and sum of squared deviations of channel ch from the per-plane statistics
 * of the whole batch (B samples), combined in sample order (Chan et al.). */
static void channel_stats(const double *stats, int B, int C, int plane, int ch, double *mean, double *sq) {
    double sum = 0.0, m2 = 0.0;
    for (int b = 0; b < B; b++) sum += stats[2 * ((size_t)b * C + ch)];
    *mean = sum / ((double)B * plane);
    for (int b = 0; b < B; b++) {
        const double *st = stats + 2 * ((size_t)b * C + ch);
        double d = st[0] / plane - *mean;
        m2 += st[1] + plane * d * d;
    }
    *sq = m2;
}

/* Batch mean and invstd into saved; thread 0 updates the running statistics. */
static void batch_statistics(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    int C = l->in.c, plane = l->in.h * l->in.w, B = c->stats_batch;
    float *running_mean = c->running, *running_var = running_mean + C;
    const double *stats = c->plane_stats + 2 * (size_t)c->stats_first * C;
    size_t count = (size_t)B * plane;
    for (int ch = 0; ch < C; ch++) {
        double mu, sq;
        channel_stats(stats, B, C, plane, ch, &mu, &sq);
        double var = sq / (double)count;
        c->saved[ch] = (float)mu;
        c->saved[C + ch] = (float)(1.0 / sqrt(var + l->bn_eps));
        if (!team_leader()) continue;
        double unbiased = count > 1 ? sq / (double)(count - 1) : var;
        float mom = l->bn_momentum;
        running_mean[ch] = (1.0f - mom) * running_mean[ch] + mom * (float)mu;
        running_var[ch] = (1.0f - mom) * running_var[ch] + mom * (float)unbiased;
    }
    if (team_leader()) (*c->batches_tracked)++;
}

static void affine_of(const cn_model *m, const cn_layer *l, int ch, float mean, float invstd, float *scale, float *shift) {
    *scale = m->params[l->weight_offset + ch] * invstd;
    *shift = m->params[l->bias_offset + ch] - mean * *scale;
}

void cn_batchnorm2d_eval_affine(const cn_model *m, const cn_layer *l, int ch, float *scale, float *shift) {
    const float *running_mean = m->buffers + l->buffer_offset, *running_var = running_mean + l->in.c;
    affine_of(m, l, ch, running_mean[ch], 1.0f / sqrtf(running_var[ch] + l->bn_eps), scale, shift);
}

/* y = x * scale + shift of channel ch, from the batch (training) or running statistics. */
void cn_batchnorm2d_channel_affine(const cn_layer_ctx *c, int ch, float *scale, float *shift) {
    if (c->training) affine_of(c->model, c->layer, ch, c->saved[ch], c->saved[c->layer->in.c + ch], scale, shift);
    else cn_batchnorm2d_eval_affine(c->model, c->layer, ch, scale, shift);
}

/* Plane (b, ch) of a BN-led chain: x (H, W) -> BN, relu (and pool: argmax, x_win) into the chain's output. */
static void apply_chain_plane(const cn_layer_ctx *c, const bn_target *t, const cn_kernel_set *ks, const float *x,
                              int b, int ch) {
    const cn_layer *l = c->layer;
    cn_epilogue e = { .h = l->in.h, .w = l->in.w, .x_stride = l->in.w, .affine = 1, .relu = t->chain.relu,
                      .pool = t->chain.pool };
    cn_batchnorm2d_channel_affine(c, ch, &e.scale, &e.shift);
    size_t o = ((size_t)b * l->in.c + ch) * t->out_plane;
    ks->epilogue(&e, x, t->out + o, t->argmax ? t->argmax + o : NULL);
    if (t->argmax) cn_gather(x, t->argmax + o, t->out_plane, t->x_win + o);
}

/* Plane (b, ch) of this call's samples, batch norm then its peer dropout (fusion.h; d: its
 * parameters, stream: sample b's): x (H, W) -> y, and the dropout's keep mask (the same bits as
 * its own pass). */
static void bn_dropout_plane(const cn_layer_ctx *c, cn_dropout_params d, uint64_t stream, const float *x, float *y,
                             int b, int ch) {
    const cn_layer *l = c->layer;
    int plane = l->in.h * l->in.w;
    float affine[2];
    cn_batchnorm2d_channel_affine(c, ch, &affine[0], &affine[1]);
    cn_dropout_forward_kernel(x, y, c->peer->mask + ((size_t)b * l->in.c + ch) * plane, plane, stream,
                              (uint32_t)(ch * plane), d.threshold, d.keep_scale, affine);
}

/* Plane (b, ch) of a BN + dropout + max-pool chain (training): x (H, W) -> BN and the dropout
 * into one plane of scratch, then pooled into the chain's output with its argmax; for the
 * backward, the BN input and the dropout's keep * scale at each winner (x_win, factor). */
static void apply_dropout_pool_plane(const cn_layer_ctx *c, const bn_target *t, const cn_kernel_set *ks,
                                     cn_dropout_params d, uint64_t stream, const float *x, int b, int ch,
                                     float *plane_buf) {
    const cn_layer *l = c->layer;
    int plane = l->in.h * l->in.w;
    size_t i = ((size_t)b * l->in.c + ch) * plane, o = ((size_t)b * l->in.c + ch) * t->out_plane;
    bn_dropout_plane(c, d, stream, x, plane_buf, b, ch);
    cn_epilogue e = { .h = l->in.h, .w = l->in.w, .x_stride = l->in.w, .pool = 1 };
    ks->epilogue(&e, plane_buf, t->out + o, t->argmax + o);
    cn_gather(x, t->argmax + o, t->out_plane, t->x_win + o);
    cn_keep_factors(c->peer->mask + i, plane, d.keep_scale, plane_buf);    /* the pooled plane is out */
    cn_gather(plane_buf, t->argmax + o, t->out_plane, t->factor + o);
}

/* Samples [b0, b1): statistics (training), then BN (+ chain, or + dropout) applied. */
static void forward_samples(const cn_layer_ctx *c, int b0, int b1) {
    const cn_layer *l = c->layer;
    int C = l->in.c, plane = l->in.h * l->in.w;
    size_t stride = (size_t)C * plane;
    if (c->training) {
        double *stats = c->plane_stats + 2 * (size_t)c->first * C;
        if (!c->step->stats_from_conv)
            for (int b = b0; b < b1; b++)
                for (int ch = 0; ch < C; ch++)
                    cn_bn_plane_stat(c->in + b * stride + (size_t)ch * plane, plane, stats + 2 * ((size_t)b * C + ch));
        team_barrier();     /* every plane's statistics are in */
        gather_plane_sums(c);
        if (writes_state(c)) batch_statistics(c);
        state_written(c);
        if (c->step->applied_by_add) return;   /* the add after it applies the map (fusion: exec/plan.c) */
    }
    bn_target t = bn_target_of(c);
    const cn_kernel_set *ks = cn_kernels();
    if (c->step->applies_dropout) {
        /* BN then the dropout (fusion.h): into the dropout's output, or pooled (chain.dropout) */
        cn_dropout_params d = cn_dropout_params_of(c->peer->layer);
        float *plane_buf = cn_thread_scratch(c);
        for (int b = b0; b < b1; b++) {
            uint64_t stream = cn_dropout_stream(c->dropout_seed, c->peer->index, c->first + b);
            for (int ch = 0; ch < C; ch++) {
                size_t o = (size_t)b * stride + (size_t)ch * plane;
                if (t.chain.dropout) apply_dropout_pool_plane(c, &t, ks, d, stream, c->in + o, b, ch, plane_buf);
                else bn_dropout_plane(c, d, stream, c->in + o, c->peer->out + o, b, ch);
            }
        }
    } else {
        for (int b = b0; b < b1; b++)
            for (int ch = 0; ch < C; ch++) {
                const float *x = c->in + b * stride + (size_t)ch * plane;
                if (t.chain.length > 1) { apply_chain_plane(c, &t, ks, x, b, ch); continue; }
                float scale, shift;
                cn_batchnorm2d_channel_affine(c, ch, &scale, &shift);
                cn_slices_affine(x, c->out + b * stride + (size_t)ch * plane, 1, 0, plane, scale, shift);
            }
    }
}

// in (B,C,H,W) -> out (B,C,H,W); saved as above
void cn_batchnorm2d_forward(const cn_layer_ctx *c) {
    run_split(c, forward_samples);
}

/* ---- backward ---- */

/* From the backward's per-plane sums of the whole batch (B samples), added in sample order:
 * the gradients of gamma and beta and the coefficients k, mean_dy, mean_dy_xhat (saved). */
static void backward_coefficients(const cn_layer_ctx *c) {
    const cn_layer *l = c->layer;
    int C = l->in.c, plane = l->in.h * l->in.w, B = c->stats_batch;
    const double *sums = c->plane_stats + 2 * (size_t)c->stats_first * C;
    const float *gamma = c->model->params + l->weight_offset, *invstd = c->saved + C;
    float *k = c->saved + 2 * C, *mean_dy = c->saved + 3 * C, *mean_dy_xhat = c->saved + 4 * C;
    float *dgamma = c->grads + l->weight_offset, *dbeta = c->grads + l->bias_offset;
    double count = (double)B * plane;
    for (int ch = 0; ch < C; ch++) {
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int b = 0; b < B; b++) {
            sum_dy += sums[2 * ((size_t)b * C + ch)];
            sum_dy_xhat += sums[2 * ((size_t)b * C + ch) + 1];
        }
        /* a worker's gradients are summed over the workers: only thread 0's count */
        dgamma[ch] = writes_shared_grads(c) ? (float)sum_dy_xhat : 0.0f;
        dbeta[ch] = writes_shared_grads(c) ? (float)sum_dy : 0.0f;
        k[ch] = gamma[ch] * invstd[ch];
        mean_dy[ch] = (float)(sum_dy / count);
        mean_dy_xhat[ch] = (float)(sum_dy_xhat / count);
    }
}

/* Samples [b0, b1): per-plane sums, then (all planes' sums in) the gradients of gamma and
 * beta and the coefficients, then dx (or, fusion.h, what a conv before computes it from). */
static void backward_samples(const cn_layer_ctx *c, int b0, int b1) {
    const cn_layer *l = c->layer;
    int C = l->in.c, plane = l->in.h * l->in.w;
    size_t stride = (size_t)C * plane;
    bn_target t = bn_target_of(c);
    size_t out_stride = (size_t)C * t.out_plane;
    const float *mean = c->saved, *invstd = c->saved + C;
    const float *k = c->saved + 2 * C, *mean_dy = c->saved + 3 * C, *mean_dy_xhat = c->saved + 4 * C;
    /* the chain's output gradient; with relu fused but no pool, dL/d(BN output) is rebuilt into
     * BN's own output slot (never written by a fused forward) */
    const float *g = c->grad_out;
    const float *dy = t.chain.length == 2 ? c->own_out : c->grad_out;
    double *sums = c->plane_stats;
    for (int b = b0; b < b1; b++)
        for (int ch = 0; ch < C; ch++) {
            double *s = sums + 2 * (((size_t)c->first + b) * C + ch);
            size_t i = b * stride + (size_t)ch * plane, o = b * out_stride + (size_t)ch * t.out_plane;
            if (t.chain.pool) {
                cn_pooled_bn_grad_sums(t.x_win + o, g + o, t.out + o, t.factor ? t.factor + o : NULL, 1, 0, t.out_plane,
                                       mean[ch], invstd[ch], &s[0], &s[1]);
                continue;
            }
            if (c->step->grad_in_dw_conv) {     /* dy never written: the conv before forms it too */
                cn_bn_relu_grad_sums(c->in + i, g + i, t.chain.relu ? t.out + i : NULL, plane, mean[ch], invstd[ch],
                                     &s[0], &s[1]);
                continue;
            }
            if (t.chain.length == 2) cn_chain_grad(g + i, t.out + i, NULL, plane, plane, c->own_out + i);
            cn_slices_bn_grad_sums(c->in + i, dy + i, 1, 0, plane, mean[ch], invstd[ch], &s[0], &s[1]);
        }
    team_barrier();     /* every plane's sums are in */
    gather_plane_sums(c);
    if (writes_state(c)) backward_coefficients(c);
    state_written(c);
    if (!c->grad_in || c->step->grad_in_conv_relu || c->step->grad_in_dw_conv) return;   /* the conv before does it */
    if (c->step->grad_in_conv) {
        /* the conv before rebuilds dL/d(its output) from a copy of the chain's output gradient,
         * whose buffer its input gradient may share */
        cn_bn_handoff h = cn_bn_handoff_of(c);
        memcpy(h.grad + b0 * out_stride, g + b0 * out_stride, (size_t)(b1 - b0) * out_stride * sizeof(float));
        return;
    }
    /* dx, or (fusion.h) the relu-masked gradient for a conv + relu before this layer; per
     * plane, after this plane's sums, so dx may share the chain gradient's buffer */
    bool to_conv_relu = c->step->grad_to_conv_relu;
    float *dx = to_conv_relu ? c->relu_grad_dst : c->grad_in;
    for (int b = b0; b < b1; b++)
        for (int ch = 0; ch < C; ch++) {
            size_t i = b * stride + (size_t)ch * plane, o = b * out_stride + (size_t)ch * t.out_plane;
            if (t.chain.pool) {
                cn_pooled_bn_grad_input(c->in + i, t.x_win + o, g + o, t.out + o, t.factor ? t.factor + o : NULL,
                                        t.argmax + o, 1, 0, 0, plane,
                                        t.out_plane, mean[ch], invstd[ch], k[ch], mean_dy[ch], mean_dy_xhat[ch], dx + i);
                if (to_conv_relu) cn_relu_backward_kernel(c->in + i, dx + i, dx + i, (size_t)plane);
            } else {
                cn_slices_bn_grad_input(c->in + i, dy + i, dx + i, 1, 0, plane, mean[ch], invstd[ch], k[ch], mean_dy[ch],
                                        mean_dy_xhat[ch], to_conv_relu);
            }
        }
}

void cn_batchnorm2d_backward(const cn_layer_ctx *c) {
    run_split(c, backward_samples);
}
