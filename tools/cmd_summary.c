/* convnet summary */
#include "commands.h"
#include <getopt.h>
#include <string.h>
#include <strings.h>

static void summary_help(void) {
    printf("usage: convnet summary --model NAME|FILE.spec|FILE.onnx|FILE.safetensors\n"
           "       convnet summary --weights FILE.safetensors\n\n"
           "Prints the model's layer table as torchsummary does for summary(model, (1, 28, 28)):\n"
           "output shapes, parameter counts and memory estimates (flatten and log_softmax,\n"
           "applied functionally in the seed models, get no row), then the forward\n"
           "multiply-adds per image.\n\n"
           "  --model NAME|FILE   a preset name or alias (see 'convnet models'), a spec file,\n"
           "                      or a model file (.onnx, or a .safetensors checkpoint)\n"
           "  --weights FILE      a checkpoint: summarise the model stored in it\n"
           "  --help              show this help\n");
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

/* 1 if the file's first 4 kB hold a NUL byte: not spec text (a model file under another name). */
static int looks_binary(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return memchr(buf, '\0', n) != NULL;
}

/* --model: a preset or spec file, or a model file loaded as eval/predict --weights load one
 * (.onnx by its extension, .safetensors, or any binary file: tried as a checkpoint).
 * Prints one error line and returns 1 when it is none of these. */
static int load_model_arg(const char *name, cn_model **m) {
    static cn_model_info info;   /* static: 32 kB of class names */
    if (cn_path_is_onnx(name) || has_suffix(name, ".safetensors"))
        return cn_model_load(name, NULL, m, &info, NULL) ? cli_fail() : 0;
    if (cn_model_load_spec(name, 1, m) == CN_OK) return 0;
    if (!looks_binary(name)) return cli_fail();
    char spec_error[512];
    snprintf(spec_error, sizeof spec_error, "%s", cn_last_error());
    if (cn_model_load(name, NULL, m, &info, NULL) == CN_OK) return 0;
    fprintf(stderr, "%s: neither a preset, a text spec file (%s) nor a loadable model file (.onnx, .safetensors: %s)\n",
            cli_command, spec_error, cn_last_error());
    return 1;
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
    if (optind < argc) return cli_unexpected_argument(argv[optind]);
    if (!model_name == !weights) {
        fprintf(stderr, "%s: give exactly one of --model NAME|FILE or --weights FILE (see '%s --help')\n",
                cli_command, cli_command);
        return 2;
    }
    cn_model *m = NULL;
    if (weights) {
        static cn_model_info info;   /* static: 32 kB of class names */
        if (cn_model_load(weights, NULL, &m, &info, NULL)) return cli_fail();
    } else if (load_model_arg(model_name, &m)) {
        return 1;
    }
    cn_status st = cn_summary_write(m, stdout);
    cn_model_free(m);
    return st ? cli_fail() : 0;
}
