/* The public API's model functions (convnet.h): queries, loading trained weights
 * (checkpoints and ONNX files), saving. */
#include "convnet.h"
#include "checkpoint.h"
#include "model.h"
#include "core/error.h"
#include "data/catalog.h"
#include "io/onnx.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cn_model_input_shape(const cn_model *m, int *channels, int *rows, int *cols) {
    *channels = m->input.c;
    *rows = m->input.h;
    *cols = m->input.w;
}

int cn_model_outputs_log_probabilities(const cn_model *m) { return m->num_layers > 0 && cn_model_outputs_log_probs(m); }

int cn_model_batchnorm_count(const cn_model *m, int *foldable) {
    int bn = 0, fold = 0;
    for (int i = 0; i < m->num_layers; i++)
        if (m->layers[i].kind == CN_LAYER_BATCHNORM2D) {
            bn++;
            fold += i > 0 && m->layers[i - 1].kind == CN_LAYER_CONV2D;
        }
    if (foldable) *foldable = fold;
    return bn;
}

const char *cn_model_name(const cn_model *m) { return m->source_name ? m->source_name : ""; }

int cn_path_is_onnx(const char *path) {
    size_t n = strlen(path), k = strlen(".onnx");
    return n >= k && !strcasecmp(path + n - k, ".onnx");
}

/* An ONNX file's info: its metadata where present, else the named dataset's. */
static cn_status load_onnx(const char *path, const char *dataset, cn_model **out, cn_model_info *info, int *norm_known) {
    cn_onnx_info *oi = malloc(sizeof *oi);   /* 32 kB of class names */
    if (!oi) return cn_fail(CN_ERR_NOMEM, "out of memory");
    cn_status st = cn_onnx_import_ex(path, oi, out);
    if (st) { free(oi); return st; }
    const char *name = dataset ? dataset : *oi->dataset ? oi->dataset : "mnist";
    const cn_dataset_info *d = cn_dataset_info_find(name);
    snprintf(info->dataset, sizeof info->dataset, "%s", d ? d->name : name);
    for (int c = 0; c < CN_MAX_CHANNELS; c++) {
        info->mean[c] = oi->has_normalization ? oi->mean[c] : d ? d->mean : 0.0f;
        info->std[c] = oi->has_normalization ? oi->std[c] : d ? d->std : 1.0f;
    }
    if (!oi->has_normalization && !d && norm_known) *norm_known = 0;
    int classes = cn_model_num_classes(*out);
    info->num_classes = classes < CN_MAX_CLASSES ? classes : CN_MAX_CLASSES;
    for (int k = 0; k < info->num_classes; k++) {
        if (oi->num_class_names == classes) memcpy(info->class_names[k], oi->class_names[k], sizeof info->class_names[k]);
        else if (d && d->num_classes == classes) snprintf(info->class_names[k], sizeof info->class_names[k], "%s", d->class_names[k]);
        else snprintf(info->class_names[k], sizeof info->class_names[k], "%d", k);
    }
    free(oi);
    return CN_OK;
}

cn_status cn_model_load(const char *path, const char *dataset, cn_model **out, cn_model_info *info, int *norm_known) {
    memset(info, 0, sizeof *info);
    *out = NULL;
    if (norm_known) *norm_known = 1;
    if (!cn_path_is_onnx(path)) return cn_checkpoint_load(path, out, info, NULL);
    return load_onnx(path, dataset, out, info, norm_known);
}

cn_status cn_model_save(const char *path, const cn_model *model, const cn_model_info *info) {
    return cn_checkpoint_save(path, model, info, NULL);
}
