/* Sequential model: building from a spec, parameter layout, batch workspace,
 * forward and backward passes. */
#include "model.h"
#include "loss.h"
#include "spec.h"
#include "layers/layers.h"
#include "kernels/kernels.h"
#include "core/error.h"
#include "core/mem.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS ((size_t)100 * 1000 * 1000)

static const struct {
    const char *name, *torch_name;
    void (*forward)(const cn_layer_ctx *);
    void (*backward)(const cn_layer_ctx *);
} layer_table[CN_LAYER_KIND_COUNT] = {
    [CN_LAYER_CONV2D] = {"conv2d", "Conv2d", cn_conv2d_forward, cn_conv2d_backward},
    [CN_LAYER_BATCHNORM2D] = {"batchnorm2d", "BatchNorm2d", cn_batchnorm2d_forward, cn_batchnorm2d_backward},
    [CN_LAYER_RELU] = {"relu", "ReLU", cn_relu_forward, cn_relu_backward},
    [CN_LAYER_MAXPOOL2D] = {"maxpool2d", "MaxPool2d", cn_maxpool2d_forward, cn_maxpool2d_backward},
    [CN_LAYER_AVGPOOL2D] = {"avgpool2d", "AvgPool2d", cn_avgpool2d_forward, cn_avgpool2d_backward},
    [CN_LAYER_GAP] = {"gap", "AdaptiveAvgPool2d", cn_gap_forward, cn_gap_backward},
    [CN_LAYER_DROPOUT] = {"dropout", "Dropout", cn_dropout_forward, cn_dropout_backward},
    [CN_LAYER_FLATTEN] = {"flatten", "Flatten", cn_flatten_forward, cn_flatten_backward},
    [CN_LAYER_LINEAR] = {"linear", "Linear", cn_linear_forward, cn_linear_backward},
    [CN_LAYER_LOG_SOFTMAX] = {"log_softmax", "LogSoftmax", cn_log_softmax_forward, cn_log_softmax_backward},
};

const char *cn_layer_kind_name(cn_layer_kind kind) { return kind < CN_LAYER_KIND_COUNT ? layer_table[kind].name : "?"; }
const char *cn_layer_torch_name(cn_layer_kind kind) { return kind < CN_LAYER_KIND_COUNT ? layer_table[kind].torch_name : "?"; }

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = cn_calloc(n, 1);
    if (d) memcpy(d, s, n);
    return d;
}

/* Lays out parameters (weight then bias per layer, state_dict order) and BN buffers. */
static cn_status layout_params(cn_model *m) {
    size_t offset = 0, buffers = 0;
    int bn = 0;
    for (int i = 0; i < m->num_layers; i++) {
        cn_layer *l = &m->layers[i];
        l->weight_offset = offset;
        offset += l->weight_count;
        l->bias_offset = offset;
        offset += l->bias_count;
        if (offset > MAX_PARAMS)
            return cn_fail(CN_ERR_SPEC, "%s:%d: the model has more than %zu parameters", m->source_name, l->spec_line, MAX_PARAMS);
        if (l->kind == CN_LAYER_BATCHNORM2D) {
            l->buffer_offset = buffers;
            buffers += 2 * (size_t)l->in.c;
            l->bn_index = bn++;
        }
    }
    m->num_params = offset;
    m->num_buffers = buffers;
    m->num_bn = bn;
    m->params = cn_alloc_floats(offset);
    m->grads = cn_alloc_floats(offset);
    m->buffers = cn_alloc_floats(buffers);
    m->bn_batches_tracked = cn_calloc(bn ? bn : 1, sizeof *m->bn_batches_tracked);
    if (!m->params || !m->grads || !m->buffers || !m->bn_batches_tracked) return CN_ERR_NOMEM;
    return CN_OK;
}

