/* Socket.IO server internals shared by sio_server.c (server, Engine.IO glue, clients),
 * sio_namespace.c (namespaces, handlers, middleware), sio_socket.c (sockets, events, acks),
 * sio_broadcast.c (broadcasts, cluster-style operations) and sio_recovery.c. */
#ifndef SIOC_SOCKETIO_SIO_INTERNAL_H
#define SIOC_SOCKETIO_SIO_INTERNAL_H

#include <string.h>
#include <uthash.h>

#include "adapter/adapter.h"
#include "core/buffer.h"
#include "core/deadline.h"
#include "core/index.h"
#include "core/random.h"
#include "sioc.h"
#include "sioc_adapter.h"
#include "socketio/sio_parser.h"

typedef struct sioc__sio_client_s sioc__sio_client_t;
/* The opening request's handshake as bytes, refcounted (sio_handshake.c). */
typedef struct sioc__sio_handshake_s sioc__sio_handshake_t;
/* Collects the answers of a broadcast with acks; the public sioc_adapter_ack_sink_t. */
typedef struct sioc_adapter_ack_sink_s sioc__sio_ack_collector_t;

/* One encoded packet: the Engine.IO messages that carry it (text or msgpack packet first, then
 * one binary message per attachment). Each part is a refcounted buffer shared by all
 * recipients of a broadcast. */
#define SIO_MAX_PARTS (1 + 64)
typedef struct sioc__sio_encoded_s {
    sioc__buffer_t *parts[SIO_MAX_PARTS];
    size_t count;
} sioc__sio_encoded_t;

typedef struct sioc__sio_handler_s {
    char *event;
    sioc_event_cb callback;
    void *data;
    uint8_t passthrough; /* sioc_namespace_on_passthrough: may get the arguments as bytes */
    UT_hash_handle hh;
} sioc__sio_handler_t;

/* Behind sioc_event_t.bytes for a pass-through handler: the packet kept as bytes and the JSON
 * view of its arguments once sioc_event_args() asked for it. Lives on the dispatcher's stack
 * for the handler's call. */
struct sioc_event_bytes_s {
    sioc__sio_packet_t *packet;
    json_t *args; /* owned; NULL until asked for */
};

typedef struct sioc__sio_middleware_s {
    sioc_middleware_cb callback;
    void *data;
} sioc__sio_middleware_t;

typedef struct sioc__sio_callback_s {
    void *callback;
    void *data;
} sioc__sio_callback_t;

struct sioc_namespace_s {
    char *name;
    sioc_server_t *server;
    sioc_namespace_t *parent;        /* a dynamic namespace's parent (handlers live there) */
    sioc_namespace_filter_cb filter; /* parents only */
    void *filter_data;
    sioc__sio_handler_t *handlers; /* by event name */
    sioc__sio_middleware_t *middlewares;
    size_t middleware_count;
    sioc__sio_callback_t on_connection;
    sioc__sio_callback_t on_disconnecting;
    sioc__sio_callback_t on_disconnect;
    sioc__sio_callback_t on_any;
    sioc__sio_callback_t on_any_outgoing;
    sioc__sio_callback_t on_server_side_emit;
    sioc__sio_callback_t on_socket_data;  /* builds socket.data on demand */
    sioc__sio_callback_t on_socket_error; /* for a socket without its own error handler */
    sioc__index_t sockets_by_id;          /* connected sockets */
    sioc_socket_t *sockets;     /* the same in the order they connected (next_in_nsp), as */
    sioc_socket_t *last_socket; /* Node's Map: broadcasts and fetchSockets go in this order */
    size_t socket_count;
    sioc__adapter_t *index;         /* this server's rooms */
    sioc_adapter_t *adapter;        /* the cluster-shaped operations (in-memory by default) */
    UT_hash_handle hh;              /* server->namespaces, by name */
    sioc_namespace_t *next_dynamic; /* server->dynamic_parents list */
};

/* An acknowledgement the server waits for. */
typedef struct sioc__sio_pending_ack_s {
    int64_t id;
    sioc_socket_t *socket;
    sioc_ack_cb callback; /* single-socket emit */
    void *data;
    sioc__sio_ack_collector_t *collector; /* broadcast with acks */
    uv_timer_t *timer;                    /* NULL without a timeout */
    UT_hash_handle hh;
} sioc__sio_pending_ack_t;

