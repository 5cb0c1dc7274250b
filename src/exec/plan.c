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
        st.applies_dropout = cn_dropout_fused_into_bn(m, training, i);
        if (st.applies_dropout) st.peer = i + 1;
    } else if (l->kind == CN_LAYER_DROPOUT && cn_dropout_fused_into_bn(m, training, i - 1)) {
        st.forward = false;
    }
    return st;
}

cn_status cn_plan_build(const cn_model *m, bool training, unsigned flags, cn_plan *plan) {
    bool reference = flags & CN_SESSION_REFERENCE_CONV, unfused = reference || (flags & CN_SESSION_UNFUSED);
    int L = m->num_layers;
    plan->training = training;
    plan->num_layers = L;
    plan->steps = cn_calloc(L, sizeof *plan->steps);
    plan->buffer = cn_calloc(L + 1, sizeof *plan->buffer);
    if (!plan->steps || !plan->buffer) { cn_plan_free(plan); return CN_ERR_NOMEM; }
    for (int i = 0; i <= L; i++) plan->buffer[i] = i;
    for (int i = 0; i < L; i++) {
        cn_step *st = &plan->steps[i];
        if (unfused) *st = (cn_step){ .forward = true, .backward = true, .chain = { .length = 1 }, .pool = -1, .peer = -1 };
        else *st = fused_step(m, training, i);
        st->reference_conv = reference;
        cn_layer_kind kind = m->layers[i].kind;
        if (!training && (kind == CN_LAYER_DROPOUT || kind == CN_LAYER_FLATTEN)) {
            st->pass_through = true;
            st->forward = false;
            plan->buffer[i + 1] = plan->buffer[i];
        }
    }
    return CN_OK;
}

void cn_plan_free(cn_plan *plan) {
    free(plan->steps);
    free(plan->buffer);
    plan->steps = NULL;
    plan->buffer = NULL;
}
