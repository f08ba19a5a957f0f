/* Engine.IO sessions: creation, packets from the client, sending, heartbeat (server pings,
 * client pongs, as in v4), closing and deferred freeing. */
#include <stdlib.h>
#include <string.h>

#include "engineio/eio_internal.h"
#include "engineio/eio_send.h"

#define SOCKET_FROM(member, pointer)                                                               \
    ((sioc_eio_socket_t *)((char *)(pointer)-offsetof(sioc_eio_socket_t, member)))

/* Where the layer above's bytes start: after the session, aligned for what it keeps there. */
typedef union {
    void *pointer;
    uint64_t integer;
    double number;
} extra_alignment_t;
#define EXTRA_OFFSET                                                                               \
    ((sizeof(sioc_eio_socket_t) + _Alignof(extra_alignment_t) - 1) &                               \
     ~(_Alignof(extra_alignment_t) - 1))

sioc_eio_socket_t *sioc__eio_socket_new(sioc_eio_server_t *server, sioc_transport_t transport)
{
    sioc_eio_socket_t *socket = calloc(
        1, EXTRA_OFFSET + (server->session_extra > 0 ? server->session_extra : sizeof(void *)));
    if (socket == NULL)
        return NULL;
    socket->has_extra = server->session_extra > 0;
    /* A collision among 2^120 ids is not a practical concern, but checking is free. */
    do {
        if (sioc__random_id(socket->id) != 0) {
            free(socket);
            return NULL;
        }
    } while (sioc__eio_socket_find(server, socket->id) != NULL);
    /* Only a session that starts on polling can poll (an upgrade never goes back). */
    if (transport == SIOC_TRANSPORT_POLLING) {
        socket->polling = calloc(1, sizeof(*socket->polling));
        if (socket->polling == NULL) {
            free(socket);
            return NULL;
        }
        socket->polling->socket = socket;
    }
    if (sioc__index_add(&server->sessions, socket) != 0) {
        free(socket->polling);
        free(socket);
        return NULL;
    }
    socket->limits = server->limits;
    socket->limits->sessions++;
    socket->transport = (uint8_t)transport;
    socket->state = EIO_SOCKET_OPEN;
    socket->protocol = 4;
    server->socket_count++;
    return socket;
}

sioc_eio_socket_t *sioc__eio_socket_find(sioc_eio_server_t *server, const char *id)
{
    return sioc__index_find(&server->sessions, id);
}

/* v4: the server pings after each interval. v3: the client pings, and a client silent for
 * interval + timeout is gone (Node's resetPingTimeout for protocol 3). */
void sioc__eio_socket_start_heartbeat(sioc_eio_socket_t *socket)
{
    if (socket->protocol == 3)
        sioc__deadline_arm(&socket->limits->ping_timeout_v3, &socket->heartbeat);
    else
        sioc__deadline_arm(&socket->limits->ping_interval, &socket->heartbeat);
}

void sioc__eio_on_ping_interval(sioc__deadline_list_t *list, sioc__deadline_t *deadline)
{
    sioc_eio_socket_t *socket = SOCKET_FROM(heartbeat, deadline);
    socket->awaiting_pong = 1;
    sioc__eio_socket_send_packet(socket, sioc__eio_socket_server(socket)->ping_packet, 0);
    if (socket->state == EIO_SOCKET_OPEN)
        sioc__deadline_arm(&socket->limits->ping_timeout, &socket->heartbeat);
}

void sioc__eio_on_ping_timeout(sioc__deadline_list_t *list, sioc__deadline_t *deadline)
{
    sioc__eio_socket_close(SOCKET_FROM(heartbeat, deadline), "ping timeout");
}

static void on_pong(sioc_eio_socket_t *socket)
{
    /* A pong nobody asked for is ignored (python-engineio's CVE-2026-48802 lesson: unsolicited
     * pongs must not create work). */
    if (!socket->awaiting_pong)
        return;
    socket->awaiting_pong = 0;
    sioc__deadline_arm(&socket->limits->ping_interval, &socket->heartbeat);
}

