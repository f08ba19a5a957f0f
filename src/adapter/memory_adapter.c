/* The local room index: rooms as hash tables of members, each membership linked from both the
 * room and the socket so join, leave and "leave all" cost O(1) per room. Then the in-memory
 * adapter, which does every operation's local part and nothing else. */
#include <stdlib.h>
#include <string.h>

#include "socketio/sio_internal.h"

static sioc__room_t *find_room(sioc__adapter_t *adapter, const char *name)
{
    sioc__room_t *room = NULL;
    HASH_FIND_STR(adapter->rooms, name, room);
    return room;
}

static sioc__room_t *find_or_create_room(sioc__adapter_t *adapter, const char *name)
{
    sioc__room_t *room = find_room(adapter, name);
    if (room != NULL)
        return room;
    room = calloc(1, sizeof(*room));
    if (room == NULL || (room->name = strdup(name)) == NULL) {
        free(room);
        return NULL;
    }
    HASH_ADD_KEYPTR(hh, adapter->rooms, room->name, strlen(room->name), room);
    sioc_adapter_t *cluster = adapter->nsp->adapter;
    if (cluster != NULL && cluster->ops->room_created != NULL)
        cluster->ops->room_created(cluster, room->name);
    return room;
}

int sioc__memory_adapter_join(sioc__adapter_t *adapter, sioc_socket_t *socket,
                              const char *room_name)
{
    sioc__membership_t *membership = NULL;
    HASH_FIND(hh_socket, socket->memberships, room_name, strlen(room_name), membership);
    if (membership != NULL)
        return 0;
    sioc__room_t *room = find_or_create_room(adapter, room_name);
    membership = room ? calloc(1, sizeof(*membership)) : NULL;
    if (membership == NULL)
        return SIOC_ENOMEM;
    membership->socket = socket;
    membership->room = room;
    HASH_ADD(hh_room, room->members, socket, sizeof(sioc_socket_t *), membership);
    HASH_ADD_KEYPTR(hh_socket, socket->memberships, room->name, strlen(room->name), membership);
    return 0;
}

static void remove_membership(sioc__adapter_t *adapter, sioc__membership_t *membership)
{
    sioc__room_t *room = membership->room;
    HASH_DELETE(hh_room, room->members, membership);
    HASH_DELETE(hh_socket, membership->socket->memberships, membership);
    free(membership);
    /* Empty rooms disappear, as in socket.io-adapter ("delete-room"). */
    if (room->members == NULL) {
        HASH_DEL(adapter->rooms, room);
        sioc_adapter_t *cluster = adapter->nsp->adapter;
        if (cluster != NULL && cluster->ops->room_deleted != NULL)
            cluster->ops->room_deleted(cluster, room->name);
        free(room->name);
        free(room);
    }
}

void sioc__memory_adapter_leave(sioc__adapter_t *adapter, sioc_socket_t *socket,
                                const char *room_name)
{
    sioc__membership_t *membership = NULL;
    HASH_FIND(hh_socket, socket->memberships, room_name, strlen(room_name), membership);
    if (membership != NULL)
        remove_membership(adapter, membership);
}

void sioc__memory_adapter_leave_all(sioc__adapter_t *adapter, sioc_socket_t *socket)
{
    while (socket->memberships != NULL)
        remove_membership(adapter, socket->memberships);
}

static void mark_excepted(sioc__adapter_t *adapter, const sioc_adapter_opts_t *opts, uint64_t mark)
{
    for (size_t i = 0; i < opts->except_count; i++) {
        sioc__room_t *room = find_room(adapter, opts->except[i]);
        if (room == NULL)
            continue;
        for (sioc__membership_t *member = room->members; member != NULL;
             member = member->hh_room.next)
            member->socket->except_mark = mark;
    }
}

static int selectable(const sioc_socket_t *socket, uint64_t mark)
{
    return socket->state == SIO_SOCKET_CONNECTED && socket->except_mark != mark &&
           socket->seen_mark != mark;
}

size_t sioc__memory_adapter_select(sioc__adapter_t *adapter, const sioc_adapter_opts_t *opts,
                                   sioc__adapter_visit_cb visit, void *data)
{
    /* A fresh mark per call: sockets stamped with it were excepted or already visited, so a
     * socket in several target rooms gets the packet once. */
    uint64_t mark = ++adapter->nsp->server->broadcast_generation;
    mark_excepted(adapter, opts, mark);
    size_t count = 0;
    if (opts->room_count == 0) {
        sioc_socket_t *socket, *next;
        HASH_ITER(hh, adapter->nsp->sockets, socket, next)
        {
            if (selectable(socket, mark)) {
                socket->seen_mark = mark;
                visit(socket, data);
                count++;
            }
        }
        return count;
    }
    for (size_t i = 0; i < opts->room_count; i++) {
        sioc__room_t *room = find_room(adapter, opts->rooms[i]);
        sioc__membership_t *member = room ? room->members : NULL;
        while (member != NULL) {
            /* visit may make the socket leave this room: step first. */
            sioc__membership_t *next = member->hh_room.next;
            sioc_socket_t *socket = member->socket;
            if (selectable(socket, mark)) {
                socket->seen_mark = mark;
                visit(socket, data);
                count++;
            }
            member = next;
        }
    }
    return count;
}

