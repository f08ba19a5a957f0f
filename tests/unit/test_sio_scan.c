/* The pass-through JSON scanner (sio_scan.c): each verdict is also asked of jansson the way the
 * decoder asks it, so a case cannot pass while the two disagree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "socketio/sio_parser.h"
#include "socketio/sio_scan.h"

/* The decoder's verdict (sio_parser.c read_payload). */
static int jansson_accepts(const char *text, size_t length)
{
    json_t *value = sioc__sio_json_load(text, length, 0, NULL);
    json_decref(value);
    return value != NULL;
}

static void assert_verdict(const char *text, size_t length, int accepted)
{
    assert_int_equal(jansson_accepts(text, length), accepted);
    assert_int_equal(sioc__sio_scan_json(text, length, NULL) == 0, accepted);
}

static void assert_accepted(const char *text)
{
    assert_verdict(text, strlen(text), 1);
}

static void assert_refused(const char *text)
{
    assert_verdict(text, strlen(text), 0);
}

static int canonical(const char *text)
{
    int result = -1;
    assert_int_equal(sioc__sio_scan_json(text, strlen(text), &result), 0);
    return result;
}

static void test_malformed_is_refused(void **state)
{
    static const char *const cases[] = {
        "",
        " ",
        "[",
        "]",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{1:2}",
        "{'a':1}",
        "'a'",
        "\"a",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "tru",
        "truex",
        "nul",
        "True",
        "NaN",
        "Infinity",
        "-",
        "+1",
        "01",
        "-01",
        "1.",
        ".5",
        "1.e5",
        "1e",
        "1e+",
        "0x10",
        "1 2",
        "[1]]",
        "[1] x",
        "\"\t\"",
        "\"\n\"",
        "\"\x1f\"",
        /* invalid UTF-8: continuation first, overlong, surrogate, past U+10FFFF, truncated */
        "\"\x80\"",
        "\"\xc0\xaf\"",
        "\"\xc1\xbf\"",
        "\"\xe0\x80\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xf5\x80\x80\x80\"",
        "\"\xc3\"",
        "\"\xe2\x82\"",
        "\xef\xbb\xbf[]",
        /* a NUL in a key, numbers beyond a double */
        "{\"a\\u0000\":1}",
        "1e309",
        "-1e309",
        "1.8e308",
        "[1e400]",
        "0.1e310",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_refused(cases[i]);
    /* a raw NUL byte, inside and after a value */
    assert_verdict("[1\0]", 4, 0);
    assert_verdict("\"a\0\"", 4, 0);
    assert_verdict("1\0", 2, 0);
}

static void test_valid_is_accepted(void **state)
{
    static const char *const cases[] = {
        "0",
        "-0",
        "1",
        "-12",
        "1.5",
        "1e5",
        "1E+5",
        "1e-5",
        "0.0",
        "1e-400",
        "0e99999",
        "1.7976931348623157e308",
        "17976931348623157e292",
        "9223372036854775808",
        "-9223372036854775809",
        "true",
        "false",
        "null",
        "\"\"",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u0000\"",
        "\"\\ud83d\\ude00\"",
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\"",
        "[]",
        "{}",
        " [ 1 , { \"a\" : [ ] } ] \r\n\t",
        "{\"a\":1,\"a\":2}",
        "[\"\\u0041\"]",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_accepted(cases[i]);
}

/* 1 and 308 zeros is 1e308 (finite), one more is past DBL_MAX. */
/* A lone surrogate escape is read as U+FFFD (sioc__sio_json_load), so its bytes are not what
 * the encoder writes for the value: never canonical. */
static void test_lone_surrogates_are_accepted_not_canonical(void **state)
{
    static const char *const cases[] = {
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\ud800x\"",
        "\"\\udc00\\ud800\"",
        "[\"a\\uDBFF\",\"\\ud83d\"]",
        "{\"\\ud800\":\"\\ud800\\ud800\\udc00\"}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_accepted(cases[i]);
        assert_int_equal(canonical(cases[i]), 0);
    }
    /* still refused: a bad escape after a high surrogate, a lone surrogate beside an error */
    assert_refused("\"\\ud800\\uZZZZ\"");
    assert_refused("[\"\\ud800\",]");
    assert_refused("\"\\ud800");
}

static void test_long_integers(void **state)
{
    char text[400];
    memset(text, '0', sizeof(text));
    text[0] = '1';
    assert_verdict(text, 308, 1);
    assert_verdict(text, 309, 1);
    assert_verdict(text, 310, 0);
    memset(text, '9', 309);
    assert_verdict(text, 309, 0); /* 9.99e308 > DBL_MAX */
}

/* jansson counts every value, the innermost scalar too, and refuses past 2048. */
static void test_depth_limit(void **state)
{
    enum { LIMIT = 2048 };
    char *text = malloc(2 * LIMIT + 4);
    assert_non_null(text);
    memset(text, '[', LIMIT);
    memset(text + LIMIT, ']', LIMIT);
    assert_verdict(text, 2 * LIMIT, 1);
    memset(text, '[', LIMIT + 1);
    memset(text + LIMIT + 1, ']', LIMIT + 1);
    assert_verdict(text, 2 * LIMIT + 2, 0);
    /* 2047 arrays around a scalar: 2048 values deep */
    memset(text, '[', LIMIT - 1);
    text[LIMIT - 1] = '1';
    memset(text + LIMIT, ']', LIMIT - 1);
    assert_verdict(text, 2 * LIMIT - 1, 1);
    memset(text, '[', LIMIT);
    text[LIMIT] = '1';
    memset(text + LIMIT + 1, ']', LIMIT);
    assert_verdict(text, 2 * LIMIT + 1, 0);
    free(text);
}

static void test_canonical(void **state)
{
    static const char *const yes[] = {
        "[\"echo\",\"hello\",1,-2,0.5,-0.25,123456789012345,1.5,0.000001,{\"a\":[true,null]}]",
        "\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\xc3\xa9\"",
        "{\"a\":{\"a\":1},\"b\":2}",
        "[]",
        "{}",
    };
    static const char *const no[] = {
        "[1, 2]",
        "1.0",
        "1e5",
        "-0",
        "0.0000001",
        "1234567890123456",
        "\"\\/\"",
        "\"\\u0041\"",
        "\"\\u001F\"",
        "\"\\u0008\"",
        "\"\\ud83d\\ude00\"",
        "{\"a\":1,\"a\":2}",
        "{\"1\":1}",
        "1.50",
        "0.1234567890123456",
    };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_int_equal(canonical(yes[i]), 1);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_int_equal(canonical(no[i]), 0);
}

/* A canonical text is what the encoder writes for it. */
static void test_canonical_is_the_encoders_form(void **state)
{
    const char *text = "[\"echo\",\"h\\u0001\\n\",1,-2,0.5,123456789012345,{\"k\":[false]}]";
    json_t *value = json_loads(text, 0, NULL);
    assert_non_null(value);
    sioc__sio_packet_t packet = {.type = SIOC_SIO_EVENT, .id = SIOC_SIO_NO_ACK_ID, .data = value};
    char *encoded = sioc__sio_encode(&packet, NULL);
    assert_string_equal(encoded + 1, text);
    assert_int_equal(canonical(text), 1);
    free(encoded);
    json_decref(value);
}

static void test_event_ranges(void **state)
{
    sioc__sio_scan_t scan;
    const char *text = "[\"echo\",\"a\",[1,2]]";
    assert_int_equal(sioc__sio_scan_event(text, strlen(text), &scan), 0);
    assert_true(scan.name_is_string);
    assert_false(scan.name_escaped);
    assert_int_equal(scan.name_length, 4);
    assert_memory_equal(text + scan.name_start, "echo", 4);
    assert_int_equal(scan.args_length, strlen("\"a\",[1,2]"));
    assert_memory_equal(text + scan.args_start, "\"a\",[1,2]", scan.args_length);
    assert_true(scan.canonical);

    text = "[\"echo\"]";
    assert_int_equal(sioc__sio_scan_event(text, strlen(text), &scan), 0);
    assert_int_equal(scan.args_length, 0);

    text = " [ \"e\\u0063ho\" , 1 ] ";
    assert_int_equal(sioc__sio_scan_event(text, strlen(text), &scan), 0);
    assert_true(scan.name_escaped);
    assert_false(scan.canonical);
    assert_memory_equal(text + scan.args_start, " 1 ", scan.args_length);

    text = "[42,true]";
    assert_int_equal(sioc__sio_scan_event(text, strlen(text), &scan), 0);
    assert_false(scan.name_is_string);
    assert_memory_equal(text + scan.name_start, "42", scan.name_length);
}

static void test_event_shape_is_refused(void **state)
{
    static const char *const cases[] = {
        "[]",   "{}",       "\"echo\"",  "[true]", "[null,1]", "[[1]]",
        "[{}]", "[\"a\",]", "[\"a\" 1]", "[\"a\"", "[\"a\"]x", "[\"a\",1e999]",
    };
    sioc__sio_scan_t scan;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(sioc__sio_scan_event(cases[i], strlen(cases[i]), &scan), -1);
}

/* The decoder keeps a plain event as bytes, refuses what it refused, and parses the same. */
/* The scanner takes plain bytes eight at a time: each byte that ends such a run (a quote, a
 * backslash, a control character, UTF-8 valid or not) at every offset of two words, and where
 * the name ends, so that the event's ranges are checked too. */
static void test_special_byte_at_every_offset(void **state)
{
    static const char *const specials[] = {
        "\"",           "\\n",  "\\\"", "\\u00e9",      "\x1f", "\x7f", "\xc3\xa9",
        "\xe2\x82\xac", "\x80", "\xc3", "\xed\xa0\x80", " ",    "~",
    };
    for (size_t s = 0; s < sizeof(specials) / sizeof(specials[0]); s++) {
        for (size_t offset = 0; offset <= 17; offset++) {
            char text[64];
            int length =
                snprintf(text, sizeof(text), "[\"%.*s%s%.*s\",1]", (int)offset, "abcdefghijklmnopq",
                         specials[s], (int)(17 - offset), "rstuvwxyzABCDEFGH");
            assert_true(length > 0 && (size_t)length < sizeof(text));
            assert_verdict(text, (size_t)length, jansson_accepts(text, (size_t)length));
            sioc__sio_scan_t scan;
            if (sioc__sio_scan_event(text, (size_t)length, &scan) != 0)
                continue;
            assert_int_equal(scan.name_start, 2);
            assert_int_equal(scan.name_length, (size_t)length - 6); /* [" and ",1] */
            assert_int_equal(scan.name_escaped, specials[s][0] == '\\');
        }
    }
    /* Every prefix of a long plain string: unterminated, hence refused. */
    const char *text = "[\"0123456789abcdefghijklmnopqrstuvwxyz\"]";
    for (size_t length = 0; length < strlen(text) - 1; length++)
        assert_verdict(text, length, 0);
    assert_accepted(text);
}

static void test_decoder_keeps_bytes(void **state)
{
    sioc__sio_decoder_t decoder;
    sioc__sio_decoder_init(&decoder, SIOC_SIO_DEFAULT_MAX_ATTACHMENTS);
    decoder.keep_event_bytes = 1;
    sioc__sio_packet_t packet;
    const char *error = NULL;
    const char *text = "2/chat,7[\"echo\",{\"a\":1}]";
    assert_int_equal(sioc__sio_decoder_add_text(&decoder, text, strlen(text), &packet, &error),
                     SIOC_SIO_DECODE_COMPLETE);
    assert_non_null(packet.raw);
    assert_null(packet.data);
    assert_string_equal(packet.nsp, "/chat");
    assert_int_equal(packet.id, 7);
    assert_int_equal(sioc__sio_packet_parse(&packet), 0);
    json_t *expected = json_loads("[\"echo\",{\"a\":1}]", 0, NULL);
    assert_true(json_equal(packet.data, expected));
    json_decref(expected);
    sioc__sio_packet_clear(&packet);

    static const char *const refused[] = {
        "2[\"connect\"]", "2[\"disconnect\",1]", "2[]", "2[\"a\",]",
        "2[\"a\"",        "2{\"a\":1}",          "2",   "2[\"a\",1e400]",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(
            sioc__sio_decoder_add_text(&decoder, refused[i], strlen(refused[i]), &packet, &error),
            SIOC_SIO_DECODE_ERROR);
        assert_string_equal(error, "invalid payload");
    }
    /* an escaped reserved name and a numeric name take jansson's path */
    text = "2[\"conn\\u0065ct\"]";
    assert_int_equal(sioc__sio_decoder_add_text(&decoder, text, strlen(text), &packet, &error),
                     SIOC_SIO_DECODE_ERROR);
    text = "2[1,2]";
    assert_int_equal(sioc__sio_decoder_add_text(&decoder, text, strlen(text), &packet, &error),
                     SIOC_SIO_DECODE_COMPLETE);
    assert_null(packet.raw);
    assert_non_null(packet.data);
    sioc__sio_packet_clear(&packet);
    sioc__sio_decoder_free(&decoder);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_is_refused),
        cmocka_unit_test(test_valid_is_accepted),
        cmocka_unit_test(test_lone_surrogates_are_accepted_not_canonical),
        cmocka_unit_test(test_long_integers),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_canonical_is_the_encoders_form),
        cmocka_unit_test(test_event_ranges),
        cmocka_unit_test(test_event_shape_is_refused),
        cmocka_unit_test(test_special_byte_at_every_offset),
        cmocka_unit_test(test_decoder_keeps_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
