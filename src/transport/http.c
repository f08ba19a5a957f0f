#include "transport/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Offsets into the head arena while parsing: the arena may move as it grows. */
struct sioc__http_conn_s {
    sioc__conn_t *conn;
    sioc__http_server_t *server;
    sioc__http_request_parser_t parser;
    uint8_t *pending; /* input that arrived while a request was outstanding */
    size_t pending_length;
    sioc__deadline_t timeout;
    void *user;
    sioc__http_conn_t *previous;
    sioc__http_conn_t *next;
    uint8_t in_request; /* delivered to the handler, not yet finished */
    uint8_t close_after_response;
    uint8_t head_written;
};

static void on_conn_read(sioc__conn_t *conn, uint8_t *data, size_t length);
static void on_conn_close(sioc__conn_t *conn);
static const sioc__conn_handler_t http_conn_handler = {on_conn_read, on_conn_close};

/* ---- connection life ------------------------------------------------------------------- */

static void respond_error(sioc__http_conn_t *http, int status)
{
    const char *text = sioc__http_status_text(status);
    sioc__http_set_close(http);
    if (!http->head_written)
        sioc__http_respond(http, status, "Content-Type: text/plain; charset=UTF-8\r\n", text,
                           strlen(text));
    else
        sioc__conn_close(http->conn, 1);
}

static int keep_pending(sioc__http_conn_t *http, const uint8_t *data, size_t length)
{
    uint8_t *pending = malloc(length);
    if (pending == NULL)
        return -1;
    memcpy(pending, data, length);
    free(http->pending);
    http->pending = pending;
    http->pending_length = length;
    /* One request at a time: stop reading until this one is answered. */
    sioc__conn_pause_reading(http->conn);
    return 0;
}

static void deliver(sioc__http_conn_t *http, uint8_t *rest, size_t rest_length)
{
    sioc__deadline_disarm(&http->timeout);
    http->in_request = 1;
    if (http->parser.request.upgrade) {
        http->server->handler->on_request(http, &http->parser.request, rest, rest_length);
        return;
    }
    if (rest_length > 0 && keep_pending(http, rest, rest_length) != 0) {
        sioc__conn_close(http->conn, 0);
        return;
    }
    http->server->handler->on_request(http, &http->parser.request, NULL, 0);
}

static void parse(sioc__http_conn_t *http, uint8_t *data, size_t length)
{
    if (http->in_request) {
        /* Pipelined bytes while a request is outstanding: keep them for later. */
        size_t total = http->pending_length + length;
        if (total > http->server->limits.max_header_size + SIOC_READ_BUFFER_SIZE) {
            sioc__conn_close(http->conn, 0);
            return;
        }
        uint8_t *pending = realloc(http->pending, total);
        if (pending == NULL) {
            sioc__conn_close(http->conn, 0);
            return;
        }
        memcpy(pending + http->pending_length, data, length);
        http->pending = pending;
        http->pending_length = total;
        sioc__conn_pause_reading(http->conn);
        return;
    }
    size_t parsed;
    int rc = sioc__http_request_parser_execute(&http->parser, data, length, &parsed);
    if (rc < 0)
        respond_error(http, http->parser.error_status);
    else if (rc > 0)
        deliver(http, data + parsed, length - parsed);
}

static void on_conn_read(sioc__conn_t *conn, uint8_t *data, size_t length)
{
    parse(conn->owner, data, length);
}

static void unlink_from_server(sioc__http_conn_t *http)
{
    sioc__http_server_t *server = http->server;
    if (http->previous != NULL)
        http->previous->next = http->next;
    else
        server->connections = http->next;
    if (http->next != NULL)
        http->next->previous = http->previous;
    http->previous = http->next = NULL;
}

static void maybe_server_closed(sioc__http_server_t *server);

static void free_http(sioc__http_conn_t *http)
{
    sioc__http_server_t *server = http->server;
    sioc__deadline_disarm(&http->timeout);
    unlink_from_server(http);
    sioc__http_request_parser_free(&http->parser);
    free(http->pending);
    free(http);
    maybe_server_closed(server);
}

