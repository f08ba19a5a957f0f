/* Fuzzes the Engine.IO WebSocket path end to end on a real loop over loopback TCP: after a
 * fixed upgrade request the input is what the client sends (frames, floods of pings, junk),
 * with a 16 KiB cap on unsent bytes; the first byte says whether the client reads what comes
 * back (bit 0: a client that never reads exercises dropped pongs, backpressure and the
 * shutdown deadline). The server echoes every message; then it is closed with a 50 ms bound,
 * and the loop must end with every handle released. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sioc.h>

typedef struct harness_s {
    uv_loop_t loop;
    sioc_eio_server_t *server;
    uv_tcp_t client;
    uv_connect_t connect;
    uv_shutdown_t shutdown;
    uv_timer_t guard;
    const uint8_t *input;
    size_t input_length;
    int reads;
    int closing;
} harness_t;

static const char upgrade[] = "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n"
                              "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

static void require(int condition)
{
    if (!condition)
        abort();
}

static void on_guard(uv_timer_t *timer);

static void on_message(sioc_eio_socket_t *socket, const uint8_t *bytes, size_t length, int binary,
                       void *data)
{
    sioc_eio_socket_send(socket, bytes, length, binary);
}

/* The session ends once the server has read the client's half-close (or refused the input): the
 * run ends then, not at the guard, so that a run takes milliseconds and libFuzzer can iterate. */
static void on_close(sioc_eio_socket_t *socket, const char *reason, void *data)
{
    harness_t *harness = data;
    if (!harness->closing)
        uv_timer_start(&harness->guard, on_guard, 0, 0);
}

static void on_server_closed(void *data)
{
    harness_t *harness = data;
    uv_close((uv_handle_t *)&harness->guard, NULL);
}

static void keep_alive(uv_timer_t *timer) {}

static void close_all(harness_t *harness)
{
    if (harness->closing)
        return;
    harness->closing = 1;
    uv_close((uv_handle_t *)&harness->client, NULL);
    sioc_eio_server_close(harness->server, on_server_closed, harness);
    /* The shutdown bound does not keep a loop running (a daemon just exits): the guard does,
     * until the server is gone. */
    uv_timer_start(&harness->guard, keep_alive, 10000, 0);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    static char buffer[65536];
    *buf = uv_buf_init(buffer, sizeof(buffer));
}

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0)
        close_all(stream->data);
}

static void on_written(uv_write_t *request, int status)
{
    free(request);
}

static void on_connected(uv_connect_t *connect, int status)
{
    harness_t *harness = connect->data;
    if (status != 0) {
        close_all(harness);
        return;
    }
    uv_buf_t bufs[2] = {uv_buf_init((char *)upgrade, sizeof(upgrade) - 1),
                        uv_buf_init((char *)harness->input, (unsigned)harness->input_length)};
    uv_write_t *request = malloc(sizeof(*request));
    require(request != NULL);
    if (uv_write(request, (uv_stream_t *)&harness->client, bufs, 2, on_written) != 0)
        free(request);
    uv_shutdown(&harness->shutdown, (uv_stream_t *)&harness->client, NULL);
    if (harness->reads)
        uv_read_start((uv_stream_t *)&harness->client, on_alloc, on_client_read);
}

static void on_guard(uv_timer_t *timer)
{
    close_all(timer->data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    harness_t *harness = calloc(1, sizeof(*harness));
    require(harness != NULL && uv_loop_init(&harness->loop) == 0);
    harness->reads = data[0] & 1;
    harness->input = data + 1;
    harness->input_length = size - 1;
    sioc_eio_options_t options;
    sioc_eio_options_init(&options);
    options.max_payload = 4096;
    options.max_buffered_bytes = 16 * 1024;
    options.shutdown_timeout_ms = 50;
    options.max_websocket_fragments = 16;
    sioc_eio_callbacks_t callbacks = {.on_message = on_message, .on_close = on_close};
    require(sioc_eio_server_new(&harness->loop, &options, &callbacks, harness, &harness->server) ==
            0);
    require(sioc_eio_server_listen(harness->server, "127.0.0.1", 0) == 0);
    uv_timer_init(&harness->loop, &harness->guard);
    harness->guard.data = harness;
    uv_timer_start(&harness->guard, on_guard, 200, 0);
    uv_tcp_init(&harness->loop, &harness->client);
    harness->client.data = harness;
    harness->connect.data = harness;
    struct sockaddr_in address;
    uv_ip4_addr("127.0.0.1", sioc_eio_server_port(harness->server), &address);
    require(uv_tcp_connect(&harness->connect, &harness->client, (struct sockaddr *)&address,
                           on_connected) == 0);
    uv_run(&harness->loop, UV_RUN_DEFAULT);
    require(uv_loop_close(&harness->loop) == 0);
    free(harness);
    return 0;
}
