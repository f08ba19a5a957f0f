#include "transport/http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Offsets into the head arena while parsing: the arena may move as it grows. */
typedef struct header_offsets_s {
    uint32_t name;
    uint32_t value;
    uint32_t value_length;
} header_offsets_t;

struct sioc_http_conn_s {
    sioc_conn_t *conn;
    sioc_http_server_t *server;
    http_parser parser;
    sioc_http_request_t request;
    char *head; /* arena: url, then name\0value\0 pairs */
    size_t head_length;
    size_t head_capacity;
    header_offsets_t *offsets;
    uint32_t offsets_capacity;
    uint32_t url_end;
    size_t body_capacity;
    uint8_t *pending; /* input that arrived while a request was outstanding */
    size_t pending_length;
    sioc_deadline_t timeout;
    void *user;
    sioc_http_conn_t *previous;
    sioc_http_conn_t *next;
    int error_status; /* automatic answer decided by a parser callback */
    uint8_t message_started;
    uint8_t message_complete;
    uint8_t in_request; /* delivered to the handler, not yet finished */
    uint8_t last_was_value;
    uint8_t close_after_response;
    uint8_t head_written;
};

static void on_conn_read(sioc_conn_t *conn, uint8_t *data, size_t length);
static void on_conn_close(sioc_conn_t *conn);
static const sioc_conn_handler_t http_conn_handler = {on_conn_read, on_conn_close};

void sioc_http_limits_init(sioc_http_limits_t *limits)
{
    limits->max_header_size = 16 * 1024;
    limits->max_header_count = 100;
    limits->max_body_size = 1000000;
    limits->request_timeout_ms = 10000;
}

/* ---- head arena ------------------------------------------------------------------------ */

static int arena_append(sioc_http_conn_t *http, const char *bytes, size_t length)
{
    if (http->head_length + length + 1 > http->server->limits.max_header_size) {
        http->error_status = 431;
        return -1;
    }
    if (http->head_length + length + 1 > http->head_capacity) {
        size_t capacity = http->head_capacity ? http->head_capacity : 512;
        while (capacity < http->head_length + length + 1)
            capacity *= 2;
        char *head = realloc(http->head, capacity);
        if (head == NULL) {
            http->error_status = 500;
            return -1;
        }
        http->head = head;
        http->head_capacity = capacity;
    }
    memcpy(http->head + http->head_length, bytes, length);
    http->head_length += length;
    return 0;
}

static int arena_terminate(sioc_http_conn_t *http)
{
    return arena_append(http, "", 1);
}

static void reset_request(sioc_http_conn_t *http)
{
    free(http->request.body);
    free(http->request.headers);
    char address[sizeof(http->request.remote_address)];
    memcpy(address, http->request.remote_address, sizeof(address));
    memset(&http->request, 0, sizeof(http->request));
    memcpy(http->request.remote_address, address, sizeof(address));
    http->head_length = 0;
    http->url_end = 0;
    http->body_capacity = 0;
    http->message_started = http->message_complete = 0;
    http->last_was_value = 0;
    http->head_written = 0;
    http->user = NULL;
}

/* ---- http-parser callbacks -------------------------------------------------------------- */

static int on_message_begin(http_parser *parser)
{
    sioc_http_conn_t *http = parser->data;
    http->message_started = 1;
    return 0;
}

static int on_url(http_parser *parser, const char *at, size_t length)
{
    return arena_append(parser->data, at, length);
}

static int on_header_field(http_parser *parser, const char *at, size_t length)
{
    sioc_http_conn_t *http = parser->data;
    uint32_t count = http->request.header_count;
    if (count == 0 && http->url_end == 0) {
        if (arena_terminate(http) != 0)
            return -1;
        http->url_end = (uint32_t)http->head_length;
    }
    if (count == 0 || http->last_was_value) {
        if (count > 0 && arena_terminate(http) != 0)
            return -1;
        if (count == http->server->limits.max_header_count) {
            http->error_status = 431;
            return -1;
        }
        if (count == http->offsets_capacity) {
            uint32_t capacity = count ? count * 2 : 16;
            header_offsets_t *offsets = realloc(http->offsets, capacity * sizeof(*offsets));
            if (offsets == NULL)
                return -1;
            http->offsets = offsets;
            http->offsets_capacity = capacity;
        }
        http->offsets[count].name = (uint32_t)http->head_length;
        http->request.header_count = ++count;
        http->last_was_value = 0;
    }
    return arena_append(http, at, length);
}

