/* Forward and backward passes of a session, on the session as a whole or on its team of
 * workers (exec/team.h). Training splits the batch into one contiguous share per worker
 * (as the layers' own threads do); eval mode gives each worker groups of up to
 * EVAL_GROUP_MAX samples (eval_group_size), so that a group's activations stay in the
 * core's cache. */
#include "exec/session.h"
#include "exec/team.h"
#include "exec/tree_sum.h"
#include "loss.h"
#include "core/error.h"
#include <omp.h>
#include <string.h>

#define EVAL_GROUP_MAX 32    /* measured: 8 -> 32 gave 3-9% more img/s on the presets */

static const struct {
    void (*forward)(const cn_layer_ctx *);
    void (*backward)(const cn_layer_ctx *);
} layer_ops[CN_LAYER_KIND_COUNT] = {
    [CN_LAYER_CONV2D] = {cn_conv2d_forward, cn_conv2d_backward},
    [CN_LAYER_BATCHNORM2D] = {cn_batchnorm2d_forward, cn_batchnorm2d_backward},
    [CN_LAYER_RELU] = {cn_relu_forward, cn_relu_backward},
    [CN_LAYER_MAXPOOL2D] = {cn_maxpool2d_forward, cn_maxpool2d_backward},
    [CN_LAYER_AVGPOOL2D] = {cn_avgpool2d_forward, cn_avgpool2d_backward},
    [CN_LAYER_GAP] = {cn_gap_forward, cn_gap_backward},
    [CN_LAYER_DROPOUT] = {cn_dropout_forward, cn_dropout_backward},
    [CN_LAYER_FLATTEN] = {cn_flatten_forward, cn_flatten_backward},
    [CN_LAYER_LINEAR] = {cn_linear_forward, cn_linear_backward},
    [CN_LAYER_LOG_SOFTMAX] = {cn_log_softmax_forward, cn_log_softmax_backward},
    [CN_LAYER_RELU6] = {cn_relu6_forward, cn_relu6_backward},
    [CN_LAYER_LEAKY_RELU] = {cn_leaky_relu_forward, cn_leaky_relu_backward},
    [CN_LAYER_ADD] = {cn_add_forward, cn_add_backward},
    [CN_LAYER_CONCAT] = {cn_concat_forward, cn_concat_backward},
};

/* Layer i of a bound runner; a layer the plan leaves out (absorbed into a chain, a pass-
 * through, a dropout its batch norm applies) does nothing. */
static void forward_layer(const cn_runner *r, int i) {
    const cn_layer_ctx *c = &r->ctx[i];
    if (c->step->forward) layer_ops[c->layer->kind].forward(c);
}

static void backward_layer(const cn_runner *r, int i) {
    const cn_layer_ctx *c = &r->ctx[i];
    if (c->step->backward) layer_ops[c->layer->kind].backward(c);
}

/* A model with branches (exec/plan.h): before layer i's backward, the extra gradient buffers
 * of its output value are added into the value's own, so layer i sees the sum over its
 * readers. The model input's gradient, when wanted (grad_input: this runner's samples), is
 * summed the same way and copied out; otherwise the layers reading the input write none. */
static void add_extra_grads(cn_session *s, const cn_runner *r, int v) {
    const cn_plan *p = cn_session_plan(s);
    size_t n = (size_t)r->batch * cn_shape_size(cn_model_value_shape(s->model, v));
    float *sum = cn_grad_at(s, v, r->slot);
    for (int g = p->num_layers + 1; g < p->num_grads; g++) {
        if (p->grad_value[g] != v) continue;
        const float *extra = cn_grad_buffer_at(s, g, r->slot);
        cn_add_term_kernel(extra, NULL, sum, n, 1, 0);   /* sum += extra, vectorised */
    }
}

/* No gradient of the model input: the layers reading it (value 0) write none. */
static void drop_input_grads(const cn_model *m, cn_runner *r) {
    for (int i = 0; i < m->num_layers; i++)
        for (int k = 0; k < m->layers[i].num_inputs; k++)
            if (m->layers[i].inputs[k] == 0) {
                r->ctx[i].grad_ins[k] = NULL;
                if (k == 0) r->ctx[i].grad_in = NULL;
            }
}

