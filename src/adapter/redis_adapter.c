/* The Redis adapter, classic mode, wire-compatible with @socket.io/redis-adapter 8.3
 * (createAdapter) and @socket.io/redis-emitter 5.1; messages in redis_codec.c.
 *
 * One sioc_redis_t holds two hiredis connections on the loop: "publish" (PUBLISH, PUBSUB NUMSUB)
 * and "subscribe" (one PSUBSCRIBE <key>#<nsp>#* and one SUBSCRIBE of the request, response and
 * specific response channels per namespace). Each reconnects by itself with a doubling backoff
 * and the subscribe side subscribes again; meanwhile local delivery goes on, publishes are
 * dropped and requests to other servers end at their timeout.
 *
 * Requests waiting for other servers (fetchSockets, serverSideEmit with acks, broadcast acks,
 * serverCount) live in one table by request id, so that a reply arriving after its request ended
 * (or after its namespace went) finds nothing and is ignored. */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "adapter/adapter.h"
#include "adapter/redis_codec.h"

typedef struct redis_adapter_s redis_adapter_t;
typedef struct request_s request_t;
typedef struct stream_entry_s stream_entry_t;
typedef struct stream_append_s stream_append_t;
typedef struct claim_s claim_t;

#define LATENCY_RING 256 /* measured commands in flight per connection */

typedef struct link_s {
    sioc_redis_t *redis;
    const char *role;           /* "publish" or "subscribe", for the log */
    redisAsyncContext *context; /* NULL while down */
    uv_timer_t timer;           /* reconnects */
    uint32_t backoff_ms;
    int up;
    int failing; /* a failure was logged since the last success */
    /* on_latency: the send times (uv_hrtime) of the measured commands awaiting their answer,
     * oldest first; Redis answers in order, and a command sent while the ring is full is not
     * measured. */
    uint64_t sent_ns[LATENCY_RING];
    uint32_t sent_head;
    uint32_t sent_count;
} link_t;

struct sioc_redis_s {
    uv_loop_t *loop;
    sioc_redis_options_t options;
    char *host, *password, *key;
    link_t publish, subscribe;
    redis_adapter_t *adapters;
    request_t *requests; /* by id */
    int sharded;         /* ClusterAdapter messages (SPUBLISH / SSUBSCRIBE unless streams) */
    int streams;         /* streams mode: XADD / XREAD, PUBLISH / SUBSCRIBE (redis_streams) */
    /* streams mode: the reader (its own connection, XREAD BLOCK), its position ("" until
     * known), the entries read and not yet handled, and this node's appends of recoverable
     * broadcasts, in XADD order, each completed when the reader meets its entry. */
    link_t stream;
    char last_id[SIOC_RECOVERY_OFFSET_MAX + 1];
    int reading;
    stream_entry_t *held;
    stream_entry_t *held_tail;
    stream_append_t *appends;
    stream_append_t *appends_tail;
    sioc_recovery_store_t store; /* sioc_redis_recovery_store() */
    claim_t *claims; /* the restore claims this node holds, by pid, and from the oldest */
    claim_t *claims_head, *claims_tail;
    uint64_t log_window_start;
    unsigned logged_in_window;
    int open_handles;
    int closing;
};

struct redis_adapter_s {
    sioc_adapter_t base;
    sioc_redis_t *redis;
    char *channel;          /* <key>#<nsp># */
    char *pattern;          /* <key>#<nsp>#* */
    char *request_channel;  /* <key>-request#<nsp># */
    char *response_channel; /* <key>-response#<nsp># */
    char *specific_channel; /* <key>-response#<nsp>#<uid># */
    redis_adapter_t *next;
};

enum request_kind {
    REQUEST_FETCH,
    REQUEST_SERVER_SIDE_EMIT,
    REQUEST_BROADCAST,
    REQUEST_COUNT,
    REQUEST_ALL_ROOMS,
};

struct request_s {
    char id[SIOC_ADAPTER_UID_SIZE];
    enum request_kind kind;
    redis_adapter_t *adapter;
    sioc_redis_t *redis;
    uv_timer_t timer;
    size_t expected; /* answers to wait for, once the server count is known */
    size_t answered;
    json_t *results; /* fetch: sockets; serverSideEmit: responses; allRooms: {name: null} */
    char *message;   /* the request to publish once the server count is known */
    size_t message_length;
    sioc_adapter_ack_sink_t *sink; /* broadcast with acks */
    union {
        sioc_fetch_sockets_cb fetch;
        sioc_server_side_ack_cb server_side;
        sioc_server_count_cb count;
        sioc_all_rooms_cb all_rooms;
    } callback;
    void *data;
    UT_hash_handle hh;
};

/* ---- log ----------------------------------------------------------------------------------- */

static void log_line(sioc_redis_t *redis, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void log_line(sioc_redis_t *redis, const char *format, ...)
{
    char line[512];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof(line), format, args);
    va_end(args);
    if (redis->options.log != NULL)
        redis->options.log(line, redis->options.log_data);
    else
        fprintf(stderr, "sioc redis: %s\n", line);
}

/* Dropped messages: at most 20 lines per 10 s, so that a flood cannot fill the disk. */
static void log_drop(sioc_redis_t *redis, const char *channel, const char *why)
{
    uint64_t now = uv_now(redis->loop);
    if (now - redis->log_window_start >= 10000) {
        redis->log_window_start = now;
        redis->logged_in_window = 0;
    }
    if (redis->logged_in_window++ < 20)
        log_line(redis, "dropped a message on %.200s: %s", channel, why);
}

/* ---- connections ----------------------------------------------------------------------------- */

static void link_connect(link_t *link);
static void subscribe_adapter(sioc_redis_t *redis, redis_adapter_t *adapter);
static void on_sharded_message(sioc_redis_t *redis, const char *channel, size_t channel_length,
                               const uint8_t *bytes, size_t length);
static void on_handle_closed(uv_handle_t *handle);
static void stream_read(sioc_redis_t *redis);
static void stream_reader_down(sioc_redis_t *redis);
static int stream_add(sioc_redis_t *redis, const char *uid, const char *nsp, int type, json_t *data,
                      const sioc_binary_t *attachments, size_t attachment_count,
                      stream_append_t *append);

static void on_reconnect_timer(uv_timer_t *timer)
{
    link_connect(timer->data);
}

static void link_retry(link_t *link)
{
    link->up = 0;
    link->context = NULL;
    if (link->redis->closing)
        return;
    uv_timer_start(&link->timer, on_reconnect_timer, link->backoff_ms, 0);
    uint32_t next = link->backoff_ms * 2;
    link->backoff_ms =
        next > link->redis->options.reconnect_max_ms ? link->redis->options.reconnect_max_ms : next;
}

static void on_ready(redisAsyncContext *context, void *reply_data, void *data);

static void on_connected(const redisAsyncContext *context, int status)
{
    link_t *link = context->data;
    if (link == NULL)
        return;
    sioc_redis_t *redis = link->redis;
    if (status != REDIS_OK) {
        if (!link->failing)
            log_line(redis, "%s connection to %s:%d failed (%s); retrying with backoff up to %u ms",
                     link->role, redis->host, redis->options.port, context->errstr,
                     redis->options.reconnect_max_ms);
        link->failing = 1;
        link_retry(link); /* hiredis frees the context after this callback */
        return;
    }
    /* A Redis with requirepass accepts the TCP connection and then refuses every command
     * (NOAUTH, or WRONGPASS for our AUTH): the link is up only once a PING, queued behind the
     * AUTH, is answered. */
    redisAsyncCommand((redisAsyncContext *)context, on_ready, NULL, "PING");
}

static void on_ready(redisAsyncContext *context, void *reply_data, void *data)
{
    (void)data;
    link_t *link = context->data;
    const redisReply *reply = reply_data;
    if (link == NULL || reply == NULL)
        return;
    sioc_redis_t *redis = link->redis;
    if (reply->type == REDIS_REPLY_ERROR) {
        if (!link->failing)
            log_line(redis,
                     "%s connection to %s:%d refused (%s); retrying with backoff up to %u ms",
                     link->role, redis->host, redis->options.port, reply->str,
                     redis->options.reconnect_max_ms);
        link->failing = 1;
        redisAsyncDisconnect(context); /* on_disconnected retries */
        return;
    }
    log_line(redis, "%s connection to %s:%d up", link->role, redis->host, redis->options.port);
    link->up = 1;
    link->failing = 0;
    link->backoff_ms = redis->options.reconnect_min_ms;
    if (link == &redis->subscribe) {
        for (redis_adapter_t *adapter = redis->adapters; adapter != NULL; adapter = adapter->next)
            subscribe_adapter(redis, adapter);
    }
    if (link == &redis->stream)
        stream_read(redis);
}

static void on_disconnected(const redisAsyncContext *context, int status)
{
    link_t *link = context->data;
    if (link == NULL)
        return;
    if (link->up || !link->failing) /* not after a refusal, logged already */
        log_line(link->redis, "%s connection to %s:%d lost (%s); reconnecting", link->role,
                 link->redis->host, link->redis->options.port,
                 status == REDIS_OK ? "closed" : context->errstr);
    link->failing = 1;
    link_retry(link);
    if (link == &link->redis->stream)
        stream_reader_down(link->redis);
}

static void on_auth(redisAsyncContext *context, void *reply_data, void *data)
{
    (void)data;
    link_t *link = context->data;
    const redisReply *reply = reply_data;
    /* Logged once per outage; the PING behind it fails too and closes the link. */
    if (link != NULL && reply != NULL && reply->type == REDIS_REPLY_ERROR && !link->failing) {
        log_line(link->redis, "%s connection to %s:%d: AUTH refused (%s); retrying with backoff",
                 link->role, link->redis->host, link->redis->options.port, reply->str);
        link->failing = 1;
    }
}

static void link_connect(link_t *link)
{
    sioc_redis_t *redis = link->redis;
    link->sent_head = link->sent_count = 0; /* the last context's callbacks have all run */
    redisAsyncContext *context = redisAsyncConnect(redis->host, redis->options.port);
    if (context == NULL || context->err != 0) {
        if (!link->failing)
            log_line(redis, "%s connection to %s:%d failed (%s); retrying", link->role, redis->host,
                     redis->options.port, context ? context->errstr : "no memory");
        link->failing = 1;
        if (context != NULL)
            redisAsyncFree(context);
        link_retry(link);
        return;
    }
    if (sioc_redis_attach(context, redis->loop) != 0) {
        redisAsyncFree(context);
        link_retry(link);
        return;
    }
    context->data = link;
    link->context = context;
    redisAsyncSetConnectCallback(context, on_connected);
    redisAsyncSetDisconnectCallback(context, on_disconnected);
    if (redis->password != NULL)
        redisAsyncCommand(context, on_auth, NULL, "AUTH %s", redis->password);
}

int sioc_redis_connected(const sioc_redis_t *redis)
{
    /* streams mode: without its reader a node hears nothing the other nodes broadcast */
    return redis->publish.up && redis->subscribe.up && (!redis->streams || redis->stream.up);
}

/* Every measured command gets its callback once, answered or (NULL) dropped with its
 * connection, in the order sent: the ring's oldest entry is its send time. */
static void on_published(redisAsyncContext *context, void *reply, void *data)
{
    (void)data;
    link_t *link = context->data;
    if (link == NULL || link->sent_count == 0)
        return;
    uint64_t sent = link->sent_ns[link->sent_head];
    link->sent_head = (link->sent_head + 1) % LATENCY_RING;
    link->sent_count--;
    if (reply != NULL)
        link->redis->options.on_latency((double)(uv_hrtime() - sent) / 1e9,
                                        link->redis->options.latency_data);
}

static void publish(sioc_redis_t *redis, const char *channel, const void *bytes, size_t length)
{
    if (!redis->publish.up)
        return; /* the lost connection was logged; local delivery goes on */
    const char *command = redis->sharded && !redis->streams ? "SPUBLISH" : "PUBLISH";
    const char *argv[3] = {command, channel, bytes};
    size_t lengths[3] = {strlen(command), strlen(channel), length};
    link_t *link = &redis->publish;
    int measured = redis->options.on_latency != NULL && link->sent_count < LATENCY_RING;
    if (redisAsyncCommandArgv(link->context, measured ? on_published : NULL, NULL, 3, argv,
                              lengths) == REDIS_OK &&
        measured)
        link->sent_ns[(link->sent_head + link->sent_count++) % LATENCY_RING] = uv_hrtime();
    /* Written now, not when the loop next polls: a broadcast writes to every local socket right
     * after this, and the other nodes would wait for all of that (milliseconds for hundreds of
     * members) before the message even left. hiredis keeps what the socket does not take. */
    redisAsyncHandleWrite(redis->publish.context);
}

static void publish_json(sioc_redis_t *redis, const char *channel, json_t *value)
{
    char *text = value != NULL ? json_dumps(value, JSON_COMPACT) : NULL;
    if (text != NULL)
        publish(redis, channel, text, strlen(text));
    free(text);
    json_decref(value);
}

/* ---- requests to other servers ------------------------------------------------------------- */

static request_t *request_find(sioc_redis_t *redis, const char *id)
{
    request_t *request = NULL;
    if (id != NULL)
        HASH_FIND_STR(redis->requests, id, request);
    return request;
}

static void on_request_closed(uv_handle_t *handle)
{
    request_t *request = handle->data;
    json_decref(request->results);
    free(request->message);
    free(request);
}

static void request_release(request_t *request)
{
    HASH_DEL(request->redis->requests, request);
    uv_timer_stop(&request->timer);
    uv_close((uv_handle_t *)&request->timer, on_request_closed);
}

