/* convnet download */
#include "commands.h"
#include <getopt.h>

static const char *const downloadable[] = {"mnist", "fashion-mnist", "kmnist", "cifar10", NULL};

static void download_help(void) {
    printf("usage: convnet download [--dataset NAME] [--data DIR] [--quiet]\n"
           "       convnet download NAME [--data DIR]\n\n"
           "Downloads the four .gz IDX files of a dataset and checks their published MD5s.\n"
           "Files already present with the right checksum are kept. A progress bar is\n"
           "drawn on stderr when it is a terminal, otherwise one line per file.\n\n"
           "  --dataset NAME   mnist | fashion-mnist | kmnist | cifar10 (default mnist; cifar10:\n"
           "                   cifar-10-binary.tar.gz, MD5-checked, unpacked into DIR/cifar-10-batches-bin)\n"
           "  --data DIR       target directory (default $CONVNET_DATA/NAME, else ./data/NAME)\n"
           "  --quiet          no progress output\n\n"
           "Mirrors are tried in torchvision's order; the environment variable\n"
           "CONVNET_MIRROR (a URL prefix ending in '/'; file:// works) replaces them.\n");
}

int cmd_download(int argc, char **argv) {
    cli_command = "convnet download";
    const char *dataset = NULL, *dir = NULL;
    int quiet = 0;
    enum { O_DATASET = 256, O_DATA, O_QUIET, O_HELP };
    static const struct option opts[] = {
        {"dataset", required_argument, 0, O_DATASET}, {"data", required_argument, 0, O_DATA},
        {"quiet", no_argument, 0, O_QUIET}, {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_DATASET: dataset = cli_choice("--dataset", optarg, downloadable, "mnist, fashion-mnist, kmnist or cifar10"); break;
        case O_DATA: dir = optarg; break;
        case O_QUIET: quiet = 1; break;
        case O_HELP: case 'h': download_help(); return 0;
        default: return cli_bad_option(argv, optind);
        }
    }
    if (optind < argc) { /* the dataset as a positional argument */
        if (dataset || optind + 1 < argc) return cli_unexpected_argument(argv[dataset ? optind : optind + 1]);
        dataset = cli_choice("dataset", argv[optind], downloadable, "mnist, fashion-mnist, kmnist or cifar10");
    }
    if (!dataset) dataset = "mnist";
    char target[4096];
    if (dir) snprintf(target, sizeof target, "%s", dir);
    else if (cn_dataset_default_dir(dataset, target, sizeof target)) return cli_fail();
    if (!strcmp(dataset, "cifar10")) {
        if (cn_download(dataset, target, !quiet)) return cli_fail();
        if (!quiet) printf("cifar10: the batches are in %s/cifar-10-batches-bin\n", target);
        return 0;
    }
    if (cn_download(dataset, target, !quiet)) return cli_fail();
    if (!quiet) printf("%s: the 4 files are in %s\n", dataset, target);   /* train/test images and labels */
    return 0;
}
