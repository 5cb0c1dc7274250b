/* The decoded-image cache of gzip IDX splits. See idx_cache.h. */
#include "data/idx_cache.h"
#include "data/image_cache.h"
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Adds a file's stamp (path, size, mtime) and last 8 bytes (a gzip trailer: CRC-32 and
 * length) to the key; 0 when the file cannot be read or is not gzip. */
static int add_file(uint64_t *key, const char *path) {
    struct stat sb;
    unsigned char head[2], tail[8];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int ok = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= 18 &&
             fread(head, 1, 2, f) == 2 && head[0] == 0x1f && head[1] == 0x8b &&
             fseek(f, -8, SEEK_END) == 0 && fread(tail, 1, 8, f) == 8;
    fclose(f);
    if (!ok) return 0;
    *key = cn_cache_key_add_file_stamp(*key, path, cn_file_stamp_of(&sb));
    *key = cn_cache_key_add(*key, tail, sizeof tail);
    return 1;
}

int cn_idx_cache_key(const char *images_path, const char *labels_path, int num_classes, uint64_t *key,
                     char *cache_path, size_t cap) {
    static const char tag[] = "idx split v1";
    uint64_t k = cn_cache_key_add(CN_CACHE_KEY_INIT, tag, sizeof tag);
    k = cn_cache_key_add(k, &num_classes, sizeof num_classes);
    if (!add_file(&k, images_path)) return 0;
    /* the labels may be raw: then their stamp alone (no trailer) */
    if (!add_file(&k, labels_path)) {
        struct stat sb;
        if (stat(labels_path, &sb) != 0) return 0;
        k = cn_cache_key_add_file_stamp(k, labels_path, cn_file_stamp_of(&sb));
    }
    const char *slash = strrchr(images_path, '/');
    int dir_len = slash ? (int)(slash - images_path) : 1;
    const char *dir = slash ? images_path : ".", *name = slash ? slash + 1 : images_path;
    int n = snprintf(cache_path, cap, "%.*s/.convnet-cache-%s", dir_len, dir, name);
    if (n < 0 || (size_t)n >= cap) return 0;
    *key = k;
    return 1;
}

int cn_idx_cache_read(const char *cache_path, uint64_t key, int num_classes, cn_split *out) {
    int skipped;
    if (!cn_image_cache_read(cache_path, key, out, &skipped)) return 0;
    int ok = out->channels == 1 && skipped == 0;
    for (int i = 0; ok && num_classes > 0 && i < out->count; i++) ok = out->labels[i] < num_classes;
    if (!ok) cn_split_free(out);
    return ok;
}
