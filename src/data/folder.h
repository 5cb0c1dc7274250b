/* torchvision's ImageFolder layout:
 *
 *     DIR/train/<class>/<image>    DIR/test/<class>/<image>    [DIR/val/<class>/<image>]
 *
 * Classes are the train folder's sub-folder names in byte order (Python's
 * sorted(), as ImageFolder's find_classes), label k = the k-th name; folders
 * starting with '.' are ignored (ImageFolder would make .ipynb_checkpoints a
 * class). Test (and val, when present) must have a folder for every class and
 * no other. Images are the files ending in .png, .jpg or .jpeg (any case) in
 * a class folder and its sub-folders at any depth (up to 16, following
 * symbolic links; hidden folders skipped), in ImageFolder's order: folders by
 * full path in byte order (sorted(os.walk(...))), the files of each by name;
 * other files are ignored. PNG and JPEG are decoded as
 * io/image.h's cn_image_decode_color, then:
 *   channels  --grayscale: 1, by PIL's convert("L") (L = (19595 R + 38470 G +
 *             7471 B + 32768) >> 16, what transforms.Grayscale does); else the
 *             model's channel count (gray images are repeated into 3 channels
 *             as convert("RGB") does; an RGB image for a 1-channel model is an
 *             error suggesting --grayscale), else the first image's;
 *   size      --resize HxW: resize.h's PIL bilinear (after the grayscale
 *             conversion, as Compose([Grayscale(), Resize((H, W))])); else
 *             every image must have the model's size (else the first image's).
 * Files are decoded in parallel (OpenMP) into one uint8 split and cached
 * (image_cache.h) in DIR/.convnet-cache-{train,test,val}, keyed by the file
 * list, sizes, modification times, class names and the options above.
 *
 * Errors, one line each: no DIR or no train folder, fewer than 2 or more than
 * CN_MAX_CLASSES classes, an unusable class name (longer than 31 bytes, or
 * with a comma or control character), an empty class folder, a class missing
 * from (or extra in) test/val (naming the folder), an image that does not
 * decode (naming the file; with skip_bad it is left out and counted in
 * ds->skipped instead), an image of the wrong size (naming the file, its size
 * and the expected size). */
#ifndef CN_DATA_FOLDER_H
#define CN_DATA_FOLDER_H
#include "data/dataset.h"

/* Loads DIR (required) into *out. stats_key receives the file that keys the
 * normalisation cache (the train cache file; "" when none was written). */
cn_status cn_folder_load(const cn_data_options *o, const char *dir, cn_dataset *out, char *stats_key, size_t key_size);

#endif
