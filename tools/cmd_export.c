/* convnet export */
#include "commands.h"
#include <stdlib.h>
#include <getopt.h>
#include <sys/stat.h>

static const char *const formats[] = {"onnx", "c", "safetensors", "web", NULL};
static const char *const targets[] = {"generic", "cortex-m4", NULL};

static void export_help(void) {
    printf("usage: convnet export --weights FILE --format onnx|c|safetensors|web -o OUT [options]\n\n"
           "Writes a trained model in another form:\n"
           "  onnx         OUT.onnx: opset 13, input \"input\" [batch,C,H,W] with a dynamic\n"
           "               batch dimension, output \"output\" [batch,classes]; BatchNorm kept as\n"
           "               BatchNormalization or, with --fold-bn, folded into the preceding conv.\n"
           "               The input normalisation is stored as metadata normalize_mean/_std.\n"
           "  c            directory OUT with model.h and model.c: dependency-free C99 source of\n"
           "               int model_predict(const float in[C*H*W], float out[classes]) taking\n"
           "               pixels in [0,1] (normalisation inside, BatchNorm always folded);\n"
           "               float32, or int8 with --int8; prints the flash and RAM it needs.\n"
           "  safetensors  OUT.safetensors: a convnet checkpoint made from an ONNX model\n"
           "               (FILE.onnx), usable by eval, predict, summary and export.\n"
           "  web          directory OUT with index.html: one self-contained page (no network,\n"
           "               opens from file://) to draw a digit and see the top-3 classes; the\n"
           "               model runs in WebAssembly. It embeds 20 test digits (from --data)\n"
           "               with convnet's classes; OUT/index.html#selftest checks them.\n\n"
           "  --weights FILE    a convnet checkpoint (.safetensors) or an ONNX model (.onnx)\n"
           "  --format NAME     onnx | c | safetensors | web (default: from OUT's extension)\n"
           "  -o, --out OUT     output file (onnx, safetensors) or directory (c)\n"
           "  --fold-bn         onnx: fold BatchNorm into the preceding conv (c always folds)\n"
           "  --int8            c: int8 weights and activations, scales calibrated on\n"
           "                    training images\n"
           "  --calibration N   c --int8: number of training images used (default 1000)\n"
           "  --target NAME     c --int8: generic (portable C, the default) or cortex-m4 (adds\n"
           "                    conv/linear using the Arm DSP extension's SMLAD, chosen at\n"
           "                    compile time when __ARM_FEATURE_DSP is set; same results)\n"
           "  --data DIR        c --int8, web: where the dataset's IDX files are\n"
           "  --no-download     c --int8, web: never download missing dataset files\n"
           "  --dataset NAME    mnist | fashion-mnist | kmnist: for ONNX input, the class names\n"
           "                    and the normalisation when the file's metadata has none\n"
           "                    (default mnist: mean 0.1307, std 0.3081, as torchvision's\n"
           "                    MNIST examples normalise); for --int8, the calibration data\n"
           "                    (default: the checkpoint's dataset)\n"
           "  data options      for --int8 calibration, as for 'convnet train' (--resize, --grayscale,\n"
           "                    --skip-bad, --shape)\n");
}

static int export_safetensors(const char *weights, cn_model *m, const cn_model_info *info, const char *out) {
    if (cn_model_save(out, m, info)) return cli_fail();
    char mean[80] = "", std[80] = "";
    int channels, rows, cols;
    cn_model_input_shape(m, &channels, &rows, &cols);
    for (int c = 0; c < channels && c < CN_MAX_CHANNELS; c++) {   /* 4 decimals, comma-separated per channel */
        snprintf(mean + strlen(mean), sizeof mean - strlen(mean), "%s%.4f", c ? "," : "", info->mean[c]);
        snprintf(std + strlen(std), sizeof std - strlen(std), "%s%.4f", c ? "," : "", info->std[c]);
    }
    printf("wrote %s: %s model, %zu parameters, %d classes (%s), normalisation mean %s std %s\n", out,
           cn_path_is_onnx(weights) ? "imported ONNX" : "convnet", cn_model_param_count(m), cn_model_num_classes(m),
           info->dataset, mean, std);
    return 0;
}

