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
    const char *model_name = NULL, *weights = NULL;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"weights", required_argument, 0, 'w'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    for (int c; (c = cli_next_option(argc, argv, "h", opts)) != -1;) {
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
    cn_net *net;
    if (weights ? cn_net_load(weights, NULL, &net) : cn_net_from_preset(model_name, 1, &net)) return cli_fail();
    cn_status st = cn_model_write_summary(cn_net_model(net), stdout);
    cn_net_free(net);
    return st ? cli_fail() : 0;
}