void cn_model_init_params(cn_model *m, cn_rng *rng) {
    for (int i = 0; i < m->num_layers; i++) {
        cn_layer *l = &m->layers[i];
        float *w = m->params + l->weight_offset, *b = m->params + l->bias_offset;
        if (l->kind == CN_LAYER_CONV2D || l->kind == CN_LAYER_LINEAR) {
            /* kaiming_uniform_(a=sqrt(5)): bound = sqrt(6 / ((1 + a^2) fan_in)) = 1/sqrt(fan_in) */
            int fan_in = l->kind == CN_LAYER_CONV2D ? l->in.c * l->kernel * l->kernel : l->in.c;
            float bound = 1.0f / sqrtf((float)fan_in);
            for (size_t k = 0; k < l->weight_count; k++) w[k] = (2.0f * cn_rng_uniform(rng) - 1.0f) * bound;
            for (size_t k = 0; k < l->bias_count; k++) b[k] = (2.0f * cn_rng_uniform(rng) - 1.0f) * bound;
        } else if (l->kind == CN_LAYER_BATCHNORM2D) {
            float *running = m->buffers + l->buffer_offset;
            for (int c = 0; c < l->in.c; c++) { w[c] = 1.0f; b[c] = 0.0f; running[c] = 0.0f; running[l->in.c + c] = 1.0f; }
            m->bn_batches_tracked[l->bn_index] = 0;
        }
    }
}

cn_status cn_model_from_spec(const char *spec_text, const char *source_name, uint64_t seed, cn_model **out) {
    *out = NULL;
    if (!spec_text) return cn_fail(CN_ERR_ARG, "no spec text given");
    cn_model *m = cn_calloc(1, sizeof *m);
    if (!m) return CN_ERR_NOMEM;
    m->spec_text = dup_string(spec_text);
    m->source_name = dup_string(source_name ? source_name : "spec");
    m->num_threads = 1;
    if (!m->spec_text || !m->source_name) { cn_model_free(m); return CN_ERR_NOMEM; }
    cn_status st = cn_spec_parse(spec_text, m->source_name, m);
    if (!st) st = layout_params(m);
    if (st) { cn_model_free(m); return st; }
    cn_rng rng;
    cn_rng_seed(&rng, seed);
    cn_model_init_params(m, &rng);
    m->training = true;
    *out = m;
    return CN_OK;
}

/* ---- workers ----------------------------------------------------------------
 * With several threads a pass runs on workers: shallow copies of the model (layers and
 * parameters shared), one per thread, each running every layer with 1 thread on its own
 * samples, on its slice of the model's buffers (samples sample_offset ..). Threads then
 * keep their samples from the first layer to the last and meet only where a layer needs
 * the whole batch: a training batch norm's statistics and backward sums (a barrier of the
 * workers' team, batchnorm2d.c) and, after backward, the sum of the workers' parameter
 * gradients. Training splits the batch into one contiguous share per thread (as the
 * layers' own threads do); eval mode gives each thread groups of up to EVAL_GROUP_MAX
 * samples (eval_group_size), so that a group's activations stay in the core's cache.
 * A worker's own: its thread's scratch, its parameter gradients (worker 0's are the
 * model's; the others' are summed into them in thread order) and a copy of each batch
 * norm's per-channel state (worker 0's is the model's). */
#define EVAL_GROUP_MAX 32    /* measured: 8 -> 32 gave 3-9% more img/s on the presets */

static void free_workers(cn_model *m) {
    for (int t = 0; m->workers && t < m->num_threads; t++) {
        cn_model *w = &m->workers[t];
        for (int i = 0; t > 0 && w->saved && i < m->num_layers; i++)
            if (m->layers[i].kind == CN_LAYER_BATCHNORM2D) cn_free_aligned(w->saved[i]);
        free(w->acts);
        free(w->grad_acts);
        free(w->saved);
    }
    free(m->workers);
    cn_free_aligned(m->eval_out);
    m->workers = NULL;
    m->eval_out = NULL;
}

