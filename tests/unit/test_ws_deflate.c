#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "transport/ws_codec.h"
#include "transport/ws_deflate.h"

#define BOTH "server_no_context_takeover; client_no_context_takeover"

static int negotiate(const char *value, sioc__ws_deflate_agreement_t *agreement)
{
    memset(agreement, 0x55, sizeof(*agreement));
    return sioc__ws_deflate_negotiate(value, strlen(value), agreement);
}

static void test_accepted_offers(void **state)
{
    (void)state;
    /* The answers of ws 8 with serverNoContextTakeover and clientNoContextTakeover (checked
     * against the Node reference by eio/permessage-deflate.test.js). */
    static const char *const cases[][2] = {
        {"permessage-deflate", "permessage-deflate; " BOTH},
        {"permessage-deflate; client_max_window_bits", "permessage-deflate; " BOTH},
        {"permessage-deflate; client_max_window_bits=10",
         "permessage-deflate; client_max_window_bits=10; " BOTH},
        {"permessage-deflate; client_no_context_takeover; server_max_window_bits=12",
         "permessage-deflate; client_no_context_takeover; server_max_window_bits=12; "
         "server_no_context_takeover"},
        {"permessage-deflate; server_max_window_bits=\"0x0c\"",
         "permessage-deflate; server_max_window_bits=12; " BOTH},
        {"permessage-deflate; server_max_window_bits=\"1\\1\"",
         "permessage-deflate; server_max_window_bits=11; " BOTH},
        {"permessage-deflate; server_max_window_bits=+9.0", "permessage-deflate; "
                                                            "server_max_window_bits=9; " BOTH},
        {"permessage-deflate; server_max_window_bits=0b1111",
         "permessage-deflate; server_max_window_bits=15; " BOTH},
        {"a, permessage-deflate\t;\tclient_max_window_bits=8 , permessage-deflate",
         "permessage-deflate; client_max_window_bits=8; " BOTH},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sioc__ws_deflate_agreement_t agreement;
        assert_int_equal(negotiate(cases[i][0], &agreement), 1);
        assert_string_equal(agreement.answer, cases[i][1]);
    }
}

static void test_window_bits_agreed(void **state)
{
    (void)state;
    sioc__ws_deflate_agreement_t agreement;
    assert_int_equal(negotiate("permessage-deflate", &agreement), 1);
    assert_int_equal(agreement.server_window_bits, 15);
    assert_int_equal(negotiate("permessage-deflate; server_max_window_bits=10", &agreement), 1);
    assert_int_equal(agreement.server_window_bits, 10);
    assert_int_equal(negotiate("permessage-deflate; client_max_window_bits=9", &agreement), 1);
    assert_int_equal(agreement.server_window_bits, 15);
}

static void test_no_offer(void **state)
{
    (void)state;
    sioc__ws_deflate_agreement_t agreement;
    assert_int_equal(negotiate("x-webkit-deflate-frame", &agreement), 0);
    assert_int_equal(negotiate("Permessage-Deflate", &agreement), 0); /* names are exact */
    assert_int_equal(negotiate("foo; bar=\"baz\", qux; a; b=1", &agreement), 0);
}

static void test_refused_offers(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",
        " permessage-deflate",
        "permessage-deflate;",
        "permessage-deflate,",
        ",permessage-deflate",
        "permessage-deflate ",
        "permessage-deflate; foo",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=0x",
        "permessage-deflate; server_max_window_bits=1e",
        "permessage-deflate; server_max_window_bits=Infinity",
        "permessage-deflate; client_max_window_bits=10.5",
        "permessage-deflate; client_max_window_bits=1_0",
        "permessage-deflate; client_no_context_takeover=true",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; a=\"",
        "permessage-deflate; a=\"b c\"",
        "permessage-deflate; a=\"\"",
        "permessage-deflate; a=b\"c\"",
        "permessage-deflate; =1",
        "permessage-deflate, permessage-deflate; x",
        "x; a=1 2",
        "x y",
        "x\x80",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sioc__ws_deflate_agreement_t agreement;
        if (negotiate(cases[i], &agreement) != -1)
            fail_msg("accepted: \"%s\"", cases[i]);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    sioc__ws_zlib_t zlib;
    sioc__ws_zlib_init(&zlib);
    char text[5000];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = "abcdefgh"[i % 8];
    for (int round = 0; round < 3; round++) { /* the shared streams are reset each time */
        sioc__buffer_t *deflated =
            sioc__ws_zlib_deflate(&zlib, 15, (const uint8_t *)text, sizeof(text), 0);
        assert_non_null(deflated);
        assert_true(deflated->length < 100);
        assert_int_equal(deflated->binary, 0);
        uint8_t *inflated;
        size_t length;
        assert_int_equal(sioc__ws_zlib_inflate(&zlib, deflated->data, deflated->length,
                                               sizeof(text), &inflated, &length),
                         0);
        assert_int_equal(length, sizeof(text));
        assert_memory_equal(inflated, text, sizeof(text));
        free(inflated);
        sioc__buffer_unref(deflated);
    }
    /* Smaller windows, and the 256-byte window zlib cannot make raw. */
    sioc__buffer_t *small = sioc__ws_zlib_deflate(&zlib, 9, (const uint8_t *)text, 100, 1);
    assert_non_null(small);
    assert_int_equal(small->binary, 1);
    sioc__buffer_unref(small);
    assert_null(sioc__ws_zlib_deflate(&zlib, 8, (const uint8_t *)text, 100, 0));
    sioc__ws_zlib_free(&zlib);
}

