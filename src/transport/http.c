#define _GNU_SOURCE /* accept4 */
#include "transport/http.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Offsets into the head arena while parsing: the arena may move as it grows. */
struct sioc__http_conn_s {
    sioc__conn_t *conn;
    sioc__http_server_t *server;
    sioc__http_request_parser_t parser;
    uint8_t *pending; /* input not parsed yet, from pending_offset on (see keep_pending) */
    size_t pending_length;
    size_t pending_offset;
    sioc__http_conn_t *next_scheduled; /* in server->scheduled */
    sioc__deadline_t timeout;
    void *user;
    sioc__http_conn_t *previous;
    sioc__http_conn_t *next;
    uint8_t in_request; /* delivered to the handler, not yet finished */
    uint8_t close_after_response;
    uint8_t head_written;
    uint8_t parsing;   /* inside consume(): a finished request lets the loop go on */
    uint8_t scheduled; /* pending input is parsed at the next turn of the loop */
};

static void on_conn_read(sioc__conn_t *conn, uint8_t *data, size_t length);
static void on_conn_close(sioc__conn_t *conn);
static void on_conn_drain(sioc__conn_t *conn);
static void on_idle(uv_idle_t *idle);
static const sioc__conn_handler_t http_conn_handler = {on_conn_read, on_conn_close, on_conn_drain};

/* ---- connection life ------------------------------------------------------------------- */

/* A request the parser refused, or that did not come in time, gets Node's answer byte for byte
 * (http_server's socketOnError: the status line and "Connection: close", no body), then the
 * close. Other automatic answers carry their status text as a body. */
static void respond_error(sioc__http_conn_t *http, int status)
{
    const char *text = sioc__http_status_text(status);
    sioc__http_set_close(http);
    if (http->head_written) {
        sioc__conn_close(http->conn, 1);
    } else if (status == 400 || status == 408 || status == 431) {
        char answer[96];
        int length = snprintf(answer, sizeof(answer), "HTTP/1.1 %d %s\r\nConnection: close\r\n\r\n",
                              status, text);
        sioc__conn_write_copy(http->conn, answer, (size_t)length);
        sioc__conn_close(http->conn, 1);
    } else {
        sioc__http_respond(http, status, "Content-Type: text/plain; charset=UTF-8\r\n", text,
                           strlen(text));
    }
}

/* Input left after a complete request waits here, unparsed, until the request is answered (or
 * the connection drained, or the loop turned): one copy of what the read left, parsed in place
 * from pending_offset on. */
static int keep_pending(sioc__http_conn_t *http, const uint8_t *data, size_t length)
{
    size_t kept = http->pending_length - http->pending_offset;
    if (kept + length > http->server->limits.max_header_size + SIOC_READ_BUFFER_SIZE)
        return -1;
    uint8_t *pending = malloc(kept + length);
    if (pending == NULL)
        return -1;
    if (kept > 0)
        memcpy(pending, http->pending + http->pending_offset, kept);
    memcpy(pending + kept, data, length);
    free(http->pending);
    http->pending = pending;
    http->pending_length = kept + length;
    http->pending_offset = 0;
    sioc__conn_pause_reading(http->conn);
    return 0;
}

static void release_pending(sioc__http_conn_t *http)
{
    free(http->pending);
    http->pending = NULL;
    http->pending_length = http->pending_offset = 0;
}

static void schedule(sioc__http_conn_t *http)
{
    sioc__http_server_t *server = http->server;
    if (http->scheduled)
        return;
    http->scheduled = 1;
    http->next_scheduled = server->scheduled;
    server->scheduled = http;
    uv_idle_start(&server->idle, on_idle);
}

static void unschedule(sioc__http_conn_t *http)
{
    sioc__http_conn_t **link = &http->server->scheduled;
    while (*link != NULL && *link != http)
        link = &(*link)->next_scheduled;
    if (*link == http)
        *link = http->next_scheduled;
    http->scheduled = 0;
}

/* Parses and delivers the requests in data, in a loop (never recursively: a handler that
 * answers at once only clears in_request), until one stays outstanding, the input is used,
 * the connection is over its cap, or SIOC_HTTP_REQUESTS_PER_TURN were handled. *used gets the
 * bytes parsed. Returns 0 when an upgrade was delivered: the connection may belong to another
 * protocol then, and http may be freed. */