static void backward_branched(cn_session *s, cn_runner *r, float *grad_input) {
    const cn_model *m = s->model;
    int L = m->num_layers;
    if (!grad_input) drop_input_grads(m, r);
    for (int i = L - 1; i >= 0; i--) {
        if (i + 1 < L) add_extra_grads(s, r, i + 1);
        backward_layer(r, i);
    }
    if (!grad_input) return;
    add_extra_grads(s, r, 0);
    memcpy(grad_input, cn_grad_at(s, 0, r->slot), (size_t)r->batch * cn_shape_size(m->input) * sizeof(float));
}

/* input, grad_output, grad_input, labels: the samples offset .. of the whole batch (exchange:
 * this rank's share; else all of it) */
static void forward_layers(cn_session *s, cn_runner *r, const float *input) {
    size_t in_size = (size_t)cn_shape_size(s->model->input);
    memcpy(cn_value_at(s, 0, r->slot), input + (size_t)(r->first - s->offset) * in_size, (size_t)r->batch * in_size * sizeof(float));
    for (int i = 0; i < s->model->num_layers; i++) forward_layer(r, i);
}

/* Backward of a bound runner from dL/d(output) (the whole batch's); grad_input, when not
 * NULL, gets dL/d(input) (ditto). */
static void backward_layers(cn_session *s, cn_runner *r, const float *grad_output, float *grad_input) {
    const cn_model *m = s->model;
    int L = m->num_layers, out_size = cn_shape_size(m->layers[L - 1].out);
    size_t first = (size_t)(r->first - s->offset);
    memcpy(cn_grad_at(s, L, r->slot), grad_output + first * out_size, (size_t)r->batch * out_size * sizeof(float));
    if (cn_session_plan(s)->branched) {
        backward_branched(s, r, grad_input ? grad_input + first * cn_shape_size(m->input) : NULL);
        return;
    }
    if (grad_input) r->ctx[0].grad_in = grad_input + first * cn_shape_size(m->input);
    for (int i = L - 1; i >= 0; i--) backward_layer(r, i);
}

/* The share of a training pass of `batch` samples that runs here (team.h: offset, share,
 * active): with an exchange, this rank's (exchange.h) on up to one worker per sample. */
static void set_share(cn_session *s, int batch) {
    if (s->exchange) cn_exchange_share(batch, s->exchange->rank, s->exchange->ranks, &s->offset, &s->share);
    else { s->offset = 0; s->share = batch; }
    s->active = s->share < s->threads ? s->share : s->threads;
}

/* Worker t's samples [*first, *end) of this rank's share (set_share). When every worker of
 * every rank gets a sample, the batch is cut into ranks x threads equal parts by global
 * worker index (rank * threads + t), as one process of ranks x threads threads cuts it, so
 * both run the same samples on the same worker; otherwise the share is cut over `active`. */
static void worker_range(const cn_session *s, int t, int batch, int *first, int *end) {
    const cn_exchange *x = s->exchange;
    if (x && batch >= x->ranks * s->threads) {
        int W = x->ranks * s->threads, count;
        cn_exchange_share(batch, x->rank * s->threads + t, W, first, &count);
        *first -= s->offset;
        *end = *first + count;
        return;
    }
    cn_thread_range(s->share, t, s->active, first, end);
}

/* The calling thread's worker, bound for a training pass of `batch` samples (its contiguous
 * part of the share, worker_range). */
static cn_runner *training_worker(cn_session *s, int batch) {
    int t = omp_get_thread_num(), first, end;
    worker_range(s, t, batch, &first, &end);
    cn_runner *w = &s->team[t];
    w->team_batch = batch;
    cn_runner_bind(s, w, first, s->offset + first, end - first);
    return w;
}

