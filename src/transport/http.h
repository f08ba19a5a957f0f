/* HTTP/1.1 server on http-parser: keep-alive, pipelining (one request at a time; later
 * requests wait, unparsed, until the current one is answered; at most
 * SIOC_HTTP_REQUESTS_PER_TURN per read, then the loop gets its turn; none while the
 * connection's unsent answers are over its cap: backpressure), bounded head size, header
 * count, body size, and a request timeout against slowloris.
 *
 * Automatic answers: 400 malformed request, 408 head or body not complete in time, 413 body
 * over max_body_size (decided from Content-Length before any body is read when possible),
 * 431 head over max_header_size or more than max_header_count headers. Everything else is
 * the handler's: it receives each complete request (and upgrade requests, whose leftover bytes
 * belong to the new protocol), answers now or later, and must call sioc__http_finish() once. */
#ifndef SIOC_TRANSPORT_HTTP_H
#define SIOC_TRANSPORT_HTTP_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#include "core/deadline.h"
#include "transport/http_request.h"
#include "transport/connection.h"

typedef struct sioc__http_server_s sioc__http_server_t;
typedef struct sioc__http_conn_s sioc__http_conn_t;

typedef struct sioc__http_handler_s {
    /* A complete request. leftover/leftover_length: for upgrades, bytes that followed the head
     * (they belong to the new protocol; valid only during the call). */
    void (*on_request)(sioc__http_conn_t *http, sioc__http_request_t *request, uint8_t *leftover,
                       size_t leftover_length);
    /* The connection closed while a request was delivered but not finished (a held long-poll
     * GET). The request is freed after this returns. May be NULL. */
    void (*on_abort)(sioc__http_conn_t *http, sioc__http_request_t *request);
} sioc__http_handler_t;

/* Requests handled from one read (or one pending batch) before the loop gets its turn: a 64 KiB
 * read of tiny pipelined requests holds thousands. */
#define SIOC_HTTP_REQUESTS_PER_TURN 32

/* The listening socket's backlog (libuv's listen took the same). */
#define SIOC_HTTP_BACKLOG 1024
/* Connections accepted per wakeup of the listener, before the loop gets its turn. */
#define SIOC_HTTP_ACCEPTS_PER_WAKEUP 64
/* Out of descriptors (EMFILE, ENFILE) or of kernel memory, accepting waits this long before
 * it tries again (see back_off in http.c). */
#define SIOC_HTTP_ACCEPT_RETRY_MS 100

struct sioc__http_server_s {
    /* The listening socket (-1 until sioc__http_server_listen) under its poll, which closes
     * it: uv_tcp_t's stream state would only serve accept4. */
    uv_poll_t listener;
    int listen_fd;
    uv_timer_t accept_retry; /* while accepting backs off */
    int accept_backoff;      /* 1 from a failed accept4 until one says EAGAIN (logged once) */
    sioc__io_t *io;
    sioc__http_limits_t limits;
    const sioc__http_handler_t *handler;
    void *data;
    sioc__deadline_list_t request_timeouts;
    sioc__http_conn_t *connections; /* all open HTTP connections (for shutdown) */
    sioc__http_conn_t *scheduled;   /* with pending input to parse at the next turn */
    uv_idle_t idle;                 /* runs while scheduled is not empty */
    int listening;
    SSL_CTX *tls_context; /* new connections speak TLS on it (a reference); NULL: plaintext */
    void (*closed_cb)(sioc__http_server_t *server);
    int close_pending;
};

/* Initialises server (storage owned by the caller) on io's loop. */
int sioc__http_server_init(sioc__http_server_t *server, sioc__io_t *io,
                           const sioc__http_limits_t *limits, const sioc__http_handler_t *handler,
                           void *data);

/* Binds host:port (port 0 = any free port) and listens. 0 or a negative libuv error. */
int sioc__http_server_listen(sioc__http_server_t *server, const char *host, int port);

/* From now on, accepted connections use TLS on ctx (referenced; NULL: plaintext); those open
 * keep the context they started with (a certificate rotation). */
void sioc__http_server_set_tls(sioc__http_server_t *server, SSL_CTX *ctx);

/* The bound port, or -1. */
int sioc__http_server_port(sioc__http_server_t *server);

/* Stops listening and closes every HTTP connection (not those already upgraded); closed_cb
 * runs once all libuv handles of the server are released. */
void sioc__http_server_close(sioc__http_server_t *server, void (*closed_cb)(sioc__http_server_t *));

/* Drops every HTTP connection left at once, lingering ones too (a shutdown's deadline). */
void sioc__http_server_abort_connections(sioc__http_server_t *server);

/* Writes the status line and headers: "Content-Length" from content_length, then headers
 * (preformatted "Name: value\r\n" lines, may be NULL), then "Connection: close" when the
 * connection will close. The body follows through sioc__http_write_body(). */
int sioc__http_write_head(sioc__http_conn_t *http, int status, const char *headers,
                          size_t content_length);

/* Queues a body slice (a new reference to buffer). */
int sioc__http_write_body(sioc__http_conn_t *http, sioc__buffer_t *buffer, const uint8_t *bytes,
                          size_t length);

/* Ends the response: the connection closes or parses the next request. */
void sioc__http_finish(sioc__http_conn_t *http);

/* head + copied body + finish. */
void sioc__http_respond(sioc__http_conn_t *http, int status, const char *headers, const void *body,
                        size_t body_length);

/* Closes after the current response (call before writing the head). */
void sioc__http_set_close(sioc__http_conn_t *http);

/* Takes the connection over for another protocol (WebSocket): the HTTP state is freed and the
 * caller installs its own handler on the returned connection. Only from on_request of an
 * upgrade request; the response (101) is the caller's to write. */
sioc__conn_t *sioc__http_detach(sioc__http_conn_t *http);

/* Per-request user pointer (e.g. the Engine.IO session a held GET belongs to). */
void sioc__http_set_user(sioc__http_conn_t *http, void *user);
void *sioc__http_get_user(sioc__http_conn_t *http);
sioc__http_server_t *sioc__http_get_server(sioc__http_conn_t *http);
sioc__conn_t *sioc__http_get_conn(sioc__http_conn_t *http);

const char *sioc__http_status_text(int status);

#endif