/* The set's names as an array, in the order first seen (this server's first). */
static void finish_all_rooms(request_t *request, int error)
{
    json_t *names = json_array();
    const char *name;
    size_t length;
    json_t *ignored;
    /* keylen: a room name may hold U+0000 */
    json_object_keylen_foreach(request->results, name, length, ignored)
        json_array_append_new(names, json_stringn(name, length));
    request->callback.all_rooms(names != NULL ? error : SIOC_ENOMEM, names, request->data);
    json_decref(names);
}

/* Ends a request: out of the table first (a callback may start another), its callback, freed
 * once the timer is closed. */
static void request_finish(request_t *request, int error)
{
    HASH_DEL(request->redis->requests, request);
    uv_timer_stop(&request->timer);
    switch (request->kind) {
    case REQUEST_FETCH:
        request->callback.fetch(error, request->results, request->data);
        break;
    case REQUEST_SERVER_SIDE_EMIT:
        request->callback.server_side(error, request->results, request->data);
        break;
    case REQUEST_BROADCAST:
        sioc_adapter_ack_sink_unref(request->sink);
        break;
    case REQUEST_COUNT:
        request->callback.count(1, request->data);
        break;
    case REQUEST_ALL_ROOMS:
        finish_all_rooms(request, error);
        break;
    }
    uv_close((uv_handle_t *)&request->timer, on_request_closed);
}

static void on_request_timeout(uv_timer_t *timer)
{
    request_t *request = timer->data;
    request_finish(request, request->kind == REQUEST_BROADCAST ? 0 : SIOC_ETIMEDOUT);
}

static request_t *request_new(redis_adapter_t *adapter, enum request_kind kind, uint32_t timeout_ms)
{
    request_t *request = calloc(1, sizeof(*request));
    if (request == NULL)
        return NULL;
    request->kind = kind;
    request->adapter = adapter;
    request->redis = adapter->redis;
    for (int tries = 0; tries < 8; tries++) {
        sioc__adapter_make_uid(request->id, 6);
        if (request_find(adapter->redis, request->id) == NULL)
            break;
    }
    uv_timer_init(adapter->redis->loop, &request->timer);
    request->timer.data = request;
    uv_timer_start(&request->timer, on_request_timeout,
                   timeout_ms > 0 ? timeout_ms : adapter->redis->options.requests_timeout_ms, 0);
    HASH_ADD_STR(adapter->redis->requests, id, request);
    return request;
}

/* The server count arrived (servers = 0 when PUBSUB NUMSUB failed). */
static void request_on_count(request_t *request, size_t servers, int known)
{
    switch (request->kind) {
    case REQUEST_COUNT:
        request->callback.count(servers > 0 ? servers : 1, request->data);
        request_release(request);
        return;
    case REQUEST_BROADCAST:
        /* This server counts even when its own subscription is down. */
        sioc_adapter_ack_sink_server_count(request->sink, servers > 0 ? servers : 1);
        return;
    case REQUEST_FETCH:
    case REQUEST_ALL_ROOMS:
    case REQUEST_SERVER_SIDE_EMIT:
        if (!known)
            return; /* ends at its timeout */
        /* Alone (serverCount counts this server): nobody to ask. */
        if (servers <= 1) {
            request_finish(request, 0);
            return;
        }
        /* fetchSockets and allRooms count this server's answer, serverSideEmit does not. */
        int counts_itself = request->kind != REQUEST_SERVER_SIDE_EMIT;
        request->expected = counts_itself ? servers : servers - 1;
        request->answered = counts_itself ? 1 : 0;
        publish(request->redis,
                request->redis->sharded ? request->adapter->channel
                                        : request->adapter->request_channel,
                request->message, request->message_length);
        return;
    }
}

typedef struct count_query_s {
    sioc_redis_t *redis;
    char id[SIOC_ADAPTER_UID_SIZE];
} count_query_t;

static void on_numsub(redisAsyncContext *context, void *reply_data, void *data)
{
    count_query_t *query = data;
    const redisReply *reply = reply_data;
    request_t *request = request_find(query->redis, query->id);
    free(query);
    if (request == NULL)
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[1]->type != REDIS_REPLY_INTEGER || reply->element[1]->integer < 0) {
        request_on_count(request, 0, 0);
        return;
    }
    request_on_count(request, (size_t)reply->element[1]->integer, 1);
}

/* serverCount(): PUBSUB NUMSUB of the request channel, then request_on_count. */
static void request_count_servers(request_t *request)
{
    sioc_redis_t *redis = request->redis;
    count_query_t *query = redis->publish.up ? malloc(sizeof(*query)) : NULL;
    if (query == NULL) {
        request_on_count(request, 0, 0);
        return;
    }
    query->redis = redis;
    memcpy(query->id, request->id, sizeof(query->id));
    /* the sharded adapter counts the subscribers of its main channel */
    const char *counted =
        redis->sharded ? request->adapter->channel : request->adapter->request_channel;
    const char *argv[3] = {"PUBSUB", redis->sharded && !redis->streams ? "SHARDNUMSUB" : "NUMSUB",
                           counted};
    size_t lengths[3] = {6, strlen(argv[1]), strlen(counted)};
    if (redisAsyncCommandArgv(redis->publish.context, on_numsub, query, 3, argv, lengths) !=
        REDIS_OK) {
        free(query);
        request_on_count(request, 0, 0);
    }
}

/* ---- answering other servers ------------------------------------------------------------------
 */

/* publishResponse(): the shared response channel, or the requester's own one. */
static void respond(redis_adapter_t *adapter, const char *uid, json_t *response)
{
    sioc_redis_t *redis = adapter->redis;
    if (redis->options.publish_on_specific_response_channel && uid != NULL) {
        char channel[1024];
        snprintf(channel, sizeof(channel), "%s%s#", adapter->response_channel, uid);
        publish_json(redis, channel, response);
    } else {
        publish_json(redis, adapter->response_channel, response);
    }
}

/* Another server's broadcast with acks: every report goes back on the response channel. */
typedef struct relay_s {
    sioc_redis_t *redis;
    char *channel;
    char *nsp; /* sharded: the envelope's nsp and uid */
    char uid[SIOC_ADAPTER_UID_SIZE];
    char request_id[SIOC_ADAPTER_UID_SIZE];
} relay_t;

/* A ClusterAdapter message {uid, nsp, type, data}: JSON (msgpack with binary) on channel; in
 * streams mode msgpack on channel for what Node's isEphemeral() calls so (requests and every
 * response), an entry of the stream otherwise. */
static uint8_t *encode_cluster(sioc_redis_t *redis, const char *uid, const char *nsp, int type,
                               json_t *data, const sioc_binary_t *attachments,
                               size_t attachment_count, size_t *length)
{
    if (redis->streams)
        return sioc__redis_encode_cluster_msgpack(uid, nsp, type, data, attachments,
                                                  attachment_count, length);
    return sioc__redis_encode_sharded(uid, nsp, type, data, attachments, attachment_count, length);
}

static int in_stream(int type, json_t *data)
{
    if (type == SIOC__SHARDED_BROADCAST)
        return json_object_get(data, "requestId") == NULL;
    return type == SIOC__SHARDED_SOCKETS_JOIN || type == SIOC__SHARDED_SOCKETS_LEAVE ||
           type == SIOC__SHARDED_DISCONNECT_SOCKETS;
}

static void publish_sharded(sioc_redis_t *redis, const char *channel, const char *uid,
                            const char *nsp, int type, json_t *data,
                            const sioc_binary_t *attachments, size_t attachment_count)
{
    if (redis->streams && data != NULL && in_stream(type, data)) {
        stream_add(redis, uid, nsp, type, data, attachments, attachment_count, NULL);
        json_decref(data);
        return;
    }
    size_t length = 0;
    uint8_t *bytes = data != NULL ? encode_cluster(redis, uid, nsp, type, data, attachments,
                                                   attachment_count, &length)
                                  : NULL;
    if (bytes != NULL)
        publish(redis, channel, bytes, length);
    free(bytes);
    json_decref(data);
}

static void relay_client_count(size_t clients, void *data)
{
    relay_t *relay = data;
    if (relay->redis->sharded) {
        publish_sharded(relay->redis, relay->channel, relay->uid, relay->nsp,
                        SIOC__SHARDED_BROADCAST_CLIENT_COUNT,
                        json_pack("{s:s,s:I}", "requestId", relay->request_id, "clientCount",
                                  (json_int_t)clients),
                        NULL, 0);
        return;
    }
    publish_json(relay->redis, relay->channel,
                 json_pack("{s:i,s:s,s:I}", "type", SIOC__REDIS_BROADCAST_CLIENT_COUNT, "requestId",
                           relay->request_id, "clientCount", (json_int_t)clients));
}

static void relay_ack(const sioc_event_t *response, void *data)
{
    relay_t *relay = data;
    /* Node's broadcast acks carry each client's first argument. */
    json_t *first = json_array_get(response->args, 0);
    if (relay->redis->sharded) {
        publish_sharded(relay->redis, relay->channel, relay->uid, relay->nsp,
                        SIOC__SHARDED_BROADCAST_ACK,
                        json_pack("{s:s,s:O}", "requestId", relay->request_id, "packet",
                                  first != NULL ? first : json_null()),
                        response->attachments, response->attachment_count);
        return;
    }
    size_t length = 0;
    uint8_t *bytes = sioc__redis_encode_broadcast_ack(
        relay->request_id, first, response->attachments, response->attachment_count, &length);
    if (bytes != NULL)
        publish(relay->redis, relay->channel, bytes, length);
    free(bytes);
}

static void relay_release(void *data)
{
    relay_t *relay = data;
    free(relay->channel);
    free(relay->nsp);
    free(relay);
}

static const sioc_adapter_ack_relay_t relay_hooks = {relay_client_count, relay_ack, relay_release};

static char *response_channel_for(redis_adapter_t *adapter, const char *uid)
{
    char channel[1024];
    if (adapter->redis->sharded) /* doPublishResponse: <key>#<nsp>#<requester uid># */
        snprintf(channel, sizeof(channel), "%s%s#", adapter->channel, uid != NULL ? uid : "");
    else if (adapter->redis->options.publish_on_specific_response_channel && uid != NULL)
        snprintf(channel, sizeof(channel), "%s%s#", adapter->response_channel, uid);
    else
        snprintf(channel, sizeof(channel), "%s", adapter->response_channel);
    return strdup(channel);
}

static void to_binaries(const sioc__redis_message_t *message, sioc_binary_t *binaries)
{
    for (size_t i = 0; i < message->attachment_count; i++) {
        binaries[i].data = message->attachments[i].data;
        binaries[i].length = message->attachments[i].length;
    }
}

static void answer_broadcast_with_ack(redis_adapter_t *adapter, sioc__redis_message_t *message)
{
    relay_t *relay = calloc(1, sizeof(*relay));
    if (relay == NULL || (relay->channel = response_channel_for(adapter, message->uid)) == NULL) {
        free(relay);
        return;
    }
    relay->redis = adapter->redis;
    relay->nsp = strdup(sioc_namespace_name(adapter->base.nsp));
    snprintf(relay->uid, sizeof(relay->uid), "%s", adapter->base.uid);
    snprintf(relay->request_id, sizeof(relay->request_id), "%s", message->request_id);
    sioc_adapter_ack_sink_t *sink =
        sioc_adapter_ack_sink_new_relay(adapter->redis->loop, &relay_hooks, relay);
    if (sink == NULL) {
        relay_release(relay);
        return;
    }
    sioc_binary_t binaries[SIOC__REDIS_MAX_ATTACHMENTS + 1];
    to_binaries(message, binaries);
    sioc_adapter_packet_t packet = {message->data, binaries, message->attachment_count};
    message->opts.flags &= ~SIOC_BROADCAST_LOCAL;
    adapter->base.local->broadcast_with_ack(adapter->base.nsp, &packet, &message->opts, sink);
    sioc_adapter_ack_sink_unref(sink);
}

/* An incoming serverSideEmit that waits for an answer. */
typedef struct reply_s {
    sioc_adapter_reply_t base;
    sioc_redis_t *redis;
    char *channel;
    char *nsp; /* sharded: the envelope's nsp and uid */
    char uid[SIOC_ADAPTER_UID_SIZE];
    char request_id[SIOC_ADAPTER_UID_SIZE];
} reply_t;

static void reply_drop(sioc_adapter_reply_t *base)
{
    reply_t *reply = (reply_t *)base;
    free(reply->channel);
    free(reply->nsp);
    free(reply);
}

static void reply_send(sioc_adapter_reply_t *base, json_t *arg)
{
    reply_t *reply = (reply_t *)base;
    if (reply->redis->sharded) {
        publish_sharded(reply->redis, reply->channel, reply->uid, reply->nsp,
                        SIOC__SHARDED_SERVER_SIDE_EMIT_RESPONSE,
                        json_pack("{s:s,s:o}", "requestId", reply->request_id, "packet",
                                  arg != NULL ? arg : json_null()),
                        NULL, 0);
        reply_drop(base);
        return;
    }
    publish_json(reply->redis, reply->channel,
                 json_pack("{s:i,s:s,s:o}", "type", SIOC__REDIS_SERVER_SIDE_EMIT, "requestId",
                           reply->request_id, "data", arg != NULL ? arg : json_null()));
    reply_drop(base);
}

static void answer_server_side_emit(redis_adapter_t *adapter, sioc__redis_message_t *message)
{
    const sioc_adapter_local_t *local = adapter->base.local;
    if (message->request_id == NULL) {
        local->server_side_emit(adapter->base.nsp, message->payload, NULL);
        return;
    }
    reply_t *reply = calloc(1, sizeof(*reply));
    /* Node's classic adapter answers serverSideEmit on the shared response channel, whatever
     * the option; the sharded one on the requester's. */
    if (reply == NULL ||
        (reply->channel = adapter->redis->sharded ? response_channel_for(adapter, message->uid)
                                                  : strdup(adapter->response_channel)) == NULL) {
        free(reply);
        return;
    }
    reply->nsp = strdup(sioc_namespace_name(adapter->base.nsp));
    snprintf(reply->uid, sizeof(reply->uid), "%s", adapter->base.uid);
    reply->base.send = reply_send;
    reply->base.drop = reply_drop;
    reply->redis = adapter->redis;
    snprintf(reply->request_id, sizeof(reply->request_id), "%s", message->request_id);
    local->server_side_emit(adapter->base.nsp, message->payload, &reply->base);
}

