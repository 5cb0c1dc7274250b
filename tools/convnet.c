/* convnet command-line tool: dispatches to the subcommands in tools/cmd_*.c. */
#include "commands.h"
#include "progress.h"
#include <unistd.h>

const char *cli_command = "convnet";

/* Notes from the library: warnings as "convnet: warning: ...", progress lines
 * redrawn in place on a terminal (and dropped otherwise), info lines as they
 * are, except that on a terminal a finished progress bar stands for the info
 * line that follows it. */
void cli_print_note(void *user, cn_note_kind kind, const char *text) {
    static int drawn, bar_ended;
    int tty = isatty(STDERR_FILENO), ended = bar_ended;
    (void)user;
    bar_ended = 0;
    if (kind == CN_NOTE_PROGRESS) {
        if (!tty) return;
        if (*text) { cli_progress_draw_line(text); drawn = 1; return; }
        if (drawn) { fputc('\n', stderr); drawn = 0; bar_ended = 1; }
    } else if (kind == CN_NOTE_INFO) {
        if (!ended) fprintf(stderr, "%s\n", text);
    } else {
        if (drawn) { fputc('\n', stderr); drawn = 0; }
        fprintf(stderr, "convnet: warning: %s\n", text);
    }
    fflush(stderr);
}

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
               "  help      show this help\n");
}

int main(int argc, char **argv) {
    cn_set_note_handler(cli_print_note, NULL);
    if (argc < 2) { fprintf(stderr, "convnet: no command given (see 'convnet help')\n"); return 2; }
    const char *cmd = argv[1];
    static const struct { const char *name; int (*run)(int, char **); } commands[] = {
        {"train", cmd_train}, {"eval", cmd_eval}, {"models", cmd_models}, {"summary", cmd_summary},
        {"predict", cmd_predict}, {"download", cmd_download}, {"export", cmd_export}};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name)) {
            static char name[32];  /* "convnet train", for messages */
            snprintf(name, sizeof name, "convnet %s", commands[i].name);
            cli_command = name;
            return commands[i].run(argc - 1, argv + 1);
        }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) { usage(stdout); return 0; }
    fprintf(stderr, "convnet: unknown command '%s' (expected train, eval, models, summary, predict, export, "
                    "download or help)\n", cmd);
    return 2;
}
