/* convnet eval */
#include "commands.h"
#include <getopt.h>
#include <math.h>
#include <stdlib.h>

static void eval_help(void) {
    printf("usage: convnet eval --weights FILE [--data DIR] [--dataset NAME] [--threads N] [--int8 [--calibration N]]\n"
           "                    [data options]\n\n"
           "Evaluates a checkpoint (.safetensors) or an ONNX model (.onnx) on the test set:\n"
           "the seed log line, per-class accuracy and the confusion matrix.\n\n"
           "An ONNX model is fed (pixel/255 - mean) / std with the mean/std from its metadata\n"
           "(normalize_mean, normalize_std, as 'convnet export' writes them); a model\n"
           "exported by torch.onnx.export has none, and then the dataset's own values are\n"
           "used (mnist: 0.1307, 0.3081, as torchvision's MNIST examples normalise).\n"
           "--dataset picks the dataset for ONNX models (default mnist) or overrides the\n"
           "checkpoint's.\n\n"
           "--int8 runs the model in int8 on the CPU (AVX-512 VNNI, AVX2 or portable kernels),\n"
           "quantised as 'convnet export --format c --int8' quantises it: scales calibrated on\n"
           "N evenly spaced training images (--calibration N, default 1000), so the classes are\n"
           "those of the exported C. Data options, as for 'convnet train':\n" CLI_DATA_HELP);
}

/* The confusion matrix in full up to 20 classes; beyond, the most frequent confusions. */
static void print_confusions(const long *confusion, int classes, const cn_data *ds) {
    if (classes <= 20) {
        printf("\nconfusion matrix (rows: true class, columns: predicted)\n%6s", "");
        for (int j = 0; j < classes; j++) printf("%6d", j);
        printf("\n");
        for (int k = 0; k < classes; k++) {
            printf("%6d", k);
            for (int j = 0; j < classes; j++) printf("%6ld", confusion[k * classes + j]);
            printf("\n");
        }
        return;
    }
    /* The 20 largest off-diagonal cells, largest first (ties in (true, predicted) order), by insertion. */
    typedef struct { long count; int t, p; } cell;
    cell best[20];
    size_t top = 0;
    for (int k = 0; k < classes; k++)
        for (int j = 0; j < classes; j++) {
            long v = confusion[(size_t)k * classes + j];
            if (k == j || v <= 0) continue;
            size_t at = top;
            while (at > 0 && best[at - 1].count < v) at--;
            if (at >= 20) continue;
            if (top < 20) top++;
            memmove(best + at + 1, best + at, (top - 1 - at) * sizeof *best);
            best[at] = (cell){v, k, j};
        }
    printf("\n%d classes: the %zu most frequent confusions (true -> predicted: count)\n", classes, top);
    for (size_t i = 0; i < top; i++)
        printf("  %s -> %s: %ld\n", cn_data_class_name(ds, best[i].t), cn_data_class_name(ds, best[i].p), best[i].count);
}

/* --int8: the test split through the int8 model, calibrated on `calibration` training images. */
static cn_status evaluate_int8(const cn_model *m, const cn_data *ds, const cn_model_info *info, int calibration,
                               int threads, cn_eval_result *r) {
    cn_int8_model *q;
    cn_status st = cn_int8_calibrate(m, info->mean, info->std, ds, &calibration, &q);
    if (st) return st;
    printf("int8: calibrated on %d %s training images, %s kernels\n", calibration, cn_data_name(ds), cn_int8_model_kernels(q));
    st = cn_int8_evaluate_data(q, ds, threads, r);
    cn_int8_model_free(q);
    return st;
}

