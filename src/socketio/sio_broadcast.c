/* Broadcasts: the operator (rooms, except, flags) handed to the namespace's adapter
 * (sioc_adapter.h), the local part of every adapter operation (sioc__sio_adapter_local: one
 * encoding per namespace for all recipients, recovery, acks), the collector of broadcast acks
 * across servers, and the cluster-wide operations (fetchSockets, socketsJoin, socketsLeave,
 * disconnectSockets, serverSideEmit, serverCount). */
#include <stdlib.h>
#include <string.h>

#include "engineio/eio_send.h"
#include "socketio/sio_internal.h"
#include "socketio/sio_recovery.h"

/* An answer kept until every client answered: its arguments and a copy of its attachments
 * (the packet they came in is gone by then). */
typedef struct kept_response_s {
    json_t *args;
    sioc_binary_t *attachments;
    size_t attachment_count;
} kept_response_t;

/* Node's BroadcastOperator.emit with an ack: complete once the number of servers is known,
 * each of them reported its client count and that many answers came. */
struct sioc_adapter_ack_sink_s {
    uv_timer_t timer;
    sioc_broadcast_ack_cb callback;
    void *data;
    kept_response_t *responses;
    size_t response_count;
    size_t pending_server_counts; /* namespaces whose adapter has not said how many servers */
    size_t expected_servers;
    size_t answered_servers;
    size_t expected_clients;
    const sioc_adapter_ack_relay_t *relay; /* a relay passes reports on instead */
    void *relay_data;
    uint32_t references;
    uint8_t done;
};

void sioc_broadcast_init(sioc_broadcast_t *broadcast, sioc_namespace_t *nsp)
{
    memset(broadcast, 0, sizeof(*broadcast));
    broadcast->nsp = nsp;
}

void sioc_broadcast_init_from(sioc_broadcast_t *broadcast, sioc_socket_t *socket)
{
    sioc_broadcast_init(broadcast, socket->nsp);
    sioc_broadcast_except(broadcast, socket->id);
}

int sioc_broadcast_to(sioc_broadcast_t *broadcast, const char *room)
{
    if (broadcast->room_count == SIOC_BROADCAST_MAX_ROOMS)
        return SIOC_ENOBUFS;
    broadcast->rooms[broadcast->room_count++] = room;
    return 0;
}

int sioc_broadcast_except(sioc_broadcast_t *broadcast, const char *room)
{
    if (broadcast->except_count == SIOC_BROADCAST_MAX_ROOMS)
        return SIOC_ENOBUFS;
    broadcast->except[broadcast->except_count++] = room;
    return 0;
}

static sioc_adapter_opts_t opts_of(const sioc_broadcast_t *broadcast, uint32_t timeout_ms)
{
    sioc_adapter_opts_t opts = {broadcast->rooms,        broadcast->room_count, broadcast->except,
                                broadcast->except_count, broadcast->flags,      timeout_ms};
    return opts;
}

/* ---- the local part of adapter operations -------------------------------------------------- */

/* A packet of this namespace from an adapter packet: its own shallow copy of data (recovery
 * appends an offset), the attachments borrowed. Release with release_local_packet(). */
static int local_packet(sioc_namespace_t *nsp, const sioc_adapter_packet_t *in,
                        sioc__sio_packet_t *out)
{
    memset(out, 0, sizeof(*out));
    out->type = SIOC_SIO_EVENT;
    out->nsp = nsp->name;
    out->id = SIOC_SIO_NO_ACK_ID;
    if (!json_is_array(in->data) || json_array_size(in->data) == 0)
        return SIOC_EINVAL;
    out->data = json_copy(in->data);
    out->attachments = calloc(in->attachment_count + 1, sizeof(*out->attachments));
    if (out->data == NULL || out->attachments == NULL)
        return SIOC_ENOMEM;
    for (size_t i = 0; i < in->attachment_count; i++) {
        out->attachments[i].data = (uint8_t *)in->attachments[i].data;
        out->attachments[i].length = in->attachments[i].length;
    }
    out->attachment_count = in->attachment_count;
    return 0;
}

