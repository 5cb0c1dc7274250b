/* Dataset download end to end through a file:// mirror (no network needed). */
#include "harness.h"
#include "data/catalog.h"
#include "data/dataset.h"
#include "data/download.h"
#include "core/error.h"
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[256], mnist_dir[4096], mirror_url[4200];

static const char *const gz_names[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
static const char *const mnist_md5[4] = {"f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                                         "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"};

static int copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    if (!in || !out) { if (in) fclose(in); return 0; }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
    return fclose(out) == 0;
}

/* Number of temporary files left in dir (".tmp." from the atomic writes, ".part" as before). */
static int count_part_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) if (strstr(e->d_name, ".part") || strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static void in_dir(char *out, size_t size, const char *dir, const char *name) { snprintf(out, size, "%s/%s", dir, name); }

TEST(md5_of_published_files) {
    for (int i = 0; i < 4; i++) {
        char p[4300], hex[33];
        in_dir(p, sizeof p, mnist_dir, gz_names[i]);
        CHECK_MSG(cn_file_md5(p, hex) == CN_OK, "%s", cn_last_error());
        CHECK_MSG(!strcmp(hex, mnist_md5[i]), "%s: %s", gz_names[i], hex);
    }
    char hex[33];
    CHECK(cn_file_md5("/nonexistent", hex) == CN_ERR_IO);
}

TEST(downloads_from_file_mirror) {
    char target[512];
    snprintf(target, sizeof target, "%s/fresh/nested/mnist", tmp_root);
    setenv("CONVNET_MIRROR", mirror_url, 1);
    cn_status st = cn_dataset_download("mnist", target, 0);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    for (int i = 0; i < 4; i++) {
        char p[700], hex[33] = "";
        in_dir(p, sizeof p, target, gz_names[i]);
        CHECK(cn_file_md5(p, hex) == CN_OK && !strcmp(hex, mnist_md5[i]));
    }
    CHECK(count_part_files(target) == 0);
    cn_dataset ds;
    CHECK_MSG(cn_dataset_load("mnist", target, 0, &ds) == CN_OK, "%s", cn_last_error());
    CHECK(ds.train.count == 60000 && ds.test.count == 10000);
    cn_dataset_free(&ds);
    /* A second run keeps the verified files (same inode, nothing rewritten). */
    char p[700];
    in_dir(p, sizeof p, target, gz_names[0]);
    struct stat before, after;
    stat(p, &before);
    CHECK(cn_dataset_download("mnist", target, 0) == CN_OK);
    stat(p, &after);
    CHECK(before.st_ino == after.st_ino && before.st_mtime == after.st_mtime);
    /* A damaged local file is replaced. */
    in_dir(p, sizeof p, target, gz_names[3]);
    FILE *f = fopen(p, "r+b");
    fputc('X', f);
    fclose(f);
    CHECK(cn_dataset_download("mnist", target, 0) == CN_OK);
    char hex[33];
    CHECK(cn_file_md5(p, hex) == CN_OK && !strcmp(hex, mnist_md5[3]));
    unsetenv("CONVNET_MIRROR");
}

TEST(rejects_corrupted_mirror_file) {
    char mirror[512], target[512], p[700], q[4300];
    snprintf(mirror, sizeof mirror, "%s/bad-mirror", tmp_root);
    snprintf(target, sizeof target, "%s/bad-target", tmp_root);
    mkdir(mirror, 0755);
    mkdir(target, 0755);
    /* The target already has the training images; the mirror serves damaged labels. */
    in_dir(q, sizeof q, mnist_dir, gz_names[0]);
    in_dir(p, sizeof p, target, gz_names[0]);
    CHECK(copy_file(q, p));
    in_dir(q, sizeof q, mnist_dir, gz_names[1]);
    in_dir(p, sizeof p, mirror, gz_names[1]);
    CHECK(copy_file(q, p));
    FILE *f = fopen(p, "r+b");
    fseek(f, 1000, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 1000, SEEK_SET);
    fputc(c ^ 0x01, f);
    fclose(f);
    char bad_md5[33];
    CHECK(cn_file_md5(p, bad_md5) == CN_OK);
    char url[700];
    snprintf(url, sizeof url, "file://%s", mirror);   /* no trailing slash: one is added */
    setenv("CONVNET_MIRROR", url, 1);
    cn_status st = cn_dataset_download("mnist", target, 0);
    CHECK(st == CN_ERR_CHECKSUM);
    char expect[1200];
    snprintf(expect, sizeof expect, "file://%s/%s: MD5 %s does not match the published %s", mirror, gz_names[1],
             bad_md5, mnist_md5[1]);
    CHECK_MSG(strstr(cn_last_error(), expect) == cn_last_error(), "%s\nexpected: %s", cn_last_error(), expect);
    in_dir(p, sizeof p, target, gz_names[1]);
    CHECK(access(p, F_OK) != 0);
    CHECK(count_part_files(target) == 0);
    unsetenv("CONVNET_MIRROR");
}

TEST(unreachable_mirror_explains_the_manual_route) {
    char target[512];
    snprintf(target, sizeof target, "%s/offline", tmp_root);
    setenv("CONVNET_MIRROR", "file:///nonexistent/mirror/", 1);
    cn_status st = cn_dataset_download("fashion-mnist", target, 1);
    CHECK(st == CN_ERR_NETWORK);
    const char *msg = cn_last_error();
    CHECK_MSG(strstr(msg, "cannot download train-images-idx3-ubyte.gz into ") != NULL, "%s", msg);
    CHECK(strstr(msg, "file:///nonexistent/mirror/train-images-idx3-ubyte.gz") != NULL);
    CHECK(strstr(msg, "t10k-labels-idx1-ubyte.gz into ") != NULL && strstr(msg, target) != NULL);
    CHECK(strstr(msg, "by hand") != NULL && strstr(msg, "CONVNET_MIRROR") != NULL);
    CHECK(strchr(msg, '\n') == NULL);
    CHECK(access(target, F_OK) != 0); /* the directory it created is gone again */
    unsetenv("CONVNET_MIRROR");
    CHECK(cn_dataset_download("idx", target, 0) == CN_ERR_ARG);
    CHECK(cn_dataset_download("cifar10", target, 0) == CN_ERR_ARG);
    CHECK(cn_dataset_download("mnist", "/proc/forbidden/x", 0) == CN_ERR_IO);
}

TEST(load_downloads_when_allowed) {
    char root[512], cwd[4096];
    snprintf(root, sizeof root, "%s/auto", tmp_root);
    mkdir(root, 0755);
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    CHECK(chdir(root) == 0);          /* so that ./data/mnist is inside the temp dir */
    setenv("CONVNET_DATA", root, 1);
    setenv("CONVNET_MIRROR", mirror_url, 1);
    cn_dataset ds;
    CHECK(cn_dataset_load("mnist", NULL, 0, &ds) == CN_ERR_IO);
    cn_status st = cn_dataset_load("mnist", NULL, 1, &ds);
    CHECK_MSG(st == CN_OK, "%s", cn_last_error());
    char expect[600];
    snprintf(expect, sizeof expect, "%s/mnist", root);
    CHECK(st == CN_OK && !strcmp(ds.dir, expect) && ds.train.count == 60000);
    cn_dataset_free(&ds);
    unsetenv("CONVNET_MIRROR");
    unsetenv("CONVNET_DATA");
    CHECK(chdir(cwd) == 0);
}

int main(void) {
    if (!realpath("../shared/data/mnist", mnist_dir)) snprintf(mnist_dir, sizeof mnist_dir, "/work/shared/data/mnist");
    snprintf(mirror_url, sizeof mirror_url, "file://%s/", mnist_dir);
    snprintf(tmp_root, sizeof tmp_root, "/tmp/cn-test-download-XXXXXX");
    if (!mkdtemp(tmp_root)) { perror("mkdtemp"); return 2; }
    RUN(md5_of_published_files);
    RUN(downloads_from_file_mirror);
    RUN(rejects_corrupted_mirror_file);
    RUN(unreachable_mirror_explains_the_manual_route);
    RUN(load_downloads_when_allowed);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return test_summary();
}
