/* The options of a training run shared by train and sweep. See cli_run.h. */
#include "cli_run.h"
#include "cli_args.h"
#include "cli_data.h"

int cli_run_option(int code, const char *arg, cn_train_options *o) {
    switch (code) {
    case CLI_O_MODEL: o->model = cli_path("--model", arg); return 1;
    case CLI_O_DATA: o->data_dir = cli_path("--data", arg); return 1;
    case CLI_O_DATASET: o->dataset = cli_choice("--dataset", arg, cli_datasets, CLI_DATASETS_EXPECTED); return 1;
    case CLI_O_EPOCHS: o->overrides.epochs = (int)cli_int("--epochs", arg, 1, 100000); return 1;
    case CLI_O_THREADS: o->threads = (int)cli_int("--threads", arg, 1, 256); return 1;
    case CLI_O_NO_DOWNLOAD: o->allow_download = 0; return 1;
    case CLI_O_LIMIT_TRAIN: o->train_limit = (int)cli_int("--limit-train", arg, 2, 100000000); return 1;
    case CLI_O_LIMIT_TEST: o->test_limit = (int)cli_int("--limit-test", arg, 1, 100000000); return 1;
    case CLI_O_VAL_SPLIT: o->val_split = (int)cli_int("--val-split", arg, 1, 10000000); return 1;
    default: return 0;
    }
}
