#include "socketio/sio_recovery.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A recoverable broadcast waiting for its append (or for an earlier one). Until the append
 * call returns, packet and opts point at the caller's; if it must wait longer, own copies
 * replace them (own set) and it counts against the cap (bytes: their estimate). One written
 * early, at the cap, stays (without copies) until its append answers, so that the store's
 * outstanding appends stay within the cap too. */
typedef struct pending_s {
    sioc__sio_recovery_t *recovery; /* NULL once the server is gone */
    sioc_namespace_t *nsp;
    sioc_adapter_packet_t packet;
    sioc_adapter_opts_t opts;
    sioc_binary_t *attachments; /* own copies */
    char **names;               /* own copies of rooms, then except */
    int own;
    int counted; /* in pending_count / pending_bytes */
    int done;
    int error;
    int delivered;
    size_t bytes;
    size_t count;
    char offset[SIOC_RECOVERY_OFFSET_MAX + 1];
    struct pending_s *next;
    struct pending_s *early_prev, *early_next; /* in recovery->early */
} pending_t;

/* A CONNECT waiting for the store's restore. */
typedef struct restoring_s {
    sioc__sio_recovery_t *recovery; /* NULL once the server is gone */
    sioc__sio_client_t *client;     /* NULL once the client is gone */
    sioc_namespace_t *nsp;
    json_t *auth;
    sioc__sio_restore_cb done;
    sioc__deadline_t deadline; /* in recovery->restore_timeouts */
    struct restoring_s *next;
} restoring_t;

/* What a restored socket still has to receive, kept until sioc__sio_recovery_replay(): the
 * missed packets are encoded at restore time (the store's are borrowed for its callback). */
typedef struct sioc__sio_restored_s {
    json_t *rooms;
    sioc__sio_encoded_t *missed;
    size_t missed_count;
} restored_t;

struct sioc__sio_recovery_s {
    sioc_server_t *server;
    sioc_recovery_store_t *store;
    sioc_recovery_store_t *own_store; /* the in-memory default, freed here */
    uint32_t refresh_ms;
    uv_timer_t refresh;
    uv_check_t flush;
    int open_handles;
    pending_t *head;
    pending_t *tail;
    pending_t *appending; /* the pending whose append call is on the stack */
    pending_t *early;     /* written early at the cap, their appends not answered yet */
    size_t pending_count; /* counted pendings: waiting, or written early and not answered */
    size_t pending_bytes;
    restoring_t *restoring;
    sioc__deadline_list_t restore_timeouts;
    sioc_socket_t **dirty; /* sockets whose session is written at the end of this iteration */
    size_t dirty_count;
    size_t dirty_capacity;
};

/* ---- the log ------------------------------------------------------------------------------- */

static void drop_copies(pending_t *pending)
{
    if (!pending->own)
        return;
    json_decref(pending->packet.data);
    for (size_t i = 0; i < pending->packet.attachment_count; i++)
        free((void *)pending->attachments[i].data);
    free(pending->attachments);
    for (size_t i = 0; i < pending->opts.room_count + pending->opts.except_count; i++)
        free(pending->names[i]);
    free(pending->names);
    pending->own = 0;
}

static void free_pending(pending_t *pending)
{
    sioc__sio_recovery_t *recovery = pending->recovery;
    if (recovery != NULL && pending->counted) {
        recovery->pending_count--;
        recovery->pending_bytes -= pending->bytes;
    }
    drop_copies(pending);
    free(pending);
}

/* Delivers the completed packets at the head of the queue, in append order. */
static void deliver_ready(sioc__sio_recovery_t *recovery)
{
    while (recovery->head != NULL && recovery->head->done) {
        pending_t *pending = recovery->head;
        recovery->head = pending->next;
        if (recovery->head == NULL)
            recovery->tail = NULL;
        /* A failed append is still written, without an offset (Node does the same): the
         * connected sockets get it, one that is away misses it. */
        pending->count = sioc__sio_deliver(pending->nsp, &pending->packet, &pending->opts,
                                           pending->error == 0 ? pending->offset : NULL);
        if (pending == recovery->appending)
            pending->delivered = 1;
        else
            free_pending(pending);
    }
}

