#include "data/loader.h"
#include "core/error.h"
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

/* Scratch that fits on each thread's stack (28x28 needs 3-17 kB). */
#define STACK_SCRATCH (32 * 1024)

uint64_t cn_loader_image_seed(uint64_t seed, int index) {
    /* Two rounds of a 64-bit finaliser (murmur3 fmix64) over the pair. */
    uint64_t h = seed ^ (0x9E3779B97F4A7C15ull * ((uint64_t)(uint32_t)index + 1));
    for (int round = 0; round < 2; round++) {
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 33;
    }
    return h;
}

void cn_loader_fill(const cn_split *src, const int *indices, int count, const float *mean, const float *std,
                    const cn_augment *aug, uint64_t seed, float *out, int *labels) {
    CN_ASSERT(src && indices && out && count >= 0);
    const int channels = src->channels > 0 ? src->channels : 1;
    CN_ASSERT(channels <= CN_MAX_CHANNELS);
    const size_t plane = (size_t)src->rows * (size_t)src->cols, pixels = plane * (size_t)channels;
    for (int i = 0; i < count; i++) CN_ASSERT(indices[i] >= 0 && indices[i] < src->count);
    cn_normalizer norms[CN_MAX_CHANNELS];
    for (int c = 0; c < channels; c++) cn_normalizer_init(&norms[c], mean[c], std[c]);
    const int augment = aug && aug->enabled;
    const size_t scratch_size = augment ? cn_augment_scratch_size(aug, src->rows, src->cols) : 0;

    if (!augment) {
        #pragma omp parallel for schedule(static)
        for (int i = 0; i < count; i++) {
            const uint8_t *img = src->images + (size_t)indices[i] * pixels;
            float *dst = out + (size_t)i * pixels;
            for (int c = 0; c < channels; c++)
                for (size_t p = c * plane; p < (c + 1) * plane; p++) dst[p] = norms[c].lut[img[p]];
        }
    } else {
        #pragma omp parallel
        {
            alignas(64) unsigned char stack_scratch[STACK_SCRATCH];
            void *scratch = scratch_size <= sizeof stack_scratch ? (void *)stack_scratch : aligned_alloc(64, (scratch_size + 63) & ~(size_t)63);
            #pragma omp for schedule(static)
            for (int i = 0; i < count; i++) {
                const uint8_t *img = src->images + (size_t)indices[i] * pixels;
                float *dst = out + (size_t)i * pixels;
                if (!scratch) { /* out of memory for a huge image: pass it through unaugmented */
                    for (int c = 0; c < channels; c++)
                        for (size_t p = c * plane; p < (c + 1) * plane; p++) dst[p] = norms[c].lut[img[p]];
                    continue;
                }
                for (int c = 0; c < channels; c++) {
                    cn_rng rng;   /* the same draws for every plane */
                    cn_rng_seed(&rng, cn_loader_image_seed(seed, indices[i]));
                    cn_augment_image(aug, img + c * plane, src->rows, src->cols, &norms[c], &rng, scratch, dst + c * plane);
                }
            }
            if (scratch != (void *)stack_scratch) free(scratch);
        }
    }
    if (labels)
        for (int i = 0; i < count; i++) labels[i] = src->labels[indices[i]];
}
