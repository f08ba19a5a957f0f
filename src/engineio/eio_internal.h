/* Engine.IO server internals shared by eio_server.c (routing, handshake, CORS),
 * eio_socket.c (session life, heartbeat, packets), eio_polling.c and eio_websocket.c. */
#ifndef SIOC_ENGINEIO_EIO_INTERNAL_H
#define SIOC_ENGINEIO_EIO_INTERNAL_H

#include "core/buffer.h"
#include "core/deadline.h"
#include "core/index.h"
#include "core/random.h"
#include "engineio/eio_parser.h"
#include "sioc.h"
#include "transport/connection.h"
#include "transport/http.h"
#include "transport/http_compress.h"
#include "transport/ws_codec.h"
#include "transport/ws_deflate.h"

/* The public sioc_request_t: a view of the HTTP request being answered (here so that the unit
 * tests can make one from a parsed request). */
struct sioc_request_s {
    const sioc__http_request_t *http;
};

/* DRAINING: closed for the application, kept only until a polling GET takes what was queued
 * before the close (a DISCONNECT, say), as Node waits for "drain" before closing. */
enum sioc__eio_socket_state { EIO_SOCKET_OPEN, EIO_SOCKET_DRAINING, EIO_SOCKET_CLOSED };

/* At most this many packets per polling response: python-engineio refuses more than 16. */
#define EIO_MAX_PACKETS_PER_POLL 16

/* A WebSocket connection: the session's transport, or a probe during an upgrade. It lives in
 * its connection's room (connection.h: one block for both, freed with the connection), which
 * gives its connection and, through the io, its server (sioc__eio_websocket_conn, _server). */
typedef struct sioc__eio_websocket_s {
    sioc_eio_socket_t *socket; /* NULL once detached from its session */
    sioc__ws_decoder_t decoder;
    uint8_t is_probe;
    uint8_t close_sent;
    uint8_t deflate_bits; /* permessage-deflate: the server window (8..15); 0 when not agreed */
    uint8_t eio3;         /* an Engine.IO v3 connection: binary frames carry a type byte */
    uint8_t b64;          /* EIO3: binary goes as "b4" + base64 text frames (b64 in the query) */
    struct sioc__eio_websocket_s *previous;
    struct sioc__eio_websocket_s *next;
} sioc__eio_websocket_t;

/* The limits a session was told in its handshake (pingInterval, pingTimeout, maxPayload) or
 * holds for its life, with the deadline lists that time its heartbeat (one delay per list).
 * sioc_eio_server_set_limits makes a new set current for the sessions that open from then on;
 * a replaced set lives until its last session is gone. */
typedef struct sioc__eio_limits_s {
    sioc_eio_server_t *server;
    uint32_t ping_interval_ms;
    uint32_t ping_timeout_ms;
    size_t max_payload;
    size_t max_buffered_bytes;
    sioc__deadline_list_t ping_interval;
    sioc__deadline_list_t ping_timeout;
    sioc__deadline_list_t ping_timeout_v3; /* EIO3: no client ping for interval + timeout */
    size_t sessions;                       /* sessions on it */
    int handles_open;                      /* closing: its three timers not yet released */
    struct sioc__eio_limits_s *next;
} sioc__eio_limits_t;

/* What only a polling session needs: its held GET, the packets waiting for one, and an
 * upgrade in progress. Kept apart from the session so that the common client, which opens over
 * WebSocket (or upgrades and stays there), does not carry 90 bytes it never uses. */
typedef struct sioc__eio_polling_s {
    sioc_eio_socket_t *socket;   /* the session that owns it (for the upgrade deadline) */
    sioc__http_conn_t *held_get; /* a GET waiting for packets */
    sioc__http_request_t *held_request;
    sioc__buffer_t **queue; /* packets waiting for a GET (or for the upgrade to end) */
    uint32_t queue_length;
    uint32_t queue_capacity;
    size_t queued_bytes;
    sioc__eio_websocket_t *probe; /* upgrade in progress */
    sioc__deadline_t upgrade_deadline;
} sioc__eio_polling_t;

