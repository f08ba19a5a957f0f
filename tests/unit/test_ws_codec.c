#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transport/ws_codec.h"

#define FIN 0x80
#define RSV1 0x40
#define RSV2 0x20
#define RSV3 0x10
#define TEXT_FRAME (FIN | SIOC_WS_OPCODE_TEXT)
#define BINARY_FRAME (FIN | SIOC_WS_OPCODE_BINARY)
#define CONTINUATION_FRAME (FIN | SIOC_WS_OPCODE_CONTINUATION)
#define CLOSE_FRAME (FIN | SIOC_WS_OPCODE_CLOSE)
#define PING_FRAME (FIN | SIOC_WS_OPCODE_PING)
#define PONG_FRAME (FIN | SIOC_WS_OPCODE_PONG)

#define MAX_RECORDED_EVENTS 64

static const uint8_t test_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

static const sioc__ws_limits_t default_limits = {
    .max_message_size = 1 << 20,
    .max_fragments = 16,
    .allow_rsv1 = 0,
};

/* ---- Building client streams ---- */

typedef struct stream_s {
    uint8_t *bytes;
    size_t length;
} stream_t;

static void stream_raw(stream_t *stream, const void *bytes, size_t length)
{
    stream->bytes = realloc(stream->bytes, stream->length + length + 1);
    assert_non_null(stream->bytes);
    memcpy(stream->bytes + stream->length, bytes, length);
    stream->length += length;
}

/* A masked client frame; the length uses the shortest form, as the encoder writes it. */
static void stream_frame(stream_t *stream, uint8_t first_byte, const void *payload, size_t length)
{
    uint8_t header[SIOC_WS_MAX_HEADER_LENGTH + 4];
    size_t header_length = sioc__ws_encode_header(header, 0, 0, length);
    header[0] = first_byte;
    header[1] |= 0x80;
    memcpy(header + header_length, test_mask, 4);
    stream_raw(stream, header, header_length + 4);
    const uint8_t *bytes = payload;
    for (size_t i = 0; i < length; i++) {
        uint8_t masked = bytes[i] ^ test_mask[i % 4];
        stream_raw(stream, &masked, 1);
    }
}

#define STREAM_STRING(stream, first_byte, literal)                                                 \
    stream_frame(stream, first_byte, literal, sizeof(literal) - 1)

static void stream_close(stream_t *stream, uint16_t code, const char *reason, size_t reason_length)
{
    uint8_t payload[2 + 200];
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    memcpy(payload + 2, reason, reason_length);
    stream_frame(stream, CLOSE_FRAME, payload, 2 + reason_length);
}

static void stream_dispose(stream_t *stream)
{
    free(stream->bytes);
    stream->bytes = NULL;
    stream->length = 0;
}

/* ---- Recording what the decoder reports ---- */

typedef struct recorded_event_s {
    sioc__ws_event_type_t type;
    uint16_t close_code;
    uint8_t *data;
    size_t length;
    size_t end; /* stream offset just after the event; not compared for ERROR */
} recorded_event_t;

typedef struct recording_s {
    recorded_event_t events[MAX_RECORDED_EVENTS];
    size_t count;
} recording_t;

static void record(recording_t *recording, const sioc__ws_event_t *event, size_t end)
{
    assert_true(recording->count < MAX_RECORDED_EVENTS);
    assert_non_null(event->data);
    recorded_event_t *recorded = &recording->events[recording->count++];
    recorded->type = event->type;
    recorded->close_code = event->close_code;
    recorded->length = event->length;
    recorded->end = end;
    recorded->data = malloc(event->length + 1);
    assert_non_null(recorded->data);
    memcpy(recorded->data, event->data, event->length);
    if (event->type == SIOC_WS_EVENT_ERROR)
        assert_non_null(event->error);
}

static void recording_dispose(recording_t *recording)
{
    for (size_t i = 0; i < recording->count; i++)
        free(recording->events[i].data);
    recording->count = 0;
}

/* Feeds one chunk like the connection glue does. Each chunk gets its own exactly sized heap
 * copy, so AddressSanitizer catches any read past it. Returns 0 after an ERROR. */
static int feed_chunk(sioc__ws_decoder_t *decoder, const uint8_t *bytes, size_t length,
                      size_t stream_offset, recording_t *recording)
{
    uint8_t *chunk = malloc(length > 0 ? length : 1);
    assert_non_null(chunk);
    memcpy(chunk, bytes, length);
    size_t offset = 0;
    int alive = 1;
    do {
        size_t used = 12345;
        size_t remaining = length - offset;
        sioc__ws_event_t event;
        sioc__ws_decoder_feed(decoder, chunk + offset, remaining, &used, &event);
        assert_true(used <= remaining);
        offset += used;
        if (event.type == SIOC_WS_EVENT_NEED_MORE) {
            assert_int_equal(offset, length);
            /* Idle between messages means no buffer held. */
            if (sioc__ws_decoder_held(decoder).message_opcode == 0)
                assert_null(sioc__ws_decoder_held(decoder).message);
            break;
        }
        if (remaining > 0) /* an event always ends a frame, so progress is guaranteed */
            assert_true(used > 0);
        record(recording, &event, stream_offset + offset);
        if (event.type == SIOC_WS_EVENT_ERROR) {
            assert_int_equal(offset, length);
            alive = 0;
        }
    } while (alive && offset < length);
    free(chunk);
    return alive;
}

/* Decodes a stream cut at the given offsets (ascending; the last one is the stream end). */
static void decode_chunks(const sioc__ws_limits_t *limits, const stream_t *stream,
                          const size_t *chunk_ends, size_t chunk_count, recording_t *recording)
{
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, limits);
    recording->count = 0;
    size_t start = 0;
    for (size_t i = 0; i < chunk_count; i++) {
        size_t end = chunk_ends[i];
        if (!feed_chunk(&decoder, stream->bytes + start, end - start, start, recording))
            break;
        start = end;
    }
    sioc__ws_decoder_free(&decoder);
}

static void decode_whole(const sioc__ws_limits_t *limits, const stream_t *stream,
                         recording_t *recording)
{
    size_t end = stream->length;
    decode_chunks(limits, stream, &end, 1, recording);
}

static void assert_same_recording(const recording_t *expected, const recording_t *actual,
                                  const char *how)
{
    if (expected->count != actual->count)
        fail_msg("%s: %zu events instead of %zu", how, actual->count, expected->count);
    for (size_t i = 0; i < expected->count; i++) {
        const recorded_event_t *want = &expected->events[i];
        const recorded_event_t *got = &actual->events[i];
        if (want->type != got->type || want->close_code != got->close_code ||
            want->length != got->length || memcmp(want->data, got->data, want->length) != 0 ||
            (want->type != SIOC_WS_EVENT_ERROR && want->end != got->end))
            fail_msg("%s: event %zu differs (type %d/%d, code %u/%u, length %zu/%zu, end %zu/%zu)",
                     how, i, want->type, got->type, want->close_code, got->close_code, want->length,
                     got->length, want->end, got->end);
    }
}

