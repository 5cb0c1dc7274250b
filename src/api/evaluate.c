/* The public API's evaluation (convnet.h): the test split through a model or its int8
 * version, with the confusion matrix counted here (not by each client). */
#include "convnet.h"
#include "api/data.h"
#include "train.h"
#include "core/error.h"
#include "int8/int8_model.h"
#include <stdlib.h>
#include <string.h>

/* Fills r's counts and confusion matrix from the test split's predictions. */
static cn_status fill_result(const cn_split *test, int classes, const int *pred, double loss, int correct,
                             cn_eval_result *r) {
    r->confusion = calloc((size_t)classes * classes + 1, sizeof *r->confusion);
    if (!r->confusion) return cn_fail(CN_ERR_NOMEM, "out of memory for a %dx%d confusion matrix", classes, classes);
    for (int i = 0; i < test->count; i++)
        if (pred[i] >= 0 && pred[i] < classes) r->confusion[(size_t)test->labels[i] * classes + pred[i]]++;
    r->loss_sum = loss;
    r->correct = correct;
    r->count = test->count;
    r->classes = classes;
    return CN_OK;
}

/* The test split of `data` through the model (q NULL) or its int8 version. */
static cn_status evaluate_test(cn_model *model, const cn_int8_model *q, const cn_data *data, const float *mean,
                               const float *std, int threads, cn_eval_result *out) {
    memset(out, 0, sizeof *out);
    const cn_dataset *ds = cn_data_dataset(data);
    int *pred = calloc((size_t)ds->test.count + 1, sizeof *pred);
    if (!pred) return cn_fail(CN_ERR_NOMEM, "out of memory for %d predictions", ds->test.count);
    double loss;
    int correct;
    if (threads < 1) threads = 1;
    cn_status st = q ? cn_int8_evaluate(q, &ds->test, threads, &loss, &correct, pred)
                     : cn_evaluate(model, &ds->test, mean, std, threads, &loss, &correct, pred);
    if (!st) st = fill_result(&ds->test, ds->num_classes, pred, loss, correct, out);
    free(pred);
    return st;
}

cn_status cn_evaluate_data(cn_model *model, const cn_data *data, const float *mean, const float *std, int threads,
                           cn_eval_result *out) {
    return evaluate_test(model, NULL, data, mean, std, threads, out);
}

void cn_eval_result_free(cn_eval_result *r) {
    if (!r) return;
    free(r->confusion);
    r->confusion = NULL;
}

cn_status cn_int8_calibrate(const cn_model *model, const float *mean, const float *std, const cn_data *data,
                            int *calibration, cn_int8_model **out) {
    *out = NULL;
    return cn_int8_model_calibrated(model, mean, std, &cn_data_dataset(data)->train, calibration, out);
}

cn_status cn_int8_evaluate_data(const cn_int8_model *q, const cn_data *data, int threads, cn_eval_result *out) {
    return evaluate_test(NULL, q, data, NULL, NULL, threads, out);
}
