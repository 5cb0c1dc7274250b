/* Test-set accuracy of a model exported with `convnet export --format c`:
 * reads the raw (gunzipped) MNIST t10k IDX files, calls model_predict on every
 * image (pixels scaled to [0,1]) and prints the accuracy. Built by
 * bench/c_export_accuracy.sh next to the generated model.c. */
#include "model.h"
#include <stdio.h>
#include <stdlib.h>

static unsigned char *read_all(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    unsigned char *buf = malloc(*size);
    if (!buf || fread(buf, 1, *size, f) != (size_t)*size) { fprintf(stderr, "%s: read failed\n", path); exit(1); }
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s t10k-images-idx3-ubyte t10k-labels-idx1-ubyte\n", argv[0]); return 2; }
    long n_img, n_lab;
    unsigned char *images = read_all(argv[1], &n_img), *labels = read_all(argv[2], &n_lab);
    int count = (int)((n_img - 16) / 784), correct = 0;
    if (count != n_lab - 8) { fprintf(stderr, "image and label counts differ\n"); return 1; }
    float in[784], out[MODEL_NUM_CLASSES];
    for (int i = 0; i < count; i++) {
        for (int p = 0; p < 784; p++) in[p] = images[16 + (long)i * 784 + p] / 255.0f;
        correct += model_predict(in, out) == labels[8 + i];
    }
    printf("%d/%d (%.2f%%)\n", correct, count, 100.0 * correct / count);
    return 0;
}
