/* Engine.IO v3 payloads (allowEIO3): the text reader ("<length>:<packet>", lengths in UTF-16
 * code units), the binary (XHR2) reader, malformed input of every kind, and the writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engineio/eio3_parser.h"

struct payload {
    uint8_t bytes[256];
    sioc__eio3_payload_reader_t reader;
};

static void payload_start(struct payload *payload, const char *text, size_t length, int binary)
{
    assert_true(length <= sizeof(payload->bytes));
    memcpy(payload->bytes, text, length);
    sioc__eio3_payload_reader_init(&payload->reader, payload->bytes, length, binary);
}

#define TEXT(payload, literal) payload_start((payload), (literal), sizeof(literal) - 1, 0)
#define BINARY(payload, literal) payload_start((payload), (literal), sizeof(literal) - 1, 1)

static void assert_next(struct payload *payload, int type, int binary, const char *data,
                        size_t length)
{
    sioc__eio_packet_t packet;
    assert_int_equal(sioc__eio3_payload_reader_next(&payload->reader, &packet), 1);
    assert_int_equal(packet.type, type);
    assert_int_equal(packet.binary, binary);
    assert_int_equal(packet.length, length);
    if (length > 0)
        assert_memory_equal(packet.data, data, length);
}

static void assert_result(struct payload *payload, int expected)
{
    sioc__eio_packet_t packet;
    assert_int_equal(sioc__eio3_payload_reader_next(&payload->reader, &packet), expected);
    /* The reader stays where it stopped. */
    assert_int_equal(sioc__eio3_payload_reader_next(&payload->reader, &packet), expected);
}

static void test_text_records(void **state)
{
    (void)state;
    struct payload payload;
    TEXT(&payload, "6:4hello1:22:4x");
    assert_next(&payload, SIOC_EIO_MESSAGE, 0, "hello", 5);
    assert_next(&payload, SIOC_EIO_PING, 0, "", 0);
    assert_next(&payload, SIOC_EIO_MESSAGE, 0, "x", 1);
    assert_result(&payload, 0);
}

/* "é" and "€" are one UTF-16 unit each (two and three UTF-8 bytes), "😀" is two (four bytes). */
static void test_text_lengths_count_utf16_units(void **state)
{
    (void)state;
    struct payload payload;
    TEXT(&payload, "3:4\xc3\xa9\xe2\x82\xac"
                   "3:4\xf0\x9f\x98\x80");
    assert_next(&payload, SIOC_EIO_MESSAGE, 0, "\xc3\xa9\xe2\x82\xac", 5);
    assert_next(&payload, SIOC_EIO_MESSAGE, 0, "\xf0\x9f\x98\x80", 4);
    assert_result(&payload, 0);
}

static void test_text_zero_length_is_skipped(void **state)
{
    (void)state;
    struct payload payload;
    TEXT(&payload, "0:0:2:4a0:");
    assert_next(&payload, SIOC_EIO_MESSAGE, 0, "a", 1);
    assert_result(&payload, 0);
}

static void test_text_base64_record(void **state)
{
    (void)state;
    struct payload payload;
    TEXT(&payload, "6:b4AQID");
    assert_next(&payload, SIOC_EIO_MESSAGE, 1, "\x01\x02\x03", 3);
    assert_result(&payload, 0);
}

static void test_text_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const char *text;
    } cases[] = {
        {"empty body", ""},
        {"no colon", "4hello"},
        {"empty length", ":4a"},
        {"non-digit", "x:4a"},
        {"sign", "+2:4a"},
        {"space", " 2:4a"},
        {"past the end", "9:4abc"},
        {"past the end by one", "3:4a"},
        {"huge", "99999999999:4a"},
        {"in a surrogate pair", "2:4\xf0\x9f\x98\x80"},
        {"lone half", "1:\xf0\x9f\x98\x80"},
        {"truncated UTF-8", "3:4\xe2\x82"},
        {"bad UTF-8", "2:4\xff"},
        {"unknown type", "2:9a"},
        {"binary marker only", "1:b"},
        {"base64 of a ping", "6:b2AQID"},
        {"bad base64", "5:b4AQ="},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct payload payload;
        print_message("case: %s\n", cases[i].what);
        payload_start(&payload, cases[i].text, strlen(cases[i].text), 0);
        assert_result(&payload, -1);
    }
}

