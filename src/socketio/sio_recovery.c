#include "socketio/sio_recovery.h"

#include <stdlib.h>
#include <string.h>

typedef struct kept_packet_s {
    char offset[SIOC_ID_LENGTH + 1];
    uint64_t time_ms;
    sioc_namespace_t *nsp;
    json_t *rooms;  /* array of names; empty = the whole namespace */
    json_t *except; /* array of names */
    sioc__sio_encoded_t encoded;
    struct kept_packet_s *next;
    UT_hash_handle hh;
} kept_packet_t;

typedef struct session_s {
    char pid[SIOC_ID_LENGTH + 1];
    char sid[SIOC_ID_LENGTH + 1];
    sioc_namespace_t *nsp;
    json_t *rooms;
    json_t *data;
    uint64_t disconnected_ms;
    UT_hash_handle hh;
} session_t;

/* What a restored socket still has to receive, kept until sioc__sio_recovery_replay(). */
typedef struct restored_s {
    sioc_socket_t *socket;
    json_t *rooms;
    char (*missed)[SIOC_ID_LENGTH + 1]; /* offsets: a packet may expire before the replay */
    size_t missed_count;
    struct restored_s *next;
} restored_t;

struct sioc__sio_recovery_s {
    sioc_server_t *server;
    uv_timer_t expiry;
    kept_packet_t *oldest;
    kept_packet_t *newest;
    kept_packet_t *by_offset;
    session_t *sessions;
    restored_t *restored;
    char last_offset[SIOC_ID_LENGTH + 1];
};

static uint64_t window_ms(const sioc__sio_recovery_t *recovery)
{
    return recovery->server->options.max_disconnection_duration_ms;
}

static void free_packet(kept_packet_t *packet)
{
    sioc__sio_encoded_release(&packet->encoded);
    json_decref(packet->rooms);
    json_decref(packet->except);
    free(packet);
}

static void free_session(session_t *session)
{
    json_decref(session->rooms);
    json_decref(session->data);
    free(session);
}

static void expire(sioc__sio_recovery_t *recovery)
{
    uint64_t now = uv_now(recovery->server->loop);
    uint64_t window = window_ms(recovery);
    while (recovery->oldest != NULL && recovery->oldest->time_ms + window < now) {
        kept_packet_t *packet = recovery->oldest;
        recovery->oldest = packet->next;
        if (recovery->oldest == NULL)
            recovery->newest = NULL;
        HASH_DEL(recovery->by_offset, packet);
        free_packet(packet);
    }
    session_t *session, *next;
    HASH_ITER(hh, recovery->sessions, session, next)
    {
        if (session->disconnected_ms + window < now) {
            HASH_DEL(recovery->sessions, session);
            free_session(session);
        }
    }
}

static void on_expiry(uv_timer_t *timer)
{
    expire(timer->data);
}

static void free_restored(restored_t *restored)
{
    json_decref(restored->rooms);
    free(restored->missed);
    free(restored);
}

sioc__sio_recovery_t *sioc__sio_recovery_new(sioc_server_t *server)
{
    sioc__sio_recovery_t *recovery = calloc(1, sizeof(*recovery));
    if (recovery == NULL)
        return NULL;
    recovery->server = server;
    uv_timer_init(server->loop, &recovery->expiry);
    recovery->expiry.data = recovery;
    uint64_t period = server->options.max_disconnection_duration_ms / 4 + 1;
    uv_timer_start(&recovery->expiry, on_expiry, period, period);
    uv_unref((uv_handle_t *)&recovery->expiry);
    return recovery;
}

static void on_expiry_closed(uv_handle_t *handle)
{
    sioc__sio_recovery_t *recovery = handle->data;
    recovery->expiry.data = NULL; /* marks the timer as released for sioc__sio_recovery_free */
    free(recovery);
}

