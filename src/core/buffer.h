/* Refcounted byte buffers: a broadcast is encoded once and the same buffer is queued on every
 * recipient's connection; each completed write releases one reference (h2o's shared memory).
 *
 * Layout: one allocation holds the header, SIOC_BUFFER_HEADROOM spare bytes, then the data.
 * The WebSocket layer writes the frame header into the headroom once (a server frame is never
 * masked, so the framed bytes are identical for every recipient) and remembers it in
 * websocket_header_length; a compressed copy, made once, hangs off `deflated`. Single-threaded: the
 * loop thread owns every buffer.
 *
 * Small buffers (up to SIOC_BUFFER_SPARE_LENGTH bytes of data) are blocks of one size, and a
 * thread keeps up to 64 of those it freed for its next small buffers: an echo's ack, made,
 * written and freed in every round trip, then costs no malloc and free. They are freed when the
 * thread exits, and poisoned while kept under AddressSanitizer, which reports a use after the
 * last unref as it would for freed memory. */
#ifndef SIOC_CORE_BUFFER_H
#define SIOC_CORE_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#define SIOC_BUFFER_HEADROOM 16
/* With the header (32 bytes) and the headroom, a small buffer is a 120-byte block (a 128-byte
 * malloc chunk). */
#define SIOC_BUFFER_SPARE_LENGTH 72

typedef struct sioc__buffer_s {
    uint32_t refcount;
    uint8_t binary;                  /* 1: binary message, 0: text */
    uint8_t websocket_header_length; /* 0 until framed for WebSocket */
    uint8_t no_compress;             /* the sender's compress: false (Node's packet option) */
    uint8_t small;                   /* a small buffer's block, kept for reuse when freed */
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

/* How many small buffers' blocks the calling thread keeps (tests). */
size_t sioc__buffer_spare_count(void);

#endif