static int consume(sioc__http_conn_t *http, uint8_t *data, size_t length, size_t *used)
{
    *used = 0;
    int handled = 0;
    http->parsing = 1;
    while (!http->in_request && !http->conn->closing && *used < length &&
           handled < SIOC_HTTP_REQUESTS_PER_TURN && !sioc__conn_over_cap(http->conn)) {
        size_t parsed;
        int rc =
            sioc__http_request_parser_execute(&http->parser, data + *used, length - *used, &parsed);
        *used += parsed;
        if (rc < 0) {
            respond_error(http, http->parser.error_status);
            break;
        }
        if (rc == 0)
            break; /* the parser holds the partial request */
        handled++;
        sioc__deadline_disarm(&http->timeout);
        http->in_request = 1;
        if (http->parser.request.upgrade) {
            http->parsing = 0;
            http->server->handler->on_request(http, &http->parser.request, data + *used,
                                              length - *used);
            return 0;
        }
        http->server->handler->on_request(http, &http->parser.request, NULL, 0);
    }
    http->parsing = 0;
    return 1;
}

/* After consume(): decides what the rest of the input waits for. pending says whether data is
 * http->pending (detached by the caller, kept without a copy) or the shared read buffer. */
static void after_consume(sioc__http_conn_t *http, uint8_t *data, size_t length, size_t used,
                          uint8_t *pending, size_t pending_offset)
{
    if (http->conn->closing) {
        free(pending);
        return;
    }
    if (used < length) {
        if (pending != NULL) {
            http->pending = pending;
            http->pending_length = pending_offset + length;
            http->pending_offset = pending_offset + used;
            sioc__conn_pause_reading(http->conn);
        } else if (keep_pending(http, data + used, length - used) != 0) {
            sioc__conn_close(http->conn, 0);
            return;
        }
        if (http->in_request)
            return; /* sioc__http_finish() schedules the rest */
        if (sioc__conn_over_cap(http->conn))
            sioc__conn_wait_drain(http->conn); /* on_conn_drain() schedules the rest */
        else
            schedule(http); /* enough for this turn of the loop: others get theirs */
        return;
    }
    free(pending);
    if (!http->in_request)
        sioc__conn_resume_reading(http->conn);
}

static void continue_pending(sioc__http_conn_t *http)
{
    if (http->pending == NULL || http->in_request || http->conn->closing)
        return;
    uint8_t *pending = http->pending;
    size_t offset = http->pending_offset;
    size_t length = http->pending_length - offset;
    http->pending = NULL; /* ours while the handlers run: an upgrade frees http */
    http->pending_length = http->pending_offset = 0;
    size_t used;
    if (consume(http, pending + offset, length, &used))
        after_consume(http, pending + offset, length, used, pending, offset);
    else
        free(pending);
}

static void on_idle(uv_idle_t *idle)
{
    sioc__http_server_t *server = idle->data;
    sioc__http_conn_t *list = server->scheduled;
    server->scheduled = NULL;
    while (list != NULL) {
        sioc__http_conn_t *http = list;
        list = http->next_scheduled;
        http->scheduled = 0;
        continue_pending(http);
    }
    if (server->scheduled == NULL)
        uv_idle_stop(idle);
}

static void on_conn_read(sioc__conn_t *conn, uint8_t *data, size_t length)
{
    sioc__http_conn_t *http = conn->owner;
    if (http->in_request || http->pending != NULL) {
        /* Input behind an outstanding request: it waits (and reading stops). */
        if (keep_pending(http, data, length) != 0)
            sioc__conn_close(http->conn, 0);
        return;
    }
    size_t used;
    if (consume(http, data, length, &used))
        after_consume(http, data, length, used, NULL, 0);
}

