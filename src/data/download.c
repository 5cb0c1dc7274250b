#include "data/download.h"
#include "progress.h"
#include "core/note.h"
#include "data/catalog.h"
#include "data/dataset.h"
#include "core/error.h"
#include "core/file_open.h"
#include "io/safetensors.h"
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
    FILE *f;
    cn_status st = cn_fopen_regular(path, "a dataset file", &f);   /* /dev/zero would be hashed forever */
    if (st) return st;
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
    FILE *out;
    EVP_MD_CTX *md;
    int write_failed, too_big;
    int show, tty;
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
    if (fwrite(data, 1, n, t->out) != n) { t->write_failed = 1; return 0; }
    EVP_DigestUpdate(t->md, data, n);
    t->received += (curl_off_t)n;
    return n;
}

/* "9.9 MB" / "28.9 kB" */
static void human_size(double bytes, char *buf, size_t size) {
    if (bytes >= 1e6) snprintf(buf, size, "%.1f MB", bytes / 1e6);
    else snprintf(buf, size, "%.1f kB", bytes / 1e3);
}

static void draw_bar(const transfer *t, curl_off_t now, curl_off_t total, int final) {
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
        cn_progress_draw_line(line);
    } else {
        char line[256];
        snprintf(line, sizeof line, "%-28s %s  %s/s", t->label, done, rate);
        cn_progress_draw_line(line);
    }
    if (final) cn_note(CN_NOTE_PROGRESS, "\n");
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)ultotal; (void)ulnow;
    transfer *t = user;
    if (t->show && t->tty) {
        double now = now_seconds();
        if ((dlnow > 0 || dltotal > 0) && now - t->last_draw >= 0.1) {
            t->last_draw = now;
            draw_bar(t, dlnow, dltotal, 0);
        }
    }
    return 0;
}

