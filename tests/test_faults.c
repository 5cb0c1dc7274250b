/* Faults during training, through the real CLI (BUILD/convnet):
 *  (a) the loss turns NaN: non-zero exit, the message says so, and the last
 *      checkpoint written before still loads;
 *  (b) SIGINT / SIGTERM mid-training: exit status 130, stderr says how to
 *      resume, last.safetensors loads and `convnet train --resume` finishes;
 *  (c) an output directory that cannot be created (its parent is a regular
 *      file; we may run as root, so permissions would not stop us) is reported
 *      before the first epoch;
 *  (c') resuming with fewer --epochs than already done finishes cleanly;
 *  (d) kill -9 at random moments of a run that writes a checkpoint every few
 *      milliseconds, resumed again and again: last.safetensors always loads
 *      (with its training state) whenever it exists.
 * The runs use a 256/100-image subset of MNIST written as raw IDX files into a
 * temporary directory (from ../shared/data/mnist, or $CONVNET_FAULT_DATA), so
 * each process starts in milliseconds. Without the data the tests are skipped
 * with a note. */
#include "harness.h"
#include "checkpoint.h"
#include "train.h"
#include "core/dir_lock.h"
#include "data/idx.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TRAIN_IMAGES 256
#define TEST_IMAGES 100

static char work[64];          /* temporary directory */
static char bin[256];          /* the convnet binary */
static int have_data;

static const char tiny_spec[] =
    "input 1x28x28\nconv2d out=4 k=3 stride=2\nbatchnorm2d\nrelu\nmaxpool2d k=2\nflatten\nlinear out=10\n";
/* No normalisation and a huge SGD step: the logits overflow within a few batches. */
static const char explode_spec[] =
    "input 1x28x28\nflatten\nlinear out=64\nrelu\nlinear out=64\nrelu\nlinear out=64\nrelu\nlinear out=10\n";

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

/* Writes the first `count` items of an IDX file as a raw IDX file. */
static int write_subset(const char *src, const char *dst, int images, int count) {
    cn_idx idx;
    if ((images ? cn_idx_read_images(src, &idx) : cn_idx_read_labels(src, &idx)) != CN_OK) return -1;
    if (idx.count < count) { cn_idx_free(&idx); return -1; }
    size_t item = (size_t)idx.rows * idx.cols, header = images ? 16 : 8;
    uint8_t *buf = malloc(header + item * count);
    if (!buf) { cn_idx_free(&idx); return -1; }
    uint32_t words[4] = {images ? 0x803u : 0x801u, (uint32_t)count, (uint32_t)idx.rows, (uint32_t)idx.cols};
    for (size_t w = 0; w < header / 4; w++)
        for (int b = 0; b < 4; b++) buf[4 * w + b] = (uint8_t)(words[w] >> (24 - 8 * b));
    memcpy(buf + header, idx.data, item * count);
    int rc = write_file(dst, buf, header + item * count);
    free(buf);
    cn_idx_free(&idx);
    return rc;
}

static void setup(void) {
    const char *b = getenv("BUILD");
    snprintf(bin, sizeof bin, "%s/convnet", b && *b ? b : "build");
    snprintf(work, sizeof work, "/tmp/convnet-faults-XXXXXX");
    if (!mkdtemp(work)) { perror("mkdtemp"); exit(1); }
    const char *src = getenv("CONVNET_FAULT_DATA");
    if (!src) src = "../shared/data/mnist";
    static const struct { const char *name; int images, count; } files[] = {
        {"train-images-idx3-ubyte", 1, TRAIN_IMAGES}, {"train-labels-idx1-ubyte", 0, TRAIN_IMAGES},
        {"t10k-images-idx3-ubyte", 1, TEST_IMAGES}, {"t10k-labels-idx1-ubyte", 0, TEST_IMAGES}};
    char path[512], in[512];
    snprintf(path, sizeof path, "%s/data", work);
    mkdir(path, 0755);
    have_data = 1;
    for (int i = 0; i < 4 && have_data; i++) {
        snprintf(in, sizeof in, "%s/%s.gz", src, files[i].name);
        if (access(in, R_OK)) snprintf(in, sizeof in, "%s/%s", src, files[i].name);
        snprintf(path, sizeof path, "%s/data/%s", work, files[i].name);
        if (write_subset(in, path, files[i].images, files[i].count)) have_data = 0;
    }
    if (!have_data) fprintf(stderr, "  note: no MNIST files in %s; fault tests skipped\n", src);
    snprintf(path, sizeof path, "%s/tiny.spec", work);
    write_file(path, tiny_spec, strlen(tiny_spec));
    snprintf(path, sizeof path, "%s/explode.spec", work);
    write_file(path, explode_spec, strlen(explode_spec));
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    if (system(cmd) != 0) fprintf(stderr, "  note: could not remove %s\n", work);
}

/* Starts `convnet ARGS` (ARGS: a shell word list) with stdout/stderr going to
 * WORK/out.txt and WORK/err.txt; returns the pid of convnet itself. */
