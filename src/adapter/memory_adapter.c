/* The local room index: rooms as lists of memberships, each membership linked from both the
 * room and the socket's room set, so join, leave and "leave all" cost O(1) per room. The room
 * named by a socket's id is not stored: the namespace's socket table stands for it. Then the
 * in-memory adapter, which does every operation's local part and nothing else. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "socketio/sio_internal.h"

/* ---- a socket's room set --------------------------------------------------------------------- */

static sioc__membership_t **entries(const sioc__room_set_t *set)
{
    return set->capacity != 0 ? set->u.spilled.heap : (sioc__membership_t **)set->u.inline_entries;
}

/* The index by name, or NULL (always while the entries are inline). */
static uint32_t *set_index(const sioc__room_set_t *set)
{
    return set->capacity != 0 ? set->u.spilled.index : NULL;
}

static const char *entry_name(const sioc_socket_t *socket, const sioc__membership_t *entry)
{
    return entry != NULL ? entry->room->name : socket->id;
}

static uint32_t name_hash(const char *name)
{
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
        hash = (hash ^ *p) * 16777619u;
    return hash;
}

static void index_put(const sioc_socket_t *socket, uint32_t position)
{
    const sioc__room_set_t *set = &socket->rooms;
    uint32_t *index = set_index(set);
    uint32_t slot = name_hash(entry_name(socket, entries(set)[position])) & set->index_mask;
    while (index[slot] != 0)
        slot = (slot + 1) & set->index_mask;
    index[slot] = position + 1;
}

/* Rebuilds the index for the current entries (at most half full), or drops it below the
 * threshold. SIOC_ENOMEM leaves the set without an index, which only makes lookups linear. */
static int index_rebuild(sioc_socket_t *socket)
{
    sioc__room_set_t *set = &socket->rooms;
    if (set->capacity == 0)
        return 0; /* inline: never more than SIOC__ROOM_SET_INLINE entries */
    free(set->u.spilled.index);
    set->u.spilled.index = NULL;
    if (set->count <= SIOC__ROOM_SET_INDEXED)
        return 0;
    uint32_t slots = 16;
    while (slots < set->count * 2)
        slots *= 2;
    uint32_t *index = calloc(slots, sizeof(*index));
    if (index == NULL)
        return SIOC_ENOMEM;
    set->u.spilled.index = index;
    set->index_mask = slots - 1;
    for (uint32_t i = 0; i < set->count; i++)
        index_put(socket, i);
    return 0;
}

/* The entry's position, or -1. */
static long set_find(const sioc_socket_t *socket, const char *name)
{
    const sioc__room_set_t *set = &socket->rooms;
    sioc__membership_t **items = entries(set);
    const uint32_t *index = set_index(set);
    if (index == NULL) {
        for (uint32_t i = 0; i < set->count; i++) {
            if (strcmp(entry_name(socket, items[i]), name) == 0)
                return i;
        }
        return -1;
    }
    for (uint32_t slot = name_hash(name) & set->index_mask; index[slot] != 0;
         slot = (slot + 1) & set->index_mask) {
        uint32_t position = index[slot] - 1;
        if (strcmp(entry_name(socket, items[position]), name) == 0)
            return position;
    }
    return -1;
}

static int set_grow(sioc__room_set_t *set)
{
    uint32_t capacity = set->capacity != 0 ? set->capacity * 2 : 2 * SIOC__ROOM_SET_INLINE;
    sioc__membership_t **heap =
        realloc(set->capacity != 0 ? set->u.spilled.heap : NULL, capacity * sizeof(*heap));
    if (heap == NULL)
        return SIOC_ENOMEM;
    if (set->capacity == 0) {
        /* The inline entries first: the heap's pointers take their place. */
        memcpy(heap, set->u.inline_entries, sizeof(set->u.inline_entries));
        set->u.spilled.index = NULL;
    }
    set->u.spilled.heap = heap;
    set->capacity = capacity;
    return 0;
}

static int set_append(sioc_socket_t *socket, sioc__membership_t *entry)
{
    sioc__room_set_t *set = &socket->rooms;
    uint32_t capacity = set->capacity != 0 ? set->capacity : SIOC__ROOM_SET_INLINE;
    if (set->count == capacity && set_grow(set) != 0)
        return SIOC_ENOMEM;
    entries(set)[set->count++] = entry;
    uint32_t *index = set_index(set);
    if (set->count == SIOC__ROOM_SET_INDEXED + 1 ||
        (index != NULL && set->count * 2 > set->index_mask + 1))
        index_rebuild(socket);
    else if (index != NULL)
        index_put(socket, set->count - 1);
    return 0;
}