static cn_status make_workers(cn_model *m) {
    int T = m->num_threads, L = m->num_layers;
    m->workers = cn_calloc(T, sizeof *m->workers);
    m->eval_out = cn_alloc_floats((size_t)m->batch_capacity * cn_shape_size(m->layers[L - 1].out));
    if (!m->workers || !m->eval_out) return CN_ERR_NOMEM;
    for (int t = 0; t < T; t++) {
        cn_model *w = &m->workers[t];
        *w = *m;
        w->workers = NULL;
        w->eval_out = NULL;
        w->is_worker = true;
        w->num_threads = 1;
        w->thread_scratch = m->thread_scratch + (size_t)t * m->scratch_per_thread;
        w->grads = t ? m->thread_grads + (size_t)t * m->num_params : m->grads;
        w->thread_grads = m->thread_grads + (size_t)(T + t) * m->num_params;    /* its layers' own partials */
        w->acts = cn_calloc(L + 1, sizeof *w->acts);
        w->grad_acts = cn_calloc(L + 1, sizeof *w->grad_acts);
        w->saved = cn_calloc(L, sizeof *w->saved);
        if (!w->acts || !w->grad_acts || !w->saved) return CN_ERR_NOMEM;
        for (int i = 0; i < L; i++) {
            const cn_layer *l = &m->layers[i];
            if (l->kind != CN_LAYER_BATCHNORM2D) continue;
            w->saved[i] = t ? cn_alloc_floats(cn_layer_saved_floats(l, 1)) : m->saved[i];
            if (!w->saved[i]) return CN_ERR_NOMEM;
        }
    }
    return CN_OK;
}

/* Worker t of m on samples first .. first+n-1 of the model's buffers; returns it. */
static cn_model *bind_worker(cn_model *m, int t, int first, int n) {
    cn_model *w = &m->workers[t];
    int L = m->num_layers;
    w->training = m->training;
    w->unfused = m->unfused;
    w->dropout_seed = m->dropout_seed;
    w->sample_offset = first;
    w->batch_capacity = n;
    for (int i = 0; i <= L; i++) {
        w->acts[i] = m->acts[i] + (size_t)first * cn_shape_size(i < L ? m->layers[i].in : m->layers[L - 1].out);
        w->grad_acts[i] = m->grad_acts[i] + (size_t)first * m->grad_floats_per_sample;
    }
    for (int i = 0; i < L; i++) {
        const cn_layer *l = &m->layers[i];
        if (l->kind == CN_LAYER_MAXPOOL2D) w->saved[i] = m->saved[i] + (size_t)first * cn_shape_size(l->out); /* argmax */
        else if (l->kind == CN_LAYER_DROPOUT) w->saved[i] = m->saved[i];   /* mask: cn_dropout_mask adds the offset */
    }
    return w;
}

/* The calling thread's worker for a training pass of `batch` samples (its contiguous share). */
static cn_model *training_worker(cn_model *m, int batch, int *n) {
    int t = omp_get_thread_num(), first, end;
    cn_thread_range(batch, t, m->num_threads, &first, &end);
    cn_model *w = bind_worker(m, t, first, end - first);
    w->team_batch = batch;
    *n = end - first;
    return w;
}

/* Training passes run on workers with several threads and at least one sample per thread. */
static bool training_on_workers(const cn_model *m, int batch) {
    return m->training && m->workers && batch >= m->num_threads;
}

/* Samples per eval group for a batch (at least 2 per thread): the same number of groups for
 * every thread where the batch allows, each at most EVAL_GROUP_MAX, and T groups fit in the
 * batch (worker t's slice starts at sample t * group). */
static int eval_group_size(const cn_model *m, int batch) {
    int T = m->num_threads, per_thread = (batch + T * EVAL_GROUP_MAX - 1) / (T * EVAL_GROUP_MAX);
    int group = (batch + T * per_thread - 1) / (T * per_thread);
    return T * group > batch ? batch / T : group;
}

