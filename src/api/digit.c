/* cn_image_to_digit: an image file as the 28x28 input predict feeds (include/convnet.h). */
#include "convnet.h"
#include "core/error.h"
#include "io/image.h"
#include "io/preprocess.h"
#include <string.h>

_Static_assert(CN_DIGIT_PIXELS == CN_DIGIT_SIDE * CN_DIGIT_SIDE, "CN_DIGIT_PIXELS is 28 x 28");

cn_status cn_image_to_digit(const char *path, int preprocess, float out[CN_DIGIT_PIXELS], cn_digit_info *info) {
    cn_digit_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    cn_gray_image img;
    cn_status st = cn_image_load(path, &img); /* the message starts with the file name */
    if (st) return st;
    info->width = img.width;
    info->height = img.height;
    if (!preprocess) {
        if (img.width != CN_DIGIT_SIDE || img.height != CN_DIGIT_SIDE)
            st = cn_fail(CN_ERR_SHAPE, "%s: image is %dx%d; without preprocessing it must be %dx%d", path, img.width,
                         img.height, CN_DIGIT_SIDE, CN_DIGIT_SIDE);
        else
            for (int i = 0; i < CN_DIGIT_PIXELS; i++) out[i] = img.pixels[i] / 255.0f;
    } else {
        cn_preprocess_info pi;
        st = cn_preprocess_digit_ex(&img, out, &pi);
        if (st) {
            cn_error_prefix("%s", path);
        } else {
            info->inverted = pi.inverted;
            info->background = pi.background;
            info->ink_max = pi.ink_max;
            info->box_x = pi.box_x;
            info->box_y = pi.box_y;
            info->box_width = pi.box_width;
            info->box_height = pi.box_height;
            info->scaled_width = pi.scaled_width;
            info->scaled_height = pi.scaled_height;
            info->shift_x = pi.shift_x;
            info->shift_y = pi.shift_y;
        }
    }
    cn_image_free(&img);
    return st;
}