/* Keeps the order joined (Node's Set): later entries move down one. */
static void set_remove_at(sioc_socket_t *socket, uint32_t position)
{
    sioc__room_set_t *set = &socket->rooms;
    sioc__membership_t **items = entries(set);
    memmove(items + position, items + position + 1, (set->count - position - 1) * sizeof(*items));
    set->count--;
    if (set_index(set) != NULL)
        index_rebuild(socket);
    if (set->capacity != 0 && set->count <= SIOC__ROOM_SET_INLINE) {
        /* No index at this count (index_rebuild dropped it): only the heap to give back. */
        sioc__membership_t **heap = set->u.spilled.heap;
        memcpy(set->u.inline_entries, heap, set->count * sizeof(*items));
        free(heap);
        set->capacity = 0;
    }
}

void sioc__room_set_free(sioc__room_set_t *set)
{
    if (set->capacity != 0) {
        free(set->u.spilled.heap);
        free(set->u.spilled.index);
    }
    memset(set, 0, sizeof(*set));
}

/* ---- rooms ----------------------------------------------------------------------------------- */

static sioc__room_t *find_room(const sioc__adapter_t *adapter, const char *name)
{
    return sioc__index_find(&adapter->rooms, name);
}

/* The connected socket whose id names this room and which is in it, or NULL. */
static sioc_socket_t *own_room_socket(const sioc__adapter_t *adapter, const char *name)
{
    sioc_socket_t *socket = sioc__index_find(&adapter->nsp->sockets_by_id, name);
    return socket != NULL && socket->in_own_room ? socket : NULL;
}

/* room_created / room_deleted for the cluster adapter (its dynamic subscriptions), once per
 * name whether the room is stored or stands for a socket. */
static void announce(sioc__adapter_t *adapter, const char *name, int created)
{
    sioc_adapter_t *cluster = adapter->nsp->adapter;
    if (cluster == NULL)
        return;
    if (created && cluster->ops->room_created != NULL)
        cluster->ops->room_created(cluster, name);
    else if (!created && cluster->ops->room_deleted != NULL)
        cluster->ops->room_deleted(cluster, name);
}

static sioc__room_t *find_or_create_room(sioc__adapter_t *adapter, const char *name)
{
    sioc__room_t *room = find_room(adapter, name);
    if (room != NULL)
        return room;
    size_t length = strlen(name);
    room = calloc(1, sizeof(*room) + length + 1);
    if (room == NULL)
        return NULL;
    memcpy(room->name, name, length + 1);
    if (sioc__index_add(&adapter->rooms, room) != 0) {
        free(room);
        return NULL;
    }
    room->previous = adapter->last_room;
    if (adapter->last_room != NULL)
        adapter->last_room->next = room;
    else
        adapter->first_room = room;
    adapter->last_room = room;
    if (own_room_socket(adapter, name) == NULL)
        announce(adapter, room->name, 1);
    else
        adapter->own_rooms--; /* the name is a stored room now */
    return room;
}

static void unlist_room(sioc__adapter_t *adapter, sioc__room_t *room)
{
    sioc__index_remove(&adapter->rooms, room);
    if (room->previous != NULL)
        room->previous->next = room->next;
    else
        adapter->first_room = room->next;
    if (room->next != NULL)
        room->next->previous = room->previous;
    else
        adapter->last_room = room->previous;
}

/* An emptied room goes; its name may live on as a socket's own room. */
static void delete_room(sioc__adapter_t *adapter, sioc__room_t *room)
{
    unlist_room(adapter, room);
    if (own_room_socket(adapter, room->name) == NULL)
        announce(adapter, room->name, 0);
    else
        adapter->own_rooms++;
    free(room);
}

/* The room's inline membership when no member uses it, else a new one; NULL when out of
 * memory. */
static sioc__membership_t *membership_new(sioc__room_t *room, sioc_socket_t *socket)
{
    sioc__membership_t *membership =
        room->inline_member.socket == NULL ? &room->inline_member : calloc(1, sizeof(*membership));
    if (membership != NULL) {
        membership->socket = socket;
        membership->room = room;
    }
    return membership;
}

static void membership_free(sioc__membership_t *membership)
{
    if (membership == &membership->room->inline_member)
        membership->socket = NULL; /* the room's block holds it: free for the next member */
    else
        free(membership);
}

static void link_membership(sioc__membership_t *membership)
{
    sioc__room_t *room = membership->room;
    sioc__membership_t *first = room->members;
    membership->next = NULL;
    if (first == NULL) {
        membership->prev = membership;
        room->members = membership;
    } else {
        membership->prev = first->prev;
        first->prev->next = membership;
        first->prev = membership;
    }
    room->member_count++;
}