static pid_t spawn(const char *args) {
    char cmd[8192], out[128], err[128];
    snprintf(out, sizeof out, "%s/out.txt", work);
    snprintf(err, sizeof err, "%s/err.txt", work);
    snprintf(cmd, sizeof cmd, "exec %s %s", bin, args);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0) _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        setenv("OMP_NUM_THREADS", "2", 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits at most `limit` seconds (then kills); returns the exit status, or
 * -signal if it died from a signal. */
static int finish(pid_t pid, double limit) {
    double end = now() + limit;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0) return -1000;
        if (now() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "  timeout after %.0f s: killed\n", limit);
            return -2000;
        }
        usleep(2000);
    }
    return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

static int run(const char *args, double limit) { return finish(spawn(args), limit); }

/* Contents of WORK/<name> (static buffer). */
static const char *slurp(const char *name) {
    static char buf[2][16384];
    static int which;
    char *b = buf[which ^= 1];
    char path[128];
    snprintf(path, sizeof path, "%s/%s", work, name);
    b[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) { size_t n = fread(b, 1, sizeof buf[0] - 1, f); b[n] = '\0'; fclose(f); }
    return b;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Loads a checkpoint as eval and (if it has one) resume would: weights, metadata, optimizer state. */
static cn_status load_checkpoint(const char *path, int with_state) {
    cn_model *m = NULL;
    cn_checkpoint_info info;
    cn_status st = cn_checkpoint_load(path, &m, &info, NULL);
    if (st || !with_state) { cn_model_free(m); return st; }
    cn_optimizer opt;
    cn_scheduler sched;
    st = cn_optimizer_init(&opt, CN_OPT_SGD, m->num_params);
    cn_model_free(m);
    m = NULL;
    if (st) return st;
    cn_sched_init(&sched, CN_SCHED_NONE, 0.01);
    cn_train_state state = {.optimizer = &opt, .scheduler = &sched};
    st = cn_checkpoint_load(path, &m, &info, &state);
    cn_model_free(m);
    cn_optimizer_free(&opt);
    return st;
}

#define COMMON "--data %s/data --no-download --quiet --threads 2 --limit-test " "100"

/* Trains tiny.spec for one epoch into WORK/<dir> (a 10-class checkpoint to work with); 0 on success. */
static int train_tiny(const char *dir) {
    char args[1024];
    snprintf(args, sizeof args, "train --model %s/tiny.spec --epochs 1 --batch-size 256 --out %s/%s " COMMON, work, work, dir, work);
    int rc = run(args, 60);
    CHECK_MSG(rc == 0, "training %s: exit %d: %s", dir, rc, slurp("err.txt"));
    return rc;
}

TEST(nan_loss_stops_and_keeps_the_last_checkpoint) {
    if (!have_data) return;
    char args[1024], last[256];
    /* A healthy epoch first, so there is a checkpoint to keep. */
    snprintf(args, sizeof args, "train --model %s/tiny.spec --epochs 1 --out %s/nan " COMMON, work, work, work);
    int rc = run(args, 60);
    CHECK_MSG(rc == 0, "healthy run: exit %d: %s", rc, slurp("err.txt"));
    snprintf(last, sizeof last, "%s/nan/last.safetensors", work);
    CHECK_MSG(load_checkpoint(last, 1) == CN_OK, "%s", cn_last_error());

    snprintf(args, sizeof args, "train --model %s/explode.spec --optimizer sgd --lr 100 --momentum 0.9 "
             "--batch-size 32 --epochs 3 --out %s/nan " COMMON, work, work, work);
    rc = run(args, 60);
    const char *err = slurp("err.txt");
    CHECK_MSG(rc == 1, "exploding run: exit %d (expected 1): %s", rc, err);
    CHECK_MSG(strstr(err, "the loss is NaN") || strstr(err, "the loss is infinite"), "message: %s", err);
    CHECK_MSG(count_lines(err) == 1, "stderr has %d lines: %s", count_lines(err), err);
    CHECK_MSG(strstr(err, last) != NULL, "message does not point at the last good checkpoint: %s", err);
    CHECK_MSG(load_checkpoint(last, 1) == CN_OK, "after the NaN stop: %s", cn_last_error());
}

/* Interrupts a run with `sig` after `delay` seconds and resumes it to the end. */
static void interrupt_and_resume(int sig, const char *dir) {
    char args[1024], last[256];
    snprintf(args, sizeof args, "train --model %s/tiny.spec --epochs 400 --batch-size 32 --out %s/%s " COMMON,
             work, work, dir, work);
    pid_t pid = spawn(args);
    usleep(700 * 1000);
    kill(pid, sig);
    int rc = finish(pid, 60);
    const char *err = slurp("err.txt");
    CHECK_MSG(rc == 130, "%s: exit %d (expected 130): %s", strsignal(sig), rc, err);
    snprintf(last, sizeof last, "%s/%s/last.safetensors", work, dir);
    CHECK_MSG(strstr(err, "resume with: convnet train --resume") && strstr(err, last), "stderr: %s", err);
    CHECK_MSG(load_checkpoint(last, 1) == CN_OK, "%s", cn_last_error());
    cn_model *m = NULL;
    cn_checkpoint_info info;
    int epoch = cn_checkpoint_load(last, &m, &info, NULL) == CN_OK ? info.epoch : -1;
    cn_model_free(m);
    CHECK_MSG(epoch >= 0 && epoch < 400, "checkpoint epoch %d", epoch);

    /* Resume and stop a few epochs later (epochs counts from the start of the run). */
    snprintf(args, sizeof args, "train --resume %s --epochs %d --data %s/data --no-download --threads 2 --limit-test 100",
             last, epoch + 2, work);
    rc = run(args, 60);
    const char *out = slurp("out.txt");
    CHECK_MSG(rc == 0, "resume: exit %d: %s", rc, slurp("err.txt"));
    CHECK_MSG(strstr(out, "resuming at epoch") != NULL, "resume output: %s", out);
    CHECK_MSG(strstr(out, "Test set: Average loss:") != NULL, "resume output: %s", out);
    m = NULL;
    int after = cn_checkpoint_load(last, &m, &info, NULL) == CN_OK ? info.epoch : -1;
    cn_model_free(m);
    CHECK_MSG(after == epoch + 2, "after resuming: checkpoint epoch %d, expected %d", after, epoch + 2);
}

TEST(sigint_saves_and_resume_continues) {
    if (have_data) interrupt_and_resume(SIGINT, "sigint");
}

TEST(sigterm_saves_and_resume_continues) {
    if (have_data) interrupt_and_resume(SIGTERM, "sigterm");
}

static struct timespec mtime_of(const char *path) {
    struct stat sb;
    struct timespec none = {0, 0};
    return stat(path, &sb) == 0 ? sb.st_mtim : none;
}

/* xorshift for reproducible "random" kill times (seed from the clock, printed on failure). */
static uint64_t rng_state;
static double rnd(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Resuming with fewer --epochs than the run already has: nothing to train, no
 * overflow of the per-epoch history (it kept every earlier row: heap overflow
 * before the fix, seen under SANITIZE=1). */
TEST(resume_with_fewer_epochs_than_done) {
    if (!have_data) return;
    char args[1024];
    snprintf(args, sizeof args, "train --model %s/tiny.spec --epochs 4 --batch-size 256 --out %s/fewer " COMMON,
             work, work, work);
    int rc = run(args, 60);
    CHECK_MSG(rc == 0, "4 epochs: exit %d: %s", rc, slurp("err.txt"));
    /* Nothing to do: it says so and changes nothing (metrics.csv and the PNGs were rewritten). */
    char path[256];
    static const char *const files[] = {"metrics.csv", "training_curves.png", "confusion_matrix.png", "last.safetensors",
                                        "model_summary.txt"};
    struct timespec before[5];
    for (int i = 0; i < 5; i++) { snprintf(path, sizeof path, "%s/fewer/%s", work, files[i]); before[i] = mtime_of(path); }
    usleep(20 * 1000);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) snprintf(args, sizeof args, "train --resume %s/fewer/last.safetensors --epochs 2 " COMMON, work, work);
        else snprintf(args, sizeof args, "train --resume %s/fewer/last.safetensors --data %s/data --no-download", work, work);
        rc = run(args, 60);
        const char *out = slurp("out.txt");
        CHECK_MSG(rc == 0, "resume (pass %d): exit %d: %s", pass, rc, slurp("err.txt"));
        CHECK_MSG(strstr(out, "the run is already complete (4 epochs done") && count_lines(out) == 1, "stdout: %s", out);
        for (int i = 0; i < 5; i++) {
            snprintf(path, sizeof path, "%s/fewer/%s", work, files[i]);
            struct timespec t = mtime_of(path);
            CHECK_MSG(t.tv_sec == before[i].tv_sec && t.tv_nsec == before[i].tv_nsec, "%s was rewritten", files[i]);
        }
    }
}

