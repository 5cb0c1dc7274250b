/* Accuracy smoke test: trains the c8k preset with its own recipe (OneCycle SGD,
 * label smoothing, augmentation) through the CLI on a small MNIST subset and
 * checks a fixed test-accuracy floor from metrics.csv. It guards against the
 * recipe or the training path silently breaking (an accuracy regression), not
 * against small numerical drift: the floor is far below what the run reaches.
 * Data: ../shared/data/mnist (the CI layout); binary: $BUILD/convnet (default build). */
#include "harness.h"
#include <time.h>
#include <unistd.h>

#define DATA "../shared/data/mnist"
/* A directory of this run's own (concurrent runs of the suite must not share one). */
static char OUT[64];
#define FLOOR 75.0 /* percent, final epoch; measured 88.8% (seed 3, batch 32) */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* test_acc (6th column) of the last row of OUT/metrics.csv; -1 if unreadable.
 * *rows: number of epoch rows. */
static double last_test_acc(int *rows) {
    char line[512];
    double acc = -1;
    *rows = 0;
    char path[96];
    snprintf(path, sizeof path, "%s/run/metrics.csv", OUT);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (!fgets(line, sizeof line, f)) { fclose(f); return -1; }
    CHECK_MSG(strncmp(line, "epoch,lr,train_loss,train_acc,test_loss,test_acc", 48) == 0, "header: %s", line);
    while (fgets(line, sizeof line, f)) {
        int epoch;
        double lr, tl, ta, vl, va;
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf", &epoch, &lr, &tl, &ta, &vl, &va) == 6) {
            acc = va;
            (*rows)++;
        }
    }
    fclose(f);
    return acc;
}

TEST(c8k_small_subset_reaches_floor) {
    const char *build = getenv("BUILD");
    char cmd[1024];
    if (access(DATA "/train-images-idx3-ubyte.gz", R_OK) != 0 && access(DATA "/train-images-idx3-ubyte", R_OK) != 0) {
        fprintf(stderr, "  skip: no MNIST in %s\n", DATA);
        return;
    }
    snprintf(OUT, sizeof OUT, "/tmp/convnet-test-accuracy-smoke-XXXXXX");
    CHECK_MSG(mkdtemp(OUT) != NULL, "mkdtemp %s failed", OUT);
    snprintf(cmd, sizeof cmd,
             "%s/convnet train --model c8k --data " DATA " --no-download --limit-train 2000 --limit-test 1000 "
             "--epochs 2 --batch-size 32 --seed 3 --threads 2 --quiet --out %s/run > %s/train.log 2>&1",
             build && *build ? build : "build", OUT, OUT);
    double t0 = now();
    int rc = system(cmd);
    double secs = now() - t0;
    CHECK_MSG(rc == 0, "'%s' exited with %d (see %s/train.log)", cmd, rc, OUT);
    int rows;
    double acc = last_test_acc(&rows);
    CHECK_MSG(rows == 2, "metrics.csv has %d epoch rows, expected 2", rows);
    CHECK_MSG(acc >= FLOOR, "c8k, 2000 images x 2 epochs, batch 32: test accuracy %.2f%% < floor %.1f%%", acc, FLOOR);
    if (getenv("TEST_VERBOSE")) fprintf(stderr, "  c8k smoke: %.2f%% in %.1f s\n", acc, secs);
}

int main(void) {
    RUN(c8k_small_subset_reaches_floor);
    int rc = test_summary();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", OUT);
    if (rc == 0 && OUT[0] && system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", OUT);
    return rc;
}
