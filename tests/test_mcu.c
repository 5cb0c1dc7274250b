/* The C export on an emulated microcontroller (scripts/mcu-check.sh), when the Arm
 * toolchain and QEMU are installed (gcc-arm-none-eabi, picolibc-arm-none-eabi,
 * qemu-system-arm; scripts/install-deps.sh test installs them) and MNIST is in
 * ../shared/data/mnist; otherwise it says so and checks nothing. It trains mcu-tiny
 * briefly (3,000 images, 2 epochs), then runs float and int8 on the Cortex-M4 board and
 * int8 in 32 KB flash / 8 KB RAM on the Cortex-M0 board, on N test images:
 * float and int8 must give the host export's class on every image (the same arithmetic:
 * IEEE float without contraction, integer sums), int8's accuracy must stay within 2
 * points of float's, and the M4's int8 (SMLAD) must take at most half of float's
 * instructions. Then ds8k (depthwise-separable: the export's grouped conv2d and its SMLAD
 * variant), trained the same way, float and int8 on the M4: the host export's class on every
 * image, int8 at most half of float's instructions; and res20k (residual blocks) the same
 * way, the host's class on every image, int8 at most half of float's instructions. Binary: $BUILD/convnet (default build). */
#include "harness.h"
#include <stdbool.h>
#include <unistd.h>

#define DATA "../shared/data/mnist"
#define OUT TEST_TMP "/test-mcu"
#define N 60

typedef struct { char core[16], variant[16]; int agree, n; double acc; long flash, ram, insns; bool fits; } mcu_line;

/* Parses the lines of scripts/mcu-check.sh; returns how many. */
static int read_lines(const char *path, mcu_line *lines, int max) {
    FILE *f = fopen(path, "r");
    char buf[512];
    int count = 0;
    if (!f) return 0;
    while (count < max && fgets(buf, sizeof buf, f)) {
        mcu_line *l = &lines[count];
        if (sscanf(buf, "%15s %15[^:]: agree %d/%d with the host export, accuracy %lf%%, flash %ld bytes, ram %ld bytes, %ld",
                   l->core, l->variant, &l->agree, &l->n, &l->acc, &l->flash, &l->ram, &l->insns) == 8) {
            l->fits = strstr(buf, "(fits 32768 / 8192)") != NULL;
            count++;
        }
    }
    fclose(f);
    return count;
}

static bool tools_present(void) {
    return system("command -v arm-none-eabi-gcc >/dev/null 2>&1 && command -v qemu-system-arm >/dev/null 2>&1"
                  " && test -f /usr/lib/picolibc/arm-none-eabi/picolibc.specs") == 0;
}

/* Trains `model` briefly (3,000 images, 2 epochs) into OUT/model; false if the test cannot run. */
static bool train_briefly(const char *model) {
    const char *build = getenv("BUILD");
    char cmd[1024];
    if (!tools_present()) { fprintf(stderr, "  skip: gcc-arm-none-eabi, picolibc-arm-none-eabi or qemu-system-arm missing\n"); return false; }
    if (access(DATA "/t10k-images-idx3-ubyte.gz", R_OK) != 0) { fprintf(stderr, "  skip: no MNIST in %s\n", DATA); return false; }
    snprintf(cmd, sizeof cmd, "rm -rf " OUT "/%s && mkdir -p " OUT "/%s", model, model);
    if (system(cmd) != 0) fprintf(stderr, "  note: could not clear %s/%s\n", OUT, model);
    snprintf(cmd, sizeof cmd,
             "%s/convnet train --model %s --data " DATA " --no-download --limit-train 3000 --limit-test 500 "
             "--epochs 2 --batch-size 32 --seed 3 --threads 2 --quiet --out " OUT "/%s > " OUT "/%s/train.log 2>&1",
             build && *build ? build : "build", model, model, model);
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "'%s' failed (see %s/%s/train.log)", cmd, OUT, model);
    return rc == 0;
}

