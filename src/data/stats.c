#include "data/stats.h"
#include "core/atomic_file.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cn_split_pixel_stats(const cn_split *train, double *mean, double *std) {
    /* A histogram makes the sums exact and the pass cheap. */
    uint64_t hist[256] = {0};
    size_t n = (size_t)train->count * (size_t)train->rows * (size_t)train->cols;
    for (size_t i = 0; i < n; i++) hist[train->images[i]]++;
    double m = 0.0;
    for (int v = 0; v < 256; v++) m += (double)hist[v] * (v / 255.0);
    m = n ? m / (double)n : 0.0;
    double ss = 0.0;
    for (int v = 0; v < 256; v++) { double d = v / 255.0 - m; ss += (double)hist[v] * d * d; }
    *mean = m;
    *std = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int read_cache(const char *cache_path, const char *file, long long size, long long mtime,
                      float *mean, float *std) {
    FILE *f = fopen(cache_path, "r");
    if (!f) return 0;
    char line[512], name[256] = "";
    long long csize = -1, cmtime = -1;
    double cmean = NAN, cstd = NAN;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (sscanf(line, "file %255s", name) == 1) continue;
        if (sscanf(line, "size %lld", &csize) == 1) continue;
        if (sscanf(line, "mtime %lld", &cmtime) == 1) continue;
        if (sscanf(line, "mean %lf", &cmean) == 1) continue;
        if (sscanf(line, "std %lf", &cstd) == 1) continue;
    }
    fclose(f);
    if (strcmp(name, file) || csize != size || cmtime != mtime) return 0;
    if (!isfinite(cmean) || !isfinite(cstd) || cstd <= 0.0 || cmean < 0.0 || cmean > 1.0) return 0;
    *mean = (float)cmean;
    *std = (float)cstd;
    return 1;
}

static void write_cache(const char *cache_path, const char *file, long long size, long long mtime,
                        double mean, double std) {
    char text[1024];
    int n = snprintf(text, sizeof text, "# convnet: normalisation statistics of the training images (pixel/255)\n"
                                        "file %s\nsize %lld\nmtime %lld\nmean %.9f\nstd %.9f\n",
                     file, size, mtime, mean, std);
    if (n > 0 && n < (int)sizeof text) (void)cn_write_file_atomic(cache_path, text, (size_t)n); /* a cache: failure is fine */
}

void cn_split_cached_stats(const cn_split *train, const char *images_path, const char *cache_path,
                           float *mean, float *std) {
    struct stat st;
    long long size = -1, mtime = -1;
    if (stat(images_path, &st) == 0) { size = (long long)st.st_size; mtime = (long long)st.st_mtime; }
    const char *file = base_name(images_path);
    if (size >= 0 && read_cache(cache_path, file, size, mtime, mean, std)) return;
    double m, s;
    cn_split_pixel_stats(train, &m, &s);
    if (!(s > 0.0)) s = 1.0; /* a constant image set: keep the division harmless */
    *mean = (float)m;
    *std = (float)s;
    if (size >= 0 && strchr(file, ' ') == NULL) write_cache(cache_path, file, size, mtime, m, s);
}
