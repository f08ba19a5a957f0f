/* libsioc: an Engine.IO v4 and Socket.IO v5 server library on libuv.
 *
 * Conventions
 * - Functions return 0 on success or a negative error code (libuv's UV_E* values, or
 *   SIOC_E* below). Objects are created with *_new and released with *_free or *_close.
 * - Everything runs on the loop thread you pass in; no call is thread-safe.
 * - Data you pass to a send function is encoded or copied before the call returns: you keep
 *   ownership of your pointers (JSON arguments excepted: see below). Data passed to your callbacks
 * is valid only during the callback.
 *
 * Layers: the Engine.IO server (sioc_eio_*) handles HTTP long-polling and WebSocket transports,
 * heartbeats and upgrades, and hands you whole messages. The Socket.IO server (sioc_server_*,
 * sioc_namespace_*, sioc_socket_*, sioc_broadcast_*) runs on top of it: namespaces, rooms,
 * events, acknowledgements, binary attachments, middleware and broadcasts.
 *
 * JSON values are jansson's json_t. Emit functions TAKE the caller's reference to args (like
 * jansson's *_new setters), so sioc_socket_emit(socket, "hi", json_pack("[s]", "there")) does
 * not leak; values handed to your callbacks are borrowed (json_incref to keep them). */
#ifndef SIOC_H
#define SIOC_H

#include <jansson.h>
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

#define SIOC_EINVAL (-22)     /* bad argument (same value as UV_EINVAL) */
#define SIOC_ENOMEM (-12)     /* allocation failed */
#define SIOC_ECLOSED (-32)    /* the socket is closing or closed */
#define SIOC_ENOBUFS (-105)   /* the socket's outgoing buffer is full (slow reader) */
#define SIOC_ETIMEDOUT (-110) /* an acknowledgement did not come in time */

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
SIOC_API size_t sioc_request_header_count(const sioc_request_t *request);
/* The index-th header as received: its name, and its value and length. 0, or -1 if out of range. */
SIOC_API int sioc_request_header_at(const sioc_request_t *request, size_t index, const char **name,
                                    const char **value, size_t *length);

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
    /* sioc_eio_server_close lets answers leave and peers close (lingering close) for at most
     * this long, then drops every connection left: 5000. 0: no bound. */
    uint32_t shutdown_timeout_ms;
    /* httpCompression: a polling answer of at least http_compression_threshold bytes is sent
     * gzip- or deflate-compressed when the request's Accept-Encoding allows it (negotiated as
     * Node does). On (1) with 1024 bytes by default, as in engine.io; 0 turns it off. */
    int http_compression;
    size_t http_compression_threshold;
    /* perMessageDeflate (RFC 7692): accepted when the client offers it, messages of at least
     * per_message_deflate_threshold bytes (1024, ws's threshold) are sent compressed unless sent
     * with compress off. Off (0) by default, as in engine.io. sioc always answers with
     * server_no_context_takeover and client_no_context_takeover: no zlib state per connection,
     * and a broadcast is compressed once (docs/compatibility.md). */
    int per_message_deflate;
    size_t per_message_deflate_threshold;
    /* engine.io's `cookie` option: the polling handshake answer sets a cookie holding the
     * session id ("io=<sid>; Path=/; HttpOnly; SameSite=Lax" with the defaults, as the cookie
     * npm module writes it). name NULL: no cookie (the default, as in Node). Strings are
     * copied; a name that is not a token, or a path or domain with ';' or control characters,
     * makes sioc_eio_server_new fail with SIOC_EINVAL. */
    struct {
        const char *name;      /* NULL; Node's default name is "io" */
        const char *path;      /* "/"; NULL: no Path attribute */
        const char *domain;    /* NULL */
        const char *same_site; /* "lax"; "strict", "none", or NULL for no SameSite */
        long max_age_s;        /* < 0 (default): no Max-Age */
        int http_only;         /* 1 */
        int secure;            /* 0 */
    } cookie;
    /* TLS on the listener (https and wss; see "TLS" below): a certificate chain (PEM, leaf
     * first, then intermediates) and its private key (PEM), or a context of your own, which
     * wins over the files (referenced, not copied). All NULL: plaintext (the default). Files
     * that do not load make sioc_eio_server_new fail with SIOC_EINVAL; sioc_tls_context_new
     * says why. */
    struct {
        const char *cert_file;
        const char *key_file;
        struct ssl_ctx_st *context; /* OpenSSL's SSL_CTX */
    } tls;
    /* allowEIO3: also accept Engine.IO v3 clients (EIO=3, or no EIO at all, as Node counts it;
     * socket.io-client 2.x): v3 payload framing, the client pings and the server answers, and
     * at the Socket.IO layer the v4 protocol (docs/compatibility.md). Off (0) by default, as in
     * engine.io: such a handshake is refused with code 5 "Unsupported protocol version". */
    int allow_eio3;
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
    /* The session moved from polling to WebSocket (may be NULL). */
    void (*on_upgrade)(sioc_eio_socket_t *socket, void *data);
} sioc_eio_callbacks_t;

/* Fills options with the defaults above. */
SIOC_API void sioc_eio_options_init(sioc_eio_options_t *options);

