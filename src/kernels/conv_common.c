/* Shared pieces of the direct convolution: kernel-set choice, weight packing,
 * padding copies, compaction of q-layout outputs and transposition. */
#include "kernels/kernels.h"
#include <string.h>

extern const cn_kernel_set cn_kernels_generic;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
extern const cn_kernel_set cn_kernels_avx512, cn_kernels_avx2;
#define HAVE_X86_SETS 1
#endif

static const cn_kernel_set *best_supported(void) {
#ifdef HAVE_X86_SETS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        return &cn_kernels_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &cn_kernels_avx2;
#endif
    return &cn_kernels_generic;
}

/* Read and written atomically: sessions may run in several threads at once, and the first
 * calls may choose at the same time (they choose the same set). */
static const cn_kernel_set *chosen;

const cn_kernel_set *cn_kernels(void) {
    const cn_kernel_set *k = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (!k) {
        k = best_supported();
        __atomic_store_n(&chosen, k, __ATOMIC_RELEASE);
    }
    return k;
}

int cn_kernels_select(const char *name) {
    const cn_kernel_set *best = best_supported();
    if (!name) { __atomic_store_n(&chosen, best, __ATOMIC_RELEASE); return 0; }
    const cn_kernel_set *sets[] = {
#ifdef HAVE_X86_SETS
        &cn_kernels_avx512, &cn_kernels_avx2,
#endif
        &cn_kernels_generic };
    /* the sets are listed best first: a set is usable when it is not above the best supported one */
    int usable = 0;
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        if (sets[i] == best) usable = 1;
        if (usable && !strcmp(sets[i]->name, name)) { __atomic_store_n(&chosen, sets[i], __ATOMIC_RELEASE); return 0; }
    }
    return -1;
}

/* packed: for each output-channel block (oc0, mr): taps x mr weights, tap-major,
 * tap = (ic*k + ky)*k + kx. Transposed: weight (IC', OC', k, k) of the forward
 * layer, read as w'[oc][ic][ky][kx] = w[ic][oc][k-1-ky][k-1-kx]. */
void cn_conv_pack(const cn_kernel_set *ks, const cn_conv_geom *g, const float *w, int transposed, float *packed) {
    int k = g->k, kk = k * k, taps = g->in_c * kk;
    int blocks = (g->out_c + ks->mr_max - 1) / ks->mr_max;
    for (int b = 0; b < blocks; b++) {
        int oc0, mr;
        cn_conv_block(g->out_c, ks->mr_max, b, &oc0, &mr);
        float *dst = packed + (size_t)oc0 * taps;
        for (int t = 0; t < taps; t++) {
            int ic = t / kk, tap = t % kk;
            for (int i = 0; i < mr; i++) {
                int oc = oc0 + i;
                dst[(size_t)t * mr + i] = transposed ? w[((size_t)ic * g->out_c + oc) * kk + (kk - 1 - tap)]
                                                     : w[((size_t)oc * g->in_c + ic) * kk + tap];
            }
        }
    }
}

void cn_conv_pack_channels(const cn_conv_geom *g, const float *w, int transposed, int ld, float *wt) {
    int kk = g->k * g->k, taps = g->in_c * kk;
    for (int t = 0; t < taps; t++) {
        int ic = t / kk, tap = t % kk;
        float *row = wt + (size_t)t * ld;
        for (int oc = 0; oc < g->out_c; oc++)
            row[oc] = transposed ? w[((size_t)ic * g->out_c + oc) * kk + (kk - 1 - tap)]
                                 : w[((size_t)oc * g->in_c + ic) * kk + tap];
        for (int oc = g->out_c; oc < ld; oc++) row[oc] = 0.0f;
    }
}

double cn_conv_pixel_lanes(const cn_kernel_set *ks, const cn_conv_geom *g) {
    return (double)g->out_h * g->out_w / cn_round_up(g->out_h * g->wp, ks->vec);
}

CN_MULTIVERSION
void cn_pad_copy(const float *src, int C, int hs, int ws, int pad, float *dst, int hd, int wd, int borders_zero) {
    /* source rows/columns that land inside dst */
    int y0 = pad < 0 ? -pad : 0, x0 = pad < 0 ? -pad : 0;
    int y1 = hs < hd - pad ? hs : hd - pad, x1 = ws < wd - pad ? ws : wd - pad;
    if (!borders_zero) memset(dst, 0, (size_t)C * hd * wd * sizeof *dst);
    if (y1 <= y0 || x1 <= x0) return;
    int n = x1 - x0;    /* short rows: an inline loop beats a memcpy call per row */
    for (int c = 0; c < C; c++)
        for (int y = y0; y < y1; y++) {
            float *d = dst + ((size_t)c * hd + y + pad) * wd + x0 + pad;
            const float *s = src + ((size_t)c * hs + y) * ws + x0;
            for (int i = 0; i < n; i++) d[i] = s[i];
        }
}

