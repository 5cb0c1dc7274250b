/* The WebAssembly runtime's entry points: what the exported page calls.
 * Built only for wasm32 (the Makefile's web runtime rule: clang
 * --target=wasm32-wasi with wasi-libc, together with web_model.c,
 * preprocess.c and core/error.c, core/mem.c); not part of libconvnet.
 *
 * Use from JavaScript: p = cnw_alloc(n), copy the blob to p, cnw_load(p, n);
 * then per drawing p = cnw_gray(w, h), fill w*h gray bytes, cnw_classify(w, h),
 * and read cnw_probs() (classes floats) and cnw_digit() (28*28 floats). A
 * non-zero status has its message at cnw_error() (a NUL-terminated string). */
#include "io/web_model.h"
#include "io/preprocess.h"
#include "core/error.h"
#include <stdlib.h>

#define EXPORT(name) __attribute__((export_name(#name)))

static cn_web_model model;
static float *work;
static uint8_t *gray;
static size_t gray_size;
static float scores[CN_WEB_MAX_CLASSES], probs[CN_WEB_MAX_CLASSES];
static float digit[CN_DIGIT_SIDE * CN_DIGIT_SIDE];

EXPORT(cnw_alloc) void *cnw_alloc(size_t bytes) { return malloc(bytes ? bytes : 1); }
EXPORT(cnw_free) void cnw_free(void *p) { free(p); }
EXPORT(cnw_error) const char *cnw_error(void) { return cn_last_error(); }

/* Parses the blob (which the caller may free afterwards); returns a cn_status. */
EXPORT(cnw_load) int cnw_load(const void *blob, size_t size) {
    cn_web_model_free(&model);
    free(work);
    work = NULL;
    cn_status st = cn_web_model_parse(blob, size, &model);
    if (st) return st;
    size_t n = cn_web_model_workspace(&model) + (size_t)model.c * model.h * model.w;
    if (n < cn_web_model_workspace(&model) + CN_DIGIT_SIDE * CN_DIGIT_SIDE)
        n = cn_web_model_workspace(&model) + CN_DIGIT_SIDE * CN_DIGIT_SIDE;
    work = calloc(n, sizeof *work);
    return work ? CN_OK : cn_fail(CN_ERR_NOMEM, "out of memory for %zu floats of workspace", n);
}

EXPORT(cnw_classes) int cnw_classes(void) { return model.classes; }

/* A buffer for a width x height gray picture (0 = black, 255 = white). */
EXPORT(cnw_gray) uint8_t *cnw_gray(int width, int height) {
    size_t n = (size_t)width * (size_t)height;
    if (n > gray_size) {
        free(gray);
        gray = malloc(n);
        gray_size = gray ? n : 0;
    }
    return gray;
}

/* Classifies the picture in cnw_gray's buffer: preprocessed as `convnet predict` does. */
EXPORT(cnw_classify) int cnw_classify(int width, int height) {
    if (!work || !gray || (size_t)width * (size_t)height > gray_size)
        return cn_fail(CN_ERR_ARG, "cnw_classify before cnw_load or cnw_gray(%d, %d)", width, height);
    return cn_web_classify_drawing(&model, gray, width, height, work, digit, scores, probs);
}

/* Classifies 28x28 bytes at `pixels` as they are (the self-test's MNIST digits). */
EXPORT(cnw_classify_raw) int cnw_classify_raw(const uint8_t *pixels) {
    if (!work) return cn_fail(CN_ERR_ARG, "cnw_classify_raw before cnw_load");
    cn_web_classify_raw(&model, pixels, work, scores, probs);
    return CN_OK;
}

EXPORT(cnw_probs) const float *cnw_probs(void) { return probs; }
EXPORT(cnw_scores) const float *cnw_scores(void) { return scores; }
EXPORT(cnw_digit) const float *cnw_digit(void) { return digit; }