/* ---- TLS ------------------------------------------------------------------------------------
 * OpenSSL runs on memory (the socket stays libuv's): the handshake counts against
 * request_timeout_ms (the first request must be complete within it, handshake included), what
 * TLS queues counts against max_buffered_bytes, a graceful close sends close_notify, and a bad
 * handshake (garbage, plaintext HTTP) gets OpenSSL's alert and a close. An idle connection
 * holds only its SSL object (record buffers are released when empty). */
struct ssl_ctx_st;
/* A server context from PEM files: TLS 1.2 and 1.3 only, OpenSSL's default ciphers, ALPN
 * "http/1.1", no renegotiation. NULL on failure, with the file and OpenSSL's reason in error
 * (may be NULL). Release with sioc_tls_context_free (SSL_CTX_free). */
SIOC_API struct ssl_ctx_st *sioc_tls_context_new(const char *cert_file, const char *key_file,
                                                 char *error, size_t error_size);
SIOC_API void sioc_tls_context_free(struct ssl_ctx_st *ctx);

/* Creates a server on loop; options are copied (strings too). */
SIOC_API int sioc_eio_server_new(uv_loop_t *loop, const sioc_eio_options_t *options,
                                 const sioc_eio_callbacks_t *callbacks, void *data,
                                 sioc_eio_server_t **out);

/* Listens on host:port (port 0 picks a free port; see sioc_eio_server_port). */
SIOC_API int sioc_eio_server_listen(sioc_eio_server_t *server, const char *host, int port);
SIOC_API int sioc_eio_server_port(sioc_eio_server_t *server);
/* Connections accepted from now on use TLS on ctx (referenced; NULL: plaintext); open ones keep
 * theirs. A certificate rotation: build the new context, set it, free yours. */
SIOC_API void sioc_eio_server_set_tls(sioc_eio_server_t *server, struct ssl_ctx_st *ctx);
/* Replaces the CORS options (cors_origins, cors_origin_count, cors_credentials; copied) for the
 * requests that come from then on, as a configuration reload does. 0, or SIOC_ENOMEM with the
 * previous list kept. */
SIOC_API int sioc_eio_server_set_cors(sioc_eio_server_t *server, const char *const *origins,
                                      size_t count, int credentials);
/* The limits for the sessions that open from now on, as a configuration reload does: the
 * ping_interval_ms, ping_timeout_ms, max_payload and max_buffered_bytes of options (the rest is
 * ignored). An open session keeps those of its handshake for its life (its client was told
 * pingInterval, pingTimeout and maxPayload there); upgrade_timeout_ms applies to the upgrades
 * that start from now on, max_buffered_bytes also to the connections accepted from now on. 0,
 * SIOC_ENOMEM or SIOC_ECLOSED, with nothing changed. */
SIOC_API int sioc_eio_server_set_limits(sioc_eio_server_t *server,
                                        const sioc_eio_options_t *options);
SIOC_API size_t sioc_eio_server_socket_count(const sioc_eio_server_t *server);

/* Stops accepting, closes every session ("server shutting down") and frees the server once
 * libuv released its handles; closed_cb (may be NULL) runs then, within shutdown_timeout_ms
 * even if peers neither read nor close. */
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
/* The session's Engine.IO protocol revision: 4, or 3 for a client let in by allow_eio3. */
SIOC_API int sioc_eio_socket_protocol(const sioc_eio_socket_t *socket);
SIOC_API void sioc_eio_socket_set_data(sioc_eio_socket_t *socket, void *data);
SIOC_API void *sioc_eio_socket_get_data(const sioc_eio_socket_t *socket);
SIOC_API sioc_eio_server_t *sioc_eio_socket_server(const sioc_eio_socket_t *socket);

/* Engine.IO error codes, the index of sioc_eio_stats_t.refused: 0 Transport unknown, 1 Session ID
 * unknown, 2 Bad handshake method, 3 Bad request, 4 Forbidden (allow_request said no), 5
 * Unsupported protocol version. */
#define SIOC_EIO_ERROR_COUNT 6
/* The message Node's engine.io answers for code ("Session ID unknown"), or NULL. */
SIOC_API const char *sioc_eio_error_message(int code);

/* The reasons a session closes with, as engine.io names them ("transport close", "ping
 * timeout", ...): index 0 to SIOC_EIO_CLOSE_REASON_COUNT - 1, NULL past them. */
#define SIOC_EIO_CLOSE_REASON_COUNT 6
SIOC_API const char *sioc_eio_close_reason(int index);

/* What an Engine.IO server has done since it was created (counters) and holds now (gauges), for
 * monitoring (the daemon's /metrics, the admin UI). Messages are Engine.IO message packets (pings
 * and other control packets are not counted); their bytes are the payload, without the packet
 * type, as @socket.io/admin-ui counts them. */
typedef struct sioc_eio_stats_s {
    uint64_t sessions_opened;
    uint64_t sessions_closed;
    uint64_t messages_in;
    uint64_t messages_out;
    uint64_t message_bytes_in;
    uint64_t message_bytes_out;
    uint64_t slow_reader_closes;            /* sessions closed past max_buffered_bytes */
    uint64_t refused[SIOC_EIO_ERROR_COUNT]; /* requests answered with an Engine.IO error */
    size_t polling_sessions;                /* gauges: open sessions by current transport */
    size_t websocket_sessions;
    /* sessions_closed by the reason engine.io's "close" event gives, in the order of
     * sioc_eio_close_reason(); a reason not in that list is counted in sessions_closed only. */
    uint64_t sessions_closed_by_reason[SIOC_EIO_CLOSE_REASON_COUNT];
} sioc_eio_stats_t;
SIOC_API void sioc_eio_server_stats(const sioc_eio_server_t *server, sioc_eio_stats_t *out);

