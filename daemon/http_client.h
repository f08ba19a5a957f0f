/* A small asynchronous HTTP client for the event proxy (docs/drivers.md, "proxy"): JSON POSTs
 * to a back end, on libcurl's multi interface driven by the daemon's libuv loop. libcurl keeps
 * the connections alive and reuses them (the pool: at most max_connections to one host), and
 * bounds each request by timeout_ms (connecting included). Nothing is retried here: the caller
 * knows which requests are idempotent. */
#ifndef SIOC_DAEMON_HTTP_CLIENT_H
#define SIOC_DAEMON_HTTP_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

typedef struct http_client_s http_client_t;

typedef struct http_client_options_s {
    long timeout_ms;          /* per request, connecting included */
    long max_connections;     /* kept alive per host */
    size_t max_response_size; /* longer answers fail ("answer too large") */
} http_client_options_t;

/* error: NULL, with status the HTTP status and body the parsed JSON answer (borrowed for the
 * call; NULL when the answer is empty or not JSON), or the reason the request failed (status 0;
 * "connect": 1 when the request never reached the back end, so it may be sent again). */
typedef void (*http_client_cb)(int status, json_t *body, const char *error, int connect_failed,
                               void *data);

/* NULL when out of memory or libcurl cannot start. */
http_client_t *http_client_new(uv_loop_t *loop, const http_client_options_t *options);
/* POSTs body (borrowed; serialized now) to url as application/json. callback exactly once, from
 * the loop (never from inside this call). */
void http_client_post(http_client_t *client, const char *url, const json_t *body,
                      http_client_cb callback, void *data);
/* Calls back every request in flight ("closed") and frees the client once its handles are
 * closed. Accepts NULL. */
void http_client_free(http_client_t *client);

#endif
