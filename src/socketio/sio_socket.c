/* Sockets: one per (connection, namespace). Life cycle, incoming events and acknowledgements,
 * emitting to one socket, rooms. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socketio/sio_internal.h"
#include "socketio/sio_recovery.h"

/* Bytes of the socket's id with its NUL. Node gives an EIO3 client's socket the Engine.IO id
 * ("<namespace>#<id>" outside "/"); others get an id of their own, as the Engine.IO id is a
 * secret. Exact, since the pid is found after the id's NUL. */
static size_t id_size(sioc__sio_client_t *client, const sioc_namespace_t *nsp)
{
    if (sioc_eio_socket_protocol(client->eio) != 3)
        return SIOC_ID_LENGTH + 1;
    size_t engine = strlen(sioc_eio_socket_id(client->eio));
    return strcmp(nsp->name, "/") == 0 ? engine + 1 : strlen(nsp->name) + engine + 2;
}

/* Returns 0 or -1. */
static int make_id(sioc__sio_client_t *client, sioc_namespace_t *nsp, char *id, size_t size)
{
    if (sioc_eio_socket_protocol(client->eio) != 3)
        return sioc__random_id(id);
    const char *engine_id = sioc_eio_socket_id(client->eio);
    if (strcmp(nsp->name, "/") == 0)
        snprintf(id, size, "%s", engine_id);
    else
        snprintf(id, size, "%s#%s", nsp->name, engine_id);
    return 0;
}

static size_t pid_size(const sioc_server_t *server)
{
    return server->recovery != NULL ? SIOC_ID_LENGTH + 1 : 1;
}

static const char *auth_text(const sioc_socket_t *socket)
{
    const sioc__sio_socket_rare_t *rare = socket->rare;
    return rare != NULL && rare->auth_is_text ? rare->auth.text : NULL;
}

static json_t *auth_kept(const sioc_socket_t *socket)
{
    const sioc__sio_socket_rare_t *rare = socket->rare;
    return rare != NULL && !rare->auth_is_text ? rare->auth.object : NULL;
}

/* The rare block goes once nothing is left in it: the chat driver takes socket.data back into
 * its own record right after its middleware wrote it, which left 56 bytes per socket. */
static void rare_drop_if_empty(sioc_socket_t *socket)
{
    const sioc__sio_socket_rare_t *rare = socket->rare;
    if (rare == NULL || rare->handshake != NULL || auth_text(socket) != NULL ||
        auth_kept(socket) != NULL || rare->data != NULL || rare->restored != NULL ||
        rare->on_error.callback != NULL || rare->use_count > 0 || rare->acks != NULL)
        return;
    free(socket->rare);
    socket->rare = NULL;
}

sioc__sio_socket_rare_t *sioc__sio_socket_rare(sioc_socket_t *socket)
{
    if (socket->rare == NULL)
        socket->rare = calloc(1, sizeof(*socket->rare));
    return socket->rare;
}

/* The CONNECT's auth into the socket's rare block as compact JSON text in a block of its own
 * (nothing for none or {}): a JWT's auth object took about 470 bytes with its string, the text a
 * third of it, and a program done with it can give the text back (sioc_socket_auth_release),
 * which it could not from the socket's own block. The object is made from the text only when a
 * program asks (sioc_socket_auth). A value that is not an object (no decoder lets one through)
 * is kept as it came. 0, or -1 when out of memory. */
static int keep_auth(sioc_socket_t *socket, json_t *auth)
{
    int is_object = json_is_object(auth);
    if (auth == NULL || (is_object && json_object_size(auth) == 0))
        return 0;
    if (sioc__sio_socket_rare(socket) == NULL)
        return -1;
    if (!is_object) {
        socket->rare->auth.object = json_incref(auth);
        return 0;
    }
    size_t length = json_dumpb(auth, NULL, 0, JSON_COMPACT);
    char *text = length > 0 ? malloc(length + 1) : NULL;
    if (text == NULL)
        return -1;
    json_dumpb(auth, text, length, JSON_COMPACT);
    text[length] = '\0';
    socket->rare->auth.text = text;
    socket->rare->auth_is_text = 1;
    return 0;
}

sioc_socket_t *sioc__sio_socket_new(sioc__sio_client_t *client, sioc_namespace_t *nsp, json_t *auth,
                                    const char *sid, const char *pid)
{
    size_t size = sid != NULL ? strlen(sid) + 1 : id_size(client, nsp);
    sioc_socket_t *socket = calloc(1, sizeof(*socket) + size + pid_size(client->server));
    if (socket == NULL)
        return NULL;
    char *own_pid = socket->id + size;
    if (sid != NULL) {
        memcpy(socket->id, sid, size);
        if (client->server->recovery != NULL) /* restored only with it: pid is checked */
            memcpy(own_pid, pid, SIOC_ID_LENGTH + 1);
    } else if (make_id(client, nsp, socket->id, size) != 0 ||
               (client->server->recovery != NULL && sioc__random_id(own_pid) != 0)) {
        free(socket);
        return NULL;
    }
    if (keep_auth(socket, auth) != 0) {
        free(socket->rare);
        free(socket);
        return NULL;
    }
    socket->request = client->handshake;
    sioc__sio_handshake_ref(socket->request);
    socket->nsp = nsp;
    socket->client = client;
    socket->state = SIO_SOCKET_CONNECTING;
    socket->references = 1; /* released when the socket leaves its namespace */
    return socket;
}

void sioc__sio_socket_ref(sioc_socket_t *socket)
{
    socket->references++;
}