/* Downloads url to tmp_path, checking the MD5. The error message is set on failure. */
static cn_status fetch(const char *url, const char *tmp_path, const char *expected_md5, const char *label,
                       int show, const char *dir) {
    FILE *out = fopen(tmp_path, "wb");
    if (!out) return cn_fail(CN_ERR_IO, "%s: cannot create: %s", tmp_path, strerror(errno));
    transfer t = {.out = out, .md = EVP_MD_CTX_new(), .show = show, .tty = cn_progress_columns() > 0,
                  .label = label, .start = now_seconds()};
    CURL *curl = curl_easy_init();
    if (!t.md || !curl || !EVP_DigestInit_ex(t.md, EVP_md5(), NULL)) {
        fclose(out); remove(tmp_path);
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
    int close_failed = fclose(out) != 0;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(t.md, digest, &len);
    EVP_MD_CTX_free(t.md);
    if (show && t.tty && rc == CURLE_OK) draw_bar(&t, t.received, t.received, 1);
    else if (show && t.tty && t.last_draw > 0) cn_note(CN_NOTE_PROGRESS, "\n");
    cn_status st = CN_OK;
    if (rc != CURLE_OK) {
        if (t.write_failed) st = cn_fail(CN_ERR_IO, "%s: cannot write: %s", tmp_path, strerror(errno));
        else if (t.too_big) st = cn_fail(CN_ERR_NETWORK, "%s: more than %lld bytes, expected a dataset file", url,
                                         (long long)MAX_DOWNLOAD_BYTES);
        else st = cn_fail(CN_ERR_NETWORK, "%s: %s", url, curl_error[0] ? curl_error : curl_easy_strerror(rc));
    } else if (close_failed) {
        st = cn_fail(CN_ERR_IO, "%s: cannot write: %s", tmp_path, strerror(errno));
    } else {
        char got[2 * EVP_MAX_MD_SIZE + 1];
        to_hex(digest, len, got);
        if (strcmp(got, expected_md5))
            st = cn_fail(CN_ERR_CHECKSUM, "%s: MD5 %s does not match the published %s (download deleted from %s)",
                         url, got, expected_md5, dir);
    }
    if (st != CN_OK) remove(tmp_path);
    else if (show && !t.tty)
    {
        char size[32];
        human_size((double)t.received, size, sizeof size);
        cn_note(CN_NOTE_WARNING, "downloaded %s (%s) from %s", label, size, url);
    }
    return st;
}

/* The mirrors to try: CONVNET_MIRROR (a URL prefix) replaces `defaults`. */
static cn_status mirror_list(const char *const *defaults, char *override, size_t size,
                             const char *mirrors[CN_DATASET_MAX_MIRRORS + 1]) {
    memset(mirrors, 0, (CN_DATASET_MAX_MIRRORS + 1) * sizeof *mirrors);
    const char *env = getenv("CONVNET_MIRROR");
    if (env && *env) {
        size_t n = strlen(env);
        if (n + 2 > size) return cn_fail(CN_ERR_ARG, "CONVNET_MIRROR: longer than %zu bytes", size - 2);
        snprintf(override, size, "%s%s", env, env[n - 1] == '/' ? "" : "/");
        mirrors[0] = override;
    } else {
        for (int m = 0; m < CN_DATASET_MAX_MIRRORS && defaults[m]; m++) mirrors[m] = defaults[m];
    }
    return CN_OK;
}

/* target/file from the first mirror that has it with the right MD5 (kept if
 * already there). `by_hand` ends the message when no mirror works. */
static cn_status download_one(const char *file, const char *md5, const char *const *mirrors, const char *target,
                              int show_progress, const char *by_hand) {
    char final_path[PATH_CAP + 160], tmp_path[PATH_CAP + 200];
    snprintf(final_path, sizeof final_path, "%s/%s", target, file);
    char have[33];
    if (access(final_path, F_OK) == 0) {
        /* Something that is not a regular file (a device, a FIFO) is an error, not "missing". */
        cn_status st = cn_check_regular(final_path, "a dataset file");
        if (st != CN_OK) return st;
        if (cn_file_md5(final_path, have) == CN_OK && !strcmp(have, md5)) return CN_OK;
    }
    snprintf(tmp_path, sizeof tmp_path, "%s.part.%ld", final_path, (long)getpid());
    char errors[1024] = "";
    size_t elen = 0;
    int all_checksum = 1;
    for (int m = 0; mirrors[m]; m++) {
        char url[PATH_CAP + 160];
        snprintf(url, sizeof url, "%s%s", mirrors[m], file);
        cn_status s = fetch(url, tmp_path, md5, file, show_progress, target);
        if (s == CN_OK) {
            if (rename(tmp_path, final_path) == 0) return CN_OK;
            s = cn_fail(CN_ERR_IO, "%s: cannot rename to %s: %s", tmp_path, final_path, strerror(errno));
            remove(tmp_path);
            return s;
        }
        if (s == CN_ERR_IO) return s; /* local problem: other mirrors will not help */
        if (s != CN_ERR_CHECKSUM) all_checksum = 0;
        if (elen < sizeof errors)
            elen += (size_t)snprintf(errors + elen, sizeof errors - elen, "%s%s", elen ? "; " : "", cn_last_error());
    }
    if (all_checksum) return cn_fail(CN_ERR_CHECKSUM, "%s", errors);
    return cn_fail(CN_ERR_NETWORK, "cannot download %s into %s (%s); without network, %s", file, target, errors, by_hand);
}

cn_status cn_download_files(const char *const *files, const char *const *md5s, int count, const char *const *defaults,
                            const char *target, int show_progress, const char *by_hand) {
    struct stat existing;
    int created = stat(target, &existing) != 0;
    cn_status st = make_dirs(target);
    if (st != CN_OK) return st;
    cn_remove_stale_temporaries(target);   /* .part.<pid> of downloads that were killed */
    char override[PATH_CAP];
    const char *mirrors[CN_DATASET_MAX_MIRRORS + 1];
    if ((st = mirror_list(defaults, override, sizeof override, mirrors)) != CN_OK) return st;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return cn_fail(CN_ERR_UNSUPPORTED, "libcurl failed to initialise");
    for (int i = 0; i < count && st == CN_OK; i++)
        st = download_one(files[i], md5s[i], mirrors, target, show_progress, by_hand);
    curl_global_cleanup();
    if (st != CN_OK && created) rmdir(target); /* leave no empty directory behind (fails if not empty) */
    return st;
}

cn_status cn_dataset_download(const char *name, const char *dir, int show_progress) {
    return cn_dataset_download_files(name, dir, show_progress, (1u << CN_DATASET_FILES) - 1);
}

cn_status cn_dataset_download_files(const char *name, const char *dir, int show_progress, unsigned files_mask) {
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
    char files[CN_DATASET_FILES][128], by_hand[PATH_CAP + 400];
    const char *names[CN_DATASET_FILES], *md5s[CN_DATASET_FILES];
    int count = 0;
    for (int i = 0; i < CN_DATASET_FILES; i++) {
        if (!(files_mask & (1u << i))) continue;
        snprintf(files[count], sizeof files[count], "%s.gz", cn_dataset_file_names[i]);
        names[count] = files[count];
        md5s[count++] = info->md5[i];
    }
    snprintf(by_hand, sizeof by_hand, "copy train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
             "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz into %s by hand, or point CONVNET_MIRROR at a "
             "copy (e.g. file:///path/to/%s/)", target, info->name);
    return cn_download_files(names, md5s, count, info->mirrors, target, show_progress, by_hand);
}
