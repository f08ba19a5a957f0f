/* WebSocket transport: RFC 6455 handshake, frames to Engine.IO packets, the upgrade probe
 * ("2probe" / "3probe" / "5"), and the framing of outgoing packets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/utf8.h"
#include "engineio/eio3_parser.h"
#include "engineio/eio_internal.h"

static void on_websocket_read(sioc__conn_t *conn, uint8_t *data, size_t length);
static int compresses(const sioc__eio_websocket_t *websocket, size_t length);
static void on_websocket_closed(sioc__conn_t *conn);
static const sioc__conn_handler_t websocket_handler = {on_websocket_read, on_websocket_closed,
                                                       NULL};

static sioc__conn_t *conn_of(const sioc__eio_websocket_t *websocket)
{
    return sioc__eio_websocket_conn(websocket);
}

static sioc_eio_server_t *server_of(const sioc__eio_websocket_t *websocket)
{
    return sioc__eio_websocket_server(websocket);
}

/* ---- handshake ----------------------------------------------------------------------------- */

/* Every header called name, joined with ", " as Node joins repeated headers and without the
 * trailing white space its parser drops. Returns 1 with *joined (malloc'ed) and *length, 0
 * when there is none, -1 when out of memory. */
static int join_headers(const sioc__http_request_t *request, const char *name, char **joined,
                        size_t *length)
{
    size_t total = 0;
    for (uint32_t i = 0; i < request->header_count; i++) {
        if (strcasecmp(request->headers[i].name, name) == 0)
            total += request->headers[i].value_length + 2;
    }
    if (total == 0)
        return 0;
    char *out = malloc(total);
    if (out == NULL)
        return -1;
    size_t used = 0;
    for (uint32_t i = 0; i < request->header_count; i++) {
        const sioc__http_header_t *header = &request->headers[i];
        if (strcasecmp(header->name, name) != 0)
            continue;
        size_t value_length = header->value_length;
        while (value_length > 0 &&
               (header->value[value_length - 1] == ' ' || header->value[value_length - 1] == '\t'))
            value_length--;
        if (used > 0) {
            memcpy(out + used, ", ", 2);
            used += 2;
        }
        memcpy(out + used, header->value, value_length);
        used += value_length;
    }
    *joined = out;
    *length = used;
    return 1;
}

/* Sec-WebSocket-Protocol as ws parses it. Returns 0 with *protocol the one to answer
 * (malloc'ed; NULL when none was offered), or -1 to refuse. */
static int select_protocol(const sioc__http_request_t *request, char **protocol)
{
    *protocol = NULL;
    char *joined;
    size_t length;
    int found = join_headers(request, "sec-websocket-protocol", &joined, &length);
    if (found <= 0)
        return found;
    const char *first;
    size_t first_length;
    int rc = sioc__ws_parse_protocols(joined, length, &first, &first_length);
    if (rc == 0)
        *protocol = strndup(first, first_length);
    free(joined);
    return rc == 0 && *protocol != NULL ? 0 : -1;
}

/* Sec-WebSocket-Extensions, read only when perMessageDeflate is on (ws ignores the header
 * otherwise). Returns 0 (agreement->answer[0] is NUL when nothing was agreed) or -1 to refuse. */
static int select_extensions(const sioc_eio_server_t *server, const sioc__http_request_t *request,
                             sioc__ws_deflate_agreement_t *agreement)
{
    agreement->answer[0] = '\0';
    agreement->server_window_bits = 0;
    if (!server->options.per_message_deflate)
        return 0;
    char *joined;
    size_t length;
    int found = join_headers(request, "sec-websocket-extensions", &joined, &length);
    if (found <= 0)
        return found;
    int rc = sioc__ws_deflate_negotiate(joined, length, agreement);
    free(joined);
    if (rc == 0)
        agreement->answer[0] = '\0';
    return rc < 0 ? -1 : 0;
}