void sioc__sio_socket_unref(sioc_socket_t *socket)
{
    if (--socket->references > 0)
        return;
    sioc__sio_recovery_release(socket);
    if (socket->rare != NULL) {
        json_decref(socket->rare->handshake);
        if (socket->rare->auth_is_text)
            free(socket->rare->auth.text);
        else
            json_decref(socket->rare->auth.object);
        json_decref(socket->rare->data);
        free(socket->rare);
        socket->rare = NULL;
    }
    sioc__sio_handshake_unref(socket->request);
    sioc__room_set_free(&socket->rooms);
    free(socket);
}

/* ---- sending --------------------------------------------------------------------------------- */

static int send_packet(sioc_socket_t *socket, const sioc__sio_packet_t *packet)
{
    if (socket->client == NULL)
        return SIOC_ECLOSED;
    sioc__sio_encoded_t encoded;
    int rc = sioc__sio_encode_for_server(socket->nsp->server, packet, &encoded);
    if (rc != 0)
        return rc;
    rc = sioc__sio_client_send(socket->client, &encoded, 0);
    sioc__sio_encoded_release(&encoded);
    return rc;
}

static int send_simple(sioc_socket_t *socket, int type, json_t *data)
{
    sioc__sio_packet_t packet = {
        .type = type, .nsp = socket->nsp->name, .id = SIOC_SIO_NO_ACK_ID, .data = data};
    int rc = send_packet(socket, &packet);
    json_decref(data);
    return rc;
}

/* ---- life cycle ------------------------------------------------------------------------------ */

static int is_eio3(const sioc_socket_t *socket)
{
    return socket->client != NULL && sioc_eio_socket_protocol(socket->client->eio) == 3;
}

/* v5: {"sid"} (and "pid" with recovery). v4 (EIO3 clients): a bare CONNECT, as Node's
 * _onconnect sends it for protocol 3. */
static void send_connect(sioc_socket_t *socket)
{
    json_t *data = NULL;
    const char *pid = sioc__sio_socket_pid(socket);
    if (!is_eio3(socket))
        data = pid[0] != '\0' ? json_pack("{s:s,s:s}", "sid", socket->id, "pid", pid)
                              : json_pack("{s:s}", "sid", socket->id);
    send_simple(socket, SIOC_SIO_CONNECT, data);
}

/* JavaScript's truth of a JSON value (err.data || err.message). */
static int is_truthy(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_NULL:
    case JSON_FALSE:
        return 0;
    case JSON_STRING:
        return json_string_length(value) > 0;
    case JSON_INTEGER:
        return json_integer_value(value) != 0;
    case JSON_REAL:
        return json_real_value(value) != 0;
    default:
        return 1;
    }
}

/* v5: {"message", "data"?}. v4 (EIO3 clients): err.data || err.message, as Node's _add. */
static json_t *refusal_payload(const sioc_socket_t *socket, const char *message, json_t *data)
{
    if (is_eio3(socket)) {
        if (data != NULL && is_truthy(data))
            return data;
        json_decref(data);
        return json_string(message ? message : "");
    }
    json_t *payload = json_pack("{s:s}", "message", message ? message : "");
    if (data != NULL)
        json_object_set_new(payload, "data", data);
    return payload;
}

static void link_in_namespace(sioc_namespace_t *nsp, sioc_socket_t *socket)
{
    socket->previous_in_nsp = nsp->last_socket;
    socket->next_in_nsp = NULL;
    if (nsp->last_socket != NULL)
        nsp->last_socket->next_in_nsp = socket;
    else
        nsp->sockets = socket;
    nsp->last_socket = socket;
}

static void unlink_from_namespace(sioc_namespace_t *nsp, sioc_socket_t *socket)
{
    if (socket->previous_in_nsp != NULL)
        socket->previous_in_nsp->next_in_nsp = socket->next_in_nsp;
    else
        nsp->sockets = socket->next_in_nsp;
    if (socket->next_in_nsp != NULL)
        socket->next_in_nsp->previous_in_nsp = socket->previous_in_nsp;
    else
        nsp->last_socket = socket->previous_in_nsp;
    /* Its own links are left as they were: a walk that saved this socket as its next step
     * (a broadcast whose visit disconnected it) goes on from there, as with uthash. */
}

void sioc__sio_socket_connected(sioc_socket_t *socket)
{
    sioc_namespace_t *nsp = socket->nsp;
    sioc_namespace_t *root = sioc__sio_namespace_root(nsp);
    if (socket->recovered) {
        /* The same client came back before this server saw its old connection go (a store
         * that keeps connected sessions hands those out too): the new one takes over; the old
         * socket, its pid cleared, neither keeps nor drops the session. */
        sioc_socket_t *previous = sioc__index_find(&nsp->sockets_by_id, socket->id);
        if (previous != NULL) {
            sioc__sio_socket_pid(previous)[0] = '\0';
            sioc_socket_disconnect(previous, 1);
        }
    }
    socket->state = SIO_SOCKET_CONNECTED;
    /* Out of memory here leaves the socket connected and listed but not found by id (to(id)
     * misses it); uthash exited the process instead. */
    sioc__index_add(&nsp->sockets_by_id, socket);
    link_in_namespace(nsp, socket);
    nsp->socket_count++;
    /* Every socket is in the room named by its id, as in Node. */
    sioc__memory_adapter_join(nsp->index, socket, socket->id);
    nsp->server->stats.sockets_connected++;
    SIOC__SIO_OBSERVE(nsp->server, on_join, socket, socket->id);
    sioc__sio_client_on_socket_connected(socket->client);
    /* Node sends a recovered socket's missed packets before the CONNECT reply (the client keeps
     * them until it is connected). */
    if (socket->recovered)
        sioc__sio_recovery_replay(socket);
    send_connect(socket);
    if (nsp->server->recovery != NULL)
        sioc__sio_recovery_connected(nsp->server->recovery, socket);
    SIOC__SIO_OBSERVE(nsp->server, on_connection, socket);
    if (root->on_connection.callback != NULL)
        ((sioc_connection_cb)root->on_connection.callback)(socket, root->on_connection.data);
}

