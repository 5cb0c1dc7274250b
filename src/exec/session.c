/* Sessions: the plans, the batch workspace, the team of workers, and the binding of
 * each layer to its buffers (exec/team.h). */
#include "exec/session.h"
#include "exec/team.h"
#include "kernels/bf16.h"
#include "core/error.h"
#include "core/mem.h"
#include <stdlib.h>
#include <string.h>

/* Samples-first size of value v (the output of layer v - 1; v = 0: the model's input). */
static int value_size(const cn_model *m, int v) {
    return cn_shape_size(cn_model_value_shape(m, v));
}

/* A buffer shared by values of different sizes (exec/plan.h) keeps each sample slot at its
 * widest value's stride, so that team workers' slots never overlap; a runner's samples
 * are contiguous (value_size apart) from its slot's start. */
float *cn_value_at(const cn_session *s, int v, int slot) {
    const cn_plan *p = cn_session_plan(s);
    int b = p->buffer[v];
    return s->values[b] + (size_t)slot * p->buffer_floats[b];
}

float *cn_grad_at(const cn_session *s, int v, int slot) {
    if (s->grad_vals) return cn_grad_buffer_at(s, v, slot);
    return s->grad_bufs[v % 2] + (size_t)slot * s->grad_stride;
}

float *cn_grad_buffer_at(const cn_session *s, int g, int slot) {
    return s->grad_vals[g] + (size_t)slot * value_size(s->model, s->plans[1].grad_value[g]);
}

size_t cn_layer_saved_floats(const cn_layer *l, int batch) {
    switch (l->kind) {
    case CN_LAYER_BATCHNORM2D: return 5 * (size_t)l->in.c;   /* batchnorm2d.c */
    case CN_LAYER_MAXPOOL2D: return (size_t)batch * cn_shape_size(l->out);
    case CN_LAYER_DROPOUT: return ((size_t)batch * cn_shape_size(l->in) + 3) / 4;   /* byte mask */
    default: return 0;
    }
}

/* Layer i's saved state for runner r at `slot`: per sample (argmax, mask) or per channel
 * (a batch norm: the runner's own copy). */
static float *saved_at(const cn_session *s, const cn_runner *r, int i, int slot) {
    const cn_layer *l = &s->model->layers[i];
    if (l->kind == CN_LAYER_BATCHNORM2D) return r->bn_saved[i];
    if (l->kind == CN_LAYER_MAXPOOL2D) return s->saved[i] + (size_t)slot * cn_shape_size(l->out);
    return s->saved[i];
}

void cn_runner_bind(cn_session *s, cn_runner *r, int slot, int first, int batch) {
    const cn_model *m = s->model;
    const cn_plan *p = cn_session_plan(s);
    r->slot = slot;
    r->first = first;
    r->batch = batch;
    for (int i = 0; i < m->num_layers; i++) {
        const cn_layer *l = &m->layers[i];
        const cn_step *st = &p->steps[i];
        int end = i + st->chain.length;
        r->ctx[i] = (cn_layer_ctx){
            .model = m, .layer = l, .step = st, .index = i,
            .threads = r->threads, .training = s->training, .in_team = r->in_team,
            .batch = batch, .first = first, .team_batch = r->team_batch, .dropout_seed = s->dropout_seed,
            .in = cn_value_at(s, i, slot), .out = cn_value_at(s, end, slot), .own_out = cn_value_at(s, i + 1, slot),
            .grad_out = cn_grad_at(s, end, slot),
            .grad_in = p->branched ? cn_grad_buffer_at(s, p->grad_of_input[i][0], slot) : i > 0 ? cn_grad_at(s, i, slot) : NULL,
            .saved = saved_at(s, r, i, slot),
            .argmax = s->training && st->pool >= 0 ? (int32_t *)saved_at(s, r, st->pool, slot) : NULL,
            .relu_grad_dst = st->grad_to_conv_relu ? cn_value_at(s, i - 1, slot) : NULL,
            .peer = st->peer >= 0 ? &r->ctx[st->peer] : NULL,
            .exchange = s->local_bn ? NULL : s->exchange,
            .stats_first = s->local_bn ? s->offset : 0, .stats_batch = s->local_bn ? s->share : r->team_batch,
            .grads = r->grads, .partials = r->partials, .scratch = r->scratch, .scratch_stride = s->scratch_stride,
        };
        cn_layer_ctx *c = &r->ctx[i];
        for (int k = 0; k < l->num_inputs; k++) {
            c->ins[k] = cn_value_at(s, l->inputs[k], slot);
            c->grad_ins[k] = p->branched ? cn_grad_buffer_at(s, p->grad_of_input[i][k], slot) : c->grad_in;
            if (st->bn_inputs >> k & 1) {   /* bound already: the batch norm comes earlier */
                c->bn_ins[k] = &r->ctx[l->inputs[k] - 1];
                c->ins[k] = c->bn_ins[k]->in;
            }
        }
        c->in = c->ins[0];
        if (l->kind == CN_LAYER_DROPOUT) c->mask = (uint8_t *)s->saved[i] + (size_t)slot * cn_shape_size(l->in);
        if (l->kind == CN_LAYER_BATCHNORM2D) {
            c->plane_stats = s->bn_stats + (size_t)l->bn_index * s->bn_stats_stride;
            c->running = s->model->buffers + l->buffer_offset;
            c->batches_tracked = &s->model->bn_batches_tracked[l->bn_index];
        }
    }
}