static void link_early(sioc__sio_recovery_t *recovery, pending_t *pending)
{
    pending->early_next = recovery->early;
    if (recovery->early != NULL)
        recovery->early->early_prev = pending;
    recovery->early = pending;
}

static void unlink_early(sioc__sio_recovery_t *recovery, pending_t *pending)
{
    if (pending->early_prev != NULL)
        pending->early_prev->early_next = pending->early_next;
    else if (recovery->early == pending)
        recovery->early = pending->early_next;
    if (pending->early_next != NULL)
        pending->early_next->early_prev = pending->early_prev;
    pending->early_prev = pending->early_next = NULL;
}

static void on_appended(int error, const char *offset, void *data)
{
    pending_t *pending = data;
    if (pending->recovery == NULL) {
        free_pending(pending);
        return;
    }
    if (pending->delivered) { /* written early, at the cap: only its slot was left */
        unlink_early(pending->recovery, pending);
        pending->done = 1;
        if (pending != pending->recovery->appending)
            free_pending(pending);
        return;
    }
    if (error == 0 && (offset == NULL || strlen(offset) > SIOC_RECOVERY_OFFSET_MAX))
        error = SIOC_EINVAL;
    pending->error = error;
    if (error == 0)
        strcpy(pending->offset, offset);
    pending->done = 1;
    deliver_ready(pending->recovery);
}

static char *copy_name(const char *name, int *failed)
{
    char *copy = strdup(name);
    if (copy == NULL)
        *failed = 1;
    return copy;
}

/* What a waiting packet holds, about: its arguments as JSON text (what every store writes),
 * attachments, room names. */
static size_t copies_bytes(const pending_t *pending)
{
    size_t bytes = sizeof(*pending) + json_dumpb(pending->packet.data, NULL, 0, JSON_COMPACT);
    for (size_t i = 0; i < pending->packet.attachment_count; i++)
        bytes += pending->packet.attachments[i].length;
    for (size_t i = 0; i < pending->opts.room_count + pending->opts.except_count; i++)
        bytes += strlen(pending->names[i]) + 1;
    return bytes;
}

/* Replaces the borrowed packet and opts with copies; SIOC_ENOMEM leaves it borrowed. */
static int own_copies(pending_t *pending)
{
    size_t attachment_count = pending->packet.attachment_count;
    size_t name_count = pending->opts.room_count + pending->opts.except_count;
    sioc_binary_t *attachments = calloc(attachment_count + 1, sizeof(*attachments));
    char **names = calloc(name_count + 1, sizeof(*names));
    int failed = attachments == NULL || names == NULL;
    for (size_t i = 0; !failed && i < attachment_count; i++) {
        size_t length = pending->packet.attachments[i].length;
        uint8_t *copy = malloc(length ? length : 1);
        if (copy == NULL) {
            failed = 1;
            break;
        }
        memcpy(copy, pending->packet.attachments[i].data, length);
        attachments[i].data = copy;
        attachments[i].length = length;
    }
    for (size_t i = 0; !failed && i < pending->opts.room_count; i++)
        names[i] = copy_name(pending->opts.rooms[i], &failed);
    for (size_t i = 0; !failed && i < pending->opts.except_count; i++)
        names[pending->opts.room_count + i] = copy_name(pending->opts.except[i], &failed);
    if (failed) {
        for (size_t i = 0; attachments != NULL && i < attachment_count; i++)
            free((void *)attachments[i].data);
        for (size_t i = 0; names != NULL && i < name_count; i++)
            free(names[i]);
        free(attachments);
        free(names);
        return SIOC_ENOMEM;
    }
    pending->attachments = attachments;
    pending->names = names;
    pending->packet.attachments = attachments;
    json_incref(pending->packet.data);
    pending->opts.rooms = (const char *const *)names;
    pending->opts.except = (const char *const *)names + pending->opts.room_count;
    pending->own = 1;
    pending->bytes = copies_bytes(pending);
    return 0;
}