void sioc__sio_socket_refuse(sioc_socket_t *socket, const char *message, json_t *data)
{
    json_t *payload = refusal_payload(socket, message, data);
    socket->nsp->server->stats.connects_refused++;
    send_simple(socket, SIOC_SIO_CONNECT_ERROR, payload);
    if (socket->client != NULL)
        sioc__sio_client_forget_socket(socket->client, socket);
    socket->client = NULL;
    socket->state = SIO_SOCKET_DISCONNECTED;
    sioc__sio_socket_unref(socket);
}

static void fail_pending_acks(sioc_socket_t *socket)
{
    while (socket->rare != NULL && socket->rare->acks != NULL) {
        sioc__sio_pending_ack_t *pending = socket->rare->acks;
        HASH_DEL(socket->rare->acks, pending);
        if (pending->callback != NULL)
            pending->callback(socket, SIOC_ECLOSED, NULL, pending->data);
        sioc__sio_pending_ack_free(pending);
    }
}

static void call_disconnect_hook(sioc_socket_t *socket, sioc__sio_callback_t *hook,
                                 const char *reason)
{
    if (hook->callback != NULL)
        ((sioc_disconnect_cb)hook->callback)(socket, reason, hook->data);
}

/* rooms: taken. */
static void notify_rooms_left(sioc_socket_t *socket, json_t *rooms)
{
    size_t index;
    json_t *room;
    json_array_foreach(rooms, index, room)
        SIOC__SIO_OBSERVE(socket->nsp->server, on_leave, socket, json_string_value(room));
    json_decref(rooms);
}

void sioc__sio_socket_close(sioc_socket_t *socket, const char *reason, int send_disconnect)
{
    if (socket->state == SIO_SOCKET_DISCONNECTED)
        return;
    if (socket->state == SIO_SOCKET_CONNECTING) {
        /* Still in middleware: the chain notices and lets go of the socket. */
        socket->state = SIO_SOCKET_DISCONNECTED;
        socket->client = NULL;
        sioc__sio_socket_unref(socket);
        return;
    }
    sioc_namespace_t *nsp = socket->nsp;
    sioc_namespace_t *root = sioc__sio_namespace_root(nsp);
    call_disconnect_hook(socket, &root->on_disconnecting, reason);
    if (nsp->server->recovery != NULL)
        sioc__sio_recovery_persist(nsp->server->recovery, socket, reason);
    /* The observer hears of the rooms after the disconnection, as Node's admin UI does. */
    json_t *rooms = nsp->server->observer.on_leave ? sioc_socket_rooms(socket) : NULL;
    sioc__memory_adapter_leave_all(nsp->index, socket);
    sioc__index_remove(&nsp->sockets_by_id, socket);
    unlink_from_namespace(nsp, socket);
    nsp->socket_count--;
    fail_pending_acks(socket);
    if (send_disconnect)
        send_simple(socket, SIOC_SIO_DISCONNECT, NULL);
    socket->state = SIO_SOCKET_DISCONNECTED;
    call_disconnect_hook(socket, &root->on_disconnect, reason);
    nsp->server->stats.sockets_disconnected++;
    SIOC__SIO_OBSERVE(nsp->server, on_disconnect, socket, reason);
    notify_rooms_left(socket, rooms);
    socket->client = NULL;
    sioc__sio_socket_unref(socket);
}

void sioc_socket_disconnect(sioc_socket_t *socket, int close)
{
    sioc__sio_client_t *client = socket->client;
    if (socket->state != SIO_SOCKET_CONNECTED || client == NULL)
        return;
    if (!close) {
        sioc__sio_client_forget_socket(client, socket);
        sioc__sio_socket_close(socket, "server namespace disconnect", 1);
        return;
    }
    /* Node's client._disconnect(): every namespace leaves, then the connection closes. */
    sioc_socket_t *each;
    while ((each = sioc__sio_client_pop_socket(client)) != NULL)
        sioc__sio_socket_close(each, "server namespace disconnect", 1);
    sioc__sio_client_close(client, "forced close");
}

/* ---- incoming events and acknowledgements -------------------------------------------------------
 */

void sioc__sio_event_from_packet(sioc__sio_packet_t *packet, int has_name, sioc_event_t *event,
                                 sioc_binary_t *attachments, char *name_buffer, size_t name_size)
{
    memset(event, 0, sizeof(*event));
    /* The packet's own array becomes the arguments, its name moved out first: copying the
     * arguments into a new array cost two allocations per event. */
    if (has_name && packet->name == NULL && json_array_size(packet->data) > 0) {
        packet->name = json_incref(json_array_get(packet->data, 0));
        json_array_remove(packet->data, 0);
    }
    event->args = json_is_array(packet->data) ? json_incref(packet->data) : json_array();
    event->ack_id = packet->id;
    for (size_t i = 0; i < packet->attachment_count; i++) {
        attachments[i].data = packet->attachments[i].data;
        attachments[i].length = packet->attachments[i].length;
    }
    event->attachments = attachments;
    event->attachment_count = packet->attachment_count;
    json_t *name = has_name ? packet->name : NULL;
    if (json_is_string(name))
        event->name = json_string_value(name);
    else if (json_is_number(name) && name_size > 0) {
        snprintf(name_buffer, name_size, "%.17g", json_number_value(name));
        event->name = name_buffer;
    } else {
        event->name = "";
    }
}