/* ---- Socket.IO server --------------------------------------------------------------------- */

typedef struct sioc_server_s sioc_server_t;
typedef struct sioc_namespace_s sioc_namespace_t;

/* Socket ids (and Engine.IO session ids) are this many characters: char id[SIOC_ID_SIZE]
 * holds one with its NUL. The exception: with allow_eio3, an Engine.IO v3 client's socket
 * outside "/" has Node's id "<namespace>#<engine id>", longer. */
#define SIOC_SOCKET_ID_LENGTH 20
#define SIOC_ID_SIZE (SIOC_SOCKET_ID_LENGTH + 1)
typedef struct sioc_socket_s sioc_socket_t;
typedef struct sioc_next_s sioc_next_t;

/* Adapters (rooms and broadcasts across servers): see sioc_adapter.h. */
typedef struct sioc_adapter_s sioc_adapter_t;
typedef struct sioc_adapter_local_s sioc_adapter_local_t;
typedef struct sioc_adapter_reply_s sioc_adapter_reply_t;
typedef int (*sioc_adapter_factory_cb)(sioc_namespace_t *nsp, const sioc_adapter_local_t *local,
                                       void *data, sioc_adapter_t **out);

typedef enum sioc_parser {
    SIOC_PARSER_JSON = 0,    /* socket.io-parser, the default of every client */
    SIOC_PARSER_MSGPACK = 1, /* socket.io-msgpack-parser */
} sioc_parser_t;

typedef struct sioc_server_options_s {
    sioc_eio_options_t engine;              /* engine.path defaults to "/socket.io/" here */
    uint32_t connect_timeout_ms;            /* no namespace joined in time: close (45000) */
    sioc_parser_t parser;                   /* SIOC_PARSER_JSON */
    size_t max_attachments;                 /* binary attachments per packet (10) */
    int recovery;                           /* connection state recovery (0 = off, the default) */
    uint32_t max_disconnection_duration_ms; /* recovery window (120000) */
    int recovery_skip_middlewares;          /* a recovered socket skips middleware (1) */
    /* Where recovery keeps its log and sessions (sioc_adapter.h): NULL = in this process's
     * memory. Owned by the caller; free it after sioc_server_close's callback. */
    struct sioc_recovery_store_s *recovery_store;
    /* How often a connected socket's session is written again to a store that keeps connected
     * sessions (0 = max_disconnection_duration_ms / 4, at most 30000). */
    uint32_t recovery_refresh_ms;
    /* Recoverable broadcasts waiting for the store's append (or written at the cap and not yet
     * answered) at most, in number and in bytes (about: arguments as JSON, attachments, room
     * names); 0 = no limit. Past either, what waits is written at once without an offset and
     * the new broadcast too, not appended (docs/recovery.md, "When the store falls behind"):
     * 10000 and 64 MiB. */
    size_t recovery_max_pending;
    size_t recovery_max_pending_bytes;
    /* The adapter of every namespace (sioc_adapter.h): NULL = in-memory, one server. */
    sioc_adapter_factory_cb adapter;
    void *adapter_data;
} sioc_server_options_t;

/* A binary argument. Incoming: points into the packet, valid during the callback. */
typedef struct sioc_binary_s {
    const uint8_t *data;
    size_t length;
} sioc_binary_t;

/* Arguments with binary parts: args is a JSON array in which each binary value is a
 * placeholder object (sioc_placeholder(i)) standing for attachments[i]. */
typedef struct sioc_message_s {
    json_t *args;
    const sioc_binary_t *attachments;
    size_t attachment_count;
} sioc_message_t;

/* An incoming event. */
typedef struct sioc_event_s {
    const char *name; /* event name (a numeric name arrives as its decimal text) */
    json_t *args;     /* array of the arguments after the name (borrowed) */
    const sioc_binary_t *attachments;
    size_t attachment_count;
    int64_t ack_id; /* >= 0: the client waits for sioc_socket_ack(socket, ack_id, ...) */
    /* sioc's own: the arguments as they came, for a pass-through handler (see
     * sioc_namespace_on_passthrough); NULL otherwise. */
    struct sioc_event_bytes_s *bytes;
} sioc_event_t;

typedef void (*sioc_connection_cb)(sioc_socket_t *socket, void *data);
typedef void (*sioc_disconnect_cb)(sioc_socket_t *socket, const char *reason, void *data);
typedef void (*sioc_event_cb)(sioc_socket_t *socket, const sioc_event_t *event, void *data);
/* Call sioc_next() or sioc_next_error() exactly once, now or later (after a database lookup). */
typedef void (*sioc_middleware_cb)(sioc_socket_t *socket, sioc_next_t *next, void *data);
/* error: 0, or SIOC_ETIMEDOUT / SIOC_ECLOSED with response NULL. */
typedef void (*sioc_ack_cb)(sioc_socket_t *socket, int error, const sioc_event_t *response,
                            void *data);
/* One answer per client that answered, in arrival order: each an event view whose args are that
 * client's acknowledgement arguments (with its own attachments). Borrowed for the call. */
typedef void (*sioc_broadcast_ack_cb)(int error, const sioc_event_t *responses, size_t count,
                                      void *data);
