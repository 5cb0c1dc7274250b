/* Evaluates a checkpoint on its dataset's test split: accuracy and per-class recall.
 *   cc evaluate.c $(pkg-config --cflags --libs convnet) -o evaluate
 *   ./evaluate MODEL.safetensors DATA_DIR */
#include <convnet.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL DATA_DIR\n", argv[0]);
        return 2;
    }
    static cn_model_info info;
    cn_model *model;
    cn_data *data = NULL;
    cn_eval_result r;
    if (cn_model_load(argv[1], NULL, &model, &info, NULL)) {
        fprintf(stderr, "evaluate: %s\n", cn_last_error());
        return 1;
    }
    cn_data_options o = {.name = info.dataset, .dir = argv[2], .parts = CN_DATASET_TEST};
    cn_model_input_shape(model, &o.channels, &o.rows, &o.cols);
    if (cn_data_open(&o, &data) || cn_data_check_model(data, model) ||
        cn_evaluate_data(model, data, info.mean, info.std, 2, &r)) {
        fprintf(stderr, "evaluate: %s\n", cn_last_error());
        cn_data_free(data);
        cn_model_free(model);
        return 1;
    }
    printf("%s on %s: %d/%d correct (%.2f%%)\n", argv[1], cn_data_name(data), r.correct, r.count,
           100.0 * r.correct / r.count);
    for (int k = 0; k < r.classes; k++) {
        long total = 0;
        for (int j = 0; j < r.classes; j++) total += r.confusion[k * r.classes + j];
        printf("  %-12s %5ld/%-5ld\n", cn_data_class_name(data, k), r.confusion[k * r.classes + k], total);
    }
    cn_eval_result_free(&r);
    cn_data_free(data);
    cn_model_free(model);
    return 0;
}
