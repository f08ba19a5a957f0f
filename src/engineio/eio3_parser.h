/* Engine.IO v3 polling payloads (allowEIO3), as engine.io 6 reads and writes them for EIO=3
 * (its parser-v3). Pure: no I/O.
 *
 * Text payload: records "<length>:<packet>", the length counted in UTF-16 code units (a
 * JavaScript string's length: one per code point, two for one outside the BMP); a binary
 * packet is "b4" + base64(data); "0:" is an empty record, skipped.
 * Binary payload (XHR2, Content-Type application/octet-stream): records
 * <0 (text) | 1 (binary)> <length as one byte per decimal digit> 0xff <bytes>, a text record
 * holding the packet's UTF-8 bytes, a binary one the type byte then the data.
 * Packets are the v4 ones (eio_parser.h); over WebSocket a v3 binary frame starts with the type
 * byte. */
#ifndef SIOC_ENGINEIO_EIO3_PARSER_H
#define SIOC_ENGINEIO_EIO3_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "engineio/eio_parser.h"

/* Lengths above this many decimal digits are refused (past any body the server accepts). */
#define SIOC_EIO3_MAX_LENGTH_DIGITS 10

typedef struct sioc__eio3_payload_reader_s {
    uint8_t *data;
    size_t length;
    size_t offset;
    int binary_framing; /* 1: the XHR2 binary payload */
    int done;
} sioc__eio3_payload_reader_t;

/* The body must be mutable (base64 records are decoded in place) and outlive the packets. */
void sioc__eio3_payload_reader_init(sioc__eio3_payload_reader_t *reader, uint8_t *data,
                                    size_t length, int binary_framing);

/* Returns 1 with *out filled, 0 at the end, -1 on a parse error (then -1 forever): a length that
 * is empty, not decimal, too long or past the end, a record that ends inside a UTF-16 surrogate
 * pair, text that is not UTF-8, an unknown packet type, bad base64. An empty text body is a
 * parse error (as in Node); an empty binary body holds no packet. */
int sioc__eio3_payload_reader_next(sioc__eio3_payload_reader_t *reader, sioc__eio_packet_t *out);

/* A v3 binary WebSocket frame: the type byte, then the data. Returns 0 or -1. */
int sioc__eio3_packet_decode_binary(const uint8_t *data, size_t length, sioc__eio_packet_t *out);

/* The length of valid UTF-8 text in UTF-16 code units. */
size_t sioc__eio3_utf16_length(const uint8_t *text, size_t length);

/* One record of a text payload for an encoded packet: text = the packet with its type
 * character ("4hello"), binary = a message's raw data (written "b4" + base64). */
size_t sioc__eio3_text_record_length(const uint8_t *packet, size_t length, int binary);
size_t sioc__eio3_write_text_record(uint8_t *out, const uint8_t *packet, size_t length, int binary);

/* One record of a binary (XHR2) payload, for the same packets. */
size_t sioc__eio3_binary_record_length(size_t length, int binary);
size_t sioc__eio3_write_binary_record(uint8_t *out, const uint8_t *packet, size_t length,
                                      int binary);

#endif
