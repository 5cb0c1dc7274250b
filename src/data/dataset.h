/* Datasets: locating, loading and splitting the four IDX files of a dataset.
 * Images stay uint8 (count, rows, cols) in memory; the loader normalises. */
#ifndef CN_DATA_DATASET_H
#define CN_DATA_DATASET_H
#include "convnet.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int count, rows, cols;
    uint8_t *images; /* count*rows*cols, row-major, 0 = background */
    uint8_t *labels; /* count, each < num_classes */
} cn_split;

typedef struct {
    char name[32];              /* "mnist", "fashion-mnist", "kmnist", "idx" */
    char dir[4096];             /* where the files were found */
    cn_split train, test;
    float mean, std;            /* normalisation: x = (pixel/255 - mean) / std */
    int num_classes;
    char class_names[64][32];
} cn_dataset;

#define CN_MAX_CLASSES 64

/* Finds (or, if allow_download, downloads) and loads a named dataset:
 * "mnist", "fashion-mnist", "kmnist", or "idx" (any four IDX files).
 * With dir given, only dir is searched (and dir/<TorchvisionName>/raw, the
 * layout torchvision's datasets leave). With dir NULL: $CONVNET_DATA/<name>,
 * then ./data/<name>; for mnist also $CONVNET_DATA itself; for fashion-mnist
 * also /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist);
 * for idx: $CONVNET_DATA, then ./data. A download goes to dir, else
 * $CONVNET_DATA/<name>, else ./data/<name>. Each file may be .gz or raw (raw
 * preferred when both exist). Missing files: CN_ERR_IO, one line naming the
 * files, the directories searched and the ways to get them. For idx, the
 * classes are 0..N-1 with N = largest label + 1 (at most 64), and mean/std
 * come from the training images, cached in DIR/.convnet-stats when writable.
 * On failure *out is left empty (safe to cn_dataset_free). */
cn_status cn_dataset_load(const char *name, const char *dir, int allow_download, cn_dataset *out);
/* Parts of a dataset for cn_dataset_load_parts. */
#define CN_DATASET_TRAIN 1
#define CN_DATASET_TEST 2
/* The same for some parts only: CN_DATASET_TEST finds, downloads and loads
 * just the two test files (`convnet eval`); the other split stays empty
 * (count 0). A test-only idx load takes its classes and mean/std from the
 * test files. Any of the files that is not a regular file (a device, FIFO or
 * directory under that name) is CN_ERR_IO, "PATH: not a regular file". */
cn_status cn_dataset_load_parts(const char *name, const char *dir, int allow_download, int parts, cn_dataset *out);
void cn_dataset_free(cn_dataset *ds);

/* Where a download of `name` goes when no directory is given:
 * $CONVNET_DATA/<name> if CONVNET_DATA is set, else ./data/<name>.
 * CN_ERR_ARG if the path does not fit in `size` bytes. */
cn_status cn_dataset_default_dir(const char *name, char *buf, size_t size);

/* Loads one image file and its label file into a split, checking that the
 * counts match and every label is < num_classes (num_classes <= 0: no check). */
cn_status cn_split_load(const char *images_path, const char *labels_path, int num_classes, cn_split *out);
void cn_split_free(cn_split *split);

/* Splits off `count` training images as a validation split (0 < count < train.count):
 * a permutation seeded by `seed` picks them; they are copied into *val_out
 * (in their original order) and removed from ds->train, which keeps the order
 * of the rest. Free *val_out with cn_split_free. */
cn_status cn_dataset_split_validation(cn_dataset *ds, int count, uint64_t seed, cn_split *val_out);

#endif