static void free_runner(cn_runner *r) {
    free(r->ctx);
    r->ctx = NULL;
}

static void free_team(cn_session *s) {
    for (int t = 0; s->team && t < s->threads; t++) {
        cn_runner *w = &s->team[t];
        for (int i = 0; t > 0 && w->bn_saved && i < s->model->num_layers; i++)
            if (s->model->layers[i].kind == CN_LAYER_BATCHNORM2D) cn_free_aligned(w->bn_saved[i]);
        free(w->bn_saved);
        free_runner(w);
    }
    free(s->team);
    s->team = NULL;
}

void cn_session_free(cn_session *s) {
    if (!s) return;
    free_team(s);
    free_runner(&s->whole);
    int L = s->model->num_layers;
    for (int i = 0; s->values && i <= L; i++) cn_free_aligned(s->values[i]);
    for (int i = 0; s->saved && i < L; i++) cn_free_aligned(s->saved[i]);
    free(s->values);
    free(s->saved);
    for (int g = 0; s->grad_vals && g < s->plans[1].num_grads; g++) cn_free_aligned(s->grad_vals[g]);
    free(s->grad_vals);
    cn_free_aligned(s->grad_bufs[0]);
    cn_free_aligned(s->grad_bufs[1]);
    cn_free_aligned(s->grads);
    cn_free_aligned(s->thread_grads);
    cn_free_aligned(s->scratch);
    cn_free_aligned(s->bn_stats);
    cn_free_aligned(s->eval_out);
    free(s->loss_rows);
    cn_plan_free(&s->plans[0]);
    cn_plan_free(&s->plans[1]);
    free(s);
}

/* Activation buffers (one per value: the training plan's layout; each as wide as the
 * widest value either plan keeps in it) and the gradient buffers: two sized for the
 * largest value, or (branches) the training plan's, one per value and extra reader. */
static cn_status alloc_values(cn_session *s) {
    const cn_model *m = s->model;
    int L = m->num_layers, batch = s->capacity;
    size_t largest = 0;
    s->values = cn_calloc(L + 1, sizeof *s->values);
    if (!s->values) return CN_ERR_NOMEM;
    for (int v = 0; v <= L; v++) {
        size_t n, width = s->plans[0].buffer_floats[v] > s->plans[1].buffer_floats[v] ? s->plans[0].buffer_floats[v]
                                                                                      : s->plans[1].buffer_floats[v];
        if (!cn_mul_ok((size_t)batch, (size_t)value_size(m, v), &n)) return cn_fail(CN_ERR_NOMEM, "batch too large");
        if (n > largest) largest = n;
        if (!cn_mul_ok((size_t)batch, width, &n)) return cn_fail(CN_ERR_NOMEM, "batch too large");
        if (!(s->values[v] = cn_alloc_floats(n ? n : 1))) return CN_ERR_NOMEM;
    }
    if (s->plans[1].branched) {
        const cn_plan *p = &s->plans[1];
        if (!(s->grad_vals = cn_calloc(p->num_grads, sizeof *s->grad_vals))) return CN_ERR_NOMEM;
        for (int g = 0; g < p->num_grads; g++)
            if (!(s->grad_vals[g] = cn_alloc_floats((size_t)batch * value_size(m, p->grad_value[g])))) return CN_ERR_NOMEM;
    }
    s->grad_bufs[0] = cn_alloc_floats(largest);
    s->grad_bufs[1] = cn_alloc_floats(largest);
    s->grad_stride = largest / (size_t)batch;
    return s->grad_bufs[0] && s->grad_bufs[1] ? CN_OK : CN_ERR_NOMEM;
}

/* Saved state, scratch, gradients and batch-norm sums. */
static cn_status alloc_state(cn_session *s) {
    const cn_model *m = s->model;
    int L = m->num_layers, widest = 0;
    size_t scratch = 0;
    s->saved = cn_calloc(L, sizeof *s->saved);
    if (!s->saved) return CN_ERR_NOMEM;
    for (int i = 0; i < L; i++) {
        const cn_layer *l = &m->layers[i];
        if (!(s->saved[i] = cn_alloc_floats(cn_layer_saved_floats(l, s->capacity)))) return CN_ERR_NOMEM;
        size_t need = cn_layer_scratch_floats(l, &s->plans[1].steps[i]);   /* the training plan's: a superset of the eval plan's paths */
        if (need > scratch) scratch = need;
        if (l->kind == CN_LAYER_BATCHNORM2D && l->in.c > widest) widest = l->in.c;
    }
    /* batch norms' per-plane sums: (batch, C, 2) doubles per layer */
    s->bn_stats_stride = (size_t)s->capacity * widest * 2;
    s->bn_stats = (double *)cn_alloc_floats(2 * s->bn_stats_stride * (m->num_bn ? m->num_bn : 1));
    s->scratch_stride = (scratch + 15) & ~(size_t)15;
    s->scratch = cn_alloc_floats(s->scratch_stride * s->threads);
    s->grads = cn_alloc_floats(m->num_params);
    s->thread_grads = cn_alloc_floats(m->num_params * (cn_session_trains_in_chunks(m) ? 3 : 2) * s->threads);
    return s->bn_stats && s->scratch && s->grads && s->thread_grads ? CN_OK : CN_ERR_NOMEM;
}