static const float *forward_eval_groups(cn_model *m, const float *input, int batch) {
    int G = eval_group_size(m, batch), groups = (batch + G - 1) / G, in_size = cn_shape_size(m->input);
    int L = m->num_layers, out_size = cn_shape_size(m->layers[L - 1].out);
    (void)cn_kernels();     /* chosen once, here, not by the workers at the same time */
    #pragma omp parallel for schedule(static) num_threads(m->num_threads)
    for (int g = 0; g < groups; g++) {
        int first = g * G, n = batch - first < G ? batch - first : G;
        int t = omp_get_thread_num();
        cn_model *w = bind_worker(m, t, t * G, n);
        memcpy(w->acts[0], input + (size_t)first * in_size, (size_t)n * in_size * sizeof(float));
        for (int i = 0; i < L; i++) cn_model_forward_layer(w, i, n);
        memcpy(m->eval_out + (size_t)first * out_size, w->acts[L], (size_t)n * out_size * sizeof(float));
    }
    return m->eval_out;
}

static void forward_training_workers(cn_model *m, const float *input, int batch) {
    int in_size = cn_shape_size(m->input);
    (void)cn_kernels();
    #pragma omp parallel num_threads(m->num_threads)
    {
        int n;
        cn_model *w = training_worker(m, batch, &n);
        memcpy(w->acts[0], input + (size_t)w->sample_offset * in_size, (size_t)n * in_size * sizeof(float));
        for (int i = 0; i < m->num_layers; i++) cn_model_forward_layer(w, i, n);
    }
}

static void free_workspace(cn_model *m) {
    free_workers(m);
    for (int i = 0; m->acts && i <= m->num_layers; i++) {
        cn_free_aligned(m->acts[i]);
        if (i < m->num_layers) cn_free_aligned(m->saved[i]);
    }
    if (m->grad_acts) { cn_free_aligned(m->grad_acts[0]); if (m->num_layers > 0) cn_free_aligned(m->grad_acts[1]); }
    free(m->acts); free(m->grad_acts); free(m->saved);
    cn_free_aligned(m->thread_grads);
    cn_free_aligned(m->thread_scratch);
    cn_free_aligned(m->bn_stats);
    m->bn_stats = NULL;
    m->acts = m->grad_acts = m->saved = NULL;
    m->thread_grads = m->thread_scratch = NULL;
    m->batch_capacity = 0;
}

void cn_model_free(cn_model *m) {
    if (!m) return;
    free_workspace(m);
    free(m->layers);
    cn_free_aligned(m->params);
    cn_free_aligned(m->grads);
    cn_free_aligned(m->buffers);
    free(m->bn_batches_tracked);
    free(m->spec_text);
    free(m->source_name);
    free(m);
}

size_t cn_layer_saved_floats(const cn_layer *l, int batch) {
    switch (l->kind) {
    case CN_LAYER_BATCHNORM2D: return 5 * (size_t)l->in.c;   /* batchnorm2d.c */
    case CN_LAYER_MAXPOOL2D: return (size_t)batch * cn_shape_size(l->out);
    case CN_LAYER_DROPOUT: return ((size_t)batch * cn_shape_size(l->in) + 3) / 4;   /* byte mask */
    default: return 0;
    }
}

static bool trains_in_chunks(const cn_model *m);