struct sioc_eio_socket_s {
    char id[SIOC_ID_LENGTH + 1];
    /* Three flags in the id's padding: the session with its Socket.IO client then fits a
     * smaller malloc class. */
    uint8_t transport; /* sioc_transport_t */
    uint8_t state;
    uint8_t awaiting_pong;
    /* Those of its handshake, which also give its server (sioc__eio_socket_server): a limits
     * set outlives its sessions. */
    sioc__eio_limits_t *limits;
    uint8_t in_flush_list;
    uint8_t upgrading;     /* the probe was answered; polling only gets noops now */
    uint8_t overflowed;    /* a slow reader: closed at the end of this loop iteration */
    uint8_t client_closed; /* the client sent a close packet */
    uint8_t protocol;      /* 4, or 3 (allow_eio3) */
    uint8_t polling_b64;   /* EIO3: the handshake asked for base64 binary (b64) */
    uint8_t open_alone;    /* EIO3: the handshake GET gets the open packet alone, as in Node */
    /* server->session_extra bytes follow it (eio_send.h); without them, the one pointer of
     * sioc_eio_socket_set_data does (a session of the Socket.IO layer keeps no data pointer: its
     * client is in those bytes). */
    uint8_t has_extra;
    /* While the transport is polling (NULL for a session opened over WebSocket, and from the
     * end of an upgrade on): owned by the session. */
    sioc__eio_polling_t *polling;
    sioc__eio_websocket_t *websocket; /* the transport once upgraded (or WebSocket-only) */
    sioc__deadline_t heartbeat;       /* in ping_interval or ping_timeout */
    sioc_eio_socket_t *next_in_list;  /* flush list, then reap list */
};

struct sioc_eio_server_s {
    uv_loop_t *loop;
    sioc__io_t io;
    sioc__http_server_t http;
    sioc_eio_options_t options;
    char *path;
    char **cors_origins;
    char *cookie_prefix;                /* "Set-Cookie: name=", or NULL without the cookie option */
    char *cookie_suffix;                /* "; Path=/; HttpOnly; SameSite=Lax\r\n" */
    sioc__http_compressor_t compressor; /* httpCompression, for every polling answer */
    sioc__ws_zlib_t ws_zlib;            /* permessage-deflate, for every WebSocket */
    sioc_eio_callbacks_t callbacks;
    void *data;
    sioc__index_t sessions; /* open and draining sessions, by id */
    sioc_eio_stats_t stats; /* counters; gauges are computed when asked */
    size_t socket_count;
    size_t session_extra; /* bytes after each new session for the layer above (eio_send.h) */
    sioc_eio_socket_t *flush_list;     /* polling sessions with packets and a held GET */
    sioc_eio_socket_t *reap_list;      /* closed sessions, freed at the end of the iteration */
    sioc__eio_websocket_t *websockets; /* every open WebSocket connection */
    sioc__eio_limits_t *limits;        /* for the sessions that open now */
    sioc__eio_limits_t *limit_sets;    /* every set, the current one and those still in use */
    sioc__deadline_list_t upgrade_timeout;
    uv_timer_t shutdown_timer; /* bounds sioc_eio_server_close */
    /* Shared, never-freed packets. */
    sioc__buffer_t *ping_packet;
    sioc__buffer_t *pong_packet;
    sioc__buffer_t *noop_packet;
    sioc__buffer_t *close_packet;
    sioc__buffer_t *probe_packet;
    sioc__buffer_t *separator;
    int closing;
    int handles_open;
    void (*closed_cb)(void *data);
    void *closed_data;
};

static inline sioc_eio_server_t *sioc__eio_socket_server(const sioc_eio_socket_t *socket)
{
    return socket->limits->server;
}

static inline sioc__conn_t *sioc__eio_websocket_conn(const sioc__eio_websocket_t *websocket)
{
    return sioc__conn_of_room(websocket);
}

static inline sioc_eio_server_t *sioc__eio_websocket_server(const sioc__eio_websocket_t *websocket)
{
    return (sioc_eio_server_t *)((char *)sioc__eio_websocket_conn(websocket)->io -
                                 offsetof(sioc_eio_server_t, io));
}

