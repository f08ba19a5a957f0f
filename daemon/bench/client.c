/* One simulated Socket.IO client: TCP from a loopback source address, WebSocket or polling,
 * Engine.IO heartbeat, namespace CONNECT, events and acks (see client.h). */
#include "bench/client.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/run.h"

#define MAX_HEAD 8192
/* Nothing the benchmark exchanges comes near this; beyond it the server misbehaves. */
#define MAX_MESSAGE (4u << 20)
#define MAX_CARRY (8u << 20)
#define EINVAL_ERROR (-22)

typedef struct write_request_s {
    uv_write_t request;
    bench_client_t *client;
    size_t length;
    uint8_t bytes[];
} write_request_t;

static void fail(bench_client_t *client, const char *reason);

void bench_client_init(bench_client_t *client, bench_run_t *run, size_t index,
                       const bench_client_callbacks_t *callbacks)
{
    memset(client, 0, sizeof(*client));
    client->run = run;
    client->index = index;
    client->callbacks = callbacks;
    client->mask_seed = 2463534242u ^ (uint32_t)(index * 2654435761u);
    client->state = BENCH_CLIENT_IDLE;
}

int bench_client_is_open(const bench_client_t *client)
{
    return client->state != BENCH_CLIENT_IDLE && client->state != BENCH_CLIENT_CLOSING;
}

/* ---- writing ----------------------------------------------------------------------------------
 */

static void on_written(uv_write_t *request, int status)
{
    write_request_t *write = (write_request_t *)request;
    bench_client_t *client = write->client;
    client->pending_writes--;
    free(write);
    if (status < 0 && status != UV_ECANCELED)
        fail(client, "write failed");
}

/* Writes bytes now if the kernel takes them, else queues a copy behind earlier writes. */
static int write_bytes(bench_client_t *client, const void *bytes, size_t length)
{
    const uint8_t *data = bytes;
    if (client->pending_writes == 0) {
        uv_buf_t buffer = uv_buf_init((char *)data, (unsigned)length);
        int written = uv_try_write((uv_stream_t *)&client->tcp, &buffer, 1);
        if (written == (int)length)
            return 0;
        if (written < 0 && written != UV_EAGAIN)
            return written;
        if (written > 0) {
            data += written;
            length -= (size_t)written;
        }
    }
    write_request_t *write = malloc(sizeof(*write) + length);
    if (write == NULL)
        return UV_ENOMEM;
    write->client = client;
    write->length = length;
    memcpy(write->bytes, data, length);
    uv_buf_t buffer = uv_buf_init((char *)write->bytes, (unsigned)length);
    int rc = uv_write(&write->request, (uv_stream_t *)&client->tcp, &buffer, 1, on_written);
    if (rc != 0) {
        free(write);
        return rc;
    }
    client->pending_writes++;
    return 0;
}

static uint32_t next_mask(bench_client_t *client)
{
    uint32_t x = client->mask_seed;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    client->mask_seed = x;
    return x;
}

/* One Engine.IO text packet in one masked WebSocket frame. */
static int send_frame(bench_client_t *client, int opcode, const void *payload, size_t length)
{
    uint8_t small[2048];
    size_t size = length + BENCH_WS_MAX_CLIENT_HEADER;
    uint8_t *frame = size <= sizeof(small) ? small : malloc(size);
    if (frame == NULL)
        return UV_ENOMEM;
    size_t frame_length = bench_ws_encode(frame, size, opcode, payload, length, next_mask(client));
    int rc = write_bytes(client, frame, frame_length);
    if (frame != small)
        free(frame);
    return rc;
}

static int send_text(bench_client_t *client, const char *text, size_t length)
{
    return send_frame(client, BENCH_WS_OPCODE_TEXT, text, length);
}

/* A polling request built by build into a stack buffer (heap when larger). */
static int send_poll_post(bench_client_t *client, const char *body, size_t body_length)
{
    bench_run_t *run = client->run;
    size_t size = body_length + 512;
    char *request = malloc(size);
    if (request == NULL)
        return UV_ENOMEM;
    size_t length = bench_http_poll_post(request, size, run->host_header, run->options->path,
                                         client->sid, body, body_length);
    int rc = length == 0 ? EINVAL_ERROR : write_bytes(client, request, length);
    free(request);
    return rc;
}

static int send_poll_get(bench_client_t *client)
{
    bench_run_t *run = client->run;
    char request[512];
    size_t length = bench_http_poll_get(request, sizeof(request), run->host_header,
                                        run->options->path, client->sid);
    return length == 0 ? EINVAL_ERROR : write_bytes(client, request, length);
}