void sioc__sio_recovery_stop(sioc__sio_recovery_t *recovery)
{
    if (recovery != NULL)
        uv_timer_stop(&recovery->expiry);
}

void sioc__sio_recovery_free(sioc__sio_recovery_t *recovery)
{
    if (recovery == NULL)
        return;
    while (recovery->oldest != NULL) {
        kept_packet_t *packet = recovery->oldest;
        recovery->oldest = packet->next;
        HASH_DEL(recovery->by_offset, packet);
        free_packet(packet);
    }
    session_t *session, *next;
    HASH_ITER(hh, recovery->sessions, session, next)
    {
        HASH_DEL(recovery->sessions, session);
        free_session(session);
    }
    /* Restored sockets whose middleware never finished. */
    while (recovery->restored != NULL) {
        restored_t *restored = recovery->restored;
        recovery->restored = restored->next;
        free_restored(restored);
    }
    uv_close((uv_handle_t *)&recovery->expiry, on_expiry_closed);
}

int sioc__sio_recovery_add_offset(sioc__sio_recovery_t *recovery, sioc__sio_packet_t *packet)
{
    if (sioc__random_id(recovery->last_offset) != 0)
        return SIOC_ENOMEM;
    return json_array_append_new(packet->data, json_string(recovery->last_offset)) == 0
               ? 0
               : SIOC_ENOMEM;
}

static json_t *names_array(const char *const *names, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < count; i++)
        json_array_append_new(array, json_string(names[i]));
    return array;
}

void sioc__sio_recovery_store(sioc__sio_recovery_t *recovery, sioc_namespace_t *nsp,
                              const sioc_adapter_opts_t *opts, const sioc__sio_encoded_t *encoded)
{
    kept_packet_t *packet = calloc(1, sizeof(*packet));
    if (packet == NULL)
        return;
    memcpy(packet->offset, recovery->last_offset, sizeof(packet->offset));
    packet->time_ms = uv_now(recovery->server->loop);
    packet->nsp = nsp;
    packet->rooms = names_array(opts->rooms, opts->room_count);
    packet->except = names_array(opts->except, opts->except_count);
    for (size_t i = 0; i < encoded->count; i++)
        packet->encoded.parts[i] = sioc__buffer_ref(encoded->parts[i]);
    packet->encoded.count = encoded->count;
    if (recovery->newest != NULL)
        recovery->newest->next = packet;
    else
        recovery->oldest = packet;
    recovery->newest = packet;
    HASH_ADD_STR(recovery->by_offset, offset, packet);
    expire(recovery);
}

static int recoverable(const char *reason)
{
    static const char *const reasons[] = {"transport error",      "transport close",
                                          "forced close",         "ping timeout",
                                          "server shutting down", "forced server close"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (strcmp(reason, reasons[i]) == 0)
            return 1;
    }
    return 0;
}

void sioc__sio_recovery_persist(sioc__sio_recovery_t *recovery, sioc_socket_t *socket,
                                const char *reason)
{
    if (!recoverable(reason) || socket->pid[0] == '\0')
        return;
    session_t *session = calloc(1, sizeof(*session));
    if (session == NULL)
        return;
    memcpy(session->pid, socket->pid, sizeof(session->pid));
    memcpy(session->sid, socket->id, sizeof(session->sid));
    session->nsp = socket->nsp;
    session->rooms = sioc_socket_rooms(socket);
    session->data = json_incref(socket->data);
    session->disconnected_ms = uv_now(recovery->server->loop);
    session_t *previous = NULL;
    HASH_FIND_STR(recovery->sessions, session->pid, previous);
    if (previous != NULL) {
        HASH_DEL(recovery->sessions, previous);
        free_session(previous);
    }
    HASH_ADD_STR(recovery->sessions, pid, session);
}

static int array_has(json_t *array, const char *name)
{
    size_t index;
    json_t *value;
    json_array_foreach(array, index, value)
    {
        if (strcmp(json_string_value(value), name) == 0)
            return 1;
    }
    return 0;
}