static sioc__sio_handler_t *find_handler(sioc_namespace_t *nsp, const char *event)
{
    sioc__sio_handler_t *handler = NULL;
    HASH_FIND_STR(sioc__sio_namespace_root(nsp)->handlers, event, handler);
    return handler;
}

static void dispatch(sioc_socket_t *socket, const sioc_event_t *event)
{
    sioc__sio_handler_t *handler = find_handler(socket->nsp, event->name);
    if (handler != NULL && socket->state == SIO_SOCKET_CONNECTED)
        handler->callback(socket, event, handler->data);
}

/* ---- packet middleware (socket.use) ------------------------------------------------------------
 */

/* An event on its way through the middlewares: a copy that outlives the packet. */
struct sioc_event_next_s {
    sioc_socket_t *socket; /* one reference */
    sioc_event_t event;
    size_t index; /* the middleware now deciding */
    char *name;
    sioc_binary_t *attachments;
    uint8_t *bytes; /* the attachments' bytes, one allocation */
};

static uint32_t use_count(const sioc_socket_t *socket)
{
    return socket->rare != NULL ? socket->rare->use_count : 0;
}

int sioc_socket_use(sioc_socket_t *socket, sioc_packet_middleware_cb middleware, void *data)
{
    uint32_t count = use_count(socket);
    /* The rare block grows by one entry: it may move, and only socket->rare points to it. */
    sioc__sio_socket_rare_t *rare =
        realloc(socket->rare, sizeof(*rare) + (count + 1) * sizeof(rare->uses[0]));
    if (rare == NULL)
        return SIOC_ENOMEM;
    if (socket->rare == NULL)
        memset(rare, 0, sizeof(*rare));
    socket->rare = rare;
    rare->uses[count].callback = (void *)middleware;
    rare->uses[count].data = data;
    rare->use_count = count + 1;
    return 0;
}

/* Out of memory for the rare block, the socket keeps no error handler: refusals are then
 * dropped as they are for a socket without one. */
void sioc_socket_on_error(sioc_socket_t *socket, sioc_socket_error_cb callback, void *data)
{
    if (sioc__sio_socket_rare(socket) == NULL)
        return;
    socket->rare->on_error.callback = (void *)callback;
    socket->rare->on_error.data = data;
}

static void free_next(sioc_event_next_t *next)
{
    json_decref(next->event.args);
    free(next->name);
    free(next->attachments);
    free(next->bytes);
    sioc__sio_socket_unref(next->socket);
    free(next);
}

static sioc_event_next_t *copy_event(sioc_socket_t *socket, const sioc_event_t *event)
{
    sioc_event_next_t *next = calloc(1, sizeof(*next));
    if (next == NULL)
        return NULL;
    size_t total = 0;
    for (size_t i = 0; i < event->attachment_count; i++)
        total += event->attachments[i].length;
    next->name = strdup(event->name);
    next->attachments = calloc(event->attachment_count + 1, sizeof(sioc_binary_t));
    next->bytes = malloc(total + 1);
    if (next->name == NULL || next->attachments == NULL || next->bytes == NULL) {
        free(next->name);
        free(next->attachments);
        free(next->bytes);
        free(next);
        return NULL;
    }
    size_t offset = 0;
    for (size_t i = 0; i < event->attachment_count; i++) {
        memcpy(next->bytes + offset, event->attachments[i].data, event->attachments[i].length);
        next->attachments[i].data = next->bytes + offset;
        next->attachments[i].length = event->attachments[i].length;
        offset += event->attachments[i].length;
    }
    next->event = *event;
    next->event.bytes = NULL; /* args is set on this path */
    next->event.name = next->name;
    next->event.args = json_incref(event->args);
    next->event.attachments = next->attachments;
    sioc__sio_socket_ref(socket);
    next->socket = socket;
    return next;
}

static void run_middleware(sioc_event_next_t *next)
{
    sioc_socket_t *socket = next->socket;
    if (next->index >= use_count(socket)) {
        if (socket->state == SIO_SOCKET_CONNECTED)
            dispatch(socket, &next->event);
        free_next(next);
        return;
    }
    sioc__sio_callback_t use = socket->rare->uses[next->index];
    ((sioc_packet_middleware_cb)use.callback)(socket, &next->event, next, use.data);
}

/* Node emits "error" on the server-side socket whatever its state; a socket with no listener
 * only logs it there, so nothing happens here without a handler. */
void sioc__sio_socket_error(sioc_socket_t *socket, const char *message)
{
    sioc__sio_callback_t *hook = socket->rare != NULL ? &socket->rare->on_error : NULL;
    if (hook == NULL || hook->callback == NULL)
        hook = &sioc__sio_namespace_root(socket->nsp)->on_socket_error;
    if (hook->callback != NULL)
        ((sioc_socket_error_cb)hook->callback)(socket, message, hook->data);
}

void sioc_event_next(sioc_event_next_t *next, const char *error)
{
    sioc_socket_t *socket = next->socket;
    if (error != NULL) {
        sioc__sio_socket_error(socket, error);
        free_next(next);
        return;
    }
    next->index++;
    run_middleware(next);
}

/* A pass-through handler gets the event as its bytes when nothing else would look at its
 * arguments first (catch-all, observer, packet middleware). Returns 0 when it did not apply. */