static void on_conn_close(sioc__conn_t *conn)
{
    sioc__http_conn_t *http = conn->owner;
    if (http->in_request && http->server->handler->on_abort != NULL)
        http->server->handler->on_abort(http, &http->parser.request);
    free_http(http);
}

static void on_request_timeout(sioc__deadline_list_t *list, sioc__deadline_t *deadline)
{
    sioc__http_conn_t *http =
        (sioc__http_conn_t *)((char *)deadline - offsetof(sioc__http_conn_t, timeout));
    if (http->parser.message_started)
        respond_error(http, 408);
    else
        sioc__conn_close(http->conn, 0);
}

static void on_connection(uv_stream_t *listener, int status)
{
    sioc__http_server_t *server = listener->data;
    if (status < 0)
        return;
    sioc__http_conn_t *http = calloc(1, sizeof(*http));
    if (http == NULL)
        return;
    http->server = server;
    http->conn = sioc__conn_accept(server->io, listener, &http_conn_handler, http);
    if (http->conn == NULL) {
        free(http);
        return;
    }
    sioc__http_request_parser_init(&http->parser, &server->limits);
    sioc__conn_remote_address(http->conn, http->parser.request.remote_address,
                              sizeof(http->parser.request.remote_address));
    http->next = server->connections;
    if (server->connections != NULL)
        server->connections->previous = http;
    server->connections = http;
    sioc__deadline_arm(&server->request_timeouts, &http->timeout);
}

/* ---- server ------------------------------------------------------------------------------ */

int sioc__http_server_init(sioc__http_server_t *server, sioc__io_t *io,
                           const sioc__http_limits_t *limits, const sioc__http_handler_t *handler,
                           void *data)
{
    memset(server, 0, sizeof(*server));
    server->io = io;
    server->limits = *limits;
    server->handler = handler;
    server->data = data;
    int rc = uv_tcp_init(io->loop, &server->listener);
    if (rc != 0)
        return rc;
    server->listener.data = server;
    rc = sioc__deadline_list_init(io->loop, &server->request_timeouts, limits->request_timeout_ms,
                                  on_request_timeout);
    if (rc != 0)
        return rc;
    server->request_timeouts.data = server;
    uv_unref((uv_handle_t *)&server->request_timeouts.timer);
    return 0;
}

int sioc__http_server_listen(sioc__http_server_t *server, const char *host, int port)
{
    struct sockaddr_storage address;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&address);
    if (rc != 0)
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&address);
    if (rc != 0)
        return rc;
    rc = uv_tcp_bind(&server->listener, (const struct sockaddr *)&address, 0);
    if (rc != 0)
        return rc;
    rc = uv_listen((uv_stream_t *)&server->listener, 1024, on_connection);
    if (rc == 0)
        server->listening = 1;
    return rc;
}

int sioc__http_server_port(sioc__http_server_t *server)
{
    struct sockaddr_storage address;
    int length = sizeof(address);
    if (uv_tcp_getsockname(&server->listener, (struct sockaddr *)&address, &length) != 0)
        return -1;
    if (address.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&address)->sin6_port);
    return ntohs(((struct sockaddr_in *)&address)->sin_port);
}

static void maybe_server_closed(sioc__http_server_t *server)
{
    if (server->close_pending == 0 && server->closed_cb != NULL && server->connections == NULL) {
        void (*closed_cb)(sioc__http_server_t *) = server->closed_cb;
        server->closed_cb = NULL;
        closed_cb(server);
    }
}

static void on_server_handle_closed(uv_handle_t *handle)
{
    sioc__http_server_t *server = handle->data;
    server->close_pending--;
    maybe_server_closed(server);
}

/* The timer's data is its deadline list, whose data is the server. */
static void on_server_timer_closed(uv_handle_t *handle)
{
    sioc__deadline_list_t *list = handle->data;
    sioc__http_server_t *server = list->data;
    server->close_pending--;
    maybe_server_closed(server);
}

