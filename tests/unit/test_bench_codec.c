/* The load generator's client codec: exact request bytes, response heads fed in every
 * truncation, masked client frames, server frames of every length form and every
 * truncation, the Engine.IO / Socket.IO packets the benchmark meets, and the payload scanners. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/codec.h"

/* ---- HTTP ------------------------------------------------------------------------------------ */

static void test_upgrade_request(void **state)
{
    char out[512];
    size_t length = bench_http_upgrade_request(out, sizeof(out), "127.0.0.1:3000", "/socket.io/",
                                               "dGhlIHNhbXBsZSBub25jZQ==");
    const char *expected = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                           "Host: 127.0.0.1:3000\r\n"
                           "Upgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n";
    assert_int_equal(length, strlen(expected));
    assert_memory_equal(out, expected, length);
    /* Every buffer too small is refused without writing past it. */
    for (size_t size = 0; size < length; size++) {
        char *small = malloc(size + 1);
        assert_int_equal(bench_http_upgrade_request(small, size, "127.0.0.1:3000", "/socket.io/",
                                                    "dGhlIHNhbXBsZSBub25jZQ=="),
                         0);
        free(small);
    }
}

static void test_polling_requests(void **state)
{
    char out[512];
    size_t length = bench_http_poll_get(out, sizeof(out), "h", "/socket.io/", NULL);
    const char *handshake = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(length, strlen(handshake));
    assert_memory_equal(out, handshake, length);
    length = bench_http_poll_post(out, sizeof(out), "h", "/socket.io/", "abc", "40{}", 4);
    const char *post = "POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: h\r\n"
                       "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 4\r\n\r\n40{}";
    assert_int_equal(length, strlen(post));
    assert_memory_equal(out, post, length);
}

static void test_response_every_truncation(void **state)
{
    const char *response =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        "content-length:  17 \r\nConnection: keep-alive\r\n\r\n0{\"sid\":\"abc\"}xx";
    size_t head = strstr(response, "\r\n\r\n") + 4 - response;
    bench_http_response_t parsed;
    for (size_t length = 0; length < head; length++)
        assert_int_equal(bench_http_response_parse(response, length, 8192, &parsed), 0);
    for (size_t length = head; length <= strlen(response); length++) {
        assert_int_equal(bench_http_response_parse(response, length, 8192, &parsed), (long)head);
        assert_int_equal(parsed.status, 200);
        assert_int_equal(parsed.content_length, 17);
        assert_false(parsed.chunked);
    }
}

static void test_response_switching_and_chunked(void **state)
{
    bench_http_response_t parsed;
    const char *upgrade = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x01x";
    long head = bench_http_response_parse(upgrade, strlen(upgrade), 8192, &parsed);
    assert_int_equal(head, strlen(upgrade) - 3);
    assert_int_equal(parsed.status, 101);
    assert_int_equal(parsed.content_length, -1);
    const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_true(bench_http_response_parse(chunked, strlen(chunked), 8192, &parsed) > 0);
    assert_true(parsed.chunked);
}