static json_t *socket_ids(json_t *sockets)
{
    json_t *ids = json_array();
    size_t index;
    json_t *socket;
    json_array_foreach(sockets, index, socket)
        json_array_append(ids, json_object_get(socket, "id"));
    json_decref(sockets);
    return ids;
}

/* The legacy single-socket form of join / leave / disconnect, answered with {requestId}. */
static void answer_legacy(redis_adapter_t *adapter, sioc__redis_message_t *message)
{
    const sioc_adapter_local_t *local = adapter->base.local;
    sioc_namespace_t *nsp = adapter->base.nsp;
    if (!local->has_room(nsp, message->sid))
        return;
    const char *sid = message->sid;
    sioc_adapter_opts_t opts = {&sid, 1, NULL, 0, 0, 0};
    if (message->type == SIOC__REDIS_REMOTE_JOIN)
        local->add_sockets(nsp, &opts, &message->room, 1);
    else if (message->type == SIOC__REDIS_REMOTE_LEAVE)
        local->del_sockets(nsp, &opts, &message->room, 1);
    else
        local->disconnect_sockets(nsp, &opts, message->close);
    if (message->request_id != NULL)
        respond(adapter, message->uid, json_pack("{s:s}", "requestId", message->request_id));
}

static int is_own(const redis_adapter_t *adapter, const sioc__redis_message_t *message)
{
    return message->uid != NULL && strcmp(message->uid, adapter->base.uid) == 0;
}

static void on_request(redis_adapter_t *adapter, sioc__redis_message_t *message)
{
    const sioc_adapter_local_t *local = adapter->base.local;
    sioc_namespace_t *nsp = adapter->base.nsp;
    int own_request = request_find(adapter->redis, message->request_id) != NULL;
    switch (message->type) {
    case SIOC__REDIS_SOCKETS:
        if (!own_request)
            respond(adapter, message->uid,
                    json_pack("{s:s,s:o}", "requestId",
                              message->request_id ? message->request_id : "", "sockets",
                              socket_ids(local->fetch_sockets(nsp, &message->opts))));
        break;
    case SIOC__REDIS_ALL_ROOMS:
        if (!own_request)
            respond(adapter, message->uid,
                    json_pack("{s:s,s:o}", "requestId",
                              message->request_id ? message->request_id : "", "rooms",
                              local->rooms(nsp)));
        break;
    case SIOC__REDIS_REMOTE_JOIN:
    case SIOC__REDIS_REMOTE_LEAVE:
    case SIOC__REDIS_REMOTE_DISCONNECT:
        if (!message->has_opts)
            answer_legacy(adapter, message);
        else if (is_own(adapter, message))
            break; /* done here before it was published */
        else if (message->type == SIOC__REDIS_REMOTE_JOIN)
            local->add_sockets(nsp, &message->opts, message->rooms, message->room_count);
        else if (message->type == SIOC__REDIS_REMOTE_LEAVE)
            local->del_sockets(nsp, &message->opts, message->rooms, message->room_count);
        else
            local->disconnect_sockets(nsp, &message->opts, message->close);
        break;
    case SIOC__REDIS_REMOTE_FETCH:
        if (!own_request && !is_own(adapter, message) && message->request_id != NULL)
            respond(adapter, message->uid,
                    json_pack("{s:s,s:o}", "requestId", message->request_id, "sockets",
                              local->fetch_sockets(nsp, &message->opts)));
        break;
    case SIOC__REDIS_SERVER_SIDE_EMIT:
        if (!is_own(adapter, message))
            answer_server_side_emit(adapter, message);
        break;
    case SIOC__REDIS_BROADCAST:
        if (!own_request && !is_own(adapter, message))
            answer_broadcast_with_ack(adapter, message);
        break;
    }
}

/* Adds names (an array, NULL: none) to set; what is not a string is left out, as Node's Set
 * would hold it but no room is named so. */
static void add_room_names(json_t *set, json_t *names)
{
    size_t index;
    json_t *name;
    json_array_foreach(names, index, name)
    {
        if (json_is_string(name))
            json_object_setn_new(set, json_string_value(name), json_string_length(name),
                                 json_null());
    }
}

static void on_response(redis_adapter_t *adapter, sioc__redis_message_t *message)
{
    request_t *request = request_find(adapter->redis, message->request_id);
    if (request == NULL || request->adapter != adapter)
        return; /* another server's, or too late */
    if (request->kind == REQUEST_BROADCAST) {
        if (message->type == SIOC__REDIS_BROADCAST_CLIENT_COUNT) {
            sioc_adapter_ack_sink_client_count(request->sink, (size_t)message->client_count);
        } else if (message->type == SIOC__REDIS_BROADCAST_ACK) {
            json_t *args = json_pack("[O]", message->payload ? message->payload : json_null());
            sioc_binary_t binaries[SIOC__REDIS_MAX_ATTACHMENTS + 1];
            to_binaries(message, binaries);
            sioc_event_t response = {.name = "",
                                     .args = args,
                                     .attachments = binaries,
                                     .attachment_count = message->attachment_count,
                                     .ack_id = -1};
            sioc_adapter_ack_sink_ack(request->sink, &response);
            json_decref(args);
        }
        return;
    }
    if (request->kind == REQUEST_FETCH && request->expected > 0) {
        request->answered++;
        if (message->sockets != NULL)
            json_array_extend(request->results, message->sockets);
    } else if (request->kind == REQUEST_ALL_ROOMS && request->expected > 0) {
        request->answered++;
        add_room_names(request->results, message->room_names);
    } else if (request->kind == REQUEST_SERVER_SIDE_EMIT && request->expected > 0 &&
               message->type == SIOC__REDIS_SERVER_SIDE_EMIT) {
        request->answered++;
        json_array_append(request->results, message->payload ? message->payload : json_null());
    } else {
        return;
    }
    if (request->answered >= request->expected)
        request_finish(request, 0);
}

/* ---- channel messages ------------------------------------------------------------------------ */

static void on_broadcast(redis_adapter_t *adapter, const char *channel, size_t channel_length,
                         const uint8_t *bytes, size_t length)
{
    /* <key>#<nsp>#<room>#: a room this server does not have is none of its business. */
    size_t prefix = strlen(adapter->channel);
    if (channel_length > prefix + 1) {
        char room[1024];
        size_t room_length = channel_length - prefix - 1;
        if (room_length >= sizeof(room))
            return;
        memcpy(room, channel + prefix, room_length);
        room[room_length] = '\0';
        if (!adapter->base.local->has_room(adapter->base.nsp, room))
            return;
    }
    sioc__redis_message_t message;
    const char *error = NULL;
    if (sioc__redis_decode_broadcast(bytes, length, &message, &error) != 0) {
        log_drop(adapter->redis, channel, error);
        return;
    }
    if (is_own(adapter, &message)) {
        sioc__redis_message_clear(&message);
        return;
    }
    if (strcmp(message.nsp, sioc_namespace_name(adapter->base.nsp)) != 0) {
        log_drop(adapter->redis, channel, "packet for another namespace");
        sioc__redis_message_clear(&message);
        return;
    }
    sioc_binary_t binaries[SIOC__REDIS_MAX_ATTACHMENTS + 1];
    to_binaries(&message, binaries);
    sioc_adapter_packet_t packet = {message.data, binaries, message.attachment_count};
    message.opts.flags &= ~SIOC_BROADCAST_LOCAL;
    adapter->base.local->broadcast(adapter->base.nsp, &packet, &message.opts);
    sioc__redis_message_clear(&message);
}

static int channel_is(const char *channel, size_t length, const char *name)
{
    return strlen(name) == length && memcmp(channel, name, length) == 0;
}

static void on_channel_message(sioc_redis_t *redis, const char *channel, size_t channel_length,
                               const uint8_t *bytes, size_t length, int from_pattern)
{
    char printable[256];
    snprintf(printable, sizeof(printable), "%.*s",
             (int)(channel_length < 200 ? channel_length : 200), channel);
    if (length > redis->options.max_message_size) {
        log_drop(redis, printable, "larger than max_message_size");
        return;
    }
    for (redis_adapter_t *adapter = redis->adapters; adapter != NULL; adapter = adapter->next) {
        sioc__redis_message_t message;
        const char *error = NULL;
        size_t prefix = strlen(adapter->channel);
        if (from_pattern) {
            if (channel_length >= prefix && memcmp(channel, adapter->channel, prefix) == 0)
                on_broadcast(adapter, printable, channel_length, bytes, length);
            continue;
        }
        if (channel_is(channel, channel_length, adapter->request_channel)) {
            if (sioc__redis_decode_request(bytes, length, &message, &error) != 0) {
                log_drop(redis, printable, error);
                return;
            }
            on_request(adapter, &message);
            sioc__redis_message_clear(&message);
            return;
        }
        if (channel_is(channel, channel_length, adapter->response_channel) ||
            channel_is(channel, channel_length, adapter->specific_channel)) {
            if (sioc__redis_decode_response(bytes, length, &message, &error) != 0) {
                log_drop(redis, printable, error);
                return;
            }
            on_response(adapter, &message);
            sioc__redis_message_clear(&message);
            return;
        }
    }
}

static int is_bulk(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_STRING;
}

static void on_subscription(redisAsyncContext *context, void *reply_data, void *data)
{
    sioc_redis_t *redis = data;
    const redisReply *reply = reply_data;
    if (reply == NULL || redis->closing || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements < 3 || !is_bulk(reply->element[0]))
        return;
    const char *kind = reply->element[0]->str;
    if (strcmp(kind, "pmessage") == 0 && reply->elements == 4 && is_bulk(reply->element[2]) &&
        is_bulk(reply->element[3]))
        on_channel_message(redis, reply->element[2]->str, reply->element[2]->len,
                           (const uint8_t *)reply->element[3]->str, reply->element[3]->len, 1);
    else if (strcmp(kind, "smessage") == 0 && redis->sharded && is_bulk(reply->element[1]) &&
             is_bulk(reply->element[2]))
        on_sharded_message(redis, reply->element[1]->str, reply->element[1]->len,
                           (const uint8_t *)reply->element[2]->str, reply->element[2]->len);
    else if (strcmp(kind, "message") == 0 && redis->streams && is_bulk(reply->element[1]) &&
             is_bulk(reply->element[2]))
        on_sharded_message(redis, reply->element[1]->str, reply->element[1]->len,
                           (const uint8_t *)reply->element[2]->str, reply->element[2]->len);
    else if (strcmp(kind, "message") == 0 && !redis->sharded && is_bulk(reply->element[1]) &&
             is_bulk(reply->element[2]))
        on_channel_message(redis, reply->element[1]->str, reply->element[1]->len,
                           (const uint8_t *)reply->element[2]->str, reply->element[2]->len, 0);
}

static void sharded_subscribe(sioc_redis_t *redis, const char *const *channels, size_t count,
                              int subscribe);
static void sharded_subscribe_rooms(sioc_redis_t *redis, redis_adapter_t *adapter);

static void subscribe_adapter(sioc_redis_t *redis, redis_adapter_t *adapter)
{
    if (redis->streams) {
        if (!redis->subscribe.up)
            return;
        const char *argv[3] = {"SUBSCRIBE", adapter->channel, adapter->specific_channel};
        size_t lengths[3] = {9, strlen(argv[1]), strlen(argv[2])};
        redisAsyncCommandArgv(redis->subscribe.context, on_subscription, redis, 3, argv, lengths);
        return;
    }
    if (redis->sharded) {
        if (!redis->subscribe.up)
            return;
        const char *channels[2] = {adapter->channel, adapter->specific_channel};
        sharded_subscribe(redis, channels, 2, 1);
        sharded_subscribe_rooms(redis, adapter);
        return;
    }
    if (!redis->subscribe.up)
        return; /* on_connected subscribes every adapter */
    redisAsyncContext *context = redis->subscribe.context;
    const char *pattern[2] = {"PSUBSCRIBE", adapter->pattern};
    size_t pattern_lengths[2] = {10, strlen(adapter->pattern)};
    redisAsyncCommandArgv(context, on_subscription, redis, 2, pattern, pattern_lengths);
    const char *channels[4] = {"SUBSCRIBE", adapter->request_channel, adapter->response_channel,
                               adapter->specific_channel};
    size_t lengths[4] = {9, strlen(channels[1]), strlen(channels[2]), strlen(channels[3])};
    redisAsyncCommandArgv(context, on_subscription, redis, 4, channels, lengths);
}

static void unsubscribe_adapter(sioc_redis_t *redis, redis_adapter_t *adapter)
{
    /* sharded: the classic subscriptions that keep hiredis in subscribed mode stay until the
     * connection goes (messages for a namespace that went are ignored). */
    if (!redis->subscribe.up || redis->closing || redis->sharded)
        return;
    redisAsyncContext *context = redis->subscribe.context;
    const char *pattern[2] = {"PUNSUBSCRIBE", adapter->pattern};
    size_t pattern_lengths[2] = {12, strlen(adapter->pattern)};
    redisAsyncCommandArgv(context, on_subscription, redis, 2, pattern, pattern_lengths);
    const char *channels[4] = {"UNSUBSCRIBE", adapter->request_channel, adapter->response_channel,
                               adapter->specific_channel};
    size_t lengths[4] = {11, strlen(channels[1]), strlen(channels[2]), strlen(channels[3])};
    redisAsyncCommandArgv(context, on_subscription, redis, 4, channels, lengths);
}

