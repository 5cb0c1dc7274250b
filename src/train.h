/* The training loop: data, model, optimizer, schedule, evaluation, metrics,
 * checkpoints. Used by `convnet train`. */
#ifndef CN_TRAIN_H
#define CN_TRAIN_H
#include "convnet.h"
#include "model.h"
#include "data/dataset.h"
#include "exec/session.h"
#include <signal.h>

#define CN_SEED_UNSET UINT64_MAX

typedef struct {
    const char *model;          /* preset name/alias or spec path; NULL: seed001. Must be NULL when
                                   resuming (the checkpoint has the model) */
    const char *dataset;        /* "mnist", "fashion-mnist", "kmnist", "idx", "folder", "csv", "cifar10";
                                   NULL: mnist, or the checkpoint's when resuming (a different one is an error) */
    const char *data_dir;       /* NULL: search the default places */
    int allow_download;
    cn_data_options data;       /* --resize, --grayscale, --skip-bad, --shape, --mean/--std (name, dir,
                                   allow_download, threads and the model's shape are filled in from the above) */
    cn_recipe overrides;        /* command-line settings; unset fields fall back to the
                                   model's recipe, then to built-in defaults */
    uint64_t seed;              /* CN_SEED_UNSET: 1, or the stored seed when resuming */
    int threads;
    const char *out_dir;        /* default "runs/<model>" */
    int val_split;              /* hold out this many training images for validation */
    int train_limit, test_limit;/* use only the first N images (0 = all) */
    const char *resume;         /* checkpoint to continue from: its stored settings are used; of
                                   `overrides` only epochs applies (callers reject the rest) */
    int quiet;
    volatile sig_atomic_t *stop_requested;  /* set by a signal handler: save and stop */
    volatile sig_atomic_t *stop_honoured;   /* may be NULL; cn_train sets it to 1 while it polls
                                               *stop_requested (from the moment OUT is locked to the
                                               end of the last epoch) and to 0 otherwise, when a
                                               handler should end the process at once instead */
    /* data-parallel training (exec/exchange.h; dist/dist.h: cn_dist_world() under mpirun), or NULL:
     * each rank runs cn_train with the same options; rank 0 alone writes files and prints */
    const cn_exchange *exchange;
    int local_bn;               /* with an exchange: per-rank batch-norm statistics (else SyncBatchNorm) */
} cn_train_options;

/* Sets every field of `o` to "unset". */
void cn_train_options_init(cn_train_options *o);

/* Runs training; prints the per-epoch log to stdout. CN_ERR_INTERRUPTED when
 * stopped by *stop_requested (a resumable checkpoint was written first). */
cn_status cn_train(const cn_train_options *o);

/* Whether `model` can be trained or evaluated on `ds`: it outputs at least
 * ds->num_classes scores and takes images of the dataset's shape. Every path
 * pairing a model with a dataset (train, resume, fine-tune, eval) checks it. */
cn_status cn_check_model_fits(const cn_model *model, const cn_dataset *ds);

/* Evaluates `model` in eval mode on a split: summed loss (NLL, no smoothing),
 * correct count, and optionally every prediction (split->count ints).
 * mean/std: per channel. The split's images must have the model's input shape;
 * CN_ERR_SHAPE when a label is not one of the model's classes. Runs its own
 * session of `threads` threads. */
cn_status cn_evaluate(cn_model *model, const cn_split *split, const float *mean, const float *std, int threads,
                      double *loss_sum, int *correct, int *predictions);
/* The same with an existing session (in batches of its capacity; in eval mode for the
 * passes, then back in the mode it was in): training evaluates with its own session. */
cn_status cn_evaluate_session(cn_session *session, const cn_split *split, const float *mean, const float *std,
                              double *loss_sum, int *correct, int *predictions);
/* The same shared by the ranks of a data-parallel run (exchange.h; NULL: this process
 * alone): each rank evaluates a share of the batches, and every rank gets the results of
 * all of them (the same numbers one process gets). */
cn_status cn_evaluate_shared(cn_session *session, const cn_split *split, const float *mean, const float *std,
                             const cn_exchange *x, double *loss_sum, int *correct, int *predictions);

/* CN_ERR_SHAPE naming `what` unless split's images are the model's input shape. */
cn_status cn_check_input_shape(const cn_model *m, const cn_split *split, const char *what);

#endif
