/* convnet predict */
#include "commands.h"
#include <dirent.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

static const char *const catalog_datasets[] = {"mnist", "fashion-mnist", "kmnist", NULL};

static void predict_help(void) {
    printf("usage: convnet predict --weights FILE [options] IMAGE|FOLDER...\n"
           "       convnet predict --weights FILE --csv test.csv -o submission.csv\n\n"
           "Classifies each image (a FOLDER stands for its .png/.jpg/.jpeg/.pgm files, in name\n"
           "order) with a trained model and prints, per image, e.g.\n"
           "  digit7.png: 7 (p=0.998)  top-3: 7 0.998, 1 0.001, 2 0.000\n"
           "For a 1x28x28 model each picture (PNG or PGM, any size, dark-on-light or\n"
           "light-on-dark) is first turned into an MNIST-style input (ink made bright on\n"
           "black, cropped, scaled to fit 20x20, centred by mass). For other input shapes a\n"
           "PNG or JPEG is converted as 'convnet train --dataset folder --resize HxW\n"
           "--grayscale' does for the model's shape. Then it is normalised with the\n"
           "model's mean/std. Probabilities are the softmax of the model's scores.\n\n"
           "  --csv FILE        classify the images of a Kaggle-style CSV (with or without\n"
           "                    a label column) and write Kaggle's ImageId,Label file to -o\n"
           "  -o, --out FILE    --csv: the submission file; images: a CSV of\n"
           "                    file,class,class_name,probability\n"
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
           "  --verbose         also print what preprocessing found (stderr)\n"
           "  --int8            run the model in int8 on the CPU, quantised as 'convnet export\n"
           "                    --format c --int8' does (the same classes as the exported C):\n"
           "                    scales calibrated on training images of the checkpoint's dataset\n"
           "  --calibration N   --int8: how many (default 1000)\n"
           "  --data DIR        --int8: where the dataset's files are (else the usual places)\n\n"
           "An image that cannot be read gives one error line naming it; the others are\n"
           "still classified, and the exit status is 1.\n");
}

typedef struct {
    const char *file;
    int ok;
    char error[512];           /* why it could not be classified */
    int *order;                /* classes by decreasing probability */
    float *prob;
} prediction;

/* Length of the valid UTF-8 sequence at s (1-4 bytes), or 0 if the bytes there are not one
 * (overlong forms, surrogates and code points past U+10FFFF are invalid too). */
static size_t utf8_sequence(const unsigned char *s) {
    if (s[0] < 0x80) return 1;
    int n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    for (int i = 1; i < n; i++) if ((s[i] & 0xc0) != 0x80) return 0;
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return (size_t)n;
}

/* Adds a string to a JSON object, each byte that is not part of valid UTF-8 (a
 * file name in another encoding) replaced by U+FFFD: cJSON copies bytes as they
 * are, and the document would not be valid JSON. */
static cJSON *add_text(cJSON *o, const char *key, const char *value) {
    size_t n = strlen(value);
    char *clean = malloc(3 * n + 1), *w = clean;
    if (!clean) return NULL;
    for (const unsigned char *p = (const unsigned char *)value; *p;) {
        size_t k = utf8_sequence(p);
        if (k) { memcpy(w, p, k); w += k; p += k; }
        else { memcpy(w, "\xef\xbf\xbd", 3); w += 3; p++; }
    }
    *w = '\0';
    cJSON *item = cJSON_AddStringToObject(o, key, clean);
    free(clean);
    return item;
}

/* Probabilities to 6 decimals in the JSON (float precision; cJSON would print 17 digits). */
static double rounded(float p) { return round((double)p * 1e6) / 1e6; }

