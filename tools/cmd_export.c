/* convnet export */
#include "commands.h"
#include <stdlib.h>
#include <getopt.h>

static const char *const formats[] = {"onnx", "c", "safetensors", NULL};

static void export_help(void) {
    printf("usage: convnet export --weights FILE --format onnx|c|safetensors -o OUT [options]\n\n"
           "Writes a trained model in another form:\n"
           "  onnx         OUT.onnx: opset 13, input \"input\" [batch,1,28,28] with a dynamic\n"
           "               batch dimension, output \"output\" [batch,classes]; BatchNorm kept as\n"
           "               BatchNormalization or, with --fold-bn, folded into the preceding conv.\n"
           "               The input normalisation is stored as metadata normalize_mean/_std.\n"
           "  c            directory OUT with model.h and model.c: dependency-free C99 source of\n"
           "               int model_predict(const float in[784], float out[classes]) taking\n"
           "               pixels in [0,1] (normalisation inside, BatchNorm always folded);\n"
           "               float32, or int8 with --int8; prints the flash and RAM it needs.\n"
           "  safetensors  OUT.safetensors: a convnet checkpoint made from an ONNX model\n"
           "               (FILE.onnx), usable by eval, predict, summary and export.\n\n"
           "  --weights FILE    a convnet checkpoint (.safetensors) or an ONNX model (.onnx)\n"
           "  --format NAME     onnx | c | safetensors (default: from OUT's extension)\n"
           "  -o, --out OUT     output file (onnx, safetensors) or directory (c)\n"
           "  --fold-bn         onnx: fold BatchNorm into the preceding conv (c always folds)\n"
           "  --int8            c: int8 weights and activations, scales calibrated on\n"
           "                    training images\n"
           "  --calibration N   c --int8: number of training images used (default 1000)\n"
           "  --data DIR        c --int8: where the dataset's IDX files are\n"
           "  --no-download     c --int8: never download missing dataset files\n"
           "  --dataset NAME    mnist | fashion-mnist | kmnist: for ONNX input, the class names\n"
           "                    and the normalisation when the file's metadata has none\n"
           "                    (default mnist: mean 0.1307, std 0.3081, as torchvision's\n"
           "                    MNIST examples normalise); for --int8, the calibration data\n"
           "                    (default: the checkpoint's dataset)\n");
}

static int export_safetensors(const char *weights, const cn_net *net, const char *out) {
    if (cn_net_save(net, out)) return cli_fail();
    float mean, std;
    cn_net_normalization(net, &mean, &std);
    printf("wrote %s: %s model, %zu parameters, %d classes (%s), normalisation mean %.4f std %.4f\n", out,
           cli_ends_with(weights, ".onnx") ? "imported ONNX" : "convnet", cn_net_param_count(net), cn_net_num_classes(net),
           cn_net_dataset(net), mean, std);
    return 0;
}

static int export_onnx(const cn_net *net, const char *out, int fold_bn) {
    cn_export_report r;
    if (cn_net_export_onnx(net, out, fold_bn, &r)) return cli_fail();
    char what[96];
    if (!r.batchnorm) snprintf(what, sizeof what, "no BatchNorm");
    else if (!r.batchnorm_folded) snprintf(what, sizeof what, "%d BatchNorm kept%s", r.batchnorm, fold_bn ? " (none follows a conv directly)" : "");
    else snprintf(what, sizeof what, "%d of %d BatchNorm folded into the preceding conv", r.batchnorm_folded, r.batchnorm);
    printf("wrote %s: ONNX opset 13, dynamic batch, %zu parameters, %s, %lld bytes\n", out, cn_net_param_count(net),
           what, r.bytes);
    return 0;
}

static int export_c(const cn_net *net, const char *out, int int8, int calibration, const char *data_dir,
                    const char *dataset, int allow_download) {
    cn_data *calib = NULL;
    const char *calib_name = dataset ? dataset : cn_net_dataset(net);
    if (int8 && cn_data_load(calib_name, data_dir, allow_download, &calib)) return cli_fail();
    cn_export_report r;
    cn_status st = cn_net_export_c(net, out, int8, calib, calibration, &r);
    cn_data_free(calib);
    if (st) return cli_fail();
    printf("wrote %s/model.h and %s/model.c: %s, %zu weights, flash %zu bytes, RAM %zu bytes",
           out, out, int8 ? "int8" : "float32", r.weight_count, r.flash_bytes, r.ram_bytes);
    if (int8) printf(", calibrated on %d %s training images", r.calibration_images, calib_name);
    printf("\n");
    return 0;
}