CN_MULTIVERSION
void cn_conv_compact(const float *out_q, int C, int OH, int OW, int wp, int q_stride, const float *bias, float *out) {
    for (int c = 0; c < C; c++) {
        float b = bias ? bias[c] : 0.0f;
        for (int y = 0; y < OH; y++) {
            const float *s = out_q + (size_t)c * q_stride + y * wp;
            float *d = out + ((size_t)c * OH + y) * OW;
            if (bias) for (int x = 0; x < OW; x++) d[x] = s[x] + b;
            else memcpy(d, s, OW * sizeof *d);
        }
    }
}

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

/* Stores the first n (< 8) floats of v at dst. */
static inline void store_part(float *dst, v8f v, int n) {
    int i = 0;
    if (n >= 4) { memcpy(dst, &v, 4 * sizeof(float)); i = 4; }
    for (; i < n; i++) dst[i] = v[i];
}

/* 8x8 block: dst rows 0..7 (stride ld) = columns 0..7 of src rows 0..7 (stride sp); with
 * n_rows < 8, of src rows 0..n_rows-1 only (dst rows get n_rows floats each). */
static inline __attribute__((always_inline)) void transpose8x8(const float *src, size_t sp, float *dst, size_t ld,
                                                               int n_rows) {
    static const v8i lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
    static const v8i lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
    static const v8i lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
    v8f r[8], t[8], u[8];
    /* (zero rows one by one: an initialiser on the array became a rep stos to the stack) */
    for (int i = 0; i < 8; i++) {
        if (i < n_rows) memcpy(&r[i], src + i * sp, sizeof r[i]);
        else r[i] = (v8f){0};
    }
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shuffle(r[i], r[i + 1], lo);
        t[i + 1] = __builtin_shuffle(r[i], r[i + 1], hi);
    }
    for (int i = 0; i < 8; i += 4)
        for (int j = 0; j < 2; j++) {
            u[i + j] = __builtin_shuffle(t[i + j], t[i + j + 2], lo2);
            u[i + j + 2] = __builtin_shuffle(t[i + j], t[i + j + 2], hi2);
        }
    /* u[0..3] hold rows 0-3 of the 4x4 quarter blocks of inputs 0-3, u[4..7] of inputs 4-7 */
    static const int order[4] = {0, 2, 1, 3};
    for (int j = 0; j < 4; j++) {
        v8f a = __builtin_shuffle(u[order[j]], u[order[j] + 4], lo4);
        v8f b = __builtin_shuffle(u[order[j]], u[order[j] + 4], hi4);
        if (n_rows == 8) {
            memcpy(dst + j * ld, &a, sizeof a);
            memcpy(dst + (j + 4) * ld, &b, sizeof b);
        } else {
            store_part(dst + j * ld, a, n_rows);
            store_part(dst + (j + 4) * ld, b, n_rows);
        }
    }
}

CN_MULTIVERSION
void cn_transpose(const float *src, int rows, int cols, int src_ld, float *dst, int dst_ld) {
    int c8 = cols & ~7;
    for (int r = 0; r < rows; r += 8) {
        int n = rows - r < 8 ? rows - r : 8;
        if (n == 8)
            for (int c = 0; c < c8; c += 8)
                transpose8x8(src + (size_t)r * src_ld + c, src_ld, dst + (size_t)c * dst_ld + r, dst_ld, 8);
        else
            for (int c = 0; c < c8; c += 8)
                transpose8x8(src + (size_t)r * src_ld + c, src_ld, dst + (size_t)c * dst_ld + r, dst_ld, n);
        for (int c = c8; c < cols; c++)
            for (int i = r; i < r + n; i++) dst[(size_t)c * dst_ld + i] = src[(size_t)i * src_ld + c];
    }
}

CN_MULTIVERSION
void cn_transpose_to_pixels(const float *src, int C, int H, int W, float *dst, size_t dst_row, int ld) {
    size_t plane = (size_t)H * W;
    int w8 = W & ~7;
    for (int c0 = 0; c0 < C; c0 += 8) {     /* 8 planes at a time, each read in order */
        int n = C - c0 < 8 ? C - c0 : 8;
        const float *s = src + (size_t)c0 * plane;
        for (int y = 0; y < H; y++) {
            const float *sr = s + (size_t)y * W;
            float *d = dst + (size_t)y * dst_row + c0;
            /* the same loop twice: with the constant 8 the compiler unrolls transpose8x8's
             * row loop for the full groups; n < 8 only for the last group of planes */
            if (n == 8)
                for (int x = 0; x < w8; x += 8) transpose8x8(sr + x, plane, d + (size_t)x * ld, (size_t)ld, 8);
            else
                for (int x = 0; x < w8; x += 8) transpose8x8(sr + x, plane, d + (size_t)x * ld, (size_t)ld, n);
            for (int x = w8; x < W; x++)
                for (int i = 0; i < n; i++) d[(size_t)x * ld + i] = sr[(size_t)i * plane + x];
        }
    }
}

