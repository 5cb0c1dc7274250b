/* Trains a preset on MNIST and saves it: OUT/best.safetensors, OUT/last.safetensors,
 * OUT/metrics.csv. The library's log (one line per epoch) is printed by a note handler.
 *   cc train_mnist.c $(pkg-config --cflags --libs convnet) -o train_mnist
 *   ./train_mnist DATA_DIR OUT [EPOCHS [TRAIN_IMAGES]] */
#include <convnet.h>
#include <stdio.h>
#include <stdlib.h>

static void print_note(cn_note_kind kind, const char *text, void *user) {
    (void)user;
    if (kind != CN_NOTE_PROGRESS) fprintf(kind == CN_NOTE_INFO ? stdout : stderr, "%s\n", text);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DATA_DIR OUT [EPOCHS [TRAIN_IMAGES]]\n", argv[0]);
        return 2;
    }
    cn_set_note_handler(print_note, NULL);
    cn_train_options o;
    cn_train_options_init(&o);
    o.model = "tinynet";                 /* a preset: see `convnet models` */
    o.dataset = "mnist";
    o.data_dir = argv[1];
    o.out_dir = argv[2];
    o.overrides.epochs = argc > 3 ? atoi(argv[3]) : 1;
    o.overrides.batch_size = 32;
    o.overrides.lr = 0.003;
    o.train_limit = argc > 4 ? atoi(argv[4]) : 0;   /* 0: all 60,000 */
    o.test_limit = 1000;
    o.threads = 2;
    o.quiet = 1;                          /* no progress bar */
    if (cn_train(&o) != CN_OK) {
        fprintf(stderr, "train_mnist: %s\n", cn_last_error());
        return 1;
    }
    printf("saved %s/best.safetensors\n", argv[2]);
    return 0;
}
