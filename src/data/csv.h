/* Kaggle's CSV image files ("Digit Recognizer"): an optional header line
 * (`label,pixel0,...,pixel783`, or `pixel0,...` without labels), then one
 * image per line: the label (when there is a label column), then C*H*W
 * pixel values 0..255 in channel, row, column order, comma-separated. Lines
 * may end in CRLF; blank lines are skipped. Without a header the label column
 * is there when a line has C*H*W + 1 values.
 *
 * Errors, one line each, naming the file and line: a line with the wrong
 * number of values (and what was expected), a value that is not an integer,
 * a pixel outside 0..255, a label above 65535 (or, in a test file, outside
 * the training file's classes), no images, an unlabelled file where labels are
 * needed. */
#ifndef CN_DATA_CSV_H
#define CN_DATA_CSV_H
#include "data/dataset.h"

#define CN_CSV_MAX_BYTES ((size_t)4 << 30)

/* Parses `size` bytes (the fuzzing entry point). `name` names the file in
 * messages. need_label: 1 the file must have a label column, 0 it may have
 * one or not. num_classes > 0: labels must be below it. *has_label (may be
 * NULL) says whether it had; without one, out->labels are all 0. */
cn_status cn_csv_parse(const void *data, size_t size, const char *name, int channels, int rows, int cols,
                       int need_label, int num_classes, cn_split *out, int *has_label);
/* The same from a (regular) file. */
cn_status cn_csv_read(const char *path, int channels, int rows, int cols, int need_label, int num_classes, cn_split *out,
                      int *has_label);

/* --dataset csv: DIR/train.csv and DIR/test.csv, both labelled; shape from
 * o->channels/rows/cols (default 1x28x28). Classes 0..N-1, N = largest
 * training label + 1 (2..CN_MAX_CLASSES). stats_key: DIR/train.csv. */
cn_status cn_csv_load_dataset(const cn_data_options *o, const char *dir, cn_dataset *out, char *stats_key, size_t key_size);

/* Writes Kaggle's submission file: "ImageId,Label", then one line per image
 * "i,class" with i from 1. Atomic (temporary file, then rename). */
cn_status cn_csv_write_submission(const char *path, const int *predictions, int count);

#endif
