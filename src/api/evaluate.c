/* cn_net_evaluate and cn_net_predict (include/convnet.h). */
#include "api/net.h"
#include "core/error.h"
#include "core/mem.h"
#include "train.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

cn_status cn_net_evaluate(cn_net *net, const cn_data *data, cn_split_id split, int threads, cn_eval_result *result,
                          int64_t *confusion, int *predictions) {
    const cn_split *s = split == CN_SPLIT_TRAIN ? &data->ds.train : &data->ds.test;
    float mean = net->info.mean, std = net->info.std;
    if (!net->norm_known) { mean = data->ds.mean; std = data->ds.std; }
    int *pred = predictions;
    if (!pred && confusion && !(pred = cn_calloc(s->count ? s->count : 1, sizeof *pred))) return CN_ERR_NOMEM;
    double loss;
    int correct;
    cn_status st = cn_evaluate(net->model, s, mean, std, threads > 0 ? threads : 2, &loss, &correct, pred);
    if (!st && confusion) {
        int classes = data->ds.num_classes;
        memset(confusion, 0, (size_t)classes * classes * sizeof *confusion);
        cn_confusion_add(confusion, classes, s->labels, pred, s->count);
    }
    if (pred != predictions) free(pred);
    if (st) return st;
    result->count = s->count;
    result->correct = correct;
    result->loss = s->count ? loss / s->count : 0.0;
    result->accuracy = s->count ? 100.0 * correct / s->count : 0.0;
    return CN_OK;
}

/* Probabilities from the model's scores: exp of log-probabilities, or a softmax of logits. */
static void to_probabilities(const float *scores, int classes, int log_probs, float *p) {
    if (log_probs) {
        double sum = 0;
        for (int k = 0; k < classes; k++) sum += (p[k] = expf(scores[k]));
        for (int k = 0; k < classes; k++) p[k] = (float)(p[k] / sum); /* renormalise float rounding */
        return;
    }
    float mx = scores[0];
    for (int k = 1; k < classes; k++) if (scores[k] > mx) mx = scores[k];
    double sum = 0;
    for (int k = 0; k < classes; k++) sum += (p[k] = expf(scores[k] - mx));
    for (int k = 0; k < classes; k++) p[k] = (float)(p[k] / sum);
}

/* One image at a time (batch 1, the workspace the net has or a one-thread one):
 * a result does not depend on how many images come with it. */
static cn_status predict(cn_net *net, const float *images, const uint8_t *bytes, int n, float *probs) {
    cn_model *m = net->model;
    if (n < 0 || (n > 0 && (!probs || (!images && !bytes))))
        return cn_fail(CN_ERR_ARG, "cn_net_predict: %d images need non-NULL images and probs", n);
    int pixels = cn_shape_size(m->input), classes = cn_model_num_classes(m);
    cn_status st = m->batch_capacity > 0 ? CN_OK : cn_model_reserve(m, 1, 1);
    if (st) return st;
    float *x = cn_alloc_floats((size_t)pixels);
    if (!x) return CN_ERR_NOMEM;
    cn_model_set_training(m, false);
    float mean = net->info.mean, std = net->info.std;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < pixels; j++) {
            float v = images ? images[(size_t)i * pixels + j] : bytes[(size_t)i * pixels + j] / 255.0f;
            x[j] = (v - mean) / std;
        }
        const float *scores = cn_model_forward(m, x, 1, NULL);
        to_probabilities(scores, classes, cn_model_outputs_log_probs(m), probs + (size_t)i * classes);
    }
    cn_free_aligned(x);
    return CN_OK;
}

cn_status cn_net_predict(cn_net *net, const float *images, int n, float *probs) {
    return predict(net, images, NULL, n, probs);
}

cn_status cn_net_predict_u8(cn_net *net, const uint8_t *images, int n, float *probs) {
    return predict(net, NULL, images, n, probs);
}

void cn_rank_classes(const float *p, int classes, int *order) {
    for (int k = 0; k < classes; k++) order[k] = k;
    for (int i = 1; i < classes; i++) { /* stable insertion sort: ties keep the lower class first */
        int v = order[i], j = i;
        while (j > 0 && p[order[j - 1]] < p[v]) { order[j] = order[j - 1]; j--; }
        order[j] = v;
    }
}