/* --resume ignored --model and took --dataset fashion-mnist (an MNIST run continued on
 * another dataset). Options that contradict the checkpoint are refused; repeating a
 * stored value, --epochs, --threads and --quiet are fine. */
TEST(resume_refuses_options_that_contradict_the_checkpoint) {
    if (!have_data) return;
    char args[1024];
    if (train_tiny("contra")) return;
    int rc;
    static const struct { const char *option, *needle; } bad[] = {
        {"--model seed001", "--model seed001: a resumed run keeps the model stored in"},
        {"--dataset fashion-mnist", "--dataset fashion-mnist contradicts"},
        {"--lr 0.5", "--lr 0.5 contradicts"},
        {"--batch-size 32", "--batch-size 32 contradicts"},
        {"--optimizer adam", "--optimizer adam contradicts"},
        {"--seed 7", "--seed 7 contradicts"},
        {"--limit-test 50", "--limit-test 50 contradicts"},
        {"--augment rotate=5", "--augment rotate=5 contradicts"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "train --resume %s/contra/last.safetensors --epochs 2 " COMMON " %s", work, work, bad[i].option);
        rc = run(args, 60);
        const char *err = slurp("err.txt");
        CHECK_MSG(rc == 1 && count_lines(err) == 1 && strstr(err, bad[i].needle), "%s: exit %d: %s", bad[i].option, rc, err);
        CHECK_MSG(strstr(slurp("out.txt"), "Epoch") == NULL, "%s: trained anyway", bad[i].option);
    }
    snprintf(args, sizeof args, "train --resume %s/contra/last.safetensors --epochs 2 --dataset mnist --batch-size 256 "
             "--seed 1 " COMMON, work, work);
    rc = run(args, 60);
    CHECK_MSG(rc == 0 && strstr(slurp("out.txt"), "Epoch 2/2"), "repeating stored values: exit %d: %s", rc, slurp("err.txt"));
}