/* The whole session on all of the batch (the input holds all of it, exchange or not). */
static cn_runner *bind_whole(cn_session *s, int batch) {
    s->offset = 0;
    s->share = batch;
    s->active = s->threads;
    s->whole.team_batch = batch;
    cn_runner_bind(s, &s->whole, 0, 0, batch);
    return &s->whole;
}

/* Training passes run on the team with several threads and at least one sample per thread. */
static bool training_on_team(const cn_session *s, int batch) {
    return s->training && s->team && batch >= s->threads;
}

bool cn_session_uses_team(const cn_session *s, int batch) {
    return s->team && (s->training ? batch >= s->threads : batch >= 2 * s->threads);
}

/* Samples per eval group for a batch (at least 2 per thread): the same number of groups for
 * every thread where the batch allows, each at most EVAL_GROUP_MAX, and T groups fit in the
 * batch (worker t's slice starts at sample t * group). */
static int eval_group_size(const cn_session *s, int batch) {
    int T = s->threads, per_thread = (batch + T * EVAL_GROUP_MAX - 1) / (T * EVAL_GROUP_MAX);
    int group = (batch + T * per_thread - 1) / (T * per_thread);
    return T * group > batch ? batch / T : group;
}

static const float *forward_eval_groups(cn_session *s, const float *input, int batch) {
    int G = eval_group_size(s, batch), groups = (batch + G - 1) / G;
    int L = s->model->num_layers, out_size = cn_shape_size(s->model->layers[L - 1].out);
    (void)cn_kernels();     /* chosen once, here, not by the workers at the same time */
    s->offset = 0;          /* the input holds all of the batch */
    #pragma omp parallel for schedule(static) num_threads(s->threads)
    for (int g = 0; g < groups; g++) {
        int first = g * G, n = batch - first < G ? batch - first : G;
        int t = omp_get_thread_num();
        cn_runner *w = &s->team[t];
        cn_runner_bind(s, w, t * G, first, n);
        forward_layers(s, w, input);
        memcpy(s->eval_out + (size_t)first * out_size, cn_value_at(s, L, w->slot), (size_t)n * out_size * sizeof(float));
    }
    return s->eval_out;
}

const float *cn_session_forward(cn_session *s, const float *input, int batch, cn_rng *rng) {
    CN_ASSERT(batch >= 1 && batch <= s->capacity);
    if (!s->training && cn_session_uses_team(s, batch)) return forward_eval_groups(s, input, batch);
    CN_ASSERT(!(s->training && s->exchange));   /* with an exchange, training runs through cn_session_train_step */
    if (s->training && rng) s->dropout_seed = cn_rng_next(rng);
    if (training_on_team(s, batch)) {
        set_share(s, batch);
        (void)cn_kernels();
        #pragma omp parallel num_threads(s->active)
        forward_layers(s, training_worker(s, batch), input);
    } else {
        forward_layers(s, bind_whole(s, batch), input);
    }
    return cn_value_at(s, s->model->num_layers, 0);
}

/* Thread t's range of the session's parameter gradients = the workers' summed in the
 * fixed tree order of exec/tree_sum.h (worker 0's are the session's). */
static void sum_worker_grads(cn_session *s, int t) {
    int T = s->active;
    size_t P = s->model->num_params, k0 = P * t / T, k1 = P * (t + 1) / T;
    float *bufs[T];
    for (int u = 0; u < T; u++) bufs[u] = s->team[u].grads;
    cn_tree_sum(bufs, T, k0, k1);
}

void cn_session_backward(cn_session *s, const float *grad_output, int batch) {
    cn_session_backward_input(s, grad_output, batch, NULL);
}

/* Backward through the workers: each its own samples, then the workers' parameter
 * gradients summed (in thread order) into the session's, each thread a range of them.
 * On return the session's gradients are complete (the all-reduce point, session.h). */
