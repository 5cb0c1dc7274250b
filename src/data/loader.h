/* Batch assembly: uint8 images -> normalised float batches, augmented in parallel. */
#ifndef CN_DATA_LOADER_H
#define CN_DATA_LOADER_H
#include "data/augment.h"
#include "data/dataset.h"
#include <stdint.h>

/* Fills a batch: out (count, channels, rows, cols) normalised floats, labels (count).
 * Image i is src->images[indices[i]]; out = (pixel/255 - mean[c])/std[c] in
 * float32 for channel c, exactly as torchvision's ToTensor + Normalize. If
 * aug && aug->enabled, each image is augmented (augment.h) with an RNG seeded
 * from (seed, indices[i]) — the same draws for every channel, so the planes
 * move together —
 * mix a per-epoch value into `seed` to vary it between epochs — so the batch
 * does not depend on the thread count or on the batch composition. Filled in
 * parallel with OpenMP (static schedule). labels may be NULL. Indices must be
 * in 0..src->count-1 (checked: a programmer error aborts). */
void cn_loader_fill(const cn_split *src, const int *indices, int count, const float *mean, const float *std,
                    const cn_augment *aug, uint64_t seed, float *out, int *labels);

/* The per-image seed cn_loader_fill uses: a hash of (seed, index). */
uint64_t cn_loader_image_seed(uint64_t seed, int index);

#endif
