#include "core/file.h"
#include "core/error.h"
#include "core/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cn_status cn_write_file_atomic(const char *path, const void *data, size_t size) {
    size_t plen = strlen(path);
    char *tmp = cn_calloc(plen + 32, 1);
    if (!tmp) return CN_ERR_NOMEM;
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        cn_status st = cn_fail(CN_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return st;
    }
    cn_status st = CN_OK;
    const unsigned char *bytes = data;
    size_t written = 0;
    while (written < size) {
        ssize_t n = write(fd, bytes + written, size - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { st = cn_fail(CN_ERR_IO, "%s: write failed after %zu bytes: %s", tmp, written, strerror(errno)); break; }
        written += (size_t)n;
    }
    if (st == CN_OK && fsync(fd) != 0) st = cn_fail(CN_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == CN_OK) st = cn_fail(CN_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (st == CN_OK && rename(tmp, path) != 0)
        st = cn_fail(CN_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (st != CN_OK) unlink(tmp);
    free(tmp);
    return st;
}

cn_status cn_make_dir(const char *dir) {
    struct stat sb;
    if (mkdir(dir, 0755) == 0) return CN_OK;
    int err = errno;
    if (err == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return CN_OK;
    return cn_fail(CN_ERR_IO, "%s: cannot create directory: %s", dir, err == EEXIST ? "a file of that name exists" : strerror(err));
}