/* eval read the training files too, and downloaded them when missing. */
TEST(eval_reads_only_the_test_files) {
    if (!have_data) return;
    char cmd[1024], args[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/testonly && cp %s/data/t10k* %s/testonly/", work, work, work);
    CHECK(system(cmd) == 0);
    if (train_tiny("evalw")) return;
    setenv("CONVNET_MIRROR", "file:///nonexistent/convnet-mirror", 1);   /* a download attempt would fail */
    snprintf(args, sizeof args, "eval --weights %s/evalw/last.safetensors --data %s/testonly --threads 2", work, work);
    int rc = run(args, 60);
    unsetenv("CONVNET_MIRROR");
    CHECK_MSG(rc == 0 && strstr(slurp("out.txt"), "Test set: Average loss:") && strstr(slurp("out.txt"), "/100 ("),
              "exit %d: %s", rc, slurp("err.txt"));
    snprintf(cmd, sizeof cmd, "%s/testonly/train-images-idx3-ubyte.gz", work);
    CHECK_MSG(access(cmd, F_OK) != 0, "downloaded %s", cmd);
}

/* An --out longer than PATH_MAX became a directory cut at 4,095 bytes, and the
 * message was cut at 1 KB. Now one short line, before anything is created. */
TEST(overlong_paths_are_refused_up_front) {
    if (!have_data) return;
    static char long_dir[5200], args[6000];
    snprintf(long_dir, sizeof long_dir, "%s/", work);
    size_t n = strlen(long_dir);
    while (n + 200 < sizeof long_dir - 1) {   /* components of 200 bytes: each one is a valid name */
        memset(long_dir + n, 'd', 199);
        long_dir[n + 199] = '/';
        n += 200;
        long_dir[n] = '\0';
    }
    static const char *const options[] = {"--out", "--data", "--resume", "--model"};
    for (int i = 0; i < 4; i++) {
        snprintf(args, sizeof args, "train %s %s --epochs 1 --quiet --no-download", options[i], long_dir);
        int rc = run(args, 30);
        const char *err = slurp("err.txt");
        CHECK_MSG(rc == 2 && count_lines(err) == 1 && strlen(err) < 400 && strstr(err, "bytes long; expected a path of at most 4000"),
                  "%s: exit %d: %s", options[i], rc, err);
    }
    snprintf(args, sizeof args, "%s/dddd", work);
    CHECK_MSG(access(args, F_OK) != 0, "a directory was created");
    /* the library refuses it too */
    cn_train_options o;
    cn_train_options_init(&o);
    snprintf(args, sizeof args, "%s/tiny.spec", work);
    o.model = args;
    o.out_dir = long_dir;
    char data[256];
    snprintf(data, sizeof data, "%s/data", work);
    o.data_dir = data;
    o.quiet = 1;
    CHECK(cn_train(&o) == CN_ERR_ARG);
    CHECK_MSG(strstr(cn_last_error(), "bytes long; expected at most 4000"), "%s", cn_last_error());
}

/* A second SIGTERM inside the save after an interrupt left last.safetensors.tmp.PID
 * (14 MB for seed004-net). Saves are not cut short now, and stale ones are swept. */
TEST(signals_during_saves_leave_no_temporaries) {
    if (!have_data) return;
    char path[512], args[1024], dir[256];
    static const char wide_spec[] = "input 1x28x28\nflatten\nlinear out=2048\nrelu\nlinear out=10\n";   /* 6 MB checkpoints */
    snprintf(path, sizeof path, "%s/wide.spec", work);
    CHECK(write_file(path, wide_spec, strlen(wide_spec)) == 0);
    snprintf(dir, sizeof dir, "%s/twice", work);
    uint64_t seed = (uint64_t)time(NULL);
    rng_state = seed * 2654435761u | 1;
    for (int round = 0; round < 6; round++) {
        snprintf(args, sizeof args, "train --model %s/wide.spec --epochs 100000 --batch-size 256 --out %s " COMMON, work, dir, work);
        snprintf(path, sizeof path, "%s/last.safetensors", dir);
        unlink(path);
        pid_t pid = spawn(args);
        double give_up = now() + 120;   /* slow under the sanitizers on a busy machine */
        while (access(path, F_OK) != 0 && now() < give_up) usleep(2000);
        if (access(path, F_OK) != 0) {
            kill(pid, SIGKILL);
            finish(pid, 30);
            fprintf(stderr, "  note: round %d: no checkpoint within 120 s; skipped\n", round);
            continue;
        }
        usleep((useconds_t)(1e5 * rnd()));
        kill(pid, SIGTERM);
        usleep((useconds_t)(3e4 * rnd()));   /* the second one lands in the batch or in the save after it */
        kill(pid, SIGTERM);
        int rc = finish(pid, 120);
        CHECK_MSG(rc == 130 || rc == -SIGTERM, "round %d: exit %d: %s", round, rc, slurp("err.txt"));
        char cmd[512];
        snprintf(cmd, sizeof cmd, "ls -a %s | grep -c '\\.tmp\\.'", dir);
        FILE *p = popen(cmd, "r");
        int temps = -1;
        if (p) { if (fscanf(p, "%d", &temps) != 1) temps = -1; pclose(p); }
        CHECK_MSG(temps == 0, "round %d (seed %llu): %d temporary files left", round, (unsigned long long)seed, temps);
        CHECK_MSG(load_checkpoint(path, 1) == CN_OK, "round %d: %s", round, cn_last_error());
    }
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    if (access(path, F_OK) != 0) { fprintf(stderr, "  note: no checkpoint to resume; stale-temporary check skipped\n"); return; }
    /* Temporaries of dead processes are removed when the next run starts; a live one's stay. */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char stale[512], live[512];
    snprintf(stale, sizeof stale, "%s/last.safetensors.tmp.%d", dir, (int)dead);
    snprintf(live, sizeof live, "%s/best.safetensors.tmp.%d", dir, (int)getpid());
    CHECK(write_file(stale, "x", 1) == 0 && write_file(live, "x", 1) == 0);
    snprintf(args, sizeof args, "train --resume %s/last.safetensors --epochs 100000 --threads 2 --quiet --data %s/data "
             "--no-download", dir, work);
    pid_t pid = spawn(args);
    double give_up = now() + 120;   /* the sweep follows the lock */
    while (now() < give_up && access(stale, F_OK) == 0) usleep(5000);
    kill(pid, SIGTERM);
    finish(pid, 60);
    CHECK_MSG(access(stale, F_OK) != 0, "%s was not removed", stale);
    CHECK_MSG(access(live, F_OK) == 0, "%s (a live process's) was removed", live);
    unlink(live);
}


/* Batch size 1 through the fused conv -> BN -> relu -> 2x2 max-pool backward on
 * a 2x2 plane: BN's gradient handover overflowed the heap (found by fuzz_spec;
 * SANITIZE=1 catches a regression). */
TEST(batch_of_one_through_fused_bn_pool) {
    if (!have_data) return;
    char path[256], args[1024];
    static const char spec[] = "input 1x28x28\nmaxpool2d k=14\nconv2d out=4 k=1\nbatchnorm2d\nrelu\nmaxpool2d k=2\n"
                               "flatten\nlinear out=10\n";
    snprintf(path, sizeof path, "%s/bn2x2.spec", work);
    CHECK(write_file(path, spec, strlen(spec)) == 0);
    snprintf(args, sizeof args, "train --model %s --epochs 1 --batch-size 1 --out %s/bn2x2 " COMMON, path, work, work);
    int rc = run(args, 60);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, slurp("err.txt"));
}