CN_MULTIVERSION
void cn_transpose_from_pixels(const float *src, size_t src_row, int ld, int C, int H, int W, float *dst) {
    size_t plane = (size_t)H * W;
    int c8 = C & ~7;
    for (int c0 = 0; c0 < C; c0 += 8) {     /* 8 planes at a time, each written in order */
        float *d = dst + (size_t)c0 * plane;
        for (int y = 0; y < H; y++) {
            const float *s = src + (size_t)y * src_row + c0;
            float *dr = d + (size_t)y * W;
            if (c0 < c8) {
                int x = 0;
                for (; x + 8 <= W; x += 8) transpose8x8(s + (size_t)x * ld, (size_t)ld, dr + x, plane, 8);
                if (x < W) transpose8x8(s + (size_t)x * ld, (size_t)ld, dr + x, plane, W - x);
            } else {
                for (int i = 0; i < C - c0; i++)
                    for (int x = 0; x < W; x++) dr[(size_t)i * plane + x] = s[(size_t)x * ld + i];
            }
        }
    }
}

void cn_transpose_bias(const float *src, int rows, int cols, int src_ld, const float *bias, float *dst, int dst_ld) {
    cn_transpose(src, rows, cols, src_ld, dst, dst_ld);
    if (bias) cn_add_row_bias(dst, cols, rows, dst_ld, bias);
}

CN_MULTIVERSION
void cn_add_row_bias(float *x, int rows, int n, int ld, const float *bias) {
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < n; i++) x[(size_t)r * ld + i] += bias[r];
}

CN_MULTIVERSION
void cn_sum_rows(const float *x, int rows, int n, float *sum) {
    typedef float v16f __attribute__((vector_size(64)));
    int i = 0;
    for (; i + 16 <= n; i += 16) {      /* a column block's sums stay in a register over the rows */
        v16f acc;
        memcpy(&acc, sum + i, sizeof acc);
        for (int r = 0; r < rows; r++) {
            v16f v;
            memcpy(&v, x + (size_t)r * n + i, sizeof v);
            acc += v;
        }
        memcpy(sum + i, &acc, sizeof acc);
    }
    for (; i + 8 <= n; i += 8) {
        v8f acc;
        memcpy(&acc, sum + i, sizeof acc);
        for (int r = 0; r < rows; r++) {
            v8f v;
            memcpy(&v, x + (size_t)r * n + i, sizeof v);
            acc += v;
        }
        memcpy(sum + i, &acc, sizeof acc);
    }
    for (; i < n; i++)
        for (int r = 0; r < rows; r++) sum[i] += x[(size_t)r * n + i];
}

typedef float dw_v16 __attribute__((vector_size(64)));
typedef int dw_i16 __attribute__((vector_size(64)));
typedef int dw_i8 __attribute__((vector_size(32)));

/* Source columns [x0, x1) of row s (stride 2, at least 16 of them) into the rows of the even
 * (row) and odd (odd_row) padded columns pad + x, at (pad + x) >> 1: 32 then 16 columns at a
 * time by two loads and two shuffles (a strided loop per row cost three times as much at
 * 32x32), the rest by the strided loops. */
