#include "data/catalog.h"
#include <stddef.h>
#include <strings.h>

const char *const cn_dataset_file_names[CN_DATASET_FILES] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
};

/* Mirrors and MD5s as in torchvision.datasets.MNIST / FashionMNIST / KMNIST. */
static const cn_dataset_info catalog[] = {
    {
        .name = "mnist", .torchvision_dir = "MNIST",
        .mirrors = {"https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"},
        .md5 = {"f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"},
        .mean = 0.1307f, .std = 0.3081f, .num_classes = 10,
        .class_names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
    },
    {
        .name = "fashion-mnist", .torchvision_dir = "FashionMNIST",
        .mirrors = {"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"},
        .md5 = {"8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"},
        .system_dir = "/usr/share/datasets/fashion-mnist",
        .mean = 0.2860f, .std = 0.3530f, .num_classes = 10,
        .class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"},
    },
    {
        /* Kuzushiji-MNIST: お き す つ な は ま や れ を, romanised as torchvision does. */
        .name = "kmnist", .torchvision_dir = "KMNIST",
        .mirrors = {"http://codh.rois.ac.jp/kmnist/dataset/kmnist/"},
        .md5 = {"bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
                "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134"},
        .mean = 0.1918f, .std = 0.3483f, .num_classes = 10,
        .class_names = {"o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"},
    },
};

const cn_dataset_info *cn_dataset_info_find(const char *name) {
    if (!name) return NULL;
    if (!strcasecmp(name, "fashion") || !strcasecmp(name, "fashion_mnist") || !strcasecmp(name, "fashionmnist"))
        name = "fashion-mnist";
    for (size_t i = 0; i < sizeof catalog / sizeof catalog[0]; i++)
        if (!strcasecmp(name, catalog[i].name)) return &catalog[i];
    return NULL;
}

const char *cn_dataset_names(void) { return "mnist, fashion-mnist, kmnist, idx"; }
