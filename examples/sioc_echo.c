/* sioc-echo: a Socket.IO server exercising every feature of libsioc, used by the integration
 * tests (tests/integration/ref/sioc-echo.js is the same server on Node's socket.io, and the
 * reference for its behaviour). It uses only the public header. */
#include <getopt.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sioc.h>
#include <sioc_adapter.h>

static sioc_server_t *server;
static sioc_redis_t *redis;
static int recovery_enabled;
static uv_signal_t signals[2];

/* What this server keeps per socket fits in the socket's user pointer, so that an idle socket
 * costs no block of ours: how many events it sent (the catch-all counts them), shifted left by
 * one, and in the lowest bit whether it has its packet middleware yet (see on_any). */
#define HAS_PACKET_MIDDLEWARE ((uintptr_t)1)

static uintptr_t socket_word(const sioc_socket_t *socket)
{
    return (uintptr_t)sioc_socket_get_user(socket);
}

static uintptr_t events_received(const sioc_socket_t *socket)
{
    return socket_word(socket) >> 1;
}

/* ---- middleware ------------------------------------------------------------------------------ */

typedef struct delayed_next_s {
    uv_timer_t timer;
    sioc_next_t *next;
} delayed_next_t;

static void on_delay_done(uv_timer_t *timer)
{
    delayed_next_t *delayed = timer->data;
    sioc_next(delayed->next);
    uv_close((uv_handle_t *)timer, (uv_close_cb)free);
}

/* The auth is read through copies (sioc_socket_auth_copy), so that an idle socket keeps it as
 * its compact text only, not as an object (about 220 bytes each). */
static void middleware(sioc_socket_t *socket, sioc_next_t *next, void *data)
{
    json_t *auth = sioc_socket_auth_copy(socket);
    json_t *refuse = json_object_get(auth, "refuse");
    double milliseconds = json_number_value(json_object_get(auth, "delay"));
    int delayed_next = json_is_number(json_object_get(auth, "delay"));
    int refused = 0, no_data = 0;
    if (refuse != NULL && !json_is_false(refuse) && !json_is_null(refuse) &&
        !(json_is_integer(refuse) && json_integer_value(refuse) == 0) &&
        !(json_is_string(refuse) && json_string_length(refuse) == 0)) {
        refused = 1;
        no_data = json_is_string(refuse) && strcmp(json_string_value(refuse), "no-data") == 0;
    }
    json_decref(auth);
    if (refused) {
        sioc_next_error(next, "refused", no_data ? NULL : json_pack("{s:s}", "reason", "test"));
        return;
    }
    if (!delayed_next) {
        sioc_next(next);
        return;
    }
    milliseconds = milliseconds < 0 ? 0 : milliseconds > 1000 ? 1000 : milliseconds;
    delayed_next_t *delayed = malloc(sizeof(*delayed));
    uv_timer_init(uv_default_loop(), &delayed->timer);
    delayed->timer.data = delayed;
    delayed->next = next;
    uv_timer_start(&delayed->timer, on_delay_done, (uint64_t)milliseconds, 0);
}

/* ---- helpers ------------------------------------------------------------------------------------
 */

/* Arguments from index first on, as a new array. */
static json_t *args_from(const sioc_event_t *event, size_t first)
{
    json_t *rest = json_array();
    for (size_t i = first; i < json_array_size(event->args); i++)
        json_array_append(rest, json_array_get(event->args, i));
    return rest;
}

static sioc_message_t message_from(const sioc_event_t *event, size_t first)
{
    sioc_message_t message = {args_from(event, first), event->attachments, event->attachment_count};
    return message;
}

static void ack(sioc_socket_t *socket, const sioc_event_t *event, json_t *value)
{
    if (event->ack_id >= 0)
        sioc_socket_ack(socket, event->ack_id, value ? json_pack("[o]", value) : json_array());
    else
        json_decref(value);
}

static const char *string_arg(const sioc_event_t *event, size_t index)
{
    return json_string_value(json_array_get(event->args, index));
}

