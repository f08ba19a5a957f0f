/* Broadcasts: the operator (rooms, except, flags), one encoding per namespace for all
 * recipients, broadcasts that collect acknowledgements, and the cluster-style operations
 * (fetchSockets, socketsJoin, socketsLeave, disconnectSockets, serverSideEmit). */
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

struct sioc__sio_ack_collector_s {
    uv_timer_t timer;
    sioc_broadcast_ack_cb callback;
    void *data;
    kept_response_t *responses;
    size_t response_count;
    size_t expected;
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

/* ---- plain broadcasts -------------------------------------------------------------------------
 */

typedef struct emit_context_s {
    const sioc_broadcast_t *broadcast;
    const char *event;
    const sioc_message_t *message;
    int rc;
} emit_context_t;

static void emit_in_namespace(sioc_namespace_t *nsp, void *data)
{
    emit_context_t *context = data;
    sioc__sio_packet_t packet;
    int rc = sioc__sio_build_event(&packet, nsp->name, context->event, context->message);
    sioc_server_t *server = nsp->server;
    int store = server->recovery != NULL && !(context->broadcast->flags & SIOC_BROADCAST_VOLATILE);
    sioc__sio_encoded_t encoded;
    encoded.count = 0;
    if (rc == 0 && store)
        rc = sioc__sio_recovery_add_offset(server->recovery, &packet);
    if (rc == 0)
        rc = sioc__sio_encode_for_server(server, &packet, &encoded);
    if (rc == 0) {
        sioc_broadcast_t scoped = *context->broadcast;
        scoped.nsp = nsp;
        nsp->adapter->ops->broadcast(nsp->adapter, &packet, &encoded, &scoped);
        if (store)
            sioc__sio_recovery_store(server->recovery, &scoped, &encoded);
    }
    sioc__sio_encoded_release(&encoded);
    json_decref(packet.data);
    free(packet.attachments);
    if (rc != 0)
        context->rc = rc;
}

int sioc_broadcast_emit_message(const sioc_broadcast_t *broadcast, const char *event,
                                const sioc_message_t *message)
{
    emit_context_t context = {broadcast, event, message, 0};
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

/* ---- broadcasts with acknowledgements ---------------------------------------------------------
 */

static void free_collector(uv_handle_t *handle)
{
    sioc__sio_ack_collector_t *collector = handle->data;
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

void sioc__sio_ack_collector_unref(sioc__sio_ack_collector_t *collector)
{
    if (--collector->references == 0)
        uv_close((uv_handle_t *)&collector->timer, free_collector);
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
    sioc__sio_ack_collector_unref(collector); /* the collector's own reference */
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

void sioc__sio_ack_collector_add_response(sioc__sio_ack_collector_t *collector,
                                          const sioc_event_t *response)
{
    if (collector->done)
        return;
    kept_response_t *responses =
        realloc(collector->responses, (collector->response_count + 1) * sizeof(*responses));
    if (responses == NULL)
        return;
    collector->responses = responses;
    keep_response(&responses[collector->response_count++], response);
    if (collector->response_count == collector->expected)
        finish_collector(collector, 0);
}

static void on_collector_timeout(uv_timer_t *timer)
{
    finish_collector(timer->data, SIOC_ETIMEDOUT);
}

typedef struct ack_context_s {
    sioc__sio_ack_collector_t *collector;
    const sioc__sio_encoded_t *encoded;
    int64_t id;
    int is_volatile;
} ack_context_t;

static void send_with_ack(sioc_socket_t *socket, void *data)
{
    ack_context_t *context = data;
    if (context->is_volatile && !sioc__eio_socket_writable(socket->client->eio))
        return; /* dropped: no answer to wait for */
    if (sioc__sio_client_send(socket->client, context->encoded, 0) != 0 ||
        socket->state != SIO_SOCKET_CONNECTED)
        return;
    sioc__sio_pending_ack_t *pending = sioc__sio_socket_add_pending_ack(socket, context->id, 0);
    if (pending == NULL)
        return;
    pending->collector = context->collector;
    context->collector->references++;
    context->collector->expected++;
}

typedef struct ack_emit_context_s {
    const sioc_broadcast_t *broadcast;
    const char *event;
    const sioc_message_t *message;
    sioc__sio_ack_collector_t *collector;
    int rc;
} ack_emit_context_t;

static void emit_with_ack_in_namespace(sioc_namespace_t *nsp, void *data)
{
    ack_emit_context_t *context = data;
    sioc__sio_packet_t packet;
    sioc__sio_encoded_t encoded;
    encoded.count = 0;
    int rc = sioc__sio_build_event(&packet, nsp->name, context->event, context->message);
    if (rc == 0) {
        /* One id for every recipient, as Node's nsp._ids. */
        packet.id = nsp->server->next_ack_id++;
        rc = sioc__sio_encode_for_server(nsp->server, &packet, &encoded);
    }
    if (rc == 0) {
        sioc_broadcast_t scoped = *context->broadcast;
        scoped.nsp = nsp;
        ack_context_t ack = {context->collector, &encoded, packet.id,
                             (scoped.flags & SIOC_BROADCAST_VOLATILE) != 0};
        nsp->adapter->ops->select(nsp->adapter, &scoped, send_with_ack, &ack);
    }
    sioc__sio_encoded_release(&encoded);
    json_decref(packet.data);
    free(packet.attachments);
    if (rc != 0)
        context->rc = rc;
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
    ack_emit_context_t context = {broadcast, event, message, collector, 0};
    sioc__sio_namespace_for_each_target(broadcast->nsp, emit_with_ack_in_namespace, &context);
    if (message != NULL)
        json_decref(message->args);
    if (context.rc != 0 && collector->expected == 0) {
        collector->done = 1;
        sioc__sio_ack_collector_unref(collector);
        return context.rc;
    }
    if (collector->expected == 0)
        finish_collector(collector, 0);
    else if (timeout_ms > 0)
        uv_timer_start(&collector->timer, on_collector_timeout, timeout_ms, 0);
    return 0;
}

/* ---- operations on the selected sockets
 * ---------------------------------------------------------- */

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

static void collect_in_namespace(sioc_namespace_t *nsp, void *data)
{
    const sioc_broadcast_t *broadcast = ((void **)data)[0];
    sioc_broadcast_t scoped = *broadcast;
    scoped.nsp = nsp;
    nsp->adapter->ops->select(nsp->adapter, &scoped, collect_socket, ((void **)data)[1]);
}

/* The selected sockets, each with a reference held; release with release_sockets(). Collected
 * first because joining, leaving or disconnecting while iterating a room would change it. */
static socket_list_t select_sockets(const sioc_broadcast_t *broadcast)
{
    socket_list_t list = {NULL, 0, 0};
    void *context[2] = {(void *)broadcast, &list};
    sioc__sio_namespace_for_each_target(broadcast->nsp, collect_in_namespace, context);
    return list;
}

static void release_sockets(socket_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        sioc__sio_socket_unref(list->sockets[i]);
    free(list->sockets);
}

int sioc_broadcast_fetch_sockets(const sioc_broadcast_t *broadcast, sioc_fetch_sockets_cb callback,
                                 void *data)
{
    socket_list_t list = select_sockets(broadcast);
    json_t *sockets = json_array();
    for (size_t i = 0; sockets != NULL && i < list.count; i++) {
        sioc_socket_t *socket = list.sockets[i];
        json_array_append_new(sockets, json_pack("{s:s,s:O,s:o,s:O}", "id", socket->id, "handshake",
                                                 socket->handshake, "rooms",
                                                 sioc_socket_rooms(socket), "data", socket->data));
    }
    release_sockets(&list);
    if (sockets == NULL)
        return SIOC_ENOMEM;
    callback(0, sockets, data);
    json_decref(sockets);
    return 0;
}

int sioc_broadcast_join(const sioc_broadcast_t *broadcast, const char *room)
{
    socket_list_t list = select_sockets(broadcast);
    int rc = 0;
    for (size_t i = 0; i < list.count; i++) {
        if (sioc_socket_join(list.sockets[i], room) != 0)
            rc = SIOC_ENOMEM;
    }
    release_sockets(&list);
    return rc;
}

int sioc_broadcast_leave(const sioc_broadcast_t *broadcast, const char *room)
{
    socket_list_t list = select_sockets(broadcast);
    for (size_t i = 0; i < list.count; i++)
        sioc_socket_leave(list.sockets[i], room);
    release_sockets(&list);
    return 0;
}

void sioc_broadcast_disconnect(const sioc_broadcast_t *broadcast, int close)
{
    socket_list_t list = select_sockets(broadcast);
    for (size_t i = 0; i < list.count; i++)
        sioc_socket_disconnect(list.sockets[i], close);
    release_sockets(&list);
}

int sioc_namespace_server_side_emit(sioc_namespace_t *nsp, const char *event, json_t *args)
{
    sioc_message_t message = {.args = args};
    sioc__sio_packet_t packet;
    int rc = sioc__sio_build_event(&packet, nsp->name, event, &message);
    if (rc == 0)
        rc = nsp->adapter->ops->server_side_emit(nsp->adapter, &packet);
    json_decref(packet.data);
    free(packet.attachments);
    json_decref(args);
    return rc;
}