/* ---- adapter operations ---------------------------------------------------------------------- */

static void redis_broadcast(sioc_adapter_t *base, const sioc_adapter_packet_t *packet,
                            const sioc_adapter_opts_t *opts)
{
    redis_adapter_t *adapter = (redis_adapter_t *)base;
    if (!(opts->flags & SIOC_BROADCAST_LOCAL)) {
        size_t length = 0;
        uint8_t *bytes = sioc__redis_encode_broadcast(base->uid, sioc_namespace_name(base->nsp),
                                                      packet->data, packet->attachments,
                                                      packet->attachment_count, opts, &length);
        if (bytes != NULL && opts->room_count == 1) {
            char channel[1024];
            snprintf(channel, sizeof(channel), "%s%s#", adapter->channel, opts->rooms[0]);
            publish(adapter->redis, channel, bytes, length);
        } else if (bytes != NULL) {
            publish(adapter->redis, adapter->channel, bytes, length);
        }
        free(bytes);
    }
    base->local->broadcast(base->nsp, packet, opts);
}

static void redis_broadcast_with_ack(sioc_adapter_t *base, const sioc_adapter_packet_t *packet,
                                     const sioc_adapter_opts_t *opts, sioc_adapter_ack_sink_t *sink)
{
    redis_adapter_t *adapter = (redis_adapter_t *)base;
    request_t *request = NULL;
    if (!(opts->flags & SIOC_BROADCAST_LOCAL))
        request = request_new(adapter, REQUEST_BROADCAST, opts->timeout_ms);
    if (request == NULL) {
        sioc_adapter_ack_sink_server_count(sink, 1);
        base->local->broadcast_with_ack(base->nsp, packet, opts, sink);
        return;
    }
    request->sink = sink;
    sioc_adapter_ack_sink_ref(sink);
    size_t length = 0;
    uint8_t *bytes = sioc__redis_encode_broadcast_request(
        base->uid, request->id, sioc_namespace_name(base->nsp), packet->data, packet->attachments,
        packet->attachment_count, opts, &length);
    if (bytes != NULL)
        publish(adapter->redis, adapter->request_channel, bytes, length);
    free(bytes);
    base->local->broadcast_with_ack(base->nsp, packet, opts, sink);
    request_count_servers(request);
}

/* Keeps message (taken) as the JSON text request_on_count publishes once the servers are
 * counted; out of memory, the request ends at once with SIOC_ENOMEM. */
static void request_publish_when_counted(request_t *request, json_t *message)
{
    request->message = message != NULL ? json_dumps(message, JSON_COMPACT) : NULL;
    request->message_length = request->message != NULL ? strlen(request->message) : 0;
    json_decref(message);
    if (request->message == NULL)
        request_finish(request, SIOC_ENOMEM);
    else
        request_count_servers(request);
}

static int redis_fetch_sockets(sioc_adapter_t *base, const sioc_adapter_opts_t *opts,
                               sioc_fetch_sockets_cb callback, void *data)
{
    redis_adapter_t *adapter = (redis_adapter_t *)base;
    json_t *local = base->local->fetch_sockets(base->nsp, opts);
    if (local == NULL)
        return SIOC_ENOMEM;
    request_t *request = NULL;
    if (!(opts->flags & SIOC_BROADCAST_LOCAL))
        request = request_new(adapter, REQUEST_FETCH, 0);
    if (request == NULL) {
        callback(0, local, data);
        json_decref(local);
        return 0;
    }
    request->results = local;
    request->callback.fetch = callback;
    request->data = data;
    json_t *message =
        json_pack("{s:s,s:s,s:i,s:o}", "uid", base->uid, "requestId", request->id, "type",
                  SIOC__REDIS_REMOTE_FETCH, "opts", sioc__redis_opts_json(opts));
    request_publish_when_counted(request, message);
    return 0;
}

/* socketsJoin / socketsLeave / disconnectSockets: here at once, then the others. */
static void publish_operation(redis_adapter_t *adapter, const sioc_adapter_opts_t *opts, int type,
                              json_t *extra_key_value)
{
    json_t *message = json_pack("{s:s,s:i,s:o}", "uid", adapter->base.uid, "type", type, "opts",
                                sioc__redis_opts_json(opts));
    if (message != NULL)
        json_object_update(message, extra_key_value);
    json_decref(extra_key_value);
    publish_json(adapter->redis, adapter->request_channel, message);
}

static json_t *names_json(const char *const *names, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < count; i++)
        json_array_append_new(array, json_string(names[i]));
    return array;
}

static void redis_add_sockets(sioc_adapter_t *base, const sioc_adapter_opts_t *opts,
                              const char *const *rooms, size_t room_count)
{
    base->local->add_sockets(base->nsp, opts, rooms, room_count);
    if (!(opts->flags & SIOC_BROADCAST_LOCAL))
        publish_operation((redis_adapter_t *)base, opts, SIOC__REDIS_REMOTE_JOIN,
                          json_pack("{s:o}", "rooms", names_json(rooms, room_count)));
}

static void redis_del_sockets(sioc_adapter_t *base, const sioc_adapter_opts_t *opts,
                              const char *const *rooms, size_t room_count)
{
    base->local->del_sockets(base->nsp, opts, rooms, room_count);
    if (!(opts->flags & SIOC_BROADCAST_LOCAL))
        publish_operation((redis_adapter_t *)base, opts, SIOC__REDIS_REMOTE_LEAVE,
                          json_pack("{s:o}", "rooms", names_json(rooms, room_count)));
}

static void redis_disconnect_sockets(sioc_adapter_t *base, const sioc_adapter_opts_t *opts,
                                     int close)
{
    /* Published first: disconnecting may close the namespace's last socket, not the adapter. */
    if (!(opts->flags & SIOC_BROADCAST_LOCAL))
        publish_operation((redis_adapter_t *)base, opts, SIOC__REDIS_REMOTE_DISCONNECT,
                          json_pack("{s:b}", "close", close));
    base->local->disconnect_sockets(base->nsp, opts, close);
}

static int redis_server_side_emit(sioc_adapter_t *base, json_t *data,
                                  sioc_server_side_ack_cb callback, void *callback_data)
{
    redis_adapter_t *adapter = (redis_adapter_t *)base;
    if (callback == NULL) {
        publish_json(adapter->redis, adapter->request_channel,
                     json_pack("{s:s,s:i,s:O}", "uid", base->uid, "type",
                               SIOC__REDIS_SERVER_SIDE_EMIT, "data", data));
        return 0;
    }
    request_t *request = request_new(adapter, REQUEST_SERVER_SIDE_EMIT, 0);
    if (request == NULL)
        return SIOC_ENOMEM;
    request->results = json_array();
    request->callback.server_side = callback;
    request->data = callback_data;
    json_t *message = json_pack("{s:s,s:s,s:i,s:O}", "uid", base->uid, "requestId", request->id,
                                "type", SIOC__REDIS_SERVER_SIDE_EMIT, "data", data);
    if (request->results == NULL) {
        json_decref(message);
        request_finish(request, SIOC_ENOMEM);
        return 0;
    }
    request_publish_when_counted(request, message);
    return 0;
}

static int redis_server_count(sioc_adapter_t *base, sioc_server_count_cb callback, void *data)
{
    request_t *request = request_new((redis_adapter_t *)base, REQUEST_COUNT, 0);
    if (request == NULL)
        return SIOC_ENOMEM;
    request->callback.count = callback;
    request->data = data;
    request_count_servers(request);
    return 0;
}

/* allRooms(): this server's rooms, then one ALL_ROOMS request answered by every other. */
static int redis_all_rooms(sioc_adapter_t *base, sioc_all_rooms_cb callback, void *data)
{
    redis_adapter_t *adapter = (redis_adapter_t *)base;
    json_t *local = base->local->rooms(base->nsp);
    json_t *set = json_object();
    request_t *request =
        local != NULL && set != NULL ? request_new(adapter, REQUEST_ALL_ROOMS, 0) : NULL;
    if (request == NULL) {
        json_decref(local);
        json_decref(set);
        return SIOC_ENOMEM;
    }
    add_room_names(set, local);
    json_decref(local);
    request->results = set;
    request->callback.all_rooms = callback;
    request->data = data;
    json_t *message = json_pack("{s:s,s:s,s:i}", "uid", base->uid, "requestId", request->id, "type",
                                SIOC__REDIS_ALL_ROOMS);
    request_publish_when_counted(request, message);
    return 0;
}

static void redis_destroy(sioc_adapter_t *base)
{
    redis_adapter_t *adapter = (redis_adapter_t *)base;
    sioc_redis_t *redis = adapter->redis;
    request_t *request, *next;
    HASH_ITER(hh, redis->requests, request, next)
    {
        if (request->adapter == adapter)
            request_finish(request, SIOC_ECLOSED);
    }
    unsubscribe_adapter(redis, adapter);
    for (redis_adapter_t **link = &redis->adapters; *link != NULL; link = &(*link)->next) {
        if (*link == adapter) {
            *link = adapter->next;
            break;
        }
    }
    free(adapter->channel);
    free(adapter->pattern);
    free(adapter->request_channel);
    free(adapter->response_channel);
    free(adapter->specific_channel);
    free(adapter);
}

static const sioc_adapter_ops_t redis_adapter_ops = {
    .broadcast = redis_broadcast,
    .broadcast_with_ack = redis_broadcast_with_ack,
    .fetch_sockets = redis_fetch_sockets,
    .add_sockets = redis_add_sockets,
    .del_sockets = redis_del_sockets,
    .disconnect_sockets = redis_disconnect_sockets,
    .server_side_emit = redis_server_side_emit,
    .server_count = redis_server_count,
    .all_rooms = redis_all_rooms,
    .destroy = redis_destroy,
};

static char *format(const char *a, const char *b, const char *c, const char *d)
{
    size_t length = strlen(a) + strlen(b) + strlen(c) + strlen(d) + 1;
    char *text = malloc(length);
    if (text != NULL)
        snprintf(text, length, "%s%s%s%s", a, b, c, d);
    return text;
}

/* ---- sharded mode: ClusterAdapter messages on SPUBLISH / SSUBSCRIBE ------------------------- */

/* hiredis 0.14 knows no SSUBSCRIBE: it would take each smessage for the reply to a command and
 * abort on the first it cannot match. A classic SUBSCRIBE of the same names puts it in
 * subscribed mode and registers our callback under those names, which is where it then looks
 * smessages up. Nothing PUBLISHes on them in sharded mode (a classic emitter's messages on the
 * main channel are ignored). */
static void sharded_subscribe(sioc_redis_t *redis, const char *const *channels, size_t count,
                              int subscribe)
{
    if (!redis->subscribe.up || count == 0 || count > 8)
        return;
    const char *argv[9];
    size_t lengths[9];
    for (size_t i = 0; i < count; i++) {
        argv[i + 1] = channels[i];
        lengths[i + 1] = strlen(channels[i]);
    }
    const char *commands[2] = {subscribe ? "SUBSCRIBE" : "SUNSUBSCRIBE",
                               subscribe ? "SSUBSCRIBE" : "UNSUBSCRIBE"};
    for (int i = 0; i < 2; i++) {
        argv[0] = commands[i];
        lengths[0] = strlen(commands[i]);
        redisAsyncCommandArgv(redis->subscribe.context, on_subscription, redis, (int)count + 1,
                              argv, lengths);
    }
}

/* subscriptionMode: "dynamic" gives public rooms (not a socket id here) a channel each,
 * "dynamic-private" every room, "static" none. */
static int has_room_channel(const redis_adapter_t *adapter, const char *room)
{
    sioc_redis_subscription_t mode = adapter->redis->options.subscription_mode;
    if (mode == SIOC_REDIS_DYNAMIC_PRIVATE)
        return 1;
    return mode == SIOC_REDIS_DYNAMIC && sioc_namespace_socket(adapter->base.nsp, room) == NULL;
}

static void sharded_room(redis_adapter_t *adapter, const char *room, int subscribe)
{
    char channel[1024];
    snprintf(channel, sizeof(channel), "%s%s#", adapter->channel, room);
    const char *channels[1] = {channel};
    sharded_subscribe(adapter->redis, channels, 1, subscribe);
}

static void sharded_subscribe_rooms(sioc_redis_t *redis, redis_adapter_t *adapter)
{
    json_t *rooms = adapter->base.local->rooms(adapter->base.nsp);
    size_t index;
    json_t *room;
    json_array_foreach(rooms, index, room)
    {
        if (has_room_channel(adapter, json_string_value(room)))
            sharded_room(adapter, json_string_value(room), 1);
    }
    json_decref(rooms);
}

static void sharded_room_created(sioc_adapter_t *base, const char *room)
{
    if (has_room_channel((redis_adapter_t *)base, room))
        sharded_room((redis_adapter_t *)base, room, 1);
}

static void sharded_room_deleted(sioc_adapter_t *base, const char *room)
{
    if (has_room_channel((redis_adapter_t *)base, room))
        sharded_room((redis_adapter_t *)base, room, 0);
}

static void sharded_publish(redis_adapter_t *adapter, const char *channel, int type, json_t *data,
                            const sioc_binary_t *attachments, size_t attachment_count)
{
    publish_sharded(adapter->redis, channel, adapter->base.uid,
                    sioc_namespace_name(adapter->base.nsp), type, data, attachments,
                    attachment_count);
}

/* {rooms, except, flags} as encodeOptions() writes them. */
static json_t *sharded_opts(const sioc_adapter_opts_t *opts)
{
    json_t *value = sioc__redis_opts_json(opts);
    json_t *flags = json_object();
    if (opts->flags & SIOC_BROADCAST_VOLATILE)
        json_object_set_new(flags, "volatile", json_true());
    if (opts->timeout_ms > 0)
        json_object_set_new(flags, "timeout", json_integer(opts->timeout_ms));
    json_object_set_new(value, "flags", flags);
    return value;
}

