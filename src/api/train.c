/* cn_net_train and cn_train_resume: the public face of the training loop (src/train.c). */
#include "api/net.h"
#include "core/error.h"
#include "train.h"
#include <string.h>

void cn_train_config_init(cn_train_config *cfg) {
    cn_train_options o;
    cn_train_options_init(&o);
    memset(cfg, 0, sizeof *cfg);
    cfg->recipe = o.overrides;
    cfg->dataset = o.dataset;
    cfg->seed = o.seed;
}

static void to_options(const cn_train_config *cfg, cn_train_options *o) {
    cn_train_options_init(o);
    o->overrides = cfg->recipe;
    if (cfg->dataset) o->dataset = cfg->dataset;
    o->data_dir = cfg->data_dir;
    o->allow_download = cfg->allow_download;
    o->data_handle = cfg->data ? &cfg->data->ds : NULL;
    o->seed = cfg->seed;
    o->threads = cfg->threads;
    o->out_dir = cfg->out_dir;
    o->val_split = cfg->val_split;
    o->train_limit = cfg->train_limit;
    o->test_limit = cfg->test_limit;
    o->on_event = cfg->on_event;
    o->user = cfg->user;
}

cn_status cn_net_train(cn_net *net, const cn_train_config *cfg) {
    if (!net || !cfg) return cn_fail(CN_ERR_ARG, "cn_net_train: net or config is NULL");
    cn_train_options o;
    to_options(cfg, &o);
    o.model_handle = net->model;
    cn_checkpoint_info info;
    o.info_out = &info;
    cn_status st = cn_train(&o);
    if (!st || st == CN_ERR_INTERRUPTED) { /* the weights have changed: the net is the dataset's now */
        net->info = info;
        net->norm_known = 1;
        cn_net_refresh_names(net);
    }
    return st;
}

cn_status cn_train_resume(const char *checkpoint, const cn_train_config *cfg, cn_net **out) {
    if (out) *out = NULL;
    if (!checkpoint || !cfg) return cn_fail(CN_ERR_ARG, "cn_train_resume: checkpoint or config is NULL");
    cn_train_options o;
    to_options(cfg, &o);
    o.resume = checkpoint;
    cn_model *m = NULL;
    cn_checkpoint_info info;
    if (out) { o.model_out = &m; o.info_out = &info; }
    cn_status st = cn_train(&o);
    if (st || !out) { cn_model_free(m); return st; }
    return cn_net_wrap(m, &info, 1, out);
}