static void unlink_pending(sioc__sio_recovery_t *recovery, pending_t *pending)
{
    pending_t *previous = NULL;
    for (pending_t *each = recovery->head; each != NULL; previous = each, each = each->next) {
        if (each != pending)
            continue;
        if (previous != NULL)
            previous->next = each->next;
        else
            recovery->head = each->next;
        if (recovery->tail == each)
            recovery->tail = previous;
        return;
    }
}

static int at_cap(const sioc__sio_recovery_t *recovery)
{
    const sioc_server_options_t *options = &recovery->server->options;
    return (options->recovery_max_pending != 0 &&
            recovery->pending_count >= options->recovery_max_pending) ||
           (options->recovery_max_pending_bytes != 0 &&
            recovery->pending_bytes >= options->recovery_max_pending_bytes);
}

/* The store is that far behind: everything waiting is written now, in order, those whose
 * append has not answered without an offset, then packet, which is not appended. Nothing
 * written later can overtake what waited. Returns packet's count. */
static size_t write_unlogged(sioc__sio_recovery_t *recovery, sioc_namespace_t *nsp,
                             const sioc_adapter_packet_t *packet, const sioc_adapter_opts_t *opts)
{
    while (recovery->head != NULL) {
        pending_t *pending = recovery->head;
        recovery->head = pending->next;
        if (recovery->head == NULL)
            recovery->tail = NULL;
        pending->next = NULL;
        int logged = pending->done && pending->error == 0;
        pending->count = sioc__sio_deliver(pending->nsp, &pending->packet, &pending->opts,
                                           logged ? pending->offset : NULL);
        pending->delivered = 1;
        if (!logged)
            recovery->server->stats.recovery_unlogged++;
        if (pending == recovery->appending)
            continue; /* its broadcast call frees it, or leaves it to its answer */
        drop_copies(pending);
        if (pending->done) {
            free_pending(pending);
        } else {
            link_early(recovery, pending);
        }
    }
    recovery->server->stats.recovery_unlogged++;
    return sioc__sio_deliver(nsp, packet, opts, NULL);
}

size_t sioc__sio_recovery_broadcast(sioc__sio_recovery_t *recovery, sioc_namespace_t *nsp,
                                    const sioc_adapter_packet_t *packet,
                                    const sioc_adapter_opts_t *opts)
{
    if (at_cap(recovery))
        return write_unlogged(recovery, nsp, packet, opts);
    pending_t *pending = calloc(1, sizeof(*pending));
    if (pending == NULL)
        return 0;
    pending->recovery = recovery;
    pending->nsp = nsp;
    pending->packet = *packet;
    pending->opts = *opts;
    if (recovery->tail != NULL)
        recovery->tail->next = pending;
    else
        recovery->head = pending;
    recovery->tail = pending;
    sioc_recovery_packet_t entry = {nsp->name, packet->data, packet->attachments,
                                    packet->attachment_count, opts};
    pending_t *outer = recovery->appending; /* a broadcast from inside a delivery */
    recovery->appending = pending;
    int rc = recovery->store->ops->append(recovery->store, &entry, on_appended, pending);
    if (rc != 0)
        on_appended(rc, NULL, pending);
    recovery->appending = outer;
    if (pending->delivered) {
        size_t count = pending->count;
        if (pending->done) {
            free_pending(pending);
        } else { /* written early by a nested broadcast at the cap: freed at its answer */
            link_early(recovery, pending);
        }
        return count;
    }
    if (own_copies(pending) != 0) {
        /* Nothing to wait with: it is dropped (its append, should it complete, is ignored). */
        unlink_pending(recovery, pending);
        pending->recovery = NULL;
        if (pending->done)
            free_pending(pending);
        deliver_ready(recovery);
        return 0;
    }
    pending->counted = 1;
    recovery->pending_count++;
    recovery->pending_bytes += pending->bytes;
    return 0;
}

size_t sioc__sio_recovery_pending(const sioc__sio_recovery_t *recovery)
{
    return recovery != NULL ? recovery->pending_count : 0;
}

/* ---- sessions ------------------------------------------------------------------------------ */

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

