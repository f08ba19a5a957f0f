/* HTTP long-polling transport: a GET is held until packets are queued (answered once per loop
 * iteration, at most 16 packets each), a POST carries a payload of packets from the client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/utf8.h"
#include "engineio/eio3_parser.h"
#include "engineio/eio_internal.h"

void sioc__eio_polling_mark_ready(sioc_eio_socket_t *socket)
{
    if (socket->in_flush_list)
        return;
    socket->in_flush_list = 1;
    socket->next_in_list = sioc__eio_socket_server(socket)->flush_list;
    sioc__eio_socket_server(socket)->flush_list = socket;
}

/* Writes one record of the payload; binary packets become "b" + base64 in a buffer of their
 * own, text packets are the shared buffer itself. */
static size_t write_record(sioc__http_conn_t *http, sioc__buffer_t *packet)
{
    if (!packet->binary) {
        sioc__http_write_body(http, packet, packet->data, packet->length);
        return packet->length;
    }
    size_t length = sioc__eio_payload_packet_length(SIOC_EIO_MESSAGE, 1, packet->length);
    sioc__buffer_t *record = sioc__buffer_new(length, 0);
    if (record == NULL)
        return 0;
    sioc__eio_payload_write_packet(record->data, SIOC_EIO_MESSAGE, 1, packet->data, packet->length);
    sioc__http_write_body(http, record, record->data, length);
    sioc__buffer_unref(record);
    return length;
}

static size_t record_length(const sioc__buffer_t *packet)
{
    return packet->binary ? sioc__eio_payload_packet_length(SIOC_EIO_MESSAGE, 1, packet->length)
                          : packet->length;
}

static void drop_sent(sioc_eio_socket_t *socket, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        socket->polling->queued_bytes -= socket->polling->queue[i]->length;
        sioc__buffer_unref(socket->polling->queue[i]);
    }
    socket->polling->queue_length -= count;
    if (socket->polling->queue_length > 0)
        memmove(socket->polling->queue, socket->polling->queue + count,
                socket->polling->queue_length * sizeof(sioc__buffer_t *));
    if (socket->polling->queue_length == 0) {
        free(socket->polling->queue);
        socket->polling->queue = NULL;
        socket->polling->queue_capacity = 0;
    }
}

/* The payload in one piece, for compression: out holds content_length bytes. */
static void copy_payload(sioc_eio_socket_t *socket, uint32_t count, sioc__buffer_t *extra_packet,
                         uint8_t *out)
{
    for (uint32_t i = 0; i < count; i++) {
        const sioc__buffer_t *packet = socket->polling->queue[i];
        if (i > 0)
            *out++ = 0x1e;
        if (packet->binary) {
            sioc__eio_payload_write_packet(out, SIOC_EIO_MESSAGE, 1, packet->data, packet->length);
            out += record_length(packet);
        } else {
            memcpy(out, packet->data, packet->length);
            out += packet->length;
        }
    }
    if (extra_packet != NULL) {
        if (count > 0)
            *out++ = 0x1e;
        memcpy(out, extra_packet->data, extra_packet->length);
    }
}

/* Node's polling compresses when some packet of the answer has compress not false; the
 * packets it writes itself on a held GET (the noop of an upgrade, close) carry no options, so
 * they never ask for it. */
static int wants_compression(const sioc_eio_socket_t *socket, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        if (!socket->polling->queue[i]->no_compress)
            return 1;
    }
    return 0;
}

/* httpCompression: Node compresses a payload of at least the threshold when the client accepts
 * gzip or deflate. Returns the compressed body (and *encoding), or NULL to send it as it is. */
static sioc__buffer_t *compressed_payload(sioc_eio_socket_t *socket, uint32_t count,
                                          sioc__buffer_t *extra_packet, size_t content_length,
                                          sioc__http_encoding_t *encoding)
{
    sioc_eio_server_t *server = sioc__eio_socket_server(socket);
    if (!server->options.http_compression ||
        content_length < server->options.http_compression_threshold ||
        !wants_compression(socket, count))
        return NULL;
    *encoding = sioc__http_accepted_encoding(socket->polling->held_request);
    if (*encoding == SIOC_HTTP_IDENTITY)
        return NULL;
    uint8_t *payload = malloc(content_length);
    if (payload == NULL)
        return NULL;
    copy_payload(socket, count, extra_packet, payload);
    sioc__buffer_t *body =
        sioc__http_compress(&server->compressor, *encoding, payload, content_length);
    free(payload);
    return body;
}

