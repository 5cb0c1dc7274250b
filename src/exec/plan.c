/* Execution plans: the fusion rules (layers/fusion.h) evaluated once per mode. */
#include "exec/plan.h"
#include "exec/session.h"
#include "core/mem.h"
#include <stdlib.h>

static int bn_at(const cn_model *m, int j) {
    return j < m->num_layers && m->layers[j].kind == CN_LAYER_BATCHNORM2D ? j : -1;
}

/* Layer i's step, fused. */
static cn_step fused_step(const cn_model *m, bool training, int i) {
    const cn_layer *l = &m->layers[i];
    cn_step st = { .forward = true, .backward = true, .pool = -1, .peer = -1 };
    st.chain = cn_chain_at(m, training, i);
    if (cn_layer_absorbed(m, training, i)) st.forward = st.backward = false;
    if (st.chain.pool) st.pool = i + st.chain.length - 1;
    st.grad_to_conv_relu = cn_grad_to_conv_relu(m, training, i);
    if (l->kind == CN_LAYER_CONV2D) {
        st.peer = st.chain.bn_first ? i + 1 : st.chain.bn ? i + 2 : bn_at(m, i + st.chain.length);
        st.bn_stats_out = st.peer >= 0 && cn_bn_stats_from_conv(m, training, st.peer);
        st.rebuild_first = st.chain.length == 2 && !st.chain.bn_first && !cn_grad_to_conv_relu(m, training, i + 2);
    } else if (l->kind == CN_LAYER_BATCHNORM2D) {
        st.stats_from_conv = cn_bn_stats_from_conv(m, training, i);
        st.grad_in_conv = st.chain.pool && cn_bn_grad_in_conv(m, training, i);
        st.grad_in_conv_relu = cn_bn_grad_in_conv_relu(m, training, i);
        st.grad_in_dw_conv = cn_bn_grad_in_dw_conv(m, training, i);
        st.applies_dropout = cn_dropout_fused_into_bn(m, training, i) || st.chain.dropout;
        if (st.applies_dropout) st.peer = i + 1;
    } else if (l->kind == CN_LAYER_DROPOUT && cn_dropout_fused_into_bn(m, training, i - 1)) {
        st.forward = false;
    }
    return st;
}

/* Training plans of a model with branches fuse within its plain runs (exec/plan.h): segment
 * [a, b] is a run of layers in which each layer after the first reads only the value before
 * it, and that value has no other reader. *end gets b for the segment starting at a. */
static cn_status plain_runs(const cn_model *m, int **segment_end) {
    int L = m->num_layers;
    int *readers = cn_calloc((size_t)L + 1, sizeof *readers), *end = cn_calloc((size_t)L, sizeof *end);
    if (!readers || !end) { free(readers); free(end); return CN_ERR_NOMEM; }
    for (int i = 0; i < L; i++)
        for (int k = 0; k < m->layers[i].num_inputs; k++) readers[m->layers[i].inputs[k]]++;
    for (int b = L - 1; b >= 0; b--) {
        bool linked = b + 1 < L && m->layers[b + 1].num_inputs == 1 && m->layers[b + 1].inputs[0] == b + 1 &&
                      readers[b + 1] == 1;
        end[b] = linked ? end[b + 1] : b;
    }
    free(readers);
    *segment_end = end;
    return CN_OK;
}

/* Layer i's fused step when it lies in the plain run [a, b]: the fusion rules see that run
 * as a model of its own, and the step's layer indices are shifted back. */
static cn_step fused_step_in_run(const cn_model *m, bool training, int a, int b, int i) {
    cn_model run = *m;
    run.layers = m->layers + a;
    run.num_layers = b - a + 1;
    cn_step st = fused_step(&run, training, i - a);
    if (st.pool >= 0) st.pool += a;
    if (st.peer >= 0) st.peer += a;
    return st;
}

/* Training, branched: a batch norm whose output only an add reads leaves its affine map to the
 * add (cn_step.applied_by_add), which reads the batch norm's input instead of its output: one
 * pass over the activations less each way. */
static cn_status bn_applied_by_adds(const cn_model *m, cn_plan *plan) {
    int L = m->num_layers;
    int *readers = cn_calloc((size_t)L + 1, sizeof *readers);
    if (!readers) return CN_ERR_NOMEM;
    for (int i = 0; i < L; i++)
        for (int k = 0; k < m->layers[i].num_inputs; k++) readers[m->layers[i].inputs[k]]++;
    for (int i = 0; i < L; i++) {
        if (m->layers[i].kind != CN_LAYER_ADD) continue;
        for (int k = 0; k < m->layers[i].num_inputs; k++) {
            int v = m->layers[i].inputs[k], j = v - 1;
            if (j < 0 || m->layers[j].kind != CN_LAYER_BATCHNORM2D || readers[v] != 1) continue;
            cn_step *bn = &plan->steps[j];
            if (!bn->forward || bn->chain.length != 1 || bn->applies_dropout) continue;
            bn->applied_by_add = true;
            plan->steps[i].bn_inputs |= 1u << k;
        }
    }
    free(readers);
    return CN_OK;
}

/* Eval, every layer on its own: value v takes the lowest buffer no live value holds. A
 * buffer is live until the last reader of the values it holds (the output, value L, forever);
 * layer i's output never shares with what layer i reads. Pass-throughs alias their input. */
