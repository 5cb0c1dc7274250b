/* Header-only helpers for the tests that drive JavaScript tools (test_ort.c:
 * ONNX Runtime; test_web.c: headless Chromium through puppeteer-core). Include
 * after harness.h.
 *
 * js_env() installs tests/js/package.json's packages, pinned by its committed
 * package-lock.json, into $BUILD/js/node_modules with `npm ci` (only when the
 * lockfile changed since the last install). ONNXRUNTIME_NODE_INSTALL_CUDA=skip
 * keeps onnxruntime-node's install script from downloading a GPU add-on (its
 * CPU binaries ship in the package) and puppeteer-core never downloads a
 * browser, so the only network used is the npm registry. Scripts then run as
 * `NODE_PATH=$BUILD/js/node_modules node tests/js/SCRIPT`. */
#ifndef CONVNET_TEST_JS_ENV_H
#define CONVNET_TEST_JS_ENV_H
#include "harness.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MNIST_DIR "../shared/data/mnist" /* beside the clone, as in CI */

static char js_build[256] = "build";
static char js_out[1 << 16];

/* Runs a shell command (printf-style), stdout and stderr into js_out; returns its exit status. */
static int js_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int js_run(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    if (getenv("TEST_VERBOSE")) fprintf(stderr, "$ %s\n", cmd);
    FILE *p = popen(cmd, "r");
    if (!p) { js_out[0] = '\0'; return -1; }
    size_t n = fread(js_out, 1, sizeof js_out - 1, p);
    js_out[n] = '\0';
    while (fread(cmd, 1, sizeof cmd, p) > 0) {} /* drain the rest */
    int st = pclose(p);
    if (getenv("TEST_VERBOSE")) fputs(js_out, stderr);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int js_file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* 1: node and the packages are ready; 0: skip (the reason printed as a SKIP
 * line); -1: node and npm are there but `npm ci` failed (printed; a failure). */
static int js_env(const char *test) {
    const char *b = getenv("BUILD");
    if (b && *b) snprintf(js_build, sizeof js_build, "%s", b);
    if (js_run("node --version") != 0 || js_run("npm --version") != 0) {
        printf("SKIP %s: node or npm not found (Debian: apt-get install -y nodejs npm, or sh scripts/install-deps.sh)\n",
               test);
        return 0;
    }
    char stamp[512];
    snprintf(stamp, sizeof stamp, "%s/js/node_modules/.convnet-lock", js_build);
    if (js_file_exists(stamp) && js_run("cmp -s tests/js/package-lock.json %s", stamp) == 0) return 1;
    int st = js_run("mkdir -p %s/js && cp tests/js/package.json tests/js/package-lock.json %s/js/ && cd %s/js && "
                    "ONNXRUNTIME_NODE_INSTALL_CUDA=skip PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund "
                    "--loglevel=error && cp package-lock.json node_modules/.convnet-lock",
                    js_build, js_build, js_build);
    if (st != 0) {
        fprintf(stderr, "  %s: npm ci in %s/js failed (exit %d):\n%s\n", test, js_build, st, js_out);
        return -1;
    }
    return 1;
}

/* Runs tests/js/SCRIPT with the installed packages; output in js_out. */
#define JS_NODE(script, fmt, ...) \
    js_run("NODE_PATH=%s/js/node_modules node tests/js/" script " " fmt, js_build, __VA_ARGS__)

#endif
