/* CIFAR-10, binary version (https://www.cs.toronto.edu/~kriz/cifar.html):
 * cifar-10-binary.tar.gz holds cifar-10-batches-bin/data_batch_{1..5}.bin,
 * test_batch.bin and batches.meta.txt (the class names, one a line). Each
 * batch is a sequence of 3073-byte records: the label (0..9), then the
 * 32x32 red, green and blue planes, row-major: already convnet's
 * (channels, rows, cols) form. The real files hold 10,000 records each; any
 * whole number of records (at least one) is accepted, so tests can use small
 * files. Normalisation: torchvision's usual CIFAR-10 constants, mean
 * (0.4914, 0.4822, 0.4465), std (0.2470, 0.2435, 0.2616).
 *
 * The files are looked for in DIR/cifar-10-batches-bin, then DIR (DIR: --data,
 * else $CONVNET_DATA/cifar10, else ./data/cifar10). When missing and downloads
 * are allowed, the tarball is fetched into DIR (CONVNET_MIRROR replaces the
 * URL prefix, file:// works), checked against its published MD5
 * c32a1d4ab5d03f1284b67883e8d87530 and unpacked with libarchive (only the
 * seven known members, each written atomically). */
#ifndef CN_DATA_CIFAR_H
#define CN_DATA_CIFAR_H
#include "data/dataset.h"

#define CN_CIFAR_RECORD 3073

/* Parses one batch file's bytes, appending its records to *out (name: for
 * messages). Errors name the file and the record: a size that is not a whole
 * number of records, a label outside 0..9. The fuzzing entry point. */
cn_status cn_cifar_parse_batch(const void *data, size_t size, const char *name, cn_split *out);

/* Downloads (when needed and allowed) and loads CIFAR-10. */
cn_status cn_cifar10_load(const cn_data_options *o, const char *dir, cn_dataset *out);

/* Unpacks the seven known members of DIR/cifar-10-binary.tar.gz into
 * DIR/cifar-10-batches-bin (each written atomically; other members ignored). */
cn_status cn_cifar10_unpack(const char *dir);

/* Downloads (MD5-checked) and unpacks into dir (NULL: the default place). */
cn_status cn_cifar10_download(const char *dir, int show_progress);

#endif
