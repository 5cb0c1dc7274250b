/* convnet summary */
#include "commands.h"
#include <getopt.h>

static void summary_help(void) {
    printf("usage: convnet summary --model NAME|FILE.spec\n"
           "       convnet summary --weights FILE.safetensors\n\n"
           "Prints the model's layer table as torchsummary does for summary(model, (1, 28, 28)):\n"
           "output shapes, parameter counts and memory estimates (flatten and log_softmax,\n"
           "applied functionally in the seed models, get no row), then the forward\n"
           "multiply-adds per image.\n\n"
           "  --model NAME|FILE   a preset name or alias (see 'convnet models') or a spec file\n"
           "  --weights FILE      a checkpoint: summarise the model stored in it\n"
           "  --help              show this help\n");
}

int cmd_summary(int argc, char **argv) {
    cli_command = "convnet summary";
    const char *model_name = NULL, *weights = NULL;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"weights", required_argument, 0, 'w'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_name = optarg; break;
        case 'w': weights = optarg; break;
        case 'h': summary_help(); return 0;
        default: return cli_bad_option(argv, optind);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see '%s --help')\n", cli_command, argv[optind], cli_command);
        return 2;
    }
    if (!model_name == !weights) {
        fprintf(stderr, "%s: give exactly one of --model NAME|FILE.spec or --weights FILE (see '%s --help')\n",
                cli_command, cli_command);
        return 2;
    }
    cn_model *m = NULL;
    if (weights) {
        static cn_model_info info;   /* static: 32 kB of class names */
        if (cn_model_load(weights, NULL, &m, &info, NULL)) return cli_fail();
    } else if (cn_model_load_spec(model_name, 1, &m)) {
        return cli_fail();
    }
    cn_status st = cn_summary_write(m, stdout);
    cn_model_free(m);
    return st ? cli_fail() : 0;
}
