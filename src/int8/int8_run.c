/* The int8 model (int8_model.h), run: chunks of images over threads, each chunk step by
 * step (int8_steps.h); evaluation of a split; the calibration images. */
#include "int8/int8_steps.h"
#include "int8/int8_reference.h"
#include "core/error.h"
#include "core/mem.h"
#include "loss.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* One thread's buffers for a chunk. */
typedef struct {
    uint8_t *ws;            /* I8_CHUNK * image_bytes: every tensor of every image */
    float *fa;              /* num_tail slots of I8_CHUNK * float_size: the float tail's values; slot 0,
                               the last conv/linear's output, at fa */
    int8_t *ca, *cb;        /* CN_MAX_INPUTS * chw_size and chw_size: (c,h,w) copies (STEP_REF, joins); ca: the input's planes too */
} chunk_buffers;

/* Image img's part of float tail slot s. */
static float *tail_value(const cn_int8_model *q, const chunk_buffers *b, int s, int img) {
    return b->fa + ((size_t)s * I8_CHUNK + (size_t)img) * q->float_size;
}

static uint8_t *tensor_image(const cn_int8_model *q, const chunk_buffers *b, int t, int img) {
    const i8_tensor *x = &q->tensors[t];
    return b->ws + I8_CHUNK * x->prefix + (size_t)img * x->bytes;
}

/* Interior of tensor t of one image <-> (c,h,w) int8. */
static void to_chw(const i8_tensor *t, const uint8_t *src, int8_t *dst) {
    for (int c = 0; c < t->c; c++)
        for (int y = 0; y < t->h; y++)
            for (int x = 0; x < t->w; x++) dst[((size_t)c * t->h + y) * t->w + x] = (int8_t)(src[i8_at(t, y, x) + c] - CN_I8_ZERO);
}

static void from_chw(const i8_tensor *t, const int8_t *src, uint8_t *dst) {
    for (int c = 0; c < t->c; c++)
        for (int y = 0; y < t->h; y++)
            for (int x = 0; x < t->w; x++) dst[i8_at(t, y, x) + c] = (uint8_t)(src[((size_t)c * t->h + y) * t->w + x] + CN_I8_ZERO);
}

/* The patches of tensor t (int8_steps.h's patch_k) from C quantised planes of hp x wp bytes
 * (padding included): per pixel (y, x), for each channel c and row ky, the k bytes of plane c
 * at row y*s + ky from column x*s; then 128 up to the tensor's channels. */
static inline __attribute__((always_inline)) void gather_patches(const i8_tensor *t, const uint8_t *planes, int C, int hp,
                                                                 int wp, int k, int s, uint8_t *dst) {
    int used = C * k * k;
    for (int y = 0; y < t->h; y++)
        for (int x = 0; x < t->w; x++) {
            uint8_t *d = dst + ((size_t)y * t->w + x) * t->cp;
            for (int c = 0; c < C; c++)
                for (int ky = 0; ky < k; ky++, d += k)
                    memcpy(d, planes + ((size_t)c * hp + y * s + ky) * wp + (size_t)x * s, (size_t)k);
            for (int i = used; i < t->cp; i++) *d++ = CN_I8_ZERO;
        }
}

/* The input of one image (pixels in [0, 1], (c,h,w)) into tensor 0, as the generated
 * model_predict quantises it: q8((x - mean) / std * INPUT_INV_SCALE) (the kernel set's
 * quantise), plane by plane into scratch (chw_size bytes), then into the tensor's pixels or,
 * with patch_k, gathered into the first conv's patches (int8_steps.h). */
