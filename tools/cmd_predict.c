/* convnet predict */
#include "commands.h"
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>

#define SIDE 28   /* predict feeds 1x28x28 digits (CN_DIGIT_PIXELS) */

static const char *const catalog_datasets[] = {"mnist", "fashion-mnist", "kmnist", NULL};

static void predict_help(void) {
    printf("usage: convnet predict --weights FILE [options] IMAGE...\n\n"
           "Classifies each image (PNG or PGM, any size, dark-on-light or light-on-dark)\n"
           "with a trained model and prints, per image, e.g.\n"
           "  digit7.png: 7 (p=0.998)  top-3: 7 0.998, 1 0.001, 2 0.000\n"
           "Each picture is first turned into a 28x28 MNIST-style input (ink made bright\n"
           "on black, cropped, scaled to fit 20x20, centred by mass), then normalised with\n"
           "the model's mean/std. Probabilities are the softmax of the model's scores.\n\n"
           "  --weights FILE    a convnet checkpoint (.safetensors) or an ONNX model (.onnx)\n"
           "  --top N           how many classes to list (default 3)\n"
           "  --json            print one JSON document instead of text lines\n"
           "  --dataset NAME    for ONNX models: mnist | fashion-mnist | kmnist; gives the\n"
           "                    class names and the normalisation (default mnist:\n"
           "                    mean 0.1307, std 0.3081). The file's metadata\n"
           "                    normalize_mean/normalize_std (written by 'convnet export')\n"
           "                    take precedence. Checkpoints carry both themselves.\n"
           "  --no-preprocess   feed 28x28 images as they are (pixel/255, no inversion,\n"
           "                    cropping or centring), e.g. digits cut out of MNIST\n"
           "  --verbose         also print what preprocessing found (stderr)\n\n"
           "An image that cannot be read gives one error line naming it; the others are\n"
           "still classified, and the exit status is 1.\n");
}

typedef struct {
    const char *file;
    int ok;
    char error[512];           /* why it could not be classified */
    int order[CN_MAX_CLASSES]; /* classes by decreasing probability */
    float prob[CN_MAX_CLASSES];
} prediction;

/* Reads and preprocesses one image into x[28*28] (pixel/255). On failure,
 * writes one line naming the file into err. */
static int prepare_image(const char *path, int raw, int verbose, float *x, char *err, size_t err_size) {
    cn_digit_info d;
    cn_status st = cn_image_to_digit(path, !raw, x, &d);
    if (st == CN_ERR_SHAPE && raw)
        snprintf(err, err_size, "%s: image is %dx%d; --no-preprocess needs %dx%d", path, d.width, d.height, SIDE, SIDE);
    else if (st)
        snprintf(err, err_size, "%s", cn_last_error()); /* the message starts with the file name */
    else if (verbose && !raw)
        fprintf(stderr, "%s: %dx%d, background %d%s, ink %d, box %dx%d at (%d,%d) -> %dx%d at (%d,%d)\n", path, d.width,
                d.height, d.background, d.inverted ? " (inverted)" : "", d.ink_max, d.box_width, d.box_height, d.box_x,
                d.box_y, d.scaled_width, d.scaled_height, d.shift_x, d.shift_y);
    return st == CN_OK;
}

/* Probabilities to 6 decimals in the JSON (float precision; cJSON would print 17 digits). */
static double rounded(float p) { return round((double)p * 1e6) / 1e6; }

static int print_json(const char *weights, const cn_net *net, const prediction *preds, int count, int top,
                      int classes) {
    cJSON *root = cJSON_CreateObject(), *list = NULL;
    int ok = root && cJSON_AddStringToObject(root, "weights", weights) && cJSON_AddStringToObject(root, "dataset", cn_net_dataset(net)) &&
             (list = cJSON_AddArrayToObject(root, "predictions"));
    for (int i = 0; ok && i < count; i++) {
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(list, o) && cJSON_AddStringToObject(o, "file", preds[i].file);
        if (!ok) break;
        if (!preds[i].ok) { ok = cJSON_AddStringToObject(o, "error", preds[i].error) != NULL; continue; }
        int best = preds[i].order[0];
        cJSON *arr = NULL;
        ok = cJSON_AddNumberToObject(o, "class", best) && cJSON_AddStringToObject(o, "class_name", cn_net_class_name(net, best)) &&
             cJSON_AddNumberToObject(o, "probability", rounded(preds[i].prob[best])) && (arr = cJSON_AddArrayToObject(o, "top"));
        for (int j = 0; ok && j < top && j < classes; j++) {
            int k = preds[i].order[j];
            cJSON *t = cJSON_CreateObject();
            ok = t && cJSON_AddItemToArray(arr, t) && cJSON_AddNumberToObject(t, "class", k) &&
                 cJSON_AddStringToObject(t, "class_name", cn_net_class_name(net, k)) &&
                 cJSON_AddNumberToObject(t, "probability", rounded(preds[i].prob[k]));
        }
    }
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) { fprintf(stderr, "%s: out of memory while building the JSON output\n", cli_command); return 1; }
    printf("%s\n", text);
    cJSON_free(text);
    return 0;
}

