/* The options of one training run that train and sweep share, with one range and one check
 * each: --model, --data, --dataset, --epochs, --threads, --no-download, --limit-train,
 * --limit-test, --val-split. Each command puts CLI_RUN_OPTIONS in its getopt_long table and passes every
 * option code to cli_run_option first (as CLI_DATA_OPTIONS, cli_data.h). */
#ifndef CONVNET_CLI_RUN_H
#define CONVNET_CLI_RUN_H
#include "convnet.h"
#include <getopt.h>

enum { CLI_O_MODEL = 950, CLI_O_DATA, CLI_O_DATASET, CLI_O_EPOCHS, CLI_O_THREADS, CLI_O_NO_DOWNLOAD,
       CLI_O_LIMIT_TRAIN, CLI_O_LIMIT_TEST, CLI_O_VAL_SPLIT };

#define CLI_RUN_OPTIONS                                                                                   \
    {"model", required_argument, 0, CLI_O_MODEL}, {"data", required_argument, 0, CLI_O_DATA},             \
    {"dataset", required_argument, 0, CLI_O_DATASET}, {"epochs", required_argument, 0, CLI_O_EPOCHS},     \
    {"threads", required_argument, 0, CLI_O_THREADS}, {"no-download", no_argument, 0, CLI_O_NO_DOWNLOAD}, \
    {"limit-train", required_argument, 0, CLI_O_LIMIT_TRAIN}, {"limit-test", required_argument, 0, CLI_O_LIMIT_TEST}, \
    {"val-split", required_argument, 0, CLI_O_VAL_SPLIT}

/* Handles one of the options above into o (1) or not (0). Bad values exit with status 2. */
int cli_run_option(int code, const char *arg, cn_train_options *o);

#endif
