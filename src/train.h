/* The training loop: data, model, optimizer, schedule, evaluation, metrics,
 * checkpoints. Used by `convnet train`. */
#ifndef CN_TRAIN_H
#define CN_TRAIN_H
#include "convnet.h"
#include "model.h"
#include "data/dataset.h"
#include "exec/session.h"
#include <signal.h>

/* cn_train_options, cn_train_options_init and cn_train: convnet.h */

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
