/* The HTTP API for back ends (docs/http-api.md): on its own listen address (loopback by
 * default), JSON in and out, an API key compared in constant time, bounded bodies, clear 4xx
 * bodies {"error":{"code","message"}}. Every call that changes data answers only after the
 * store made the change durable. */
#ifndef SIOC_DAEMON_API_H
#define SIOC_DAEMON_API_H

#include "channel.h"

typedef struct api_s api_t;

/* Listens on daemon->config->api.listen. 0, or -1 with error filled. */
int api_start(daemon_t *daemon, api_t **out, char *error, size_t error_size);
/* Stops listening; requests in flight are still answered; closed_cb when all is released. */
void api_stop(api_t *api, void (*closed_cb)(void *data), void *data);
int api_port(const api_t *api);
/* TLS for the connections accepted from now on (sioc_web_server_set_tls; NULL: plaintext). */
void api_set_tls(api_t *api, struct ssl_ctx_st *ctx);

#endif
