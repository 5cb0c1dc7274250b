/* The public handles of include/convnet.h over the internal types: a cn_net
 * is a model plus the checkpoint metadata that classifying with it needs; a
 * cn_data is a loaded dataset. */
#ifndef CN_API_NET_H
#define CN_API_NET_H
#include "convnet.h"
#include "checkpoint.h"
#include "data/dataset.h"

struct cn_net {
    cn_model *model;            /* owned */
    cn_checkpoint_info info;    /* as loaded or trained; saved with the net */
    int norm_known;             /* info.mean/std are the net's own (not a guess) */
    char names[CN_MAX_CLASSES][32]; /* class names to show: info's, or "0", "1", ... */
};

struct cn_data {
    cn_dataset ds;
};

/* Wraps `model` (ownership passes to the net, also on failure) with `info`. */
cn_status cn_net_wrap(cn_model *model, const cn_checkpoint_info *info, int norm_known, cn_net **out);
/* Recomputes names[] from info (after loading or training). */
void cn_net_refresh_names(cn_net *net);

#endif
