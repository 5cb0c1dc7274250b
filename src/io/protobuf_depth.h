/* A bound on how deeply protobuf messages nest, checked on the wire bytes
 * before protobuf-c unpacks them: protobuf_c_message_unpack recurses once per
 * nested message, so a small file nesting thousands of levels deep (ONNX
 * graph attributes holding subgraphs, TypeProto sequences of sequences)
 * would overflow the stack. */
#ifndef CN_IO_PROTOBUF_DEPTH_H
#define CN_IO_PROTOBUF_DEPTH_H
#include "convnet.h"
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* Walks the message `desc` encoded in data[0..size), following only the fields
 * that `desc` (and the descriptors it names) declares as messages, to at most
 * `max_depth` levels (the top message is level 1). Deeper nesting:
 * CN_ERR_UNSUPPORTED, "NAME: offset N: nesting deeper than MAX levels
 * (Outer.field > Inner.field > ...)". Wire data it cannot follow (truncated,
 * bad lengths) ends the walk with CN_OK: protobuf-c rejects it then, without
 * having recursed deeper than the walk did. Uses max_depth stack frames of
 * a few dozen bytes. */
cn_status cn_protobuf_check_depth(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size,
                                  int max_depth, const char *name);

#endif
