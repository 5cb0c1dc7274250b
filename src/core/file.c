#include "core/file.h"
#include "core/error.h"
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

cn_status cn_make_dir(const char *dir) {
    struct stat sb;
    if (mkdir(dir, 0755) == 0) return CN_OK;
    int err = errno;
    if (err == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return CN_OK;
    return cn_fail(CN_ERR_IO, "%s: cannot create directory: %s", dir, err == EEXIST ? "a file of that name exists" : strerror(err));
}