void sioc__eio_socket_on_packet(sioc_eio_socket_t *socket, const sioc__eio_packet_t *packet)
{
    sioc_eio_server_t *server = sioc__eio_socket_server(socket);
    switch (packet->type) {
    case SIOC_EIO_MESSAGE:
        server->stats.messages_in++;
        server->stats.message_bytes_in += packet->length;
        if (server->callbacks.on_message != NULL)
            server->callbacks.on_message(socket, packet->data, packet->length, packet->binary,
                                         server->data);
        break;
    case SIOC_EIO_PONG:
        /* v3: only the server pongs. Node closes with "invalid heartbeat direction". */
        if (socket->protocol == 3)
            sioc__eio_socket_close(socket, "transport error");
        else
            on_pong(socket);
        break;
    case SIOC_EIO_PING:
        /* v4: only the server pings (same error). v3: the client's ping, answered. */
        if (socket->protocol == 3) {
            sioc__eio_socket_start_heartbeat(socket);
            sioc__eio_socket_send_packet(socket, server->pong_packet, 0);
        } else {
            sioc__eio_socket_close(socket, "transport error");
        }
        break;
    case SIOC_EIO_CLOSE:
        socket->client_closed = 1;
        sioc__eio_socket_close(socket, "transport close");
        break;
    default:
        /* open, upgrade and noop mean nothing on an established transport; Node ignores them. */
        break;
    }
}

static int queue_for_polling(sioc_eio_socket_t *socket, sioc__buffer_t *packet)
{
    sioc__eio_polling_t *polling = socket->polling;
    if (polling->queue_length == polling->queue_capacity) {
        uint32_t capacity = polling->queue_capacity ? polling->queue_capacity * 2 : 8;
        sioc__buffer_t **queue = realloc(polling->queue, capacity * sizeof(*queue));
        if (queue == NULL)
            return SIOC_ENOMEM;
        polling->queue = queue;
        polling->queue_capacity = capacity;
    }
    polling->queue[polling->queue_length++] = sioc__buffer_ref(packet);
    polling->queued_bytes += packet->length;
    if (polling->held_get != NULL)
        sioc__eio_polling_mark_ready(socket);
    return 0;
}

static size_t buffered_bytes(const sioc_eio_socket_t *socket)
{
    size_t bytes = socket->polling != NULL ? socket->polling->queued_bytes : 0;
    if (socket->websocket != NULL)
        bytes += sioc__conn_buffered_bytes(sioc__eio_websocket_conn(socket->websocket));
    return bytes;
}

/* Volatile packets go only where they can leave now: Node drops them unless the transport is
 * writable (a held GET for polling; a socket the kernel keeps up with for WebSocket). */
static int can_send_volatile(const sioc_eio_socket_t *socket);

int sioc__eio_socket_send_buffer(sioc_eio_socket_t *socket, sioc__buffer_t *packet)
{
    return sioc__eio_socket_send_packet(socket, packet, 0);
}

int sioc__eio_socket_writable(const sioc_eio_socket_t *socket)
{
    return socket->state == EIO_SOCKET_OPEN && !socket->overflowed && can_send_volatile(socket);
}

void sioc__eio_socket_close_with_reason(sioc_eio_socket_t *socket, const char *reason)
{
    sioc__eio_socket_close(socket, reason);
}

static int can_send_volatile(const sioc_eio_socket_t *socket)
{
    if (socket->polling == NULL) /* on WebSocket, with no upgrade in progress */
        return sioc__eio_websocket_conn(socket->websocket)->in_flight_bytes == 0;
    return socket->polling->held_get != NULL && socket->polling->queue_length == 0;
}

/* Only messages count (a binary buffer is one; text starts with its packet type), without
 * their type byte. */
static void count_outgoing(sioc_eio_stats_t *stats, const sioc__buffer_t *packet)
{
    if (packet->binary) {
        stats->messages_out++;
        stats->message_bytes_out += packet->length;
    } else if (packet->length > 0 && packet->data[0] == '0' + SIOC_EIO_MESSAGE) {
        stats->messages_out++;
        stats->message_bytes_out += packet->length - 1;
    }
}