static void test_response_refusals(void **state)
{
    bench_http_response_t parsed;
    const char *bad[] = {
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "SMTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(bench_http_response_parse(bad[i], strlen(bad[i]), 8192, &parsed), -1);
    /* A head that never ends is refused once max_head bytes came. */
    char endless[300];
    memset(endless, 'a', sizeof(endless));
    memcpy(endless, "HTTP/1.1 200 OK\r\n", 17);
    assert_int_equal(bench_http_response_parse(endless, 100, 256, &parsed), 0);
    assert_int_equal(bench_http_response_parse(endless, sizeof(endless), 256, &parsed), -1);
}

/* ---- WebSocket ------------------------------------------------------------------------------- */

static void check_client_frame(size_t length, size_t header)
{
    uint8_t *payload = calloc(1, length + 1);
    uint8_t *frame = malloc(length + BENCH_WS_MAX_CLIENT_HEADER);
    for (size_t i = 0; i < length; i++)
        payload[i] = (uint8_t)(i * 7);
    size_t written = bench_ws_encode(frame, length + BENCH_WS_MAX_CLIENT_HEADER,
                                     BENCH_WS_OPCODE_TEXT, payload, length, 0x37fa213d);
    assert_int_equal(written, header + length);
    assert_int_equal(frame[0], 0x81);
    assert_true(frame[1] & 0x80); /* masked */
    const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    assert_memory_equal(frame + header - 4, mask, 4);
    for (size_t i = 0; i < length; i++)
        assert_int_equal(frame[header + i] ^ mask[i % 4], payload[i]);
    assert_int_equal(
        bench_ws_encode(frame, header + length - 1, BENCH_WS_OPCODE_TEXT, payload, length, 1), 0);
    free(payload);
    free(frame);
}

static void test_client_frames(void **state)
{
    check_client_frame(0, 6);
    check_client_frame(125, 6);
    check_client_frame(126, 8);
    check_client_frame(65535, 8);
    check_client_frame(65536, 14);
    uint8_t frame[16];
    assert_int_equal(bench_ws_encode(frame, sizeof(frame), BENCH_WS_OPCODE_TEXT, "3", 1, 0), 7);
    const uint8_t pong[] = {0x81, 0x81, 0, 0, 0, 0, '3'};
    assert_memory_equal(frame, pong, sizeof(pong));
}

/* A server frame: header for length, then the payload bytes 0, 1, 2... */
static size_t server_frame(uint8_t *out, uint8_t first, size_t length)
{
    size_t header = 2;
    out[0] = first;
    if (length < 126) {
        out[1] = (uint8_t)length;
    } else if (length <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(length >> 8);
        out[3] = (uint8_t)length;
        header = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)length >> (56 - 8 * i));
        header = 10;
    }
    for (size_t i = 0; i < length; i++)
        out[header + i] = (uint8_t)i;
    return header + length;
}

static void test_server_frames_every_truncation(void **state)
{
    const size_t lengths[] = {0, 1, 125, 126, 1000, 65535, 65536, 70000};
    uint8_t *buffer = malloc(70000 + 16);
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        size_t total = server_frame(buffer, 0x81, lengths[i]);
        bench_ws_frame_t frame;
        /* Truncations: all of them for small frames, the header ones and a few for large. */
        for (size_t cut = 0; cut < total; cut += (total > 300 && cut > 16) ? 997 : 1)
            assert_int_equal(bench_ws_decode(buffer, cut, 1 << 20, &frame), 0);
        assert_int_equal(bench_ws_decode(buffer, total, 1 << 20, &frame), (long)total);
        assert_int_equal(frame.opcode, BENCH_WS_OPCODE_TEXT);
        assert_true(frame.fin);
        assert_int_equal(frame.length, lengths[i]);
        assert_ptr_equal(frame.payload, buffer + total - lengths[i]);
    }
    free(buffer);
}

static void test_server_frame_refusals(void **state)
{
    bench_ws_frame_t frame;
    const uint8_t masked[] = {0x81, 0x81, 1, 2, 3, 4, 'x'};
    const uint8_t reserved[] = {0xc1, 0x01, 'x'};
    const uint8_t long_ping[] = {0x89, 126, 0, 126};
    const uint8_t fragmented_ping[] = {0x09, 0x00};
    assert_int_equal(bench_ws_decode(masked, sizeof(masked), 100, &frame), -1);
    assert_int_equal(bench_ws_decode(reserved, sizeof(reserved), 100, &frame), -1);
    assert_int_equal(bench_ws_decode(long_ping, sizeof(long_ping), 1000, &frame), -1);
    assert_int_equal(bench_ws_decode(fragmented_ping, sizeof(fragmented_ping), 100, &frame), -1);
    uint8_t big[16];
    server_frame(big, 0x81, 0); /* header only; claim a large length */
    big[1] = 127;
    memset(big + 2, 0, 8);
    big[4] = 1; /* 2^40 bytes */
    assert_int_equal(bench_ws_decode(big, 10, 1 << 20, &frame), -1);
}

