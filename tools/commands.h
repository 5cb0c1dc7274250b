/* Shared helpers of the convnet subcommands (tools/cmd_*.c). The CLI is a
 * client of the public API only: include/convnet.h and the headers in tools/. */
#ifndef CONVNET_COMMANDS_H
#define CONVNET_COMMANDS_H
#include "convnet.h"
#include "cli_args.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Prints "<command>: <library error>" and returns exit status 1. */
static inline int cli_fail(void) {
    fprintf(stderr, "%s: %s\n", cli_command, cn_last_error());
    return 1;
}

static const char *const cli_datasets[] = {"mnist", "fashion-mnist", "kmnist", "idx", NULL};
#define CLI_DATASETS_EXPECTED "mnist, fashion-mnist, kmnist or idx"

/* The next option of argv: getopt_long without its own messages (an unknown
 * option comes back as '?' or ':', for cli_bad_option). */
static inline int cli_next_option(int argc, char **argv, const char *shorts, const struct option *opts) {
    opterr = 0;
    return getopt_long(argc, argv, shorts, opts, NULL);
}

/* Reports an unknown option (getopt_long returned '?' or ':') and returns 2. */
static inline int cli_bad_option(char **argv, int optind_now) {
    fprintf(stderr, "%s: unknown or incomplete option '%s' (see '%s --help')\n", cli_command, argv[optind_now - 1], cli_command);
    return 2;
}

/* 1 if s ends in suffix, ignoring case (".ONNX" too). */
static inline int cli_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

/* Loads --weights FILE (a checkpoint or an ONNX model; dataset as cn_net_load).
 * Prints the error and returns 1 on failure. */
static inline int cli_load_net(const char *path, const char *dataset, cn_net **net) {
    return cn_net_load(path, dataset, net) ? cli_fail() : 0;
}

/* tools/convnet.c: prints the library's notes on stderr (cn_set_note_handler). */
void cli_print_note(void *user, cn_note_kind kind, const char *text);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_download(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