int cmd_eval(int argc, char **argv) {
    cli_command = "convnet eval";
    const char *weights = NULL, *data_dir = NULL, *dataset = NULL;
    int threads = 0, allow_download = 1, int8 = 0, calibration = 0;
    cn_data_options d = {0};
    static const struct option opts[] = {
        {"weights", required_argument, 0, 'w'}, {"data", required_argument, 0, 'd'},
        {"dataset", required_argument, 0, 's'}, {"threads", required_argument, 0, 't'},
        {"no-download", no_argument, 0, 'n'}, {"help", no_argument, 0, 'h'}, {"int8", no_argument, 0, 'i'},
        {"calibration", required_argument, 0, 'c'}, CLI_DATA_OPTIONS, {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (cli_data_option(c, optarg, &d)) continue;
        switch (c) {
        case 'w': weights = cli_path("--weights", optarg); break;
        case 'd': data_dir = cli_path("--data", optarg); break;
        case 's': dataset = cli_choice("--dataset", optarg, cli_datasets, CLI_DATASETS_EXPECTED); break;
        case 't': threads = (int)cli_int("--threads", optarg, 1, 256); break;
        case 'n': allow_download = 0; break;
        case 'i': int8 = 1; break;
        case 'c': calibration = (int)cli_int("--calibration", optarg, 1, 60000); break;
        case 'h': eval_help(); return 0;
        default: return cli_bad_option(argv, optind);
        }
    }
    if (!weights) { fprintf(stderr, "%s: --weights FILE is required (see 'convnet eval --help')\n", cli_command); return 2; }
    if (calibration && !int8) { fprintf(stderr, "%s: --calibration applies to --int8 only (see 'convnet eval --help')\n", cli_command); return 2; }
    cli_data_finish(&d);
    cn_model *m;
    static cn_model_info info;   /* static: 32 kB of class names */
    int norm_known;
    if (cli_load_weights(weights, dataset, &m, &info, &norm_known)) return 1;
    cn_data *ds = NULL;
    d.name = dataset ? dataset : info.dataset;
    d.dir = data_dir;
    d.allow_download = allow_download;
    if (!d.channels) cn_model_input_shape(m, &d.channels, &d.rows, &d.cols);
    d.threads = threads;
    int given_norm = d.norm_channels > 0;
    /* Only the test files are read (and downloaded); the training images only when the
     * normalisation must come from them (an ONNX model without metadata on idx data). */
    d.parts = norm_known && !given_norm && !int8 ? CN_DATASET_TEST : CN_DATASET_TRAIN | CN_DATASET_TEST;
    if (cn_data_open(&d, &ds) || cn_data_check_model(ds, m)) {
        cn_model_free(m); cn_data_free(ds); return cli_fail();
    }
    if (cn_data_skipped(ds)) fprintf(stderr, "%s: skipped %d unreadable images (--skip-bad)\n", cli_command, cn_data_skipped(ds));
    if (!norm_known || given_norm) {
        memcpy(info.mean, cn_data_mean(ds), sizeof info.mean);
        memcpy(info.std, cn_data_std(ds), sizeof info.std);
    }
    int classes = cn_data_num_classes(ds);
    if (!strcmp(cn_data_name(ds), "folder") && info.num_classes == classes)
        for (int k = 0; k < classes; k++)
            if (strcmp(info.class_names[k], cn_data_class_name(ds, k))) {
                fprintf(stderr, "%s: %s/test/%s: class %d is '%s' in %s; the test folders must be the training classes\n",
                        cli_command, cn_data_dir(ds), cn_data_class_name(ds, k), k, info.class_names[k], weights);
                cn_model_free(m); cn_data_free(ds); return 1;
            }
    cn_eval_result r;
    int nthreads = threads > 0 ? threads : 2;
    if (int8 ? evaluate_int8(m, ds, &info, calibration ? calibration : 1000, nthreads, &r)
             : cn_evaluate_data(m, ds, info.mean, info.std, nthreads, &r)) {
        cn_model_free(m); cn_data_free(ds); return cli_fail();
    }
    int n = r.count;
    const long *confusion = r.confusion;
    if (!isfinite(r.loss_sum)) {   /* finite but huge weights (a diverged run) give NaN scores */
        fprintf(stderr, "%s: %s: the model's outputs are not finite on the test set (loss %g); its weights diverged\n",
                cli_command, weights, r.loss_sum / n);
        cn_eval_result_free(&r); cn_model_free(m); cn_data_free(ds); return 1;
    }
    printf("Test set: Average loss: %.4f, Accuracy: %d/%d (%.2f%%)\n\n", r.loss_sum / n, r.correct, n, 100.0 * r.correct / n);
    printf("%-14s %8s %8s %8s\n", "class", "correct", "total", "accuracy");
    for (int k = 0; k < classes; k++) {
        long total = 0;
        for (int j = 0; j < classes; j++) total += confusion[k * classes + j];
        printf("%-14s %8ld %8ld %7.2f%%\n", cn_data_class_name(ds, k), confusion[k * classes + k], total,
               total ? 100.0 * confusion[k * classes + k] / total : 0.0);
    }
    print_confusions(confusion, classes, ds);
    cn_eval_result_free(&r);
    cn_model_free(m);
    cn_data_free(ds);
    return 0;
}

