/* chat: a small StudyConnect-style chat server on libsioc, written to be read as the model of
 * how to use the Socket.IO API. It uses only the public header.
 *
 *   chat [--host 127.0.0.1] [--port 3000]
 *
 * Clients connect to "/" with auth {token, name}. Events (client -> server):
 *   room:join {roomId}           join "room:<roomId>"; the others get room:userJoined
 *   room:leave {roomId}          leave it; the others get room:userLeft
 *   message:send {roomId, text}  the whole room gets message:received; ack {ok:true, id}
 *   dm:send {recipientId, text}  the recipient and the sender get dm:received; ack {ok:true, id}
 *   typing:start / typing:stop {roomId}   the others in the room get typing:update
 * Every event may ask for an acknowledgement: {ok:true} or {ok:false, error}. Without one, errors
 * of message:send and dm:send come as message:error / dm:error {message}.
 * Everyone gets user:status {userId, status} when a user comes online or goes offline. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sioc.h>

#define MAX_ID_BYTES 128    /* user and room ids: bounded so room names fit a fixed buffer */
#define MAX_TEXT_BYTES 2000 /* a chat message */
#define ROOM_NAME_SIZE (MAX_ID_BYTES + 8)

static sioc_server_t *server;
static uv_signal_t signal_handles[2];
static json_int_t last_message_id; /* stands in for a database's message ids */

/* ---- small helpers -------------------------------------------------------------------------- */

/* object[key] if it is a string of 1..max_bytes bytes without NUL inside, else NULL. */
static const char *string_member(json_t *object, const char *key, size_t max_bytes)
{
    json_t *value = json_object_get(object, key);
    const char *text = json_string_value(value);
    if (text == NULL)
        return NULL;
    size_t length = json_string_length(value);
    if (length == 0 || length > max_bytes || strlen(text) != length)
        return NULL;
    return text;
}

/* The event's first argument: every chat event carries one object. */
static json_t *payload_of(const sioc_event_t *event)
{
    return json_array_get(event->args, 0);
}

/* The user the middleware stored in the socket's data. Socket data, rather than a pointer set
 * with sioc_socket_set_user, needs no freeing and would survive a recovered reconnection. */
static const char *user_id(sioc_socket_t *socket)
{
    return json_string_value(json_object_get(sioc_socket_data(socket), "userId"));
}

static const char *user_name(sioc_socket_t *socket)
{
    return json_string_value(json_object_get(sioc_socket_data(socket), "name"));
}

/* Now in ISO-8601 UTC with milliseconds, as JavaScript's Date.prototype.toISOString(). */
static void format_now(char *out, size_t size)
{
    uv_timeval64_t now;
    uv_gettimeofday(&now);
    time_t seconds = (time_t)now.tv_sec;
    struct tm utc;
    gmtime_r(&seconds, &utc);
    size_t length = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(out + length, size - length, ".%03dZ", (int)(now.tv_usec / 1000 % 1000));
}

/* ---- answering the client ------------------------------------------------------------------- */

/* Acknowledges the event with one argument (taken), when the client asked for an ack. */
static void reply(sioc_socket_t *socket, const sioc_event_t *event, json_t *value)
{
    if (event->ack_id >= 0)
        sioc_socket_ack(socket, event->ack_id, json_pack("[o]", value));
    else
        json_decref(value);
}

static void reply_ok(sioc_socket_t *socket, const sioc_event_t *event)
{
    reply(socket, event, json_pack("{s:b}", "ok", 1));
}

/* Through the ack when there is one, else as error_event {message} (unless NULL). */
static void reply_error(sioc_socket_t *socket, const sioc_event_t *event, const char *error_event,
                        const char *message)
{
    if (event->ack_id >= 0)
        reply(socket, event, json_pack("{s:b,s:s}", "ok", 0, "error", message));
    else if (error_event != NULL)
        sioc_socket_emit(socket, error_event, json_pack("[{s:s}]", "message", message));
}

/* To everyone in room except this socket: Node's socket.to(room).emit(event, ...). */
static void emit_to_others(sioc_socket_t *socket, const char *room, const char *event, json_t *args)
{
    sioc_broadcast_t broadcast;
    sioc_broadcast_init_from(&broadcast, socket);
    sioc_broadcast_to(&broadcast, room);
    sioc_broadcast_emit(&broadcast, event, args);
}