static json_t *sharded_packet(sioc_adapter_t *base, const sioc_adapter_packet_t *packet)
{
    return json_pack("{s:i,s:O,s:s}", "type", SIOC_SIO_EVENT, "data", packet->data, "nsp",
                     sioc_namespace_name(base->nsp));
}

static void sharded_broadcast(sioc_adapter_t *base, const sioc_adapter_packet_t *packet,
                              const sioc_adapter_opts_t *opts)
{
    redis_adapter_t *adapter = (redis_adapter_t *)base;
    if (!(opts->flags & SIOC_BROADCAST_LOCAL)) {
        /* computeChannel(): one room with a channel of its own goes there */
        char channel[1024];
        sioc_redis_subscription_t mode = adapter->redis->options.subscription_mode;
        if (opts->room_count == 1 &&
            ((mode == SIOC_REDIS_DYNAMIC && strlen(opts->rooms[0]) != SIOC_SOCKET_ID_LENGTH) ||
             mode == SIOC_REDIS_DYNAMIC_PRIVATE))
            snprintf(channel, sizeof(channel), "%s%s#", adapter->channel, opts->rooms[0]);
        else
            snprintf(channel, sizeof(channel), "%s", adapter->channel);
        sharded_publish(adapter, channel, SIOC__SHARDED_BROADCAST,
                        json_pack("{s:o,s:o}", "packet", sharded_packet(base, packet), "opts",
                                  sharded_opts(opts)),
                        packet->attachments, packet->attachment_count);
    }
    base->local->broadcast(base->nsp, packet, opts);
}

static void sharded_broadcast_with_ack(sioc_adapter_t *base, const sioc_adapter_packet_t *packet,
                                       const sioc_adapter_opts_t *opts,
                                       sioc_adapter_ack_sink_t *sink)
{
    redis_adapter_t *adapter = (redis_adapter_t *)base;
    request_t *request = NULL;
    if (!(opts->flags & SIOC_BROADCAST_LOCAL))
        request = request_new(adapter, REQUEST_BROADCAST, opts->timeout_ms);
    if (request == NULL) {
        sioc_adapter_ack_sink_server_count(sink, 1);
        base->local->broadcast_with_ack(base->nsp, packet, opts, sink);
        return;
    }
    request->sink = sink;
    sioc_adapter_ack_sink_ref(sink);
    sharded_publish(adapter, adapter->channel, SIOC__SHARDED_BROADCAST,
                    json_pack("{s:o,s:s,s:o}", "packet", sharded_packet(base, packet), "requestId",
                              request->id, "opts", sharded_opts(opts)),
                    packet->attachments, packet->attachment_count);
    base->local->broadcast_with_ack(base->nsp, packet, opts, sink);
    request_count_servers(request);
}

/* A request published once the server count is known (request_on_count). */
static int sharded_request(redis_adapter_t *adapter, request_t *request, int type, json_t *data)
{
    size_t length = 0;
    request->message = (char *)encode_cluster(adapter->redis, adapter->base.uid,
                                              sioc_namespace_name(adapter->base.nsp), type, data,
                                              NULL, 0, &length);
    request->message_length = length;
    json_decref(data);
    if (request->message == NULL) {
        request_finish(request, SIOC_ENOMEM);
        return 0;
    }
    request_count_servers(request);
    return 0;
}

static int sharded_fetch_sockets(sioc_adapter_t *base, const sioc_adapter_opts_t *opts,
                                 sioc_fetch_sockets_cb callback, void *data)
{
    redis_adapter_t *adapter = (redis_adapter_t *)base;
    json_t *local = base->local->fetch_sockets(base->nsp, opts);
    if (local == NULL)
        return SIOC_ENOMEM;
    request_t *request = NULL;
    if (!(opts->flags & SIOC_BROADCAST_LOCAL))
        request = request_new(adapter, REQUEST_FETCH, 0);
    if (request == NULL) {
        callback(0, local, data);
        json_decref(local);
        return 0;
    }
    request->results = local;
    request->callback.fetch = callback;
    request->data = data;
    return sharded_request(
        adapter, request, SIOC__SHARDED_FETCH_SOCKETS,
        json_pack("{s:o,s:s}", "opts", sharded_opts(opts), "requestId", request->id));
}

static void sharded_add_sockets(sioc_adapter_t *base, const sioc_adapter_opts_t *opts,
                                const char *const *rooms, size_t room_count)
{
    if (!(opts->flags & SIOC_BROADCAST_LOCAL))
        sharded_publish((redis_adapter_t *)base, ((redis_adapter_t *)base)->channel,
                        SIOC__SHARDED_SOCKETS_JOIN,
                        json_pack("{s:o,s:o}", "opts", sharded_opts(opts), "rooms",
                                  names_json(rooms, room_count)),
                        NULL, 0);
    base->local->add_sockets(base->nsp, opts, rooms, room_count);
}

static void sharded_del_sockets(sioc_adapter_t *base, const sioc_adapter_opts_t *opts,
                                const char *const *rooms, size_t room_count)
{
    if (!(opts->flags & SIOC_BROADCAST_LOCAL))
        sharded_publish((redis_adapter_t *)base, ((redis_adapter_t *)base)->channel,
                        SIOC__SHARDED_SOCKETS_LEAVE,
                        json_pack("{s:o,s:o}", "opts", sharded_opts(opts), "rooms",
                                  names_json(rooms, room_count)),
                        NULL, 0);
    base->local->del_sockets(base->nsp, opts, rooms, room_count);
}

static void sharded_disconnect_sockets(sioc_adapter_t *base, const sioc_adapter_opts_t *opts,
                                       int close)
{
    if (!(opts->flags & SIOC_BROADCAST_LOCAL))
        sharded_publish((redis_adapter_t *)base, ((redis_adapter_t *)base)->channel,
                        SIOC__SHARDED_DISCONNECT_SOCKETS,
                        json_pack("{s:o,s:b}", "opts", sharded_opts(opts), "close", close), NULL,
                        0);
    base->local->disconnect_sockets(base->nsp, opts, close);
}

static int sharded_server_side_emit(sioc_adapter_t *base, json_t *data,
                                    sioc_server_side_ack_cb callback, void *callback_data)
{
    redis_adapter_t *adapter = (redis_adapter_t *)base;
    if (callback == NULL) {
        sharded_publish(adapter, adapter->channel, SIOC__SHARDED_SERVER_SIDE_EMIT,
                        json_pack("{s:O}", "packet", data), NULL, 0);
        return 0;
    }
    request_t *request = request_new(adapter, REQUEST_SERVER_SIDE_EMIT, 0);
    if (request == NULL || (request->results = json_array()) == NULL)
        return request != NULL ? (request_finish(request, SIOC_ENOMEM), 0) : SIOC_ENOMEM;
    request->callback.server_side = callback;
    request->data = callback_data;
    return sharded_request(adapter, request, SIOC__SHARDED_SERVER_SIDE_EMIT,
                           json_pack("{s:s,s:O}", "requestId", request->id, "packet", data));
}

static void sharded_response(redis_adapter_t *adapter, sioc__redis_message_t *message)
{
    request_t *request = request_find(adapter->redis, message->request_id);
    if (request == NULL || request->adapter != adapter)
        return;
    if (request->kind == REQUEST_BROADCAST) {
        if (message->type == SIOC__SHARDED_BROADCAST_CLIENT_COUNT) {
            sioc_adapter_ack_sink_client_count(request->sink, (size_t)message->client_count);
        } else if (message->type == SIOC__SHARDED_BROADCAST_ACK) {
            json_t *args = json_pack("[O]", message->payload ? message->payload : json_null());
            sioc_binary_t binaries[SIOC__REDIS_MAX_ATTACHMENTS + 1];
            to_binaries(message, binaries);
            sioc_event_t response = {.name = "",
                                     .args = args,
                                     .attachments = binaries,
                                     .attachment_count = message->attachment_count,
                                     .ack_id = -1};
            sioc_adapter_ack_sink_ack(request->sink, &response);
            json_decref(args);
        }
        return;
    }
    if (request->kind == REQUEST_FETCH && request->expected > 0 &&
        message->type == SIOC__SHARDED_FETCH_SOCKETS_RESPONSE)
        json_array_extend(request->results, message->sockets);
    else if (request->kind == REQUEST_SERVER_SIDE_EMIT && request->expected > 0 &&
             message->type == SIOC__SHARDED_SERVER_SIDE_EMIT_RESPONSE)
        json_array_append(request->results, message->payload ? message->payload : json_null());
    else
        return;
    if (++request->answered >= request->expected)
        request_finish(request, 0);
}

static void sharded_on_message(redis_adapter_t *adapter, sioc__redis_message_t *message)
{
    const sioc_adapter_local_t *local = adapter->base.local;
    sioc_namespace_t *nsp = adapter->base.nsp;
    sioc_binary_t binaries[SIOC__REDIS_MAX_ATTACHMENTS + 1];
    to_binaries(message, binaries);
    message->opts.flags &= ~SIOC_BROADCAST_LOCAL;
    switch (message->type) {
    case SIOC__SHARDED_BROADCAST:
        if (message->request_id != NULL) {
            answer_broadcast_with_ack(adapter, message);
        } else {
            sioc_adapter_packet_t packet = {message->data, binaries, message->attachment_count};
            local->broadcast(nsp, &packet, &message->opts);
        }
        break;
    case SIOC__SHARDED_SOCKETS_JOIN:
        local->add_sockets(nsp, &message->opts, message->rooms, message->room_count);
        break;
    case SIOC__SHARDED_SOCKETS_LEAVE:
        local->del_sockets(nsp, &message->opts, message->rooms, message->room_count);
        break;
    case SIOC__SHARDED_DISCONNECT_SOCKETS:
        local->disconnect_sockets(nsp, &message->opts, message->close);
        break;
    case SIOC__SHARDED_FETCH_SOCKETS: {
        char *channel = response_channel_for(adapter, message->uid);
        if (channel != NULL)
            publish_sharded(adapter->redis, channel, adapter->base.uid, sioc_namespace_name(nsp),
                            SIOC__SHARDED_FETCH_SOCKETS_RESPONSE,
                            json_pack("{s:s,s:o}", "requestId", message->request_id, "sockets",
                                      local->fetch_sockets(nsp, &message->opts)),
                            NULL, 0);
        free(channel);
        break;
    }
    case SIOC__SHARDED_SERVER_SIDE_EMIT:
        answer_server_side_emit(adapter, message);
        break;
    case SIOC__SHARDED_FETCH_SOCKETS_RESPONSE:
    case SIOC__SHARDED_SERVER_SIDE_EMIT_RESPONSE:
    case SIOC__SHARDED_BROADCAST_CLIENT_COUNT:
    case SIOC__SHARDED_BROADCAST_ACK:
        sharded_response(adapter, message);
        break;
    default: /* heartbeats and ADAPTER_CLOSE: the sharded adapter keeps no node list */
        break;
    }
}

static void on_sharded_message(sioc_redis_t *redis, const char *channel, size_t channel_length,
                               const uint8_t *bytes, size_t length)
{
    char printable[256];
    snprintf(printable, sizeof(printable), "%.*s",
             (int)(channel_length < 200 ? channel_length : 200), channel);
    if (length > redis->options.max_message_size) {
        log_drop(redis, printable, "larger than max_message_size");
        return;
    }
    for (redis_adapter_t *adapter = redis->adapters; adapter != NULL; adapter = adapter->next) {
        size_t prefix = strlen(adapter->channel);
        if (channel_length < prefix || memcmp(channel, adapter->channel, prefix) != 0)
            continue;
        sioc__redis_message_t message;
        const char *error = NULL;
        if (sioc__redis_decode_sharded(bytes, length, &message, &error) != 0) {
            log_drop(redis, printable, error);
            return;
        }
        if (is_own(adapter, &message)) {
            /* ignore self */
        } else if (strcmp(message.nsp, sioc_namespace_name(adapter->base.nsp)) != 0) {
            log_drop(redis, printable, "message for another namespace");
        } else {
            sharded_on_message(adapter, &message);
        }
        sioc__redis_message_clear(&message);
        return;
    }
}

static const sioc_adapter_ops_t sharded_adapter_ops = {
    .broadcast = sharded_broadcast,
    .broadcast_with_ack = sharded_broadcast_with_ack,
    .fetch_sockets = sharded_fetch_sockets,
    .add_sockets = sharded_add_sockets,
    .del_sockets = sharded_del_sockets,
    .disconnect_sockets = sharded_disconnect_sockets,
    .server_side_emit = sharded_server_side_emit,
    .server_count = redis_server_count,
    .room_created = sharded_room_created,
    .room_deleted = sharded_room_deleted,
    .destroy = redis_destroy,
};

/* ---- streams mode: @socket.io/redis-streams-adapter 0.3 ---------------------------------------
 *
 * Broadcasts, socketsJoin / socketsLeave / disconnectSockets are entries of the stream <key>
 * (XADD MAXLEN ~ stream_max_len), read back by every node on a connection of its own (XREAD
 * BLOCK); requests and responses go over PUBLISH on <key>#<nsp># and <key>#<nsp>#<uid>#, as
 * msgpack. With sioc_redis_recovery_store() in use the stream is also the recovery log: a
 * recoverable broadcast is appended by the store and written here when the reader meets its
 * entry, so that every node writes the packets of all nodes in stream order (a client's last
 * offset then means the same thing everywhere: no duplicate, no gap on recovery). Node writes
 * its own broadcasts at XADD's answer instead; a sioc node reading Node's entries does not mind.
 * Until the reader knows its position, and while it is down, an append completes at XADD's
 * answer. */