static void unlink_membership(sioc__membership_t *membership)
{
    sioc__room_t *room = membership->room;
    sioc__membership_t *first = room->members;
    if (membership == first)
        room->members = membership->next;
    else
        membership->prev->next = membership->next;
    if (membership->next != NULL)
        membership->next->prev = membership->prev;
    else if (membership != first)
        first->prev = membership->prev; /* it was the last */
    room->member_count--;
}

static int join_own_room(sioc__adapter_t *adapter, sioc_socket_t *socket)
{
    if (set_append(socket, NULL) != 0)
        return SIOC_ENOMEM;
    socket->in_own_room = 1;
    if (find_room(adapter, socket->id) == NULL) {
        adapter->own_rooms++;
        announce(adapter, socket->id, 1);
    }
    return 0;
}

int sioc__memory_adapter_join(sioc__adapter_t *adapter, sioc_socket_t *socket,
                              const char *room_name)
{
    if (set_find(socket, room_name) >= 0)
        return 0;
    if (strcmp(room_name, socket->id) == 0)
        return join_own_room(adapter, socket);
    sioc__room_t *room = find_or_create_room(adapter, room_name);
    /* Before set_append: its index reads the room's name through the membership. */
    sioc__membership_t *membership = room != NULL ? membership_new(room, socket) : NULL;
    if (membership == NULL || set_append(socket, membership) != 0) {
        if (membership != NULL)
            membership_free(membership);
        if (room != NULL && room->members == NULL)
            delete_room(adapter, room);
        return SIOC_ENOMEM;
    }
    link_membership(membership);
    return 0;
}

static void remove_entry(sioc__adapter_t *adapter, sioc_socket_t *socket, uint32_t position)
{
    sioc__membership_t *membership = entries(&socket->rooms)[position];
    set_remove_at(socket, position);
    if (membership == NULL) {
        socket->in_own_room = 0;
        if (find_room(adapter, socket->id) == NULL) {
            adapter->own_rooms--;
            announce(adapter, socket->id, 0);
        }
        return;
    }
    sioc__room_t *room = membership->room;
    unlink_membership(membership);
    membership_free(membership);
    /* Empty rooms disappear, as in socket.io-adapter ("delete-room"). */
    if (room->members == NULL) {
        delete_room(adapter, room);
    }
}

void sioc__memory_adapter_leave(sioc__adapter_t *adapter, sioc_socket_t *socket,
                                const char *room_name)
{
    long position = set_find(socket, room_name);
    if (position >= 0)
        remove_entry(adapter, socket, (uint32_t)position);
}

void sioc__memory_adapter_leave_all(sioc__adapter_t *adapter, sioc_socket_t *socket)
{
    /* From the last: nothing moves. */
    while (socket->rooms.count > 0)
        remove_entry(adapter, socket, socket->rooms.count - 1);
    sioc__room_set_free(&socket->rooms);
}

int sioc__memory_adapter_in_room(const sioc_socket_t *socket, const char *room)
{
    return set_find(socket, room) >= 0;
}

json_t *sioc__memory_adapter_socket_rooms(const sioc_socket_t *socket)
{
    json_t *rooms = json_array();
    sioc__membership_t **items = entries(&socket->rooms);
    for (uint32_t i = 0; rooms != NULL && i < socket->rooms.count; i++)
        json_array_append_new(rooms, json_string(entry_name(socket, items[i])));
    return rooms;
}

/* ---- selecting sockets ----------------------------------------------------------------------- */

static void mark_excepted(sioc__adapter_t *adapter, const sioc_adapter_opts_t *opts, uint32_t mark)
{
    for (size_t i = 0; i < opts->except_count; i++) {
        sioc_socket_t *own = own_room_socket(adapter, opts->except[i]);
        if (own != NULL)
            own->except_mark = mark;
        sioc__room_t *room = find_room(adapter, opts->except[i]);
        for (sioc__membership_t *member = room ? room->members : NULL; member != NULL;
             member = member->next)
            member->socket->except_mark = mark;
    }
}

static int selectable(const sioc_socket_t *socket, uint32_t mark)
{
    return socket->state == SIO_SOCKET_CONNECTED && socket->except_mark != mark &&
           socket->seen_mark != mark;
}

static size_t visit_one(sioc_socket_t *socket, uint32_t mark, sioc__adapter_visit_cb visit,
                        void *data)
{
    if (!selectable(socket, mark))
        return 0;
    socket->seen_mark = mark;
    visit(socket, data);
    return 1;
}

/* Marks are 32 bits: long before they could come round again (a select in progress needs its
 * mark to differ from every socket's older ones), a select that no other is under clears
 * them all, every namespace's connected sockets and room members, once per 4 billion. */
#define MARKS_CLEARED_AT (UINT32_MAX - 65536u)

