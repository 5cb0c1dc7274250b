/* Shared pieces of the int8 kernels (int8.h): the choice of kernel set, weight packing,
 * max pooling and ReLU of biased bytes. */
#include "kernels/int8.h"
#include "kernels/kernels.h"
#include <string.h>

extern const cn_i8_kernel_set cn_i8_kernels_generic;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
extern const cn_i8_kernel_set cn_i8_kernels_avx512_vnni, cn_i8_kernels_avx2;
#define HAVE_X86_SETS 1
#endif

static const cn_i8_kernel_set *best_supported(void) {
#ifdef HAVE_X86_SETS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni"))
        return &cn_i8_kernels_avx512_vnni;
    if (__builtin_cpu_supports("avx2")) return &cn_i8_kernels_avx2;
#endif
    return &cn_i8_kernels_generic;
}

/* Read and written atomically, as conv_common.c's choice. */
static const cn_i8_kernel_set *chosen;

const cn_i8_kernel_set *cn_i8_kernels(void) {
    const cn_i8_kernel_set *k = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (!k) {
        k = best_supported();
        __atomic_store_n(&chosen, k, __ATOMIC_RELEASE);
    }
    return k;
}

int cn_i8_kernels_select(const char *name) {
    const cn_i8_kernel_set *best = best_supported();
    if (!name) { __atomic_store_n(&chosen, best, __ATOMIC_RELEASE); return 0; }
    const cn_i8_kernel_set *sets[] = {
#ifdef HAVE_X86_SETS
        &cn_i8_kernels_avx512_vnni, &cn_i8_kernels_avx2,
#endif
        &cn_i8_kernels_generic };
    int usable = 0;   /* listed best first: usable from the best supported one on */
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        if (sets[i] == best) usable = 1;
        if (usable && !strcmp(sets[i]->name, name)) { __atomic_store_n(&chosen, sets[i], __ATOMIC_RELEASE); return 0; }
    }
    return -1;
}

size_t cn_i8_packed_bytes(const cn_i8_kernel_set *ks, int out_c, int taps, int in_cp) {
    size_t blocks = (size_t)(out_c + CN_I8_BLOCK - 1) / CN_I8_BLOCK;
    return blocks * (size_t)taps * (size_t)in_cp * CN_I8_BLOCK * (size_t)ks->weight_bytes;
}

void cn_i8_pack(const cn_i8_kernel_set *ks, const int8_t *w, int out_c, int taps, int in_cp, void *packed, int32_t *comp) {
    int blocks = (out_c + CN_I8_BLOCK - 1) / CN_I8_BLOCK, groups = in_cp / 4;
    int8_t *p8 = packed;
    int16_t *p16 = packed;
    for (int b = 0; b < blocks; b++)
        for (int t = 0; t < taps; t++)
            for (int g = 0; g < groups; g++) {
                size_t base = (((size_t)b * taps + t) * groups + g) * 4 * CN_I8_BLOCK;
                for (int i = 0; i < CN_I8_BLOCK; i++) {
                    /* pairs: with 8 channels or fewer, lanes 8..15 repeat lanes 0..7 */
                    int oc = ks->pairs && out_c <= 8 && i >= 8 ? i - 8 : b * CN_I8_BLOCK + i;
                    for (int j = 0; j < 4; j++) {
                        int8_t v = oc < out_c ? w[((size_t)oc * taps + t) * in_cp + g * 4 + j] : 0;
                        if (ks->weight_bytes == 1) p8[base + (size_t)i * 4 + j] = v;
                        else p16[base + (size_t)(j / 2) * 2 * CN_I8_BLOCK + (size_t)i * 2 + j % 2] = v;
                    }
                }
            }
    for (int oc = 0; oc < out_c; oc++) {
        int32_t sum = 0;
        for (size_t i = 0; i < (size_t)taps * in_cp; i++) sum += w[(size_t)oc * taps * in_cp + i];
        comp[oc] = (int32_t)((uint32_t)sum * CN_I8_ZERO);   /* wraps as the kernels' sums do */
    }
}

/* 2x2, stride 2, no padding: the larger of the two rows, then of each pair of pixels. */
static void maxpool2x2(const uint8_t *in, int w, int cp, int oh, int ow, uint8_t *out, size_t o_row, size_t o_pix) {
    uint8_t rows[4096];
    size_t n = (size_t)2 * ow * cp;
    for (int y = 0; y < oh; y++) {
        const uint8_t *r0 = in + (size_t)2 * y * w * cp, *r1 = r0 + (size_t)w * cp;
        for (size_t i = 0; i < n; i++) rows[i] = r0[i] > r1[i] ? r0[i] : r1[i];
        for (int x = 0; x < ow; x++) {
            const uint8_t *a = rows + (size_t)2 * x * cp, *b = a + cp;
            uint8_t *o = out + y * o_row + x * o_pix;
            for (int c = 0; c < cp; c++) o[c] = a[c] > b[c] ? a[c] : b[c];
        }
    }
}

CN_MULTIVERSION
void cn_i8_maxpool(const uint8_t *in, int h, int w, int cp, int k, int s, int p, int oh, int ow, uint8_t *out,
                   size_t o_row, size_t o_pix) {
    if (k == 2 && s == 2 && p == 0 && (size_t)2 * ow * cp <= 4096) {
        maxpool2x2(in, w, cp, oh, ow, out, o_row, o_pix);
        return;
    }
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            uint8_t *o = out + y * o_row + x * o_pix;
            memset(o, 0, (size_t)cp);   /* below every value: biased bytes are >= 1 */
            for (int ky = 0; ky < k; ky++) {
                int iy = y * s - p + ky;
                if (iy < 0 || iy >= h) continue;
                for (int kx = 0; kx < k; kx++) {
                    int ix = x * s - p + kx;
                    if (ix < 0 || ix >= w) continue;
                    const uint8_t *src = in + ((size_t)iy * w + ix) * cp;
                    for (int c = 0; c < cp; c++) o[c] = src[c] > o[c] ? src[c] : o[c];
                }
            }
        }
}

CN_MULTIVERSION
void cn_i8_gap(const uint8_t *in, int plane, int cp, int c, float rescale, uint8_t *out) {
    int32_t sum[1024] = {0};
    for (int i = 0; i < plane; i++)
        for (int ch = 0; ch < cp; ch++) sum[ch] += in[(size_t)i * cp + ch];
    for (int ch = 0; ch < c; ch++) {
        int32_t q = sum[ch] - CN_I8_ZERO * plane;   /* the sum of the values */
        out[ch] = (uint8_t)(cn_i8_q8((float)q * rescale / (float)plane) + CN_I8_ZERO);
    }
}

CN_MULTIVERSION
void cn_i8_relu(uint8_t *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > CN_I8_ZERO ? x[i] : CN_I8_ZERO;
}
