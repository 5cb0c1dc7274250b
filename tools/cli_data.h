/* The data options shared by train, eval and export (--int8 calibration):
 * --resize HxW, --grayscale, --skip-bad, --shape CxHxW, --mean M[,M,M], --std S[,S,S].
 * Each command puts CLI_DATA_OPTIONS in its getopt_long table and passes every
 * option code to cli_data_option first. */
#ifndef CONVNET_CLI_DATA_H
#define CONVNET_CLI_DATA_H
#include "convnet.h"
#include <getopt.h>

enum { CLI_O_RESIZE = 900, CLI_O_GRAYSCALE, CLI_O_SKIP_BAD, CLI_O_SHAPE, CLI_O_MEAN, CLI_O_STD };

#define CLI_DATA_OPTIONS                                                                       \
    {"resize", required_argument, 0, CLI_O_RESIZE}, {"grayscale", no_argument, 0, CLI_O_GRAYSCALE}, \
    {"skip-bad", no_argument, 0, CLI_O_SKIP_BAD}, {"shape", required_argument, 0, CLI_O_SHAPE},   \
    {"mean", required_argument, 0, CLI_O_MEAN}, {"std", required_argument, 0, CLI_O_STD}

#define CLI_DATA_HELP                                                                                  \
    "  --dataset NAME         mnist | fashion-mnist | kmnist | idx | folder | csv | cifar10\n"          \
    "  --resize HxW           folder: resize every image (PIL bilinear, as torchvision's Resize)\n"     \
    "  --grayscale            folder: RGB to one channel (torchvision's Grayscale weights)\n"          \
    "  --skip-bad             folder: leave out images that do not decode (and count them)\n"          \
    "  --shape CxHxW          csv: the image shape (default 1x28x28)\n"                                \
    "  --mean M[,M,M]         normalisation per channel (with --std; default: computed and cached)\n"  \
    "  --std S[,S,S]\n"

/* The datasets --dataset accepts. */
extern const char *const cli_datasets[];
#define CLI_DATASETS_EXPECTED "mnist, fashion-mnist, kmnist, idx, folder, csv or cifar10"

/* Handles one of the options above (1) or not (0). Bad values exit with status 2. */
int cli_data_option(int code, const char *arg, cn_data_options *d);
/* Checks the combination (--mean without --std, ...); exits with status 2. */
void cli_data_finish(cn_data_options *d);

#endif
