/* Engine.IO v4 codec: text packets, the polling payload reader and writer, the open packet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engineio/eio_parser.h"

/* A payload under test: a mutable copy of the bytes (the reader decodes binary in place). */
struct payload {
    uint8_t bytes[256];
    sioc__eio_payload_reader_t reader;
};

static void payload_start(struct payload *payload, const char *text, size_t length)
{
    assert_true(length <= sizeof(payload->bytes));
    memcpy(payload->bytes, text, length);
    sioc__eio_payload_reader_init(&payload->reader, payload->bytes, length);
}

/* String literals with an explicit length, as payloads may hold NUL and 0x1e. */
#define START(payload, literal) payload_start((payload), (literal), sizeof(literal) - 1)

static void assert_next_text(struct payload *payload, int type, const char *data, size_t length)
{
    sioc__eio_packet_t packet;
    assert_int_equal(sioc__eio_payload_reader_next(&payload->reader, &packet), 1);
    assert_int_equal(packet.type, type);
    assert_int_equal(packet.binary, 0);
    assert_int_equal(packet.length, length);
    assert_memory_equal(packet.data, data, length);
    /* A view into the body, not a copy. */
    assert_true(packet.data > payload->bytes && packet.data <= payload->bytes + 256);
}

static void assert_next_binary(struct payload *payload, const uint8_t *data, size_t length)
{
    sioc__eio_packet_t packet;
    assert_int_equal(sioc__eio_payload_reader_next(&payload->reader, &packet), 1);
    assert_int_equal(packet.type, SIOC_EIO_MESSAGE);
    assert_int_equal(packet.binary, 1);
    assert_int_equal(packet.length, length);
    if (length > 0)
        assert_memory_equal(packet.data, data, length);
    assert_true(packet.data > payload->bytes && packet.data <= payload->bytes + 256);
}

static void assert_next_result(struct payload *payload, int expected)
{
    sioc__eio_packet_t packet;
    assert_int_equal(sioc__eio_payload_reader_next(&payload->reader, &packet), expected);
}

static void test_decode_text_every_type(void **state)
{
    (void)state;
    for (int type = SIOC_EIO_OPEN; type <= SIOC_EIO_NOOP; type++) {
        uint8_t text[6] = {(uint8_t)('0' + type), 'p', 'r', 'o', 'b', 'e'};
        sioc__eio_packet_t packet;
        memset(&packet, 0xa5, sizeof(packet));
        assert_int_equal(sioc__eio_packet_decode_text(text, sizeof(text), &packet), 0);
        assert_int_equal(packet.type, type);
        assert_int_equal(packet.binary, 0);
        assert_ptr_equal(packet.data, text + 1);
        assert_int_equal(packet.length, 5);

        memset(&packet, 0xa5, sizeof(packet));
        assert_int_equal(sioc__eio_packet_decode_text(text, 1, &packet), 0);
        assert_int_equal(packet.type, type);
        assert_int_equal(packet.binary, 0);
        assert_ptr_equal(packet.data, text + 1);
        assert_int_equal(packet.length, 0);
    }
}

static void test_decode_text_refuses_empty_and_unknown(void **state)
{
    (void)state;
    sioc__eio_packet_t packet;
    assert_int_equal(sioc__eio_packet_decode_text(NULL, 0, &packet), -1);
    const uint8_t hello[] = "4hello";
    assert_int_equal(sioc__eio_packet_decode_text(hello, 0, &packet), -1);
    /* '7', the neighbours of the digit range, the binary marker (only meaningful in a polling
     * payload), NUL, the separator and a non-ASCII byte. */
    const uint8_t unknown[] = {'7', '9', '/', ':', 'b', 'a', ' ', 0x00, 0x1e, 0xff};
    for (size_t i = 0; i < sizeof(unknown); i++) {
        uint8_t text[2] = {unknown[i], 'x'};
        assert_int_equal(sioc__eio_packet_decode_text(text, sizeof(text), &packet), -1);
        assert_int_equal(sioc__eio_packet_decode_text(text, 1, &packet), -1);
    }
}

/* Text data is passed through untouched: neither UTF-8 nor anything else is checked here. */
static void test_decode_text_keeps_data_bytes(void **state)
{
    (void)state;
    const uint8_t text[] = {'4', 0x00, 0xff, 0xc0, 0x1e, '"'};
    sioc__eio_packet_t packet;
    assert_int_equal(sioc__eio_packet_decode_text(text, sizeof(text), &packet), 0);
    assert_int_equal(packet.type, SIOC_EIO_MESSAGE);
    assert_int_equal(packet.length, 5);
    assert_ptr_equal(packet.data, text + 1);
}

