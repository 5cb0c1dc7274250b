#include "optim.h"
#include "core/error.h"
#include "core/mem.h"
#include <math.h>
#include <string.h>

cn_status cn_optimizer_kind_parse(const char *name, cn_optimizer_kind *out) {
    if (!strcmp(name, "sgd")) *out = CN_OPT_SGD;
    else if (!strcmp(name, "adam")) *out = CN_OPT_ADAM;
    else if (!strcmp(name, "adamw")) *out = CN_OPT_ADAMW;
    else return cn_fail(CN_ERR_ARG, "optimizer '%s': expected sgd, adam or adamw", name);
    return CN_OK;
}

cn_status cn_optimizer_init(cn_optimizer *opt, cn_optimizer_kind kind, size_t count) {
    memset(opt, 0, sizeof *opt);
    opt->kind = kind;
    opt->count = count;
    opt->beta1 = 0.9;
    opt->beta2 = 0.999;
    opt->eps = 1e-8;
    opt->weight_decay = kind == CN_OPT_ADAMW ? 1e-2 : 0.0;
    opt->exp_avg = cn_alloc_floats(count);
    if (!opt->exp_avg) return CN_ERR_NOMEM;
    if (kind != CN_OPT_SGD) {
        opt->exp_avg_sq = cn_alloc_floats(count);
        if (!opt->exp_avg_sq) { cn_optimizer_free(opt); return CN_ERR_NOMEM; }
    }
    return CN_OK;
}

void cn_optimizer_free(cn_optimizer *opt) {
    cn_free_aligned(opt->exp_avg);
    cn_free_aligned(opt->exp_avg_sq);
    opt->exp_avg = opt->exp_avg_sq = NULL;
}

/* torch.optim.SGD: d = g + wd*p; buf = d (first step) or momentum*buf + (1-dampening)*d;
 * d = d + momentum*buf (nesterov) or buf; p -= lr*d. */
static void sgd_step(cn_optimizer *o, float *p, const float *g) {
    float lr = (float)o->lr, wd = (float)o->weight_decay, mom = (float)o->momentum, damp = 1.0f - (float)o->dampening;
    float *buf = o->exp_avg;
    int first = o->steps == 0;
    for (size_t i = 0; i < o->count; i++) {
        float d = g[i];
        if (wd != 0.0f) d += wd * p[i];
        if (mom != 0.0f) {
            buf[i] = first ? d : mom * buf[i] + damp * d;
            d = o->nesterov ? d + mom * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}

/* torch.optim.Adam / AdamW (single-tensor path of PyTorch 1.13). */
static void adam_step(cn_optimizer *o, float *p, const float *g) {
    int64_t t = o->steps + 1;
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    float wd = (float)o->weight_decay, lr = (float)o->lr;
    double bias1 = 1.0 - pow(o->beta1, (double)t), bias2 = 1.0 - pow(o->beta2, (double)t);
    float step_size = (float)(o->lr / bias1), bias2_sqrt = (float)sqrt(bias2);
    int decoupled = o->kind == CN_OPT_ADAMW;
    float *m = o->exp_avg, *v = o->exp_avg_sq;
    for (size_t i = 0; i < o->count; i++) {
        float d = g[i];
        if (decoupled) p[i] *= 1.0f - lr * wd;
        else if (wd != 0.0f) d += wd * p[i];
        m[i] = m[i] * b1 + (1.0f - b1) * d;
        v[i] = v[i] * b2 + (1.0f - b2) * d * d;
        float denom = sqrtf(v[i]) / bias2_sqrt + eps;
        p[i] -= step_size * (m[i] / denom);
    }
}

void cn_optimizer_step(cn_optimizer *opt, float *params, const float *grads) {
    if (opt->kind == CN_OPT_SGD) sgd_step(opt, params, grads);
    else adam_step(opt, params, grads);
    opt->steps++;
}