enum sioc__sio_socket_state {
    SIO_SOCKET_CONNECTING,
    SIO_SOCKET_CONNECTED,
    SIO_SOCKET_DISCONNECTED
};

/* What an idle socket never touches, in a block of its own made on the first use
 * (sioc__sio_socket_rare): the socket's own block went from 208 to 144 bytes with it, two malloc
 * classes smaller. The block grows with the packet middleware, so a socket with one takes no
 * third allocation. */
typedef struct sioc__sio_socket_rare_s {
    json_t *handshake; /* NULL until sioc_socket_handshake() is called */
    /* The CONNECT's auth (NULL for none or {}): its compact JSON text (auth_is_text) in a block
     * of its own, which sioc_socket_auth_release() can free where text in the socket's block
     * would stay; the object once sioc_socket_auth() made it, in place of the text. */
    union {
        char *text;
        json_t *object;
    } auth;
    json_t *data; /* NULL until sioc_socket_data() is called: an empty object */
    struct sioc__sio_restored_s *restored; /* a restored socket's rooms and missed packets */
    sioc__sio_pending_ack_t *acks;         /* the socket's emits waiting for an ack, by id */
    sioc__sio_callback_t on_error;         /* refusals of the packet middleware */
    uint32_t use_count;
    uint8_t auth_is_text;        /* in the padding before uses: the block stays 64 bytes */
    sioc__sio_callback_t uses[]; /* packet middleware (sioc_socket_use), in order */
} sioc__sio_socket_rare_t;

struct sioc_socket_s {
    sioc_namespace_t *nsp;
    sioc__sio_client_t *client;     /* NULL once the connection is gone */
    sioc__sio_handshake_t *request; /* a reference to the client's */
    sioc__sio_socket_rare_t *rare;  /* NULL until one of its members is needed */
    void *user;
    uint8_t state;
    uint8_t recovered;
    uint8_t session_dirty;  /* queued for a session write (sio_recovery.c) */
    uint8_t in_own_room;    /* in the room named by its id (memory_adapter.c) */
    uint32_t references;    /* the socket is freed when this drops to 0 (beside the flags: a
                               padding hole less puts the socket in a smaller malloc class) */
    sioc__room_set_t rooms; /* adapter-owned entries */
    /* Broadcast de-duplication (memory_adapter.c): 32 bits each, with the pending acks in the
     * rare block, keep the socket with its id in a 144-byte malloc chunk (was 160). */
    uint32_t seen_mark;
    uint32_t except_mark;
    sioc_socket_t *previous_in_nsp; /* nsp->sockets, while connected */
    sioc_socket_t *next_in_nsp;
    sioc_socket_t *next_in_client; /* client->sockets */
    /* SIOC_ID_LENGTH characters, or for an EIO3 client Node's "<namespace>#<engine id>" outside
     * "/", then the recovery session id (sioc__sio_socket_pid), both in the socket's block. */
    char id[];
};

/* The recovery session id, after the id in the socket's block (no pointer to it: 8 bytes less
 * per socket); "" when recovery is off. */
static inline char *sioc__sio_socket_pid(const sioc_socket_t *socket)
{
    return (char *)socket->id + strlen(socket->id) + 1;
}

/* Node's socket._onerror(): the socket's error handler, or its namespace's, gets message. */
void sioc__sio_socket_error(sioc_socket_t *socket, const char *message);

/* The socket's rare block, made (zeroed) on the first call; NULL when out of memory. */
sioc__sio_socket_rare_t *sioc__sio_socket_rare(sioc_socket_t *socket);

struct sioc_next_s {
    sioc_socket_t *socket;
    json_t *auth;
    size_t index;
};

/* A client that has no socket yet waits at most connect_timeout_ms for its first CONNECT; the
 * wait has a block of its own so that a client connected long ago does not carry it. */
typedef struct sioc__sio_connect_wait_s {
    sioc__deadline_t deadline; /* in server->connect_timeouts */
    sioc__sio_client_t *client;
} sioc__sio_connect_wait_t;