/* ---- Expected outcomes ---- */

typedef struct expected_event_s {
    sioc__ws_event_type_t type;
    uint16_t close_code;
    const void *data;
    size_t length;
} expected_event_t;

#define EXPECT_DATA(event_type, literal)                                                           \
    ((expected_event_t){event_type, 0, literal, sizeof(literal) - 1})
#define EXPECT_CLOSE(code, literal)                                                                \
    ((expected_event_t){SIOC_WS_EVENT_CLOSE, code, literal, sizeof(literal) - 1})
#define EXPECT_ERROR(code) ((expected_event_t){SIOC_WS_EVENT_ERROR, code, "", 0})

static void assert_expected(const recording_t *recording, const expected_event_t *expected,
                            size_t expected_count)
{
    assert_int_equal(recording->count, expected_count);
    for (size_t i = 0; i < expected_count; i++) {
        assert_int_equal(recording->events[i].type, expected[i].type);
        assert_int_equal(recording->events[i].close_code, expected[i].close_code);
        assert_int_equal(recording->events[i].length, expected[i].length);
        assert_memory_equal(recording->events[i].data, expected[i].data, expected[i].length);
    }
}

/* Every way of cutting the stream must give exactly the events of the whole stream: byte by
 * byte, at every single cut point and, for short streams, at every pair of cut points. */
static void assert_split_invariant(const sioc__ws_limits_t *limits, const stream_t *stream,
                                   const recording_t *whole)
{
    size_t length = stream->length;
    recording_t split;
    size_t *ends = malloc((length + 1) * sizeof(*ends));
    assert_non_null(ends);
    for (size_t i = 0; i < length; i++)
        ends[i] = i + 1;
    decode_chunks(limits, stream, ends, length, &split);
    assert_same_recording(whole, &split, "byte by byte");
    recording_dispose(&split);
    free(ends);

    size_t step = length <= 4096 ? 1 : length / 512;
    for (size_t cut = 0; cut <= length; cut += step) {
        size_t two[2] = {cut, length};
        decode_chunks(limits, stream, two, 2, &split);
        assert_same_recording(whole, &split, "one cut");
        recording_dispose(&split);
    }
    if (length > 160)
        return;
    for (size_t first = 0; first <= length; first++) {
        for (size_t second = first; second <= length; second++) {
            size_t three[3] = {first, second, length};
            decode_chunks(limits, stream, three, 3, &split);
            assert_same_recording(whole, &split, "two cuts");
            recording_dispose(&split);
        }
    }
}

static void check_stream(const sioc__ws_limits_t *limits, stream_t *stream,
                         const expected_event_t *expected, size_t expected_count)
{
    recording_t whole;
    decode_whole(limits, stream, &whole);
    assert_expected(&whole, expected, expected_count);
    assert_split_invariant(limits, stream, &whole);
    recording_dispose(&whole);
    stream_dispose(stream);
}

#define CHECK_STREAM(limits, stream, ...)                                                          \
    do {                                                                                           \
        const expected_event_t expected_events[] = {__VA_ARGS__};                                  \
        check_stream(limits, stream, expected_events,                                              \
                     sizeof(expected_events) / sizeof(expected_events[0]));                        \
    } while (0)

/* ---- Decoder: valid traffic ---- */

static void test_rfc_masked_text_is_a_view(void **state)
{
    (void)state;
    /* RFC 6455 §5.7: a single-frame masked text message "Hello". */
    uint8_t input[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, &default_limits);
    size_t consumed = 0;
    sioc__ws_event_t event;
    sioc__ws_decoder_feed(&decoder, input, sizeof(input), &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_TEXT);
    assert_int_equal(consumed, sizeof(input));
    assert_int_equal(event.length, 5);
    assert_memory_equal(event.data, "Hello", 5);
    assert_ptr_equal(event.data, input + 6); /* unmasked in place, not copied */
    assert_null(sioc__ws_decoder_held(&decoder).message);
    sioc__ws_decoder_free(&decoder);
}

static void test_rfc_examples(void **state)
{
    (void)state;
    stream_t stream = {0};
    static const uint8_t masked_pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                          0x7f, 0x9f, 0x4d, 0x51, 0x58};
    stream_raw(&stream, masked_pong, sizeof(masked_pong));
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "Hel");
    STREAM_STRING(&stream, CONTINUATION_FRAME, "lo");
    STREAM_STRING(&stream, PING_FRAME, "Hello");
    CHECK_STREAM(&default_limits, &stream, EXPECT_DATA(SIOC_WS_EVENT_PONG, "Hello"),
                 EXPECT_DATA(SIOC_WS_EVENT_TEXT, "Hello"),
                 EXPECT_DATA(SIOC_WS_EVENT_PING, "Hello"));
}

static void test_mixed_traffic(void **state)
{
    (void)state;
    stream_t stream = {0};
    STREAM_STRING(&stream, TEXT_FRAME, "42[\"chat\",\"hi\"]");
    STREAM_STRING(&stream, BINARY_FRAME, "");
    STREAM_STRING(&stream, TEXT_FRAME, "");
    STREAM_STRING(&stream, PING_FRAME, "");
    STREAM_STRING(&stream, BINARY_FRAME, "\x00\xff\x80\xc0");
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "frag");
    STREAM_STRING(&stream, PING_FRAME, "in between");
    STREAM_STRING(&stream, SIOC_WS_OPCODE_CONTINUATION, "");
    STREAM_STRING(&stream, PONG_FRAME, "");
    STREAM_STRING(&stream, CONTINUATION_FRAME, "mented");
    stream_close(&stream, 1000, "bye", 3);
    CHECK_STREAM(&default_limits, &stream, EXPECT_DATA(SIOC_WS_EVENT_TEXT, "42[\"chat\",\"hi\"]"),
                 EXPECT_DATA(SIOC_WS_EVENT_BINARY, ""), EXPECT_DATA(SIOC_WS_EVENT_TEXT, ""),
                 EXPECT_DATA(SIOC_WS_EVENT_PING, ""),
                 EXPECT_DATA(SIOC_WS_EVENT_BINARY, "\x00\xff\x80\xc0"),
                 EXPECT_DATA(SIOC_WS_EVENT_PING, "in between"), EXPECT_DATA(SIOC_WS_EVENT_PONG, ""),
                 EXPECT_DATA(SIOC_WS_EVENT_TEXT, "fragmented"), EXPECT_CLOSE(1000, "bye"));
}

