/* Fuzzes the HTTP connection glue (transport/http.c) on a real loop over loopback TCP: the input
 * is written by a client in reads cut by its first byte, and the server answers each request
 * at once, at the next turn of the loop ("/async"), after the client left (on_abort), or takes
 * an upgrade over. Pipelining, the per-turn bound, backpressure (a small cap on unsent bytes),
 * errors and closes all run through the same paths as in the servers; ASan checks the memory,
 * the harness that every request is finished once and that the loop ends. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/http.h"

#define MAX_HELD 64

typedef struct harness_s {
    uv_loop_t loop;
    sioc__io_t io;
    sioc__http_server_t server;
    sioc__http_limits_t limits;
    uv_tcp_t client;
    uv_connect_t connect;
    uv_timer_t guard;
    uv_idle_t answer_later;
    sioc__http_conn_t *held[MAX_HELD];
    int held_count;
    const uint8_t *input;
    size_t input_length;
    size_t split;
    sioc__conn_t *upgraded; /* a connection taken over from HTTP, until it closes */
    uv_shutdown_t shutdown;
    int closing;
    int http_closed;
    unsigned long requests;
    unsigned long received; /* bytes the client got back */
} harness_t;

static void on_io_closed(sioc__io_t *io);

static void require(int condition)
{
    if (!condition)
        abort();
}

static void answer(sioc__http_conn_t *http, sioc__http_request_t *request)
{
    /* An answer as long as the URL asks for, up to 64 KiB: enough to cross the small cap. */
    size_t length = request->url_length * 97 % 65536;
    uint8_t *body = calloc(1, length + 1);
    require(body != NULL);
    sioc__http_respond(http, 200, "Content-Type: text/plain\r\n", body, length);
    free(body);
}

static void on_answer_later(uv_idle_t *idle)
{
    harness_t *harness = idle->data;
    while (harness->held_count > 0) {
        sioc__http_conn_t *http = harness->held[--harness->held_count];
        sioc__http_request_t *request = sioc__http_get_user(http);
        sioc__http_set_user(http, NULL);
        answer(http, request);
    }
    uv_idle_stop(idle);
}

static void on_upgraded_read(sioc__conn_t *conn, uint8_t *data, size_t length)
{
    sioc__conn_write_copy(conn, data, length); /* echo, then let the client end it */
}

static void on_upgraded_close(sioc__conn_t *conn)
{
    harness_t *harness = conn->owner;
    harness->upgraded = NULL;
    if (harness->http_closed)
        sioc__io_close(&harness->io, on_io_closed);
}

static const sioc__conn_handler_t upgraded = {on_upgraded_read, on_upgraded_close, NULL};

static void on_request(sioc__http_conn_t *http, sioc__http_request_t *request, uint8_t *leftover,
                       size_t leftover_length)
{
    harness_t *harness = sioc__http_get_server(http)->data;
    harness->requests++;
    if (request->upgrade) {
        if (request->path_length > 4) {
            sioc__http_set_close(http);
            sioc__http_respond(http, 400, NULL, "no", 2);
            return;
        }
        sioc__conn_t *conn = sioc__http_get_conn(http);
        if (harness->upgraded != NULL || harness->closing) {
            sioc__http_set_close(http);
            sioc__http_respond(http, 400, NULL, "no", 2);
            return;
        }
        harness->upgraded = conn;
        sioc__conn_write_copy(conn, "HTTP/1.1 101 Switching Protocols\r\n\r\n", 36);
        sioc__http_detach(http);
        conn->handler = &upgraded;
        conn->owner = harness;
        if (leftover_length > 0)
            on_upgraded_read(conn, leftover, leftover_length);
        return;
    }
    if (request->path_length >= 6 && memcmp(request->path, "/async", 6) == 0 &&
        harness->held_count < MAX_HELD) {
        sioc__http_set_user(http, request);
        harness->held[harness->held_count++] = http;
        uv_idle_start(&harness->answer_later, on_answer_later);
        return;
    }
    answer(http, request);
}

static void on_abort(sioc__http_conn_t *http, sioc__http_request_t *request)
{
    harness_t *harness = sioc__http_get_server(http)->data;
    for (int i = 0; i < harness->held_count; i++) {
        if (harness->held[i] == http) {
            harness->held[i] = harness->held[--harness->held_count];
            return;
        }
    }
}

static const sioc__http_handler_t handler = {on_request, on_abort};

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    static char buffer[65536];
    *buf = uv_buf_init(buffer, sizeof(buffer));
}