static void quantise_input(const cn_int8_model *q, const float *px, uint8_t *dst, uint8_t *scratch) {
    const i8_tensor *t = &q->tensors[0];
    int C = q->input.c, H = q->input.h, W = q->input.w;
    size_t plane = (size_t)H * W;
    if (!q->patch_k) {
        for (int c = 0; c < C; c++) {
            q->ks->quantise(px + (size_t)c * plane, plane, q->mean[c], q->std[c], q->inv_scale, scratch);
            for (int y = 0; y < H; y++) {
                uint8_t *d = dst + i8_at(t, y, 0) + c;
                for (int x = 0; x < W; x++) d[(size_t)x * t->cp] = scratch[(size_t)y * W + x];
            }
        }
        return;
    }
    int k = q->patch_k, s = q->patch_stride, p = q->patch_pad, hp = H + 2 * p, wp = W + 2 * p;
    memset(scratch, CN_I8_ZERO, (size_t)C * hp * wp);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            q->ks->quantise(px + (size_t)c * plane + (size_t)y * W, (size_t)W, q->mean[c], q->std[c], q->inv_scale,
                            scratch + ((size_t)c * hp + y + p) * wp + p);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (C == 1 && k == 3 && s == 1 && t->cp == 12 && q->ks->patches3) {
        q->ks->patches3(scratch, wp, t->h, t->w, dst);
        return;
    }
    if (C == 1 && k == 3 && t->cp == 12) {   /* one channel, 3x3 (MNIST's first convs): 12 bytes a pixel in words */
        for (int y = 0; y < t->h; y++)
            for (int x = 0; x < t->w; x++) {
                const uint8_t *r = scratch + (size_t)y * s * wp + (size_t)x * s;
                uint32_t a, b, c;   /* bytes 0..3 of rows 0, 1, 2 (byte 3, unused: the next column, or past the end) */
                memcpy(&a, r, 4); memcpy(&b, r + wp, 4); memcpy(&c, r + 2 * wp, 4);
                uint64_t lo = (a & 0xFFFFFFu) | (uint64_t)(b & 0xFFFFFFu) << 24 | (uint64_t)(c & 0xFFFFu) << 48;
                uint32_t hi = (c >> 16 & 0xFFu) | 0x80808000u;
                uint8_t *d = dst + ((size_t)y * t->w + x) * 12;
                memcpy(d, &lo, 8);
                memcpy(d + 8, &hi, 4);
            }
        return;
    }
#endif
    switch (k) {   /* k known to the compiler: the copies inlined */
    case 2: gather_patches(t, scratch, C, hp, wp, 2, s, dst); break;
    case 3: gather_patches(t, scratch, C, hp, wp, 3, s, dst); break;
    case 5: gather_patches(t, scratch, C, hp, wp, 5, s, dst); break;
    default: gather_patches(t, scratch, C, hp, wp, k, s, dst); break;
    }
}

static void run_conv(const cn_int8_model *q, const i8_step *st, const chunk_buffers *b, int n) {
    const i8_tensor *in = &q->tensors[st->in], *out = st->out >= 0 ? &q->tensors[st->out] : NULL;
    if (st->linear) {   /* the chunk's images as the pixels of one row */
        const export_op *o = st->op;
        cn_i8_conv_geom g = {.in_h = 1, .in_w = n, .in_cp = (int)in->bytes, .k = 1, .stride = 1, .out_h = 1, .out_w = n,
                             .out_c = o->channels, .q_pix = out ? out->bytes : 0, .f_pix = q->float_size, .f_chan = 1};
        q->ks->conv(&g, st->packed, &st->ep, tensor_image(q, b, st->in, 0),
                    out ? tensor_image(q, b, st->out, 0) + i8_at(out, 0, 0) : NULL, b->fa);
        return;
    }
    for (int i = 0; i < n; i++)
        q->ks->conv(&st->g, st->packed, &st->ep, tensor_image(q, b, st->in, i),
                    out ? tensor_image(q, b, st->out, i) + i8_at(out, 0, 0) : NULL, b->fa + (size_t)i * q->float_size);
}

/* add_q or concat_q of the export (export_c_runtime/int8.c) on one image. When every input
 * has the output's rows and columns (add: its shape), the same float arithmetic on the
 * biased bytes: add: q8(the sum over inputs k, in order, of (float)q_k * rescale[k], ReLU'd
 * when the op has it); concat: each input's channels in turn, q8((float)q * rescale[k]).
 * Otherwise (flattened inputs) the export's own helper on (c,h,w) copies. */
