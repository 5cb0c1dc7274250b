#include "core/rng.h"
#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void cn_rng_seed(cn_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

float cn_rng_uniform(cn_rng *rng) { return (float)(cn_rng_next(rng) >> 40) * 0x1.0p-24f; }
double cn_rng_uniform_double(cn_rng *rng) { return (double)(cn_rng_next(rng) >> 11) * 0x1.0p-53; }

uint64_t cn_rng_below(cn_rng *rng, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = cn_rng_next(rng); while (x >= limit);
    return x % n;
}

double cn_rng_normal(cn_rng *rng) {
    double u1 = cn_rng_uniform_double(rng), u2 = cn_rng_uniform_double(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

cn_rng cn_rng_split(cn_rng *rng) {
    cn_rng child;
    cn_rng_seed(&child, cn_rng_next(rng));
    return child;
}