static void test_utf8_split_across_fragments(void **state)
{
    (void)state;
    stream_t stream = {0};
    /* "€" (E2 82 AC) and "😀" (F0 9F 98 80) cut inside their code points. */
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "price \xE2");
    STREAM_STRING(&stream, SIOC_WS_OPCODE_CONTINUATION, "\x82");
    STREAM_STRING(&stream, SIOC_WS_OPCODE_CONTINUATION, "");
    STREAM_STRING(&stream, SIOC_WS_OPCODE_CONTINUATION, "\xAC 5 \xF0\x9F");
    STREAM_STRING(&stream, CONTINUATION_FRAME, "\x98\x80");
    CHECK_STREAM(&default_limits, &stream,
                 EXPECT_DATA(SIOC_WS_EVENT_TEXT, "price \xE2\x82\xAC 5 \xF0\x9F\x98\x80"));
}

static void test_binary_is_not_validated(void **state)
{
    (void)state;
    stream_t stream = {0};
    STREAM_STRING(&stream, BINARY_FRAME, "\xFF\xC0\x80\xED\xA0\x80");
    CHECK_STREAM(&default_limits, &stream,
                 EXPECT_DATA(SIOC_WS_EVENT_BINARY, "\xFF\xC0\x80\xED\xA0\x80"));
}

static void fill_pattern(uint8_t *bytes, size_t length)
{
    for (size_t i = 0; i < length; i++)
        bytes[i] = (uint8_t)(i * 7 + (i >> 8));
}

/* Lengths around each header form, and payloads long enough for the word-wise unmasking to
 * start at every mask phase when cut. */
static void test_length_encodings(void **state)
{
    (void)state;
    static const size_t lengths[] = {1, 7, 8, 9, 33, 125, 126, 127, 1000};
    static uint8_t payload[1000];
    fill_pattern(payload, sizeof(payload));
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        stream_t stream = {0};
        stream_frame(&stream, BINARY_FRAME, payload, lengths[i]);
        CHECK_STREAM(&default_limits, &stream,
                     ((expected_event_t){SIOC_WS_EVENT_BINARY, 0, payload, lengths[i]}));
    }
}

static void test_large_messages(void **state)
{
    (void)state;
    static const size_t lengths[] = {65535, 65536, 70001};
    uint8_t *payload = malloc(70001);
    assert_non_null(payload);
    fill_pattern(payload, 70001);
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        stream_t stream = {0};
        stream_frame(&stream, BINARY_FRAME, payload, lengths[i]);
        size_t header_length = lengths[i] > 65535 ? 14 : 8;
        assert_int_equal(stream.length, header_length + lengths[i]);
        CHECK_STREAM(&default_limits, &stream,
                     ((expected_event_t){SIOC_WS_EVENT_BINARY, 0, payload, lengths[i]}));
    }
    /* The same bytes as text fragments, with a code point cut between frames. */
    memset(payload, 'a', 70001);
    memcpy(payload + 40000 - 1, "\xE2\x82\xAC", 3);
    stream_t stream = {0};
    stream_frame(&stream, SIOC_WS_OPCODE_TEXT, payload, 40000);
    stream_frame(&stream, CONTINUATION_FRAME, payload + 40000, 30001);
    CHECK_STREAM(&default_limits, &stream,
                 ((expected_event_t){SIOC_WS_EVENT_TEXT, 0, payload, 70001}));
    free(payload);
}

static void test_non_minimal_length_is_accepted(void **state)
{
    (void)state;
    /* RFC 6455 asks senders for the shortest form; like ws and browsers we accept longer. */
    stream_t stream = {0};
    uint8_t header[] = {BINARY_FRAME, 0x80 | 126, 0x00, 0x02, 0, 0, 0, 0};
    stream_raw(&stream, header, sizeof(header));
    stream_raw(&stream, "ok", 2);
    uint8_t header64[] = {TEXT_FRAME, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0};
    stream_raw(&stream, header64, sizeof(header64));
    stream_raw(&stream, "!", 1);
    CHECK_STREAM(&default_limits, &stream, EXPECT_DATA(SIOC_WS_EVENT_BINARY, "ok"),
                 EXPECT_DATA(SIOC_WS_EVENT_TEXT, "!"));
}

