/* libsioc adapters: how the sockets of a namespace on several servers act as one.
 *
 * An adapter has the operations of socket.io-adapter's ClusterAdapter. The Socket.IO layer
 * calls it for every broadcast and every cluster-wide operation of a namespace; the adapter does
 * the local part through the entry points the Socket.IO layer hands it (sioc_adapter_local_t:
 * encode once, store for recovery, write to the sockets of this server) and carries the rest to
 * the other servers. It never reaches into the Socket.IO layer otherwise.
 *
 * The in-memory adapter (the default) only does the local part: one server, serverCount 1.
 * sioc_redis_adapter_factory() (below) is wire-compatible with @socket.io/redis-adapter 8.3.
 * Write your own by filling a sioc_adapter_ops_t and passing a factory in the server options
 * (sioc_server_options_t.adapter).
 *
 * Everything runs on the server's loop. Pointers passed to an operation are borrowed for the
 * call; an adapter that needs them later copies them. */
#ifndef SIOC_ADAPTER_H
#define SIOC_ADAPTER_H

#include "sioc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which sockets an operation selects: those in any of rooms (every socket when room_count is
 * 0) and in none of except; flags are SIOC_BROADCAST_*. */
typedef struct sioc_adapter_opts_s {
    const char *const *rooms;
    size_t room_count;
    const char *const *except;
    size_t except_count;
    unsigned flags;
    uint32_t timeout_ms; /* broadcast with acks: the emitter's timeout (0 = none) */
} sioc_adapter_opts_t;

/* An EVENT to broadcast: data is [name, ...args], binary arguments as placeholders
 * (sioc_placeholder) standing for attachments[i]. */
typedef struct sioc_adapter_packet_s {
    json_t *data;
    const sioc_binary_t *attachments;
    size_t attachment_count;
} sioc_adapter_packet_t;

/* Where the answers of one broadcast with acks go. The emitter's callback runs once the number
 * of servers is known, every server reported its client count and every counted client
 * answered, or at the emitter's timeout. Calls after that are ignored, so an adapter may report
 * late answers without checking. Hold a reference (_ref/_unref) while you may still report. */
typedef struct sioc_adapter_ack_sink_s sioc_adapter_ack_sink_t;
SIOC_API void sioc_adapter_ack_sink_ref(sioc_adapter_ack_sink_t *sink);
SIOC_API void sioc_adapter_ack_sink_unref(sioc_adapter_ack_sink_t *sink);
/* How many servers will report a client count (this one included). */
SIOC_API void sioc_adapter_ack_sink_server_count(sioc_adapter_ack_sink_t *sink, size_t servers);
/* One server's number of clients that were sent the packet. */
SIOC_API void sioc_adapter_ack_sink_client_count(sioc_adapter_ack_sink_t *sink, size_t clients);
/* One client's answer (its arguments in response->args; copied). */
SIOC_API void sioc_adapter_ack_sink_ack(sioc_adapter_ack_sink_t *sink,
                                        const sioc_event_t *response);

/* The answer to an incoming serverSideEmit that asked for one: call sioc_adapter_reply exactly
 * once (arg taken; NULL = no argument), now or later. The adapter fills send and drop (used by
 * the Socket.IO layer when no handler listens: the emitter then times out, as with Node). */
struct sioc_adapter_reply_s {
    void (*send)(sioc_adapter_reply_t *reply, json_t *arg); /* frees the reply */
    void (*drop)(sioc_adapter_reply_t *reply);              /* frees it unanswered */
};
SIOC_API void sioc_adapter_reply(sioc_adapter_reply_t *reply, json_t *arg);

/* The Socket.IO layer's entry points for the local part of every operation; nsp is the
 * adapter's namespace. */
