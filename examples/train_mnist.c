/* Trains a preset on MNIST and saves it.
 *   train_mnist DATA_DIR OUT_DIR [EPOCHS [TRAIN_IMAGES]]
 * Build: cc train_mnist.c $(pkg-config --cflags --libs convnet) */
#include <convnet.h>
#include <stdio.h>
#include <stdlib.h>

/* Prints each epoch's metrics as training reports them. */
static int on_event(void *user, const cn_train_event *e) {
    (void)user;
    if (e->kind == CN_TRAIN_EPOCH_END)
        printf("epoch %d/%d: train loss %.4f, test accuracy %.2f%% (%.1f s)\n", e->epoch, e->epochs, e->loss,
               e->test_acc, e->seconds);
    return 0;  /* non-zero would stop training (and save a resumable checkpoint) */
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s DATA_DIR OUT_DIR [EPOCHS [TRAIN_IMAGES]]\n", argv[0]); return 2; }
    cn_net *net;
    if (cn_net_from_preset("tinynet", 1, &net)) { fprintf(stderr, "%s\n", cn_last_error()); return 1; }
    printf("tinynet: %zu parameters\n", cn_net_param_count(net));

    cn_train_config cfg;
    cn_train_config_init(&cfg);
    cfg.data_dir = argv[1];
    cfg.out_dir = argv[2];
    cfg.recipe.epochs = argc > 3 ? atoi(argv[3]) : 1;  /* unset fields: the preset's recipe */
    cfg.recipe.batch_size = 32;
    cfg.recipe.lr = 0.003;
    cfg.train_limit = argc > 4 ? atoi(argv[4]) : 0;
    cfg.test_limit = cfg.train_limit ? 1000 : 0;
    cfg.threads = 2;
    cfg.on_event = on_event;
    cn_status st = cn_net_train(net, &cfg);

    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", argv[2]);
    if (st == CN_OK) st = cn_net_save(net, path);
    if (st == CN_OK) printf("saved %s (%s, %d classes)\n", path, cn_net_dataset(net), cn_net_num_classes(net));
    else fprintf(stderr, "%s: %s\n", cn_status_name(st), cn_last_error());
    cn_net_free(net);
    return st == CN_OK ? 0 : 1;
}
