/* Open MPI behind exec/exchange.h: the world communicator, initialised on first use
 * when the process was started by mpirun. */
#include "dist/dist.h"
#include <mpi.h>
#include "exec/tree_sum.h"
#include <stdlib.h>

static int initialised;          /* 0: not yet looked, 1: MPI initialised, -1: not under mpirun */
static int world_rank, world_size = 1;
static cn_dist_stats stats;

bool cn_dist_under_mpirun(void) {
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    return n && *n;
}

static void init_once(void) {
    if (initialised) return;
    if (!cn_dist_under_mpirun()) { initialised = -1; return; }
    int provided;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    initialised = 1;
}

int cn_dist_rank(void) { init_once(); return world_rank; }
int cn_dist_size(void) { init_once(); return world_size; }

static void gather_rows(const cn_exchange *x, double *buf, int rows, size_t width) {
    (void)x;
    double t0 = MPI_Wtime();
    int counts[world_size], displs[world_size];
    for (int r = 0; r < world_size; r++) {
        int first, count;
        cn_exchange_share(rows, r, world_size, &first, &count);
        counts[r] = count * (int)width;
        displs[r] = first * (int)width;
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_DOUBLE, MPI_COMM_WORLD);
    stats.gather_seconds += MPI_Wtime() - t0;
    stats.gathers++;
}

/* MPI counts are ints: large buffers go in pieces. */
#define PIECE (1 << 30)
#define SUM_PIECE ((size_t)1 << 24)   /* floats per step of sum_floats (its buffer's size) */

/* The gradient all-reduce in a fixed order (exchange.h), with a ring all-reduce's traffic:
 * the buffer is cut into R slices (cn_exchange_share); rank j receives every rank's slice j
 * (MPI_Alltoallv), adds them up in exec/tree_sum.h's tree order over rank index, the order
 * in which one process adds its threads' gradients, and the summed slices are all-gathered
 * (MPI_Allgatherv). Each rank sends and receives 2 (R-1)/R of the buffer, as in a ring. */
static void sum_floats(const cn_exchange *x, float *buf, size_t n) {
    (void)x;
    static float *all;
    static size_t all_size;
    double t0 = MPI_Wtime();
    int R = world_size, me = world_rank;
    size_t piece = n < SUM_PIECE ? n : SUM_PIECE;
    if (all_size < piece + (size_t)R) {
        free(all);
        all = malloc((piece + (size_t)R) * sizeof *all);
        all_size = all ? piece + (size_t)R : 0;
    }
    for (size_t i = 0; i < n; i += piece) {
        int count = (int)(n - i < piece ? n - i : piece);
        if (!all) {   /* no room: MPI's own order (within rounding of the tree's) */
            MPI_Allreduce(MPI_IN_PLACE, buf + i, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            continue;
        }
        int counts[R], displs[R], mine[R], at[R], first, size;
        for (int r = 0; r < R; r++) cn_exchange_share(count, r, R, &displs[r], &counts[r]);
        cn_exchange_share(count, me, R, &first, &size);
        for (int r = 0; r < R; r++) { mine[r] = size; at[r] = r * size; }
        MPI_Alltoallv(buf + i, counts, displs, MPI_FLOAT, all, mine, at, MPI_FLOAT, MPI_COMM_WORLD);
        float *bufs[R];
        for (int r = 0; r < R; r++) bufs[r] = all + (size_t)r * size;
        cn_tree_sum(bufs, R, 0, (size_t)size);
        MPI_Allgatherv(all, size, MPI_FLOAT, buf + i, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
    }
    stats.sum_seconds += MPI_Wtime() - t0;
    stats.sums++;
    stats.sum_floats += (double)n;
}

static void sum_doubles(const cn_exchange *x, double *buf, size_t n) {
    (void)x;
    for (size_t i = 0; i < n; i += PIECE)
        MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)(n - i < PIECE ? n - i : PIECE), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

static void broadcast_floats(const cn_exchange *x, float *buf, size_t n) {
    (void)x;
    for (size_t i = 0; i < n; i += PIECE)
        MPI_Bcast(buf + i, (int)(n - i < PIECE ? n - i : PIECE), MPI_FLOAT, 0, MPI_COMM_WORLD);
}

const cn_exchange *cn_dist_world(void) {
    static cn_exchange world;
    init_once();
    if (world_size < 2) return NULL;
    world = (cn_exchange){ .rank = world_rank, .ranks = world_size, .gather_rows = gather_rows,
                           .sum_floats = sum_floats, .sum_doubles = sum_doubles,
                           .broadcast_floats = broadcast_floats };
    return &world;
}

bool cn_dist_any(bool flag) {
    init_once();
    if (world_size < 2) return flag;
    int v = flag;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return v != 0;
}

void cn_dist_finish(int exit_code) {
    if (initialised != 1) return;
    int finalized;
    MPI_Finalized(&finalized);
    if (finalized) return;
    if (exit_code) MPI_Abort(MPI_COMM_WORLD, exit_code);
    MPI_Finalize();
}

cn_dist_stats cn_dist_get_stats(void) { return stats; }
