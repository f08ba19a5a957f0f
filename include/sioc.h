/* libsioc: an Engine.IO v4 and Socket.IO v5 server library on libuv.
 *
 * Conventions
 * - Functions return 0 on success or a negative error code (libuv's UV_E* values, or
 *   SIOC_E* below). Objects are created with *_new and released with *_free or *_close.
 * - Everything runs on the loop thread you pass in; no call is thread-safe.
 * - Data you pass to a send function is copied (or, for sioc_buffer_t, referenced) before the
 *   call returns: you keep ownership of your pointers. Data passed to your callbacks is valid
 *   only during the callback.
 *
 * Layers: the Engine.IO server (sioc_eio_*) handles HTTP long-polling and WebSocket transports,
 * heartbeats and upgrades, and hands you whole messages. */
#ifndef SIOC_H
#define SIOC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SIOC_BUILDING_LIBRARY)
#define SIOC_API __attribute__((visibility("default")))
#else
#define SIOC_API
#endif

#define SIOC_VERSION "0.1.0"

#define SIOC_EINVAL (-22)   /* bad argument (same value as UV_EINVAL) */
#define SIOC_ENOMEM (-12)   /* allocation failed */
#define SIOC_ECLOSED (-32)  /* the socket is closing or closed */
#define SIOC_ENOBUFS (-105) /* the socket's outgoing buffer is full (slow reader) */

/* ---- Engine.IO server -------------------------------------------------------------------- */

typedef struct sioc_eio_server_s sioc_eio_server_t;
typedef struct sioc_eio_socket_s sioc_eio_socket_t;

typedef enum sioc_transport {
    SIOC_TRANSPORT_POLLING = 1,
    SIOC_TRANSPORT_WEBSOCKET = 2,
} sioc_transport_t;

/* A view of the HTTP request that opens a session or carries a packet (for allow_request). */
typedef struct sioc_request_s sioc_request_t;
SIOC_API const char *sioc_request_method(const sioc_request_t *request);
SIOC_API const char *sioc_request_url(const sioc_request_t *request);
/* Header value by case-insensitive name; NULL if absent. *length gets the value length. */
SIOC_API const char *sioc_request_header(const sioc_request_t *request, const char *name,
                                         size_t *length);
SIOC_API const char *sioc_request_remote_address(const sioc_request_t *request);

/* Return 0 to accept a request; anything else refuses it with HTTP 403
 * {"code":4,"message":<*message or "Forbidden">}. */
typedef int (*sioc_eio_allow_request_cb)(const sioc_request_t *request, void *data,
                                         const char **message);

typedef struct sioc_eio_options_s {
    const char *path;                /* "/engine.io/" (Socket.IO uses "/socket.io/") */
    uint32_t ping_interval_ms;       /* 25000 */
    uint32_t ping_timeout_ms;        /* 20000 */
    uint32_t upgrade_timeout_ms;     /* 10000 */
    size_t max_payload;              /* maxHttpBufferSize: 1,000,000 bytes per POST or message */
    size_t max_buffered_bytes;       /* outgoing bytes per socket before the slow-reader policy:
                                        volatile messages are dropped, then the socket closes.
                                        Default 8 MiB */
    unsigned transports;             /* SIOC_TRANSPORT_* bits; default both */
    int allow_upgrades;              /* 1 */
    const char *const *cors_origins; /* NULL: no CORS headers at all. "*" allows any origin */
    size_t cors_origin_count;
    int cors_credentials;             /* Access-Control-Allow-Credentials: true (not with "*") */
    uint32_t request_timeout_ms;      /* HTTP head and body must arrive within: 10000 */
    size_t max_header_size;           /* 16384 */
    uint32_t max_header_count;        /* 100 */
    uint32_t max_websocket_fragments; /* frames per WebSocket message: 1024 (close 1008) */
    sioc_eio_allow_request_cb allow_request;
    void *allow_request_data;
} sioc_eio_options_t;

typedef struct sioc_eio_callbacks_s {
    /* A new session is open. request is the HTTP request that opened it (valid during the
     * call only). */
    void (*on_connection)(sioc_eio_socket_t *socket, const sioc_request_t *request, void *data);
    /* A whole message: text (UTF-8) or binary. */
    void (*on_message)(sioc_eio_socket_t *socket, const uint8_t *bytes, size_t length, int binary,
                       void *data);
    /* The session is closed: "transport close", "transport error", "ping timeout",
     * "parse error", "forced close", "server shutting down". The socket is freed after. */
    void (*on_close)(sioc_eio_socket_t *socket, const char *reason, void *data);
} sioc_eio_callbacks_t;

/* Fills options with the defaults above. */
SIOC_API void sioc_eio_options_init(sioc_eio_options_t *options);

/* Creates a server on loop; options are copied (strings too). */
SIOC_API int sioc_eio_server_new(uv_loop_t *loop, const sioc_eio_options_t *options,
                                 const sioc_eio_callbacks_t *callbacks, void *data,
                                 sioc_eio_server_t **out);

/* Listens on host:port (port 0 picks a free port; see sioc_eio_server_port). */
SIOC_API int sioc_eio_server_listen(sioc_eio_server_t *server, const char *host, int port);
SIOC_API int sioc_eio_server_port(sioc_eio_server_t *server);
SIOC_API size_t sioc_eio_server_socket_count(const sioc_eio_server_t *server);

/* Stops accepting, closes every session ("server shutting down") and frees the server once
 * libuv released its handles; closed_cb (may be NULL) runs then. */
SIOC_API void sioc_eio_server_close(sioc_eio_server_t *server, void (*closed_cb)(void *data),
                                    void *data);

/* Sends one message (copied). SIOC_ENOBUFS when the slow-reader cap is reached (the socket
 * is then closing), SIOC_ECLOSED after close. */
SIOC_API int sioc_eio_socket_send(sioc_eio_socket_t *socket, const void *bytes, size_t length,
                                  int binary);

/* Closes the session ("forced close" is reported to on_close). */
SIOC_API void sioc_eio_socket_close(sioc_eio_socket_t *socket);

SIOC_API const char *sioc_eio_socket_id(const sioc_eio_socket_t *socket);
SIOC_API sioc_transport_t sioc_eio_socket_transport(const sioc_eio_socket_t *socket);
SIOC_API void sioc_eio_socket_set_data(sioc_eio_socket_t *socket, void *data);
SIOC_API void *sioc_eio_socket_get_data(const sioc_eio_socket_t *socket);
SIOC_API sioc_eio_server_t *sioc_eio_socket_server(const sioc_eio_socket_t *socket);

#ifdef __cplusplus
}
#endif

#endif