/* A broadcast on the socket's namespace, narrowed to room when it is a string. */
static void broadcast_in(sioc_broadcast_t *broadcast, sioc_socket_t *socket, json_t *room)
{
    sioc_broadcast_init(broadcast, sioc_socket_namespace(socket));
    if (json_is_string(room))
        sioc_broadcast_to(broadcast, json_string_value(room));
}

/* ---- handlers -----------------------------------------------------------------------------------
 */

static void on_message(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    sioc_message_t message = message_from(event, 0);
    sioc_socket_emit_message(socket, "message-back", &message);
}

/* Registered as a pass-through handler: its arguments would go back as the bytes they came in,
 * but this server's catch-all and packet middleware see every event first, so they come parsed
 * (sioc_socket_ack_args handles both, attachments included). */
static void on_message_with_ack(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    if (event->ack_id >= 0)
        sioc_socket_ack_args(socket, event);
}

static void on_join(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    if (string_arg(event, 0) != NULL)
        sioc_socket_join(socket, string_arg(event, 0));
    ack(socket, event, sioc_socket_rooms(socket));
}

static void on_leave(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    if (string_arg(event, 0) != NULL)
        sioc_socket_leave(socket, string_arg(event, 0));
    ack(socket, event, sioc_socket_rooms(socket));
}

static void on_rooms(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    ack(socket, event, sioc_socket_rooms(socket));
}

static void on_to_room(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    const char *room = string_arg(event, 0);
    const char *name = string_arg(event, 1);
    if (room == NULL || name == NULL)
        return;
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, sioc_socket_namespace(socket));
    sioc_broadcast_to(&broadcast, room);
    sioc_message_t message = message_from(event, 2);
    sioc_broadcast_emit_message(&broadcast, name, &message);
}

/* Adds a string or every string of an array. */
static void add_rooms(sioc_broadcast_t *broadcast, json_t *rooms,
                      int (*add)(sioc_broadcast_t *, const char *))
{
    if (json_is_string(rooms)) {
        add(broadcast, json_string_value(rooms));
        return;
    }
    size_t index;
    json_t *room;
    json_array_foreach(rooms, index, room)
    {
        if (json_is_string(room))
            add(broadcast, json_string_value(room));
    }
}

static void on_to_rooms_except(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    json_t *selection = json_array_get(event->args, 0);
    const char *name = string_arg(event, 1);
    if (name == NULL)
        return;
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, sioc_socket_namespace(socket));
    add_rooms(&broadcast, json_object_get(selection, "to"), sioc_broadcast_to);
    add_rooms(&broadcast, json_object_get(selection, "except"), sioc_broadcast_except);
    sioc_message_t message = message_from(event, 2);
    sioc_broadcast_emit_message(&broadcast, name, &message);
}

static void on_broadcast(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    const char *name = string_arg(event, 0);
    if (name == NULL)
        return;
    sioc_broadcast_t broadcast;
    sioc_broadcast_init_from(&broadcast, socket);
    sioc_message_t message = message_from(event, 1);
    sioc_broadcast_emit_message(&broadcast, name, &message);
}

static void on_volatile(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    const char *name = string_arg(event, 0);
    if (name == NULL)
        return;
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, sioc_socket_namespace(socket));
    broadcast.flags |= SIOC_BROADCAST_VOLATILE;
    sioc_message_t message = message_from(event, 1);
    sioc_broadcast_emit_message(&broadcast, name, &message);
}

/* Node's nsp.compress(false).emit(): to the whole namespace, without compression. */
static void on_uncompressed(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    const char *name = string_arg(event, 0);
    if (name == NULL)
        return;
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, sioc_socket_namespace(socket));
    broadcast.flags |= SIOC_BROADCAST_NO_COMPRESS;
    sioc_message_t message = message_from(event, 1);
    sioc_broadcast_emit_message(&broadcast, name, &message);
}

/* Where an answer goes once an acknowledgement (or its timeout) comes back: the asking socket,
 * looked up again by id since it may have left meanwhile. */