/* The "room:<id>" name of the payload's roomId, or 0 when it is missing or invalid. */
static int room_of(const sioc_event_t *event, char room[ROOM_NAME_SIZE], const char **room_id)
{
    *room_id = string_member(payload_of(event), "roomId", MAX_ID_BYTES);
    if (*room_id == NULL)
        return 0;
    snprintf(room, ROOM_NAME_SIZE, "room:%s", *room_id);
    return 1;
}

/* ---- presence ------------------------------------------------------------------------------- */

/* How many sockets (browser tabs) each online user has. A list is enough for an example; with
 * several servers this would live in shared storage. */
typedef struct online_user_s {
    struct online_user_s *next;
    unsigned sockets;
    char id[]; /* the user id, NUL-terminated */
} online_user_t;

static online_user_t *online_users;

static online_user_t **find_online_user(const char *id)
{
    online_user_t **link = &online_users;
    while (*link != NULL && strcmp((*link)->id, id) != 0)
        link = &(*link)->next;
    return link;
}

/* Counts one more socket for the user: the new count, or 0 when out of memory. */
static unsigned add_user_socket(const char *id)
{
    online_user_t **link = find_online_user(id);
    if (*link == NULL) {
        size_t size = strlen(id) + 1;
        online_user_t *user = calloc(1, sizeof(*user) + size);
        if (user == NULL)
            return 0;
        memcpy(user->id, id, size);
        *link = user;
    }
    return ++(*link)->sockets;
}

/* Counts one socket less: the remaining count (0 = the user went offline). */
static unsigned remove_user_socket(const char *id)
{
    online_user_t **link = find_online_user(id);
    online_user_t *user = *link;
    if (user == NULL)
        return 0;
    if (--user->sockets > 0)
        return user->sockets;
    *link = user->next;
    free(user);
    return 0;
}

static int user_is_online(const char *id)
{
    return *find_online_user(id) != NULL;
}

/* ---- connecting ----------------------------------------------------------------------------- */

/* An EXAMPLE, not authentication: the token is taken as the user id as it is. A real server
 * verifies a signed token (a JWT) and looks the user up in its database; the middleware may call
 * sioc_next() later, once that lookup is done (docs/c-api.md shows how). */
static void authenticate(sioc_socket_t *socket, sioc_next_t *next, void *data)
{
    (void)data;
    json_t *auth = sioc_socket_auth(socket);
    json_t *name = json_object_get(auth, "name");
    const char *token = string_member(auth, "token", MAX_ID_BYTES);
    if (token == NULL || !json_is_string(name)) {
        sioc_next_error(next, "Authentication error: token required", NULL);
        return;
    }
    json_t *socket_data = sioc_socket_data(socket);
    json_object_set_new(socket_data, "userId", json_string(token));
    json_object_set(socket_data, "name", name);
    sioc_next(next);
}

static void on_connection(sioc_socket_t *socket, void *data)
{
    (void)data;
    const char *id = user_id(socket);
    /* Direct messages go to this room: it holds every tab of the user. */
    char user_room[ROOM_NAME_SIZE];
    snprintf(user_room, sizeof(user_room), "user:%s", id);
    unsigned sockets = add_user_socket(id);
    if (sockets == 0 || sioc_socket_join(socket, user_room) != 0) {
        sioc_socket_disconnect(socket, 1); /* out of memory: better gone than half set up */
        return;
    }
    if (sockets > 1)
        return; /* another tab of a user already online */
    sioc_broadcast_t broadcast;
    sioc_broadcast_init_from(&broadcast, socket);
    sioc_broadcast_emit(&broadcast, "user:status",
                        json_pack("[{s:s,s:s}]", "userId", id, "status", "online"));
}

static void on_disconnect(sioc_socket_t *socket, const char *reason, void *data)
{
    (void)reason;
    (void)data;
    const char *id = user_id(socket);
    if (remove_user_socket(id) > 0)
        return; /* the user still has another tab open */
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, sioc_socket_namespace(socket));
    sioc_broadcast_emit(&broadcast, "user:status",
                        json_pack("[{s:s,s:s}]", "userId", id, "status", "offline"));
}

