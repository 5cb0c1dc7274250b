/* Datasets: locating, loading and splitting them. The formats: the four IDX
 * files of the MNIST family ("mnist", "fashion-mnist", "kmnist", "idx"), an
 * image folder ("folder", data/folder.h), Kaggle CSV files ("csv",
 * data/csv.h) and CIFAR-10's binary batches ("cifar10", data/cifar.h).
 * Images stay uint8 (count, channels, rows, cols) in memory; the loader normalises. */
#ifndef CN_DATA_DATASET_H
#define CN_DATA_DATASET_H
#include "convnet.h"
#include <stddef.h>
#include <stdint.h>

/* CN_MAX_CLASSES, CN_MAX_CHANNELS, CN_MAX_SIDE, CN_CLASS_NAME_MAX: convnet.h */

typedef struct {
    int count, rows, cols;
    int channels;    /* 1..CN_MAX_CHANNELS; 0 is read as 1 (IDX) */
    uint8_t *images; /* count*channels*rows*cols: per image, channel planes of row-major pixels */
    uint16_t *labels;/* count, each < num_classes */
} cn_split;

/* Bytes of one image of a split: channels*rows*cols. */
static inline size_t cn_split_image_size(const cn_split *s) {
    return (size_t)(s->channels > 0 ? s->channels : 1) * (size_t)s->rows * (size_t)s->cols;
}

typedef struct {
    char name[32];              /* "mnist", "fashion-mnist", "kmnist", "idx", "folder", "csv", "cifar10" */
    char dir[4096];             /* where the files were found */
    cn_split train, test;
    cn_split val;               /* a folder's val/ split (count 0 when absent) */
    float mean[CN_MAX_CHANNELS], std[CN_MAX_CHANNELS]; /* per channel: x = (pixel/255 - mean) / std */
    int num_classes;
    char class_names[CN_MAX_CLASSES][CN_CLASS_NAME_MAX];
    int skipped;                /* unreadable images left out (--skip-bad) */
    int from_cache;             /* splits read from the decoded-image cache (image folders) */
} cn_dataset;


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
/* The same with every option: also "folder", "csv" and "cifar10". Mean and
 * std are per channel: given, published (the named datasets), or computed
 * from the training images and cached beside the data. */
cn_status cn_dataset_open(const cn_data_options *o, cn_dataset *out);
/* Parts of a dataset (cn_data_options.parts, cn_dataset_load_parts): CN_DATASET_TRAIN,
 * CN_DATASET_TEST (convnet.h, as cn_data_options). */
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