static void test_two_frames_in_one_read(void **state)
{
    const uint8_t stream[] = {0x81, 0x01, '2', 0x81, 0x03, '4', '2', '['};
    bench_ws_frame_t frame;
    assert_int_equal(bench_ws_decode(stream, sizeof(stream), 100, &frame), 3);
    assert_memory_equal(frame.payload, "2", 1);
    assert_int_equal(bench_ws_decode(stream + 3, sizeof(stream) - 3, 100, &frame), 5);
    assert_memory_equal(frame.payload, "42[", 3);
}

/* ---- Engine.IO / Socket.IO ------------------------------------------------------------------- */

static bench_packet_t parse(const char *text)
{
    bench_packet_t packet;
    assert_int_equal(bench_packet_parse(text, strlen(text), &packet), 0);
    return packet;
}

static void test_engineio_packets(void **state)
{
    bench_packet_t packet = parse("0{\"sid\":\"abc\",\"pingInterval\":25000}");
    assert_int_equal(packet.eio_type, BENCH_EIO_OPEN);
    assert_int_equal(packet.data_length, strlen("{\"sid\":\"abc\",\"pingInterval\":25000}"));
    assert_int_equal(parse("2").eio_type, BENCH_EIO_PING);
    assert_int_equal(parse("6").eio_type, BENCH_EIO_NOOP);
    assert_int_equal(parse("1").eio_type, BENCH_EIO_CLOSE);
    bench_packet_t bad;
    assert_int_equal(bench_packet_parse("", 0, &bad), -1);
    assert_int_equal(bench_packet_parse("7", 1, &bad), -1);
    assert_int_equal(bench_packet_parse("451-[\"x\"]", 9, &bad), -1); /* binary: never asked */
}

static void test_socketio_packets(void **state)
{
    bench_packet_t packet = parse("40{\"sid\":\"x\"}");
    assert_int_equal(packet.sio_type, BENCH_SIO_CONNECT);
    assert_true(bench_packet_in_namespace(&packet, "/"));
    assert_int_equal(packet.ack_id, -1);

    packet = parse("40/chat,{\"sid\":\"x\"}");
    assert_true(bench_packet_in_namespace(&packet, "/chat"));
    assert_false(bench_packet_in_namespace(&packet, "/"));
    assert_memory_equal(packet.data, "{\"sid\":\"x\"}", packet.data_length);

    packet = parse("42[\"message:received\",{\"text\":\"hi\"}]");
    assert_int_equal(packet.sio_type, BENCH_SIO_EVENT);
    assert_int_equal(packet.event_length, strlen("message:received"));
    assert_memory_equal(packet.event, "message:received", packet.event_length);

    packet = parse("43/auth,12345[{\"ok\":true}]");
    assert_int_equal(packet.sio_type, BENCH_SIO_ACK);
    assert_int_equal(packet.ack_id, 12345);
    assert_true(bench_packet_in_namespace(&packet, "/auth"));
    assert_memory_equal(packet.data, "[{\"ok\":true}]", packet.data_length);

    packet = parse("44{\"message\":\"Authentication error: jwt expired\"}");
    assert_int_equal(packet.sio_type, BENCH_SIO_CONNECT_ERROR);

    packet = parse("41/x");
    assert_int_equal(packet.sio_type, BENCH_SIO_DISCONNECT);
    assert_true(bench_packet_in_namespace(&packet, "/x"));

    packet = parse("42[\"a\\\"b\",1]"); /* escapes are kept in the view */
    assert_int_equal(packet.event_length, 4);

    packet = parse("42[1,2]"); /* a numeric event name: no name view */
    assert_null(packet.event);

    bench_packet_t bad;
    assert_int_equal(bench_packet_parse("4299999999999999999999[]", 24, &bad), -1);
}

