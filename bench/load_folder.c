/* Loads an image-folder dataset (DIR/train, DIR/test) the way `convnet train
 * --dataset folder` does and prints the wall time:
 *
 *     load_folder DIR THREADS [cold]
 *
 * cold: delete DIR/.convnet-cache-* first (decode every file); otherwise the
 * decoded-image cache is used when it is current. Prints
 * "convnet\t<cold|warm>\t<images>\t<seconds>". */
#include "data/dataset.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: load_folder DIR THREADS [cold]\n"); return 2; }
    int cold = argc > 3 && !strcmp(argv[3], "cold");
    if (cold) {
        const char *splits[3] = {"train", "test", "val"};
        char path[4200];
        for (int i = 0; i < 3; i++) { snprintf(path, sizeof path, "%s/.convnet-cache-%s", argv[1], splits[i]); remove(path); }
    }
    static cn_dataset ds;
    cn_data_options o = {.name = "folder", .dir = argv[1], .threads = atoi(argv[2]), .grayscale = 1};
    double t0 = now();
    if (cn_dataset_open(&o, &ds) != CN_OK) { fprintf(stderr, "load_folder: %s\n", cn_last_error()); return 1; }
    double dt = now() - t0;
    printf("convnet\t%s\t%d\t%.3f\n", cold ? "cold" : "warm", ds.train.count + ds.test.count, dt);
    cn_dataset_free(&ds);
    return 0;
}