int cmd_predict(int argc, char **argv) {
    const char *weights = NULL, *dataset = NULL;
    int top = 3, json = 0, raw = 0, verbose = 0;
    enum { O_WEIGHTS = 256, O_TOP, O_JSON, O_DATASET, O_RAW, O_VERBOSE, O_HELP };
    static const struct option opts[] = {
        {"weights", required_argument, 0, O_WEIGHTS}, {"top", required_argument, 0, O_TOP},
        {"json", no_argument, 0, O_JSON}, {"dataset", required_argument, 0, O_DATASET},
        {"no-preprocess", no_argument, 0, O_RAW}, {"verbose", no_argument, 0, O_VERBOSE},
        {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0}};
    for (int c; (c = cli_next_option(argc, argv, "h", opts)) != -1;) {
        switch (c) {
        case O_WEIGHTS: weights = optarg; break;
        case O_TOP: top = (int)cli_int("--top", optarg, 1, CN_MAX_CLASSES); break;
        case O_JSON: json = 1; break;
        case O_DATASET: dataset = cli_choice("--dataset", optarg, catalog_datasets, "mnist, fashion-mnist or kmnist"); break;
        case O_RAW: raw = 1; break;
        case O_VERBOSE: verbose = 1; break;
        case O_HELP: case 'h': predict_help(); return 0;
        default: return cli_bad_option(argv, optind);
        }
    }
    if (!weights) { fprintf(stderr, "%s: --weights FILE is required (see 'convnet predict --help')\n", cli_command); return 2; }
    if (optind >= argc) { fprintf(stderr, "%s: no images given (see 'convnet predict --help')\n", cli_command); return 2; }
    cn_net *net;
    if (cli_load_net(weights, dataset, &net)) return 1;
    int classes = cn_net_num_classes(net), ch, h, w;
    cn_net_input_shape(net, &ch, &h, &w);
    if (ch != 1 || h != SIDE || w != SIDE) {
        fprintf(stderr, "%s: %s: the model takes %dx%dx%d inputs; predict feeds 1x%dx%d grayscale digits\n", cli_command,
                weights, ch, h, w, SIDE, SIDE);
        cn_net_free(net);
        return 1;
    }
    if (classes > CN_MAX_CLASSES) {
        fprintf(stderr, "%s: %s: the model has %d outputs; at most %d classes are supported\n", cli_command, weights,
                classes, CN_MAX_CLASSES);
        cn_net_free(net);
        return 1;
    }
    if (top > classes) top = classes;

    int count = argc - optind, failures = 0;
    prediction *preds = calloc((size_t)count, sizeof *preds);
    if (!preds) { cn_net_free(net); fprintf(stderr, "%s: out of memory\n", cli_command); return 1; }
    float x[CN_DIGIT_PIXELS];
    for (int i = 0; i < count; i++) {
        prediction *p = &preds[i];
        p->file = argv[optind + i];
        if (!prepare_image(p->file, raw, verbose, x, p->error, sizeof p->error)) {
            fflush(stdout);
            fprintf(stderr, "%s: %s\n", cli_command, p->error);
            failures++;
            continue;
        }
        if (cn_net_predict(net, x, 1, p->prob)) { free(preds); cn_net_free(net); return cli_fail(); }
        cn_rank_classes(p->prob, classes, p->order);
        p->ok = 1;
        if (json) continue;
        int best = p->order[0];
        printf("%s: %s (p=%.3f)  top-%d:", p->file, cn_net_class_name(net, best), p->prob[best], top);
        for (int j = 0; j < top; j++)
            printf("%s %s %.3f", j ? "," : "", cn_net_class_name(net, p->order[j]), p->prob[p->order[j]]);
        printf("\n");
        fflush(stdout);
    }
    int rc = json ? print_json(weights, net, preds, count, top, classes) : 0;
    free(preds);
    cn_net_free(net);
    return rc ? rc : failures ? 1 : 0;
}