static void test_reader_single_packet(void **state)
{
    (void)state;
    struct payload payload;
    START(&payload, "4hello");
    assert_next_text(&payload, SIOC_EIO_MESSAGE, "hello", 5);
    assert_next_result(&payload, 0);
    assert_next_result(&payload, 0); /* stays at end */
}

static void test_reader_several_packets(void **state)
{
    (void)state;
    struct payload payload;
    START(&payload, "4hello\x1e"
                    "2\x1e"
                    "3probe\x1e"
                    "6\x1e"
                    "1");
    assert_next_text(&payload, SIOC_EIO_MESSAGE, "hello", 5);
    assert_next_text(&payload, SIOC_EIO_PING, "", 0);
    assert_next_text(&payload, SIOC_EIO_PONG, "probe", 5);
    assert_next_text(&payload, SIOC_EIO_NOOP, "", 0);
    assert_next_text(&payload, SIOC_EIO_CLOSE, "", 0);
    assert_next_result(&payload, 0);
}

/* The example of the protocol description. */
static void test_reader_text_and_binary(void **state)
{
    (void)state;
    struct payload payload;
    START(&payload, "4hello\x1e"
                    "bAQIDBA==");
    assert_next_text(&payload, SIOC_EIO_MESSAGE, "hello", 5);
    const uint8_t expected[] = {1, 2, 3, 4};
    assert_next_binary(&payload, expected, sizeof(expected));
    assert_next_result(&payload, 0);
}

static void test_reader_binary_is_decoded_in_place(void **state)
{
    (void)state;
    struct payload payload;
    START(&payload, "bAQID\x1e"
                    "4€");
    sioc__eio_packet_t packet;
    assert_int_equal(sioc__eio_payload_reader_next(&payload.reader, &packet), 1);
    assert_ptr_equal(packet.data, payload.bytes + 1);
    assert_int_equal(packet.length, 3);
    const uint8_t expected[] = {1, 2, 3};
    assert_memory_equal(packet.data, expected, 3);
    /* Decoding did not reach the next record. */
    assert_next_text(&payload, SIOC_EIO_MESSAGE, "€", strlen("€"));
    assert_next_result(&payload, 0);
}

static void test_reader_empty_binary_message(void **state)
{
    (void)state;
    struct payload payload;
    START(&payload, "b\x1e"
                    "b");
    assert_next_binary(&payload, NULL, 0);
    assert_next_binary(&payload, NULL, 0);
    assert_next_result(&payload, 0);
}

/* Binary records carry no type: "b4AQID" is base64 "4AQID", which has a bad length. */
static void test_reader_binary_bad_base64(void **state)
{
    (void)state;
    const char *records[] = {"b4AQID",   "bAQI",  "bAQIDBA=", "bAQIDBA===", "bAQ=DBA=",
                             "bAQIDBB=", "b-_-_", "bAQ ID",   "b===="};
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
        struct payload payload;
        payload_start(&payload, records[i], strlen(records[i]));
        assert_next_result(&payload, -1);
        assert_next_result(&payload, -1);
    }
}

static void test_reader_refuses_empty_body(void **state)
{
    (void)state;
    sioc__eio_payload_reader_t reader;
    sioc__eio_packet_t packet;
    sioc__eio_payload_reader_init(&reader, NULL, 0);
    assert_int_equal(sioc__eio_payload_reader_next(&reader, &packet), -1);
    assert_int_equal(sioc__eio_payload_reader_next(&reader, &packet), -1);
}

static void test_reader_refuses_empty_records(void **state)
{
    (void)state;
    struct payload payload;

    START(&payload, "\x1e");
    assert_next_result(&payload, -1);

    START(&payload, "\x1e"
                    "4a");
    assert_next_result(&payload, -1);
    assert_next_result(&payload, -1);

    START(&payload, "4a\x1e");
    assert_next_text(&payload, SIOC_EIO_MESSAGE, "a", 1);
    assert_next_result(&payload, -1);
    assert_next_result(&payload, -1);

    START(&payload, "4a\x1e\x1e"
                    "4b");
    assert_next_text(&payload, SIOC_EIO_MESSAGE, "a", 1);
    assert_next_result(&payload, -1);
    assert_next_result(&payload, -1); /* "4b" is never read */
}

/* Like Node's decodePayload, reading stops at the first bad record. */
static void test_reader_stops_at_first_bad_record(void **state)
{
    (void)state;
    struct payload payload;
    START(&payload, "4a\x1e"
                    "7x\x1e"
                    "4b");
    assert_next_text(&payload, SIOC_EIO_MESSAGE, "a", 1);
    assert_next_result(&payload, -1);
    assert_int_equal(payload.reader.offset, payload.reader.length);
    assert_next_result(&payload, -1);

    START(&payload, "4a\x1e"
                    "b!!!!\x1e"
                    "4b");
    assert_next_text(&payload, SIOC_EIO_MESSAGE, "a", 1);
    assert_next_result(&payload, -1);
    assert_next_result(&payload, -1);
}

