/* socket.handshake from the bytes kept of the opening request (sio_handshake.c): every header,
 * the url and the address come back as the request said them, whether the handshake's static
 * tables have a code for them or not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engineio/eio_internal.h"
#include "socketio/sio_internal.h"
#include "transport/http_request.h"

#define FFFD "\xef\xbf\xbd"

static sioc__http_limits_t limits;

static int setup(void **state)
{
    (void)state;
    sioc__http_limits_init(&limits);
    return 0;
}

/* The handshake object (without auth) of the request text, as the server would keep it. */
static json_t *handshake_of(const char *text, const char *address)
{
    sioc__http_request_parser_t parser;
    sioc__http_request_parser_init(&parser, &limits);
    snprintf(parser.request.remote_address, sizeof(parser.request.remote_address), "%s", address);
    size_t used = 0;
    int rc = sioc__http_request_parser_execute(&parser, (const uint8_t *)text, strlen(text), &used);
    assert_int_equal(rc, 1);
    struct sioc_request_s request = {&parser.request};
    sioc__sio_handshake_t *handshake = sioc__sio_handshake_new(&request);
    sioc__http_request_parser_free(&parser); /* the handshake keeps copies */
    assert_non_null(handshake);
    json_t *object = json_incref(sioc__sio_handshake_object(handshake));
    sioc__sio_handshake_unref(handshake);
    assert_non_null(object);
    return object;
}

static void assert_header(const json_t *handshake, const char *name, const char *value)
{
    const json_t *header = json_object_get(json_object_get(handshake, "headers"), name);
    if (!json_is_string(header))
        fail_msg("header %s missing", name);
    assert_string_equal(json_string_value(header), value);
}

static void test_websocket_handshake(void **state)
{
    (void)state;
    json_t *handshake = handshake_of("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                                     "Host: 127.0.0.1:3000\r\n"
                                     "Upgrade: websocket\r\n"
                                     "Connection: Upgrade\r\n"
                                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                     "Sec-WebSocket-Version: 13\r\n\r\n",
                                     "127.0.0.1");
    assert_string_equal(json_string_value(json_object_get(handshake, "url")),
                        "/socket.io/?EIO=4&transport=websocket");
    assert_string_equal(json_string_value(json_object_get(handshake, "address")), "127.0.0.1");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(handshake, "query"), "transport")),
        "websocket");
    assert_int_equal(json_object_size(json_object_get(handshake, "headers")), 5);
    assert_header(handshake, "host", "127.0.0.1:3000");
    assert_header(handshake, "upgrade", "websocket");
    assert_header(handshake, "connection", "Upgrade");
    assert_header(handshake, "sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    assert_header(handshake, "sec-websocket-version", "13");
    assert_true(json_is_false(json_object_get(handshake, "xdomain")));
    assert_true(json_integer_value(json_object_get(handshake, "issued")) > 1700000000000);
    json_decref(handshake);
}

/* Names and values without a code, a value that only begins like one, a long value (a varint
 * of two bytes), an empty one, a name in mixed case, a url without a known prefix. */