struct sioc_adapter_local_s {
    /* Encodes once and writes to every selected socket of this server; returns how many.
     * With recovery on, a recoverable packet (not volatile) is first appended to the recovery
     * store and written when the append completed (then 0 is returned). */
    size_t (*broadcast)(sioc_namespace_t *nsp, const sioc_adapter_packet_t *packet,
                        const sioc_adapter_opts_t *opts);
    /* The same with a fresh ack id; reports this server's client count and then every ack to
     * sink. */
    void (*broadcast_with_ack)(sioc_namespace_t *nsp, const sioc_adapter_packet_t *packet,
                               const sioc_adapter_opts_t *opts, sioc_adapter_ack_sink_t *sink);
    /* The selected sockets as a new array of {"id","handshake","rooms","data"}. */
    json_t *(*fetch_sockets)(sioc_namespace_t *nsp, const sioc_adapter_opts_t *opts);
    /* socketsJoin / socketsLeave / disconnectSockets on this server. */
    void (*add_sockets)(sioc_namespace_t *nsp, const sioc_adapter_opts_t *opts,
                        const char *const *rooms, size_t room_count);
    void (*del_sockets)(sioc_namespace_t *nsp, const sioc_adapter_opts_t *opts,
                        const char *const *rooms, size_t room_count);
    void (*disconnect_sockets)(sioc_namespace_t *nsp, const sioc_adapter_opts_t *opts, int close);
    /* An incoming serverSideEmit: data is [name, ...args]; reply NULL when none is expected. */
    void (*server_side_emit)(sioc_namespace_t *nsp, json_t *data, sioc_adapter_reply_t *reply);
    /* Every room of this server's namespace, as a new array of strings. */
    json_t *(*rooms)(sioc_namespace_t *nsp);
    /* 1 if a socket of this server is in room. */
    int (*has_room)(sioc_namespace_t *nsp, const char *room);
    /* A packet another server already appended to a shared recovery log under offset (a
     * streams adapter reading the log): writes it, offset appended, to the selected sockets
     * without logging it again; returns how many. */
    size_t (*deliver)(sioc_namespace_t *nsp, const sioc_adapter_packet_t *packet,
                      const sioc_adapter_opts_t *opts, const char *offset);
};

/* sioc_server_side_ack_cb (sioc.h): one answer per other server, error SIOC_ETIMEDOUT when
 * some did not answer within the adapter's requests timeout (responses holds those that did). */

/* Operations (all required but room_created / room_deleted / all_rooms). Return codes: 0 or
 * SIOC_E*. */
typedef struct sioc_adapter_ops_s {
    void (*broadcast)(sioc_adapter_t *adapter, const sioc_adapter_packet_t *packet,
                      const sioc_adapter_opts_t *opts);
    /* Must call sioc_adapter_ack_sink_server_count() once and do the local part. */
    void (*broadcast_with_ack)(sioc_adapter_t *adapter, const sioc_adapter_packet_t *packet,
                               const sioc_adapter_opts_t *opts, sioc_adapter_ack_sink_t *sink);
    /* callback gets the sockets of every server, once (also on error: then those that came). */
    int (*fetch_sockets)(sioc_adapter_t *adapter, const sioc_adapter_opts_t *opts,
                         sioc_fetch_sockets_cb callback, void *data);
    void (*add_sockets)(sioc_adapter_t *adapter, const sioc_adapter_opts_t *opts,
                        const char *const *rooms, size_t room_count);
    void (*del_sockets)(sioc_adapter_t *adapter, const sioc_adapter_opts_t *opts,
                        const char *const *rooms, size_t room_count);
    void (*disconnect_sockets)(sioc_adapter_t *adapter, const sioc_adapter_opts_t *opts, int close);
    /* data is [name, ...args]. callback NULL: no answers wanted. */
    int (*server_side_emit)(sioc_adapter_t *adapter, json_t *data, sioc_server_side_ack_cb callback,
                            void *callback_data);
    int (*server_count)(sioc_adapter_t *adapter, sioc_server_count_cb callback, void *data);
    /* callback gets the rooms of every server, once (also on error: then those that came).
     * NULL: an adapter that knows of no other server's rooms; local->rooms() is the answer. */
    int (*all_rooms)(sioc_adapter_t *adapter, sioc_all_rooms_cb callback, void *data);
    /* A room appeared on / disappeared from this server (sharded adapters subscribe per room). */
    void (*room_created)(sioc_adapter_t *adapter, const char *room);
    void (*room_deleted)(sioc_adapter_t *adapter, const char *room);
    /* Stops and frees the adapter (the namespace is going away). */
    void (*destroy)(sioc_adapter_t *adapter);
} sioc_adapter_ops_t;