static void release_local_packet(sioc__sio_packet_t *packet)
{
    json_decref(packet->data);
    free(packet->attachments);
}

/* Node's compress(false): the parts skip permessage-deflate and httpCompression. The buffers
 * were just encoded for this broadcast, so the flag is theirs alone. */
static void apply_compress_flag(const sioc__sio_encoded_t *encoded, unsigned flags)
{
    if (!(flags & SIOC_BROADCAST_NO_COMPRESS))
        return;
    for (size_t i = 0; i < encoded->count; i++)
        encoded->parts[i]->no_compress = 1;
}

typedef struct send_context_s {
    const sioc__sio_encoded_t *encoded;
    int is_volatile;
} send_context_t;

static void send_to_socket(sioc_socket_t *socket, void *data)
{
    send_context_t *context = data;
    if (socket->client != NULL)
        sioc__sio_client_send(socket->client, context->encoded, context->is_volatile);
}

size_t sioc__sio_deliver(sioc_namespace_t *nsp, const sioc_adapter_packet_t *adapter_packet,
                         const sioc_adapter_opts_t *opts, const char *offset)
{
    sioc_server_t *server = nsp->server;
    int is_volatile = (opts->flags & SIOC_BROADCAST_VOLATILE) != 0;
    sioc__sio_packet_t packet;
    sioc__sio_encoded_t encoded;
    encoded.count = 0;
    size_t count = 0;
    int rc = local_packet(nsp, adapter_packet, &packet);
    if (rc == 0 && offset != NULL)
        rc = json_array_append_new(packet.data, json_string(offset)) == 0 ? 0 : SIOC_ENOMEM;
    if (rc == 0)
        rc = sioc__sio_encode_for_server(server, &packet, &encoded);
    if (rc == 0) {
        apply_compress_flag(&encoded, opts->flags);
        send_context_t context = {&encoded, is_volatile};
        count = sioc__memory_adapter_select(nsp->index, opts, send_to_socket, &context);
        server->stats.broadcasts++;
        server->stats.deliveries += count;
    }
    sioc__sio_encoded_release(&encoded);
    release_local_packet(&packet);
    return count;
}

/* "A packet counts as sent only once it is in the log": with recovery on, a packet that can be
 * recovered (not volatile) is written here once the recovery store appended it. */
static size_t local_broadcast(sioc_namespace_t *nsp, const sioc_adapter_packet_t *adapter_packet,
                              const sioc_adapter_opts_t *opts)
{
    sioc_server_t *server = nsp->server;
    if (server->recovery != NULL && (opts->flags & SIOC_BROADCAST_VOLATILE) == 0)
        return sioc__sio_recovery_broadcast(server->recovery, nsp, adapter_packet, opts);
    return sioc__sio_deliver(nsp, adapter_packet, opts, NULL);
}

static size_t local_deliver(sioc_namespace_t *nsp, const sioc_adapter_packet_t *adapter_packet,
                            const sioc_adapter_opts_t *opts, const char *offset)
{
    /* As Node's addOffsetIfNecessary: only with recovery on, never on a volatile packet. */
    if (nsp->server->recovery == NULL || (opts->flags & SIOC_BROADCAST_VOLATILE) != 0)
        offset = NULL;
    return sioc__sio_deliver(nsp, adapter_packet, opts, offset);
}

typedef struct ack_context_s {
    sioc__sio_ack_collector_t *collector;
    const sioc__sio_encoded_t *encoded;
    int64_t id;
    int is_volatile;
    size_t count;
} ack_context_t;

static void send_with_ack(sioc_socket_t *socket, void *data)
{
    ack_context_t *context = data;
    if (context->is_volatile && !sioc__eio_socket_writable(socket->client->eio)) {
        socket->nsp->server->stats.volatile_dropped++;
        return; /* dropped: no answer to wait for */
    }
    if (sioc__sio_client_send(socket->client, context->encoded, 0) != 0 ||
        socket->state != SIO_SOCKET_CONNECTED)
        return;
    sioc__sio_pending_ack_t *pending = sioc__sio_socket_add_pending_ack(socket, context->id, 0);
    if (pending == NULL)
        return;
    pending->collector = context->collector;
    sioc_adapter_ack_sink_ref(context->collector);
    context->count++;
}