static const char *check_handshake(const sioc_eio_server_t *server,
                                   const sioc__http_request_t *request, char *accept,
                                   char **protocol, sioc__ws_deflate_agreement_t *agreement)
{
    if (request->method != HTTP_GET)
        return "Invalid HTTP method";
    const sioc__http_header_t *version =
        sioc__http_request_header(request, "sec-websocket-version");
    if (version == NULL || version->value_length != 2 || memcmp(version->value, "13", 2) != 0)
        return "Missing or invalid Sec-WebSocket-Version header";
    const sioc__http_header_t *key = sioc__http_request_header(request, "sec-websocket-key");
    if (key == NULL || sioc__ws_accept_key(key->value, key->value_length, accept) != 0)
        return "Missing or invalid Sec-WebSocket-Key header";
    /* Engine.IO uses no subprotocol, but ws answers the first one offered, and refuses a
     * malformed list; then the extensions, in ws's order. */
    if (select_protocol(request, protocol) != 0)
        return "Invalid Sec-WebSocket-Protocol header";
    if (select_extensions(server, request, agreement) != 0) {
        free(*protocol);
        *protocol = NULL;
        return "Invalid or unacceptable Sec-WebSocket-Extensions header";
    }
    return NULL;
}

static void refuse_handshake(sioc__http_conn_t *http, const char *message)
{
    sioc__http_set_close(http);
    sioc__http_respond(http, 400, "Content-Type: text/html\r\n", message, strlen(message));
}

/* Answers 101 and builds the WebSocket state in the connection's room (eio_server.c sizes it);
 * the HTTP state stays until take_over() so that on_connection can still read the request. */
static sioc__eio_websocket_t *accept_websocket(sioc_eio_server_t *server, sioc__http_conn_t *http,
                                               const char *accept, const char *protocol,
                                               const sioc__ws_deflate_agreement_t *agreement)
{
    sioc__conn_t *conn = sioc__http_get_conn(http);
    sioc__eio_websocket_t *websocket = sioc__conn_room(conn);
    memset(websocket, 0, sizeof(*websocket));
    /* The protocol is a token from a head of at most max_header_size bytes. */
    int deflate = agreement->answer[0] != '\0';
    size_t size = 160 + (protocol ? strlen(protocol) + 32 : 0) + sizeof(agreement->answer) + 32;
    /* On the stack unless a long protocol needs more: a block allocated and freed between the
     * live ones of each handshake is a free chunk among them once the clients are in. */
    char small[512];
    char *response = size <= sizeof(small) ? small : malloc(size);
    if (response == NULL)
        return NULL;
    int length =
        snprintf(response, size,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s%s%s%s\r\n",
                 accept, protocol ? "Sec-WebSocket-Protocol: " : "", protocol ? protocol : "",
                 protocol ? "\r\n" : "", deflate ? "Sec-WebSocket-Extensions: " : "",
                 agreement->answer, deflate ? "\r\n" : "");
    sioc__conn_write_copy(conn, response, (size_t)length);
    if (response != small)
        free(response);
    sioc__ws_limits_t limits = {
        .max_message_size = server->limits->max_payload,
        .max_fragments = server->options.max_websocket_fragments,
        .allow_rsv1 = deflate,
    };
    websocket->deflate_bits = deflate ? agreement->server_window_bits : 0;
    sioc__ws_decoder_init(&websocket->decoder, &limits);
    websocket->next = server->websockets;
    if (server->websockets != NULL)
        server->websockets->previous = websocket;
    server->websockets = websocket;
    return websocket;
}

static void take_over(sioc__http_conn_t *http, sioc__eio_websocket_t *websocket)
{
    sioc__conn_t *conn = sioc__http_detach(http);
    conn->handler = &websocket_handler;
    conn->owner = websocket;
}

/* The open packet, framed, copied behind the 101 answer in the connection's buffer of small
 * copies (connection.h) when it leaves uncompressed: no text or buffer of its own to allocate
 * and free while the handshake's live blocks are made. Returns 0 or -1 (out of memory). */