static void test_literal_names_and_values(void **state)
{
    (void)state;
    char long_value[300];
    memset(long_value, 'v', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    char text[1024];
    snprintf(text, sizeof(text),
             "GET /chat/?EIO=4&transport=polling&t=abc HTTP/1.1\r\n"
             "Host: example.org\r\n"
             "X-Custom-Header: Some Value\r\n"
             "Upgrade: websocket2\r\n"
             "Connection: upgrade\r\n"
             "Origin: https://example.org\r\n"
             "X-Long: %s\r\n"
             "X-Empty:\r\n"
             "Cookie: a=1; b=2\r\n\r\n",
             long_value);
    json_t *handshake = handshake_of(text, "::1");
    assert_string_equal(json_string_value(json_object_get(handshake, "url")),
                        "/chat/?EIO=4&transport=polling&t=abc");
    assert_string_equal(json_string_value(json_object_get(handshake, "address")), "::1");
    assert_int_equal(json_object_size(json_object_get(handshake, "headers")), 8);
    assert_header(handshake, "host", "example.org");
    assert_header(handshake, "x-custom-header", "Some Value");
    assert_header(handshake, "upgrade", "websocket2");
    assert_header(handshake, "connection", "upgrade");
    assert_header(handshake, "origin", "https://example.org");
    assert_header(handshake, "x-long", long_value);
    assert_header(handshake, "x-empty", "");
    assert_header(handshake, "cookie", "a=1; b=2");
    assert_true(json_is_true(json_object_get(handshake, "xdomain")));
    json_decref(handshake);
}

/* A url that goes on past a known prefix keeps the rest. */
static void test_url_past_a_prefix(void **state)
{
    (void)state;
    json_t *handshake = handshake_of(
        "GET /socket.io/?EIO=4&transport=websocket&sid=abc HTTP/1.1\r\nHost: h\r\n\r\n", "1.2.3.4");
    assert_string_equal(json_string_value(json_object_get(handshake, "url")),
                        "/socket.io/?EIO=4&transport=websocket&sid=abc");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(handshake, "query"), "sid")), "abc");
    json_decref(handshake);
}

/* Node reads every byte of a header value as one latin1 character (node 20: "X-Custom: été" sent
 * as UTF-8 gives "Ã©tÃ©", the bytes E9 FF give "éÿ"); a value that is not UTF-8 must not be
 * lost, nor make the handshake NULL. */
static void test_header_bytes_read_as_latin1(void **state)
{
    (void)state;
    json_t *handshake = handshake_of("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
                                     "Host: 127.0.0.1:3000\r\n"
                                     "X-Utf8: \xc3\xa9t\xc3\xa9\r\n"
                                     "X-Latin1: \xe9\xff\r\n\r\n",
                                     "127.0.0.1");
    assert_header(handshake, "x-utf8", "\xc3\x83\xc2\xa9t\xc3\x83\xc2\xa9");
    assert_header(handshake, "x-latin1", "\xc3\xa9\xc3\xbf");
    json_decref(handshake);
}

/* A name sent twice, as node 20 gives it (sio/handshake.test.js measures it against the
 * reference): joined with ", " (any case of the name), a cookie with "; ", set-cookie an array
 * (even sent once), the names Node keeps once with their first value; by code or literal. */
static void test_names_sent_twice(void **state)
{
    (void)state;
    json_t *handshake = handshake_of("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
                                     "Host: first.example\r\n"
                                     "hOsT: second.example\r\n"
                                     "X-Custom: a\r\n"
                                     "x-CUSTOM: b\r\n"
                                     "X-Custom: c\r\n"
                                     "Accept: */*\r\n"
                                     "Accept: text/html\r\n"
                                     "X-Empty:\r\n"
                                     "X-Empty: v\r\n"
                                     "Cookie: a=1\r\n"
                                     "Cookie: b=2\r\n"
                                     "Set-Cookie: s=1\r\n"
                                     "SET-COOKIE: s=2\r\n"
                                     "User-Agent: first\r\n"
                                     "User-Agent: second\r\n"
                                     "Authorization: Bearer 1\r\n"
                                     "Authorization: Bearer 2\r\n"
                                     "Referer: r1\r\n"
                                     "Referer: r2\r\n"
                                     "X-Latin: caf\xe9\r\n"
                                     "X-Latin: \xff\r\n\r\n",
                                     "127.0.0.1");
    assert_header(handshake, "host", "first.example");
    assert_header(handshake, "x-custom", "a, b, c");
    assert_header(handshake, "accept", "*/*, text/html");
    assert_header(handshake, "x-empty", ", v");
    assert_header(handshake, "cookie", "a=1; b=2");
    assert_header(handshake, "user-agent", "first");
    assert_header(handshake, "authorization", "Bearer 1");
    assert_header(handshake, "referer", "r1");
    assert_header(handshake, "x-latin", "caf\xc3\xa9, \xc3\xbf");
    json_t *expected = json_pack("[ss]", "s=1", "s=2");
    assert_true(
        json_equal(json_object_get(json_object_get(handshake, "headers"), "set-cookie"), expected));
    json_decref(expected);
    /* Node's key order: where each name came first. */
    const char *order[] = {"host",       "x-custom",   "accept",        "x-empty", "cookie",
                           "set-cookie", "user-agent", "authorization", "referer", "x-latin"};
    size_t i = 0;
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(handshake, "headers"), key, value)
    {
        assert_true(i < sizeof(order) / sizeof(order[0]));
        assert_string_equal(key, order[i++]);
    }
    assert_int_equal(i, sizeof(order) / sizeof(order[0]));
    json_decref(handshake);

    handshake = handshake_of("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
                             "Host: x\r\nSet-Cookie: only\r\n\r\n",
                             "127.0.0.1");
    expected = json_pack("[s]", "only");
    assert_true(
        json_equal(json_object_get(json_object_get(handshake, "headers"), "set-cookie"), expected));
    json_decref(expected);
    json_decref(handshake);
}