/* Dynamic namespaces: return 1 to create the namespace name for this connection. */
typedef int (*sioc_namespace_filter_cb)(const char *name, json_t *auth, void *data);

SIOC_API void sioc_server_options_init(sioc_server_options_t *options);
SIOC_API int sioc_server_new(uv_loop_t *loop, const sioc_server_options_t *options,
                             sioc_server_t **out);
SIOC_API int sioc_server_listen(sioc_server_t *server, const char *host, int port);
SIOC_API int sioc_server_port(sioc_server_t *server);
/* sioc_eio_server_set_limits with options->engine, and connect_timeout_ms for the connections
 * that open from now on (the rest of options is ignored). */
SIOC_API int sioc_server_set_limits(sioc_server_t *server, const sioc_server_options_t *options);
/* sioc_eio_server_set_tls on the server's Engine.IO server. */
SIOC_API void sioc_server_set_tls(sioc_server_t *server, struct ssl_ctx_st *ctx);
/* sioc_eio_server_set_cors on the server's Engine.IO server. */
SIOC_API int sioc_server_set_cors(sioc_server_t *server, const char *const *origins, size_t count,
                                  int credentials);
/* Disconnects every socket ("server shutting down") and frees the server once closed. */
SIOC_API void sioc_server_close(sioc_server_t *server, void (*closed_cb)(void *data), void *data);

/* The namespace called name ("/" exists from the start; a missing leading '/' is added),
 * created on first use. NULL on allocation failure. */
SIOC_API sioc_namespace_t *sioc_server_of(sioc_server_t *server, const char *name);
/* A parent for dynamic namespaces: a CONNECT to an unknown name asks filter; when it agrees,
 * a child namespace is created that uses the parent's handlers and middleware, as Node's
 * io.of(regex) / io.of(function). Emitting on the parent reaches every child. */
SIOC_API uv_loop_t *sioc_server_loop(const sioc_server_t *server);
SIOC_API sioc_namespace_t *sioc_server_of_dynamic(sioc_server_t *server,
                                                  sioc_namespace_filter_cb filter, void *data);

SIOC_API const char *sioc_namespace_name(const sioc_namespace_t *nsp);
SIOC_API sioc_server_t *sioc_namespace_server(const sioc_namespace_t *nsp);
SIOC_API size_t sioc_namespace_socket_count(const sioc_namespace_t *nsp);
/* Sockets of this server in room (0 if none): "is anyone in user:42?" without fetchSockets. */
SIOC_API size_t sioc_namespace_room_size(const sioc_namespace_t *nsp, const char *room);
/* A connected socket of this namespace by id (Node's nsp.sockets.get(id)), or NULL. */
SIOC_API sioc_socket_t *sioc_namespace_socket(sioc_namespace_t *nsp, const char *id);
SIOC_API int sioc_namespace_use(sioc_namespace_t *nsp, sioc_middleware_cb middleware, void *data);
SIOC_API void sioc_namespace_on_connection(sioc_namespace_t *nsp, sioc_connection_cb callback,
                                           void *data);
/* Before the socket leaves its rooms (they are still readable). */
SIOC_API void sioc_namespace_on_disconnecting(sioc_namespace_t *nsp, sioc_disconnect_cb callback,
                                              void *data);
SIOC_API void sioc_namespace_on_disconnect(sioc_namespace_t *nsp, sioc_disconnect_cb callback,
                                           void *data);
/* Makes socket.data on demand for this namespace's sockets whose data was never made or was
 * taken (sioc_socket_take_data): for a program that keeps what data says in its own per-socket
 * state and should not hold it twice per idle socket. build returns a new reference (NULL: an
 * empty object). What sioc_socket_data() gets is kept from then on (it may be changed in
 * place); fetchSockets, the recovery session and the other readers that only copy data build
 * it for that use alone. */
typedef json_t *(*sioc_socket_data_cb)(sioc_socket_t *socket, void *data);
SIOC_API void sioc_namespace_on_socket_data(sioc_namespace_t *nsp, sioc_socket_data_cb build,
                                            void *data);
/* Handler for one event name (replaces an earlier one for the same name). */
SIOC_API int sioc_namespace_on(sioc_namespace_t *nsp, const char *event, sioc_event_cb callback,
                               void *data);
/* A pass-through handler (for events whose arguments are mostly passed on, as an echo's ack):
 * as sioc_namespace_on, but the event may come with args NULL, its arguments kept as the bytes
 * that came, validated as strictly as always and parsed only if sioc_event_args() asks.
 * sioc_socket_ack_args() answers with them, as bytes when they are already in the form sioc
 * would write (JSON.stringify's). With a catch-all (on_any), an observer of incoming events or
 * packet middleware on the socket, or for a binary event, args is set as for any handler. */
SIOC_API int sioc_namespace_on_passthrough(sioc_namespace_t *nsp, const char *event,
                                           sioc_event_cb callback, void *data);
/* The event's arguments as a JSON array (borrowed: valid during the callback, json_incref to
 * keep): event->args, or for a pass-through event its bytes parsed on the first call, then
 * kept until the callback returns. NULL only when out of memory. */