cn_status cn_model_reserve(cn_model *m, int batch, int threads) {
    if (batch < 1) return cn_fail(CN_ERR_ARG, "batch size %d: expected at least 1", batch);
    if (threads < 1) threads = 1;
    if (batch <= m->batch_capacity && threads == m->num_threads && m->acts) return CN_OK;
    free_workspace(m);
    m->num_threads = threads;
    int L = m->num_layers;
    m->acts = cn_calloc(L + 1, sizeof *m->acts);
    m->grad_acts = cn_calloc(L + 1, sizeof *m->grad_acts);
    m->saved = cn_calloc(L, sizeof *m->saved);
    if (!m->acts || !m->grad_acts || !m->saved) { free_workspace(m); return CN_ERR_NOMEM; }
    /* Activations are kept for every layer (backward needs them); gradients
     * only flow between neighbouring layers, so two ping-pong buffers sized
     * for the largest activation serve them all: grad_acts[i] = buffer i % 2. */
    size_t scratch = 0, largest = 0;
    for (int i = 0; i <= L; i++) {
        cn_shape s = i < L ? m->layers[i].in : m->layers[L - 1].out;
        size_t n;
        if (!cn_mul_ok((size_t)batch, (size_t)cn_shape_size(s), &n)) { free_workspace(m); return cn_fail(CN_ERR_NOMEM, "batch too large"); }
        if (n > largest) largest = n;
        m->acts[i] = cn_alloc_floats(n);
        if (!m->acts[i]) { free_workspace(m); return CN_ERR_NOMEM; }
        if (i < L) {
            m->saved[i] = cn_alloc_floats(cn_layer_saved_floats(&m->layers[i], batch));
            if (!m->saved[i]) { free_workspace(m); return CN_ERR_NOMEM; }
            size_t s2 = cn_layer_scratch_floats(&m->layers[i]);
            if (s2 > scratch) scratch = s2;
        }
    }
    float *ping = cn_alloc_floats(largest), *pong = cn_alloc_floats(largest);
    if (!ping || !pong) { cn_free_aligned(ping); cn_free_aligned(pong); free_workspace(m); return CN_ERR_NOMEM; }
    for (int i = 0; i <= L; i++) m->grad_acts[i] = (i % 2) ? pong : ping;
    m->grad_floats_per_sample = largest / (size_t)batch;
    /* batch norms' per-plane sums: (batch, C, 2) doubles per layer */
    int widest = 0;
    for (int i = 0; i < L; i++)
        if (m->layers[i].kind == CN_LAYER_BATCHNORM2D && m->layers[i].in.c > widest) widest = m->layers[i].in.c;
    m->bn_stats_stride = (size_t)batch * widest * 2;
    m->bn_stats = (double *)cn_alloc_floats(2 * m->bn_stats_stride * (m->num_bn ? m->num_bn : 1));
    m->scratch_per_thread = (scratch + 15) & ~(size_t)15;
    m->thread_scratch = cn_alloc_floats(m->scratch_per_thread * threads);
    m->thread_grads = cn_alloc_floats(m->num_params * (trains_in_chunks(m) ? 3 : 2) * threads);
    if (!m->bn_stats || !m->thread_scratch || !m->thread_grads) { free_workspace(m); return CN_ERR_NOMEM; }
    m->batch_capacity = batch;
    if (threads > 1 && make_workers(m)) { free_workspace(m); return CN_ERR_NOMEM; }
    return CN_OK;
}

void cn_model_set_training(cn_model *m, bool training) { m->training = training; }

static cn_layer_ctx layer_ctx(cn_model *m, int i, int batch) {
    return (cn_layer_ctx){ .model = m, .layer = &m->layers[i], .index = i, .batch = batch,
                           .in = m->acts[i], .out = m->acts[i + 1], .grad_out = m->grad_acts[i + 1],
                           .grad_in = i > 0 ? m->grad_acts[i] : NULL, .saved = m->saved[i] };
}

/* In eval mode, dropout and flatten pass their input through unchanged. */
static bool passes_through(const cn_model *m, int i) {
    cn_layer_kind kind = m->layers[i].kind;
    return !m->training && (kind == CN_LAYER_DROPOUT || kind == CN_LAYER_FLATTEN);
}

void cn_model_forward_layer(cn_model *m, int i, int batch) {
    if (passes_through(m, i)) {
        /* no copy: the two buffers (the same size) trade places; nothing reads acts[i] again
         * before the next forward pass rewrites it (no backward pass in eval mode) */
        float *t = m->acts[i]; m->acts[i] = m->acts[i + 1]; m->acts[i + 1] = t;
        return;
    }
    cn_layer_ctx c = layer_ctx(m, i, batch);
    layer_table[m->layers[i].kind].forward(&c);
}

