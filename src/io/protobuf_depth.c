/* Protobuf nesting bound on the wire format (see protobuf_depth.h). */
#include "io/protobuf_depth.h"
#include "core/error.h"
#include <stdio.h>
#include <string.h>

#define PATH_SHOWN 6   /* levels named in the message; deeper ones are "..." */

typedef struct {
    const uint8_t *base;   /* start of the whole buffer: offsets in messages */
    int max_depth;
    const char *name;
    char path[PATH_SHOWN][96];   /* "Message.field" of the outermost levels */
} walk;

/* Reads a varint at *p (< end); false if it is cut short or longer than 10 bytes. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *v = x; return 1; }
    }
    return 0;
}

static cn_status too_deep(const walk *w, const uint8_t *at) {
    char text[400] = "";
    size_t len = 0;
    for (int i = 0; i < PATH_SHOWN && i < w->max_depth && len < sizeof text; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", i ? " > " : "", w->path[i]);
    if (len < sizeof text) snprintf(text + len, sizeof text - len, " > ...");
    return cn_fail(CN_ERR_UNSUPPORTED, "%s: offset %zu: nesting deeper than %d levels (%s); not a model convnet reads",
                   w->name, (size_t)(at - w->base), w->max_depth, text);
}

/* Walks one message of type d in [p, end) at nesting level `depth` (1 = top).
 * Returns CN_OK also when the bytes stop making sense (protobuf-c decides then). */
static cn_status walk_message(walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                              int depth) {
    while (p < end) {
        uint64_t key, v;
        if (!read_varint(&p, end, &key)) return CN_OK;
        switch (key & 7) {
        case 0: if (!read_varint(&p, end, &v)) return CN_OK; break;
        case 1: if ((size_t)(end - p) < 8) return CN_OK; p += 8; break;
        case 5: if ((size_t)(end - p) < 4) return CN_OK; p += 4; break;
        case 2: {
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p)) return CN_OK;
            uint64_t number = key >> 3;
            const ProtobufCFieldDescriptor *f =
                number <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)number) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && f->descriptor) {
                if (depth - 1 < PATH_SHOWN)
                    snprintf(w->path[depth - 1], sizeof w->path[depth - 1], "%s.%s", d->short_name, f->name);
                if (depth + 1 > w->max_depth) return too_deep(w, p);
                cn_status st = walk_message(w, f->descriptor, p, p + v, depth + 1);
                if (st) return st;
            }
            p += v;
            break;
        }
        default: return CN_OK;   /* groups (3, 4) and invalid wire types */
        }
    }
    return CN_OK;
}

cn_status cn_protobuf_check_depth(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size,
                                  int max_depth, const char *name) {
    if (!desc || (!data && size) || max_depth < 1) return cn_fail(CN_ERR_ARG, "cn_protobuf_check_depth: bad arguments");
    walk w = {.base = data, .max_depth = max_depth, .name = name ? name : "protobuf"};
    return size ? walk_message(&w, desc, data, data + size, 1) : CN_OK;
}