static int print_json(const char *weights, const cn_model_info *info, const prediction *preds, int count, int top,
                      int classes) {
    cJSON *root = cJSON_CreateObject(), *list = NULL;
    int ok = root && add_text(root, "weights", weights) && add_text(root, "dataset", info->dataset) &&
             (list = cJSON_AddArrayToObject(root, "predictions"));
    for (int i = 0; ok && i < count; i++) {
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(list, o) && add_text(o, "file", preds[i].file);
        if (!ok) break;
        if (!preds[i].ok) { ok = add_text(o, "error", preds[i].error) != NULL; continue; }
        int best = preds[i].order[0];
        cJSON *arr = NULL;
        ok = cJSON_AddNumberToObject(o, "class", best) && add_text(o, "class_name", info->class_names[best]) &&
             cJSON_AddNumberToObject(o, "probability", rounded(preds[i].prob[best])) && (arr = cJSON_AddArrayToObject(o, "top"));
        for (int j = 0; ok && j < top && j < classes; j++) {
            int k = preds[i].order[j];
            cJSON *t = cJSON_CreateObject();
            ok = t && cJSON_AddItemToArray(arr, t) && cJSON_AddNumberToObject(t, "class", k) &&
                 add_text(t, "class_name", info->class_names[k]) &&
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

/* The image files named on the command line, folders expanded to their image
 * files in name order. Returns the count, or -1 (message printed). */
static int collect_files(char **args, int n, char ***out) {
    char **files = NULL;
    int count = 0, cap = 0;
    for (int i = 0; i < n; i++) {
        struct stat sb;
        struct dirent **list = NULL;
        int entries = stat(args[i], &sb) == 0 && S_ISDIR(sb.st_mode) ? scandir(args[i], &list, NULL, NULL) : -2;
        if (entries == -1) { fprintf(stderr, "%s: %s: cannot list the folder\n", cli_command, args[i]); free(files); return -1; }
        int adds = entries == -2 ? 1 : entries;
        if (count + adds > cap) {
            cap = (count + adds) * 2;
            char **grown = realloc(files, (size_t)cap * sizeof *files);
            if (!grown) { fprintf(stderr, "%s: out of memory\n", cli_command); free(files); return -1; }
            files = grown;
        }
        if (entries == -2) { files[count++] = strdup(args[i]); continue; }
        int first = count;
        for (int k = 0; k < entries; k++) {
            const char *name = list[k]->d_name, *dot = strrchr(name, '.');
            if (name[0] != '.' && dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") ||
                                          !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".pgm"))) {
                size_t len = strlen(args[i]) + strlen(name) + 2;
                if ((files[count] = malloc(len))) snprintf(files[count++], len, "%s/%s", args[i], name);
            }
            free(list[k]);
        }
        free(list);
        for (int a = first + 1; a < count; a++)   /* name order (bytewise) */
            for (int b = a; b > first && strcmp(files[b - 1], files[b]) > 0; b--) {
                char *t = files[b]; files[b] = files[b - 1]; files[b - 1] = t;
            }
    }
    *out = files;
    return count;
}

/* --csv: every image of the file through the model in batches (as eval does), then Kaggle's submission. */
static int predict_csv(cn_model *m, const cn_int8_model *q, const cn_model_info *info, const char *csv, const char *out) {
    int n;
    if (cn_predict_csv(m, q, info->mean, info->std, csv, out, 2, &n)) return cli_fail();
    printf("wrote %s: %d predictions (ImageId,Label)\n", out, n);
    return 0;
}

/* -o with images: file,class,class_name,probability per classified image, written atomically. */
static int write_results_csv(const char *out, const prediction *preds, int count, const cn_model_info *info) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) { fprintf(stderr, "%s: out of memory\n", cli_command); return 1; }
    fprintf(f, "file,class,class_name,probability\n");
    for (int i = 0; i < count; i++) {
        if (!preds[i].ok) continue;
        int best = preds[i].order[0];
        fprintf(f, "\"%s\",%d,\"%s\",%.6f\n", preds[i].file, best, info->class_names[best], preds[i].prob[best]);
    }
    int failed = fclose(f) != 0;
    int rc = failed ? (fprintf(stderr, "%s: out of memory\n", cli_command), 1)
                    : cn_write_file_atomic(out, text, size) ? cli_fail() : 0;
    free(text);
    return rc;
}

/* --int8: m quantised as the int8 C export quantises it, calibrated on `calibration` training
 * images of the checkpoint's dataset. Prints the error and returns NULL on failure. */
static cn_int8_model *int8_model(const cn_model *m, const cn_model_info *info, const char *data_dir, int calibration) {
    cn_data_options d = {.name = info->dataset, .dir = data_dir, .allow_download = 1, .parts = CN_DATASET_TRAIN};
    cn_model_input_shape(m, &d.channels, &d.rows, &d.cols);
    cn_data *ds;
    cn_int8_model *q = NULL;
    if (cn_data_open(&d, &ds)) { cli_fail(); return NULL; }
    if (cn_int8_calibrate(m, info->mean, info->std, ds, &calibration, &q)) cli_fail();
    cn_data_free(ds);
    return q;
}