TEST(unwritable_output_dir_is_reported_before_training) {
    if (!have_data) return;
    char args[1024], file[256];
    snprintf(file, sizeof file, "%s/file.txt", work);
    CHECK(write_file(file, "x", 1) == 0);
    snprintf(args, sizeof args, "train --model %s/tiny.spec --epochs 1 --out %s/sub/dir --data %s/data --no-download --threads 2",
             work, file, work);
    double t0 = now();
    int rc = run(args, 60);
    const char *err = slurp("err.txt"), *out = slurp("out.txt");
    CHECK_MSG(rc == 1, "exit %d (expected 1): %s", rc, err);
    CHECK_MSG(count_lines(err) == 1, "stderr has %d lines: %s", count_lines(err), err);
    CHECK_MSG(strstr(err, file) != NULL, "stderr does not name the path: %s", err);
    CHECK_MSG(strstr(out, "Epoch") == NULL && strstr(out, "Test set") == NULL, "trained anyway: %s", out);
    CHECK_MSG(now() - t0 < 20, "took %.1f s", now() - t0);
    /* A directory under /proc cannot be created either. */
    snprintf(args, sizeof args, "train --model %s/tiny.spec --epochs 1 --out /proc/convnet-no/such --data %s/data --no-download",
             work, work);
    rc = run(args, 60);
    err = slurp("err.txt");
    CHECK_MSG(rc == 1 && count_lines(err) == 1 && strstr(err, "/proc/convnet-no"), "exit %d: %s", rc, err);
}

/* WORK/<dir>: a copy of the test data whose label files hold `label` everywhere. */
static void data_with_labels(const char *dir, int label) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/%s && cp %s/data/*images* %s/%s/", work, dir, work, work, dir);
    CHECK(system(cmd) == 0);
    static const struct { const char *name; int count; } files[] = {
        {"train-labels-idx1-ubyte", TRAIN_IMAGES}, {"t10k-labels-idx1-ubyte", TEST_IMAGES}};
    for (int i = 0; i < 2; i++) {
        uint8_t buf[8 + TRAIN_IMAGES] = {0, 0, 8, 1, 0, 0, (uint8_t)(files[i].count >> 8), (uint8_t)files[i].count};
        memset(buf + 8, label, (size_t)files[i].count);
        char path[512];
        snprintf(path, sizeof path, "%s/%s/%s", work, dir, files[i].name);
        CHECK(write_file(path, buf, 8 + (size_t)files[i].count) == 0);
    }
}

/* Labels past the model's classes: eval read scores past the model's outputs (valgrind:
 * invalid read in cn_loss_samples) and printed a made-up loss with exit 0. */