/* In the block of its Engine.IO session (sioc__eio_socket_extra): freed with it. */
struct sioc__sio_client_s {
    sioc_server_t *server;
    sioc_eio_socket_t *eio;
    sioc__sio_decoder_t decoder;
    sioc_socket_t *sockets;           /* one per namespace (next_in_client): a client is in few */
    sioc__sio_handshake_t *handshake; /* everything but auth, from the opening request */
    sioc__sio_connect_wait_t *connect_wait; /* NULL once a socket connected */
    uint8_t closed;
};

struct sioc_server_s {
    uv_loop_t *loop;
    sioc_eio_server_t *engine;
    sioc_server_options_t options;
    sioc_namespace_t *namespaces; /* by name */
    sioc_namespace_t *dynamic_parents;
    sioc__deadline_list_t connect_timeouts;
    sioc__sio_recovery_t *recovery;  /* NULL when recovery is off */
    uint32_t broadcast_generation;   /* the last select's mark (memory_adapter.c) */
    uint32_t select_depth;           /* selects under way: a visit may start another */
    sioc_server_stats_t stats;       /* counters; gauges are computed when asked */
    sioc_server_observer_t observer; /* all members NULL without one */
    int64_t next_ack_id;
    sioc__sio_text_t encode_scratch; /* the JSON encoder's output, reused packet after packet */
    uint8_t keep_event_bytes;        /* a pass-through handler exists: decoders keep bytes */
    int closing;
    void (*closed_cb)(void *data);
    void *closed_data;
};

/* sio_server.c */
int sioc__sio_encode_for_server(sioc_server_t *server, const sioc__sio_packet_t *packet,
                                sioc__sio_encoded_t *out);
void sioc__sio_encoded_release(sioc__sio_encoded_t *encoded);
/* An ACK whose arguments are JSON text already in the encoder's form ("a,b", without the
 * brackets), for the JSON parser. */
int sioc__sio_encode_ack_bytes(const char *nsp, int64_t id, const char *args, size_t length,
                               sioc__sio_encoded_t *out);
/* Queues every part on the client's connection. */
int sioc__sio_client_send(sioc__sio_client_t *client, const sioc__sio_encoded_t *encoded,
                          int is_volatile);
/* Closes the Engine.IO connection after disconnecting every socket with reason. */
void sioc__sio_client_close(sioc__sio_client_t *client, const char *reason);
void sioc__sio_client_forget_socket(sioc__sio_client_t *client, sioc_socket_t *socket);
/* Takes the client's first socket off its list (NULL when none is left). */
sioc_socket_t *sioc__sio_client_pop_socket(sioc__sio_client_t *client);
void sioc__sio_client_on_socket_connected(sioc__sio_client_t *client);

/* The query of url (a request target, or an EIO3 CONNECT's namespace) as Node's
 * Object.fromEntries(new URL(url, base).searchParams) makes it: the text after the first '?'
 * that comes before any '#', up to the '#'; each name and value decoded as URLSearchParams does
 * (sioc__http_form_decode); a repeated name keeps its last value, at its first place; "&&" is
 * no pair; array-index names first, ascending, as a JS object lists them. A new object, or
 * NULL when out of memory. */
json_t *sioc__sio_parse_query(const char *url);

/* sio_handshake.c */
/* A copy of what the handshake needs from request (one reference), or NULL. */
sioc__sio_handshake_t *sioc__sio_handshake_new(const sioc_request_t *request);
void sioc__sio_handshake_ref(sioc__sio_handshake_t *handshake);
void sioc__sio_handshake_unref(sioc__sio_handshake_t *handshake);
/* {headers, time, address, xdomain, secure, issued, url, query} (borrowed: built on the first
 * call, then kept until the last reference goes), or NULL. */
json_t *sioc__sio_handshake_object(sioc__sio_handshake_t *handshake);
/* The same with "auth" (a new object sharing headers and query). keep = 0 does not keep what
 * it builds (fetchSockets: the sockets' handshakes are not held for the rest of their lives). */
json_t *sioc__sio_handshake_with_auth(sioc__sio_handshake_t *handshake, json_t *auth, int keep);

/* sio_namespace.c */
/* is_parent: a dynamic parent (it keeps the in-memory adapter). */
sioc_namespace_t *sioc__sio_namespace_new(sioc_server_t *server, const char *name,
                                          sioc_namespace_t *parent, int is_parent);