/* The namespace CONNECT, over whichever transport the client uses. */
static int send_connect(bench_client_t *client)
{
    char packet[4096];
    size_t length =
        bench_sio_connect(packet, sizeof(packet), client->run->options->nsp, client->auth);
    if (length == 0)
        return EINVAL_ERROR;
    client->state = client->polling ? BENCH_CLIENT_POLL_POST : BENCH_CLIENT_JOINING;
    return client->polling ? send_poll_post(client, packet, length)
                           : send_text(client, packet, length);
}

int bench_client_emit(bench_client_t *client, const char *event, const char *args, int with_ack,
                      int64_t *ack_id)
{
    if (client->state != BENCH_CLIENT_READY || client->polling)
        return EINVAL_ERROR;
    int64_t id = with_ack ? client->next_ack_id++ : -1;
    char small[2048];
    size_t size = strlen(event) + (args != NULL ? strlen(args) : 0) + 64 + 32;
    char *packet = size <= sizeof(small) ? small : malloc(size);
    if (packet == NULL)
        return UV_ENOMEM;
    size_t length = bench_sio_event(packet, size, client->run->options->nsp, id, event, args);
    int rc = length == 0 ? EINVAL_ERROR : send_text(client, packet, length);
    if (packet != small)
        free(packet);
    if (rc == 0 && ack_id != NULL)
        *ack_id = id;
    return rc;
}

/* ---- closing ----------------------------------------------------------------------------------
 */

static void on_handle_closed(uv_handle_t *handle)
{
    bench_client_t *client = handle->data;
    free(client->carry);
    client->carry = NULL;
    client->carry_length = client->carry_capacity = 0;
    free(client->sid);
    client->sid = NULL;
    client->state = BENCH_CLIENT_IDLE;
    if (client->callbacks->on_closed != NULL)
        client->callbacks->on_closed(client);
}

void bench_client_close(bench_client_t *client)
{
    if (client->state == BENCH_CLIENT_IDLE || client->state == BENCH_CLIENT_CLOSING)
        return;
    client->state = BENCH_CLIENT_CLOSING;
    uv_close((uv_handle_t *)&client->tcp, on_handle_closed);
}

static void fail(bench_client_t *client, const char *reason)
{
    if (!bench_client_is_open(client))
        return;
    int was_ready = client->state == BENCH_CLIENT_READY;
    bench_client_close(client);
    bench_run_client_failed(client->run, client, reason, was_ready);
    if (client->callbacks->on_failure != NULL)
        client->callbacks->on_failure(client, reason);
}

static void become_ready(bench_client_t *client)
{
    client->state = BENCH_CLIENT_READY;
    bench_run_client_ready(client->run, client);
    if (client->callbacks->on_ready != NULL && client->state == BENCH_CLIENT_READY)
        client->callbacks->on_ready(client);
}

/* ---- Engine.IO / Socket.IO packets ------------------------------------------------------------
 */

static void handle_socketio(bench_client_t *client, const bench_packet_t *packet)
{
    if (!bench_packet_in_namespace(packet, client->run->options->nsp))
        return;
    switch (packet->sio_type) {
    case BENCH_SIO_CONNECT:
        if (client->state == BENCH_CLIENT_JOINING || client->state == BENCH_CLIENT_POLL_GET)
            become_ready(client);
        break;
    case BENCH_SIO_CONNECT_ERROR:
        if (client->run->first_connect_error[0] == '\0')
            snprintf(client->run->first_connect_error, sizeof(client->run->first_connect_error),
                     "%.*s", (int)(packet->data_length < 150 ? packet->data_length : 150),
                     packet->data);
        fail(client, "connect_error from the server");
        break;
    case BENCH_SIO_DISCONNECT:
        fail(client, "disconnected by the server");
        break;
    case BENCH_SIO_EVENT:
        if (client->state == BENCH_CLIENT_READY && client->callbacks->on_event != NULL)
            client->callbacks->on_event(client, packet);
        break;
    case BENCH_SIO_ACK:
        if (client->state == BENCH_CLIENT_READY && client->callbacks->on_ack != NULL)
            client->callbacks->on_ack(client, packet);
        break;
    default:
        break;
    }
}

static void handle_packet(bench_client_t *client, const char *text, size_t length)
{
    bench_packet_t packet;
    if (bench_packet_parse(text, length, &packet) != 0) {
        fail(client, "unexpected packet");
        return;
    }
    switch (packet.eio_type) {
    case BENCH_EIO_OPEN:
        if (client->state != BENCH_CLIENT_OPENING)
            fail(client, "unexpected open packet");
        else if (send_connect(client) != 0)
            fail(client, "cannot send CONNECT");
        break;
    case BENCH_EIO_PING:
        if (!client->polling && send_text(client, "3", 1) != 0)
            fail(client, "cannot send pong");
        break;
    case BENCH_EIO_CLOSE:
        fail(client, "closed by the server");
        break;
    case BENCH_EIO_MESSAGE:
        handle_socketio(client, &packet);
        break;
    default:
        break;
    }
}

