/* An exclusive lock on an output directory for the length of a run, so that
 * two runs never write into the same directory (metrics.csv mixing the epochs
 * of both, the last writer's checkpoint winning).
 *
 * flock(2) on DIR/.lock, which holds the owner's pid as text for the message
 * the loser gets. The kernel drops the lock when the process ends, however it
 * ends (kill -9 included), so a stale .lock file never blocks a later run; the
 * file itself stays (removing it would let a third run lock a fresh file while
 * a second still holds the old one).
 *
 * Taken by cn_train on its output directory (`convnet train --out`; each run
 * directory of `convnet sweep`, whose runs go through cn_train; with MPI rank 0
 * only: the other ranks write nothing there). */
#ifndef CN_CORE_DIR_LOCK_H
#define CN_CORE_DIR_LOCK_H
#include "convnet.h"

typedef struct {
    int fd;   /* -1: not held */
} cn_dir_lock;

/* Takes the lock on the existing directory `dir` without waiting. Held by
 * another process: CN_ERR_IO, "DIR is in use by another convnet run (pid N)",
 * and nothing in DIR is changed. Other failures (cannot create DIR/.lock, it
 * is not a regular file): CN_ERR_IO naming the path. *lock is { -1 } on failure. */
cn_status cn_dir_lock_acquire(const char *dir, cn_dir_lock *lock);
/* Releases the lock (no-op if not held). */
void cn_dir_lock_release(cn_dir_lock *lock);

#endif
