/* JPEG decoding with libjpeg-turbo. See jpeg.h. */
#include "io/jpeg.h"
#include "core/error.h"
#include "core/mem.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_errors;

/* libjpeg calls this on a fatal error and must not return: record and jump back. */
static void on_error(j_common_ptr cinfo) {
    jpeg_errors *e = (jpeg_errors *)cinfo->err;
    e->base.format_message(cinfo, e->message);
    longjmp(e->jump, 1);
}

/* The library never prints: warnings (e.g. extraneous bytes) are dropped. */
static void on_message(j_common_ptr cinfo, int level) { (void)cinfo; (void)level; }

cn_status cn_jpeg_decode(const uint8_t *data, size_t size, const char *name, cn_color_image *out) {
    *out = (cn_color_image){0, 0, 0, NULL};
    struct jpeg_decompress_struct cinfo;
    jpeg_errors err;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = on_error;
    err.base.emit_message = on_message;
    err.message[0] = '\0';
    uint8_t *volatile pixels = NULL;
    volatile cn_status status = CN_OK;   /* set for our own (non-libjpeg) errors */
    if (setjmp(err.jump)) {
        if (status == CN_OK)
            status = cn_fail(CN_ERR_FORMAT, "%s: invalid JPEG data (libjpeg: %s); expected a valid JPEG stream",
                             name, err.message);
        free(pixels);
        jpeg_destroy_decompress(&cinfo);
        return status;
    }
    jpeg_create_decompress(&cinfo);
    if (size > (size_t)0xffffffffu) {
        status = cn_fail(CN_ERR_UNSUPPORTED, "%s: JPEG data of %zu bytes is too large", name, size);
        longjmp(err.jump, 1);
    }
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    JDIMENSION width = cinfo.image_width, height = cinfo.image_height;
    if (width == 0 || height == 0 || width > CN_IMAGE_MAX_SIDE || height > CN_IMAGE_MAX_SIDE ||
        (size_t)width * height > CN_IMAGE_MAX_PIXELS) {
        status = cn_fail(CN_ERR_UNSUPPORTED, "%s: JPEG image is %ux%u pixels; expected 1 to %d per side and at most %zu pixels",
                         name, (unsigned)width, (unsigned)height, CN_IMAGE_MAX_SIDE, CN_IMAGE_MAX_PIXELS);
        longjmp(err.jump, 1);
    }
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        status = cn_fail(CN_ERR_UNSUPPORTED, "%s: JPEG image is CMYK; expected gray or colour (YCbCr/RGB)", name);
        longjmp(err.jump, 1);
    }
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int channels = cinfo.output_components;
    if (channels != 1 && channels != 3) {
        status = cn_fail(CN_ERR_UNSUPPORTED, "%s: JPEG decodes to %d components; expected 1 or 3", name, channels);
        longjmp(err.jump, 1);
    }
    size_t row_bytes = (size_t)cinfo.output_width * (size_t)channels;
    if (!(pixels = cn_calloc((size_t)cinfo.output_height, row_bytes))) {
        status = CN_ERR_NOMEM;
        cn_error_prefix("%s", name);
        longjmp(err.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * row_bytes;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    *out = (cn_color_image){(int)cinfo.output_width, (int)cinfo.output_height, channels, pixels};
    jpeg_destroy_decompress(&cinfo);
    return CN_OK;
}