/* ---- rooms ---------------------------------------------------------------------------------- */

static void on_room_join(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    (void)data;
    char room[ROOM_NAME_SIZE];
    const char *room_id;
    if (!room_of(event, room, &room_id)) {
        reply_error(socket, event, NULL, "roomId must be a string of 1 to 128 bytes");
        return;
    }
    if (!sioc_socket_in_room(socket, room)) {
        sioc_socket_join(socket, room);
        emit_to_others(socket, room, "room:userJoined",
                       json_pack("[{s:s,s:s,s:s}]", "roomId", room_id, "userId", user_id(socket),
                                 "name", user_name(socket)));
    }
    reply_ok(socket, event);
}

static void on_room_leave(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    (void)data;
    char room[ROOM_NAME_SIZE];
    const char *room_id;
    if (!room_of(event, room, &room_id)) {
        reply_error(socket, event, NULL, "roomId must be a string of 1 to 128 bytes");
        return;
    }
    if (sioc_socket_in_room(socket, room)) {
        sioc_socket_leave(socket, room);
        emit_to_others(socket, room, "room:userLeft",
                       json_pack("[{s:s,s:s}]", "roomId", room_id, "userId", user_id(socket)));
    }
    reply_ok(socket, event);
}

/* ---- messages ------------------------------------------------------------------------------- */

static void on_message_send(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    (void)data;
    char room[ROOM_NAME_SIZE];
    const char *room_id;
    const char *text = string_member(payload_of(event), "text", MAX_TEXT_BYTES);
    if (!room_of(event, room, &room_id)) {
        reply_error(socket, event, "message:error", "roomId must be a string of 1 to 128 bytes");
        return;
    }
    if (text == NULL) {
        reply_error(socket, event, "message:error", "text must be a string of 1 to 2000 bytes");
        return;
    }
    if (!sioc_socket_in_room(socket, room)) {
        reply_error(socket, event, "message:error", "Not a member of this room");
        return;
    }
    /* A real server would save the message here; its id and date would come from the database. */
    json_int_t id = ++last_message_id;
    char created_at[32];
    format_now(created_at, sizeof(created_at));
    sioc_broadcast_t broadcast; /* the whole room, sender included: io.to(room).emit() */
    sioc_broadcast_init(&broadcast, sioc_socket_namespace(socket));
    sioc_broadcast_to(&broadcast, room);
    sioc_broadcast_emit(&broadcast, "message:received",
                        json_pack("[{s:I,s:s,s:{s:s,s:s},s:s,s:s}]", "id", id, "roomId", room_id,
                                  "sender", "id", user_id(socket), "name", user_name(socket),
                                  "text", text, "createdAt", created_at));
    reply(socket, event, json_pack("{s:b,s:I}", "ok", 1, "id", id));
}

static void on_dm_send(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    (void)data;
    const char *recipient_id = string_member(payload_of(event), "recipientId", MAX_ID_BYTES);
    const char *text = string_member(payload_of(event), "text", MAX_TEXT_BYTES);
    if (recipient_id == NULL || !user_is_online(recipient_id)) {
        reply_error(socket, event, "dm:error", "Recipient not found");
        return;
    }
    if (text == NULL) {
        reply_error(socket, event, "dm:error", "text must be a string of 1 to 2000 bytes");
        return;
    }
    json_int_t id = ++last_message_id;
    char created_at[32];
    format_now(created_at, sizeof(created_at));
    char recipient_room[ROOM_NAME_SIZE];
    char sender_room[ROOM_NAME_SIZE];
    snprintf(recipient_room, sizeof(recipient_room), "user:%s", recipient_id);
    snprintf(sender_room, sizeof(sender_room), "user:%s", user_id(socket));
    /* Both users' rooms in one broadcast: every tab of either gets the message exactly once, even
     * when someone writes to themselves (a broadcast to several rooms has no duplicates). */
    sioc_broadcast_t broadcast;
    sioc_broadcast_init(&broadcast, sioc_socket_namespace(socket));
    sioc_broadcast_to(&broadcast, recipient_room);
    sioc_broadcast_to(&broadcast, sender_room);
    sioc_broadcast_emit(&broadcast, "dm:received",
                        json_pack("[{s:I,s:s,s:s,s:s,s:s}]", "id", id, "senderId", user_id(socket),
                                  "recipientId", recipient_id, "text", text, "createdAt",
                                  created_at));
    reply(socket, event, json_pack("{s:b,s:I}", "ok", 1, "id", id));
}