/* Records before the bad one were handed out; the bad one ends the payload. */
static void test_text_stops_at_first_bad_record(void **state)
{
    (void)state;
    struct payload payload;
    TEXT(&payload, "2:4a2:9b2:4c");
    assert_next(&payload, SIOC_EIO_MESSAGE, 0, "a", 1);
    assert_result(&payload, -1);
    TEXT(&payload, "2:4a3"); /* digits with no record after them */
    assert_next(&payload, SIOC_EIO_MESSAGE, 0, "a", 1);
    assert_result(&payload, -1);
}

static void test_binary_records(void **state)
{
    (void)state;
    struct payload payload;
    BINARY(&payload, "\x00\x06\xff"
                     "4hello"
                     "\x01\x04\xff\x04\x01\x02\x03"
                     "\x01\x01\x02\xff\x04"
                     "0123456789a");
    assert_next(&payload, SIOC_EIO_MESSAGE, 0, "hello", 5);
    assert_next(&payload, SIOC_EIO_MESSAGE, 1, "\x01\x02\x03", 3);
    assert_next(&payload, SIOC_EIO_MESSAGE, 1, "0123456789a", 11);
    assert_result(&payload, 0);
}

static void test_binary_empty_body_holds_nothing(void **state)
{
    (void)state;
    struct payload payload;
    payload_start(&payload, "", 0, 1);
    assert_result(&payload, 0);
}

static void test_binary_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const char *bytes;
        size_t length;
    } cases[] = {
        {"flag 2",
         "\x02\x01\xff"
         "2",
         4},
        {"digit 10",
         "\x00\x0a\xff"
         "2",
         4},
        {"ASCII digit",
         "\x00"
         "1\xff"
         "2",
         4},
        {"no terminator", "\x00\x01", 2},
        {"no digits",
         "\x00\xff"
         "2",
         3},
        {"too many digits",
         "\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\xff"
         "2",
         14},
        {"past the end",
         "\x00\x05\xff"
         "4ab",
         6},
        {"zero length", "\x00\x00\xff", 3},
        {"zero length binary", "\x01\x00\xff", 3},
        {"bad UTF-8 text",
         "\x00\x02\xff"
         "4\xff",
         5},
        {"unknown text type",
         "\x00\x02\xff"
         "9a",
         5},
        {"unknown binary type", "\x01\x02\xff\x07\x01", 5},
        {"flag only", "\x01", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct payload payload;
        print_message("case: %s\n", cases[i].what);
        payload_start(&payload, cases[i].bytes, cases[i].length, 1);
        assert_result(&payload, -1);
    }
}

static void test_decode_binary_frame(void **state)
{
    (void)state;
    sioc__eio_packet_t packet;
    const uint8_t message[] = {4, 1, 2};
    assert_int_equal(sioc__eio3_packet_decode_binary(message, sizeof(message), &packet), 0);
    assert_int_equal(packet.type, SIOC_EIO_MESSAGE);
    assert_int_equal(packet.binary, 1);
    assert_ptr_equal(packet.data, message + 1);
    assert_int_equal(packet.length, 2);
    const uint8_t ping[] = {2};
    assert_int_equal(sioc__eio3_packet_decode_binary(ping, 1, &packet), 0);
    assert_int_equal(packet.type, SIOC_EIO_PING);
    assert_int_equal(packet.binary, 0);
    const uint8_t unknown[] = {7, 1};
    assert_int_equal(sioc__eio3_packet_decode_binary(unknown, 2, &packet), -1);
    assert_int_equal(sioc__eio3_packet_decode_binary(message, 0, &packet), -1);
}

static void test_utf16_length(void **state)
{
    (void)state;
    assert_int_equal(sioc__eio3_utf16_length((const uint8_t *)"", 0), 0);
    assert_int_equal(sioc__eio3_utf16_length((const uint8_t *)"4abc", 4), 4);
    assert_int_equal(sioc__eio3_utf16_length((const uint8_t *)"\xc3\xa9\xe2\x82\xac", 5), 2);
    assert_int_equal(sioc__eio3_utf16_length((const uint8_t *)"\xf0\x9f\x98\x80", 4), 2);
}