static void run_join(const cn_int8_model *q, const i8_step *st, const chunk_buffers *b, int img) {
    const export_op *o = st->op;
    const i8_tensor *out = &q->tensors[st->out], *t[CN_MAX_INPUTS];
    const uint8_t *src[CN_MAX_INPUTS];
    uint8_t *dst = tensor_image(q, b, st->out, img);
    bool direct = true;
    for (int k = 0; k < o->num_in; k++) {
        t[k] = &q->tensors[st->ins[k]];
        src[k] = tensor_image(q, b, st->ins[k], img);
        direct &= t[k]->h == out->h && t[k]->w == out->w && (st->kind == STEP_CONCAT || t[k]->c == out->c);
    }
    if (!direct) {
        const int8_t *chw[CN_MAX_INPUTS];
        for (int k = 0; k < o->num_in; k++) {
            to_chw(t[k], src[k], b->ca + (size_t)k * q->chw_size);
            chw[k] = b->ca + (size_t)k * q->chw_size;
        }
        cn_i8_ref_join_q(o, chw, b->cb);
        from_chw(out, b->cb, dst);
        return;
    }
    for (int y = 0; y < out->h; y++)
        for (int x = 0; x < out->w; x++) {
            uint8_t *d = dst + i8_at(out, y, x);
            const uint8_t *s[CN_MAX_INPUTS];
            for (int k = 0; k < o->num_in; k++) s[k] = src[k] + i8_at(t[k], y, x);
            if (st->kind == STEP_ADD) {
                for (int c = 0; c < out->c; c++) {
                    float v = (float)(s[0][c] - CN_I8_ZERO) * o->rescale[0];
                    for (int k = 1; k < o->num_in; k++) v += (float)(s[k][c] - CN_I8_ZERO) * o->rescale[k];
                    d[c] = (uint8_t)(cn_i8_q8((o->relu && v < 0.0f) ? 0.0f : v) + CN_I8_ZERO);
                }
                continue;
            }
            for (int k = 0; k < o->num_in; k++) {
                for (int c = 0; c < t[k]->c; c++)
                    d[c] = (uint8_t)(cn_i8_q8((float)(s[k][c] - CN_I8_ZERO) * o->rescale[k]) + CN_I8_ZERO);
                d += t[k]->c;
            }
        }
}

static void run_step(const cn_int8_model *q, const i8_step *st, const chunk_buffers *b, int n) {
    const i8_tensor *in = &q->tensors[st->in], *out = &q->tensors[st->out < 0 ? st->in : st->out];
    const export_op *o = st->op;
    switch (st->kind) {
    case STEP_CONV: run_conv(q, st, b, n); break;
    case STEP_RELU: cn_i8_relu(tensor_image(q, b, st->in, 0), (size_t)n * in->bytes); break;
    case STEP_MAXPOOL:
        for (int i = 0; i < n; i++)
            cn_i8_maxpool(tensor_image(q, b, st->in, i) + i8_at(in, 0, 0), in->h, in->w, in->cp, o->k, o->stride, o->pad,
                          out->h, out->w, tensor_image(q, b, st->out, i) + i8_at(out, 0, 0),
                          (size_t)(out->w + 2 * out->pad) * out->cp, (size_t)out->cp);
        break;
    case STEP_GAP:
        for (int i = 0; i < n; i++)
            cn_i8_gap(tensor_image(q, b, st->in, i), in->h * in->w, in->cp, in->c, o->s_in / o->s_out,
                      tensor_image(q, b, st->out, i) + i8_at(out, 0, 0));
        break;
    case STEP_COPY:
        for (int i = 0; i < n; i++)
            for (int y = 0; y < in->h; y++)
                memcpy(tensor_image(q, b, st->out, i) + i8_at(out, y, 0), tensor_image(q, b, st->in, i) + i8_at(in, y, 0),
                       (size_t)in->w * in->cp);
        break;
    case STEP_ADD: case STEP_CONCAT:
        for (int i = 0; i < n; i++) run_join(q, st, b, i);
        break;
    case STEP_REF:
        for (int i = 0; i < n; i++) {
            to_chw(in, tensor_image(q, b, st->in, i), b->ca);
            if (o->kind == OP_CONV && st->out < 0) {   /* the last conv: float (c,h,w) */
                cn_i8_ref_conv_op(o, b->ca, NULL, tail_value(q, b, 0, i));
                continue;
            }
            if (o->kind == OP_CONV) cn_i8_ref_conv_op(o, b->ca, b->cb, NULL);
            else cn_i8_ref_int8_op(o, b->ca, b->cb);
            from_chw(out, st->out == st->in ? b->ca : b->cb, tensor_image(q, b, st->out, i));
        }
        break;
    }
}