static void local_broadcast_with_ack(sioc_namespace_t *nsp,
                                     const sioc_adapter_packet_t *adapter_packet,
                                     const sioc_adapter_opts_t *opts, sioc_adapter_ack_sink_t *sink)
{
    sioc__sio_packet_t packet;
    sioc__sio_encoded_t encoded;
    encoded.count = 0;
    ack_context_t context = {sink, &encoded, 0, (opts->flags & SIOC_BROADCAST_VOLATILE) != 0, 0};
    int rc = local_packet(nsp, adapter_packet, &packet);
    if (rc == 0) {
        /* One id for every recipient, as Node's nsp._ids. */
        packet.id = context.id = nsp->server->next_ack_id++;
        rc = sioc__sio_encode_for_server(nsp->server, &packet, &encoded);
    }
    /* The reference keeps the sink alive should the count complete it. */
    sioc_adapter_ack_sink_ref(sink);
    if (rc == 0) {
        apply_compress_flag(&encoded, opts->flags);
        sioc__memory_adapter_select(nsp->index, opts, send_with_ack, &context);
        nsp->server->stats.broadcasts++;
        nsp->server->stats.deliveries += context.count;
    }
    sioc__sio_encoded_release(&encoded);
    release_local_packet(&packet);
    sioc_adapter_ack_sink_client_count(sink, context.count);
    sioc_adapter_ack_sink_unref(sink);
}

typedef struct socket_list_s {
    sioc_socket_t **sockets;
    size_t count;
    size_t capacity;
} socket_list_t;

static void collect_socket(sioc_socket_t *socket, void *data)
{
    socket_list_t *list = data;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 16;
        sioc_socket_t **sockets = realloc(list->sockets, capacity * sizeof(*sockets));
        if (sockets == NULL)
            return;
        list->sockets = sockets;
        list->capacity = capacity;
    }
    sioc__sio_socket_ref(socket);
    list->sockets[list->count++] = socket;
}

/* The selected sockets, each with a reference held; release with release_sockets(). Collected
 * first because joining, leaving or disconnecting while iterating a room would change it. */
static socket_list_t select_sockets(sioc_namespace_t *nsp, const sioc_adapter_opts_t *opts)
{
    socket_list_t list = {NULL, 0, 0};
    sioc__memory_adapter_select(nsp->index, opts, collect_socket, &list);
    return list;
}

static void release_sockets(socket_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        sioc__sio_socket_unref(list->sockets[i]);
    free(list->sockets);
}

static json_t *local_fetch_sockets(sioc_namespace_t *nsp, const sioc_adapter_opts_t *opts)
{
    socket_list_t list = select_sockets(nsp, opts);
    json_t *sockets = json_array();
    for (size_t i = 0; sockets != NULL && i < list.count; i++) {
        sioc_socket_t *socket = list.sockets[i];
        json_array_append_new(sockets, json_pack("{s:s,s:o,s:o,s:o}", "id", socket->id, "handshake",
                                                 sioc_socket_handshake_copy(socket), "rooms",
                                                 sioc_socket_rooms(socket), "data",
                                                 sioc__sio_socket_data_copy(socket)));
    }
    release_sockets(&list);
    return sockets;
}

static void local_add_sockets(sioc_namespace_t *nsp, const sioc_adapter_opts_t *opts,
                              const char *const *rooms, size_t room_count)
{
    socket_list_t list = select_sockets(nsp, opts);
    for (size_t i = 0; i < list.count; i++) {
        for (size_t j = 0; j < room_count; j++)
            sioc_socket_join(list.sockets[i], rooms[j]);
    }
    release_sockets(&list);
}