static int dispatch_bytes(sioc_socket_t *socket, sioc__sio_packet_t *packet)
{
    char name[256];
    sioc_namespace_t *root = sioc__sio_namespace_root(socket->nsp);
    if (packet->scan.name_length >= sizeof(name) || root->on_any.callback != NULL ||
        socket->nsp->server->observer.on_event != NULL || use_count(socket) > 0 ||
        socket->state != SIO_SOCKET_CONNECTED)
        return 0;
    memcpy(name, packet->raw + packet->scan.name_start, packet->scan.name_length);
    name[packet->scan.name_length] = '\0';
    sioc__sio_handler_t *handler = find_handler(socket->nsp, name);
    if (handler == NULL || !handler->passthrough)
        return 0;
    struct sioc_event_bytes_s bytes = {packet, NULL};
    sioc_event_t event = {.name = name, .ack_id = packet->id, .bytes = &bytes};
    sioc__sio_socket_ref(socket);
    handler->callback(socket, &event, handler->data);
    sioc__sio_socket_unref(socket);
    json_decref(bytes.args);
    return 1;
}

void sioc__sio_socket_on_event(sioc_socket_t *socket, sioc__sio_packet_t *packet)
{
    if (packet->raw != NULL && dispatch_bytes(socket, packet))
        return;
    if (sioc__sio_packet_parse(packet) != 0) {
        sioc__sio_client_close(socket->client, "forced close");
        return;
    }
    sioc_binary_t small[16];
    sioc_binary_t *attachments = packet->attachment_count <= 16
                                     ? small
                                     : calloc(packet->attachment_count, sizeof(sioc_binary_t));
    if (attachments == NULL)
        return;
    char name_buffer[32];
    sioc_event_t event;
    sioc__sio_event_from_packet(packet, 1, &event, attachments, name_buffer, sizeof(name_buffer));
    sioc_namespace_t *root = sioc__sio_namespace_root(socket->nsp);
    /* The socket stays valid through the handlers even if one of them disconnects it. */
    sioc__sio_socket_ref(socket);
    SIOC__SIO_OBSERVE(socket->nsp->server, on_event, socket, &event);
    if (root->on_any.callback != NULL)
        ((sioc_event_cb)root->on_any.callback)(socket, &event, root->on_any.data);
    if (use_count(socket) == 0 || socket->state != SIO_SOCKET_CONNECTED) {
        dispatch(socket, &event);
    } else {
        /* Node runs onAny listeners, then the middlewares, then the handlers. */
        sioc_event_next_t *next = copy_event(socket, &event);
        if (next != NULL)
            run_middleware(next);
    }
    sioc__sio_socket_unref(socket);
    json_decref(event.args);
    if (attachments != small)
        free(attachments);
}

void sioc__sio_pending_ack_free(sioc__sio_pending_ack_t *pending)
{
    if (pending->timer != NULL) {
        uv_timer_stop(pending->timer);
        uv_close((uv_handle_t *)pending->timer, (uv_close_cb)free);
    }
    if (pending->collector != NULL)
        sioc__sio_ack_collector_unref(pending->collector);
    free(pending);
}

void sioc__sio_socket_on_ack(sioc_socket_t *socket, sioc__sio_packet_t *packet)
{
    sioc__sio_pending_ack_t *pending = NULL;
    if (socket->rare != NULL)
        HASH_FIND(hh, socket->rare->acks, &packet->id, sizeof(int64_t), pending);
    if (pending == NULL)
        return; /* late (after a timeout) or never asked for: ignored, as in Node */
    HASH_DEL(socket->rare->acks, pending);
    rare_drop_if_empty(socket);
    sioc_binary_t small[16];
    sioc_binary_t *attachments = packet->attachment_count <= 16
                                     ? small
                                     : calloc(packet->attachment_count, sizeof(sioc_binary_t));
    if (attachments != NULL) {
        sioc_event_t event;
        sioc__sio_event_from_packet(packet, 0, &event, attachments, NULL, 0);
        sioc__sio_socket_ref(socket);
        if (pending->callback != NULL)
            pending->callback(socket, 0, &event, pending->data);
        if (pending->collector != NULL)
            sioc__sio_ack_collector_add_response(pending->collector, &event);
        sioc__sio_socket_unref(socket);
        json_decref(event.args);
        if (attachments != small)
            free(attachments);
    }
    sioc__sio_pending_ack_free(pending);
}

static void on_ack_timeout(uv_timer_t *timer)
{
    sioc__sio_pending_ack_t *pending = timer->data;
    sioc_socket_t *socket = pending->socket;
    HASH_DEL(socket->rare->acks, pending);
    rare_drop_if_empty(socket);
    if (pending->callback != NULL)
        pending->callback(socket, SIOC_ETIMEDOUT, NULL, pending->data);
    sioc__sio_pending_ack_free(pending);
}

sioc__sio_pending_ack_t *sioc__sio_socket_add_pending_ack(sioc_socket_t *socket, int64_t id,
                                                          uint32_t timeout_ms)
{
    /* In the rare block: an idle socket waits for no ack. */
    sioc__sio_pending_ack_t *pending =
        sioc__sio_socket_rare(socket) != NULL ? calloc(1, sizeof(*pending)) : NULL;
    if (pending == NULL)
        return NULL;
    pending->id = id;
    pending->socket = socket;
    if (timeout_ms > 0) {
        pending->timer = malloc(sizeof(uv_timer_t));
        if (pending->timer == NULL) {
            free(pending);
            return NULL;
        }
        uv_timer_init(socket->nsp->server->loop, pending->timer);
        pending->timer->data = pending;
        uv_timer_start(pending->timer, on_ack_timeout, timeout_ms, 0);
    }
    HASH_ADD(hh, socket->rare->acks, id, sizeof(int64_t), pending);
    return pending;
}

/* ---- emitting
 * ------------------------------------------------------------------------------------- */