TEST(eval_refuses_labels_the_model_does_not_have) {
    if (!have_data) return;
    char args[1024];
    if (train_tiny("ten")) return;
    int rc;
    data_with_labels("labels63", 63);
    snprintf(args, sizeof args, "eval --weights %s/ten/last.safetensors --dataset idx --data %s/labels63 --threads 2", work, work);
    rc = run(args, 60);
    const char *err = slurp("err.txt");
    CHECK_MSG(rc == 1 && count_lines(err) == 1 && strstr(err, "the model outputs 10 classes but idx has 64"),
              "exit %d: %s", rc, err);
    CHECK_MSG(strstr(slurp("out.txt"), "Test set") == NULL, "printed a loss: %s", slurp("out.txt"));
    /* fine-tuning and resuming pair the model with a dataset too */
    snprintf(args, sizeof args, "train --model %s/ten/last.safetensors --dataset idx --data %s/labels63 --epochs 1 "
             "--out %s/ten63 --quiet --threads 2", work, work, work);
    rc = run(args, 60);
    err = slurp("err.txt");
    CHECK_MSG(rc == 1 && strstr(err, "the model outputs 10 classes but idx has 64"), "fine-tune: exit %d: %s", rc, err);
    /* cn_evaluate itself checks every label, whoever calls it */
    cn_model *m = NULL;
    CHECK(cn_model_from_spec(tiny_spec, "tiny", 1, &m) == CN_OK);
    uint8_t images[2 * 784] = {0};
    uint16_t labels[2] = {3, 12};
    const float mean[1] = {0.1f}, stdev[1] = {0.3f};
    cn_split split = {.count = 2, .rows = 28, .cols = 28, .images = images, .labels = labels};
    double loss;
    int correct;
    CHECK(m && cn_evaluate(m, &split, mean, stdev, 1, &loss, &correct, NULL) == CN_ERR_SHAPE);
    CHECK_MSG(strstr(cn_last_error(), "image 1 has label 12 but the model outputs only 10 classes"), "%s", cn_last_error());
    cn_model_free(m);
}

/* A device or FIFO under a data file's name was taken for "missing": the download
 * path then hashed /dev/zero forever (265 GB at 100% CPU). Now one line at once. */
TEST(device_or_fifo_as_data_file_is_refused_at_once) {
    if (!have_data) return;
    char cmd[1024], args[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/devdata && cp %s/data/t10k* %s/devdata/ && cp %s/data/train-labels-idx1-ubyte %s/devdata/ && "
             "ln -sf /dev/zero %s/devdata/train-images-idx3-ubyte.gz", work, work, work, work, work, work);
    CHECK(system(cmd) == 0);
    setenv("CONVNET_MIRROR", "file:///nonexistent/convnet-mirror", 1);   /* no network, whatever happens */
    double t0 = now();
    snprintf(args, sizeof args, "train --model %s/tiny.spec --epochs 1 --data %s/devdata --out %s/dev --quiet", work, work, work);
    int rc = run(args, 30);
    const char *err = slurp("err.txt");
    CHECK_MSG(rc == 1 && count_lines(err) == 1 && strstr(err, "train-images-idx3-ubyte.gz: not a regular file (a character device)"),
              "exit %d: %s", rc, err);
    CHECK_MSG(now() - t0 < 10, "took %.1f s", now() - t0);
    /* the same with only the test files wanted (eval) and a FIFO */
    snprintf(cmd, sizeof cmd, "rm -f %s/devdata/t10k-labels-idx1-ubyte && mkfifo %s/devdata/t10k-labels-idx1-ubyte", work, work);
    CHECK(system(cmd) == 0);
    if (train_tiny("devw")) return;
    snprintf(args, sizeof args, "eval --weights %s/devw/last.safetensors --data %s/devdata --threads 2", work, work);
    t0 = now();
    rc = run(args, 30);
    err = slurp("err.txt");
    CHECK_MSG(rc == 1 && count_lines(err) == 1 && strstr(err, "t10k-labels-idx1-ubyte: not a regular file (a FIFO)"),
              "exit %d: %s", rc, err);
    CHECK_MSG(now() - t0 < 10, "took %.1f s", now() - t0);
    unsetenv("CONVNET_MIRROR");
}

/* The first SIGTERM/SIGINT before training (here: while the full MNIST loads)
 * was swallowed; only a second one ended the run. Now it ends at once. */
TEST(signal_before_training_ends_the_process) {
    const char *mnist = "../shared/data/mnist";
    char probe[256], args[1024];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", mnist);
    if (access(probe, R_OK)) { fprintf(stderr, "  SKIP: no %s\n", probe); return; }
    for (int i = 0; i < 2; i++) {
        int sig = i ? SIGINT : SIGTERM;
        snprintf(args, sizeof args, "train --model %s/tiny.spec --epochs 1 --data %s --no-download --out %s/early%d --quiet",
                 work, mnist, work, i);
        pid_t pid = spawn(args);
        usleep(150 * 1000);   /* decompressing 47 MB of images takes longer */
        double t0 = now();
        kill(pid, sig);
        int rc = finish(pid, 30);
        CHECK_MSG(rc == -sig, "%s: exit %d (expected death by the signal): %s", strsignal(sig), rc, slurp("err.txt"));
        CHECK_MSG(now() - t0 < 3, "%s: took %.1f s to end", strsignal(sig), now() - t0);
        snprintf(probe, sizeof probe, "%s/early%d/last.safetensors", work, i);
        CHECK_MSG(access(probe, F_OK) != 0, "%s was written", probe);
    }
}

