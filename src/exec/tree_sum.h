/* One fixed order for adding up gradients, shared by the threads of a process and
 * by the ranks of a data-parallel run, so that results depend on the number of
 * workers (ranks x threads) alone and not on how they are split between processes.
 *
 * The order is a pairwise tree over worker index w = 0 .. n-1: at stride 1, 2, 4, ...
 * buf[w] += buf[w + stride] for every w that is a multiple of 2 * stride (and has
 * such a partner); the total ends in buf[0]. For ranks of T threads each, T a power
 * of two, the tree over a rank's own workers gives exactly the tree's node for that
 * block of workers, and the tree over the ranks' totals finishes the same sum: so
 * R ranks x T threads add the same numbers in the same order as one process of R*T
 * threads. With T not a power of two the blocks do not line up; results then agree
 * within rounding. For n = 2 it is buf[0] + buf[1], the order the code had before. */
#ifndef CN_EXEC_TREE_SUM_H
#define CN_EXEC_TREE_SUM_H
#include <stddef.h>

/* bufs[0][k] = the tree sum over w of bufs[w][k], for k in [k0, k1). The other
 * buffers are overwritten with partial sums. */
static inline void cn_tree_sum(float *const *bufs, int n, size_t k0, size_t k1) {
    for (int stride = 1; stride < n; stride *= 2)
        for (int w = 0; w + stride < n; w += 2 * stride) {
            float *dst = bufs[w];
            const float *src = bufs[w + stride];
            for (size_t k = k0; k < k1; k++) dst[k] += src[k];
        }
}

#endif