/* One image into p (probabilities, classes ranked); 0 with the error printed when it fails. */
static int classify(const char *weights, const cn_model *m, cn_session *session, const cn_int8_model *q,
                    const cn_model_info *info, int raw, int verbose, int log_probs, float *x, prediction *p) {
    /* int8: pixels in [0, 1] (mean 0, std 1 leave them as they are); the int8 model normalises */
    static const float none_mean[CN_MAX_CHANNELS], none_std[CN_MAX_CHANNELS] = {1, 1, 1, 1};
    const float *mean = q ? none_mean : info->mean, *std = q ? none_std : info->std;
    cn_image_report rep;
    cn_status st = cn_image_prepare(p->file, m, mean, std, raw, x, &rep);
    if (st) {
        snprintf(p->error, sizeof p->error, "%s", cn_last_error());
        fflush(stdout);
        fprintf(stderr, "%s: %s\n", cli_command, p->error);
        return 0;
    }
    if (verbose && rep.digit)
        fprintf(stderr, "%s: %dx%d, background %d%s, ink %d, box %dx%d at (%d,%d) -> %dx%d at (%d,%d)\n", p->file,
                rep.width, rep.height, rep.background, rep.inverted ? " (inverted)" : "", rep.ink_max, rep.box_width,
                rep.box_height, rep.box_x, rep.box_y, rep.scaled_width, rep.scaled_height, rep.shift_x, rep.shift_y);
    st = q ? cn_int8_predict_probabilities(q, log_probs, x, 1, 1, p->prob) : cn_predict(session, x, 1, p->prob);
    if (st) {
        snprintf(p->error, sizeof p->error, "%s: %s", p->file, cn_last_error());
        fflush(stdout);
        if (st == CN_ERR_NUMERIC) fprintf(stderr, "%s: %s: %s\n", cli_command, weights, p->error);   /* diverged weights */
        else fprintf(stderr, "%s: %s\n", cli_command, p->error);
        return 0;
    }
    cn_rank_classes(p->prob, cn_model_num_classes(m), p->order);
    return 1;
}

