/* Refcounted byte buffers: a broadcast is encoded once and the same buffer is queued on every
 * recipient's connection; each completed write releases one reference (h2o's shared memory).
 *
 * Layout: one allocation holds the header, SIOC_BUFFER_HEADROOM spare bytes, then the data.
 * The WebSocket layer writes the frame header into the headroom once (a server frame is never
 * masked, so the framed bytes are identical for every recipient) and remembers it in
 * websocket_header_length; a compressed copy, made once, hangs off `deflated`. Single-threaded: the
 * loop thread owns every buffer. */
#ifndef SIOC_CORE_BUFFER_H
#define SIOC_CORE_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#define SIOC_BUFFER_HEADROOM 16

typedef struct sioc__buffer_s {
    uint32_t refcount;
    uint8_t binary;                  /* 1: binary message, 0: text */
    uint8_t websocket_header_length; /* 0 until framed for WebSocket */
    uint8_t no_compress;             /* the sender's compress: false (Node's packet option) */
    size_t length;                   /* bytes of data */
    /* permessage-deflate: the message compressed and framed once, for every recipient that
     * negotiated the default window (owned; freed with this buffer). */
    struct sioc__buffer_s *deflated;
    uint8_t *data; /* points into storage, after the headroom */
    uint8_t storage[];
} sioc__buffer_t;

/* A new buffer with refcount 1 and room for length bytes (contents undefined), or NULL. */
sioc__buffer_t *sioc__buffer_new(size_t length, int binary);

/* A new buffer holding a copy of data, or NULL. */
sioc__buffer_t *sioc__buffer_new_copy(const void *data, size_t length, int binary);

/* A new buffer holding prefix followed by data (e.g. the Engine.IO type byte and a payload). */
sioc__buffer_t *sioc__buffer_new_prefixed(uint8_t prefix, const void *data, size_t length,
                                          int binary);

static inline sioc__buffer_t *sioc__buffer_ref(sioc__buffer_t *buffer)
{
    buffer->refcount++;
    return buffer;
}

/* Drops one reference; frees on the last. Accepts NULL. */
void sioc__buffer_unref(sioc__buffer_t *buffer);

#endif