struct stream_entry_s {
    char id[SIOC_RECOVERY_OFFSET_MAX + 1];
    char *uid, *nsp, *type, *data;
    size_t uid_length, nsp_length, type_length, data_length;
    int too_big;
    stream_entry_t *next;
};

struct stream_append_s {
    sioc_redis_t *redis;
    sioc_recovery_append_cb callback;
    void *data;
    char id[SIOC_RECOVERY_OFFSET_MAX + 1];
    int via_reader; /* completed when the reader meets the entry (else at XADD's answer) */
    int replied;
    stream_append_t *next;
};

static void free_entry(stream_entry_t *entry)
{
    free(entry->uid);
    free(entry->nsp);
    free(entry->type);
    free(entry->data);
    free(entry);
}

static void append_complete(stream_append_t *append, int error, const char *id)
{
    append->callback(error, error == 0 ? id : NULL, append->data);
    free(append);
}

static void appends_unlink(sioc_redis_t *redis, stream_append_t *append)
{
    stream_append_t *previous = NULL;
    for (stream_append_t *each = redis->appends; each != NULL; previous = each, each = each->next) {
        if (each != append)
            continue;
        if (previous != NULL)
            previous->next = each->next;
        else
            redis->appends = each->next;
        if (redis->appends_tail == each)
            redis->appends_tail = previous;
        return;
    }
}

static redis_adapter_t *adapter_for(sioc_redis_t *redis, const char *nsp, size_t length)
{
    for (redis_adapter_t *adapter = redis->adapters; adapter != NULL; adapter = adapter->next) {
        const char *name = sioc_namespace_name(adapter->base.nsp);
        if (strlen(name) == length && memcmp(name, nsp, length) == 0)
            return adapter;
    }
    return NULL;
}

static int uses_our_store(const redis_adapter_t *adapter)
{
    return sioc_server_recovery_store(sioc_namespace_server(adapter->base.nsp)) ==
           &adapter->redis->store;
}

static void stream_pump(sioc_redis_t *redis);

static void on_xadd(redisAsyncContext *context, void *reply_data, void *data)
{
    (void)context;
    stream_append_t *append = data;
    const redisReply *reply = reply_data;
    if (append == NULL)
        return;
    sioc_redis_t *redis = append->redis;
    if (reply == NULL || reply->type != REDIS_REPLY_STRING || reply->len == 0 ||
        reply->len > SIOC_RECOVERY_OFFSET_MAX) {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
            log_line(redis, "XADD %s refused: %.200s", redis->key, reply->str);
        if (append->via_reader)
            appends_unlink(redis, append);
        append_complete(append, reply == NULL ? SIOC_ECLOSED : SIOC_EINVAL, NULL);
        if (!redis->closing)
            stream_pump(redis);
        return;
    }
    memcpy(append->id, reply->str, reply->len);
    append->id[reply->len] = '\0';
    if (!append->via_reader) {
        append_complete(append, 0, append->id);
        return;
    }
    append->replied = 1;
    if (!redis->closing)
        stream_pump(redis); /* the reader may be holding on its entry */
}

/* XADD <key> MAXLEN ~ <n> * uid <uid> nsp <nsp> type <type> data <data>; data borrowed. */
static int stream_add(sioc_redis_t *redis, const char *uid, const char *nsp, int type, json_t *data,
                      const sioc_binary_t *attachments, size_t attachment_count,
                      stream_append_t *append)
{
    if (!redis->publish.up)
        return SIOC_ECLOSED;
    char *text = sioc__redis_encode_stream_data(data, attachments, attachment_count);
    if (text == NULL)
        return SIOC_ENOMEM;
    char max_len[16], type_text[8];
    snprintf(max_len, sizeof(max_len), "%u", redis->options.stream_max_len);
    snprintf(type_text, sizeof(type_text), "%d", type);
    const char *argv[14] = {"XADD", redis->key, "MAXLEN", "~",    max_len,   "*",    "uid",
                            uid,    "nsp",      nsp,      "type", type_text, "data", text};
    size_t lengths[14];
    for (int i = 0; i < 14; i++)
        lengths[i] = strlen(argv[i]);
    int rc = redisAsyncCommandArgv(redis->publish.context, on_xadd, append, 14, argv, lengths);
    free(text);
    if (rc != REDIS_OK)
        return SIOC_ECLOSED;
    redisAsyncHandleWrite(redis->publish.context); /* as publish(): out now */
    return 0;
}

static char *copy_bulk(const redisReply *reply, size_t *length)
{
    char *copy = malloc(reply->len + 1);
    if (copy != NULL) {
        memcpy(copy, reply->str, reply->len);
        copy[reply->len] = '\0';
        *length = reply->len;
    }
    return copy;
}

/* An entry [id, [field, value, ...]] as XREAD and XRANGE give it; NULL if it is not one. */
static stream_entry_t *entry_from_reply(sioc_redis_t *redis, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[0]->len > SIOC_RECOVERY_OFFSET_MAX ||
        reply->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    stream_entry_t *entry = calloc(1, sizeof(*entry));
    if (entry == NULL)
        return NULL;
    memcpy(entry->id, reply->element[0]->str, reply->element[0]->len);
    const redisReply *fields = reply->element[1];
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *name = fields->element[i], *value = fields->element[i + 1];
        if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING)
            continue;
        char **slot = NULL;
        size_t *length = NULL;
        if (strcmp(name->str, "uid") == 0)
            slot = &entry->uid, length = &entry->uid_length;
        else if (strcmp(name->str, "nsp") == 0)
            slot = &entry->nsp, length = &entry->nsp_length;
        else if (strcmp(name->str, "type") == 0)
            slot = &entry->type, length = &entry->type_length;
        else if (strcmp(name->str, "data") == 0)
            slot = &entry->data, length = &entry->data_length;
        if (slot == NULL || *slot != NULL)
            continue;
        if (slot == &entry->data && value->len > redis->options.max_message_size) {
            entry->too_big = 1;
            continue;
        }
        *slot = copy_bulk(value, length);
    }
    return entry;
}

static void stream_dispatch(sioc_redis_t *redis, redis_adapter_t *adapter, stream_entry_t *entry)
{
    if (entry->too_big) {
        log_drop(redis, redis->key, "stream entry larger than max_message_size");
        return;
    }
    sioc__redis_message_t message;
    const char *error = NULL;
    if (sioc__redis_decode_stream_entry(entry->uid, entry->uid_length, entry->nsp,
                                        entry->nsp_length, entry->type, entry->type_length,
                                        entry->data, entry->data_length, &message, &error) != 0) {
        log_drop(redis, redis->key, error);
        return;
    }
    if (message.type == SIOC__SHARDED_BROADCAST && message.request_id == NULL) {
        sioc_binary_t binaries[SIOC__REDIS_MAX_ATTACHMENTS + 1];
        to_binaries(&message, binaries);
        sioc_adapter_packet_t packet = {message.data, binaries, message.attachment_count};
        message.opts.flags &= ~SIOC_BROADCAST_LOCAL;
        if (uses_our_store(adapter))
            adapter->base.local->deliver(adapter->base.nsp, &packet, &message.opts, entry->id);
        else
            adapter->base.local->broadcast(adapter->base.nsp, &packet, &message.opts);
    } else {
        sharded_on_message(adapter, &message);
    }
    sioc__redis_message_clear(&message);
}

/* Handles the entries read, in stream order. At one of this node's own entries: the append it
 * belongs to completes; if its XADD answer has not come yet, everything waits for it. */
static void stream_pump(sioc_redis_t *redis)
{
    while (redis->held != NULL) {
        stream_entry_t *entry = redis->held;
        redis_adapter_t *adapter =
            entry->nsp != NULL ? adapter_for(redis, entry->nsp, entry->nsp_length) : NULL;
        if (adapter != NULL && entry->uid != NULL && strcmp(entry->uid, adapter->base.uid) == 0) {
            stream_append_t *append = redis->appends;
            while (append != NULL && !(append->replied && strcmp(append->id, entry->id) == 0))
                append = append->next;
            int unanswered = 0;
            for (stream_append_t *each = redis->appends; each != NULL; each = each->next)
                unanswered |= !each->replied;
            if (append == NULL && unanswered)
                return; /* on_xadd calls again */
            redis->held = entry->next;
            if (redis->held == NULL)
                redis->held_tail = NULL;
            snprintf(redis->last_id, sizeof(redis->last_id), "%s", entry->id);
            if (append != NULL) {
                appends_unlink(redis, append);
                append_complete(append, 0, entry->id);
            }
            /* else: completed at its answer (the reader was not ready) or not an append */
        } else {
            redis->held = entry->next;
            if (redis->held == NULL)
                redis->held_tail = NULL;
            snprintf(redis->last_id, sizeof(redis->last_id), "%s", entry->id);
            if (adapter != NULL) /* Node skips entries without nsp too */
                stream_dispatch(redis, adapter, entry);
        }
        free_entry(entry);
    }
    stream_read(redis);
}

static void on_stream_read(redisAsyncContext *context, void *reply_data, void *data)
{
    (void)context;
    sioc_redis_t *redis = data;
    const redisReply *reply = reply_data;
    redis->reading = 0;
    if (reply == NULL || redis->closing)
        return; /* the connection went: it reads again once back */
    if (reply->type == REDIS_REPLY_ERROR) {
        log_line(redis, "XREAD %s refused: %.200s; reconnecting", redis->key, reply->str);
        redisAsyncDisconnect(redis->stream.context);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
        reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2 &&
        reply->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *entries = reply->element[0]->element[1];
        for (size_t i = 0; i < entries->elements; i++) {
            stream_entry_t *entry = entry_from_reply(redis, entries->element[i]);
            if (entry == NULL)
                continue;
            if (redis->held_tail != NULL)
                redis->held_tail->next = entry;
            else
                redis->held = entry;
            redis->held_tail = entry;
        }
    }
    stream_pump(redis); /* reads again when done (a nil answer: BLOCK timed out) */
}

