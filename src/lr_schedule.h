/* Learning-rate schedules with PyTorch's semantics and stepping:
 *   step     StepLR(step_size, gamma), stepped per epoch
 *   plateau  ReduceLROnPlateau(mode=min, factor, patience, threshold=1e-4 rel), per epoch on a loss
 *   onecycle OneCycleLR(max_lr, total_steps, pct_start, div_factor, final_div_factor,
 *            anneal cos, cycle_momentum 0.85..0.95), stepped per batch
 *   cosine   CosineAnnealingLR(T_max, eta_min), per epoch */
#ifndef CN_SCHED_H
#define CN_SCHED_H
#include "convnet.h"

typedef enum { CN_SCHED_NONE, CN_SCHED_STEP, CN_SCHED_PLATEAU, CN_SCHED_ONECYCLE, CN_SCHED_COSINE } cn_sched_kind;

typedef struct {
    cn_sched_kind kind;
    double base_lr;             /* initial lr (StepLR, cosine) */
    double lr;                  /* lr to use for the next step */
    double momentum;            /* onecycle: momentum/beta1 for the next step */
    int epoch;                  /* epochs stepped so far */
    /* step */
    int step_size; double gamma;
    /* plateau */
    double factor, threshold, min_lr, best; int patience, num_bad, cooldown, cooldown_counter;
    /* onecycle */
    double max_lr, pct_start, div_factor, final_div_factor, base_momentum, max_momentum;
    long total_steps, step_num;
    int cycle_momentum;
    /* cosine */
    int t_max; double eta_min;
} cn_scheduler;

cn_status cn_sched_kind_parse(const char *name, cn_sched_kind *out);
/* Sets PyTorch defaults for `kind` with the optimizer's base lr; callers then
 * override fields and call cn_sched_start. */
void cn_sched_init(cn_scheduler *s, cn_sched_kind kind, double base_lr);
/* Validates settings and computes the first lr (onecycle: total_steps must be set). */
cn_status cn_sched_start(cn_scheduler *s);
/* After each optimizer step (onecycle advances here). */
void cn_sched_batch_end(cn_scheduler *s);
/* After each epoch; `metric` is the monitored loss (plateau only). */
void cn_sched_epoch_end(cn_scheduler *s, double metric);

#endif
