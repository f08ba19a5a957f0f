#include "transport/ws_codec.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define FIN_BIT 0x80
#define RSV1_BIT 0x40
#define RSV_BITS 0x70
#define OPCODE_BITS 0x0F
#define CONTROL_BIT 0x08
#define MASK_BIT 0x80
#define LENGTH7_BITS 0x7F
#define LENGTH_IN_16_BITS 126
#define LENGTH_IN_64_BITS 127
#define MASK_KEY_LENGTH 4
#define MAX_CONTROL_PAYLOAD 125
#define MAX_CLOSE_REASON (MAX_CONTROL_PAYLOAD - 2)

#define ACCEPT_KEY_LENGTH 24
#define ACCEPT_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define ACCEPT_GUID_LENGTH (sizeof(ACCEPT_GUID) - 1)

/* Every event carries a non-NULL data pointer, even when empty, so that callers may pass it
 * straight to memcpy() and friends (which must not get NULL, even for 0 bytes). */
static const uint8_t empty_payload[1];

enum header_status { HEADER_DONE, HEADER_INCOMPLETE, HEADER_FAILED };

static int is_control(uint8_t opcode)
{
    return (opcode & CONTROL_BIT) != 0;
}

static int is_known_opcode(uint8_t opcode)
{
    switch (opcode) {
    case SIOC_WS_OPCODE_CONTINUATION:
    case SIOC_WS_OPCODE_TEXT:
    case SIOC_WS_OPCODE_BINARY:
    case SIOC_WS_OPCODE_CLOSE:
    case SIOC_WS_OPCODE_PING:
    case SIOC_WS_OPCODE_PONG:
        return 1;
    default:
        return 0;
    }
}

static size_t min_size(size_t a, uint64_t b)
{
    return b < a ? (size_t)b : a;
}

/* XORs with the mask key starting at the given phase of the 4-byte key. Eight bytes at a time
 * because this touches every payload byte; memcpy keeps unaligned access well defined and
 * compiles to plain loads and stores. destination may equal source (unmasking in place). */
static void unmask_copy(uint8_t *destination, const uint8_t *source, size_t length,
                        const uint8_t mask[MASK_KEY_LENGTH], uint64_t phase)
{
    uint8_t rotated[8];
    for (size_t i = 0; i < sizeof(rotated); i++)
        rotated[i] = mask[(phase + i) % MASK_KEY_LENGTH];
    uint64_t mask_word;
    memcpy(&mask_word, rotated, sizeof(mask_word));
    size_t index = 0;
    for (; index + sizeof(mask_word) <= length; index += sizeof(mask_word)) {
        uint64_t word;
        memcpy(&word, source + index, sizeof(word));
        word ^= mask_word;
        memcpy(destination + index, &word, sizeof(word));
    }
    for (; index < length; index++)
        destination[index] = source[index] ^ rotated[index % MASK_KEY_LENGTH];
}

/* ---- Decoder state changes ---- */

static void release_message(sioc__ws_decoder_t *decoder)
{
    free(decoder->message);
    decoder->message = NULL;
    decoder->message_length = 0;
    decoder->message_capacity = 0;
}

static void release_control(sioc__ws_decoder_t *decoder)
{
    free(decoder->control);
    decoder->control = NULL;
    decoder->control_length = 0;
}

static void fail(sioc__ws_decoder_t *decoder, sioc__ws_event_t *event, uint16_t close_code,
                 const char *reason)
{
    release_message(decoder); /* nothing more will be delivered: hold no memory */
    release_control(decoder);
    decoder->failed = close_code; /* non-zero, and lets later calls repeat the same code */
    event->type = SIOC_WS_EVENT_ERROR;
    event->close_code = close_code;
    event->error = reason;
}

/* A compressed text message is validated once inflated (by the caller), not here. */
static int checks_utf8(const sioc__ws_decoder_t *decoder)
{
    return decoder->message_opcode == SIOC_WS_OPCODE_TEXT && !decoder->message_compressed;
}

