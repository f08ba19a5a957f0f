/* The local room index (socket.io-adapter's in-memory rooms and sids maps), which decides which
 * sockets of this server an operation selects, and the in-memory adapter of sioc_adapter.h built
 * on it (memory_adapter.c). Cluster adapters (redis_adapter.c) do their local part through the
 * Socket.IO layer's sioc_adapter_local_t, which uses this index. */
#ifndef SIOC_ADAPTER_ADAPTER_H
#define SIOC_ADAPTER_ADAPTER_H

#include <uthash.h>

#include "core/index.h"
#include "sioc.h"
#include "sioc_adapter.h"
#include "socketio/sio_parser.h"

typedef struct sioc__adapter_s sioc__adapter_t;
typedef struct sioc__room_s sioc__room_t;
typedef struct sioc__sio_recovery_s sioc__sio_recovery_t;
struct sioc__sio_encoded_s;

/* One (socket, room) pair, in the room's member list and in the socket's room set. */
typedef struct sioc__membership_s sioc__membership_t;
struct sioc__membership_s {
    sioc_socket_t *socket; /* NULL: a room's inline membership that no member uses */
    sioc__room_t *room;
    /* room->members in the order joined, next ending at NULL; the first member's prev is the
     * last member, so a join appends without a tail pointer in every room. */
    sioc__membership_t *prev, *next;
};

/* A room in one block with the membership of its first member: a room of one (the daemon's
 * user:{id}, a socket's own room in a cluster) is one allocation, not two (a 112- and a 48-byte
 * chunk before, 96 bytes now with a short name). Rooms are found through the adapter's index
 * (core/index.h: a slot instead of uthash's 56-byte handle) and listed in the order made, as
 * socket.io-adapter's Map. */
struct sioc__room_s {
    sioc__membership_t *members;
    sioc__room_t *previous, *next; /* adapter->first_room ... */
    uint32_t member_count;
    sioc__membership_t inline_member; /* a member's while its socket is not NULL */
    char name[];
};

/* The rooms of one socket in the order joined. An entry is a membership, or NULL for the room
 * named by the socket's id: no room exists for that one (Node has a room per socket, which cost
 * an idle socket about 1 KB); the namespace's socket table finds the socket by id. Two entries
 * live inline; more go to an array, and past SIOC__ROOM_SET_INDEXED entries an open-addressing
 * index by name keeps lookups O(1). */
#define SIOC__ROOM_SET_INLINE 2
#define SIOC__ROOM_SET_INDEXED 8
typedef struct sioc__room_set_s {
    /* The inline entries and the heap's pointers share their room (every socket has a set:
     * 32 bytes rather than 48, and the socket a smaller malloc class). */
    union {
        sioc__membership_t *inline_entries[SIOC__ROOM_SET_INLINE]; /* while capacity is 0 */
        struct {
            sioc__membership_t **heap;
            uint32_t *index; /* position + 1 by hash of the name, 0 = free; NULL when small */
        } spilled;           /* once capacity > 0 */
    } u;
    uint32_t count;
    uint32_t capacity;   /* of u.spilled.heap; 0 while the entries fit inline */
    uint32_t index_mask; /* slots - 1 */
} sioc__room_set_t;

typedef void (*sioc__adapter_visit_cb)(sioc_socket_t *socket, void *data);

/* The sockets and rooms of one namespace on this server: what every adapter's local part
 * works on. */
struct sioc__adapter_s {
    sioc_namespace_t *nsp;
    sioc__index_t rooms;                  /* by name */
    sioc__room_t *first_room, *last_room; /* in the order made */
    size_t own_rooms; /* sockets in the room of their id where no stored room has that name */
};

/* The room index for nsp; NULL on allocation failure. */
sioc__adapter_t *sioc__memory_adapter_new(sioc_namespace_t *nsp);
void sioc__memory_adapter_free(sioc__adapter_t *adapter);

/* Joining reports a new room and leaving an emptied one to the namespace's adapter
 * (room_created / room_deleted). */
int sioc__memory_adapter_join(sioc__adapter_t *adapter, sioc_socket_t *socket, const char *room);
void sioc__memory_adapter_leave(sioc__adapter_t *adapter, sioc_socket_t *socket, const char *room);
void sioc__memory_adapter_leave_all(sioc__adapter_t *adapter, sioc_socket_t *socket);
int sioc__memory_adapter_in_room(const sioc_socket_t *socket, const char *room);
/* The socket's rooms as a new JSON array, in the order joined. */
json_t *sioc__memory_adapter_socket_rooms(const sioc_socket_t *socket);
/* Frees what the set allocated (the socket has left every room). */
void sioc__room_set_free(sioc__room_set_t *set);
/* Calls visit for each connected socket opts selects (rooms union, minus except), each once;
 * returns how many. */
size_t sioc__memory_adapter_select(sioc__adapter_t *adapter, const sioc_adapter_opts_t *opts,
                                   sioc__adapter_visit_cb visit, void *data);
int sioc__memory_adapter_has_room(const sioc__adapter_t *adapter, const char *room);
/* How many rooms there are, each socket's own room included. */
size_t sioc__memory_adapter_room_count(const sioc__adapter_t *adapter);
/* How many sockets are in the room. */
size_t sioc__memory_adapter_room_size(const sioc__adapter_t *adapter, const char *room);
/* Every room name, as a new JSON array. */
json_t *sioc__memory_adapter_rooms(const sioc__adapter_t *adapter);
/* A random node or request id of length characters (as uid2) and a NUL; length <
 * SIOC_ADAPTER_UID_SIZE. */
void sioc__adapter_make_uid(char *out, size_t length);

/* The in-memory recovery store (memory_recovery.c), the default one; log entries and sessions
 * live window_ms. _free closes its timer: the memory goes in the close callback. */
sioc_recovery_store_t *sioc__memory_recovery_new(uv_loop_t *loop, uint32_t window_ms);
void sioc__memory_recovery_free(sioc_recovery_store_t *store);

#endif
