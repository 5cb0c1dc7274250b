/* The training loop: data, model, optimizer, schedule, evaluation, metrics,
 * checkpoints. Used by `convnet train`. */
#ifndef CN_TRAIN_H
#define CN_TRAIN_H
#include "convnet.h"
#include "model.h"

#include "checkpoint.h"
#include "data/dataset.h"

typedef struct {
    const char *model;          /* preset name/alias, spec path, .safetensors or .onnx to
                                   start from (ignored when resuming or with model_handle) */
    cn_model *model_handle;     /* train this model instead (borrowed; trained in place) */
    const char *dataset;        /* "mnist" (default), "fashion-mnist", "kmnist", "idx" */
    const char *data_dir;       /* NULL: search the default places */
    int allow_download;
    const cn_dataset *data_handle; /* train on this loaded dataset instead (borrowed, not modified) */
    cn_recipe overrides;        /* command-line settings; unset fields fall back to the
                                   model's recipe, then to built-in defaults */
    uint64_t seed;
    int threads;
    const char *out_dir;        /* default "runs/<model>" */
    int val_split;              /* hold out this many training images for validation */
    int train_limit, test_limit;/* use only the first N images (0 = all) */
    const char *resume;         /* checkpoint to continue from */
    cn_train_fn on_event;       /* progress and metrics (include/convnet.h); may be NULL */
    void *user;
    cn_checkpoint_info *info_out; /* if not NULL: the run's dataset, normalisation, class names */
    cn_model **model_out;       /* if not NULL (resuming): receives the trained model */
} cn_train_options;

/* Sets every field of `o` to "unset". */
void cn_train_options_init(cn_train_options *o);

/* Runs training. Prints nothing: reports through o->on_event and warnings
 * through the note handler. CN_ERR_INTERRUPTED when on_event asked to stop
 * (a resumable checkpoint was written first). */
cn_status cn_train(const cn_train_options *o);

/* Evaluates `model` in eval mode on a split: summed loss (NLL, no smoothing),
 * correct count, and optionally every prediction (split->count ints). */
cn_status cn_evaluate(cn_model *model, const cn_split *split, float mean, float std, int threads,
                      double *loss_sum, int *correct, int *predictions);

#endif