static int export_onnx(cn_model *m, const cn_model_info *info, const char *out, int fold_bn) {
    if (cn_export_onnx(m, out, fold_bn, info)) return cli_fail();
    struct stat sb;
    long long bytes = stat(out, &sb) ? -1 : (long long)sb.st_size;
    int foldable, bn = cn_model_batchnorm_count(m, &foldable); /* BNs right after a conv are the ones fold_bn folds */
    char what[96];
    if (!bn) snprintf(what, sizeof what, "no BatchNorm");
    else if (!fold_bn || !foldable) snprintf(what, sizeof what, "%d BatchNorm kept%s", bn, fold_bn ? " (none follows a conv directly)" : "");
    else snprintf(what, sizeof what, "%d of %d BatchNorm folded into the preceding conv", foldable, bn);
    printf("wrote %s: ONNX opset 13, dynamic batch, %zu parameters, %s, %lld bytes\n", out, cn_model_param_count(m),
           what, bytes);
    return 0;
}

static int export_c(cn_model *m, const cn_model_info *info, const char *out, int int8, int cortex_m4,
                    int calibration, cn_data_options *d) {
    int count = calibration;
    const char *dataset = d->name;
    if (!d->name) d->name = info->dataset;
    if (cn_export_c_check(m)) return cli_fail();   /* before loading any data */
    cn_data *calib = NULL;   /* int8: the training images to calibrate on */
    if (int8) {
        if (!d->channels) cn_model_input_shape(m, &d->channels, &d->rows, &d->cols);
        if (cn_data_open(d, &calib)) return cli_fail();
    }
    cn_export_c_stats stats;
    cn_status st = cn_export_c_source(m, out, info, (int8 ? CN_EXPORT_C_INT8 : 0) | (cortex_m4 ? CN_EXPORT_C_CORTEX_M4 : 0),
                                      calib, &count, &stats);
    cn_data_free(calib);
    if (st) return cli_fail();
    printf("wrote %s/model.h and %s/model.c: %s%s, %zu weights, flash %zu bytes, RAM %zu bytes",
           out, out, int8 ? "int8" : "float32", cortex_m4 ? " (Cortex-M4 DSP)" : "", stats.weight_count, stats.flash_bytes, stats.ram_bytes);
    if (int8) printf(", calibrated on %d %s training images", count, dataset ? dataset : info->dataset);
    printf("\n");
    return 0;
}

