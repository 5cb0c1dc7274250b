/* convnet command-line tool: dispatches to the subcommands in tools/cmd_*.c. */
#include "commands.h"
#include "cli_notes.h"

const char *cli_command = "convnet";

static void usage(FILE *f) {
    fprintf(f, "usage: convnet COMMAND [options]   (convnet COMMAND --help for details)\n\n"
               "commands:\n"
               "  train     train a model on MNIST-class data\n"
               "  eval      evaluate a checkpoint on the test set\n"
               "  models    list the built-in presets\n"
               "  summary   print a model's layer table (torchsummary layout) and MACs\n"
               "  predict   classify digit images (PNG/PGM) with a checkpoint or ONNX model\n"
               "  download  fetch a dataset (mnist, fashion-mnist, kmnist) and verify it\n"
               "  export    write a model as ONNX, C source or a convnet checkpoint\n"
               "  sweep     train over a grid of settings and seeds; tables and a plot\n"
               "  help      show this help\n");
}

static int run_command(int argc, char **argv);

/* Under mpirun, each rank ends its part in the job (dist/dist.h): a rank that failed alone
 * aborts the job rather than leave the others waiting. */
int main(int argc, char **argv) {
    cli_notes_install();
    int rc = run_command(argc, argv);
    cn_dist_finish(rc == 130 ? 0 : rc);
    return rc;
}

static int run_command(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "convnet: no command given (see 'convnet help')\n"); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "models")) return cmd_models(argc - 1, argv + 1);
    if (!strcmp(cmd, "summary")) return cmd_summary(argc - 1, argv + 1);
    if (!strcmp(cmd, "predict")) return cmd_predict(argc - 1, argv + 1);
    if (!strcmp(cmd, "download")) return cmd_download(argc - 1, argv + 1);
    if (!strcmp(cmd, "export")) return cmd_export(argc - 1, argv + 1);
    if (!strcmp(cmd, "sweep")) return cmd_sweep(argc - 1, argv + 1);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) { usage(stdout); return 0; }
    fprintf(stderr, "convnet: unknown command '%s' (expected train, eval, models, summary, predict, export, "
                    "download, sweep or help)\n", cmd);
    return 2;
}
