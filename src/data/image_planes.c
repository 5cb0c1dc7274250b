/* Decoded image -> dataset planes. See image_planes.h. */
#include "data/image_planes.h"
#include "data/resize.h"
#include "core/error.h"
#include "core/mem.h"
#include <stdlib.h>
#include <string.h>

/* PIL's convert("L") of an RGB pixel. */
static uint8_t luma(const uint8_t *rgb) {
    return (uint8_t)((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}

cn_status cn_image_to_planes(const cn_color_image *img, int channels, int rows, int cols, int resize, int grayscale,
                             const char *path, uint8_t *dst) {
    if (!resize && (img->height != rows || img->width != cols))
        return cn_fail(CN_ERR_SHAPE, "%s: image is %dx%d (HxW), expected %dx%d; pass --resize %dx%d to scale every image",
                       path, img->height, img->width, rows, cols, rows, cols);
    if (img->channels == 3 && channels == 1 && !grayscale)
        return cn_fail(CN_ERR_SHAPE, "%s: image is RGB but the model takes 1 channel; pass --grayscale to convert it", path);
    if (channels != 1 && channels != 3)
        return cn_fail(CN_ERR_UNSUPPORTED, "%s: images give 1 or 3 channels; the model takes %d", path, channels);
    size_t plane = (size_t)img->width * (size_t)img->height, out_plane = (size_t)rows * (size_t)cols;
    uint8_t *scratch = cn_calloc(plane, 1);
    if (!scratch) return CN_ERR_NOMEM;
    cn_status st = CN_OK;
    for (int c = 0; c < channels && st == CN_OK; c++) {
        const uint8_t *p = img->pixels;
        if (img->channels == 1) memcpy(scratch, p, plane);
        else if (channels == 1) for (size_t i = 0; i < plane; i++) scratch[i] = luma(p + 3 * i);
        else for (size_t i = 0; i < plane; i++) scratch[i] = p[3 * i + (size_t)c];
        st = cn_resize_bilinear(scratch, img->height, img->width, dst + (size_t)c * out_plane, rows, cols);
    }
    free(scratch);
    return st;
}