static void close_all(harness_t *harness);

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    harness_t *harness = stream->data;
    if (nread > 0)
        harness->received += (unsigned long)nread;
    if (nread < 0)
        close_all(harness);
}

static void on_written(uv_write_t *request, int status)
{
    free(request);
}

static void write_piece(harness_t *harness, const uint8_t *bytes, size_t length)
{
    if (length == 0)
        return;
    uv_write_t *request = malloc(sizeof(*request));
    require(request != NULL);
    uv_buf_t buf = uv_buf_init((char *)bytes, (unsigned)length);
    if (uv_write(request, (uv_stream_t *)&harness->client, &buf, 1, on_written) != 0)
        free(request);
}

static void on_connected(uv_connect_t *connect, int status)
{
    harness_t *harness = connect->data;
    if (status != 0) {
        close_all(harness);
        return;
    }
    uv_tcp_nodelay(&harness->client, 1); /* no Nagle wait behind the server's delayed ACK */
    /* Two writes, so that the server sees the input in (at least) two reads. */
    write_piece(harness, harness->input, harness->split);
    write_piece(harness, harness->input + harness->split, harness->input_length - harness->split);
    /* Our FIN: the server answers what it read, then closes, and the run ends. */
    uv_shutdown(&harness->shutdown, (uv_stream_t *)&harness->client, NULL);
    uv_read_start((uv_stream_t *)&harness->client, on_alloc, on_client_read);
}

static void on_guard(uv_timer_t *timer)
{
    close_all(timer->data);
}

static void on_io_closed(sioc__io_t *io)
{
    harness_t *harness = (harness_t *)((char *)io - offsetof(harness_t, io));
    uv_close((uv_handle_t *)&harness->guard, NULL);
}

static void on_http_closed(sioc__http_server_t *server)
{
    harness_t *harness = server->data;
    harness->http_closed = 1;
    if (harness->upgraded == NULL)
        sioc__io_close(&harness->io, on_io_closed);
}

static void keep_alive(uv_timer_t *timer) {}

static void close_all(harness_t *harness)
{
    if (harness->closing)
        return;
    harness->closing = 1;
    uv_close((uv_handle_t *)&harness->client, NULL);
    uv_close((uv_handle_t *)&harness->answer_later, NULL);
    /* Lingering connections that stopped reading do not keep the loop running: the guard
     * does, until the io is gone. */
    uv_timer_start(&harness->guard, keep_alive, 10000, 0);
    harness->held_count = 0; /* their connections close with the server */
    if (harness->upgraded != NULL)
        sioc__conn_close(harness->upgraded, 0);
    sioc__http_server_close(&harness->server, on_http_closed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    harness_t *harness = calloc(1, sizeof(*harness));
    require(harness != NULL && uv_loop_init(&harness->loop) == 0);
    harness->input = data + 1;
    harness->input_length = size - 1;
    harness->split = data[0] % size;
    if (harness->split > harness->input_length)
        harness->split = harness->input_length;
    sioc__http_limits_init(&harness->limits);
    harness->limits.max_header_size = 2048;
    harness->limits.max_header_count = 16;
    harness->limits.max_body_size = 4096;
    harness->limits.request_timeout_ms = 1000;
    harness->limits.max_buffered_bytes = 16 * 1024; /* backpressure within a few answers */
    require(sioc__io_init(&harness->io, &harness->loop) == 0);
    require(sioc__http_server_init(&harness->server, &harness->io, &harness->limits, &handler,
                                   harness) == 0);
    require(sioc__http_server_listen(&harness->server, "127.0.0.1", 0) == 0);
    uv_idle_init(&harness->loop, &harness->answer_later);
    harness->answer_later.data = harness;
    uv_timer_init(&harness->loop, &harness->guard);
    harness->guard.data = harness;
    uv_timer_start(&harness->guard, on_guard, 300, 0);
    uv_tcp_init(&harness->loop, &harness->client);
    harness->client.data = harness;
    harness->connect.data = harness;
    struct sockaddr_in address;
    uv_ip4_addr("127.0.0.1", sioc__http_server_port(&harness->server), &address);
    require(uv_tcp_connect(&harness->connect, &harness->client, (struct sockaddr *)&address,
                           on_connected) == 0);
    uv_run(&harness->loop, UV_RUN_DEFAULT);
    /* Everything was closed: the loop has nothing left. */
    require(uv_loop_close(&harness->loop) == 0);
    if (getenv("SIOC_FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "%lu requests, %lu bytes back\n", harness->requests, harness->received);
    free(harness);
    return 0;
}