/* Images first .. first+n-1 (n <= I8_CHUNK): scores (n, classes), classes_out (n). */
static void run_chunk(const cn_int8_model *q, const chunk_buffers *b, const float *images, int n, float *scores,
                      int *classes_out) {
    size_t pixels = (size_t)cn_shape_size(q->input);
    for (int i = 0; i < n; i++) quantise_input(q, images + (size_t)i * pixels, tensor_image(q, b, 0, i), (uint8_t *)b->ca);
    for (int s = 0; s < q->num_steps; s++) run_step(q, &q->steps[s], b, n);
    const export_plan *p = &q->plan;
    for (int i = 0; i < n; i++) {
        for (int j = p->last_weighted + 1; j < p->num_ops; j++) {
            const export_op *o = &p->ops[j];
            const float *ins[CN_MAX_INPUTS];
            for (int k = 0; k < o->num_in; k++) ins[k] = tail_value(q, b, q->tail_slot[o->in_v[k]], i);
            cn_i8_ref_float_op(o, ins, tail_value(q, b, q->tail_slot[o->out_v], i));
        }
        const float *cur = tail_value(q, b, q->tail_slot[p->out_value], i);
        int best = 0;
        for (int k = 1; k < q->classes; k++) if (cur[k] > cur[best]) best = k;
        if (scores) memcpy(scores + (size_t)i * q->classes, cur, (size_t)q->classes * sizeof *cur);
        if (classes_out) classes_out[i] = best;
    }
}

cn_status cn_int8_predict(const cn_int8_model *q, const float *images, int n, int threads, float *scores,
                          int *classes_out) {
    if (!q || (n > 0 && !images) || n < 0 || threads < 1)
        return cn_fail(CN_ERR_ARG, "int8 inference: bad arguments (%d images, %d threads)", n, threads);
    int chunks = (n + I8_CHUNK - 1) / I8_CHUNK;
    if (threads > chunks) threads = chunks > 0 ? chunks : 1;
    size_t pixels = (size_t)cn_shape_size(q->input);
    chunk_buffers *bufs = cn_calloc((size_t)threads, sizeof *bufs);
    cn_status st = bufs ? CN_OK : CN_ERR_NOMEM;
    for (int t = 0; t < threads && !st; t++) {
        chunk_buffers *b = &bufs[t];
        b->ws = malloc(I8_CHUNK * q->image_bytes);
        b->fa = cn_alloc_floats((size_t)q->num_tail * I8_CHUNK * q->float_size);
        b->ca = malloc(CN_MAX_INPUTS * q->chw_size + 16);   /* + 16: gather_patches' word reads past a plane's end */
        b->cb = malloc(q->chw_size);
        if (!b->ws || !b->fa || !b->ca || !b->cb) st = CN_ERR_NOMEM;
        else memset(b->ws, CN_I8_ZERO, I8_CHUNK * q->image_bytes);   /* the borders stay zero */
    }
    if (!st) {
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int c = 0; c < chunks; c++) {
            int first = c * I8_CHUNK, count = n - first < I8_CHUNK ? n - first : I8_CHUNK;
            run_chunk(q, &bufs[omp_get_thread_num()], images + (size_t)first * pixels, count,
                      scores ? scores + (size_t)first * q->classes : NULL, classes_out ? classes_out + first : NULL);
        }
    }
    for (int t = 0; bufs && t < threads; t++) {
        free(bufs[t].ws); cn_free_aligned(bufs[t].fa); free(bufs[t].ca); free(bufs[t].cb);
    }
    free(bufs);
    return st == CN_ERR_NOMEM ? cn_fail(CN_ERR_NOMEM, "int8 inference: out of memory for %d threads' buffers", threads) : st;
}

