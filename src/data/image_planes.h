/* One decoded image (io/image.h's cn_color_image) into a dataset's uint8
 * (channels, rows, cols) planes, the conversions of data/folder.h: gray to 3
 * channels by repetition, RGB to 1 channel only with `grayscale` (PIL's
 * convert("L"): L = (19595 R + 38470 G + 7471 B + 32768) >> 16), then, with
 * `resize`, resize.h's PIL bilinear to rows x cols; without it the image must
 * already be rows x cols. Errors name `path`, the image's size or kind and
 * what was expected (CN_ERR_SHAPE), or 2/4 target channels (CN_ERR_UNSUPPORTED). */
#ifndef CN_DATA_IMAGE_PLANES_H
#define CN_DATA_IMAGE_PLANES_H
#include "io/image.h"

cn_status cn_image_to_planes(const cn_color_image *img, int channels, int rows, int cols, int resize, int grayscale,
                             const char *path, uint8_t *dst);

#endif
