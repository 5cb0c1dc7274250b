/* Data-parallel training under mpirun (issue 23), end to end with the convnet binary:
 * R ranks x T threads against one process, resume across rank counts, a signal to
 * mpirun, a killed rank. Data: a small IDX set cut from ../shared/data/mnist (the CI
 * layout) into /tmp, so each run loads and trains in about a second. Needs Open MPI's
 * mpirun; as root, OMPI_ALLOW_RUN_AS_ROOT*. */
#include "harness.h"
#include "checkpoint.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#define MNIST "../shared/data/mnist"
#define ROOT TEST_TMP "/test-mpi"
#define DATA ROOT "/data"
#define MPIRUN "mpirun --oversubscribe --bind-to none -np"
/* 640 training images (10 batches of 64), 500 test images */
#define COMMON "--dataset idx --data " DATA " --no-download --quiet --batch-size 64 --limit-test 500"

/* Copies the header and the first `count` records of MNIST's gzipped IDX file `name`. */
static int cut_idx(const char *name, size_t header, size_t record, size_t count) {
    char in[256], out[256];
    snprintf(in, sizeof in, MNIST "/%s.gz", name);
    snprintf(out, sizeof out, DATA "/%s", name);
    gzFile g = gzopen(in, "rb");
    FILE *f = fopen(out, "wb");
    size_t n = header + record * count;
    unsigned char *buf = malloc(n);
    int ok = g && f && buf && gzread(g, buf, (unsigned)n) == (int)n;
    if (ok) {   /* the count field (big-endian, bytes 4..7) */
        for (int i = 0; i < 4; i++) buf[4 + i] = (unsigned char)(count >> (8 * (3 - i)));
        ok = fwrite(buf, 1, n, f) == n;
    }
    if (g) gzclose(g);
    if (f && fclose(f)) ok = 0;
    free(buf);
    return ok;
}

static int make_data(void) {
    if (system("rm -rf " ROOT " && mkdir -p " DATA)) return 0;
    return cut_idx("train-images-idx3-ubyte", 16, 784, 640) && cut_idx("train-labels-idx1-ubyte", 8, 1, 640) &&
           cut_idx("t10k-images-idx3-ubyte", 16, 784, 500) && cut_idx("t10k-labels-idx1-ubyte", 8, 1, 500);
}

/* Runs `convnet train COMMON args` on `ranks` ranks (0: without mpirun) of `threads` threads
 * each into ROOT/out; returns the exit status; output into ROOT/out.log. */