typedef struct pending_answer_s {
    sioc_namespace_t *nsp;
    char socket_id[32];
    int64_t ack_id;
} pending_answer_t;

static pending_answer_t *pending_answer(sioc_socket_t *socket, const sioc_event_t *event)
{
    pending_answer_t *pending = calloc(1, sizeof(*pending));
    pending->nsp = sioc_socket_namespace(socket);
    snprintf(pending->socket_id, sizeof(pending->socket_id), "%s", sioc_socket_id(socket));
    pending->ack_id = event->ack_id;
    return pending;
}

/* Acknowledges with [value]; binary parts of value are placeholders into attachments. */
static void answer_with(pending_answer_t *pending, json_t *value, const sioc_binary_t *attachments,
                        size_t attachment_count)
{
    sioc_socket_t *socket = sioc_namespace_socket(pending->nsp, pending->socket_id);
    sioc_message_t message = {json_pack("[o]", value), attachments, attachment_count};
    if (socket != NULL && pending->ack_id >= 0)
        sioc_socket_ack_message(socket, pending->ack_id, &message);
    else
        json_decref(message.args);
    free(pending);
}

static void answer(pending_answer_t *pending, json_t *value)
{
    answer_with(pending, value, NULL, 0);
}

static void on_client_ack(sioc_socket_t *socket, int error, const sioc_event_t *response,
                          void *data)
{
    if (error != 0)
        answer(data, json_pack("{s:s}", "error", "operation has timed out"));
    else
        answer_with(data, json_pack("{s:O}", "response", response->args), response->attachments,
                    response->attachment_count);
}

static void on_server_ack(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    json_t *timeout = json_array_get(event->args, 0);
    const char *name = string_arg(event, 1);
    if (!json_is_number(timeout) || name == NULL)
        return;
    sioc_message_t message = message_from(event, 2);
    sioc_socket_emit_with_ack(socket, name, &message, (uint32_t)json_number_value(timeout),
                              on_client_ack, pending_answer(socket, event));
}

/* A copy of value whose placeholders point offset attachments further: answers from several
 * clients are merged into one acknowledgement with all their attachments side by side. */
static json_t *shift_placeholders(json_t *value, size_t offset)
{
    if (json_is_object(value) && json_is_true(json_object_get(value, "_placeholder")))
        return sioc_placeholder((size_t)json_integer_value(json_object_get(value, "num")) + offset);
    json_t *copy = json_is_array(value)    ? json_array()
                   : json_is_object(value) ? json_object()
                                           : NULL;
    if (copy == NULL)
        return json_incref(value);
    size_t index;
    const char *key;
    json_t *item;
    if (json_is_array(value)) {
        json_array_foreach(value, index, item)
        {
            json_array_append_new(copy, shift_placeholders(item, offset));
        }
    } else {
        json_object_foreach(value, key, item)
        {
            json_object_set_new(copy, key, shift_placeholders(item, offset));
        }
    }
    return copy;
}

static void on_broadcast_responses(int error, const sioc_event_t *responses, size_t count,
                                   void *data)
{
    /* Node's broadcast acks give each client's first argument. */
    json_t *firsts = json_array();
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += responses[i].attachment_count;
    sioc_binary_t *attachments = calloc(total + 1, sizeof(sioc_binary_t));
    size_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        json_t *first = json_array_get(responses[i].args, 0);
        json_array_append_new(firsts, first ? shift_placeholders(first, offset) : json_null());
        for (size_t j = 0; j < responses[i].attachment_count; j++)
            attachments[offset++] = responses[i].attachments[j];
    }
    json_t *error_value = error ? json_string("operation has timed out") : json_null();
    answer_with(data, json_pack("{s:o,s:o}", "error", error_value, "responses", firsts),
                attachments, total);
    free(attachments);
}