static uint32_t window_ms(const sioc__sio_recovery_t *recovery)
{
    return recovery->server->options.max_disconnection_duration_ms;
}

static void save_session(sioc__sio_recovery_t *recovery, sioc_socket_t *socket, int connected)
{
    json_t *rooms = sioc_socket_rooms(socket);
    json_t *data = sioc__sio_socket_data_copy(socket);
    if (rooms == NULL || data == NULL) {
        json_decref(rooms);
        json_decref(data);
        return;
    }
    /* A connected session outlives its next refresh: after a crash it still lasts the whole
     * window (and at most one refresh period more) from the last write. */
    uint64_t ttl = window_ms(recovery) + (connected ? recovery->refresh_ms : 0);
    sioc_recovery_session_t session = {sioc__sio_socket_pid(socket),
                                       socket->id,
                                       socket->nsp->name,
                                       rooms,
                                       data,
                                       ttl > UINT32_MAX ? UINT32_MAX : (uint32_t)ttl,
                                       connected};
    recovery->store->ops->save(recovery->store, &session);
    json_decref(rooms);
    json_decref(data);
}

static void on_flush(uv_check_t *check)
{
    sioc__sio_recovery_t *recovery = check->data;
    uv_check_stop(check);
    /* Saving calls nothing back into the Socket.IO layer, so the list holds still. */
    for (size_t i = 0; i < recovery->dirty_count; i++) {
        sioc_socket_t *socket = recovery->dirty[i];
        socket->session_dirty = 0;
        if (socket->state == SIO_SOCKET_CONNECTED && sioc__sio_socket_pid(socket)[0] != '\0')
            save_session(recovery, socket, 1);
        sioc__sio_socket_unref(socket);
    }
    recovery->dirty_count = 0;
}

void sioc__sio_recovery_touch(sioc__sio_recovery_t *recovery, sioc_socket_t *socket)
{
    if (!recovery->store->keeps_connected || socket->session_dirty ||
        socket->state != SIO_SOCKET_CONNECTED || sioc__sio_socket_pid(socket)[0] == '\0')
        return;
    if (recovery->dirty_count == recovery->dirty_capacity) {
        size_t capacity = recovery->dirty_capacity ? recovery->dirty_capacity * 2 : 64;
        sioc_socket_t **dirty = realloc(recovery->dirty, capacity * sizeof(*dirty));
        if (dirty == NULL)
            return; /* written at the next refresh instead */
        recovery->dirty = dirty;
        recovery->dirty_capacity = capacity;
    }
    sioc__sio_socket_ref(socket);
    socket->session_dirty = 1;
    recovery->dirty[recovery->dirty_count++] = socket;
    if (recovery->dirty_count == 1)
        uv_check_start(&recovery->flush, on_flush);
}

void sioc__sio_recovery_connected(sioc__sio_recovery_t *recovery, sioc_socket_t *socket)
{
    sioc__sio_recovery_touch(recovery, socket);
}

void sioc__sio_recovery_persist(sioc__sio_recovery_t *recovery, sioc_socket_t *socket,
                                const char *reason)
{
    if (sioc__sio_socket_pid(socket)[0] == '\0')
        return; /* a socket whose session another connection took over */
    if (recoverable(reason))
        save_session(recovery, socket, 0);
    else if (recovery->store->keeps_connected)
        recovery->store->ops->drop(recovery->store, sioc__sio_socket_pid(socket));
}

static void on_refresh(uv_timer_t *timer)
{
    sioc__sio_recovery_t *recovery = timer->data;
    sioc_namespace_t *nsp, *next_nsp;
    HASH_ITER(hh, recovery->server->namespaces, nsp, next_nsp)
    {
        for (sioc_socket_t *socket = nsp->sockets; socket != NULL; socket = socket->next_in_nsp) {
            if (sioc__sio_socket_pid(socket)[0] != '\0')
                save_session(recovery, socket, 1);
        }
    }
}

/* ---- restoring ----------------------------------------------------------------------------- */

