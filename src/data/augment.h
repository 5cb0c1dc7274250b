/* Training-time augmentation of 28x28-style uint8 images.
 *
 * Spec text (cn_augment_parse), comma-separated key=value:
 *   hflip=P           RandomHorizontalFlip(p=P): mirror left-right when U[0, 1) < P
 *   rotate=D          RandomRotation(D): angle ~ U(-D, D), counter-clockwise
 *   translate=F       RandomAffine(translate=(F, F)): shifts of round(U(-F*W, F*W)) pixels
 *   scale=A:B         RandomAffine(scale=(A, B))
 *   shear=S           RandomAffine(shear=S): x shear ~ U(-S, S) degrees
 *   interp=nearest|bilinear   resampling of rotate/affine (default nearest, torchvision's default)
 *   elastic=ALPHA:SIGMA       Simard et al. 2003 elastic distortion (see below)
 *   erase=P           RandomErasing(p=P, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)
 * "" or "none" disables augmentation.
 *
 * Per image, in this order (each step only when enabled):
 *   0. horizontal flip (one draw per image, flipped or not), first as in the usual
 *      Compose([RandomHorizontalFlip(), RandomAffine(...), ...]);
 *   1. rotation, as torchvision's RandomRotation on a PIL image (affine.h);
 *   2. translate/scale/shear, as RandomAffine(degrees=0, ...) on a PIL image;
 *      steps 1 and 2 are separate resamplings, exactly like the seed003 recipe
 *      Compose([RandomRotation(10), RandomAffine(0, translate=(0.1, 0.1))]);
 *   3. elastic distortion: two fields of U(-1, 1) displacements, each smoothed
 *      by a Gaussian of standard deviation SIGMA pixels (truncated at 3 sigma,
 *      mirrored at the borders), scaled by ALPHA, so a pixel moves by ALPHA x
 *      (smoothed field) pixels; bilinear sampling, 0 outside (Simard's
 *      definition; torchvision's ElasticTransform measures displacement in
 *      half-image units, so its alpha is about 2x ours);
 *   4. normalisation x = (v/255 - mean)/std in float32, as ToTensor + Normalize;
 *   5. random erasing on the normalised image with value 0, i.e. erased pixels
 *      become the dataset mean, as RandomErasing(value=0) placed after
 *      Normalize (the usual torchvision order).
 * Random draws come from the caller's cn_rng (torchvision's exact random
 * sequence cannot be reproduced; the distributions are the same). */
#ifndef CN_DATA_AUGMENT_H
#define CN_DATA_AUGMENT_H
#include "convnet.h"
#include "core/rng.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
    float rotate_deg, translate, scale_min, scale_max, shear_deg, erase_p, elastic_alpha, elastic_sigma;
    float hflip_p;  /* probability of a left-right mirror (0: never) */
    int enabled;   /* 0: images pass through unchanged (only normalised) */
    int bilinear;  /* interp=bilinear for rotate/affine; 0 = nearest */
} cn_augment;

/* Parses spec text into *out (see above). Unknown keys, malformed or
 * out-of-range values: CN_ERR_ARG naming the item. Ranges: hflip 0..1, rotate 0..180,
 * translate 0..1, scale 0 < A <= B <= 10, shear 0..80, erase 0..1,
 * elastic alpha 0..1000 and sigma 0.5..20. */
cn_status cn_augment_parse(const char *text, cn_augment *out);
/* Writes the canonical spec text of *aug ("none" when disabled). */
void cn_augment_format(const cn_augment *aug, char *buf, size_t size);

/* Float32 normalisation table: lut[v] = (v/255 - mean)/std exactly as PyTorch's
 * ToTensor + Normalize compute it. */
typedef struct { float mean, std, lut[256]; } cn_normalizer;
void cn_normalizer_init(cn_normalizer *norm, float mean, float std);

/* Scratch bytes cn_augment_image needs for *aug and a rows x cols image
 * (about 3 kB for 28x28 without elastic, 17 kB with elastic=34:4). */
size_t cn_augment_scratch_size(const cn_augment *aug, int rows, int cols);
/* Augments one image (see above) and writes it normalised into out (rows*cols).
 * scratch: cn_augment_scratch_size(aug, rows, cols) bytes, 64-byte aligned. */
void cn_augment_image(const cn_augment *aug, const uint8_t *src, int rows, int cols, const cn_normalizer *norm,
                      cn_rng *rng, void *scratch, float *out);

#endif