void cn_model_backward_layer(cn_model *m, int i, int batch) {
    cn_layer_ctx c = layer_ctx(m, i, batch);
    layer_table[m->layers[i].kind].backward(&c);
}

const float *cn_model_forward(cn_model *m, const float *input, int batch, cn_rng *rng) {
    CN_ASSERT(batch >= 1 && batch <= m->batch_capacity);
    if (!m->training && m->workers && batch >= 2 * m->num_threads)
        return forward_eval_groups(m, input, batch);
    if (m->training && rng) m->dropout_seed = cn_rng_next(rng);
    if (training_on_workers(m, batch)) {
        forward_training_workers(m, input, batch);
    } else {
        memcpy(m->acts[0], input, (size_t)batch * cn_shape_size(m->input) * sizeof(float));
        for (int i = 0; i < m->num_layers; i++) cn_model_forward_layer(m, i, batch);
    }
    return m->acts[m->num_layers];
}

/* Backward of `batch` samples of m (a model, or a worker on its n samples) from
 * dL/d(output) (the batch's, at the model's first sample); grad_input, when not NULL,
 * gets dL/d(input) (ditto). */
static void backward_layers(cn_model *m, const float *grad_output, int n, float *grad_input) {
    int L = m->num_layers, out_size = cn_shape_size(m->layers[L - 1].out);
    size_t first = (size_t)m->sample_offset;
    memcpy(m->grad_acts[L], grad_output + first * out_size, (size_t)n * out_size * sizeof(float));
    for (int i = L - 1; i >= 0; i--) {
        cn_layer_ctx c = layer_ctx(m, i, n);
        if (i == 0 && grad_input) c.grad_in = grad_input + first * cn_shape_size(m->input);
        layer_table[m->layers[i].kind].backward(&c);
    }
}

/* Thread t's range of the model's parameter gradients += the other workers' (worker 0's
 * are the model's), in thread order. */
static void sum_worker_grads(cn_model *m, int t) {
    int T = m->num_threads;
    size_t k0 = m->num_params * t / T, k1 = m->num_params * (t + 1) / T;
    for (int u = 1; u < T; u++) {
        const float *part = m->workers[u].grads;
        for (size_t k = k0; k < k1; k++) m->grads[k] += part[k];
    }
}

/* Backward through the workers: each its own samples, then the workers' parameter
 * gradients summed (in thread order) into the model's, each thread a range of them. */
static void backward_workers(cn_model *m, const float *grad_output, int batch, float *grad_input) {
    int T = m->num_threads;
    #pragma omp parallel num_threads(T)
    {
        int n, t = omp_get_thread_num();
        cn_model *w = training_worker(m, batch, &n);
        backward_layers(w, grad_output, n, grad_input);
        #pragma omp barrier
        sum_worker_grads(m, t);
    }
}

/* Chunked training: with workers and no batch norm (whose statistics need the whole batch
 * before any sample goes on, and whose per-sample sums the backward pass rewrites once every
 * worker has read them), each worker runs its samples TRAIN_CHUNK at a time through
 * forward, loss and backward in one parallel region, in the buffers of its first chunk, so
 * that a chunk's activations are still in cache when its backward reads them (measured,
 * seed003 with 2 threads: 7% more images per second, seed002: 5%). Each chunk's parameter
 * gradients are added to the worker's in chunk order: the sums are grouped differently from
 * a whole-batch backward pass's, so they agree with it within rounding; everything else
 * (outputs, loss gradients) is the same, and a fixed thread count gives the same results run
 * to run. Other models run cn_model_forward, cn_loss_batch and cn_model_backward. */
#define TRAIN_CHUNK 16
#define TRAIN_CHUNK_PARAMS_MAX (1 << 18)    /* more: adding up each chunk's gradients costs more than it saves */