static void on_broadcast_ack(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    json_t *timeout = json_array_get(event->args, 0);
    const char *name = string_arg(event, 1);
    if (!json_is_number(timeout) || name == NULL)
        return;
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, sioc_socket_namespace(socket));
    sioc_message_t message = message_from(event, 2);
    sioc_broadcast_emit_with_ack(&broadcast, name, &message, (uint32_t)json_number_value(timeout),
                                 on_broadcast_responses, pending_answer(socket, event));
}

static int compare_ids(const void *left, const void *right)
{
    const char *a = json_string_value(json_object_get(*(json_t *const *)left, "id"));
    const char *b = json_string_value(json_object_get(*(json_t *const *)right, "id"));
    return strcmp(a, b);
}

/* The count values of items (each a reference it takes; items is freed) as an array, sorted. */
static json_t *sorted_array(json_t **items, size_t count,
                            int (*compare)(const void *left, const void *right))
{
    qsort(items, count, sizeof(json_t *), compare);
    json_t *list = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(list, items[i]);
    free(items);
    return list;
}

static void on_fetched(int error, json_t *sockets, void *data)
{
    size_t count = json_array_size(sockets);
    json_t **items = calloc(count + 1, sizeof(json_t *));
    for (size_t i = 0; i < count; i++) {
        json_t *socket = json_array_get(sockets, i);
        items[i] =
            json_pack("{s:O,s:O,s:O,s:O}", "id", json_object_get(socket, "id"), "rooms",
                      json_object_get(socket, "rooms"), "data", json_object_get(socket, "data"),
                      "auth", json_object_get(json_object_get(socket, "handshake"), "auth"));
    }
    answer(data, sorted_array(items, count, compare_ids));
}

static void on_fetch_sockets(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    sioc_broadcast_t broadcast;
    broadcast_in(&broadcast, socket, json_array_get(event->args, 0));
    sioc_broadcast_fetch_sockets(&broadcast, on_fetched, pending_answer(socket, event));
}

static void on_sockets_join(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    sioc_broadcast_t broadcast;
    broadcast_in(&broadcast, socket, json_array_get(event->args, 0));
    if (string_arg(event, 1) != NULL)
        sioc_broadcast_join(&broadcast, string_arg(event, 1));
    ack(socket, event, NULL);
}

static void on_sockets_leave(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    sioc_broadcast_t broadcast;
    broadcast_in(&broadcast, socket, json_array_get(event->args, 0));
    if (string_arg(event, 1) != NULL)
        sioc_broadcast_leave(&broadcast, string_arg(event, 1));
    ack(socket, event, NULL);
}

static void on_disconnect_sockets(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    int close = json_is_true(json_array_get(event->args, 1));
    sioc_broadcast_t broadcast;
    broadcast_in(&broadcast, socket, json_array_get(event->args, 0));
    ack(socket, event, NULL);
    sioc_broadcast_disconnect(&broadcast, close);
}

static void on_set_data(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    json_t *value = json_array_get(event->args, 0);
    sioc_socket_set_data(socket, json_incref(value));
    ack(socket, event, NULL);
}

static void on_get_data(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    ack(socket, event, json_incref(sioc_socket_data(socket)));
}

/* Node's socket.handshake as the compatibility tests compare it: what the request said. */
static void on_handshake(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    json_t *handshake = sioc_socket_handshake(socket);
    ack(socket, event,
        json_pack("{s:O,s:O,s:O}", "headers", json_object_get(handshake, "headers"), "query",
                  json_object_get(handshake, "query"), "url", json_object_get(handshake, "url")));
}

static void on_disconnect_me(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    sioc_socket_disconnect(socket, json_is_true(json_array_get(event->args, 0)));
}

static void on_server_side_emit(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    sioc_namespace_server_side_emit(sioc_socket_namespace(socket), "ping", NULL);
    ack(socket, event, json_string("ok"));
}

static void on_server_side_emit_event(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    const char *name = string_arg(event, 0);
    if (name != NULL)
        sioc_namespace_server_side_emit(sioc_socket_namespace(socket), name, args_from(event, 1));
    ack(socket, event, json_string("ok"));
}