static void clear_marks_of(sioc_namespace_t *nsp)
{
    for (sioc_socket_t *socket = nsp->sockets; socket != NULL; socket = socket->next_in_nsp)
        socket->seen_mark = socket->except_mark = 0;
    for (sioc__room_t *room = nsp->index ? nsp->index->first_room : NULL; room != NULL;
         room = room->next)
        for (sioc__membership_t *member = room->members; member != NULL; member = member->next)
            member->socket->seen_mark = member->socket->except_mark = 0;
}

static uint32_t next_mark(sioc_server_t *server)
{
    if (server->select_depth == 0 && server->broadcast_generation >= MARKS_CLEARED_AT) {
        for (sioc_namespace_t *nsp = server->namespaces; nsp != NULL; nsp = nsp->hh.next)
            clear_marks_of(nsp);
        server->broadcast_generation = 0;
    }
    return ++server->broadcast_generation;
}

static size_t select_marked(sioc__adapter_t *adapter, const sioc_adapter_opts_t *opts,
                            uint32_t mark, sioc__adapter_visit_cb visit, void *data)
{
    mark_excepted(adapter, opts, mark);
    size_t count = 0;
    if (opts->room_count == 0) {
        /* visit may disconnect the socket: step first. */
        sioc_socket_t *next;
        for (sioc_socket_t *socket = adapter->nsp->sockets; socket != NULL; socket = next) {
            next = socket->next_in_nsp;
            count += visit_one(socket, mark, visit, data);
        }
        return count;
    }
    for (size_t i = 0; i < opts->room_count; i++) {
        sioc_socket_t *own = own_room_socket(adapter, opts->rooms[i]);
        if (own != NULL)
            count += visit_one(own, mark, visit, data);
        sioc__room_t *room = find_room(adapter, opts->rooms[i]);
        sioc__membership_t *member = room ? room->members : NULL;
        while (member != NULL) {
            /* visit may make the socket leave this room: step first. */
            sioc__membership_t *next = member->next;
            count += visit_one(member->socket, mark, visit, data);
            member = next;
        }
    }
    return count;
}

size_t sioc__memory_adapter_select(sioc__adapter_t *adapter, const sioc_adapter_opts_t *opts,
                                   sioc__adapter_visit_cb visit, void *data)
{
    /* A fresh mark per call: sockets stamped with it were excepted or already visited, so a
     * socket in several target rooms gets the packet once. */
    sioc_server_t *server = adapter->nsp->server;
    uint32_t mark = next_mark(server);
    server->select_depth++;
    size_t count = select_marked(adapter, opts, mark, visit, data);
    server->select_depth--;
    return count;
}

int sioc__memory_adapter_has_room(const sioc__adapter_t *adapter, const char *name)
{
    return find_room(adapter, name) != NULL || own_room_socket(adapter, name) != NULL;
}

size_t sioc__memory_adapter_room_count(const sioc__adapter_t *adapter)
{
    return adapter->rooms.count + adapter->own_rooms;
}

size_t sioc__memory_adapter_room_size(const sioc__adapter_t *adapter, const char *name)
{
    const sioc__room_t *room = find_room(adapter, name);
    return (room != NULL ? room->member_count : 0) + (own_room_socket(adapter, name) != NULL);
}

json_t *sioc__memory_adapter_rooms(const sioc__adapter_t *adapter)
{
    json_t *names = json_array();
    for (sioc__room_t *room = adapter->first_room; names != NULL && room != NULL; room = room->next)
        json_array_append_new(names, json_string(room->name));
    for (sioc_socket_t *socket = adapter->nsp->sockets; names != NULL && socket != NULL;
         socket = socket->next_in_nsp) {
        if (socket->in_own_room && find_room(adapter, socket->id) == NULL)
            json_array_append_new(names, json_string(socket->id));
    }
    return names;
}

void sioc__memory_adapter_free(sioc__adapter_t *adapter)
{
    if (adapter == NULL)
        return;
    while (adapter->first_room != NULL) {
        sioc__room_t *room = adapter->first_room;
        while (room->members != NULL) {
            sioc__membership_t *membership = room->members;
            sioc_socket_t *socket = membership->socket;
            long position = set_find(socket, room->name);
            if (position >= 0)
                set_remove_at(socket, (uint32_t)position);
            unlink_membership(membership);
            membership_free(membership);
        }
        unlist_room(adapter, room);
        free(room);
    }
    sioc__index_clear(&adapter->rooms);
    free(adapter);
}

sioc__adapter_t *sioc__memory_adapter_new(sioc_namespace_t *nsp)
{
    sioc__adapter_t *adapter = calloc(1, sizeof(*adapter));
    if (adapter == NULL)
        return NULL;
    adapter->nsp = nsp;
    sioc__index_init(&adapter->rooms, offsetof(sioc__room_t, name));
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
