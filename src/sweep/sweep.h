/* Sweeps: many training runs of one model over a grid or a list of settings and a
 * range of seeds (`convnet sweep`), each in its own output directory, resumable, run
 * several at a time on one machine or shared out over the ranks of an mpirun job.
 *
 * A setting is a list of "key=value" tokens: the keys of a spec's `train` line (lr,
 * batch, momentum, weight_decay, optimizer, scheduler, augment, epochs, ...; see
 * cn_recipe_parse_token) and `model` (a preset or spec file). A grid "lr=0.05,0.1
 * batch=64,128" gives every combination (the first key varies slowest); a list gives
 * settings separated by ';'. Each setting runs once per seed.
 *
 * Files (in out_dir): <run>/ (convnet train's files, train.log, and `result` once
 * finished: a finished run is skipped when the sweep runs again, an interrupted one
 * resumes from its last.safetensors), sweep.csv (one row per run), sweep.md (mean ± std
 * and worst final accuracy over the seeds of each setting, best first) and sweep.png
 * (final accuracy against the values of the first key, a line per setting of the
 * others). With a validation split (base.val_split) the reports rank the settings on
 * the validation accuracy, and give the test accuracy beside it, not used to rank. */
#ifndef CN_SWEEP_SWEEP_H
#define CN_SWEEP_SWEEP_H
#include "train.h"

#define CN_SWEEP_MAX_KEYS 8
#define CN_SWEEP_MAX_RUNS 10000

/* One setting: its tokens (key=value, in the order given) and its name ("k=v,k=v"). */
typedef struct {
    int count;
    char tokens[CN_SWEEP_MAX_KEYS][96];
    char name[800];
} cn_sweep_setting;

typedef struct {
    int settings_count;
    cn_sweep_setting *settings;
    int keys_count;                         /* every key of the settings, in order of appearance */
    char keys[CN_SWEEP_MAX_KEYS][32];
    int seed_first, seed_last;
} cn_sweep_plan;

/* The plan of a grid or (grid NULL) a list, seeds "N" or "A-B". Checks every setting
 * against `base` (a key that convnet train would not accept is an error here). */
cn_status cn_sweep_plan_parse(const char *grid, const char *list, const char *seeds, cn_sweep_plan *plan);
void cn_sweep_plan_free(cn_sweep_plan *plan);
static inline int cn_sweep_runs(const cn_sweep_plan *p) { return p->settings_count * (p->seed_last - p->seed_first + 1); }
/* The value of `key` in setting s, or NULL. */
const char *cn_sweep_value(const cn_sweep_setting *s, const char *key);
/* Applies setting s and seed to a copy of `base`: o->overrides, o->model, o->seed. */
cn_status cn_sweep_apply(const cn_sweep_setting *s, uint64_t seed, cn_train_options *o);

/* The outcome of one run. With a validation split (base.val_split > 0: metrics.csv's
 * val_acc column) final_acc, best_acc and best_epoch are validation accuracies, the
 * numbers a recipe is chosen on, and final_test_acc is the final test accuracy, kept
 * for the record; without one, all three are test accuracies. */
typedef struct {
    int done;               /* 1: finished (these numbers hold), 0: failed or not run */
    double final_acc, best_acc, seconds;
    int best_epoch, epochs;
    int on_val;             /* 1: final_acc, best_acc are validation accuracies */
    double final_test_acc;  /* final-epoch test accuracy (= final_acc when on_val is 0) */
} cn_sweep_result;

/* cn_sweep_options: convnet.h */

/* Runs the plan (skipping finished runs) and writes the reports. CN_ERR_INTERRUPTED when
 * stopped by a signal (the runs under way saved resumable checkpoints). A failed run is
 * reported (sweep.csv status "failed", its train.log) and the others go on; the result is
 * then an error naming how many failed. */
cn_status cn_sweep(const cn_sweep_options *o, const cn_sweep_plan *plan);

/* The reports from the results (plan order: setting-major, then seed). */
cn_status cn_sweep_write_reports(const char *out_dir, const cn_sweep_plan *plan, const cn_sweep_result *results);

#endif