int cmd_predict(int argc, char **argv) {
    cli_command = "convnet predict";
    const char *weights = NULL, *dataset = NULL, *csv = NULL, *out = NULL, *data_dir = NULL;
    int top = 3, json = 0, raw = 0, verbose = 0, int8 = 0, calibration = 0;
    enum { O_WEIGHTS = 256, O_TOP, O_JSON, O_DATASET, O_RAW, O_VERBOSE, O_CSV, O_HELP, O_INT8, O_CALIB, O_DATA };
    static const struct option opts[] = {
        {"weights", required_argument, 0, O_WEIGHTS}, {"top", required_argument, 0, O_TOP},
        {"json", no_argument, 0, O_JSON}, {"dataset", required_argument, 0, O_DATASET},
        {"no-preprocess", no_argument, 0, O_RAW}, {"verbose", no_argument, 0, O_VERBOSE},
        {"csv", required_argument, 0, O_CSV}, {"out", required_argument, 0, 'o'},
        {"help", no_argument, 0, O_HELP}, {"int8", no_argument, 0, O_INT8},
        {"calibration", required_argument, 0, O_CALIB}, {"data", required_argument, 0, O_DATA}, {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case O_WEIGHTS: weights = cli_path("--weights", optarg); break;
        case O_TOP: top = (int)cli_int("--top", optarg, 1, CN_MAX_CLASSES); break;
        case O_JSON: json = 1; break;
        case O_DATASET: dataset = cli_choice("--dataset", optarg, catalog_datasets, "mnist, fashion-mnist or kmnist"); break;
        case O_RAW: raw = 1; break;
        case O_VERBOSE: verbose = 1; break;
        case O_CSV: csv = optarg; break;
        case 'o': out = optarg; break;
        case O_INT8: int8 = 1; break;
        case O_CALIB: calibration = (int)cli_int("--calibration", optarg, 1, 60000); break;
        case O_DATA: data_dir = cli_path("--data", optarg); break;
        case O_HELP: case 'h': predict_help(); return 0;
        default: return cli_bad_option(argv, optind);
        }
    }
    if (!weights) { fprintf(stderr, "%s: --weights FILE is required (see 'convnet predict --help')\n", cli_command); return 2; }
    if (csv && (!out || optind < argc)) {
        fprintf(stderr, "%s: --csv FILE takes -o OUT and no image arguments (see 'convnet predict --help')\n", cli_command);
        return 2;
    }
    if (!csv && optind >= argc) { fprintf(stderr, "%s: no images given (see 'convnet predict --help')\n", cli_command); return 2; }
    if ((calibration || data_dir) && !int8) {
        fprintf(stderr, "%s: --calibration and --data apply to --int8 only (see 'convnet predict --help')\n", cli_command);
        return 2;
    }
    cn_model *m;
    static cn_model_info info;   /* static: 32 kB of class names */
    if (cli_load_weights(weights, dataset, &m, &info, NULL)) return 1;
    cn_int8_model *q = int8 ? int8_model(m, &info, data_dir, calibration ? calibration : 1000) : NULL;
    if (int8 && !q) { cn_model_free(m); return 1; }
    if (csv) { int rc = predict_csv(m, q, &info, csv, out); cn_int8_model_free(q); cn_model_free(m); return rc; }
    int classes = cn_model_num_classes(m), channels, rows, cols;
    cn_model_input_shape(m, &channels, &rows, &cols);
    if (classes > CN_MAX_CLASSES) {
        fprintf(stderr, "%s: %s: the model has %d outputs; at most %d classes are supported\n", cli_command, weights,
                classes, CN_MAX_CLASSES);
        cn_int8_model_free(q);
        cn_model_free(m);
        return 1;
    }
    if (info.num_classes != classes) /* names missing or not matching: number the classes */
        for (int k = 0; k < classes; k++) snprintf(info.class_names[k], sizeof info.class_names[k], "%d", k);
    if (top > classes) top = classes;
    int log_probs = cn_model_outputs_log_probabilities(m);
    cn_session *session;
    if (cn_session_create(m, 1, 1, 0, &session)) { cn_int8_model_free(q); cn_model_free(m); return cli_fail(); }

    char **files;
    int count = collect_files(argv + optind, argc - optind, &files), failures = 0;
    if (count < 0) { cn_session_free(session); cn_int8_model_free(q); cn_model_free(m); return 1; }
    prediction *preds = calloc((size_t)count + 1, sizeof *preds);
    int *orders = calloc((size_t)count * classes + 1, sizeof *orders);
    float *probs = calloc((size_t)count * classes + 1, sizeof *probs);
    float *x = malloc((size_t)channels * rows * cols * sizeof *x);
    if (!preds || !orders || !probs || !x) {
        free(preds); free(orders); free(probs); free(x);
        for (int i = 0; i < count; i++) free(files[i]);
        free(files);
        cn_session_free(session);
        cn_int8_model_free(q);
        cn_model_free(m); fprintf(stderr, "%s: out of memory\n", cli_command); return 1;
    }
    for (int i = 0; i < count; i++) {
        prediction *p = &preds[i];
        p->file = files[i];
        p->order = orders + (size_t)i * classes;
        p->prob = probs + (size_t)i * classes;
        if (!classify(weights, m, session, q, &info, raw, verbose, log_probs, x, p)) {
            failures++;
            continue;
        }
        p->ok = 1;
        if (json) continue;
        int best = p->order[0];
        printf("%s: %s (p=%.3f)  top-%d:", p->file, info.class_names[best], p->prob[best], top);
        for (int j = 0; j < top; j++)
            printf("%s %s %.3f", j ? "," : "", info.class_names[p->order[j]], p->prob[p->order[j]]);
        printf("\n");
        fflush(stdout);
    }
    int rc = json ? print_json(weights, &info, preds, count, top, classes) : 0;
    if (!rc && out) rc = write_results_csv(out, preds, count, &info);
    free(preds); free(orders); free(probs); free(x);
    for (int i = 0; i < count; i++) free(files[i]);
    free(files);
    cn_session_free(session);
    cn_int8_model_free(q);
    cn_model_free(m);
    return rc ? rc : failures ? 1 : 0;
}