static void free_restored(restored_t *restored)
{
    json_decref(restored->rooms);
    for (size_t i = 0; i < restored->missed_count; i++)
        sioc__sio_encoded_release(&restored->missed[i]);
    free(restored->missed);
    free(restored);
}

static int encode_missed(sioc_server_t *server, sioc_namespace_t *nsp,
                         const sioc_recovery_missed_t *missed, sioc__sio_encoded_t *out)
{
    sioc__sio_attachment_t attachments[SIO_MAX_PARTS];
    if (missed->attachment_count >= SIO_MAX_PARTS || !json_is_array(missed->data))
        return SIOC_EINVAL;
    for (size_t i = 0; i < missed->attachment_count; i++) {
        attachments[i].data = (uint8_t *)missed->attachments[i].data;
        attachments[i].length = missed->attachments[i].length;
    }
    sioc__sio_packet_t packet = {.type = SIOC_SIO_EVENT,
                                 .nsp = nsp->name,
                                 .id = SIOC_SIO_NO_ACK_ID,
                                 .data = json_copy(missed->data),
                                 .attachments = attachments,
                                 .attachment_count = missed->attachment_count};
    int rc =
        packet.data != NULL && json_array_append_new(packet.data, json_string(missed->offset)) == 0
            ? sioc__sio_encode_for_server(server, &packet, out)
            : SIOC_ENOMEM;
    json_decref(packet.data);
    return rc;
}

static restored_t *restored_new(sioc_server_t *server, sioc_namespace_t *nsp,
                                const sioc_recovery_session_t *session,
                                const sioc_recovery_missed_t *missed, size_t count)
{
    restored_t *restored = calloc(1, sizeof(*restored));
    if (restored == NULL)
        return NULL;
    restored->rooms = json_deep_copy(session->rooms);
    restored->missed = calloc(count + 1, sizeof(*restored->missed));
    if (restored->rooms == NULL || restored->missed == NULL) {
        free_restored(restored);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        /* A packet the parser cannot encode (a store's garbage) is skipped, not fatal. */
        if (encode_missed(server, nsp, &missed[i], &restored->missed[restored->missed_count]) == 0)
            restored->missed_count++;
    }
    return restored;
}

static int valid_session(const sioc_recovery_session_t *session)
{
    return session->sid != NULL && strlen(session->sid) == SIOC_ID_LENGTH && session->pid != NULL &&
           strlen(session->pid) == SIOC_ID_LENGTH && json_is_array(session->rooms);
}

static sioc_socket_t *restored_socket(sioc__sio_recovery_t *recovery, restoring_t *restoring,
                                      const sioc_recovery_session_t *session,
                                      const sioc_recovery_missed_t *missed, size_t count)
{
    if (session == NULL || !valid_session(session))
        return NULL;
    restored_t *restored = restored_new(recovery->server, restoring->nsp, session, missed, count);
    /* valid_session: the sid and the pid are 20 characters. */
    sioc_socket_t *socket = restored
                                ? sioc__sio_socket_new(restoring->client, restoring->nsp,
                                                       restoring->auth, session->sid, session->pid)
                                : NULL;
    sioc__sio_socket_rare_t *rare = socket != NULL ? sioc__sio_socket_rare(socket) : NULL;
    if (rare == NULL) {
        if (socket != NULL)
            sioc__sio_socket_unref(socket);
        if (restored != NULL)
            free_restored(restored);
        return NULL;
    }
    rare->data = session->data != NULL ? json_deep_copy(session->data) : json_null();
    if (rare->data == NULL)
        rare->data = json_null();
    socket->recovered = 1;
    rare->restored = restored;
    return socket;
}

static void unlink_restoring(sioc__sio_recovery_t *recovery, restoring_t *restoring)
{
    restoring_t **link = &recovery->restoring;
    while (*link != NULL && *link != restoring)
        link = &(*link)->next;
    if (*link != NULL)
        *link = restoring->next;
}