static int send_open(sioc__eio_websocket_t *websocket, sioc_eio_socket_t *socket)
{
    const sioc__eio_limits_t *limits = socket->limits;
    uint8_t frame[SIOC_WS_MAX_HEADER_LENGTH + 256];
    char *text = (char *)frame + SIOC_WS_MAX_HEADER_LENGTH;
    size_t size = sizeof(frame) - SIOC_WS_MAX_HEADER_LENGTH;
    size_t length = sioc__eio_encode_open_into(text, size, socket->id, 0, limits->ping_interval_ms,
                                               limits->ping_timeout_ms, limits->max_payload);
    if (length > 0 && length < size && !compresses(websocket, length)) {
        uint8_t header[SIOC_WS_MAX_HEADER_LENGTH];
        size_t header_length = sioc__ws_encode_header(header, 1, SIOC_WS_OPCODE_TEXT, length);
        memcpy(text - header_length, header, header_length);
        sioc__conn_write_copy(conn_of(websocket), text - header_length, header_length + length);
        return 0;
    }
    char *open = sioc__eio_encode_open(socket->id, 0, limits->ping_interval_ms,
                                       limits->ping_timeout_ms, limits->max_payload, &length);
    sioc__buffer_t *packet = open ? sioc__buffer_new_copy(open, length, 0) : NULL;
    free(open);
    if (packet == NULL)
        return -1;
    sioc__eio_websocket_send(websocket, packet);
    sioc__buffer_unref(packet);
    return 0;
}

static int open_websocket_session(sioc_eio_server_t *server, sioc__eio_websocket_t *websocket,
                                  const sioc__http_request_t *request)
{
    sioc_eio_socket_t *socket = sioc__eio_socket_new(server, SIOC_TRANSPORT_WEBSOCKET);
    if (socket == NULL)
        return -1;
    socket->protocol = (uint8_t)sioc__eio_request_protocol(request);
    socket->websocket = websocket;
    websocket->socket = socket;
    if (send_open(websocket, socket) != 0) {
        sioc__eio_socket_close(socket, "transport error");
        return -1;
    }
    sioc__eio_socket_start_heartbeat(socket);
    sioc__eio_server_notify_connection(server, socket, request);
    return 0;
}

static void start_probe(sioc_eio_socket_t *socket, sioc__eio_websocket_t *websocket)
{
    sioc_eio_server_t *server = sioc__eio_socket_server(socket);
    /* One upgrade per session: a second WebSocket (or one after the upgrade) is closed, as
     * Node's onWebSocket() does. */
    if (socket->transport == SIOC_TRANSPORT_WEBSOCKET || socket->polling->probe != NULL ||
        !server->options.allow_upgrades) {
        sioc__eio_websocket_close(websocket, 0, NULL);
        return;
    }
    websocket->is_probe = 1;
    websocket->socket = socket;
    websocket->decoder.limits.max_message_size = socket->limits->max_payload;
    socket->polling->probe = websocket;
    sioc__deadline_arm(&server->upgrade_timeout, &socket->polling->upgrade_deadline);
}

void sioc__eio_websocket_accept(sioc_eio_server_t *server, sioc__http_conn_t *http,
                                sioc__http_request_t *request, sioc_eio_socket_t *socket,
                                uint8_t *leftover, size_t leftover_length)
{
    char accept[SIOC_WS_ACCEPT_LENGTH + 1];
    char *protocol = NULL;
    sioc__ws_deflate_agreement_t agreement;
    const char *problem = check_handshake(server, request, accept, &protocol, &agreement);
    if (problem != NULL) {
        refuse_handshake(http, problem);
        return;
    }
    sioc__eio_websocket_t *websocket = accept_websocket(server, http, accept, protocol, &agreement);
    free(protocol);
    if (websocket == NULL) {
        refuse_handshake(http, "Server out of memory");
        return;
    }
    websocket->eio3 = sioc__eio_request_protocol(request) == 3;
    websocket->b64 = websocket->eio3 && sioc__eio_request_b64(request);
    if (socket == NULL) {
        if (open_websocket_session(server, websocket, request) != 0)
            sioc__eio_websocket_close(websocket, SIOC_WS_CLOSE_INTERNAL_ERROR, "");
    } else {
        start_probe(socket, websocket);
    }
    /* The request is freed here; nothing below may read it. */
    take_over(http, websocket);
    /* Bytes the client sent right after its handshake are WebSocket frames (CVE-2022-21676). */
    if (leftover_length > 0 && !websocket->close_sent)
        on_websocket_read(conn_of(websocket), leftover, leftover_length);
}