static void on_conn_drain(sioc__conn_t *conn)
{
    sioc__http_conn_t *http = conn->owner;
    if (http != NULL && http->pending != NULL && !http->in_request)
        schedule(http);
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
    if (http->scheduled)
        unschedule(http);
    sioc__http_request_parser_free(&http->parser);
    release_pending(http);
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

/* Takes fd, a new connection, as an HTTP connection of server; on failure fd is closed. */
static void open_connection(sioc__http_server_t *server, int fd)
{
    sioc__http_conn_t *http = calloc(1, sizeof(*http));
    if (http == NULL) {
        close(fd);
        return;
    }
    http->server = server;
    http->conn = sioc__conn_accept(server->io, fd, &http_conn_handler, http, server->tls_context);
    if (http->conn == NULL) {
        free(http);
        return;
    }
    sioc__conn_set_cap(http->conn, server->limits.max_buffered_bytes);
    sioc__http_request_parser_init(&http->parser, &server->limits);
    sioc__conn_remote_address(http->conn, http->parser.request.remote_address,
                              sizeof(http->parser.request.remote_address));
    http->next = server->connections;
    if (server->connections != NULL)
        server->connections->previous = http;
    server->connections = http;
    sioc__deadline_arm(&server->request_timeouts, &http->timeout);
}

static void on_listener(uv_poll_t *poll, int status, int events);
static int accept_pending(sioc__http_server_t *server);

/* The timer ends a back-off: the listener polls again, and accepts at once what waits (that
 * is also how the episode ends when nothing does: accept4 says EAGAIN). */
static void on_accept_retry(uv_timer_t *timer)
{
    sioc__http_server_t *server = timer->data;
    if (!server->listening)
        return;
    uv_poll_start(&server->listener, UV_READABLE, on_listener);
    accept_pending(server);
}

/* A failed accept4 that is not the pending connection's own: the process is out of
 * descriptors (EMFILE, ENFILE) or the kernel out of memory. The connections stay in the
 * backlog, and the listener stops polling for SIOC_HTTP_ACCEPT_RETRY_MS: level-triggered, it
 * would otherwise wake the loop at once again for a connection it cannot take, spinning a
 * core. nginx does the same (it disables accept events for a while); libuv's streams (so
 * Node, and this server on uv_tcp_t) instead close a descriptor kept spare, accept and close
 * every pending connection, and reopen it: clients that a moment later could have been served
 * are cut off, and a descriptor is held for it. Logged once per episode. Linux looks for a
 * free descriptor before it looks at the backlog, so at the limit every accept4 says EMFILE,
 * even after one that succeeded: the episode ends only when accept4 says EAGAIN (a descriptor
 * to spare and nothing waiting). */
static void back_off(sioc__http_server_t *server, int error)
{
    if (!server->accept_backoff)
        fprintf(stderr, "sioc http: accept: %s; trying again every %d ms\n", strerror(error),
                SIOC_HTTP_ACCEPT_RETRY_MS);
    server->accept_backoff = 1;
    uv_poll_stop(&server->listener);
    uv_timer_start(&server->accept_retry, on_accept_retry, SIOC_HTTP_ACCEPT_RETRY_MS, 0);
}

/* Errors of the pending connection alone (accept(2): to be treated like EAGAIN, by trying
 * again): the next one may be fine. */
static int connection_error(int error)
{
    return error == ECONNABORTED || error == EINTR || error == EPROTO || error == EPERM ||
           error == ENETDOWN || error == ENOPROTOOPT || error == EHOSTDOWN || error == ENONET ||
           error == EHOSTUNREACH || error == EOPNOTSUPP || error == ENETUNREACH;
}

/* Accepts up to SIOC_HTTP_ACCEPTS_PER_WAKEUP connections, non-blocking and close-on-exec
 * from the start. Returns 0, or -1 when accepting backs off (the poll is stopped). */
static int accept_pending(sioc__http_server_t *server)
{
    for (int i = 0; i < SIOC_HTTP_ACCEPTS_PER_WAKEUP && server->listening; i++) {
        int fd = accept4(server->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            open_connection(server, fd);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            server->accept_backoff = 0;
            break;
        } else if (!connection_error(errno)) {
            back_off(server, errno);
            return -1;
        }
    }
    return 0;
}

/* A listener that reports an error (status < 0) is handled as readable: accept4 tells which.
 * libuv stops a poll that reported an error: it starts again unless accepting backs off. */
static void on_listener(uv_poll_t *poll, int status, int events)
{
    sioc__http_server_t *server = poll->data;
    if (accept_pending(server) == 0 && status < 0 && server->listening)
        uv_poll_start(&server->listener, UV_READABLE, on_listener);
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
    server->listen_fd = -1;
    int rc = uv_timer_init(io->loop, &server->accept_retry);
    if (rc != 0)
        return rc;
    server->accept_retry.data = server;
    rc = sioc__deadline_list_init(io->loop, &server->request_timeouts, limits->request_timeout_ms,
                                  on_request_timeout);
    if (rc != 0)
        return rc;
    server->request_timeouts.data = server;
    uv_unref((uv_handle_t *)&server->request_timeouts.timer);
    rc = uv_idle_init(io->loop, &server->idle);
    if (rc != 0)
        return rc;
    server->idle.data = server;
    return 0;
}

/* A non-blocking listening socket on address, as uv_tcp_bind and uv_listen made it
 * (SO_REUSEADDR; IPv6 with IPV6_V6ONLY off: "::" takes IPv4 clients too), into *fd. Returns 0
 * or a negative libuv error (UV_EADDRINUSE, ...), as they did. */
static int open_listener(const struct sockaddr *address, int *fd)
{
    int ipv6 = address->sa_family == AF_INET6;
    socklen_t length = ipv6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    *fd = socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (*fd < 0)
        return -errno;
    int on = 1;
    int off = 0;
    int rc = 0;
    if (setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        (ipv6 && setsockopt(*fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) != 0) ||
        bind(*fd, address, length) != 0 || listen(*fd, SIOC_HTTP_BACKLOG) != 0)
        rc = errno == EAFNOSUPPORT ? UV_EINVAL : -errno; /* libuv's mapping for bind */
    if (rc != 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

int sioc__http_server_listen(sioc__http_server_t *server, const char *host, int port)
{
    struct sockaddr_storage address;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&address);
    if (rc != 0)
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&address);
    if (rc != 0)
        return rc;
    if (server->listen_fd >= 0)
        return UV_EINVAL; /* listening already, as uv_tcp_bind would say */
    int fd;
    rc = open_listener((const struct sockaddr *)&address, &fd);
    if (rc != 0)
        return rc;
    rc = uv_poll_init(server->io->loop, &server->listener, fd);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    server->listen_fd = fd;
    server->listener.data = server;
    server->listening = 1;
    return uv_poll_start(&server->listener, UV_READABLE, on_listener);
}

void sioc__http_server_set_tls(sioc__http_server_t *server, SSL_CTX *ctx)
{
    if (ctx != NULL)
        SSL_CTX_up_ref(ctx);
    SSL_CTX_free(server->tls_context); /* open connections hold their own reference */
    server->tls_context = ctx;
}

int sioc__http_server_port(sioc__http_server_t *server)
{
    struct sockaddr_storage address;
    socklen_t length = sizeof(address);
    if (server->listen_fd < 0 ||
        getsockname(server->listen_fd, (struct sockaddr *)&address, &length) != 0)
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

static void on_listener_closed(uv_handle_t *handle)
{
    sioc__http_server_t *server = handle->data;
    close(server->listen_fd); /* libuv has let go of it */
    server->listen_fd = -1;
    on_server_handle_closed(handle);
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
    server->close_pending = server->listen_fd >= 0 ? 4 : 3;
    server->listening = 0;
    sioc__http_server_set_tls(server, NULL);
    if (server->listen_fd >= 0)
        uv_close((uv_handle_t *)&server->listener, on_listener_closed);
    uv_close((uv_handle_t *)&server->accept_retry, on_server_handle_closed);
    uv_close((uv_handle_t *)&server->idle, on_server_handle_closed);
    sioc__deadline_list_close(&server->request_timeouts, on_server_timer_closed);
    for (sioc__http_conn_t *http = server->connections; http != NULL; http = http->next)
        sioc__conn_close(http->conn, 1);
}

void sioc__http_server_abort_connections(sioc__http_server_t *server)
{
    /* Closing is deferred to libuv's close callbacks: the list stays intact while we walk it. */
    for (sioc__http_conn_t *http = server->connections; http != NULL; http = http->next)
        sioc__conn_close(http->conn, 0);
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
    if (line_length < 0 || (size_t)line_length >= sizeof(line))
        return -1; /* cannot happen: the status text is short */
    size_t headers_length = headers ? strlen(headers) : 0;
    http->head_written = 1;
    size_t head_length = (size_t)line_length + headers_length + 2;
    if (head_length <= SIOC_COALESCE_SIZE / 2) {
        /* Small heads are copied: pipelined answers then share buffers (connection.h). */
        char small[SIOC_COALESCE_SIZE / 2];
        memcpy(small, line, (size_t)line_length);
        if (headers_length > 0)
            memcpy(small + line_length, headers, headers_length);
        memcpy(small + line_length + headers_length, "\r\n", 2);
        return sioc__conn_write_copy(http->conn, small, head_length);
    }
    sioc__buffer_t *head = sioc__buffer_new(head_length, 0);
    if (head == NULL)
        return -1;
    memcpy(head->data, line, (size_t)line_length);
    if (headers_length > 0)
        memcpy(head->data + line_length, headers, headers_length);
    memcpy(head->data + line_length + headers_length, "\r\n", 2);
    int rc = sioc__conn_write(http->conn, head, head->data, head->length);
    sioc__buffer_unref(head);
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
    if (http->parsing)
        return; /* consume() goes on with the next request */
    /* Answered later (a held GET): the next request is parsed at the next turn of the loop,
     * never from inside this call, whose caller may be in the middle of something. */
    if (http->pending != NULL)
        schedule(http);
    else
        sioc__conn_resume_reading(http->conn);
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
    sioc__conn_resume_reading(conn);
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