void cn_session_backward_input(cn_session *s, const float *grad_output, int batch, float *grad_input) {
    CN_ASSERT(s->training && !s->exchange && batch >= 1 && batch <= s->capacity);
    if (!training_on_team(s, batch)) {
        backward_layers(s, bind_whole(s, batch), grad_output, grad_input);
        return;
    }
    set_share(s, batch);
    #pragma omp parallel num_threads(s->active)
    {
        backward_layers(s, training_worker(s, batch), grad_output, grad_input);
        #pragma omp barrier
        sum_worker_grads(s, omp_get_thread_num());
    }
}

/* Chunked training: with a team and no batch norm (whose statistics need the whole batch
 * before any sample goes on, and whose per-sample sums the backward pass rewrites once every
 * worker has read them), each worker runs its samples TRAIN_CHUNK at a time through
 * forward, loss and backward in one parallel region, in the buffers of its first chunk, so
 * that a chunk's activations are still in cache when its backward reads them (measured,
 * seed003 with 2 threads: 7% more images per second, seed002: 5%). Each chunk's parameter
 * gradients are added to the worker's in chunk order: the sums are grouped differently from
 * a whole-batch backward pass's, so they agree with it within rounding; everything else
 * (outputs, loss gradients) is the same, and a fixed thread count gives the same results run
 * to run. Other models run cn_session_forward, cn_loss_batch and cn_session_backward. */
#define TRAIN_CHUNK 16
#define TRAIN_CHUNK_PARAMS_MAX (1 << 18)    /* more: adding up each chunk's gradients costs more than it saves */

bool cn_session_trains_in_chunks(const cn_model *m) { return m->num_bn == 0 && m->num_params <= TRAIN_CHUNK_PARAMS_MAX; }

/* Worker t's share of the step, chunk by chunk; its gradients into its own. */
static void train_worker_chunks(cn_session *s, int t, const float *input, const int *labels, int batch,
                                float smoothing, float *grad) {
    const cn_model *m = s->model;
    int L = m->num_layers, classes = cn_model_num_classes(m), first, end;
    worker_range(s, t, batch, &first, &end);
    first += s->offset;
    end += s->offset;
    cn_runner *w = &s->team[t];
    float *total = w->grads, *chunk = s->thread_grads + (size_t)(2 * s->threads + t) * m->num_params;
    w->step_loss = 0.0;
    w->step_correct = 0;
    w->team_batch = batch;
    for (int c0 = first; c0 < end; c0 += TRAIN_CHUNK) {
        int n = end - c0 < TRAIN_CHUNK ? end - c0 : TRAIN_CHUNK, hits;
        w->grads = c0 == first ? total : chunk;
        cn_runner_bind(s, w, first - s->offset, c0, n);     /* the first chunk's buffers, reused */
        forward_layers(s, w, input);
        size_t local = (size_t)(c0 - s->offset);
        w->step_loss += cn_loss_samples(cn_value_at(s, L, w->slot), labels + local, n, batch, classes,
                                        cn_model_outputs_log_probs(m), smoothing, grad + local * classes, &hits);
        w->step_correct += hits;
        backward_layers(s, w, grad, NULL);
        if (c0 != first)
            for (size_t k = 0; k < m->num_params; k++) total[k] += chunk[k];
    }
    w->grads = total;
}

/* The team's share of a chunked training step; the workers' gradients summed into the session's. */
static void train_team_chunks(cn_session *s, const float *input, const int *labels, int batch, float smoothing,
                              float *grad) {
    set_share(s, batch);
    (void)cn_kernels();     /* chosen once, here, not by the workers at the same time */
    #pragma omp parallel num_threads(s->active)
    {
        int t = omp_get_thread_num();
        train_worker_chunks(s, t, input, labels, batch, smoothing, grad);
        #pragma omp barrier
        sum_worker_grads(s, t);
    }
}

/* A training step with an exchange (session.h: cn_session_set_exchange). The loss is summed
 * in the order one process sums it: per sample (cn_loss_batch) or, chunked, per worker, so
 * it is gathered as rows of {loss, hits} (per sample or per rank) and added up in order. */