/* socket.handshake.query of a request target, as compact JSON (a new string). */
static char *query_json_of(const char *target)
{
    size_t size = strlen(target) + 64;
    char *text = malloc(size);
    assert_non_null(text);
    snprintf(text, size, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", target);
    json_t *handshake = handshake_of(text, "127.0.0.1");
    free(text);
    char *dump = json_dumps(json_object_get(handshake, "query"), JSON_COMPACT);
    json_decref(handshake);
    assert_non_null(dump);
    return dump;
}

static void assert_query(const char *query, const char *expected)
{
    char target[512];
    snprintf(target, sizeof(target), "/socket.io/?EIO=4&transport=polling%s", query);
    char *dump = query_json_of(target);
    char want[512];
    snprintf(want, sizeof(want), "{\"EIO\":\"4\",\"transport\":\"polling\"%s}", expected);
    if (strcmp(dump, want) != 0)
        fail_msg("%s: %s, want %s", query, dump, want);
    free(dump);
}

/* Each answer is node 20's socket.io 4.8.4 (engine.io 6.6: Object.fromEntries of
 * url.searchParams) for the same target, as the JSON it sent. */
static void test_query_as_node(void **state)
{
    (void)state;
    assert_query("&a=1&a=2", ",\"a\":\"2\"");
    assert_query("&a=1&b=2&a=3", ",\"a\":\"3\",\"b\":\"2\"");
    assert_query("&b=x+y&a+b=c+d", ",\"b\":\"x y\",\"a b\":\"c d\"");
    assert_query("&v=%2B+%25", ",\"v\":\"+ %\"");
    assert_query("&c=%", ",\"c\":\"%\"");
    assert_query("&d=%G1&o=%4", ",\"d\":\"%G1\",\"o\":\"%4\"");
    assert_query("&%=%%%", ",\"%\":\"%%%\"");
    assert_query("&e=%C3", ",\"e\":\"" FFFD "\"");
    assert_query("&f=%C0%AF", ",\"f\":\"" FFFD FFFD "\"");
    assert_query("&g=%ED%A0%80", ",\"g\":\"" FFFD FFFD FFFD "\"");
    assert_query("&t=%F4%90%80%80", ",\"t\":\"" FFFD FFFD FFFD FFFD "\"");
    assert_query("&u=caf%C3%A9%zz", ",\"u\":\"caf\xc3\xa9%zz\"");
    assert_query("&h=%00", ",\"h\":\"\\u0000\"");
    assert_query("&%00=k", ",\"\\u0000\":\"k\"");
    assert_query("&i", ",\"i\":\"\"");
    assert_query("&&&k=1&", ",\"k\":\"1\"");
    assert_query("&=x", ",\"\":\"x\"");
    assert_query("&=", ",\"\":\"\"");
    assert_query("&k=a=b=c", ",\"k\":\"a=b=c\"");
    assert_query("&n%20x=1", ",\"n x\":\"1\"");
    assert_query("&__proto__=1", ",\"__proto__\":\"1\"");
    /* The fragment is no part of the query. */
    assert_query("#frag&q=1", "");
    assert_query("&q=1#?r=2", ",\"q\":\"1\"");
}

/* V8 lists array-index keys first, ascending ("01", 4294967295 and "-1" are no indices). */
static void test_query_key_order(void **state)
{
    (void)state;
    char *dump = query_json_of(
        "/socket.io/?EIO=4&transport=polling&01=a&4294967294=b&4294967295=c&0=d&-1=e&10=f&2=g");
    assert_string_equal(dump, "{\"0\":\"d\",\"2\":\"g\",\"10\":\"f\",\"4294967294\":\"b\",\"EIO\":"
                              "\"4\",\"transport\":\"polling\",\"01\":\"a\",\"4294967295\":\"c\","
                              "\"-1\":\"e\"}");
    free(dump);
}

/* A '?' after a '#' is in the fragment: no query at all. */
static void test_query_after_fragment(void **state)
{
    (void)state;
    char *dump = query_json_of("/socket.io/#x?EIO=4&transport=polling");
    assert_string_equal(dump, "{}");
    free(dump);
    dump = query_json_of("/socket.io/");
    assert_string_equal(dump, "{}");
    free(dump);
}

/* No bound of its own on a name or value (the head's 16 KiB is the bound), nor on the pairs. */
static void test_query_large(void **state)
{
    (void)state;
    static char target[16000];
    size_t used = (size_t)snprintf(target, sizeof(target), "/socket.io/?");
    target[used++] = '&';
    memset(target + used, 'k', 6000);
    used += 6000;
    target[used++] = '=';
    memset(target + used, 'v', 6000);
    used += 6000;
    target[used] = '\0';
    char *dump = query_json_of(target);
    assert_int_equal(strlen(dump), 6000 + 6000 + 7);
    assert_memory_equal(dump, "{\"kkk", 5);
    free(dump);

    /* 1,000 pairs, array indices given in descending order. */
    used = (size_t)snprintf(target, sizeof(target), "/socket.io/?");
    for (int i = 999; i >= 0; i--)
        used += (size_t)snprintf(target + used, sizeof(target) - used, "%d=%d&", i, i);
    dump = query_json_of(target);
    json_t *query = json_loads(dump, 0, NULL);
    assert_non_null(query);
    assert_int_equal(json_object_size(query), 1000);
    int expected = 0;
    const char *key;
    json_t *value;
    json_object_foreach(query, key, value)
    {
        char text[16];
        snprintf(text, sizeof(text), "%d", expected++);
        assert_string_equal(key, text);
        assert_string_equal(json_string_value(value), text);
    }
    json_decref(query);
    free(dump);
}

/* An EIO3 client's CONNECT "/nsp?query" gives the same object (its auth). */
static void test_query_of_a_namespace(void **state)
{
    (void)state;
    json_t *query = sioc__sio_parse_query("/admin?token=a%2Bb+c&token=last&x#y?z=1");
    char *dump = json_dumps(query, JSON_COMPACT);
    assert_string_equal(dump, "{\"token\":\"last\",\"x\":\"\"}");
    free(dump);
    json_decref(query);
    query = sioc__sio_parse_query("/admin#x?a=1");
    assert_int_equal(json_object_size(query), 0);
    json_decref(query);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_websocket_handshake),
        cmocka_unit_test(test_literal_names_and_values),
        cmocka_unit_test(test_url_past_a_prefix),
        cmocka_unit_test(test_header_bytes_read_as_latin1),
        cmocka_unit_test(test_names_sent_twice),
        cmocka_unit_test(test_query_as_node),
        cmocka_unit_test(test_query_key_order),
        cmocka_unit_test(test_query_after_fragment),
        cmocka_unit_test(test_query_large),
        cmocka_unit_test(test_query_of_a_namespace),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