static void test_rsv1_allowed_only_when_negotiated(void **state)
{
    (void)state;
    sioc__ws_limits_t deflate = default_limits;
    deflate.allow_rsv1 = 1;
    stream_t stream = {0};
    STREAM_STRING(&stream, RSV1 | SIOC_WS_OPCODE_BINARY, "ab");
    STREAM_STRING(&stream, CONTINUATION_FRAME, "c");
    STREAM_STRING(&stream, RSV1 | TEXT_FRAME, "d");
    CHECK_STREAM(&deflate, &stream, EXPECT_DATA(SIOC_WS_EVENT_BINARY, "abc"),
                 EXPECT_DATA(SIOC_WS_EVENT_TEXT, "d"));

    /* RFC 7692: never on control frames nor on continuation frames. */
    STREAM_STRING(&stream, RSV1 | PING_FRAME, "");
    CHECK_STREAM(&deflate, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "a");
    STREAM_STRING(&stream, RSV1 | CONTINUATION_FRAME, "b");
    CHECK_STREAM(&deflate, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
    STREAM_STRING(&stream, RSV2 | SIOC_WS_OPCODE_TEXT, "a");
    CHECK_STREAM(&deflate, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
}

static void test_limits_are_inclusive(void **state)
{
    (void)state;
    sioc__ws_limits_t limits = {.max_message_size = 10, .max_fragments = 3, .allow_rsv1 = 0};
    stream_t stream = {0};
    STREAM_STRING(&stream, TEXT_FRAME, "0123456789");
    STREAM_STRING(&stream, SIOC_WS_OPCODE_BINARY, "01234");
    STREAM_STRING(&stream, SIOC_WS_OPCODE_CONTINUATION, "");
    STREAM_STRING(&stream, CONTINUATION_FRAME, "56789");
    CHECK_STREAM(&limits, &stream, EXPECT_DATA(SIOC_WS_EVENT_TEXT, "0123456789"),
                 EXPECT_DATA(SIOC_WS_EVENT_BINARY, "0123456789"));
}

/* ---- Decoder: protocol errors ---- */

static void test_unmasked_frame(void **state)
{
    (void)state;
    stream_t stream = {0};
    uint8_t unmasked[] = {TEXT_FRAME, 0x05, 'H', 'e', 'l', 'l', 'o'};
    STREAM_STRING(&stream, TEXT_FRAME, "ok");
    stream_raw(&stream, unmasked, sizeof(unmasked));
    CHECK_STREAM(&default_limits, &stream, EXPECT_DATA(SIOC_WS_EVENT_TEXT, "ok"),
                 EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
}

static void test_reserved_bits(void **state)
{
    (void)state;
    static const uint8_t reserved[] = {RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3};
    for (size_t i = 0; i < sizeof(reserved); i++) {
        stream_t stream = {0};
        STREAM_STRING(&stream, reserved[i] | TEXT_FRAME, "x");
        CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
    }
}

static void test_unknown_opcodes(void **state)
{
    (void)state;
    static const uint8_t unknown[] = {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF};
    for (size_t i = 0; i < sizeof(unknown); i++) {
        stream_t stream = {0};
        STREAM_STRING(&stream, FIN | unknown[i], "x");
        CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
    }
}

static void test_bad_control_frames(void **state)
{
    (void)state;
    static uint8_t payload[126];
    memset(payload, 'p', sizeof(payload));
    stream_t stream = {0};
    STREAM_STRING(&stream, SIOC_WS_OPCODE_PING, "not final");
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
    stream_frame(&stream, PING_FRAME, payload, 126);
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
    stream_frame(&stream, PONG_FRAME, payload, 125); /* the largest allowed */
    CHECK_STREAM(&default_limits, &stream,
                 ((expected_event_t){SIOC_WS_EVENT_PONG, 0, payload, 125}));
    /* Refused on the second header byte, before any extended length or payload. */
    uint8_t long_close[] = {CLOSE_FRAME, 0x80 | 126};
    stream_raw(&stream, long_close, sizeof(long_close));
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
}

static void test_bad_message_sequences(void **state)
{
    (void)state;
    stream_t stream = {0};
    STREAM_STRING(&stream, CONTINUATION_FRAME, "orphan");
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "first");
    STREAM_STRING(&stream, BINARY_FRAME, "second");
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
    STREAM_STRING(&stream, TEXT_FRAME, "done");
    STREAM_STRING(&stream, CONTINUATION_FRAME, "late");
    CHECK_STREAM(&default_limits, &stream, EXPECT_DATA(SIOC_WS_EVENT_TEXT, "done"),
                 EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
}

static void test_length_with_top_bit(void **state)
{
    (void)state;
    sioc__ws_limits_t unlimited = default_limits;
    unlimited.max_message_size = UINT64_MAX;
    stream_t stream = {0};
    /* No mask key and no payload: the length alone must be refused. */
    uint8_t header[] = {BINARY_FRAME, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
    stream_raw(&stream, header, sizeof(header));
    CHECK_STREAM(&unlimited, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
}

static void test_message_too_big(void **state)
{
    (void)state;
    sioc__ws_limits_t limits = {.max_message_size = 1000, .max_fragments = 16, .allow_rsv1 = 0};
    stream_t stream = {0};
    /* The declared length is enough: no payload needs to arrive. */
    uint8_t header16[] = {BINARY_FRAME, 0x80 | 126, 0x03, 0xE9};
    stream_raw(&stream, header16, sizeof(header16));
    CHECK_STREAM(&limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_MESSAGE_TOO_BIG));
    uint8_t header64[] = {TEXT_FRAME, 0x80 | 127, 0, 0, 0x01, 0, 0, 0, 0, 0};
    stream_raw(&stream, header64, sizeof(header64));
    CHECK_STREAM(&limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_MESSAGE_TOO_BIG));

    limits.max_message_size = 10;
    STREAM_STRING(&stream, TEXT_FRAME, "01234567890");
    CHECK_STREAM(&limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_MESSAGE_TOO_BIG));
    /* The running total over fragments counts, announced by the last header. */
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "0123");
    STREAM_STRING(&stream, SIOC_WS_OPCODE_CONTINUATION, "4567");
    uint8_t last_header[] = {CONTINUATION_FRAME, 0x80 | 3};
    stream_raw(&stream, last_header, sizeof(last_header));
    CHECK_STREAM(&limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_MESSAGE_TOO_BIG));
    /* Control frames do not count towards the message. */
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "01234");
    STREAM_STRING(&stream, PING_FRAME, "0123456789abc");
    STREAM_STRING(&stream, CONTINUATION_FRAME, "56789");
    CHECK_STREAM(&limits, &stream, EXPECT_DATA(SIOC_WS_EVENT_PING, "0123456789abc"),
                 EXPECT_DATA(SIOC_WS_EVENT_TEXT, "0123456789"));
}

static void test_too_many_fragments(void **state)
{
    (void)state;
    sioc__ws_limits_t limits = {.max_message_size = 100, .max_fragments = 3, .allow_rsv1 = 0};
    stream_t stream = {0};
    STREAM_STRING(&stream, SIOC_WS_OPCODE_BINARY, "");
    STREAM_STRING(&stream, SIOC_WS_OPCODE_CONTINUATION, "");
    STREAM_STRING(&stream, SIOC_WS_OPCODE_CONTINUATION, "");
    /* Refused on the first byte of the fourth frame. */
    uint8_t fourth[] = {CONTINUATION_FRAME};
    stream_raw(&stream, fourth, sizeof(fourth));
    CHECK_STREAM(&limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_POLICY_VIOLATION));
    /* Interleaved control frames are not fragments. */
    STREAM_STRING(&stream, SIOC_WS_OPCODE_BINARY, "a");
    STREAM_STRING(&stream, PING_FRAME, "");
    STREAM_STRING(&stream, PING_FRAME, "");
    STREAM_STRING(&stream, SIOC_WS_OPCODE_CONTINUATION, "b");
    STREAM_STRING(&stream, PONG_FRAME, "");
    STREAM_STRING(&stream, CONTINUATION_FRAME, "c");
    CHECK_STREAM(&limits, &stream, EXPECT_DATA(SIOC_WS_EVENT_PING, ""),
                 EXPECT_DATA(SIOC_WS_EVENT_PING, ""), EXPECT_DATA(SIOC_WS_EVENT_PONG, ""),
                 EXPECT_DATA(SIOC_WS_EVENT_BINARY, "abc"));
    /* No fragment allowed at all: even a whole single-frame message is one too many. */
    limits.max_fragments = 0;
    STREAM_STRING(&stream, TEXT_FRAME, "short");
    CHECK_STREAM(&limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_POLICY_VIOLATION));
}

static void test_invalid_utf8_text(void **state)
{
    (void)state;
    stream_t stream = {0};
    STREAM_STRING(&stream, TEXT_FRAME, "bad \xC0\xAF");
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_INVALID_PAYLOAD));
    STREAM_STRING(&stream, TEXT_FRAME, "surrogate \xED\xA0\x80");
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_INVALID_PAYLOAD));
    /* A message may not end inside a code point, even when every fragment ends cleanly. */
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "ok");
    STREAM_STRING(&stream, CONTINUATION_FRAME, "\xF0\x9F\x98");
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_INVALID_PAYLOAD));
    STREAM_STRING(&stream, TEXT_FRAME, "\xE2\x82");
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_INVALID_PAYLOAD));
}