/* ---- WebSocket input ------------------------------------------------------------------------- */

static void handle_frame(bench_client_t *client, const bench_ws_frame_t *frame)
{
    switch (frame->opcode) {
    case BENCH_WS_OPCODE_TEXT:
        if (!frame->fin)
            fail(client, "fragmented message");
        else
            handle_packet(client, (const char *)frame->payload, (size_t)frame->length);
        break;
    case BENCH_WS_OPCODE_PING:
        if (send_frame(client, BENCH_WS_OPCODE_PONG, frame->payload, (size_t)frame->length) != 0)
            fail(client, "cannot send pong");
        break;
    case BENCH_WS_OPCODE_CLOSE:
        fail(client, "WebSocket closed by the server");
        break;
    case BENCH_WS_OPCODE_BINARY:
    case BENCH_WS_OPCODE_PONG:
        break;
    default:
        fail(client, "unexpected WebSocket frame");
        break;
    }
}

static long consume_frames(bench_client_t *client, const uint8_t *data, size_t length)
{
    size_t used = 0;
    while (used < length && bench_client_is_open(client)) {
        bench_ws_frame_t frame;
        long rc = bench_ws_decode(data + used, length - used, MAX_MESSAGE, &frame);
        if (rc < 0) {
            fail(client, "bad WebSocket frame");
            return -1;
        }
        if (rc == 0)
            break;
        used += (size_t)rc;
        handle_frame(client, &frame);
    }
    return (long)used;
}

/* ---- HTTP input ------------------------------------------------------------------------------ */

static long consume_upgrade(bench_client_t *client, const uint8_t *data, size_t length)
{
    bench_http_response_t response;
    long head = bench_http_response_parse((const char *)data, length, MAX_HEAD, &response);
    if (head < 0 || (head > 0 && response.status != 101)) {
        fail(client, "WebSocket upgrade refused");
        return -1;
    }
    if (head > 0)
        client->state = BENCH_CLIENT_OPENING;
    return head;
}

/* The polling handshake: "0{...,"sid":"..."}" (first packet of the payload). */
static void poll_opened(bench_client_t *client, const char *body, size_t length)
{
    const char *sid;
    size_t sid_length;
    if (length < 1 || body[0] != BENCH_EIO_OPEN ||
        bench_json_string(body + 1, length - 1, "sid", &sid, &sid_length) != 0 || sid_length == 0 ||
        sid_length > 64) {
        fail(client, "bad polling handshake");
        return;
    }
    client->sid = strndup(sid, sid_length);
    if (client->sid == NULL || send_connect(client) != 0)
        fail(client, "cannot send CONNECT");
}

/* A GET's payload: packets separated by \x1e; answers a ping, polls again until CONNECT. */
static void poll_payload(bench_client_t *client, const char *body, size_t length)
{
    const char *end = body + length;
    while (body < end && client->state == BENCH_CLIENT_POLL_GET) {
        const char *separator = memchr(body, 0x1e, (size_t)(end - body));
        size_t packet_length = (size_t)((separator != NULL ? separator : end) - body);
        if (packet_length != 1 || body[0] != BENCH_EIO_PING) /* too short-lived to answer */
            handle_packet(client, body, packet_length);
        body = separator != NULL ? separator + 1 : end;
    }
    if (client->state == BENCH_CLIENT_POLL_GET && send_poll_get(client) != 0)
        fail(client, "cannot poll");
}

/* A held session's GET answered: pings get a pong POST (its answer sends the GET again),
 * anything else is handled as on a WebSocket. */
static void poll_held_payload(bench_client_t *client, const char *body, size_t length)
{
    const char *end = body + length;
    int ping = 0;
    while (body < end && client->state == BENCH_CLIENT_READY) {
        const char *separator = memchr(body, 0x1e, (size_t)(end - body));
        size_t packet_length = (size_t)((separator != NULL ? separator : end) - body);
        if (packet_length == 1 && body[0] == BENCH_EIO_PING)
            ping = 1;
        else
            handle_packet(client, body, packet_length);
        body = separator != NULL ? separator + 1 : end;
    }
    if (client->state != BENCH_CLIENT_READY)
        return;
    client->poll_holding = ping ? 2 : 1;
    if ((ping ? send_poll_post(client, "3", 1) : send_poll_get(client)) != 0)
        fail(client, "cannot poll");
}

