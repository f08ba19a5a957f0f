/* Fuzzes the WebSocket decoder (and, lightly, the close encoder and the UTF-8 validator).
 *
 * Input layout: 4 configuration bytes, then the bytes a client sends.
 *   byte 0: bit 0 = allow_rsv1, bits 1-7 seed the pseudo-random read sizes
 *   byte 1: max_fragments - 1
 *   bytes 2-3: max_message_size, big endian (0xFFFF means no limit)
 *
 * Beyond memory errors it checks the contract: the stream decoded whole, byte by byte and in
 * pseudo-random reads must give exactly the same events; consumed counts stay in bounds and
 * always progress; every delivered event obeys the limits; an idle decoder holds no buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "transport/ws_codec.h"

#define CONFIG_LENGTH 4

typedef struct event_summary_s {
    sioc__ws_event_type_t type;
    uint16_t close_code;
    size_t length;
    uint64_t digest;
    size_t end; /* stream offset after the event; meaningless for ERROR */
} event_summary_t;

typedef struct run_s {
    event_summary_t *events;
    size_t count;
} run_t;

enum chunking { WHOLE, BYTE_BY_BYTE, RANDOM_READS };

static void require(int condition)
{
    if (!condition)
        abort();
}

static uint64_t digest(const uint8_t *data, size_t length)
{
    uint64_t hash = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < length; i++)
        hash = (hash ^ data[i]) * 0x100000001b3ull;
    return hash;
}

static uint32_t next_random(uint32_t *state)
{
    uint32_t x = *state; /* xorshift32: deterministic, never 0 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

static void check_event(const sioc__ws_event_t *event, const sioc__ws_limits_t *limits)
{
    require(event->data != NULL);
    switch (event->type) {
    case SIOC_WS_EVENT_TEXT:
        /* A compressed message is checked as UTF-8 once inflated (ws_deflate), not here. */
        require(event->compressed || sioc__utf8_is_valid(event->data, event->length));
        /* fall through */
    case SIOC_WS_EVENT_BINARY:
        require(!event->compressed || limits->allow_rsv1);
        require(event->length <= limits->max_message_size);
        break;
    case SIOC_WS_EVENT_PING:
    case SIOC_WS_EVENT_PONG:
        require(event->length <= 125);
        break;
    case SIOC_WS_EVENT_CLOSE:
        require(event->length <= 123);
        require(sioc__ws_close_code_is_valid(event->close_code) ||
                (event->close_code == SIOC_WS_CLOSE_NO_STATUS && event->length == 0));
        require(sioc__utf8_is_valid(event->data, event->length));
        break;
    case SIOC_WS_EVENT_ERROR:
        require(event->error != NULL);
        require(event->close_code == SIOC_WS_CLOSE_PROTOCOL_ERROR ||
                event->close_code == SIOC_WS_CLOSE_INVALID_PAYLOAD ||
                event->close_code == SIOC_WS_CLOSE_POLICY_VIOLATION ||
                event->close_code == SIOC_WS_CLOSE_MESSAGE_TOO_BIG ||
                event->close_code == SIOC_WS_CLOSE_INTERNAL_ERROR);
        break;
    case SIOC_WS_EVENT_NEED_MORE:
        break;
    }
}

/* Feeds one read the way the connection glue does; returns 0 once the decoder failed. */
static int feed_read(sioc__ws_decoder_t *decoder, const uint8_t *bytes, size_t length,
                     size_t stream_offset, run_t *run)
{
    uint8_t *read_buffer = malloc(length > 0 ? length : 1); /* exact size: ASan sees overreads */
    require(read_buffer != NULL);
    memcpy(read_buffer, bytes, length);
    size_t offset = 0;
    int alive = 1;
    do {
        size_t remaining = length - offset;
        size_t used = 0;
        sioc__ws_event_t event;
        sioc__ws_decoder_feed(decoder, read_buffer + offset, remaining, &used, &event);
        require(used <= remaining);
        offset += used;
        check_event(&event, &decoder->limits);
        if (event.type == SIOC_WS_EVENT_NEED_MORE) {
            require(offset == length);
            require(sioc__ws_decoder_held(decoder).message_opcode != 0 ||
                    sioc__ws_decoder_held(decoder).message == NULL);
            break;
        }
        require(remaining == 0 || used > 0);
        event_summary_t *summary = &run->events[run->count++];
        summary->type = event.type;
        summary->close_code = event.close_code;
        summary->length = event.length;
        summary->digest = digest(event.data, event.length);
        summary->end = stream_offset + offset;
        if (event.type == SIOC_WS_EVENT_ERROR) {
            /* Failed for good: the next read gets the same answer. */
            sioc__ws_decoder_feed(decoder, read_buffer, length, &used, &event);
            require(event.type == SIOC_WS_EVENT_ERROR);
            require(event.close_code == summary->close_code);
            alive = 0;
        }
    } while (alive && offset < length);
    free(read_buffer);
    return alive;
}