/* ---- sending ------------------------------------------------------------------------------- */

/* Whether a message of length bytes leaves compressed, as ws decides it (compress not false, at
 * least the threshold; no_context_takeover makes the threshold apply). */
static int compresses(const sioc__eio_websocket_t *websocket, size_t length)
{
    return websocket->deflate_bits > 8 &&
           length >= server_of(websocket)->options.per_message_deflate_threshold;
}

/* A server frame is never masked, so its header is the same for every recipient: it is written
 * once into the buffer's headroom, and header and payload leave as one slice. */
static void frame_once(sioc__buffer_t *packet, int compressed)
{
    if (packet->websocket_header_length != 0)
        return;
    uint8_t header[SIOC_WS_MAX_HEADER_LENGTH];
    int opcode = packet->binary ? SIOC_WS_OPCODE_BINARY : SIOC_WS_OPCODE_TEXT;
    size_t length = sioc__ws_encode_header(header, 1, opcode, packet->length);
    if (compressed)
        header[0] |= SIOC_WS_RSV1;
    memcpy(packet->data - length, header, length);
    packet->websocket_header_length = (uint8_t)length;
}

static int write_framed(sioc__eio_websocket_t *websocket, sioc__buffer_t *packet)
{
    size_t header_length = packet->websocket_header_length;
    return sioc__conn_write(conn_of(websocket), packet, packet->data - header_length,
                            packet->length + header_length);
}

/* The compressed frame of packet for this connection, as ws decides it (compress not false,
 * at least the threshold; no_context_takeover makes the threshold apply): a new reference, or
 * NULL to send it as it is. With the default window the compressed frame is kept on the
 * packet, so a broadcast is compressed once for all its recipients. */
static sioc__buffer_t *deflated_frame(sioc__eio_websocket_t *websocket, sioc__buffer_t *packet)
{
    sioc_eio_server_t *server = server_of(websocket);
    if (packet->no_compress || !compresses(websocket, packet->length))
        return NULL;
    int shared = websocket->deflate_bits == 15;
    if (shared && packet->deflated != NULL)
        return sioc__buffer_ref(packet->deflated);
    sioc__buffer_t *deflated = sioc__ws_zlib_deflate(&server->ws_zlib, websocket->deflate_bits,
                                                     packet->data, packet->length, packet->binary);
    if (deflated == NULL)
        return NULL;
    frame_once(deflated, 1);
    if (shared)
        packet->deflated = sioc__buffer_ref(deflated);
    return deflated;
}

/* EIO3 binary: a binary frame that starts with the message type byte, or with b64 the text
 * frame "b4" + base64 (Node's parser-v3 encodePacket). A new buffer, for this connection only. */
static sioc__buffer_t *v3_binary_packet(const sioc__eio_websocket_t *websocket,
                                        const sioc__buffer_t *packet)
{
    size_t length =
        websocket->b64 ? 2 + sioc__base64_encoded_length(packet->length) : 1 + packet->length;
    sioc__buffer_t *framed = sioc__buffer_new(length, !websocket->b64);
    if (framed == NULL)
        return NULL;
    framed->no_compress = packet->no_compress;
    if (websocket->b64) {
        memcpy(framed->data, "b4", 2);
        sioc__base64_encode(packet->data, packet->length, (char *)framed->data + 2);
    } else {
        framed->data[0] = SIOC_EIO_MESSAGE;
        if (packet->length > 0)
            memcpy(framed->data + 1, packet->data, packet->length);
    }
    return framed;
}

static int send_framed(sioc__eio_websocket_t *websocket, sioc__buffer_t *packet);

int sioc__eio_websocket_send(sioc__eio_websocket_t *websocket, sioc__buffer_t *packet)
{
    if (websocket->close_sent)
        return -1;
    if (websocket->eio3 && packet->binary) {
        sioc__buffer_t *framed = v3_binary_packet(websocket, packet);
        int rc = framed != NULL ? send_framed(websocket, framed) : -1;
        sioc__buffer_unref(framed);
        return rc;
    }
    return send_framed(websocket, packet);
}