static void assert_text_record(const char *packet, int binary, const char *expected)
{
    uint8_t out[128];
    size_t length = strlen(packet);
    size_t written = sioc__eio3_write_text_record(out, (const uint8_t *)packet, length, binary);
    assert_int_equal(written,
                     sioc__eio3_text_record_length((const uint8_t *)packet, length, binary));
    assert_int_equal(written, strlen(expected));
    assert_memory_equal(out, expected, written);
}

static void test_write_text_records(void **state)
{
    (void)state;
    assert_text_record("4hello", 0, "6:4hello");
    assert_text_record("3", 0, "1:3");
    assert_text_record("4\xf0\x9f\x98\x80\xc3\xa9", 0, "4:4\xf0\x9f\x98\x80\xc3\xa9");
    assert_text_record("\x01\x02\x03", 1, "6:b4AQID");
    assert_text_record("", 1, "2:b4");
    const char long_packet[] = "4abcdefghijklmnopqrstuvwxyz";
    assert_text_record(long_packet, 0, "27:4abcdefghijklmnopqrstuvwxyz");
}

static void test_write_binary_records(void **state)
{
    (void)state;
    uint8_t out[64];
    size_t written = sioc__eio3_write_binary_record(out, (const uint8_t *)"4hello", 6, 0);
    assert_int_equal(written, sioc__eio3_binary_record_length(6, 0));
    assert_int_equal(written, 9);
    assert_memory_equal(out,
                        "\x00\x06\xff"
                        "4hello",
                        9);
    written = sioc__eio3_write_binary_record(out, (const uint8_t *)"0123456789", 10, 1);
    assert_int_equal(written, sioc__eio3_binary_record_length(10, 1));
    assert_memory_equal(out,
                        "\x01\x01\x01\xff\x04"
                        "0123456789",
                        15);
}

/* What the writers produce, the readers take back unchanged. */
static void test_write_then_read(void **state)
{
    (void)state;
    for (int binary_framing = 0; binary_framing <= 1; binary_framing++) {
        uint8_t body[256];
        size_t used = 0;
        const char *text = "4h\xc3\xa9llo \xf0\x9f\x98\x80";
        const uint8_t data[] = {0, 0xff, 0x1e, ':'};
        if (binary_framing) {
            used +=
                sioc__eio3_write_binary_record(body + used, (const uint8_t *)text, strlen(text), 0);
            used += sioc__eio3_write_binary_record(body + used, data, sizeof(data), 1);
        } else {
            used +=
                sioc__eio3_write_text_record(body + used, (const uint8_t *)text, strlen(text), 0);
            used += sioc__eio3_write_text_record(body + used, data, sizeof(data), 1);
        }
        sioc__eio3_payload_reader_t reader;
        sioc__eio3_payload_reader_init(&reader, body, used, binary_framing);
        sioc__eio_packet_t packet;
        assert_int_equal(sioc__eio3_payload_reader_next(&reader, &packet), 1);
        assert_int_equal(packet.length, strlen(text) - 1);
        assert_memory_equal(packet.data, text + 1, packet.length);
        assert_int_equal(sioc__eio3_payload_reader_next(&reader, &packet), 1);
        assert_int_equal(packet.binary, 1);
        assert_int_equal(packet.length, sizeof(data));
        assert_memory_equal(packet.data, data, sizeof(data));
        assert_int_equal(sioc__eio3_payload_reader_next(&reader, &packet), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_records),
        cmocka_unit_test(test_text_lengths_count_utf16_units),
        cmocka_unit_test(test_text_zero_length_is_skipped),
        cmocka_unit_test(test_text_base64_record),
        cmocka_unit_test(test_text_malformed),
        cmocka_unit_test(test_text_stops_at_first_bad_record),
        cmocka_unit_test(test_binary_records),
        cmocka_unit_test(test_binary_empty_body_holds_nothing),
        cmocka_unit_test(test_binary_malformed),
        cmocka_unit_test(test_decode_binary_frame),
        cmocka_unit_test(test_utf16_length),
        cmocka_unit_test(test_write_text_records),
        cmocka_unit_test(test_write_binary_records),
        cmocka_unit_test(test_write_then_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