static void on_server_side_responses(int error, json_t *responses, void *data)
{
    json_t *error_value = error ? json_string("timeout reached") : json_null();
    answer(data, json_pack("{s:o,s:O}", "error", error_value, "responses", responses));
}

static void on_server_side_emit_ack(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    const char *name = string_arg(event, 0);
    if (name == NULL)
        return;
    sioc_namespace_server_side_emit_with_ack(sioc_socket_namespace(socket), name,
                                             args_from(event, 1), on_server_side_responses,
                                             pending_answer(socket, event));
}

static void on_server_count_known(size_t servers, void *data)
{
    answer(data, json_integer((json_int_t)servers));
}

static void on_server_count(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    sioc_namespace_server_count(sioc_socket_namespace(socket), on_server_count_known,
                                pending_answer(socket, event));
}

static int compare_strings(const void *left, const void *right)
{
    return strcmp(json_string_value(*(json_t *const *)left),
                  json_string_value(*(json_t *const *)right));
}

/* The rooms sorted (each server's come in their own order), or Node's rejection. */
static void on_all_rooms_known(int error, json_t *rooms, void *data)
{
    if (error != 0) {
        answer(data,
               json_pack("{s:s}", "error", "timeout reached while waiting for allRooms response"));
        return;
    }
    size_t count = json_array_size(rooms);
    json_t **items = calloc(count + 1, sizeof(json_t *));
    for (size_t i = 0; i < count; i++)
        items[i] = json_incref(json_array_get(rooms, i));
    answer(data, sorted_array(items, count, compare_strings));
}

static void on_all_rooms(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    sioc_namespace_all_rooms(sioc_socket_namespace(socket), on_all_rooms_known,
                             pending_answer(socket, event));
}

/* Another server's serverSideEmit: told to this server's clients, answered with "pong". */
static void on_other_server(sioc_namespace_t *nsp, const sioc_event_t *event,
                            sioc_adapter_reply_t *reply, void *data)
{
    json_t *args = json_pack("[s]", event->name);
    json_array_extend(args, event->args);
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, nsp);
    broadcast.flags |= SIOC_BROADCAST_LOCAL;
    sioc_broadcast_emit(&broadcast, "server-side", args);
    if (reply != NULL)
        sioc_adapter_reply(reply, json_string("pong"));
}

static void on_count(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    ack(socket, event, json_integer((json_int_t)events_received(socket) - 1));
}

static void on_recovered(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    ack(socket, event, json_boolean(sioc_socket_recovered(socket)));
}

/* Packet middleware (socket.use), as the reference: "forbidden" is refused, "slow" waits. */
typedef struct slow_event_s {
    uv_timer_t timer;
    sioc_event_next_t *next;
} slow_event_t;

static void on_slow_timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void on_slow_done(uv_timer_t *timer)
{
    slow_event_t *slow = timer->data;
    sioc_event_next(slow->next, NULL);
    uv_close((uv_handle_t *)&slow->timer, on_slow_timer_closed);
}

static void packet_middleware(sioc_socket_t *socket, const sioc_event_t *event,
                              sioc_event_next_t *next, void *data)
{
    if (strcmp(event->name, "forbidden") == 0) {
        sioc_event_next(next, "forbidden event");
        return;
    }
    slow_event_t *slow = strcmp(event->name, "slow") == 0 ? malloc(sizeof(*slow)) : NULL;
    if (slow == NULL) {
        sioc_event_next(next, NULL);
        return;
    }
    slow->next = next;
    slow->timer.data = slow;
    uv_timer_init(uv_default_loop(), &slow->timer);
    uv_timer_start(&slow->timer, on_slow_done, 100, 0);
}

static void on_socket_error(sioc_socket_t *socket, const char *message, void *data)
{
    sioc_socket_emit(socket, "middleware-error", json_pack("[s]", message));
}

static int packet_middleware_acts_on(const char *event)
{
    return strcmp(event, "forbidden") == 0 || strcmp(event, "slow") == 0;
}