static int send_framed(sioc__eio_websocket_t *websocket, sioc__buffer_t *packet)
{
    sioc__buffer_t *deflated = deflated_frame(websocket, packet);
    if (deflated != NULL) {
        int rc = write_framed(websocket, deflated);
        sioc__buffer_unref(deflated);
        return rc;
    }
    frame_once(packet, 0);
    return write_framed(websocket, packet);
}

/* A pong counts against the connection's cap like everything else and is the first thing to
 * go: a client that pings without reading gets no pongs past the cap (RFC 6455 §5.5.3 lets a
 * pong answer only the latest ping), and reading stops until it reads (connection.h). */
static void send_pong(sioc__eio_websocket_t *websocket, const uint8_t *payload, size_t length)
{
    uint8_t frame[SIOC_WS_MAX_HEADER_LENGTH + 125];
    size_t header_length = sioc__ws_encode_header(frame, 1, SIOC_WS_OPCODE_PONG, length);
    if (length > 0)
        memcpy(frame + header_length, payload, length);
    sioc__conn_write_droppable(conn_of(websocket), frame, header_length + length);
}

void sioc__eio_websocket_close(sioc__eio_websocket_t *websocket, uint16_t code, const char *reason)
{
    if (websocket->close_sent)
        return;
    websocket->close_sent = 1;
    uint8_t frame[SIOC_WS_MAX_CLOSE_FRAME_LENGTH];
    size_t length = sioc__ws_encode_close(frame, code, reason);
    sioc__conn_write_copy(conn_of(websocket), frame, length);
    sioc__conn_close(conn_of(websocket), 1);
}

void sioc__eio_websocket_close_all(sioc_eio_server_t *server)
{
    for (sioc__eio_websocket_t *websocket = server->websockets; websocket != NULL;
         websocket = websocket->next) {
        websocket->socket = NULL;
        sioc__eio_websocket_close(websocket, 0, NULL);
    }
}

/* ---- receiving ----------------------------------------------------------------------------- */

static void drop_probe(sioc_eio_socket_t *socket, sioc__eio_websocket_t *websocket)
{
    sioc__deadline_disarm(&socket->polling->upgrade_deadline);
    socket->polling->probe = NULL;
    socket->upgrading = 0;
    websocket->socket = NULL;
    sioc__eio_websocket_close(websocket, 0, NULL);
}

static void finish_upgrade(sioc_eio_socket_t *socket, sioc__eio_websocket_t *websocket)
{
    sioc_eio_server_t *server = sioc__eio_socket_server(socket);
    sioc__deadline_disarm(&socket->polling->upgrade_deadline);
    socket->polling->probe = NULL;
    socket->upgrading = 0;
    websocket->is_probe = 0;
    socket->websocket = websocket;
    socket->transport = SIOC_TRANSPORT_WEBSOCKET;
    /* Release the paused poll, then move what was queued for polling onto the WebSocket. */
    sioc__eio_polling_answer_now(socket, server->noop_packet);
    sioc__eio_polling_t *polling = socket->polling;
    for (uint32_t i = 0; i < polling->queue_length; i++) {
        sioc__eio_websocket_send(websocket, polling->queue[i]);
        sioc__buffer_unref(polling->queue[i]);
    }
    free(polling->queue);
    /* Polling is over for good (a polling request now gets a transport mismatch): the session
     * stops carrying its state. */
    free(polling);
    socket->polling = NULL;
    if (server->callbacks.on_upgrade != NULL)
        server->callbacks.on_upgrade(socket, server->data);
}

static void on_probe_packet(sioc_eio_socket_t *socket, sioc__eio_websocket_t *websocket,
                            const sioc__eio_packet_t *packet)
{
    if (packet->type == SIOC_EIO_PING && packet->length == 5 &&
        memcmp(packet->data, "probe", 5) == 0) {
        sioc__eio_websocket_send(websocket, sioc__eio_socket_server(socket)->probe_packet);
        socket->upgrading = 1;
        sioc__eio_polling_answer_now(socket, sioc__eio_socket_server(socket)->noop_packet);
    } else if (packet->type == SIOC_EIO_UPGRADE) {
        finish_upgrade(socket, websocket);
    } else {
        /* Anything else during the probe closes the new transport (Node's _maybeUpgrade). */
        drop_probe(socket, websocket);
    }
}