static void test_invalid_utf8_fails_fast(void **state)
{
    (void)state;
    /* A frame announcing 1000 bytes of which only "ok" and a bad byte have arrived: the error
     * must come now, not when the frame (or the message) ends. */
    stream_t stream = {0};
    uint8_t header[] = {SIOC_WS_OPCODE_TEXT, 0x80 | 126, 0x03, 0xE8};
    stream_raw(&stream, header, sizeof(header));
    stream_raw(&stream, test_mask, 4);
    const uint8_t payload[] = {'o' ^ 0x37, 'k' ^ 0xfa, 0xFF ^ 0x21};
    stream_raw(&stream, payload, sizeof(payload));
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_INVALID_PAYLOAD));
    /* Likewise in a later fragment. */
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "fine \xE2\x82");
    stream_raw(&stream, header, sizeof(header));
    stream_raw(&stream, test_mask, 4);
    const uint8_t continuation[] = {0x41 ^ 0x37};
    stream_raw(&stream, continuation, sizeof(continuation));
    stream.bytes[stream.length - 9] = SIOC_WS_OPCODE_CONTINUATION;
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_INVALID_PAYLOAD));
}

static void test_close_frames(void **state)
{
    (void)state;
    stream_t stream = {0};
    STREAM_STRING(&stream, CLOSE_FRAME, "");
    CHECK_STREAM(&default_limits, &stream, EXPECT_CLOSE(SIOC_WS_CLOSE_NO_STATUS, ""));
    stream_close(&stream, 1001, "", 0);
    CHECK_STREAM(&default_limits, &stream, EXPECT_CLOSE(1001, ""));
    stream_close(&stream, 4999, "\xCE\xBA\xCF\x8C\xCF\x83\xCE\xBC\xCE\xB5", 10);
    CHECK_STREAM(&default_limits, &stream,
                 EXPECT_CLOSE(4999, "\xCE\xBA\xCF\x8C\xCF\x83\xCE\xBC\xCE\xB5"));
    STREAM_STRING(&stream, CLOSE_FRAME, "\x03");
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
    stream_close(&stream, 1000, "bad \xFF", 5);
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_INVALID_PAYLOAD));
    stream_close(&stream, 1000, "cut \xE2\x82", 6);
    CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_INVALID_PAYLOAD));

    static const uint16_t invalid_codes[] = {0,    999,  1004, 1005, 1006, 1015,
                                             1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(invalid_codes) / sizeof(invalid_codes[0]); i++) {
        stream_close(&stream, invalid_codes[i], "why", 3);
        CHECK_STREAM(&default_limits, &stream, EXPECT_ERROR(SIOC_WS_CLOSE_PROTOCOL_ERROR));
    }
    /* Close interleaved in a fragmented message is still delivered. */
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "half");
    stream_close(&stream, 1000, "", 0);
    CHECK_STREAM(&default_limits, &stream, EXPECT_CLOSE(1000, ""));
}

static void test_close_code_validity(void **state)
{
    (void)state;
    static const uint16_t valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                     1011, 1012, 1014, 3000, 3999, 4000, 4999};
    static const uint16_t invalid[] = {0,    1,    999,  1004, 1005, 1006,
                                       1015, 1016, 2999, 5000, 6000, 65535};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        assert_int_equal(sioc__ws_close_code_is_valid(valid[i]), 1);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        assert_int_equal(sioc__ws_close_code_is_valid(invalid[i]), 0);
}

/* ---- Decoder: buffering, consumed counts, failure state ---- */

static void test_consumed_one_event_per_call(void **state)
{
    (void)state;
    stream_t stream = {0};
    STREAM_STRING(&stream, TEXT_FRAME, "one");  /* 9 bytes */
    STREAM_STRING(&stream, PING_FRAME, "two!"); /* 10 bytes */
    STREAM_STRING(&stream, SIOC_WS_OPCODE_BINARY, "3");
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, &default_limits);
    size_t consumed;
    sioc__ws_event_t event;
    sioc__ws_decoder_feed(&decoder, stream.bytes, stream.length, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_TEXT);
    assert_int_equal(consumed, 9);
    sioc__ws_decoder_feed(&decoder, stream.bytes + 9, stream.length - 9, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_PING);
    assert_int_equal(consumed, 10);
    assert_memory_equal(event.data, "two!", 4);
    assert_ptr_equal(event.data, stream.bytes + 9 + 6);
    sioc__ws_decoder_feed(&decoder, stream.bytes + 19, stream.length - 19, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_NEED_MORE);
    assert_int_equal(consumed, 7);
    assert_int_equal(sioc__ws_decoder_held(&decoder).message_length,
                     1); /* unfinished message: kept */
    sioc__ws_decoder_feed(&decoder, stream.bytes, 0, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_NEED_MORE);
    assert_int_equal(consumed, 0);
    sioc__ws_decoder_free(&decoder);
    stream_dispose(&stream);
}

static void test_split_frame_is_copied_then_released(void **state)
{
    (void)state;
    uint8_t input[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, &default_limits);
    size_t consumed;
    sioc__ws_event_t event;
    sioc__ws_decoder_feed(&decoder, input, 8, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_NEED_MORE);
    assert_int_equal(consumed, 8);
    assert_non_null(sioc__ws_decoder_held(&decoder).message);
    assert_int_equal(sioc__ws_decoder_held(&decoder).message_length, 2);
    sioc__ws_decoder_feed(&decoder, input + 8, 3, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_TEXT);
    assert_int_equal(consumed, 3);
    assert_ptr_equal(event.data, sioc__ws_decoder_held(&decoder).message);
    assert_memory_equal(event.data, "Hello", 5);
    assert_int_equal(event.length, 5);
    /* The next call, even with nothing to decode (not even a buffer), releases the copy. */
    sioc__ws_decoder_feed(&decoder, NULL, 0, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_NEED_MORE);
    assert_int_equal(consumed, 0);
    assert_null(sioc__ws_decoder_held(&decoder).message);
    assert_int_equal(sioc__ws_decoder_held(&decoder).message_capacity, 0);
    assert_null(decoder.partial); /* the frame's state went with it */
    sioc__ws_decoder_free(&decoder);
}

/* An idle WebSocket keeps no frame state: whole frames are decoded on the stack, a split one
 * gets its state only while it is incomplete. */
