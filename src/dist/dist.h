/* The processes of an `mpirun` job (Open MPI), as a cn_exchange (exec/exchange.h).
 *
 * A process started by mpirun finds it out from its environment (OMPI_COMM_WORLD_SIZE);
 * only then is MPI initialised, on the first call below, with MPI_THREAD_FUNNELED:
 * every MPI call comes from the thread that initialised it (sessions call the exchange
 * from thread 0 of their team, which is that thread). Outside mpirun nothing here
 * touches MPI, and a process is rank 0 of 1.
 *
 * A rank that dies ends the job: MPI's default error handler aborts, and mpirun kills
 * the other ranks and names the one that died. */
#ifndef CN_DIST_DIST_H
#define CN_DIST_DIST_H
#include "convnet.h"
#include "exec/exchange.h"
#include <stdbool.h>

/* The job's ranks when there are two or more (MPI is initialised on the first call),
 * else NULL. */
const cn_exchange *cn_dist_world(void);
/* True when started by mpirun (whether or not MPI is initialised yet). */
bool cn_dist_under_mpirun(void);
/* This process's rank and the number of ranks (0 and 1 outside mpirun). */
int cn_dist_rank(void);
int cn_dist_size(void);
/* True on every rank when `flag` is true on any rank (1 rank: flag). */
bool cn_dist_any(bool flag);
/* Ends this process's part in the job before it exits: MPI_Finalize when exit_code is 0,
 * else MPI_Abort (a rank that fails alone must not leave the others waiting). Nothing
 * when MPI was not initialised. */
void cn_dist_finish(int exit_code);

/* Time spent in the exchange since the start: all-reduces of sums (the gradients) and
 * gathers of rows (batch-norm sums, losses), with their counts. */
/* cn_dist_stats: convnet.h */
cn_dist_stats cn_dist_get_stats(void);

#endif