static void poll_held_response(bench_client_t *client, const char *body, size_t length)
{
    if (client->poll_holding == 1) {
        poll_held_payload(client, body, length);
        return;
    }
    if (client->poll_holding == 2) {
        client->poll_holding = 1;
        if (send_poll_get(client) != 0)
            fail(client, "cannot poll");
    }
}

static void poll_response(bench_client_t *client, const char *body, size_t length)
{
    switch (client->state) {
    case BENCH_CLIENT_POLL_OPEN:
        poll_opened(client, body, length);
        break;
    case BENCH_CLIENT_POLL_POST:
        client->state = BENCH_CLIENT_POLL_GET;
        if (send_poll_get(client) != 0)
            fail(client, "cannot poll");
        break;
    case BENCH_CLIENT_POLL_GET:
        poll_payload(client, body, length);
        break;
    case BENCH_CLIENT_POLL_LEAVING:
        bench_client_close(client);
        break;
    case BENCH_CLIENT_READY:
        poll_held_response(client, body, length);
        break;
    default:
        break;
    }
}

static long consume_poll(bench_client_t *client, const uint8_t *data, size_t length)
{
    bench_http_response_t response;
    long head = bench_http_response_parse((const char *)data, length, MAX_HEAD, &response);
    if (head == 0)
        return 0;
    if (head < 0 || response.status != 200 || response.chunked || response.content_length < 0 ||
        response.content_length > (long)MAX_MESSAGE) {
        fail(client, "bad polling response");
        return -1;
    }
    if (length - (size_t)head < (size_t)response.content_length)
        return 0;
    poll_response(client, (const char *)data + head, (size_t)response.content_length);
    return head + response.content_length;
}

/* Consumes what it can of data; the bytes used, or -1 once the client failed. */
static long consume(bench_client_t *client, const uint8_t *data, size_t length)
{
    size_t used = 0;
    while (used < length && bench_client_is_open(client)) {
        long rc;
        if (client->state == BENCH_CLIENT_UPGRADING)
            rc = consume_upgrade(client, data + used, length - used);
        else if (client->polling)
            rc = consume_poll(client, data + used, length - used);
        else
            rc = consume_frames(client, data + used, length - used);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        used += (size_t)rc;
    }
    return (long)used;
}

/* Keeps bytes (an incomplete item) for the next read; the carry is freed once empty. */
static int carry_set(bench_client_t *client, const uint8_t *bytes, size_t length)
{
    if (length > MAX_CARRY)
        return -1;
    if (length > client->carry_capacity) {
        size_t capacity = length < 4096 ? 4096 : length * 2;
        uint8_t *carry = malloc(capacity);
        if (carry == NULL)
            return -1;
        free(client->carry);
        client->carry = carry;
        client->carry_capacity = capacity;
    }
    memmove(client->carry, bytes, length);
    client->carry_length = length;
    return 0;
}

static void carry_clear(bench_client_t *client)
{
    free(client->carry);
    client->carry = NULL;
    client->carry_length = client->carry_capacity = 0;
}

/* Input that continues an incomplete item: appended to the carry and consumed from there. */
static void read_with_carry(bench_client_t *client, const uint8_t *data, size_t length)
{
    if (client->carry_length + length > MAX_CARRY) {
        fail(client, "message too large");
        return;
    }
    if (client->carry_length + length > client->carry_capacity) {
        size_t capacity = (client->carry_length + length) * 2;
        uint8_t *carry = realloc(client->carry, capacity);
        if (carry == NULL) {
            fail(client, "out of memory");
            return;
        }
        client->carry = carry;
        client->carry_capacity = capacity;
    }
    memcpy(client->carry + client->carry_length, data, length);
    client->carry_length += length;
    long used = consume(client, client->carry, client->carry_length);
    if (used < 0 || !bench_client_is_open(client))
        return;
    if ((size_t)used == client->carry_length)
        carry_clear(client);
    else if (carry_set(client, client->carry + used, client->carry_length - (size_t)used) != 0)
        fail(client, "message too large");
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer)
{
    bench_client_t *client = handle->data;
    size_t size;
    uint8_t *data = bench_run_read_buffer(client->run, &size);
    *buffer = uv_buf_init((char *)data, (unsigned)size);
}

