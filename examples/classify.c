/* Loads a checkpoint (or ONNX model) and classifies pictures of digits.
 *   classify MODEL.safetensors IMAGE.pgm|png...
 * Build: cc classify.c $(pkg-config --cflags --libs convnet) */
#include <convnet.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s MODEL IMAGE...\n", argv[0]); return 2; }
    cn_net *net;
    if (cn_net_load(argv[1], NULL, &net)) { fprintf(stderr, "%s\n", cn_last_error()); return 1; }
    int classes = cn_net_num_classes(net), failures = 0;
    if (classes > CN_MAX_CLASSES) { fprintf(stderr, "%s: too many classes\n", argv[1]); cn_net_free(net); return 1; }
    for (int i = 2; i < argc; i++) {
        float pixels[CN_DIGIT_PIXELS], probs[CN_MAX_CLASSES];
        int order[CN_MAX_CLASSES];
        /* MNIST-style 28x28 input: ink bright on black, cropped, scaled, centred. */
        if (cn_image_to_digit(argv[i], 1, pixels, NULL) || cn_net_predict(net, pixels, 1, probs)) {
            fprintf(stderr, "%s\n", cn_last_error());
            failures++;
            continue;
        }
        cn_rank_classes(probs, classes, order);
        printf("%s: %s (p=%.3f)\n", argv[i], cn_net_class_name(net, order[0]), probs[order[0]]);
    }
    cn_net_free(net);
    return failures ? 1 : 0;
}
