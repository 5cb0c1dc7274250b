/* Bilinear resizing of uint8 planes exactly as torchvision 0.14's
 * transforms.Resize((H, W)) does it on the PIL images ImageFolder yields:
 * PIL's Image.resize(BILINEAR), a separable triangle filter whose support
 * widens with the scale when shrinking (so downscaling averages, i.e. it is
 * antialiased; torchvision's antialias flag only affects tensors), weights
 * normalised per output pixel and rounded to 22-bit fixed point, a
 * horizontal pass into a uint8 intermediate, then a vertical pass, each
 * output rounded and clamped to 0..255 (Pillow's Resample.c). A side that
 * keeps its size skips its pass. */
#ifndef CN_DATA_RESIZE_H
#define CN_DATA_RESIZE_H
#include "convnet.h"
#include <stdint.h>

/* Resizes one plane src (sh, sw) into dst (dh, dw). All sides 1..65535.
 * CN_ERR_NOMEM on allocation failure (the only error). */
cn_status cn_resize_bilinear(const uint8_t *src, int sh, int sw, uint8_t *dst, int dh, int dw);

#endif