static void test_empty_message(void **state)
{
    (void)state;
    sioc__ws_zlib_t zlib;
    sioc__ws_zlib_init(&zlib);
    sioc__buffer_t *deflated = sioc__ws_zlib_deflate(&zlib, 15, (const uint8_t *)"", 0, 0);
    assert_non_null(deflated);
    uint8_t *inflated;
    size_t length;
    assert_int_equal(
        sioc__ws_zlib_inflate(&zlib, deflated->data, deflated->length, 10, &inflated, &length), 0);
    assert_int_equal(length, 0);
    free(inflated);
    /* An empty compressed payload (0 bytes + the tail) is an empty message too. */
    assert_int_equal(sioc__ws_zlib_inflate(&zlib, (const uint8_t *)"", 0, 10, &inflated, &length),
                     0);
    assert_int_equal(length, 0);
    free(inflated);
    sioc__buffer_unref(deflated);
    sioc__ws_zlib_free(&zlib);
}

static void test_inflate_is_bounded(void **state)
{
    (void)state;
    sioc__ws_zlib_t zlib;
    sioc__ws_zlib_init(&zlib);
    size_t size = 10 * 1000 * 1000;
    uint8_t *zeros = calloc(1, size);
    assert_non_null(zeros);
    sioc__buffer_t *bomb = sioc__ws_zlib_deflate(&zlib, 15, zeros, size, 1);
    free(zeros);
    assert_non_null(bomb);
    assert_true(bomb->length < 20000);
    uint8_t *inflated;
    size_t length;
    assert_int_equal(
        sioc__ws_zlib_inflate(&zlib, bomb->data, bomb->length, 100000, &inflated, &length),
        SIOC_WS_CLOSE_MESSAGE_TOO_BIG);
    assert_null(inflated);
    /* Exactly the limit is fine. */
    assert_int_equal(
        sioc__ws_zlib_inflate(&zlib, bomb->data, bomb->length, size, &inflated, &length), 0);
    assert_int_equal(length, size);
    free(inflated);
    assert_int_equal(
        sioc__ws_zlib_inflate(&zlib, bomb->data, bomb->length, size - 1, &inflated, &length),
        SIOC_WS_CLOSE_MESSAGE_TOO_BIG);
    sioc__buffer_unref(bomb);
    sioc__ws_zlib_free(&zlib);
}

static void test_inflate_bad_data(void **state)
{
    (void)state;
    sioc__ws_zlib_t zlib;
    sioc__ws_zlib_init(&zlib);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x00};
    uint8_t *inflated;
    size_t length;
    assert_int_equal(
        sioc__ws_zlib_inflate(&zlib, garbage, sizeof(garbage), 1000, &inflated, &length),
        SIOC_WS_CLOSE_INVALID_PAYLOAD);
    assert_null(inflated);
    /* The stream still works after an error. */
    sioc__buffer_t *again = sioc__ws_zlib_deflate(&zlib, 15, (const uint8_t *)"xyz", 3, 0);
    assert_int_equal(
        sioc__ws_zlib_inflate(&zlib, again->data, again->length, 1000, &inflated, &length), 0);
    assert_int_equal(length, 3);
    free(inflated);
    sioc__buffer_unref(again);
    sioc__ws_zlib_free(&zlib);
}

static void test_decoder_flags_compressed_messages(void **state)
{
    (void)state;
    sioc__ws_limits_t limits = {.max_message_size = 1000, .max_fragments = 4, .allow_rsv1 = 1};
    sioc__ws_decoder_t decoder;
    sioc__ws_decoder_init(&decoder, &limits);
    /* RSV1 text frame whose (compressed) bytes are not UTF-8: not checked by the decoder. */
    uint8_t frame[] = {0xC1, 0x82, 0, 0, 0, 0, 0xff, 0xfe};
    size_t used;
    sioc__ws_event_t event;
    sioc__ws_decoder_feed(&decoder, frame, sizeof(frame), &used, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_TEXT);
    assert_int_equal(event.compressed, 1);
    /* The same bytes without RSV1 are invalid UTF-8. */
    uint8_t plain[] = {0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe};
    sioc__ws_decoder_feed(&decoder, plain, sizeof(plain), &used, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_ERROR);
    assert_int_equal(event.close_code, SIOC_WS_CLOSE_INVALID_PAYLOAD);
    sioc__ws_decoder_free(&decoder);
    /* RSV1 on a continuation is a protocol error. */
    sioc__ws_decoder_init(&decoder, &limits);
    uint8_t fragments[] = {0x01, 0x81, 0, 0, 0, 0, 'a', 0xC0, 0x81, 0, 0, 0, 0, 'b'};
    sioc__ws_decoder_feed(&decoder, fragments, sizeof(fragments), &used, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_ERROR);
    assert_int_equal(event.close_code, SIOC_WS_CLOSE_PROTOCOL_ERROR);
    sioc__ws_decoder_free(&decoder);
    /* A fragmented compressed message keeps the flag of its first frame. */
    sioc__ws_decoder_init(&decoder, &limits);
    uint8_t split[] = {0x41, 0x81, 0, 0, 0, 0, 0xff, 0x80, 0x81, 0, 0, 0, 0, 0xfe};
    sioc__ws_decoder_feed(&decoder, split, sizeof(split), &used, &event);
    assert_int_equal(event.type, SIOC_WS_EVENT_TEXT);
    assert_int_equal(event.compressed, 1);
    assert_int_equal(event.length, 2);
    sioc__ws_decoder_free(&decoder);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_offers),
        cmocka_unit_test(test_window_bits_agreed),
        cmocka_unit_test(test_no_offer),
        cmocka_unit_test(test_refused_offers),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_inflate_is_bounded),
        cmocka_unit_test(test_inflate_bad_data),
        cmocka_unit_test(test_decoder_flags_compressed_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