/* Writes `path` with every weight of `src` scaled by `factor` (finite, but the outputs overflow). */
static int scaled_copy(const char *src, const char *path, float factor) {
    cn_model *m = NULL;
    cn_checkpoint_info info;
    if (cn_checkpoint_load(src, &m, &info, NULL) != CN_OK) return -1;
    for (size_t i = 0; i < m->num_params; i++) m->params[i] *= factor;
    cn_status st = cn_checkpoint_save(path, m, &info, NULL);
    cn_model_free(m);
    return st == CN_OK ? 0 : -1;
}

/* An epoch with train loss 2.7e30 and test loss NaN was saved as last.safetensors
 * and named "the last good checkpoint" by the next epoch; eval and predict printed -nan. */
TEST(divergent_epoch_is_not_saved) {
    if (!have_data) return;
    char args[1024], last[256], metrics[64];
    snprintf(args, sizeof args, "train --model %s/explode.spec --lr 100 --momentum 0.9 --batch-size 256 --epochs 12 "
             "--out %s/diverge " COMMON, work, work, work);
    int rc = run(args, 60);
    const char *err = slurp("err.txt");
    snprintf(last, sizeof last, "%s/diverge/last.safetensors", work);
    CHECK_MSG(rc == 1 && count_lines(err) == 1 && strstr(err, "epoch 2 diverged (train loss") &&
              strstr(err, "stopping without saving it") && strstr(err, last), "exit %d: %s", rc, err);
    cn_model *m = NULL;
    cn_checkpoint_info info;
    CHECK(cn_checkpoint_load(last, &m, &info, NULL) == CN_OK && info.epoch == 1);
    cn_model_free(m);
    snprintf(metrics, sizeof metrics, "diverge/metrics.csv");
    CHECK_MSG(count_lines(slurp(metrics)) == 2, "metrics.csv: %s", slurp(metrics));   /* header and epoch 1 */
    /* Finite weights that overflow the outputs: eval and predict refuse them. */
    char huge[256];
    snprintf(huge, sizeof huge, "%s/diverge/huge.safetensors", work);
    CHECK(scaled_copy(last, huge, 1e30f) == 0);
    snprintf(args, sizeof args, "eval --weights %s --data %s/data --threads 2", huge, work);
    rc = run(args, 60);
    err = slurp("err.txt");
    CHECK_MSG(rc == 1 && count_lines(err) == 1 && strstr(err, "outputs are not finite"), "eval: exit %d: %s", rc, err);
    CHECK_MSG(strstr(slurp("out.txt"), "nan") == NULL, "eval printed: %s", slurp("out.txt"));
    snprintf(args, sizeof args, "predict --weights %s tests/fixtures/images/digit3_inverted_scaled.png", huge);
    rc = run(args, 60);
    err = slurp("err.txt");
    CHECK_MSG(rc == 1 && count_lines(err) == 1 && strstr(err, "outputs are not finite"), "predict: exit %d: %s", rc, err);
}

/* Two runs with the same --out both ran: metrics.csv mixed their epochs. */
TEST(second_run_on_the_same_out_is_refused) {
    if (!have_data) return;
    char args[1024], lock[300], out_dir[256];
    snprintf(out_dir, sizeof out_dir, "%s/shared", work);
    snprintf(lock, sizeof lock, "%s/.lock", out_dir);
    snprintf(args, sizeof args, "train --model %s/tiny.spec --epochs 100000 --batch-size 256 --out %s " COMMON, work, out_dir, work);
    pid_t first = spawn(args);
    double give_up = now() + 30;
    char metrics_before[16384] = "";
    while (now() < give_up && strstr(slurp("shared/metrics.csv"), "\n3,") == NULL) usleep(5000);
    kill(first, SIGSTOP);   /* frozen: nothing changes in OUT while the second run tries */
    snprintf(metrics_before, sizeof metrics_before, "%s", slurp("shared/metrics.csv"));
    struct stat before;
    CHECK(stat(lock, &before) == 0);
    snprintf(args, sizeof args, "train --model %s/tiny.spec --epochs 1 --batch-size 256 --out %s " COMMON, work, out_dir, work);
    int rc = run(args, 60);
    const char *err = slurp("err.txt");
    char want[320];
    snprintf(want, sizeof want, "%s is in use by another convnet run (pid %d)", out_dir, (int)first);
    CHECK_MSG(rc == 1 && count_lines(err) == 1 && strstr(err, want), "exit %d: %s (expected '%s')", rc, err, want);
    CHECK_MSG(strcmp(metrics_before, slurp("shared/metrics.csv")) == 0, "metrics.csv changed");
    kill(first, SIGKILL);
    kill(first, SIGCONT);
    finish(first, 30);
    /* The lock dies with its holder, kill -9 included. */
    snprintf(args, sizeof args, "train --resume %s/last.safetensors --epochs 100000 --threads 2 --quiet --data %s/data "
             "--no-download", out_dir, work);
    pid_t next = spawn(args);
    usleep(300 * 1000);
    kill(next, SIGTERM);
    rc = finish(next, 30);
    CHECK_MSG(rc == 130 || rc == -SIGTERM, "resume after the kill: exit %d: %s", rc, slurp("err.txt"));
    CHECK_MSG(strstr(slurp("err.txt"), "in use") == NULL, "%s", slurp("err.txt"));
    /* The helper itself: a second lock on the same directory fails, also within one process. */
    cn_dir_lock a, b;
    CHECK(cn_dir_lock_acquire(out_dir, &a) == CN_OK);
    CHECK(cn_dir_lock_acquire(out_dir, &b) == CN_ERR_IO && b.fd == -1);
    snprintf(want, sizeof want, "is in use by another convnet run (pid %d)", (int)getpid());
    CHECK_MSG(strstr(cn_last_error(), want), "%s", cn_last_error());
    cn_dir_lock_release(&a);
    CHECK(cn_dir_lock_acquire(out_dir, &b) == CN_OK);
    cn_dir_lock_release(&b);
}