int sioc__sio_build_event(sioc__sio_packet_t *packet, const char *nsp, const char *event,
                          const sioc_message_t *message)
{
    memset(packet, 0, sizeof(*packet));
    packet->type = SIOC_SIO_EVENT;
    packet->nsp = (char *)nsp;
    packet->id = SIOC_SIO_NO_ACK_ID;
    if (event == NULL || sioc__sio_is_reserved_event(event, strlen(event)))
        return SIOC_EINVAL;
    packet->data = json_array();
    if (packet->data == NULL)
        return SIOC_ENOMEM;
    json_array_append_new(packet->data, json_string(event));
    if (message != NULL && json_is_array(message->args))
        json_array_extend(packet->data, message->args);
    if (message != NULL && message->attachment_count > 0) {
        /* The packet only borrows the caller's bytes for the encoding. */
        packet->attachments = calloc(message->attachment_count, sizeof(sioc__sio_attachment_t));
        if (packet->attachments == NULL)
            return SIOC_ENOMEM;
        for (size_t i = 0; i < message->attachment_count; i++) {
            packet->attachments[i].data = (uint8_t *)message->attachments[i].data;
            packet->attachments[i].length = message->attachments[i].length;
        }
        packet->attachment_count = message->attachment_count;
    }
    return 0;
}

/* Releases what sioc__sio_build_event made (not the borrowed attachment bytes). */
static void release_event(sioc__sio_packet_t *packet)
{
    json_decref(packet->data);
    free(packet->attachments);
}

static void notify_outgoing(sioc_socket_t *socket, const char *event, const sioc_message_t *message)
{
    sioc_namespace_t *root = sioc__sio_namespace_root(socket->nsp);
    sioc_server_t *server = socket->nsp->server;
    if (root->on_any_outgoing.callback == NULL && server->observer.on_event_sent == NULL)
        return;
    sioc_event_t view = {.name = event,
                         .args = message ? message->args : NULL,
                         .attachments = message ? message->attachments : NULL,
                         .attachment_count = message ? message->attachment_count : 0,
                         .ack_id = SIOC_SIO_NO_ACK_ID};
    json_t *empty = NULL;
    if (view.args == NULL)
        view.args = empty = json_array();
    SIOC__SIO_OBSERVE(server, on_event_sent, socket, &view);
    if (root->on_any_outgoing.callback != NULL)
        ((sioc_event_cb)root->on_any_outgoing.callback)(socket, &view, root->on_any_outgoing.data);
    json_decref(empty);
}

static int emit(sioc_socket_t *socket, const char *event, const sioc_message_t *message,
                sioc__sio_pending_ack_t **pending, uint32_t timeout_ms)
{
    if (socket->state != SIO_SOCKET_CONNECTED || socket->client == NULL)
        return SIOC_ECLOSED;
    if (pending == NULL && socket->nsp->server->recovery != NULL) {
        /* With recovery on, Node sends socket.emit through the adapter as a broadcast to the
         * socket's own room, so that the packet gets an offset and can be replayed. */
        sioc_broadcast_t broadcast;
        sioc_broadcast_init(&broadcast, socket->nsp);
        sioc_broadcast_to(&broadcast, socket->id);
        notify_outgoing(socket, event, message);
        /* The broadcast takes a reference to the arguments; the caller's is released by our
         * own caller. */
        sioc_message_t borrowed = {NULL, NULL, 0};
        if (message != NULL) {
            borrowed = *message;
            json_incref(borrowed.args);
        }
        return sioc_broadcast_emit_message(&broadcast, event, &borrowed);
    }
    sioc__sio_packet_t packet;
    int rc = sioc__sio_build_event(&packet, socket->nsp->name, event, message);
    if (rc == 0 && pending != NULL)
        packet.id = socket->nsp->server->next_ack_id++;
    if (rc == 0) {
        notify_outgoing(socket, event, message);
        rc = send_packet(socket, &packet);
    }
    /* Waiting starts once the packet is out: a send that failed (or closed a slow reader)
     * leaves nothing behind that could fire later. */
    if (rc == 0 && pending != NULL && socket->state == SIO_SOCKET_CONNECTED) {
        *pending = sioc__sio_socket_add_pending_ack(socket, packet.id, timeout_ms);
        if (*pending == NULL)
            rc = SIOC_ENOMEM;
    } else if (rc == 0 && pending != NULL) {
        rc = SIOC_ECLOSED;
    }
    release_event(&packet);
    return rc;
}

int sioc_socket_emit_message(sioc_socket_t *socket, const char *event,
                             const sioc_message_t *message)
{
    int rc = emit(socket, event, message, NULL, 0);
    if (message != NULL)
        json_decref(message->args);
    return rc;
}

int sioc_socket_emit(sioc_socket_t *socket, const char *event, json_t *args)
{
    sioc_message_t message = {.args = args};
    return sioc_socket_emit_message(socket, event, &message);
}

int sioc_socket_emit_with_ack(sioc_socket_t *socket, const char *event,
                              const sioc_message_t *message, uint32_t timeout_ms,
                              sioc_ack_cb callback, void *data)
{
    sioc__sio_pending_ack_t *pending = NULL;
    int rc = emit(socket, event, message, &pending, timeout_ms);
    if (pending != NULL) {
        pending->callback = callback;
        pending->data = data;
    }
    if (message != NULL)
        json_decref(message->args);
    return rc;
}

int sioc_socket_ack_message(sioc_socket_t *socket, int64_t ack_id, const sioc_message_t *message)
{
    sioc__sio_packet_t packet = {.type = SIOC_SIO_ACK, .nsp = socket->nsp->name, .id = ack_id};
    int rc = SIOC_EINVAL;
    sioc__sio_attachment_t small[16];
    size_t count = message ? message->attachment_count : 0;
    if (ack_id >= 0 && count <= 16) {
        packet.data =
            message && json_is_array(message->args) ? json_incref(message->args) : json_array();
        for (size_t i = 0; i < count; i++) {
            small[i].data = (uint8_t *)message->attachments[i].data;
            small[i].length = message->attachments[i].length;
        }
        packet.attachments = small;
        packet.attachment_count = count;
        rc = socket->state == SIO_SOCKET_CONNECTED ? send_packet(socket, &packet) : SIOC_ECLOSED;
        json_decref(packet.data);
    }
    if (message != NULL)
        json_decref(message->args);
    return rc;
}