static int train(int ranks, int threads, const char *out, const char *args) {
    char cmd[2048], launcher[64] = "";
    if (ranks) snprintf(launcher, sizeof launcher, MPIRUN " %d ", ranks);
    snprintf(cmd, sizeof cmd, "%sbuild/convnet train " COMMON " --threads %d --out " ROOT "/%s %s > " ROOT "/%s.log 2>&1",
             launcher, threads, out, args, out);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

/* metrics.csv of ROOT/out without its last (seconds) column. */
static void read_metrics(const char *out, char *buf, size_t size) {
    char dir[512];
    snprintf(dir, sizeof dir, ROOT "/%s", out);
    harness_read_metrics(dir, buf, size);
}

static cn_model *load_last(const char *out) {
    char path[512];
    snprintf(path, sizeof path, ROOT "/%s/last.safetensors", out);
    cn_model *m = NULL;
    cn_checkpoint_info info;
    cn_status st = cn_checkpoint_load(path, &m, &info, NULL);
    CHECK_MSG(st == CN_OK, "%s: %s", path, cn_last_error());
    return st ? NULL : m;
}

/* The largest |a - b| over the parameters and buffers of two runs' last.safetensors
 * (INFINITY when either is missing or they differ in shape). */
static double weight_diff(const char *a, const char *b) {
    cn_model *ma = load_last(a), *mb = load_last(b);
    double d = ma && mb && ma->num_params == mb->num_params && ma->num_buffers == mb->num_buffers ? 0.0 : INFINITY;
    for (size_t i = 0; d < INFINITY && i < ma->num_params; i++) d = fmax(d, fabs(ma->params[i] - mb->params[i]));
    for (size_t i = 0; d < INFINITY && i < ma->num_buffers; i++) d = fmax(d, fabs(ma->buffers[i] - mb->buffers[i]));
    cn_model_free(ma);
    cn_model_free(mb);
    return d;
}

/* The two runs' metrics (timing aside) and tensors are bit-identical. */
static void check_identical(const char *a, const char *b) {
    char ma[4096], mb[4096];
    read_metrics(a, ma, sizeof ma);
    read_metrics(b, mb, sizeof mb);
    CHECK_MSG(!strcmp(ma, mb), "metrics differ:\n%s---\n%s", ma, mb);
    double d = weight_diff(a, b);
    CHECK_MSG(d == 0.0, "%s and %s: weights differ by up to %g", a, b, d);
}

/* Runs `args` as 1 process x 2 threads and as 2 ranks x 1 thread into ROOT/<name>12 and
 * ROOT/<name>21, and checks that they are bit-identical. */
static void check_2x1_matches_1x2(const char *name, const char *args) {
    char a[64], b[64];
    snprintf(a, sizeof a, "%s12", name);
    snprintf(b, sizeof b, "%s21", name);
    CHECK_MSG(train(0, 2, a, args) == 0, "see " ROOT "/%s.log", a);
    CHECK_MSG(train(2, 1, b, args) == 0, "see " ROOT "/%s.log", b);
    check_identical(a, b);
}

TEST(small_idx_set) {
    CHECK_MSG(make_data(), "cannot cut a small IDX set from " MNIST " into " DATA);
}

/* A batch-norm model with augmentation: SyncBatchNorm gathers the per-sample sums. */
TEST(bn_model_2x1_matches_1x2) {
    check_2x1_matches_1x2("bn", "--model c8k --epochs 1 --lr 0.05");
}

/* --local-bn: each rank's statistics of its 32 images, not the batch's 64: another model
 * than SyncBatchNorm's (which bn_model_2x1_matches_1x2 trained), and the same on a rerun. */
TEST(local_bn_uses_each_ranks_statistics) {
    const char *args = "--model c8k --epochs 1 --lr 0.05 --local-bn";
    CHECK_MSG(train(2, 1, "lbn", args) == 0, "see " ROOT "/lbn.log");
    CHECK_MSG(train(2, 1, "lbn2", args) == 0, "see " ROOT "/lbn2.log");
    check_identical("lbn", "lbn2");
    double d = weight_diff("lbn", "bn21");
    CHECK_MSG(d > 1e-4 && d < INFINITY, "--local-bn and SyncBatchNorm weights differ by %g", d);
}

/* A model without batch norm (chunked training). */
TEST(plain_model_2x1_matches_1x2) {
    check_2x1_matches_1x2("p", "--model seed003 --epochs 1");
}

/* Batch norm with the dropout after it applied in its output pass (seed001). */
TEST(bn_dropout_model_2x1_matches_1x2) {
    check_2x1_matches_1x2("d", "--model seed001 --epochs 1");
}

/* Results depend on ranks x threads alone (exec/tree_sum.h): 4 ranks x 1 thread, 2 x 2 and
 * 1 process x 4 threads train bit-identical models, with batch norm (c8k) and without
 * (seed003, chunked); so do 3 x 1 and 1 x 3 (an odd worker count); a fixed (R, T) repeats. */
TEST(ranks_times_threads_alone_decides_the_result) {
    static const char *const models[2][2] = {{"bn", "--model c8k --epochs 1 --lr 0.05"},
                                              {"pl", "--model seed003 --epochs 1"}};
    char a[64], b[64], c[64];
    for (int k = 0; k < 2; k++) {
        const char *name = models[k][0], *args = models[k][1];
        snprintf(a, sizeof a, "%s41", name);
        snprintf(b, sizeof b, "%s22", name);
        snprintf(c, sizeof c, "%s14", name);
        CHECK_MSG(train(4, 1, a, args) == 0, "see " ROOT "/%s.log", a);
        CHECK_MSG(train(2, 2, b, args) == 0, "see " ROOT "/%s.log", b);
        CHECK_MSG(train(0, 4, c, args) == 0, "see " ROOT "/%s.log", c);
        check_identical(a, b);
        check_identical(b, c);
    }
    CHECK_MSG(train(3, 1, "bn31", models[0][1]) == 0, "see " ROOT "/bn31.log");
    CHECK_MSG(train(0, 3, "bn13", models[0][1]) == 0, "see " ROOT "/bn13.log");
    check_identical("bn31", "bn13");
    CHECK_MSG(train(2, 2, "bn22b", models[0][1]) == 0, "see " ROOT "/bn22b.log");
    check_identical("bn22", "bn22b");
}

/* With threads per rank not a power of two the tree's blocks do not line up with the
 * ranks': 2 x 3 and 1 x 6 then agree within rounding (the drift is printed). */
TEST(two_by_three_near_one_by_six) {
    const char *args = "--model c8k --epochs 1 --lr 0.05";
    CHECK_MSG(train(2, 3, "bn23", args) == 0, "see " ROOT "/bn23.log");
    CHECK_MSG(train(0, 6, "bn16", args) == 0, "see " ROOT "/bn16.log");
    double d = weight_diff("bn23", "bn16");
    fprintf(stderr, "  2x3 vs 1x6 after 10 steps: weights differ by up to %.3g\n", d);
    CHECK_MSG(d < 1e-3, "2x3 and 1x6 weights differ by %g", d);
}

/* A run resumed with another number of ranks continues as if uninterrupted: one process
 * with 2 threads trains epoch 1, 2 ranks resume it for epoch 2; and back again. */
TEST(resume_across_rank_counts) {
    CHECK_MSG(train(0, 2, "straight", "--model c8k --lr 0.05 --scheduler step --step-size 1 --epochs 2") == 0, "see " ROOT "/straight.log");
    CHECK_MSG(train(0, 2, "res", "--model c8k --lr 0.05 --scheduler step --step-size 1 --epochs 1") == 0, "see " ROOT "/res.log");
    CHECK_MSG(train(2, 1, "res", "--resume " ROOT "/res/last.safetensors --epochs 2") == 0, "see " ROOT "/res.log");
    check_identical("straight", "res");
}

/* Starts `convnet train` under mpirun in the background; returns mpirun's pid. */
static pid_t start_long_run(const char *out) {
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "exec " MPIRUN " 2 build/convnet train " COMMON " --model seed003 --epochs 200 "
                 "--threads 1 --out " ROOT "/%s > " ROOT "/%s.log 2>&1", out, out);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits (up to 120 s) until the run's first epoch is done: last.safetensors exists. */
static int wait_first_epoch(const char *out) {
    char path[512];
    snprintf(path, sizeof path, ROOT "/%s/last.safetensors", out);
    for (int i = 0; i < 1200; i++) {
        if (access(path, F_OK) == 0) return 1;
        usleep(100000);
    }
    return 0;
}

static int wait_status(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int log_contains(const char *out, const char *text) {
    char path[512];
    snprintf(path, sizeof path, ROOT "/%s.log", out);
    return harness_file_contains(path, text);
}

/* SIGINT to mpirun: rank 0 saves a resumable checkpoint, and the run resumes from it. */
TEST(sigint_to_mpirun_saves_and_resumes) {
    pid_t pid = start_long_run("sig");
    CHECK_MSG(wait_first_epoch("sig"), "no checkpoint after 120 s; see " ROOT "/sig.log");
    usleep(300000);
    kill(pid, SIGINT);
    int rc = wait_status(pid);
    CHECK_MSG(rc != 0, "mpirun exited with %d after SIGINT", rc);
    CHECK_MSG(log_contains("sig", "interrupted in epoch"), "no interruption message in " ROOT "/sig.log");
    cn_model *m = load_last("sig");
    cn_model_free(m);
    CHECK_MSG(train(2, 1, "sig", "--resume " ROOT "/sig/last.safetensors --epochs 3") == 0, "see " ROOT "/sig.log");
}

/* A rank killed mid-run fails the job with mpirun's message naming it; the last
 * checkpoint stays intact and resumable. */
TEST(killed_rank_fails_the_job_and_keeps_the_checkpoint) {
    pid_t pid = start_long_run("kill");
    CHECK_MSG(wait_first_epoch("kill"), "no checkpoint after 120 s; see " ROOT "/kill.log");
    usleep(300000);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "for p in $(pgrep -P %d); do tr '\\0' '\\n' < /proc/$p/environ | "
             "grep -qx OMPI_COMM_WORLD_RANK=1 && kill -9 $p; done", (int)pid);
    CHECK(system(cmd) == 0);
    int rc = wait_status(pid);
    CHECK_MSG(rc != 0, "mpirun exited with %d after a rank was killed", rc);
    CHECK_MSG(log_contains("kill", "rank 1") && log_contains("kill", "signal 9"), "no message naming rank 1 in " ROOT "/kill.log");
    cn_model *m = load_last("kill");
    cn_model_free(m);
    CHECK_MSG(train(0, 2, "kill", "--resume " ROOT "/kill/last.safetensors --epochs 2") == 0, "see " ROOT "/kill.log");
}

static int count_lines_with(const char *path, const char *text) {
    char line[1024];
    int n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) n += strstr(line, text) != NULL;
    fclose(f);
    return n;
}

