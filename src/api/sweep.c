/* The public API's sweeps (convnet.h): plans parsed from text, then sweep/run.c. */
#include "convnet.h"
#include "sweep/sweep.h"
#include <string.h>

/* Parses the plan and the `set` tokens, applying the latter to *base. *fixed must stay
 * alive while *base is used (base->model may point into it). */
static cn_status parse(const char *grid, const char *list, const char *seeds, const char *set, cn_sweep_plan *plan,
                       cn_sweep_plan *fixed, cn_train_options *base) {
    memset(fixed, 0, sizeof *fixed);
    cn_status st = cn_sweep_plan_parse(grid, list, seeds ? seeds : "1", plan);
    if (st) return st;
    if (set && ((st = cn_sweep_plan_parse(NULL, set, "1", fixed)) || (st = cn_sweep_apply(&fixed->settings[0], 1, base)))) {
        cn_sweep_plan_free(plan);
        cn_sweep_plan_free(fixed);
    }
    return st;
}

cn_status cn_sweep_check(const char *grid, const char *list, const char *seeds, const char *set) {
    cn_sweep_plan plan, fixed;
    cn_train_options scratch;
    cn_train_options_init(&scratch);
    cn_status st = parse(grid, list, seeds, set, &plan, &fixed, &scratch);
    if (st) return st;
    cn_sweep_plan_free(&plan);
    cn_sweep_plan_free(&fixed);
    return CN_OK;
}

cn_status cn_sweep_execute(const cn_sweep_options *o, const char *grid, const char *list, const char *seeds,
                           const char *set) {
    cn_sweep_options run = *o;
    cn_sweep_plan plan, fixed;
    cn_status st = parse(grid, list, seeds, set, &plan, &fixed, &run.base);
    if (st) return st;
    if (!run.out_dir) run.out_dir = "runs/sweep";
    st = cn_sweep(&run, &plan);
    cn_sweep_plan_free(&plan);
    cn_sweep_plan_free(&fixed);
    return st;
}
