/* Regular-file checks for inputs (see file_open.h). */
#include "core/file_open.h"
#include "core/error.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t mode) {
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a plain file";
}

static cn_status not_regular(const char *path, mode_t mode, const char *what) {
    return cn_fail(CN_ERR_IO, "%s: not a regular file (%s); expected %s", path, kind_of(mode), what ? what : "a file");
}

cn_status cn_open_regular(const char *path, const char *what, int *fd) {
    *fd = -1;
    int f = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (f < 0) return cn_fail(CN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(f, &sb) != 0) {
        int e = errno;
        close(f);
        return cn_fail(CN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(f);
        return not_regular(path, sb.st_mode, what);
    }
    int flags = fcntl(f, F_GETFL);
    if (flags < 0 || fcntl(f, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(f);
        return cn_fail(CN_ERR_IO, "%s: cannot set blocking reads: %s", path, strerror(e));
    }
    *fd = f;
    return CN_OK;
}

cn_status cn_fopen_regular(const char *path, const char *what, FILE **out) {
    *out = NULL;
    int fd;
    cn_status st = cn_open_regular(path, what, &fd);
    if (st) return st;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return cn_fail(CN_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    *out = f;
    return CN_OK;
}

cn_status cn_check_regular(const char *path, const char *what) {
    struct stat sb;
    if (stat(path, &sb) != 0) return cn_fail(CN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    return S_ISREG(sb.st_mode) ? CN_OK : not_regular(path, sb.st_mode, what);
}
