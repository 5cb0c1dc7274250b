/* PNG charts drawn with cairo: training curves, a confusion matrix, and a grid
 * of (misclassified) images. Each function draws on a white background, checks
 * cairo's status, and writes the PNG atomically: to "PATH.tmp.PID" first, then
 * renamed over PATH, so a reader never sees half a file. Text uses the
 * fontconfig "sans-serif" face (DejaVu Sans on Debian). Errors: CN_ERR_ARG for
 * bad arguments, CN_ERR_IO when the file cannot be written, CN_ERR_NOMEM when
 * cairo runs out of memory; the message names the path. */
#ifndef CN_IO_PLOT_H
#define CN_IO_PLOT_H
#include "convnet.h"
#include <stdint.h>

#define CN_PLOT_MAX_EPOCHS 100000
#define CN_PLOT_MAX_CLASSES 100
#define CN_PLOT_MAX_GRID_IMAGES 100 /* cn_plot_image_grid draws at most this many */
#define CN_PLOT_MAX_IMAGE_SIDE 256

/* 1200x500 PNG, two panels side by side: loss | accuracy (%), against epoch
 * 1..epochs (x ticks at whole epochs, y ticks at round steps: 1, 2 or 5 times a
 * power of ten), each with a legend (train blue circles, test orange squares,
 * validation green triangles, each with its last value). `title` (e.g. the
 * model's name) heads the chart. Each array holds `epochs` values; any of them
 * may be NULL and is then left out (the signature's val_* are the usual NULLs).
 * Accuracies are in percent (0..100). Non-finite values (a diverged loss) are
 * skipped, breaking the line. epochs: 1..CN_PLOT_MAX_EPOCHS. */
cn_status cn_plot_training_curves(const char *path, const char *title, int epochs,
                                  const double *train_loss, const double *test_loss, const double *val_loss,
                                  const double *train_acc, const double *test_acc, const double *val_acc);

/* Heat map of `counts` (classes x classes, row = true class, column =
 * predicted), each cell shaded by its share of the row (white 0% to dark
 * blue 100% on a square-root scale, so that 1% confusions show; with a colour
 * bar) and labelled with its count (bold on the diagonal); axes
 * "true" and "predicted" with the class names (NULL: "0", "1", ...); the
 * overall accuracy under the title. classes: 1..CN_PLOT_MAX_CLASSES; counts
 * must be non-negative. Size grows with the number of classes (~740x720 for 10). */
cn_status cn_plot_confusion_matrix(const char *path, const char *title, int classes,
                                   const int64_t *counts, const char *const *class_names);

/* Grid of `count` images (count x channels x rows x cols bytes, channel
 * planes; 1 channel: gray, 0 = black, 255 = white, as in MNIST; 3 or 4: the
 * first three planes are red, green, blue; 2: the first plane as gray), each enlarged with nearest-neighbour sampling and captioned
 * "true T / pred P" (red when they differ, green when equal; just "true T" if
 * pred_labels is NULL). Labels name class_names[label] when class_names is
 * not NULL (it must then have an entry for every label), else the number; a
 * negative label shows as "?". At most CN_PLOT_MAX_GRID_IMAGES are drawn (the
 * first ones; the subtitle says how many of how many). count 0 draws a
 * "no misclassified images" panel (images and labels may then be NULL).
 * rows, cols: 1..CN_PLOT_MAX_IMAGE_SIDE. */
cn_status cn_plot_image_grid(const char *path, const char *title, int count, const uint8_t *images,
                             int channels, int rows, int cols, const int *true_labels, const int *pred_labels,
                             const char *const *class_names);

/* 900x520 PNG of a sweep: accuracy (%) against the swept values x_names[0..n_x) (a
 * categorical axis, in the order given), one line per series: at each value the mean
 * over seeds (marker) and a bar from the worst to the best seed. mean, lo, hi:
 * (n_series, n_x), NAN where a series has no result at that value. Up to 8 series
 * (each with a legend entry, series_names[k]); n_x: 1..50. */
cn_status cn_plot_sweep(const char *path, const char *title, const char *x_label, int n_x, const char *const *x_names,
                        int n_series, const char *const *series_names, const double *mean, const double *lo,
                        const double *hi);

#endif