static cn_status share_buffers_by_lifetime(const cn_model *m, cn_plan *plan) {
    int L = m->num_layers;
    int *last_read = cn_calloc(2 * ((size_t)L + 1), sizeof *last_read), *busy_until = last_read + L + 1;
    if (!last_read) return CN_ERR_NOMEM;
    for (int v = 0; v <= L; v++) last_read[v] = v == L ? L : -1;
    for (int i = 0; i < L; i++)
        for (int k = 0; k < m->layers[i].num_inputs; k++)
            if (i > last_read[m->layers[i].inputs[k]]) last_read[m->layers[i].inputs[k]] = i;
    for (int b = 0; b <= L; b++) busy_until[b] = -1;
    plan->buffer[0] = 0;
    busy_until[0] = last_read[0];
    for (int i = 0; i < L; i++) {
        int v = i + 1, b = 0;
        if (plan->steps[i].pass_through) b = plan->buffer[m->layers[i].inputs[0]];
        else while (busy_until[b] >= i) b++;   /* a free one exists: at most L + 1 values */
        plan->buffer[v] = b;
        if (last_read[v] > busy_until[b]) busy_until[b] = last_read[v];
    }
    free(last_read);
    return CN_OK;
}

static bool all_convs_direct(const cn_model *m) {
    for (int i = 0; i < m->num_layers; i++)
        if (m->layers[i].kind == CN_LAYER_CONV2D && !cn_conv_is_direct(&m->layers[i])) return false;
    return true;
}

cn_status cn_plan_build(const cn_model *m, bool training, unsigned flags, cn_plan *plan) {
    plan->branched = cn_model_has_branches(m);
    bool reference = flags & CN_SESSION_REFERENCE_CONV;
    bool bf16 = training && (flags & CN_SESSION_BF16);
    /* eval plans of branched models stay unfused: their buffers are shared by lifetime; bf16
     * training plans too when a conv2d runs conv2d_bf16.c (not direct: it fuses nothing) */
    bool unfused = reference || (bf16 && !all_convs_direct(m)) || (flags & CN_SESSION_UNFUSED) ||
                   (plan->branched && !training);
    int *run_end = NULL;
    if (!unfused && plan->branched && plain_runs(m, &run_end) != CN_OK) return CN_ERR_NOMEM;
    int L = m->num_layers;
    plan->training = training;
    plan->num_layers = L;
    plan->steps = cn_calloc(L, sizeof *plan->steps);
    plan->buffer = cn_calloc(L + 1, sizeof *plan->buffer);
    plan->buffer_floats = cn_calloc(L + 1, sizeof *plan->buffer_floats);
    plan->grad_of_input = cn_calloc(L, sizeof *plan->grad_of_input);
    plan->grad_value = cn_calloc((size_t)L * CN_MAX_INPUTS + L + 1, sizeof *plan->grad_value);
    if (!plan->steps || !plan->buffer || !plan->buffer_floats || !plan->grad_of_input || !plan->grad_value) {
        free(run_end);
        cn_plan_free(plan);
        return CN_ERR_NOMEM;
    }
    for (int i = 0; i <= L; i++) plan->buffer[i] = i;
    for (int i = 0, a = 0; i < L; i++) {
        cn_step *st = &plan->steps[i];
        if (run_end && i > run_end[a]) a = i;
        if (unfused) *st = (cn_step){ .forward = true, .backward = true, .chain = { .length = 1 }, .pool = -1, .peer = -1 };
        else if (run_end) *st = fused_step_in_run(m, training, a, run_end[a], i);
        else *st = fused_step(m, training, i);
        st->reference_conv = reference;
        st->bf16_conv = bf16 && m->layers[i].kind == CN_LAYER_CONV2D;
        st->bf16_linear = bf16 && m->layers[i].kind == CN_LAYER_LINEAR;
        cn_layer_kind kind = m->layers[i].kind;
        if (kind == CN_LAYER_FLATTEN || (!training && kind == CN_LAYER_DROPOUT)) {
            st->pass_through = true;
            st->forward = false;    /* a training flatten's backward still copies the gradient */
            plan->buffer[i + 1] = plan->buffer[m->layers[i].inputs[0]];
        }
    }
    free(run_end);
    if (training && !unfused && plan->branched && bn_applied_by_adds(m, plan)) { cn_plan_free(plan); return CN_ERR_NOMEM; }
    if (!training && unfused && share_buffers_by_lifetime(m, plan)) { cn_plan_free(plan); return CN_ERR_NOMEM; }
    for (int v = 0; v <= L; v++) {
        size_t n = (size_t)cn_shape_size(cn_model_value_shape(m, v));
        if (n > plan->buffer_floats[plan->buffer[v]]) plan->buffer_floats[plan->buffer[v]] = n;
    }
    /* Gradient buffers (branched): the last reader of a value writes the value's own, every
     * earlier reader an extra one. */
    plan->num_grads = L + 1;
    bool *has_reader = cn_calloc((size_t)L + 1, sizeof *has_reader);
    if (!has_reader) { cn_plan_free(plan); return CN_ERR_NOMEM; }
    for (int v = 0; v <= L; v++) plan->grad_value[v] = v;
    for (int i = L - 1; i >= 0; i--)
        for (int k = 0; k < m->layers[i].num_inputs; k++) {
            int v = m->layers[i].inputs[k];
            if (!has_reader[v]) { plan->grad_of_input[i][k] = v; has_reader[v] = true; continue; }
            plan->grad_value[plan->num_grads] = v;
            plan->grad_of_input[i][k] = plan->num_grads++;
        }
    free(has_reader);
    return CN_OK;
}

void cn_plan_free(cn_plan *plan) {
    free(plan->steps);
    free(plan->buffer);
    free(plan->buffer_floats);
    free(plan->grad_of_input);
    free(plan->grad_value);
    plan->steps = NULL;
    plan->buffer = NULL;
    plan->buffer_floats = NULL;
    plan->grad_of_input = NULL;
    plan->grad_value = NULL;
}