/* 2 ranks share 4 runs (2 settings x 2 seeds); rank 0 writes sweep.csv, sweep.md and
 * sweep.png; run again, every run is found finished and none is trained again. */
TEST(two_rank_sweep_writes_both_reports_and_resumes) {
    const char *cmd = MPIRUN " 2 build/convnet sweep --model seed003 --grid \"lr=0.001,0.003\" --seeds 1-2 "
                      "--epochs 1 --dataset idx --data " DATA " --no-download --limit-test 500 --out " ROOT "/sweep";
    char full[1024];
    snprintf(full, sizeof full, "%s > " ROOT "/sweep.log 2>&1", cmd);
    CHECK_MSG(system(full) == 0, "see " ROOT "/sweep.log");
    CHECK_MSG(count_lines_with(ROOT "/sweep/sweep.csv", ",done,") == 4, "sweep.csv lacks 4 finished runs");
    CHECK_MSG(count_lines_with(ROOT "/sweep/sweep.md", "| lr=") == 2, "sweep.md lacks the 2 settings");
    CHECK(access(ROOT "/sweep/sweep.png", R_OK) == 0);
    CHECK(access(ROOT "/sweep/lr=0.003,seed=2/last.safetensors", R_OK) == 0);
    int logged = count_lines_with(ROOT "/sweep/lr=0.001,seed=1/train.log", "Epoch 1/1");
    snprintf(full, sizeof full, "%s > " ROOT "/sweep2.log 2>&1", cmd);
    CHECK_MSG(system(full) == 0, "see " ROOT "/sweep2.log");
    CHECK_MSG(count_lines_with(ROOT "/sweep/lr=0.001,seed=1/train.log", "Epoch 1/1") == logged && logged == 1,
              "a finished run was trained again");
    CHECK_MSG(count_lines_with(ROOT "/sweep/sweep.csv", ",done,") == 4, "sweep.csv lacks 4 finished runs after the rerun");
}

int main(void) {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    RUN(small_idx_set);
    RUN(bn_model_2x1_matches_1x2);
    RUN(local_bn_uses_each_ranks_statistics);
    RUN(plain_model_2x1_matches_1x2);
    RUN(bn_dropout_model_2x1_matches_1x2);
    RUN(ranks_times_threads_alone_decides_the_result);
    RUN(two_by_three_near_one_by_six);
    RUN(resume_across_rank_counts);
    RUN(sigint_to_mpirun_saves_and_resumes);
    RUN(killed_rank_fails_the_job_and_keeps_the_checkpoint);
    RUN(two_rank_sweep_writes_both_reports_and_resumes);
    return test_summary();
}