/* A socket's packet middleware takes a block of the library's (about 80 bytes), and this
 * middleware only acts on two events: it is installed on a socket's first
 * such event, from here, as the catch-all runs before the middlewares (Node's order). For
 * every other event next() would have been the answer, so the socket behaves as if it had had
 * the middleware from its connection on. */
static void on_any(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    uintptr_t word = socket_word(socket) + 2; /* one more event */
    if (packet_middleware_acts_on(event->name) && !(word & HAS_PACKET_MIDDLEWARE) &&
        sioc_socket_use(socket, packet_middleware, NULL) == 0)
        word |= HAS_PACKET_MIDDLEWARE;
    sioc_socket_set_user(socket, (void *)word);
}

static void on_connection(sioc_socket_t *socket, void *data)
{
    json_t *auth = sioc_socket_auth_copy(socket);
    sioc_socket_emit(socket, "auth", json_pack("[O]", auth));
    const char *room = json_string_value(json_object_get(auth, "room"));
    if (room != NULL)
        sioc_socket_join(socket, room);
    json_decref(auth);
}

static void on_disconnect(sioc_socket_t *socket, const char *reason, void *data)
{
    sioc_namespace_t *nsp = sioc_socket_namespace(socket);
    if (strcmp(sioc_namespace_name(nsp), "/") == 0) {
        sioc_broadcast_t broadcast;
        sioc_broadcast_init(&broadcast, nsp);
        sioc_broadcast_emit(&broadcast, "left", json_pack("[s,s]", sioc_socket_id(socket), reason));
    }
}

static const struct {
    const char *event;
    sioc_event_cb callback;
} handlers[] = {
    {"message", on_message},
    {"message-with-ack", on_message_with_ack},
    {"join", on_join},
    {"leave", on_leave},
    {"rooms", on_rooms},
    {"to-room", on_to_room},
    {"to-rooms-except", on_to_rooms_except},
    {"broadcast", on_broadcast},
    {"volatile", on_volatile},
    {"uncompressed", on_uncompressed},
    {"server-ack", on_server_ack},
    {"broadcast-ack", on_broadcast_ack},
    {"fetch-sockets", on_fetch_sockets},
    {"sockets-join", on_sockets_join},
    {"sockets-leave", on_sockets_leave},
    {"disconnect-sockets", on_disconnect_sockets},
    {"set-data", on_set_data},
    {"get-data", on_get_data},
    {"handshake", on_handshake},
    {"disconnect-me", on_disconnect_me},
    {"server-side-emit", on_server_side_emit},
    {"server-side-emit-event", on_server_side_emit_event},
    {"server-side-emit-ack", on_server_side_emit_ack},
    {"server-count", on_server_count},
    {"all-rooms", on_all_rooms},
    {"count", on_count},
    {"slow", on_message_with_ack},
};

static void setup_namespace(sioc_namespace_t *nsp)
{
    sioc_namespace_use(nsp, middleware, NULL);
    sioc_namespace_on_connection(nsp, on_connection, NULL);
    sioc_namespace_on_disconnect(nsp, on_disconnect, NULL);
    sioc_namespace_on_any(nsp, on_any, NULL);
    sioc_namespace_on_socket_error(nsp, on_socket_error, NULL);
    sioc_namespace_on_server_side_emit(nsp, on_other_server, NULL);
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
        if (handlers[i].callback == on_message_with_ack)
            sioc_namespace_on_passthrough(nsp, handlers[i].event, handlers[i].callback, NULL);
        else
            sioc_namespace_on(nsp, handlers[i].event, handlers[i].callback, NULL);
    }
    if (recovery_enabled)
        sioc_namespace_on(nsp, "recovered", on_recovered, NULL);
}

static regex_t dynamic_pattern;

static int accept_dynamic(const char *name, json_t *auth, void *data)
{
    return regexec(&dynamic_pattern, name, 0, NULL, 0) == 0;
}

/* ---- main -------------------------------------------------------------------------------------
 */