static void on_restored(int error, const sioc_recovery_session_t *session,
                        const sioc_recovery_missed_t *missed, size_t count, void *data)
{
    restoring_t *restoring = data;
    sioc__sio_recovery_t *recovery = restoring->recovery;
    sioc__deadline_disarm(&restoring->deadline);
    if (recovery != NULL)
        unlink_restoring(recovery, restoring);
    if (recovery != NULL && restoring->client == NULL && error == 0 && session != NULL &&
        valid_session(session)) {
        /* The client left while the store answered: the session goes back for its next try. */
        sioc_recovery_session_t back = *session;
        back.ttl_ms = window_ms(recovery);
        back.connected = 0;
        recovery->store->ops->save(recovery->store, &back);
    } else if (recovery != NULL && restoring->client != NULL) {
        sioc_socket_t *socket =
            error == 0 ? restored_socket(recovery, restoring, session, missed, count) : NULL;
        restoring->done(restoring->client, restoring->nsp, restoring->auth, socket);
    }
    json_decref(restoring->auth);
    free(restoring);
}

/* A store that does not answer (Redis paused, a lost reply) must not leave the client waiting:
 * socket.io-client has no CONNECT timeout. Half the connect timeout leaves the fresh socket
 * the other half for its middlewares. */
static uint64_t restore_bound_ms(const sioc__sio_recovery_t *recovery)
{
    uint64_t bound = recovery->server->options.connect_timeout_ms / 2;
    return bound > 0 ? bound : 1;
}

static void on_restore_timeout(sioc__deadline_list_t *list, sioc__deadline_t *deadline)
{
    (void)list;
    restoring_t *restoring = (restoring_t *)((char *)deadline - offsetof(restoring_t, deadline));
    sioc__sio_client_t *client = restoring->client;
    if (client == NULL)
        return;
    /* It stays listed: its late answer then finds no client and gives the session back. */
    restoring->client = NULL;
    restoring->done(client, restoring->nsp, restoring->auth, NULL);
}

int sioc__sio_recovery_restore(sioc__sio_recovery_t *recovery, sioc__sio_client_t *client,
                               sioc_namespace_t *nsp, json_t *auth, sioc__sio_restore_cb done)
{
    json_t *pid_value = json_object_get(auth, "pid");
    json_t *offset_value = json_object_get(auth, "offset");
    const char *pid = json_string_value(pid_value);
    const char *offset = json_string_value(offset_value);
    /* A NUL inside would make "pid\u0000" name the session of "pid": a fresh socket instead. */
    if (pid == NULL || offset == NULL || strlen(pid) != json_string_length(pid_value) ||
        strlen(offset) != json_string_length(offset_value))
        return 0;
    restoring_t *restoring = calloc(1, sizeof(*restoring));
    if (restoring == NULL)
        return 0;
    restoring->recovery = recovery;
    restoring->client = client;
    restoring->nsp = nsp;
    restoring->auth = json_incref(auth);
    restoring->done = done;
    restoring->next = recovery->restoring;
    recovery->restoring = restoring;
    uint64_t bound = restore_bound_ms(recovery);
    if (recovery->restore_timeouts.delay_ms != bound)
        sioc__deadline_list_set_delay(&recovery->restore_timeouts, bound);
    sioc__deadline_arm(&recovery->restore_timeouts, &restoring->deadline);
    int rc = recovery->store->ops->restore(recovery->store, pid, offset, nsp->name, on_restored,
                                           restoring);
    if (rc != 0)
        on_restored(rc, NULL, NULL, 0, restoring);
    return 1;
}

void sioc__sio_recovery_forget_client(sioc__sio_recovery_t *recovery, sioc__sio_client_t *client)
{
    for (restoring_t *restoring = recovery->restoring; restoring != NULL;
         restoring = restoring->next) {
        if (restoring->client == client)
            restoring->client = NULL;
    }
}

void sioc__sio_recovery_replay(sioc_socket_t *socket)
{
    restored_t *restored = socket->rare != NULL ? socket->rare->restored : NULL;
    if (restored == NULL)
        return;
    socket->rare->restored = NULL;
    size_t index;
    json_t *room;
    json_array_foreach(restored->rooms, index, room)
    {
        if (json_is_string(room))
            sioc_socket_join(socket, json_string_value(room));
    }
    for (size_t i = 0; i < restored->missed_count && socket->client != NULL; i++)
        sioc__sio_client_send(socket->client, &restored->missed[i], 0);
    free_restored(restored);
}

