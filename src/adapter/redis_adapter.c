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

typedef struct link_s {
    sioc_redis_t *redis;
    const char *role;           /* "publish" or "subscribe", for the log */
    redisAsyncContext *context; /* NULL while down */
    uv_timer_t timer;           /* reconnects */
    uint32_t backoff_ms;
    int up;
    int failing; /* a failure was logged since the last success */
} link_t;

struct sioc_redis_s {
    uv_loop_t *loop;
    sioc_redis_options_t options;
    char *host, *password, *key;
    link_t publish, subscribe;
    redis_adapter_t *adapters;
    request_t *requests; /* by id */
    int sharded;         /* SPUBLISH / SSUBSCRIBE, ClusterAdapter messages */
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

enum request_kind { REQUEST_FETCH, REQUEST_SERVER_SIDE_EMIT, REQUEST_BROADCAST, REQUEST_COUNT };

struct request_s {
    char id[SIOC_ADAPTER_UID_SIZE];
    enum request_kind kind;
    redis_adapter_t *adapter;
    sioc_redis_t *redis;
    uv_timer_t timer;
    size_t expected; /* answers to wait for, once the server count is known */
    size_t answered;
    json_t *results;               /* fetch: sockets; serverSideEmit: responses */
    char *message;                 /* the request to publish once the server count is known */
    sioc_adapter_ack_sink_t *sink; /* broadcast with acks */
    union {
        sioc_fetch_sockets_cb fetch;
        sioc_server_side_ack_cb server_side;
        sioc_server_count_cb count;
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
    log_line(redis, "%s connection to %s:%d up", link->role, redis->host, redis->options.port);
    link->up = 1;
    link->failing = 0;
    link->backoff_ms = redis->options.reconnect_min_ms;
    if (link == &redis->subscribe) {
        for (redis_adapter_t *adapter = redis->adapters; adapter != NULL; adapter = adapter->next)
            subscribe_adapter(redis, adapter);
    }
}

static void on_disconnected(const redisAsyncContext *context, int status)
{
    link_t *link = context->data;
    if (link == NULL)
        return;
    log_line(link->redis, "%s connection to %s:%d lost (%s); reconnecting", link->role,
             link->redis->host, link->redis->options.port,
             status == REDIS_OK ? "closed" : context->errstr);
    link->failing = 1;
    link_retry(link);
}

static void on_auth(redisAsyncContext *context, void *reply_data, void *data)
{
    link_t *link = context->data;
    const redisReply *reply = reply_data;
    if (link != NULL && reply != NULL && reply->type == REDIS_REPLY_ERROR)
        log_line(link->redis, "%s connection: AUTH refused: %s", link->role, reply->str);
}

static void link_connect(link_t *link)
{
    sioc_redis_t *redis = link->redis;
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
    return redis->publish.up && redis->subscribe.up;
}

static void publish(sioc_redis_t *redis, const char *channel, const void *bytes, size_t length)
{
    if (!redis->publish.up)
        return; /* the lost connection was logged; local delivery goes on */
    const char *command = redis->sharded ? "SPUBLISH" : "PUBLISH";
    const char *argv[3] = {command, channel, bytes};
    size_t lengths[3] = {strlen(command), strlen(channel), length};
    redisAsyncCommandArgv(redis->publish.context, NULL, NULL, 3, argv, lengths);
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
    case REQUEST_SERVER_SIDE_EMIT:
        if (!known)
            return; /* ends at its timeout */
        /* Alone (serverCount counts this server): nobody to ask. */
        if (servers <= 1) {
            request_finish(request, 0);
            return;
        }
        request->expected = request->kind == REQUEST_FETCH ? servers : servers - 1;
        request->answered = request->kind == REQUEST_FETCH ? 1 : 0; /* this server */
        publish(request->redis,
                request->redis->sharded ? request->adapter->channel
                                        : request->adapter->request_channel,
                request->message, strlen(request->message));
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
    const char *argv[3] = {"PUBSUB", redis->sharded ? "SHARDNUMSUB" : "NUMSUB", counted};
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

/* A ClusterAdapter response {type, data, uid, nsp} on channel. */
static void publish_sharded(sioc_redis_t *redis, const char *channel, const char *uid,
                            const char *nsp, int type, json_t *data,
                            const sioc_binary_t *attachments, size_t attachment_count)
{
    size_t length = 0;
    uint8_t *bytes = data != NULL ? sioc__redis_encode_sharded(uid, nsp, type, data, attachments,
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
            sioc_event_t response = {"", args, binaries, message->attachment_count, -1};
            sioc_adapter_ack_sink_ack(request->sink, &response);
            json_decref(args);
        }
        return;
    }
    if (request->kind == REQUEST_FETCH && request->expected > 0) {
        request->answered++;
        if (message->sockets != NULL)
            json_array_extend(request->results, message->sockets);
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
    request->message = message != NULL ? json_dumps(message, JSON_COMPACT) : NULL;
    json_decref(message);
    if (request->message == NULL) {
        request_finish(request, SIOC_ENOMEM);
        return 0;
    }
    request_count_servers(request);
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
    request->message = message != NULL ? json_dumps(message, JSON_COMPACT) : NULL;
    json_decref(message);
    if (request->message == NULL || request->results == NULL) {
        request_finish(request, SIOC_ENOMEM);
        return 0;
    }
    request_count_servers(request);
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
    request->message = (char *)sioc__redis_encode_sharded(
        adapter->base.uid, sioc_namespace_name(adapter->base.nsp), type, data, NULL, 0, &length);
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
            sioc_event_t response = {"", args, binaries, message->attachment_count, -1};
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

int sioc_redis_adapter_factory(sioc_namespace_t *nsp, const sioc_adapter_local_t *local, void *data,
                               sioc_adapter_t **out)
{
    sioc_redis_t *redis = data;
    redis_adapter_t *adapter = calloc(1, sizeof(*adapter));
    if (adapter == NULL)
        return SIOC_ENOMEM;
    adapter->base.ops = redis->sharded ? &sharded_adapter_ops : &redis_adapter_ops;
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
    if ((options->mode != SIOC_REDIS_CLASSIC && options->mode != SIOC_REDIS_SHARDED) ||
        options->key == NULL)
        return SIOC_EINVAL;
    redis->sharded = options->mode == SIOC_REDIS_SHARDED;
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
    link_connect(&redis->publish);
    link_connect(&redis->subscribe);
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
}