static void test_reader_keeps_data_bytes(void **state)
{
    (void)state;
    struct payload payload;
    START(&payload, "4\x00\xff\xc0\x1e"
                    "4\x00");
    assert_next_text(&payload, SIOC_EIO_MESSAGE, "\x00\xff\xc0", 3);
    assert_next_text(&payload, SIOC_EIO_MESSAGE, "\x00", 1);
    assert_next_result(&payload, 0);
}

static void test_packet_length(void **state)
{
    (void)state;
    assert_int_equal(sioc__eio_payload_packet_length(SIOC_EIO_PING, 0, 0), 1);
    assert_int_equal(sioc__eio_payload_packet_length(SIOC_EIO_MESSAGE, 0, 5), 6);
    assert_int_equal(sioc__eio_payload_packet_length(SIOC_EIO_MESSAGE, 1, 0), 1);
    assert_int_equal(sioc__eio_payload_packet_length(SIOC_EIO_MESSAGE, 1, 1), 5);
    assert_int_equal(sioc__eio_payload_packet_length(SIOC_EIO_MESSAGE, 1, 4), 9);
    assert_int_equal(sioc__eio_payload_packet_length(SIOC_EIO_MESSAGE, 1, 6), 9);
}

/* Writes one record into out at *offset, checking the announced length and that nothing is
 * written beyond it. */
static void write_record(uint8_t *out, size_t *offset, int type, int binary, const void *data,
                         size_t length)
{
    size_t expected = sioc__eio_payload_packet_length(type, binary, length);
    out[*offset + expected] = '#';
    size_t written = sioc__eio_payload_write_packet(out + *offset, type, binary, data, length);
    assert_int_equal(written, expected);
    assert_int_equal(out[*offset + expected], '#');
    *offset += written;
}

static void test_write_protocol_example(void **state)
{
    (void)state;
    uint8_t out[64];
    size_t offset = 0;
    write_record(out, &offset, SIOC_EIO_MESSAGE, 0, "hello", 5);
    out[offset++] = SIOC_EIO_RECORD_SEPARATOR;
    const uint8_t binary[] = {1, 2, 3, 4};
    write_record(out, &offset, SIOC_EIO_MESSAGE, 1, binary, sizeof(binary));
    const char expected[] = "4hello\x1e"
                            "bAQIDBA==";
    assert_int_equal(offset, sizeof(expected) - 1);
    assert_memory_equal(out, expected, offset);
}

static void test_write_every_type(void **state)
{
    (void)state;
    for (int type = SIOC_EIO_OPEN; type <= SIOC_EIO_NOOP; type++) {
        uint8_t out[16];
        size_t offset = 0;
        write_record(out, &offset, type, 0, NULL, 0);
        assert_int_equal(offset, 1);
        assert_int_equal(out[0], '0' + type);
        offset = 0;
        write_record(out, &offset, type, 0, "x", 1);
        assert_int_equal(offset, 2);
        assert_int_equal(out[0], '0' + type);
        assert_int_equal(out[1], 'x');
        offset = 0;
        write_record(out, &offset, type, 0, "probe", 5);
        assert_int_equal(offset, 6);
        assert_int_equal(out[0], '0' + type);
        assert_memory_equal(out + 1, "probe", 5);
    }
}

static void test_write_empty_binary(void **state)
{
    (void)state;
    uint8_t out[4];
    size_t offset = 0;
    write_record(out, &offset, SIOC_EIO_MESSAGE, 1, NULL, 0);
    assert_int_equal(offset, 1);
    assert_int_equal(out[0], 'b');
}

/* Whatever the writer produces, the reader gives back. */
static void test_write_then_read(void **state)
{
    (void)state;
    uint8_t binary[200];
    for (size_t i = 0; i < sizeof(binary); i++)
        binary[i] = (uint8_t)(i * 7 + 3);
    struct payload payload;
    size_t offset = 0;
    write_record(payload.bytes, &offset, SIOC_EIO_MESSAGE, 1, binary, 10);
    payload.bytes[offset++] = SIOC_EIO_RECORD_SEPARATOR;
    write_record(payload.bytes, &offset, SIOC_EIO_MESSAGE, 0, "2[\"x\"]", 6);
    payload.bytes[offset++] = SIOC_EIO_RECORD_SEPARATOR;
    write_record(payload.bytes, &offset, SIOC_EIO_MESSAGE, 1, binary, 101);
    payload.bytes[offset++] = SIOC_EIO_RECORD_SEPARATOR;
    write_record(payload.bytes, &offset, SIOC_EIO_NOOP, 0, NULL, 0);
    sioc__eio_payload_reader_init(&payload.reader, payload.bytes, offset);
    assert_next_binary(&payload, binary, 10);
    assert_next_text(&payload, SIOC_EIO_MESSAGE, "2[\"x\"]", 6);
    assert_next_binary(&payload, binary, 101);
    assert_next_text(&payload, SIOC_EIO_NOOP, "", 0);
    assert_next_result(&payload, 0);
}