int sioc_socket_ack(sioc_socket_t *socket, int64_t ack_id, json_t *args)
{
    sioc_message_t message = {.args = args};
    return sioc_socket_ack_message(socket, ack_id, &message);
}

json_t *sioc_event_args(const sioc_event_t *event)
{
    struct sioc_event_bytes_s *bytes = event->bytes;
    if (event->args != NULL || bytes == NULL)
        return event->args;
    if (bytes->args == NULL && sioc__sio_packet_parse(bytes->packet) == 0) {
        sioc_event_t view;
        sioc_binary_t none[1];
        sioc__sio_event_from_packet(bytes->packet, 1, &view, none, NULL, 0);
        bytes->args = view.args;
    }
    return bytes->args;
}

int sioc_socket_ack_args(sioc_socket_t *socket, const sioc_event_t *event)
{
    if (event->ack_id < 0)
        return SIOC_EINVAL;
    const struct sioc_event_bytes_s *bytes = event->bytes;
    /* The bytes are what the encoder would write for them: sent again as they came, unless the
     * handler has the parsed view (which it may have changed). */
    if (event->args == NULL && bytes != NULL && bytes->args == NULL &&
        bytes->packet->scan.canonical) {
        if (socket->state != SIO_SOCKET_CONNECTED || socket->client == NULL)
            return SIOC_ECLOSED;
        const sioc__sio_packet_t *packet = bytes->packet;
        sioc__sio_encoded_t encoded;
        int rc = sioc__sio_encode_ack_bytes(socket->nsp->name, event->ack_id,
                                            packet->raw + packet->scan.args_start,
                                            packet->scan.args_length, &encoded);
        if (rc != 0)
            return rc;
        rc = sioc__sio_client_send(socket->client, &encoded, 0);
        sioc__sio_encoded_release(&encoded);
        return rc;
    }
    json_t *args = sioc_event_args(event);
    if (args == NULL)
        return SIOC_ENOMEM;
    sioc_message_t message = {json_incref(args), event->attachments, event->attachment_count};
    return sioc_socket_ack_message(socket, event->ack_id, &message);
}

/* ---- accessors and rooms
 * --------------------------------------------------------------------------- */

json_t *sioc_placeholder(size_t index)
{
    return json_pack("{s:b,s:I}", "_placeholder", 1, "num", (json_int_t)index);
}

const sioc_binary_t *sioc_event_binary(const sioc_event_t *event, const json_t *value)
{
    if (!json_is_object(value) || !json_is_true(json_object_get(value, "_placeholder")))
        return NULL;
    json_t *num = json_object_get(value, "num");
    if (!json_is_integer(num) || json_integer_value(num) < 0 ||
        (size_t)json_integer_value(num) >= event->attachment_count)
        return NULL;
    return &event->attachments[json_integer_value(num)];
}

const char *sioc_socket_id(const sioc_socket_t *socket)
{
    return socket->id;
}

const char *sioc_socket_client_id(const sioc_socket_t *socket)
{
    return socket->client != NULL ? sioc_eio_socket_id(socket->client->eio) : "";
}

sioc_namespace_t *sioc_socket_namespace(const sioc_socket_t *socket)
{
    return socket->nsp;
}

json_t *sioc_socket_handshake(const sioc_socket_t *socket)
{
    /* Built on the first ask and kept: the object is borrowed for the socket's life. */
    sioc__sio_socket_rare_t *rare = sioc__sio_socket_rare((sioc_socket_t *)socket);
    if (rare == NULL)
        return NULL;
    if (rare->handshake == NULL)
        rare->handshake =
            sioc__sio_handshake_with_auth(socket->request, sioc_socket_auth(socket), 1);
    return rare->handshake;
}

/* The auth the socket's text holds, as a new object ({} for none). */
static json_t *auth_parsed(const sioc_socket_t *socket)
{
    const char *text = auth_text(socket);
    /* The text is jansson's own dump of what the decoder accepted: it parses back the same. */
    return text != NULL ? json_loads(text, JSON_ALLOW_NUL, NULL) : json_object();
}

json_t *sioc_socket_handshake_copy(const sioc_socket_t *socket)
{
    /* keep = 0: neither the socket's rare block nor the client's shared object is made. */
    if (socket->rare != NULL && socket->rare->handshake != NULL)
        return json_incref(socket->rare->handshake);
    if (auth_kept(socket) != NULL)
        return sioc__sio_handshake_with_auth(socket->request, auth_kept(socket), 0);
    json_t *auth = auth_parsed(socket);
    json_t *handshake =
        auth != NULL ? sioc__sio_handshake_with_auth(socket->request, auth, 0) : NULL;
    json_decref(auth);
    return handshake;
}

json_t *sioc_socket_auth(const sioc_socket_t *socket)
{
    /* Made on the first ask and kept: the object is borrowed for the socket's life. */
    sioc__sio_socket_rare_t *rare = sioc__sio_socket_rare((sioc_socket_t *)socket);
    if (rare == NULL)
        return NULL;
    if (auth_kept(socket) != NULL)
        return rare->auth.object;
    json_t *auth = auth_parsed(socket);
    if (auth == NULL)
        return NULL;
    if (rare->auth_is_text)
        free(rare->auth.text); /* the object says the same from now on */
    rare->auth.object = auth;
    rare->auth_is_text = 0;
    return auth;
}