static double train_step_shared(cn_session *s, const float *input, const int *labels, int batch, float smoothing,
                                float *grad, int *correct) {
    const cn_model *m = s->model;
    const cn_exchange *x = s->exchange;
    int classes = cn_model_num_classes(m), rows;
    double *row = s->loss_rows;
    set_share(s, batch);
    CN_ASSERT(s->share >= 1);
    if (cn_session_trains_in_chunks(m)) {
        train_team_chunks(s, input, labels, batch, smoothing, grad);
        if (batch >= x->ranks * s->threads) {   /* a row per worker, in global worker order (worker_range) */
            rows = x->ranks * s->threads;
            for (int t = 0; t < s->threads; t++) {
                row[2 * (x->rank * s->threads + t)] = s->team[t].step_loss;
                row[2 * (x->rank * s->threads + t) + 1] = s->team[t].step_correct;
            }
        } else {
            double loss = 0.0;
            int hits = 0;
            for (int t = 0; t < s->active; t++) { loss += s->team[t].step_loss; hits += s->team[t].step_correct; }
            rows = x->ranks;
            row[2 * x->rank] = loss;
            row[2 * x->rank + 1] = hits;
        }
    } else {
        (void)cn_kernels();
        #pragma omp parallel num_threads(s->active)
        forward_layers(s, training_worker(s, batch), input);
        const float *out = cn_value_at(s, m->num_layers, 0);
        for (int i = 0; i < s->share; i++) {
            int hit;
            size_t o = (size_t)i * classes;
            row[2 * (s->offset + i)] = cn_loss_samples(out + o, labels + i, 1, batch, classes, cn_model_outputs_log_probs(m),
                                                       smoothing, grad + o, &hit);
            row[2 * (s->offset + i) + 1] = hit;
        }
        #pragma omp parallel num_threads(s->active)
        {
            backward_layers(s, training_worker(s, batch), grad, NULL);
            #pragma omp barrier
            sum_worker_grads(s, omp_get_thread_num());
        }
        rows = batch;
    }
    x->gather_rows(x, row, rows, 2);
    x->sum_floats(x, s->grads, m->num_params);     /* the all-reduce: gradients summed over the ranks (tree order) */
    if (s->local_bn) x->broadcast_floats(x, s->model->buffers, m->num_buffers);
    double loss = 0.0, hits = 0.0;
    for (int i = 0; i < rows; i++) { loss += row[2 * i]; hits += row[2 * i + 1]; }
    if (correct) *correct = (int)hits;
    return loss;
}

double cn_session_train_step(cn_session *s, const float *input, const int *labels, int batch, float smoothing,
                             float *grad, int *correct) {
    CN_ASSERT(s->training && batch >= 1 && batch <= s->capacity);
    if (s->exchange) return train_step_shared(s, input, labels, batch, smoothing, grad, correct);
    const cn_model *m = s->model;
    if (!training_on_team(s, batch) || !cn_session_trains_in_chunks(m)) {
        const float *out = cn_session_forward(s, input, batch, NULL);
        double loss = cn_loss_batch(out, labels, batch, cn_model_num_classes(m), cn_model_outputs_log_probs(m), smoothing,
                                    grad, correct);
        cn_session_backward(s, grad, batch);
        return loss;
    }
    train_team_chunks(s, input, labels, batch, smoothing, grad);
    double loss = 0.0;
    int hits = 0;
    for (int t = 0; t < s->active; t++) { loss += s->team[t].step_loss; hits += s->team[t].step_correct; }
    if (correct) *correct = hits;
    return loss;
}

void cn_session_forward_layer(cn_session *s, int i, int batch) {
    CN_ASSERT(batch >= 1 && batch <= s->capacity);
    forward_layer(bind_whole(s, batch), i);
}

void cn_session_backward_layer(cn_session *s, int i, int batch) {
    CN_ASSERT(s->training && batch >= 1 && batch <= s->capacity);
    cn_runner *r = bind_whole(s, batch);
    if (cn_session_plan(s)->branched) {
        drop_input_grads(s->model, r);     /* as a training step without grad_input */
        if (i + 1 < s->model->num_layers) add_extra_grads(s, r, i + 1);
    }
    backward_layer(r, i);
}