SIOC_API json_t *sioc_event_args(const sioc_event_t *event);
/* Catch-all: every incoming event, before its own handler. */
SIOC_API void sioc_namespace_on_any(sioc_namespace_t *nsp, sioc_event_cb callback, void *data);
/* Every outgoing event of a socket of this namespace (not broadcasts), before it is sent. */
SIOC_API void sioc_namespace_on_any_outgoing(sioc_namespace_t *nsp, sioc_event_cb callback,
                                             void *data);

SIOC_API void sioc_next(sioc_next_t *next);
/* Refuses the connection: the client gets connect_error with message and data (taken; may be
 * NULL). */
SIOC_API void sioc_next_error(sioc_next_t *next, const char *message, json_t *data);

/* {"_placeholder":true,"num":index}: put it in args where attachments[index] goes. */
SIOC_API json_t *sioc_placeholder(size_t index);
/* The attachment a placeholder value of an incoming event stands for, or NULL. */
SIOC_API const sioc_binary_t *sioc_event_binary(const sioc_event_t *event, const json_t *value);

SIOC_API const char *sioc_socket_id(const sioc_socket_t *socket);
/* The id of its Engine.IO connection (Node's socket.conn.id), or "" once the connection is gone. */
SIOC_API const char *sioc_socket_client_id(const sioc_socket_t *socket);
SIOC_API sioc_namespace_t *sioc_socket_namespace(const sioc_socket_t *socket);
/* {headers, time, address, xdomain, secure, issued, url, query, auth} as in Node (borrowed).
 * Built on the first call and kept for the socket's life, as jansson objects: about 4 KB of
 * heap for a WebSocket client's few headers, where an idle socket takes about 1 KB without it.
 * A program that reads it once, at connection, wants sioc_socket_handshake_copy(). */
SIOC_API json_t *sioc_socket_handshake(const sioc_socket_t *socket);
/* The same object sioc_socket_handshake() gives, as a new reference the caller json_decref()s,
 * and nothing kept on the socket: for a middleware that reads a header, a cookie or the query
 * once. Built again on every call (its "auth" parsed from the socket's text each time), so take
 * one per call; once sioc_socket_handshake() made its object, that one is shared instead. NULL
 * when out of memory. */
SIOC_API json_t *sioc_socket_handshake_copy(const sioc_socket_t *socket);
/* The auth payload of the CONNECT packet (borrowed; an empty object when none was sent). */
SIOC_API json_t *sioc_socket_auth(const sioc_socket_t *socket);
/* A string member of the CONNECT's auth (auth[key]) as a new NUL-terminated copy to free(),
 * *length (may be NULL) its bytes (a string may hold NUL); NULL when auth has no such member,
 * it is not a string, or out of memory. Unlike sioc_socket_auth(), it does not make the auth
 * object that the socket then keeps (a JWT's: about 470 bytes per socket). */
SIOC_API char *sioc_socket_auth_string(const sioc_socket_t *socket, const char *key,
                                       size_t *length);
/* The auth payload of the CONNECT packet as a new reference for the caller to json_decref():
 * the kept object when sioc_socket_auth() made one, else one parsed for this call that the
 * socket does not keep. NULL when out of memory. */
SIOC_API json_t *sioc_socket_auth_copy(const sioc_socket_t *socket);
/* Gives back what the socket keeps of the CONNECT's auth (a JWT's text: 200 to 300 bytes per
 * socket), for a program that has read what it needs (a token it verified) while Node's
 * socket.handshake.auth would keep it for the socket's life. From then on every reader finds
 * an empty object: sioc_socket_auth(), sioc_socket_auth_copy(), the "auth" of
 * sioc_socket_handshake() and of fetchSockets (a cluster's other nodes too); an object
 * sioc_socket_auth() lent before is emptied in place, so a pointer to it stays valid. Any
 * number of times. */
SIOC_API void sioc_socket_auth_release(sioc_socket_t *socket);
/* Serialisable data, as Node's socket.data (borrowed; an empty object at first, which you may
 * modify in place). It travels with fetchSockets and survives a recovered reconnection. */
SIOC_API json_t *sioc_socket_data(sioc_socket_t *socket);
/* Replaces it with any JSON value (taken; NULL = null). */
SIOC_API void sioc_socket_set_data(sioc_socket_t *socket, json_t *data);
/* Takes it away (the reference is the caller's; NULL when it was never made) and leaves it
 * unmade: the next read makes it again (sioc_namespace_on_socket_data) or finds {}. */
SIOC_API json_t *sioc_socket_take_data(sioc_socket_t *socket);
/* A pointer for your own use (not serialised). */
SIOC_API void sioc_socket_set_user(sioc_socket_t *socket, void *user);
SIOC_API void *sioc_socket_get_user(const sioc_socket_t *socket);
SIOC_API int sioc_socket_recovered(const sioc_socket_t *socket);
/* With recovery on and a store that keeps connected sessions: writes the socket's session
 * (rooms, data) at the end of this loop iteration instead of at the next refresh. Call it after
 * changing sioc_socket_data() for the change to survive a crash at once. */
SIOC_API void sioc_socket_save_session(sioc_socket_t *socket);
SIOC_API int sioc_socket_connected(const sioc_socket_t *socket);
SIOC_API sioc_transport_t sioc_socket_transport(const sioc_socket_t *socket);
/* Rooms are joined once the socket is connected (from on_connection on), not in middleware. */
SIOC_API int sioc_socket_join(sioc_socket_t *socket, const char *room);
SIOC_API int sioc_socket_leave(sioc_socket_t *socket, const char *room);
SIOC_API int sioc_socket_in_room(const sioc_socket_t *socket, const char *room);
/* The rooms the socket is in (a new array: json_decref it). */
SIOC_API json_t *sioc_socket_rooms(const sioc_socket_t *socket);
/* Leaves the namespace ("server namespace disconnect"); close = 1 also closes the connection. */
SIOC_API void sioc_socket_disconnect(sioc_socket_t *socket, int close);