static void write_payload(sioc_eio_socket_t *socket, uint32_t count, sioc__buffer_t *extra_packet)
{
    sioc__http_conn_t *http = socket->polling->held_get;
    sioc_eio_server_t *server = sioc__eio_socket_server(socket);
    for (uint32_t i = 0; i < count; i++) {
        if (i > 0)
            sioc__http_write_body(http, server->separator, server->separator->data, 1);
        write_record(http, socket->polling->queue[i]);
    }
    if (extra_packet != NULL) {
        if (count > 0)
            sioc__http_write_body(http, server->separator, server->separator->data, 1);
        sioc__http_write_body(http, extra_packet, extra_packet->data, extra_packet->length);
    }
}

/* The headers of a GET's answer; returns the length used. */
static size_t answer_headers(sioc_eio_socket_t *socket, const char *content_type, char *headers,
                             size_t size)
{
    sioc_eio_server_t *server = sioc__eio_socket_server(socket);
    snprintf(headers, size, "Content-Type: %s\r\nCache-Control: no-store\r\n", content_type);
    size_t used = strlen(headers);
    sioc__eio_cors_headers(server, socket->polling->held_request, headers + used, size - used);
    used += strlen(headers + used);
    sioc__eio_cookie_header(server, socket, socket->polling->held_request, headers + used,
                            size - used);
    return used + strlen(headers + used);
}

static void finish_answer(sioc_eio_socket_t *socket, uint32_t count)
{
    sioc__http_conn_t *http = socket->polling->held_get;
    drop_sent(socket, count);
    socket->polling->held_get = NULL;
    socket->polling->held_request = NULL;
    sioc__http_set_user(http, NULL);
    sioc__http_finish(http);
}

/* EIO3: the whole payload in one buffer (a new reference, NULL when out of memory). Binary
 * (XHR2) framing when it holds binary and the client did not ask for base64, as Node's
 * parser-v3 encodePayload; every text packet is then framed as binary too. */
static sioc__buffer_t *v3_payload(sioc_eio_socket_t *socket, uint32_t count,
                                  sioc__buffer_t *extra_packet, int *binary_framing)
{
    sioc__buffer_t *packets[EIO_MAX_PACKETS_PER_POLL];
    uint32_t total = 0;
    for (uint32_t i = 0; i < count; i++)
        packets[total++] = socket->polling->queue[i];
    if (extra_packet != NULL)
        packets[total++] = extra_packet;
    *binary_framing = 0;
    for (uint32_t i = 0; i < total && !socket->polling_b64; i++)
        *binary_framing |= packets[i]->binary;
    size_t length = 0;
    for (uint32_t i = 0; i < total; i++) {
        const sioc__buffer_t *p = packets[i];
        length += *binary_framing ? sioc__eio3_binary_record_length(p->length, p->binary)
                                  : sioc__eio3_text_record_length(p->data, p->length, p->binary);
    }
    sioc__buffer_t *body = sioc__buffer_new(length, 0);
    uint8_t *out = body != NULL ? body->data : NULL;
    for (uint32_t i = 0; out != NULL && i < total; i++) {
        const sioc__buffer_t *p = packets[i];
        out += *binary_framing ? sioc__eio3_write_binary_record(out, p->data, p->length, p->binary)
                               : sioc__eio3_write_text_record(out, p->data, p->length, p->binary);
    }
    return body;
}

static void answer_get_v3(sioc_eio_socket_t *socket, uint32_t count, sioc__buffer_t *extra_packet)
{
    sioc_eio_server_t *server = sioc__eio_socket_server(socket);
    sioc__http_conn_t *http = socket->polling->held_get;
    int binary_framing;
    sioc__buffer_t *body = v3_payload(socket, count, extra_packet, &binary_framing);
    if (body == NULL) {
        sioc__http_respond(http, 500, NULL, NULL, 0);
        finish_answer(socket, 0);
        return;
    }
    char headers[4096];
    size_t used = answer_headers(
        socket, binary_framing ? "application/octet-stream" : "text/plain; charset=UTF-8", headers,
        sizeof(headers));
    sioc__http_encoding_t encoding = SIOC_HTTP_IDENTITY;
    if (server->options.http_compression &&
        body->length >= server->options.http_compression_threshold &&
        wants_compression(socket, count))
        encoding = sioc__http_accepted_encoding(socket->polling->held_request);
    sioc__buffer_t *compressed =
        encoding != SIOC_HTTP_IDENTITY
            ? sioc__http_compress(&server->compressor, encoding, body->data, body->length)
            : NULL;
    if (compressed != NULL) {
        snprintf(headers + used, sizeof(headers) - used, "Content-Encoding: %s\r\n",
                 sioc__http_encoding_name(encoding));
        sioc__buffer_unref(body);
        body = compressed;
    }
    sioc__http_write_head(http, 200, headers, body->length);
    sioc__http_write_body(http, body, body->data, body->length);
    sioc__buffer_unref(body);
    finish_answer(socket, count);
}

