/* Helpers of the tests that compile and run the C export on the host (test_export_c.c,
 * test_int8.c): MNIST images, a driver program, running model_predict over images; and
 * the models with the layers beyond the seeds that those tests and test_web.c export.
 * Include after harness.h. */
#ifndef CONVNET_TEST_EXPORT_C_HOST_H
#define CONVNET_TEST_EXPORT_C_HOST_H
#include "harness.h"
#include "model.h"
#include "core/rng.h"
#include <stdbool.h>
#include <zlib.h>

/* The layers beyond the seeds, for both tests: a depthwise conv with stride 2, a grouped
 * and dilated conv with a max pool after it (fused into the int8 conv), a grouped 1x1, a
 * dilated depthwise conv without padding or bias, relu6 (in the int8 region, saturating:
 * see export_c_host_new_layers), leaky_relu, batchnorm1d after a linear (folded into it),
 * dropout2d and dropout (dropped). */
#define NEW_LAYERS_SPEC                                                    \
    "input 1x28x28\n"                                                      \
    "conv2d out=8 k=3 pad=1\nbatchnorm2d\nrelu6\n"                          \
    "conv2d out=8 k=3 stride=2 pad=1 groups=8\nbatchnorm2d\nleaky_relu slope=0.1\n" \
    "conv2d out=16 k=3 pad=2 dilation=2 groups=2\nmaxpool2d k=2\ndropout2d p=0.25\n" \
    "conv2d out=24 k=1 groups=4\nrelu\n"                                    \
    "conv2d out=24 k=3 dilation=2 groups=24 bias=false\nrelu6\n"            \
    "flatten\nlinear out=32\nbatchnorm1d\nleaky_relu slope=0.2\ndropout p=0.1\n" \
    "linear out=10\nlog_softmax\n"
/* A grouped, dilated conv as the last weighted layer (int8 writes float from it), with
 * leaky_relu in the int8 region and relu6 and leaky_relu after it (float). */
#define NEW_LAYERS_TAIL_SPEC                                               \
    "input 1x28x28\n"                                                      \
    "conv2d out=20 k=5 stride=2\nleaky_relu slope=0.1\n"                    \
    "conv2d out=10 k=3 dilation=2 groups=10\nrelu6\ngap\nflatten\nleaky_relu slope=0.3\nlog_softmax\n"

/* Branches beyond res20k's residual blocks, for the exports: a concat of six branches (the
 * model input read by two convs with different padding, relu6 on a value that later layers
 * still read, a conv whose output feeds both its batch norm and the concat, so the batch
 * norm stays unfolded), an add of three inputs with a ReLU after it, an add of a flattened
 * conv output and a linear (shapes that differ in C x H x W, not in size), a flat concat,
 * and a branch in the float tail after the last linear (an add of its output and a
 * leaky_relu of it). */
#define BRANCHES_SPEC                                                      \
    "input 1x28x28\n"                                                      \
    "conv2d out=8 k=3 stride=2 pad=1 name=stem\nrelu name=stem_relu\n"     \
    "conv2d out=8 k=3 pad=1 name=a\nbatchnorm2d name=a_bn\nrelu name=a_relu\n" \
    "conv2d out=4 k=1 from=stem_relu name=b\n"                              \
    "relu6 from=stem_relu name=c6\n"                                        \
    "maxpool2d k=3 stride=1 pad=1 from=stem_relu name=d\n"                  \
    "conv2d out=4 k=5 stride=2 pad=2 from=input name=i5\n"                  \
    "concat from=a_relu,b,c6,d,a,i5 name=cat\n"                             \
    "conv2d out=16 k=3 stride=2 pad=1 name=e\nbatchnorm2d name=e_bn\nrelu name=e_relu\n" \
    "conv2d out=16 k=3 pad=1 name=f\nbatchnorm2d name=f_bn\n"              \
    "conv2d out=16 k=1 stride=2 from=cat name=g\n"                          \
    "add from=f_bn,e_relu,g name=sum\nrelu name=sum_relu\n"                \
    "conv2d out=4 k=3 stride=2 name=h\nflatten name=hf\nlinear out=36 name=fc_h\n" \
    "add from=hf,fc_h name=flat_sum\n"                                      \
    "gap from=sum_relu name=pool\nflatten name=pf\n"                       \
    "concat from=flat_sum,pf name=cat2\n"                                   \
    "linear out=10 name=fc\nleaky_relu slope=0.1 name=fc_lr\nadd from=fc,fc_lr name=fc_sum\nlog_softmax\n"

/* Non-trivial batch-norm statistics (random-init models), so that folding and the
 * per-channel affine are exercised. */
static inline void export_c_host_perturb_bn(cn_model *m) {
    cn_rng rng;
    cn_rng_seed(&rng, 5);
    for (int i = 0; i < m->num_layers; i++) {
        cn_layer *l = &m->layers[i];
        if (l->kind != CN_LAYER_BATCHNORM2D) continue;
        int C = l->in.c;
        float *w = m->params + l->weight_offset, *b = m->params + l->bias_offset, *s = m->buffers + l->buffer_offset;
        for (int c = 0; c < C; c++) {
            w[c] = 0.8f + 0.4f * cn_rng_uniform(&rng);
            b[c] = 0.2f * cn_rng_uniform(&rng) - 0.1f;
            s[c] = 0.2f * cn_rng_uniform(&rng) - 0.1f;
            s[C + c] = 0.5f + cn_rng_uniform(&rng);
        }
    }
}

/* "new-layers" (NEW_LAYERS_SPEC) or "new-layers-tail" (NEW_LAYERS_TAIL_SPEC) with seed
 * `seed`, batch norms perturbed and the first batch norm's scale times 8, so that the
 * first relu6 saturates on many pixels; NULL for another name. */
static inline cn_model *export_c_host_new_layers(const char *name, uint64_t seed) {
    bool tail = !strcmp(name, "new-layers-tail");
    if (!tail && strcmp(name, "new-layers")) return NULL;
    cn_model *m = NULL;
    cn_status st = cn_model_from_spec(tail ? NEW_LAYERS_TAIL_SPEC : NEW_LAYERS_SPEC, name, seed, &m);
    CHECK_MSG(st == CN_OK, "%s: %s", name, cn_last_error());
    if (!m) return NULL;
    export_c_host_perturb_bn(m);
    for (int i = 0; i < m->num_layers; i++)
        if (m->layers[i].kind == CN_LAYER_BATCHNORM2D) {
            for (int c = 0; c < m->layers[i].in.c; c++) m->params[m->layers[i].weight_offset + c] *= 8.0f;
            break;
        }
    return m;
}

/* "branches": BRANCHES_SPEC with seed `seed`, batch norms perturbed; NULL for another name. */
static inline cn_model *export_c_host_branches(const char *name, uint64_t seed) {
    if (strcmp(name, "branches")) return NULL;
    cn_model *m = NULL;
    cn_status st = cn_model_from_spec(BRANCHES_SPEC, name, seed, &m);
    CHECK_MSG(st == CN_OK, "%s: %s", name, cn_last_error());
    if (m) export_c_host_perturb_bn(m);
    return m;
}

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

static const char DRIVER[] __attribute__((unused)) =
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
    char cmd[1024], path[400];
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
