/* The messages of @socket.io/redis-adapter 8.3 (classic mode) and @socket.io/redis-emitter 5.1
 * on Redis channels. Pure: bytes in, values out, no I/O.
 *
 * Broadcasts (<key>#<nsp># and <key>#<nsp>#<room>#) are notepack msgpack arrays
 * [uid, {type, data, nsp}, {rooms, except, flags}]. Requests (<key>-request#<nsp>#) and
 * responses (<key>-response#<nsp>#[<uid>#]) are JSON objects, except a broadcast with acks
 * (type 7) and its acks (type 9), which are msgpack maps: a receiver tells them apart by the
 * first byte ('{' is JSON). Binary values (msgpack bin) become placeholders
 * {"_placeholder":true,"num":i} and copies in attachments[i], as the Socket.IO parsers give them.
 *
 * Decoding checks everything the adapter will read: a message that is not exactly one value,
 * nests too deep, has the wrong types, an unknown request type, more than
 * SIOC__REDIS_MAX_NAMES rooms or more than SIOC__REDIS_MAX_ATTACHMENTS binaries is refused
 * with a static error message (the adapter drops it and logs the message). */
#ifndef SIOC_ADAPTER_REDIS_CODEC_H
#define SIOC_ADAPTER_REDIS_CODEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "sioc_adapter.h"
#include "socketio/sio_parser.h"

#define SIOC__REDIS_MAX_NAMES 1024
#define SIOC__REDIS_MAX_ATTACHMENTS 64

/* socket.io-redis-adapter's RequestType. */
enum sioc__redis_request_type {
    SIOC__REDIS_SOCKETS = 0,
    SIOC__REDIS_ALL_ROOMS = 1,
    SIOC__REDIS_REMOTE_JOIN = 2,
    SIOC__REDIS_REMOTE_LEAVE = 3,
    SIOC__REDIS_REMOTE_DISCONNECT = 4,
    SIOC__REDIS_REMOTE_FETCH = 5,
    SIOC__REDIS_SERVER_SIDE_EMIT = 6,
    SIOC__REDIS_BROADCAST = 7,
    SIOC__REDIS_BROADCAST_CLIENT_COUNT = 8,
    SIOC__REDIS_BROADCAST_ACK = 9,
};

/* socket.io-adapter 2.5's ClusterAdapter MessageType (the sharded adapter's messages). */
enum sioc__redis_sharded_type {
    SIOC__SHARDED_INITIAL_HEARTBEAT = 1,
    SIOC__SHARDED_HEARTBEAT = 2,
    SIOC__SHARDED_BROADCAST = 3,
    SIOC__SHARDED_SOCKETS_JOIN = 4,
    SIOC__SHARDED_SOCKETS_LEAVE = 5,
    SIOC__SHARDED_DISCONNECT_SOCKETS = 6,
    SIOC__SHARDED_FETCH_SOCKETS = 7,
    SIOC__SHARDED_FETCH_SOCKETS_RESPONSE = 8,
    SIOC__SHARDED_SERVER_SIDE_EMIT = 9,
    SIOC__SHARDED_SERVER_SIDE_EMIT_RESPONSE = 10,
    SIOC__SHARDED_BROADCAST_CLIENT_COUNT = 11,
    SIOC__SHARDED_BROADCAST_ACK = 12,
    SIOC__SHARDED_ADAPTER_CLOSE = 13,
};

/* A decoded message. Strings and values point into value (owned); the name arrays and the
 * attachments are owned too: sioc__redis_message_clear releases everything. */
typedef struct sioc__redis_message_s {
    json_t *value;
    sioc__sio_attachment_t *attachments;
    size_t attachment_count;
    const char *uid;        /* NULL when absent (the emitter's requests) */
    const char *request_id; /* NULL when absent */
    int type;               /* requests and responses */
    /* Broadcasts (also type 7): the packet's namespace ("/" when absent) and data
     * [name, ...args]; the selection with its name arrays. */
    const char *nsp;
    json_t *data;
    sioc_adapter_opts_t opts;
    int has_opts;
    /* REMOTE_JOIN / REMOTE_LEAVE: the rooms to join or leave; legacy form: sid and room. */
    const char **rooms;
    size_t room_count;
    const char *sid;
    const char *room;
    int close;              /* REMOTE_DISCONNECT */
    json_t *payload;        /* SERVER_SIDE_EMIT data, BROADCAST_ACK packet, responses' data */
    long long client_count; /* BROADCAST_CLIENT_COUNT */
    json_t *sockets;        /* REMOTE_FETCH / SOCKETS response */
    json_t *room_names; /* ALL_ROOMS response: its "rooms" when an array (Node ignores others) */
} sioc__redis_message_t;

void sioc__redis_message_clear(sioc__redis_message_t *message);