static void answer_get(sioc_eio_socket_t *socket, sioc__buffer_t *extra_packet)
{
    sioc__http_conn_t *http = socket->polling->held_get;
    uint32_t count = socket->polling->queue_length;
    if (count > EIO_MAX_PACKETS_PER_POLL - (extra_packet != NULL))
        count = EIO_MAX_PACKETS_PER_POLL - (extra_packet != NULL);
    if (socket->open_alone && count > 1)
        count = 1;
    socket->open_alone = 0;
    if (socket->protocol == 3) {
        answer_get_v3(socket, count, extra_packet);
        return;
    }
    size_t content_length = 0;
    for (uint32_t i = 0; i < count; i++)
        content_length += record_length(socket->polling->queue[i]) + (i > 0);
    if (extra_packet != NULL)
        content_length += extra_packet->length + (count > 0);
    char headers[4096];
    size_t used = answer_headers(socket, "text/plain; charset=UTF-8", headers, sizeof(headers));
    sioc__http_encoding_t encoding;
    sioc__buffer_t *compressed =
        compressed_payload(socket, count, extra_packet, content_length, &encoding);
    if (compressed != NULL) {
        snprintf(headers + used, sizeof(headers) - used, "Content-Encoding: %s\r\n",
                 sioc__http_encoding_name(encoding));
        sioc__http_write_head(http, 200, headers, compressed->length);
        sioc__http_write_body(http, compressed, compressed->data, compressed->length);
        sioc__buffer_unref(compressed);
    } else {
        sioc__http_write_head(http, 200, headers, content_length);
        write_payload(socket, count, extra_packet);
    }
    finish_answer(socket, count);
}

void sioc__eio_polling_answer_now(sioc_eio_socket_t *socket, sioc__buffer_t *extra_packet)
{
    if (socket->polling != NULL && socket->polling->held_get != NULL)
        answer_get(socket, extra_packet);
}

/* Runs once per loop iteration: answers held GETs, and closes slow readers found during the
 * iteration. */
void sioc__eio_polling_flush_all(sioc_eio_server_t *server)
{
    while (server->flush_list != NULL) {
        sioc_eio_socket_t *socket = server->flush_list;
        server->flush_list = socket->next_in_list;
        socket->in_flush_list = 0;
        if (socket->overflowed && socket->state == EIO_SOCKET_OPEN)
            sioc__eio_socket_close(socket, "transport error"); /* now on the reap list */
        else if (socket->state == EIO_SOCKET_CLOSED) {
            socket->next_in_list = server->reap_list;
            server->reap_list = socket;
        } else if (socket->polling != NULL && socket->polling->held_get != NULL &&
                   socket->polling->queue_length > 0) {
            answer_get(socket, NULL);
        }
    }
}

static void hold_get(sioc_eio_socket_t *socket, sioc__http_conn_t *http,
                     sioc__http_request_t *request)
{
    if (socket->polling->held_get != NULL) {
        /* Two GETs at once: Node answers the newcomer 400 and closes the session. */
        sioc__http_respond(http, 400, NULL, NULL, 0);
        sioc__eio_socket_close(socket, "transport error");
        return;
    }
    socket->polling->held_get = http;
    socket->polling->held_request = request;
    sioc__http_set_user(http, socket);
    if (socket->state == EIO_SOCKET_DRAINING && socket->polling->queue_length == 0)
        sioc__eio_socket_close(socket, "forced close"); /* answers this GET with the close packet */
    else if (socket->state == EIO_SOCKET_DRAINING)
        answer_get(socket, NULL);
    else if (socket->polling->queue_length > 0)
        sioc__eio_polling_mark_ready(socket);
    else if (socket->upgrading)
        /* The client is about to switch: release its poll so it can finish the upgrade. */
        answer_get(socket, sioc__eio_socket_server(socket)->noop_packet);
}

