/* --resume: the settings a checkpoint written by `convnet train` stores about
 * its run, read back, and the caller's options checked against them. */
#ifndef CN_TRAIN_RESUME_H
#define CN_TRAIN_RESUME_H
#include "train.h"

typedef struct {
    cn_recipe recipe;            /* the resolved settings of the run */
    uint64_t seed;
    int val_split, train_limit, test_limit;
    int batch_index;             /* batches of epoch `epochs_done` already done (an interrupted epoch) */
    double partial_loss;         /* their summed loss, correct count and images */
    long partial_correct, partial_seen;
    char dataset[32];            /* stored dataset name (control bytes as '?') */
    long epochs_done;            /* metadata epoch */
    char precision[8];           /* "fp32" (a train_config without precision=) or "bf16" */
} cn_resume_settings;

/* Reads the settings of the run o->resume continues and rejects options that
 * contradict them: --model (the checkpoint has the model), a --dataset other
 * than the stored one, and any setting of o->overrides (but epochs), seed,
 * val_split, train_limit, test_limit or precision that differs from the stored value
 * (repeating a stored value is fine). The message names the option, the
 * stored value and the file. */
cn_status cn_resume_read(const cn_train_options *o, cn_resume_settings *out);

#endif