/* OUT/index.html, with 20 test images spread over the test set. */
static int export_web(cn_model *m, const cn_model_info *info, const char *out, const char *data_dir,
                      const char *dataset, int allow_download) {
    if (cn_export_web_check(m)) return cli_fail(); /* before loading any data */
    cn_data_options d = {.name = dataset ? dataset : info->dataset, .dir = data_dir, .allow_download = allow_download};
    cn_data *ds;
    if (cn_data_open(&d, &ds)) return cli_fail();
    cn_export_web_stats st;
    int rc = cn_export_web_page(m, out, info, ds, &st) ? cli_fail() : 0;
    if (!rc)
        printf("wrote %s/index.html: %zu bytes (WebAssembly runtime %zu bytes, model %zu bytes), %d %s test digits "
               "(the host build of the runtime agrees with convnet on %d/%d)\n", out, st.html_bytes, st.wasm_bytes,
               st.blob_bytes, st.digits, cn_data_name(ds), st.agree, st.digits);
    cn_data_free(ds);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

int cmd_export(int argc, char **argv) {
    cli_command = "convnet export";
    const char *weights = NULL, *format = NULL, *out = NULL, *data_dir = NULL, *dataset = NULL, *target = NULL;
    int fold_bn = 0, int8 = 0, calibration = 0, allow_download = 1;
    enum { O_WEIGHTS = 256, O_FORMAT, O_FOLD, O_INT8, O_CALIB, O_DATA, O_DATASET, O_NODL, O_TARGET, O_HELP };
    static const struct option opts[] = {
        {"weights", required_argument, 0, O_WEIGHTS}, {"format", required_argument, 0, O_FORMAT},
        {"out", required_argument, 0, 'o'}, {"output", required_argument, 0, 'o'},
        {"fold-bn", no_argument, 0, O_FOLD}, {"int8", no_argument, 0, O_INT8},
        {"calibration", required_argument, 0, O_CALIB}, {"data", required_argument, 0, O_DATA},
        {"dataset", required_argument, 0, O_DATASET}, {"no-download", no_argument, 0, O_NODL},
        {"target", required_argument, 0, O_TARGET},
        {"help", no_argument, 0, O_HELP}, CLI_DATA_OPTIONS, {0, 0, 0, 0}};
    int c;
    cn_data_options d = {0};
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (cli_data_option(c, optarg, &d)) continue;
        switch (c) {
        case O_WEIGHTS: weights = optarg; break;
        case O_FORMAT: format = cli_choice("--format", optarg, formats, "onnx, c, safetensors or web"); break;
        case 'o': out = optarg; break;
        case O_FOLD: fold_bn = 1; break;
        case O_INT8: int8 = 1; break;
        case O_CALIB: calibration = (int)cli_int("--calibration", optarg, 1, 60000); break;
        case O_DATA: data_dir = optarg; break;
        case O_NODL: allow_download = 0; break;
        case O_TARGET: target = cli_choice("--target", optarg, targets, "generic or cortex-m4"); break;
        case O_DATASET: dataset = cli_choice("--dataset", optarg, cli_datasets, CLI_DATASETS_EXPECTED); break;
        case O_HELP: case 'h': export_help(); return 0;
        default: return cli_bad_option(argv, optind);
        }
    }
    if (optind < argc) return cli_unexpected_argument(argv[optind]);
    if (!weights) { fprintf(stderr, "%s: --weights FILE is required (see 'convnet export --help')\n", cli_command); return 2; }
    if (!out) { fprintf(stderr, "%s: -o OUT is required (see 'convnet export --help')\n", cli_command); return 2; }
    if (!format) {
        if (ends_with(out, ".onnx")) format = "onnx";
        else if (ends_with(out, ".safetensors")) format = "safetensors";
        else {
            fprintf(stderr, "%s: --format onnx|c|safetensors|web is required (OUT '%s' does not say) (see 'convnet export --help')\n",
                    cli_command, out);
            return 2;
        }
    }
    int is_c = !strcmp(format, "c"), is_web = !strcmp(format, "web");
    if (int8 && !is_c) { fprintf(stderr, "%s: --int8 applies to --format c only (see 'convnet export --help')\n", cli_command); return 2; }
    if (target && !int8) { fprintf(stderr, "%s: --target applies to --format c --int8 only (see 'convnet export --help')\n", cli_command); return 2; }
    if (calibration && !int8) { fprintf(stderr, "%s: --calibration applies to --format c --int8 only (see 'convnet export --help')\n", cli_command); return 2; }
    if (fold_bn && (!strcmp(format, "safetensors") || is_web)) {
        fprintf(stderr, "%s: --fold-bn applies to --format onnx or c only (see 'convnet export --help')\n", cli_command);
        return 2;
    }
    if (!strcmp(weights, out)) { fprintf(stderr, "%s: -o '%s' would overwrite --weights\n", cli_command, out); return 2; }
    cn_model *m;
    static cn_model_info info;   /* static: 32 kB of class names */
    if (cli_load_weights(weights, dataset, &m, &info, NULL)) return 1;
    int rc;
    if (!strcmp(format, "onnx")) rc = export_onnx(m, &info, out, fold_bn);
    else if (is_c) {
        cli_data_finish(&d);
        d.name = dataset;
        d.dir = data_dir;
        d.allow_download = allow_download;
        rc = export_c(m, &info, out, int8, target && !strcmp(target, "cortex-m4"), calibration ? calibration : 1000, &d);
    }
    else if (is_web) rc = export_web(m, &info, out, data_dir, dataset, allow_download);
    else rc = export_safetensors(weights, m, &info, out);
    cn_model_free(m);
    return rc;
}