static void on_decoder_error(sioc__eio_websocket_t *websocket, const sioc__ws_event_t *event);

static void on_plain_message(sioc__eio_websocket_t *websocket, const sioc__ws_event_t *event);

/* A compressed message is inflated with the loop's stream, bounded by maxPayload as ws bounds
 * it: past it 1009, bad deflate data 1007 (ws's codes), then handled as if it came plain. */
static void on_message(sioc__eio_websocket_t *websocket, const sioc__ws_event_t *event)
{
    if (!event->compressed) {
        on_plain_message(websocket, event);
        return;
    }
    uint8_t *inflated;
    size_t length;
    int code =
        sioc__ws_zlib_inflate(&server_of(websocket)->ws_zlib, event->data, event->length,
                              websocket->decoder.limits.max_message_size, &inflated, &length);
    sioc__ws_event_t plain = *event;
    const char *reason = code == SIOC_WS_CLOSE_MESSAGE_TOO_BIG   ? "message too big"
                         : code == SIOC_WS_CLOSE_INVALID_PAYLOAD ? "invalid compressed data"
                                                                 : "out of memory";
    if (code == 0 && event->type == SIOC_WS_EVENT_TEXT && !sioc__utf8_is_valid(inflated, length)) {
        code = SIOC_WS_CLOSE_INVALID_PAYLOAD;
        reason = "invalid UTF-8 in text message";
    }
    if (code != 0) {
        free(inflated);
        plain.type = SIOC_WS_EVENT_ERROR;
        plain.close_code = (uint16_t)code;
        plain.error = reason;
        on_decoder_error(websocket, &plain);
        return;
    }
    plain.data = inflated != NULL ? inflated : (const uint8_t *)"";
    plain.length = length;
    plain.compressed = 0;
    on_plain_message(websocket, &plain);
    free(inflated);
}

/* EIO3 frames: a binary one starts with its type byte; a text one may be "b4" + base64
 * (decoded into *decoded, which the caller frees). Returns 0 or -1. */
static int decode_v3_frame(const sioc__ws_event_t *event, sioc__eio_packet_t *packet,
                           uint8_t **decoded)
{
    *decoded = NULL;
    if (event->type == SIOC_WS_EVENT_BINARY)
        return sioc__eio3_packet_decode_binary(event->data, event->length, packet);
    if (event->length == 0 || event->data[0] != 'b')
        return sioc__eio_packet_decode_text(event->data, event->length, packet);
    if (event->length < 2 || event->data[1] != '0' + SIOC_EIO_MESSAGE)
        return -1;
    *decoded = malloc(sioc__base64_decoded_max_length(event->length - 2) + 1);
    long length = *decoded != NULL ? sioc__base64_decode((const char *)event->data + 2,
                                                         event->length - 2, *decoded)
                                   : -1;
    if (length < 0)
        return -1;
    packet->type = SIOC_EIO_MESSAGE;
    packet->binary = 1;
    packet->data = *decoded;
    packet->length = (size_t)length;
    return 0;
}

static void on_packet_v3(sioc__eio_websocket_t *websocket, const sioc__ws_event_t *event);

static void on_plain_message(sioc__eio_websocket_t *websocket, const sioc__ws_event_t *event)
{
    sioc_eio_socket_t *socket = websocket->socket;
    if (socket == NULL)
        return;
    if (websocket->eio3) {
        on_packet_v3(websocket, event);
        return;
    }
    sioc__eio_packet_t packet;
    if (event->type == SIOC_WS_EVENT_BINARY) {
        packet.type = SIOC_EIO_MESSAGE;
        packet.binary = 1;
        packet.data = event->data;
        packet.length = event->length;
    } else if (sioc__eio_packet_decode_text(event->data, event->length, &packet) != 0) {
        if (websocket->is_probe)
            drop_probe(socket, websocket);
        else
            sioc__eio_socket_close(socket, "parse error");
        return;
    }
    if (websocket->is_probe) {
        if (packet.binary)
            drop_probe(socket, websocket);
        else
            on_probe_packet(socket, websocket, &packet);
        return;
    }
    sioc__eio_socket_on_packet(socket, &packet);
}