#define EVAL_IMAGES 1024

cn_status cn_int8_evaluate(const cn_int8_model *q, const cn_split *split, int threads, double *loss_sum, int *correct,
                           int *predictions) {
    size_t pixels = (size_t)cn_shape_size(q->input);
    if (cn_split_image_size(split) != pixels)
        return cn_fail(CN_ERR_SHAPE, "int8 inference: the images have %zu pixels, the model takes %zu",
                       cn_split_image_size(split), pixels);
    for (int i = 0; i < split->count; i++)
        if (split->labels[i] >= q->classes)
            return cn_fail(CN_ERR_SHAPE, "image %d has label %d but the model outputs only %d classes (0..%d)", i,
                           split->labels[i], q->classes, q->classes - 1);
    float *x = malloc(EVAL_IMAGES * pixels * sizeof *x), *scores = malloc((size_t)EVAL_IMAGES * q->classes * sizeof *scores);
    int *labels = malloc(EVAL_IMAGES * sizeof *labels), *pred = malloc(EVAL_IMAGES * sizeof *pred);
    cn_status st = x && scores && labels && pred ? CN_OK : cn_fail(CN_ERR_NOMEM, "int8 inference: out of memory");
    double total = 0.0;
    int hits = 0;
    for (int start = 0; start < split->count && !st; start += EVAL_IMAGES) {
        int n = split->count - start < EVAL_IMAGES ? split->count - start : EVAL_IMAGES;
        const uint8_t *src = split->images + (size_t)start * pixels;
        for (size_t i = 0; i < (size_t)n * pixels; i++) x[i] = src[i] / 255.0f;
        for (int i = 0; i < n; i++) labels[i] = split->labels[start + i];
        st = cn_int8_predict(q, x, n, threads, scores, pred);
        if (st) break;
        int c = 0;
        total += cn_loss_batch(scores, labels, n, q->classes, q->log_probs, 0.0f, NULL, &c);
        hits += c;
        if (predictions) memcpy(predictions + start, pred, (size_t)n * sizeof *pred);
    }
    free(x); free(scores); free(labels); free(pred);
    *loss_sum = total;
    *correct = hits;
    return st;
}

float *cn_int8_calibration_images(const cn_split *train, int *count) {
    if (*count > train->count) *count = train->count;
    if (*count < 1) return NULL;
    size_t pixels = cn_split_image_size(train);
    float *x = malloc((size_t)*count * pixels * sizeof *x);
    for (int i = 0; x && i < *count; i++) {
        const uint8_t *img = train->images + (size_t)((long long)i * train->count / *count) * pixels;
        for (size_t j = 0; j < pixels; j++) x[(size_t)i * pixels + j] = img[j] / 255.0f;
    }
    return x;
}

cn_status cn_int8_model_calibrated(const cn_model *m, const float *mean, const float *std, const cn_split *train,
                                   int *calib_count, cn_int8_model **out) {
    *out = NULL;
    if (cn_split_image_size(train) != (size_t)cn_shape_size(m->input))
        return cn_fail(CN_ERR_SHAPE, "%s: the training images have %zu pixels, the model takes %d", m->source_name,
                       cn_split_image_size(train), cn_shape_size(m->input));
    if (train->count < 1) return cn_fail(CN_ERR_ARG, "%s: int8 calibration needs training images; there are none", m->source_name);
    float *calib = cn_int8_calibration_images(train, calib_count);
    if (!calib) return cn_fail(CN_ERR_NOMEM, "%s: out of memory for %d calibration images", m->source_name, *calib_count);
    cn_status st = cn_int8_model_create(m, mean, std, calib, *calib_count, out);
    free(calib);
    return st;
}
