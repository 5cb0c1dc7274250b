/* convnet eval */
#include "commands.h"
#include <getopt.h>
#include <stdlib.h>

static void eval_help(void) {
    printf("usage: convnet eval --weights FILE [--data DIR] [--dataset NAME] [--threads N]\n\n"
           "Evaluates a checkpoint (.safetensors) or an ONNX model (.onnx) on the test set:\n"
           "the seed log line, per-class accuracy and the confusion matrix.\n\n"
           "An ONNX model is fed (pixel/255 - mean) / std with the mean/std from its metadata\n"
           "(normalize_mean, normalize_std, as 'convnet export' writes them); a model\n"
           "exported by torch.onnx.export has none, and then the dataset's own values are\n"
           "used (mnist: 0.1307, 0.3081, as torchvision's MNIST examples normalise).\n"
           "--dataset picks the dataset for ONNX models (default mnist).\n");
}

int cmd_eval(int argc, char **argv) {
    const char *weights = NULL, *data_dir = NULL, *dataset = NULL;
    int threads = 0, allow_download = 1;
    static const struct option opts[] = {
        {"weights", required_argument, 0, 'w'}, {"data", required_argument, 0, 'd'},
        {"dataset", required_argument, 0, 's'}, {"threads", required_argument, 0, 't'},
        {"no-download", no_argument, 0, 'n'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    for (int c; (c = cli_next_option(argc, argv, "h", opts)) != -1;) {
        switch (c) {
        case 'w': weights = optarg; break;
        case 'd': data_dir = optarg; break;
        case 's': dataset = cli_choice("--dataset", optarg, cli_datasets, "mnist, fashion-mnist, kmnist or idx"); break;
        case 't': threads = (int)cli_int("--threads", optarg, 1, 256); break;
        case 'n': allow_download = 0; break;
        case 'h': eval_help(); return 0;
        default: return cli_bad_option(argv, optind);
        }
    }
    if (!weights) { fprintf(stderr, "%s: --weights FILE is required (see 'convnet eval --help')\n", cli_command); return 2; }
    cn_net *net;
    if (cli_load_net(weights, dataset, &net)) return 1;
    cn_data *data;
    if (cn_data_load(dataset ? dataset : cn_net_dataset(net), data_dir, allow_download, &data)) {
        cn_net_free(net);
        return cli_fail();
    }
    int classes = cn_data_num_classes(data);
    int64_t *confusion = calloc((size_t)classes * classes, sizeof *confusion);
    cn_eval_result res;
    if (!confusion || cn_net_evaluate(net, data, CN_SPLIT_TEST, threads, &res, confusion, NULL)) {
        free(confusion); cn_net_free(net); cn_data_free(data); return cli_fail();
    }
    printf("Test set: Average loss: %.4f, Accuracy: %d/%d (%.2f%%)\n\n", res.loss, res.correct, res.count, res.accuracy);
    printf("%-14s %8s %8s %8s\n", "class", "correct", "total", "accuracy");
    for (int k = 0; k < classes; k++) {
        long long total = 0, hits = confusion[k * classes + k];
        for (int j = 0; j < classes; j++) total += confusion[k * classes + j];
        printf("%-14s %8lld %8lld %7.2f%%\n", cn_data_class_name(data, k), hits, total, total ? 100.0 * hits / total : 0.0);
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n%6s", "");
    for (int j = 0; j < classes; j++) printf("%6d", j);
    printf("\n");
    for (int k = 0; k < classes; k++) {
        printf("%6d", k);
        for (int j = 0; j < classes; j++) printf("%6lld", (long long)confusion[k * classes + j]);
        printf("\n");
    }
    free(confusion);
    cn_net_free(net);
    cn_data_free(data);
    return 0;
}

