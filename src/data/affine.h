/* Affine resampling of one uint8 image, bit-for-bit like torchvision on PIL images.
 *
 * The seed models train on torchvision.datasets.MNIST, whose images are PIL
 * images, so RandomRotation / RandomAffine run through Pillow: the inverse
 * matrix from torchvision's _get_inverse_affine_matrix (or Image.rotate's own),
 * then Pillow's ImagingTransformAffine: nearest-neighbour sampling in 16.16
 * fixed point (or its scale-only and floating-point variants), bilinear
 * sampling in double with the result truncated to an integer, fill 0 outside.
 * These functions reproduce that arithmetic exactly (same doubles, same
 * operation order, same truncations), so outputs are integers in [0, 255].
 * Coordinates: pixel (x, y) covers [x, x+1) x [y, y+1); the centre of rotation
 * is (cols/2, rows/2). */
#ifndef CN_DATA_AFFINE_H
#define CN_DATA_AFFINE_H
#include <stdint.h>

/* torchvision.transforms.functional.affine(img, angle, [tx, ty], scale, [shear_x, 0])
 * on a PIL image: angle in degrees (clockwise, torchvision's convention),
 * translation in pixels, shear along x in degrees.
 * src, dst (rows, cols); dst values are integers in [0, 255]. */
void cn_affine_apply(const uint8_t *src, int rows, int cols, float angle_deg, float tx, float ty,
                     float scale, float shear_x_deg, int bilinear, float *dst);
/* torchvision.transforms.functional.rotate(img, angle) on a PIL image, i.e.
 * PIL's Image.rotate: counter-clockwise degrees, no expansion, fill 0. */
void cn_rotate_apply(const uint8_t *src, int rows, int cols, float angle_deg, int bilinear, float *dst);

/* The same two, writing uint8 (for chaining transforms without loss). */
void cn_affine_apply_u8(const uint8_t *src, int rows, int cols, float angle_deg, float tx, float ty,
                        float scale, float shear_x_deg, int bilinear, uint8_t *dst);
void cn_rotate_apply_u8(const uint8_t *src, int rows, int cols, float angle_deg, int bilinear, uint8_t *dst);

/* The inverse (output -> input) matrices, as torchvision / Pillow compute them. */
void cn_affine_inverse_matrix(int rows, int cols, double angle_deg, double tx, double ty, double scale,
                              double shear_x_deg, double shear_y_deg, double m[6]);
void cn_rotate_inverse_matrix(int rows, int cols, double angle_deg, double m[6]);

/* Python's round(x, 15) (used by PIL's rotate). */
double cn_round15(double x);

#endif
