/* The adapter interface, with socket.io-adapter's semantics: it owns room membership and
 * decides which sockets a broadcast reaches. The in-memory adapter (memory_adapter.c) is the
 * default; a cluster adapter (Redis) implements the same operations by doing the local part
 * through the in-memory functions and publishing the rest, so the Socket.IO layer never changes.
 *
 * Operations that may need other servers (broadcast with acks, fetch_sockets) answer through
 * callbacks; the in-memory adapter calls them before returning. */
#ifndef SIOC_ADAPTER_ADAPTER_H
#define SIOC_ADAPTER_ADAPTER_H

#include <uthash.h>

#include "sioc.h"
#include "socketio/sio_parser.h"

typedef struct sioc__adapter_s sioc__adapter_t;
typedef struct sioc__room_s sioc__room_t;
typedef struct sioc__sio_recovery_s sioc__sio_recovery_t;
struct sioc__sio_encoded_s;

/* One (socket, room) pair, in the room's member table and in the socket's room table. */
typedef struct sioc__membership_s {
    sioc_socket_t *socket;
    sioc__room_t *room;
    UT_hash_handle hh_room;   /* room->members, keyed by the socket pointer */
    UT_hash_handle hh_socket; /* socket->memberships, keyed by the room name */
} sioc__membership_t;

struct sioc__room_s {
    char *name;
    sioc__membership_t *members;
    UT_hash_handle hh;
};

typedef void (*sioc__adapter_visit_cb)(sioc_socket_t *socket, void *data);

typedef struct sioc__adapter_ops_s {
    int (*join)(sioc__adapter_t *adapter, sioc_socket_t *socket, const char *room);
    void (*leave)(sioc__adapter_t *adapter, sioc_socket_t *socket, const char *room);
    void (*leave_all)(sioc__adapter_t *adapter, sioc_socket_t *socket);
    /* Calls visit for each local socket the broadcast selects (rooms union, minus except);
     * returns how many. */
    size_t (*select)(sioc__adapter_t *adapter, const sioc_broadcast_t *broadcast,
                     sioc__adapter_visit_cb visit, void *data);
    /* Delivers an encoded packet (packet is its decoded form, for adapters that forward it). */
    size_t (*broadcast)(sioc__adapter_t *adapter, const sioc__sio_packet_t *packet,
                        const struct sioc__sio_encoded_s *encoded,
                        const sioc_broadcast_t *broadcast);
    /* Packets for other servers only (serverSideEmit); the in-memory adapter has none. */
    int (*server_side_emit)(sioc__adapter_t *adapter, const sioc__sio_packet_t *packet);
    void (*destroy)(sioc__adapter_t *adapter);
} sioc__adapter_ops_t;

struct sioc__adapter_s {
    const sioc__adapter_ops_t *ops;
    sioc_namespace_t *nsp;
    sioc__room_t *rooms; /* by name */
};

/* The in-memory adapter for nsp; NULL on allocation failure. */
sioc__adapter_t *sioc__memory_adapter_new(sioc_namespace_t *nsp);

/* In-memory primitives, for cluster adapters that extend it. */
int sioc__memory_adapter_join(sioc__adapter_t *adapter, sioc_socket_t *socket, const char *room);
void sioc__memory_adapter_leave(sioc__adapter_t *adapter, sioc_socket_t *socket, const char *room);
void sioc__memory_adapter_leave_all(sioc__adapter_t *adapter, sioc_socket_t *socket);
size_t sioc__memory_adapter_select(sioc__adapter_t *adapter, const sioc_broadcast_t *broadcast,
                                   sioc__adapter_visit_cb visit, void *data);

#endif