static void on_server_closed(void *data)
{
    /* The namespaces (and their adapters) are gone: the connections can go. */
    sioc_redis_free(redis);
    redis = NULL;
}

static void on_signal(uv_signal_t *handle, int signum)
{
    uv_close((uv_handle_t *)&signals[0], NULL);
    uv_close((uv_handle_t *)&signals[1], NULL);
    sioc_server_close(server, on_server_closed, NULL);
}

typedef struct cluster_options_s {
    const char *redis_url;
    sioc_redis_mode_t mode;
    sioc_redis_subscription_t subscription_mode;
    uint32_t requests_timeout_ms;
} cluster_options_t;

static cluster_options_t cluster;
static const char *tls_cert, *tls_key;

static int parse_options(int argc, char **argv, sioc_server_options_t *options, const char **host,
                         int *port)
{
    static const struct option long_options[] = {
        {"host", required_argument, 0, 'h'},
        {"port", required_argument, 0, 'p'},
        {"path", required_argument, 0, 'P'},
        {"ping-interval", required_argument, 0, 'i'},
        {"ping-timeout", required_argument, 0, 't'},
        {"connect-timeout", required_argument, 0, 'C'},
        {"cors", required_argument, 0, 'c'},
        {"recovery", no_argument, 0, 'r'},
        {"parser", required_argument, 0, 'm'},
        {"redis", required_argument, 0, 'R'},
        {"redis-mode", required_argument, 0, 'M'},
        {"redis-requests-timeout", required_argument, 0, 'T'},
        {"redis-subscription-mode", required_argument, 0, 'S'},
        {"per-message-deflate", no_argument, 0, 'D'},
        {"tls-cert", required_argument, 0, 'X'},
        {"tls-key", required_argument, 0, 'K'},
        /* past the letters: options added side by side kept picking the same one */
        {"max-disconnection-duration", required_argument, 0, 256},
        {"allow-eio3", no_argument, 0, 257},
        {0, 0, 0, 0},
    };
    static const char *cors[64];
    size_t cors_count = 0;
    int option;
    while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (option) {
        case 'h':
            *host = optarg;
            break;
        case 'p':
            *port = atoi(optarg);
            break;
        case 'P':
            options->engine.path = optarg;
            break;
        case 'i':
            options->engine.ping_interval_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 't':
            options->engine.ping_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'C':
            options->connect_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            if (cors_count < sizeof(cors) / sizeof(cors[0]))
                cors[cors_count++] = optarg;
            break;
        case 'r':
            options->recovery = recovery_enabled = 1;
            break;
        case 'D':
            options->engine.per_message_deflate = 1;
            break;
        case 257:
            options->engine.allow_eio3 = 1;
            break;
        case 'm':
            if (strcmp(optarg, "msgpack") != 0 && strcmp(optarg, "default") != 0)
                return -1;
            options->parser =
                strcmp(optarg, "msgpack") == 0 ? SIOC_PARSER_MSGPACK : SIOC_PARSER_JSON;
            break;
        case 'R':
            cluster.redis_url = optarg;
            break;
        case 'M':
            if (strcmp(optarg, "classic") == 0)
                cluster.mode = SIOC_REDIS_CLASSIC;
            else if (strcmp(optarg, "sharded") == 0)
                cluster.mode = SIOC_REDIS_SHARDED;
            else if (strcmp(optarg, "streams") == 0)
                cluster.mode = SIOC_REDIS_STREAMS;
            else
                return -1;
            break;
        case 256:
            options->max_disconnection_duration_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'T':
            cluster.requests_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'S':
            if (strcmp(optarg, "dynamic") == 0)
                cluster.subscription_mode = SIOC_REDIS_DYNAMIC;
            else if (strcmp(optarg, "static") == 0)
                cluster.subscription_mode = SIOC_REDIS_STATIC;
            else if (strcmp(optarg, "dynamic-private") == 0)
                cluster.subscription_mode = SIOC_REDIS_DYNAMIC_PRIVATE;
            else
                return -1;
            break;
        case 'X':
            tls_cert = optarg;
            break;
        case 'K':
            tls_key = optarg;
            break;
        default:
            return -1;
        }
    }
    if ((tls_cert == NULL) != (tls_key == NULL))
        return -1;
    if (cors_count > 0) {
        options->engine.cors_origins = cors;
        options->engine.cors_origin_count = cors_count;
        options->engine.cors_credentials = strcmp(cors[0], "*") != 0;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 3000;
    sioc_server_options_t options;
    sioc_server_options_init(&options);
    if (parse_options(argc, argv, &options, &host, &port) != 0) {
        fprintf(stderr,
                "usage: %s [--host H] [--port P] [--path /socket.io/] [--ping-interval MS]\n"
                "       [--ping-timeout MS] [--connect-timeout MS] [--cors ORIGIN]...\n"
                "       [--recovery] [--parser msgpack] [--redis redis://HOST:PORT]\n"
                "       [--redis-mode classic|sharded|streams] [--redis-requests-timeout MS]\n"
                "       [--redis-subscription-mode dynamic|static|dynamic-private]\n"
                "       [--per-message-deflate] [--tls-cert CHAIN.pem --tls-key KEY.pem]\n"
                "       [--max-disconnection-duration MS] [--allow-eio3]\n",
                argv[0]);
        return 2;
    }
    regcomp(&dynamic_pattern, "^/dynamic-[0-9]+$", REG_EXTENDED | REG_NOSUB);
    uv_loop_t *loop = uv_default_loop();
    if (cluster.redis_url != NULL) {
        sioc_redis_options_t redis_options;
        sioc_redis_options_init(&redis_options);
        redis_options.url = cluster.redis_url;
        redis_options.mode = cluster.mode;
        redis_options.subscription_mode = cluster.subscription_mode;
        if (cluster.requests_timeout_ms > 0)
            redis_options.requests_timeout_ms = cluster.requests_timeout_ms;
        int redis_rc = sioc_redis_new(loop, &redis_options, &redis);
        if (redis_rc != 0) {
            fprintf(stderr, "sioc-echo: --redis %s: %s\n", cluster.redis_url,
                    uv_strerror(redis_rc));
            return 2;
        }
        options.adapter = sioc_redis_adapter_factory;
        options.adapter_data = redis;
        /* Streams mode keeps recovery's log and sessions in Redis, where Node's streams adapter
         * keeps them; the other modes keep them in this process. */
        if (options.recovery && cluster.mode == SIOC_REDIS_STREAMS)
            options.recovery_store = sioc_redis_recovery_store(redis);
    }
    if (tls_cert != NULL) {
        char error[256];
        options.engine.tls.context = sioc_tls_context_new(tls_cert, tls_key, error, sizeof(error));
        if (options.engine.tls.context == NULL) {
            fprintf(stderr, "sioc-echo: TLS: %s\n", error);
            return 2;
        }
    }
    int rc = sioc_server_new(loop, &options, &server);
    sioc_tls_context_free(options.engine.tls.context); /* the server holds its own reference */
    if (rc == 0)
        rc = sioc_server_listen(server, host, port);
    if (rc != 0) {
        fprintf(stderr, "sioc-echo: cannot listen on %s:%d: %s\n", host, port, uv_strerror(rc));
        return 1;
    }
    setup_namespace(sioc_server_of(server, "/"));
    setup_namespace(sioc_server_of(server, "/custom"));
    setup_namespace(sioc_server_of_dynamic(server, accept_dynamic, NULL));
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 2; i++) {
        uv_signal_init(loop, &signals[i]);
        uv_signal_start(&signals[i], on_signal, i == 0 ? SIGTERM : SIGINT);
    }
    /* Only once SIGTERM is ours: a test that stops the server right after this line must not
     * find the default action (death by the signal) still in place. */
    printf("listening on %s:%d\n", host, sioc_server_port(server));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    regfree(&dynamic_pattern);
    uv_loop_close(loop);
    return 0;
}
