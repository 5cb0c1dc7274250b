#include "data/download.h"
#include "data/catalog.h"
#include "data/dataset.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/note.h"
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_CAP 4096
#define MAX_DOWNLOAD_BYTES ((curl_off_t)1 << 30) /* no dataset file is near this */

static void to_hex(const unsigned char *digest, unsigned len, char *hex) {
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < len; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[2 * len] = '\0';
}

cn_status cn_file_md5(const char *path, char hex[33]) {
    FILE *f = fopen(path, "rb");
    if (!f) return cn_fail(CN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_md5(), NULL)) {
        EVP_MD_CTX_free(ctx);
        fclose(f);
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: OpenSSL refused to compute MD5", path);
    }
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(ctx, buf, n);
    int read_error = ferror(f);
    fclose(f);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, digest, &len);
    EVP_MD_CTX_free(ctx);
    if (read_error) return cn_fail(CN_ERR_IO, "%s: read error", path);
    to_hex(digest, len, hex);
    return CN_OK;
}

static cn_status make_dirs(const char *dir) {
    char path[PATH_CAP];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return cn_fail(CN_ERR_ARG, "%s: path too long", dir);
    for (char *p = path + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return cn_fail(CN_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
            *p = saved;
            if (!saved) break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cn_fail(CN_ERR_IO, "%s: not a directory", dir);
    return CN_OK;
}

typedef struct {
    cn_atomic_file *out;
    EVP_MD_CTX *md;
    int write_failed, too_big;
    int show, drawn;
    const char *label;
    double start, last_draw;
    curl_off_t received;
} transfer;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *user) {
    transfer *t = user;
    size_t n = size * nmemb;
    if (t->received + (curl_off_t)n > MAX_DOWNLOAD_BYTES) { t->too_big = 1; return 0; }
    if (cn_atomic_write(t->out, data, n)) { t->write_failed = 1; return 0; }
    EVP_DigestUpdate(t->md, data, n);
    t->received += (curl_off_t)n;
    return n;
}

/* "9.9 MB" / "28.9 kB" */
static void human_size(double bytes, char *buf, size_t size) {
    if (bytes >= 1e6) snprintf(buf, size, "%.1f MB", bytes / 1e6);
    else snprintf(buf, size, "%.1f kB", bytes / 1e3);
}

/* A progress line for the note handler (CN_NOTE_PROGRESS), which draws it in place. */
static void draw_bar(transfer *t, curl_off_t now, curl_off_t total) {
    double elapsed = now_seconds() - t->start;
    char done[32], all[32], rate[32];
    human_size((double)now, done, sizeof done);
    human_size((double)total, all, sizeof all);
    human_size(elapsed > 0 ? (double)now / elapsed : 0.0, rate, sizeof rate);
    if (total > 0) {
        char bar[31];
        int filled = (int)(30.0 * (double)now / (double)total);
        if (filled > 30) filled = 30;
        for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
        bar[30] = '\0';
        char line[256];
        snprintf(line, sizeof line, "%-28s [%s] %3d%% %s of %s  %s/s", t->label, bar,
                 (int)(100.0 * (double)now / (double)total), done, all, rate);
        cn_note(CN_NOTE_PROGRESS, "%s", line);
    } else {
        cn_note(CN_NOTE_PROGRESS, "%-28s %s  %s/s", t->label, done, rate);
    }
    t->drawn = 1;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)ultotal; (void)ulnow;
    transfer *t = user;
    if (t->show) {
        double now = now_seconds();
        if ((dlnow > 0 || dltotal > 0) && now - t->last_draw >= 0.1) {
            t->last_draw = now;
            draw_bar(t, dlnow, dltotal);
        }
    }
    return 0;
}

/* Downloads url to path (atomically: core/atomic_file.h), checking the MD5 before
 * the file takes its name. The error message is set on failure. With `show`,
 * progress lines go to the note handler while it runs, then the finished bar,
 * the end of the progress display (an empty progress note) and one info note. */
