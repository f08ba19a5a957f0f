/* The public HTTP server (sioc_web_*): the transport's HTTP server with one handler, and
 * requests that may be answered later (after a database write) even if the client left. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sioc.h"
#include "transport/http.h"

/* sioc_web_server_close drops the connections still lingering after this. */
#define WEB_SHUTDOWN_TIMEOUT_MS 5000

struct sioc_web_server_s {
    sioc__io_t io;
    sioc__http_server_t http;
    uv_timer_t shutdown_timer;
    sioc__http_limits_t limits;
    sioc_web_handler_cb handler;
    void *data;
    void (*closed_cb)(void *data);
    void *closed_data;
};

struct sioc_web_request_s {
    sioc__http_conn_t *http;       /* NULL once the client went away */
    sioc__http_request_t *request; /* lives as long as http does */
    char *path;
    /* Copies, for a request answered after its connection closed. */
    sioc__http_request_t detached;
};

static void on_request(sioc__http_conn_t *http, sioc__http_request_t *request, uint8_t *leftover,
                       size_t leftover_length)
{
    sioc_web_server_t *server = sioc__http_get_server(http)->data;
    if (request->upgrade) {
        sioc__http_set_close(http);
        sioc__http_respond(http, 400, "Content-Type: text/plain\r\n", "Bad Request", 11);
        return;
    }
    sioc_web_request_t *web = calloc(1, sizeof(*web));
    if (web == NULL || (web->path = strndup(request->path, request->path_length)) == NULL) {
        free(web);
        sioc__http_respond(http, 500, NULL, NULL, 0);
        return;
    }
    web->http = http;
    web->request = request;
    sioc__http_set_user(http, web);
    server->handler(web, server->data);
}

static void on_abort(sioc__http_conn_t *http, sioc__http_request_t *request)
{
    sioc_web_request_t *web = sioc__http_get_user(http);
    if (web == NULL)
        return;
    /* Keep what the accessors may still be asked for; the connection's copy goes now. */
    web->detached.method = request->method;
    web->detached.url = "";
    web->detached.query = "";
    memcpy(web->detached.remote_address, request->remote_address,
           sizeof(web->detached.remote_address));
    web->request = &web->detached;
    web->http = NULL;
}

static const sioc__http_handler_t handler = {on_request, on_abort};

int sioc_web_server_new(uv_loop_t *loop, size_t max_body_size, sioc_web_handler_cb callback,
                        void *data, sioc_web_server_t **out)
{
    sioc_web_server_t *server = calloc(1, sizeof(*server));
    if (server == NULL)
        return SIOC_ENOMEM;
    server->handler = callback;
    server->data = data;
    sioc__http_limits_init(&server->limits);
    server->limits.max_body_size = max_body_size;
    int rc = sioc__io_init(&server->io, loop);
    if (rc == 0)
        rc = sioc__http_server_init(&server->http, &server->io, &server->limits, &handler, server);
    if (rc == 0)
        rc = uv_timer_init(loop, &server->shutdown_timer);
    server->shutdown_timer.data = server;
    if (rc != 0) {
        /* Only a broken loop fails here; its handles cannot be unwound synchronously. */
        return rc;
    }
    *out = server;
    return 0;
}

int sioc_web_server_listen(sioc_web_server_t *server, const char *host, int port)
{
    return sioc__http_server_listen(&server->http, host, port);
}

void sioc_web_server_set_tls(sioc_web_server_t *server, SSL_CTX *ctx)
{
    sioc__http_server_set_tls(&server->http, ctx);
}

int sioc_web_server_port(sioc_web_server_t *server)
{
    return sioc__http_server_port(&server->http);
}

static void on_io_closed(sioc__io_t *io)
{
    sioc_web_server_t *server = (sioc_web_server_t *)((char *)io - offsetof(sioc_web_server_t, io));
    void (*closed_cb)(void *) = server->closed_cb;
    void *closed_data = server->closed_data;
    free(server);
    if (closed_cb != NULL)
        closed_cb(closed_data);
}

static void on_timer_closed(uv_handle_t *handle)
{
    sioc_web_server_t *server = handle->data;
    sioc__io_close(&server->io, on_io_closed);
}

static void on_http_closed(sioc__http_server_t *http)
{
    sioc_web_server_t *server = http->data;
    uv_close((uv_handle_t *)&server->shutdown_timer, on_timer_closed);
}

static void on_shutdown_deadline(uv_timer_t *timer)
{
    sioc_web_server_t *server = timer->data;
    sioc__http_server_abort_connections(&server->http);
}

void sioc_web_server_close(sioc_web_server_t *server, void (*closed_cb)(void *data), void *data)
{
    server->closed_cb = closed_cb;
    server->closed_data = data;
    uv_timer_start(&server->shutdown_timer, on_shutdown_deadline, WEB_SHUTDOWN_TIMEOUT_MS, 0);
    uv_unref((uv_handle_t *)&server->shutdown_timer); /* a bound, not a reason to wait */
    sioc__http_server_close(&server->http, on_http_closed);
}

const char *sioc_web_request_method(const sioc_web_request_t *request)
{
    return http_method_str((enum http_method)request->request->method);
}

const char *sioc_web_request_path(const sioc_web_request_t *request)
{
    return request->path;
}

long sioc_web_request_query(const sioc_web_request_t *request, const char *name, char *out,
                            size_t size)
{
    return sioc__http_query_get(request->request->query, request->request->query_length, name, out,
                                size);
}

const char *sioc_web_request_header(const sioc_web_request_t *request, const char *name,
                                    size_t *length)
{
    const sioc__http_header_t *header = sioc__http_request_header(request->request, name);
    if (header == NULL)
        return NULL;
    if (length != NULL)
        *length = header->value_length;
    return header->value;
}

const uint8_t *sioc_web_request_body(const sioc_web_request_t *request, size_t *length)
{
    *length = request->request->body_length;
    return request->request->body;
}

const char *sioc_web_request_remote_address(const sioc_web_request_t *request)
{
    return request->request->remote_address;
}

void sioc_web_respond_with_headers(sioc_web_request_t *request, int status,
                                   const char *content_type, const char *headers, const void *body,
                                   size_t length)
{
    if (request->http != NULL) {
        char lines[2048];
        snprintf(lines, sizeof(lines), "%s%s%s%s", content_type ? "Content-Type: " : "",
                 content_type ? content_type : "", content_type ? "\r\n" : "",
                 headers ? headers : "");
        sioc__http_set_user(request->http, NULL);
        sioc__http_respond(request->http, status, lines, body, length);
    }
    free(request->path);
    free(request);
}

void sioc_web_respond(sioc_web_request_t *request, int status, const char *content_type,
                      const void *body, size_t length)
{
    sioc_web_respond_with_headers(request, status, content_type, NULL, body, length);
}
