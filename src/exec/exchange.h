/* What a session needs from the other processes of a data-parallel run, apart from
 * how they talk (dist/dist.c implements it on MPI; tests may implement it in memory).
 *
 * R processes (ranks) share each global batch of B samples: rank r runs the samples
 * cn_exchange_share(B, r, R) of it, split over its own threads. Everything a rank
 * combines with the others goes through these calls, which every rank makes in the
 * same order; each returns on every rank with the same result. */
#ifndef CN_EXEC_EXCHANGE_H
#define CN_EXEC_EXCHANGE_H
#include <stddef.h>

typedef struct cn_exchange cn_exchange;
struct cn_exchange {
    int rank, ranks;
    void *ctx;
    /* buf holds `rows` rows of `width` doubles in global order; this rank's rows
     * cn_exchange_share(rows, rank, ranks) are filled; on return every row is. */
    void (*gather_rows)(const cn_exchange *x, double *buf, int rows, size_t width);
    /* buf[0..n) = the sum over the ranks of each rank's buf, added in the tree order of
     * exec/tree_sum.h over rank index (an all-reduce whose order is fixed). */
    void (*sum_floats)(const cn_exchange *x, float *buf, size_t n);
    /* buf[0..n) = the sum over the ranks (all-reduce, MPI_SUM: any order). */
    void (*sum_doubles)(const cn_exchange *x, double *buf, size_t n);
    /* buf[0..n) = rank 0's buf on every rank. */
    void (*broadcast_floats)(const cn_exchange *x, float *buf, size_t n);
};

/* Rank r's share of n items (samples, rows): [*first, *first + *count). Contiguous, in
 * rank order, sizes differing by at most one. */
static inline void cn_exchange_share(int n, int r, int R, int *first, int *count) {
    int b0 = (int)((long)n * r / R), b1 = (int)((long)n * (r + 1) / R);
    *first = b0;
    *count = b1 - b0;
}

#endif