static void test_frame_state_only_while_incomplete(void **state)
{
    (void)state;
    uint8_t input[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
                       0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    uint8_t copy[sizeof(input)];
    memcpy(copy, input, sizeof(input));
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, &default_limits);
    size_t consumed;
    sioc__ws_event_t event;
    sioc__ws_decoder_feed(&decoder, copy, 11, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_TEXT);
    assert_memory_equal(event.data, "Hello", 5);
    assert_null(decoder.partial);
    sioc__ws_decoder_feed(&decoder, copy + 11, 1, &consumed, &event); /* a header split */
    assert_int_equal(event.type, SIOC_WS_EVENT_NEED_MORE);
    assert_non_null(decoder.partial);
    sioc__ws_decoder_feed(&decoder, copy + 12, 10, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_TEXT);
    assert_memory_equal(event.data, "Hello", 5);
    sioc__ws_decoder_feed(&decoder, NULL, 0, &consumed, &event);
    assert_null(decoder.partial);
    /* A failure is kept, to be repeated. */
    uint8_t unmasked[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    sioc__ws_decoder_feed(&decoder, unmasked, sizeof(unmasked), &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_ERROR);
    assert_non_null(decoder.partial);
    sioc__ws_decoder_feed(&decoder, copy, 11, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_ERROR);
    assert_int_equal(event.close_code, SIOC_WS_CLOSE_PROTOCOL_ERROR);
    sioc__ws_decoder_free(&decoder);
    assert_null(decoder.partial);
}

/* Memory follows bytes received, never bytes merely announced by a header. */
static void test_buffer_grows_with_received_bytes(void **state)
{
    (void)state;
    static uint8_t payload[1000];
    fill_pattern(payload, sizeof(payload));
    stream_t stream = {0};
    stream_frame(&stream, BINARY_FRAME, payload, sizeof(payload)); /* 8-byte header */
    static const size_t chunk_ends[] = {18, 518, 1008};
    static const size_t capacities[] = {10, 510, 1000};
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, &default_limits);
    size_t start = 0;
    size_t consumed;
    sioc__ws_event_t event;
    for (size_t i = 0; i < 3; i++) {
        sioc__ws_decoder_feed(&decoder, stream.bytes + start, chunk_ends[i] - start, &consumed,
                              &event);
        assert_int_equal(consumed, chunk_ends[i] - start);
        assert_int_equal(sioc__ws_decoder_held(&decoder).message_capacity, capacities[i]);
        start = chunk_ends[i];
    }
    assert_int_equal(event.type, SIOC_WS_EVENT_BINARY);
    assert_memory_equal(event.data, payload, sizeof(payload));
    stream_dispose(&stream);

    /* Across fragments: doubling, but capped at the end of the current frame. */
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "0123456789");
    STREAM_STRING(&stream, CONTINUATION_FRAME, "a");
    sioc__ws_decoder_feed(&decoder, stream.bytes, stream.length, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_TEXT);
    assert_int_equal(sioc__ws_decoder_held(&decoder).message_capacity, 11);
    assert_memory_equal(event.data, "0123456789a", 11);
    sioc__ws_decoder_free(&decoder);
    stream_dispose(&stream);
}

static void test_split_control_frame_uses_control_buffer(void **state)
{
    (void)state;
    stream_t stream = {0};
    STREAM_STRING(&stream, PING_FRAME, "ping!");
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, &default_limits);
    size_t consumed;
    sioc__ws_event_t event;
    sioc__ws_decoder_feed(&decoder, stream.bytes, 3, &consumed, &event); /* header split too */
    assert_int_equal(event.type, SIOC_WS_EVENT_NEED_MORE);
    sioc__ws_decoder_feed(&decoder, stream.bytes + 3, 5, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_NEED_MORE);
    sioc__ws_decoder_feed(&decoder, stream.bytes + 8, 3, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_PING);
    assert_int_equal(consumed, 3);
    assert_ptr_equal(event.data, sioc__ws_decoder_held(&decoder).control);
    assert_memory_equal(event.data, "ping!", 5);
    assert_null(sioc__ws_decoder_held(&decoder).message);
    /* The copy is let go of on the next feed: an idle connection holds no buffer. */
    sioc__ws_decoder_feed(&decoder, NULL, 0, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_NEED_MORE);
    assert_null(sioc__ws_decoder_held(&decoder).control);
    sioc__ws_decoder_free(&decoder);
    stream_dispose(&stream);
}

static void test_error_is_sticky(void **state)
{
    (void)state;
    uint8_t bad[] = {TEXT_FRAME | RSV2, 0x80};
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, &default_limits);
    size_t consumed;
    sioc__ws_event_t event;
    sioc__ws_decoder_feed(&decoder, bad, sizeof(bad), &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_ERROR);
    assert_int_equal(event.close_code, SIOC_WS_CLOSE_PROTOCOL_ERROR);
    assert_string_equal(event.error, "reserved bits set");
    assert_int_equal(consumed, sizeof(bad));
    uint8_t good[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    sioc__ws_decoder_feed(&decoder, good, sizeof(good), &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_ERROR);
    assert_int_equal(event.close_code, SIOC_WS_CLOSE_PROTOCOL_ERROR);
    assert_int_equal(consumed, sizeof(good));
    assert_int_equal(good[6], 0x7f); /* not even unmasked */
    sioc__ws_decoder_feed(&decoder, good, 0, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_ERROR);
    sioc__ws_decoder_free(&decoder);
}

static void test_error_releases_buffer(void **state)
{
    (void)state;
    stream_t stream = {0};
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "buffered");
    STREAM_STRING(&stream, CONTINUATION_FRAME, "\xFF");
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, &default_limits);
    size_t consumed;
    sioc__ws_event_t event;
    sioc__ws_decoder_feed(&decoder, stream.bytes, 14, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_NEED_MORE);
    assert_non_null(sioc__ws_decoder_held(&decoder).message);
    sioc__ws_decoder_feed(&decoder, stream.bytes + 14, stream.length - 14, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_ERROR);
    assert_int_equal(event.close_code, SIOC_WS_CLOSE_INVALID_PAYLOAD);
    assert_null(sioc__ws_decoder_held(&decoder).message);
    sioc__ws_decoder_free(&decoder);
    stream_dispose(&stream);
}

static void test_free_resets_for_reuse(void **state)
{
    (void)state;
    stream_t stream = {0};
    STREAM_STRING(&stream, SIOC_WS_OPCODE_TEXT, "abandoned");
    sioc__ws_limits_t limits = {.max_message_size = 77, .max_fragments = 5, .allow_rsv1 = 1};
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, &limits);
    size_t consumed;
    sioc__ws_event_t event;
    sioc__ws_decoder_feed(&decoder, stream.bytes, stream.length, &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_NEED_MORE);
    assert_non_null(sioc__ws_decoder_held(&decoder).message);
    sioc__ws_decoder_free(&decoder); /* LeakSanitizer checks the buffer went */
    assert_null(sioc__ws_decoder_held(&decoder).message);
    assert_int_equal(sioc__ws_decoder_held(&decoder).message_opcode, 0);
    assert_int_equal(decoder.limits.max_message_size, 77);
    assert_int_equal(decoder.limits.allow_rsv1, 1);
    uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    sioc__ws_decoder_feed(&decoder, hello, sizeof(hello), &consumed, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_TEXT);
    assert_memory_equal(event.data, "Hello", 5);
    sioc__ws_decoder_free(&decoder);
    stream_dispose(&stream);
}

