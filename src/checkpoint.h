/* Checkpoints: safetensors files holding the model's state_dict (PyTorch
 * names, BN running stats and num_batches_tracked), metadata (spec text,
 * epoch, dataset normalisation, format version) and, for resuming, the
 * optimizer, scheduler and RNG state. Writes are atomic. */
#ifndef CN_CHECKPOINT_H
#define CN_CHECKPOINT_H
#include "model.h"
#include "optim.h"
#include "lr_schedule.h"
#include "core/rng.h"
#include "data/dataset.h"

#define CN_CHECKPOINT_FORMAT "1"

/* What a checkpoint holds besides weights and training state (convnet.h). */
typedef cn_model_info cn_checkpoint_info;

/* Everything besides the weights that a resumed run needs. */
typedef struct {
    cn_optimizer *optimizer;
    cn_scheduler *scheduler;
    cn_rng rng;
    double best_metric;
    int best_epoch;
    char config[1024];          /* the run's settings, "key=value ..." */
} cn_train_state;

/* Writes model (+ train state when non-NULL) to path atomically. */
cn_status cn_checkpoint_save(const char *path, const cn_model *model, const cn_checkpoint_info *info,
                             const cn_train_state *state);
/* Loads a checkpoint: builds the model from the stored spec and fills its
 * weights, checking every tensor's shape and that values are finite. When
 * state is non-NULL its optimizer (already initialised with the right kind and
 * size) and scheduler are restored; CN_ERR_FORMAT if the file has no train state. */
cn_status cn_checkpoint_load(const char *path, cn_model **model, cn_checkpoint_info *info, cn_train_state *state);
/* Copies weights from an opened file into an existing model (shape-checked). */
struct cn_st_file;
cn_status cn_checkpoint_read_weights(const struct cn_st_file *f, const char *path, cn_model *model);

#endif