void sioc_socket_auth_release(sioc_socket_t *socket)
{
    sioc__sio_socket_rare_t *rare = socket->rare;
    if (rare == NULL)
        return;
    if (rare->auth_is_text) {
        free(rare->auth.text);
        rare->auth.text = NULL;
        rare->auth_is_text = 0;
    } else if (json_is_object(rare->auth.object)) {
        /* Emptied in place: the object (and the handshake's "auth", the same one) was lent for
         * the socket's life, so a pointer taken before stays valid and reads {}. */
        json_object_clear(rare->auth.object);
    } else {
        json_decref(rare->auth.object);
        rare->auth.object = NULL;
    }
    rare_drop_if_empty(socket);
}

json_t *sioc_socket_auth_copy(const sioc_socket_t *socket)
{
    return auth_kept(socket) != NULL ? json_incref(auth_kept(socket)) : auth_parsed(socket);
}

char *sioc_socket_auth_string(const sioc_socket_t *socket, const char *key, size_t *length)
{
    json_t *auth = sioc_socket_auth_copy(socket);
    json_t *value = json_object_get(auth, key);
    char *copy = NULL;
    if (json_is_string(value) && (copy = malloc(json_string_length(value) + 1)) != NULL) {
        memcpy(copy, json_string_value(value), json_string_length(value) + 1);
        if (length != NULL)
            *length = json_string_length(value);
    }
    json_decref(auth);
    return copy;
}

/* socket.data as the namespace's builder makes it from the program's own state, else {}. */
static json_t *data_made(const sioc_socket_t *socket)
{
    const sioc__sio_callback_t *build = &sioc__sio_namespace_root(socket->nsp)->on_socket_data;
    json_t *data = NULL;
    if (build->callback != NULL)
        data = ((sioc_socket_data_cb)build->callback)((sioc_socket_t *)socket, build->data);
    return data != NULL ? data : json_object();
}

json_t *sioc_socket_data(sioc_socket_t *socket)
{
    /* Created on the first ask: most sockets never have data (about 250 bytes each). */
    if (sioc__sio_socket_rare(socket) == NULL)
        return NULL;
    if (socket->rare->data == NULL) {
        /* The builder may grow the rare block, or take data and so drop it. */
        json_t *data = data_made(socket);
        if (sioc__sio_socket_rare(socket) == NULL) {
            json_decref(data);
            return NULL;
        }
        json_decref(socket->rare->data); /* one the builder set meanwhile */
        socket->rare->data = data;
    }
    return socket->rare->data;
}

json_t *sioc__sio_socket_data_copy(const sioc_socket_t *socket)
{
    /* Not kept: fetchSockets or a session save must not leave every socket holding data. */
    json_t *data = socket->rare != NULL ? socket->rare->data : NULL;
    return data != NULL ? json_incref(data) : data_made(socket);
}

json_t *sioc_socket_take_data(sioc_socket_t *socket)
{
    if (socket->rare == NULL)
        return NULL;
    json_t *data = socket->rare->data;
    socket->rare->data = NULL;
    rare_drop_if_empty(socket);
    return data;
}

/* Out of memory for the rare block, data is released and the socket keeps none. */
void sioc_socket_set_data(sioc_socket_t *socket, json_t *data)
{
    if (sioc__sio_socket_rare(socket) == NULL) {
        json_decref(data);
        return;
    }
    json_decref(socket->rare->data);
    socket->rare->data = data != NULL ? data : json_null();
    sioc_socket_save_session(socket);
}

void sioc_socket_save_session(sioc_socket_t *socket)
{
    if (socket->nsp->server->recovery != NULL)
        sioc__sio_recovery_touch(socket->nsp->server->recovery, socket);
}

void sioc_socket_set_user(sioc_socket_t *socket, void *user)
{
    socket->user = user;
}

void *sioc_socket_get_user(const sioc_socket_t *socket)
{
    return socket->user;
}

int sioc_socket_recovered(const sioc_socket_t *socket)
{
    return socket->recovered;
}

int sioc_socket_connected(const sioc_socket_t *socket)
{
    return socket->state == SIO_SOCKET_CONNECTED;
}

sioc_transport_t sioc_socket_transport(const sioc_socket_t *socket)
{
    return socket->client ? sioc_eio_socket_transport(socket->client->eio) : 0;
}

int sioc_socket_join(sioc_socket_t *socket, const char *room)
{
    if (socket->state != SIO_SOCKET_CONNECTED)
        return SIOC_ECLOSED;
    if (sioc_socket_in_room(socket, room))
        return 0;
    int rc = sioc__memory_adapter_join(socket->nsp->index, socket, room);
    sioc_socket_save_session(socket);
    if (rc == 0)
        SIOC__SIO_OBSERVE(socket->nsp->server, on_join, socket, room);
    return rc;
}

int sioc_socket_leave(sioc_socket_t *socket, const char *room)
{
    if (socket->state != SIO_SOCKET_CONNECTED)
        return SIOC_ECLOSED;
    if (!sioc_socket_in_room(socket, room))
        return 0;
    sioc__memory_adapter_leave(socket->nsp->index, socket, room);
    sioc_socket_save_session(socket);
    SIOC__SIO_OBSERVE(socket->nsp->server, on_leave, socket, room);
    return 0;
}

int sioc_socket_in_room(const sioc_socket_t *socket, const char *room)
{
    return sioc__memory_adapter_in_room(socket, room);
}

json_t *sioc_socket_rooms(const sioc_socket_t *socket)
{
    return sioc__memory_adapter_socket_rooms(socket);
}