/* ---- Encoder ---- */

static void assert_header(int fin, int opcode, uint64_t length, const uint8_t *expected,
                          size_t expected_length)
{
    uint8_t out[SIOC_WS_MAX_HEADER_LENGTH + 1];
    memset(out, 0xEE, sizeof(out));
    assert_int_equal(sioc__ws_encode_header(out, fin, opcode, length), expected_length);
    assert_memory_equal(out, expected, expected_length);
    assert_int_equal(out[expected_length], 0xEE); /* nothing written past the header */
}

static void test_encode_header(void **state)
{
    (void)state;
    assert_header(1, SIOC_WS_OPCODE_TEXT, 0, (const uint8_t[]){0x81, 0x00}, 2);
    assert_header(1, SIOC_WS_OPCODE_TEXT, 5, (const uint8_t[]){0x81, 0x05}, 2);
    assert_header(1, SIOC_WS_OPCODE_BINARY, 125, (const uint8_t[]){0x82, 0x7D}, 2);
    assert_header(1, SIOC_WS_OPCODE_BINARY, 126, (const uint8_t[]){0x82, 0x7E, 0x00, 0x7E}, 4);
    assert_header(1, SIOC_WS_OPCODE_BINARY, 256, (const uint8_t[]){0x82, 0x7E, 0x01, 0x00}, 4);
    assert_header(0, SIOC_WS_OPCODE_TEXT, 65535, (const uint8_t[]){0x01, 0x7E, 0xFF, 0xFF}, 4);
    assert_header(1, SIOC_WS_OPCODE_BINARY, 65536,
                  (const uint8_t[]){0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}, 10);
    assert_header(0, SIOC_WS_OPCODE_CONTINUATION, 0x0123456789ABCDEFull,
                  (const uint8_t[]){0x00, 0x7F, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF},
                  10);
    assert_header(1, SIOC_WS_OPCODE_PING, 0, (const uint8_t[]){0x89, 0x00}, 2);
    assert_header(1, SIOC_WS_OPCODE_PONG, 3, (const uint8_t[]){0x8A, 0x03}, 2);
    assert_header(1, SIOC_WS_OPCODE_CLOSE, 2, (const uint8_t[]){0x88, 0x02}, 2);
}

/* Masks a server frame as a client would and decodes it: the encoder's output must be what
 * the decoder (and so any conforming peer) accepts. */
static void decode_server_frame(const uint8_t *frame, size_t length, sioc__ws_event_t *event,
                                uint8_t *scratch)
{
    size_t header_length = frame[1] == 126 ? 4 : 2; /* close/control frames only */
    memcpy(scratch, frame, header_length);
    scratch[1] |= 0x80;
    memcpy(scratch + header_length, test_mask, 4);
    for (size_t i = header_length; i < length; i++)
        scratch[4 + i] = frame[i] ^ test_mask[(i - header_length) % 4];
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, &default_limits);
    size_t consumed;
    sioc__ws_decoder_feed(&decoder, scratch, length + 4, &consumed, event);
    assert_int_equal(consumed, length + 4);
    sioc__ws_decoder_free(&decoder);
}

static void test_encode_close(void **state)
{
    (void)state;
    uint8_t out[SIOC_WS_MAX_CLOSE_FRAME_LENGTH];
    assert_int_equal(sioc__ws_encode_close(out, 0, "ignored"), 2);
    assert_memory_equal(out, "\x88\x00", 2);
    assert_int_equal(sioc__ws_encode_close(out, SIOC_WS_CLOSE_NO_STATUS, NULL), 2);
    assert_memory_equal(out, "\x88\x00", 2);
    assert_int_equal(sioc__ws_encode_close(out, 1000, NULL), 4);
    assert_memory_equal(out, "\x88\x02\x03\xE8", 4);
    assert_int_equal(sioc__ws_encode_close(out, 1000, ""), 4);
    assert_memory_equal(out, "\x88\x02\x03\xE8", 4);
    assert_int_equal(sioc__ws_encode_close(out, 1009, "too big"), 11);
    assert_memory_equal(out, "\x88\x09\x03\xF1too big", 11);
    assert_int_equal(sioc__ws_encode_close(out, 4000, "bad \xFF"), 4); /* not UTF-8: dropped */
    assert_memory_equal(out, "\x88\x02\x0F\xA0", 4);
}

static void test_encode_close_truncates_reason(void **state)
{
    (void)state;
    uint8_t out[SIOC_WS_MAX_CLOSE_FRAME_LENGTH];
    char reason[300];
    memset(reason, 'r', sizeof(reason));
    reason[sizeof(reason) - 1] = '\0';
    assert_int_equal(sioc__ws_encode_close(out, 1001, reason), 127);
    assert_memory_equal(out, "\x88\x7D\x03\xE9", 4);
    assert_memory_equal(out + 4, reason, 123);

    reason[123] = '\0'; /* exactly fits */
    assert_int_equal(sioc__ws_encode_close(out, 1001, reason), 127);
    reason[123] = 'r';

    /* A 3-byte code point straddling byte 123 is dropped whole, wherever it starts. */
    for (size_t start = 118; start <= 124; start++) {
        memset(reason, 'r', sizeof(reason));
        reason[sizeof(reason) - 1] = '\0';
        memcpy(reason + start, "\xE2\x82\xAC", 3);
        size_t expected_reason = start + 3 <= 123 ? 123 : start;
        if (start >= 123)
            expected_reason = 123;
        size_t length = sioc__ws_encode_close(out, 1000, reason);
        assert_int_equal(length, 4 + expected_reason);
        assert_int_equal(out[1], 2 + expected_reason);
        assert_memory_equal(out + 4, reason, expected_reason);

        uint8_t scratch[SIOC_WS_MAX_CLOSE_FRAME_LENGTH + 4];
        sioc__ws_event_t event;
        decode_server_frame(out, length, &event, scratch);
        assert_int_equal(event.type, SIOC_WS_EVENT_CLOSE);
        assert_int_equal(event.close_code, 1000);
        assert_int_equal(event.length, expected_reason);
    }
}