TEST(mcu_tiny_on_emulated_cortex_m) {
    const char *build = getenv("BUILD");
    char cmd[1024];
    if (!train_briefly("mcu-tiny")) return;
    snprintf(cmd, sizeof cmd, "CONVNET=%s/convnet sh scripts/mcu-check.sh --tiny --data " DATA " " OUT "/mcu-tiny/best.safetensors %d"
             " > " OUT "/mcu-tiny/mcu.txt 2> " OUT "/mcu-tiny/mcu.err", build && *build ? build : "build", N);
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "'%s' exited with %d (see %s/mcu-tiny/mcu.err)", cmd, rc, OUT);
    mcu_line l[3];
    int count = read_lines(OUT "/mcu-tiny/mcu.txt", l, 3);
    CHECK_MSG(count == 3, "%d result lines in %s/mcu-tiny/mcu.txt, expected 3", count, OUT);
    if (count != 3) return;
    CHECK(!strcmp(l[0].core, "cortex-m4") && !strcmp(l[0].variant, "float"));
    CHECK(!strcmp(l[1].core, "cortex-m4") && !strcmp(l[1].variant, "int8"));
    CHECK(!strcmp(l[2].core, "cortex-m0") && !strcmp(l[2].variant, "int8") && l[2].fits);
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(l[i].n == N && l[i].agree == N, "%s %s: agree %d/%d with the host", l[i].core, l[i].variant, l[i].agree, l[i].n);
        CHECK(l[i].flash > 0 && l[i].ram > 0 && l[i].insns > 0);
    }
    CHECK_MSG(l[1].acc >= l[0].acc - 2.0 && l[2].acc >= l[0].acc - 2.0, "int8 accuracy %.2f%% / %.2f%%, float %.2f%%",
              l[1].acc, l[2].acc, l[0].acc);
    CHECK_MSG(2 * l[1].insns <= l[0].insns, "int8 on the M4: %ld instructions per image, float %ld", l[1].insns, l[0].insns);
    CHECK(l[2].flash <= 32768 && l[2].ram <= 8192);
    if (getenv("TEST_VERBOSE")) (void)!system("cat " OUT "/mcu-tiny/mcu.txt >&2");
}

/* `model`, trained briefly, float and int8 (SMLAD) on the M4: the host export's class on every
 * image, int8 smaller in flash and RAM; half_insns: int8 at most half of float's instructions. */
static void check_on_m4(const char *model, bool half_insns) {
    const char *build = getenv("BUILD");
    char cmd[1024], out[300];
    if (!train_briefly(model)) return;
    snprintf(cmd, sizeof cmd, "CONVNET=%s/convnet sh scripts/mcu-check.sh --data " DATA " " OUT "/%s/best.safetensors %d"
             " > " OUT "/%s/mcu.txt 2> " OUT "/%s/mcu.err", build && *build ? build : "build", model, N, model, model);
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "'%s' exited with %d (see %s/%s/mcu.err)", cmd, rc, OUT, model);
    mcu_line l[2];
    snprintf(out, sizeof out, OUT "/%s/mcu.txt", model);
    int count = read_lines(out, l, 2);
    CHECK_MSG(count == 2, "%d result lines in %s, expected 2", count, out);
    if (count != 2) return;
    CHECK(!strcmp(l[0].core, "cortex-m4") && !strcmp(l[0].variant, "float"));
    CHECK(!strcmp(l[1].core, "cortex-m4") && !strcmp(l[1].variant, "int8"));
    for (int i = 0; i < 2; i++) {
        CHECK_MSG(l[i].n == N && l[i].agree == N, "%s %s: agree %d/%d with the host", model, l[i].variant, l[i].agree, l[i].n);
        CHECK(l[i].flash > 0 && l[i].ram > 0 && l[i].insns > 0);
    }
    if (half_insns)
        CHECK_MSG(2 * l[1].insns <= l[0].insns, "%s int8 on the M4: %ld instructions per image, float %ld", model, l[1].insns,
                  l[0].insns);
    CHECK_MSG(l[1].flash < l[0].flash && l[1].ram < l[0].ram, "%s int8 flash %ld / ram %ld, float %ld / %ld", model, l[1].flash,
              l[1].ram, l[0].flash, l[0].ram);
    printf("  %s on the M4: float %.2f%%, int8 %.2f%% of %d images; %ld and %ld instructions per image\n", model, l[0].acc,
           l[1].acc, N, l[0].insns, l[1].insns);
    if (getenv("TEST_VERBOSE")) { snprintf(cmd, sizeof cmd, "cat %s >&2", out); (void)!system(cmd); }
}

/* ds8k: depthwise 3x3 convs (stride 1 and 2) and pointwise 1x1 convs, float and int8 (SMLAD) on the M4 */
TEST(ds8k_on_emulated_cortex_m4) { check_on_m4("ds8k", true); }

/* res20k: residual blocks (adds of two scales in int8, a 1x1 stride-2 projection), float and int8 on the M4 */
TEST(res20k_on_emulated_cortex_m4) { check_on_m4("res20k", true); }

int main(void) {
    RUN(mcu_tiny_on_emulated_cortex_m);
    RUN(ds8k_on_emulated_cortex_m4);
    RUN(res20k_on_emulated_cortex_m4);
    int rc = test_summary();
    if (rc == 0 && system("rm -rf " OUT) != 0) fprintf(stderr, "note: could not remove %s\n", OUT);
    return rc;
}