int cmd_export(int argc, char **argv) {
    const char *weights = NULL, *format = NULL, *out = NULL, *data_dir = NULL, *dataset = NULL;
    int fold_bn = 0, int8 = 0, calibration = 0, allow_download = 1;
    enum { O_WEIGHTS = 256, O_FORMAT, O_FOLD, O_INT8, O_CALIB, O_DATA, O_DATASET, O_NODL, O_HELP };
    static const struct option opts[] = {
        {"weights", required_argument, 0, O_WEIGHTS}, {"format", required_argument, 0, O_FORMAT},
        {"out", required_argument, 0, 'o'}, {"output", required_argument, 0, 'o'},
        {"fold-bn", no_argument, 0, O_FOLD}, {"int8", no_argument, 0, O_INT8},
        {"calibration", required_argument, 0, O_CALIB}, {"data", required_argument, 0, O_DATA},
        {"dataset", required_argument, 0, O_DATASET}, {"no-download", no_argument, 0, O_NODL},
        {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0}};
    for (int c; (c = cli_next_option(argc, argv, "ho:", opts)) != -1;) {
        switch (c) {
        case O_WEIGHTS: weights = optarg; break;
        case O_FORMAT: format = cli_choice("--format", optarg, formats, "onnx, c or safetensors"); break;
        case 'o': out = optarg; break;
        case O_FOLD: fold_bn = 1; break;
        case O_INT8: int8 = 1; break;
        case O_CALIB: calibration = (int)cli_int("--calibration", optarg, 1, 60000); break;
        case O_DATA: data_dir = optarg; break;
        case O_NODL: allow_download = 0; break;
        case O_DATASET: dataset = cli_choice("--dataset", optarg, cli_datasets, CLI_DATASETS_EXPECTED); break;
        case O_HELP: case 'h': export_help(); return 0;
        default: return cli_bad_option(argv, optind);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see 'convnet export --help')\n", cli_command, argv[optind]);
        return 2;
    }
    if (!weights) { fprintf(stderr, "%s: --weights FILE is required (see 'convnet export --help')\n", cli_command); return 2; }
    if (!out) { fprintf(stderr, "%s: -o OUT is required (see 'convnet export --help')\n", cli_command); return 2; }
    if (!format) {
        if (cli_ends_with(out, ".onnx")) format = "onnx";
        else if (cli_ends_with(out, ".safetensors")) format = "safetensors";
        else {
            fprintf(stderr, "%s: --format onnx|c|safetensors is required (OUT '%s' does not say) (see 'convnet export --help')\n",
                    cli_command, out);
            return 2;
        }
    }
    int is_c = !strcmp(format, "c");
    if (int8 && !is_c) { fprintf(stderr, "%s: --int8 applies to --format c only (see 'convnet export --help')\n", cli_command); return 2; }
    if (calibration && !int8) { fprintf(stderr, "%s: --calibration applies to --format c --int8 only (see 'convnet export --help')\n", cli_command); return 2; }
    if (fold_bn && !strcmp(format, "safetensors")) {
        fprintf(stderr, "%s: --fold-bn applies to --format onnx or c only (see 'convnet export --help')\n", cli_command);
        return 2;
    }
    if (!strcmp(weights, out)) { fprintf(stderr, "%s: -o '%s' would overwrite --weights\n", cli_command, out); return 2; }
    cn_net *net;
    if (cli_load_net(weights, dataset, &net)) return 1;
    int rc;
    if (!strcmp(format, "onnx")) rc = export_onnx(net, out, fold_bn);
    else if (is_c) rc = export_c(net, out, int8, calibration ? calibration : 1000, data_dir, dataset, allow_download);
    else rc = export_safetensors(weights, net, out);
    cn_net_free(net);
    return rc;
}
