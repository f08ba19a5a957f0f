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
    for (size_t i = 0; i < MASK_KEY_LENGTH; i++)
        rotated[i] = rotated[i + MASK_KEY_LENGTH] = mask[(phase + i) % MASK_KEY_LENGTH];
    uint64_t mask_word;
    memcpy(&mask_word, rotated, sizeof(mask_word));
    size_t index = 0;
    for (; index + sizeof(mask_word) <= length; index += sizeof(mask_word)) {
        uint64_t word;
        memcpy(&word, source + index, sizeof(word));
        word ^= mask_word;
        memcpy(destination + index, &word, sizeof(word));
    }
    /* Short messages are mostly tail: four bytes at once here too (index is a multiple of 8,
     * so the mask's phase is rotated[0]'s again). */
    if (index + MASK_KEY_LENGTH <= length) {
        uint32_t word, mask_half;
        memcpy(&mask_half, rotated, sizeof(mask_half));
        memcpy(&word, source + index, sizeof(word));
        word ^= mask_half;
        memcpy(destination + index, &word, sizeof(word));
        index += MASK_KEY_LENGTH;
    }
    for (; index < length; index++)
        destination[index] = source[index] ^ rotated[index % MASK_KEY_LENGTH];
}

/* A frame and message in progress (sioc__ws_decoder_t.partial). */
typedef struct sioc__ws_frame_state_s {
    sioc__ws_limits_t limits; /* the decoder's, copied in by each feed */
    /* Partial frame header bytes carried over a read boundary (at most 14). */
    uint8_t header[14];
    uint8_t header_length;
    /* Current frame. */
    uint8_t opcode;
    uint8_t fin;
    uint8_t mask[4];
    uint8_t in_frame;
    /* Message being assembled (data frames only). */
    uint8_t message_opcode;     /* 0 when no message is in progress */
    uint8_t message_compressed; /* RSV1 on its first frame */
    uint8_t control_length;     /* bytes in control */
    uint16_t failed;            /* the close code of the error that ended decoding, or 0 */
    uint32_t fragment_count;
    uint64_t frame_remaining;
    uint64_t frame_offset; /* bytes of this frame already unmasked (mask phase) */
    uint8_t *message;      /* owned; NULL while no copy is needed */
    size_t message_length;
    size_t message_capacity;
    /* A control frame split across reads is copied here (owned, SIOC_WS_MAX_CONTROL bytes,
     * allocated for it and freed on the next feed: an idle connection holds none). */
    uint8_t *control;
    sioc__utf8_validator_t utf8;
} frame_state_t;

/* ---- Decoder state changes ---- */

static void release_message(frame_state_t *state)
{
    free(state->message);
    state->message = NULL;
    state->message_length = 0;
    state->message_capacity = 0;
}

static void release_control(frame_state_t *state)
{
    free(state->control);
    state->control = NULL;
    state->control_length = 0;
}

static void fail(frame_state_t *state, sioc__ws_event_t *event, uint16_t close_code,
                 const char *reason)
{
    release_message(state); /* nothing more will be delivered: hold no memory */
    release_control(state);
    state->failed = close_code; /* non-zero, and lets later calls repeat the same code */
    event->type = SIOC_WS_EVENT_ERROR;
    event->close_code = close_code;
    event->error = reason;
}

/* A compressed text message is validated once inflated (by the caller), not here. */
static int checks_utf8(const frame_state_t *state)
{
    return state->message_opcode == SIOC_WS_OPCODE_TEXT && !state->message_compressed;
}

static void deliver(sioc__ws_event_t *event, sioc__ws_event_type_t type, const uint8_t *data,
                    size_t length)
{
    event->type = type;
    event->data = length > 0 ? data : empty_payload;
    event->length = length;
}