int sioc__eio_socket_send_packet(sioc_eio_socket_t *socket, sioc__buffer_t *packet, int is_volatile)
{
    if (socket->state != EIO_SOCKET_OPEN)
        return SIOC_ECLOSED;
    if (socket->overflowed)
        return SIOC_ENOBUFS;
    if (is_volatile && !can_send_volatile(socket))
        return 0;
    if (buffered_bytes(socket) + packet->length > socket->limits->max_buffered_bytes) {
        if (is_volatile)
            return 0;
        /* A reader this far behind would make memory grow without bound: cut it off. Not here
         * but at the end of the iteration: the caller may be in the middle of a broadcast, and
         * closing runs the application's disconnect hooks. */
        socket->overflowed = 1;
        sioc__eio_socket_server(socket)->stats.slow_reader_closes++;
        sioc__eio_polling_mark_ready(socket);
        return SIOC_ENOBUFS;
    }
    count_outgoing(&sioc__eio_socket_server(socket)->stats, packet);
    /* While an upgrade is in progress packets stay on polling, as in Node; they move to the
     * WebSocket when the upgrade completes. */
    if (socket->transport == SIOC_TRANSPORT_WEBSOCKET)
        return sioc__eio_websocket_send(socket->websocket, packet) == 0 ? 0 : SIOC_ECLOSED;
    return queue_for_polling(socket, packet);
}

static void release_queue(sioc__eio_polling_t *polling)
{
    for (uint32_t i = 0; i < polling->queue_length; i++)
        sioc__buffer_unref(polling->queue[i]);
    free(polling->queue);
    polling->queue = NULL;
    polling->queue_length = polling->queue_capacity = 0;
    polling->queued_bytes = 0;
}

static void detach_websocket(sioc__eio_websocket_t *websocket)
{
    if (websocket == NULL)
        return;
    websocket->socket = NULL;
    /* Node closes the WebSocket with a bare close frame (ws close() without a code). */
    sioc__eio_websocket_close(websocket, 0, NULL);
}

/* Takes the session out of the server and queues it for freeing. */
static void finalize(sioc_eio_socket_t *socket)
{
    sioc_eio_server_t *server = sioc__eio_socket_server(socket);
    socket->state = EIO_SOCKET_CLOSED;
    sioc__index_remove(&server->sessions, socket);
    server->socket_count--;
    sioc__deadline_disarm(&socket->heartbeat);
    detach_websocket(socket->websocket);
    socket->websocket = NULL;
    sioc__eio_polling_t *polling = socket->polling;
    if (polling != NULL) {
        sioc__deadline_disarm(&polling->upgrade_deadline);
        /* A held GET gets what was still queued and then a close packet (Node's polling
         * doClose). When the client closed, Node's polling onClose() releases the GET with a
         * noop instead, after what it had already sent it (Node writes to a waiting GET at
         * once). */
        if (socket->client_closed)
            sioc__eio_polling_answer_now(socket,
                                         polling->queue_length > 0 ? NULL : server->noop_packet);
        else
            sioc__eio_polling_answer_now(socket, server->close_packet);
        release_queue(polling);
        detach_websocket(polling->probe);
        polling->probe = NULL;
    }
    /* Freed at the end of the loop iteration: callers up the stack may still hold it. */
    if (!socket->in_flush_list) {
        socket->next_in_list = server->reap_list;
        server->reap_list = socket;
    }
}

/* A close the server asked for lets queued polling packets leave first, in a response of their
 * own: socket.io-client handles decoded packets a tick later but a close packet at once, so a
 * DISCONNECT sharing a response with the close would be lost. Errors do not wait. */
static int should_drain(const sioc_eio_socket_t *socket, const char *reason)
{
    return strcmp(reason, "forced close") == 0 && socket->transport == SIOC_TRANSPORT_POLLING &&
           socket->polling->queue_length > 0 && !socket->overflowed &&
           socket->polling->probe == NULL;
}

static const char *const close_reasons[SIOC_EIO_CLOSE_REASON_COUNT] = {
    "transport close", "transport error", "ping timeout",
    "parse error",     "forced close",    "server shutting down",
};

const char *sioc_eio_close_reason(int index)
{
    return index >= 0 && index < SIOC_EIO_CLOSE_REASON_COUNT ? close_reasons[index] : NULL;
}