void sioc__sio_recovery_release(sioc_socket_t *socket)
{
    if (socket->rare == NULL)
        return;
    if (socket->rare->restored != NULL)
        free_restored(socket->rare->restored);
    socket->rare->restored = NULL;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

sioc__sio_recovery_t *sioc__sio_recovery_new(sioc_server_t *server)
{
    sioc__sio_recovery_t *recovery = calloc(1, sizeof(*recovery));
    if (recovery == NULL)
        return NULL;
    recovery->server = server;
    recovery->store = server->options.recovery_store;
    if (recovery->store == NULL) {
        recovery->store = recovery->own_store =
            sioc__memory_recovery_new(server->loop, server->options.max_disconnection_duration_ms);
        if (recovery->store == NULL) {
            free(recovery);
            return NULL;
        }
    }
    uint32_t refresh = server->options.recovery_refresh_ms;
    if (refresh == 0) {
        refresh = server->options.max_disconnection_duration_ms / 4;
        refresh = refresh > 30000 ? 30000 : refresh < 100 ? 100 : refresh;
    }
    recovery->refresh_ms = refresh;
    if (sioc__deadline_list_init(server->loop, &recovery->restore_timeouts,
                                 restore_bound_ms(recovery), on_restore_timeout) != 0) {
        sioc__memory_recovery_free(recovery->own_store);
        free(recovery);
        return NULL;
    }
    uv_timer_init(server->loop, &recovery->refresh);
    uv_check_init(server->loop, &recovery->flush);
    recovery->refresh.data = recovery->flush.data = recovery;
    recovery->open_handles = 3;
    uv_unref((uv_handle_t *)&recovery->restore_timeouts.timer);
    if (recovery->store->keeps_connected) {
        uv_timer_start(&recovery->refresh, on_refresh, refresh, refresh);
        uv_unref((uv_handle_t *)&recovery->refresh);
    }
    uv_unref((uv_handle_t *)&recovery->flush);
    return recovery;
}

sioc_recovery_store_t *sioc__sio_recovery_store(const sioc__sio_recovery_t *recovery)
{
    return recovery != NULL ? recovery->store : NULL;
}

void sioc__sio_recovery_stop(sioc__sio_recovery_t *recovery)
{
    if (recovery == NULL)
        return;
    uv_timer_stop(&recovery->refresh);
}

static void on_handle_closed(uv_handle_t *handle)
{
    sioc__sio_recovery_t *recovery = handle->data;
    if (--recovery->open_handles == 0)
        free(recovery);
}

void sioc__sio_recovery_free(sioc__sio_recovery_t *recovery)
{
    if (recovery == NULL)
        return;
    /* Appends and restores the store has not answered free themselves when it does. */
    while (recovery->head != NULL) {
        pending_t *pending = recovery->head;
        recovery->head = pending->next;
        pending->recovery = NULL;
        if (pending->done)
            free_pending(pending);
    }
    for (pending_t *pending = recovery->early; pending != NULL; pending = pending->early_next)
        pending->recovery = NULL;
    for (restoring_t *restoring = recovery->restoring; restoring != NULL;
         restoring = restoring->next) {
        sioc__deadline_disarm(&restoring->deadline);
        restoring->recovery = NULL;
    }
    for (size_t i = 0; i < recovery->dirty_count; i++)
        sioc__sio_socket_unref(recovery->dirty[i]);
    free(recovery->dirty);
    sioc__memory_recovery_free(recovery->own_store);
    uv_close((uv_handle_t *)&recovery->refresh, on_handle_closed);
    uv_close((uv_handle_t *)&recovery->flush, on_handle_closed);
    /* Its timer no longer fires once closing: data can name the recovery for on_handle_closed. */
    recovery->restore_timeouts.timer.data = recovery;
    sioc__deadline_list_close(&recovery->restore_timeouts, on_handle_closed);
}