static void test_encode_close_reads_only_the_string(void **state)
{
    (void)state;
    /* Exactly sized heap strings: AddressSanitizer reports any read past the terminator. */
    static const size_t lengths[] = {0, 1, 10, 122, 123, 124};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        char *reason = malloc(lengths[i] + 1);
        assert_non_null(reason);
        memset(reason, 'x', lengths[i]);
        reason[lengths[i]] = '\0';
        uint8_t out[SIOC_WS_MAX_CLOSE_FRAME_LENGTH];
        size_t expected = lengths[i] < 123 ? lengths[i] : 123;
        assert_int_equal(sioc__ws_encode_close(out, 3000, reason), 4 + expected);
        free(reason);
    }
}

/* ---- Handshake ---- */

static void test_accept_key_rfc_example(void **state)
{
    (void)state;
    char out[SIOC_WS_ACCEPT_LENGTH + 1];
    memset(out, 'Z', sizeof(out));
    /* RFC 6455 §1.3. */
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(sioc__ws_accept_key(key, strlen(key), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* The key is taken by length, not up to a NUL. */
    const char *in_header = "dGhlIHNhbXBsZSBub25jZQ==\r\n";
    assert_int_equal(sioc__ws_accept_key(in_header, 24, out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* The example of the Wikipedia article on WebSocket. */
    const char *other = "x3JJHMbDL1EzLkh9GBhXDw==";
    assert_int_equal(sioc__ws_accept_key(other, strlen(other), out), 0);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

static void test_accept_key_rejects_bad_keys(void **state)
{
    (void)state;
    static const char *const bad_keys[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",   /* 23 characters */
        "dGhlIHNhbXBsZSBub25jZQ===", /* 25 characters */
        "dGhlIHNhbXBsZSBub25jZQ",    /* no padding */
        "dGhlIHNhbXBsZSBub25jZQAA",  /* 18 bytes, not 16 */
        "dGhlIHNhbXBsZSBub25j=Q==",  /* padding inside */
        "dGhlIHNhbXBsZSBub25jZ*==",  /* not base64 */
        "dGhlIHNhbXBsZSBub25jZ-==",  /* base64url is not base64 */
        "dGhlIHNhbXBsZSBub25jZ ==",  /* space */
    };
    char out[SIOC_WS_ACCEPT_LENGTH + 1];
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++)
        assert_int_equal(sioc__ws_accept_key(bad_keys[i], strlen(bad_keys[i]), out), -1);
    assert_int_equal(sioc__ws_accept_key(NULL, 24, out), -1);
    char with_nul[] = "dGhlIHNhbXBsZSBub25jZQ==";
    with_nul[5] = '\0';
    assert_int_equal(sioc__ws_accept_key(with_nul, 24, out), -1);
}

/* ws 8's lib/subprotocol.js, case by case. */
static void test_parse_protocols(void **state)
{
    static const struct {
        const char *value;
        const char *first; /* NULL: refused */
    } cases[] = {
        {"chat", "chat"},
        {"chat, superchat", "chat"},
        {"chat,superchat", "chat"},
        {"a ,b", "a"},
        {"a,\tb", "a"},
        {"x-1.2_~!#$%&'*+^`|", "x-1.2_~!#$%&'*+^`|"},
        {"", NULL},
        {" a", NULL},
        {"a ", NULL},
        {"a,", NULL},
        {",a", NULL},
        {"a,,b", NULL},
        {"a,a", NULL},
        {"b,a,b", NULL},
        {"a b", NULL},
        {"a;b", NULL},
        {"a/b", NULL},
        {"\"a\"", NULL},
        {"a,\x7f", NULL},
        {"caf\xc3\xa9", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *first = NULL;
        size_t first_length = 0;
        int rc =
            sioc__ws_parse_protocols(cases[i].value, strlen(cases[i].value), &first, &first_length);
        if (cases[i].first == NULL) {
            if (rc != -1)
                fail_msg("accepted %s", cases[i].value);
            continue;
        }
        if (rc != 0)
            fail_msg("refused %s", cases[i].value);
        assert_int_equal(first_length, strlen(cases[i].first));
        assert_memory_equal(first, cases[i].first, first_length);
    }
    /* Many protocols: linear parse plus a sort, duplicates found anywhere. */
    char many[16384];
    size_t length = 0;
    for (int i = 0; i < 2000; i++)
        length += (size_t)snprintf(many + length, sizeof(many) - length, "%sp%d", i ? "," : "", i);
    const char *first;
    size_t first_length;
    assert_int_equal(sioc__ws_parse_protocols(many, length, &first, &first_length), 0);
    assert_int_equal(first_length, 2);
    length += (size_t)snprintf(many + length, sizeof(many) - length, ",p1234");
    assert_int_equal(sioc__ws_parse_protocols(many, length, &first, &first_length), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_masked_text_is_a_view),
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_mixed_traffic),
        cmocka_unit_test(test_utf8_split_across_fragments),
        cmocka_unit_test(test_binary_is_not_validated),
        cmocka_unit_test(test_length_encodings),
        cmocka_unit_test(test_large_messages),
        cmocka_unit_test(test_non_minimal_length_is_accepted),
        cmocka_unit_test(test_rsv1_allowed_only_when_negotiated),
        cmocka_unit_test(test_limits_are_inclusive),
        cmocka_unit_test(test_unmasked_frame),
        cmocka_unit_test(test_reserved_bits),
        cmocka_unit_test(test_unknown_opcodes),
        cmocka_unit_test(test_bad_control_frames),
        cmocka_unit_test(test_bad_message_sequences),
        cmocka_unit_test(test_length_with_top_bit),
        cmocka_unit_test(test_message_too_big),
        cmocka_unit_test(test_too_many_fragments),
        cmocka_unit_test(test_invalid_utf8_text),
        cmocka_unit_test(test_invalid_utf8_fails_fast),
        cmocka_unit_test(test_close_frames),
        cmocka_unit_test(test_close_code_validity),
        cmocka_unit_test(test_consumed_one_event_per_call),
        cmocka_unit_test(test_split_frame_is_copied_then_released),
        cmocka_unit_test(test_frame_state_only_while_incomplete),
        cmocka_unit_test(test_buffer_grows_with_received_bytes),
        cmocka_unit_test(test_split_control_frame_uses_control_buffer),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_error_releases_buffer),
        cmocka_unit_test(test_free_resets_for_reuse),
        cmocka_unit_test(test_encode_header),
        cmocka_unit_test(test_encode_close),
        cmocka_unit_test(test_encode_close_truncates_reason),
        cmocka_unit_test(test_encode_close_reads_only_the_string),
        cmocka_unit_test(test_accept_key_rfc_example),
        cmocka_unit_test(test_accept_key_rejects_bad_keys),
        cmocka_unit_test(test_parse_protocols),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