static void count_close(sioc_eio_stats_t *stats, const char *reason)
{
    stats->sessions_closed++;
    for (int i = 0; i < SIOC_EIO_CLOSE_REASON_COUNT; i++) {
        if (strcmp(reason, close_reasons[i]) == 0) {
            stats->sessions_closed_by_reason[i]++;
            return;
        }
    }
}

void sioc__eio_socket_close(sioc_eio_socket_t *socket, const char *reason)
{
    if (socket->state == EIO_SOCKET_DRAINING) {
        finalize(socket); /* the GET came, or never will */
        return;
    }
    if (socket->state == EIO_SOCKET_CLOSED)
        return;
    sioc_eio_server_t *server = sioc__eio_socket_server(socket);
    if (should_drain(socket, reason)) {
        socket->state = EIO_SOCKET_DRAINING;
        sioc__eio_polling_answer_now(socket, NULL);
        /* The next GET gets the close packet, a POST means the client is leaving anyway
         * (eio_polling.c); a client that does neither is let go after a ping timeout. */
        sioc__deadline_arm(&socket->limits->ping_timeout, &socket->heartbeat);
    } else {
        finalize(socket);
    }
    count_close(&server->stats, reason);
    if (server->callbacks.on_close != NULL)
        server->callbacks.on_close(socket, reason, server->data);
}

void sioc__eio_socket_reap(sioc_eio_server_t *server)
{
    while (server->reap_list != NULL) {
        sioc_eio_socket_t *socket = server->reap_list;
        server->reap_list = socket->next_in_list;
        if (!server->closing) /* closing: the server closes every set */
            sioc__eio_limits_release(socket->limits);
        free(socket->polling);
        free(socket);
    }
}

void sioc__eio_on_upgrade_timeout(sioc__deadline_list_t *list, sioc__deadline_t *deadline)
{
    sioc__eio_polling_t *polling =
        (sioc__eio_polling_t *)((char *)deadline - offsetof(sioc__eio_polling_t, upgrade_deadline));
    sioc__eio_websocket_t *probe = polling->probe;
    polling->probe = NULL;
    if (probe != NULL) {
        probe->socket = NULL;
        sioc__eio_websocket_close(probe, 0, NULL);
    }
}

/* ---- public API ---------------------------------------------------------------------------- */

int sioc_eio_socket_send(sioc_eio_socket_t *socket, const void *bytes, size_t length, int binary)
{
    if (socket->state != EIO_SOCKET_OPEN)
        return SIOC_ECLOSED;
    sioc__buffer_t *packet = binary ? sioc__buffer_new_copy(bytes, length, 1)
                                    : sioc__buffer_new_prefixed('4', bytes, length, 0);
    if (packet == NULL)
        return SIOC_ENOMEM;
    int rc = sioc__eio_socket_send_packet(socket, packet, 0);
    sioc__buffer_unref(packet);
    return rc;
}

void sioc_eio_socket_close(sioc_eio_socket_t *socket)
{
    sioc__eio_socket_close(socket, "forced close");
}

const char *sioc_eio_socket_id(const sioc_eio_socket_t *socket)
{
    return socket->id;
}

sioc_transport_t sioc_eio_socket_transport(const sioc_eio_socket_t *socket)
{
    return (sioc_transport_t)socket->transport;
}

int sioc_eio_socket_protocol(const sioc_eio_socket_t *socket)
{
    return socket->protocol;
}

void sioc__eio_server_set_session_extra(sioc_eio_server_t *server, size_t size)
{
    server->session_extra = size;
}

void *sioc__eio_socket_extra(sioc_eio_socket_t *socket)
{
    return socket->has_extra ? (char *)socket + EXTRA_OFFSET : NULL;
}

/* The data pointer is in the bytes after the session when no layer above has them (see
 * has_extra); such a layer does not call these. */
void sioc_eio_socket_set_data(sioc_eio_socket_t *socket, void *data)
{
    if (!socket->has_extra)
        *(void **)((char *)socket + EXTRA_OFFSET) = data;
}

void *sioc_eio_socket_get_data(const sioc_eio_socket_t *socket)
{
    return socket->has_extra ? NULL : *(void *const *)((const char *)socket + EXTRA_OFFSET);
}

sioc_eio_server_t *sioc_eio_socket_server(const sioc_eio_socket_t *socket)
{
    return sioc__eio_socket_server(socket);
}
