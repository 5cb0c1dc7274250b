/* The named datasets convnet knows: file names, published MD5s, mirrors,
 * normalisation constants and class names. Data only, no I/O. */
#ifndef CN_DATA_CATALOG_H
#define CN_DATA_CATALOG_H

#define CN_DATASET_FILES 4   /* train images, train labels, test images, test labels */
#define CN_DATASET_MAX_MIRRORS 4

typedef struct {
    const char *name;             /* "mnist", "fashion-mnist", "kmnist" */
    const char *torchvision_dir;  /* torchvision's folder name: root/<this>/raw */
    const char *mirrors[CN_DATASET_MAX_MIRRORS]; /* URL prefixes in torchvision's order, NULL-terminated */
    const char *md5[CN_DATASET_FILES];           /* of the .gz files, in cn_dataset_file_names order */
    const char *system_dir;       /* a distribution package's copy, or NULL */
    float mean, std;
    int num_classes;
    const char *class_names[10];
} cn_dataset_info;

/* The canonical IDX file names (without .gz), in the order train images,
 * train labels, test images, test labels. Shared by every dataset, "idx" included. */
extern const char *const cn_dataset_file_names[CN_DATASET_FILES];

/* The entry for a name ("mnist", "fashion-mnist", "kmnist"; case-insensitive,
 * "fashion" and "fashion_mnist" accepted), or NULL ("idx" is not in the catalog). */
const cn_dataset_info *cn_dataset_info_find(const char *name);
/* "mnist, fashion-mnist, kmnist, idx": for error messages. */
const char *cn_dataset_names(void);

#endif
