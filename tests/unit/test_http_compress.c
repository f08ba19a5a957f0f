/* Accept-Encoding negotiation (the negotiator npm module's answers, checked against Node) and
 * gzip / deflate round trips through zlib, streams reused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "transport/http_compress.h"

static void test_negotiation(void **state)
{
    static const struct {
        const char *value;
        sioc__http_encoding_t expected;
    } cases[] = {
        {"", SIOC_HTTP_IDENTITY},
        {"gzip", SIOC_HTTP_GZIP},
        {"deflate", SIOC_HTTP_DEFLATE},
        {"gzip, deflate", SIOC_HTTP_GZIP},
        {"deflate, gzip", SIOC_HTTP_DEFLATE},
        {"gzip;q=0.5, deflate", SIOC_HTTP_DEFLATE},
        {"gzip;q=0", SIOC_HTTP_IDENTITY},
        {"*", SIOC_HTTP_GZIP},
        {"*;q=0, gzip", SIOC_HTTP_GZIP},
        {"identity", SIOC_HTTP_IDENTITY},
        {"br", SIOC_HTTP_IDENTITY},
        {"GZIP", SIOC_HTTP_GZIP},
        {"deflate;q=0.5, *", SIOC_HTTP_GZIP},
        {"gzip;q=abc, deflate;q=0.1", SIOC_HTTP_DEFLATE},
        {"gzip;q=0.5, deflate;q=0.5", SIOC_HTTP_GZIP},
        {"x;q=1,gzip;q=0.2;q=0.9", SIOC_HTTP_GZIP},
        {"gzip ;q=0.3, deflate;q=0.2", SIOC_HTTP_GZIP},
        {"gzip x", SIOC_HTTP_IDENTITY},
        {"gzip;q", SIOC_HTTP_IDENTITY},
        {"deflate;q=1e0, gzip;q=0.9", SIOC_HTTP_DEFLATE},
        {"gzip;q=-1, deflate;q=.5", SIOC_HTTP_DEFLATE},
        {" ,gzip", SIOC_HTTP_GZIP},
        {"gzip;q=0.001", SIOC_HTTP_GZIP},
        {"gzip;q=1e", SIOC_HTTP_GZIP},
        {"gzip;q=Infinity, deflate", SIOC_HTTP_GZIP},
        {";;;,,,", SIOC_HTTP_IDENTITY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sioc__http_encoding_t got =
            sioc__http_negotiate_encoding(cases[i].value, strlen(cases[i].value));
        if (got != cases[i].expected)
            fail_msg("%s: got %d, want %d", cases[i].value, got, cases[i].expected);
    }
}

static void test_headers_join(void **state)
{
    /* Two Accept-Encoding headers are one list, as Node joins them. */
    sioc__http_header_t headers[] = {{"Accept-Encoding", "deflate;q=0.5", 13},
                                     {"Host", "x", 1},
                                     {"accept-encoding", "gzip;q=0.4", 10}};
    sioc__http_request_t request = {.headers = headers, .header_count = 3};
    assert_int_equal(sioc__http_accepted_encoding(&request), SIOC_HTTP_DEFLATE);
    request.header_count = 0;
    assert_int_equal(sioc__http_accepted_encoding(&request), SIOC_HTTP_IDENTITY);
}

static void round_trip(sioc__http_compressor_t *compressor, sioc__http_encoding_t encoding,
                       const uint8_t *data, size_t length)
{
    sioc__buffer_t *compressed = sioc__http_compress(compressor, encoding, data, length);
    assert_non_null(compressed);
    if (encoding == SIOC_HTTP_GZIP) {
        assert_int_equal(compressed->data[0], 0x1f);
        assert_int_equal(compressed->data[1], 0x8b);
    }
    z_stream stream;
    memset(&stream, 0, sizeof(stream));
    assert_int_equal(inflateInit2(&stream, encoding == SIOC_HTTP_GZIP ? 15 + 16 : 15), Z_OK);
    uint8_t out[70000];
    stream.next_in = compressed->data;
    stream.avail_in = (uInt)compressed->length;
    stream.next_out = out;
    stream.avail_out = sizeof(out);
    assert_int_equal(inflate(&stream, Z_FINISH), Z_STREAM_END);
    assert_int_equal(stream.total_out, length);
    assert_memory_equal(out, data, length);
    inflateEnd(&stream);
    sioc__buffer_unref(compressed);
}

static void test_round_trips(void **state)
{
    static uint8_t data[65536];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)((i * 7919) >> (i % 5));
    sioc__http_compressor_t compressor;
    sioc__http_compressor_init(&compressor);
    /* Each stream is made once and reset for the next response. */
    for (int round = 0; round < 3; round++) {
        round_trip(&compressor, SIOC_HTTP_GZIP, data, sizeof(data));
        round_trip(&compressor, SIOC_HTTP_DEFLATE, data, 1024);
        round_trip(&compressor, SIOC_HTTP_GZIP, (const uint8_t *)"", 0);
    }
    assert_null(sioc__http_compress(&compressor, SIOC_HTTP_IDENTITY, data, 10));
    sioc__http_compressor_free(&compressor);
    sioc__http_compressor_free(&compressor); /* idempotent */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiation),
        cmocka_unit_test(test_headers_join),
        cmocka_unit_test(test_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