static int on_header_value(http_parser *parser, const char *at, size_t length)
{
    sioc_http_conn_t *http = parser->data;
    header_offsets_t *header = &http->offsets[http->request.header_count - 1];
    if (!http->last_was_value) {
        if (arena_terminate(http) != 0)
            return -1;
        header->value = (uint32_t)http->head_length;
        header->value_length = 0;
        http->last_was_value = 1;
    }
    header->value_length += (uint32_t)length;
    return arena_append(http, at, length);
}

static void split_url(sioc_http_request_t *request)
{
    const char *question = memchr(request->url, '?', request->url_length);
    request->path = request->url;
    request->path_length = question ? (size_t)(question - request->url) : request->url_length;
    request->query = question ? question + 1 : "";
    request->query_length = question ? request->url_length - request->path_length - 1 : 0;
}

static int finalize_head(sioc_http_conn_t *http)
{
    if (arena_terminate(http) != 0)
        return -1;
    if (http->url_end == 0)
        http->url_end = (uint32_t)http->head_length;
    sioc_http_request_t *request = &http->request;
    request->url = http->head;
    request->url_length = strlen(http->head);
    split_url(request);
    if (request->header_count > 0) {
        request->headers = calloc(request->header_count, sizeof(sioc_http_header_t));
        if (request->headers == NULL)
            return -1;
    }
    for (uint32_t i = 0; i < request->header_count; i++) {
        request->headers[i].name = http->head + http->offsets[i].name;
        request->headers[i].value =
            http->offsets[i].value ? http->head + http->offsets[i].value : "";
        request->headers[i].value_length = http->offsets[i].value_length;
    }
    return 0;
}

static int on_headers_complete(http_parser *parser)
{
    sioc_http_conn_t *http = parser->data;
    if (finalize_head(http) != 0)
        return -1;
    http->request.method = parser->method;
    http->request.keep_alive = http_should_keep_alive(parser) ? 1 : 0;
    uint64_t max_body = http->server->limits.max_body_size;
    if (parser->content_length != ULLONG_MAX && parser->content_length > 0 && !parser->upgrade) {
        if (parser->content_length > max_body) {
            http->error_status = 413;
            return -1;
        }
        http->body_capacity = (size_t)parser->content_length;
        http->request.body = malloc(http->body_capacity);
        if (http->request.body == NULL)
            return -1;
    }
    return 0;
}

static int on_body(http_parser *parser, const char *at, size_t length)
{
    sioc_http_conn_t *http = parser->data;
    sioc_http_request_t *request = &http->request;
    if (request->body_length + length > http->server->limits.max_body_size) {
        http->error_status = 413;
        return -1;
    }
    if (request->body_length + length > http->body_capacity) {
        size_t capacity = http->body_capacity ? http->body_capacity * 2 : 4096;
        while (capacity < request->body_length + length)
            capacity *= 2;
        uint8_t *body = realloc(request->body, capacity);
        if (body == NULL)
            return -1;
        request->body = body;
        http->body_capacity = capacity;
    }
    memcpy(request->body + request->body_length, at, length);
    request->body_length += length;
    return 0;
}