/* Per-socket packet middleware (Node's socket.use): every incoming event of the socket goes
 * through the middlewares in the order they were added, after the catch-all (onAny) and
 * before its handler. Each calls sioc_event_next() exactly once, now or later; event and
 * everything it points to stay valid until then. With an error the event is dropped and the
 * socket's error handler gets the message (Node emits "error" on the server-side socket); an
 * event let through after its socket disconnected is dropped. SIOC_ENOMEM or 0. */
typedef struct sioc_event_next_s sioc_event_next_t;
typedef void (*sioc_packet_middleware_cb)(sioc_socket_t *socket, const sioc_event_t *event,
                                          sioc_event_next_t *next, void *data);
typedef void (*sioc_socket_error_cb)(sioc_socket_t *socket, const char *message, void *data);
SIOC_API int sioc_socket_use(sioc_socket_t *socket, sioc_packet_middleware_cb middleware,
                             void *data);
/* error NULL lets the event go on; otherwise it is refused with that message (copied). */
SIOC_API void sioc_event_next(sioc_event_next_t *next, const char *error);
/* The socket's error handler (Node's socket.on("error")): a refusal of its packet middleware,
 * and the decoding error that closes its connection (Node's Client.onerror: every socket of
 * the connection gets socket.io-parser's message, e.g. "invalid payload", before the close;
 * what it emits then is still sent). */
SIOC_API void sioc_socket_on_error(sioc_socket_t *socket, sioc_socket_error_cb callback,
                                   void *data);
/* The error handler of every socket of nsp that has none of its own: no per-socket state. */
SIOC_API void sioc_namespace_on_socket_error(sioc_namespace_t *nsp, sioc_socket_error_cb callback,
                                             void *data);

/* Emit to one socket. args: a JSON array (taken) or NULL for no arguments. */
SIOC_API int sioc_socket_emit(sioc_socket_t *socket, const char *event, json_t *args);
SIOC_API int sioc_socket_emit_message(sioc_socket_t *socket, const char *event,
                                      const sioc_message_t *message);
/* With an acknowledgement: callback gets the client's answer, or SIOC_ETIMEDOUT after
 * timeout_ms (0 = wait forever), or SIOC_ECLOSED if the socket went first. message->args is
 * taken. */
SIOC_API int sioc_socket_emit_with_ack(sioc_socket_t *socket, const char *event,
                                       const sioc_message_t *message, uint32_t timeout_ms,
                                       sioc_ack_cb callback, void *data);
/* Answers an event's ack_id (args taken; NULL = no arguments). SIOC_EINVAL, args still taken,
 * when ack_id < 0 (the client asked for no ack), so "ack if asked" needs no test of its own. */
SIOC_API int sioc_socket_ack(sioc_socket_t *socket, int64_t ack_id, json_t *args);
/* Answers event's ack_id (event: what socket's handler got) with event's own arguments and
 * attachments (an echo), without parsing or encoding them again when they came as bytes in
 * sioc's form and were not asked for with sioc_event_args (whose array the handler may have
 * changed: that array is sent then). SIOC_EINVAL when the client asked for no ack; otherwise as
 * sioc_socket_ack_message. */
SIOC_API int sioc_socket_ack_args(sioc_socket_t *socket, const sioc_event_t *event);
/* As sioc_socket_ack, with binary attachments (at most 16). */
SIOC_API int sioc_socket_ack_message(sioc_socket_t *socket, int64_t ack_id,
                                     const sioc_message_t *message);

/* Broadcasts. A sioc_broadcast_t is built on the stack; room names are borrowed until the
 * emit returns. */
#define SIOC_BROADCAST_MAX_ROOMS 16
#define SIOC_BROADCAST_VOLATILE 1u /* drop for clients that cannot take it right now */
#define SIOC_BROADCAST_LOCAL 2u    /* this server only (matters with a cluster adapter) */
/* Node compresses every emit by default (compress: true); SIOC_BROADCAST_COMPRESS is that
 * default, kept for source compatibility. SIOC_BROADCAST_NO_COMPRESS is Node's compress(false):
 * sent uncompressed over permessage-deflate and left out of httpCompression. */
#define SIOC_BROADCAST_COMPRESS 4u
#define SIOC_BROADCAST_NO_COMPRESS 8u
typedef struct sioc_broadcast_s {
    sioc_namespace_t *nsp;
    const char *rooms[SIOC_BROADCAST_MAX_ROOMS];
    size_t room_count;
    const char *except[SIOC_BROADCAST_MAX_ROOMS];
    size_t except_count;
    unsigned flags;
} sioc_broadcast_t;