static void on_stream_start(redisAsyncContext *context, void *reply_data, void *data)
{
    (void)context;
    sioc_redis_t *redis = data;
    const redisReply *reply = reply_data;
    redis->reading = 0;
    if (reply == NULL || redis->closing)
        return;
    if (reply->type != REDIS_REPLY_ARRAY) {
        log_line(redis, "XREVRANGE %s refused: %.200s; reconnecting", redis->key,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected answer");
        redisAsyncDisconnect(redis->stream.context);
        return;
    }
    /* Node starts at "$"; the newest id is the same place, known before any XADD of ours. */
    snprintf(redis->last_id, sizeof(redis->last_id), "0-0");
    if (reply->elements > 0 && reply->element[0]->type == REDIS_REPLY_ARRAY &&
        reply->element[0]->elements == 2 &&
        reply->element[0]->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[0]->element[0]->len <= SIOC_RECOVERY_OFFSET_MAX)
        snprintf(redis->last_id, sizeof(redis->last_id), "%s", reply->element[0]->element[0]->str);
    stream_read(redis);
}

static void stream_read(sioc_redis_t *redis)
{
    if (redis->closing || !redis->stream.up || redis->reading || redis->held != NULL)
        return;
    redis->reading = 1;
    if (redis->last_id[0] == '\0') {
        const char *argv[6] = {"XREVRANGE", redis->key, "+", "-", "COUNT", "1"};
        size_t lengths[6] = {9, strlen(redis->key), 1, 1, 5, 1};
        if (redisAsyncCommandArgv(redis->stream.context, on_stream_start, redis, 6, argv,
                                  lengths) != REDIS_OK)
            redis->reading = 0;
        return;
    }
    const char *argv[8] = {"XREAD", "BLOCK",   "5000",     "COUNT",
                           "100",   "STREAMS", redis->key, redis->last_id};
    size_t lengths[8];
    for (int i = 0; i < 8; i++)
        lengths[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(redis->stream.context, on_stream_read, redis, 8, argv, lengths) !=
        REDIS_OK)
        redis->reading = 0;
}

/* The reader's connection went: appends stop waiting for it (the answered ones complete now,
 * the others at their answer) and what was read is handled, so that reading resumes after
 * the last entry handled. */
static void stream_reader_down(sioc_redis_t *redis)
{
    redis->reading = 0;
    while (redis->appends != NULL) {
        stream_append_t *append = redis->appends;
        redis->appends = append->next;
        append->via_reader = 0;
        if (append->replied)
            append_complete(append, 0, append->id);
    }
    redis->appends_tail = NULL;
    stream_pump(redis);
}

static void claims_expire(sioc_redis_t *redis, uint64_t now);

static void stream_close(sioc_redis_t *redis)
{
    claims_expire(redis, UINT64_MAX);
    while (redis->appends != NULL) {
        stream_append_t *append = redis->appends;
        redis->appends = append->next;
        append_complete(append, SIOC_ECLOSED, NULL);
    }
    redis->appends_tail = NULL;
    while (redis->held != NULL) {
        stream_entry_t *entry = redis->held;
        redis->held = entry->next;
        free_entry(entry);
    }
    redis->held_tail = NULL;
}

static json_t *streams_broadcast_data(sioc_adapter_t *base, const sioc_adapter_packet_t *packet,
                                      const sioc_adapter_opts_t *opts)
{
    return json_pack("{s:o,s:o}", "packet", sharded_packet(base, packet), "opts",
                     sharded_opts(opts));
}

static void streams_broadcast(sioc_adapter_t *base, const sioc_adapter_packet_t *packet,
                              const sioc_adapter_opts_t *opts)
{
    redis_adapter_t *adapter = (redis_adapter_t *)base;
    /* A packet our recovery store logs reaches the stream through its append. */
    int logged = uses_our_store(adapter) && !(opts->flags & SIOC_BROADCAST_VOLATILE);
    if (!(opts->flags & SIOC_BROADCAST_LOCAL) && !logged) {
        json_t *data = streams_broadcast_data(base, packet, opts);
        if (data != NULL)
            stream_add(adapter->redis, base->uid, sioc_namespace_name(base->nsp),
                       SIOC__SHARDED_BROADCAST, data, packet->attachments, packet->attachment_count,
                       NULL);
        json_decref(data);
    }
    base->local->broadcast(base->nsp, packet, opts);
}

static const sioc_adapter_ops_t streams_adapter_ops = {
    .broadcast = streams_broadcast,
    .broadcast_with_ack = sharded_broadcast_with_ack,
    .fetch_sockets = sharded_fetch_sockets,
    .add_sockets = sharded_add_sockets,
    .del_sockets = sharded_del_sockets,
    .disconnect_sockets = sharded_disconnect_sockets,
    .server_side_emit = sharded_server_side_emit,
    .server_count = redis_server_count,
    .destroy = redis_destroy,
};

/* ---- streams mode: the recovery store ------------------------------------------------------- */

#define SESSION_PREFIX "sio:session:"
#define RESTORE_PAGE "1000"
#define RESTORE_MAX_PAGES 20 /* 20,000 entries: twice the default MAXLEN */

static sioc_redis_t *store_redis(sioc_recovery_store_t *store)
{
    return (sioc_redis_t *)((char *)store - offsetof(sioc_redis_t, store));
}

static int store_append(sioc_recovery_store_t *store, const sioc_recovery_packet_t *packet,
                        sioc_recovery_append_cb callback, void *data)
{
    sioc_redis_t *redis = store_redis(store);
    redis_adapter_t *adapter = adapter_for(redis, packet->nsp, strlen(packet->nsp));
    /* Node logs no local-only broadcast in the stream (it would reach every node). */
    if (adapter == NULL || (packet->opts->flags & SIOC_BROADCAST_LOCAL))
        return SIOC_EINVAL;
    sioc_adapter_packet_t adapter_packet = {packet->data, packet->attachments,
                                            packet->attachment_count};
    json_t *message = streams_broadcast_data(&adapter->base, &adapter_packet, packet->opts);
    stream_append_t *append = message != NULL ? calloc(1, sizeof(*append)) : NULL;
    if (append == NULL) {
        json_decref(message);
        return SIOC_ENOMEM;
    }
    append->redis = redis;
    append->callback = callback;
    append->data = data;
    append->via_reader = redis->stream.up && redis->last_id[0] != '\0';
    /* Linked before the XADD: stream_add writes at once, and a write that fails makes hiredis
     * call on_xadd (which unlinks and frees the append) before stream_add returns. */
    if (append->via_reader) {
        if (redis->appends_tail != NULL)
            redis->appends_tail->next = append;
        else
            redis->appends = append;
        redis->appends_tail = append;
    }
    int rc = stream_add(redis, adapter->base.uid, packet->nsp, SIOC__SHARDED_BROADCAST, message,
                        packet->attachments, packet->attachment_count, append);
    json_decref(message);
    if (rc != 0) { /* not sent: on_xadd will not run */
        if (append->via_reader)
            appends_unlink(redis, append);
        free(append);
    }
    return rc;
}

static int store_command(sioc_redis_t *redis, redisCallbackFn *callback, void *data, int argc,
                         const char **argv)
{
    size_t lengths[8];
    for (int i = 0; i < argc; i++)
        lengths[i] = strlen(argv[i]);
    if (!redis->publish.up || redisAsyncCommandArgv(redis->publish.context, callback, data, argc,
                                                    argv, lengths) != REDIS_OK)
        return SIOC_ECLOSED;
    return 0;
}

static void claim_release(sioc_redis_t *redis, const char *pid);

static void store_save(sioc_recovery_store_t *store, const sioc_recovery_session_t *session)
{
    sioc_redis_t *redis = store_redis(store);
    if (!session->connected)
        claim_release(redis, session->pid);
    char *text = sioc__redis_encode_session(session);
    char key[SIOC_RECOVERY_OFFSET_MAX + sizeof(SESSION_PREFIX) + 1];
    char ttl[16];
    snprintf(key, sizeof(key), SESSION_PREFIX "%s", session->pid);
    snprintf(ttl, sizeof(ttl), "%u", session->ttl_ms > 0 ? session->ttl_ms : 1);
    const char *argv[5] = {"SET", key, text, "PX", ttl};
    if (text != NULL)
        store_command(redis, NULL, NULL, 5, argv);
    free(text);
}

static void store_drop(sioc_recovery_store_t *store, const char *pid)
{
    char key[SIOC_RECOVERY_OFFSET_MAX + sizeof(SESSION_PREFIX) + 1];
    snprintf(key, sizeof(key), SESSION_PREFIX "%s", pid);
    const char *argv[2] = {"DEL", key};
    store_command(store_redis(store), NULL, NULL, 2, argv);
}

typedef struct missed_item_s {
    char offset[SIOC_RECOVERY_OFFSET_MAX + 1];
    sioc__redis_message_t message;
    sioc_binary_t *binaries;
} missed_item_t;

typedef struct restore_s {
    sioc_redis_t *redis;
    sioc_recovery_restore_cb callback;
    void *data;
    char *nsp;
    char key[SIOC_RECOVERY_OFFSET_MAX + sizeof(SESSION_PREFIX) + 1];
    char offset[SIOC_RECOVERY_OFFSET_MAX + 1];
    char next[SIOC_RECOVERY_OFFSET_MAX + 2];    /* where the next XRANGE page starts */
    char fetched[SIOC_RECOVERY_OFFSET_MAX + 1]; /* the last entry read */
    sioc__redis_session_t session;
    int has_session;
    missed_item_t *items;
    size_t count, capacity;
    int pages;
} restore_t;

/* Stream ids "<ms>-<seq>" in stream order (strcmp is not: "10-0" < "9-0"). */
static int compare_ids(const char *a, const char *b)
{
    char *end;
    unsigned long long a_ms = strtoull(a, &end, 10);
    unsigned long long a_seq = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
    unsigned long long b_ms = strtoull(b, &end, 10);
    unsigned long long b_seq = *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
    if (a_ms != b_ms)
        return a_ms < b_ms ? -1 : 1;
    return a_seq < b_seq ? -1 : a_seq > b_seq ? 1 : 0;
}

static void restore_finish(restore_t *restore, int error)
{
    /* The replay ends where this node's reader is: what it has not handled yet it writes to the
     * restored socket live (the socket is in its rooms before the reader goes on), so a packet
     * in both would come twice. */
    const char *reader = restore->redis->last_id;
    while (reader[0] != '\0' && restore->count > 0 &&
           compare_ids(restore->items[restore->count - 1].offset, reader) > 0) {
        missed_item_t *item = &restore->items[--restore->count];
        sioc__redis_message_clear(&item->message);
        free(item->binaries);
    }
    sioc_recovery_missed_t *missed = calloc(restore->count + 1, sizeof(*missed));
    if (missed == NULL && error == 0)
        error = SIOC_ENOMEM;
    for (size_t i = 0; missed != NULL && i < restore->count; i++) {
        missed_item_t *item = &restore->items[i];
        missed[i] = (sioc_recovery_missed_t){item->offset, item->message.data, item->binaries,
                                             item->message.attachment_count};
    }
    sioc_recovery_session_t session = {restore->session.pid,
                                       restore->session.sid,
                                       restore->nsp,
                                       restore->session.rooms,
                                       restore->session.data,
                                       0,
                                       0};
    int found = error == 0 && restore->has_session;
    restore->callback(error, found ? &session : NULL, found ? missed : NULL,
                      found ? restore->count : 0, restore->data);
    free(missed);
    for (size_t i = 0; i < restore->count; i++) {
        sioc__redis_message_clear(&restore->items[i].message);
        free(restore->items[i].binaries);
    }
    free(restore->items);
    sioc__redis_session_clear(&restore->session);
    free(restore->nsp);
    free(restore);
}

/* "<ms>-<seq>" with at most 20 digits each (what XADD * gives); next = "<ms>-<seq + 1>" (Node's
 * nextOffset: exclusive ranges are Redis 6.2). */
static int parse_offset(const char *offset, char *next, size_t size)
{
    const char *dash = strchr(offset, '-');
    size_t ms_length = dash != NULL ? (size_t)(dash - offset) : 0;
    size_t seq_length = dash != NULL ? strlen(dash + 1) : 0;
    if (ms_length == 0 || ms_length > 20 || seq_length == 0 || seq_length > 19 ||
        strspn(offset, "0123456789") != ms_length || strspn(dash + 1, "0123456789") != seq_length)
        return -1;
    unsigned long long seq = strtoull(dash + 1, NULL, 10);
    snprintf(next, size, "%.*s-%llu", (int)ms_length, offset, seq + 1);
    return 0;
}

static void restore_page(restore_t *restore);

static int keep_missed(restore_t *restore, stream_entry_t *entry)
{
    if (entry->too_big || entry->nsp == NULL || strcmp(entry->nsp, restore->nsp) != 0 ||
        entry->type == NULL || strcmp(entry->type, "3") != 0)
        return 0;
    if (restore->count == restore->capacity) {
        size_t capacity = restore->capacity ? restore->capacity * 2 : 16;
        missed_item_t *items = realloc(restore->items, capacity * sizeof(*items));
        if (items == NULL)
            return -1;
        restore->items = items;
        restore->capacity = capacity;
    }
    missed_item_t *item = &restore->items[restore->count];
    memset(item, 0, sizeof(*item));
    const char *error = NULL;
    if (sioc__redis_decode_stream_entry(
            entry->uid, entry->uid_length, entry->nsp, entry->nsp_length, entry->type,
            entry->type_length, entry->data, entry->data_length, &item->message, &error) != 0) {
        log_drop(restore->redis, restore->redis->key, error);
        return 0;
    }
    sioc__redis_message_t *message = &item->message;
    /* Volatile packets get no offset when sent live: none when replayed either. */
    if (message->request_id != NULL || (message->opts.flags & SIOC_BROADCAST_VOLATILE) ||
        !sioc_recovery_should_include(restore->session.rooms, &message->opts)) {
        sioc__redis_message_clear(message);
        return 0;
    }
    item->binaries = calloc(message->attachment_count + 1, sizeof(*item->binaries));
    if (item->binaries == NULL) {
        sioc__redis_message_clear(message);
        return -1;
    }
    to_binaries(message, item->binaries);
    snprintf(item->offset, sizeof(item->offset), "%s", entry->id);
    restore->count++;
    return 0;
}

static void on_restore_page(redisAsyncContext *context, void *reply_data, void *data)
{
    (void)context;
    restore_t *restore = data;
    const redisReply *reply = reply_data;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        restore_finish(restore, reply == NULL ? SIOC_ECLOSED : SIOC_EINVAL);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        stream_entry_t *entry = entry_from_reply(restore->redis, reply->element[i]);
        if (entry == NULL)
            continue;
        int rc = keep_missed(restore, entry);
        parse_offset(entry->id, restore->next, sizeof(restore->next));
        snprintf(restore->fetched, sizeof(restore->fetched), "%s", entry->id);
        free_entry(entry);
        if (rc != 0) {
            restore_finish(restore, SIOC_ENOMEM);
            return;
        }
    }
    /* The end of the stream as it was; the reader may have handled entries added since, which
     * the restored socket would then miss: read up to the reader's position. */
    const char *reader = restore->redis->last_id;
    int behind_reader = reader[0] != '\0' && compare_ids(restore->fetched, reader) < 0;
    if (reply->elements < (size_t)atoi(RESTORE_PAGE) && !behind_reader) {
        restore_finish(restore, 0);
    } else if (++restore->pages >= RESTORE_MAX_PAGES) {
        /* Never half a replay: past the limit the client starts afresh. */
        log_line(restore->redis, "session %s: more than %d missed entries; not recovered",
                 restore->key, RESTORE_MAX_PAGES * atoi(RESTORE_PAGE));
        restore->has_session = 0;
        restore_finish(restore, 0);
    } else {
        restore_page(restore);
    }
}

static void restore_page(restore_t *restore)
{
    const char *argv[6] = {"XRANGE", restore->redis->key, restore->next, "+",
                           "COUNT",  RESTORE_PAGE};
    if (store_command(restore->redis, on_restore_page, restore, 6, argv) != 0)
        restore_finish(restore, SIOC_ECLOSED);
}

static void on_session_taken(redisAsyncContext *context, void *reply_data, void *data)
{
    (void)context;
    restore_t *restore = data;
    const redisReply *reply = reply_data;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        restore_finish(restore, reply == NULL ? SIOC_ECLOSED : SIOC_EINVAL);
        return;
    }
    const redisReply *value = reply->element[0];
    if (value->type != REDIS_REPLY_STRING) {
        restore_finish(restore, 0); /* no session: unknown, expired or taken */
        return;
    }
    const char *error = NULL;
    if (value->len > restore->redis->options.max_message_size ||
        sioc__redis_decode_session(value->str, value->len, &restore->session, &error) != 0) {
        log_line(restore->redis, "%s: unreadable session (%s); not recovered", restore->key,
                 error != NULL ? error : "larger than max_message_size");
        restore_finish(restore, 0);
        return;
    }
    if (restore->session.nsp != NULL && strcmp(restore->session.nsp, restore->nsp) != 0) {
        restore_finish(restore, 0);
        return;
    }
    restore->has_session = 1;
    restore_page(restore);
}

