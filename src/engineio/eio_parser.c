/* Engine.IO v4 packet and polling-payload codec (see eio_parser.h).
 *
 * Text data is not UTF-8-validated here: the HTTP layer validates a whole polling body once,
 * and the WebSocket layer validates text frames, so checking again per packet would only cost
 * time. Splitting on the byte 0x1e is safe for UTF-8 text, as no byte of a multi-byte sequence
 * is below 0x80.
 *
 * Like Node's decodePayload, the payload reader stops at the first bad record; packets read
 * before it have already been handed out. Node keeps them and the server then closes the session
 * with "parse error"; our server closes the session as soon as it sees -1. */
#include "engineio/eio_parser.h"

#include "core/base64.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A polling record of this form is a binary message: 'b' + base64(data). */
#define BINARY_RECORD_MARKER 'b'

/* Values of sioc__eio_payload_reader_t.done. After a parse error the reader keeps answering -1
 * rather than 0, so that a caller who calls again cannot mistake a broken payload for one that
 * ended cleanly. */
enum { READER_RUNNING = 0, READER_FINISHED = 1, READER_FAILED = -1 };

static int packet_type_from_character(uint8_t character)
{
    if (character < '0' || character > '0' + SIOC_EIO_NOOP)
        return -1;
    return character - '0';
}

int sioc__eio_packet_decode_text(const uint8_t *data, size_t length, sioc__eio_packet_t *out)
{
    if (length == 0)
        return -1;
    int type = packet_type_from_character(data[0]);
    if (type < 0)
        return -1;
    out->type = type;
    out->binary = 0;
    out->data = data + 1;
    out->length = length - 1;
    return 0;
}

void sioc__eio_payload_reader_init(sioc__eio_payload_reader_t *reader, uint8_t *data, size_t length)
{
    reader->data = data;
    reader->length = length;
    reader->offset = 0;
    reader->done = READER_RUNNING;
}

/* record[0] is the marker; the base64 after it is decoded over itself. */
static int decode_binary_record(uint8_t *record, size_t length, sioc__eio_packet_t *out)
{
    uint8_t *encoded = record + 1;
    long decoded_length = sioc__base64_decode((const char *)encoded, length - 1, encoded);
    if (decoded_length < 0)
        return -1;
    out->type = SIOC_EIO_MESSAGE;
    out->binary = 1;
    out->data = encoded;
    out->length = (size_t)decoded_length;
    return 0;
}

static int decode_record(uint8_t *record, size_t length, sioc__eio_packet_t *out)
{
    if (length > 0 && record[0] == BINARY_RECORD_MARKER)
        return decode_binary_record(record, length, out);
    return sioc__eio_packet_decode_text(record, length, out);
}

static int fail_reader(sioc__eio_payload_reader_t *reader)
{
    reader->offset = reader->length;
    reader->done = READER_FAILED;
    return -1;
}

int sioc__eio_payload_reader_next(sioc__eio_payload_reader_t *reader, sioc__eio_packet_t *out)
{
    if (reader->done == READER_FINISHED)
        return 0;
    if (reader->done == READER_FAILED)
        return -1;
    /* Nothing left while running means an empty body or an empty record after a separator.
     * Checked before forming a pointer, as data may be NULL when length is 0. */
    size_t remaining = reader->length - reader->offset;
    if (remaining == 0)
        return fail_reader(reader);
    uint8_t *record = reader->data + reader->offset;
    uint8_t *separator = memchr(record, SIOC_EIO_RECORD_SEPARATOR, remaining);
    size_t record_length = remaining;
    if (separator != NULL) {
        record_length = (size_t)(separator - record);
        reader->offset += record_length + 1;
    } else {
        reader->offset = reader->length;
        reader->done = READER_FINISHED;
    }
    if (decode_record(record, record_length, out) != 0)
        return fail_reader(reader);
    return 1;
}

size_t sioc__eio_payload_packet_length(int type, int binary, size_t data_length)
{
    (void)type; /* every type character is one byte */
    if (binary)
        return 1 + sioc__base64_encoded_length(data_length);
    return 1 + data_length;
}

size_t sioc__eio_payload_write_packet(uint8_t *out, int type, int binary, const uint8_t *data,
                                      size_t data_length)
{
    assert(type >= SIOC_EIO_OPEN && type <= SIOC_EIO_NOOP);
    if (binary) {
        /* Only message packets carry binary data in v4; the record has no type character. */
        assert(type == SIOC_EIO_MESSAGE);
        out[0] = BINARY_RECORD_MARKER;
        return 1 + sioc__base64_encode(data, data_length, (char *)out + 1);
    }
    out[0] = (uint8_t)('0' + type);
    if (data_length > 0) /* memcpy from NULL is undefined even for 0 bytes */
        memcpy(out + 1, data, data_length);
    return 1 + data_length;
}

/* The sid is pasted into JSON unescaped, which is only right for characters JSON never
 * escapes. Ids from sioc__random_id are [A-Za-z0-9_-]; anything else is refused rather than
 * risking a broken (or injected) open packet. */
static int is_plain_sid(const char *sid)
{
    if (sid[0] == '\0')
        return 0;
    for (const char *c = sid; *c != '\0'; c++) {
        int plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                    (*c >= '0' && *c <= '9') || *c == '_' || *c == '-';
        if (!plain)
            return 0;
    }
    return 1;
}

/* A macro rather than a variable so that the compiler checks the arguments against it. Key
 * order is Node's (engine.io socket.ts onOpen). */
#define OPEN_PACKET_FORMAT                                                                         \
    "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%u,\"pingTimeout\":%u,"                   \
    "\"maxPayload\":%" PRIu64 "}"

size_t sioc__eio_encode_open_into(char *out, size_t size, const char *sid,
                                  int offer_websocket_upgrade, unsigned ping_interval_ms,
                                  unsigned ping_timeout_ms, uint64_t max_payload)
{
    if (!is_plain_sid(sid))
        return 0;
    const char *upgrades = offer_websocket_upgrade ? "\"websocket\"" : "";
    int length = snprintf(out, size, OPEN_PACKET_FORMAT, sid, upgrades, ping_interval_ms,
                          ping_timeout_ms, max_payload);
    return length > 0 ? (size_t)length : 0;
}

char *sioc__eio_encode_open(const char *sid, int offer_websocket_upgrade, unsigned ping_interval_ms,
                            unsigned ping_timeout_ms, uint64_t max_payload, size_t *length)
{
    size_t text_length = sioc__eio_encode_open_into(NULL, 0, sid, offer_websocket_upgrade,
                                                    ping_interval_ms, ping_timeout_ms, max_payload);
    char *text = text_length > 0 ? malloc(text_length + 1) : NULL;
    if (text == NULL)
        return NULL;
    sioc__eio_encode_open_into(text, text_length + 1, sid, offer_websocket_upgrade,
                               ping_interval_ms, ping_timeout_ms, max_payload);
    if (length != NULL)
        *length = text_length;
    return text;
}