static bool trains_in_chunks(const cn_model *m) { return m->num_bn == 0 && m->num_params <= TRAIN_CHUNK_PARAMS_MAX; }

/* Worker t's share of the step, chunk by chunk; its gradients into w->grads. */
static void train_worker_chunks(cn_model *m, int t, const float *input, const int *labels, int batch,
                                float smoothing, float *grad) {
    int L = m->num_layers, in_size = cn_shape_size(m->input), classes = cn_model_num_classes(m), first, end;
    cn_thread_range(batch, t, m->num_threads, &first, &end);
    cn_model *w = &m->workers[t];
    float *total = w->grads, *chunk = m->thread_grads + (size_t)(2 * m->num_threads + t) * m->num_params;
    w->step_loss = 0.0;
    w->step_correct = 0;
    for (int c0 = first; c0 < end; c0 += TRAIN_CHUNK) {
        int n = end - c0 < TRAIN_CHUNK ? end - c0 : TRAIN_CHUNK, hits;
        bind_worker(m, t, first, n);     /* the first chunk's buffers, reused */
        w->sample_offset = c0;           /* the chunk's samples: dropout streams, loss rows */
        w->grads = c0 == first ? total : chunk;
        memcpy(w->acts[0], input + (size_t)c0 * in_size, (size_t)n * in_size * sizeof(float));
        for (int i = 0; i < L; i++) cn_model_forward_layer(w, i, n);
        w->step_loss += cn_loss_samples(w->acts[L], labels + c0, n, batch, classes, cn_model_outputs_log_probs(m),
                                        smoothing, grad + (size_t)c0 * classes, &hits);
        w->step_correct += hits;
        backward_layers(w, grad, n, NULL);
        if (c0 != first)
            for (size_t k = 0; k < m->num_params; k++) total[k] += chunk[k];
    }
    w->grads = total;
}

double cn_model_train_step(cn_model *m, const float *input, const int *labels, int batch, float smoothing,
                           float *grad, int *correct) {
    CN_ASSERT(m->training && batch >= 1 && batch <= m->batch_capacity);
    if (!training_on_workers(m, batch) || !trains_in_chunks(m)) {
        const float *out = cn_model_forward(m, input, batch, NULL);
        double loss = cn_loss_batch(out, labels, batch, cn_model_num_classes(m), cn_model_outputs_log_probs(m), smoothing,
                                    grad, correct);
        cn_model_backward(m, grad, batch);
        return loss;
    }
    int T = m->num_threads;
    (void)cn_kernels();     /* chosen once, here, not by the workers at the same time */
    #pragma omp parallel num_threads(T)
    {
        int t = omp_get_thread_num();
        train_worker_chunks(m, t, input, labels, batch, smoothing, grad);
        #pragma omp barrier
        sum_worker_grads(m, t);
    }
    double loss = 0.0;
    int hits = 0;
    for (int t = 0; t < T; t++) { loss += m->workers[t].step_loss; hits += m->workers[t].step_correct; }
    if (correct) *correct = hits;
    return loss;
}

void cn_model_backward(cn_model *m, const float *grad_output, int batch) {
    cn_model_backward_input(m, grad_output, batch, NULL);
}

/* Gradient with respect to the model input as well (grad_input NULL: not wanted). */
void cn_model_backward_input(cn_model *m, const float *grad_output, int batch, float *grad_input) {
    CN_ASSERT(m->training && batch >= 1 && batch <= m->batch_capacity);
    if (training_on_workers(m, batch)) backward_workers(m, grad_output, batch, grad_input);
    else backward_layers(m, grad_output, batch, grad_input);
}

size_t cn_model_param_count(const cn_model *m) { return m->num_params; }

uint64_t cn_model_macs(const cn_model *m) {
    uint64_t macs = 0;
    for (int i = 0; i < m->num_layers; i++) macs += m->layers[i].macs;
    return macs;
}

int cn_model_num_classes(const cn_model *m) { return m->layers[m->num_layers - 1].out.c; }