static cn_status fetch(const char *url, const char *path, const char *expected_md5, const char *label,
                       int show, const char *dir) {
    cn_atomic_file out;
    cn_status st = cn_atomic_begin(&out, path);
    if (st) return st;
    transfer t = {.out = &out, .md = EVP_MD_CTX_new(), .show = show, .label = label, .start = now_seconds()};
    CURL *curl = curl_easy_init();
    if (!t.md || !curl || !EVP_DigestInit_ex(t.md, EVP_md5(), NULL)) {
        cn_atomic_abort(&out);
        EVP_MD_CTX_free(t.md);
        if (curl) curl_easy_cleanup(curl);
        return cn_fail(CN_ERR_UNSUPPORTED, "cannot initialise libcurl or OpenSSL MD5");
    }
    char curl_error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* bytes/s ... */
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);    /* ... sustained this many seconds */
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "convnet (libcurl)");
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(t.md, digest, &len);
    EVP_MD_CTX_free(t.md);
    if (show && rc == CURLE_OK) draw_bar(&t, t.received, t.received);
    if (show && t.drawn) cn_note(CN_NOTE_PROGRESS, "%s", "");
    if (rc != CURLE_OK) {
        if (t.write_failed) st = out.status;
        else if (t.too_big) st = cn_fail(CN_ERR_NETWORK, "%s: more than %lld bytes, expected a dataset file", url,
                                         (long long)MAX_DOWNLOAD_BYTES);
        else st = cn_fail(CN_ERR_NETWORK, "%s: %s", url, curl_error[0] ? curl_error : curl_easy_strerror(rc));
    } else {
        char got[2 * EVP_MAX_MD_SIZE + 1];
        to_hex(digest, len, got);
        if (strcmp(got, expected_md5))
            st = cn_fail(CN_ERR_CHECKSUM, "%s: MD5 %s does not match the published %s (download deleted from %s)",
                         url, got, expected_md5, dir);
    }
    if (st != CN_OK) {
        cn_atomic_abort(&out);
        return st;
    }
    if ((st = cn_atomic_commit(&out))) return st;
    if (show) {
        char size[32];
        human_size((double)t.received, size, sizeof size);
        cn_note(CN_NOTE_INFO, "downloaded %s (%s) from %s", label, size, url);
    }
    return CN_OK;
}

cn_status cn_dataset_download(const char *name, const char *dir, int show_progress) {
    const cn_dataset_info *info = cn_dataset_info_find(name);
    if (!info) {
        if (name && !strcmp(name, "idx"))
            return cn_fail(CN_ERR_ARG, "dataset 'idx' has no download source: put the four IDX files in --data DIR");
        return cn_fail(CN_ERR_ARG, "unknown dataset '%s': expected one of mnist, fashion-mnist, kmnist",
                       name ? name : "(null)");
    }
    char target[PATH_CAP];
    if (dir && *dir) {
        if (snprintf(target, sizeof target, "%s", dir) >= (int)sizeof target)
            return cn_fail(CN_ERR_ARG, "%s: path too long", dir);
    } else {
        cn_status st = cn_dataset_default_dir(info->name, target, sizeof target);
        if (st != CN_OK) return st;
    }
    struct stat existing;
    int created = stat(target, &existing) != 0;
    cn_status st = make_dirs(target);
    if (st != CN_OK) return st;

    /* CONVNET_MIRROR replaces torchvision's mirror list. */
    char override[PATH_CAP];
    const char *mirrors[CN_DATASET_MAX_MIRRORS + 1] = {0};
    const char *env = getenv("CONVNET_MIRROR");
    if (env && *env) {
        size_t n = strlen(env);
        if (n + 2 > sizeof override) return cn_fail(CN_ERR_ARG, "CONVNET_MIRROR: longer than %zu bytes", sizeof override - 2);
        snprintf(override, sizeof override, "%s%s", env, env[n - 1] == '/' ? "" : "/");
        mirrors[0] = override;
    } else {
        for (int m = 0; m < CN_DATASET_MAX_MIRRORS && info->mirrors[m]; m++) mirrors[m] = info->mirrors[m];
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return cn_fail(CN_ERR_UNSUPPORTED, "libcurl failed to initialise");
    st = CN_OK;
    for (int i = 0; i < CN_DATASET_FILES && st == CN_OK; i++) {
        char file[128], final_path[PATH_CAP + 160];
        snprintf(file, sizeof file, "%s.gz", cn_dataset_file_names[i]);
        snprintf(final_path, sizeof final_path, "%s/%s", target, file);
        char have[33];
        if (access(final_path, F_OK) == 0 && cn_file_md5(final_path, have) == CN_OK && !strcmp(have, info->md5[i]))
            continue;
        char errors[1024] = "";
        size_t elen = 0;
        int all_checksum = 1;
        st = CN_ERR_NETWORK;
        for (int m = 0; mirrors[m]; m++) {
            char url[PATH_CAP + 160];
            snprintf(url, sizeof url, "%s%s", mirrors[m], file);
            cn_status s = fetch(url, final_path, info->md5[i], file, show_progress, target);
            if (s == CN_OK) {
                st = CN_OK;
                break;
            }
            if (s == CN_ERR_IO) { st = s; goto next_file; } /* local problem: other mirrors will not help */
            if (s != CN_ERR_CHECKSUM) all_checksum = 0;
            if (elen < sizeof errors)
                elen += (size_t)snprintf(errors + elen, sizeof errors - elen, "%s%s", elen ? "; " : "", cn_last_error());
        }
        if (st != CN_OK) {
            if (all_checksum) st = cn_fail(CN_ERR_CHECKSUM, "%s", errors);
            else
                st = cn_fail(CN_ERR_NETWORK, "cannot download %s into %s (%s); without network, copy "
                             "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
                             "t10k-labels-idx1-ubyte.gz into %s by hand, or point CONVNET_MIRROR at a copy "
                             "(e.g. file:///path/to/%s/)", file, target, errors, target, info->name);
        }
    next_file:;
    }
    curl_global_cleanup();
    if (st != CN_OK && created) rmdir(target); /* leave no empty directory behind (fails if not empty) */
    return st;
}