/* Everyone in nsp (add rooms with sioc_broadcast_to to narrow it). */
SIOC_API void sioc_broadcast_init(sioc_broadcast_t *broadcast, sioc_namespace_t *nsp);
/* socket.broadcast: everyone in the socket's namespace but the socket itself. */
SIOC_API void sioc_broadcast_init_from(sioc_broadcast_t *broadcast, sioc_socket_t *socket);
SIOC_API int sioc_broadcast_to(sioc_broadcast_t *broadcast, const char *room);
SIOC_API int sioc_broadcast_except(sioc_broadcast_t *broadcast, const char *room);
SIOC_API int sioc_broadcast_emit(const sioc_broadcast_t *broadcast, const char *event,
                                 json_t *args);
SIOC_API int sioc_broadcast_emit_message(const sioc_broadcast_t *broadcast, const char *event,
                                         const sioc_message_t *message);
/* Waits for every targeted client's acknowledgement, or timeout_ms (then error is
 * SIOC_ETIMEDOUT and responses holds those that came). */
SIOC_API int sioc_broadcast_emit_with_ack(const sioc_broadcast_t *broadcast, const char *event,
                                          const sioc_message_t *message, uint32_t timeout_ms,
                                          sioc_broadcast_ack_cb callback, void *data);
/* The matching sockets, as Node's fetchSockets(): sockets is an array of
 * {"id","handshake","rooms","data"} objects (borrowed) from every server. The answer is
 * asynchronous: with the in-memory adapter the callback runs before the call returns, a cluster
 * adapter calls it once every server answered, or at its requests timeout with SIOC_ETIMEDOUT
 * and the sockets that came. */
typedef void (*sioc_fetch_sockets_cb)(int error, json_t *sockets, void *data);
SIOC_API int sioc_broadcast_fetch_sockets(const sioc_broadcast_t *broadcast,
                                          sioc_fetch_sockets_cb callback, void *data);
SIOC_API int sioc_broadcast_join(const sioc_broadcast_t *broadcast, const char *room);
SIOC_API int sioc_broadcast_leave(const sioc_broadcast_t *broadcast, const char *room);
SIOC_API void sioc_broadcast_disconnect(const sioc_broadcast_t *broadcast, int close);
/* To the other servers of a cluster (args taken); with the in-memory adapter there are none (a
 * no-op, as in Node). */
SIOC_API int sioc_namespace_server_side_emit(sioc_namespace_t *nsp, const char *event,
                                             json_t *args);
/* The same, waiting for one answer from every other server (see sioc_server_side_ack_cb). */
typedef void (*sioc_server_side_ack_cb)(int error, json_t *responses, void *data);
SIOC_API int sioc_namespace_server_side_emit_with_ack(sioc_namespace_t *nsp, const char *event,
                                                      json_t *args,
                                                      sioc_server_side_ack_cb callback, void *data);
/* A serverSideEmit from another server: event->args are its arguments; when the emitter waits
 * for an answer, reply is not NULL: call sioc_adapter_reply(reply, arg) exactly once. */
typedef void (*sioc_server_side_cb)(sioc_namespace_t *nsp, const sioc_event_t *event,
                                    sioc_adapter_reply_t *reply, void *data);
SIOC_API void sioc_namespace_on_server_side_emit(sioc_namespace_t *nsp,
                                                 sioc_server_side_cb callback, void *data);
/* How many servers the namespace spans (1 with the in-memory adapter). */
typedef void (*sioc_server_count_cb)(size_t servers, void *data);
SIOC_API int sioc_namespace_server_count(sioc_namespace_t *nsp, sioc_server_count_cb callback,
                                         void *data);
/* Every room of the namespace on every server, as the Redis adapter's allRooms(): rooms is an
 * array of distinct names (borrowed), each socket's own id among them as in Node; this server's
 * first. With the in-memory adapter, and with the sharded and streams Redis adapters (whose
 * Node counterparts have no allRooms), the callback runs before the call returns with this
 * server's rooms; the classic Redis adapter calls it once every server answered, or at its
 * requests timeout with SIOC_ETIMEDOUT and the rooms that came. */
typedef void (*sioc_all_rooms_cb)(int error, json_t *rooms, void *data);
SIOC_API int sioc_namespace_all_rooms(sioc_namespace_t *nsp, sioc_all_rooms_cb callback,
                                      void *data);
/* This server's id in the cluster (the adapter's uid). */
SIOC_API const char *sioc_namespace_adapter_uid(const sioc_namespace_t *nsp);

/* ---- Monitoring ----------------------------------------------------------------------------- */

/* The Socket.IO server's counters (since sioc_server_new) and gauges, with its Engine.IO
 * server's. Rooms count every room of this server's index, the room of each socket's own id
 * included (as socket.io-adapter's rooms map). A broadcast is counted once per namespace on the
 * server that delivers it (each server of a cluster counts its own part); deliveries are the
 * sockets it was queued for; volatile_dropped counts packets not sent to a client that could not
 * take them at once. */
typedef struct sioc_server_stats_s {
    sioc_eio_stats_t engine;
    size_t namespaces; /* gauges */
    size_t sockets;    /* connected sockets, all namespaces */
    size_t rooms;
    uint64_t sockets_connected; /* counters */
    uint64_t sockets_disconnected;
    uint64_t connects_refused; /* CONNECT answered with connect_error (middleware, bad namespace) */
    uint64_t broadcasts;
    uint64_t deliveries;
    uint64_t volatile_dropped;
    /* Recoverable broadcasts written without an offset because the recovery store was past
     * recovery_max_pending(_bytes) (counter), and those waiting for the store now (gauge). */
    uint64_t recovery_unlogged;
    size_t recovery_pending;
} sioc_server_stats_t;
SIOC_API void sioc_server_stats(const sioc_server_t *server, sioc_server_stats_t *out);