static void deliver(sioc__ws_event_t *event, sioc__ws_event_type_t type, const uint8_t *data,
                    size_t length)
{
    event->type = type;
    event->data = length > 0 ? data : empty_payload;
    event->length = length;
}

static uint64_t message_size_limit(const sioc__ws_decoder_t *decoder)
{
    /* Only matters where size_t is 32 bits: the message must fit in memory. */
    uint64_t limit = decoder->limits.max_message_size;
    return limit < SIZE_MAX ? limit : SIZE_MAX;
}

/* ---- Frame header ---- */

/* Header length, mask key included, once the first two bytes are known. */
static size_t header_size(const uint8_t *header)
{
    uint8_t length7 = header[1] & LENGTH7_BITS;
    size_t size = 2 + MASK_KEY_LENGTH;
    if (length7 == LENGTH_IN_16_BITS)
        size += 2;
    else if (length7 == LENGTH_IN_64_BITS)
        size += 8;
    return size;
}

static size_t header_bytes_needed(const uint8_t *header, size_t have)
{
    return have < 2 ? 2 : header_size(header);
}

static uint64_t payload_length(const uint8_t *header)
{
    uint8_t length7 = header[1] & LENGTH7_BITS;
    if (length7 < LENGTH_IN_16_BITS)
        return length7;
    size_t bytes = length7 == LENGTH_IN_16_BITS ? 2 : 8;
    uint64_t length = 0;
    for (size_t i = 0; i < bytes; i++)
        length = (length << 8) | header[2 + i];
    return length;
}

static uint16_t check_first_byte(const sioc__ws_decoder_t *decoder, uint8_t byte,
                                 const char **reason)
{
    uint8_t opcode = byte & OPCODE_BITS;
    uint8_t reserved = byte & RSV_BITS;
    /* permessage-deflate (RFC 7692 §6) sets RSV1 only on the first frame of a data message. */
    if (reserved == RSV1_BIT && decoder->limits.allow_rsv1 &&
        (opcode == SIOC_WS_OPCODE_TEXT || opcode == SIOC_WS_OPCODE_BINARY))
        reserved = 0;
    if (reserved != 0) {
        *reason = "reserved bits set";
        return SIOC_WS_CLOSE_PROTOCOL_ERROR;
    }
    if (!is_known_opcode(opcode)) {
        *reason = "unknown opcode";
        return SIOC_WS_CLOSE_PROTOCOL_ERROR;
    }
    if (is_control(opcode)) {
        if (!(byte & FIN_BIT)) {
            *reason = "fragmented control frame";
            return SIOC_WS_CLOSE_PROTOCOL_ERROR;
        }
        return 0;
    }
    if (opcode == SIOC_WS_OPCODE_CONTINUATION && decoder->message_opcode == 0) {
        *reason = "continuation frame without a message";
        return SIOC_WS_CLOSE_PROTOCOL_ERROR;
    }
    if (opcode != SIOC_WS_OPCODE_CONTINUATION && decoder->message_opcode != 0) {
        *reason = "data frame inside a fragmented message";
        return SIOC_WS_CLOSE_PROTOCOL_ERROR;
    }
    uint32_t fragments = opcode == SIOC_WS_OPCODE_CONTINUATION ? decoder->fragment_count : 0;
    if (fragments >= decoder->limits.max_fragments) {
        *reason = "too many fragments";
        return SIOC_WS_CLOSE_POLICY_VIOLATION;
    }
    return 0;
}

static uint16_t check_data_length(const sioc__ws_decoder_t *decoder, uint8_t opcode,
                                  uint64_t length, const char **reason)
{
    uint64_t so_far = opcode == SIOC_WS_OPCODE_CONTINUATION ? decoder->message_length : 0;
    if (length > message_size_limit(decoder) - so_far) {
        *reason = "message too big";
        return SIOC_WS_CLOSE_MESSAGE_TOO_BIG;
    }
    return 0;
}

/* Checks whatever the first `have` header bytes allow, in byte order, so that an error is
 * found as early as possible and is the same however the header was split across reads. */
