/* Header-only helpers for tests that compare against the PyTorch fixtures in
 * tests/fixtures/ (written by tests/fixtures/gen_fixtures.py). Include after
 * harness.h. Loaders print the library's error and return NULL on failure, so
 * a test does `float *x = fixture_floats(f, "input", &n); CHECK(x); if (!x) ...`.
 *
 * CHECK_ALLCLOSE(actual, expected, n, tol) compares two float arrays with the
 * project's error measure |a - e| / max(1, |e|) (relative for large values,
 * absolute near zero; the project's bar is 1e-4) and on failure reports the
 * worst element, its index and how many elements are out of tolerance. */
#ifndef CONVNET_TEST_FIXTURE_H
#define CONVNET_TEST_FIXTURE_H
#include "harness.h"
#include "io/safetensors.h"
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FIXTURE_TOL 1e-4

/* Opens tests/fixtures/<rel> (tests run from the repository root). */
static inline cn_st_file *fixture_open(const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "tests/fixtures/%s", rel);
    cn_st_file *f = NULL;
    if (cn_st_open(path, &f) != CN_OK) {
        fprintf(stderr, "  fixture: %s\n", cn_last_error());
        return NULL;
    }
    return f;
}

/* Tensor `name` as a new float array (free()); *count gets its length if not NULL. */
static inline float *fixture_floats(const cn_st_file *f, const char *name, size_t *count) {
    float *v = NULL;
    if (!f || cn_st_read_floats(f, name, 0, &v, count) != CN_OK) {
        fprintf(stderr, "  fixture: %s\n", f ? cn_last_error() : "file not open");
        return NULL;
    }
    return v;
}

static inline double *fixture_doubles(const cn_st_file *f, const char *name, size_t *count) {
    double *v = NULL;
    if (!f || cn_st_read_doubles(f, name, 0, &v, count) != CN_OK) {
        fprintf(stderr, "  fixture: %s\n", f ? cn_last_error() : "file not open");
        return NULL;
    }
    return v;
}

static inline int64_t *fixture_ints(const cn_st_file *f, const char *name, size_t *count) {
    int64_t *v = NULL;
    if (!f || cn_st_read_int64(f, name, 0, &v, count) != CN_OK) {
        fprintf(stderr, "  fixture: %s\n", f ? cn_last_error() : "file not open");
        return NULL;
    }
    return v;
}

/* Metadata string, or "" (with a message) if missing. */
static inline const char *fixture_meta(const cn_st_file *f, const char *key) {
    const char *v = f ? cn_st_metadata(f, key) : NULL;
    if (!v) { fprintf(stderr, "  fixture: no metadata \"%s\"\n", key); return ""; }
    return v;
}

/* Metadata parsed as a number (strtod), or NAN if missing/unparsable. */
static inline double fixture_meta_num(const cn_st_file *f, const char *key) {
    const char *v = fixture_meta(f, key), *end = v;
    double d = strtod(v, (char **)&end);
    return (end == v || *end) ? NAN : d;
}

/* The project's error measure for one element; NaN/Inf mismatches are infinite. */
static inline double fixture_err(double a, double e) {
    if (isnan(a) || isnan(e)) return (isnan(a) && isnan(e)) ? 0.0 : INFINITY;
    if (isinf(a) || isinf(e)) return a == e ? 0.0 : INFINITY;
    return fabs(a - e) / (fabs(e) > 1.0 ? fabs(e) : 1.0);
}

/* Returns true if all n elements are within tol; otherwise prints the worst one. */
static inline bool fixture_allclose_impl(const float *af, const float *ef, const double *ad, const double *ed,
                                         size_t n, double tol, const char *file, int line,
                                         const char *aname, const char *ename) {
    if ((!af && !ad) || (!ef && !ed)) {
        fprintf(stderr, "  FAIL %s:%d: %s vs %s: NULL array\n", file, line, aname, ename);
        return false;
    }
    size_t worst = 0, bad = 0;
    double worst_err = -1.0;
    for (size_t i = 0; i < n; i++) {
        double a = af ? af[i] : ad[i], e = ef ? ef[i] : ed[i];
        double err = fixture_err(a, e);
        if (!(err <= tol)) bad++;
        if (err > worst_err || (isinf(err) && worst_err < INFINITY)) { worst_err = err; worst = i; }
    }
    if (bad == 0) return true;
    double a = af ? af[worst] : ad[worst], e = ef ? ef[worst] : ed[worst];
    fprintf(stderr, "  FAIL %s:%d: %s vs %s: %zu of %zu elements off; worst [%zu] = %.9g, expected %.9g "
            "(err %.3g, tol %g)\n", file, line, aname, ename, bad, n, worst, a, e, worst_err, tol);
    return false;
}

#define CHECK_ALLCLOSE(actual, expected, n, tol) do { \
    if (!fixture_allclose_impl((actual), (expected), NULL, NULL, (n), (tol), __FILE__, __LINE__, \
                               #actual, #expected)) harness_current_failed++; } while (0)

/* Same for double arrays (e.g. scheduler learning rates). */
#define CHECK_ALLCLOSE_D(actual, expected, n, tol) do { \
    if (!fixture_allclose_impl(NULL, NULL, (actual), (expected), (n), (tol), __FILE__, __LINE__, \
                               #actual, #expected)) harness_current_failed++; } while (0)

#endif
