#include "lr_schedule.h"
#include "core/error.h"
#include <math.h>
#include <string.h>

cn_status cn_sched_kind_parse(const char *name, cn_sched_kind *out) {
    static const struct { const char *name; cn_sched_kind kind; } names[] = {
        {"none", CN_SCHED_NONE}, {"step", CN_SCHED_STEP}, {"plateau", CN_SCHED_PLATEAU},
        {"onecycle", CN_SCHED_ONECYCLE}, {"cosine", CN_SCHED_COSINE},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name)) { *out = names[i].kind; return CN_OK; }
    return cn_fail(CN_ERR_ARG, "scheduler '%s': expected none, step, plateau, onecycle or cosine", name);
}

void cn_sched_init(cn_scheduler *s, cn_sched_kind kind, double base_lr) {
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->base_lr = s->lr = base_lr;
    s->momentum = -1.0;
    s->step_size = 1; s->gamma = 0.1;                                   /* StepLR */
    s->factor = 0.1; s->patience = 10; s->threshold = 1e-4; s->best = INFINITY;  /* ReduceLROnPlateau */
    s->max_lr = base_lr; s->pct_start = 0.3; s->div_factor = 25.0; s->final_div_factor = 1e4;
    s->base_momentum = 0.85; s->max_momentum = 0.95; s->cycle_momentum = 1;  /* OneCycleLR */
    s->t_max = 1; s->eta_min = 0.0;                                     /* CosineAnnealingLR */
}

static double anneal_cos(double start, double end, double pct) {
    return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1.0);
}

/* OneCycleLR.get_lr() for step_num (two phases, cosine annealing). */
static void onecycle_update(cn_scheduler *s) {
    double initial = s->max_lr / s->div_factor, min_lr = initial / s->final_div_factor;
    double end1 = s->pct_start * (double)s->total_steps - 1.0, end2 = (double)s->total_steps - 1.0;
    double step = (double)s->step_num;
    if (step <= end1) {
        double pct = step / end1;
        s->lr = anneal_cos(initial, s->max_lr, pct);
        s->momentum = anneal_cos(s->max_momentum, s->base_momentum, pct);
    } else {
        double pct = (step - end1) / (end2 - end1);
        s->lr = anneal_cos(s->max_lr, min_lr, pct);
        s->momentum = anneal_cos(s->base_momentum, s->max_momentum, pct);
    }
    if (!s->cycle_momentum) s->momentum = -1.0;
}

cn_status cn_sched_start(cn_scheduler *s) {
    switch (s->kind) {
    case CN_SCHED_STEP:
        if (s->step_size < 1) return cn_fail(CN_ERR_ARG, "step scheduler: step size %d must be at least 1", s->step_size);
        break;
    case CN_SCHED_ONECYCLE:
        if (s->total_steps < 2) return cn_fail(CN_ERR_ARG, "onecycle scheduler: needs at least 2 steps, got %ld", s->total_steps);
        if (s->pct_start * (double)s->total_steps - 1.0 <= 0.0)
            return cn_fail(CN_ERR_ARG, "onecycle scheduler: pct_start %g is too small for %ld steps", s->pct_start, s->total_steps);
        s->step_num = 0;
        onecycle_update(s);
        break;
    case CN_SCHED_COSINE:
        if (s->t_max < 1) return cn_fail(CN_ERR_ARG, "cosine scheduler: T_max %d must be at least 1", s->t_max);
        break;
    default:
        break;
    }
    return CN_OK;
}

void cn_sched_batch_end(cn_scheduler *s) {
    if (s->kind != CN_SCHED_ONECYCLE) return;
    if (s->step_num + 1 < s->total_steps) s->step_num++;
    onecycle_update(s);
}

void cn_sched_epoch_end(cn_scheduler *s, double metric) {
    s->epoch++;
    switch (s->kind) {
    case CN_SCHED_STEP:
        s->lr = s->base_lr * pow(s->gamma, (double)(s->epoch / s->step_size));
        break;
    case CN_SCHED_COSINE:
        s->lr = s->eta_min + (s->base_lr - s->eta_min) * (1.0 + cos(M_PI * s->epoch / s->t_max)) / 2.0;
        break;
    case CN_SCHED_PLATEAU:
        if (metric < s->best * (1.0 - s->threshold)) { s->best = metric; s->num_bad = 0; }
        else s->num_bad++;
        if (s->cooldown_counter > 0) { s->cooldown_counter--; s->num_bad = 0; }
        if (s->num_bad > s->patience) {
            double reduced = fmax(s->lr * s->factor, s->min_lr);
            if (s->lr - reduced > 1e-8) s->lr = reduced;
            s->cooldown_counter = s->cooldown;
            s->num_bad = 0;
        }
        break;
    default:
        break;
    }
}