static void answer_ok(sioc_eio_server_t *server, sioc__http_conn_t *http,
                      const sioc__http_request_t *request)
{
    char headers[4096] = "Content-Type: text/html\r\n";
    size_t used = strlen(headers);
    sioc__eio_cors_headers(server, request, headers + used, sizeof(headers) - used);
    sioc__http_respond(http, 200, headers, "ok", 2);
}

static int is_binary_content(const sioc__http_request_t *request)
{
    const sioc__http_header_t *type = sioc__http_request_header(request, "content-type");
    return type != NULL && type->value_length >= 24 &&
           strncasecmp(type->value, "application/octet-stream", 24) == 0;
}

/* EIO3: a text payload, or a binary (XHR2) one when sent as application/octet-stream. */
static void receive_post_v3(sioc_eio_socket_t *socket, sioc__http_conn_t *http,
                            sioc__http_request_t *request)
{
    sioc__eio3_payload_reader_t reader;
    sioc__eio3_payload_reader_init(&reader, request->body, request->body_length,
                                   is_binary_content(request));
    sioc__eio_packet_t packet;
    int rc = 0;
    while (socket->state == EIO_SOCKET_OPEN &&
           (rc = sioc__eio3_payload_reader_next(&reader, &packet)) > 0)
        sioc__eio_socket_on_packet(socket, &packet);
    if (socket->state == EIO_SOCKET_OPEN && rc < 0)
        sioc__eio_socket_close(socket, "parse error");
    answer_ok(sioc__eio_socket_server(socket), http, request);
}

static void receive_post(sioc_eio_socket_t *socket, sioc__http_conn_t *http,
                         sioc__http_request_t *request)
{
    sioc_eio_server_t *server = sioc__eio_socket_server(socket);
    if (socket->state == EIO_SOCKET_DRAINING) {
        /* Closed already; whatever the client sends now (its own close, typically) ends it. */
        sioc__eio_socket_close(socket, "transport close");
        answer_ok(server, http, request);
        return;
    }
    if (request->body_length > socket->limits->max_payload) {
        /* The HTTP layer's cap is the largest of the sessions' (a reload may have lowered it for
         * new ones): this session's is the maxPayload of its handshake. As the HTTP layer
         * answers a body past its cap; the session stays, as in Node. */
        static const char text[] = "Payload Too Large";
        sioc__http_set_close(http);
        sioc__http_respond(http, 413, "Content-Type: text/plain; charset=UTF-8\r\n", text,
                           sizeof(text) - 1);
        return;
    }
    if (socket->protocol == 3) {
        receive_post_v3(socket, http, request);
        return;
    }
    if (is_binary_content(request)) {
        /* engine.io >= 6.6.7 refuses binary POST bodies for protocol 4 and drops the session. */
        sioc__http_respond(http, 400, NULL, NULL, 0);
        sioc__eio_socket_close(socket, "transport error");
        return;
    }
    /* The body is text; binary packets inside it are base64, so one check covers it all. */
    int valid = sioc__utf8_is_valid(request->body, request->body_length);
    sioc__eio_payload_reader_t reader;
    sioc__eio_payload_reader_init(&reader, request->body, valid ? request->body_length : 0);
    sioc__eio_packet_t packet;
    int rc = 0;
    while (socket->state == EIO_SOCKET_OPEN &&
           (rc = sioc__eio_payload_reader_next(&reader, &packet)) > 0)
        sioc__eio_socket_on_packet(socket, &packet);
    if (socket->state == EIO_SOCKET_OPEN && rc < 0)
        sioc__eio_socket_close(socket, "parse error");
    /* Node answers "ok" even when the payload closed the session. */
    answer_ok(server, http, request);
}

void sioc__eio_polling_handle(sioc_eio_server_t *server, sioc__http_conn_t *http,
                              sioc__http_request_t *request, sioc_eio_socket_t *socket)
{
    if (request->method == HTTP_GET)
        hold_get(socket, http, request);
    else if (request->method == HTTP_POST)
        receive_post(socket, http, request);
    else
        sioc__http_respond(http, 500, NULL, NULL, 0);
}

void sioc__eio_polling_abort(sioc__http_conn_t *http)
{
    sioc_eio_socket_t *socket = sioc__http_get_user(http);
    if (socket == NULL || socket->polling == NULL || socket->polling->held_get != http)
        return;
    socket->polling->held_get = NULL;
    socket->polling->held_request = NULL;
    /* Node: "poll connection closed prematurely" is a transport error. */
    sioc__eio_socket_close(socket, "transport error");
}