/* ---- typing indicators ---------------------------------------------------------------------- */

static void send_typing(sioc_socket_t *socket, const sioc_event_t *event, int is_typing)
{
    char room[ROOM_NAME_SIZE];
    const char *room_id;
    if (!room_of(event, room, &room_id) || !sioc_socket_in_room(socket, room)) {
        reply_error(socket, event, NULL, "Not a member of this room");
        return;
    }
    emit_to_others(socket, room, "typing:update",
                   json_pack("[{s:s,s:s,s:s,s:b}]", "roomId", room_id, "userId", user_id(socket),
                             "name", user_name(socket), "isTyping", is_typing));
    reply_ok(socket, event);
}

static void on_typing_start(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    (void)data;
    send_typing(socket, event, 1);
}

static void on_typing_stop(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    (void)data;
    send_typing(socket, event, 0);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void setup_chat(sioc_namespace_t *nsp)
{
    sioc_namespace_use(nsp, authenticate, NULL);
    sioc_namespace_on_connection(nsp, on_connection, NULL);
    sioc_namespace_on_disconnect(nsp, on_disconnect, NULL);
    sioc_namespace_on(nsp, "room:join", on_room_join, NULL);
    sioc_namespace_on(nsp, "room:leave", on_room_leave, NULL);
    sioc_namespace_on(nsp, "message:send", on_message_send, NULL);
    sioc_namespace_on(nsp, "dm:send", on_dm_send, NULL);
    sioc_namespace_on(nsp, "typing:start", on_typing_start, NULL);
    sioc_namespace_on(nsp, "typing:stop", on_typing_stop, NULL);
}

/* SIGTERM / SIGINT: closing the server disconnects every socket (on_disconnect runs for each);
 * once the signal handles are closed too, nothing is left on the loop and uv_run returns. */
static void on_signal(uv_signal_t *handle, int signal_number)
{
    (void)handle;
    (void)signal_number;
    for (size_t i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&signal_handles[i], NULL);
    sioc_server_close(server, NULL, NULL);
}

static int parse_arguments(int argc, char **argv, const char **host, int *port)
{
    static const struct option options[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    int option;
    while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        char *end = NULL;
        if (option == 'h') {
            *host = optarg;
        } else if (option == 'p') {
            long value = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || value < 0 || value > 65535)
                return -1;
            *port = (int)value;
        } else {
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 3000;
    if (parse_arguments(argc, argv, &host, &port) != 0) {
        fprintf(stderr, "usage: %s [--host 127.0.0.1] [--port 3000]\n", argv[0]);
        return 2;
    }
    uv_loop_t *loop = uv_default_loop();
    sioc_server_options_t options;
    sioc_server_options_init(&options);
    int rc = sioc_server_new(loop, &options, &server);
    if (rc != 0) {
        fprintf(stderr, "chat: %s\n", uv_strerror(rc));
        return 1;
    }
    setup_chat(sioc_server_of(server, "/"));
    rc = sioc_server_listen(server, host, port);
    if (rc != 0) {
        fprintf(stderr, "chat: cannot listen on %s:%d: %s\n", host, port, uv_strerror(rc));
        sioc_server_close(server, NULL, NULL);
        uv_run(loop, UV_RUN_DEFAULT); /* lets the server free itself */
        uv_loop_close(loop);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer that went away is an error code, not a signal */
    uv_signal_init(loop, &signal_handles[0]);
    uv_signal_start(&signal_handles[0], on_signal, SIGTERM);
    uv_signal_init(loop, &signal_handles[1]);
    uv_signal_start(&signal_handles[1], on_signal, SIGINT);
    /* Only once SIGTERM is ours: a test that stops the server right after this line must not
     * find the default action (death by the signal) still in place. */
    printf("listening on %s:%d\n", host, sioc_server_port(server));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
