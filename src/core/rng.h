/* Explicit, seedable random number generator (xoshiro256**), no global state.
 * The state is plain data so that it can be saved in checkpoints. */
#ifndef CN_CORE_RNG_H
#define CN_CORE_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; } cn_rng;

void cn_rng_seed(cn_rng *rng, uint64_t seed);

static inline uint64_t cn_rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* The next 64 random bits (inline: shuffling and augmentation draw many). */
static inline uint64_t cn_rng_next(cn_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = cn_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = cn_rng_rotl(s[3], 45);
    return result;
}
/* Uniform float in [0, 1) with 24 random bits. */
float cn_rng_uniform(cn_rng *rng);
/* Uniform double in [0, 1) with 53 random bits. */
double cn_rng_uniform_double(cn_rng *rng);
/* Uniform integer in [0, n), unbiased; n > 0. */
uint64_t cn_rng_below(cn_rng *rng, uint64_t n);
/* Standard normal (Box-Muller). */
double cn_rng_normal(cn_rng *rng);
/* Independent stream derived from this one (for threads or sub-tasks). */
cn_rng cn_rng_split(cn_rng *rng);

#endif