#define SIOC_ADAPTER_UID_SIZE 32

/* The part every adapter shares; an implementation embeds it as its first member. */
struct sioc_adapter_s {
    const sioc_adapter_ops_t *ops;
    sioc_namespace_t *nsp;
    const sioc_adapter_local_t *local;
    char uid[SIOC_ADAPTER_UID_SIZE]; /* this node's id on the wire */
};

/* sioc_adapter_factory_cb (sioc.h) creates the adapter of one namespace (for every namespace,
 * dynamic ones included): fills *out and returns 0, or returns SIOC_E*. */

/* The in-memory adapter: a factory for sioc_server_options_t.adapter (the default). */
SIOC_API int sioc_memory_adapter_factory(sioc_namespace_t *nsp, const sioc_adapter_local_t *local,
                                         void *data, sioc_adapter_t **out);

/* A sink that passes every report on instead of collecting (a cluster adapter answering
 * another server's broadcast with acks). release runs when the last reference goes. */
typedef struct sioc_adapter_ack_relay_s {
    void (*client_count)(size_t clients, void *data);
    void (*ack)(const sioc_event_t *response, void *data);
    void (*release)(void *data);
} sioc_adapter_ack_relay_t;
/* A new relay sink with one reference (the caller's), or NULL. relay must outlive it. */
SIOC_API sioc_adapter_ack_sink_t *
sioc_adapter_ack_sink_new_relay(uv_loop_t *loop, const sioc_adapter_ack_relay_t *relay, void *data);

/* ---- Recovery stores: where connection state recovery keeps its state ----------------------
 *
 * With sioc_server_options_t.recovery on, the Socket.IO layer keeps two things in a store:
 * - the log: every recoverable broadcast (an EVENT without ack, not volatile; socket.emit()
 *   too, as a broadcast to the socket's own room) is appended before anyone gets it, and is
 *   delivered on this server when the append completed, in the order of the appends, with the
 *   offset the store gave as its last argument;
 * - the sessions: {pid, sid, nsp, rooms, data} of every socket, written when it connects,
 *   again (batched once per loop iteration) when it joins or leaves a room, every refresh
 *   period while connected, and when it leaves (the time to live then counts from the
 *   disconnection).
 * A CONNECT with auth {pid, offset} asks the store to take the session (once: the session is
 * gone from the store afterwards) and the logged packets after offset that the session's rooms
 * select, in log order.
 *
 * The in-memory store is the default (sioc_server_options_t.recovery_store NULL). A store that
 * outlives the process (Redis, a database) makes recovery survive a restart or a SIGKILL.
 *
 * Everything runs on the server's loop. Pointers passed to an operation are borrowed for the
 * call. Every completion callback runs exactly once, also when the store fails or closes (then
 * with an error); it may run before the operation returns. */

typedef struct sioc_recovery_store_s sioc_recovery_store_t;

/* Longest offset a store may give, without its NUL. */
#define SIOC_RECOVERY_OFFSET_MAX 64

/* A packet to log: data is [name, ...args] (without the offset), binary arguments as
 * placeholders for attachments[i]; opts->rooms / opts->except select the recipients. */
typedef struct sioc_recovery_packet_s {
    const char *nsp;
    json_t *data;
    const sioc_binary_t *attachments;
    size_t attachment_count;
    const sioc_adapter_opts_t *opts;
} sioc_recovery_packet_t;

/* A packet given back by restore: what was appended, and its offset. */
typedef struct sioc_recovery_missed_s {
    const char *offset;
    json_t *data;
    const sioc_binary_t *attachments;
    size_t attachment_count;
} sioc_recovery_missed_t;

/* A socket's session. rooms: array of names (the socket's own id included, as Node keeps
 * it); data: socket.data. ttl_ms: how long the store keeps it from now (a connected socket's
 * session is refreshed before that). connected: 1 while the socket is connected (a store in
 * the process's memory, which dies with the sockets, may ignore those). */
typedef struct sioc_recovery_session_s {
    const char *pid;
    const char *sid;
    const char *nsp;
    json_t *rooms;
    json_t *data;
    uint32_t ttl_ms;
    int connected;
} sioc_recovery_session_t;