static inline __attribute__((always_inline)) void dw_split_row(const float *restrict s, int x0, int x1, int pad,
                                                             float *restrict row, float *restrict odd_row) {
    static const dw_i16 ev16 = { 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30 };
    static const dw_i16 od16 = { 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31 };
    static const dw_i8 ev8 = { 0, 2, 4, 6, 8, 10, 12, 14 }, od8 = { 1, 3, 5, 7, 9, 11, 13, 15 };
    /* column pad + x lands in half (pad + x) & 1, the next one in the other */
    int x = x0;
    for (; x + 32 <= x1; x += 32) {
        dw_v16 a, b;
        memcpy(&a, s + x, sizeof a);
        memcpy(&b, s + x + 16, sizeof b);
        dw_v16 e = __builtin_shuffle(a, b, ev16), o = __builtin_shuffle(a, b, od16);
        int px = pad + x;
        memcpy((px & 1 ? odd_row : row) + (px >> 1), &e, sizeof e);
        memcpy((px & 1 ? row : odd_row) + ((px + 1) >> 1), &o, sizeof o);
    }
    if (x + 16 <= x1) {
        v8f a, b;
        memcpy(&a, s + x, sizeof a);
        memcpy(&b, s + x + 8, sizeof b);
        v8f e = __builtin_shuffle(a, b, ev8), o = __builtin_shuffle(a, b, od8);
        int px = pad + x;
        memcpy((px & 1 ? odd_row : row) + (px >> 1), &e, sizeof e);
        memcpy((px & 1 ? row : odd_row) + ((px + 1) >> 1), &o, sizeof o);
        x += 16;
    }
    int xe = x + ((pad + x) & 1), xo = x + !((pad + x) & 1);
    int ne = xe < x1 ? (x1 - xe + 1) / 2 : 0, no = xo < x1 ? (x1 - xo + 1) / 2 : 0;
    float *de = row + ((pad + xe) >> 1), *dodd = odd_row + ((pad + xo) >> 1);
    const float *se = s + xe, *so = s + xo;
    for (int j = 0; j < ne; j++) de[j] = se[2 * j];
    for (int j = 0; j < no; j++) dodd[j] = so[2 * j];
}

/* The source values of cn_dw_prepare, written over a buffer whose other floats are zero:
 * each source row copied in contiguously (stride 1) or split into its even and odd columns
 * (stride 2): rows of 16 or more by dw_split_row, shorter ones by two strided loops, which the
 * compiler vectorises (CN_MULTIVERSION callers: permutes of AVX-512 or AVX2) where a
 * per-element choice of destination did not. */
static inline __attribute__((always_inline)) void dw_place(const cn_dw_geom *g, const float *src, int sh, int sw, int up, int pad, float *buf) {
    size_t half = (size_t)g->hp * g->ld;
    float *odd = buf + half;
    /* source columns [x0, x1) land inside the plane */
    int x0 = 0, x1 = sw;
    while (x0 < x1 && pad + x0 * up < 0) x0++;
    while (x1 > x0 && pad + (x1 - 1) * up >= g->wp) x1--;
    for (int y = 0; y < sh; y++) {
        int py = pad + y * up;
        if (py < 0 || py >= g->hp) continue;
        const float *restrict s = src + (size_t)y * sw;
        float *restrict row = buf + (size_t)py * g->ld;
        if (g->stride == 1 && up == 1) {
            memcpy(row + pad + x0, s + x0, (size_t)(x1 - x0) * sizeof *s);
        } else if (g->stride == 1) {
            for (int x = x0; x < x1; x++) row[pad + x * up] = s[x];
        } else if (up == 1 && x1 - x0 >= 16) {
            dw_split_row(s, x0, x1, pad, row, odd + (size_t)py * g->ld);
        } else if (up == 1) {
            /* column pad + x goes to half (pad + x) & 1 at (pad + x) >> 1; the first source
             * column of each parity and how many follow it two apart */
            float *restrict odd_row = odd + (size_t)py * g->ld;
            int xe = x0 + ((pad + x0) & 1), xo = x0 + !((pad + x0) & 1);
            int ne = xe < x1 ? (x1 - xe + 1) / 2 : 0, no = xo < x1 ? (x1 - xo + 1) / 2 : 0;
            float *de = row + ((pad + xe) >> 1), *dodd = odd_row + ((pad + xo) >> 1);
            const float *se = s + xe, *so = s + xo;
            for (int j = 0; j < ne; j++) de[j] = se[2 * j];
            for (int j = 0; j < no; j++) dodd[j] = so[2 * j];
        } else {
            float *odd_row = odd + (size_t)py * g->ld;
            for (int x = x0; x < x1; x++) {
                int px = pad + x * up;
                (px & 1 ? odd_row : row)[px >> 1] = s[x];
            }
        }
    }
}

/* Zeroed in one pass (memset), then the source values placed. */
CN_MULTIVERSION
void cn_dw_prepare(const cn_dw_geom *g, const float *src, int sh, int sw, int up, int pad, float *buf) {
    size_t half = (size_t)g->hp * g->ld;
    memset(buf, 0, (g->stride == 1 ? half + 2 * CN_VEC_MAX : cn_dw_prepared_floats(g)) * sizeof *buf);
    dw_place(g, src, sh, sw, up, pad, buf);
}

CN_MULTIVERSION
void cn_dw_prepare_again(const cn_dw_geom *g, const float *src, int sh, int sw, int up, int pad, float *buf) {
    dw_place(g, src, sh, sw, up, pad, buf);
}