TEST(kill9_never_leaves_an_unloadable_checkpoint) {
    if (!have_data) return;
    rng_state = (uint64_t)time(NULL) * 2654435761u | 1;
    uint64_t seed = rng_state;
    char args[1024], last[256], best[256];
    snprintf(last, sizeof last, "%s/kill/last.safetensors", work);
    snprintf(best, sizeof best, "%s/kill/best.safetensors", work);
    /* One batch of 256 per epoch: a checkpoint write every few milliseconds. */
    int killed = 0, loads = 0, rounds = 10;
    double deadline = now() + 30;
    for (int i = 0; i < rounds && now() < deadline; i++) {
        if (access(last, F_OK) == 0)
            snprintf(args, sizeof args, "train --resume %s --epochs 100000 " COMMON, last, work);
        else
            snprintf(args, sizeof args, "train --model %s/tiny.spec --epochs 100000 --batch-size 256 --out %s/kill " COMMON,
                     work, work, work);
        /* Kill at a random moment once the run has started writing checkpoints
         * (however slow the machine or the sanitizers make the start-up). */
        struct timespec before = mtime_of(last);
        pid_t pid = spawn(args);
        double give_up = now() + 20;
        int status, rc = 0, exited = 0;
        for (;;) {
            struct timespec t = mtime_of(last);
            if (t.tv_sec != before.tv_sec || t.tv_nsec != before.tv_nsec || now() > give_up) break;
            if (waitpid(pid, &status, WNOHANG) == pid) { /* exited on its own: reported below */
                exited = 1;
                rc = WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
                break;
            }
            usleep(1000);
        }
        if (!exited) {
            usleep((useconds_t)(1e6 * 0.4 * rnd()));
            kill(pid, SIGKILL);
            rc = finish(pid, 30);
        }
        killed += rc == -SIGKILL;
        CHECK_MSG(rc == -SIGKILL, "round %d: exit %d before the kill (seed %llu): %s", i, rc,
                  (unsigned long long)seed, slurp("err.txt"));
        if (access(last, F_OK) == 0) {
            cn_status st = load_checkpoint(last, 1);
            CHECK_MSG(st == CN_OK, "round %d (seed %llu): last.safetensors does not load: %s", i,
                      (unsigned long long)seed, cn_last_error());
            loads += st == CN_OK;
        }
        if (access(best, F_OK) == 0)
            CHECK_MSG(load_checkpoint(best, 0) == CN_OK, "round %d: best.safetensors does not load: %s", i, cn_last_error());
    }
    CHECK_MSG(killed >= 4 && loads >= 3, "only %d kills, %d loads", killed, loads);
    /* Temporary files left behind are kills that landed inside a checkpoint write. */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s/kill | grep -c '\\.tmp\\.'", work);
    FILE *p = popen(cmd, "r");
    int torn = 0;
    if (p) { if (fscanf(p, "%d", &torn) != 1) torn = 0; pclose(p); }
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "  kill -9: %d kills, %d checkpoint loads, %d kills inside a checkpoint write\n", killed, loads, torn);
}

int main(void) {
    setup();
    double t0 = now();
    RUN(nan_loss_stops_and_keeps_the_last_checkpoint);
    RUN(sigint_saves_and_resume_continues);
    RUN(sigterm_saves_and_resume_continues);
    RUN(resume_with_fewer_epochs_than_done);
    RUN(batch_of_one_through_fused_bn_pool);
    RUN(unwritable_output_dir_is_reported_before_training);
    RUN(eval_refuses_labels_the_model_does_not_have);
    RUN(device_or_fifo_as_data_file_is_refused_at_once);
    RUN(signal_before_training_ends_the_process);
    RUN(divergent_epoch_is_not_saved);
    RUN(second_run_on_the_same_out_is_refused);
    RUN(resume_refuses_options_that_contradict_the_checkpoint);
    RUN(eval_reads_only_the_test_files);
    RUN(overlong_paths_are_refused_up_front);
    RUN(signals_during_saves_leave_no_temporaries);
    RUN(kill9_never_leaves_an_unloadable_checkpoint);
    if (getenv("TEST_VERBOSE")) fprintf(stderr, "fault tests: %.1f s\n", now() - t0);
    teardown();
    return test_summary();
}
