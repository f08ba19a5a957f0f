/* Engine.IO v4 packet and polling-payload codec. Pure: no I/O.
 *
 * Packet over WebSocket: a text frame "<type digit>[data]", or a binary frame = a message
 * packet whose data is the frame (no type byte in v4).
 * Polling payload: packets joined by the record separator 0x1e; a binary packet is
 * "b" + base64(data). An empty packet, an unknown type character or bad base64 is a parse
 * error ("parser error" in Node; the server then closes with reason "parse error"). */
#ifndef SIOC_ENGINEIO_EIO_PARSER_H
#define SIOC_ENGINEIO_EIO_PARSER_H

#include <stddef.h>
#include <stdint.h>

enum sioc__eio_packet_type {
    SIOC_EIO_OPEN = 0,
    SIOC_EIO_CLOSE = 1,
    SIOC_EIO_PING = 2,
    SIOC_EIO_PONG = 3,
    SIOC_EIO_MESSAGE = 4,
    SIOC_EIO_UPGRADE = 5,
    SIOC_EIO_NOOP = 6,
};

#define SIOC_EIO_RECORD_SEPARATOR 0x1e

typedef struct sioc__eio_packet_s {
    int type;            /* enum sioc__eio_packet_type */
    int binary;          /* 1: data is raw bytes (message packets only) */
    const uint8_t *data; /* view into the caller's buffer; after the type character */
    size_t length;
} sioc__eio_packet_t;

/* A text packet (WebSocket text frame, or one record of a payload without the 'b' form).
 * Returns 0, or -1 for an empty packet or an unknown type. */
int sioc__eio_packet_decode_text(const uint8_t *data, size_t length, sioc__eio_packet_t *out);

/* Iterates over the records of a polling POST body. Binary records ("b...") are base64-decoded
 * in place, so the body must be mutable and outlive the packets. */
typedef struct sioc__eio_payload_reader_s {
    uint8_t *data;
    size_t length;
    size_t offset;
    int done;
} sioc__eio_payload_reader_t;

void sioc__eio_payload_reader_init(sioc__eio_payload_reader_t *reader, uint8_t *data,
                                   size_t length);

/* Returns 1 with *out filled, 0 at the end of the payload, -1 on a parse error (the reader then
 * stays at end). An empty body is a parse error (Node answers it with a close). */
int sioc__eio_payload_reader_next(sioc__eio_payload_reader_t *reader, sioc__eio_packet_t *out);

/* Bytes needed to write one packet into a polling payload (type char + data, or
 * 'b' + base64(data) for binary). */
size_t sioc__eio_payload_packet_length(int type, int binary, size_t data_length);

/* Writes the record (no separator) and returns sioc__eio_payload_packet_length(...). */
size_t sioc__eio_payload_write_packet(uint8_t *out, int type, int binary, const uint8_t *data,
                                      size_t data_length);

/* The open packet's JSON: {"sid":"..","upgrades":[..],"pingInterval":N,"pingTimeout":N,
 * "maxPayload":N} prefixed with '0'. Returns a malloc'd NUL-terminated string (caller frees)
 * or NULL on allocation failure; *length gets its length. */
char *sioc__eio_encode_open(const char *sid, int offer_websocket_upgrade, unsigned ping_interval_ms,
                            unsigned ping_timeout_ms, uint64_t max_payload, size_t *length);
/* The same into out (NUL-terminated when it fits, as snprintf): returns the packet's length
 * without the NUL, written only when less than size; 0 when sid is not plain. */
size_t sioc__eio_encode_open_into(char *out, size_t size, const char *sid,
                                  int offer_websocket_upgrade, unsigned ping_interval_ms,
                                  unsigned ping_timeout_ms, uint64_t max_payload);

#endif