static uint64_t message_size_limit(const frame_state_t *state)
{
    /* Only matters where size_t is 32 bits: the message must fit in memory. */
    uint64_t limit = state->limits.max_message_size;
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

static uint16_t check_first_byte(const frame_state_t *state, uint8_t byte, const char **reason)
{
    uint8_t opcode = byte & OPCODE_BITS;
    uint8_t reserved = byte & RSV_BITS;
    /* permessage-deflate (RFC 7692 §6) sets RSV1 only on the first frame of a data message. */
    if (reserved == RSV1_BIT && state->limits.allow_rsv1 &&
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
    if (opcode == SIOC_WS_OPCODE_CONTINUATION && state->message_opcode == 0) {
        *reason = "continuation frame without a message";
        return SIOC_WS_CLOSE_PROTOCOL_ERROR;
    }
    if (opcode != SIOC_WS_OPCODE_CONTINUATION && state->message_opcode != 0) {
        *reason = "data frame inside a fragmented message";
        return SIOC_WS_CLOSE_PROTOCOL_ERROR;
    }
    uint32_t fragments = opcode == SIOC_WS_OPCODE_CONTINUATION ? state->fragment_count : 0;
    if (fragments >= state->limits.max_fragments) {
        *reason = "too many fragments";
        return SIOC_WS_CLOSE_POLICY_VIOLATION;
    }
    return 0;
}

static uint16_t check_data_length(const frame_state_t *state, uint8_t opcode, uint64_t length,
                                  const char **reason)
{
    uint64_t so_far = opcode == SIOC_WS_OPCODE_CONTINUATION ? state->message_length : 0;
    if (length > message_size_limit(state) - so_far) {
        *reason = "message too big";
        return SIOC_WS_CLOSE_MESSAGE_TOO_BIG;
    }
    return 0;
}

/* Checks whatever the first `have` header bytes allow, in byte order, so that an error is
 * found as early as possible and is the same however the header was split across reads. */
static uint16_t check_header(const frame_state_t *state, const uint8_t *header, size_t have,
                             const char **reason)
{
    uint16_t code = check_first_byte(state, header[0], reason); /* have >= 1 always */
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
    return check_data_length(state, opcode, length, reason);
}

static void begin_frame(frame_state_t *state, const uint8_t *header)
{
    uint8_t opcode = header[0] & OPCODE_BITS;
    state->opcode = opcode;
    state->fin = (header[0] & FIN_BIT) != 0;
    memcpy(state->mask, header + header_size(header) - MASK_KEY_LENGTH, MASK_KEY_LENGTH);
    state->frame_remaining = payload_length(header);
    state->frame_offset = 0;
    state->in_frame = 1;
    if (is_control(opcode)) {
        state->control_length = 0;
        return;
    }
    if (opcode != SIOC_WS_OPCODE_CONTINUATION) {
        state->message_opcode = opcode;
        state->fragment_count = 0;
        state->message_length = 0;
        state->message_compressed = (header[0] & RSV1_BIT) != 0;
        sioc__utf8_validator_init(&state->utf8);
    }
    state->fragment_count++;
}

/* Moves header bytes from the input into state->header until the header is whole or the
 * input runs out; the length of a header is known only once its second byte is. */
static void carry_header_bytes(frame_state_t *state, const uint8_t *input, size_t length,
                               size_t *position)
{
    for (;;) {
        size_t needed = header_bytes_needed(state->header, state->header_length);
        if (state->header_length >= needed || *position == length)
            return;
        size_t take = min_size(length - *position, needed - state->header_length);
        memcpy(state->header + state->header_length, input + *position, take);
        state->header_length += (uint8_t)take;
        *position += take;
    }
}

static enum header_status read_header(frame_state_t *state, const uint8_t *input, size_t length,
                                      size_t *position, sioc__ws_event_t *event)
{
    const uint8_t *header = state->header;
    size_t have;
    if (state->header_length == 0) {
        /* Common case: parse straight from the input, no copy. */
        header = input + *position;
        have = min_size(sizeof(state->header), length - *position);
    } else {
        carry_header_bytes(state, input, length, position);
        have = state->header_length;
    }
    const char *reason = NULL;
    uint16_t code = check_header(state, header, have, &reason);
    if (code != 0) {
        fail(state, event, code, reason);
        return HEADER_FAILED;
    }
    size_t needed = header_bytes_needed(header, have);
    if (have < needed) {
        if (header != state->header) {
            memcpy(state->header, header, have);
            state->header_length = (uint8_t)have;
            *position += have;
        }
        return HEADER_INCOMPLETE;
    }
    if (header != state->header)
        *position += needed;
    state->header_length = 0;
    begin_frame(state, header);
    return HEADER_DONE;
}

/* ---- Frame payload ---- */

static void deliver_close(frame_state_t *state, const uint8_t *data, size_t length,
                          sioc__ws_event_t *event)
{
    if (length == 0) {
        deliver(event, SIOC_WS_EVENT_CLOSE, data, 0);
        event->close_code = SIOC_WS_CLOSE_NO_STATUS;
        return;
    }
    if (length == 1) {
        fail(state, event, SIOC_WS_CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte body");
        return;
    }
    uint16_t code = (uint16_t)((data[0] << 8) | data[1]);
    if (!sioc__ws_close_code_is_valid(code)) {
        fail(state, event, SIOC_WS_CLOSE_PROTOCOL_ERROR, "invalid close code");
        return;
    }
    if (!sioc__utf8_is_valid(data + 2, length - 2)) {
        fail(state, event, SIOC_WS_CLOSE_INVALID_PAYLOAD, "close reason is not UTF-8");
        return;
    }
    deliver(event, SIOC_WS_EVENT_CLOSE, data + 2, length - 2);
    event->close_code = code;
}

static void deliver_control(frame_state_t *state, const uint8_t *data, size_t length,
                            sioc__ws_event_t *event)
{
    state->in_frame = 0;
    if (state->opcode == SIOC_WS_OPCODE_PING)
        deliver(event, SIOC_WS_EVENT_PING, data, length);
    else if (state->opcode == SIOC_WS_OPCODE_PONG)
        deliver(event, SIOC_WS_EVENT_PONG, data, length);
    else
        deliver_close(state, data, length, event);
}

/* Returns 1 when an event was produced. */
static int read_control_payload(frame_state_t *state, uint8_t *input, size_t length,
                                size_t *position, sioc__ws_event_t *event)
{
    uint8_t *data = input + *position;
    size_t available = length - *position;
    size_t remaining = (size_t)state->frame_remaining; /* <= 125, checked in the header */
    if (state->frame_offset == 0 && remaining <= available) {
        unmask_copy(data, data, remaining, state->mask, 0);
        *position += remaining;
        deliver_control(state, data, remaining, event);
        return 1;
    }
    if (state->control == NULL && (state->control = malloc(SIOC_WS_MAX_CONTROL)) == NULL) {
        fail(state, event, SIOC_WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return 1;
    }
    size_t take = min_size(available, remaining);
    unmask_copy(state->control + state->control_length, data, take, state->mask,
                state->frame_offset);
    state->control_length += (uint8_t)take;
    state->frame_offset += take;
    state->frame_remaining -= take;
    *position += take;
    if (state->frame_remaining > 0)
        return 0;
    deliver_control(state, state->control, state->control_length, event);
    return 1;
}

static void finish_message(frame_state_t *state, const uint8_t *data, size_t length,
                           sioc__ws_event_t *event)
{
    sioc__ws_event_type_t type =
        state->message_opcode == SIOC_WS_OPCODE_TEXT ? SIOC_WS_EVENT_TEXT : SIOC_WS_EVENT_BINARY;
    state->in_frame = 0;
    state->message_opcode = 0; /* an owned buffer is now released by the next feed */
    state->fragment_count = 0;
    deliver(event, type, data, length);
    event->compressed = state->message_compressed;
}

/* A single-frame message wholly inside the input: unmask in place and hand out a view. */
static void deliver_whole_frame(frame_state_t *state, uint8_t *data, size_t length,
                                size_t *position, sioc__ws_event_t *event)
{
    unmask_copy(data, data, length, state->mask, 0);
    if (checks_utf8(state) && !sioc__utf8_is_valid(data, length)) {
        fail(state, event, SIOC_WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8 in text message");
        return;
    }
    *position += length;
    finish_message(state, data, length, event);
}

/* Grows the owned buffer geometrically (few reallocations over many fragments) but never past
 * the end of the current frame, so a client cannot make us reserve memory for bytes it has
 * only announced. */
static int reserve_message(frame_state_t *state, size_t extra)
{
    size_t needed = state->message_length + extra; /* bounded by the size limit */
    if (needed <= state->message_capacity)
        return 0;
    size_t frame_end = state->message_length + (size_t)state->frame_remaining;
    size_t capacity =
        state->message_capacity > SIZE_MAX / 2 ? SIZE_MAX : state->message_capacity * 2;
    if (capacity < needed)
        capacity = needed;
    if (capacity > frame_end)
        capacity = frame_end;
    uint8_t *message = realloc(state->message, capacity);
    if (message == NULL)
        return -1;
    state->message = message;
    state->message_capacity = capacity;
    return 0;
}

/* Copies (unmasking) part of a data frame into the owned buffer. Text is validated as it
 * arrives so that a bad byte fails the connection at once, not after a huge message. */
static int append_payload(frame_state_t *state, const uint8_t *data, size_t length,
                          sioc__ws_event_t *event)
{
    if (reserve_message(state, length) != 0) {
        fail(state, event, SIOC_WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return -1;
    }
    uint8_t *destination = state->message + state->message_length;
    unmask_copy(destination, data, length, state->mask, state->frame_offset);
    if (checks_utf8(state) && sioc__utf8_validator_feed(&state->utf8, destination, length) != 0) {
        fail(state, event, SIOC_WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8 in text message");
        return -1;
    }
    state->message_length += length;
    state->frame_offset += length;
    state->frame_remaining -= length;
    return 0;
}

/* Returns 1 when an event was produced. */
static int read_data_payload(frame_state_t *state, uint8_t *input, size_t length, size_t *position,
                             sioc__ws_event_t *event)
{
    uint8_t *data = input + *position;
    size_t available = length - *position;
    if (state->fin && state->fragment_count == 1 && state->frame_offset == 0 &&
        state->frame_remaining <= available) {
        deliver_whole_frame(state, data, (size_t)state->frame_remaining, position, event);
        return 1;
    }
    size_t take = min_size(available, state->frame_remaining);
    if (take > 0 && append_payload(state, data, take, event) != 0)
        return 1;
    *position += take;
    if (state->frame_remaining > 0)
        return 0;
    state->in_frame = 0;
    if (!state->fin)
        return 0;
    if (checks_utf8(state) && !sioc__utf8_validator_is_complete(&state->utf8)) {
        fail(state, event, SIOC_WS_CLOSE_INVALID_PAYLOAD, "truncated UTF-8 in text message");
        return 1;
    }
    finish_message(state, state->message, state->message_length, event);
    return 1;
}

/* ---- Public decoder API ---- */

/* Where a decoder goes when its state cannot be allocated: failed for good, never written
 * (feed returns before touching a failed state) and never freed. */
static frame_state_t out_of_memory_state = {.failed = SIOC_WS_CLOSE_INTERNAL_ERROR};

void sioc__ws_decoder_init(sioc__ws_decoder_t *decoder, const sioc__ws_limits_t *limits)
{
    decoder->limits = *limits;
    decoder->partial = NULL;
}

void sioc__ws_decoder_free(sioc__ws_decoder_t *decoder)
{
    frame_state_t *state = decoder->partial;
    if (state != NULL && state != &out_of_memory_state) {
        release_message(state);
        release_control(state);
        free(state);
    }
    decoder->partial = NULL;
}

sioc__ws_decoder_held_t sioc__ws_decoder_held(const sioc__ws_decoder_t *decoder)
{
    sioc__ws_decoder_held_t held = {0};
    const frame_state_t *state = decoder->partial;
    if (state != NULL) {
        held.message = state->message;
        held.message_length = state->message_length;
        held.message_capacity = state->message_capacity;
        held.control = state->control;
        held.message_opcode = state->message_opcode;
    }
    return held;
}

/* Nothing to carry to the next feed: no frame or message in progress, no buffer lent to the
 * last event, no failure to repeat. */
static int is_idle(const frame_state_t *state)
{
    return !state->in_frame && state->header_length == 0 && state->message_opcode == 0 &&
           state->message == NULL && state->control == NULL && !state->failed;
}

static void feed_state(frame_state_t *state, uint8_t *input, size_t length, size_t *consumed,
                       sioc__ws_event_t *event)
{
    if (state->failed) {
        event->type = SIOC_WS_EVENT_ERROR;
        event->close_code = (uint16_t)state->failed;
        event->error = "decoder already failed";
        return;
    }
    /* The previous event's data is no longer needed: an idle connection holds no buffer. */
    if (state->message != NULL && state->message_opcode == 0)
        release_message(state);
    if (state->control != NULL && !(state->in_frame && is_control(state->opcode)))
        release_control(state);
    /* An empty feed only releases (input may then be NULL: no pointer arithmetic on it). */
    if (length == 0) {
        event->type = SIOC_WS_EVENT_NEED_MORE;
        return;
    }
    size_t position = 0;
    for (;;) {
        if (!state->in_frame) {
            if (position == length)
                break;
            enum header_status status = read_header(state, input, length, &position, event);
            if (status == HEADER_FAILED)
                return;
            if (status == HEADER_INCOMPLETE)
                break;
        }
        int produced = is_control(state->opcode)
                           ? read_control_payload(state, input, length, &position, event)
                           : read_data_payload(state, input, length, &position, event);
        if (produced) {
            if (!state->failed)
                *consumed = position;
            return;
        }
        if (position == length)
            break;
    }
    event->type = SIOC_WS_EVENT_NEED_MORE;
}

/* A state on the stack that must outlive this feed moves to the heap; one on the heap that
 * has nothing left to carry is freed. */
static void keep_state(sioc__ws_decoder_t *decoder, frame_state_t *state, size_t length,
                       size_t *consumed, sioc__ws_event_t *event)
{
    if (state == &out_of_memory_state)
        return;
    if (is_idle(state)) {
        if (state == decoder->partial) {
            free(state);
            decoder->partial = NULL;
        }
        return;
    }
    if (state == decoder->partial)
        return;
    frame_state_t *kept = malloc(sizeof(*kept));
    if (kept == NULL) {
        release_message(state);
        release_control(state);
        decoder->partial = &out_of_memory_state;
        memset(event, 0, sizeof(*event));
        event->data = empty_payload;
        event->type = SIOC_WS_EVENT_ERROR;
        event->close_code = SIOC_WS_CLOSE_INTERNAL_ERROR;
        event->error = "out of memory";
        *consumed = length;
        return;
    }
    *kept = *state;
    decoder->partial = kept;
}

/* The common case without the general path's frame state: an idle decoder whose input starts
 * with a whole single-frame data message of under 126 bytes (an event, an ack). Returns 0, with
 * the input as it was, for anything else and for anything the general path would refuse, which
 * then decides it (fuzz_ws_frame compares whole inputs with byte-by-byte feeds). */
static int feed_short_message(const sioc__ws_decoder_t *decoder, uint8_t *input, size_t length,
                              size_t *consumed, sioc__ws_event_t *event)
{
    if (length < 2 + MASK_KEY_LENGTH)
        return 0;
    uint8_t opcode = input[0] & OPCODE_BITS;
    uint8_t reserved = input[0] & RSV_BITS;
    size_t payload = input[1] & LENGTH7_BITS;
    if (!(input[0] & FIN_BIT) ||
        (opcode != SIOC_WS_OPCODE_TEXT && opcode != SIOC_WS_OPCODE_BINARY) ||
        !(input[1] & MASK_BIT) || payload >= LENGTH_IN_16_BITS ||
        length - (2 + MASK_KEY_LENGTH) < payload || payload > decoder->limits.max_message_size ||
        decoder->limits.max_fragments == 0)
        return 0;
    if (reserved != 0 && (reserved != RSV1_BIT || !decoder->limits.allow_rsv1))
        return 0;
    const uint8_t *mask = input + 2;
    uint8_t *data = input + 2 + MASK_KEY_LENGTH;
    unmask_copy(data, data, payload, mask, 0);
    if (opcode == SIOC_WS_OPCODE_TEXT && reserved == 0 && !sioc__utf8_is_valid(data, payload)) {
        unmask_copy(data, data, payload, mask, 0); /* masked again, for the general path */
        return 0;
    }
    deliver(event, opcode == SIOC_WS_OPCODE_TEXT ? SIOC_WS_EVENT_TEXT : SIOC_WS_EVENT_BINARY, data,
            payload);
    event->compressed = reserved != 0;
    *consumed = 2 + MASK_KEY_LENGTH + payload;
    return 1;
}

/* On ERROR the whole input is reported consumed: nothing after a protocol error means
 * anything, and a caller looping on `consumed` cannot spin. */
void sioc__ws_decoder_feed(sioc__ws_decoder_t *decoder, uint8_t *input, size_t length,
                           size_t *consumed, sioc__ws_event_t *event)
{
    memset(event, 0, sizeof(*event));
    event->data = empty_payload;
    *consumed = length;
    frame_state_t *state = decoder->partial;
    if (state == NULL && feed_short_message(decoder, input, length, consumed, event))
        return;
    /* The empty feed after each message, on an idle decoder: nothing to release. */
    if (state == NULL && length == 0) {
        event->type = SIOC_WS_EVENT_NEED_MORE;
        return;
    }
    frame_state_t fresh;
    if (state == NULL) {
        memset(&fresh, 0, sizeof(fresh));
        state = &fresh;
    }
    if (!state->failed)
        state->limits = decoder->limits; /* the owner may change them between feeds */
    feed_state(state, input, length, consumed, event);
    keep_state(decoder, state, length, consumed, event);
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