static uint16_t check_header(const sioc__ws_decoder_t *decoder, const uint8_t *header, size_t have,
                             const char **reason)
{
    uint16_t code = check_first_byte(decoder, header[0], reason); /* have >= 1 always */
    if (code != 0 || have < 2)
        return code;
    uint8_t opcode = header[0] & OPCODE_BITS;
    uint8_t length7 = header[1] & LENGTH7_BITS;
    if (!(header[1] & MASK_BIT)) {
        *reason = "unmasked client frame";
        return SIOC_WS_CLOSE_PROTOCOL_ERROR;
    }
    if (is_control(opcode)) {
        if (length7 > MAX_CONTROL_PAYLOAD) {
            *reason = "control frame too long";
            return SIOC_WS_CLOSE_PROTOCOL_ERROR;
        }
        return 0;
    }
    if (length7 >= LENGTH_IN_16_BITS && have < header_size(header) - MASK_KEY_LENGTH)
        return 0;
    uint64_t length = payload_length(header);
    if (length >> 63) {
        *reason = "frame length with the top bit set";
        return SIOC_WS_CLOSE_PROTOCOL_ERROR;
    }
    return check_data_length(decoder, opcode, length, reason);
}

static void begin_frame(sioc__ws_decoder_t *decoder, const uint8_t *header)
{
    uint8_t opcode = header[0] & OPCODE_BITS;
    decoder->opcode = opcode;
    decoder->fin = (header[0] & FIN_BIT) != 0;
    memcpy(decoder->mask, header + header_size(header) - MASK_KEY_LENGTH, MASK_KEY_LENGTH);
    decoder->frame_remaining = payload_length(header);
    decoder->frame_offset = 0;
    decoder->in_frame = 1;
    if (is_control(opcode)) {
        decoder->control_length = 0;
        return;
    }
    if (opcode != SIOC_WS_OPCODE_CONTINUATION) {
        decoder->message_opcode = opcode;
        decoder->fragment_count = 0;
        decoder->message_length = 0;
        decoder->message_compressed = (header[0] & RSV1_BIT) != 0;
        sioc__utf8_validator_init(&decoder->utf8);
    }
    decoder->fragment_count++;
}

/* Moves header bytes from the input into decoder->header until the header is whole or the
 * input runs out; the length of a header is known only once its second byte is. */
static void carry_header_bytes(sioc__ws_decoder_t *decoder, const uint8_t *input, size_t length,
                               size_t *position)
{
    for (;;) {
        size_t needed = header_bytes_needed(decoder->header, decoder->header_length);
        if (decoder->header_length >= needed || *position == length)
            return;
        size_t take = min_size(length - *position, needed - decoder->header_length);
        memcpy(decoder->header + decoder->header_length, input + *position, take);
        decoder->header_length += (uint8_t)take;
        *position += take;
    }
}

static enum header_status read_header(sioc__ws_decoder_t *decoder, const uint8_t *input,
                                      size_t length, size_t *position, sioc__ws_event_t *event)
{
    const uint8_t *header = decoder->header;
    size_t have;
    if (decoder->header_length == 0) {
        /* Common case: parse straight from the input, no copy. */
        header = input + *position;
        have = min_size(sizeof(decoder->header), length - *position);
    } else {
        carry_header_bytes(decoder, input, length, position);
        have = decoder->header_length;
    }
    const char *reason = NULL;
    uint16_t code = check_header(decoder, header, have, &reason);
    if (code != 0) {
        fail(decoder, event, code, reason);
        return HEADER_FAILED;
    }
    size_t needed = header_bytes_needed(header, have);
    if (have < needed) {
        if (header != decoder->header) {
            memcpy(decoder->header, header, have);
            decoder->header_length = (uint8_t)have;
            *position += have;
        }
        return HEADER_INCOMPLETE;
    }
    if (header != decoder->header)
        *position += needed;
    decoder->header_length = 0;
    begin_frame(decoder, header);
    return HEADER_DONE;
}

