/* The public API's prediction (convnet.h): images in, class probabilities out. */
#include "convnet.h"
#include "model.h"
#include "train.h"
#include "core/error.h"
#include "data/augment.h"
#include "data/csv.h"
#include "data/image_planes.h"
#include "exec/session.h"
#include "int8/int8_model.h"
#include "io/image.h"
#include "io/preprocess.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Probabilities from one image's scores: exp of log-probabilities, or a softmax of logits. */
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

/* scores (n, classes) to probs, refusing non-finite scores (finite but huge weights, a
 * diverged run, give NaN). */
static cn_status scores_to_probabilities(const float *scores, int n, int classes, int log_probs, float *probs) {
    for (int i = 0; i < n; i++) {
        const float *row = scores + (size_t)i * classes;
        for (int k = 0; k < classes; k++)
            if (!isfinite(row[k]))
                return cn_fail(CN_ERR_NUMERIC, "the model's outputs are not finite (%g); its weights diverged", (double)row[0]);
        to_probabilities(row, classes, log_probs, probs + (size_t)i * classes);
    }
    return CN_OK;
}

cn_status cn_predict(cn_session *s, const float *x, int n, float *probs) {
    if (n < 1 || n > cn_session_capacity(s))
        return cn_fail(CN_ERR_ARG, "cn_predict: %d images; the session takes 1 to %d", n, cn_session_capacity(s));
    const cn_model *m = cn_session_model(s);
    const float *scores = cn_session_forward(s, x, n, NULL);
    return scores_to_probabilities(scores, n, cn_model_num_classes(m), cn_model_outputs_log_probabilities(m), probs);
}

cn_status cn_int8_predict_probabilities(const cn_int8_model *q, int log_probs, const float *x, int n, int threads,
                                        float *probs) {
    int classes = cn_int8_model_num_classes(q);
    float *scores = malloc((size_t)n * classes * sizeof *scores + 1);
    if (!scores) return cn_fail(CN_ERR_NOMEM, "out of memory for %d images' scores", n);
    cn_status st = cn_int8_predict(q, x, n, threads > 0 ? threads : 1, scores, NULL);
    if (!st) st = scores_to_probabilities(scores, n, classes, log_probs, probs);
    free(scores);
    return st;
}

void cn_rank_classes(const float *p, int classes, int *order) {
    for (int k = 0; k < classes; k++) order[k] = k;
    for (int i = 1; i < classes; i++) { /* stable insertion sort: ties keep the lower class first */
        int v = order[i], j = i;
        while (j > 0 && p[order[j - 1]] < p[v]) { order[j] = order[j - 1]; j--; }
        order[j] = v;
    }
}

/* One PNG/JPEG for a model of any input shape, converted as the image-folder dataset
 * converts it, then normalised as the data loader does. */
static cn_status prepare_any_image(const char *path, const cn_model *m, const float *mean, const float *std, float *x) {
    uint8_t *data, *planes = NULL;
    size_t size;
    cn_color_image img = {0};
    cn_status st = cn_image_read_file(path, &data, &size);
    if (st == CN_OK) { st = cn_image_decode_color(data, size, path, &img); free(data); }
    size_t plane = (size_t)m->input.h * m->input.w;
    if (st == CN_OK && !(planes = malloc(plane * m->input.c))) st = cn_fail(CN_ERR_NOMEM, "%s: out of memory", path);
    if (st == CN_OK) st = cn_image_to_planes(&img, m->input.c, m->input.h, m->input.w, 1, 1, path, planes);
    cn_color_image_free(&img);
    if (st != CN_OK) { free(planes); return st; }
    for (int c = 0; c < m->input.c; c++) {
        cn_normalizer norm;
        cn_normalizer_init(&norm, mean[c], std[c]);
        for (size_t i = c * plane; i < (c + 1) * plane; i++) x[i] = norm.lut[planes[i]];
    }
    free(planes);
    return CN_OK;
}

/* One picture of a digit into x[28*28] (a 1x28x28 model), MNIST-like or (raw) as it is. */
static cn_status prepare_digit(const char *path, int raw, float mean, float std, float *x, cn_image_report *rep) {
    cn_gray_image img;
    cn_status st = cn_image_load(path, &img);   /* the message starts with the file name */
    if (st) return st;
    int n = CN_DIGIT_SIDE * CN_DIGIT_SIDE;
    rep->width = img.width;
    rep->height = img.height;
    if (raw) {
        if (img.width != CN_DIGIT_SIDE || img.height != CN_DIGIT_SIDE)   /* (raw: the CLI's --no-preprocess) */
            st = cn_fail(CN_ERR_SHAPE, "%s: image is %dx%d; --no-preprocess needs %dx%d", path, img.width, img.height,
                         CN_DIGIT_SIDE, CN_DIGIT_SIDE);
        else
            for (int i = 0; i < n; i++) x[i] = img.pixels[i] / 255.0f;
    } else {
        cn_preprocess_info pi;
        st = cn_preprocess_digit_ex(&img, x, &pi);
        if (st) cn_error_prefix("%s", path);
        else {
            rep->digit = 1;
            rep->inverted = pi.inverted;
            rep->background = pi.background;
            rep->ink_max = pi.ink_max;
            rep->box_x = pi.box_x; rep->box_y = pi.box_y; rep->box_width = pi.box_width; rep->box_height = pi.box_height;
            rep->scaled_width = pi.scaled_width; rep->scaled_height = pi.scaled_height;
            rep->shift_x = pi.shift_x; rep->shift_y = pi.shift_y;
        }
    }
    cn_image_free(&img);
    if (!st)
        for (int i = 0; i < n; i++) x[i] = (x[i] - mean) / std;
    return st;
}

cn_status cn_image_prepare(const char *path, const cn_model *m, const float *mean, const float *std, int raw, float *x,
                           cn_image_report *report) {
    cn_image_report unused;
    cn_image_report *rep = report ? report : &unused;
    memset(rep, 0, sizeof *rep);
    if (m->input.c == 1 && m->input.h == CN_DIGIT_SIDE && m->input.w == CN_DIGIT_SIDE)
        return prepare_digit(path, raw, mean[0], std[0], x, rep);
    return prepare_any_image(path, m, mean, std, x);
}

cn_status cn_predict_csv(cn_model *m, const cn_int8_model *q, const float *mean, const float *std, const char *csv,
                         const char *out, int threads, int *count) {
    *count = 0;
    cn_split s;
    cn_status st = cn_csv_read(csv, m->input.c, m->input.h, m->input.w, 0, 0, &s, NULL);
    if (st) return st;
    int *pred = calloc((size_t)s.count + 1, sizeof *pred);
    double loss;
    int correct;
    if (threads < 1) threads = 1;
    st = !pred ? cn_fail(CN_ERR_NOMEM, "out of memory for %d predictions", s.count)
         : q   ? cn_int8_evaluate(q, &s, threads, &loss, &correct, pred)
               : cn_evaluate(m, &s, mean, std, threads, &loss, &correct, pred);
    if (st == CN_OK) st = cn_csv_write_submission(out, pred, s.count);
    if (st == CN_OK) *count = s.count;
    free(pred);
    cn_split_free(&s);
    return st;
}
