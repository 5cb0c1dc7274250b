/* See replace_file.h. */
#include "core/replace_file.h"
#include "core/error.h"
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

FILE *cn_replace_open(const char *path, char *tmp, size_t tmp_size) {
    if ((size_t)snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid()) >= tmp_size) {
        cn_fail(CN_ERR_ARG, "%s: path too long", path);
        return NULL;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) cn_fail(CN_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    return f;
}

cn_status cn_replace_commit(FILE *f, const char *tmp, const char *path) {
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0) return CN_OK;
    cn_status st = cn_fail(CN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    remove(tmp);
    return st;
}