static int on_message_complete(http_parser *parser)
{
    sioc_http_conn_t *http = parser->data;
    http->message_complete = 1;
    http->request.upgrade = parser->upgrade ? 1 : 0;
    /* Stop here: the next pipelined request waits until this one is answered. */
    http_parser_pause(parser, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- connection life ------------------------------------------------------------------- */

static void respond_error(sioc_http_conn_t *http, int status)
{
    const char *text = sioc_http_status_text(status);
    sioc_http_set_close(http);
    if (!http->head_written)
        sioc_http_respond(http, status, "Content-Type: text/plain; charset=UTF-8\r\n", text,
                          strlen(text));
    else
        sioc_conn_close(http->conn, 1);
}

static int keep_pending(sioc_http_conn_t *http, const uint8_t *data, size_t length)
{
    uint8_t *pending = malloc(length);
    if (pending == NULL)
        return -1;
    memcpy(pending, data, length);
    free(http->pending);
    http->pending = pending;
    http->pending_length = length;
    /* One request at a time: stop reading until this one is answered. */
    sioc_conn_pause_reading(http->conn);
    return 0;
}

static void deliver(sioc_http_conn_t *http, uint8_t *rest, size_t rest_length)
{
    sioc_deadline_disarm(&http->server->request_timeouts, &http->timeout);
    http->in_request = 1;
    if (http->request.upgrade) {
        http->server->handler->on_request(http, &http->request, rest, rest_length);
        return;
    }
    if (rest_length > 0 && keep_pending(http, rest, rest_length) != 0) {
        sioc_conn_close(http->conn, 0);
        return;
    }
    http->server->handler->on_request(http, &http->request, NULL, 0);
}

static void parse(sioc_http_conn_t *http, uint8_t *data, size_t length)
{
    if (http->in_request) {
        /* Pipelined bytes while a request is outstanding: keep them for later. */
        size_t total = http->pending_length + length;
        if (total > http->server->limits.max_header_size + SIOC_READ_BUFFER_SIZE) {
            sioc_conn_close(http->conn, 0);
            return;
        }
        uint8_t *pending = realloc(http->pending, total);
        if (pending == NULL) {
            sioc_conn_close(http->conn, 0);
            return;
        }
        memcpy(pending + http->pending_length, data, length);
        http->pending = pending;
        http->pending_length = total;
        sioc_conn_pause_reading(http->conn);
        return;
    }
    size_t parsed =
        http_parser_execute(&http->parser, &parser_settings, (const char *)data, length);
    enum http_errno error = HTTP_PARSER_ERRNO(&http->parser);
    if (error != HPE_OK && error != HPE_PAUSED) {
        respond_error(http, http->error_status ? http->error_status : 400);
        return;
    }
    if (http->message_complete)
        deliver(http, data + parsed, length - parsed);
}

static void on_conn_read(sioc_conn_t *conn, uint8_t *data, size_t length)
{
    parse(conn->owner, data, length);
}

static void unlink_from_server(sioc_http_conn_t *http)
{
    sioc_http_server_t *server = http->server;
    if (http->previous != NULL)
        http->previous->next = http->next;
    else
        server->connections = http->next;
    if (http->next != NULL)
        http->next->previous = http->previous;
    http->previous = http->next = NULL;
}

static void maybe_server_closed(sioc_http_server_t *server);

static void free_http(sioc_http_conn_t *http)
{
    sioc_http_server_t *server = http->server;
    sioc_deadline_disarm(&server->request_timeouts, &http->timeout);
    unlink_from_server(http);
    http->head_length = 0;
    free(http->request.body);
    free(http->request.headers);
    free(http->head);
    free(http->offsets);
    free(http->pending);
    free(http);
    maybe_server_closed(server);
}

static void on_conn_close(sioc_conn_t *conn)
{
    sioc_http_conn_t *http = conn->owner;
    if (http->in_request && http->server->handler->on_abort != NULL)
        http->server->handler->on_abort(http, &http->request);
    free_http(http);
}

static void on_request_timeout(sioc_deadline_list_t *list, sioc_deadline_t *deadline)
{
    sioc_http_conn_t *http =
        (sioc_http_conn_t *)((char *)deadline - offsetof(sioc_http_conn_t, timeout));
    if (http->message_started)
        respond_error(http, 408);
    else
        sioc_conn_close(http->conn, 0);
}

static void on_connection(uv_stream_t *listener, int status)
{
    sioc_http_server_t *server = listener->data;
    if (status < 0)
        return;
    sioc_http_conn_t *http = calloc(1, sizeof(*http));
    if (http == NULL)
        return;
    http->server = server;
    http->conn = sioc_conn_accept(server->io, listener, &http_conn_handler, http);
    if (http->conn == NULL) {
        free(http);
        return;
    }
    http_parser_init(&http->parser, HTTP_REQUEST);
    http->parser.data = http;
    sioc_conn_remote_address(http->conn, http->request.remote_address,
                             sizeof(http->request.remote_address));
    http->next = server->connections;
    if (server->connections != NULL)
        server->connections->previous = http;
    server->connections = http;
    sioc_deadline_arm(&server->request_timeouts, &http->timeout);
}

/* ---- server ------------------------------------------------------------------------------ */

int sioc_http_server_init(sioc_http_server_t *server, sioc_io_t *io,
                          const sioc_http_limits_t *limits, const sioc_http_handler_t *handler,
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
    rc = sioc_deadline_list_init(io->loop, &server->request_timeouts, limits->request_timeout_ms,
                                 on_request_timeout);
    if (rc != 0)
        return rc;
    server->request_timeouts.data = server;
    uv_unref((uv_handle_t *)&server->request_timeouts.timer);
    return 0;
}

int sioc_http_server_listen(sioc_http_server_t *server, const char *host, int port)
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

int sioc_http_server_port(sioc_http_server_t *server)
{
    struct sockaddr_storage address;
    int length = sizeof(address);
    if (uv_tcp_getsockname(&server->listener, (struct sockaddr *)&address, &length) != 0)
        return -1;
    if (address.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&address)->sin6_port);
    return ntohs(((struct sockaddr_in *)&address)->sin_port);
}

static void maybe_server_closed(sioc_http_server_t *server)
{
    if (server->close_pending == 0 && server->closed_cb != NULL && server->connections == NULL) {
        void (*closed_cb)(sioc_http_server_t *) = server->closed_cb;
        server->closed_cb = NULL;
        closed_cb(server);
    }
}

static void on_server_handle_closed(uv_handle_t *handle)
{
    sioc_http_server_t *server = handle->data;
    server->close_pending--;
    maybe_server_closed(server);
}

void sioc_http_server_close(sioc_http_server_t *server, void (*closed_cb)(sioc_http_server_t *))
{
    server->closed_cb = closed_cb;
    server->close_pending = 2;
    server->listening = 0;
    uv_close((uv_handle_t *)&server->listener, on_server_handle_closed);
    sioc_deadline_list_close(&server->request_timeouts, on_server_handle_closed);
    for (sioc_http_conn_t *http = server->connections; http != NULL; http = http->next)
        sioc_conn_close(http->conn, 1);
}

/* ---- requests and responses ----------------------------------------------------------------- */

const sioc_http_header_t *sioc_http_request_header(const sioc_http_request_t *request,
                                                   const char *name)
{
    for (uint32_t i = 0; i < request->header_count; i++) {
        if (strcasecmp(request->headers[i].name, name) == 0)
            return &request->headers[i];
    }
    return NULL;
}

int sioc_http_header_has_token(const sioc_http_header_t *header, const char *token)
{
    size_t token_length = strlen(token);
    const char *cursor = header->value;
    const char *end = header->value + header->value_length;
    while (cursor < end) {
        while (cursor < end && (*cursor == ' ' || *cursor == '\t' || *cursor == ','))
            cursor++;
        const char *start = cursor;
        while (cursor < end && *cursor != ',')
            cursor++;
        const char *stop = cursor;
        while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        if ((size_t)(stop - start) == token_length && strncasecmp(start, token, token_length) == 0)
            return 1;
    }
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static long percent_decode(const char *in, size_t length, char *out, size_t out_size)
{
    size_t written = 0;
    for (size_t i = 0; i < length; i++) {
        char c = in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= length)
                return -2;
            int high = hex_value(in[i + 1]);
            int low = hex_value(in[i + 2]);
            if (high < 0 || low < 0)
                return -2;
            c = (char)(high * 16 + low);
            i += 2;
        }
        if (written + 1 >= out_size)
            return -2;
        out[written++] = c;
    }
    out[written] = '\0';
    return (long)written;
}

