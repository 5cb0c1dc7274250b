/* Shared helpers of the convnet subcommands (tools/cmd_*.c). */
#ifndef CONVNET_COMMANDS_H
#define CONVNET_COMMANDS_H
#include "convnet.h"
#include "cli_args.h"
#include <stdio.h>
#include <string.h>

/* Prints "<command>: <library error>" and returns exit status 1. */
static inline int cli_fail(void) {
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");   /* under mpirun: which rank failed */
    if (rank && strcmp(rank, "0")) fprintf(stderr, "%s (rank %s): %s\n", cli_command, rank, cn_last_error());
    else fprintf(stderr, "%s: %s\n", cli_command, cn_last_error());
    return 1;
}

#include "cli_data.h"
#include "cli_run.h"

/* Reports an unknown option (getopt_long returned '?' or ':') and returns 2. */
static inline int cli_bad_option(char **argv, int optind_now) {
    fprintf(stderr, "%s: unknown or incomplete option '%s' (see '%s --help')\n", cli_command, argv[optind_now - 1], cli_command);
    return 2;
}

/* Reports an argument that no option takes and returns 2. */
static inline int cli_unexpected_argument(const char *arg) {
    fprintf(stderr, "%s: unexpected argument '%s' (see '%s --help')\n", cli_command, arg, cli_command);
    return 2;
}

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_download(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_sweep(int argc, char **argv);

/* cn_model_load (convnet.h), printing the error: returns 1 on failure. */
static inline int cli_load_weights(const char *path, const char *dataset, cn_model **m, cn_model_info *info,
                                   int *norm_known) {
    return cn_model_load(path, dataset, m, info, norm_known) ? cli_fail() : 0;
}

#endif