static void on_read(uv_stream_t *stream, ssize_t count, const uv_buf_t *buffer)
{
    bench_client_t *client = stream->data;
    if (count < 0) {
        /* uv_strerror's texts are static: the reason names the error ("connection reset by
         * peer"), which tells a server's close apart from the generator's own trouble. */
        fail(client, count == UV_EOF ? "connection closed by the server" : uv_strerror((int)count));
        return;
    }
    if (count == 0 || !bench_client_is_open(client))
        return;
    /* One clock read per read: every packet in it arrived at that moment. */
    client->run->read_at = uv_hrtime();
    const uint8_t *data = (const uint8_t *)buffer->base;
    if (client->carry_length > 0) {
        read_with_carry(client, data, (size_t)count);
        return;
    }
    long used = consume(client, data, (size_t)count);
    if (used >= 0 && (size_t)used < (size_t)count && bench_client_is_open(client) &&
        carry_set(client, data + used, (size_t)count - (size_t)used) != 0)
        fail(client, "message too large");
}

/* ---- connecting ------------------------------------------------------------------------------ */

static int send_opening_request(bench_client_t *client)
{
    bench_run_t *run = client->run;
    if (client->polling) {
        client->state = BENCH_CLIENT_POLL_OPEN;
        return send_poll_get(client);
    }
    char request[1024];
    /* The key only has to be 16 bytes in base64; the server's answer is not checked. */
    size_t length = bench_http_upgrade_request(request, sizeof(request), run->host_header,
                                               run->options->path, "c2lvYy1iZW5jaC1rZXkxMg==");
    client->state = BENCH_CLIENT_UPGRADING;
    return length == 0 ? EINVAL_ERROR : write_bytes(client, request, length);
}

static void on_connected(uv_connect_t *request, int status)
{
    bench_client_t *client = request->data;
    if (client->state != BENCH_CLIENT_CONNECTING)
        return; /* closed meanwhile */
    if (status < 0) {
        fail(client, uv_strerror(status)); /* static, as every reason */
        return;
    }
    if (uv_read_start((uv_stream_t *)&client->tcp, on_alloc, on_read) != 0 ||
        send_opening_request(client) != 0)
        fail(client, "cannot start the session");
}

/* Binds to the slot's loopback source address with the port left to connect(), so that each
 * source address has the whole ephemeral range for every destination. */
static int bind_source(bench_client_t *client)
{
    struct sockaddr_in source;
    bench_run_source_address(client->run, client->index, &source);
    uv_os_fd_t fd;
    int rc = uv_fileno((uv_handle_t *)&client->tcp, &fd);
    if (rc != 0)
        return rc;
#ifdef IP_BIND_ADDRESS_NO_PORT
    int on = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof(on));
#endif
    return uv_tcp_bind(&client->tcp, (const struct sockaddr *)&source, 0);
}

int bench_client_connect(bench_client_t *client, const char *auth, int polling)
{
    if (client->state != BENCH_CLIENT_IDLE)
        return EINVAL_ERROR;
    int rc = uv_tcp_init_ex(&client->run->loop, &client->tcp, AF_INET);
    if (rc != 0)
        return rc;
    client->tcp.data = client;
    client->connect_request.data = client;
    client->auth = auth;
    client->polling = polling;
    client->next_ack_id = 0;
    client->pending_writes = 0;
    client->poll_holding = 0;
    client->started_at = uv_hrtime();
    client->state = BENCH_CLIENT_CONNECTING;
    rc = bind_source(client);
    if (rc == 0)
        rc = uv_tcp_nodelay(&client->tcp, 1);
    /* Two servers (a cluster): the odd room members go to the second one, the publisher (the
     * slot after the members) to the first. */
    const bench_options_t *options = client->run->options;
    const struct sockaddr_in *server = &client->run->server;
    if (options->second_port != 0 && client->index % 2 == 1 &&
        client->index < (size_t)(options->rooms * options->members))
        server = &client->run->second_server;
    if (rc == 0)
        rc = uv_tcp_connect(&client->connect_request, &client->tcp, (const struct sockaddr *)server,
                            on_connected);
    if (rc != 0)
        fail(client, "cannot connect"); /* reported like any failed connection */
    return 0;
}

int bench_client_poll_hold(bench_client_t *client)
{
    if (!client->polling || client->state != BENCH_CLIENT_READY || client->poll_holding != 0)
        return EINVAL_ERROR;
    client->poll_holding = 1;
    return send_poll_get(client);
}

int bench_client_poll_leave(bench_client_t *client)
{
    /* A pending GET would answer the POST's place on this one connection. */
    if (!client->polling || client->state != BENCH_CLIENT_READY || client->poll_holding != 0)
        return EINVAL_ERROR;
    client->state = BENCH_CLIENT_POLL_LEAVING;
    return send_poll_post(client, "1", 1);
}