void sioc__sio_namespace_free(sioc_namespace_t *nsp);
/* The namespace a CONNECT names: existing, or created through a dynamic parent; NULL if none. */
sioc_namespace_t *sioc__sio_namespace_lookup(sioc_server_t *server, const char *name, json_t *auth);
/* Where handlers and middleware live: the parent of a dynamic namespace, else itself. */
static inline sioc_namespace_t *sioc__sio_namespace_root(sioc_namespace_t *nsp)
{
    return nsp->parent != NULL ? nsp->parent : nsp;
}
void sioc__sio_namespace_dispatch(sioc_socket_t *socket, sioc__sio_packet_t *packet);
void sioc__sio_namespace_run_middlewares(sioc_socket_t *socket, json_t *auth);
/* Emit on every namespace this call is for: a dynamic parent reaches its children. */
typedef void (*sioc__sio_namespace_visit_cb)(sioc_namespace_t *nsp, void *data);
void sioc__sio_namespace_for_each_target(sioc_namespace_t *nsp, sioc__sio_namespace_visit_cb visit,
                                         void *data);

/* The observer's hook, if set: OBSERVE(server, on_join, socket, room). */
#define SIOC__SIO_OBSERVE(server, hook, ...)                                                       \
    do {                                                                                           \
        if ((server)->observer.hook != NULL)                                                       \
            (server)->observer.hook(__VA_ARGS__, (server)->observer.data);                         \
    } while (0)

/* sio_socket.c */
/* A socket with an id of its own, or with a restored session's sid and pid (both NULL for a
 * fresh socket; 20 characters each otherwise). */
sioc_socket_t *sioc__sio_socket_new(sioc__sio_client_t *client, sioc_namespace_t *nsp, json_t *auth,
                                    const char *sid, const char *pid);
void sioc__sio_socket_ref(sioc_socket_t *socket);
/* socket.data as a new reference: an empty object until a program asked for it. */
json_t *sioc__sio_socket_data_copy(const sioc_socket_t *socket);
void sioc__sio_socket_unref(sioc_socket_t *socket);
/* Completes a connection that passed the middleware (or was recovered). */
void sioc__sio_socket_connected(sioc_socket_t *socket);
void sioc__sio_socket_refuse(sioc_socket_t *socket, const char *message, json_t *data);
/* Leaves the namespace: disconnecting hook, rooms left, pending acks failed, disconnect
 * hook. send_disconnect: tell the client with a DISCONNECT packet. */
void sioc__sio_socket_close(sioc_socket_t *socket, const char *reason, int send_disconnect);
void sioc__sio_socket_on_event(sioc_socket_t *socket, sioc__sio_packet_t *packet);
void sioc__sio_socket_on_ack(sioc_socket_t *socket, sioc__sio_packet_t *packet);
/* Builds an EVENT packet [event, ...args] (args taken). */
int sioc__sio_build_event(sioc__sio_packet_t *packet, const char *nsp, const char *event,
                          const sioc_message_t *message);
/* The event view of an EVENT (has_name: its name is moved from data to packet->name) or an ACK;
 * event->args is a new reference to the packet's array. */
void sioc__sio_event_from_packet(sioc__sio_packet_t *packet, int has_name, sioc_event_t *event,
                                 sioc_binary_t *attachments, char *name_buffer, size_t name_size);
sioc__sio_pending_ack_t *sioc__sio_socket_add_pending_ack(sioc_socket_t *socket, int64_t id,
                                                          uint32_t timeout_ms);
void sioc__sio_pending_ack_free(sioc__sio_pending_ack_t *pending);

/* sio_broadcast.c */
/* The local part of every adapter operation (sioc_adapter.h). */
extern const sioc_adapter_local_t sioc__sio_adapter_local;
/* Encodes once (offset appended as the last argument unless NULL) and writes to every socket
 * of this server opts selects; returns how many. */
size_t sioc__sio_deliver(sioc_namespace_t *nsp, const sioc_adapter_packet_t *packet,
                         const sioc_adapter_opts_t *opts, const char *offset);
void sioc__sio_ack_collector_add_response(sioc__sio_ack_collector_t *collector,
                                          const sioc_event_t *response);
void sioc__sio_ack_collector_unref(sioc__sio_ack_collector_t *collector);

#endif