static void test_socketio_builders(void **state)
{
    char out[256];
    size_t length = bench_sio_connect(out, sizeof(out), "/", "{\"token\":\"t\"}");
    assert_int_equal(length, strlen("40{\"token\":\"t\"}"));
    assert_memory_equal(out, "40{\"token\":\"t\"}", length);
    length = bench_sio_connect(out, sizeof(out), "/auth", NULL);
    assert_memory_equal(out, "40/auth,", length);
    length = bench_sio_event(out, sizeof(out), "/", 7, "echo", "\"xx\"");
    assert_memory_equal(out, "427[\"echo\",\"xx\"]", length);
    length = bench_sio_event(out, sizeof(out), "/chat", -1, "room:join", "\"bench-1\"");
    assert_memory_equal(out, "42/chat,[\"room:join\",\"bench-1\"]", length);
    length = bench_sio_event(out, sizeof(out), "/", -1, "ping", "");
    assert_memory_equal(out, "42[\"ping\"]", length);
    assert_int_equal(bench_sio_event(out, 10, "/", 7, "echo", "\"xx\""), 0);
}

static void test_json_scanners(void **state)
{
    const char *payload = "{\"s\":42,\"t\":1234567890123,\"p\":\"xxx\",\"neg\" : -5}";
    int64_t value;
    assert_int_equal(bench_json_integer(payload, strlen(payload), "s", &value), 0);
    assert_int_equal(value, 42);
    assert_int_equal(bench_json_integer(payload, strlen(payload), "t", &value), 0);
    assert_int_equal(value, 1234567890123);
    assert_int_equal(bench_json_integer(payload, strlen(payload), "neg", &value), 0);
    assert_int_equal(value, -5);
    assert_int_equal(bench_json_integer(payload, strlen(payload), "p", &value), -1);
    assert_int_equal(bench_json_integer(payload, strlen(payload), "q", &value), -1);
    /* A value equal to a key is not taken for the key. */
    const char *tricky = "{\"a\":\"s\",\"s\":7}";
    assert_int_equal(bench_json_integer(tricky, strlen(tricky), "s", &value), 0);
    assert_int_equal(value, 7);

    const char *message = "{\"id\":\"1\",\"sender\":{\"id\":\"u\"},\"text\":\"bench 1 2 \\\"x\","
                          "\"createdAt\":\"2026\"}";
    const char *text;
    size_t length;
    assert_int_equal(bench_json_string(message, strlen(message), "text", &text, &length), 0);
    assert_int_equal(length, strlen("bench 1 2 \\\"x"));
    assert_memory_equal(text, "bench 1 2 \\\"x", length);
    assert_int_equal(bench_json_string(message, strlen(message) - 30, "createdAt", &text, &length),
                     -1);
    /* Truncated inputs never read past their end. */
    for (size_t cut = 0; cut < strlen(message); cut++) {
        char *copy = malloc(cut ? cut : 1);
        memcpy(copy, message, cut);
        bench_json_string(copy, cut, "text", &text, &length);
        bench_json_integer(copy, cut, "id", &value);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_request),
        cmocka_unit_test(test_polling_requests),
        cmocka_unit_test(test_response_every_truncation),
        cmocka_unit_test(test_response_switching_and_chunked),
        cmocka_unit_test(test_response_refusals),
        cmocka_unit_test(test_client_frames),
        cmocka_unit_test(test_server_frames_every_truncation),
        cmocka_unit_test(test_server_frame_refusals),
        cmocka_unit_test(test_two_frames_in_one_read),
        cmocka_unit_test(test_engineio_packets),
        cmocka_unit_test(test_socketio_packets),
        cmocka_unit_test(test_socketio_builders),
        cmocka_unit_test(test_json_scanners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