/* error 0 and the packet's offset (a NUL-terminated string of at most
 * SIOC_RECOVERY_OFFSET_MAX characters that every server sharing the store understands), or an
 * error (SIOC_E*) and NULL: the packet is then delivered without an offset, as Node does, and
 * a client that was away misses it. */
typedef void (*sioc_recovery_append_cb)(int error, const char *offset, void *data);
/* session NULL: no such session (unknown, expired, already taken, another namespace) or an
 * offset the log does not hold (forged, or already trimmed): the client gets a fresh session.
 * Otherwise the session (taken: no other restore gets it) and the packets after the offset
 * that its rooms select (sioc_recovery_should_include), in log order. All borrowed for the
 * call. */
typedef void (*sioc_recovery_restore_cb)(int error, const sioc_recovery_session_t *session,
                                         const sioc_recovery_missed_t *missed, size_t count,
                                         void *data);

/* Operations. Return codes: 0 or SIOC_E* (a non-zero return means the callback will not run). */
typedef struct sioc_recovery_store_ops_s {
    int (*append)(sioc_recovery_store_t *store, const sioc_recovery_packet_t *packet,
                  sioc_recovery_append_cb callback, void *data);
    /* Writes (or replaces) the session of session->pid; no answer. */
    void (*save)(sioc_recovery_store_t *store, const sioc_recovery_session_t *session);
    /* Forgets the session of pid (the socket left for good: a client or server disconnect). */
    void (*drop)(sioc_recovery_store_t *store, const char *pid);
    /* Takes the session of pid for namespace nsp and the packets after offset. */
    int (*restore)(sioc_recovery_store_t *store, const char *pid, const char *offset,
                   const char *nsp, sioc_recovery_restore_cb callback, void *data);
} sioc_recovery_store_ops_t;

/* The part every store shares; an implementation embeds it as its first member. */
struct sioc_recovery_store_s {
    const sioc_recovery_store_ops_t *ops;
    /* 1: the store survives this process, so it wants connected sessions too (save with
     * connected 1, drop); 0: a store in this process's memory, told only of disconnections. */
    int keeps_connected;
};

/* socket.io-adapter's shouldIncludePacket(): 1 if a socket in session_rooms (array of names)
 * gets a packet sent to opts: one of its rooms is in opts->rooms (or opts->rooms is empty) and
 * none is in opts->except. */
SIOC_API int sioc_recovery_should_include(json_t *session_rooms, const sioc_adapter_opts_t *opts);

/* The store the server uses (NULL when recovery is off). */
SIOC_API sioc_recovery_store_t *sioc_server_recovery_store(const sioc_server_t *server);

/* ---- Redis: wire-compatible with @socket.io/redis-adapter 8.3 and @socket.io/redis-emitter 5.1 */

typedef enum sioc_redis_mode {
    SIOC_REDIS_CLASSIC = 0, /* PUBLISH / PSUBSCRIBE, createAdapter() */
    SIOC_REDIS_SHARDED = 1, /* SPUBLISH / SSUBSCRIBE (Redis 7), createShardedAdapter() */
    /* @socket.io/redis-streams-adapter 0.3: broadcasts and joins through the stream <key>
     * (XADD MAXLEN ~ stream_max_len, XREAD), requests and responses over PUBLISH / SUBSCRIBE;
     * with sioc_redis_recovery_store() the stream is the recovery log (Redis 5 or later). */
    SIOC_REDIS_STREAMS = 2,
} sioc_redis_mode_t;

/* The sharded adapter's subscriptionMode. */
typedef enum sioc_redis_subscription {
    SIOC_REDIS_DYNAMIC = 0,         /* a channel per public room (not a socket id): the default */
    SIOC_REDIS_STATIC = 1,          /* the namespace's channel and this node's only */
    SIOC_REDIS_DYNAMIC_PRIVATE = 2, /* a channel per room, socket id rooms included */
} sioc_redis_subscription_t;

typedef void (*sioc_redis_log_cb)(const char *line, void *data);