int sioc__memory_adapter_has_room(const sioc__adapter_t *adapter, const char *name)
{
    return find_room((sioc__adapter_t *)adapter, name) != NULL;
}

json_t *sioc__memory_adapter_rooms(const sioc__adapter_t *adapter)
{
    json_t *names = json_array();
    for (sioc__room_t *room = adapter->rooms; names != NULL && room != NULL; room = room->hh.next)
        json_array_append_new(names, json_string(room->name));
    return names;
}

void sioc__memory_adapter_free(sioc__adapter_t *adapter)
{
    if (adapter == NULL)
        return;
    sioc__room_t *room, *next;
    HASH_ITER(hh, adapter->rooms, room, next)
    {
        while (room->members != NULL) {
            sioc__membership_t *membership = room->members;
            HASH_DELETE(hh_room, room->members, membership);
            HASH_DELETE(hh_socket, membership->socket->memberships, membership);
            free(membership);
        }
        HASH_DEL(adapter->rooms, room);
        free(room->name);
        free(room);
    }
    free(adapter);
}

sioc__adapter_t *sioc__memory_adapter_new(sioc_namespace_t *nsp)
{
    sioc__adapter_t *adapter = calloc(1, sizeof(*adapter));
    if (adapter != NULL)
        adapter->nsp = nsp;
    return adapter;
}

void sioc__adapter_make_uid(char *out, size_t length)
{
    /* uid2's alphabet; the modulo bias does not matter for an id that only has to differ. */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint8_t bytes[SIOC_ADAPTER_UID_SIZE];
    if (length >= sizeof(bytes))
        length = sizeof(bytes) - 1;
    if (sioc__random_bytes(bytes, length) != 0)
        memset(bytes, 0, length);
    for (size_t i = 0; i < length; i++)
        out[i] = alphabet[bytes[i] % (sizeof(alphabet) - 1)];
    out[length] = '\0';
}

/* ---- the in-memory adapter: one server ------------------------------------------------------ */

static void memory_broadcast(sioc_adapter_t *adapter, const sioc_adapter_packet_t *packet,
                             const sioc_adapter_opts_t *opts)
{
    adapter->local->broadcast(adapter->nsp, packet, opts);
}

static void memory_broadcast_with_ack(sioc_adapter_t *adapter, const sioc_adapter_packet_t *packet,
                                      const sioc_adapter_opts_t *opts,
                                      sioc_adapter_ack_sink_t *sink)
{
    sioc_adapter_ack_sink_server_count(sink, 1);
    adapter->local->broadcast_with_ack(adapter->nsp, packet, opts, sink);
}

static int memory_fetch_sockets(sioc_adapter_t *adapter, const sioc_adapter_opts_t *opts,
                                sioc_fetch_sockets_cb callback, void *data)
{
    json_t *sockets = adapter->local->fetch_sockets(adapter->nsp, opts);
    if (sockets == NULL)
        return SIOC_ENOMEM;
    callback(0, sockets, data);
    json_decref(sockets);
    return 0;
}

static void memory_add_sockets(sioc_adapter_t *adapter, const sioc_adapter_opts_t *opts,
                               const char *const *rooms, size_t room_count)
{
    adapter->local->add_sockets(adapter->nsp, opts, rooms, room_count);
}

static void memory_del_sockets(sioc_adapter_t *adapter, const sioc_adapter_opts_t *opts,
                               const char *const *rooms, size_t room_count)
{
    adapter->local->del_sockets(adapter->nsp, opts, rooms, room_count);
}

static void memory_disconnect_sockets(sioc_adapter_t *adapter, const sioc_adapter_opts_t *opts,
                                      int close)
{
    adapter->local->disconnect_sockets(adapter->nsp, opts, close);
}

static int memory_server_side_emit(sioc_adapter_t *adapter, json_t *data,
                                   sioc_server_side_ack_cb callback, void *callback_data)
{
    /* A single server has no peers: no answers to wait for, as Node's in-memory adapter. */
    if (callback != NULL) {
        json_t *none = json_array();
        callback(0, none, callback_data);
        json_decref(none);
    }
    return 0;
}

static int memory_server_count(sioc_adapter_t *adapter, sioc_server_count_cb callback, void *data)
{
    callback(1, data);
    return 0;
}

static void memory_destroy(sioc_adapter_t *adapter)
{
    free(adapter);
}

static const sioc_adapter_ops_t memory_adapter_ops = {
    .broadcast = memory_broadcast,
    .broadcast_with_ack = memory_broadcast_with_ack,
    .fetch_sockets = memory_fetch_sockets,
    .add_sockets = memory_add_sockets,
    .del_sockets = memory_del_sockets,
    .disconnect_sockets = memory_disconnect_sockets,
    .server_side_emit = memory_server_side_emit,
    .server_count = memory_server_count,
    .destroy = memory_destroy,
};

int sioc_memory_adapter_factory(sioc_namespace_t *nsp, const sioc_adapter_local_t *local,
                                void *data, sioc_adapter_t **out)
{
    sioc_adapter_t *adapter = calloc(1, sizeof(*adapter));
    if (adapter == NULL)
        return SIOC_ENOMEM;
    adapter->ops = &memory_adapter_ops;
    adapter->nsp = nsp;
    adapter->local = local;
    sioc__adapter_make_uid(adapter->uid, 6);
    *out = adapter;
    return 0;
}