static void local_del_sockets(sioc_namespace_t *nsp, const sioc_adapter_opts_t *opts,
                              const char *const *rooms, size_t room_count)
{
    socket_list_t list = select_sockets(nsp, opts);
    for (size_t i = 0; i < list.count; i++) {
        for (size_t j = 0; j < room_count; j++)
            sioc_socket_leave(list.sockets[i], rooms[j]);
    }
    release_sockets(&list);
}

static void local_disconnect_sockets(sioc_namespace_t *nsp, const sioc_adapter_opts_t *opts,
                                     int close)
{
    socket_list_t list = select_sockets(nsp, opts);
    for (size_t i = 0; i < list.count; i++)
        sioc_socket_disconnect(list.sockets[i], close);
    release_sockets(&list);
}

static void local_server_side_emit(sioc_namespace_t *nsp, json_t *data, sioc_adapter_reply_t *reply)
{
    sioc_namespace_t *root = sioc__sio_namespace_root(nsp);
    const char *name = json_string_value(json_array_get(data, 0));
    json_t *args = json_array();
    for (size_t i = 1; args != NULL && i < json_array_size(data); i++)
        json_array_append(args, json_array_get(data, i));
    if (root->on_server_side_emit.callback == NULL || name == NULL || args == NULL) {
        /* Nobody listens: Node never answers either, the emitter times out. */
        if (reply != NULL)
            reply->drop(reply);
        json_decref(args);
        return;
    }
    sioc_event_t event = {.name = name, .args = args, .ack_id = SIOC_SIO_NO_ACK_ID};
    ((sioc_server_side_cb)root->on_server_side_emit.callback)(nsp, &event, reply,
                                                              root->on_server_side_emit.data);
    json_decref(args);
}

static json_t *local_rooms(sioc_namespace_t *nsp)
{
    return sioc__memory_adapter_rooms(nsp->index);
}

static int local_has_room(sioc_namespace_t *nsp, const char *room)
{
    return sioc__memory_adapter_has_room(nsp->index, room);
}

const sioc_adapter_local_t sioc__sio_adapter_local = {
    .broadcast = local_broadcast,
    .broadcast_with_ack = local_broadcast_with_ack,
    .fetch_sockets = local_fetch_sockets,
    .add_sockets = local_add_sockets,
    .del_sockets = local_del_sockets,
    .disconnect_sockets = local_disconnect_sockets,
    .server_side_emit = local_server_side_emit,
    .rooms = local_rooms,
    .has_room = local_has_room,
    .deliver = local_deliver,
};

void sioc_adapter_reply(sioc_adapter_reply_t *reply, json_t *arg)
{
    reply->send(reply, arg);
}

/* ---- plain broadcasts -------------------------------------------------------------------- */

typedef struct emit_context_s {
    const sioc_broadcast_t *broadcast;
    const char *event;
    const sioc_message_t *message;
    sioc__sio_ack_collector_t *collector; /* with acks */
    uint32_t timeout_ms;
    int rc;
} emit_context_t;

static void emit_in_namespace(sioc_namespace_t *nsp, void *data)
{
    emit_context_t *context = data;
    sioc__sio_packet_t packet;
    int rc = sioc__sio_build_event(&packet, nsp->name, context->event, context->message);
    if (rc == 0) {
        sioc_adapter_packet_t adapter_packet = {packet.data, NULL, 0};
        if (context->message != NULL) {
            adapter_packet.attachments = context->message->attachments;
            adapter_packet.attachment_count = context->message->attachment_count;
        }
        sioc_adapter_opts_t opts = opts_of(context->broadcast, context->timeout_ms);
        if (context->collector == NULL) {
            nsp->adapter->ops->broadcast(nsp->adapter, &adapter_packet, &opts);
        } else {
            context->collector->pending_server_counts++;
            nsp->adapter->ops->broadcast_with_ack(nsp->adapter, &adapter_packet, &opts,
                                                  context->collector);
        }
    }
    json_decref(packet.data);
    free(packet.attachments);
    if (rc != 0)
        context->rc = rc;
}

