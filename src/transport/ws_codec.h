/* WebSocket (RFC 6455) codec, server side. Pure: no I/O, no libuv; bytes in, events out.
 *
 * Decoder contract
 * - The caller owns the input buffer and feeds it with sioc__ws_decoder_feed(). The input is
 *   mutable: client frames are unmasked in place.
 * - A message that arrives whole in one frame inside the current input is returned as a view
 *   into that input (no copy). Only fragmented messages, or frames split across reads, are
 *   copied into the decoder's own buffer, which is freed as soon as the message is delivered,
 *   so an idle connection holds no buffer.
 * - Event data stays valid until the next call to sioc__ws_decoder_feed() or _free().
 * - Errors carry the close code the server must send (1002 protocol error, 1007 invalid UTF-8,
 *   1009 too big, 1008 too many fragments) and a short reason; after an error the decoder
 *   refuses further input.
 *
 * Checks: frames from a client must be masked; RSV1/2/3 must be clear, except RSV1 on the first
 * frame of a data message once permessage-deflate was negotiated (allow_rsv1; RSV1 on a control
 * frame or a continuation is 1002, RFC 7692 §6.1); unknown opcodes are refused;
 * control frames must be final and carry at most 125 bytes; a continuation needs a message in
 * progress and a new data frame needs none; 64-bit lengths must have the top bit clear; text
 * messages are validated as UTF-8 incrementally; close frames carry no body, or a valid code
 * (1000-1003, 1007-1014, 3000-4999) plus a UTF-8 reason. */
#ifndef SIOC_TRANSPORT_WS_CODEC_H
#define SIOC_TRANSPORT_WS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/utf8.h"

enum sioc__ws_opcode {
    SIOC_WS_OPCODE_CONTINUATION = 0x0,
    SIOC_WS_OPCODE_TEXT = 0x1,
    SIOC_WS_OPCODE_BINARY = 0x2,
    SIOC_WS_OPCODE_CLOSE = 0x8,
    SIOC_WS_OPCODE_PING = 0x9,
    SIOC_WS_OPCODE_PONG = 0xA,
};

enum sioc__ws_close_code {
    SIOC_WS_CLOSE_NORMAL = 1000,
    SIOC_WS_CLOSE_GOING_AWAY = 1001,
    SIOC_WS_CLOSE_PROTOCOL_ERROR = 1002,
    SIOC_WS_CLOSE_NO_STATUS = 1005, /* never sent; reported when a close frame had no code */
    SIOC_WS_CLOSE_INVALID_PAYLOAD = 1007,
    SIOC_WS_CLOSE_POLICY_VIOLATION = 1008,
    SIOC_WS_CLOSE_MESSAGE_TOO_BIG = 1009,
    SIOC_WS_CLOSE_INTERNAL_ERROR = 1011,
};

typedef struct sioc__ws_limits_s {
    uint64_t max_message_size; /* whole message after reassembly; over it: 1009 */
    uint32_t max_fragments;    /* frames (empty ones too) in one message; over it: 1008 */
    int allow_rsv1;            /* 1 once permessage-deflate was negotiated */
} sioc__ws_limits_t;

typedef enum sioc__ws_event_type {
    SIOC_WS_EVENT_NEED_MORE = 0, /* everything given was consumed; feed more */
    SIOC_WS_EVENT_TEXT,          /* complete, UTF-8-valid text message */
    SIOC_WS_EVENT_BINARY,        /* complete binary message */
    SIOC_WS_EVENT_PING,          /* data = ping payload (<= 125 bytes): answer with a pong */
    SIOC_WS_EVENT_PONG,
    SIOC_WS_EVENT_CLOSE, /* close_code (1005 when absent), data = reason */
    SIOC_WS_EVENT_ERROR, /* close_code to send, error = reason; the connection must close */
} sioc__ws_event_type_t;

typedef struct sioc__ws_event_s {
    sioc__ws_event_type_t type;
    const uint8_t *data;
    size_t length;
    uint16_t close_code;
    const char *error; /* static string, for ERROR */
    /* TEXT / BINARY: RSV1 was set (permessage-deflate): data is the compressed message, which
     * the caller inflates, and a text message is not yet checked as UTF-8. */
    uint8_t compressed;
} sioc__ws_event_t;