long sioc_http_query_get(const char *query, size_t query_length, const char *name, char *out,
                         size_t out_size)
{
    size_t name_length = strlen(name);
    const char *cursor = query;
    const char *end = query + query_length;
    while (cursor < end) {
        const char *amp = memchr(cursor, '&', (size_t)(end - cursor));
        const char *pair_end = amp ? amp : end;
        const char *equals = memchr(cursor, '=', (size_t)(pair_end - cursor));
        const char *key_end = equals ? equals : pair_end;
        if ((size_t)(key_end - cursor) == name_length && memcmp(cursor, name, name_length) == 0) {
            const char *value = equals ? equals + 1 : pair_end;
            return percent_decode(value, (size_t)(pair_end - value), out, out_size);
        }
        cursor = amp ? amp + 1 : end;
    }
    return -1;
}

const char *sioc_http_status_text(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

void sioc_http_set_close(sioc_http_conn_t *http)
{
    http->close_after_response = 1;
}

int sioc_http_write_head(sioc_http_conn_t *http, int status, const char *headers,
                         size_t content_length)
{
    if (!http->request.keep_alive || http->server->listening == 0)
        http->close_after_response = 1;
    char line[256];
    int line_length = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s",
                               status, sioc_http_status_text(status), content_length,
                               http->close_after_response ? "Connection: close\r\n" : "");
    size_t headers_length = headers ? strlen(headers) : 0;
    sioc_buffer_t *head = sioc_buffer_new((size_t)line_length + headers_length + 2, 0);
    if (head == NULL)
        return -1;
    memcpy(head->data, line, (size_t)line_length);
    if (headers_length > 0)
        memcpy(head->data + line_length, headers, headers_length);
    memcpy(head->data + line_length + headers_length, "\r\n", 2);
    int rc = sioc_conn_write(http->conn, head, head->data, head->length);
    sioc_buffer_unref(head);
    http->head_written = 1;
    return rc;
}