static void decode(const sioc__ws_limits_t *limits, const uint8_t *stream, size_t length,
                   enum chunking chunking, uint32_t seed, run_t *run)
{
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, limits);
    run->count = 0;
    size_t start = 0;
    do {
        size_t read_length = length - start;
        if (chunking == BYTE_BY_BYTE && read_length > 1)
            read_length = 1;
        if (chunking == RANDOM_READS)
            read_length = next_random(&seed) % (read_length + 1);
        if (!feed_read(&decoder, stream + start, read_length, start, run))
            break;
        start += read_length;
    } while (start < length);
    sioc__ws_decoder_free(&decoder);
    require(sioc__ws_decoder_held(&decoder).message == NULL);
}

static void require_same_runs(const run_t *expected, const run_t *actual)
{
    require(expected->count == actual->count);
    for (size_t i = 0; i < expected->count; i++) {
        const event_summary_t *want = &expected->events[i];
        const event_summary_t *got = &actual->events[i];
        require(want->type == got->type && want->close_code == got->close_code &&
                want->length == got->length && want->digest == got->digest);
        require(want->type == SIOC_WS_EVENT_ERROR || want->end == got->end);
    }
}

/* The encoder must turn any string into a well-formed close frame. */
static void fuzz_close_encoder(const uint8_t *data, size_t length, uint16_t code)
{
    size_t reason_length = length < 300 ? length : 300;
    char *reason = malloc(reason_length + 1);
    require(reason != NULL);
    memcpy(reason, data, reason_length);
    reason[reason_length] = '\0';
    uint8_t frame[SIOC_WS_MAX_CLOSE_FRAME_LENGTH];
    size_t frame_length = sioc__ws_encode_close(frame, code, reason);
    require(frame_length >= 2 && frame_length <= SIOC_WS_MAX_CLOSE_FRAME_LENGTH);
    require(frame[0] == 0x88 && frame[1] == frame_length - 2);
    if (frame_length > 2) {
        require(frame[2] == code >> 8 && frame[3] == (code & 0xFF));
        require(memcmp(frame + 4, reason, frame_length - 4) == 0);
        require(sioc__utf8_is_valid(frame + 4, frame_length - 4));
    }
    free(reason);
}

/* Incremental validation over arbitrary cuts must agree with the one-shot answer. */
static void fuzz_utf8_splits(const uint8_t *data, size_t length, uint32_t seed)
{
    sioc__utf8_validator_t validator;
    sioc__utf8_validator_init(&validator);
    int failed = 0;
    size_t start = 0;
    while (start < length) {
        size_t piece = next_random(&seed) % (length - start + 1);
        failed |= sioc__utf8_validator_feed(&validator, data + start, piece) != 0;
        start += piece;
    }
    int valid = !failed && sioc__utf8_validator_is_complete(&validator);
    require(valid == sioc__utf8_is_valid(data, length));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < CONFIG_LENGTH)
        return 0;
    uint16_t size_limit = (uint16_t)((data[2] << 8) | data[3]);
    sioc__ws_limits_t limits = {
        .max_message_size = size_limit == 0xFFFF ? UINT64_MAX : size_limit,
        .max_fragments = (uint32_t)data[1] + 1,
        .allow_rsv1 = data[0] & 1,
    };
    uint32_t seed = ((uint32_t)data[0] << 24) | 0x9E3779B9u;
    const uint8_t *stream = data + CONFIG_LENGTH;
    size_t length = size - CONFIG_LENGTH;

    run_t whole = {malloc((length + 1) * sizeof(event_summary_t)), 0};
    run_t split = {malloc((length + 1) * sizeof(event_summary_t)), 0};
    require(whole.events != NULL && split.events != NULL);
    decode(&limits, stream, length, WHOLE, seed, &whole);
    decode(&limits, stream, length, BYTE_BY_BYTE, seed, &split);
    require_same_runs(&whole, &split);
    decode(&limits, stream, length, RANDOM_READS, seed, &split);
    require_same_runs(&whole, &split);
    free(whole.events);
    free(split.events);

    fuzz_close_encoder(stream, length, size_limit);
    fuzz_utf8_splits(stream, length, seed);
    const char *first = NULL;
    size_t first_length = 0;
    if (sioc__ws_parse_protocols((const char *)stream, length, &first, &first_length) == 0) {
        /* The answer is a non-empty token inside the header. */
        require(first >= (const char *)stream && first_length > 0 &&
                first + first_length <= (const char *)stream + length);
        for (size_t i = 0; i < first_length; i++)
            require(first[i] > 0x20 && first[i] < 0x7f && first[i] != ',');
    }
    char accept[SIOC_WS_ACCEPT_LENGTH + 1];
    if (sioc__ws_accept_key((const char *)stream, length, accept) == 0)
        require(strlen(accept) == SIOC_WS_ACCEPT_LENGTH);
    return 0;
}