/* ---- Frame payload ---- */

static void deliver_close(sioc__ws_decoder_t *decoder, const uint8_t *data, size_t length,
                          sioc__ws_event_t *event)
{
    if (length == 0) {
        deliver(event, SIOC_WS_EVENT_CLOSE, data, 0);
        event->close_code = SIOC_WS_CLOSE_NO_STATUS;
        return;
    }
    if (length == 1) {
        fail(decoder, event, SIOC_WS_CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte body");
        return;
    }
    uint16_t code = (uint16_t)((data[0] << 8) | data[1]);
    if (!sioc__ws_close_code_is_valid(code)) {
        fail(decoder, event, SIOC_WS_CLOSE_PROTOCOL_ERROR, "invalid close code");
        return;
    }
    if (!sioc__utf8_is_valid(data + 2, length - 2)) {
        fail(decoder, event, SIOC_WS_CLOSE_INVALID_PAYLOAD, "close reason is not UTF-8");
        return;
    }
    deliver(event, SIOC_WS_EVENT_CLOSE, data + 2, length - 2);
    event->close_code = code;
}

static void deliver_control(sioc__ws_decoder_t *decoder, const uint8_t *data, size_t length,
                            sioc__ws_event_t *event)
{
    decoder->in_frame = 0;
    if (decoder->opcode == SIOC_WS_OPCODE_PING)
        deliver(event, SIOC_WS_EVENT_PING, data, length);
    else if (decoder->opcode == SIOC_WS_OPCODE_PONG)
        deliver(event, SIOC_WS_EVENT_PONG, data, length);
    else
        deliver_close(decoder, data, length, event);
}

/* Returns 1 when an event was produced. */
static int read_control_payload(sioc__ws_decoder_t *decoder, uint8_t *input, size_t length,
                                size_t *position, sioc__ws_event_t *event)
{
    uint8_t *data = input + *position;
    size_t available = length - *position;
    size_t remaining = (size_t)decoder->frame_remaining; /* <= 125, checked in the header */
    if (decoder->frame_offset == 0 && remaining <= available) {
        unmask_copy(data, data, remaining, decoder->mask, 0);
        *position += remaining;
        deliver_control(decoder, data, remaining, event);
        return 1;
    }
    if (decoder->control == NULL && (decoder->control = malloc(SIOC_WS_MAX_CONTROL)) == NULL) {
        fail(decoder, event, SIOC_WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return 1;
    }
    size_t take = min_size(available, remaining);
    unmask_copy(decoder->control + decoder->control_length, data, take, decoder->mask,
                decoder->frame_offset);
    decoder->control_length += (uint8_t)take;
    decoder->frame_offset += take;
    decoder->frame_remaining -= take;
    *position += take;
    if (decoder->frame_remaining > 0)
        return 0;
    deliver_control(decoder, decoder->control, decoder->control_length, event);
    return 1;
}

static void finish_message(sioc__ws_decoder_t *decoder, const uint8_t *data, size_t length,
                           sioc__ws_event_t *event)
{
    sioc__ws_event_type_t type =
        decoder->message_opcode == SIOC_WS_OPCODE_TEXT ? SIOC_WS_EVENT_TEXT : SIOC_WS_EVENT_BINARY;
    decoder->in_frame = 0;
    decoder->message_opcode = 0; /* an owned buffer is now released by the next feed */
    decoder->fragment_count = 0;
    deliver(event, type, data, length);
    event->compressed = decoder->message_compressed;
}

/* A single-frame message wholly inside the input: unmask in place and hand out a view. */
static void deliver_whole_frame(sioc__ws_decoder_t *decoder, uint8_t *data, size_t length,
                                size_t *position, sioc__ws_event_t *event)
{
    unmask_copy(data, data, length, decoder->mask, 0);
    if (checks_utf8(decoder) && !sioc__utf8_is_valid(data, length)) {
        fail(decoder, event, SIOC_WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8 in text message");
        return;
    }
    *position += length;
    finish_message(decoder, data, length, event);
}

/* Grows the owned buffer geometrically (few reallocations over many fragments) but never past
 * the end of the current frame, so a client cannot make us reserve memory for bytes it has
 * only announced. */
static int reserve_message(sioc__ws_decoder_t *decoder, size_t extra)
{
    size_t needed = decoder->message_length + extra; /* bounded by the size limit */
    if (needed <= decoder->message_capacity)
        return 0;
    size_t frame_end = decoder->message_length + (size_t)decoder->frame_remaining;
    size_t capacity =
        decoder->message_capacity > SIZE_MAX / 2 ? SIZE_MAX : decoder->message_capacity * 2;
    if (capacity < needed)
        capacity = needed;
    if (capacity > frame_end)
        capacity = frame_end;
    uint8_t *message = realloc(decoder->message, capacity);
    if (message == NULL)
        return -1;
    decoder->message = message;
    decoder->message_capacity = capacity;
    return 0;
}

/* Copies (unmasking) part of a data frame into the owned buffer. Text is validated as it
 * arrives so that a bad byte fails the connection at once, not after a huge message. */
static int append_payload(sioc__ws_decoder_t *decoder, const uint8_t *data, size_t length,
                          sioc__ws_event_t *event)
{
    if (reserve_message(decoder, length) != 0) {
        fail(decoder, event, SIOC_WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return -1;
    }
    uint8_t *destination = decoder->message + decoder->message_length;
    unmask_copy(destination, data, length, decoder->mask, decoder->frame_offset);
    if (checks_utf8(decoder) &&
        sioc__utf8_validator_feed(&decoder->utf8, destination, length) != 0) {
        fail(decoder, event, SIOC_WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8 in text message");
        return -1;
    }
    decoder->message_length += length;
    decoder->frame_offset += length;
    decoder->frame_remaining -= length;
    return 0;
}

/* Returns 1 when an event was produced. */
static int read_data_payload(sioc__ws_decoder_t *decoder, uint8_t *input, size_t length,
                             size_t *position, sioc__ws_event_t *event)
{
    uint8_t *data = input + *position;
    size_t available = length - *position;
    if (decoder->fin && decoder->fragment_count == 1 && decoder->frame_offset == 0 &&
        decoder->frame_remaining <= available) {
        deliver_whole_frame(decoder, data, (size_t)decoder->frame_remaining, position, event);
        return 1;
    }
    size_t take = min_size(available, decoder->frame_remaining);
    if (take > 0 && append_payload(decoder, data, take, event) != 0)
        return 1;
    *position += take;
    if (decoder->frame_remaining > 0)
        return 0;
    decoder->in_frame = 0;
    if (!decoder->fin)
        return 0;
    if (checks_utf8(decoder) && !sioc__utf8_validator_is_complete(&decoder->utf8)) {
        fail(decoder, event, SIOC_WS_CLOSE_INVALID_PAYLOAD, "truncated UTF-8 in text message");
        return 1;
    }
    finish_message(decoder, decoder->message, decoder->message_length, event);
    return 1;
}

/* ---- Public decoder API ---- */

void sioc__ws_decoder_init(sioc__ws_decoder_t *decoder, const sioc__ws_limits_t *limits)
{
    memset(decoder, 0, sizeof(*decoder));
    decoder->limits = *limits;
}

void sioc__ws_decoder_free(sioc__ws_decoder_t *decoder)
{
    sioc__ws_limits_t limits = decoder->limits;
    release_message(decoder);
    release_control(decoder);
    sioc__ws_decoder_init(decoder, &limits);
}

/* On ERROR the whole input is reported consumed: nothing after a protocol error means
 * anything, and a caller looping on `consumed` cannot spin. */
void sioc__ws_decoder_feed(sioc__ws_decoder_t *decoder, uint8_t *input, size_t length,
                           size_t *consumed, sioc__ws_event_t *event)
{
    memset(event, 0, sizeof(*event));
    event->data = empty_payload;
    *consumed = length;
    if (decoder->failed) {
        event->type = SIOC_WS_EVENT_ERROR;
        event->close_code = (uint16_t)decoder->failed;
        event->error = "decoder already failed";
        return;
    }
    /* The previous event's data is no longer needed: an idle connection holds no buffer. */
    if (decoder->message != NULL && decoder->message_opcode == 0)
        release_message(decoder);
    if (decoder->control != NULL && !(decoder->in_frame && is_control(decoder->opcode)))
        release_control(decoder);
    /* An empty feed only releases (input may then be NULL: no pointer arithmetic on it). */
    if (length == 0) {
        event->type = SIOC_WS_EVENT_NEED_MORE;
        return;
    }
    size_t position = 0;
    for (;;) {
        if (!decoder->in_frame) {
            if (position == length)
                break;
            enum header_status status = read_header(decoder, input, length, &position, event);
            if (status == HEADER_FAILED)
                return;
            if (status == HEADER_INCOMPLETE)
                break;
        }
        int produced = is_control(decoder->opcode)
                           ? read_control_payload(decoder, input, length, &position, event)
                           : read_data_payload(decoder, input, length, &position, event);
        if (produced) {
            if (!decoder->failed)
                *consumed = position;
            return;
        }
        if (position == length)
            break;
    }
    event->type = SIOC_WS_EVENT_NEED_MORE;
}

/* ---- Encoder ---- */

size_t sioc__ws_encode_header(uint8_t out[SIOC_WS_MAX_HEADER_LENGTH], int fin, int opcode,
                              uint64_t payload_length)
{
    out[0] = (uint8_t)((fin ? FIN_BIT : 0) | (opcode & OPCODE_BITS));
    if (payload_length < LENGTH_IN_16_BITS) {
        out[1] = (uint8_t)payload_length;
        return 2;
    }
    if (payload_length <= 0xFFFF) {
        out[1] = LENGTH_IN_16_BITS;
        out[2] = (uint8_t)(payload_length >> 8);
        out[3] = (uint8_t)payload_length;
        return 4;
    }
    out[1] = LENGTH_IN_64_BITS;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(payload_length >> (56 - 8 * i));
    return 10;
}

/* Reads at most MAX_CLOSE_REASON + 1 bytes of reason (never past its terminator): the extra
 * byte tells whether the cut falls inside a code point. */
static size_t close_reason_length(const char *reason)
{
    if (reason == NULL)
        return 0;
    const uint8_t *bytes = (const uint8_t *)reason;
    size_t length = 0;
    while (length <= MAX_CLOSE_REASON && bytes[length] != '\0')
        length++;
    if (length > MAX_CLOSE_REASON) {
        length = MAX_CLOSE_REASON;
        while (length > 0 && (bytes[length] & 0xC0) == 0x80)
            length--;
    }
    /* A reason that is not UTF-8 would make the peer fail with 1007 instead of seeing our
     * code, so it is dropped. */
    return sioc__utf8_is_valid(bytes, length) ? length : 0;
}

size_t sioc__ws_encode_close(uint8_t out[SIOC_WS_MAX_CLOSE_FRAME_LENGTH], uint16_t code,
                             const char *reason)
{
    /* 1005 means "no code received" and must never be sent: echo it as an empty close. */
    if (code == 0 || code == SIOC_WS_CLOSE_NO_STATUS)
        return sioc__ws_encode_header(out, 1, SIOC_WS_OPCODE_CLOSE, 0);
    size_t reason_length = close_reason_length(reason);
    size_t header_length = sioc__ws_encode_header(out, 1, SIOC_WS_OPCODE_CLOSE, 2 + reason_length);
    out[header_length] = (uint8_t)(code >> 8);
    out[header_length + 1] = (uint8_t)code;
    memcpy(out + header_length + 2, reason_length > 0 ? reason : "", reason_length);
    return header_length + 2 + reason_length;
}

int sioc__ws_close_code_is_valid(uint16_t code)
{
    /* 1012-1014 were registered with IANA after RFC 6455; ws accepts them, so do we. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* ---- Handshake ---- */

static int is_base64_character(char character)
{
    return (character >= 'A' && character <= 'Z') || (character >= 'a' && character <= 'z') ||
           (character >= '0' && character <= '9') || character == '+' || character == '/';
}

/* 16 bytes in base64 are 22 characters and "==". Like ws and browsers, the unused low bits of
 * the last character are not required to be zero: the key is only hashed, never decoded. */
static int is_valid_client_key(const char *key, size_t key_length)
{
    if (key == NULL || key_length != ACCEPT_KEY_LENGTH)
        return 0;
    for (size_t i = 0; i < ACCEPT_KEY_LENGTH - 2; i++) {
        if (!is_base64_character(key[i]))
            return 0;
    }
    return key[ACCEPT_KEY_LENGTH - 2] == '=' && key[ACCEPT_KEY_LENGTH - 1] == '=';
}

/* ---- Sec-WebSocket-Protocol ----------------------------------------------------------------- */

typedef struct protocol_span_s {
    const char *start;
    size_t length;
} protocol_span_t;

static int compare_spans(const void *a, const void *b)
{
    const protocol_span_t *x = a;
    const protocol_span_t *y = b;
    size_t common = x->length < y->length ? x->length : y->length;
    int order = memcmp(x->start, y->start, common);
    if (order != 0)
        return order;
    return x->length < y->length ? -1 : x->length > y->length;
}

static int is_ws_token_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}

static int has_duplicates(protocol_span_t *spans, size_t count)
{
    qsort(spans, count, sizeof(*spans), compare_spans);
    for (size_t i = 1; i < count; i++) {
        if (compare_spans(&spans[i - 1], &spans[i]) == 0)
            return 1;
    }
    return 0;
}

int sioc__ws_parse_protocols(const char *value, size_t length, const char **first,
                             size_t *first_length)
{
    /* At most one protocol per two bytes ("a,b,c"). */
    protocol_span_t *spans = malloc((length / 2 + 1) * sizeof(*spans));
    if (spans == NULL)
        return -1;
    size_t count = 0;
    size_t start = SIZE_MAX, end = SIZE_MAX;
    int ok = 1;
    for (size_t i = 0; i <= length && ok; i++) {
        unsigned char c = i < length ? (unsigned char)value[i] : ',';
        if (end == SIZE_MAX && i < length && is_ws_token_char(c)) {
            if (start == SIZE_MAX)
                start = i;
        } else if (i != 0 && i < length && (c == ' ' || c == '\t')) {
            if (end == SIZE_MAX && start != SIZE_MAX)
                end = i;
        } else if (c == ',') {
            /* The end of input is a comma that must close a protocol: "a," fails there. */
            if (start == SIZE_MAX || (i == length && end != SIZE_MAX)) {
                ok = 0;
                break;
            }
            if (end == SIZE_MAX)
                end = i;
            spans[count].start = value + start;
            spans[count].length = end - start;
            count++;
            start = end = SIZE_MAX;
        } else {
            ok = 0;
        }
    }
    if (ok) {
        *first = spans[0].start;
        *first_length = spans[0].length;
        ok = !has_duplicates(spans, count);
    }
    free(spans);
    return ok ? 0 : -1;
}

int sioc__ws_accept_key(const char *key, size_t key_length, char out[SIOC_WS_ACCEPT_LENGTH + 1])
{
    if (!is_valid_client_key(key, key_length))
        return -1;
    unsigned char concatenated[ACCEPT_KEY_LENGTH + ACCEPT_GUID_LENGTH];
    memcpy(concatenated, key, ACCEPT_KEY_LENGTH);
    memcpy(concatenated + ACCEPT_KEY_LENGTH, ACCEPT_GUID, ACCEPT_GUID_LENGTH);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(concatenated, sizeof(concatenated), digest);
    /* 20 bytes encode to exactly 28 characters; EVP_EncodeBlock adds the NUL. */
    EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
    return 0;
}
