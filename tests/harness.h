/* Minimal test harness: each tests/test_*.c is its own program.
 * Use TEST(name) { CHECK(...); } and list the tests in main via RUN(name);
 * finish with `return test_summary();`, which prints "TESTS passed failed"
 * for tests/run.sh to add up. A check failure prints file:line and the values. */
#ifndef CONVNET_TEST_HARNESS_H
#define CONVNET_TEST_HARNESS_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A scratch folder of this build's own (the Makefile passes $(BUILD)/tmp as an
 * absolute path and creates it), so that two checkouts or two builds can run
 * their tests at once without sharing files. */
#ifndef TEST_TMP
#define TEST_TMP "/tmp"
#endif

static int harness_passed, harness_failed, harness_current_failed;
static const char *harness_current_name;

#define TEST(name) static void name(void)

#define CHECK(cond) do { if (!(cond)) { harness_current_failed++; \
    fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } } while (0)

#define CHECK_MSG(cond, ...) do { if (!(cond)) { harness_current_failed++; \
    fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* |a-b| <= tol * max(1, |b|): relative for large values, absolute near zero. */
#define CHECK_NEAR(a, b, tol) do { double ha_ = (double)(a), hb_ = (double)(b); \
    double hs_ = fabs(hb_) > 1.0 ? fabs(hb_) : 1.0; \
    if (!(fabs(ha_ - hb_) <= (tol) * hs_)) { harness_current_failed++; \
    fprintf(stderr, "  FAIL %s:%d: %s = %.9g, expected %s = %.9g (tol %g)\n", \
            __FILE__, __LINE__, #a, ha_, #b, hb_, (double)(tol)); } } while (0)

#define RUN(name) do { harness_current_failed = 0; harness_current_name = #name; \
    name(); if (harness_current_failed) { harness_failed++; \
    fprintf(stderr, "FAILED %s\n", harness_current_name); } \
    else { harness_passed++; if (getenv("TEST_VERBOSE")) fprintf(stderr, "ok %s\n", #name); } } while (0)

static inline int test_summary(void) {
    printf("TESTS %d %d\n", harness_passed, harness_failed);
    return harness_failed ? 1 : 0;
}

/* A run's OUT/metrics.csv into buf without its last (seconds) column: what two runs that
 * train the same must agree on. An empty buf (and a failed check) when it is missing. */
static inline void harness_read_metrics(const char *dir, char *buf, size_t size) {
    char path[1024], line[512];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "%s missing", path);
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char *comma = strrchr(line, ',');
        if (comma) *comma = '\0';
        strncat(buf, line, size - strlen(buf) - 2);
        strcat(buf, "\n");
    }
    fclose(f);
}

/* 1 when the first 8 KB of the file at path contain text. */
static inline int harness_file_contains(const char *path, const char *text) {
    /* The whole file (binary files too: a NUL byte does not end the search), up to 256 MB. */
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t cap = 1 << 16, n = 0, want = strlen(text);
    char *buf = malloc(cap);
    int found = 0;
    while (buf) {
        if (n == cap) {
            if (cap >= ((size_t)256 << 20)) break;
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) break;
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;
        n += got;
    }
    if (buf) found = memmem(buf, n, text, want) != NULL;
    free(buf);
    fclose(f);
    return found;
}

/* Path of a committed fixture, relative to the repository root (tests run from it). */
#define FIXTURE(rel) ("tests/fixtures/" rel)

#endif