int sioc_broadcast_emit_message(const sioc_broadcast_t *broadcast, const char *event,
                                const sioc_message_t *message)
{
    emit_context_t context = {broadcast, event, message, NULL, 0, 0};
    sioc__sio_namespace_for_each_target(broadcast->nsp, emit_in_namespace, &context);
    if (message != NULL)
        json_decref(message->args);
    return context.rc;
}

int sioc_broadcast_emit(const sioc_broadcast_t *broadcast, const char *event, json_t *args)
{
    sioc_message_t message = {.args = args};
    return sioc_broadcast_emit_message(broadcast, event, &message);
}

/* ---- broadcasts with acknowledgements ------------------------------------------------------ */

static void free_collector(uv_handle_t *handle)
{
    sioc__sio_ack_collector_t *collector = handle->data;
    if (collector->relay != NULL && collector->relay->release != NULL)
        collector->relay->release(collector->relay_data);
    for (size_t i = 0; i < collector->response_count; i++) {
        kept_response_t *response = &collector->responses[i];
        json_decref(response->args);
        for (size_t j = 0; j < response->attachment_count; j++)
            free((void *)response->attachments[j].data);
        free(response->attachments);
    }
    free(collector->responses);
    free(collector);
}

void sioc_adapter_ack_sink_ref(sioc_adapter_ack_sink_t *sink)
{
    sink->references++;
}

void sioc_adapter_ack_sink_unref(sioc_adapter_ack_sink_t *sink)
{
    if (--sink->references == 0)
        uv_close((uv_handle_t *)&sink->timer, free_collector);
}

void sioc__sio_ack_collector_unref(sioc__sio_ack_collector_t *collector)
{
    sioc_adapter_ack_sink_unref(collector);
}

static void finish_collector(sioc__sio_ack_collector_t *collector, int error)
{
    if (collector->done)
        return;
    collector->done = 1;
    uv_timer_stop(&collector->timer);
    sioc_event_t *views = calloc(collector->response_count + 1, sizeof(sioc_event_t));
    if (views != NULL) {
        for (size_t i = 0; i < collector->response_count; i++) {
            views[i].name = "";
            views[i].args = collector->responses[i].args;
            views[i].attachments = collector->responses[i].attachments;
            views[i].attachment_count = collector->responses[i].attachment_count;
            views[i].ack_id = SIOC_SIO_NO_ACK_ID;
        }
        collector->callback(error, views, collector->response_count, collector->data);
        free(views);
    } else {
        collector->callback(SIOC_ENOMEM, NULL, 0, collector->data);
    }
    sioc_adapter_ack_sink_unref(collector); /* the collector's own reference */
}

static void check_complete(sioc__sio_ack_collector_t *collector)
{
    if (!collector->done && collector->pending_server_counts == 0 &&
        collector->answered_servers == collector->expected_servers &&
        collector->response_count == collector->expected_clients)
        finish_collector(collector, 0);
}

void sioc_adapter_ack_sink_server_count(sioc_adapter_ack_sink_t *sink, size_t servers)
{
    if (sink->done || sink->pending_server_counts == 0)
        return;
    sink->pending_server_counts--;
    sink->expected_servers += servers;
    check_complete(sink);
}

void sioc_adapter_ack_sink_client_count(sioc_adapter_ack_sink_t *sink, size_t clients)
{
    if (sink->relay != NULL) {
        sink->relay->client_count(clients, sink->relay_data);
        return;
    }
    if (sink->done)
        return;
    sink->answered_servers++;
    sink->expected_clients += clients;
    check_complete(sink);
}

static int keep_response(kept_response_t *kept, const sioc_event_t *response)
{
    kept->args = json_incref(response->args);
    kept->attachment_count = 0;
    kept->attachments = calloc(response->attachment_count + 1, sizeof(sioc_binary_t));
    if (kept->attachments == NULL)
        return SIOC_ENOMEM;
    for (size_t i = 0; i < response->attachment_count; i++) {
        uint8_t *copy = malloc(response->attachments[i].length + 1);
        if (copy == NULL)
            return SIOC_ENOMEM;
        memcpy(copy, response->attachments[i].data, response->attachments[i].length);
        kept->attachments[i].data = copy;
        kept->attachments[i].length = response->attachments[i].length;
        kept->attachment_count++;
    }
    return 0;
}