static void test_open_with_upgrade(void **state)
{
    (void)state;
    size_t length = 0;
    char *open = sioc__eio_encode_open("lv_VI97HAXpY6yYWAAAC", 1, 25000, 20000, 1000000, &length);
    assert_non_null(open);
    const char *expected = "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],"
                           "\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}";
    assert_string_equal(open, expected);
    assert_int_equal(length, strlen(expected));
    free(open);
}

static void test_open_without_upgrade(void **state)
{
    (void)state;
    size_t length = 0;
    char *open = sioc__eio_encode_open("a-b_C9", 0, 300, 200, 10000000000ULL, &length);
    assert_non_null(open);
    const char *expected = "0{\"sid\":\"a-b_C9\",\"upgrades\":[],\"pingInterval\":300,"
                           "\"pingTimeout\":200,\"maxPayload\":10000000000}";
    assert_string_equal(open, expected);
    assert_int_equal(length, strlen(expected));
    free(open);
}

static void test_open_length_is_optional(void **state)
{
    (void)state;
    char *open = sioc__eio_encode_open("abc", 1, 1, 2, 3, NULL);
    assert_non_null(open);
    assert_string_equal(open, "0{\"sid\":\"abc\",\"upgrades\":[\"websocket\"],\"pingInterval\":1,"
                              "\"pingTimeout\":2,\"maxPayload\":3}");
    free(open);
}

/* Into the caller's buffer: the same text, the length needed when it does not fit (as
 * snprintf), 0 for a sid that would need escaping. */
static void test_open_into_buffer(void **state)
{
    (void)state;
    char out[256];
    size_t length = 0;
    char *open = sioc__eio_encode_open("lv_VI97HAXpY6yYWAAAC", 0, 25000, 20000, 1000000, &length);
    assert_non_null(open);
    assert_int_equal(sioc__eio_encode_open_into(out, sizeof(out), "lv_VI97HAXpY6yYWAAAC", 0, 25000,
                                                20000, 1000000),
                     length);
    assert_string_equal(out, open);
    char small[8];
    assert_int_equal(sioc__eio_encode_open_into(small, sizeof(small), "lv_VI97HAXpY6yYWAAAC", 0,
                                                25000, 20000, 1000000),
                     length);
    assert_string_equal(small, "0{\"sid\"");
    assert_int_equal(sioc__eio_encode_open_into(out, sizeof(out), "a b", 0, 1, 2, 3), 0);
    free(open);
}

/* The sid goes into the JSON unescaped, so anything that would need escaping is refused. */
static void test_open_refuses_unsafe_sid(void **state)
{
    (void)state;
    const char *sids[] = {"", "a\"b", "a\\b", "a b", "a/b", "a+b", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof(sids) / sizeof(sids[0]); i++) {
        size_t length = 12345;
        assert_null(sioc__eio_encode_open(sids[i], 1, 25000, 20000, 1000000, &length));
        assert_int_equal(length, 12345);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_text_every_type),
        cmocka_unit_test(test_decode_text_refuses_empty_and_unknown),
        cmocka_unit_test(test_decode_text_keeps_data_bytes),
        cmocka_unit_test(test_reader_single_packet),
        cmocka_unit_test(test_reader_several_packets),
        cmocka_unit_test(test_reader_text_and_binary),
        cmocka_unit_test(test_reader_binary_is_decoded_in_place),
        cmocka_unit_test(test_reader_empty_binary_message),
        cmocka_unit_test(test_reader_binary_bad_base64),
        cmocka_unit_test(test_reader_refuses_empty_body),
        cmocka_unit_test(test_reader_refuses_empty_records),
        cmocka_unit_test(test_reader_stops_at_first_bad_record),
        cmocka_unit_test(test_reader_keeps_data_bytes),
        cmocka_unit_test(test_packet_length),
        cmocka_unit_test(test_write_protocol_example),
        cmocka_unit_test(test_write_every_type),
        cmocka_unit_test(test_write_empty_binary),
        cmocka_unit_test(test_write_then_read),
        cmocka_unit_test(test_open_with_upgrade),
        cmocka_unit_test(test_open_without_upgrade),
        cmocka_unit_test(test_open_length_is_optional),
        cmocka_unit_test(test_open_into_buffer),
        cmocka_unit_test(test_open_refuses_unsafe_sid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
