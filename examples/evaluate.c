/* Evaluates a checkpoint on its dataset's test set, prints the accuracy and
 * the most frequent confusion, and exports the model as ONNX.
 *   evaluate MODEL.safetensors DATA_DIR OUT.onnx
 * Build: cc evaluate.c $(pkg-config --cflags --libs convnet) */
#include <convnet.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s MODEL DATA_DIR OUT.onnx\n", argv[0]); return 2; }
    cn_net *net = NULL;
    cn_data *data = NULL;
    int64_t *confusion = NULL;
    cn_eval_result r;
    cn_status st = cn_net_load(argv[1], NULL, &net);
    if (!st) st = cn_data_load(cn_net_dataset(net), argv[2], 0, &data);
    int classes = data ? cn_data_num_classes(data) : 0;
    if (!st && !(confusion = calloc((size_t)classes * classes, sizeof *confusion))) st = CN_ERR_NOMEM;
    if (!st) st = cn_net_evaluate(net, data, CN_SPLIT_TEST, 2, &r, confusion, NULL);
    if (!st) {
        printf("%s on %s: loss %.4f, accuracy %d/%d (%.2f%%)\n", argv[1], cn_data_name(data), r.loss, r.correct,
               r.count, r.accuracy);
        int t = 0, p = 1;  /* the largest off-diagonal cell */
        for (int i = 0; i < classes; i++)
            for (int j = 0; j < classes; j++)
                if (i != j && confusion[i * classes + j] > confusion[t * classes + p]) { t = i; p = j; }
        printf("most confused: %s taken for %s %lld times\n", cn_data_class_name(data, t), cn_data_class_name(data, p),
               (long long)confusion[t * classes + p]);
        cn_export_report rep;
        st = cn_net_export_onnx(net, argv[3], 1, &rep);
        if (!st) printf("wrote %s: %lld bytes, %d of %d BatchNorm folded\n", argv[3], rep.bytes, rep.batchnorm_folded,
                        rep.batchnorm);
    }
    if (st) fprintf(stderr, "%s: %s\n", cn_status_name(st), cn_last_error());
    free(confusion);
    cn_data_free(data);
    cn_net_free(net);
    return st ? 1 : 0;
}
