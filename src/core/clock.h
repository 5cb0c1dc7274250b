/* Monotonic wall-clock time, for the seconds an epoch took. */
#ifndef CN_CORE_CLOCK_H
#define CN_CORE_CLOCK_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double cn_now_seconds(void);

#endif
