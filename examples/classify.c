/* Loads a checkpoint (or an ONNX model) and classifies pictures of digits (PNG, PGM):
 * the class, its probability and the runner-up.
 *   cc classify.c $(pkg-config --cflags --libs convnet) -o classify
 *   ./classify MODEL.safetensors IMAGE... */
#include <convnet.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL IMAGE...\n", argv[0]);
        return 2;
    }
    static cn_model_info info;            /* normalisation and class names (32 kB) */
    cn_model *model;
    cn_session *session;
    if (cn_model_load(argv[1], NULL, &model, &info, NULL) || cn_session_create(model, 1, 1, 0, &session)) {
        fprintf(stderr, "classify: %s\n", cn_last_error());
        return 1;
    }
    int c, h, w, classes = cn_model_num_classes(model), failed = 0;
    cn_model_input_shape(model, &c, &h, &w);
    float *x = malloc(sizeof(float) * c * h * w), *p = malloc(sizeof(float) * classes);
    int *order = malloc(sizeof(int) * classes);
    for (int i = 2; i < argc; i++) {
        if (cn_image_prepare(argv[i], model, info.mean, info.std, 0, x, NULL) || cn_predict(session, x, 1, p)) {
            fprintf(stderr, "classify: %s\n", cn_last_error());
            failed = 1;
            continue;
        }
        cn_rank_classes(p, classes, order);
        printf("%s: %s (p=%.3f), then %s (p=%.3f)\n", argv[i], info.class_names[order[0]], p[order[0]],
               info.class_names[order[1]], p[order[1]]);
    }
    free(x); free(p); free(order);
    cn_session_free(session);
    cn_model_free(model);
    return failed;
}