void sioc_adapter_ack_sink_ack(sioc_adapter_ack_sink_t *sink, const sioc_event_t *response)
{
    if (sink->relay != NULL) {
        sink->relay->ack(response, sink->relay_data);
        return;
    }
    if (sink->done)
        return;
    kept_response_t *responses =
        realloc(sink->responses, (sink->response_count + 1) * sizeof(*responses));
    if (responses == NULL)
        return;
    sink->responses = responses;
    keep_response(&responses[sink->response_count++], response);
    check_complete(sink);
}

void sioc__sio_ack_collector_add_response(sioc__sio_ack_collector_t *collector,
                                          const sioc_event_t *response)
{
    sioc_adapter_ack_sink_ack(collector, response);
}

sioc_adapter_ack_sink_t *
sioc_adapter_ack_sink_new_relay(uv_loop_t *loop, const sioc_adapter_ack_relay_t *relay, void *data)
{
    sioc_adapter_ack_sink_t *sink = calloc(1, sizeof(*sink));
    if (sink == NULL)
        return NULL;
    uv_timer_init(loop, &sink->timer);
    sink->timer.data = sink;
    sink->relay = relay;
    sink->relay_data = data;
    sink->references = 1;
    sink->done = 1; /* never completes: it only passes reports on */
    return sink;
}

static void on_collector_timeout(uv_timer_t *timer)
{
    finish_collector(timer->data, SIOC_ETIMEDOUT);
}

int sioc_broadcast_emit_with_ack(const sioc_broadcast_t *broadcast, const char *event,
                                 const sioc_message_t *message, uint32_t timeout_ms,
                                 sioc_broadcast_ack_cb callback, void *data)
{
    sioc__sio_ack_collector_t *collector = calloc(1, sizeof(*collector));
    if (collector == NULL) {
        if (message != NULL)
            json_decref(message->args);
        return SIOC_ENOMEM;
    }
    uv_timer_init(broadcast->nsp->server->loop, &collector->timer);
    collector->timer.data = collector;
    collector->callback = callback;
    collector->data = data;
    collector->references = 1;
    /* Counted as one more pending report until every namespace was asked, so that a namespace
     * that completes at once does not finish the whole broadcast early. */
    collector->pending_server_counts = 1;
    emit_context_t context = {broadcast, event, message, collector, timeout_ms, 0};
    sioc__sio_namespace_for_each_target(broadcast->nsp, emit_in_namespace, &context);
    if (message != NULL)
        json_decref(message->args);
    if (context.rc != 0 && collector->expected_clients == 0 && collector->response_count == 0) {
        collector->done = 1;
        sioc_adapter_ack_sink_unref(collector);
        return context.rc;
    }
    /* The timer first: the last report may finish (and stop it) right away. */
    if (timeout_ms > 0)
        uv_timer_start(&collector->timer, on_collector_timeout, timeout_ms, 0);
    collector->pending_server_counts--;
    check_complete(collector);
    return 0;
}

/* ---- operations on the selected sockets, across servers ------------------------------------ */

/* A dynamic parent's children answer one by one from this server only. */
static void fetch_children(sioc_namespace_t *child, void *data)
{
    json_t *all = ((void **)data)[0];
    const sioc_adapter_opts_t *opts = ((void **)data)[1];
    json_t *sockets = local_fetch_sockets(child, opts);
    json_array_extend(all, sockets);
    json_decref(sockets);
}

