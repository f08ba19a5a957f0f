/* Socket.IO v5 packet codec (the default JSON parser of socket.io-parser 4.2.x). Pure: no I/O.
 *
 * Text form: <type>[<attachments>-][<namespace>,][<ack id>][JSON payload]; the namespace is
 * written only when it is not "/", and a decoder accepts it ending at ',' or at the end of the
 * string ("40/custom"). Binary packets (BINARY_EVENT, BINARY_ACK) are followed by exactly
 * <attachments> binary messages; the payload refers to them with
 * {"_placeholder":true,"num":N}. Placeholders are validated and KEPT in the JSON: the
 * application reads a binary argument through the attachments array, and re-emitting the same
 * arguments (echo) needs no reconstruction.
 *
 * Validation (what Node's socket.io-parser refuses; every refusal closes the connection):
 * CONNECT payload absent or a JSON object; DISCONNECT no payload; CONNECT_ERROR string or
 * object; EVENT/BINARY_EVENT a non-empty array whose first element is a number or a string
 * that is not reserved (connect, connect_error, disconnect, disconnecting, newListener,
 * removeListener); ACK/BINARY_ACK an array; attachments an integer 0..max_attachments (10);
 * placeholders with an integer num in [0, attachments); trailing garbage after the JSON;
 * plain text while attachments are pending; binary while none are pending. */
#ifndef SIOC_SOCKETIO_SIO_PARSER_H
#define SIOC_SOCKETIO_SIO_PARSER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "socketio/sio_scan.h"

enum sioc__sio_packet_type {
    SIOC_SIO_CONNECT = 0,
    SIOC_SIO_DISCONNECT = 1,
    SIOC_SIO_EVENT = 2,
    SIOC_SIO_ACK = 3,
    SIOC_SIO_CONNECT_ERROR = 4,
    SIOC_SIO_BINARY_EVENT = 5,
    SIOC_SIO_BINARY_ACK = 6,
};

#define SIOC_SIO_DEFAULT_MAX_ATTACHMENTS 10
#define SIOC_SIO_NO_ACK_ID (-1)

typedef struct sioc__sio_attachment_s {
    uint8_t *data; /* owned by the packet (malloc) */
    size_t length;
} sioc__sio_attachment_t;

typedef struct sioc__sio_packet_s {
    int type;     /* enum sioc__sio_packet_type */
    char *nsp;    /* owned, NUL-terminated; "/" when absent on the wire */
    int64_t id;   /* ack id, or SIOC_SIO_NO_ACK_ID */
    json_t *data; /* owned reference; NULL when the packet had no payload */
    json_t *name; /* EVENT: the name, moved out of data by sioc__sio_event_from_packet (owned) */
    size_t attachment_count;             /* declared count (binary types) */
    sioc__sio_attachment_t *attachments; /* owned array of attachment_count entries */
    /* An EVENT kept as its bytes (decoder->keep_event_bytes): the payload, validated, borrowed
     * from the message being decoded (valid while it is dispatched); data stays NULL until
     * sioc__sio_packet_parse. NULL otherwise. */
    const char *raw;
    size_t raw_length;
    sioc__sio_scan_t scan; /* where raw's name and arguments are */
} sioc__sio_packet_t;

/* One JSON text as the decoder reads a payload, or NULL when it refuses it: JSON.parse's
 * grammar with jansson's values (flags are more json_loadb flags). No raw NUL byte. An integer
 * beyond int64 makes every integer a real (*as_real set, may be NULL), as JavaScript holds
 * them all. A lone UTF-16 surrogate escape ("\ud83d" from a client that cut an emoji in two)
 * is read as U+FFFD, which is what it shows as: JSON.parse keeps it, but UTF-8 cannot hold
 * it, and refusing the payload would close the connection. */
json_t *sioc__sio_json_load(const char *text, size_t length, size_t flags, int *as_real);

/* Parses a packet kept as bytes into data, as the decoder would have (0 also when there is
 * nothing to parse); -1 when out of memory (the bytes were validated when they came). */
int sioc__sio_packet_parse(sioc__sio_packet_t *packet);

/* Releases everything the packet owns and zeroes it; safe on a zeroed packet. */
void sioc__sio_packet_clear(sioc__sio_packet_t *packet);

/* Every Socket.IO client holds one: 32-bit counts make it 24 bytes rather than 40, and its
 * Engine.IO session's block (with the client in it) a smaller malloc class. */
typedef struct sioc__sio_decoder_s {
    sioc__sio_packet_t *pending; /* binary packet waiting for attachments (owned), or NULL */
    uint32_t max_attachments;    /* sioc__sio_decoder_init takes more as UINT32_MAX */
    uint32_t max_nsp_length;     /* namespace names longer than this are refused (default 256) */
    uint32_t received;           /* attachments received so far */
    uint8_t has_pending;
    /* An EVENT whose name is a plain string is validated by sio_scan.c and kept as its bytes
     * rather than parsed (pass-through handlers; the server sets it while it has any). */
    uint8_t keep_event_bytes;
} sioc__sio_decoder_t;

void sioc__sio_decoder_init(sioc__sio_decoder_t *decoder, size_t max_attachments);
void sioc__sio_decoder_free(sioc__sio_decoder_t *decoder);

/* Result of feeding the decoder. */
enum sioc__sio_decode_result {
    SIOC_SIO_DECODE_ERROR = -1,   /* *error set to a static message; decoder reset */
    SIOC_SIO_DECODE_PENDING = 0,  /* binary packet needs more attachments */
    SIOC_SIO_DECODE_COMPLETE = 1, /* *out filled; the caller owns it (sioc__sio_packet_clear) */
};

/* One Engine.IO text message (without the Engine.IO '4' prefix). */
int sioc__sio_decoder_add_text(sioc__sio_decoder_t *decoder, const char *data, size_t length,
                               sioc__sio_packet_t *out, const char **error);

/* One Engine.IO binary message: the next attachment of the pending packet (copied). */
int sioc__sio_decoder_add_binary(sioc__sio_decoder_t *decoder, const uint8_t *data, size_t length,
                                 sioc__sio_packet_t *out, const char **error);

/* Text form of a packet (attachments are sent after it, one binary message each, by the
 * caller). type, nsp (NULL = "/"), id, data and attachment_count are read; for binary types the
 * "<n>-" prefix is written from attachment_count. Returns a malloc'd NUL-terminated string
 * (caller frees) and its length, or NULL when data cannot be serialised. */
char *sioc__sio_encode(const sioc__sio_packet_t *packet, size_t *length);

/* Text that the encoder writes into, kept between packets so that encoding allocates nothing
 * once it has grown to the usual packet size. Zero-initialised; freed by sioc__sio_text_free. */
typedef struct sioc__sio_text_s {
    char *data; /* NUL-terminated after a successful encoding */
    size_t length;
    size_t capacity;
    int failed; /* out of memory, or a value JSON.stringify would not finish on */
} sioc__sio_text_t;

/* sioc__sio_encode into text (emptied first, its storage reused): 0, or -1 as NULL below. */
int sioc__sio_encode_into(const sioc__sio_packet_t *packet, sioc__sio_text_t *text);
void sioc__sio_text_free(sioc__sio_text_t *text);

/* 1 if name is a reserved event name a client may not emit. */
int sioc__sio_is_reserved_event(const char *name, size_t length);

#endif
