/* Helpers of the tests that compile and run the C export on the host (test_export_c.c,
 * test_int8.c): MNIST images, a driver program, running model_predict over images.
 * Include after harness.h. */
#ifndef CONVNET_TEST_EXPORT_C_HOST_H
#define CONVNET_TEST_EXPORT_C_HOST_H
#include "harness.h"
#include <stdbool.h>
#include <zlib.h>

#define MNIST_TEST_IMAGES "../shared/data/mnist/t10k-images-idx3-ubyte.gz"
#define MNIST_TEST_LABELS "../shared/data/mnist/t10k-labels-idx1-ubyte.gz"
#define MNIST_TRAIN_IMAGES "../shared/data/mnist/train-images-idx3-ubyte.gz"
#define MNIST_TRAIN_LABELS "../shared/data/mnist/train-labels-idx1-ubyte.gz"

/* The first `count` images of an MNIST IDX image file (.gz) as pixels / 255.0f, or NULL if the
 * file is not there. */
static inline float *export_c_host_mnist(const char *path, int count) {
    gzFile f = gzopen(path, "rb");
    if (!f) return NULL;
    unsigned char header[16];
    unsigned char *raw = malloc((size_t)count * 784);
    float *x = NULL;
    if (gzread(f, header, 16) == 16 && header[2] == 8 && header[3] == 3 &&
        gzread(f, raw, (unsigned)count * 784) == count * 784) {
        x = malloc((size_t)count * 784 * sizeof *x);
        for (int i = 0; i < count * 784; i++) x[i] = raw[i] / 255.0f;
    }
    free(raw);
    gzclose(f);
    return x;
}

/* The first `count` labels of an MNIST IDX label file (.gz), or NULL. */
static inline int *export_c_host_mnist_labels(const char *path, int count) {
    gzFile f = gzopen(path, "rb");
    if (!f) return NULL;
    unsigned char header[8], *raw = malloc((size_t)count);
    int *y = NULL;
    if (gzread(f, header, 8) == 8 && header[2] == 8 && header[3] == 1 && gzread(f, raw, (unsigned)count) == count) {
        y = malloc((size_t)count * sizeof *y);
        for (int i = 0; i < count; i++) y[i] = raw[i];
    }
    free(raw);
    gzclose(f);
    return y;
}

static inline int run(const char *cmd) {
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "  command failed (%d): %s\n", rc, cmd);
    return rc;
}

static const char DRIVER[] =
    "#include \"model.h\"\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "/* driver N: reads N images from inputs.bin, writes N x classes scores to outputs.bin and N predictions to preds.bin */\n"
    "int main(int argc, char **argv)\n"
    "{\n"
    "    int n = argc > 1 ? atoi(argv[1]) : 0, i;\n"
    "    static float in[MODEL_INPUT_SIZE], out[MODEL_NUM_CLASSES];\n"
    "    FILE *fi = fopen(\"inputs.bin\", \"rb\"), *fo = fopen(\"outputs.bin\", \"wb\"), *fp = fopen(\"preds.bin\", \"wb\");\n"
    "    if (!fi || !fo || !fp) return 1;\n"
    "    for (i = 0; i < n; i++) {\n"
    "        int p;\n"
    "        if (fread(in, sizeof in, 1, fi) != 1) return 2;\n"
    "        p = model_predict(in, out);\n"
    "        fwrite(out, sizeof out, 1, fo);\n"
    "        fwrite(&p, sizeof p, 1, fp);\n"
    "    }\n"
    "    fclose(fi); fclose(fo); fclose(fp);\n"
    "    return 0;\n"
    "}\n";

static inline int write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = fwrite(data, 1, size, f);
    fclose(f);
    return n == size ? 0 : -1;
}

static inline void *read_file(const char *path, size_t size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    void *p = malloc(size);
    size_t n = fread(p, 1, size, f);
    fclose(f);
    if (n != size) { free(p); return NULL; }
    return p;
}

/* Compiles DIR/model.c strictly and with the driver, runs model_predict on the n images
 * (n x 784 floats). Returns the scores (n x classes) and predictions (malloc'd), or false. */
static inline bool export_c_host_run(const char *dir, const char *name, const float *inputs, int n, int classes, float **scores,
                                     int **preds) {
    char cmd[1024], path[200];
    snprintf(cmd, sizeof cmd, "cd %s && cc -std=c99 -Wall -Wextra -Werror -pedantic -c model.c -o model.o", dir);
    CHECK_MSG(run(cmd) == 0, "%s: model.c does not compile as strict C99", name);
    snprintf(path, sizeof path, "%s/driver.c", dir);
    CHECK(write_file(path, DRIVER, sizeof DRIVER - 1) == 0);
    snprintf(path, sizeof path, "%s/inputs.bin", dir);
    CHECK(write_file(path, inputs, (size_t)n * 784 * sizeof(float)) == 0);
    snprintf(cmd, sizeof cmd, "cd %s && cc -std=c99 -O2 -Wall -Wextra -Werror -pedantic driver.c model.c -lm -o driver "
             "&& ./driver %d", dir, n);
    if (run(cmd) != 0) { CHECK_MSG(false, "%s: driver failed", name); return false; }
    snprintf(path, sizeof path, "%s/outputs.bin", dir);
    *scores = read_file(path, (size_t)n * classes * sizeof(float));
    snprintf(path, sizeof path, "%s/preds.bin", dir);
    *preds = read_file(path, (size_t)n * sizeof(int));
    CHECK(*scores && *preds);
    return *scores && *preds;
}

#endif
