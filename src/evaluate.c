/* Evaluation of a model on a split, in one process or shared by the ranks of a
 * data-parallel run. The loss is summed per batch of the session's capacity, then over
 * the batches in order; the ranks split the batches, so they sum the same numbers in
 * the same order as one process. */
#include "train.h"
#include "loss.h"
#include "core/error.h"
#include "core/mem.h"
#include "data/loader.h"
#include <stdlib.h>
#include <string.h>

#define EVAL_BATCH 500

cn_status cn_evaluate(cn_model *m, const cn_split *split, const float *mean, const float *std, int threads,
                      double *loss_sum, int *correct, int *predictions) {
    cn_status st = cn_check_input_shape(m, split, "the");
    if (st) return st;
    cn_session *s;
    st = cn_session_create(m, EVAL_BATCH, threads, 0, &s);
    if (st) return st;
    st = cn_evaluate_session(s, split, mean, std, loss_sum, correct, predictions);
    cn_session_free(s);
    return st;
}

/* Batches b0 .. b1-1 of the split (of the session's capacity): batch_loss[b] their summed
 * losses, *correct the hits, predictions[i] (when not NULL) the class of each of their images. */
static cn_status evaluate_batches(cn_session *s, const cn_split *split, const float *mean, const float *std, int b0,
                                  int b1, double *batch_loss, int *correct, int *predictions) {
    const cn_model *m = cn_session_model(s);
    int pixels = (int)cn_split_image_size(split), classes = cn_model_num_classes(m), batch = cn_session_capacity(s);
    cn_status st = cn_check_input_shape(m, split, "the");
    if (st) return st;
    float *x = cn_alloc_floats((size_t)batch * pixels);
    int *labels = cn_calloc(batch, sizeof *labels), *idx = cn_calloc(batch, sizeof *idx);
    if (!x || !labels || !idx) { cn_free_aligned(x); free(labels); free(idx); return CN_ERR_NOMEM; }
    bool was_training = cn_session_training(s);
    cn_session_set_training(s, false);
    int hits = 0;
    for (int b = b0; b < b1; b++) {
        int start = b * batch, n = split->count - start < batch ? split->count - start : batch;
        for (int i = 0; i < n; i++) idx[i] = start + i;
        cn_loader_fill(split, idx, n, mean, std, NULL, 0, x, labels);
        const float *out = cn_session_forward(s, x, n, NULL);
        int c;
        batch_loss[b] = cn_loss_batch(out, labels, n, classes, cn_model_outputs_log_probs(m), 0.0f, NULL, &c);
        hits += c;
        if (predictions)
            for (int i = 0; i < n; i++) {
                const float *sc = out + (size_t)i * classes;
                int best = 0;
                for (int k = 1; k < classes; k++) if (sc[k] > sc[best]) best = k;
                predictions[start + i] = best;
            }
    }
    cn_session_set_training(s, was_training);
    cn_free_aligned(x); free(labels); free(idx);
    *correct = hits;
    return CN_OK;
}

cn_status cn_evaluate_session(cn_session *s, const cn_split *split, const float *mean, const float *std,
                              double *loss_sum, int *correct, int *predictions) {
    return cn_evaluate_shared(s, split, mean, std, NULL, loss_sum, correct, predictions);
}

/* With an exchange, rank r evaluates the batches cn_exchange_share(batches, r, R); the
 * others' per-batch losses, hits and predictions are zeros in its arrays, so the sums
 * over the ranks are exact and complete (x + 0 = x). */
cn_status cn_evaluate_shared(cn_session *s, const cn_split *split, const float *mean, const float *std,
                             const cn_exchange *x, double *loss_sum, int *correct, int *predictions) {
    int classes = cn_model_num_classes(cn_session_model(s));
    /* The loss reads the score of each label: a label past the model's outputs would read past them. */
    for (int i = 0; i < split->count; i++)
        if (split->labels[i] >= classes)
            return cn_fail(CN_ERR_SHAPE, "image %d has label %d but the model outputs only %d classes (0..%d)", i,
                           split->labels[i], classes, classes - 1);
    int batch = cn_session_capacity(s), batches = (split->count + batch - 1) / batch, first = 0, count = batches;
    if (x) cn_exchange_share(batches, x->rank, x->ranks, &first, &count);
    /* per batch: the loss; then the hits; then (exchange) the predictions, as doubles */
    size_t n = (size_t)batches + 1 + (x && predictions ? (size_t)split->count : 0);
    double *sums = cn_calloc(n ? n : 1, sizeof *sums);
    if (!sums) return CN_ERR_NOMEM;
    int hits = 0;
    if (predictions && x) memset(predictions, 0, (size_t)split->count * sizeof *predictions);
    cn_status st = evaluate_batches(s, split, mean, std, first, first + count, sums, &hits, predictions);
    if (st) { free(sums); return st; }
    sums[batches] = hits;
    if (x) {
        double *pred = sums + batches + 1;
        for (int i = 0; predictions && i < split->count; i++) pred[i] = predictions[i];
        x->sum_doubles(x, sums, n);
        for (int i = 0; predictions && i < split->count; i++) predictions[i] = (int)pred[i];
    }
    double total = 0.0;
    for (int b = 0; b < batches; b++) total += sums[b];
    *loss_sum = total;
    *correct = (int)sums[batches];
    free(sums);
    return CN_OK;
}
