/* In-memory adapter: rooms as hash tables of members, each membership linked from both the
 * room and the socket so join, leave and "leave all" cost O(1) per room. */
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

static void mark_excepted(sioc__adapter_t *adapter, const sioc_broadcast_t *broadcast,
                          uint64_t mark)
{
    for (size_t i = 0; i < broadcast->except_count; i++) {
        sioc__room_t *room = find_room(adapter, broadcast->except[i]);
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

size_t sioc__memory_adapter_select(sioc__adapter_t *adapter, const sioc_broadcast_t *broadcast,
                                   sioc__adapter_visit_cb visit, void *data)
{
    /* A fresh mark per call: sockets stamped with it were excepted or already visited, so a
     * socket in several target rooms gets the packet once. */
    uint64_t mark = ++adapter->nsp->server->broadcast_generation;
    mark_excepted(adapter, broadcast, mark);
    size_t count = 0;
    if (broadcast->room_count == 0) {
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
    for (size_t i = 0; i < broadcast->room_count; i++) {
        sioc__room_t *room = find_room(adapter, broadcast->rooms[i]);
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

static size_t memory_broadcast(sioc__adapter_t *adapter, const sioc__sio_packet_t *packet,
                               const sioc__sio_encoded_t *encoded,
                               const sioc_broadcast_t *broadcast)
{
    send_context_t context = {encoded, (broadcast->flags & SIOC_BROADCAST_VOLATILE) != 0};
    return sioc__memory_adapter_select(adapter, broadcast, send_to_socket, &context);
}

static int memory_server_side_emit(sioc__adapter_t *adapter, const sioc__sio_packet_t *packet)
{
    /* A single server has no peers: nothing to do, as Node's in-memory adapter. */
    return 0;
}

static void memory_destroy(sioc__adapter_t *adapter)
{
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

static const sioc__adapter_ops_t memory_adapter_ops = {
    .join = sioc__memory_adapter_join,
    .leave = sioc__memory_adapter_leave,
    .leave_all = sioc__memory_adapter_leave_all,
    .select = sioc__memory_adapter_select,
    .broadcast = memory_broadcast,
    .server_side_emit = memory_server_side_emit,
    .destroy = memory_destroy,
};

sioc__adapter_t *sioc__memory_adapter_new(sioc_namespace_t *nsp)
{
    sioc__adapter_t *adapter = calloc(1, sizeof(*adapter));
    if (adapter == NULL)
        return NULL;
    adapter->ops = &memory_adapter_ops;
    adapter->nsp = nsp;
    return adapter;
}