void sioc__http_server_close(sioc__http_server_t *server, void (*closed_cb)(sioc__http_server_t *))
{
    server->closed_cb = closed_cb;
    server->close_pending = 2;
    server->listening = 0;
    uv_close((uv_handle_t *)&server->listener, on_server_handle_closed);
    sioc__deadline_list_close(&server->request_timeouts, on_server_timer_closed);
    for (sioc__http_conn_t *http = server->connections; http != NULL; http = http->next)
        sioc__conn_close(http->conn, 1);
}

/* ---- requests and responses ----------------------------------------------------------------- */

const char *sioc__http_status_text(int status)
{
    static const struct {
        int status;
        const char *text;
    } texts[] = {
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {204, "No Content"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {413, "Payload Too Large"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {503, "Service Unavailable"},
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (texts[i].status == status)
            return texts[i].text;
    }
    return "Unknown";
}

void sioc__http_set_close(sioc__http_conn_t *http)
{
    http->close_after_response = 1;
}

int sioc__http_write_head(sioc__http_conn_t *http, int status, const char *headers,
                          size_t content_length)
{
    if (!http->parser.request.keep_alive || http->server->listening == 0)
        http->close_after_response = 1;
    char line[256];
    int line_length = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s",
                               status, sioc__http_status_text(status), content_length,
                               http->close_after_response ? "Connection: close\r\n" : "");
    size_t headers_length = headers ? strlen(headers) : 0;
    sioc__buffer_t *head = sioc__buffer_new((size_t)line_length + headers_length + 2, 0);
    if (head == NULL)
        return -1;
    memcpy(head->data, line, (size_t)line_length);
    if (headers_length > 0)
        memcpy(head->data + line_length, headers, headers_length);
    memcpy(head->data + line_length + headers_length, "\r\n", 2);
    int rc = sioc__conn_write(http->conn, head, head->data, head->length);
    sioc__buffer_unref(head);
    http->head_written = 1;
    return rc;
}

int sioc__http_write_body(sioc__http_conn_t *http, sioc__buffer_t *buffer, const uint8_t *bytes,
                          size_t length)
{
    return sioc__conn_write(http->conn, buffer, bytes, length);
}

void sioc__http_finish(sioc__http_conn_t *http)
{
    if (!http->in_request)
        return;
    http->in_request = 0;
    if (http->close_after_response || http->parser.request.upgrade) {
        sioc__conn_close(http->conn, 1);
        return;
    }
    sioc__http_request_parser_next(&http->parser);
    http->head_written = 0;
    http->user = NULL;
    sioc__deadline_arm(&http->server->request_timeouts, &http->timeout);
    sioc__conn_resume_reading(http->conn);
    if (http->pending != NULL) {
        uint8_t *pending = http->pending;
        size_t pending_length = http->pending_length;
        http->pending = NULL;
        http->pending_length = 0;
        parse(http, pending, pending_length);
        free(pending);
    }
}

void sioc__http_respond(sioc__http_conn_t *http, int status, const char *headers, const void *body,
                        size_t body_length)
{
    sioc__http_write_head(http, status, headers, body_length);
    if (body_length > 0)
        sioc__conn_write_copy(http->conn, body, body_length);
    if (http->in_request) {
        sioc__http_finish(http);
    } else {
        /* An automatic answer to a request that was never delivered. */
        sioc__conn_close(http->conn, 1);
    }
}

sioc__conn_t *sioc__http_detach(sioc__http_conn_t *http)
{
    sioc__conn_t *conn = http->conn;
    http->in_request = 0;
    conn->owner = NULL;
    free_http(http);
    return conn;
}

void sioc__http_set_user(sioc__http_conn_t *http, void *user)
{
    http->user = user;
}

void *sioc__http_get_user(sioc__http_conn_t *http)
{
    return http->user;
}

sioc__http_server_t *sioc__http_get_server(sioc__http_conn_t *http)
{
    return http->server;
}

sioc__conn_t *sioc__http_get_conn(sioc__http_conn_t *http)
{
    return http->conn;
}