/* eio_server.c */
void sioc__eio_server_notify_connection(sioc_eio_server_t *server, sioc_eio_socket_t *socket,
                                        const sioc__http_request_t *request);
void sioc__eio_server_maybe_finished(sioc_eio_server_t *server);
/* A session leaves its limits set (freed when it was the last one and the set is replaced). */
void sioc__eio_limits_release(sioc__eio_limits_t *limits);
/* CORS response headers for this request ("Name: value\r\n" lines) into out; "" if none. */
void sioc__eio_cors_headers(sioc_eio_server_t *server, const sioc__http_request_t *request,
                            char *out, size_t size);
/* The Set-Cookie line of the cookie option for this request (the handshake only); "" if none. */
void sioc__eio_cookie_header(sioc_eio_server_t *server, const sioc_eio_socket_t *socket,
                             const sioc__http_request_t *request, char *out, size_t size);

/* The protocol revision a request asks for: 4 for EIO=4, else 3 (Node's
 * computeProtocolRevision). */
int sioc__eio_request_protocol(const sioc__http_request_t *request);
/* 1 when the request has b64 in its query (an EIO3 client that wants no binary). */
int sioc__eio_request_b64(const sioc__http_request_t *request);

/* eio_socket.c */
sioc_eio_socket_t *sioc__eio_socket_new(sioc_eio_server_t *server, sioc_transport_t transport);
sioc_eio_socket_t *sioc__eio_socket_find(sioc_eio_server_t *server, const char *id);
/* Handles one decoded packet from the client on the session's active transport. */
void sioc__eio_socket_on_packet(sioc_eio_socket_t *socket, const sioc__eio_packet_t *packet);
/* Queues a packet (a new reference): to the WebSocket, or to the polling queue. */
int sioc__eio_socket_send_packet(sioc_eio_socket_t *socket, sioc__buffer_t *packet,
                                 int is_volatile);
void sioc__eio_socket_close(sioc_eio_socket_t *socket, const char *reason);
void sioc__eio_socket_start_heartbeat(sioc_eio_socket_t *socket);
void sioc__eio_socket_reap(sioc_eio_server_t *server);
void sioc__eio_on_ping_interval(sioc__deadline_list_t *list, sioc__deadline_t *deadline);
void sioc__eio_on_ping_timeout(sioc__deadline_list_t *list, sioc__deadline_t *deadline);
void sioc__eio_on_upgrade_timeout(sioc__deadline_list_t *list, sioc__deadline_t *deadline);

/* eio_polling.c */
void sioc__eio_polling_handle(sioc_eio_server_t *server, sioc__http_conn_t *http,
                              sioc__http_request_t *request, sioc_eio_socket_t *socket);
void sioc__eio_polling_mark_ready(sioc_eio_socket_t *socket);
void sioc__eio_polling_flush_all(sioc_eio_server_t *server);
/* Answers a held GET with whatever is queued (or a lone noop); no-op without a held GET. */
void sioc__eio_polling_answer_now(sioc_eio_socket_t *socket, sioc__buffer_t *extra_packet);
void sioc__eio_polling_abort(sioc__http_conn_t *http);

/* eio_websocket.c */
/* Validates the upgrade, answers 101 and takes the connection over. socket is NULL for a
 * WebSocket-only handshake (a new session is created) or the session to probe. */
void sioc__eio_websocket_accept(sioc_eio_server_t *server, sioc__http_conn_t *http,
                                sioc__http_request_t *request, sioc_eio_socket_t *socket,
                                uint8_t *leftover, size_t leftover_length);
int sioc__eio_websocket_send(sioc__eio_websocket_t *websocket, sioc__buffer_t *packet);
/* Sends a close frame (code 0 = no body) and closes after it leaves. */
void sioc__eio_websocket_close(sioc__eio_websocket_t *websocket, uint16_t code, const char *reason);
void sioc__eio_websocket_close_all(sioc_eio_server_t *server);

#endif