static void on_offset_checked(redisAsyncContext *context, void *reply_data, void *data)
{
    (void)context;
    restore_t *restore = data;
    const redisReply *reply = reply_data;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        restore_finish(restore, reply == NULL ? SIOC_ECLOSED : SIOC_EINVAL);
        return;
    }
    if (reply->elements == 0) {
        restore_finish(restore, 0); /* trimmed or never there: the session stays for a retry */
        return;
    }
    /* GET + DEL in one transaction: of two clients with the same pid, one gets it. */
    const char *multi[1] = {"MULTI"}, *get[2] = {"GET", restore->key},
               *del[2] = {"DEL", restore->key}, *exec[1] = {"EXEC"};
    if (store_command(restore->redis, NULL, NULL, 1, multi) != 0 ||
        store_command(restore->redis, NULL, NULL, 2, get) != 0 ||
        store_command(restore->redis, NULL, NULL, 2, del) != 0 ||
        store_command(restore->redis, on_session_taken, restore, 1, exec) != 0)
        restore_finish(restore, SIOC_ECLOSED);
}

static void restore_check_offset(restore_t *restore)
{
    const char *argv[4] = {"XRANGE", restore->redis->key, restore->offset, restore->offset};
    if (store_command(restore->redis, on_offset_checked, restore, 4, argv) != 0)
        restore_finish(restore, SIOC_ECLOSED);
}

#define CLAIM_PREFIX "sio:restore:"
#define CLAIM_MS "10000"

/* The claim this node took for pid (SET NX answered OK), so that it can let it go when the
 * restored socket leaves again: its client, if it got nothing since, presents the same offset
 * at its next cut, and the claim would give it a fresh session for the rest of CLAIM_MS. */
struct claim_s {
    UT_hash_handle hh;
    uint64_t expires_ms; /* uv_now */
    char offset[SIOC_RECOVERY_OFFSET_MAX + 1];
    claim_t *prev, *next;
    char pid[];
};

static void claim_forget(sioc_redis_t *redis, claim_t *claim)
{
    if (claim->prev != NULL)
        claim->prev->next = claim->next;
    else
        redis->claims_head = claim->next;
    if (claim->next != NULL)
        claim->next->prev = claim->prev;
    else
        redis->claims_tail = claim->prev;
    HASH_DEL(redis->claims, claim);
    free(claim);
}

static void claims_expire(sioc_redis_t *redis, uint64_t now)
{
    while (redis->claims_head != NULL && redis->claims_head->expires_ms <= now)
        claim_forget(redis, redis->claims_head);
}

static void claim_remember(sioc_redis_t *redis, const char *pid, const char *offset)
{
    uint64_t now = uv_now(redis->loop);
    claims_expire(redis, now);
    claim_t *claim;
    HASH_FIND_STR(redis->claims, pid, claim);
    if (claim != NULL)
        claim_forget(redis, claim);
    size_t length = strlen(pid);
    if ((claim = calloc(1, sizeof(*claim) + length + 1)) == NULL)
        return; /* it then expires by itself */
    memcpy(claim->pid, pid, length + 1);
    snprintf(claim->offset, sizeof(claim->offset), "%s", offset);
    claim->expires_ms = now + (uint64_t)atoi(CLAIM_MS);
    HASH_ADD_KEYPTR(hh, redis->claims, claim->pid, length, claim);
    claim->prev = redis->claims_tail;
    if (redis->claims_tail != NULL)
        redis->claims_tail->next = claim;
    else
        redis->claims_head = claim;
    redis->claims_tail = claim;
}

/* The socket of pid left (its session saved disconnected): DEL the claim this node took. */
static void claim_release(sioc_redis_t *redis, const char *pid)
{
    claims_expire(redis, uv_now(redis->loop));
    claim_t *claim;
    HASH_FIND_STR(redis->claims, pid, claim);
    if (claim == NULL)
        return;
    char key[sizeof(CLAIM_PREFIX) + 2 * SIOC_RECOVERY_OFFSET_MAX + 2];
    snprintf(key, sizeof(key), CLAIM_PREFIX "%s:%s", claim->pid, claim->offset);
    const char *argv[2] = {"DEL", key};
    store_command(redis, NULL, NULL, 2, argv);
    claim_forget(redis, claim);
}

static void on_claimed(redisAsyncContext *context, void *reply_data, void *data)
{
    (void)context;
    restore_t *restore = data;
    const redisReply *reply = reply_data;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        restore_finish(restore, reply == NULL ? SIOC_ECLOSED : SIOC_EINVAL);
        return;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        restore_finish(restore, 0); /* another client presents this pid and offset */
        return;
    }
    claim_remember(restore->redis, restore->key + strlen(SESSION_PREFIX), restore->offset);
    restore_check_offset(restore);
}

/* A session written while connected is in Redis again as soon as the client that took it is
 * connected, and a second client presenting the same pid would then take it over. Node never has
 * this (it writes sessions only at close); here the first to claim (pid, offset) for CLAIM_MS is
 * the only one to restore from it, until its socket leaves again (claim_release). A client
 * coming back with a newer offset, or after the claim expired, takes the session over, which is
 * what a client whose old connection is half-open needs. */
static int store_restore(sioc_recovery_store_t *store, const char *pid, const char *offset,
                         const char *nsp, sioc_recovery_restore_cb callback, void *data)
{
    sioc_redis_t *redis = store_redis(store);
    char next[SIOC_RECOVERY_OFFSET_MAX + 2];
    size_t pid_length = strlen(pid);
    if (pid_length == 0 || pid_length > SIOC_RECOVERY_OFFSET_MAX ||
        parse_offset(offset, next, sizeof(next)) != 0) {
        callback(0, NULL, NULL, 0, data); /* Node: "invalid offset" */
        return 0;
    }
    restore_t *restore = calloc(1, sizeof(*restore));
    if (restore == NULL || (restore->nsp = strdup(nsp)) == NULL) {
        free(restore);
        return SIOC_ENOMEM;
    }
    restore->redis = redis;
    restore->callback = callback;
    restore->data = data;
    snprintf(restore->key, sizeof(restore->key), SESSION_PREFIX "%s", pid);
    snprintf(restore->offset, sizeof(restore->offset), "%s", offset);
    snprintf(restore->fetched, sizeof(restore->fetched), "%s", offset);
    memcpy(restore->next, next, sizeof(next));
    char claim[sizeof(CLAIM_PREFIX) + 2 * SIOC_RECOVERY_OFFSET_MAX + 2];
    snprintf(claim, sizeof(claim), CLAIM_PREFIX "%s:%s", pid, offset);
    const char *argv[6] = {"SET", claim, "1", "NX", "PX", CLAIM_MS};
    if (store_command(redis, on_claimed, restore, 6, argv) != 0) {
        free(restore->nsp);
        free(restore);
        return SIOC_ECLOSED;
    }
    return 0;
}

static const sioc_recovery_store_ops_t redis_store_ops = {store_append, store_save, store_drop,
                                                          store_restore};

sioc_recovery_store_t *sioc_redis_recovery_store(sioc_redis_t *redis)
{
    return redis != NULL && redis->streams ? &redis->store : NULL;
}

int sioc_redis_adapter_factory(sioc_namespace_t *nsp, const sioc_adapter_local_t *local, void *data,
                               sioc_adapter_t **out)
{
    sioc_redis_t *redis = data;
    redis_adapter_t *adapter = calloc(1, sizeof(*adapter));
    if (adapter == NULL)
        return SIOC_ENOMEM;
    adapter->base.ops = redis->streams   ? &streams_adapter_ops
                        : redis->sharded ? &sharded_adapter_ops
                                         : &redis_adapter_ops;
    adapter->base.nsp = nsp;
    adapter->base.local = local;
    /* uid2(6) as the classic adapter, 16 characters as ClusterAdapter's randomBytes(8) hex */
    sioc__adapter_make_uid(adapter->base.uid, redis->sharded ? 16 : 6);
    adapter->redis = redis;
    const char *name = sioc_namespace_name(nsp);
    adapter->channel = format(redis->key, "#", name, "#");
    adapter->pattern = format(redis->key, "#", name, "#*");
    adapter->request_channel = format(redis->key, "-request#", name, "#");
    adapter->response_channel = format(redis->key, "-response#", name, "#");
    /* classic: <key>-response#<nsp>#<uid>#; sharded: its response channel <key>#<nsp>#<uid># */
    const char *specific_prefix = redis->sharded ? adapter->channel : adapter->response_channel;
    adapter->specific_channel =
        specific_prefix ? format(specific_prefix, adapter->base.uid, "#", "") : NULL;
    if (adapter->channel == NULL || adapter->pattern == NULL || adapter->request_channel == NULL ||
        adapter->specific_channel == NULL) {
        redis_destroy(&adapter->base);
        return SIOC_ENOMEM;
    }
    adapter->next = redis->adapters;
    redis->adapters = adapter;
    subscribe_adapter(redis, adapter);
    *out = &adapter->base;
    return 0;
}

/* ---- the connection pair --------------------------------------------------------------------- */

void sioc_redis_options_init(sioc_redis_options_t *options)
{
    memset(options, 0, sizeof(*options));
    options->host = "127.0.0.1";
    options->port = 6379;
    options->key = "socket.io";
    options->mode = SIOC_REDIS_CLASSIC;
    options->requests_timeout_ms = 5000;
    options->max_message_size = 1024 * 1024;
    options->stream_max_len = 10000;
    options->reconnect_min_ms = 100;
    options->reconnect_max_ms = 5000;
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_url(sioc_redis_t *redis, const char *url)
{
    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return SIOC_EINVAL;
    const char *rest = url + sizeof(scheme) - 1;
    const char *end = rest + strcspn(rest, "/?#");
    const char *at = memchr(rest, '@', (size_t)(end - rest));
    if (at != NULL) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon != NULL && colon + 1 < at)
            redis->password = strndup(colon + 1, (size_t)(at - colon - 1));
        rest = at + 1;
    }
    const char *colon = memchr(rest, ':', (size_t)(end - rest));
    const char *host_end = colon != NULL ? colon : end;
    if (host_end == rest)
        return SIOC_EINVAL;
    redis->host = strndup(rest, (size_t)(host_end - rest));
    if (colon != NULL) {
        char *port_end;
        long port = strtol(colon + 1, &port_end, 10);
        if (port_end != end || port <= 0 || port > 65535)
            return SIOC_EINVAL;
        redis->options.port = (int)port;
    }
    return redis->host != NULL ? 0 : SIOC_ENOMEM;
}

static int copy_options(sioc_redis_t *redis, const sioc_redis_options_t *options)
{
    redis->options = *options;
    redis->options.url = NULL;
    if ((options->mode != SIOC_REDIS_CLASSIC && options->mode != SIOC_REDIS_SHARDED &&
         options->mode != SIOC_REDIS_STREAMS) ||
        options->key == NULL)
        return SIOC_EINVAL;
    redis->sharded = options->mode != SIOC_REDIS_CLASSIC;
    redis->streams = options->mode == SIOC_REDIS_STREAMS;
    if (redis->options.stream_max_len == 0)
        redis->options.stream_max_len = 10000;
    redis->key = strdup(options->key);
    if (options->url != NULL) {
        int rc = parse_url(redis, options->url);
        if (rc != 0)
            return rc;
    } else {
        redis->host = strdup(options->host != NULL ? options->host : "127.0.0.1");
        redis->password = options->password != NULL ? strdup(options->password) : NULL;
    }
    if (redis->options.reconnect_min_ms == 0)
        redis->options.reconnect_min_ms = 1;
    if (redis->options.reconnect_max_ms < redis->options.reconnect_min_ms)
        redis->options.reconnect_max_ms = redis->options.reconnect_min_ms;
    if (redis->options.requests_timeout_ms == 0)
        redis->options.requests_timeout_ms = 5000;
    return redis->key != NULL && redis->host != NULL ? 0 : SIOC_ENOMEM;
}

static void free_redis(sioc_redis_t *redis)
{
    free(redis->host);
    free(redis->password);
    free(redis->key);
    free(redis);
}

static void link_init(sioc_redis_t *redis, link_t *link, const char *role)
{
    link->redis = redis;
    link->role = role;
    link->backoff_ms = redis->options.reconnect_min_ms;
    uv_timer_init(redis->loop, &link->timer);
    link->timer.data = link;
    redis->open_handles++;
}

int sioc_redis_new(uv_loop_t *loop, const sioc_redis_options_t *options, sioc_redis_t **out)
{
    sioc_redis_t *redis = calloc(1, sizeof(*redis));
    if (redis == NULL)
        return SIOC_ENOMEM;
    redis->loop = loop;
    int rc = copy_options(redis, options);
    if (rc != 0) {
        free_redis(redis);
        return rc;
    }
    link_init(redis, &redis->publish, "publish");
    link_init(redis, &redis->subscribe, "subscribe");
    redis->store.ops = &redis_store_ops;
    redis->store.keeps_connected = 1;
    link_connect(&redis->publish);
    link_connect(&redis->subscribe);
    if (redis->streams) {
        link_init(redis, &redis->stream, "stream");
        link_connect(&redis->stream);
    }
    *out = redis;
    return 0;
}

static void on_handle_closed(uv_handle_t *handle)
{
    link_t *link = handle->data;
    sioc_redis_t *redis = link->redis;
    if (--redis->open_handles == 0)
        free_redis(redis);
}

static void link_close(link_t *link)
{
    uv_timer_stop(&link->timer);
    uv_close((uv_handle_t *)&link->timer, on_handle_closed);
    redisAsyncContext *context = link->context;
    link->context = NULL;
    link->up = 0;
    if (context != NULL) {
        context->data = NULL; /* its callbacks are ours no more */
        redisAsyncFree(context);
    }
}

void sioc_redis_free(sioc_redis_t *redis)
{
    if (redis == NULL)
        return;
    redis->closing = 1;
    request_t *request, *next;
    HASH_ITER(hh, redis->requests, request, next)
    request_finish(request, SIOC_ECLOSED);
    link_close(&redis->publish);
    link_close(&redis->subscribe);
    if (redis->streams) {
        link_close(&redis->stream);
        stream_close(redis);
    }
}