int sioc_broadcast_fetch_sockets(const sioc_broadcast_t *broadcast, sioc_fetch_sockets_cb callback,
                                 void *data)
{
    sioc_adapter_opts_t opts = opts_of(broadcast, 0);
    sioc_namespace_t *nsp = broadcast->nsp;
    if (nsp->filter == NULL)
        return nsp->adapter->ops->fetch_sockets(nsp->adapter, &opts, callback, data);
    json_t *all = json_array();
    if (all == NULL)
        return SIOC_ENOMEM;
    void *context[2] = {all, &opts};
    sioc__sio_namespace_for_each_target(nsp, fetch_children, context);
    callback(0, all, data);
    json_decref(all);
    return 0;
}

typedef struct rooms_context_s {
    const sioc_broadcast_t *broadcast;
    const char *room;
    int operation; /* 0 join, 1 leave, 2 disconnect, 3 disconnect and close */
} rooms_context_t;

static void rooms_in_namespace(sioc_namespace_t *nsp, void *data)
{
    rooms_context_t *context = data;
    sioc_adapter_opts_t opts = opts_of(context->broadcast, 0);
    sioc_adapter_t *adapter = nsp->adapter;
    if (context->operation == 0)
        adapter->ops->add_sockets(adapter, &opts, &context->room, 1);
    else if (context->operation == 1)
        adapter->ops->del_sockets(adapter, &opts, &context->room, 1);
    else
        adapter->ops->disconnect_sockets(adapter, &opts, context->operation == 3);
}

int sioc_broadcast_join(const sioc_broadcast_t *broadcast, const char *room)
{
    rooms_context_t context = {broadcast, room, 0};
    sioc__sio_namespace_for_each_target(broadcast->nsp, rooms_in_namespace, &context);
    return 0;
}

int sioc_broadcast_leave(const sioc_broadcast_t *broadcast, const char *room)
{
    rooms_context_t context = {broadcast, room, 1};
    sioc__sio_namespace_for_each_target(broadcast->nsp, rooms_in_namespace, &context);
    return 0;
}

void sioc_broadcast_disconnect(const sioc_broadcast_t *broadcast, int close)
{
    rooms_context_t context = {broadcast, NULL, close ? 3 : 2};
    sioc__sio_namespace_for_each_target(broadcast->nsp, rooms_in_namespace, &context);
}

static int server_side_emit(sioc_namespace_t *nsp, const char *event, json_t *args,
                            sioc_server_side_ack_cb callback, void *data)
{
    int rc = SIOC_EINVAL;
    json_t *packet = NULL;
    if (event != NULL && !sioc__sio_is_reserved_event(event, strlen(event)) &&
        (args == NULL || json_is_array(args))) {
        packet = json_pack("[s]", event);
        rc = packet != NULL ? 0 : SIOC_ENOMEM;
    }
    if (rc == 0 && args != NULL)
        json_array_extend(packet, args);
    if (rc == 0)
        rc = nsp->adapter->ops->server_side_emit(nsp->adapter, packet, callback, data);
    json_decref(packet);
    json_decref(args);
    return rc;
}

int sioc_namespace_server_side_emit(sioc_namespace_t *nsp, const char *event, json_t *args)
{
    return server_side_emit(nsp, event, args, NULL, NULL);
}

int sioc_namespace_server_side_emit_with_ack(sioc_namespace_t *nsp, const char *event, json_t *args,
                                             sioc_server_side_ack_cb callback, void *data)
{
    if (callback == NULL) {
        json_decref(args);
        return SIOC_EINVAL;
    }
    return server_side_emit(nsp, event, args, callback, data);
}

int sioc_namespace_all_rooms(sioc_namespace_t *nsp, sioc_all_rooms_cb callback, void *data)
{
    sioc_adapter_t *adapter = nsp->adapter;
    if (adapter->ops->all_rooms != NULL)
        return adapter->ops->all_rooms(adapter, callback, data);
    json_t *rooms = adapter->local->rooms(nsp);
    if (rooms == NULL)
        return SIOC_ENOMEM;
    callback(0, rooms, data);
    json_decref(rooms);
    return 0;
}

int sioc_namespace_server_count(sioc_namespace_t *nsp, sioc_server_count_cb callback, void *data)
{
    return nsp->adapter->ops->server_count(nsp->adapter, callback, data);
}