typedef struct sioc_redis_options_s {
    /* "redis://[[user]:password@]host[:port][/db]" sets host, port and password (Pub/Sub
     * ignores the db); NULL: the fields below. */
    const char *url;
    const char *host;                            /* "127.0.0.1" */
    int port;                                    /* 6379 */
    const char *password;                        /* NULL: no AUTH */
    const char *key;                             /* channel prefix: "socket.io" */
    sioc_redis_mode_t mode;                      /* SIOC_REDIS_CLASSIC */
    sioc_redis_subscription_t subscription_mode; /* sharded: SIOC_REDIS_DYNAMIC */
    uint32_t requests_timeout_ms;                /* fetchSockets, serverSideEmit acks: 5000 */
    int publish_on_specific_response_channel;    /* answer on <key>-response#<nsp>#<uid># (0) */
    size_t max_message_size;                     /* bigger channel messages are dropped: 1 MiB */
    uint32_t stream_max_len;                     /* streams: XADD MAXLEN ~ (10000) */
    uint32_t reconnect_min_ms;                   /* backoff after a lost connection: 100 .. */
    uint32_t reconnect_max_ms;                   /* .. doubling up to 5000 */
    /* One line per state change (connected, lost, reconnecting) and per dropped message; NULL
     * writes them to stderr as "sioc redis: <line>". */
    sioc_redis_log_cb log;
    void *log_data;
    /* The round trip of each PUBLISH / SPUBLISH (broadcasts, joins, requests and their answers)
     * from its write to Redis's answer, in seconds; NULL: not measured. For a latency histogram
     * (the daemon's sioc_cluster_redis_publish_duration_seconds). */
    void (*on_latency)(double seconds, void *data);
    void *latency_data;
} sioc_redis_options_t;

typedef struct sioc_redis_s sioc_redis_t;

struct redisAsyncContext;
/* Runs a hiredis async context (from redisAsyncConnect, not yet attached) on loop, with the glue
 * the adapter uses: unlike hiredis 0.14's adapters/libuv.h, a socket error libuv reports (a
 * refused connect, a reset) reaches hiredis, whose disconnect callback then runs, instead of the
 * connection hanging for ever. hiredis detaches it when it frees the context. 0, SIOC_EINVAL
 * (NULL, already attached, a bad fd) or SIOC_ENOMEM. */
SIOC_API int sioc_redis_attach(struct redisAsyncContext *context, uv_loop_t *loop);

SIOC_API void sioc_redis_options_init(sioc_redis_options_t *options);
/* One pair of Redis connections (publish, subscribe) for every namespace of a server; it
 * connects at once and reconnects by itself. Options are copied. SIOC_EINVAL for a URL that is
 * not redis:// (no TLS yet). */
SIOC_API int sioc_redis_new(uv_loop_t *loop, const sioc_redis_options_t *options,
                            sioc_redis_t **out);
/* 1 while both connections (publish and subscribe) are up, so that broadcasts reach the other
 * servers and theirs reach this one; 0 while either is down and being reconnected. A connection
 * is up once Redis answered a PING (after the AUTH of the URL's password): a Redis that refuses
 * the password (WRONGPASS) or wants one (NOAUTH) is down, logged once and retried. */
SIOC_API int sioc_redis_connected(const sioc_redis_t *redis);
/* Closes the connections and frees it; call after sioc_server_close's callback. */
SIOC_API void sioc_redis_free(sioc_redis_t *redis);
/* Streams mode: the recovery store (sioc_server_options_t.recovery_store) that keeps the log in
 * the stream (offsets are stream ids) and sessions under sio:session:<pid> (base64 msgpack, PX),
 * as @socket.io/redis-streams-adapter does, so that its Node servers and sioc recover each
 * other's clients. NULL in the other modes. Lives as long as redis. */
SIOC_API sioc_recovery_store_t *sioc_redis_recovery_store(sioc_redis_t *redis);
/* The factory for sioc_server_options_t.adapter, with the sioc_redis_t as adapter_data. */
SIOC_API int sioc_redis_adapter_factory(sioc_namespace_t *nsp, const sioc_adapter_local_t *local,
                                        void *data, sioc_adapter_t **out);

#ifdef __cplusplus
}
#endif

#endif