#define SIOC_WS_MAX_CONTROL 125

/* An idle WebSocket keeps only this: the limits and, while a frame or a fragmented message is
 * in progress (a header or payload split across reads, a message being reassembled, a buffer
 * lent to the last event, a failure to repeat), a pointer to the state that carries it
 * (ws_codec.c: about 100 bytes, on the heap only then). A feed works on a state on its stack
 * and moves it to the heap only when it must outlive the feed. */
typedef struct sioc__ws_decoder_s {
    sioc__ws_limits_t limits;
    struct sioc__ws_frame_state_s *partial; /* owned; NULL between whole frames */
} sioc__ws_decoder_t;

/* What a decoder holds (for the unit tests and the fuzz target's checks): all zero and NULL
 * when it has no partial state. */
typedef struct sioc__ws_decoder_held_s {
    const uint8_t *message; /* the reassembly buffer */
    size_t message_length;
    size_t message_capacity;
    const uint8_t *control; /* a split control frame's copy */
    uint8_t message_opcode; /* 0 when no message is in progress */
} sioc__ws_decoder_held_t;
sioc__ws_decoder_held_t sioc__ws_decoder_held(const sioc__ws_decoder_t *decoder);

void sioc__ws_decoder_init(sioc__ws_decoder_t *decoder, const sioc__ws_limits_t *limits);
void sioc__ws_decoder_free(sioc__ws_decoder_t *decoder); /* frees the owned buffer; reusable */

/* Decodes from input[0..length). Sets *consumed to the bytes used (always <= length) and
 * returns after at most one event, so the caller loops:
 *     while (offset < n) { feed(d, in + offset, n - offset, &used, &ev); offset += used; ... }
 * NEED_MORE means all of the input was consumed without completing an event. */
void sioc__ws_decoder_feed(sioc__ws_decoder_t *decoder, uint8_t *input, size_t length,
                           size_t *consumed, sioc__ws_event_t *event);

/* Server frame header (never masked) for a payload of payload_length bytes.
 * Writes 2, 4 or 10 bytes to out and returns that count. */
#define SIOC_WS_MAX_HEADER_LENGTH 10
#define SIOC_WS_RSV1 0x40 /* first header byte: a permessage-deflate message */
size_t sioc__ws_encode_header(uint8_t out[SIOC_WS_MAX_HEADER_LENGTH], int fin, int opcode,
                              uint64_t payload_length);

/* A whole close frame: code (or 0 for no body) and a reason truncated to fit 125 bytes at a
 * UTF-8 boundary. out must hold 2 + 125 bytes. Returns the frame length. */
#define SIOC_WS_MAX_CLOSE_FRAME_LENGTH 127
size_t sioc__ws_encode_close(uint8_t out[SIOC_WS_MAX_CLOSE_FRAME_LENGTH], uint16_t code,
                             const char *reason);

/* 1 when a peer may send this close code (RFC 6455 §7.4 and the IANA registry: 1000-1003,
 * 1007-1014, 3000-4999). */
int sioc__ws_close_code_is_valid(uint16_t code);

/* Sec-WebSocket-Accept for a client key: base64(SHA-1(key + GUID)), 28 chars + NUL.
 * The key must be base64 of exactly 16 bytes (24 chars). Returns 0, or -1 for a bad key. */
#define SIOC_WS_ACCEPT_LENGTH 28
int sioc__ws_accept_key(const char *key, size_t key_length, char out[SIOC_WS_ACCEPT_LENGTH + 1]);

/* Sec-WebSocket-Protocol as ws 8 parses it (lib/subprotocol.js): tokens separated by commas,
 * spaces and tabs around them but not before the first, none empty, none twice. In linear
 * time plus a sort (ws fixed a ReDoS here, CVE-2021-32640). On success *first / *first_length
 * is the first protocol, which ws answers when the server has no handleProtocols (engine.io
 * has none). Returns 0, or -1 when ws answers 400 "Invalid Sec-WebSocket-Protocol header". */
int sioc__ws_parse_protocols(const char *value, size_t length, const char **first,
                             size_t *first_length);

#endif