/* A broadcast: 0 with *out filled, or -1 with *error set (*out then holds nothing). */
int sioc__redis_decode_broadcast(const uint8_t *bytes, size_t length, sioc__redis_message_t *out,
                                 const char **error);
/* A request: JSON when it starts with '{', else msgpack; type one of the request types (0..7). */
int sioc__redis_decode_request(const uint8_t *bytes, size_t length, sioc__redis_message_t *out,
                               const char **error);
/* A response (type -1 when absent, as in fetchSockets answers): requestId a string; sockets an
 * array, clientCount a non-negative integer, packet / data any value when present. */
int sioc__redis_decode_response(const uint8_t *bytes, size_t length, sioc__redis_message_t *out,
                                const char **error);

/* A sharded-mode message {uid, nsp, type, data} (JSON when it starts with '{', else msgpack):
 * uid and nsp strings, type 1..13, data shaped per type (requestId, opts, rooms, close,
 * packet, sockets, clientCount read into the fields above; nsp is the envelope's). */
int sioc__redis_decode_sharded(const uint8_t *bytes, size_t length, sioc__redis_message_t *out,
                               const char **error);
/* {type, data, uid, nsp} as ClusterAdapter writes it: JSON, or msgpack when attachments (the
 * placeholders in data) are given. data is borrowed. */
uint8_t *sioc__redis_encode_sharded(const char *uid, const char *nsp, int type, json_t *data,
                                    const sioc_binary_t *attachments, size_t attachment_count,
                                    size_t *length);

/* Encoders: malloc'd bytes (caller frees) and *length, or NULL (out of memory, or data the
 * encoder refuses: too deep). data is [name, ...args] with placeholders for attachments. */
uint8_t *sioc__redis_encode_broadcast(const char *uid, const char *nsp, json_t *data,
                                      const sioc_binary_t *attachments, size_t attachment_count,
                                      const sioc_adapter_opts_t *opts, size_t *length);
uint8_t *sioc__redis_encode_broadcast_request(const char *uid, const char *request_id,
                                              const char *nsp, json_t *data,
                                              const sioc_binary_t *attachments,
                                              size_t attachment_count,
                                              const sioc_adapter_opts_t *opts, size_t *length);
/* {type: 9, requestId, packet} with the client's first ack argument. */
uint8_t *sioc__redis_encode_broadcast_ack(const char *request_id, json_t *packet,
                                          const sioc_binary_t *attachments, size_t attachment_count,
                                          size_t *length);
/* {rooms: [...], except: [...]} as requests carry it (a new object). */
json_t *sioc__redis_opts_json(const sioc_adapter_opts_t *opts);

/* ---- streams mode: @socket.io/redis-streams-adapter 0.3.1 (dist/adapter.js) ----
 * Pub/sub messages (fetchSockets, serverSideEmit, broadcasts with acks, every response) are
 * always msgpack {uid, nsp, type, data}. Stream entries carry the fields uid, nsp, type (the
 * decimal MessageType) and data: JSON text, or base64 msgpack when data holds binary. */
uint8_t *sioc__redis_encode_cluster_msgpack(const char *uid, const char *nsp, int type,
                                            json_t *data, const sioc_binary_t *attachments,
                                            size_t attachment_count, size_t *length);
/* An entry's data field (malloc'd, NUL-terminated), or NULL. */
char *sioc__redis_encode_stream_data(json_t *data, const sioc_binary_t *attachments,
                                     size_t attachment_count);
/* An entry's fields (data may be NULL) into a sharded-mode message, with the checks of
 * sioc__redis_decode_sharded; a type that is not "1".."13" or bad base64 is refused. */
int sioc__redis_decode_stream_entry(const char *uid, size_t uid_length, const char *nsp,
                                    size_t nsp_length, const char *type, size_t type_length,
                                    const char *data, size_t data_length,
                                    sioc__redis_message_t *out, const char **error);

/* A session under sio:session:<pid>: base64 msgpack {sid, pid, rooms, data} as Node writes it
 * (socket._onclose -> persistSession), plus nsp, which Node ignores and does not write. */
typedef struct sioc__redis_session_s {
    json_t *value; /* owns everything below */
    const char *sid;
    const char *pid;
    const char *nsp; /* NULL when absent (Node's) */
    json_t *rooms;   /* array of strings, at most SIOC__REDIS_MAX_NAMES */
    json_t *data;    /* NULL when absent */
} sioc__redis_session_t;
/* base64 text (malloc'd, NUL-terminated), or NULL. */
char *sioc__redis_encode_session(const sioc_recovery_session_t *session);
/* 0, or -1 with *error (bad base64, not msgpack, not the shape above, binary in it). */
int sioc__redis_decode_session(const char *text, size_t length, sioc__redis_session_t *out,
                               const char **error);
void sioc__redis_session_clear(sioc__redis_session_t *session);

#endif