/* Visits every namespace that exists (dynamic parents excepted, their children included). */
SIOC_API void sioc_server_for_each_namespace(sioc_server_t *server,
                                             void (*visit)(sioc_namespace_t *nsp, void *data),
                                             void *data);

/* Hooks on everything that happens in every namespace, for tools that watch the whole server (the
 * admin UI: sioc_admin.h) without taking the application's own handlers. Any member may be NULL.
 * One observer per server: a second call replaces the first (NULL removes it). Each hook runs
 * synchronously where the event happens; it may emit and broadcast, and must not free what it
 * is given.
 * - on_namespace: a namespace was created (sioc_server_of, or a dynamic child).
 * - on_connection: a socket is connected, before its namespace's on_connection handler.
 * - on_disconnect: a socket left its namespace, after the namespace's on_disconnect handler;
 *   then on_leave runs for each room it was in (the order Node's adapter events come in).
 * - on_join / on_leave: a socket entered or left a room (its own id room included), once per
 *   change (joining a room it is already in is no change).
 * - on_event: an incoming event, before the catch-all and the handlers.
 * - on_event_sent: an event emitted to one socket (not broadcasts), as on_any_outgoing.
 * - on_upgrade: once per socket of a connection that upgraded from polling to WebSocket. */
typedef struct sioc_server_observer_s {
    void (*on_namespace)(sioc_namespace_t *nsp, void *data);
    void (*on_connection)(sioc_socket_t *socket, void *data);
    void (*on_disconnect)(sioc_socket_t *socket, const char *reason, void *data);
    void (*on_join)(sioc_socket_t *socket, const char *room, void *data);
    void (*on_leave)(sioc_socket_t *socket, const char *room, void *data);
    void (*on_event)(sioc_socket_t *socket, const sioc_event_t *event, void *data);
    void (*on_event_sent)(sioc_socket_t *socket, const sioc_event_t *event, void *data);
    void (*on_upgrade)(sioc_socket_t *socket, void *data); /* its connection is now WebSocket */
    void *data;
} sioc_server_observer_t;
SIOC_API void sioc_server_observe(sioc_server_t *server, const sioc_server_observer_t *observer);

/* ---- A plain HTTP server, for back-end APIs next to the Socket.IO server ------------------- */

/* The same HTTP/1.1 implementation as the Engine.IO server (keep-alive, limits, timeouts, 400 /
 * 408 / 413 / 431 answered automatically) with one handler for every complete request. */
typedef struct sioc_web_server_s sioc_web_server_t;
typedef struct sioc_web_request_s sioc_web_request_t;

/* Answer every request exactly once with sioc_web_respond(), now or later; the request (and
 * everything its accessors return) stays valid until then. */
typedef void (*sioc_web_handler_cb)(sioc_web_request_t *request, void *data);

SIOC_API int sioc_web_server_new(uv_loop_t *loop, size_t max_body_size, sioc_web_handler_cb handler,
                                 void *data, sioc_web_server_t **out);
SIOC_API int sioc_web_server_listen(sioc_web_server_t *server, const char *host, int port);
SIOC_API int sioc_web_server_port(sioc_web_server_t *server);
/* TLS for connections accepted from now on, as sioc_eio_server_set_tls. */
SIOC_API void sioc_web_server_set_tls(sioc_web_server_t *server, struct ssl_ctx_st *ctx);
/* Stops listening, closes every connection (requests not yet answered are then answered into
 * the void by sioc_web_respond), and frees the server once every connection is gone, which
 * takes at most 5 s (connections still lingering then are dropped); closed_cb (may be NULL)
 * runs then. */
SIOC_API void sioc_web_server_close(sioc_web_server_t *server, void (*closed_cb)(void *data),
                                    void *data);

SIOC_API const char *sioc_web_request_method(const sioc_web_request_t *request);
/* The path without the query ("/rooms/12/members"), NUL-terminated. */
SIOC_API const char *sioc_web_request_path(const sioc_web_request_t *request);
/* A query parameter as URLSearchParams decodes it ('+' a space, a '%' without two hex digits
 * kept, invalid UTF-8 as U+FFFD), the last value of a name given twice (engine.io's
 * Object.fromEntries(url.searchParams)), NUL-terminated into out; its length, -1 if absent,
 * -2 if too long. */
SIOC_API long sioc_web_request_query(const sioc_web_request_t *request, const char *name, char *out,
                                     size_t size);
SIOC_API const char *sioc_web_request_header(const sioc_web_request_t *request, const char *name,
                                             size_t *length);
SIOC_API const uint8_t *sioc_web_request_body(const sioc_web_request_t *request, size_t *length);
SIOC_API const char *sioc_web_request_remote_address(const sioc_web_request_t *request);
/* Answers and releases the request. If the client went away meanwhile, it only releases it. */
SIOC_API void sioc_web_respond(sioc_web_request_t *request, int status, const char *content_type,
                               const void *body, size_t length);
/* The same with extra header lines, each "Name: value\r\n" (e.g. "Allow: GET, POST\r\n"). */
SIOC_API void sioc_web_respond_with_headers(sioc_web_request_t *request, int status,
                                            const char *content_type, const char *headers,
                                            const void *body, size_t length);

#ifdef __cplusplus
}
#endif

#endif
