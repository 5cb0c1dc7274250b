/* cn_net: creating, loading, saving and querying networks (include/convnet.h). */
#include "api/net.h"
#include "core/error.h"
#include "data/catalog.h"
#include "io/onnx.h"
#include "summary.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cn_net_refresh_names(cn_net *net) {
    int classes = cn_model_num_classes(net->model);
    for (int k = 0; k < classes && k < CN_MAX_CLASSES; k++) {
        if (net->info.num_classes == classes) snprintf(net->names[k], sizeof net->names[k], "%s", net->info.class_names[k]);
        else snprintf(net->names[k], sizeof net->names[k], "%d", k); /* names missing or not matching */
    }
}

cn_status cn_net_wrap(cn_model *model, const cn_checkpoint_info *info, int norm_known, cn_net **out) {
    *out = NULL;
    cn_net *net = calloc(1, sizeof *net);
    if (!net) { cn_model_free(model); return cn_fail(CN_ERR_NOMEM, "out of memory for a network"); }
    net->model = model;
    net->info = *info;
    net->norm_known = norm_known;
    cn_net_refresh_names(net);
    *out = net;
    return CN_OK;
}

/* A fresh model knows no dataset: no normalisation, classes numbered. */
static cn_status wrap_fresh(cn_model *m, cn_net **out) {
    cn_checkpoint_info info;
    memset(&info, 0, sizeof info);
    info.std = 1.0f;
    return cn_net_wrap(m, &info, 0, out);
}

cn_status cn_net_from_preset(const char *name_or_path, uint64_t seed, cn_net **out) {
    *out = NULL;
    cn_model *m;
    cn_status st = cn_model_load_spec(name_or_path, seed, &m);
    return st ? st : wrap_fresh(m, out);
}

cn_status cn_net_from_spec(const char *spec_text, const char *source_name, uint64_t seed, cn_net **out) {
    *out = NULL;
    cn_model *m;
    cn_status st = cn_model_from_spec(spec_text, source_name, seed, &m);
    return st ? st : wrap_fresh(m, out);
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

/* An ONNX file carries no dataset: `dataset` (NULL: mnist) gives the class
 * names and the default normalisation; the file's metadata wins when present. */
static cn_status load_onnx(const char *path, const char *dataset, cn_net **out) {
    cn_onnx_info oi;
    cn_model *m;
    cn_status st = cn_onnx_import_ex(path, &oi, &m);
    if (st) return st;
    cn_checkpoint_info info;
    memset(&info, 0, sizeof info);
    const char *name = dataset ? dataset : "mnist";
    const cn_dataset_info *d = cn_dataset_info_find(name);
    snprintf(info.dataset, sizeof info.dataset, "%s", d ? d->name : name);
    info.mean = d ? d->mean : 0.0f;
    info.std = d ? d->std : 1.0f;
    int norm_known = 1;
    if (oi.has_normalization) { info.mean = oi.mean; info.std = oi.std; }
    else if (!d) norm_known = 0;
    int classes = cn_model_num_classes(m);
    info.num_classes = classes < CN_MAX_CLASSES ? classes : CN_MAX_CLASSES;
    for (int k = 0; k < info.num_classes; k++) {
        if (d && d->num_classes == classes) snprintf(info.class_names[k], sizeof info.class_names[k], "%s", d->class_names[k]);
        else snprintf(info.class_names[k], sizeof info.class_names[k], "%d", k);
    }
    return cn_net_wrap(m, &info, norm_known, out);
}

cn_status cn_net_load(const char *path, const char *dataset, cn_net **out) {
    *out = NULL;
    if (has_suffix(path, ".onnx")) return load_onnx(path, dataset, out);
    cn_model *m;
    cn_checkpoint_info info;
    memset(&info, 0, sizeof info);
    cn_status st = cn_checkpoint_load(path, &m, &info, NULL);
    return st ? st : cn_net_wrap(m, &info, 1, out);
}

cn_status cn_net_open(const char *name, const char *dataset, uint64_t seed, cn_net **out) {
    if (has_suffix(name, ".safetensors") || has_suffix(name, ".onnx")) return cn_net_load(name, dataset, out);
    return cn_net_from_preset(name, seed, out);
}

void cn_net_free(cn_net *net) {
    if (!net) return;
    cn_model_free(net->model);
    free(net);
}

cn_status cn_net_save(const cn_net *net, const char *path) {
    return cn_checkpoint_save(path, net->model, &net->info, NULL);
}

cn_status cn_model_write_summary(const cn_model *model, FILE *out) { return cn_summary_write(model, out); }

const cn_model *cn_net_model(const cn_net *net) { return net->model; }

void cn_net_input_shape(const cn_net *net, int *channels, int *height, int *width) {
    if (channels) *channels = net->model->input.c;
    if (height) *height = net->model->input.h;
    if (width) *width = net->model->input.w;
}

int cn_net_num_classes(const cn_net *net) { return cn_model_num_classes(net->model); }

const char *cn_net_class_name(const cn_net *net, int k) {
    return k >= 0 && k < cn_net_num_classes(net) && k < CN_MAX_CLASSES ? net->names[k] : NULL;
}

const char *cn_net_dataset(const cn_net *net) { return net->info.dataset; }

int cn_net_normalization(const cn_net *net, float *mean, float *std) {
    if (mean) *mean = net->info.mean;
    if (std) *std = net->info.std;
    return net->norm_known;
}

size_t cn_net_param_count(const cn_net *net) { return cn_model_param_count(net->model); }
const char *cn_net_spec(const cn_net *net) { return net->model->spec_text; }
const char *cn_net_source_name(const cn_net *net) { return net->model->source_name; }
