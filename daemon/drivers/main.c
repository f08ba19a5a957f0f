/* main: Carolina's BaseChannel (seed 004) on a channel.
 *
 * A `session_id` event (the frontend WebSocketsSvc sends it after connecting: the session id
 * as a string, or {sessionId}) puts the socket in the room session.<sessionId> and, when the
 * socket has a user, in user.<userId>, where the back end's emitToUser reaches every socket of
 * the user. With session auth the connection's own session is known: another id is refused.
 * A later session_id (a new session after logging in) moves the socket to the new session's
 * room. With auth "optional" a visitor's session_id re-reads its cookie's session: a user who
 * logged in since is bound then, and the socket joins user.<userId>. Ack {rooms: [...]};
 * errors as session:error (or through the ack). Nothing else: other events are for custom
 * channels (the proxy driver). */
#include <stdlib.h>
#include <string.h>

#include "driver_util.h"
#include "log.h"

#define SESSION_ID_MAX 256
#define SESSION_PREFIX "session."
#define SESSION_ROOM_SIZE (sizeof(SESSION_PREFIX) + SESSION_ID_MAX)

/* The session id of the event, or NULL when it is not a string of 1..SESSION_ID_MAX bytes. */
static const char *session_argument(const sioc_event_t *event)
{
    json_t *value = driver_id_argument(driver_payload(event), "sessionId");
    const char *text = json_string_value(value);
    size_t length = json_string_length(value);
    if (text == NULL || length == 0 || length > SESSION_ID_MAX || strlen(text) != length)
        return NULL;
    return text;
}

/* Leaves the rooms of other sessions: a socket belongs to one session at a time. */
static void leave_other_sessions(sioc_socket_t *socket, const char *session_room)
{
    json_t *rooms = sioc_socket_rooms(socket);
    size_t index;
    json_t *room;
    json_array_foreach(rooms, index, room)
    {
        const char *name = json_string_value(room);
        if (name != NULL && strncmp(name, SESSION_PREFIX, strlen(SESSION_PREFIX)) == 0 &&
            strcmp(name, session_room) != 0)
            sioc_socket_leave(socket, name);
    }
    json_decref(rooms);
}

/* Joins user.<id> when the socket has a user; appends it to rooms. */
static void join_user_room(sioc_socket_t *socket, json_t *rooms)
{
    char user_id[CHANNEL_ID_SIZE];
    char user_room[DRIVER_ROOM_NAME_SIZE];
    if (channel_user_id_text(socket, user_id) == 0 &&
        driver_room_name(user_room, sizeof(user_room), "user.", user_id) == 0) {
        sioc_socket_join(socket, user_room);
        json_array_append_new(rooms, json_string(user_room));
    }
}

typedef struct main_s {
    driver_base_t base;
} main_t;

typedef struct main_socket_s {
    driver_socket_t order; /* first: a session_id that waits on Redis keeps the next ones back */
} main_socket_t;

/* A visitor's session (auth "optional") re-read: the user may have logged in since. */
static void on_bound(sioc_socket_t *socket, const char *problem, void *data)
{
    driver_call_t *call = data;
    if (driver_call_abandoned(call))
        return;
    if (socket != NULL && problem == NULL)
        log_info("main: socket %s bound to the user its session now has", sioc_socket_id(socket));
    json_t *rooms = json_incref(json_object_get(call->context, "rooms"));
    if (socket != NULL && problem == NULL)
        join_user_room(socket, rooms);
    driver_call_finish(call, json_pack("{s:o}", "rooms", rooms));
}

static void on_session_id(sioc_socket_t *socket, const sioc_event_t *event, void *data)
{
    main_t *state = data;
    channel_t *channel = state->base.channel;
    const char *session_id = session_argument(event);
    const char *own = json_string_value(json_object_get(sioc_socket_data(socket), "sessionId"));
    char session_room[SESSION_ROOM_SIZE];
    if (session_id == NULL) {
        channel_reply_error(socket, event, "session:error", DRIVER_EINVALID,
                            "sessionId must be a string of 1 to 256 bytes");
        return;
    }
    if (own != NULL && strcmp(own, session_id) != 0) {
        log_warn("main: socket %s sent a session_id that is not its session's",
                 sioc_socket_id(socket));
        channel_reply_error(socket, event, "session:error", DRIVER_EFORBIDDEN,
                            "sessionId is not the session of this connection");
        return;
    }
    snprintf(session_room, sizeof(session_room), SESSION_PREFIX "%s", session_id);
    leave_other_sessions(socket, session_room);
    json_t *rooms = json_pack("[s]", session_room);
    sioc_socket_join(socket, session_room);
    /* A visitor whose cookie names this session: did it log in since the page loaded? */
    if (channel_user(socket) == NULL && own != NULL &&
        channel->config->auth == CONFIG_AUTH_OPTIONAL) {
        driver_call_t *call = driver_call_new(&state->base, socket, event, "session:error");
        if (call != NULL) {
            json_object_set_new(call->context, "rooms", rooms);
            channel_bind_user(channel, socket, NULL, on_bound, call);
            return;
        }
    }
    join_user_room(socket, rooms);
    channel_reply_ok(socket, event, json_pack("{s:o}", "rooms", rooms));
}

static void on_connection(sioc_socket_t *socket, void *data)
{
    main_socket_t *state = calloc(1, sizeof(*state));
    if (state == NULL) {
        sioc_socket_disconnect(socket, 0);
        return;
    }
    driver_socket_init(&state->order);
    sioc_socket_set_user(socket, state);
}

static void on_disconnect(sioc_socket_t *socket, const char *reason, void *data)
{
    main_socket_t *state = sioc_socket_get_user(socket);
    sioc_socket_set_user(socket, NULL);
    if (state != NULL)
        driver_socket_cleanup(&state->order);
    free(state);
}

static void main_release(driver_base_t *base)
{
    free(base); /* the base is the first member of main_t */
}

static int main_setup(channel_t *channel, char *error, size_t error_size)
{
    static const char *const known[] = {NULL};
    if (driver_check_option_keys(channel->daemon->config, channel->config, known, error,
                                 error_size) != 0)
        return -1;
    main_t *state = calloc(1, sizeof(*state));
    if (state == NULL) {
        snprintf(error, error_size, "channels.\"%s\": out of memory", channel->config->name);
        return -1;
    }
    driver_base_init(&state->base, channel, main_release);
    channel->state = state;
    sioc_namespace_on_connection(channel->nsp, on_connection, state);
    sioc_namespace_on_disconnect(channel->nsp, on_disconnect, state);
    driver_on(&state->base, "session_id", "session:error", on_session_id, state);
    return 0;
}

static void main_teardown(channel_t *channel)
{
    main_t *state = channel->state;
    channel->state = NULL;
    if (state != NULL)
        driver_base_detach(&state->base);
}

const driver_t driver_main = {.name = "main", .setup = main_setup, .teardown = main_teardown};
