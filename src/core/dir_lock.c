/* Output directory lock: flock on DIR/.lock holding the owner's pid (see dir_lock.h). */
#include "core/dir_lock.h"
#include "core/error.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_NAME ".lock"

/* The pid the holder wrote, or 0 when it cannot be read (yet). */
static long holder_pid(int fd) {
    char text[32] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0) return 0;
    text[n] = '\0';
    char *end;
    long pid = strtol(text, &end, 10);
    return end != text && (*end == '\n' || *end == '\0') && pid > 0 ? pid : 0;
}

cn_status cn_dir_lock_acquire(const char *dir, cn_dir_lock *lock) {
    lock->fd = -1;
    char path[4200];
    if (snprintf(path, sizeof path, "%s/%s", dir, LOCK_NAME) >= (int)sizeof path)
        return cn_fail(CN_ERR_ARG, "%.200s...: path too long for a lock file", dir);
    /* O_NONBLOCK and O_NOFOLLOW: a FIFO or a symlink planted as .lock neither blocks nor redirects the write. */
    int fd = open(path, O_RDWR | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0644);
    if (fd < 0) return cn_fail(CN_ERR_IO, "%s: cannot create the lock file: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return cn_fail(CN_ERR_IO, "%s: not a regular file; expected convnet's lock file", path);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        long pid = e == EWOULDBLOCK ? holder_pid(fd) : 0;
        close(fd);
        if (e != EWOULDBLOCK) return cn_fail(CN_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
        if (pid) return cn_fail(CN_ERR_IO, "%s is in use by another convnet run (pid %ld)", dir, pid);
        return cn_fail(CN_ERR_IO, "%s is in use by another convnet run", dir);
    }
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);   /* also drops the lock */
        return cn_fail(CN_ERR_IO, "%s: cannot write the lock file: %s", path, strerror(e));
    }
    lock->fd = fd;
    return CN_OK;
}

void cn_dir_lock_release(cn_dir_lock *lock) {
    if (!lock || lock->fd < 0) return;
    close(lock->fd);
    lock->fd = -1;
}