/* socket.io-adapter's shouldIncludePacket(): a packet for the whole namespace or one of the
 * session's rooms, and none of the session's rooms excepted. */
static int should_include(const session_t *session, const kept_packet_t *packet)
{
    if (packet->nsp != session->nsp)
        return 0;
    int included = json_array_size(packet->rooms) == 0;
    size_t index;
    json_t *room;
    json_array_foreach(session->rooms, index, room)
    {
        if (array_has(packet->except, json_string_value(room)))
            return 0;
        if (array_has(packet->rooms, json_string_value(room)))
            included = 1;
    }
    return included;
}

static restored_t *collect_missed(sioc__sio_recovery_t *recovery, session_t *session,
                                  kept_packet_t *from)
{
    restored_t *restored = calloc(1, sizeof(*restored));
    if (restored == NULL)
        return NULL;
    size_t capacity = 0;
    for (kept_packet_t *packet = from->next; packet != NULL; packet = packet->next) {
        if (!should_include(session, packet))
            continue;
        if (restored->missed_count == capacity) {
            capacity = capacity ? capacity * 2 : 16;
            void *missed = realloc(restored->missed, capacity * sizeof(*restored->missed));
            if (missed == NULL)
                break;
            restored->missed = missed;
        }
        memcpy(restored->missed[restored->missed_count++], packet->offset, SIOC_ID_LENGTH + 1);
    }
    return restored;
}

sioc_socket_t *sioc__sio_recovery_restore(sioc__sio_recovery_t *recovery,
                                          sioc__sio_client_t *client, sioc_namespace_t *nsp,
                                          json_t *auth)
{
    const char *pid = json_string_value(json_object_get(auth, "pid"));
    const char *offset = json_string_value(json_object_get(auth, "offset"));
    if (pid == NULL || offset == NULL)
        return NULL;
    expire(recovery);
    session_t *session = NULL;
    HASH_FIND_STR(recovery->sessions, pid, session);
    kept_packet_t *from = NULL;
    HASH_FIND_STR(recovery->by_offset, offset, from);
    if (session == NULL || from == NULL || session->nsp != nsp)
        return NULL;
    restored_t *restored = collect_missed(recovery, session, from);
    sioc_socket_t *socket = restored ? sioc__sio_socket_new(client, nsp, auth) : NULL;
    if (socket == NULL) {
        free(restored);
        return NULL;
    }
    memcpy(socket->id, session->sid, sizeof(socket->id));
    memcpy(socket->pid, session->pid, sizeof(socket->pid));
    json_decref(socket->data);
    socket->data = json_incref(session->data);
    socket->recovered = 1;
    restored->socket = socket;
    restored->rooms = json_incref(session->rooms);
    restored->next = recovery->restored;
    recovery->restored = restored;
    HASH_DEL(recovery->sessions, session);
    free_session(session);
    return socket;
}

void sioc__sio_recovery_replay(sioc__sio_recovery_t *recovery, sioc_socket_t *socket)
{
    restored_t **link = &recovery->restored;
    while (*link != NULL && (*link)->socket != socket)
        link = &(*link)->next;
    restored_t *restored = *link;
    if (restored == NULL)
        return;
    *link = restored->next;
    size_t index;
    json_t *room;
    json_array_foreach(restored->rooms, index, room)
    {
        sioc_socket_join(socket, json_string_value(room));
    }
    /* Packets are replayed as they were sent; one that expired while middleware ran is gone. */
    for (size_t i = 0; i < restored->missed_count; i++) {
        kept_packet_t *packet = NULL;
        HASH_FIND_STR(recovery->by_offset, restored->missed[i], packet);
        if (packet != NULL && socket->client != NULL)
            sioc__sio_client_send(socket->client, &packet->encoded, 0);
    }
    free_restored(restored);
}
