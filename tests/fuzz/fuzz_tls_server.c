/* Fuzzes the server side of TLS (transport/tls.c and its glue in connection.c) on a real loop
 * over loopback TCP: the input is what a client sends, raw, in two writes cut by its first byte
 * (a ClientHello or garbage, then whatever records follow). The server is the HTTP server with
 * a TLS context (a key and self-signed certificate made once, in memory); it answers every
 * request it manages to decrypt. A bad record, a failed handshake, plaintext or a close at any
 * point must end in a clean close: ASan checks the memory, the harness that the loop ends with
 * nothing left open. The corpus starts from real ClientHellos (openssl s_client, TLS 1.2/1.3). */
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/http.h"

typedef struct harness_s {
    uv_loop_t loop;
    sioc__io_t io;
    sioc__http_server_t server;
    sioc__http_limits_t limits;
    uv_tcp_t client;
    uv_connect_t connect;
    uv_shutdown_t shutdown;
    uv_timer_t guard;
    const uint8_t *input;
    size_t input_length;
    size_t split;
    int closing;
} harness_t;

static void require(int condition)
{
    if (!condition)
        abort();
}

static SSL_CTX *context(void)
{
    static SSL_CTX *ctx;
    if (ctx != NULL)
        return ctx;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    require(key != NULL && cert != NULL);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(cert, name);
    require(X509_sign(cert, key, EVP_sha256()) > 0);
    ctx = SSL_CTX_new(TLS_server_method());
    require(ctx != NULL && SSL_CTX_use_certificate(ctx, cert) == 1 &&
            SSL_CTX_use_PrivateKey(ctx, key) == 1);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
}

static void on_request(sioc__http_conn_t *http, sioc__http_request_t *request, uint8_t *leftover,
                       size_t leftover_length)
{
    sioc__http_set_close(http);
    sioc__http_respond(http, request->upgrade ? 400 : 200, NULL, "ok", 2);
}

static const sioc__http_handler_t handler = {on_request, NULL};

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    static char buffer[65536];
    *buf = uv_buf_init(buffer, sizeof(buffer));
}

static void close_all(harness_t *harness);

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0)
        close_all(stream->data);
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
    write_piece(harness, harness->input, harness->split);
    write_piece(harness, harness->input + harness->split, harness->input_length - harness->split);
    /* Our FIN: the server ends the connection its way, and the run ends. */
    uv_shutdown(&harness->shutdown, (uv_stream_t *)&harness->client, NULL);
    uv_read_start((uv_stream_t *)&harness->client, on_alloc, on_client_read);
}

static void on_io_closed(sioc__io_t *io)
{
    harness_t *harness = (harness_t *)((char *)io - offsetof(harness_t, io));
    uv_close((uv_handle_t *)&harness->guard, NULL);
}

static void on_http_closed(sioc__http_server_t *server)
{
    harness_t *harness = server->data;
    sioc__io_close(&harness->io, on_io_closed);
}

static void on_guard(uv_timer_t *timer)
{
    close_all(timer->data);
}

static void keep_alive(uv_timer_t *timer) {}

static void close_all(harness_t *harness)
{
    if (harness->closing)
        return;
    harness->closing = 1;
    uv_close((uv_handle_t *)&harness->client, NULL);
    uv_timer_start(&harness->guard, keep_alive, 10000, 0); /* lingering closes end before */
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
    harness->limits.request_timeout_ms = 1000;
    harness->limits.max_buffered_bytes = 16 * 1024;
    require(sioc__io_init(&harness->io, &harness->loop) == 0);
    require(sioc__http_server_init(&harness->server, &harness->io, &harness->limits, &handler,
                                   harness) == 0);
    sioc__http_server_set_tls(&harness->server, context());
    require(sioc__http_server_listen(&harness->server, "127.0.0.1", 0) == 0);
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
    require(uv_loop_close(&harness->loop) == 0);
    free(harness);
    return 0;
}
