/* Turning an arbitrary grayscale picture of one digit into a 28x28 input the
 * way MNIST itself was made (LeCun et al.: the NIST digit was size-normalised
 * into a 20x20 box keeping its aspect ratio, anti-aliased, then placed in a
 * 28x28 field so that its centre of mass is at the centre).
 *
 * Steps:
 *  1. Background: the median of the border pixels. If it is lighter than
 *     mid-grey (> 127) the picture is dark ink on light paper and is inverted,
 *     so that ink is bright and the background dark, as in MNIST.
 *  2. Ink = max(0, value - background), scaled so the strongest ink is 1.
 *     If the strongest ink is less than CN_PREPROCESS_MIN_CONTRAST grey levels
 *     above the background, the picture is blank: "no ink found".
 *  3. Crop to the bounding box of the pixels whose ink exceeds
 *     CN_PREPROCESS_INK_FRACTION (faint noise and anti-aliasing fringes do not
 *     widen the box; inside the box every value is kept).
 *  4. Scale the box so its longer side is 20 pixels, keeping the aspect ratio:
 *     area averaging when shrinking (anti-aliased), bilinear when enlarging;
 *     then stretch so the brightest pixel is 1 (every MNIST digit reaches
 *     254..255; a thin pen stroke shrunk 20x would otherwise be faint grey).
 *  5. Paste into a 28x28 black field so the centre of mass, in pixel-index
 *     coordinates, lands on (14, 14): the whole-pixel shift that puts it in
 *     [13.5, 14.5), as it is in every MNIST digit; anything falling outside
 *     the field is clipped.
 * Output intensities are in [0, 1], 0 = background, like MNIST pixels / 255
 * (normalisation by a dataset mean/std, if a model wants it, is the caller's). */
#ifndef CN_IO_PREPROCESS_H
#define CN_IO_PREPROCESS_H
#include "convnet.h"
#include "io/image.h"

/* CN_DIGIT_SIDE (28, convnet.h): the output is CN_DIGIT_SIDE x CN_DIGIT_SIDE */
#define CN_DIGIT_BOX 20           /* the digit's longer side after scaling */
#define CN_PREPROCESS_MIN_CONTRAST 32   /* grey levels of ink above the background */
#define CN_PREPROCESS_INK_FRACTION 0.1

/* What cn_preprocess_digit_ex found, for diagnostics (e.g. `predict --verbose`). */
typedef struct {
    int inverted;         /* 1 if the picture was dark-on-light and was inverted */
    int background;       /* border median, 0..255, in the original picture */
    int ink_max;          /* strongest ink above the background, grey levels */
    int box_x, box_y, box_width, box_height; /* ink bounding box in the picture */
    int scaled_width, scaled_height;          /* its size after scaling (longer side 20) */
    int shift_x, shift_y; /* where the scaled box's top-left went in the 28x28 field */
} cn_preprocess_info;

/* Fills out[28*28] (row-major, [0,1], 0 = background) from `img` as described
 * above. Errors: CN_ERR_ARG for an empty image, CN_ERR_FORMAT "no ink found"
 * for a blank one. The message has no file name: callers add it with
 * cn_error_prefix. */
cn_status cn_preprocess_digit(const cn_gray_image *img, float out[CN_DIGIT_SIDE * CN_DIGIT_SIDE]);
/* The same; if `info` is not NULL it receives what was found. */
cn_status cn_preprocess_digit_ex(const cn_gray_image *img, float out[CN_DIGIT_SIDE * CN_DIGIT_SIDE],
                                 cn_preprocess_info *info);

#endif