static void on_packet_v3(sioc__eio_websocket_t *websocket, const sioc__ws_event_t *event)
{
    sioc_eio_socket_t *socket = websocket->socket;
    sioc__eio_packet_t packet;
    uint8_t *decoded;
    if (decode_v3_frame(event, &packet, &decoded) != 0) {
        if (websocket->is_probe)
            drop_probe(socket, websocket);
        else
            sioc__eio_socket_close(socket, "parse error");
    } else if (websocket->is_probe) {
        if (packet.binary)
            drop_probe(socket, websocket);
        else
            on_probe_packet(socket, websocket, &packet);
    } else {
        sioc__eio_socket_on_packet(socket, &packet);
    }
    free(decoded);
}

/* The session learns that its transport is gone; a probe just goes away. */
static void lose_transport(sioc__eio_websocket_t *websocket, const char *reason)
{
    sioc_eio_socket_t *socket = websocket->socket;
    if (socket == NULL)
        return;
    websocket->socket = NULL;
    if (websocket->is_probe) {
        sioc__deadline_disarm(&socket->polling->upgrade_deadline);
        socket->polling->probe = NULL;
        socket->upgrading = 0;
    } else {
        socket->websocket = NULL;
        sioc__eio_socket_close(socket, reason);
    }
}

static void on_close_frame(sioc__eio_websocket_t *websocket, const sioc__ws_event_t *event)
{
    /* Echo the code only (RFC 6455 §5.5.1); never echo or invent reason bytes. */
    uint16_t code = event->close_code == SIOC_WS_CLOSE_NO_STATUS ? 0 : event->close_code;
    lose_transport(websocket, "transport close");
    sioc__eio_websocket_close(websocket, code, NULL);
}

static void on_decoder_error(sioc__eio_websocket_t *websocket, const sioc__ws_event_t *event)
{
    lose_transport(websocket, "transport error");
    sioc__eio_websocket_close(websocket, event->close_code, event->error);
}

static void on_websocket_read(sioc__conn_t *conn, uint8_t *data, size_t length)
{
    sioc__eio_websocket_t *websocket = conn->owner;
    size_t offset = 0;
    while (offset < length && !websocket->close_sent) {
        size_t used = 0;
        sioc__ws_event_t event;
        sioc__ws_decoder_feed(&websocket->decoder, data + offset, length - offset, &used, &event);
        offset += used;
        switch (event.type) {
        case SIOC_WS_EVENT_NEED_MORE:
            return;
        case SIOC_WS_EVENT_TEXT:
        case SIOC_WS_EVENT_BINARY:
            on_message(websocket, &event);
            break;
        case SIOC_WS_EVENT_PING:
            send_pong(websocket, event.data, event.length);
            break;
        case SIOC_WS_EVENT_PONG:
            break;
        case SIOC_WS_EVENT_CLOSE:
            on_close_frame(websocket, &event);
            return;
        case SIOC_WS_EVENT_ERROR:
            on_decoder_error(websocket, &event);
            return;
        }
    }
    /* An empty feed lets the decoder drop the copy of a message it just delivered, so an idle
     * connection keeps no message buffer. */
    if (!websocket->close_sent) {
        size_t used;
        sioc__ws_event_t event;
        sioc__ws_decoder_feed(&websocket->decoder, NULL, 0, &used, &event);
    }
}

static void on_websocket_closed(sioc__conn_t *conn)
{
    sioc__eio_websocket_t *websocket = conn->owner;
    sioc_eio_server_t *server = server_of(websocket);
    lose_transport(websocket, "transport close");
    if (websocket->previous != NULL)
        websocket->previous->next = websocket->next;
    else
        server->websockets = websocket->next;
    if (websocket->next != NULL)
        websocket->next->previous = websocket->previous;
    sioc__ws_decoder_free(&websocket->decoder);
    sioc__eio_server_maybe_finished(
        server); /* the connection's block, websocket in it, goes next */
}
