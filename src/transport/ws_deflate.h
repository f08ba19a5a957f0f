/* permessage-deflate (RFC 7692) for the WebSocket server: the negotiation of
 * Sec-WebSocket-Extensions as ws 8 parses and answers it, and the zlib streams.
 *
 * Memory: ws and uWS keep a deflate and an inflate stream per socket (up to ~300 KB with zlib's
 * defaults). sioc always answers with server_no_context_takeover and client_no_context_takeover
 * (RFC 7692 §7.1.1: a server may add both to any accepted offer), so no message depends on an
 * earlier one. Then one deflate stream and one inflate stream per loop serve every connection,
 * each reset after a message, an idle compressed connection holds no zlib state at all, and a
 * broadcast is compressed once: its compressed frame is the same for every recipient. The price
 * is ratio on runs of small similar messages, which stay under the 1024-byte threshold anyway.
 * The answer is byte for byte ws's with { serverNoContextTakeover: true,
 * clientNoContextTakeover: true }. */
#ifndef SIOC_TRANSPORT_WS_DEFLATE_H
#define SIOC_TRANSPORT_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "core/buffer.h"

#define SIOC_WS_DEFLATE_ANSWER_SIZE 192

typedef struct sioc__ws_deflate_agreement_s {
    /* The Sec-WebSocket-Extensions value to answer, NUL-terminated. */
    char answer[SIOC_WS_DEFLATE_ANSWER_SIZE];
    /* The window the server may compress with: 15, or the offer's server_max_window_bits. */
    uint8_t server_window_bits;
} sioc__ws_deflate_agreement_t;

/* Parses a Sec-WebSocket-Extensions value (every header of that name joined with ", ", as Node
 * joins them) as ws's extension.parse and PerMessageDeflate.accept do. Returns 1 with *out
 * filled when permessage-deflate is accepted, 0 when the value offers no permessage-deflate,
 * -1 when ws answers 400 "Invalid or unacceptable Sec-WebSocket-Extensions header" (syntax
 * error anywhere; an unknown, repeated or invalid permessage-deflate parameter). */
int sioc__ws_deflate_negotiate(const char *value, size_t length, sioc__ws_deflate_agreement_t *out);

/* The per-loop streams, made on first use: one deflate stream per window size (in practice
 * only 15: clients do not send server_max_window_bits) and one inflate stream. */
typedef struct sioc__ws_zlib_s {
    z_stream deflate[8]; /* window bits 8..15 */
    uint8_t deflate_ready[8];
    z_stream inflate;
    uint8_t inflate_ready;
} sioc__ws_zlib_t;

void sioc__ws_zlib_init(sioc__ws_zlib_t *zlib);
void sioc__ws_zlib_free(sioc__ws_zlib_t *zlib);

/* One message compressed with window_bits (9..15; zlib has no raw 256-byte window, so the
 * caller sends uncompressed when 8 was agreed) and the RFC 7692 §7.2.1 tail (00 00 ff ff)
 * removed: a new buffer with the binary flag of the original, or NULL (send uncompressed). */
sioc__buffer_t *sioc__ws_zlib_deflate(sioc__ws_zlib_t *zlib, int window_bits, const uint8_t *data,
                                      size_t length, int binary);

/* Inflates one message (the tail is added here) into *out (malloc'ed, *out_length bytes;
 * free() it). Stops as soon as the output passes max_length, so a zip bomb costs at most
 * max_length + one chunk. Returns 0, or the close code: 1009 (too big), 1007 (not valid
 * deflate data, as ws), 1011 (out of memory). */
int sioc__ws_zlib_inflate(sioc__ws_zlib_t *zlib, const uint8_t *data, size_t length,
                          size_t max_length, uint8_t **out, size_t *out_length);

#endif