/* The team of workers: one per thread. */
static cn_status make_team(cn_session *s) {
    const cn_model *m = s->model;
    int T = s->threads, L = m->num_layers;
    s->eval_out = cn_alloc_floats((size_t)s->capacity * cn_shape_size(m->layers[L - 1].out));
    s->team = cn_calloc(T, sizeof *s->team);
    if (!s->eval_out || !s->team) return CN_ERR_NOMEM;
    for (int t = 0; t < T; t++) {
        cn_runner *w = &s->team[t];
        *w = (cn_runner){ .threads = 1, .in_team = true, .scratch = s->scratch + (size_t)t * s->scratch_stride,
                          .grads = t ? s->thread_grads + (size_t)t * m->num_params : s->grads,
                          .partials = s->thread_grads + (size_t)(T + t) * m->num_params };
        w->ctx = cn_calloc(L, sizeof *w->ctx);
        w->bn_saved = cn_calloc(L, sizeof *w->bn_saved);
        if (!w->ctx || !w->bn_saved) return CN_ERR_NOMEM;
        for (int i = 0; i < L; i++) {
            const cn_layer *l = &m->layers[i];
            if (l->kind != CN_LAYER_BATCHNORM2D) continue;
            w->bn_saved[i] = t ? cn_alloc_floats(cn_layer_saved_floats(l, 1)) : s->saved[i];
            if (!w->bn_saved[i]) return CN_ERR_NOMEM;
        }
    }
    return CN_OK;
}

/* The runner for the session as a whole, and (several threads) the team of workers. */
static cn_status make_runners(cn_session *s) {
    s->whole = (cn_runner){ .threads = s->threads, .scratch = s->scratch, .grads = s->grads,
                            .partials = s->thread_grads, .bn_saved = s->saved };
    if (!(s->whole.ctx = cn_calloc(s->model->num_layers, sizeof *s->whole.ctx))) return CN_ERR_NOMEM;
    return s->threads > 1 ? make_team(s) : CN_OK;
}

cn_status cn_session_set_exchange(cn_session *s, const cn_exchange *x, bool local_bn) {
    if (!x || x->ranks < 1 || x->rank < 0 || x->rank >= x->ranks)
        return cn_fail(CN_ERR_ARG, "cn_session_set_exchange: no exchange, or rank outside 0..ranks-1");
    if (!s->team) {
        cn_status st = make_team(s);    /* a team of one: the same passes as one worker of a process */
        if (st) return st;
    }
    if (!s->loss_rows && !(s->loss_rows = cn_calloc((size_t)s->capacity * 2 + 2 * (size_t)x->ranks, sizeof(double))))
        return CN_ERR_NOMEM;
    s->exchange = x;
    s->local_bn = local_bn;
    return CN_OK;
}

cn_status cn_session_create(cn_model *model, int batch, int threads, unsigned flags, cn_session **out) {
    *out = NULL;
    if (batch < 1) return cn_fail(CN_ERR_ARG, "batch size %d: expected at least 1", batch);
    if (flags & CN_SESSION_BF16) {
        cn_status st = cn_bf16_require();
        if (st) return st;
    }
    cn_session *s = cn_calloc(1, sizeof *s);
    if (!s) return CN_ERR_NOMEM;
    s->model = model;
    s->capacity = batch;
    s->threads = threads < 1 ? 1 : threads;
    cn_status st = cn_plan_build(model, false, flags, &s->plans[0]);
    if (!st) st = cn_plan_build(model, true, flags, &s->plans[1]);
    if (!st) st = alloc_values(s);
    if (!st) st = alloc_state(s);
    if (!st) st = make_runners(s);
    if (st) { cn_session_free(s); return st; }
    *out = s;
    return CN_OK;
}

cn_model *cn_session_model(const cn_session *s) { return s->model; }
int cn_session_capacity(const cn_session *s) { return s->capacity; }
int cn_session_threads(const cn_session *s) { return s->threads; }
void cn_session_set_training(cn_session *s, bool training) { s->training = training; }
bool cn_session_training(const cn_session *s) { return s->training; }
void cn_session_set_dropout_seed(cn_session *s, uint64_t seed) { s->dropout_seed = seed; }
float *cn_session_grads(cn_session *s) { return s->grads; }
float *cn_session_value(cn_session *s, int v) { return cn_value_at(s, v, 0); }
float *cn_session_value_grad(cn_session *s) { return cn_grad_at(s, s->model->num_layers, 0); }