int sioc_http_write_body(sioc_http_conn_t *http, sioc_buffer_t *buffer, const uint8_t *bytes,
                         size_t length)
{
    return sioc_conn_write(http->conn, buffer, bytes, length);
}

void sioc_http_finish(sioc_http_conn_t *http)
{
    if (!http->in_request)
        return;
    http->in_request = 0;
    if (http->close_after_response || http->request.upgrade) {
        sioc_conn_close(http->conn, 1);
        return;
    }
    reset_request(http);
    http_parser_pause(&http->parser, 0);
    sioc_deadline_arm(&http->server->request_timeouts, &http->timeout);
    sioc_conn_resume_reading(http->conn);
    if (http->pending != NULL) {
        uint8_t *pending = http->pending;
        size_t pending_length = http->pending_length;
        http->pending = NULL;
        http->pending_length = 0;
        parse(http, pending, pending_length);
        free(pending);
    }
}

void sioc_http_respond(sioc_http_conn_t *http, int status, const char *headers, const void *body,
                       size_t body_length)
{
    sioc_http_write_head(http, status, headers, body_length);
    if (body_length > 0)
        sioc_conn_write_copy(http->conn, body, body_length);
    if (http->in_request) {
        sioc_http_finish(http);
    } else {
        /* An automatic answer to a request that was never delivered. */
        sioc_conn_close(http->conn, 1);
    }
}

sioc_conn_t *sioc_http_detach(sioc_http_conn_t *http)
{
    sioc_conn_t *conn = http->conn;
    http->in_request = 0;
    conn->owner = NULL;
    free_http(http);
    return conn;
}

void sioc_http_set_user(sioc_http_conn_t *http, void *user)
{
    http->user = user;
}

void *sioc_http_get_user(sioc_http_conn_t *http)
{
    return http->user;
}

sioc_http_server_t *sioc_http_get_server(sioc_http_conn_t *http)
{
    return http->server;
}
